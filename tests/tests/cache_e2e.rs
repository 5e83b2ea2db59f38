//! The first real path, end to end: client → Envoy → filter → companion → Hazelcast (→ origin),
//! with the real Envoy, a real Hazelcast member and the real companion on 127.0.0.1.

use std::time::Duration;

use hazelcast_client::Value;
use hzcache_e2e::{get, get_with, shared_client, unique, Origin, OriginReply, Stack};

fn counting_origin() -> Origin {
    Origin::start(|seen| {
        OriginReply::ok(format!("origin body for {}", seen.path_and_query))
            .header("cache-control", "max-age=60")
            .header("etag", "\"e1\"")
    })
    .expect("origin")
}

#[test]
fn miss_then_hit_is_served_from_hazelcast() {
    let stack = Stack::start(counting_origin()).expect("stack");
    let path = format!("/page/{}?b=2&a=1", unique("p"));

    let first = get(&stack.url(&path)).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.cache(), "MISS");
    // The origin is asked for the key's canonical request: parameters ordered by name.
    assert_eq!(
        first.text(),
        format!("origin body for {}", hzcache_e2e::origin::canonical(&path))
    );
    assert_eq!(stack.origin.count(&path), 1);

    let second = get(&stack.url(&path)).unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(second.cache(), "HIT", "headers: {:?}", second.headers);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("etag"), Some("\"e1\""));
    assert_eq!(second.header("content-type"), Some("text/plain"));
    let age: u64 = second.header("age").expect("age on a hit").parse().unwrap();
    assert!(age <= 60);
    assert_eq!(
        stack.origin.count(&path),
        1,
        "the hit must not reach the origin"
    );

    // The default key normalises the query: the same parameters in another order hit too.
    let reordered = path.replace("b=2&a=1", "a=1&b=2");
    let third = get(&stack.url(&reordered)).unwrap();
    assert_eq!(third.cache(), "HIT");
    assert_eq!(stack.origin.count(&reordered), 1, "the one request above");
}

