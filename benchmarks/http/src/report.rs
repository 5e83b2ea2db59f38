//! The results: one record per measured run, summaries per scenario and workload (medians
//! and ranges over the rounds, ratios taken round by round against the baseline measured in
//! the same round), the targets with met/missed, and the outputs: a table on stdout,
//! JSON and a PNG chart (benchmarks/http/chart.py) in the output folder, and the generated
//! section of docs/benchmarks.md (between its bench-http markers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::args::{Args, L1_ON, SCENARIOS, WORKLOADS};
use crate::wrk::WrkResult;

/// One measured run.
#[derive(Clone, Debug)]
pub struct Run {
    pub round: usize,
    pub scenario: &'static str,
    pub workload: &'static str,
    pub wrk: WrkResult,
    pub wall_s: f64,
    pub origin_requests: u64,
    pub companion_requests: Option<u64>,
    pub companion_hits: Option<u64>,
    pub front_cpu_s: f64,
    pub companion_cpu_s: Option<f64>,
    pub member_cpu_s: Option<f64>,
    pub front_rss_kb: u64,
    pub front_hwm_kb: u64,
    pub companion_rss_kb: Option<u64>,
    pub companion_hwm_kb: Option<u64>,
    pub load: (f64, f64),
    pub check: Result<String, String>,
}

impl Run {
    /// The progress line printed after each run.
    pub fn line(&self) -> String {
        format!(
            "round {} {:<12} {:<6} {:>9.0} req/s  p50 {:>8}  p99 {:>8}  origin {:>6}  companion {:>7}  load {:.1}  {}",
            self.round,
            self.scenario,
            self.workload,
            self.wrk.rps,
            ms(self.wrk.p50_us),
            ms(self.wrk.p99_us),
            self.origin_requests,
            self.companion_requests.map_or("-".into(), |c| c.to_string()),
            self.load.1,
            match &self.check {
                Ok(c) => c.clone(),
                Err(e) => format!("CHECK FAILED: {e}"),
            }
        )
    }

    fn per_10k(&self, cpu_s: f64) -> f64 {
        if self.wrk.requests == 0 {
            0.0
        } else {
            cpu_s / self.wrk.requests as f64 * 1e4
        }
    }
}

fn ms(us: f64) -> String {
    format!("{:.2}ms", us / 1000.0)
}

/// Median and range of a few numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
    fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// One scenario × workload over all rounds.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: &'static str,
    pub label: &'static str,
    pub workload: &'static str,
    pub rounds: usize,
    pub rps: Stat,
    pub p50_us: f64,
    pub p99_us: f64,
    pub vs_proxy: Option<Stat>,
    pub vs_cache: Option<Stat>,
    pub requests: f64,
    pub origin_requests: f64,
    pub hit_ratio: Option<Stat>,
    pub companion_requests: Option<f64>,
    pub companion_hits: Option<f64>,
    pub front_cpu_10k: f64,
    pub companion_cpu_10k: Option<f64>,
    pub member_cpu_10k: Option<f64>,
    pub front_hwm_kb: u64,
    pub companion_hwm_kb: Option<u64>,
    pub errors: u64,
    pub failed_checks: Vec<String>,
    pub check: String,
}

fn median(v: &[f64]) -> f64 {
    Stat::of(v).map_or(0.0, |s| s.median)
}

fn opt_median(v: Vec<Option<f64>>) -> Option<f64> {
    let v: Option<Vec<f64>> = v.into_iter().collect();
    v.filter(|v| !v.is_empty()).map(|v| median(&v))
}

/// The per-round ratio of `runs` to the `base` scenario's run of the same round and workload.
fn ratios(all: &[Run], runs: &[&Run], base: &str) -> Option<Stat> {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            let b = all
                .iter()
                .find(|b| b.scenario == base && b.workload == r.workload && b.round == r.round)?;
            (b.wrk.rps > 0.0).then(|| r.wrk.rps / b.wrk.rps)
        })
        .collect();
    Stat::of(&v)
}

