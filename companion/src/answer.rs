//! What the companion answers the filter ([`Answer`]: status, headers with
//! `x-hzcache-outcome`, body) and how each source of an answer becomes one: a stored entry
//! (`HIT`, `STALE`, `REVALIDATED`, with `age`), a `body`-mode value, an origin response
//! (`MISS`), the 304 a conditional client gets instead when its validator matches, and the
//! 206 or 416 a `Range` request gets from a stored 200 ([`range`](crate::range)). Pure: the
//! caller says what was found and when; nothing here counts metrics or reads a clock.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use hyper::StatusCode;

use crate::entry::{header_map, Entry};
use crate::fetch_request::FetchRequest;
use crate::freshness::{self, current_age, not_modified};
use crate::hazelcast::Value;
use crate::headers::strip_for_client_in_place;
use crate::range::{if_range_allows, parse_range, RangeAnswer};

pub const OUTCOME: &str = "x-hzcache-outcome";

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
pub const FRESH_MS: &str = "x-hzcache-fresh-ms";

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
) -> Answer {
    let mut h = HeaderMap::new();
    for name in freshness::NOT_MODIFIED_HEADERS {
        for v in from.get_all(name) {
            h.append(name, v.clone());
        }
    }
    if let Some(age) = age {
        h.insert("age", HeaderValue::from(age));
    }
    h.insert("x-cache", HeaderValue::from_static(label));
    Answer::outcome(outcome, StatusCode::NOT_MODIFIED, h, Bytes::new())
}

/// The client answer for a stored entry: its status, headers and body, `age`, `x-cache`; a 304
/// when the client's conditional request matches. `label` is the `x-cache` value.
pub fn entry_answer(req: &FetchRequest, entry: &Entry, label: &'static str, now_ms: i64) -> Answer {
    // The hit path: one header map, built once from the entry and trimmed in place for the
    // client (no second copy).
    let mut headers = header_map(&entry.headers);
    let age = current_age(&entry.freshness, now_ms);
    if not_modified(
        &req.client_headers,
        entry.status,
        &headers,
        now_ms.div_euclid(1000),
    ) {
        return not_modified_answer("hit", &headers, Some(age), label);
    }
    let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    let range = range_of(req, entry, &headers, now_ms);
    strip_for_client_in_place(&mut headers);
    headers.insert("age", HeaderValue::from(age));
    headers.insert("x-cache", HeaderValue::from_static(label));
    let len = entry.body.len() as u64;
    match range {
        // For HEAD the body still goes to the filter: Envoy's local reply for a HEAD request
        // sets Content-Length from it and sends no body (docs/callout-protocol.md).
        RangeAnswer::Whole => {
            // The whole stored response, fresh: the filter may keep a copy in its L1 for as
            // long as it stays fresh (never a 304, a slice or a stale answer).
            let fresh_ms = if label == "STALE" {
                0
            } else {
                freshness::fresh_ms_left(&entry.freshness, now_ms)
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
                content_range(format!("bytes {first}-{last}/{len}")),
            );
            // `parse_range` keeps `first ≤ last < len` = body length, so the slice is in bounds.
            let body = entry.body.slice(first as usize..=last as usize);
            Answer::outcome("hit", StatusCode::PARTIAL_CONTENT, headers, body)
        }
        RangeAnswer::Unsatisfiable => {
            // RFC 9110 §15.5.17: the current length, and none of the representation's own
            // content fields (there is no content).
            let mut h = HeaderMap::new();
            for name in [
                "date",
                "etag",
                "last-modified",
                "cache-control",
                "expires",
                "vary",
            ] {
                for v in headers.get_all(name) {
                    h.append(name, v.clone());
                }
            }
            h.insert(CONTENT_RANGE, content_range(format!("bytes */{len}")));
            h.insert("age", HeaderValue::from(age));
            h.insert("x-cache", HeaderValue::from_static(label));
            Answer::outcome("hit", StatusCode::RANGE_NOT_SATISFIABLE, h, Bytes::new())
        }
    }
}

