//! Validation, stale serving, invalidation and purge end to end: 304s to conditional clients
//! from fresh entries, stale entries revalidated with the origin, stale-while-revalidate with
//! one background refresh, stale-if-error only within its window, unsafe requests passing
//! through and invalidating, the purge API with its bearer token, and `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use hzcache_e2e::stack::origin_path as path;
use hzcache_e2e::stack::{
    after_purge, metric, programmable_origin, q, send, set_failing, start_on_lasting_thread, Fleet,
};
use hzcache_e2e::{get, get_with, unique, wait_until};

const TOKEN: &str = "test-admin-token-0123456789";

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        start_on_lasting_thread(|| {
            Fleet::single(
                programmable_origin().expect("origin"),
                &[
                    "--admin-token-file",
                    &hzcache_e2e::secret_file("admin", TOKEN),
                ],
            )
            .expect("fleet")
        })
    })
}

#[test]
fn a_conditional_request_is_answered_304_from_a_fresh_entry() {
    let f = fleet();
    let p = path(
        "cond",
        &[
            "cache-control:max-age=60",
            "etag:\"v1\"",
            "last-modified:Tue, 14 Nov 2023 22:00:00 GMT",
        ],
        "",
    );
    let url = f.url(&p);
    assert_eq!(get(&url).unwrap().cache(), "MISS");
    let r = get_with(&url, &[("if-none-match", "\"v1\"")]).unwrap();
    assert_eq!((r.status, r.cache()), (304, "HIT"));
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let r = get_with(
        &url,
        &[("if-modified-since", "Tue, 14 Nov 2023 23:00:00 GMT")],
    )
    .unwrap();
    assert_eq!(r.status, 304);
    let r = get_with(&url, &[("if-none-match", "\"other\"")]).unwrap();
    assert_eq!((r.status, r.cache()), (200, "HIT"));
    assert_eq!(
        f.origin.count(&p),
        1,
        "the origin never saw the conditionals"
    );
}

#[test]
fn a_stale_entry_is_revalidated_and_a_304_refreshes_it() {
    let f = fleet();
    let p = path(
        "reval",
        &["cache-control:max-age=1", "etag:\"e7\""],
        "cond=1",
    );
    let url = f.url(&p);
    let first = get(&url).unwrap();
    assert_eq!(first.cache(), "MISS");
    std::thread::sleep(Duration::from_millis(2100));
    let second = get(&url).unwrap();
    assert_eq!(second.cache(), "REVALIDATED");
    assert_eq!(
        second.body, first.body,
        "the stored body, confirmed by a 304"
    );
    assert_eq!(f.origin.count(&p), 2);
    let seen = f.origin.last_headers(&p).unwrap();
    assert_eq!(seen.get("if-none-match").unwrap(), "\"e7\"");
    let third = get(&url).unwrap();
    assert_eq!(third.cache(), "HIT", "fresh again after the 304");
    assert_eq!(f.origin.count(&p), 2);
}

#[test]
fn a_client_no_cache_forces_validation_with_the_origin() {
    let f = fleet();
    let p = path(
        "nocache",
        &["cache-control:max-age=60", "etag:\"n\""],
        "cond=1",
    );
    let url = f.url(&p);
    get(&url).unwrap();
    let r = get_with(&url, &[("cache-control", "no-cache")]).unwrap();
    assert_eq!(r.cache(), "REVALIDATED");
    assert_eq!(f.origin.count(&p), 2);
    assert_eq!(get(&url).unwrap().cache(), "HIT");
}

#[test]
fn a_reload_of_a_fresh_immutable_entry_is_served_from_the_cache() {
    let f = fleet();
    let p = path(
        "immutable",
        &["cache-control:max-age=60, immutable", "etag:\"i\""],
        "cond=1",
    );
    let url = f.url(&p);
    assert_eq!(get(&url).unwrap().cache(), "MISS");
    for reload in [
        ("cache-control", "no-cache"),
        ("cache-control", "max-age=0"),
        ("pragma", "no-cache"),
    ] {
        let r = get_with(&url, &[reload]).unwrap();
        assert_eq!((r.status, r.cache()), (200, "HIT"), "{reload:?}");
    }
    assert_eq!(f.origin.count(&p), 1, "no revalidation reached the origin");
}