pub fn summarize(all: &[Run]) -> Vec<Row> {
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        for s in SCENARIOS {
            let runs: Vec<&Run> = all
                .iter()
                .filter(|r| r.scenario == s.id && r.workload == *workload)
                .collect();
            let Some(rps) = Stat::of(&runs.iter().map(|r| r.wrk.rps).collect::<Vec<_>>()) else {
                continue;
            };
            let f = |g: &dyn Fn(&Run) -> f64| runs.iter().map(|r| g(r)).collect::<Vec<_>>();
            let failed: Vec<String> = runs
                .iter()
                .filter_map(|r| {
                    r.check
                        .as_ref()
                        .err()
                        .map(|e| format!("round {}: {e}", r.round))
                })
                .collect();
            let check = runs
                .iter()
                .find_map(|r| r.check.as_ref().ok().cloned())
                .unwrap_or_default();
            rows.push(Row {
                scenario: s.id,
                label: s.label,
                workload,
                rounds: runs.len(),
                rps,
                p50_us: median(&f(&|r| r.wrk.p50_us)),
                p99_us: median(&f(&|r| r.wrk.p99_us)),
                vs_proxy: ratios(all, &runs, "proxy"),
                vs_cache: ratios(all, &runs, "envoy-cache"),
                requests: median(&f(&|r| r.wrk.requests as f64)),
                origin_requests: median(&f(&|r| r.origin_requests as f64)),
                hit_ratio: (*workload == "zipf")
                    .then(|| {
                        Stat::of(&f(&|r| {
                            // A few requests in flight when wrk stops reach the origin
                            // uncounted by wrk: an uncached run reads ~0, clamped.
                            (1.0 - r.origin_requests as f64 / (r.wrk.requests.max(1)) as f64)
                                .max(0.0)
                        }))
                    })
                    .flatten(),
                companion_requests: opt_median(
                    runs.iter()
                        .map(|r| r.companion_requests.map(|c| c as f64))
                        .collect(),
                ),
                companion_hits: opt_median(
                    runs.iter()
                        .map(|r| r.companion_hits.map(|c| c as f64))
                        .collect(),
                ),
                front_cpu_10k: median(&f(&|r| r.per_10k(r.front_cpu_s))),
                companion_cpu_10k: opt_median(
                    runs.iter()
                        .map(|r| r.companion_cpu_s.map(|c| r.per_10k(c)))
                        .collect(),
                ),
                member_cpu_10k: opt_median(
                    runs.iter()
                        .map(|r| r.member_cpu_s.map(|c| r.per_10k(c)))
                        .collect(),
                ),
                front_hwm_kb: runs.iter().map(|r| r.front_hwm_kb).max().unwrap_or(0),
                companion_hwm_kb: runs.iter().filter_map(|r| r.companion_hwm_kb).max(),
                errors: runs
                    .iter()
                    .map(|r| r.wrk.non_2xx + r.wrk.socket_errors)
                    .sum(),
                failed_checks: failed,
                check,
            });
        }
    }
    rows
}

/// The machine and the versions of what ran.
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub load_start: f64,
    pub versions: BTreeMap<&'static str, String>,
    pub date: String,
}

fn output(cmd: &str, args: &[&str]) -> String {
    let bin = crate::systems::find_bin(cmd)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| cmd.to_string());
    Command::new(bin)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .unwrap_or_default()
}

impl Machine {
    pub fn now() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut versions = BTreeMap::new();
        let envoy = hzcache_e2e::envoy_bin()
            .map(|p| output(&p.display().to_string(), &["--version"]))
            .unwrap_or_default();
        // "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
        let envoy = envoy
            .split("version:")
            .nth(1)
            .and_then(|v| v.split('/').nth(1))
            .unwrap_or("unknown")
            .to_string();
        versions.insert("envoy", envoy);
        let first = |s: String| s.lines().next().unwrap_or("").trim().to_string();
        versions.insert("nginx", first(output("nginx", &["-v"])));
        versions.insert("varnish", first(output("varnishd", &["-V"])));
        versions.insert(
            "wrk",
            first(output("wrk", &["-v"]))
                .split(" Copyright")
                .next()
                .unwrap_or("")
                .to_string(),
        );
        let git = |a: &[&str]| {
            Command::new("git")
                .current_dir(hzcache_e2e::root())
                .args(a)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
            ""
        } else {
            " (with uncommitted changes)"
        };
        versions.insert(
            "hzcache",
            format!("{}{dirty}", git(&["rev-parse", "--short", "HEAD"])),
        );
        let wasm = hzcache_e2e::filter_wasm()
            .ok()
            .and_then(|p| fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        versions.insert("wasm_bytes", wasm.to_string());
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            nproc,
            cpu_model,
            load_start: crate::procstat::load1(),
            versions,
            date,
        }
    }
}

