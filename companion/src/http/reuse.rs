//! Whether a stored response may answer a request now (RFC 9111 §4.2, §4.2.4): fresh, stale
//! within stale-while-revalidate or the client's `max-stale`, or only after validation; with
//! the request's own directives (§5.2.1: `no-cache`, `max-age`, `min-fresh`, `max-stale`,
//! `only-if-cached`; `Pragma`, §5.4), RFC 8246's `immutable`, and the stale use a disconnected
//! cache may make (§4.2.4).

use hyper::header::{HeaderMap, CACHE_CONTROL};

use crate::http::age::current_age;
use crate::http::cache_control::CacheControl;
use crate::http::lifetime::Freshness;
use crate::http::syntax::trim;

/// What the request asks of a stored response (RFC 9111 §5.2.1, shared-cache reading).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestRules {
    /// `no-cache`, or `max-age=0`: only reuse after successful validation.
    pub revalidate: bool,
    pub max_age: Option<u64>,
    pub min_fresh: Option<u64>,
    /// Do not store the response to this request (a stored one may still answer it).
    pub no_store: bool,
    /// `max-stale` (§5.2.1.2): a stale response this many seconds past its lifetime may
    /// answer (`u64::MAX`: any), unless the response forbids stale.
    pub max_stale: Option<u64>,
    /// `only-if-cached` (§5.2.1.7): answer from storage or with a 504, never from the origin.
    pub only_if_cached: bool,
}

impl RequestRules {
    pub fn from_request(request: &HeaderMap) -> RequestRules {
        let cc = CacheControl::parse(request);
        // `Pragma: no-cache` is honoured only without Cache-Control (RFC 9111 §5.4).
        let pragma = !request.contains_key(CACHE_CONTROL)
            && request.get_all("pragma").iter().any(|v| {
                v.as_bytes()
                    .split(|&b| b == b',')
                    .any(|t| trim(t).eq_ignore_ascii_case(b"no-cache"))
            });
        RequestRules {
            revalidate: cc.no_cache || pragma || cc.max_age == Some(0),
            max_age: cc.max_age,
            min_fresh: cc.min_fresh,
            no_store: cc.no_store,
            max_stale: cc.max_stale,
            only_if_cached: cc.only_if_cached,
        }
    }
}

/// How a stored response may answer this request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Serve it.
    Fresh,
    /// Serve it stale and refresh it in the background (stale-while-revalidate).
    StaleWhileRevalidate,
    /// Serve it stale because the client allows it (`max-stale`); no refresh.
    StaleAllowed,
    /// Validate (or refetch) first; if the origin fails, it may still be served when
    /// `stale_if_error` says so.
    Revalidate { stale_if_error: bool },
}

pub fn reuse(f: &Freshness, req: &RequestRules, now_ms: i64) -> Reuse {
    let age = current_age(f, now_ms);
    let lifetime = u64::from(f.lifetime_secs);
    let staleness = age.saturating_sub(lifetime);
    let stale_ok = !f.must_revalidate && !f.no_cache;
    let sie = stale_ok && age >= lifetime && staleness < u64::from(f.stale_if_error_secs);
    let fresh = age < lifetime;
    // RFC 8246: while fresh, an immutable response does not change, so a client's reload
    // (`no-cache`, `max-age=0`, `Pragma: no-cache`) or any `max-age` limit could only be
    // answered by a 304 confirming these same bytes: it is served from the cache. The
    // response's own `no-cache` still wins; `min-fresh` still applies.
    let client_may_force = !(f.immutable && fresh);
    if f.no_cache || (client_may_force && (req.revalidate || req.max_age.is_some_and(|m| age > m)))
    {
        return Reuse::Revalidate {
            stale_if_error: sie,
        };
    }
    let fresh_enough = req
        .min_fresh
        .is_none_or(|m| lifetime.saturating_sub(age) >= m);
    if fresh && fresh_enough {
        return Reuse::Fresh;
    }
    // A client asking for remaining freshness (`min-fresh`) gets no stale answer at all.
    if !fresh && stale_ok && req.min_fresh.is_none() {
        if req.max_stale.is_some_and(|m| staleness <= m) {
            return Reuse::StaleAllowed;
        }
        if staleness < u64::from(f.stale_while_revalidate_secs) {
            return Reuse::StaleWhileRevalidate;
        }
    }
    Reuse::Revalidate {
        stale_if_error: sie,
    }
}

