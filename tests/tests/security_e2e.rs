//! Security end to end (issue 7), through the real Envoy, companion and Hazelcast: each test
//! attempts an attack and shows it fails, and that another client's next request still gets
//! the right answer.
//!
//! - The companion is no open door into Hazelcast: `/v1/*` needs the callout secret (401
//!   without it, nothing read or written), a map it does not serve is refused (403), and it
//!   will not listen beyond loopback without a secret.
//! - Nothing the key ignores reaches the origin: paths, repeated parameters, other
//!   parameters, `X-Forwarded-*` and override headers.
//! - Requests with cookies are not shared unless the rule says how.
//! - Secrets and query values stay out of logs above debug and out of the command line; JSON
//!   logs at trace level are JSON lines that hold no secret and no origin-fetch mark.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use hazelcast_client::{Ttl, Value};
use hzcache_e2e::stack::{metric, send, start_on_lasting_thread, Fleet};
use hzcache_e2e::{
    callout_secret, companion_bin, get, get_with, shared_client, unique, Origin, OriginReply,
};

/// An origin whose answers say which request it saw (path and query as received, the
/// forwarded host and cookie it was given) and are cacheable for a minute.
fn echo_origin() -> Origin {
    static N: AtomicU32 = AtomicU32::new(0);
    Origin::start(|seen| {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let header = |name: &str| {
            seen.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        let body = format!(
            "{} #{n} xfh={} cookie={}",
            seen.path_and_query,
            header("x-forwarded-host"),
            header("cookie")
        );
        OriginReply::ok(body).header("cache-control", "public, max-age=60")
    })
    .expect("origin")
}

/// One node with the demo's rules plus a cookie-keyed and a cookie-ignoring rule.
fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        start_on_lasting_thread(|| {
            Fleet::single_with_rules(
                echo_origin(),
                serde_json::json!([
                    { "name": "lang", "match": { "path_prefix": "/lang/" },
                      "cookies": { "key": ["lang"] } },
                    { "name": "anon", "match": { "path_prefix": "/anon/" }, "cookies": "ignore" }
                ]),
                &[],
            )
            .expect("fleet")
        })
    })
}

