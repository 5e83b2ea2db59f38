//! HTTP-dates (RFC 9110 §5.6.7) and the fields that carry one as the cache reads them: `Date`
//! (RFC 9110 §6.6.1) and `Expires` (RFC 9111 §5.3). The date grammar itself is the `httpdate`
//! crate's; this module adds what a tolerant recipient does before handing it a value
//! (letter case, the RFC 850 two-digit year, a wrong day name) and what an invalid value means
//! for each field.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::HeaderMap;

use crate::http::syntax::trim;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Longest HTTP-date read: the RFC 850 form with the longest day name is 33 bytes, so a
/// longer value is junk and is not copied or scanned further.
const MAX_DATE_BYTES: usize = 40;

/// The last second `httpdate` can represent (9999-12-31T23:59:59Z).
const MAX_SECS: i64 = 253_402_300_799;

/// Day and month names as senders must write them (`Sun`, `Nov`, `GMT`): RFC 9110 §5.6.7 makes
/// them case-sensitive for senders, but a recipient reading `nov` or `NOV` loses nothing by
/// understanding it, and `httpdate` only accepts the canonical case.
fn canonical_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = true;
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            out.push(if word_start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            word_start = false;
        } else {
            out.push(c);
            word_start = true;
        }
    }
    out.replace("Gmt", "GMT")
}

/// The obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) rewritten as an IMF-fixdate
/// with a four-digit year: one more than 50 years in the future is read as the most recent
/// past year with those digits (RFC 9110 §5.6.7), which `httpdate`'s fixed century pivot does
/// not do. `None` when `text` is not in that form.
fn rfc850_as_imf(text: &str, now_secs: i64) -> Option<String> {
    let (day, rest) = text.split_once(", ")?;
    let short = DAYS.get(LONG_DAYS.iter().position(|d| *d == day)?)?;
    let mut parts = rest.split(' ');
    let (dmy, clock, zone) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || zone != "GMT" {
        return None;
    }
    let mut dmy = dmy.split('-');
    let (d, m, yy) = (dmy.next()?, dmy.next()?, dmy.next()?);
    if dmy.next().is_some() || yy.len() != 2 || !yy.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i64 = yy.parse().ok()?;
    let this_year = 1970 + now_secs.div_euclid(31_556_952);
    let mut y = this_year - this_year.rem_euclid(100) + yy;
    if y > this_year + 50 {
        y -= 100;
    }
    Some(format!("{short}, {d} {m} {y:04} {clock} GMT"))
}

fn unix_secs(t: SystemTime) -> Option<i64> {
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
}

/// Parses an HTTP-date into Unix seconds: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`), with day and month names and `GMT` in any letter case (RFC
/// 9110 §5.6.7, read as a tolerant recipient). A two-digit year more than 50 years in the
/// future is read as the most recent past year with those digits, hence `now_secs`. The day
/// name must be a day name but need not be the right one: it is redundant, and a sender that
/// gets it wrong has still said which date it means. Dates before 1970 are not read. Anything
/// else is `None`; callers decide what an invalid date means.
pub fn parse_http_date(v: &[u8], now_secs: i64) -> Option<i64> {
    let v = trim(v);
    if v.len() > MAX_DATE_BYTES {
        return None;
    }
    let text = canonical_case(std::str::from_utf8(v).ok()?);
    let text = rfc850_as_imf(&text, now_secs).unwrap_or(text);
    if let Ok(t) = httpdate::parse_http_date(&text) {
        return unix_secs(t);
    }
    // `httpdate` insists on the right day name: try the date with each of the others (IMF-
    // fixdate writes it as `Ddd, `, asctime as `Ddd `), at most six more short parses.
    let (day, rest) = (text.get(..3)?, text.get(3..)?);
    if !DAYS.contains(&day) {
        return None;
    }
    DAYS.iter()
        .filter(|d| **d != day)
        .find_map(|d| httpdate::parse_http_date(&format!("{d}{rest}")).ok())
        .and_then(unix_secs)
}

