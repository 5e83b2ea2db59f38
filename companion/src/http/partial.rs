//! Partial content (RFC 9111 §3.3, §3.4; RFC 9110 §14.4, §15.3.7): which 206 responses may be
//! stored as a piece of a representation, what a later `Range` request asks of a stored piece
//! (served from it, the bytes still missing, or the whole), and when a stored piece and a new
//! one may be combined — only pieces of one representation (the same strong validator and the
//! same complete length), never across an `ETag` or `Last-Modified` change, which would be a
//! cached wrong answer. Pure: the cache flow fetches and stores.
//!
//! A piece is one contiguous byte range: what is missing for a request is fetched so that the
//! stored piece and the new one touch or overlap, so their union is again one piece, and the
//! whole representation once it reaches from the first byte to the last.

use hyper::header::{HeaderMap, HeaderValue, CONTENT_RANGE};

use crate::http::range::{parse_range, RangeAnswer};
use crate::http::syntax::trim;
use crate::http::validation::{strong_validator, StrongValidator};
use crate::http::vary::vary_names;

/// Longest `Content-Range` value read: `bytes ` and three 20-digit numbers are 68 bytes.
const MAX_CONTENT_RANGE_BYTES: usize = 80;

/// One contiguous piece of a representation: bytes `first..=last` of `complete`
/// (`first ≤ last < complete`, which [`parse_content_range`] guarantees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub first: u64,
    pub last: u64,
    pub complete: u64,
}

impl Piece {
    /// Its length in bytes (never 0, so there is no `is_empty` to ask).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Whether it is the whole representation.
    pub fn is_whole(&self) -> bool {
        self.first == 0 && self.last + 1 == self.complete
    }

    pub fn covers(&self, first: u64, last: u64) -> bool {
        self.first <= first && last <= self.last
    }

    /// Its `Content-Range` value (RFC 9110 §14.4).
    pub fn content_range(&self) -> HeaderValue {
        let v = format!("bytes {}-{}/{}", self.first, self.last, self.complete);
        HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
    }
}

/// 1*DIGIT as a number; `None` for anything else or a value past `u64` (an absurd length is
/// refused, not clamped: clamping would describe other bytes).
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A `Content-Range` value of one satisfied byte range, `bytes first-last/complete` (RFC 9110
/// §14.4), with `first ≤ last < complete`. `None` for anything else: another unit, an unknown
/// complete length (`/*`), the unsatisfied form (`bytes */len`), a range past its own end.
pub fn parse_content_range(v: &[u8]) -> Option<Piece> {
    let v = trim(v);
    if v.len() > MAX_CONTENT_RANGE_BYTES {
        return None;
    }
    let space = v.iter().position(|&b| b == b' ')?;
    if !v[..space].eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let rest = &v[space + 1..];
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (range, complete) = (&rest[..slash], &rest[slash + 1..]);
    let dash = range.iter().position(|&b| b == b'-')?;
    let first = number(&range[..dash])?;
    let last = number(&range[dash + 1..])?;
    let complete = number(complete)?;
    (first <= last && last < complete).then_some(Piece {
        first,
        last,
        complete,
    })
}

/// The piece a 206's headers describe: exactly one valid `Content-Range` line.
pub fn content_range(h: &HeaderMap) -> Option<Piece> {
    let mut lines = h.get_all(CONTENT_RANGE).iter();
    match (lines.next(), lines.next()) {
        (Some(line), None) => parse_content_range(line.as_bytes()),
        _ => None,
    }
}

/// Whether a 206 may be stored as a piece (RFC 9111 §3.3), and which piece: one valid
/// `Content-Range` (a `multipart/byteranges` answer has none and is relayed, not stored),
/// exactly as many body bytes as it says, a complete length within `max_entry_bytes` (the
/// whole must fit the entry limit once completed), and no `Vary` (a piece is kept under the
/// primary key only).
pub fn storable_piece(
    headers: &HeaderMap,
    body_len: usize,
    max_entry_bytes: usize,
) -> Result<Piece, &'static str> {
    let piece = content_range(headers).ok_or("206 without exactly one valid Content-Range")?;
    if piece.len() != body_len as u64 {
        return Err("206 body length differs from its Content-Range");
    }
    if piece.complete > max_entry_bytes as u64 {
        return Err("206 of a representation larger than the entry limit");
    }
    if !vary_names(headers).is_some_and(|n| n.is_empty()) {
        return Err("206 that varies");
    }
    Ok(piece)
}

/// Whether two pieces are of one representation and so may be combined (RFC 9111 §3.4): the
/// same strong validator on both (RFC 9110 §8.8.1) and the same complete length. Without a
/// strong validator nothing is combined.
pub fn may_combine(
    stored: &HeaderMap,
    stored_piece: Piece,
    new: &HeaderMap,
    new_piece: Piece,
    now_secs: i64,
) -> bool {
    stored_piece.complete == new_piece.complete
        && matches!(
            (strong_validator(stored, now_secs), strong_validator(new, now_secs)),
            (Some(a), Some(b)) if a == b
        )
}

