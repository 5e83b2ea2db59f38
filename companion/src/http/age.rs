//! How old a response is (RFC 9111 §4.2.3): the `Age` field (§5.1), the corrected initial
//! age of a response as it arrives, the current age of a stored one, and the `Age` an answer
//! fetched now carries. Times come in as arguments: nothing here reads a clock.

use hyper::header::HeaderMap;

use crate::http::date::date_value;
use crate::http::lifetime::Freshness;
use crate::http::syntax::{delta_seconds, trim, MAX_DELTA_SECONDS};

/// When the exchange happened (Unix milliseconds), for the age calculation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Times {
    pub request_ms: i64,
    pub response_ms: i64,
}

/// The `Age` value (RFC 9111 §5.1): the first member of the first line; `None` (ignored) when
/// that is not a non-negative integer. Huge values clamp to 2^31.
pub fn age_value(h: &HeaderMap) -> Option<u64> {
    let first = h.get("age")?.as_bytes();
    let member = trim(first.split(|&b| b == b',').next().unwrap_or(b""));
    delta_seconds(member)
}

/// `corrected_initial_age` of RFC 9111 §4.2.3, seconds.
pub fn initial_age(response: &HeaderMap, times: Times) -> u64 {
    let now_secs = times.response_ms.div_euclid(1000);
    let apparent = date_value(response, now_secs)
        .map(|d| (times.response_ms - d * 1000).max(0) as u64 / 1000)
        .unwrap_or(0);
    let delay = (times.response_ms - times.request_ms).max(0) as u64 / 1000;
    let corrected_age_value = age_value(response).unwrap_or(0).saturating_add(delay);
    apparent.max(corrected_age_value).min(MAX_DELTA_SECONDS)
}

/// `current_age` of RFC 9111 §4.2.3, seconds: the initial age plus the time resident here.
pub fn current_age(f: &Freshness, now_ms: i64) -> u64 {
    let resident = (now_ms - f.stored_at_ms).max(0) as u64 / 1000;
    u64::from(f.initial_age_secs).saturating_add(resident)
}

/// The `Age` an answer relayed from the origin now carries (RFC 9111 §5.1: every answer that
/// passed through a cache): the corrected initial age of §4.2.3, sent when it is not zero or
/// the origin sent an `Age` of its own (`Age: 0` included).
pub fn age_to_send(response: &HeaderMap, times: Times) -> Option<u64> {
    let initial = initial_age(response, times);
    (initial > 0 || age_value(response).is_some()).then_some(initial)
}

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
    fn age_takes_the_first_member_and_ignores_invalid_values() {
        assert_eq!(age_value(&headers(&[("age", "5")])), Some(5));
        assert_eq!(age_value(&headers(&[("age", "5, 7")])), Some(5));
        assert_eq!(age_value(&headers(&[("age", "5"), ("age", "9")])), Some(5));
        assert_eq!(age_value(&headers(&[("age", "-1")])), None);
        assert_eq!(age_value(&headers(&[("age", "1.5")])), None);
        assert_eq!(age_value(&headers(&[("age", "")])), None);
        assert_eq!(
            age_value(&headers(&[("age", "999999999999999999999")])),
            Some(MAX_DELTA_SECONDS)
        );
    }

    #[test]
    fn current_age_follows_rfc9111_section_4_2_3() {
        // Date 10 s before the response arrived, Age 3, 2 s between request and response.
        let h = headers(&[("date", "Tue, 14 Nov 2023 22:13:10 GMT"), ("age", "3")]);
        let t = Times {
            request_ms: (NOW - 2) * 1000,
            response_ms: NOW * 1000,
        };
        // apparent_age 10; corrected_age_value 3 + 2 = 5; initial = max = 10.
        assert_eq!(initial_age(&h, t), 10);
        let h = headers(&[("date", "Tue, 14 Nov 2023 22:13:20 GMT"), ("age", "30")]);
        assert_eq!(initial_age(&h, t), 32);
        // A Date in the future does not make the age negative.
        let h = headers(&[("date", "Tue, 14 Nov 2023 23:00:00 GMT")]);
        assert_eq!(initial_age(&h, t), 2);
        let f = Freshness {
            initial_age_secs: 10,
            stored_at_ms: NOW * 1000,
            lifetime_secs: 60,
            ..Freshness::default()
        };
        assert_eq!(current_age(&f, (NOW + 5) * 1000 + 999), 15);
        assert_eq!(current_age(&f, (NOW - 100) * 1000), 10);
    }
}