/// The control headers of a `/v1/fetch` for `key` in `map` (`mode` envelope or body), with
/// `auth` as the credential (`None`: none sent).
fn fetch_call(map: &str, key: &str, mode: &str, auth: Option<&str>) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = [
        ("x-hzcache-map", map),
        ("x-hzcache-key", key),
        ("x-hzcache-mode", mode),
        ("x-hzcache-ttl", "60"),
        ("x-hzcache-request-method", "GET"),
        ("x-hzcache-request-path", "/anything"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    if let Some(a) = auth {
        h.push(("x-hzcache-auth".into(), a.into()));
    }
    h
}

fn call(node_url: &str, method: &str, headers: &[(String, String)]) -> hzcache_e2e::Reply {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    send(method, node_url, &h, b"").expect("companion answers")
}

fn put(map: &str, key: &str, value: &str) {
    let m = shared_client().map(map);
    hzcache_e2e::client::runtime()
        .block_on(m.set(
            key,
            &Value::String(value.into()),
            Ttl::After(Duration::from_secs(300)),
        ))
        .expect("set");
}

fn read(map: &str, key: &str) -> Option<Value> {
    let m = shared_client().map(map);
    hzcache_e2e::client::runtime()
        .block_on(m.get(key))
        .expect("get")
}

#[test]
fn the_companion_answers_no_callout_without_the_secret() {
    let f = fleet();
    let node = f.node();
    let key = unique("secret-value");
    put("cache", &key, "the application's private value");
    let fetch = node.companion_url("/v1/fetch");
    let before = metric(
        &node.metrics(),
        "hzcache_errors_total{kind=\"unauthorized\"}",
    );

    for auth in [None, Some("wrong-secret-0123456789"), Some("")] {
        let r = call(&fetch, "GET", &fetch_call("cache", &key, "body", auth));
        assert_eq!(r.status, 401, "{auth:?}");
        assert!(
            !r.text().contains("private value"),
            "{auth:?}: {}",
            r.text()
        );
    }
    // Invalidation without the secret deletes nothing.
    let inv = vec![("x-hzcache-invalidate".to_string(), format!("cache {key}"))];
    let r = call(&node.companion_url("/v1/invalidate"), "POST", &inv);
    assert_eq!(r.status, 401);
    assert!(
        read("cache", &key).is_some(),
        "the entry must still be there"
    );
    let after = metric(
        &node.metrics(),
        "hzcache_errors_total{kind=\"unauthorized\"}",
    );
    assert!(
        after >= before + 4.0,
        "refusals are counted: {before} -> {after}"
    );

    // The same call with the secret is served: the refusals above were about the credential.
    let r = call(
        &fetch,
        "GET",
        &fetch_call("cache", &key, "body", Some(callout_secret())),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "the application's private value");
    // And a client going through Envoy still gets its answer from the cache.
    let through = get(&f.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(through.cache(), "HIT");
    assert_eq!(through.text(), "the application's private value");
}

#[test]
fn a_map_the_companion_does_not_serve_is_refused_and_untouched() {
    let f = fleet();
    let node = f.node();
    let key = unique("foreign");
    put("sessions", &key, "someone's session");
    let fetch = node.companion_url("/v1/fetch");
    let secret = Some(callout_secret());
    let before = metric(
        &node.metrics(),
        "hzcache_errors_total{kind=\"forbidden_map\"}",
    );

    let r = call(&fetch, "GET", &fetch_call("sessions", &key, "body", secret));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("someone's"), "{}", r.text());
    // An allowed map in another mode than the companion serves it is refused too.
    let r = call(&fetch, "GET", &fetch_call("hzcache", &key, "body", secret));
    assert_eq!(r.status, 403, "{}", r.text());
    let inv = vec![
        ("x-hzcache-auth".to_string(), callout_secret().to_string()),
        (
            "x-hzcache-invalidate".to_string(),
            format!("sessions {key}"),
        ),
    ];
    let r = call(&node.companion_url("/v1/invalidate"), "POST", &inv);
    assert_eq!(r.status, 403);
    assert_eq!(
        read("sessions", &key),
        Some(Value::String("someone's session".into())),
        "nothing was deleted"
    );
    let after = metric(
        &node.metrics(),
        "hzcache_errors_total{kind=\"forbidden_map\"}",
    );
    assert!(after >= before + 3.0, "{before} -> {after}");
}

#[test]
fn a_filter_with_the_wrong_secret_fails_open_and_serves_nothing_from_the_cache() {
    let f = fleet();
    let key = unique("k");
    put("cache", &key, "stored value");
    // An Envoy whose filter has another secret than the companion.
    let wrong = start_on_lasting_thread({
        let origin_port = f.origin.port;
        let companion_port = f.node().companion.port;
        move || {
            hzcache_e2e::Envoy::start_with_secret(
                &hzcache_e2e::demo_filter_config().unwrap(),
                origin_port,
                companion_port,
                "a-different-secret-0123456789",
            )
            .expect("envoy")
        }
    });
    let r = get(&wrong.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.cache(), "", "failed open: the origin answered");
    assert!(r.text().starts_with("/data?key="), "{}", r.text());
}

#[test]
fn the_companion_will_not_listen_beyond_loopback_without_a_secret_nor_take_one_in_argv() {
    let run = |args: &[&str], secret: Option<&str>| {
        let mut cmd = std::process::Command::new(companion_bin().unwrap());
        cmd.env_clear().args(args).arg("--check-config");
        if let Some(s) = secret {
            cmd.env("HZCACHE_CALLOUT_SECRET", s);
        }
        cmd.output().unwrap()
    };
    let out = run(&["--listen", "0.0.0.0:18090"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen") && err.contains("secret"), "{err}");
    let out = run(
        &["--listen", "0.0.0.0:18090"],
        Some("a-long-enough-secret-123"),
    );
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("a-long-enough-secret"), "{shown}");
    // A secret on the command line is refused, never used.
    let out = run(&["--admin-token", "an-admin-token-0123456789"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_parameter_rule_fetches_only_its_canonical_request() {
    let f = fleet();
    let key = unique("k");
    // Paths under the prefix that are not the rule's path are not cached under the key.
    for other in [format!("/database?key={key}"), format!("/data/x?key={key}")] {
        let r = get(&f.url(&other)).unwrap();
        assert_eq!(
            r.cache(),
            "",
            "{other} must not be answered under key {key}"
        );
    }
    // Other parameters and a second key parameter never reach the origin.
    let first = get(&f.url(&format!("/data?x=1&key={key}&key=evil"))).unwrap();
    assert_eq!(first.cache(), "MISS");
    assert_eq!(
        f.origin.requests_for("/data"),
        vec![format!("/data?key={key}")],
        "the origin saw exactly the canonical request"
    );
    let plain = get(&f.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(plain.cache(), "HIT");
    assert_eq!(plain.body, first.body);
    assert!(
        plain.text().starts_with(&format!("/data?key={key} ")),
        "{}",
        plain.text()
    );
}

#[test]
fn dot_segments_resolve_before_the_key_and_the_origin() {
    let f = fleet();
    let key = unique("dot");
    // Envoy normalises the path, so this is the catch-all rule's /x, never key `key` of /data.
    let r = get(&f.url(&format!("/data/../x-{key}?key={key}"))).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.text().starts_with(&format!("/x-{key}?key={key}")),
        "{}",
        r.text()
    );
    let data = get(&f.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(data.cache(), "MISS", "the /data entry was not poisoned");
    assert!(
        data.text().starts_with(&format!("/data?key={key} ")),
        "{}",
        data.text()
    );
}

#[test]
fn repeated_parameters_in_another_order_are_another_resource_across_envoys() {
    let origin = echo_origin();
    let two =
        Fleet::start(origin, 2, &hzcache_e2e::demo_filter_config().unwrap(), &[]).expect("fleet");
    let p = format!("/q-{}", unique("q"));
    // One site behind both Envoys, as behind a load balancer: the same Host on both.
    let on = |node: usize, query: &str| {
        get_with(
            &two.nodes[node].url(&format!("{p}?{query}")),
            &[("host", "shop.example")],
        )
        .unwrap()
    };
    let a = on(0, "a=1&a=2");
    let b = on(1, "a=2&a=1");
    assert_eq!((a.cache(), b.cache()), ("MISS", "MISS"));
    assert!(
        a.text().starts_with(&format!("{p}?a=1&a=2 ")),
        "{}",
        a.text()
    );
    assert!(
        b.text().starts_with(&format!("{p}?a=2&a=1 ")),
        "{}",
        b.text()
    );
    // Each order is still cached as itself, on either Envoy.
    let again = on(0, "a=2&a=1");
    assert_eq!(again.cache(), "HIT");
    assert_eq!(again.body, b.body);
    let again = on(1, "a=1&a=2");
    assert_eq!(again.cache(), "HIT");
    assert_eq!(again.body, a.body);
}

#[test]
fn forwarding_and_override_headers_never_reach_the_origin_of_a_cached_fetch() {
    let f = fleet();
    let p = format!("/page-{}", unique("fw"));
    let attack = get_with(
        &f.url(&p),
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "host=evil.example;proto=https"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-http-method-override", "DELETE"),
            ("x-host", "evil.example"),
        ],
    )
    .unwrap();
    assert_eq!(attack.cache(), "MISS");
    assert!(!attack.text().contains("evil"), "{}", attack.text());
    let seen = f.origin.last_headers(&p).expect("the origin was asked");
    for name in [
        "x-forwarded-host",
        "forwarded",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-host",
    ] {
        assert!(
            seen.get(name).is_none(),
            "{name} reached the origin: {seen:?}"
        );
    }
    // The scheme the key holds, not the client's claim.
    assert_eq!(
        seen.get("x-forwarded-proto").and_then(|v| v.to_str().ok()),
        Some("http")
    );
    let victim = get(&f.url(&p)).unwrap();
    assert_eq!(victim.cache(), "HIT");
    assert!(!victim.text().contains("evil"), "{}", victim.text());
}

#[test]
fn a_request_with_a_cookie_is_neither_stored_nor_answered_from_the_cache() {
    let f = fleet();
    let p = format!("/account-{}", unique("c"));
    // The page says it may be cached (a mistake many applications make on personal pages).
    let alice = get_with(&f.url(&p), &[("cookie", "session=alice")]).unwrap();
    assert_eq!(alice.cache(), "", "bypassed: no callout");
    assert!(
        alice.text().contains("cookie=session=alice"),
        "{}",
        alice.text()
    );
    let bob = get(&f.url(&p)).unwrap();
    assert_eq!(bob.cache(), "MISS", "alice's page was not stored");
    assert!(!bob.text().contains("alice"), "{}", bob.text());
    // Alice, with her cookie, is not served bob's cached page either.
    let alice_again = get_with(&f.url(&p), &[("cookie", "session=alice")]).unwrap();
    assert_eq!(alice_again.cache(), "");
    assert!(alice_again.text().contains("alice"));
}

#[test]
fn a_rule_can_key_by_named_cookies_or_ignore_them() {
    let f = fleet();
    let p = format!("/lang/{}", unique("l"));
    let de = get_with(&f.url(&p), &[("cookie", "session=alice; lang=de")]).unwrap();
    let fr = get_with(&f.url(&p), &[("cookie", "lang=fr; session=bob")]).unwrap();
    assert_eq!((de.cache(), fr.cache()), ("MISS", "MISS"));
    assert!(
        de.text().ends_with("cookie=lang=de"),
        "only the keyed cookie: {}",
        de.text()
    );
    assert!(fr.text().ends_with("cookie=lang=fr"), "{}", fr.text());
    let de2 = get_with(&f.url(&p), &[("cookie", "lang=de; session=carol")]).unwrap();
    assert_eq!(de2.cache(), "HIT");
    assert_eq!(de2.body, de.body);

    let p = format!("/anon/{}", unique("a"));
    let a = get_with(&f.url(&p), &[("cookie", "session=alice")]).unwrap();
    assert_eq!(a.cache(), "MISS");
    assert!(
        a.text().ends_with("cookie=-"),
        "an ignored cookie is not sent: {}",
        a.text()
    );
    let b = get(&f.url(&p)).unwrap();
    assert_eq!(b.cache(), "HIT");
}

#[test]
fn query_values_and_secrets_stay_out_of_logs_above_debug() {
    // A companion whose origin is down, so every miss logs a warning.
    let member = hzcache_e2e::shared_member();
    let companion = hzcache_e2e::Companion::start(
        &member.cluster_name,
        &[member.address()],
        &["default=http://127.0.0.1:9".to_string()],
        &[],
    )
    .expect("companion");
    companion.wait_ready(Duration::from_secs(30)).unwrap();
    let envoy = start_on_lasting_thread({
        let port = companion.port;
        move || {
            hzcache_e2e::Envoy::start(&hzcache_e2e::demo_filter_config().unwrap(), 9, port)
                .expect("envoy")
        }
    });
    let token = format!("tok{}", unique("SECRETVALUE").replace('-', ""));
    let _ = get(&envoy.url(&format!("/report?token={token}")));
    let _ = get(&envoy.url(&format!("/data?key={token}")));
    std::thread::sleep(Duration::from_millis(300));
    let log = companion.process.log_text();
    assert!(
        log.lines().any(|l| l.contains("WARN")),
        "the failed fetches were logged:\n{log}"
    );
    for line in log
        .lines()
        .filter(|l| !l.contains("DEBUG") && !l.contains("TRACE"))
    {
        assert!(!line.contains(&token), "query value in a log line: {line}");
        assert!(
            !line.contains(callout_secret()),
            "secret in a log line: {line}"
        );
    }
    let envoy_log = envoy.process.log_text();
    assert!(
        !envoy_log.contains(callout_secret()),
        "the filter never logs its secret"
    );
}

#[test]
fn json_logs_at_trace_level_are_json_lines_without_any_secret() {
    use hzcache_e2e::{free_port, loopback, probe_get, secret_file, wait_until, Process};
    use std::sync::{Arc, Mutex};
    // The origin keeps the origin-fetch marks the companion sends it: they must not be logged
    // either (a mark opens one request for a minute).
    let marks = Arc::new(Mutex::new(Vec::<String>::new()));
    let origin = Origin::start({
        let marks = marks.clone();
        move |seen| {
            if let Some(m) = seen
                .headers
                .get(hzcache_contract::ORIGIN_FETCH_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                marks.lock().unwrap().push(m.to_string());
            }
            OriginReply::ok("json log body").header("cache-control", "public, max-age=60")
        }
    })
    .expect("origin");
    let member = hzcache_e2e::shared_member();
    let admin_token = format!("admin-{}", unique("TOKENVALUE").replace('-', ""));
    let port = free_port();
    let mut cmd = std::process::Command::new(companion_bin().unwrap());
    cmd.env_clear()
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--cluster-name", &member.cluster_name])
        .args(["--hazelcast", &member.address()])
        .args(["--origin", &origin.origin_arg()])
        .args(["--map", "hzcache=envelope"])
        .args(["--admin-token-file", &secret_file("admin", &admin_token)])
        .env("HZCACHE_LOG_FORMAT", "json")
        .env("RUST_LOG", "trace")
        .env("HZCACHE_CALLOUT_SECRET", callout_secret());
    let mut process = Process::spawn("companion-json", &mut cmd).expect("companion");
    let addr = loopback(port);
    wait_until("companion /readyz", Duration::from_secs(30), || {
        probe_get(addr, "/readyz").is_some_and(|(s, _)| s == 200) || !process.is_running()
    })
    .unwrap();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");

    let query_value = format!("q{}", unique("QUERYVALUE").replace('-', ""));
    let key = format!("http://example.com/j?token={query_value}");
    let mut fetch = fetch_call("hzcache", &key, "envelope", Some(callout_secret()));
    for (name, value) in fetch.iter_mut() {
        if name == "x-hzcache-request-path" {
            *value = format!("/j?token={query_value}");
        }
    }
    let miss = call(&url("/v1/fetch"), "GET", &fetch);
    assert_eq!(
        miss.header("x-hzcache-outcome"),
        Some("miss"),
        "{}",
        miss.text()
    );
    let hit = call(&url("/v1/fetch"), "GET", &fetch);
    assert_eq!(hit.header("x-hzcache-outcome"), Some("hit"));
    let wrong_guess = "a-wrong-guess-of-the-secret-0123";
    let refused = call(
        &url("/v1/fetch"),
        "GET",
        &fetch_call("hzcache", &key, "envelope", Some(wrong_guess)),
    );
    assert_eq!(refused.status, 401);
    let purge = send(
        "POST",
        &url(&format!(
            "/admin/purge?map=hzcache&key={}",
            hzcache_contract::encode_key(&key)
        )),
        &[("authorization", &format!("Bearer {admin_token}"))],
        b"",
    )
    .unwrap();
    assert_eq!(purge.status, 200, "{}", purge.text());
    std::thread::sleep(Duration::from_millis(300));

    let marks = marks.lock().unwrap().clone();
    assert!(!marks.is_empty(), "the origin fetch carried a mark");
    let log = process.log_text();
    let mut levels = std::collections::BTreeSet::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let level = json["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {line}"));
        levels.insert(level.to_string());
        for secret in [callout_secret(), admin_token.as_str(), wrong_guess] {
            assert!(!line.contains(secret), "a secret in a log line: {line}");
        }
        for mark in &marks {
            let mac = mark.rsplit('.').next().unwrap();
            assert!(
                !line.contains(mac),
                "an origin-fetch mark in a log line: {line}"
            );
        }
        if !matches!(level, "DEBUG" | "TRACE") {
            assert!(!line.contains(&query_value), "a key above debug: {line}");
        }
    }
    assert!(
        levels.contains("TRACE") && levels.contains("DEBUG") && levels.contains("INFO"),
        "{levels:?}"
    );
    assert!(
        log.contains(&query_value),
        "debug lines do name the key, so the test could see a leak"
    );
}
