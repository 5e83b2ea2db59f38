//! Validation (RFC 9111 §4.3; RFC 9110 §13): whether a response has validators, the
//! conditional request that revalidates a stored one (§4.3.1), and when a client's own
//! conditional request (`If-None-Match`, `If-Modified-Since`) is answered 304 from storage
//! (§4.3.2), with the fields that 304 carries (RFC 9110 §15.4.5).

use hyper::header::HeaderMap;

use crate::http::date::{date_value, parse_http_date};
use crate::http::syntax::trim;

/// Whether the response has a validator for a conditional request.
pub fn has_validators(response: &HeaderMap) -> bool {
    response.contains_key("etag") || response.contains_key("last-modified")
}

/// The conditional request fields that revalidate a stored response (RFC 9111 §4.3.1):
/// `If-None-Match` from its `ETag`, `If-Modified-Since` from its `Last-Modified` (empty:
/// nothing to validate with).
pub fn conditional_request(stored: &HeaderMap) -> HeaderMap {
    let mut conditional = HeaderMap::new();
    if let Some(etag) = stored.get("etag") {
        conditional.insert("if-none-match", etag.clone());
    }
    if let Some(lm) = stored.get("last-modified") {
        conditional.insert("if-modified-since", lm.clone());
    }
    conditional
}

/// A response's strong validator (RFC 9110 §8.8.1): its one `ETag` when that is strong
/// (not `W/`); without an `ETag`, its one `Last-Modified` when that is at least a second before
/// its one `Date` (§8.8.2.2: only then can two changes not share a timestamp). A weak `ETag`
/// hides `Last-Modified`: the origin said the tag is what identifies the representation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrongValidator {
    ETag(Vec<u8>),
    LastModified(i64),
}

pub fn strong_validator(h: &HeaderMap, now_secs: i64) -> Option<StrongValidator> {
    let one = |name: &str| {
        let mut lines = h.get_all(name).iter();
        match (lines.next(), lines.next()) {
            (Some(v), None) => Some(trim(v.as_bytes())),
            _ => None,
        }
    };
    if h.contains_key("etag") {
        let tag = one("etag")?;
        let strong = tag.len() >= 2 && tag.starts_with(b"\"") && tag.ends_with(b"\"");
        return strong.then(|| StrongValidator::ETag(tag.to_vec()));
    }
    let modified = parse_http_date(one("last-modified")?, now_secs)?;
    let date = parse_http_date(one("date")?, now_secs)?;
    (modified <= date.saturating_sub(1)).then_some(StrongValidator::LastModified(modified))
}

fn etag_opaque(t: &[u8]) -> &[u8] {
    let t = trim(t);
    t.strip_prefix(b"W/").unwrap_or(t)
}

/// Whether the client's `If-None-Match` / `If-Modified-Since` is satisfied by a stored
/// response with these headers, so that a 304 answers it. `If-None-Match` takes precedence
/// (§13.2.2); weak comparison. Only 200 responses are ever answered 304.
pub fn not_modified(request: &HeaderMap, status: u16, stored: &HeaderMap, now_secs: i64) -> bool {
    if status != 200 {
        return false;
    }
    if request.contains_key("if-none-match") {
        let Some(etag) = stored.get("etag") else {
            return false;
        };
        let mine = etag_opaque(etag.as_bytes());
        return request.get_all("if-none-match").iter().any(|line| {
            line.as_bytes()
                .split(|&b| b == b',')
                .map(trim)
                .any(|t| t == b"*" || (!t.is_empty() && etag_opaque(t) == mine))
        });
    }
    let Some(ims) = request.get("if-modified-since") else {
        return false;
    };
    let Some(ims) = parse_http_date(ims.as_bytes(), now_secs) else {
        return false;
    };
    // The stored response's last modification: `Last-Modified`, or without one its `Date`
    // (RFC 9111 §4.3.2; RFC 9110 §13.1.3).
    let modified = match stored.get("last-modified") {
        Some(v) => parse_http_date(v.as_bytes(), now_secs),
        None => date_value(stored, now_secs),
    };
    modified.is_some_and(|m| m <= ims)
}

/// The headers a 304 carries from the stored response (RFC 9110 §15.4.5).
pub const NOT_MODIFIED_HEADERS: [&str; 7] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "last-modified",
];

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn client_conditionals_match_by_weak_etag_or_date() {
        let stored = headers(&[
            ("etag", "W/\"v1\""),
            ("last-modified", "Tue, 14 Nov 2023 22:00:00 GMT"),
        ]);
        let yes =
            |req: &[(&'static str, &'static str)]| not_modified(&headers(req), 200, &stored, NOW);
        assert!(yes(&[("if-none-match", "\"v1\"")]));
        assert!(yes(&[("if-none-match", "\"x\", W/\"v1\"")]));
        assert!(yes(&[("if-none-match", "*")]));
        assert!(!yes(&[("if-none-match", "\"v2\"")]));
        // If-None-Match wins over If-Modified-Since.
        assert!(!yes(&[
            ("if-none-match", "\"v2\""),
            ("if-modified-since", "Tue, 14 Nov 2023 22:10:00 GMT")
        ]));
        assert!(yes(&[(
            "if-modified-since",
            "Tue, 14 Nov 2023 22:10:00 GMT"
        )]));
        assert!(yes(&[(
            "if-modified-since",
            "Tue, 14 Nov 2023 22:00:00 GMT"
        )]));
        assert!(!yes(&[(
            "if-modified-since",
            "Tue, 14 Nov 2023 21:00:00 GMT"
        )]));
        assert!(!yes(&[("if-modified-since", "garbage")]));
        assert!(!yes(&[]));
        assert!(!not_modified(
            &headers(&[("if-none-match", "*")]),
            404,
            &stored,
            NOW
        ));
    }

    #[test]
    fn rfc9110_13_1_3_if_modified_since_uses_the_stored_date_without_last_modified() {
        let stored = headers(&[("date", "Tue, 14 Nov 2023 22:00:00 GMT")]);
        let ims = |v: &'static str| {
            not_modified(&headers(&[("if-modified-since", v)]), 200, &stored, NOW)
        };
        assert!(ims("Tue, 14 Nov 2023 22:00:00 GMT"));
        assert!(ims("Tue, 14 Nov 2023 22:10:00 GMT"));
        assert!(!ims("Tue, 14 Nov 2023 21:59:59 GMT"));
        assert!(!not_modified(
            &headers(&[("if-modified-since", "Tue, 14 Nov 2023 22:10:00 GMT")]),
            200,
            &HeaderMap::new(),
            NOW
        ));
    }
}
