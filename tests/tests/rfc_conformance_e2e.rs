//! The RFC 9111, 9110, 9211 and 9213 rules of issue 10, end to end (client → Envoy → filter →
//! companion → Hazelcast → origin): Age on relayed answers, the default Last-Modified
//! heuristic, HTTP-dates in any case, no-cache with a validator, If-Modified-Since against
//! Date, must-understand, the request directives, Cache-Status, the targeted fields as
//! Structured Fields, Vary normalisation, stale answers while the origin is unreachable, and
//! an origin answer that is not HTTP. Each test uses its own paths.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hzcache_companion::http::date::format_http_date;
use hzcache_e2e::stack::origin_path as path;
use hzcache_e2e::stack::{programmable_origin, start_on_lasting_thread, Fleet};
use hzcache_e2e::{get, get_with, shared_member, unique, Companion, Envoy, Reply};

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        start_on_lasting_thread(|| {
            Fleet::single_with_rules(
                programmable_origin().expect("origin"),
                serde_json::json!([
                    { "name": "lmoff", "match": { "path_prefix": "/lmoff/" },
                      "last_modified_heuristic_max_seconds": 0 }
                ]),
                &[],
            )
            .expect("fleet")
        })
    })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn twice(p: &str) -> (Reply, Reply) {
    let f = fleet();
    (get(&f.url(p)).unwrap(), get(&f.url(p)).unwrap())
}

fn status_of(r: &Reply) -> &str {
    r.header("cache-status").unwrap_or("")
}

/// RFC 9111 §5.1, §4.2.3: a relayed response that is not stored keeps its (corrected) Age.
#[test]
fn rfc9111_5_1_relayed_unstored_answers_keep_the_origins_age() {
    for (name, cc, age) in [
        ("agenostore", "cache-control:no-store", "age:0"),
        ("ageprivate", "cache-control:private, max-age=60", "age:7"),
        ("agestale", "cache-control:max-age=5", "age:30"),
    ] {
        let p = path(name, &[cc, age], "");
        let (a, b) = twice(&p);
        assert_eq!((a.cache(), b.cache()), ("MISS", "MISS"), "{name}");
        let want: u64 = age[4..].parse().unwrap();
        let got: u64 = a.header("age").expect("age relayed").parse().unwrap();
        assert!((want..want + 3).contains(&got), "{name}: age {got}");
    }
}

/// RFC 9111 §4.2.2: the Last-Modified heuristic is on by default; `0` turns it off.
#[test]
fn rfc9111_4_2_2_last_modified_heuristic_is_on_by_default_and_covers_501() {
    let lm = format!(
        "last-modified:{}",
        format_http_date(now_secs() - 10 * 86_400)
    );
    let p = path("lmon", &[&lm], "");
    let (a, b) = twice(&p);
    assert_eq!((a.cache(), b.cache()), ("MISS", "HIT"));
    assert!(
        status_of(&a).contains("stored; ttl=86"),
        "{}",
        status_of(&a)
    );
    let p = path("lm501", &[&lm], "status=501");
    let (a, b) = twice(&p);
    assert_eq!((a.status, a.cache(), b.cache()), (501, "MISS", "HIT"));
    let p = path("lmoff", &[&lm], "");
    let (a, b) = twice(&p);
    assert_eq!(
        (a.cache(), b.cache()),
        ("MISS", "MISS"),
        "the rule turned it off"
    );
    let p = path("lm302", &[&lm, "location:/x"], "status=302");
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "MISS", "302 is not heuristically cacheable");
    let p = path(
        "lm302pub",
        &[&lm, "location:/x", "cache-control:public"],
        "status=302",
    );
    let (_, b) = twice(&p);
    assert_eq!(
        b.cache(),
        "HIT",
        "public makes any status heuristically cacheable"
    );
}

/// RFC 9110 §5.6.7: HTTP-dates in any letter case; a truly invalid Expires is expired.
#[test]
fn rfc9110_5_6_7_dates_in_any_case_and_invalid_expires() {
    let exp = format_http_date(now_secs() + 600).to_ascii_lowercase();
    let p = path("lcexpires", &[&format!("expires:{exp}")], "");
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "HIT", "expires {exp}");
    let p = path("badexpires", &["expires:soon", "cache-control:public"], "");
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "MISS");
}

