//! The companion's memory under a burst of large misses: 500 concurrent misses for distinct
//! keys, each a 900 KiB body from a slow origin, sent straight to `/v1/fetch`. With the
//! in-flight body budget (`--max-inflight-body-bytes`) the companion's peak RSS stays within
//! a bound set by the budget, not by the number of requests, and the misses over the budget
//! are answered `pass` (the filter would send them upstream), never `error`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use hzcache_e2e::client::runtime;
use hzcache_e2e::origin::{Origin, OriginReply};
use hzcache_e2e::stack::metric;
use hzcache_e2e::{loopback, probe_get, shared_member, unique, Companion};

const MISSES: usize = 500;
/// Under the default 1 MiB entry limit, so every body may be stored.
const BODY: usize = 900 * 1024;
/// The budget under test: about 18 bodies at once.
const INFLIGHT_CAP: usize = 16 * 1024 * 1024;
/// The origin's think time: every request of the burst is in flight before the first body
/// arrives, so the budget, not luck, decides who fetches.
const ORIGIN_DELAY: Duration = Duration::from_millis(300);
/// MiB.
const MIB: u64 = 1024 * 1024;

/// The `/v1/fetch` callout the filter would send for `GET /big/NAME` on `memory.test`. The one
/// place the test builds a callout, so a header every `/v1/*` request needs goes here.
fn fetch_request(companion_port: u16, map: &str, name: &str) -> Request<Empty<Bytes>> {
    let path = format!("/big/{name}");
    Request::get(format!("http://127.0.0.1:{companion_port}/v1/fetch"))
        .header("x-hzcache-map", map)
        .header("x-hzcache-key", format!("memory.test{path}"))
        .header("x-hzcache-mode", "envelope")
        .header("x-hzcache-ttl", "0")
        .header("x-hzcache-origin", "default")
        .header("x-hzcache-request-method", "GET")
        .header("x-hzcache-request-path", &path)
        .header("x-hzcache-request-host", "memory.test")
        .header("x-hzcache-auth", hzcache_e2e::callout_secret())
        .body(Empty::new())
        .unwrap_or_else(|e| panic!("callout request: {e}"))
}

/// `VmHWM` (peak resident set) or `VmRSS` of `pid`, in bytes.
fn memory_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn a_burst_of_large_misses_keeps_the_companions_peak_memory_within_the_inflight_budget() {
    let member = shared_member();
    // Short-lived entries: the member's small test heap must not fill up with the burst.
    let body = Bytes::from(vec![b'm'; BODY]);
    let origin = Origin::start(move |_| {
        let mut r = OriginReply::ok(body.clone()).header("cache-control", "max-age=5");
        r.delay = ORIGIN_DELAY;
        r
    })
    .unwrap();
    let cap = INFLIGHT_CAP.to_string();
    let map = unique("memory");
    let companion = Companion::start(
        &member.cluster_name,
        &[member.address()],
        &[origin.origin_arg()],
        &[
            "--max-inflight-body-bytes",
            &cap,
            "--map",
            &format!("{map}=envelope"),
        ],
    )
    .unwrap();
    companion.wait_ready(Duration::from_secs(20)).unwrap();
    let (pid, port) = (companion.process.pid(), companion.port);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();

    // One miss first, so the base includes a warm companion: connections, buffers, the
    // Hazelcast client's proxies.
    runtime().block_on(async {
        let r = client
            .request(fetch_request(port, &map, "warm-up"))
            .await
            .unwrap();
        assert_eq!(r.headers()["x-hzcache-outcome"], "miss");
        r.into_body().collect().await.unwrap();
    });
    let base = memory_of(pid, "VmRSS");

    let started = std::time::Instant::now();
    let answers: Vec<(String, String, usize)> = runtime().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..MISSES {
            let (client, req) = (client.clone(), fetch_request(port, &map, &format!("k{i}")));
            tasks.spawn(async move {
                let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
                    .await
                    .unwrap_or_else(|_| panic!("miss {i}: no answer within 30 s"))
                    .unwrap_or_else(|e| panic!("miss {i}: {e}"));
                let header = |n: &str| {
                    resp.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let (outcome, reason) = (header("x-hzcache-outcome"), header("x-hzcache-reason"));
                let len = resp.into_body().collect().await.unwrap().to_bytes().len();
                (outcome, reason, len)
            });
        }
        let mut out = Vec::with_capacity(MISSES);
        while let Some(a) = tasks.join_next().await {
            out.push(a.unwrap());
        }
        out
    });
    let took = started.elapsed();
    let peak = memory_of(pid, "VmHWM");

    let misses = answers.iter().filter(|(o, _, _)| o == "miss").count();
    let passes = answers.iter().filter(|(o, _, _)| o == "pass").count();
    let metrics = probe_get(loopback(port), "/metrics").unwrap().1;
    eprintln!(
        "{MISSES} misses of {} KiB in {took:?}: {misses} miss, {passes} pass; companion RSS \
         {} MiB before, peak {} MiB (budget {} MiB)",
        BODY / 1024,
        base / MIB,
        peak / MIB,
        INFLIGHT_CAP as u64 / MIB
    );
    for (outcome, reason, len) in &answers {
        match outcome.as_str() {
            "miss" => assert_eq!(*len, BODY, "a miss carries the whole body"),
            "pass" => assert_eq!(reason, "busy", "passed for the budget, not for size"),
            other => panic!("a miss over the budget must pass, not answer {other:?}"),
        }
    }
    assert!(misses >= 1, "the budget fits some bodies");
    assert!(
        passes >= 1,
        "{MISSES} bodies cannot all fit {INFLIGHT_CAP} bytes"
    );
    assert_eq!(
        metric(&metrics, "hzcache_inflight_budget_passes_total"),
        passes as f64
    );
    // The bound: the base, plus the budget's bodies, plus the store's transient copies of them
    // (envelope, Hazelcast Data, request on the wire: three more at most), plus 64 MiB for a
    // thousand connections' buffers and tasks (500 from the test, 500 to the origin, each with
    // hyper's read and write buffers), the invalidation feed's ring and the allocator's slack.
    // Measured (debug build): 100–126 MiB with the 16 MiB budget; 1.7 GiB with no budget (all
    // 500 bodies and their copies).
    let bound = base + 4 * INFLIGHT_CAP as u64 + 64 * MIB;
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB (base {} MiB + 4 × {} MiB budget + 64 MiB)",
        peak / MIB,
        bound / MIB,
        base / MIB,
        INFLIGHT_CAP as u64 / MIB
    );
}