#[test]
fn data_route_caches_by_the_key_parameter_as_a_plain_string() {
    let stack = Stack::start(
        Origin::start(|seen| {
            OriginReply::ok(format!("value computed for {}", seen.path_and_query))
        })
        .unwrap(),
    )
    .expect("stack");
    let key = unique("abc");

    let first = get(&stack.url(&format!("/data?key={key}&trace=1"))).unwrap();
    assert_eq!(first.cache(), "MISS");
    let body = first.text();

    // Other parameters do not change the key: this is served from the first answer.
    let second = get(&stack.url(&format!("/data?trace=2&key={key}"))).unwrap();
    assert_eq!(second.cache(), "HIT");
    assert_eq!(second.text(), body);
    assert_eq!(
        second.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(stack.origin.count(&format!("/data?trace=2&key={key}")), 0);

    // In Hazelcast the entry is the plain String an application would have written.
    let map = shared_client().map("cache");
    let stored = hzcache_e2e::client::runtime()
        .block_on(map.get(&key))
        .unwrap();
    assert_eq!(stored, Some(Value::String(body)));
}

#[test]
fn a_request_without_the_key_parameter_is_not_cached() {
    let stack = Stack::start(counting_origin()).expect("stack");
    let path = format!("/data?other={}", unique("x"));
    for _ in 0..2 {
        let r = get(&stack.url(&path)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.cache(), "");
    }
    assert_eq!(stack.origin.count(&path), 2);
}

#[test]
fn private_and_no_store_responses_are_never_served_from_cache() {
    let stack = Stack::start(
        Origin::start(|seen| {
            let cc = if seen.path_and_query.contains("private") {
                "private, max-age=60"
            } else {
                "no-store"
            };
            OriginReply::ok("personal").header("cache-control", cc)
        })
        .unwrap(),
    )
    .expect("stack");
    for kind in ["private", "nostore"] {
        let path = format!("/{kind}/{}", unique("u"));
        for _ in 0..2 {
            let r = get(&stack.url(&path)).unwrap();
            assert_eq!(r.cache(), "MISS", "{kind}");
        }
        assert_eq!(
            stack.origin.count(&path),
            2,
            "{kind}: every request reaches the origin"
        );
    }
}

#[test]
fn client_cannot_steer_the_cache_with_control_headers() {
    let stack = Stack::start(counting_origin()).expect("stack");
    let path = format!("/steer/{}", unique("s"));
    let victim = format!("/victim/{}", unique("v"));
    // The victim's real key in the real map: what the filter computes for `victim`.
    let victim_key = format!("http://127.0.0.1:{}{victim}", stack.envoy.port);
    let map = shared_client().map("hzcache");
    let stored = |key: &str| {
        hzcache_e2e::client::runtime()
            .block_on(map.get(key))
            .unwrap()
            .is_some()
    };
    // The client tries to store its answer under the victim's key, and to have the companion
    // fetch another path, through the control headers of the callout.
    let r = get_with(
        &stack.url(&path),
        &[
            ("x-hzcache-key", &victim_key),
            ("x-hzcache-map", "hzcache"),
            ("x-hzcache-request-path", &victim),
            ("x-hzcache-ttl", "3600"),
        ],
    )
    .unwrap();
    assert_eq!(r.cache(), "MISS");
    assert_eq!(r.text(), format!("origin body for {path}"));
    assert!(
        !stored(&victim_key),
        "nothing was written under the victim's key"
    );
    let v = get(&stack.url(&victim)).unwrap();
    assert_eq!(v.cache(), "MISS");
    assert_eq!(v.text(), format!("origin body for {victim}"));
    // The key checked above is the real one: the victim's own request stored under it.
    assert!(
        stored(&victim_key),
        "the victim's entry is under {victim_key}"
    );
}

#[test]
fn post_passes_through_untouched() {
    let stack = Stack::start(counting_origin()).expect("stack");
    let path = format!("/form/{}", unique("f"));
    for _ in 0..2 {
        let r = hzcache_e2e::client::request("POST", &stack.url(&path), &[]).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.cache(), "");
    }
    assert_eq!(stack.origin.count(&path), 2);
}

#[test]
fn companion_down_fails_open() {
    let mut stack = Stack::start(counting_origin()).expect("stack");
    stack.companion.process.kill();
    let path = format!("/down/{}", unique("d"));
    for i in 1..=3 {
        let r = get(&stack.url(&path)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("origin body for {path}"));
        assert_eq!(
            r.cache(),
            "",
            "fail-open answers come straight from the origin"
        );
        assert_eq!(stack.origin.count(&path), i);
    }
}

#[test]
fn frozen_companion_times_out_and_fails_open() {
    let config = hzcache_e2e::demo_filter_config()
        .unwrap()
        .replace("\"timeout_ms\": 5000", "\"timeout_ms\": 300");
    assert!(config.contains("\"timeout_ms\": 300"));
    let stack = Stack::start_with(counting_origin(), &config).expect("stack");
    // SIGSTOP: the companion's sockets stay open but nothing answers, like a hung process.
    stack.companion.process.signal(libc::SIGSTOP);
    let path = format!("/frozen/{}", unique("z"));
    let started = std::time::Instant::now();
    let r = get(&stack.url(&path)).unwrap();
    stack.companion.process.signal(libc::SIGCONT);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("origin body for {path}"));
    assert_eq!(r.cache(), "");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fail-open took {:?}",
        started.elapsed()
    );
}