/// RFC 9111 §5.2.2.4: no-cache with a validator and no lifetime is stored and revalidated.
#[test]
fn rfc9111_5_2_2_4_no_cache_with_etag_is_stored_and_revalidated_every_time() {
    let f = fleet();
    let p = path(
        "nocacheetag",
        &["cache-control:no-cache", "etag:\"n1\""],
        "cond",
    );
    let (a, b) = twice(&p);
    assert_eq!((a.cache(), b.cache()), ("MISS", "REVALIDATED"));
    assert_eq!(b.body, a.body, "the stored body, confirmed by a 304");
    assert_eq!(status_of(&b), "hzcache; fwd=stale; fwd-status=304");
    assert_eq!(f.origin.count(&p), 2);
}

/// RFC 9110 §13.1.3, RFC 9111 §4.3.2: If-Modified-Since against the stored Date.
#[test]
fn rfc9111_4_3_2_if_modified_since_uses_the_stored_date() {
    let f = fleet();
    let p = path("imsdate", &["cache-control:max-age=60"], "");
    get(&f.url(&p)).unwrap();
    let later = format_http_date(now_secs() + 5);
    let r = get_with(&f.url(&p), &[("if-modified-since", &later)]).unwrap();
    assert_eq!((r.status, r.cache()), (304, "HIT"));
    let earlier = format_http_date(now_secs() - 3600);
    let r = get_with(&f.url(&p), &[("if-modified-since", &earlier)]).unwrap();
    assert_eq!(r.status, 200);
}

/// RFC 9111 §5.2.2.3: must-understand overrides no-store for an understood status.
#[test]
fn rfc9111_5_2_2_3_must_understand_overrides_no_store() {
    let p = path(
        "mustunderstand",
        &["cache-control:must-understand, no-store, max-age=60"],
        "",
    );
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "HIT");
    let p = path(
        "mustunderstand299",
        &["cache-control:must-understand, no-store, max-age=60"],
        "status=299",
    );
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "MISS");
}

/// RFC 9111 §5.2.1: only-if-cached, max-stale, min-fresh with a stale entry.
#[test]
fn rfc9111_5_2_1_only_if_cached_max_stale_and_min_fresh() {
    let f = fleet();
    let p = path("onlyifcached", &["cache-control:max-age=60"], "");
    let r = get_with(&f.url(&p), &[("cache-control", "only-if-cached")]).unwrap();
    assert_eq!(r.status, 504);
    assert_eq!(f.origin.count(&p), 0, "never asks the origin");
    get(&f.url(&p)).unwrap();
    let r = get_with(&f.url(&p), &[("cache-control", "only-if-cached")]).unwrap();
    assert_eq!((r.status, r.cache()), (200, "HIT"));

    // With a validator: hzcache keeps a stale entry that can be revalidated (at least a
    // minute), and a client's max-stale may use it meanwhile.
    let p = path("maxstale", &["cache-control:max-age=1", "etag:\"m\""], "");
    let first = get(&f.url(&p)).unwrap();
    std::thread::sleep(Duration::from_millis(2200));
    let r = get_with(&f.url(&p), &[("cache-control", "max-stale")]).unwrap();
    assert_eq!((r.cache(), &r.body), ("STALE", &first.body));
    assert!(status_of(&r).contains("detail=max-stale"));
    let r = get_with(&f.url(&p), &[("cache-control", "max-stale=100")]).unwrap();
    assert_eq!(r.cache(), "STALE");
    let r = get_with(&f.url(&p), &[("cache-control", "max-stale=0")]).unwrap();
    assert_eq!(r.cache(), "MISS", "one second stale is more than 0");
    assert_eq!(f.origin.count(&p), 2);

    let p = path(
        "minfresh",
        &["cache-control:max-age=1, stale-while-revalidate=60"],
        "",
    );
    get(&f.url(&p)).unwrap();
    std::thread::sleep(Duration::from_millis(2200));
    let r = get_with(&f.url(&p), &[("cache-control", "min-fresh=1")]).unwrap();
    assert_eq!(r.cache(), "MISS", "min-fresh takes no stale answer");
}

