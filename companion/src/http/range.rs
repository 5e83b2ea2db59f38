//! Byte ranges served from a stored 200 (RFC 9110 §14): the client's `Range` and `If-Range`
//! read into what to answer — one slice (206 with `Content-Range`), nothing satisfiable (416
//! with `Content-Range: bytes */len`) or the whole 200. Pure: the caller passes the request
//! headers, the stored response headers and the body length; building the answer is
//! `answer.rs`'s.
//!
//! Only a single `bytes` range is served. Multiple ranges (which would need
//! `multipart/byteranges`), other units, malformed or invalid specifiers (`bytes=5-2`) and a
//! false `If-Range` get the whole 200, which RFC 9110 §14.2 allows for any range request.
//! The origin is never asked for a range: the cache stores whole 200s only.

use hyper::header::{HeaderMap, RANGE};

use crate::http::date::parse_http_date;
use crate::http::syntax::trim;

/// Longest `Range` value read. One `bytes=first-last` of two 20-digit numbers is 48 bytes;
/// past this the field names many ranges (served whole anyway) or is junk, so it is not
/// scanned at all: the work per request stays bounded whatever the client sends.
pub const MAX_RANGE_FIELD_BYTES: usize = 256;

/// What to answer a `Range` request from a stored representation of a known length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Serve the whole 200: no range asked, or one this cache does not serve.
    Whole,
    /// 206 with bytes `first..=last` of the body (`last` < length).
    Partial { first: u64, last: u64 },
    /// 416: a valid single range that no byte of the representation satisfies.
    Unsatisfiable,
}

/// One range-spec of a `bytes` range-set (RFC 9110 §14.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last` (`last` ≥ `first`).
    Int { first: u64, last: Option<u64> },
    /// `-suffix`: the last `suffix` bytes.
    Suffix(u64),
}

/// 1*DIGIT as a number, saturating at `u64::MAX` (a position that large is past any body, so
/// saturation never changes an answer); `None` for anything but digits.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn parse_spec(s: &[u8]) -> Option<Spec> {
    let dash = s.iter().position(|&b| b == b'-')?;
    let (first, last) = (&s[..dash], &s[dash + 1..]);
    if first.is_empty() {
        return digits(last).map(Spec::Suffix);
    }
    let first = digits(first)?;
    if last.is_empty() {
        return Some(Spec::Int { first, last: None });
    }
    let last = digits(last)?;
    // RFC 9110 §14.1.1: last-pos below first-pos makes the range-spec invalid.
    (last >= first).then_some(Spec::Int {
        first,
        last: Some(last),
    })
}

/// The single `bytes` range-spec of a `Range` value; `None` when the value is malformed,
/// names another unit or holds more than one range-spec.
fn single_spec(value: &[u8]) -> Option<Spec> {
    if value.len() > MAX_RANGE_FIELD_BYTES {
        return None;
    }
    let eq = value.iter().position(|&b| b == b'=')?;
    // Range units are case-insensitive (RFC 9110 §14.1).
    if !value[..eq].eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    // A list (RFC 9110 §5.6.1): empty elements and whitespace around commas are allowed.
    let mut specs = value[eq + 1..]
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty());
    let one = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    parse_spec(one)
}

/// What a `Range` value asks of a representation of `len` bytes (RFC 9110 §14.1.1–14.1.2).
/// An empty representation is always served whole (its only "satisfiable" range is empty).
pub fn parse_range(value: &[u8], len: u64) -> RangeAnswer {
    let Some(spec) = single_spec(value) else {
        return RangeAnswer::Whole;
    };
    if len == 0 {
        return RangeAnswer::Whole;
    }
    match spec {
        Spec::Int { first, .. } if first >= len => RangeAnswer::Unsatisfiable,
        Spec::Int { first, last } => RangeAnswer::Partial {
            first,
            last: last.map_or(len - 1, |l| l.min(len - 1)),
        },
        Spec::Suffix(0) => RangeAnswer::Unsatisfiable,
        Spec::Suffix(n) => RangeAnswer::Partial {
            first: len.saturating_sub(n),
            last: len - 1,
        },
    }
}

/// The one `Range` value a request asks a stored representation for (RFC 9110 §14.2): only
/// for GET (Range is ignored for other methods, HEAD included), only with one `Range` line,
/// and only when `If-Range` (if sent) holds for `stored`, the stored response's headers.
/// `None`: the whole representation is wanted.
pub fn requested_range<'a>(
    method: &str,
    request: &'a HeaderMap,
    stored: &HeaderMap,
    now_secs: i64,
) -> Option<&'a [u8]> {
    if method != "GET" {
        return None;
    }
    let mut lines = request.get_all(RANGE).iter();
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return None;
    };
    if_range_allows(request, stored, now_secs).then(|| value.as_bytes())
}