/// A `Content-Range` value; built from digits and ASCII only, so it is always a valid field.
fn content_range(v: String) -> HeaderValue {
    HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

/// What a request's `Range` asks of a stored entry (`stored`: its headers): a range is served
/// only for GET (RFC 9110 §14.2: Range is ignored for other methods, HEAD included), only from
/// a 200, only with one `Range` line, and only when `If-Range` (if sent) holds.
fn range_of(req: &FetchRequest, entry: &Entry, stored: &HeaderMap, now_ms: i64) -> RangeAnswer {
    if req.method != "GET" || entry.status != 200 {
        return RangeAnswer::Whole;
    }
    let mut lines = req.client_headers.get_all(RANGE).iter();
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return RangeAnswer::Whole;
    };
    if !if_range_allows(&req.client_headers, stored, now_ms.div_euclid(1000)) {
        return RangeAnswer::Whole;
    }
    parse_range(value.as_bytes(), entry.body.len() as u64)
}

/// The client answer for a response fetched now (`MISS`): the origin's headers as relayed to a
/// client (`client_headers`, already stripped), `age` when it was stored with a non-zero
/// initial age, and a 304 instead when the client's conditional request matches.
pub fn origin_answer(
    req: &FetchRequest,
    status: StatusCode,
    mut client_headers: HeaderMap,
    body: Bytes,
    stored_age: Option<u32>,
    now_ms: i64,
) -> Answer {
    let age = stored_age.filter(|a| *a > 0).map(u64::from);
    if let Some(a) = age {
        client_headers.insert("age", HeaderValue::from(a));
    }
    client_headers.insert("x-cache", HeaderValue::from_static("MISS"));
    if not_modified(
        &req.client_headers,
        status.as_u16(),
        &client_headers,
        now_ms.div_euclid(1000),
    ) {
        return not_modified_answer("miss", &client_headers, age, "MISS");
    }
    Answer::outcome("miss", status, client_headers, body)
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
    Some(Answer::outcome("hit", StatusCode::OK, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_request::tests::request;
    use crate::fetch_request::Mode;
    use crate::freshness::Freshness;

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
            "HIT",
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
        let a = entry_answer(&req, &entry(10_000, 60), "HIT", 10_000);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        assert!(a.body.is_empty());
        assert_eq!(a.headers["etag"], "\"v\"");
        assert!(!a.headers.contains_key("content-type"));
        let req = request(Mode::Envelope, &[("if-none-match", "\"other\"")]);
        assert_eq!(
            entry_answer(&req, &entry(10_000, 60), "HIT", 10_000).status,
            StatusCode::OK
        );
    }

    fn with_range(method: &'static str, extra: &[(&'static str, &'static str)]) -> Answer {
        let mut req = request(Mode::Envelope, extra);
        req.method = method.into();
        entry_answer(&req, &entry(10_000, 60), "HIT", 10_000)
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
            "HIT",
            10_000,
        );
        assert_eq!((a.status, a.body.len()), (StatusCode::NOT_FOUND, 5));
        // A matching conditional request still gets its 304 first (RFC 9110 §13.2.2).
        let a = with_range("GET", &[("range", "bytes=0-1"), ("if-none-match", "\"v\"")]);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn a_miss_carries_a_nonzero_stored_age_and_a_matching_client_gets_a_304() {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"v\""));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let body = Bytes::from_static(b"hello");
        let plain = request(Mode::Envelope, &[]);
        let a = origin_answer(&plain, StatusCode::OK, h.clone(), body.clone(), Some(0), 0);
        assert_eq!(
            (a.status, a.headers[OUTCOME].to_str().unwrap()),
            (StatusCode::OK, "miss")
        );
        assert!(!a.headers.contains_key("age"), "a zero age is not sent");
        assert_eq!(a.headers["x-cache"], "MISS");
        assert_eq!(a.body, "hello");
        let conditional = request(Mode::Envelope, &[("if-none-match", "\"v\"")]);
        let a = origin_answer(&conditional, StatusCode::OK, h, body, Some(4), 0);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        assert_eq!(a.headers["age"], "4");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert!(a.body.is_empty() && !a.headers.contains_key("content-type"));
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