/// RFC 9211: Cache-Status on misses, hits, variants and revalidations.
#[test]
fn rfc9211_cache_status_on_every_companion_answer() {
    let f = fleet();
    let p = path("cachestatus", &["cache-control:max-age=60"], "");
    let (a, b) = twice(&p);
    assert!(
        status_of(&a).starts_with("hzcache; fwd=uri-miss; fwd-status=200; stored; ttl="),
        "{}",
        status_of(&a)
    );
    assert_eq!(status_of(&b), "hzcache; hit");
    let p = path("cachestatusnostore", &["cache-control:no-store"], "");
    let (a, _) = twice(&p);
    assert_eq!(status_of(&a), "hzcache; fwd=uri-miss; fwd-status=200");
    let p = path(
        "cachestatusvary",
        &["cache-control:max-age=60", "vary:accept-language"],
        "",
    );
    get_with(&f.url(&p), &[("accept-language", "de")]).unwrap();
    let r = get_with(&f.url(&p), &[("accept-language", "fr")]).unwrap();
    assert!(
        status_of(&r).starts_with("hzcache; fwd=vary-miss"),
        "{}",
        status_of(&r)
    );
    let p = path(
        "cachestatusreq",
        &["cache-control:max-age=60", "etag:\"c\""],
        "cond",
    );
    get(&f.url(&p)).unwrap();
    let r = get_with(&f.url(&p), &[("cache-control", "no-cache")]).unwrap();
    assert_eq!(status_of(&r), "hzcache; fwd=request; fwd-status=304");
}

/// RFC 9213 §2.1: a targeted field that is not a valid Dictionary is ignored.
#[test]
fn rfc9213_2_1_an_invalid_targeted_field_falls_back_to_cache_control() {
    let p = path(
        "sfbad",
        &[
            "cache-control:no-store",
            "cdn-cache-control:max-age=\"600\"",
        ],
        "",
    );
    let (_, b) = twice(&p);
    assert_eq!(
        b.cache(),
        "MISS",
        "the wrong type ignores the field: no-store applies"
    );
    let p = path(
        "sfgood",
        &[
            "cache-control:no-store",
            "cdn-cache-control:max-age=600;x=1, public",
        ],
        "",
    );
    let (_, b) = twice(&p);
    assert_eq!(b.cache(), "HIT");
}

/// RFC 9111 §4.1: Accept-Language and Accept-Encoding select variants by meaning.
#[test]
fn rfc9111_4_1_vary_matches_accept_language_and_encoding_by_meaning() {
    let f = fleet();
    let p = path(
        "varynorm",
        &[
            "cache-control:max-age=60",
            "vary:Accept-Language, Accept-Encoding",
        ],
        "",
    );
    let url = f.url(&p);
    let a = get_with(
        &url,
        &[
            ("accept-language", "en-US, de;q=0.5"),
            ("accept-encoding", "gzip, br"),
        ],
    )
    .unwrap();
    let b = get_with(
        &url,
        &[
            ("accept-language", "DE;q=0.50 , en-us"),
            ("accept-encoding", "br,GZIP"),
        ],
    )
    .unwrap();
    assert_eq!((a.cache(), b.cache()), ("MISS", "HIT"));
    assert_eq!(a.body, b.body);
    let c = get_with(
        &url,
        &[
            ("accept-language", "de, en-US;q=0.5"),
            ("accept-encoding", "gzip, br"),
        ],
    )
    .unwrap();
    assert_eq!(c.cache(), "MISS", "another preference is another variant");

    // A stored Content-Language that is the new request's top preference is reused.
    let p = path(
        "varylang",
        &[
            "cache-control:max-age=60",
            "vary:Accept-Language",
            "content-language:de",
        ],
        "",
    );
    let url = f.url(&p);
    let de = get_with(&url, &[("accept-language", "de")]).unwrap();
    let de_en = get_with(&url, &[("accept-language", "de, en;q=0.5")]).unwrap();
    assert_eq!((de.cache(), de_en.cache()), ("MISS", "HIT"));
    assert_eq!(de.body, de_en.body);
    let en_de = get_with(&url, &[("accept-language", "en, de;q=0.5")]).unwrap();
    assert_eq!(
        en_de.cache(),
        "MISS",
        "English first: the origin may have it"
    );
    let tie = get_with(&url, &[("accept-language", "de, fr")]).unwrap();
    assert_eq!(tie.cache(), "MISS", "a tie leaves the choice to the origin");
}

// ---------------------------------------------------------------------------------------------
// A raw origin: what hyper-based test servers cannot do (close without answering, invalid
// status lines, broken chunked bodies).

struct RawOrigin {
    port: u16,
    down: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RawOrigin {
    fn start() -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (d, s) = (down.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (d, s) = (d.clone(), s.clone());
                std::thread::spawn(move || serve_raw(stream, &d, &s));
            }
        });
        RawOrigin { port, down, seen }
    }

    fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }
}