/// The `If-Range` that asks the origin for more of the stored piece's representation (RFC
/// 9110 §13.1.5): its strong `ETag`, or its strong `Last-Modified`. `None` without a strong
/// validator: then nothing could be combined, and the piece is not completed.
pub fn if_range_for(stored: &HeaderMap, now_secs: i64) -> Option<HeaderValue> {
    match strong_validator(stored, now_secs)? {
        StrongValidator::ETag(_) => stored.get("etag").cloned(),
        StrongValidator::LastModified(_) => stored.get("last-modified").cloned(),
    }
}

/// What a request's single `Range` value asks of a stored piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceAnswer {
    /// No range this cache serves (none, several, malformed, another unit): the whole is
    /// wanted, which the piece cannot give.
    Whole,
    /// Bytes `first..=last`, all in the piece: a 206 from it.
    Covered { first: u64, last: u64 },
    /// A valid range no byte of the representation satisfies: a 416 (the piece knows the
    /// complete length).
    Unsatisfiable,
    /// Bytes `first..=last` are wanted, some not in the piece: ask the origin for
    /// `fetch_first..=fetch_last`, which touches or overlaps the piece, so the two combine.
    Missing {
        first: u64,
        last: u64,
        fetch_first: u64,
        fetch_last: u64,
    },
}

/// What `range` (the request's one `Range` value, `None` for none) asks of `piece`.
pub fn plan(range: Option<&[u8]>, piece: Piece) -> PieceAnswer {
    let Some(value) = range else {
        return PieceAnswer::Whole;
    };
    match parse_range(value, piece.complete) {
        RangeAnswer::Whole => PieceAnswer::Whole,
        RangeAnswer::Unsatisfiable => PieceAnswer::Unsatisfiable,
        RangeAnswer::Partial { first, last } if piece.covers(first, last) => {
            PieceAnswer::Covered { first, last }
        }
        // `parse_range` keeps `last < complete`; uncovered means `first < piece.first` or
        // `last > piece.last`, so neither subtraction nor addition below can overflow.
        RangeAnswer::Partial { first, last } => PieceAnswer::Missing {
            first,
            last,
            fetch_first: if first < piece.first {
                first
            } else {
                piece.last + 1
            },
            fetch_last: if last > piece.last {
                last
            } else {
                piece.first - 1
            },
        },
    }
}

/// The union of two pieces of one representation that touch or overlap, with its bytes:
/// `newer`'s bytes where they overlap (equal anyway, by the same strong validator). `None`
/// when there is a gap between them, the complete lengths differ, or a body does not have its
/// piece's length.
pub fn combine(
    older: Piece,
    older_body: &[u8],
    newer: Piece,
    newer_body: &[u8],
) -> Option<(Piece, Vec<u8>)> {
    if older.complete != newer.complete
        || older.len() != older_body.len() as u64
        || newer.len() != newer_body.len() as u64
        || older.first > newer.last.saturating_add(1)
        || newer.first > older.last.saturating_add(1)
    {
        return None;
    }
    let union = Piece {
        first: older.first.min(newer.first),
        last: older.last.max(newer.last),
        complete: older.complete,
    };
    let mut out = Vec::with_capacity(usize::try_from(union.len()).ok()?);
    // The older piece's bytes before the newer one, the newer one, the older one's after it.
    if older.first < newer.first {
        let n = usize::try_from(newer.first - older.first).ok()?;
        out.extend_from_slice(older_body.get(..n)?);
    }
    out.extend_from_slice(newer_body);
    if older.last > newer.last {
        let skip = usize::try_from(newer.last + 1 - older.first).ok()?;
        out.extend_from_slice(older_body.get(skip..)?);
    }
    Some((union, out))
}