#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_once() {
    let f = fleet();
    let p = path(
        "swr",
        &["cache-control:max-age=1, stale-while-revalidate=30"],
        "delay=300",
    );
    let url = f.url(&p);
    let first = get(&url).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let stale: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&url).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for r in &stale {
        assert_eq!(r.cache(), "STALE");
        assert_eq!(r.body, first.body);
    }
    wait_until("background refresh", Duration::from_secs(5), || {
        get(&url)
            .map(|r| r.cache() == "HIT" && r.body != first.body)
            .unwrap_or(false)
    })
    .unwrap();
    assert_eq!(f.origin.count(&p), 2, "exactly one background refresh");
}

#[test]
fn stale_if_error_serves_stale_only_within_its_window() {
    let f = fleet();
    let name = unique("down");
    let p = path(
        "sie",
        &["cache-control:max-age=1, stale-if-error=3"],
        &format!("fail={name}"),
    );
    let url = f.url(&p);
    let first = get(&url).unwrap();
    assert_eq!(first.cache(), "MISS");
    set_failing(&name, true);
    std::thread::sleep(Duration::from_millis(1500));
    let r = get(&url).unwrap();
    assert_eq!((r.status, r.cache()), (200, "STALE"));
    assert_eq!(r.body, first.body);
    // Past lifetime + stale-if-error the entry is gone and the origin's 503 is what the
    // client gets (not cached either).
    std::thread::sleep(Duration::from_millis(3000));
    let r = get(&url).unwrap();
    assert_eq!(r.status, 503);
    set_failing(&name, false);
    assert_eq!(get(&url).unwrap().status, 200);
}

#[test]
fn an_unsafe_request_passes_through_with_its_body_and_invalidates_the_url() {
    let f = fleet();
    let p = path("inv", &["cache-control:max-age=60"], "");
    let url = f.url(&p);
    get(&url).unwrap();
    assert_eq!(get(&url).unwrap().cache(), "HIT");
    let body = b"a=1&b=two";
    // (Envoy itself refuses methods it does not know with 400, so those never get here.)
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = send(method, &url, &[("content-type", "text/plain")], body).unwrap();
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.cache(), "", "{method} goes upstream untouched");
        assert_eq!(
            f.origin.last_body(&p).as_deref(),
            Some(&body[..]),
            "{method} reaches the origin with its body, byte for byte"
        );
        let after = get(&url).unwrap();
        assert_eq!(
            after.cache(),
            "MISS",
            "{method} invalidated the stored entry"
        );
    }
    // A same-origin Location is invalidated too; an error status invalidates nothing.
    let target = path("invloc", &["cache-control:max-age=60"], "");
    get(&f.url(&target)).unwrap();
    let poster = path("invpost", &[&format!("location:{target}")], "status=201");
    send("POST", &f.url(&poster), &[], b"x").unwrap();
    assert_eq!(get(&f.url(&target)).unwrap().cache(), "MISS");
    assert_eq!(get(&f.url(&target)).unwrap().cache(), "HIT");
    let failing = path("invfail", &[&format!("location:{target}")], "status=500");
    send("POST", &f.url(&failing), &[], b"x").unwrap();
    assert_eq!(get(&f.url(&target)).unwrap().cache(), "HIT");
}

