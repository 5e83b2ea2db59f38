//! How the components behave at start-up: a bad filter configuration is refused by Envoy with
//! the bad field named, and a companion that cannot reach Hazelcast says so and keeps trying
//! until the cluster appears.

use std::time::Duration;

use hzcache_e2e::{free_port, unique, wait_until, Companion, Envoy, HazelcastMember};

fn refused(config: &str, field: &str) {
    let mut envoy = Envoy::spawn(config, free_port(), free_port()).expect("spawn envoy");
    wait_until(
        "envoy to refuse the filter",
        Duration::from_secs(60),
        || !envoy.process.is_running(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: envoy kept running with a bad config; log:\n{}",
            envoy.process.tail(30)
        )
    });
    let log = envoy.process.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("hzcache") && l.contains(field)),
        "no log line names `{field}`:\n{}",
        envoy.process.tail(30)
    );
}

#[test]
fn envoy_refuses_a_filter_config_with_an_unknown_field() {
    let config = hzcache_e2e::demo_filter_config()
        .unwrap()
        .replace("\"ttl_seconds\": 300", "\"ttl_secs\": 300");
    refused(&config, "ttl_secs");
}

#[test]
fn envoy_refuses_a_filter_config_with_a_bad_value() {
    let config = hzcache_e2e::demo_filter_config()
        .unwrap()
        .replace("\"timeout_ms\": 5000", "\"timeout_ms\": 0");
    refused(&config, "timeout_ms");
}

#[test]
fn envoy_refuses_a_filter_config_that_is_not_json() {
    refused("{ \"rules\": [ ", "configuration");
}

#[test]
fn companion_without_hazelcast_says_so_and_keeps_retrying_until_it_appears() {
    let port = free_port();
    let cluster = unique("late");
    let mut companion =
        Companion::start(&cluster, &[format!("127.0.0.1:{port}")], &[], &[]).expect("companion");
    companion
        .process
        .wait_for_log(Duration::from_secs(20), |log| {
            log.matches("cannot reach the Hazelcast cluster").count() >= 2
        })
        .expect("the companion reports the unreachable cluster, more than once");
    assert!(companion.process.is_running(), "it must keep running");
    let ready = hzcache_e2e::probe_get(
        std::net::SocketAddr::from(([127, 0, 0, 1], companion.port)),
        "/readyz",
    );
    assert_eq!(ready.map(|r| r.0), Some(503));

    let _member = HazelcastMember::start_in(&cluster, port, &[port]).expect("member");
    companion
        .wait_ready(Duration::from_secs(30))
        .expect("connects once the member is up");
    assert!(companion
        .process
        .log_text()
        .contains("connected to Hazelcast"));
}

#[test]
fn companion_refuses_a_bad_setting_naming_it() {
    let bin = hzcache_e2e::companion_bin().unwrap();
    let out = std::process::Command::new(bin)
        .args(["--max-entry-bytes", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-entry-bytes"), "{err}");
}