/// The fields of the stored response a 416 carries (RFC 9110 §15.5.17): its validators and
/// caching fields, none of the representation's content fields (there is no content).
pub const UNSATISFIABLE_HEADERS: [&str; 6] = [
    "date",
    "etag",
    "last-modified",
    "cache-control",
    "expires",
    "vary",
];

/// Whether `If-Range` (when sent) lets a range be served from the stored response `stored`
/// (RFC 9110 §13.1.5): a strong entity-tag identical to the stored strong `ETag`, or an
/// HTTP-date equal to the stored `Last-Modified` when that is strong (at least one second
/// before the stored `Date`, §8.8.2.2). Anything else — a weak tag, no stored validator, a
/// malformed value, several `If-Range` lines — is false: the whole 200 is sent.
pub fn if_range_allows(request: &HeaderMap, stored: &HeaderMap, now_secs: i64) -> bool {
    let mut lines = request.get_all("if-range").iter();
    let Some(line) = lines.next() else {
        return true;
    };
    if lines.next().is_some() {
        return false;
    }
    let v = trim(line.as_bytes());
    if v.starts_with(b"\"") || v.starts_with(b"W/") {
        // An entity-tag: a strong comparison, so neither side may be weak.
        let strong = |t: &[u8]| t.len() >= 2 && t.starts_with(b"\"") && t.ends_with(b"\"");
        let mut etags = stored.get_all("etag").iter();
        return match (etags.next(), etags.next()) {
            (Some(e), None) => {
                let e = trim(e.as_bytes());
                strong(v) && strong(e) && v == e
            }
            _ => false,
        };
    }
    let Some(date) = parse_http_date(v, now_secs) else {
        return false;
    };
    let one = |name: &str| {
        let mut all = stored.get_all(name).iter();
        match (all.next(), all.next()) {
            (Some(x), None) => parse_http_date(x.as_bytes(), now_secs),
            _ => None,
        }
    };
    match (one("last-modified"), one("date")) {
        (Some(lm), Some(d)) => lm == date && lm <= d.saturating_sub(1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use RangeAnswer::{Partial, Unsatisfiable, Whole};

    fn p(v: &str, len: u64) -> RangeAnswer {
        parse_range(v.as_bytes(), len)
    }

    #[test]
    fn the_three_single_range_forms_select_the_right_bytes() {
        assert_eq!(p("bytes=0-9", 100), Partial { first: 0, last: 9 });
        assert_eq!(
            p("bytes=10-", 100),
            Partial {
                first: 10,
                last: 99
            }
        );
        assert_eq!(
            p("bytes=-5", 100),
            Partial {
                first: 95,
                last: 99
            }
        );
        assert_eq!(
            p("bytes=99-99", 100),
            Partial {
                first: 99,
                last: 99
            }
        );
        // A last-pos past the end, or a suffix longer than the body, means "to the end".
        assert_eq!(
            p("bytes=90-1000", 100),
            Partial {
                first: 90,
                last: 99
            }
        );
        assert_eq!(p("bytes=-1000", 100), Partial { first: 0, last: 99 });
        // Case-insensitive unit, whitespace around the list elements, empty elements.
        assert_eq!(p("Bytes=0-0", 10), Partial { first: 0, last: 0 });
        assert_eq!(p("bytes= 1-2 ", 10), Partial { first: 1, last: 2 });
        assert_eq!(p("bytes=,1-2,,", 10), Partial { first: 1, last: 2 });
    }

    #[test]
    fn a_range_starting_past_the_end_or_an_empty_suffix_is_unsatisfiable() {
        assert_eq!(p("bytes=100-", 100), Unsatisfiable);
        assert_eq!(p("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(p("bytes=-0", 100), Unsatisfiable);
        assert_eq!(p("bytes=18446744073709551615-", 100), Unsatisfiable);
    }

    #[test]
    fn multiple_ranges_other_units_and_malformed_values_are_served_whole() {
        for v in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=0-1,5-6",
            "bytes=0-1, 0-1",
            "items=0-1",
            "bytes 0-1",
            "bytes = 0-1",
            "bytes=5-2",
            "bytes=0 - 9",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=-+5",
            "bytes=0x10-",
            "bytes=1-2;x",
            "bytes=\u{e9}-1",
        ] {
            assert_eq!(p(v, 100), Whole, "{v:?}");
        }
        // An empty representation is always sent whole.
        assert_eq!(p("bytes=0-0", 0), Whole);
        assert_eq!(p("bytes=-1", 0), Whole);
    }

    #[test]
    fn huge_numbers_saturate_instead_of_overflowing() {
        let huge = "9".repeat(60);
        assert_eq!(
            p(&format!("bytes=0-{huge}"), 10),
            Partial { first: 0, last: 9 }
        );
        assert_eq!(
            p(&format!("bytes=-{huge}"), 10),
            Partial { first: 0, last: 9 }
        );
        assert_eq!(p(&format!("bytes={huge}-"), 10), Unsatisfiable);
        assert_eq!(
            p("bytes=18446744073709551614-18446744073709551615", u64::MAX),
            Partial {
                first: u64::MAX - 1,
                last: u64::MAX - 1
            }
        );
    }

    #[test]
    fn long_values_are_not_scanned_and_are_served_whole() {
        let many = format!("bytes=0-1{}", ",".repeat(100_000));
        assert_eq!(p(&many, 100), Whole);
        let many_ranges = format!("bytes={}", "0-1,".repeat(10_000));
        assert_eq!(p(&many_ranges, 100), Whole);
        let spaces = format!("bytes=0-1{}", " ".repeat(MAX_RANGE_FIELD_BYTES));
        assert_eq!(p(&spaces, 100), Whole);
    }

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn if_range_with_a_strong_etag_must_match_exactly() {
        let stored = h(&[("etag", "\"v1\"")]);
        assert!(if_range_allows(&h(&[]), &stored, NOW), "no If-Range");
        assert!(if_range_allows(&h(&[("if-range", "\"v1\"")]), &stored, NOW));
        for v in ["\"v2\"", "W/\"v1\"", "\"v1", "v1", "*"] {
            assert!(
                !if_range_allows(&h(&[("if-range", v)]), &stored, NOW),
                "{v}"
            );
        }
        let weak = h(&[("etag", "W/\"v1\"")]);
        assert!(!if_range_allows(
            &h(&[("if-range", "W/\"v1\"")]),
            &weak,
            NOW
        ));
        assert!(!if_range_allows(&h(&[("if-range", "\"v1\"")]), &weak, NOW));
        assert!(!if_range_allows(
            &h(&[("if-range", "\"v1\"")]),
            &h(&[]),
            NOW
        ));
        let twice = h(&[("if-range", "\"v1\""), ("if-range", "\"v1\"")]);
        assert!(!if_range_allows(&twice, &stored, NOW));
    }

    #[test]
    fn rfc9110_14_2_a_range_is_read_for_get_only_from_one_line_when_if_range_holds() {
        let stored = h(&[("etag", "\"v1\"")]);
        let one = h(&[("range", "bytes=0-1")]);
        assert_eq!(
            requested_range("GET", &one, &stored, NOW),
            Some(&b"bytes=0-1"[..])
        );
        assert_eq!(requested_range("HEAD", &one, &stored, NOW), None);
        assert_eq!(requested_range("GET", &h(&[]), &stored, NOW), None);
        let two = h(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
        assert_eq!(requested_range("GET", &two, &stored, NOW), None);
        let stale = h(&[("range", "bytes=0-1"), ("if-range", "\"v0\"")]);
        assert_eq!(requested_range("GET", &stale, &stored, NOW), None);
    }

    #[test]
    fn if_range_with_a_date_needs_an_equal_strong_last_modified() {
        let lm = "Tue, 14 Nov 2023 22:00:00 GMT";
        let strong = h(&[
            ("last-modified", lm),
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        assert!(if_range_allows(&h(&[("if-range", lm)]), &strong, NOW));
        let other = h(&[("if-range", "Tue, 14 Nov 2023 21:59:59 GMT")]);
        assert!(!if_range_allows(&other, &strong, NOW));
        // Last-Modified within a second of Date is weak (RFC 9110 §8.8.2.2).
        let weak = h(&[("last-modified", lm), ("date", lm)]);
        assert!(!if_range_allows(&h(&[("if-range", lm)]), &weak, NOW));
        let no_date = h(&[("last-modified", lm)]);
        assert!(!if_range_allows(&h(&[("if-range", lm)]), &no_date, NOW));
        assert!(!if_range_allows(
            &h(&[("if-range", "yesterday")]),
            &strong,
            NOW
        ));
    }
}
