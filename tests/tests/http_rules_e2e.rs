//! RFC 9111 storage rules end to end (client → Envoy → filter → companion → Hazelcast →
//! origin): what is stored and shared and what never is, Age, Vary, HEAD from a GET entry,
//! the targeted fields, oversized bodies (and their too-large marker), byte ranges served from
//! stored entries, and bad input. One fleet is shared by every test of
//! this file; each test uses its own paths, so the answers the origin gives differ by query.

use std::sync::OnceLock;

use hzcache_companion::http::date::format_http_date;
use hzcache_e2e::stack::origin_path as path;
use hzcache_e2e::stack::{programmable_origin, q, send, start_on_lasting_thread, Fleet};
use hzcache_e2e::{get, get_with, unique, Reply};

/// Entries over 64 KiB are passed through (the companion's --max-entry-bytes).
const MAX_ENTRY: usize = 65_536;
/// The purge API's token on this file's companion.
const TOKEN: &str = "rules-admin-token-0123456789";

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        start_on_lasting_thread(|| {
            Fleet::single_with_rules(
                programmable_origin().expect("origin"),
                opt_in_rules(),
                &[
                    "--max-entry-bytes",
                    &MAX_ENTRY.to_string(),
                    "--admin-token-file",
                    &hzcache_e2e::secret_file("admin", TOKEN),
                ],
            )
            .expect("fleet")
        })
    })
}

/// Rules for the opt-in settings, before the demo's (whose default rule covers every other
/// path of this file): `/cookies/` stores Set-Cookie responses without the cookie,
/// `/lastmod/` has Last-Modified heuristics (at most 60 s) and no default lifetime.
fn opt_in_rules() -> serde_json::Value {
    serde_json::json!([
        { "name": "cookies", "match": { "path_prefix": "/cookies/" },
          "ttl_seconds": 60, "strip_set_cookie": true },
        { "name": "lastmod", "match": { "path_prefix": "/lastmod/" },
          "last_modified_heuristic_max_seconds": 60 }
    ])
}

fn twice(path: &str) -> (Reply, Reply) {
    let f = fleet();
    (get(&f.url(path)).unwrap(), get(&f.url(path)).unwrap())
}

#[test]
fn a_hit_carries_age_and_never_reaches_the_origin() {
    let f = fleet();
    let p = path("fresh", &["cache-control:max-age=60", "age:5"], "");
    let (a, b) = twice(&p);
    assert_eq!(a.cache(), "MISS");
    assert_eq!(
        a.header("age"),
        Some("5"),
        "the origin's Age is relayed on a miss"
    );
    assert_eq!(b.cache(), "HIT");
    assert_eq!(b.body, a.body);
    let age: u64 = b.header("age").expect("age on every hit").parse().unwrap();
    assert!((5..60).contains(&age), "age {age} counts the origin's Age");
    assert_eq!(f.origin.count(&p), 1);
}

#[test]
fn private_authorized_and_set_cookie_responses_are_never_served_to_another_client() {
    let f = fleet();
    for (name, headers) in [
        ("private", vec!["cache-control:private, max-age=60"]),
        ("nostore", vec!["cache-control:no-store, max-age=60"]),
        (
            "cookie",
            vec!["cache-control:max-age=60", "set-cookie:session=alice"],
        ),
    ] {
        let p = path(name, &headers, "");
        let (a, b) = twice(&p);
        assert_eq!((a.cache(), b.cache()), ("MISS", "MISS"), "{name}");
        assert_ne!(
            a.body, b.body,
            "{name}: the second client got its own answer"
        );
        assert_eq!(f.origin.count(&p), 2, "{name}");
    }
    // A response to an authorised request is not shared unless it says so.
    let p = path("auth", &["cache-control:max-age=60"], "");
    let alice = get_with(&f.url(&p), &[("authorization", "Bearer alice")]).unwrap();
    let bob = get(&f.url(&p)).unwrap();
    assert_eq!(bob.cache(), "MISS");
    assert_ne!(alice.body, bob.body, "bob must not get alice's page");
    let p = path("authpublic", &["cache-control:public, max-age=60"], "");
    get_with(&f.url(&p), &[("authorization", "Bearer alice")]).unwrap();
    assert_eq!(
        get(&f.url(&p)).unwrap().cache(),
        "HIT",
        "public allows sharing"
    );
}