/// A target: a value measured against a goal.
pub struct Target {
    pub name: String,
    pub measured: Option<f64>,
    pub goal: f64,
    /// Higher is better (ratios) or lower is better (sizes).
    pub at_least: bool,
    pub unit: &'static str,
    pub detail: String,
}

impl Target {
    fn met(&self) -> Option<bool> {
        self.measured.map(|m| {
            if self.at_least {
                m >= self.goal
            } else {
                m <= self.goal
            }
        })
    }
    fn verdict(&self) -> String {
        match (self.measured, self.met()) {
            (Some(m), Some(met)) => {
                let dist = if self.at_least {
                    m - self.goal
                } else {
                    self.goal - m
                };
                format!(
                    "{} ({} {:.2}{u} vs {} {:.2}{u}: {}{:.2}{u} {})",
                    if met { "met" } else { "MISSED" },
                    "measured",
                    m,
                    if self.at_least { ">=" } else { "<=" },
                    self.goal,
                    if dist >= 0.0 { "+" } else { "" },
                    dist,
                    if dist >= 0.0 { "to spare" } else { "short" },
                    u = self.unit
                )
            }
            _ => format!("not measured ({})", self.detail),
        }
    }
}

pub struct Report {
    pub machine: Machine,
    pub runs: Vec<Run>,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
    pub notes: BTreeMap<&'static str, String>,
    pub elapsed: Duration,
    pub load_range: (f64, f64),
    pub origin_hwm_kb: u64,
    pub member_hwm_kb: Option<u64>,
    pub settings: Value,
    pub command: String,
}

/// The stated overhead over the configured L1 bound that Envoy's RSS may show.
pub const L1_RSS_OVERHEAD_KB: u64 = 16 * 1024;

fn targets(rows: &[Row], notes: &BTreeMap<&str, String>, wasm_bytes: u64) -> Vec<Target> {
    let find = |s: &str, w: &str| rows.iter().find(|r| r.scenario == s && r.workload == w);
    let why = |s: &str| {
        notes
            .get(s)
            .cloned()
            .unwrap_or_else(|| format!("{s} not run"))
    };
    let mut t = Vec::new();
    for w in ["50B", "16KiB"] {
        t.push(Target {
            name: format!("L1 hit >= 0.9x Envoy's cache filter ({w})"),
            measured: find("hz-l1", w).and_then(|r| r.vs_cache).map(|s| s.median),
            goal: 0.9,
            at_least: true,
            unit: "x",
            detail: why("hz-l1"),
        });
        t.push(Target {
            name: format!("L2 hit >= 0.6x plain proxying ({w})"),
            measured: find("hz-l2", w).and_then(|r| r.vs_proxy).map(|s| s.median),
            goal: 0.6,
            at_least: true,
            unit: "x",
            detail: why("hz-l2"),
        });
        t.push(Target {
            name: format!("no matching rule >= 0.95x plain proxying ({w})"),
            measured: find("hz-norule", w)
                .and_then(|r| r.vs_proxy)
                .map(|s| s.median),
            goal: 0.95,
            at_least: true,
            unit: "x",
            detail: why("hz-norule"),
        });
    }
    t.push(Target {
        name: "the .wasm under 500 KB (500,000 bytes)".into(),
        measured: (wasm_bytes > 0).then_some(wasm_bytes as f64 / 1000.0),
        goal: 500.0,
        at_least: false,
        unit: " KB",
        detail: "no .wasm found".into(),
    });
    // Envoy's peak RSS with L1 on, against the L1-off Envoy of the same run plus the
    // configured bound (slots x max_entry_bytes) plus the stated overhead.
    let peak = |s: &str| {
        rows.iter()
            .filter(|r| r.scenario == s)
            .map(|r| r.front_hwm_kb)
            .max()
    };
    let bound_kb = L1_ON.0 * L1_ON.1 / 1024;
    let l1 = peak("hz-l1");
    let l2 = peak("hz-l2");
    t.push(Target {
        name: format!(
            "Envoy peak RSS with L1 <= L1-off Envoy + bound ({} slots x {} B = {} MiB) + {} MiB",
            L1_ON.0,
            L1_ON.1,
            bound_kb / 1024,
            L1_RSS_OVERHEAD_KB / 1024
        ),
        measured: l1.zip(l2).map(|(a, _)| a as f64 / 1024.0),
        goal: l2.map_or(0.0, |b| (b + bound_kb + L1_RSS_OVERHEAD_KB) as f64 / 1024.0),
        at_least: false,
        unit: " MiB",
        detail: why("hz-l1"),
    });
    t
}