#[test]
fn slow_origin_miss_fails_open_and_still_fills_the_cache() {
    let config = hzcache_e2e::demo_filter_config()
        .unwrap()
        .replace("\"timeout_ms\": 5000", "\"timeout_ms\": 300");
    let origin = Origin::start(|seen| {
        let mut r = OriginReply::ok(format!("slow body for {}", seen.path_and_query))
            .header("cache-control", "max-age=60");
        r.delay = Duration::from_millis(800);
        r
    })
    .unwrap();
    let stack = Stack::start_with(origin, &config).expect("stack");
    let path = format!("/slow/{}", unique("s"));
    let first = get(&stack.url(&path)).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), format!("slow body for {path}"));
    assert_eq!(
        first.cache(),
        "",
        "the callout timed out, so the answer came upstream"
    );
    // The companion's own fetch went on and stored the entry.
    hzcache_e2e::wait_until("entry stored", Duration::from_secs(5), || {
        get(&stack.url(&path))
            .map(|r| r.cache() == "HIT")
            .unwrap_or(false)
    })
    .unwrap();
}

#[test]
fn head_on_the_data_route_is_answered_from_the_stored_value_without_a_body() {
    let stack = Stack::start(counting_origin()).expect("stack");
    let key = unique("head");
    let path = format!("/data?key={key}");
    let first = get(&stack.url(&path)).unwrap();
    assert_eq!(first.cache(), "MISS");
    let head = hzcache_e2e::client::request("HEAD", &stack.url(&path), &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.cache(), "HIT");
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").map(str::to_string),
        Some(first.body.len().to_string())
    );
    assert_eq!(stack.origin.count(&path), 1);
}

#[test]
fn a_method_the_owning_rule_does_not_cache_is_not_cached_by_a_later_rule() {
    // `data` caches only GET; the catch-all caches GET and HEAD. A HEAD under /data must go
    // upstream untouched, not be cached by the catch-all under another key and map.
    let config = hzcache_e2e::demo_filter_config().unwrap().replace(
        r#""path_prefix": "/data", "methods": ["GET", "HEAD"]"#,
        r#""path_prefix": "/data", "methods": ["GET"]"#,
    );
    assert!(config.contains(r#""path_prefix": "/data", "methods": ["GET"]"#));
    let stack = Stack::start_with(counting_origin(), &config).expect("stack");
    let path = format!("/data?key={}", unique("owned"));
    for i in 1..=2 {
        let head = hzcache_e2e::client::request("HEAD", &stack.url(&path), &[]).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.cache(), "", "HEAD under /data is not cached");
        assert_eq!(stack.origin.count(&path), i);
    }
}

#[test]
fn a_request_in_flight_when_the_companion_is_told_to_stop_still_completes() {
    let origin = Origin::start(|seen| {
        let mut r = OriginReply::ok(format!("slow body for {}", seen.path_and_query))
            .header("cache-control", "max-age=60");
        r.delay = Duration::from_millis(800);
        r
    })
    .unwrap();
    let mut stack = Stack::start(origin).expect("stack");
    let path = format!("/drain/{}", unique("d"));
    let url = stack.url(&path);
    let request = std::thread::spawn(move || get(&url));
    // Wait until the companion is fetching from the origin, then ask it to stop.
    hzcache_e2e::wait_until("origin reached", Duration::from_secs(5), || {
        stack.origin.count(&path) == 1
    })
    .unwrap();
    stack.companion.process.signal(libc::SIGTERM);
    let reply = request.join().unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.cache(),
        "MISS",
        "the companion drained the request instead of dropping it"
    );
    assert_eq!(reply.text(), format!("slow body for {path}"));
    hzcache_e2e::wait_until("companion exits", Duration::from_secs(15), || {
        !stack.companion.process.is_running()
    })
    .unwrap();
    assert!(stack.companion.process.log_text().contains("draining"));
}

#[test]
fn envoy_counts_hits_and_misses_in_its_own_stats() {
    let stack = Stack::start(counting_origin()).expect("stack");
    let path = format!("/stats/{}", unique("s"));
    assert_eq!(get(&stack.url(&path)).unwrap().cache(), "MISS");
    assert_eq!(get(&stack.url(&path)).unwrap().cache(), "HIT");
    let stats = stack.envoy.stats();
    let value = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("wasmcustom.hzcache.{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no wasmcustom.hzcache.{name} in Envoy's stats"))
    };
    assert_eq!(value("hit"), 1);
    assert_eq!(value("miss"), 1);
}