fn serve_raw(mut stream: TcpStream, down: &AtomicBool, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let target = head.split(' ').nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(target.clone());
    let answer: &[u8] = if target.starts_with("/badstatus/") {
        b"HTTP/1.1 999 Weird\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
    } else if target.starts_with("/badchunk/") {
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\nno\r\n0\r\n\r\n"
    } else if target.starts_with("/early/") {
        b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncache-control: max-age=60\r\nlink: </a.css>; rel=preload\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    } else if down.load(Ordering::SeqCst) {
        // Closed before a response: the origin is gone.
        return;
    } else if target.starts_with("/strict/") {
        b"HTTP/1.1 200 OK\r\ncache-control: max-age=2, must-revalidate\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    } else {
        // Two seconds fresh: kept (and servable while unreachable) two more.
        b"HTTP/1.1 200 OK\r\ncache-control: max-age=2\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    };
    let _ = stream.write_all(answer);
}

struct RawNode {
    origin: RawOrigin,
    _companion: Companion,
    envoy: Envoy,
}

fn raw_node() -> &'static RawNode {
    static NODE: OnceLock<RawNode> = OnceLock::new();
    NODE.get_or_init(|| {
        start_on_lasting_thread(|| {
            let origin = RawOrigin::start();
            let member = shared_member();
            let companion = Companion::start(
                &member.cluster_name,
                &[member.address()],
                &[format!("default=http://127.0.0.1:{}", origin.port)],
                &["--origin-timeout-ms", "3000"],
            )
            .expect("companion");
            companion
                .wait_ready(Duration::from_secs(30))
                .expect("ready");
            let config = hzcache_e2e::demo_filter_config().expect("config");
            let envoy = Envoy::start(&config, origin.port, companion.port).expect("envoy");
            RawNode {
                origin,
                _companion: companion,
                envoy,
            }
        })
    })
}

/// RFC 9111 §4.2.4 (disconnected) and RFC 9110 §15.6.3 (invalid answers), in one test: both
/// depend on one origin's state.
#[test]
fn rfc9111_4_2_4_stale_while_unreachable_and_invalid_origin_answers_are_one_502() {
    let n = raw_node();
    // Not valid HTTP: one origin request, a 502 (or what Envoy would relay), never a retry.
    for kind in ["badstatus", "badchunk"] {
        let p = format!("/{kind}/{}", unique("r"));
        let r = get(&n.envoy.url(&p)).unwrap();
        assert_eq!(r.status, 502, "{kind}: {}", r.text());
        assert_eq!(n.origin.count(&p), 1, "{kind}: asked the origin once");
    }
    // Stored fresh for two seconds, then the origin goes away.
    let ok = format!("/up/{}", unique("r"));
    let strict = format!("/strict/{}", unique("r"));
    for p in [&ok, &strict] {
        let r = get(&n.envoy.url(p)).unwrap();
        assert_eq!((r.status, r.cache()), (200, "MISS"), "{p}");
    }
    std::thread::sleep(Duration::from_millis(2600));
    n.origin.down.store(true, Ordering::SeqCst);
    let r = get(&n.envoy.url(&ok)).unwrap();
    n.origin.down.store(false, Ordering::SeqCst);
    assert_eq!((r.status, r.cache()), (200, "STALE"), "{}", r.text());
    assert_eq!(r.body, "ok");
    assert_eq!(
        r.header("cache-status"),
        Some("hzcache; hit; fwd=stale; detail=origin-unreachable")
    );
    let age: u64 = r.header("age").unwrap().parse().unwrap();
    assert!(age >= 2, "the age shows it is stale: {age}");
    n.origin.down.store(true, Ordering::SeqCst);
    let r = get(&n.envoy.url(&strict)).unwrap();
    n.origin.down.store(false, Ordering::SeqCst);
    assert_ne!(r.cache(), "STALE", "must-revalidate forbids it");
    assert_ne!(r.status, 200);
}

/// RFC 9110 §15.2: an interim 103 from the origin is never stored; on the cached path the
/// client gets the final response only (the companion's client reads past interim answers,
/// and the filter answers with one local reply), which is what README documents.
#[test]
fn rfc9110_15_2_interim_responses_are_never_stored() {
    let n = raw_node();
    let p = format!("/early/{}", unique("r"));
    let raw_get = || {
        let mut s = TcpStream::connect(("127.0.0.1", n.envoy.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {p} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).to_string()
    };
    let first = raw_get();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(!first.contains(" 103 "), "{first}");
    assert!(first.ends_with("ok"), "{first}");
    let second = raw_get();
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("x-cache: hit"),
        "{second}"
    );
    assert!(
        second.contains("</a.css>"),
        "the final response's own Link is kept"
    );
    assert_eq!(n.origin.count(&p), 1);
}

