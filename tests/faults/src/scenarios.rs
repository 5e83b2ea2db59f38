//! The scenarios. Each warms its own keys (a tag unique to the scenario), runs the steady load
//! before, during and after its fault, brings the component back, measures, and checks its
//! targets. They share one stack; each begins by healing what an earlier one left down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hzcache_e2e::unique;

use crate::hostile;
use crate::load::{ErrorKind, Family, Http, KeySet, Load, Sample, CLIENT_TIMEOUT};
use crate::origin::Mode;
use crate::report::{latency, recovery, share, Recovery, ScenarioResult};
use crate::runtime::rt;
use crate::stack::FaultStack;

/// Every scenario, in the order the full run takes them (whole-cluster restart last: it loses
/// every entry, and it restarts the member the member-loss scenario killed anyway).
pub const ALL: [&str; 11] = [
    "hostile",
    "origin-5xx",
    "origin-hang",
    "origin-hang-body",
    "big-body",
    "stampede",
    "companion-kill",
    "companion-stop",
    "member-freeze",
    "member-kill",
    "cluster-restart",
];

/// The subset `make test` runs.
pub const SHORT: [&str; 3] = ["hostile", "origin-hang", "companion-kill"];

/// Hits must be continuous again this soon after the component is ready.
pub const RECOVERY_TARGET: Duration = Duration::from_secs(5);
/// Fresh keys must keep being served from the cache at least this often during origin faults.
pub const FRESH_HIT_TARGET: f64 = 0.99;

#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds of load before the fault, of fault, and after it.
    pub seconds: u64,
    /// Load requests per second over both Envoys.
    pub rate: u32,
    /// Longest wait for hits to be continuous after a recovery.
    pub max_recovery_wait: Duration,
    /// Keys written and read back in the member-loss scenario.
    pub member_loss_keys: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seconds: 4,
            rate: 120,
            max_recovery_wait: Duration::from_secs(25),
            member_loss_keys: 400,
        }
    }
}

impl Options {
    pub fn short() -> Options {
        Options {
            seconds: 2,
            rate: 100,
            max_recovery_wait: Duration::from_secs(14),
            member_loss_keys: 100,
        }
    }
    fn phase(&self) -> Duration {
        Duration::from_secs(self.seconds.max(1))
    }
}

pub struct Ctx<'a> {
    pub stack: &'a mut FaultStack,
    pub http: Http,
    pub opts: Options,
}

