//! What the companion answers the filter ([`Answer`]: status, headers with
//! `x-hzcache-outcome`, body) and how each source of an answer becomes one: a stored entry
//! (`HIT`, `STALE`, `REVALIDATED`, with `age`), a `body`-mode value, an origin response
//! (`MISS`), the 304 a conditional client gets instead when its validator matches, and the
//! 206 or 416 a `Range` request gets from a stored 200 ([`range`](crate::http::range)) or from
//! a stored piece of one (a stored 206, [`partial`](crate::http::partial)). Pure: the
//! caller says what was found and when; nothing here counts metrics or reads a clock.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_RANGE, CONTENT_TYPE};
use hyper::StatusCode;

use crate::entry::{header_map, Entry};
use crate::fetch_request::FetchRequest;
use crate::headers::strip_for_client_in_place;
use crate::http::age::current_age;
use crate::http::lifetime::fresh_ms_left;
use crate::http::partial::{self, content_range, Piece, PieceAnswer};
use crate::http::range::{parse_range, requested_range, RangeAnswer, UNSATISFIABLE_HEADERS};
use crate::http::validation::{not_modified, NOT_MODIFIED_HEADERS};
use hazelcast_client::Value;

pub const OUTCOME: &str = hzcache_contract::OUTCOME_HEADER;

/// What the companion answers the filter: status, headers (with the outcome) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// On a whole answer from a fresh stored entry: how many more milliseconds it stays fresh,
/// so the filter's L1 may keep it that long (docs/callout-protocol.md). Never reaches clients:
/// the filter strips every `x-hzcache-*` field.
pub const FRESH_MS: &str = hzcache_contract::FRESH_MS_HEADER;

/// RFC 9211's response field: how this cache handled the request, as `hzcache; …`.
pub const CACHE_STATUS: &str = "cache-status";

/// How a stored entry answers, for `x-cache` and `Cache-Status` (RFC 9211). Only what stays
/// true when the filter's L1 replays a `Hit` answer goes on it (no `ttl`: the L1 copy ages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Fresh from storage: `hzcache; hit`. The only answer the L1 may keep.
    Hit,
    /// Stale from storage (`detail` says why: `stale-while-revalidate`, `max-stale`,
    /// `stale-if-error`, `origin-unreachable`, `origin-slow`): `hzcache; hit; fwd=stale`.
    Stale(&'static str),
    /// A stale entry (or a client's `no-cache`: `fwd` = `request`) confirmed by the origin's
    /// 304: `hzcache; fwd=stale; fwd-status=304`.
    Revalidated(&'static str),
    /// Stored by another request's origin fetch this one waited for: `hzcache;
    /// fwd=uri-miss; collapsed`.
    Collapsed,
    /// Just fetched as a 206 and stored, the answer cut from what is stored now (`fwd`:
    /// `partial` when the origin sent the bytes a stored piece lacked, RFC 9211):
    /// `hzcache; fwd=F; fwd-status=206`, `x-cache: MISS`.
    Fetched(&'static str),
}

impl Served {
    fn label(self) -> &'static str {
        match self {
            Served::Hit | Served::Collapsed => "HIT",
            Served::Stale(_) => "STALE",
            Served::Revalidated(_) => "REVALIDATED",
            Served::Fetched(_) => "MISS",
        }
    }

    fn cache_status(self) -> String {
        match self {
            Served::Hit => "hzcache; hit".into(),
            Served::Stale(detail) => format!("hzcache; hit; fwd=stale; detail={detail}"),
            Served::Revalidated(fwd) => format!("hzcache; fwd={fwd}; fwd-status=304"),
            Served::Collapsed => "hzcache; fwd=uri-miss; collapsed".into(),
            Served::Fetched(fwd) => format!("hzcache; fwd={fwd}; fwd-status=206"),
        }
    }
}

/// A `Cache-Status` value; built from tokens and digits only, so it is always a valid field.
pub fn cache_status_value(v: String) -> HeaderValue {
    HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static("hzcache"))
}

fn text_plain() -> HeaderValue {
    HeaderValue::from_static("text/plain; charset=utf-8")
}