#[test]
fn vary_star_is_never_served_and_variants_are_kept_apart() {
    let f = fleet();
    let p = path("varystar", &["cache-control:max-age=60", "vary:*"], "");
    let (a, b) = twice(&p);
    assert_eq!((a.cache(), b.cache()), ("MISS", "MISS"));
    assert_eq!(f.origin.count(&p), 2);

    let p = path(
        "vary",
        &["cache-control:max-age=60", "vary:Accept-Language"],
        "",
    );
    let url = f.url(&p);
    let de = get_with(&url, &[("accept-language", "de")]).unwrap();
    let en = get_with(&url, &[("accept-language", "en")]).unwrap();
    assert_eq!((de.cache(), en.cache()), ("MISS", "MISS"));
    let de2 = get_with(&url, &[("accept-language", "de")]).unwrap();
    let en2 = get_with(&url, &[("accept-language", "en")]).unwrap();
    assert_eq!((de2.cache(), en2.cache()), ("HIT", "HIT"));
    assert_eq!(de2.body, de.body);
    assert_eq!(en2.body, en.body);
    assert_ne!(de.body, en.body);
    let none = get(&url).unwrap();
    assert_eq!(
        none.cache(),
        "MISS",
        "no Accept-Language is its own variant"
    );
    assert_eq!(f.origin.count(&p), 3);
}

#[test]
fn origin_errors_are_not_cached_unless_they_say_so() {
    let f = fleet();
    for status in ["500", "503", "502"] {
        let p = path("err", &[], &format!("status={status}"));
        let (a, b) = twice(&p);
        assert_eq!(a.status.to_string(), status);
        assert_eq!(b.cache(), "MISS");
        assert_eq!(f.origin.count(&p), 2, "{status}");
    }
    // Explicit freshness makes any final status cacheable (RFC 9111 §3).
    let p = path("err", &["cache-control:max-age=60"], "status=404");
    let (_, b) = twice(&p);
    assert_eq!((b.status, b.cache()), (404, "HIT"));
}

#[test]
fn targeted_fields_give_the_shared_cache_its_own_lifetime() {
    // Browsers get no-store; hzcache keeps it for 60 s.
    let p = path(
        "hzcc",
        &["cache-control:no-store", "hzcache-cache-control:max-age=60"],
        "",
    );
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "HIT");
    assert_eq!(b.header("cache-control"), Some("no-store"));
    assert_eq!(
        b.header("hzcache-cache-control"),
        None,
        "hzcache's own field stays inside"
    );
    let p = path(
        "cdncc",
        &["cache-control:max-age=60", "cdn-cache-control:no-store"],
        "",
    );
    let (_, b) = twice(&p);
    assert_eq!(
        b.cache(),
        "MISS",
        "CDN-Cache-Control wins over Cache-Control"
    );
}

#[test]
fn head_is_served_from_the_get_entry_without_a_body() {
    let f = fleet();
    let p = path("head", &["cache-control:max-age=60"], "size=1000");
    let g = get(&f.url(&p)).unwrap();
    assert_eq!((g.cache(), g.body.len()), ("MISS", 1000));
    let h = send("HEAD", &f.url(&p), &[], b"").unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.cache(), "HIT");
    assert!(h.body.is_empty());
    assert_eq!(
        h.header("content-length"),
        Some("1000"),
        "Envoy's local reply keeps the GET entry's length for HEAD"
    );
    assert_eq!(f.origin.count(&p), 1);
}

#[test]
fn an_oversized_body_passes_through_whole_and_is_not_stored() {
    let f = fleet();
    let size = MAX_ENTRY * 3 + 7;
    let p = path(
        "big",
        &["cache-control:max-age=60"],
        &format!("size={size}"),
    );
    for _ in 0..2 {
        let r = get(&f.url(&p)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.cache(), "", "passed upstream");
        assert_eq!(r.body.len(), size);
        assert!(r
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == b"0123456789abcdef"[i % 16]));
    }
}

#[test]
fn malformed_lifetimes_are_not_stored() {
    for h in [
        "cache-control:max-age=abc",
        "cache-control:max-age=1, max-age=60",
        "expires:0",
        "expires:yesterday",
    ] {
        let p = path("malformed", &[h], "");
        let (_, b) = twice(&p);
        assert_eq!(b.cache(), "MISS", "{h}");
    }
    // Directive names are case-insensitive.
    let p = path("case", &["cache-control:Max-Age=60"], "");
    assert_eq!(twice(&p).1.cache(), "HIT");
}