/// Bytes `range` of the programmable origin's `size=N` body.
fn pattern(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| b"0123456789abcdef"[i % 16]).collect()
}

fn ranged(url: &str, range: &str) -> Reply {
    get_with(url, &[("range", range)]).unwrap()
}

/// Asserts a 206 with bytes `first..=last` of the 100-byte pattern body and their
/// Content-Range (and Envoy's Content-Length).
fn assert_piece(r: &Reply, first: usize, last: usize, cache: &str) {
    let want = format!("bytes {first}-{last}/100");
    assert_eq!(
        (r.status, r.cache(), r.header("content-range")),
        (206, cache, Some(want.as_str())),
        "{:?}",
        r.headers
    );
    assert_eq!(r.body, pattern(first..last + 1), "{want}");
    let length = (last - first + 1).to_string();
    assert_eq!(r.header("content-length"), Some(length.as_str()));
}

/// RFC 9111 §3.3, §4.2.2; RFC 9110 §15.3.7: a 206 the origin sends is stored as a piece of
/// the representation (its Content-Range, validators and headers) and answers the ranges it
/// covers, and a 416 for one past the complete length, without the origin.
#[test]
fn rfc9111_3_3_a_206_is_stored_and_answers_the_ranges_it_covers() {
    let f = fleet();
    let p = path(
        "piece",
        &["cache-control:max-age=60", "etag:\"p1\""],
        "size=100&firstbytes=40",
    );
    let url = f.url(&p);
    let first = ranged(&url, "bytes=0-9");
    assert_piece(&first, 0, 9, "MISS");
    assert!(status_of(&first).contains("fwd-status=206"), "{first:?}");
    assert_eq!(first.header("etag"), Some("\"p1\""));
    for (range, a, b) in [
        ("bytes=5-30", 5, 30),
        ("bytes=0-39", 0, 39),
        ("bytes=39-39", 39, 39),
    ] {
        let r = ranged(&url, range);
        assert_piece(&r, a, b, "HIT");
        assert_eq!(r.header("etag"), Some("\"p1\""));
        assert!(r.header("age").is_some());
    }
    let r = ranged(&url, "bytes=200-");
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */100"))
    );
    assert_eq!(f.origin.count(&p), 1, "every covered range from the piece");
    let asked = f.origin.last_headers(&p).unwrap();
    assert!(
        !asked.contains_key("range"),
        "a miss fetches the whole response"
    );
}

/// RFC 9111 §3.4: a range the piece lacks is asked of the origin as a Range request with
/// If-Range (the piece's strong ETag), the two pieces of one representation are combined,
/// and once they add up to the whole it is stored as a complete 200.
#[test]
fn rfc9111_3_4_a_piece_is_completed_by_the_missing_bytes_into_the_whole_200() {
    let f = fleet();
    let p = path(
        "piecefill",
        &["cache-control:max-age=60", "etag:\"p2\""],
        "size=100&firstbytes=40",
    );
    let url = f.url(&p);
    assert_piece(&ranged(&url, "bytes=0-9"), 0, 9, "MISS");
    let r = ranged(&url, "bytes=30-59");
    assert_piece(&r, 30, 59, "MISS");
    assert!(status_of(&r).contains("fwd=partial"), "{r:?}");
    let asked = f.origin.last_headers(&p).unwrap();
    assert_eq!(
        asked.get("range").unwrap(),
        "bytes=40-59",
        "only the missing bytes"
    );
    assert_eq!(asked.get("if-range").unwrap(), "\"p2\"");
    assert_eq!(f.origin.count(&p), 2);
    // The combined piece (bytes 0-59) answers without the origin.
    assert_piece(&ranged(&url, "bytes=10-59"), 10, 59, "HIT");
    assert_eq!(f.origin.count(&p), 2);
    // The rest: now the whole representation, stored as a 200.
    assert_piece(&ranged(&url, "bytes=90-"), 90, 99, "MISS");
    assert_eq!(
        f.origin.last_headers(&p).unwrap().get("range").unwrap(),
        "bytes=60-99"
    );
    let whole = get(&url).unwrap();
    assert_eq!((whole.status, whole.cache()), (200, "HIT"));
    assert_eq!(whole.body, pattern(0..100));
    assert_eq!(whole.header("content-range"), None);
    assert_eq!(whole.header("etag"), Some("\"p2\""));
    assert_piece(&ranged(&url, "bytes=-5"), 95, 99, "HIT");
    assert_eq!(f.origin.count(&p), 3);
}

