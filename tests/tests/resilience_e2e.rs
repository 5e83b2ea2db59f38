//! The circuit breaker measures the companion only (issue 8), through the real Envoy, companion
//! and Hazelcast:
//!
//! - no sequence of client requests opens it (heads the callout could not carry, bytes a URI
//!   may not hold);
//! - an origin that hangs neither switches the cache off nor keeps stale-if-error from being
//!   served with the shipped timeouts (the companion answers inside the filter's deadline);
//! - a frozen companion costs a request about a second, not the callout timeout, and hits come
//!   back within seconds of it answering again;
//! - a frozen Hazelcast member costs a request the companion's lookup bound
//!   (`--lookup-timeout-ms`), not the Hazelcast timeout, and opens no breaker.
//!
//! `make faults` runs the same kinds of faults under load, with more scenarios.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hzcache_e2e::raw::{get_head, raw, stat};
use hzcache_e2e::{
    demo_filter_config, get, unique, Companion, Envoy, HazelcastMember, Origin, OriginReply, Stack,
};

const BREAKER_OPEN: &str = "wasmcustom.hzcache.breaker_open";

/// An origin that can be made to hang (answer only after 30 s). Paths under `/fresh/` are
/// fresh for 5 minutes, `/sie/` for 1 s with a 5-minute stale-if-error, the rest uncacheable.
fn switchable_origin() -> (Origin, Arc<AtomicBool>) {
    let hang = Arc::new(AtomicBool::new(false));
    let h = hang.clone();
    let origin = Origin::start(move |seen| {
        let cc = if seen.path_and_query.starts_with("/fresh/") {
            "max-age=300"
        } else if seen.path_and_query.starts_with("/sie/") {
            "max-age=1, stale-if-error=300"
        } else {
            "no-store"
        };
        let mut reply =
            OriginReply::ok(format!("body of {}", seen.path_and_query)).header("cache-control", cc);
        if h.load(Ordering::SeqCst) {
            reply.delay = Duration::from_secs(30);
        }
        reply
    })
    .expect("origin");
    (origin, hang)
}

fn breaker_trips(stack: &Stack) -> u64 {
    stat(&stack.envoy.stats(), BREAKER_OPEN).unwrap_or(0)
}

fn warm(stack: &Stack, path: &str) {
    let first = get(&stack.url(path)).unwrap();
    assert_eq!(first.cache(), "MISS", "{path}");
    assert_eq!(get(&stack.url(path)).unwrap().cache(), "HIT", "{path}");
}

#[test]
fn no_sequence_of_client_requests_opens_the_breaker() {
    let (origin, _) = switchable_origin();
    let stack = Stack::start(origin).expect("stack");
    let fresh = format!("/fresh/{}", unique("f"));
    warm(&stack, &fresh);
    let many: Vec<Vec<u8>> = (0..60)
        .map(|i| format!("accept: text/x-{i}").into_bytes())
        .chain((0..30).map(|i| format!("x-junk-{i}: {i}").into_bytes()))
        .collect();
    let hostile: Vec<Vec<u8>> = vec![
        get_head(b"/p/many", "hostile.example", &many),
        get_head(b"/p?a=\"b\"", "hostile.example", &[]),
        get_head(b"/p<x", "hostile.example", &[]),
        get_head(b"/p`x", "hostile.example", &[]),
        get_head(b"/p?a={b}|c^d", "hostile.example", &[]),
        get_head(
            b"/p/big",
            "hostile.example",
            &[format!("user-agent: {}", "u".repeat(40_000)).into_bytes()],
        ),
    ];
    // Far more than the threshold (5 in a row), repeated across both workers.
    for _ in 0..8 {
        for head in &hostile {
            let status = raw(stack.envoy.port, head, b"");
            assert!(
                status != 0,
                "Envoy answered: {}",
                String::from_utf8_lossy(&head[..40])
            );
        }
    }
    assert_eq!(breaker_trips(&stack), 0, "a client opened the breaker");
    assert_eq!(get(&stack.url(&fresh)).unwrap().cache(), "HIT");
    warm(&stack, &format!("/fresh/{}", unique("after")));
}