/// Runs one scenario by name; a scenario that cannot run is a failed result, not a panic.
pub fn run(ctx: &mut Ctx, name: &str) -> ScenarioResult {
    let started = Instant::now();
    eprintln!("faults: scenario {name} ...");
    let result = match name {
        "hostile" => hostile_burst(ctx),
        "origin-5xx" => origin_fault(ctx, name, Mode::Fail5xx),
        "origin-hang" => origin_fault(ctx, name, Mode::Hang),
        "origin-hang-body" => origin_fault(ctx, name, Mode::HangBody),
        "big-body" => big_body(ctx),
        "stampede" => stampede(ctx),
        "companion-kill" => companion_kill(ctx),
        "companion-stop" => companion_stop(ctx),
        "member-freeze" => member_freeze(ctx),
        "member-kill" => member_kill(ctx),
        "cluster-restart" => cluster_restart(ctx),
        other => Err(anyhow::anyhow!(
            "unknown scenario {other:?}; known: {}",
            ALL.join(", ")
        )),
    };
    // Whatever happened, the origin is normal again for the next scenario.
    ctx.stack.origin.set_mode(Mode::Normal);
    let mut result = result.unwrap_or_else(|e| ScenarioResult::broken(name, format!("{e:#}")));
    result.elapsed = started.elapsed();
    eprintln!(
        "faults: scenario {name}: {} in {:.1?}",
        if result.passed() { "pass" } else { "FAIL" },
        result.elapsed
    );
    result
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// GETs every cacheable key once (through alternating nodes, 16 at a time) so it is stored;
/// fails if any of them was not answered right.
fn warm(ctx: &Ctx, keys: &KeySet) -> Result<Vec<Sample>> {
    let paths: Vec<String> = keys.cacheable().cloned().collect();
    let samples = fetch_all(ctx, &paths, 16);
    let bad: Vec<&Sample> = samples.iter().filter(|s| !s.ok()).collect();
    if let Some(s) = bad.first() {
        bail!(
            "warming: {} of {} keys not answered right (first: {} status {} {:?})",
            bad.len(),
            samples.len(),
            s.path,
            s.status,
            s.error
        );
    }
    Ok(samples)
}

/// GETs every path (path `i` through node `i % nodes`), at most `parallel` at once.
fn fetch_all(ctx: &Ctx, paths: &[String], parallel: usize) -> Vec<Sample> {
    let bases = ctx.stack.bases();
    let http = ctx.http.clone();
    let epoch = Instant::now();
    let paths = paths.to_vec();
    rt().block_on(async move {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = Vec::with_capacity(paths.len());
        for (i, path) in paths.into_iter().enumerate() {
            let node = i % bases.len().max(1);
            let base = bases.get(node).cloned().unwrap_or_default();
            let (http, sem) = (http.clone(), sem.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                http.get(epoch, node, &base, &path).await
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            if let Ok(s) = t.await {
                out.push(s);
            }
        }
        out
    })
}

/// Waits until every Envoy answers a stored key as a HIT on every worker (16 requests in a row
/// on new connections, which Envoy spreads over its workers), at most 40 s: an earlier
/// scenario may have left a worker's breaker open, and its cool-down must not count against
/// the next scenario. Returns how long it waited.
fn settle(ctx: &Ctx) -> Result<Duration> {
    let started = Instant::now();
    let key = format!("/f/{}", unique("settle"));
    let _ = fetch_all(ctx, std::slice::from_ref(&key), 1);
    let ports: Vec<u16> = ctx.stack.nodes.iter().map(|n| n.envoy.port).collect();
    let head = format!("GET {key} HTTP/1.1\r\nhost: {}", crate::load::HOST).into_bytes();
    let deadline = started + Duration::from_secs(40);
    loop {
        let all_hit = ports.iter().all(|&port| {
            (0..16).all(|_| hostile::send_for_cache(port, &head).as_deref() == Some("HIT"))
        });
        if all_hit {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("the Envoys did not all answer HITs within 40 s before the scenario");
        }
        sleep(Duration::from_millis(250));
    }
}

/// Heals the stack and waits for every breaker to be closed.
fn prepare(ctx: &mut Ctx, r: &mut ScenarioResult) -> Result<()> {
    ctx.stack.heal()?;
    let waited = settle(ctx)?;
    if waited > Duration::from_secs(1) {
        r.notes.push(format!(
            "waited {:.1} s before the scenario for HITs on every Envoy worker",
            waited.as_secs_f64()
        ));
    }
    Ok(())
}

fn keys_for(name: &str) -> KeySet {
    KeySet::new(&unique(name), 40, 20, 10)
}

fn start_load(ctx: &Ctx, keys: &KeySet) -> Load {
    Load::start(
        &ctx.http,
        ctx.stack.bases(),
        keys.clone(),
        ctx.opts.rate,
        Instant::now(),
    )
}

fn breaker_trips(stack: &FaultStack) -> Vec<Option<u64>> {
    (0..stack.nodes.len())
        .map(|i| stack.filter_stat(i, "breaker_open"))
        .collect()
}

fn trips_between(before: &[Option<u64>], after: &[Option<u64>]) -> Option<u64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
        .sum()
}

/// Waits (load running) until hits have been continuous on every node for a few seconds after
/// `ready`, or `max` passes; the caller measures from the final samples.
fn await_recovery(
    load: &Load,
    nodes: usize,
    ready: Duration,
    max: Duration,
    good: fn(&Sample) -> bool,
) {
    let stable = Duration::from_secs(4);
    let until = ready + max;
    loop {
        sleep(Duration::from_millis(250));
        let now = load.now();
        if now >= until {
            return;
        }
        if let Some(r) = recovery(&load.snapshot(), nodes, ready, good) {
            if now >= ready + r + stable {
                return;
            }
        }
    }
}

/// What the `family` requests started in `[from, to)` that were not HITs got: `x-cache` (or
/// the error) and how many.
fn not_hits(samples: &[Sample], family: Family, from: Duration, to: Duration) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    let mut all = 0;
    for s in samples
        .iter()
        .filter(|s| s.family == family && s.start >= from && s.start < to)
    {
        all += 1;
        if s.is_hit() {
            continue;
        }
        let what = match s.error {
            Some(e) => format!("error {}", e.short()),
            None if s.cache.is_empty() => "no x-cache (origin via Envoy)".to_string(),
            None => s.cache.clone(),
        };
        *by.entry(what).or_default() += 1;
    }
    format!("{family:?} requests during the fault: {all}, not HIT: {by:?}")
}

