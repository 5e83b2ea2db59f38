//! `hzcache-bench-http`: HTTP throughput and latency through hzcache (L1 hits, L2 hits, no
//! matching rule) next to Envoy's `direct_response`, plain proxying, Envoy's own cache filter,
//! Varnish and nginx `proxy_cache`, all in front of one nginx origin on 127.0.0.1, measured by
//! one load generator (`wrk -t1 -cC -dDs --latency`) in interleaved rounds, with the same-round
//! ratios, CPU and RSS of the processes under test. `docs/benchmarks.md` ("HTTP") explains it.
//!
//! ```text
//! make bench-http                        # installs wrk/nginx/varnish, builds, runs, writes docs/
//! cargo run --release -p hzcache-bench-http -- [--quick] [--rounds R] [--duration S]
//!     [--warmup S] [--connections C] [--scenarios a,b] [--workloads 50B,16KiB,zipf]
//!     [--zipf-requests N] [--zipf-keys K] [--zipf-s S] [--out-dir DIR] [--no-docs]
//! ```

// Daemons (nginx, Varnish) and their workers, stopped together; shared with benchmarks/compare/. Its
// signal thread is not used here (see catch_signals).
mod args;
#[allow(dead_code)]
#[path = "../../compare/src/procs.rs"]
mod procs;
mod procstat;
mod report;
mod systems;
mod wrk;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hzcache_e2e::root;

use crate::args::{parse_args, Args, Scenario, L1_ON};
use crate::procstat::{load1, sample, Sample};
use crate::report::Run;
use crate::systems::{Member, OriginServer, System, BODY_16K, BODY_50};

/// The filter configurations of the hzcache scenarios, from the demo's envoy/filter-config.json.
fn demo_config() -> Result<serde_json::Value> {
    serde_json::from_str(&hzcache_e2e::demo_filter_config()?)
        .context("envoy/filter-config.json is not JSON")
}

fn with_l1(slots: u64, extra: Option<(u64, u64)>) -> Result<String> {
    let mut c = demo_config()?;
    let l1 = match extra {
        Some((max_entry_bytes, max_ttl_ms)) => serde_json::json!({
            "slots": slots, "max_entry_bytes": max_entry_bytes, "max_ttl_ms": max_ttl_ms
        }),
        None => serde_json::json!({ "slots": slots }),
    };
    c["l1"] = l1;
    Ok(c.to_string())
}

/// The demo's configuration without its catch-all rule: only `/data` is cached, so the
/// benchmark's paths match no rule and the filter only looks and passes.
fn no_rule_config() -> Result<String> {
    let mut c = demo_config()?;
    if let Some(rules) = c["rules"].as_array_mut() {
        rules.retain(|r| r["match"]["path_prefix"].as_str() != Some("/"));
    }
    Ok(c.to_string())
}

/// A started scenario, or why it is not available.
pub struct Started {
    pub scenario: Scenario,
    pub system: Result<System, String>,
    /// What this scenario is in this build, if not what its label says.
    pub note: Option<String>,
}