#[test]
fn a_hanging_origin_neither_turns_the_cache_off_nor_keeps_stale_if_error_away() {
    let (origin, hang) = switchable_origin();
    let stack = Stack::start(origin).expect("stack");
    let fresh = format!("/fresh/{}", unique("f"));
    let sie = format!("/sie/{}", unique("s"));
    warm(&stack, &fresh);
    assert_eq!(get(&stack.url(&sie)).unwrap().cache(), "MISS");
    std::thread::sleep(Duration::from_millis(1500));
    hang.store(true, Ordering::SeqCst);

    // Misses on the hanging origin: each costs its own request the wait, nothing more.
    let misses: Vec<_> = (0..8)
        .map(|i| {
            let url = stack.url(&format!("/hang/{}-{i}", unique("m")));
            std::thread::spawn(move || get(&url).map(|r| r.status))
        })
        .collect();
    let started = Instant::now();
    let stale = get(&stack.url(&sie)).unwrap();
    let waited = started.elapsed();
    assert_eq!(
        stale.cache(),
        "STALE",
        "stale-if-error with the shipped timeouts"
    );
    assert!(
        waited < Duration::from_secs(5),
        "answered within the filter's deadline, took {waited:?}"
    );
    for _ in 0..20 {
        let started = Instant::now();
        let r = get(&stack.url(&fresh)).unwrap();
        assert_eq!(r.cache(), "HIT", "fresh entries never depend on the origin");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        breaker_trips(&stack),
        0,
        "the origin's hang is not the companion's failure"
    );
    hang.store(false, Ordering::SeqCst);
    for m in misses {
        // These waited on the hanging origin (and the client's own 10 s limit): the origin's
        // failure, which nothing stored could answer.
        let _ = m.join();
    }
    assert_eq!(breaker_trips(&stack), 0);
}

#[test]
fn a_frozen_companion_costs_a_second_and_hits_come_back_within_seconds() {
    let (origin, _) = switchable_origin();
    let stack = Stack::start(origin).expect("stack");
    let fresh = format!("/fresh/{}", unique("f"));
    warm(&stack, &fresh);
    stack.companion.process.signal(libc::SIGSTOP);
    let frozen_at = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while frozen_at.elapsed() < Duration::from_secs(7) {
        let started = Instant::now();
        let r = get(&stack.url(&format!("/other/{}", unique("o")))).unwrap();
        assert_eq!(r.status, 200, "failed open to the origin");
        served += 1;
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        slowest < Duration::from_millis(2500),
        "a stalled companion cost {slowest:?} (callout timeout 5 s); {served} requests"
    );
    stack.companion.process.signal(libc::SIGCONT);
    let thawed = Instant::now();
    // Hits are back when several in a row are hits (both workers).
    let mut in_a_row = 0;
    while in_a_row < 6 {
        assert!(
            thawed.elapsed() < Duration::from_secs(5),
            "hits did not resume within 5 s of the companion answering again"
        );
        in_a_row = if get(&stack.url(&fresh)).unwrap().cache() == "HIT" {
            in_a_row + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "slowest request while frozen: {slowest:?}; hits back {:?} after SIGCONT",
        thawed.elapsed()
    );
}

/// A member that stops answering (a long GC pause, a frozen VM) holds the reads of its
/// partitions until the Hazelcast timeout (3 s); the companion bounds a request's lookup by
/// `--lookup-timeout-ms` (1 s by default) and then lets it go upstream without the cache
/// (`pass`), which is no failure of the companion's, so the breaker stays closed.
#[test]
fn a_frozen_member_costs_a_request_the_lookup_bound_not_the_hazelcast_timeout() {
    let (origin, _) = switchable_origin();
    // A member of its own: the binary's shared one serves the other tests.
    let member = HazelcastMember::start_single().expect("member");
    let companion = Companion::start(
        &member.cluster_name,
        &[member.address()],
        &[origin.origin_arg()],
        &[],
    )
    .expect("companion");
    companion.wait_ready(Duration::from_secs(30)).unwrap();
    let envoy = Envoy::start(&demo_filter_config().unwrap(), origin.port, companion.port).unwrap();
    let fresh = format!("/fresh/{}", unique("f"));
    assert_eq!(get(&envoy.url(&fresh)).unwrap().cache(), "MISS");
    assert_eq!(get(&envoy.url(&fresh)).unwrap().cache(), "HIT");

    member.process.signal(libc::SIGSTOP);
    let mut slowest = Duration::ZERO;
    for _ in 0..4 {
        let path = format!("/other/{}", unique("o"));
        let started = Instant::now();
        let r = get(&envoy.url(&path)).unwrap();
        slowest = slowest.max(started.elapsed());
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("body of {path}"), "the origin's answer");
    }
    let frozen_hit = Instant::now();
    let r = get(&envoy.url(&fresh)).unwrap();
    let fresh_took = frozen_hit.elapsed();
    member.process.signal(libc::SIGCONT);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("body of {fresh}"));
    assert!(
        slowest < Duration::from_millis(2500) && fresh_took < Duration::from_millis(2500),
        "a frozen member cost {slowest:?} / {fresh_took:?} (lookup bound 1 s, Hazelcast timeout 3 s)"
    );
    assert_eq!(
        stat(&envoy.stats(), BREAKER_OPEN).unwrap_or(0),
        0,
        "a slow member is not the companion's failure"
    );
    let metrics = hzcache_e2e::probe_get(hzcache_e2e::loopback(companion.port), "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default();
    assert!(
        metrics.contains("hzcache_errors_total{kind=\"hazelcast_timeout\"}"),
        "{metrics}"
    );
    // Thawed, the entry answers from the cache again.
    let thawed = Instant::now();
    while get(&envoy.url(&fresh)).unwrap().cache() != "HIT" {
        assert!(
            thawed.elapsed() < Duration::from_secs(15),
            "no hit after SIGCONT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