/// Formats Unix seconds as an IMF-fixdate (clamped to 1970 ..= 9999, what the format holds).
pub fn format_http_date(secs: i64) -> String {
    let secs = u64::try_from(secs.clamp(0, MAX_SECS)).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `Date` in Unix seconds, if there is exactly one valid value.
pub fn date_value(h: &HeaderMap, now_secs: i64) -> Option<i64> {
    let mut it = h.get_all("date").iter();
    let first = it.next()?;
    if it.next().is_some() {
        return None;
    }
    parse_http_date(first.as_bytes(), now_secs)
}

/// `Expires`: `None` when absent, `Some(None)` when invalid or duplicated (RFC 9111 §5.3: an
/// invalid date, "0" included, means already expired), `Some(Some(t))` otherwise.
pub fn expires_value(h: &HeaderMap, now_secs: i64) -> Option<Option<i64>> {
    let mut it = h.get_all("expires").iter();
    let first = it.next()?;
    if it.next().is_some() {
        return Some(None);
    }
    Some(parse_http_date(first.as_bytes(), now_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::cache_control::CacheControl;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn the_three_http_date_formats_parse_to_the_same_instant() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", NOW), want);
        assert_eq!(
            parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", NOW),
            want
        );
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994", NOW), want);
        assert_eq!(
            parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT ", NOW),
            want
        );
    }

    #[test]
    fn a_two_digit_year_far_in_the_future_means_the_last_century() {
        // In 2023, "30" is 2030 (7 years ahead) and "94" is 1994 (2094 is > 50 years ahead).
        let y30 = parse_http_date(b"Monday, 01-Jan-30 00:00:00 GMT", NOW).unwrap();
        assert_eq!(format_http_date(y30), "Tue, 01 Jan 2030 00:00:00 GMT");
        let y94 = parse_http_date(b"Monday, 01-Jan-94 00:00:00 GMT", NOW).unwrap();
        assert_eq!(format_http_date(y94), "Sat, 01 Jan 1994 00:00:00 GMT");
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            &b"0"[..],
            b"",
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 31 Feb 1994 08:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 94",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse_http_date(bad, NOW),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn dates_format_and_parse_back() {
        for t in [0, 784_111_777, NOW, 951_782_400 /* 2000-02-29 */] {
            assert_eq!(
                parse_http_date(format_http_date(t).as_bytes(), NOW),
                Some(t)
            );
        }
    }

    #[test]
    fn rfc9110_5_6_7_day_month_and_gmt_are_read_in_any_letter_case() {
        let want = Some(784_111_777);
        for v in [
            &b"sun, 06 nov 1994 08:49:37 gmt"[..],
            b"SUN, 06 NOV 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 Gmt",
            b"SUNDAY, 06-NOV-94 08:49:37 gmt",
            b"sun nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_http_date(v, NOW),
                want,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        // Still invalid: another zone, a missing zone, a bad month in any case.
        for v in [
            &b"sun, 06 nov 1994 08:49:37 utc"[..],
            b"Sun, 06 Nox 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(v, NOW), None);
        }
    }

    #[test]
    fn rfc9110_5_6_7_a_wrong_day_name_is_redundant_but_a_non_day_is_not() {
        // 1994-11-06 was a Sunday; the date is still the date with another day's name.
        for v in [
            &b"Mon, 06 Nov 1994 08:49:37 GMT"[..],
            b"Wednesday, 06-Nov-94 08:49:37 GMT",
            b"Fri Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(v, NOW), Some(784_111_777));
        }
        assert_eq!(parse_http_date(b"Sux, 06 Nov 1994 08:49:37 GMT", NOW), None);
        assert_eq!(
            parse_http_date(b"Sundae, 06-Nov-94 08:49:37 GMT", NOW),
            None
        );
    }

    #[test]
    fn dates_outside_what_the_format_holds_are_refused_or_clamped() {
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1969 00:00:00 GMT", NOW), None);
        let long = format!("Sun, 06 Nov 1994 08:49:37 GMT{}", " x".repeat(100));
        assert_eq!(parse_http_date(long.as_bytes(), NOW), None);
        assert_eq!(format_http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_http_date(&data, NOW);
            let _ = CacheControl::parse_lines(std::iter::once(data.as_slice()));
        }
    }
}