fn measure_recovery(
    r: &mut ScenarioResult,
    samples: &[Sample],
    nodes: usize,
    ready: Duration,
    end: Duration,
    good: fn(&Sample) -> bool,
) {
    r.recovery = match recovery(samples, nodes, ready, good) {
        Some(d) => Recovery::After(d),
        None => Recovery::Never {
            observed: end.saturating_sub(ready),
        },
    };
    let (ok, measured) = match r.recovery {
        Recovery::After(d) => (d <= RECOVERY_TARGET, format!("{:.1} s", d.as_secs_f64())),
        _ => (false, "hits never continuous".to_string()),
    };
    r.check("hits resume <= 5 s after ready", ok, measured);
}

// ---------------------------------------------------------------------------------------------

/// The hostile requests, each repeated on both Envoys to try to open the breaker, while the
/// load runs; the breaker must not open and fresh keys must stay HITs.
fn hostile_burst(ctx: &mut Ctx) -> Result<ScenarioResult> {
    let mut r = ScenarioResult::new("hostile");
    prepare(ctx, &mut r)?;
    let keys = keys_for("hostile");
    let warmed = warm(ctx, &keys)?;
    let trips_before = breaker_trips(ctx.stack);
    let load = start_load(ctx, &keys);
    sleep(ctx.opts.phase());
    let burst_start = load.now();
    let tag = unique("hostile-burst");
    let requests = hostile::all(&format!("/f/{tag}"));
    const REPEAT: usize = 20;
    let ports: Vec<u16> = ctx.stack.nodes.iter().map(|n| n.envoy.port).collect();
    // One thread per Envoy; each kind is sent REPEAT times in a row (the breaker counts
    // consecutive failures per worker, so nothing of ours comes between them but the load).
    let statuses: Vec<(&'static str, u16)> = std::thread::scope(|s| {
        let handles: Vec<_> = ports
            .iter()
            .map(|&port| {
                let requests = &requests;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for h in requests {
                        for _ in 0..REPEAT {
                            out.push((h.name, hostile::send(port, &h.head)));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let burst_end = load.now();
    sleep(ctx.opts.phase().max(Duration::from_secs(3)));
    let end = load.now();
    let (samples, shed) = load.stop();
    let trips_after = breaker_trips(ctx.stack);

    r.count(&warmed, |_| false);
    r.count(&samples, |_| false);
    r.requests += statuses.len();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, s) in &statuses {
        *by_status.entry(*s).or_default() += 1;
    }
    let server_errors: Vec<String> = {
        let mut v: Vec<String> = statuses
            .iter()
            .filter(|(_, s)| *s >= 500)
            .map(|(n, s)| format!("{n} → {s}"))
            .collect();
        v.dedup();
        v
    };
    r.notes.push(format!(
        "{} hostile requests ({} kinds × {REPEAT} × {} Envoys) in {:.1} s, statuses {:?} (0 = closed without one); load shed {shed}",
        statuses.len(),
        requests.len(),
        ports.len(),
        (burst_end - burst_start).as_secs_f64(),
        by_status
    ));
    r.latency = latency(&samples, burst_start, burst_end);
    let (during, n) = share(&samples, Family::Fresh, burst_start, end, Sample::is_hit);
    r.fresh_hits = Some(during);
    r.check_errors();
    r.check(
        "no 5xx for a hostile request",
        server_errors.is_empty(),
        if server_errors.is_empty() {
            "none".to_string()
        } else {
            server_errors.join("; ")
        },
    );
    r.notes
        .push(not_hits(&samples, Family::Fresh, burst_start, end));
    let trips = trips_between(&trips_before, &trips_after);
    r.check(
        "breaker_open stays 0",
        trips == Some(0),
        format!(
            "{} trip(s) (wasmcustom.hzcache.breaker_open before {trips_before:?}, after {trips_after:?})",
            trips.map_or("unknown".into(), |t| t.to_string())
        ),
    );
    let (after_burst, m) = share(&samples, Family::Fresh, burst_end, end, Sample::is_hit);
    r.check(
        "fresh keys stay HITs after the burst",
        m > 0 && after_burst >= 1.0,
        format!(
            "{:.1} % of {m} after the burst, {:.1} % of {n} from its start",
            after_burst * 100.0,
            during * 100.0
        ),
    );
    Ok(r)
}

/// The origin fails (5xx), hangs before its headers, or hangs after them, for a while.
fn origin_fault(ctx: &mut Ctx, name: &str, mode: Mode) -> Result<ScenarioResult> {
    let mut r = ScenarioResult::new(name);
    prepare(ctx, &mut r)?;
    let keys = keys_for(name);
    let warmed = warm(ctx, &keys)?;
    // Let the short-lived keys go stale, so the fault meets stale entries.
    sleep(Duration::from_millis(1200));
    let trips_before = breaker_trips(ctx.stack);
    let load = start_load(ctx, &keys);
    sleep(ctx.opts.phase());
    let from = load.now();
    ctx.stack.origin.set_mode(mode);
    // A hang must outlast the client's timeout, or it is only a slow origin.
    let hold = match mode {
        Mode::Hang | Mode::HangBody => {
            (ctx.opts.phase() * 2).max(CLIENT_TIMEOUT + Duration::from_secs(2))
        }
        _ => ctx.opts.phase() * 2,
    };
    sleep(hold);
    ctx.stack.origin.set_mode(Mode::Normal);
    let to = load.now();
    sleep(ctx.opts.phase());
    let (samples, shed) = load.stop();
    let trips_after = breaker_trips(ctx.stack);

    // Only the origin can answer an uncached key; while it fails, its failures are excused.
    let excused = |s: &Sample| {
        s.family == Family::Uncached
            && s.start < to + Duration::from_millis(200)
            && s.end() >= from
            && matches!(
                s.error,
                Some(ErrorKind::Status5xx | ErrorKind::Timeout | ErrorKind::Truncated)
            )
    };
    r.count(&warmed, |_| false);
    r.count(&samples, excused);
    r.latency = latency(&samples, from, to);
    let (fresh, n) = share(&samples, Family::Fresh, from, to, Sample::is_hit);
    r.fresh_hits = Some(fresh);
    // A request that began during the fault but whose fetch finished after the origin came
    // back is rightly a MISS: the origin answered it.
    let (stale, m) = share(&samples, Family::StaleIfError, from, to, |s| {
        s.from_store() || (s.by_cache() && s.end() >= to)
    });
    r.check_errors();
    r.check(
        "fresh hits >= 99 % while the origin fails",
        n > 0 && fresh >= FRESH_HIT_TARGET,
        format!("{:.1} % of {n}", fresh * 100.0),
    );
    r.check(
        "stale-if-error served while the origin fails",
        m > 0 && stale >= FRESH_HIT_TARGET,
        format!(
            "{:.1} % of {m} stale-if-error requests from the store",
            stale * 100.0
        ),
    );
    r.notes.push(not_hits(&samples, Family::Fresh, from, to));
    r.notes
        .push(not_hits(&samples, Family::StaleIfError, from, to));
    let trips = trips_between(&trips_before, &trips_after);
    r.notes.push(format!(
        "origin {} for {:.1} s; breaker trips {}; load shed {shed}; origin requests {}",
        mode.name(),
        (to - from).as_secs_f64(),
        trips.map_or("unknown".into(), |t| t.to_string()),
        ctx.stack.origin.total()
    ));
    Ok(r)
}

/// A 5 MB origin body (over the companion's entry limit): passed through whole, every time.
fn big_body(ctx: &mut Ctx) -> Result<ScenarioResult> {
    let mut r = ScenarioResult::new("big-body");
    prepare(ctx, &mut r)?;
    let keys = keys_for("big-body");
    let warmed = warm(ctx, &keys)?;
    let trips_before = breaker_trips(ctx.stack);
    let load = start_load(ctx, &keys);
    sleep(ctx.opts.phase());
    let from = load.now();
    let tag = unique("big");
    let big: Vec<String> = (0..2).map(|i| format!("/big/{tag}/{i}")).collect();
    let mut extra = Vec::new();
    for _ in 0..4 {
        // Both keys through both Envoys at once.
        let round: Vec<String> = big.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
        extra.extend(fetch_all(ctx, &round, 4));
    }
    let to = load.now();
    sleep(ctx.opts.phase());
    let (samples, shed) = load.stop();
    let trips_after = breaker_trips(ctx.stack);
    r.count(&warmed, |_| false);
    r.count(&samples, |_| false);
    r.count(&extra, |_| false);
    r.latency = latency(&extra, Duration::ZERO, Duration::MAX);
    let (fresh, n) = share(&samples, Family::Fresh, from, to, Sample::is_hit);
    r.fresh_hits = Some(fresh);
    r.check_errors();
    let whole = extra.iter().filter(|s| s.ok()).count();
    r.check(
        "every 5 MB answer whole and right",
        whole == extra.len() && !extra.is_empty(),
        format!("{whole} of {}", extra.len()),
    );
    r.check(
        "fresh hits >= 99 % meanwhile",
        n > 0 && fresh >= FRESH_HIT_TARGET,
        format!("{:.1} % of {n}", fresh * 100.0),
    );
    let trips = trips_between(&trips_before, &trips_after);
    r.check(
        "breaker_open stays 0",
        trips == Some(0),
        trips.map_or("unknown".into(), |t| format!("{t} trip(s)")),
    );
    let counts: Vec<u64> = big.iter().map(|p| ctx.stack.origin.count(p)).collect();
    r.notes.push(format!(
        "{} requests for 2 keys of 5 MB; origin requests per key {counts:?} (the first costs two, the too-large marker spares the rest); x-cache {:?}; latency column = the 5 MB requests; load shed {shed}",
        extra.len(),
        extra.iter().map(|s| s.cache.as_str()).collect::<std::collections::BTreeSet<_>>()
    ));
    Ok(r)
}

/// 200 concurrent requests (100 per Envoy) for one cold key whose origin takes 800 ms.
fn stampede(ctx: &mut Ctx) -> Result<ScenarioResult> {
    let mut r = ScenarioResult::new("stampede");
    prepare(ctx, &mut r)?;
    let keys = keys_for("stampede");
    let warmed = warm(ctx, &keys)?;
    let load = start_load(ctx, &keys);
    sleep(ctx.opts.phase());
    let from = load.now();
    let cold = format!("/cold/{}", unique("stampede"));
    let paths: Vec<String> = (0..200).map(|_| cold.clone()).collect();
    let extra = fetch_all(ctx, &paths, 200);
    let to = load.now();
    sleep(ctx.opts.phase());
    let (samples, shed) = load.stop();
    r.count(&warmed, |_| false);
    r.count(&samples, |_| false);
    r.count(&extra, |_| false);
    r.latency = latency(&extra, Duration::ZERO, Duration::MAX);
    let (fresh, n) = share(&samples, Family::Fresh, from, to, Sample::is_hit);
    r.fresh_hits = Some(fresh);
    r.check_errors();
    r.check(
        "fresh hits >= 99 % meanwhile",
        n > 0 && fresh >= FRESH_HIT_TARGET,
        format!("{:.1} % of {n}", fresh * 100.0),
    );
    let origin = ctx.stack.origin.count(&cold);
    r.check(
        "one origin request for the cold key",
        origin == 1,
        format!(
            "{origin} origin requests for {} client requests",
            extra.len()
        ),
    );
    let ok = extra.iter().filter(|s| s.ok()).count();
    r.check(
        "every stampede request answered right",
        ok == paths.len(),
        format!("{ok} of {}", paths.len()),
    );
    let mut caches: BTreeMap<String, usize> = BTreeMap::new();
    for s in &extra {
        *caches.entry(s.cache.clone()).or_default() += 1;
    }
    r.notes.push(format!(
        "stampede x-cache {caches:?}; latency column = the stampede; load shed {shed}"
    ));
    Ok(r)
}

/// The shape of a component fault: load, `fault`, hold, `recover` (returns once the component
/// is ready again), measure the recovery of hits.
fn component_fault(
    ctx: &mut Ctx,
    name: &str,
    hold: Duration,
    fault: impl FnOnce(&mut FaultStack) -> Result<()>,
    recover: impl FnOnce(&mut FaultStack) -> Result<()>,
    good: fn(&Sample) -> bool,
) -> Result<(ScenarioResult, Vec<Sample>, Duration)> {
    let mut r = ScenarioResult::new(name);
    let waited = settle(ctx)?;
    if waited > Duration::from_secs(1) {
        r.notes.push(format!(
            "waited {:.1} s before the scenario for HITs on every Envoy worker",
            waited.as_secs_f64()
        ));
    }
    let keys = keys_for(name);
    let warmed = warm(ctx, &keys)?;
    let load = start_load(ctx, &keys);
    sleep(ctx.opts.phase());
    let from = load.now();
    fault(ctx.stack)?;
    sleep(hold);
    let recovered = recover(ctx.stack);
    let ready = load.now();
    if let Err(e) = recovered {
        let _ = load.stop();
        return Err(e.context(format!("{name}: the component did not come back")));
    }
    let nodes = ctx.stack.nodes.len();
    await_recovery(&load, nodes, ready, ctx.opts.max_recovery_wait, good);
    let end = load.now();
    let (samples, shed) = load.stop();
    r.count(&warmed, |_| false);
    r.count(&samples, |_| false);
    r.latency = latency(&samples, from, ready);
    r.fresh_hits = Some(share(&samples, Family::Fresh, from, ready, Sample::is_hit).0);
    r.check_errors();
    measure_recovery(&mut r, &samples, nodes, ready, end, good);
    r.notes.push(not_hits(&samples, Family::Fresh, from, ready));
    r.notes.push(format!(
        "fault at {:.1} s, ready again at {:.1} s (load time); load shed {shed}",
        from.as_secs_f64(),
        ready.as_secs_f64()
    ));
    Ok((r, samples, ready))
}

fn companion_kill(ctx: &mut Ctx) -> Result<ScenarioResult> {
    ctx.stack.heal()?;
    let hold = ctx.opts.phase();
    let (r, _, _) = component_fault(
        ctx,
        "companion-kill",
        hold,
        |s| {
            s.kill_companion(0);
            Ok(())
        },
        |s| s.restart_companion(0),
        Sample::is_hit,
    )?;
    Ok(r)
}

fn companion_stop(ctx: &mut Ctx) -> Result<ScenarioResult> {
    ctx.stack.heal()?;
    // Frozen for longer than the filter's callout timeout (5 s), so callouts time out.
    let hold = ctx.opts.phase().max(Duration::from_secs(8));
    let (r, _, _) = component_fault(
        ctx,
        "companion-stop",
        hold,
        |s| {
            s.signal_companion(0, libc::SIGSTOP);
            Ok(())
        },
        |s| {
            s.signal_companion(0, libc::SIGCONT);
            hzcache_e2e::wait_until(
                "companion ready after SIGCONT",
                Duration::from_secs(30),
                || s.companions_ready(),
            )
        },
        Sample::is_hit,
    )?;
    Ok(r)
}

fn member_freeze(ctx: &mut Ctx) -> Result<ScenarioResult> {
    ctx.stack.heal()?;
    // Frozen for longer than the companion's Hazelcast invocation timeout (3 s) and the
    // filter's callout timeout (5 s); far shorter than the members' heartbeat timeout, so the
    // member stays in the cluster.
    let hold = ctx.opts.phase().max(Duration::from_secs(8));
    let (r, _, _) = component_fault(
        ctx,
        "member-freeze",
        hold,
        |s| {
            s.signal_member(1, libc::SIGSTOP);
            Ok(())
        },
        |s| {
            s.signal_member(1, libc::SIGCONT);
            let n = s.cluster.ports.len();
            s.cluster.wait_size(n, Duration::from_secs(60))?;
            hzcache_e2e::wait_until("companions ready", Duration::from_secs(30), || {
                s.companions_ready()
            })
        },
        Sample::is_hit,
    )?;
    Ok(r)
}

/// Writes N keys through the stack, kills a member (SIGKILL), and reads every key back: each
/// must still be a HIT with its body (backup-count 1).
fn member_kill(ctx: &mut Ctx) -> Result<ScenarioResult> {
    ctx.stack.heal()?;
    // A breaker left open would turn the writes into fail-opens, which store nothing.
    settle(ctx)?;
    let tag = unique("member-kill-written");
    let written: Vec<String> = (0..ctx.opts.member_loss_keys)
        .map(|i| format!("/f/{tag}/{i}"))
        .collect();
    let writes = fetch_all(ctx, &written, 16);
    let not_stored: Vec<&Sample> = writes
        .iter()
        .filter(|s| !(s.ok() && s.cache == "MISS"))
        .collect();
    if !not_stored.is_empty() {
        bail!(
            "{} of {} keys were not stored by a MISS before the kill",
            not_stored.len(),
            writes.len()
        );
    }
    let hold = ctx.opts.phase();
    let (mut r, _, _) = component_fault(
        ctx,
        "member-kill",
        hold,
        |s| {
            s.cluster.kill(1);
            Ok(())
        },
        |s| {
            let n = s.cluster.live_count();
            s.cluster.wait_size(n, Duration::from_secs(60))?;
            hzcache_e2e::wait_until("companions ready", Duration::from_secs(30), || {
                s.companions_ready()
            })
        },
        Sample::is_hit,
    )?;
    r.count(&writes, |_| false);
    // Read every key back. A fail-open answer (x-cache absent: the companion could not read
    // Hazelcast just then) says nothing about the entry, so that key is asked again; a MISS
    // means the entry was gone (the companion fetched it again).
    let mut lost = Vec::new();
    let mut pending = written.clone();
    let mut reads = Vec::new();
    for _attempt in 0..10 {
        let answers = fetch_all(ctx, &pending, 16);
        pending.clear();
        for s in answers {
            if s.from_store() {
                // fine
            } else if s.ok() && s.cache == "MISS" {
                lost.push(s.path.clone());
            } else {
                pending.push(s.path.clone());
            }
            reads.push(s);
        }
        if pending.is_empty() {
            break;
        }
        sleep(Duration::from_millis(300));
    }
    r.count(&reads, |_| false);
    let unknown = pending.len();
    r.entries = Some((written.len(), lost.len() + unknown));
    r.check(
        "0 entries lost after one member's loss",
        lost.is_empty() && unknown == 0,
        format!(
            "{} of {} lost (MISS on read-back), {unknown} never answered from the cache",
            lost.len(),
            written.len()
        ),
    );
    r.check_errors_again();
    Ok(r)
}

fn cluster_restart(ctx: &mut Ctx) -> Result<ScenarioResult> {
    // No heal first: the restart brings every member back anyway.
    for i in 0..ctx.stack.nodes.len() {
        if ctx.stack.nodes[i].companion.is_none() {
            ctx.stack.restart_companion(i)?;
        }
    }
    let hold = ctx.opts.phase();
    // Every entry is gone after a whole-cluster restart, so a MISS (the companion fetching and
    // storing again) counts as the cache answering, as a HIT does.
    let (mut r, _, _) = component_fault(
        ctx,
        "cluster-restart",
        hold,
        |s| {
            s.cluster.kill_all();
            Ok(())
        },
        |s| s.cluster.start_all(),
        Sample::by_cache,
    )?;
    r.notes
        .push("recovery counts a MISS as the cache answering (every entry is lost)".into());
    Ok(r)
}

impl ScenarioResult {
    /// Re-derives the error checks after more samples were counted.
    fn check_errors_again(&mut self) {
        self.checks
            .retain(|c| c.target != "0 client-visible errors" && c.target != "0 wrong bodies");
        self.check_errors();
    }
}