impl Answer {
    pub(crate) fn outcome(
        outcome: &'static str,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Answer {
        headers.insert(OUTCOME, HeaderValue::from_static(outcome));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn error(status: StatusCode, why: &str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, text_plain());
        Answer::outcome("error", status, headers, Bytes::from(format!("{why}\n")))
    }

    pub(crate) fn pass(reason: &'static str) -> Answer {
        let mut h = HeaderMap::new();
        h.insert("x-hzcache-reason", HeaderValue::from_static(reason));
        Answer::outcome("pass", StatusCode::OK, h, Bytes::new())
    }

    pub fn outcome_name(&self) -> &str {
        self.headers
            .get(OUTCOME)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A 304 for a conditional client (RFC 9110 §15.4.5): the fields of `from` a 304 carries,
/// `age` when given, and `x-cache`.
fn not_modified_answer(
    outcome: &'static str,
    from: &HeaderMap,
    age: Option<u64>,
    label: &'static str,
    cache_status: HeaderValue,
) -> Answer {
    let mut h = HeaderMap::new();
    for name in NOT_MODIFIED_HEADERS {
        for v in from.get_all(name) {
            h.append(name, v.clone());
        }
    }
    if let Some(age) = age {
        h.insert("age", HeaderValue::from(age));
    }
    h.insert("x-cache", HeaderValue::from_static(label));
    h.insert(CACHE_STATUS, cache_status);
    Answer::outcome(outcome, StatusCode::NOT_MODIFIED, h, Bytes::new())
}

/// The client answer for a stored entry: its status, headers and body, `age`, `x-cache`; a 304
/// when the client's conditional request matches. `served` gives `x-cache` and
/// `Cache-Status`.
pub fn entry_answer(req: &FetchRequest, entry: &Entry, served: Served, now_ms: i64) -> Answer {
    // The hit path: one header map, built once from the entry and trimmed in place for the
    // client (no second copy).
    let mut headers = header_map(&entry.headers);
    let age = current_age(&entry.freshness, now_ms);
    let label = served.label();
    let status_value = cache_status_value(served.cache_status());
    if not_modified(
        &req.client_headers,
        entry.status,
        &headers,
        now_ms.div_euclid(1000),
    ) {
        return not_modified_answer("hit", &headers, Some(age), label, status_value);
    }
    let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    if entry.status == 206 {
        return piece_answer(req, entry, headers, age, label, status_value, now_ms);
    }
    let range = range_of(req, entry, &headers, now_ms);
    strip_for_client_in_place(&mut headers);
    headers.insert("age", HeaderValue::from(age));
    headers.insert("x-cache", HeaderValue::from_static(label));
    headers.insert(CACHE_STATUS, status_value.clone());
    let len = entry.body.len() as u64;
    match range {
        // For HEAD the body still goes to the filter: Envoy's local reply for a HEAD request
        // sets Content-Length from it and sends no body (docs/callout-protocol.md).
        RangeAnswer::Whole => {
            // The whole stored response, fresh: the filter may keep a copy in its L1 for as
            // long as it stays fresh (never a 304, a slice or a stale answer, and not a
            // revalidated or collapsed one, whose `x-cache`/`Cache-Status` describe this
            // exchange only: a replay would claim an origin exchange that did not happen).
            let fresh_ms = if served == Served::Hit {
                fresh_ms_left(&entry.freshness, now_ms)
            } else {
                0
            };
            if fresh_ms > 0 {
                headers.insert(FRESH_MS, HeaderValue::from(fresh_ms));
            }
            Answer::outcome("hit", status, headers, entry.body.clone())
        }
        RangeAnswer::Partial { first, last } => {
            // Envoy sets Content-Length from the body of the local reply: the slice's length.
            headers.insert(
                CONTENT_RANGE,
                range_value(format!("bytes {first}-{last}/{len}")),
            );
            // `parse_range` keeps `first ≤ last < len` = body length, so the slice is in bounds.
            let body = entry.body.slice(first as usize..=last as usize);
            Answer::outcome("hit", StatusCode::PARTIAL_CONTENT, headers, body)
        }
        RangeAnswer::Unsatisfiable => unsatisfiable(&headers, len, age, label, status_value),
    }
}

/// A 416 for a range no byte of a representation of `len` bytes satisfies: RFC 9110
/// §15.5.17, the current length, and none of the representation's own content fields (there
/// is no content). `headers`: the stored ones, already trimmed for the client.
fn unsatisfiable(
    headers: &HeaderMap,
    len: u64,
    age: u64,
    label: &'static str,
    status_value: HeaderValue,
) -> Answer {
    let mut h = HeaderMap::new();
    for name in UNSATISFIABLE_HEADERS {
        for v in headers.get_all(name) {
            h.append(name, v.clone());
        }
    }
    h.insert(CONTENT_RANGE, range_value(format!("bytes */{len}")));
    h.insert("age", HeaderValue::from(age));
    h.insert("x-cache", HeaderValue::from_static(label));
    h.insert(CACHE_STATUS, status_value);
    Answer::outcome("hit", StatusCode::RANGE_NOT_SATISFIABLE, h, Bytes::new())
}

/// What a request asks of a stored piece (a stored 206, RFC 9111 §3.3): its one `Range`
/// against the complete length, for GET only and only when `If-Range` (if sent) holds for the
/// piece's validators; otherwise [`PieceAnswer::Whole`], which a piece cannot answer. `None`
/// when the entry is no usable piece (no valid `Content-Range`, or a body of another length).
pub fn piece_plan(req: &FetchRequest, entry: &Entry, now_ms: i64) -> Option<(Piece, PieceAnswer)> {
    let stored = header_map(&entry.headers);
    let piece = content_range(&stored).filter(|p| p.len() == entry.body.len() as u64)?;
    let now_secs = now_ms.div_euclid(1000);
    let value = requested_range(&req.method, &req.client_headers, &stored, now_secs);
    Some((piece, partial::plan(value, piece)))
}

/// The answer from a stored piece: a 206 with the requested bytes and their `Content-Range`,
/// or a 416 with the complete length; anything the piece cannot answer is `pass` (the flow
/// never asks for one: it fetches instead, [`piece_plan`]).
fn piece_answer(
    req: &FetchRequest,
    entry: &Entry,
    mut headers: HeaderMap,
    age: u64,
    label: &'static str,
    status_value: HeaderValue,
    now_ms: i64,
) -> Answer {
    let Some((piece, plan)) = piece_plan(req, entry, now_ms) else {
        return Answer::pass("partial");
    };
    strip_for_client_in_place(&mut headers);
    headers.insert("age", HeaderValue::from(age));
    headers.insert("x-cache", HeaderValue::from_static(label));
    headers.insert(CACHE_STATUS, status_value.clone());
    match plan {
        PieceAnswer::Covered { first, last } => {
            let Some(body) = partial::slice(piece, &entry.body, first, last) else {
                return Answer::pass("partial");
            };
            let answered = Piece {
                first,
                last,
                complete: piece.complete,
            };
            headers.insert(CONTENT_RANGE, answered.content_range());
            Answer::outcome("hit", StatusCode::PARTIAL_CONTENT, headers, body)
        }
        PieceAnswer::Unsatisfiable => {
            unsatisfiable(&headers, piece.complete, age, label, status_value)
        }
        PieceAnswer::Whole | PieceAnswer::Missing { .. } => Answer::pass("partial"),
    }
}

/// A `Content-Range` value; built from digits and ASCII only, so it is always a valid field.
fn range_value(v: String) -> HeaderValue {
    HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

/// What a request's `Range` asks of a stored entry (`stored`: its headers): a range is served
/// only for GET (RFC 9110 §14.2: Range is ignored for other methods, HEAD included), only from
/// a 200, only with one `Range` line, and only when `If-Range` (if sent) holds.
fn range_of(req: &FetchRequest, entry: &Entry, stored: &HeaderMap, now_ms: i64) -> RangeAnswer {
    if entry.status != 200 {
        return RangeAnswer::Whole;
    }
    let now_secs = now_ms.div_euclid(1000);
    match requested_range(&req.method, &req.client_headers, stored, now_secs) {
        Some(value) => parse_range(value, entry.body.len() as u64),
        None => RangeAnswer::Whole,
    }
}

/// How a response fetched now was forwarded and kept, for its `Cache-Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// RFC 9211 `fwd`: `uri-miss`, `vary-miss`, `stale` (a stale entry refetched),
    /// `request` (the client's `no-cache`).
    pub fwd: &'static str,
    /// Stored: its remaining freshness, seconds (`ttl`; misses are never kept by the L1,
    /// so this stays true).
    pub stored_ttl: Option<u64>,
}

/// The client answer for a response fetched now (`MISS`): the origin's headers as relayed to a
/// client (`client_headers`, already stripped), `age` (the §4.2.3 corrected initial age, sent
/// when it is not zero or the origin sent an `Age`: RFC 9111 §5.1 wants it on every answer
/// that passed through a cache with one), `Cache-Status`, and a 304 instead when the client's
/// conditional request matches.
pub fn origin_answer(
    req: &FetchRequest,
    status: StatusCode,
    mut client_headers: HeaderMap,
    body: Bytes,
    age: Option<u64>,
    how: Forwarded,
    now_ms: i64,
) -> Answer {
    if let Some(a) = age {
        client_headers.insert("age", HeaderValue::from(a));
    }
    client_headers.insert("x-cache", HeaderValue::from_static("MISS"));
    let mut cs = format!("hzcache; fwd={}; fwd-status={}", how.fwd, status.as_u16());
    if let Some(ttl) = how.stored_ttl {
        cs.push_str(&format!("; stored; ttl={ttl}"));
    }
    let cs = cache_status_value(cs);
    client_headers.insert(CACHE_STATUS, cs.clone());
    if not_modified(
        &req.client_headers,
        status.as_u16(),
        &client_headers,
        now_ms.div_euclid(1000),
    ) {
        return not_modified_answer("miss", &client_headers, age, "MISS", cs);
    }
    Answer::outcome("miss", status, client_headers, body)
}

/// The answer to `only-if-cached` when nothing stored may answer (RFC 9111 §5.2.1.7): a 504,
/// never an origin request.
pub fn only_if_cached_answer() -> Answer {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, text_plain());
    h.insert("x-cache", HeaderValue::from_static("MISS"));
    h.insert(
        CACHE_STATUS,
        HeaderValue::from_static("hzcache; detail=only-if-cached"),
    );
    Answer::outcome(
        "miss",
        StatusCode::GATEWAY_TIMEOUT,
        h,
        Bytes::from_static(b"not in the cache (only-if-cached)\n"),
    )
}

/// The answer when the origin's answer is not valid HTTP (RFC 9110 §15.6.3): a 502 with a
/// plain explanation, never stored; the filter relays it, so the origin is asked once.
pub fn invalid_origin_answer() -> Answer {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, text_plain());
    h.insert("x-cache", HeaderValue::from_static("MISS"));
    h.insert(
        CACHE_STATUS,
        HeaderValue::from_static("hzcache; fwd=uri-miss; detail=origin-invalid"),
    );
    Answer::outcome(
        "miss",
        StatusCode::BAD_GATEWAY,
        h,
        Bytes::from_static(b"the origin's answer was not valid HTTP\n"),
    )
}