#[test]
fn purge_by_key_needs_the_bearer_token_and_reaches_every_client() {
    let f = fleet();
    let p = path("purge", &["cache-control:max-age=60"], "");
    get(&f.url(&p)).unwrap();
    assert_eq!(get(&f.url(&p)).unwrap().cache(), "HIT");
    // The default key drops the empty query segment the path ends with.
    let key = format!(
        "http://127.0.0.1:{}{}",
        f.node().envoy.port,
        hzcache_e2e::origin::canonical(&p)
    );
    let purge = f
        .node()
        .companion_url(&format!("/admin/purge?map=hzcache&key={}", q(&key)));
    let r = send(
        "POST",
        &purge,
        &[("authorization", "Bearer wrong-token-0123456789")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(send("POST", &purge, &[], b"").unwrap().status, 401);
    assert_eq!(get(&f.url(&p)).unwrap().cache(), "HIT");
    let r = send(
        "POST",
        &purge,
        &[("authorization", &format!("Bearer {TOKEN}"))],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(after_purge(&f.url(&p)).cache(), "MISS");
}

#[test]
fn metrics_health_and_readiness_are_served() {
    let f = fleet();
    let p = path("metrics", &["cache-control:max-age=60"], "");
    get(&f.url(&p)).unwrap();
    get(&f.url(&p)).unwrap();
    let text = f.node().metrics();
    assert!(
        metric(&text, "hzcache_requests_total{outcome=\"hit\"}") >= 1.0,
        "{text}"
    );
    assert!(metric(&text, "hzcache_requests_total{outcome=\"miss\"}") >= 1.0);
    assert!(text.contains("hzcache_origin_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(text.contains("hzcache_hazelcast_request_duration_seconds_count"));
    for (endpoint, want) in [("/healthz", 200), ("/readyz", 200), ("/nope", 404)] {
        let r = send("GET", &f.node().companion_url(endpoint), &[], b"").unwrap();
        assert_eq!(r.status, want, "{endpoint}");
    }
}

#[test]
fn purge_by_prefix_and_by_tag_removes_exactly_those_entries() {
    let f = fleet();
    let auth = format!("Bearer {TOKEN}");
    let purge = |query: &str| {
        let url = f
            .node()
            .companion_url(&format!("/admin/purge?map=hzcache&{query}"));
        let r = send("POST", &url, &[("authorization", &auth)], b"").unwrap();
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        r.text()
    };
    let dir = unique("dir");
    let tag = unique("tag");
    let a = format!("/pfx/{dir}/a?h={}", q("cache-control:max-age=60"));
    let b = format!(
        "/pfx/{dir}/b?h={}&h={}",
        q("cache-control:max-age=60"),
        q(&format!("cache-tag:{tag}, other"))
    );
    let c = format!(
        "/pfx/{}/c?h={}&h={}",
        unique("dir"),
        q("cache-control:max-age=60"),
        q(&format!("surrogate-key:x {tag}"))
    );
    let keep = format!(
        "/pfx/{}/d?h={}",
        unique("dir"),
        q("cache-control:max-age=60")
    );
    for p in [&a, &b, &c, &keep] {
        get(&f.url(p)).unwrap();
        assert_eq!(get(&f.url(p)).unwrap().cache(), "HIT");
    }
    assert!(
        get(&f.url(&b)).unwrap().header("cache-tag").is_none(),
        "tags stay inside"
    );
    // Tag: b (Cache-Tag) and c (Surrogate-Key), not a or keep.
    assert_eq!(purge(&format!("tag={}", q(&tag))).trim(), "purged 2");
    assert_eq!(after_purge(&f.url(&b)).cache(), "MISS");
    assert_eq!(after_purge(&f.url(&c)).cache(), "MISS");
    assert_eq!(get(&f.url(&a)).unwrap().cache(), "HIT");
    // Prefix: a and b (stored again just now), not keep.
    let prefix = format!("http://127.0.0.1:{}/pfx/{dir}/", f.node().envoy.port);
    purge(&format!("prefix={}", q(&prefix)));
    assert_eq!(after_purge(&f.url(&a)).cache(), "MISS");
    assert_eq!(after_purge(&f.url(&b)).cache(), "MISS");
    assert_eq!(get(&f.url(&keep)).unwrap().cache(), "HIT");
}