/// RFC 9111 §3.4: pieces of different representations are never combined. Every origin
/// answer here has its own ETag and its own fill letter; one that ignores If-Range sends a
/// piece of a new representation, which replaces the stored one instead of joining it, so no
/// answer ever mixes two.
#[test]
fn rfc9111_3_4_pieces_with_different_etags_are_never_combined() {
    let f = fleet();
    let single = |r: &Reply| {
        assert!(!r.body.is_empty(), "{r:?}");
        assert!(
            r.body.iter().all(|b| *b == r.body[0]),
            "mixed bytes: {:?}",
            r.body
        );
    };
    let p = path(
        "piecediff",
        &["cache-control:max-age=60"],
        "size=100&firstbytes=40&seqetag&seqfill&ignoreifrange",
    );
    let url = f.url(&p);
    let first = ranged(&url, "bytes=0-9");
    assert_eq!(
        (first.status, first.header("content-range")),
        (206, Some("bytes 0-9/100"))
    );
    single(&first);
    let second = ranged(&url, "bytes=30-59");
    single(&second);
    assert_ne!(first.header("etag"), second.header("etag"));
    assert_ne!(first.body[0], second.body[0]);
    // What is stored now is one representation's bytes only, whatever is asked.
    for range in ["bytes=0-59", "bytes=30-49", "bytes=45-59", "bytes=0-99"] {
        let r = ranged(&url, range);
        single(&r);
        assert!(matches!(r.status, 200 | 206), "{range}: {r:?}");
    }
    // And an origin that honours If-Range answers a changed representation with the whole
    // 200, which replaces the piece.
    let p = path(
        "piecenew",
        &["cache-control:max-age=60"],
        "size=100&firstbytes=40&seqetag&seqfill",
    );
    let url = f.url(&p);
    single(&ranged(&url, "bytes=0-9"));
    let r = ranged(&url, "bytes=50-59");
    assert_eq!((r.status, r.body.len()), (200, 100), "{r:?}");
    single(&r);
    let again = get(&url).unwrap();
    assert_eq!((again.status, again.cache()), (200, "HIT"));
    assert_eq!(again.body, r.body);
}

/// RFC 9111 §3.3: a plain GET when only a piece is stored is a miss that fetches the whole
/// response and stores it in the piece's place.
#[test]
fn rfc9111_3_3_a_plain_get_over_a_piece_fetches_and_stores_the_whole() {
    let f = fleet();
    let p = path(
        "piecewhole",
        &["cache-control:max-age=60", "etag:\"p3\""],
        "size=100&firstbytes=40&firstonce",
    );
    let url = f.url(&p);
    assert_piece(&ranged(&url, "bytes=0-9"), 0, 9, "MISS");
    let whole = get(&url).unwrap();
    assert_eq!((whole.status, whole.cache()), (200, "MISS"));
    assert_eq!(whole.body, pattern(0..100));
    assert_eq!(f.origin.count(&p), 2);
    assert_eq!(get(&url).unwrap().cache(), "HIT");
    assert_piece(&ranged(&url, "bytes=50-59"), 50, 59, "HIT");
    assert_eq!(f.origin.count(&p), 2);
}

/// RFC 9110 §14.4: a 206 whose Content-Range is unusable or does not match its body is
/// relayed but never stored.
#[test]
fn rfc9110_14_4_a_206_with_a_hostile_content_range_is_never_stored() {
    let f = fleet();
    for (name, range, size) in [
        ("cr-star", "bytes 0-9/*", 10),
        ("cr-backwards", "bytes 9-0/100", 10),
        ("cr-short", "bytes 0-9/100", 5),
        ("cr-past-end", "bytes 0-99/50", 100),
        ("cr-absurd", "bytes 0-9/99999999999999999999999", 10),
        ("cr-unsatisfied", "bytes */100", 10),
    ] {
        let cr = format!("content-range:{range}");
        let p = path(
            name,
            &["cache-control:max-age=60", &cr],
            &format!("status=206&size={size}"),
        );
        let (a, b) = twice(&p);
        assert_eq!((a.status, b.status), (206, 206), "{name}");
        assert_eq!(b.cache(), "MISS", "{name}");
        assert_eq!(f.origin.count(&p), 2, "{name}: not stored");
    }
}