/// Turns a `body`-mode value into a hit; `None` for a value of a type hzcache does not write
/// (an application's Portable, say): neither served nor replaced.
pub fn body_value_answer(req: &FetchRequest, value: Value) -> Option<Answer> {
    let (content_type, body) = match value {
        Value::String(s) => (req.content_type.clone(), Bytes::from(s)),
        Value::Bytes(b) => (req.content_type.clone(), b),
        Value::Json(s) => (HeaderValue::from_static("application/json"), Bytes::from(s)),
        Value::Int(v) => (text_plain(), Bytes::from(v.to_string())),
        Value::Long(v) => (text_plain(), Bytes::from(v.to_string())),
        _ => return None,
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert("x-cache", HeaderValue::from_static("HIT"));
    headers.insert(CACHE_STATUS, HeaderValue::from_static("hzcache; hit"));
    Some(Answer::outcome("hit", StatusCode::OK, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_request::tests::request;
    use crate::fetch_request::Mode;
    use crate::http::lifetime::Freshness;

    fn entry(stored_at_ms: i64, lifetime: u32) -> Entry {
        Entry {
            status: 200,
            freshness: Freshness {
                stored_at_ms,
                lifetime_secs: lifetime,
                initial_age_secs: 2,
                ..Freshness::default()
            },
            vary: vec![],
            tags: vec!["t".into()],
            headers: vec![
                ("etag".into(), Bytes::from_static(b"\"v\"")),
                ("cache-tag".into(), Bytes::from_static(b"t")),
                ("content-type".into(), Bytes::from_static(b"text/plain")),
            ],
            body: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn an_envelope_hit_carries_status_headers_age_and_body_but_not_cache_only_fields() {
        let a = entry_answer(
            &request(Mode::Envelope, &[]),
            &entry(10_000, 60),
            Served::Hit,
            15_500,
        );
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["age"], "7");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert_eq!(a.headers["x-cache"], "HIT");
        assert_eq!(a.headers[OUTCOME], "hit");
        assert!(!a.headers.contains_key("cache-tag"));
        assert_eq!(a.body, "hello");
    }

    #[test]
    fn a_matching_conditional_request_gets_a_304_without_body() {
        let req = request(Mode::Envelope, &[("if-none-match", "\"v\"")]);
        let a = entry_answer(&req, &entry(10_000, 60), Served::Hit, 10_000);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        assert!(a.body.is_empty());
        assert_eq!(a.headers["etag"], "\"v\"");
        assert!(!a.headers.contains_key("content-type"));
        let req = request(Mode::Envelope, &[("if-none-match", "\"other\"")]);
        assert_eq!(
            entry_answer(&req, &entry(10_000, 60), Served::Hit, 10_000).status,
            StatusCode::OK
        );
    }

    fn with_range(method: &'static str, extra: &[(&'static str, &'static str)]) -> Answer {
        let mut req = request(Mode::Envelope, extra);
        req.method = method.into();
        entry_answer(&req, &entry(10_000, 60), Served::Hit, 10_000)
    }

    /// A stored piece: bytes 10..=14 ("hello") of a 100-byte representation.
    fn piece() -> Entry {
        let mut e = entry(10_000, 60);
        e.status = 206;
        e.headers.push((
            "content-range".into(),
            Bytes::from_static(b"bytes 10-14/100"),
        ));
        e
    }

    fn from_piece(method: &'static str, extra: &[(&'static str, &'static str)]) -> Answer {
        let mut req = request(Mode::Envelope, extra);
        req.method = method.into();
        entry_answer(&req, &piece(), Served::Hit, 10_000)
    }

    #[test]
    fn rfc9111_3_3_a_stored_piece_answers_only_the_ranges_it_covers() {
        let a = from_piece("GET", &[("range", "bytes=11-13")]);
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(a.body, "ell");
        assert_eq!(a.headers["content-range"], "bytes 11-13/100");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert!(
            !a.headers.contains_key(FRESH_MS),
            "a piece is never kept by the L1"
        );
        let a = from_piece("GET", &[("range", "bytes=10-14"), ("if-range", "\"v\"")]);
        assert_eq!(
            (a.status, a.body.as_ref()),
            (StatusCode::PARTIAL_CONTENT, &b"hello"[..])
        );
        // The complete length is known: a range past it is a 416.
        let a = from_piece("GET", &[("range", "bytes=100-")]);
        assert_eq!(a.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(a.headers["content-range"], "bytes */100");
        // The whole, bytes it lacks, HEAD, a false If-Range, a conditional: never the piece.
        for (method, extra) in [
            ("GET", vec![]),
            ("GET", vec![("range", "bytes=0-14")]),
            ("GET", vec![("range", "bytes=10-14,20-30")]),
            ("GET", vec![("range", "bytes=10-14"), ("if-range", "\"w\"")]),
            ("GET", vec![("if-none-match", "\"v\"")]),
            ("HEAD", vec![("range", "bytes=10-14")]),
        ] {
            let a = from_piece(method, &extra);
            assert_eq!(a.outcome_name(), "pass", "{method} {extra:?}");
            assert!(a.body.is_empty());
        }
        let mut req = request(Mode::Envelope, &[("range", "bytes=0-14")]);
        req.method = "GET".into();
        let piece = Piece {
            first: 10,
            last: 14,
            complete: 100,
        };
        let missing = PieceAnswer::Missing {
            first: 0,
            last: 14,
            fetch_first: 0,
            fetch_last: 9,
        };
        assert_eq!(piece_plan(&req, &self::piece(), 0), Some((piece, missing)));
        // A body that is not the length its Content-Range says is no piece at all.
        let mut bad = self::piece();
        bad.body = Bytes::from_static(b"hell");
        assert_eq!(piece_plan(&req, &bad, 0), None);
    }

    #[test]
    fn a_single_range_on_a_stored_200_gets_a_206_with_the_slice() {
        let a = with_range("GET", &[("range", "bytes=1-3")]);
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(a.body, "ell");
        assert_eq!(a.headers["content-range"], "bytes 1-3/5");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert_eq!(a.headers["content-type"], "text/plain");
        assert_eq!(
            (a.headers["x-cache"].as_bytes(), a.headers["age"].as_bytes()),
            (&b"HIT"[..], &b"2"[..])
        );
        assert_eq!(with_range("GET", &[("range", "bytes=-2")]).body, "lo");
        let a = with_range("GET", &[("range", "bytes=3-"), ("if-range", "\"v\"")]);
        assert_eq!(
            (a.status, a.body.as_ref()),
            (StatusCode::PARTIAL_CONTENT, &b"lo"[..])
        );
    }

    #[test]
    fn an_unsatisfiable_range_gets_a_416_with_the_length() {
        let a = with_range("GET", &[("range", "bytes=5-")]);
        assert_eq!(a.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(a.headers["content-range"], "bytes */5");
        assert!(a.body.is_empty() && !a.headers.contains_key("content-type"));
        assert_eq!(a.headers["etag"], "\"v\"");
    }

    #[test]
    fn ranges_are_ignored_for_head_multiple_ranges_a_false_if_range_and_non_200s() {
        for (method, extra) in [
            ("HEAD", vec![("range", "bytes=0-1")]),
            ("GET", vec![("range", "bytes=0-1,3-4")]),
            ("GET", vec![("range", "bytes=4-1")]),
            (
                "GET",
                vec![("range", "bytes=0-1"), ("if-range", "\"other\"")],
            ),
        ] {
            let a = with_range(method, &extra);
            assert_eq!(
                (a.status, a.body.as_ref()),
                (StatusCode::OK, &b"hello"[..]),
                "{method} {extra:?}"
            );
            assert!(!a.headers.contains_key("content-range"));
        }
        let mut e = entry(10_000, 60);
        e.status = 404;
        let a = entry_answer(
            &request(Mode::Envelope, &[("range", "bytes=0-1")]),
            &e,
            Served::Hit,
            10_000,
        );
        assert_eq!((a.status, a.body.len()), (StatusCode::NOT_FOUND, 5));
        // A matching conditional request still gets its 304 first (RFC 9110 §13.2.2).
        let a = with_range("GET", &[("range", "bytes=0-1"), ("if-none-match", "\"v\"")]);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn rfc9111_5_1_a_miss_carries_the_age_it_is_given_and_a_matching_client_gets_a_304() {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"v\""));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let body = Bytes::from_static(b"hello");
        let plain = request(Mode::Envelope, &[]);
        let fwd = Forwarded {
            fwd: "uri-miss",
            stored_ttl: Some(60),
        };
        let a = origin_answer(
            &plain,
            StatusCode::OK,
            h.clone(),
            body.clone(),
            None,
            fwd,
            0,
        );
        assert_eq!(
            (a.status, a.headers[OUTCOME].to_str().unwrap()),
            (StatusCode::OK, "miss")
        );
        assert!(!a.headers.contains_key("age"));
        assert_eq!(a.headers["x-cache"], "MISS");
        assert_eq!(
            a.headers[CACHE_STATUS],
            "hzcache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
        );
        assert_eq!(a.body, "hello");
        // `Age: 0` from the origin is relayed as such (§5.1).
        let a = origin_answer(
            &plain,
            StatusCode::OK,
            h.clone(),
            body.clone(),
            Some(0),
            fwd,
            0,
        );
        assert_eq!(a.headers["age"], "0");
        let unstored = Forwarded {
            fwd: "uri-miss",
            stored_ttl: None,
        };
        let a = origin_answer(
            &plain,
            StatusCode::OK,
            h.clone(),
            body.clone(),
            Some(3),
            unstored,
            0,
        );
        assert_eq!(a.headers["age"], "3");
        assert_eq!(
            a.headers[CACHE_STATUS],
            "hzcache; fwd=uri-miss; fwd-status=200"
        );
        let conditional = request(Mode::Envelope, &[("if-none-match", "\"v\"")]);
        let a = origin_answer(&conditional, StatusCode::OK, h, body, Some(4), fwd, 0);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        assert_eq!(a.headers["age"], "4");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert!(a.headers.contains_key(CACHE_STATUS));
        assert!(a.body.is_empty() && !a.headers.contains_key("content-type"));
    }

    #[test]
    fn rfc9211_cache_status_says_how_a_stored_entry_answered_and_only_hits_go_to_the_l1() {
        let req = request(Mode::Envelope, &[]);
        let e = entry(10_000, 60);
        let cs = |how: Served| {
            let a = entry_answer(&req, &e, how, 10_000);
            (
                a.headers[CACHE_STATUS].to_str().unwrap().to_string(),
                a.headers["x-cache"].to_str().unwrap().to_string(),
                a.headers.contains_key(FRESH_MS),
            )
        };
        assert_eq!(cs(Served::Hit), ("hzcache; hit".into(), "HIT".into(), true));
        assert_eq!(
            cs(Served::Stale("stale-if-error")),
            (
                "hzcache; hit; fwd=stale; detail=stale-if-error".into(),
                "STALE".into(),
                false
            )
        );
        assert_eq!(
            cs(Served::Revalidated("stale")),
            (
                "hzcache; fwd=stale; fwd-status=304".into(),
                "REVALIDATED".into(),
                false
            )
        );
        assert_eq!(
            cs(Served::Collapsed),
            (
                "hzcache; fwd=uri-miss; collapsed".into(),
                "HIT".into(),
                false
            )
        );
        // 304, 206 and 416 from an entry carry it too.
        let a = entry_answer(
            &request(Mode::Envelope, &[("if-none-match", "\"v\"")]),
            &e,
            Served::Hit,
            10_000,
        );
        assert_eq!(a.headers[CACHE_STATUS], "hzcache; hit");
        for r in ["bytes=0-1", "bytes=9-"] {
            let a = entry_answer(
                &request(Mode::Envelope, &[("range", r)]),
                &e,
                Served::Hit,
                10_000,
            );
            assert_eq!(a.headers[CACHE_STATUS], "hzcache; hit", "{r}");
        }
        assert_eq!(only_if_cached_answer().status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(invalid_origin_answer().status, StatusCode::BAD_GATEWAY);
        assert_eq!(invalid_origin_answer().outcome_name(), "miss");
    }

    #[test]
    fn a_body_mode_string_is_served_with_the_rule_content_type() {
        let Some(a) = body_value_answer(&request(Mode::Body, &[]), Value::String("v1".into()))
        else {
            panic!("expected a hit")
        };
        assert_eq!(a.body, "v1");
        assert_eq!(a.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(a.headers["x-cache"], "HIT");
    }

    #[test]
    fn a_body_mode_value_of_a_foreign_type_is_neither_served_nor_overwritten() {
        assert!(
            body_value_answer(&request(Mode::Body, &[]), Value::Other { type_id: -2 }).is_none()
        );
    }
}
