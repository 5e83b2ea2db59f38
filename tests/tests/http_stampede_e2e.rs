//! Request coalescing end to end: 200 concurrent requests for one cold key reach the origin
//! once per companion — and once in total when two companions (behind two Envoys) share the
//! Hazelcast cluster — and every client gets the whole body.

use std::sync::{Arc, Barrier};

use hzcache_e2e::stack::{metric, programmable_origin, q, Fleet};
use hzcache_e2e::{get_with, unique, Reply};

const CLIENTS: usize = 200;
/// Bigger than one TCP segment, so a cut body would show.
const BODY: usize = 50_000;

/// Fires `CLIENTS` GETs at once, spread over the fleet's Envoys.
fn stampede(fleet: &Fleet, path: &str) -> Vec<Reply> {
    let start = Arc::new(Barrier::new(CLIENTS));
    let urls: Vec<String> = fleet.nodes.iter().map(|n| n.url(path)).collect();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (start, url) = (start.clone(), urls[i % urls.len()].clone());
            std::thread::spawn(move || {
                start.wait();
                // One Host for every Envoy, as behind a load balancer: the default key
                // includes the authority, and the Envoys listen on different ports.
                get_with(&url, &[("host", "shop.example")])
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread").expect("answer"))
        .collect()
}

fn cold_path() -> String {
    // The origin takes 1.5 s, so every request arrives while the first fetch is under way.
    format!(
        "/stampede/{}?h={}&size={BODY}&delay=1500",
        unique("s"),
        q("cache-control:max-age=60")
    )
}

fn assert_all_whole(replies: &[Reply]) {
    for r in replies {
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), BODY, "x-cache {}", r.cache());
        assert!(r
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == b"0123456789abcdef"[i % 16]));
        assert!(
            ["MISS", "HIT"].contains(&r.cache()),
            "x-cache {:?}",
            r.cache()
        );
    }
}

#[test]
fn a_stampede_on_one_companion_reaches_the_origin_once() {
    let fleet = Fleet::single(programmable_origin().unwrap(), &[]).expect("fleet");
    let path = cold_path();
    let replies = stampede(&fleet, &path);
    assert_all_whole(&replies);
    assert_eq!(fleet.origin.count(&path), 1);
    let waits = metric(
        &fleet.node().metrics(),
        "hzcache_coalesced_waits_total{scope=\"local\"}",
    );
    assert!(waits >= 1.0, "some requests waited for the first: {waits}");
}

#[test]
fn a_stampede_on_two_companions_sharing_the_cluster_reaches_the_origin_once() {
    let config = hzcache_e2e::demo_filter_config().unwrap();
    let fleet = Fleet::start(programmable_origin().unwrap(), 2, &config, &[]).expect("fleet");
    let path = cold_path();
    let replies = stampede(&fleet, &path);
    assert_all_whole(&replies);
    assert_eq!(
        fleet.origin.count(&path),
        1,
        "one origin fetch for the whole fleet"
    );
    let remote: f64 = fleet
        .nodes
        .iter()
        .map(|n| {
            metric(
                &n.metrics(),
                "hzcache_coalesced_waits_total{scope=\"cluster\"}",
            )
        })
        .sum();
    assert_eq!(remote, 1.0, "one companion waited on the other's marker");

    // An unsafe request through the second Envoy invalidates what the first one serves.
    let host = [("host", "shop.example")];
    assert_eq!(
        get_with(&fleet.nodes[0].url(&path), &host).unwrap().cache(),
        "HIT"
    );
    let r = hzcache_e2e::stack::send("DELETE", &fleet.nodes[1].url(&path), &host, b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        get_with(&fleet.nodes[0].url(&path), &host).unwrap().cache(),
        "MISS"
    );
}