impl Report {
    pub fn new(
        args: &Args,
        machine: Machine,
        runs: Vec<Run>,
        notes: BTreeMap<&'static str, String>,
        elapsed: Duration,
        origin_hwm_kb: u64,
        member_hwm_kb: Option<u64>,
    ) -> Report {
        let rows = summarize(&runs);
        let wasm = machine
            .versions
            .get("wasm_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let targets = targets(&rows, &notes, wasm);
        let loads: Vec<f64> = runs
            .iter()
            .flat_map(|r| [r.load.0, r.load.1])
            .chain([machine.load_start])
            .collect();
        let load_range = Stat::of(&loads).map_or((0.0, 0.0), |s| (s.min, s.max));
        let settings = json!({
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "wrk": format!("wrk -t1 -c{} -d{}s --latency --timeout 5s", args.connections, args.duration),
            "envoy_concurrency": 1,
            "zipf": { "requests": args.zipf_requests, "keys": args.zipf_keys, "s": args.zipf_s, "seed": 42,
                      "body_bytes": crate::systems::BODY_50 },
            "l1_on": { "slots": L1_ON.0, "max_entry_bytes": L1_ON.1, "max_ttl_ms": L1_ON.2 },
            "quick": args.quick,
        });
        Report {
            machine,
            runs,
            rows,
            targets,
            notes,
            elapsed,
            load_range,
            origin_hwm_kb,
            member_hwm_kb,
            settings,
            command: args.command.clone(),
        }
    }

    /// The results table (Markdown, which also reads well as plain text).
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str("| scenario | body | req/s median [min-max] | p50 | p99 | x proxy | x envoy-cache | origin req | hit ratio | companion req | front CPU s/10k | companion CPU s/10k | member CPU s/10k | front peak RSS | companion peak RSS |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let ratio = |r: Option<Stat>| {
            r.map_or("-".to_string(), |r| {
                format!("{:.2} [{:.2}-{:.2}]", r.median, r.min, r.max)
            })
        };
        let opt =
            |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
        let mib = |kb: u64| format!("{:.0} MiB", kb as f64 / 1024.0);
        for r in &self.rows {
            let mut name = r.scenario.to_string();
            if !r.failed_checks.is_empty() || r.errors > 0 {
                name.push_str(" (!)");
            }
            let _ = writeln!(
                s,
                "| {name} | {} | {:.0} [{:.0}-{:.0}] | {} | {} | {} | {} | {:.0} | {} | {} | {:.3} | {} | {} | {} | {} |",
                r.workload,
                r.rps.median,
                r.rps.min,
                r.rps.max,
                ms(r.p50_us),
                ms(r.p99_us),
                ratio(r.vs_proxy),
                ratio(r.vs_cache),
                r.origin_requests,
                r.hit_ratio.map_or("-".into(), |h| format!("{:.3}", h.median)),
                opt(r.companion_requests, 0),
                r.front_cpu_10k,
                opt(r.companion_cpu_10k, 3),
                opt(r.member_cpu_10k, 3),
                mib(r.front_hwm_kb),
                r.companion_hwm_kb.map_or("-".into(), mib),
            );
        }
        s
    }

    pub fn targets_text(&self) -> String {
        let mut s = String::new();
        for t in &self.targets {
            let _ = writeln!(s, "- {}: {}", t.name, t.verdict());
        }
        s
    }