fn start_scenario(s: Scenario, origin: u16, member: Option<&Member>) -> Started {
    let mut note = None;
    let system = (|| -> Result<System> {
        match s.id {
            "direct" => systems::envoy_direct(origin),
            "proxy" => systems::envoy_proxy(origin),
            "envoy-cache" => systems::envoy_cache(origin),
            "varnish" => systems::varnish(origin),
            "nginx" => systems::nginx_cache(origin),
            id => {
                let member = member.context("no Hazelcast member")?;
                match id {
                    "hz-l1" => {
                        let (slots, bytes, ttl) = L1_ON;
                        let config = with_l1(slots, Some((bytes, ttl)))?;
                        systems::hzcache(id, member, origin, &config)
                            .map_err(|e| anyhow::anyhow!("L1: not available in this build ({e:#})"))
                    }
                    "hz-l2" => match systems::hzcache(id, member, origin, &with_l1(0, None)?) {
                        Ok(s) => Ok(s),
                        Err(e) => {
                            // A build without the `l1` field refuses it; such a build has no L1
                            // at all, so the demo configuration as it is measures L2 only.
                            eprintln!(
                                "bench-http: `\"l1\": {{\"slots\": 0}}` refused ({}); this build \
                                 has no L1, running L2 with the demo configuration as it is",
                                first_line(&format!("{e:#}"))
                            );
                            note = Some("build without L1: demo config as it is".into());
                            let config = demo_config()?.to_string();
                            systems::hzcache(id, member, origin, &config)
                        }
                    },
                    "hz-norule" => systems::hzcache(id, member, origin, &no_rule_config()?),
                    other => bail!("unknown scenario {other}"),
                }
            }
        }
    })()
    .map_err(|e| format!("{e:#}"));
    Started {
        scenario: s,
        system,
        note,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// What a fixed-URL answer of `scenario` must look like: 200, the whole body, and the sign of
/// a cache hit each cache gives.
fn check(id: &str, url: &str, len: usize) -> Result<String, String> {
    let r = hzcache_e2e::get(url).map_err(|e| format!("{e:#}"))?;
    if r.status != 200 || r.body.len() != len {
        return Err(format!(
            "status {} with {} body bytes",
            r.status,
            r.body.len()
        ));
    }
    let h = |n: &str| r.header(n).unwrap_or("").to_string();
    match id {
        "hz-l1" | "hz-l2" if r.cache() == "HIT" => Ok("x-cache: HIT".into()),
        "hz-l1" | "hz-l2" => Err(format!("x-cache: {:?}, expected HIT", r.cache())),
        "hz-norule" if r.header("x-cache").is_none() => Ok("no x-cache".into()),
        "hz-norule" => Err(format!("x-cache: {:?} with no matching rule", r.cache())),
        "envoy-cache" if r.header("age").is_some() => Ok(format!("age: {}", h("age"))),
        "envoy-cache" => Err("no age header: not a cache hit".into()),
        "varnish" if h("x-varnish").contains(' ') => Ok(format!("x-varnish: {}", h("x-varnish"))),
        "varnish" => Err(format!("x-varnish: {:?}: not a hit", h("x-varnish"))),
        "nginx" if h("x-cache-status") == "HIT" => Ok("x-cache-status: HIT".into()),
        "nginx" => Err(format!("x-cache-status: {:?}", h("x-cache-status"))),
        _ => Ok("200".into()),
    }
}

/// The sum of `hzcache_requests_total` over every outcome, and the hits.
fn companion_requests(metrics: &str) -> (f64, f64) {
    let mut total = 0.0;
    let mut hits = 0.0;
    for l in metrics.lines() {
        if let Some(rest) = l.strip_prefix("hzcache_requests_total{") {
            let (labels, v) = rest.split_once("} ").unwrap_or(("", "0"));
            let v: f64 = v.trim().parse().unwrap_or(0.0);
            total += v;
            if labels.contains("outcome=\"hit\"") {
                hits += v;
            }
        }
    }
    (total, hits)
}

struct Ctx<'a> {
    args: &'a Args,
    origin: &'a OriginServer,
    member_pid: Option<u32>,
    lua: PathBuf,
}

fn measure(ctx: &Ctx, st: &Started, workload: &'static str, round: usize) -> Result<Run> {
    let Ok(sys) = &st.system else {
        bail!("not available");
    };
    let id = st.scenario.id;
    let a = ctx.args;
    let (url, script_args, check_result) = if workload == "zipf" {
        let prefix = format!("r{round}-{id}-{}", std::process::id());
        let args = vec![
            prefix,
            a.zipf_requests.to_string(),
            a.zipf_keys.to_string(),
            a.zipf_s.to_string(),
            "42".to_string(),
        ];
        (sys.url("/"), Some(args), Ok("fresh keys".to_string()))
    } else {
        let (path, len) = if workload == "50B" {
            ("/b50", BODY_50)
        } else {
            ("/b16k", BODY_16K)
        };
        let url = sys.url(path);
        // Fills the cache, opens the connections, and warms the processes up.
        let _ = hzcache_e2e::get(&url);
        wrk::run(a.connections, a.warmup, &url, None).context("warm-up")?;
        let c = check(id, &url, len);
        (url, None, c)
    };
    // Zipf runs stop after a fixed number of responses; the duration only caps them.
    let cap = if workload == "zipf" {
        (a.duration * 5.0).max(30.0)
    } else {
        a.duration
    };
    let front_pids = sys.front_pids();
    let companion_pid: Vec<u32> = sys.companion.map(|(p, _)| p).into_iter().collect();
    let member_pid: Vec<u32> = if sys.companion.is_some() {
        ctx.member_pid.into_iter().collect()
    } else {
        Vec::new()
    };
    let load_before = load1();
    let origin_before = ctx.origin.requests();
    let (comp_before, hits_before) = companion_requests(&sys.companion_metrics());
    let f0 = sample(&front_pids);
    let c0 = sample(&companion_pid);
    let m0 = sample(&member_pid);
    let started = Instant::now();
    let w = match &script_args {
        Some(args) => wrk::run(a.connections, cap, &url, Some((&ctx.lua, args)))?,
        None => wrk::run(a.connections, cap, &url, None)?,
    };
    let wall = started.elapsed();
    let f1 = sample(&front_pids);
    let c1 = sample(&companion_pid);
    let m1 = sample(&member_pid);
    let (comp_after, hits_after) = companion_requests(&sys.companion_metrics());
    // The second status request counts itself.
    let origin_requests = ctx.origin.requests().saturating_sub(origin_before + 1);
    let load_after = load1();
    let cpu = |a: Sample, b: Sample| (b.cpu_s - a.cpu_s).max(0.0);
    Ok(Run {
        round,
        scenario: id,
        workload,
        wrk: w,
        wall_s: wall.as_secs_f64(),
        origin_requests,
        companion_requests: sys
            .companion
            .map(|_| (comp_after - comp_before).max(0.0) as u64),
        companion_hits: sys
            .companion
            .map(|_| (hits_after - hits_before).max(0.0) as u64),
        front_cpu_s: cpu(f0, f1),
        companion_cpu_s: sys.companion.map(|_| cpu(c0, c1)),
        member_cpu_s: sys.companion.map(|_| cpu(m0, m1)),
        front_rss_kb: f1.rss_kb,
        front_hwm_kb: f1.hwm_kb,
        companion_rss_kb: sys.companion.map(|_| c1.rss_kb),
        companion_hwm_kb: sys.companion.map(|_| c1.hwm_kb),
        load: (load_before, load_after),
        check: check_result,
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: the main loop notices it between runs and stops everything.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C/SIGTERM/SIGHUP end the run after the current wrk run (which Ctrl-C also ends), with
/// everything stopped. A handler rather than benchmarks/compare/'s blocked-signals thread: children
/// inherit a blocked signal mask, and wrk must be able to get the SIGINT the Zipf script
/// sends it (and Envoy, the companion and Varnish their SIGTERM when they are stopped).
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted; stopping everything this run started");
    }
    Ok(())
}

fn main() {
    catch_signals();
    if let Err(e) = run() {
        eprintln!("hzcache-bench-http: {e:#}");
        // Through `exit`, so the harness's exit hook kills anything still running.
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    // The release companion (make bench-http builds it) and no debug logging: the harness's
    // defaults are the debug build and debug logs, right for tests, wrong for a benchmark.
    if std::env::var_os("HZCACHE_COMPANION_BIN").is_none() {
        std::env::set_var(
            "HZCACHE_COMPANION_BIN",
            root().join("target/release/hzcache-companion"),
        );
    }
    if std::env::var_os("HZCACHE_TEST_LOG").is_none() {
        std::env::set_var("HZCACHE_TEST_LOG", "warn");
    }
    systems::find_bin("wrk")?;
    let lua = root().join("benchmarks/http/config/zipf.lua");
    let machine = report::Machine::now();
    eprintln!(
        "bench-http: {} cores ({}), load {:.2}; Envoy --concurrency 1, wrk -t1 -c{} -d{}s, \
         {} round(s)",
        machine.nproc,
        machine.cpu_model,
        machine.load_start,
        args.connections,
        args.duration,
        args.rounds
    );

    let origin = OriginServer::start().context("starting the nginx origin")?;
    let need_member = args.scenarios.iter().any(|s| s.id.starts_with("hz-"));
    let member = if need_member {
        eprintln!("bench-http: starting a Hazelcast member");
        Some(Member::start()?)
    } else {
        None
    };
    let mut started_all: Vec<Started> = Vec::new();
    for s in &args.scenarios {
        check_interrupted()?;
        eprintln!("bench-http: starting {}", s.id);
        let st = start_scenario(*s, origin.port, member.as_ref());
        if let Err(e) = &st.system {
            eprintln!("bench-http: {} not available: {}", s.id, first_line(e));
        }
        started_all.push(st);
    }
    let ctx = Ctx {
        args: &args,
        origin: &origin,
        member_pid: member.as_ref().map(|m| m.process.pid()),
        lua,
    };

    // One unrecorded pass over every system first (JITs, connection pools, the member).
    let prewarm = if args.quick { 1.0 } else { 3.0 };
    for st in &started_all {
        if let Ok(sys) = &st.system {
            let _ = hzcache_e2e::get(&sys.url("/b50"));
            let _ = wrk::run(args.connections, prewarm, &sys.url("/b50"), None);
        }
    }

    let mut runs: Vec<Run> = Vec::new();
    for round in 1..=args.rounds {
        for workload in &args.workloads {
            for st in &started_all {
                check_interrupted()?;
                if st.system.is_err() || (*workload == "zipf" && !st.scenario.zipf) {
                    continue;
                }
                match measure(&ctx, st, workload, round) {
                    Ok(r) => {
                        eprintln!("{}", r.line());
                        runs.push(r);
                    }
                    Err(e) => eprintln!(
                        "bench-http: round {round} {} {workload}: {e:#}",
                        st.scenario.id
                    ),
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let origin_rss = sample(&origin.pids()).hwm_kb;
    let member_hwm = ctx.member_pid.map(|p| sample(&[p]).hwm_kb);
    let notes: BTreeMap<&str, String> = started_all
        .iter()
        .filter_map(|s| match (&s.system, &s.note) {
            (Err(e), _) => Some((s.scenario.id, first_line(e).to_string())),
            (Ok(_), Some(n)) => Some((s.scenario.id, n.clone())),
            _ => None,
        })
        .collect();
    let report = report::Report::new(&args, machine, runs, notes, elapsed, origin_rss, member_hwm);
    println!("{}", report.text());
    report.write(&args)?;
    // Stop everything before returning (Envoys first, then companions, caches, origin).
    drop(started_all);
    drop(member);
    drop(origin);
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}
