//! The origin-fetch marker (issue 12), in the local stack: the companion's origin fetch goes
//! through a second Envoy running the filter, as a mesh sidecar in front of the origin would.
//! Its valid mark passes it straight upstream (no second callout, no wait on the key already
//! in flight), and a client that forges a mark gets no bypass and no mark to the origin.

use std::time::{Duration, Instant};

use hzcache_e2e::raw::stat;
use hzcache_e2e::stack::{metric, start_on_lasting_thread};
use hzcache_e2e::{
    demo_filter_config, free_port, get, get_with, shared_member, unique, Companion, Envoy, Origin,
    OriginReply,
};

#[test]
fn the_companions_fetch_passes_the_sidecar_and_a_forged_mark_does_not() {
    let origin = Origin::start(|seen| {
        let marked = seen
            .headers
            .contains_key(hzcache_contract::ORIGIN_FETCH_HEADER);
        OriginReply::ok(format!("{} marked={marked}", seen.path_and_query))
            .header("cache-control", "max-age=60")
    })
    .expect("origin");
    let companion_port = free_port();
    let config = demo_filter_config().unwrap();
    // The sidecar in front of the origin, and the front Envoy the clients use; both call the
    // one companion, whose origin is the sidecar.
    let (sidecar, front) = start_on_lasting_thread({
        let config = config.clone();
        let origin_port = origin.port;
        move || {
            let sidecar = Envoy::start(&config, origin_port, companion_port).expect("sidecar");
            let front = Envoy::start(&config, sidecar.port, companion_port).expect("front");
            (sidecar, front)
        }
    });
    let member = shared_member();
    let companion = Companion::start_on(
        companion_port,
        &member.cluster_name,
        &[member.address()],
        &[format!("default=http://127.0.0.1:{}", sidecar.port)],
        &["--map", "hzcache=envelope", "--map", "cache=body:string"],
    )
    .expect("companion");
    companion.wait_ready(Duration::from_secs(30)).unwrap();
    let sidecar_bypass = |s: &Envoy| stat(&s.stats(), "wasmcustom.hzcache.bypass").unwrap_or(0);
    let fetches = || {
        metric(
            &companion_metrics(companion.port),
            "hzcache_requests_total{outcome=\"miss\"}",
        )
    };

    // A cold miss through the front Envoy: one callout, one origin fetch through the sidecar.
    let p = format!("/page/{}", unique("m"));
    let (bypass_before, misses_before) = (sidecar_bypass(&sidecar), fetches());
    let started = Instant::now();
    let r = get(&front.url(&p)).unwrap();
    let took = started.elapsed();
    assert_eq!(r.cache(), "MISS");
    assert!(
        r.text().ends_with("marked=false"),
        "the sidecar removed the mark before the origin: {}",
        r.text()
    );
    assert!(
        took < Duration::from_secs(1),
        "no wait on the key in flight (a second callout would wait for the first): {took:?}"
    );
    assert_eq!(
        fetches() - misses_before,
        1.0,
        "exactly one companion fetch"
    );
    assert_eq!(
        sidecar_bypass(&sidecar) - bypass_before,
        1,
        "the sidecar let the marked fetch straight upstream"
    );
    assert_eq!(origin.count(&p), 1);
    assert_eq!(get(&front.url(&p)).unwrap().cache(), "HIT");

    // A client forging a mark straight at the sidecar: no bypass, and the origin never sees it.
    let q = format!("/forged/{}", unique("f"));
    let forged = format!("v1.{}.{}", 1_700_000_000u64, "ab".repeat(32));
    for mark in [forged.as_str(), "x", callout_secret_guess()] {
        let bypass = sidecar_bypass(&sidecar);
        let r = get_with(
            &sidecar.url(&q),
            &[(hzcache_contract::ORIGIN_FETCH_HEADER, mark)],
        )
        .unwrap();
        assert_ne!(r.cache(), "", "{mark}: the request went through the cache");
        // The only bypass is the companion's own (marked) fetch for a miss.
        let expected = u64::from(r.cache() == "MISS");
        assert_eq!(
            sidecar_bypass(&sidecar) - bypass,
            expected,
            "{mark}: no bypass"
        );
        assert!(!r.text().contains("marked=true"), "{mark}: {}", r.text());
    }
}

/// A client cannot know the secret; what it might try is the secret's name or an old value.
fn callout_secret_guess() -> &'static str {
    "HZCACHE_CALLOUT_SECRET"
}

fn companion_metrics(port: u16) -> String {
    get(&format!("http://127.0.0.1:{port}/metrics"))
        .map(|r| r.text())
        .unwrap_or_default()
}