    fn problems(&self) -> String {
        let mut s = String::new();
        for (id, n) in &self.notes {
            let _ = writeln!(s, "- {id}: {n}");
        }
        for r in &self.rows {
            for f in &r.failed_checks {
                let _ = writeln!(s, "- {} {}: check failed, {f}", r.scenario, r.workload);
            }
            if r.errors > 0 {
                let _ = writeln!(
                    s,
                    "- {} {}: {} non-2xx answers or socket errors over {} rounds",
                    r.scenario, r.workload, r.errors, r.rounds
                );
            }
            if r.scenario == "hz-l1"
                && r.workload != "zipf"
                && r.companion_requests.unwrap_or(0.0) > r.requests * 0.01
            {
                let _ = writeln!(
                    s,
                    "- hz-l1 {}: the companion answered {:.0} of {:.0} requests: these were not \
                     all L1 hits",
                    r.workload,
                    r.companion_requests.unwrap_or(0.0),
                    r.requests
                );
            }
        }
        s
    }

    /// Everything printed at the end, also the body of the docs section.
    pub fn text(&self) -> String {
        let m = &self.machine;
        let v = &m.versions;
        let get = |k: &str| v.get(k).cloned().unwrap_or_default();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Run of {} on {} cores ({}), load average (1 min) {:.2}-{:.2} during the run; \
             took {:.0} s.\n",
            m.date,
            m.nproc,
            m.cpu_model,
            self.load_range.0,
            self.load_range.1,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "Versions: Envoy {}, {}, {}, {}, hzcache {} (filter .wasm {} bytes).\n",
            get("envoy"),
            get("nginx"),
            get("varnish"),
            get("wrk"),
            get("hzcache"),
            get("wasm_bytes")
        );
        let _ = writeln!(
            s,
            "Command: `{}`; every Envoy `--concurrency 1`, load `{}` for every scenario, \
             {} round(s), each round every scenario in turn; Zipf: {} requests per run \
             (s = {}, {} keys, fixed seed, fresh keys every run).\n",
            self.command,
            self.settings["wrk"].as_str().unwrap_or(""),
            self.settings["rounds"],
            self.settings["zipf"]["requests"],
            self.settings["zipf"]["s"],
            self.settings["zipf"]["keys"],
        );
        s.push_str(&self.table());
        let _ = writeln!(
            s,
            "\norigin nginx peak RSS {:.0} MiB{}.\n",
            self.origin_hwm_kb as f64 / 1024.0,
            self.member_hwm_kb.map_or(String::new(), |k| format!(
                "; Hazelcast member peak RSS {:.0} MiB (JVM, -Xmx512m)",
                k as f64 / 1024.0
            ))
        );
        s.push_str("Targets (medians of the same-round ratios):\n\n");
        s.push_str(&self.targets_text());
        let p = self.problems();
        if !p.is_empty() {
            s.push_str("\nNotes:\n\n");
            s.push_str(&p);
        }
        s
    }

    pub fn json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                json!({
                    "round": r.round, "scenario": r.scenario, "workload": r.workload,
                    "rps": r.wrk.rps, "requests": r.wrk.requests, "seconds": r.wrk.seconds, "wall_s": r.wall_s,
                    "p50_us": r.wrk.p50_us, "p99_us": r.wrk.p99_us,
                    "non_2xx": r.wrk.non_2xx, "socket_errors": r.wrk.socket_errors,
                    "origin_requests": r.origin_requests,
                    "companion_requests": r.companion_requests, "companion_hits": r.companion_hits,
                    "front_cpu_s": r.front_cpu_s, "companion_cpu_s": r.companion_cpu_s,
                    "member_cpu_s": r.member_cpu_s,
                    "front_rss_kb": r.front_rss_kb, "front_hwm_kb": r.front_hwm_kb,
                    "companion_rss_kb": r.companion_rss_kb, "companion_hwm_kb": r.companion_hwm_kb,
                    "load1": [r.load.0, r.load.1],
                    "check": match &r.check { Ok(c) => json!({"ok": c}), Err(e) => json!({"failed": e}) },
                })
            })
            .collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "scenario": r.scenario, "label": r.label, "workload": r.workload,
                    "rounds": r.rounds, "rps": r.rps.json(),
                    "p50_us": r.p50_us, "p99_us": r.p99_us,
                    "vs_proxy": r.vs_proxy.map(|s| s.json()),
                    "vs_envoy_cache": r.vs_cache.map(|s| s.json()),
                    "requests": r.requests, "origin_requests": r.origin_requests,
                    "hit_ratio": r.hit_ratio.map(|s| s.json()),
                    "companion_requests": r.companion_requests,
                    "companion_hits": r.companion_hits,
                    "front_cpu_s_per_10k": r.front_cpu_10k,
                    "companion_cpu_s_per_10k": r.companion_cpu_10k,
                    "member_cpu_s_per_10k": r.member_cpu_10k,
                    "front_peak_rss_kb": r.front_hwm_kb,
                    "companion_peak_rss_kb": r.companion_hwm_kb,
                    "errors": r.errors, "failed_checks": r.failed_checks, "check": r.check,
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| {
                json!({ "target": t.name, "measured": t.measured, "goal": t.goal,
                        "met": t.met(), "verdict": t.verdict() })
            })
            .collect();
        json!({
            "date": self.machine.date,
            "machine": { "nproc": self.machine.nproc, "cpu_model": self.machine.cpu_model,
                         "load1_min": self.load_range.0, "load1_max": self.load_range.1 },
            "versions": self.machine.versions,
            "command": self.command,
            "settings": self.settings,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "not_available": self.notes,
            "origin_peak_rss_kb": self.origin_hwm_kb,
            "member_peak_rss_kb": self.member_hwm_kb,
            "summary": rows,
            "targets": targets,
            "runs": runs,
        })
    }

    /// Writes bench-http.json and bench-http.png to the output folder and, unless told not
    /// to, the generated section of docs/benchmarks.md.
    pub fn write(&self, args: &Args) -> Result<()> {
        fs::create_dir_all(&args.out_dir)?;
        let json_path = args.out_dir.join("bench-http.json");
        fs::write(
            &json_path,
            serde_json::to_string_pretty(&self.json())? + "\n",
        )
        .with_context(|| format!("writing {}", json_path.display()))?;
        eprintln!("bench-http: wrote {}", json_path.display());
        let png = args.out_dir.join("bench-http.png");
        let python = hzcache_e2e::root().join(".cache/venv/bin/python");
        let chart = Command::new(&python)
            .arg(hzcache_e2e::root().join("benchmarks/http/chart.py"))
            .arg(&json_path)
            .arg(&png)
            .status();
        match chart {
            Ok(s) if s.success() => eprintln!("bench-http: wrote {}", png.display()),
            other => eprintln!(
                "bench-http: no chart ({other:?}; `make bench-http` installs matplotlib in .cache/venv)"
            ),
        }
        if args.docs {
            let path = hzcache_e2e::root().join("docs/benchmarks.md");
            let doc = fs::read_to_string(&path).unwrap_or_default();
            let section = format!(
                "{BEGIN}\n<!-- generated by `make bench-http`; edit outside the markers -->\n\n{}\n![req/s by scenario](bench-http.png)\n\n{END}",
                self.text()
            );
            fs::write(&path, replace_section(&doc, &section))?;
            eprintln!("bench-http: updated {}", path.display());
        }
        Ok(())
    }
}

const BEGIN: &str = "<!-- bench-http:begin -->";
const END: &str = "<!-- bench-http:end -->";

/// `doc` with the text between the markers replaced by `section`, or `section` appended under
/// a heading of its own.
pub fn replace_section(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{section}{}", &doc[..a], &doc[b + END.len()..])
        }
        _ => format!(
            "{}\n\n## HTTP: `make bench-http`\n\n{section}\n",
            doc.trim_end()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        let s = Stat::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of(&[1.0, 2.0, 4.0, 10.0]).unwrap().median, 3.0);
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn the_docs_section_is_replaced_in_place_or_appended() {
        let s = format!("{BEGIN}\nnew\n{END}");
        let doc = format!("# B\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n");
        assert_eq!(
            replace_section(&doc, &s),
            format!("# B\n\nbefore\n{s}\nafter\n")
        );
        let appended = replace_section("# B\n", &s);
        assert!(appended.starts_with("# B\n\n## HTTP: `make bench-http`\n\n"));
        assert!(appended.contains(&s));
        assert_eq!(replace_section(&appended, &s), appended);
    }
}
