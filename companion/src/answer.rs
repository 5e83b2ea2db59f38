//! What the companion answers the filter ([`Answer`]: status, headers with
//! `x-hzcache-outcome`, body) and how each source of an answer becomes one: a stored entry
//! (`HIT`, `STALE`, `REVALIDATED`, with `age`), a `body`-mode value, an origin response
//! (`MISS`), and the 304 a conditional client gets instead when its validator matches. Pure:
//! the caller says what was found and when; nothing here counts metrics or reads a clock.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;

use crate::entry::{header_map, Entry};
use crate::fetch_request::FetchRequest;
use crate::freshness::{self, current_age, not_modified};
use crate::hazelcast::Value;
use crate::headers::strip_for_client_in_place;

pub const OUTCOME: &str = "x-hzcache-outcome";

/// What the companion answers the filter: status, headers (with the outcome) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
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
    strip_for_client_in_place(&mut headers);
    headers.insert("age", HeaderValue::from(age));
    headers.insert("x-cache", HeaderValue::from_static(label));
    // For HEAD the body still goes to the filter: Envoy's local reply for a HEAD request sets
    // Content-Length from it and sends no body (docs/callout-protocol.md).
    Answer::outcome("hit", status, headers, entry.body.clone())
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