/// The bytes `first..=last` of the representation out of a piece's body (`None` when the
/// piece does not cover them).
pub fn slice(piece: Piece, body: &bytes::Bytes, first: u64, last: u64) -> Option<bytes::Bytes> {
    if !piece.covers(first, last) || piece.len() != body.len() as u64 {
        return None;
    }
    let from = usize::try_from(first - piece.first).ok()?;
    let to = usize::try_from(last - piece.first).ok()?;
    Some(body.slice(from..=to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::header::HeaderValue;

    const NOW: i64 = 1_700_000_000;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    fn piece(first: u64, last: u64, complete: u64) -> Piece {
        Piece {
            first,
            last,
            complete,
        }
    }

    #[test]
    fn rfc9110_14_4_content_range_of_one_satisfied_range_parses() {
        let p = |v: &str| parse_content_range(v.as_bytes());
        assert_eq!(p("bytes 0-9/100"), Some(piece(0, 9, 100)));
        assert_eq!(p("Bytes 99-99/100"), Some(piece(99, 99, 100)));
        assert_eq!(p(" bytes 5-5/6 "), Some(piece(5, 5, 6)));
        assert_eq!(piece(3, 7, 10).content_range(), "bytes 3-7/10");
        for bad in [
            "bytes 0-9/*",
            "bytes */100",
            "bytes 9-0/100",
            "bytes 0-100/100",
            "bytes 0-9/5",
            "bytes 0-9",
            "items 0-9/100",
            "bytes=0-9/100",
            "bytes 0 - 9/100",
            "bytes -9/100",
            "bytes 0-/100",
            "bytes +0-9/100",
            "bytes 0-9/100/7",
            "bytes 0-9/99999999999999999999999",
            "",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
        let long = format!("bytes 0-9/{}", "1".repeat(200));
        assert_eq!(p(&long), None);
        // Two lines are refused, not one picked.
        assert_eq!(
            content_range(&h(&[
                ("content-range", "bytes 0-9/100"),
                ("content-range", "bytes 0-9/100")
            ])),
            None
        );
    }

    #[test]
    fn rfc9111_3_3_only_a_consistent_206_within_the_entry_limit_is_stored() {
        let ok = h(&[("content-range", "bytes 0-3/10"), ("etag", "\"v\"")]);
        assert_eq!(storable_piece(&ok, 4, 100), Ok(piece(0, 3, 10)));
        assert!(
            storable_piece(&ok, 5, 100).is_err(),
            "body longer than said"
        );
        assert!(
            storable_piece(&ok, 3, 100).is_err(),
            "body shorter than said"
        );
        assert!(storable_piece(&ok, 4, 9).is_err(), "whole over the limit");
        let huge = h(&[("content-range", "bytes 0-3/18446744073709551615")]);
        assert!(storable_piece(&huge, 4, usize::MAX / 2).is_err());
        let multipart = h(&[("content-type", "multipart/byteranges; boundary=x")]);
        assert!(storable_piece(&multipart, 4, 100).is_err());
        let star = h(&[("content-range", "bytes 0-3/*")]);
        assert!(storable_piece(&star, 4, 100).is_err());
        let varying = h(&[("content-range", "bytes 0-3/10"), ("vary", "accept")]);
        assert!(storable_piece(&varying, 4, 100).is_err());
    }

    #[test]
    fn rfc9111_3_4_only_pieces_with_the_same_strong_validator_combine() {
        let p = piece(0, 3, 10);
        let q = piece(4, 9, 10);
        let v1 = h(&[("etag", "\"v1\"")]);
        assert!(may_combine(&v1, p, &v1, q, NOW));
        assert!(!may_combine(&v1, p, &h(&[("etag", "\"v2\"")]), q, NOW));
        let weak = h(&[("etag", "W/\"v1\"")]);
        assert!(
            !may_combine(&weak, p, &weak, q, NOW),
            "weak tags never combine"
        );
        assert!(
            !may_combine(&h(&[]), p, &h(&[]), q, NOW),
            "no validator, no combining"
        );
        assert!(
            !may_combine(&v1, p, &v1, piece(4, 10, 11), NOW),
            "another length"
        );
        // A Last-Modified a second or more before Date is strong.
        let lm = h(&[
            ("last-modified", "Tue, 14 Nov 2023 22:00:00 GMT"),
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        let lm_later = h(&[
            ("last-modified", "Tue, 14 Nov 2023 22:00:00 GMT"),
            ("date", "Tue, 14 Nov 2023 22:20:00 GMT"),
        ]);
        assert!(may_combine(&lm, p, &lm_later, q, NOW));
        let changed = h(&[
            ("last-modified", "Tue, 14 Nov 2023 22:10:00 GMT"),
            ("date", "Tue, 14 Nov 2023 22:20:00 GMT"),
        ]);
        assert!(!may_combine(&lm, p, &changed, q, NOW));
        let same_second = h(&[
            ("last-modified", "Tue, 14 Nov 2023 22:00:00 GMT"),
            ("date", "Tue, 14 Nov 2023 22:00:00 GMT"),
        ]);
        assert!(!may_combine(&same_second, p, &same_second, q, NOW));
        assert_eq!(if_range_for(&v1, NOW).unwrap(), "\"v1\"");
        assert_eq!(
            if_range_for(&lm, NOW).unwrap(),
            "Tue, 14 Nov 2023 22:00:00 GMT"
        );
        assert_eq!(if_range_for(&weak, NOW), None);
    }

    #[test]
    fn rfc9110_14_2_a_range_is_served_from_the_piece_or_the_missing_bytes_fetched() {
        let stored = piece(10, 19, 100);
        let p = |v: &str| plan(Some(v.as_bytes()), stored);
        assert_eq!(plan(None, stored), PieceAnswer::Whole);
        assert_eq!(p("bytes=0-1,5-6"), PieceAnswer::Whole);
        assert_eq!(
            p("bytes=12-15"),
            PieceAnswer::Covered {
                first: 12,
                last: 15
            }
        );
        assert_eq!(
            p("bytes=10-19"),
            PieceAnswer::Covered {
                first: 10,
                last: 19
            }
        );
        assert_eq!(p("bytes=100-"), PieceAnswer::Unsatisfiable);
        let missing = |first, last, fetch_first, fetch_last| PieceAnswer::Missing {
            first,
            last,
            fetch_first,
            fetch_last,
        };
        // Past the end of the piece, before it, around it, and with a gap each way: what is
        // fetched always touches the piece.
        assert_eq!(p("bytes=15-29"), missing(15, 29, 20, 29));
        assert_eq!(p("bytes=20-29"), missing(20, 29, 20, 29));
        assert_eq!(p("bytes=5-12"), missing(5, 12, 5, 9));
        assert_eq!(p("bytes=0-99"), missing(0, 99, 0, 99));
        assert_eq!(p("bytes=50-59"), missing(50, 59, 20, 59));
        assert_eq!(p("bytes=0-4"), missing(0, 4, 0, 9));
        assert_eq!(p("bytes=-10"), missing(90, 99, 20, 99));
        assert_eq!(p("bytes=95-500"), missing(95, 99, 20, 99));
    }

    #[test]
    fn rfc9111_3_4_pieces_that_touch_or_overlap_combine_into_one() {
        let body = |r: std::ops::RangeInclusive<u8>| r.collect::<Vec<u8>>();
        let (u, b) = combine(piece(0, 3, 10), &body(0..=3), piece(4, 9, 10), &body(4..=9)).unwrap();
        assert_eq!((u, b), (piece(0, 9, 10), body(0..=9)));
        assert!(u.is_whole());
        let (u, b) = combine(piece(5, 9, 10), &body(5..=9), piece(0, 6, 10), &body(0..=6)).unwrap();
        assert_eq!((u, b), (piece(0, 9, 10), body(0..=9)));
        let (u, b) = combine(piece(0, 9, 10), &body(0..=9), piece(3, 4, 10), &body(3..=4)).unwrap();
        assert_eq!((u, b), (piece(0, 9, 10), body(0..=9)));
        let (u, b) = combine(piece(2, 3, 10), &body(2..=3), piece(4, 5, 10), &body(4..=5)).unwrap();
        assert_eq!((u, b), (piece(2, 5, 10), body(2..=5)));
        assert!(!u.is_whole());
        // A gap, another length, or a body that is not its piece's length: not combined.
        assert!(combine(piece(0, 2, 10), &body(0..=2), piece(4, 9, 10), &body(4..=9)).is_none());
        assert!(combine(piece(0, 3, 10), &body(0..=3), piece(4, 9, 11), &body(4..=9)).is_none());
        assert!(combine(piece(0, 3, 10), &body(0..=2), piece(4, 9, 10), &body(4..=9)).is_none());
        let b = Bytes::from(body(10..=19));
        assert_eq!(
            slice(piece(10, 19, 100), &b, 12, 13).unwrap(),
            &[12u8, 13][..]
        );
        assert!(slice(piece(10, 19, 100), &b, 9, 13).is_none());
    }

    proptest::proptest! {
        #[test]
        fn content_range_and_combining_never_panic(
            v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
            a in 0u64..40, b in 0u64..40, c in 0u64..40, d in 0u64..40, n in 1u64..48,
        ) {
            let _ = parse_content_range(&v);
            let older = Piece { first: a.min(b), last: a.max(b), complete: n.max(a.max(b) + 1) };
            let newer = Piece { first: c.min(d), last: c.max(d), complete: older.complete };
            let ob = vec![1u8; older.len() as usize];
            let nb = vec![2u8; newer.len() as usize];
            if let Some((u, body)) = combine(older, &ob, newer, &nb) {
                proptest::prop_assert_eq!(u.len(), body.len() as u64);
            }
            let range = format!("bytes={}-{}", c, d);
            if let PieceAnswer::Missing { fetch_first, fetch_last, .. } = plan(Some(range.as_bytes()), older) {
                proptest::prop_assert!(fetch_first <= fetch_last && fetch_last < older.complete);
                let fetched = Piece { first: fetch_first, last: fetch_last, complete: older.complete };
                let fb = vec![3u8; fetched.len() as usize];
                proptest::prop_assert!(combine(older, &ob, fetched, &fb).is_some());
            }
        }
    }
}