/// Whether a stale stored response may answer because the origin cannot be reached
/// (§4.2.4): within its `stale_if_unreachable_secs` past freshness (0 when the response
/// forbids stale).
pub fn stale_if_unreachable(f: &Freshness, now_ms: i64) -> bool {
    let staleness = current_age(f, now_ms).saturating_sub(u64::from(f.lifetime_secs));
    !f.must_revalidate
        && !f.no_cache
        && current_age(f, now_ms) >= u64::from(f.lifetime_secs)
        && staleness < u64::from(f.stale_if_unreachable_secs)
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

    fn fresh_for(lifetime: u32) -> Freshness {
        Freshness {
            lifetime_secs: lifetime,
            stored_at_ms: NOW * 1000,
            ..Freshness::default()
        }
    }

    #[test]
    fn a_fresh_entry_is_reused_and_a_stale_one_revalidated() {
        let f = fresh_for(10);
        let r = RequestRules::default();
        assert_eq!(reuse(&f, &r, (NOW + 9) * 1000), Reuse::Fresh);
        assert_eq!(
            reuse(&f, &r, (NOW + 10) * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
    }

    #[test]
    fn request_no_cache_and_max_age_zero_force_validation() {
        let f = fresh_for(100);
        for req in [
            headers(&[("cache-control", "no-cache")]),
            headers(&[("cache-control", "max-age=0")]),
            headers(&[("pragma", "no-cache")]),
        ] {
            let r = RequestRules::from_request(&req);
            assert!(
                matches!(reuse(&f, &r, NOW * 1000 + 10), Reuse::Revalidate { .. }),
                "{req:?}"
            );
        }
        // Pragma is ignored when Cache-Control is present.
        let r = RequestRules::from_request(&headers(&[
            ("pragma", "no-cache"),
            ("cache-control", "max-age=50"),
        ]));
        assert_eq!(reuse(&f, &r, NOW * 1000), Reuse::Fresh);
        let r = RequestRules::from_request(&headers(&[("cache-control", "max-age=5")]));
        assert_eq!(reuse(&f, &r, (NOW + 5) * 1000), Reuse::Fresh);
        assert!(matches!(
            reuse(&f, &r, (NOW + 6) * 1000),
            Reuse::Revalidate { .. }
        ));
        let r = RequestRules::from_request(&headers(&[("cache-control", "min-fresh=50")]));
        assert_eq!(reuse(&f, &r, (NOW + 50) * 1000), Reuse::Fresh);
        assert!(matches!(
            reuse(&f, &r, (NOW + 51) * 1000),
            Reuse::Revalidate { .. }
        ));
        // Request no-store does not stop a stored response from answering.
        let r = RequestRules::from_request(&headers(&[("cache-control", "no-store")]));
        assert!(r.no_store);
        assert_eq!(reuse(&f, &r, NOW * 1000), Reuse::Fresh);
    }

    #[test]
    fn a_fresh_immutable_entry_answers_reloads_without_revalidation() {
        let f = Freshness {
            immutable: true,
            ..fresh_for(100)
        };
        for req in [
            headers(&[("cache-control", "no-cache")]),
            headers(&[("cache-control", "max-age=0")]),
            headers(&[("pragma", "no-cache")]),
            headers(&[("cache-control", "max-age=5")]),
        ] {
            let r = RequestRules::from_request(&req);
            assert_eq!(reuse(&f, &r, (NOW + 50) * 1000), Reuse::Fresh, "{req:?}");
        }
        // min-fresh asks for remaining lifetime, which immutable does not add.
        let r = RequestRules::from_request(&headers(&[("cache-control", "min-fresh=60")]));
        assert!(matches!(
            reuse(&f, &r, (NOW + 50) * 1000),
            Reuse::Revalidate { .. }
        ));
        // Once stale, a reload revalidates as for any entry.
        let r = RequestRules::from_request(&headers(&[("cache-control", "no-cache")]));
        assert!(matches!(
            reuse(&f, &r, (NOW + 100) * 1000),
            Reuse::Revalidate { .. }
        ));
        // The response's own no-cache wins over immutable.
        let f = Freshness {
            no_cache: true,
            ..f
        };
        assert!(matches!(
            reuse(&f, &RequestRules::default(), NOW * 1000),
            Reuse::Revalidate { .. }
        ));
    }

    #[test]
    fn rfc9111_5_2_1_max_stale_min_fresh_and_only_if_cached() {
        let f = fresh_for(10);
        let rules =
            |cc: &'static str| RequestRules::from_request(&headers(&[("cache-control", cc)]));
        // 5 s stale.
        let at = (NOW + 15) * 1000;
        assert_eq!(reuse(&f, &rules("max-stale"), at), Reuse::StaleAllowed);
        assert_eq!(reuse(&f, &rules("max-stale=5"), at), Reuse::StaleAllowed);
        assert!(matches!(
            reuse(&f, &rules("max-stale=4"), at),
            Reuse::Revalidate { .. }
        ));
        assert!(matches!(
            reuse(&f, &rules("max-stale=x"), at),
            Reuse::Revalidate { .. }
        ));
        // The response's must-revalidate / no-cache win over the client's permission.
        let strict = Freshness {
            must_revalidate: true,
            ..f
        };
        assert!(matches!(
            reuse(&strict, &rules("max-stale"), at),
            Reuse::Revalidate { .. }
        ));
        // min-fresh: a stale entry never answers, not even within stale-while-revalidate.
        let swr = Freshness {
            stale_while_revalidate_secs: 60,
            ..f
        };
        assert_eq!(
            reuse(&swr, &RequestRules::default(), at),
            Reuse::StaleWhileRevalidate
        );
        assert!(matches!(
            reuse(&swr, &rules("min-fresh=1"), at),
            Reuse::Revalidate { .. }
        ));
        assert!(matches!(
            reuse(&f, &rules("min-fresh=1, max-stale"), at),
            Reuse::Revalidate { .. }
        ));
        assert!(rules("only-if-cached").only_if_cached);
        assert!(!rules("max-age=5").only_if_cached);
    }
}