#[test]
fn bad_input_gets_sane_answers_and_no_panic() {
    let f = fleet();
    let url = |p: &str| f.url(p);
    // Huge and duplicated request headers.
    let big = "x".repeat(30_000);
    let p = path("badin", &["cache-control:max-age=60"], "");
    let r = get_with(
        &url(&p),
        &[("x-big", &big), ("accept", "a"), ("accept", "b")],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    // A non-UTF-8 request header value: the filter cannot forward it, so upstream answers.
    let p = path("badin", &["cache-control:max-age=60"], "");
    let req = hyper::Request::get(url(&p))
        .header(
            "x-bin",
            hyper::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let status = hzcache_e2e::client::runtime().block_on(async {
        let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
        c.request(req).await.map(|r| r.status().as_u16())
    });
    assert_eq!(status.unwrap(), 200);
    // Very long and odd keys.
    let long = format!("/long/{}?{}", unique("l"), "k=v&".repeat(2000));
    assert_eq!(get(&url(&long)).unwrap().status, 200);
    let odd = format!(
        "/odd/{}/%ff%C3%A9;x=1?%zz=1&h={}",
        unique("o"),
        q("cache-control:max-age=60")
    );
    let (a, b) = twice(&odd);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(b.cache(), "HIT");
    // An encoded NUL is refused by Envoy's path normalisation before any filter runs.
    let nul = format!(
        "/odd/{}/%00?h={}",
        unique("o"),
        q("cache-control:max-age=60")
    );
    let (a, b) = twice(&nul);
    assert_eq!((a.status, b.status), (400, 400));
    // Malformed Cache-Control from the client.
    let p = path("badcc", &["cache-control:max-age=60"], "");
    for cc in [
        "max-age=abc",
        "no-cache=\"unterminated",
        ",,,",
        "max-age=99999999999999999999",
    ] {
        assert_eq!(
            get_with(&url(&p), &[("cache-control", cc)]).unwrap().status,
            200,
            "{cc}"
        );
    }
    // The companion is alive and well.
    assert!(f.node().metrics().contains("hzcache_requests_total"));
}

#[test]
fn a_rule_may_store_set_cookie_responses_but_never_serves_the_cookie() {
    let f = fleet();
    let p = path(
        "cookies",
        &["cache-control:max-age=60", "set-cookie:session=alice"],
        "",
    );
    let (a, b) = twice(&p);
    assert_eq!(a.cache(), "MISS");
    assert_eq!(
        a.header("set-cookie"),
        Some("session=alice"),
        "the client whose request reached the origin gets its cookie"
    );
    assert_eq!(b.cache(), "HIT");
    assert_eq!(b.body, a.body);
    assert_eq!(
        b.header("set-cookie"),
        None,
        "the stored entry has no cookie"
    );
    assert_eq!(f.origin.count(&p), 1);
}

#[test]
fn last_modified_gives_a_heuristic_lifetime_only_where_a_rule_asks_for_it() {
    let f = fleet();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let modified = format!("last-modified:{}", format_http_date(now - 100_000));
    let p = path("lastmod", &[&modified], "");
    let (a, b) = twice(&p);
    assert_eq!((a.cache(), b.cache()), ("MISS", "HIT"));
    assert_eq!(f.origin.count(&p), 1);
    // The same rule without a Last-Modified has no lifetime at all.
    let p = path("lastmod", &[], "");
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "MISS");
    assert_eq!(f.origin.count(&p), 2);
}

/// Bytes `range` of the programmable origin's `size=N` body.
fn pattern(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| b"0123456789abcdef"[i % 16]).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_range_on_a_hit_gets_a_206_with_the_slice_and_a_miss_gets_the_whole_200() {
    let f = fleet();
    let p = path(
        "range",
        &["cache-control:max-age=60", "etag:\"r1\""],
        "size=100",
    );
    let url = f.url(&p);
    let miss = get_with(&url, &[("range", "bytes=0-9")]).unwrap();
    assert_eq!(
        (miss.status, miss.cache(), miss.body.len()),
        (200, "MISS", 100),
        "a miss answers (and stores) the whole response"
    );
    assert_eq!(miss.header("content-range"), None);
    for (range, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=90-", 90, 99),
        ("bytes=-5", 95, 99),
        ("bytes=95-100000", 95, 99),
        ("bytes=0-0", 0, 0),
    ] {
        let r = get_with(&url, &[("range", range)]).unwrap();
        assert_eq!((r.status, r.cache()), (206, "HIT"), "{range}");
        let content_range = format!("bytes {first}-{last}/100");
        assert_eq!(
            r.header("content-range"),
            Some(content_range.as_str()),
            "{range}"
        );
        let length = (last - first + 1).to_string();
        assert_eq!(r.header("content-length"), Some(length.as_str()), "{range}");
        assert_eq!(r.body, pattern(first..last + 1), "{range}");
        assert_eq!(r.header("etag"), Some("\"r1\""));
        assert_eq!(r.header("content-type"), miss.header("content-type"));
        assert!(r.header("age").is_some());
    }
    // If-Range with the stored strong ETag: the range is served.
    let r = get_with(&url, &[("range", "bytes=20-29"), ("if-range", "\"r1\"")]).unwrap();
    assert_eq!(
        (r.status, r.body.as_ref()),
        (206, pattern(20..30).as_slice())
    );
    // A plain GET still gets the whole entry.
    let whole = get(&url).unwrap();
    assert_eq!(
        (whole.status, whole.cache(), whole.body.len()),
        (200, "HIT", 100)
    );
    assert_eq!(f.origin.count(&p), 1, "ranges never reach the origin");
}

#[test]
fn if_range_mismatch_multiple_ranges_bad_ranges_and_head_get_the_whole_200() {
    let f = fleet();
    let modified = format!("last-modified:{}", format_http_date(unix_now() - 3600));
    let p = path(
        "rangewhole",
        &["cache-control:max-age=60", "etag:\"r2\"", &modified],
        "size=100",
    );
    let url = f.url(&p);
    assert_eq!(get(&url).unwrap().cache(), "MISS");
    let last_modified = &modified["last-modified:".len()..];
    for headers in [
        vec![("range", "bytes=0-9"), ("if-range", "\"other\"")],
        vec![("range", "bytes=0-9"), ("if-range", "W/\"r2\"")],
        vec![
            ("range", "bytes=0-9"),
            ("if-range", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ],
        vec![("range", "bytes=0-9,20-29")],
        vec![("range", "bytes=9-0")],
        vec![("range", "items=0-9")],
        vec![("range", "bytes=0-9x")],
    ] {
        let r = get_with(&url, &headers).unwrap();
        assert_eq!(
            (r.status, r.cache(), r.body.len()),
            (200, "HIT", 100),
            "{headers:?}"
        );
        assert_eq!(r.header("content-range"), None, "{headers:?}");
    }
    // If-Range with the stored (strong: an hour before Date) Last-Modified: served.
    let r = get_with(&url, &[("range", "bytes=0-9"), ("if-range", last_modified)]).unwrap();
    assert_eq!(
        (r.status, r.body.as_ref()),
        (206, pattern(0..10).as_slice())
    );
    // HEAD ignores Range (RFC 9110 §14.2: only GET).
    let h = send("HEAD", &url, &[("range", "bytes=0-9")], b"").unwrap();
    assert_eq!((h.status, h.header("content-length")), (200, Some("100")));
    assert_eq!(h.header("content-range"), None);
    assert_eq!(f.origin.count(&p), 1);
}

#[test]
fn an_unsatisfiable_range_on_a_hit_gets_a_416_with_the_length() {
    let f = fleet();
    let p = path("range416", &["cache-control:max-age=60"], "size=100");
    let url = f.url(&p);
    assert_eq!(get(&url).unwrap().cache(), "MISS");
    for range in ["bytes=100-", "bytes=500-600", "bytes=-0"] {
        let r = get_with(&url, &[("range", range)]).unwrap();
        assert_eq!((r.status, r.cache()), (416, "HIT"), "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */100"), "{range}");
        assert!(r.body.is_empty(), "{range}");
    }
    assert_eq!(f.origin.count(&p), 1);
}

#[test]
fn an_oversized_body_is_fetched_once_per_request_after_the_first_until_purged() {
    let f = fleet();
    let size = MAX_ENTRY * 2 + 3;
    let p = path(
        "bigmark",
        &["cache-control:max-age=60"],
        &format!("size={size}"),
    );
    let url = f.url(&p);
    let intact = |r: &Reply| r.status == 200 && r.cache().is_empty() && r.body == pattern(0..size);
    let first = get(&url).unwrap();
    assert!(
        intact(&first),
        "first: {} {} bytes",
        first.status,
        first.body.len()
    );
    assert_eq!(
        f.origin.count(&p),
        2,
        "the companion's fetch, then the filter's"
    );
    for n in 1..=2 {
        let r = get(&url).unwrap();
        assert!(intact(&r), "again: {} {} bytes", r.status, r.body.len());
        assert_eq!(
            f.origin.count(&p),
            2 + n,
            "the marker saves the companion's fetch"
        );
    }
    // Purging the key deletes the marker: the next request tries to store again.
    let key = format!(
        "http://127.0.0.1:{}{}",
        f.node().envoy.port,
        hzcache_e2e::origin::canonical(&p)
    );
    let purge = f
        .node()
        .companion_url(&format!("/admin/purge?map=hzcache&key={}", q(&key)));
    let auth = format!("Bearer {TOKEN}");
    let r = send("POST", &purge, &[("authorization", &auth)], b"").unwrap();
    assert_eq!((r.status, r.text().trim()), (200, "purged 1"));
    assert!(intact(&get(&url).unwrap()));
    assert_eq!(f.origin.count(&p), 6);
    assert!(intact(&get(&url).unwrap()));
    assert_eq!(f.origin.count(&p), 7);
    let metrics = f.node().metrics();
    assert!(
        metrics.contains("hzcache_too_large_passes_total "),
        "{metrics}"
    );
}
