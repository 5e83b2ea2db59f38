//! Whether a shared cache may store a response, and the [`Freshness`] it is stored with (RFC
//! 9111 §3: the method, the status, `no-store`, `private`, `Authorization` (§3.5),
//! `must-understand` (§5.2.2.3), `Set-Cookie` (§7.3), `Vary: *` (§4.1), a lifetime from
//! `lifetime` or none). [`decide`] is the one storage decision; [`Policy`] is what the
//! filter's rule adds to the response's own rules.
//!
//! The rule of thumb everywhere: when in doubt, do not store and do not serve. A miss costs one
//! origin fetch; a wrong hit serves someone else's answer.

use hyper::header::{HeaderMap, AUTHORIZATION, SET_COOKIE};

use crate::http::age::{initial_age, Times};
use crate::http::cache_control::CacheControl;
use crate::http::lifetime::{
    explicit_lifetime, heuristically_cacheable, last_modified_lifetime, Freshness,
};
use crate::http::partial::content_range;
use crate::http::targeted::{response_directives, Source};
use crate::http::validation::has_validators;
use crate::http::vary::vary_names;

/// Final status codes whose caching rules hzcache implements (RFC 9110 §15; for
/// `must-understand`, RFC 9111 §5.2.2.3): the codes RFC 9110 defines, minus 304 (never stored
/// itself, it updates a stored response); 206 is stored as a piece (`partial`).
pub fn status_understood(status: u16) -> bool {
    matches!(status,
        200..=206 | 300..=303 | 305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505)
}

/// What the rule (filter configuration) adds to the response's own rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Lifetime for a response without explicit freshness (an operator-chosen heuristic, RFC
    /// 9111 §4.2.2: only for heuristically cacheable statuses or `public`). `None`: off.
    pub default_ttl: Option<u32>,
    /// Replaces the lifetime from `CDN-Cache-Control`/`Cache-Control`/`Expires` (not from
    /// `Hzcache-Cache-Control`, which is the origin talking to hzcache itself).
    pub ttl_override: Option<u32>,
    /// Stale-while-revalidate / stale-if-error windows when the response gives none (an
    /// out-of-band contract in RFC 9111 §4.2.4's words). Never used when the response forbids
    /// stale (must-revalidate, proxy-revalidate, s-maxage, no-cache).
    pub stale_while_revalidate: u32,
    pub stale_if_error: u32,
    /// Store responses that carry `Set-Cookie`, without it (RFC 9111 §7.3: the field is meant
    /// for one user, so it is never stored or served from the cache; the client whose request
    /// went to the origin still gets it). `false`: such responses are not stored.
    pub strip_set_cookie: bool,
    /// Heuristic freshness from `Last-Modified` (§4.2.2): [`LAST_MODIFIED_FRACTION_PERCENT`] of
    /// `Date − Last-Modified`, at most this many seconds, for heuristically cacheable statuses
    /// without explicit freshness. `None`: off; `default_ttl` (if any) applies instead.
    pub last_modified_heuristic_max: Option<u32>,
    /// How long past its freshness a stored response may answer when the origin cannot be
    /// reached at all (§4.2.4: a disconnected cache); the companion's
    /// `--stale-if-unreachable-secs`. Never when the response forbids stale (must-revalidate,
    /// proxy-revalidate, no-cache, s-maxage). 0: off.
    pub stale_if_unreachable: u32,
}

/// The storage decision for one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Store(Freshness),
    DontStore(&'static str),
}

fn secs(v: u64) -> u32 {
    v.min(u64::from(u32::MAX)) as u32
}

/// Decides whether the response to a GET may be stored by a shared cache and how it may be
/// reused (RFC 9111 §3, §3.5, §4.2.1, §4.2.2, §5.2).
pub fn decide(
    method: &str,
    request: &HeaderMap,
    status: u16,
    response: &HeaderMap,
    policy: &Policy,
    times: Times,
) -> Decision {
    if method != "GET" {
        return Decision::DontStore("only responses to GET are stored");
    }
    let req_cc = CacheControl::parse(request);
    if req_cc.no_store {
        return Decision::DontStore("request no-store");
    }
    if !(200..=599).contains(&status) {
        return Decision::DontStore("status is not final");
    }
    if status == 304 {
        return Decision::DontStore("a 304 is not stored itself");
    }
    // A 416 answers one range request, never a plain GET of the representation.
    if status == 416 {
        return Decision::DontStore("a 416 is not stored");
    }
    // A 206 is stored as the piece its one valid Content-Range names (RFC 9111 §3.3); the
    // cache flow also checks its body against it (`partial::storable_piece`).
    if status == 206 && content_range(response).is_none() {
        return Decision::DontStore("206 without exactly one valid Content-Range");
    }
    let (cc, source) = response_directives(response);
    // must-understand (§5.2.2.3): a cache that understands the status's caching rules ignores
    // no-store; one that does not must not store.
    if cc.must_understand && !status_understood(status) {
        return Decision::DontStore("must-understand with a status whose rules are not known");
    }
    if cc.no_store && !cc.must_understand {
        return Decision::DontStore("no-store");
    }
    if cc.private {
        return Decision::DontStore("private");
    }
    if request.contains_key(AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Decision::DontStore("request carried authorization");
    }
    if response.contains_key(SET_COOKIE) && !policy.strip_set_cookie {
        return Decision::DontStore("set-cookie");
    }
    if vary_names(response).is_none() {
        return Decision::DontStore("vary: * (or an unusable Vary)");
    }
    if cc.invalid_lifetime {
        return Decision::DontStore("invalid or conflicting lifetime directives");
    }
    let now_secs = times.response_ms.div_euclid(1000);
    // Explicit lifetime (§4.2.1): s-maxage, max-age, Expires − Date.
    let explicit = explicit_lifetime(&cc, source, response, now_secs);
    let lifetime = match (explicit, source) {
        (Some(l), Source::Hzcache) => l,
        (Some(l), _) => policy.ttl_override.map_or(l, u64::from),
        // no-cache with a validator (§3, §5.2.2.4): storable, stale from the start, and
        // revalidated before every use; no heuristic lifetime could be used anyway.
        (None, _) if cc.no_cache && has_validators(response) => 0,
        (None, _) => {
            if !heuristically_cacheable(status, &cc) {
                return Decision::DontStore("status is not cacheable without explicit freshness");
            }
            let from_last_modified = policy
                .last_modified_heuristic_max
                .and_then(|max| last_modified_lifetime(response, now_secs, max));
            match policy.ttl_override.map(u64::from).or(from_last_modified) {
                Some(t) => t,
                None => match policy.default_ttl {
                    Some(t) => u64::from(t),
                    None => {
                        return Decision::DontStore(
                            "no explicit freshness and no default TTL (heuristics off)",
                        )
                    }
                },
            }
        }
    };
    // s-maxage carries proxy-revalidate's meaning for a shared cache (§5.2.2.10).
    let must_revalidate = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some();
    let no_stale = must_revalidate || cc.no_cache;
    let swr = cc.stale_while_revalidate.map(secs).unwrap_or(if no_stale {
        0
    } else {
        policy.stale_while_revalidate
    });
    let sie =
        cc.stale_if_error
            .map(secs)
            .unwrap_or(if no_stale { 0 } else { policy.stale_if_error });
    let f = Freshness {
        lifetime_secs: secs(lifetime),
        initial_age_secs: secs(initial_age(response, times)),
        stored_at_ms: times.response_ms,
        stale_while_revalidate_secs: swr,
        stale_if_error_secs: sie,
        must_revalidate: cc.must_revalidate || cc.proxy_revalidate,
        no_cache: cc.no_cache,
        immutable: cc.immutable,
        // At most as long as it was fresh: keeping every entry a fixed window past its
        // freshness would multiply what short-lived entries hold in Hazelcast.
        stale_if_unreachable_secs: if no_stale {
            0
        } else {
            policy.stale_if_unreachable.min(secs(lifetime))
        },
    };
    let validators = has_validators(response);
    if cc.no_cache && !validators {
        return Decision::DontStore("no-cache without a validator");
    }
    if f.keep_secs(validators) == 0 {
        return Decision::DontStore("already stale and nothing to keep it for");
    }
    Decision::Store(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::lifetime::{HEURISTICALLY_CACHEABLE, MIN_REVALIDATION_KEEP_SECS};
    use crate::http::reuse::{reuse, stale_if_unreachable, RequestRules, Reuse};
    use crate::http::targeted::sf;
    use hyper::header::HeaderValue;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn times() -> Times {
        Times {
            request_ms: NOW * 1000,
            response_ms: NOW * 1000,
        }
    }

    fn policy() -> Policy {
        Policy {
            default_ttl: Some(60),
            ..Policy::default()
        }
    }

    fn decide_for(resp: &[(&'static str, &'static str)]) -> Decision {
        decide(
            "GET",
            &HeaderMap::new(),
            200,
            &headers(resp),
            &policy(),
            times(),
        )
    }

    fn lifetime(d: Decision) -> u32 {
        match d {
            Decision::Store(f) => f.lifetime_secs,
            Decision::DontStore(why) => panic!("not stored: {why}"),
        }
    }

    fn not_stored(d: &Decision) -> bool {
        matches!(d, Decision::DontStore(_))
    }

    #[test]
    fn a_plain_200_is_stored_for_the_default_ttl_only_when_one_is_configured() {
        assert_eq!(lifetime(decide_for(&[])), 60);
        let off = decide(
            "GET",
            &HeaderMap::new(),
            200,
            &HeaderMap::new(),
            &Policy::default(),
            times(),
        );
        assert!(not_stored(&off));
    }

    #[test]
    fn s_maxage_wins_over_max_age_and_max_age_over_expires() {
        assert_eq!(
            lifetime(decide_for(&[("cache-control", "max-age=10, s-maxage=30")])),
            30
        );
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "max-age=10"),
                ("expires", "Sun, 06 Nov 1994 08:49:37 GMT")
            ])),
            10
        );
    }

    #[test]
    fn expires_minus_date_gives_the_lifetime_and_an_invalid_expires_is_already_stale() {
        let d = decide_for(&[
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("expires", "Tue, 14 Nov 2023 22:15:20 GMT"),
        ]);
        assert_eq!(lifetime(d), 120);
        for bad in ["0", "-1", "soon"] {
            let exp = HeaderValue::from_str(bad).unwrap();
            let mut h = HeaderMap::new();
            h.insert("expires", exp);
            let d = decide("GET", &HeaderMap::new(), 200, &h, &policy(), times());
            assert!(not_stored(&d), "expires {bad}: {d:?}");
            // With a validator it is stored, but stale from the start.
            h.insert("etag", HeaderValue::from_static("\"x\""));
            let d = decide("GET", &HeaderMap::new(), 200, &h, &policy(), times());
            assert_eq!(lifetime(d), 0, "expires {bad}");
        }
        // Two Expires lines: treated as invalid.
        let d = decide_for(&[
            ("expires", "Tue, 14 Nov 2023 22:15:20 GMT"),
            ("expires", "Tue, 14 Nov 2023 22:16:20 GMT"),
        ]);
        assert!(not_stored(&d));
    }

    #[test]
    fn directive_names_are_case_insensitive_and_lines_combine() {
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "Public"),
                ("cache-control", "MAX-AGE=5")
            ])),
            5
        );
        assert!(not_stored(&decide_for(&[("cache-control", "No-Store")])));
    }

    #[test]
    fn private_no_store_set_cookie_and_vary_star_are_not_stored() {
        for h in [
            ("cache-control", "private"),
            ("cache-control", "no-store"),
            ("cache-control", "private=\"x\", max-age=60"),
            ("set-cookie", "a=b"),
            ("vary", "*"),
            ("vary", "accept, *"),
            ("vary", "bad name"),
        ] {
            assert!(not_stored(&decide_for(&[h])), "{h:?}");
        }
    }

    #[test]
    fn no_cache_is_stored_only_with_a_validator_and_always_revalidated() {
        assert!(not_stored(&decide_for(&[(
            "cache-control",
            "no-cache, max-age=60"
        )])));
        let Decision::Store(f) =
            decide_for(&[("cache-control", "no-cache, max-age=60"), ("etag", "\"a\"")])
        else {
            panic!()
        };
        assert!(f.no_cache);
        assert_eq!(
            reuse(&f, &RequestRules::default(), NOW * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
    }

    #[test]
    fn a_varying_response_is_stored_and_its_names_are_normalised() {
        assert_eq!(lifetime(decide_for(&[("vary", "Accept-Encoding")])), 60);
        let h = headers(&[("vary", "User-Agent, accept"), ("vary", "ACCEPT")]);
        assert_eq!(
            vary_names(&h),
            Some(vec!["accept".into(), "user-agent".into()])
        );
        assert_eq!(vary_names(&HeaderMap::new()), Some(vec![]));
    }

    #[test]
    fn statuses_with_explicit_freshness_are_all_cacheable_others_only_heuristically() {
        for s in [201, 302, 307, 400, 403, 500, 503] {
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &HeaderMap::new(),
                &policy(),
                times(),
            );
            assert!(not_stored(&d), "{s} without freshness");
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &headers(&[("cache-control", "max-age=5")]),
                &policy(),
                times(),
            );
            assert_eq!(lifetime(d), 5, "{s} with max-age");
        }
        // 206 is heuristically cacheable, but only as the piece a Content-Range names.
        for s in HEURISTICALLY_CACHEABLE.into_iter().filter(|s| *s != 206) {
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &HeaderMap::new(),
                &policy(),
                times(),
            );
            assert_eq!(lifetime(d), 60, "{s}");
        }
        for s in [100, 101, 206, 304, 416, 600, 0] {
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &headers(&[("cache-control", "max-age=5")]),
                &policy(),
                times(),
            );
            assert!(not_stored(&d), "{s}");
        }
        // RFC 9111 §3.3, §4.2.2: a 206 with its Content-Range is stored, explicitly or
        // heuristically fresh; one with an unusable Content-Range is not.
        let piece = |cr: &'static str, cc: &'static str| {
            decide(
                "GET",
                &HeaderMap::new(),
                206,
                &headers(&[("content-range", cr), ("cache-control", cc)]),
                &policy(),
                times(),
            )
        };
        assert_eq!(lifetime(piece("bytes 0-9/100", "max-age=5")), 5);
        assert_eq!(lifetime(piece("bytes 0-9/100", "x")), 60);
        for bad in [
            "bytes 0-9/*",
            "bytes */100",
            "bytes 9-0/100",
            "bytes 0-100/100",
        ] {
            assert!(not_stored(&piece(bad, "max-age=5")), "{bad}");
        }
        // `public` makes any status heuristically cacheable.
        let d = decide(
            "GET",
            &HeaderMap::new(),
            302,
            &headers(&[("cache-control", "public")]),
            &policy(),
            times(),
        );
        assert_eq!(lifetime(d), 60);
    }

    #[test]
    fn only_get_responses_are_stored() {
        for m in ["HEAD", "POST", "PUT"] {
            assert!(not_stored(&decide(
                m,
                &HeaderMap::new(),
                200,
                &HeaderMap::new(),
                &policy(),
                times()
            )));
        }
    }

    #[test]
    fn authorized_requests_are_stored_only_when_the_response_allows_sharing() {
        let req = headers(&[("authorization", "Bearer x")]);
        let d = |resp: &[(&'static str, &'static str)]| {
            decide("GET", &req, 200, &headers(resp), &policy(), times())
        };
        assert!(not_stored(&d(&[])));
        assert!(not_stored(&d(&[("cache-control", "max-age=9")])));
        assert_eq!(lifetime(d(&[("cache-control", "public, max-age=9")])), 9);
        assert_eq!(lifetime(d(&[("cache-control", "s-maxage=7")])), 7);
        assert_eq!(
            lifetime(d(&[("cache-control", "must-revalidate, max-age=3")])),
            3
        );
    }

    #[test]
    fn request_no_store_prevents_storing() {
        let req = headers(&[("cache-control", "no-store")]);
        assert!(not_stored(&decide(
            "GET",
            &req,
            200,
            &HeaderMap::new(),
            &policy(),
            times()
        )));
    }

    #[test]
    fn malformed_or_conflicting_lifetimes_are_not_stored() {
        for v in [
            "max-age=abc",
            "max-age=",
            "max-age=-1",
            "max-age=1, max-age=2",
            "s-maxage=1.5",
        ] {
            assert!(not_stored(&decide_for(&[("cache-control", v)])), "{v}");
        }
        assert!(not_stored(&decide_for(&[("cache-control", "max-age=0")])));
        // The same value twice is not a conflict.
        assert_eq!(
            lifetime(decide_for(&[("cache-control", "max-age=4, max-age=4")])),
            4
        );
    }

    #[test]
    fn too_many_directives_make_the_field_invalid() {
        let long = "a, ".repeat(100) + "max-age=5";
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_str(&long).unwrap());
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            200,
            &h,
            &policy(),
            times()
        )));
    }

    #[test]
    fn targeted_fields_win_over_cache_control_in_order() {
        let d = decide_for(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=50"),
        ]);
        assert_eq!(lifetime(d), 50);
        let d = decide_for(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=50"),
            ("hzcache-cache-control", "max-age=500"),
        ]);
        assert_eq!(lifetime(d), 500);
        // The browser gets no-store, the shared cache may keep it.
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=9")
            ])),
            9
        );
        // And the other way round: the targeted field forbids storing.
        assert!(not_stored(&decide_for(&[
            ("cache-control", "max-age=60"),
            ("hzcache-cache-control", "no-store")
        ])));
        // An invalid targeted field is ignored.
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "max-age=5"),
                ("cdn-cache-control", "max-age=x")
            ])),
            5
        );
    }

    #[test]
    fn the_rule_override_replaces_lifetimes_except_hzcache_cache_control() {
        let p = Policy {
            default_ttl: Some(60),
            ttl_override: Some(7),
            ..Policy::default()
        };
        let d = |resp: &[(&'static str, &'static str)]| {
            decide("GET", &HeaderMap::new(), 200, &headers(resp), &p, times())
        };
        assert_eq!(lifetime(d(&[("cache-control", "max-age=100")])), 7);
        assert_eq!(lifetime(d(&[])), 7);
        assert_eq!(
            lifetime(d(&[("hzcache-cache-control", "max-age=100")])),
            100
        );
        assert!(not_stored(&d(&[("cache-control", "private, max-age=100")])));
    }

    #[test]
    fn an_upstream_age_counts_against_the_lifetime() {
        let Decision::Store(f) = decide_for(&[("cache-control", "max-age=60"), ("age", "50")])
        else {
            panic!()
        };
        assert_eq!(f.initial_age_secs, 50);
        assert_eq!(f.keep_secs(false), 10);
        assert!(not_stored(&decide_for(&[
            ("cache-control", "max-age=60"),
            ("age", "60")
        ])));
    }

    #[test]
    fn set_cookie_responses_are_stored_only_when_the_rule_strips_the_cookie() {
        let resp = headers(&[("cache-control", "max-age=60"), ("set-cookie", "s=1")]);
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            200,
            &resp,
            &policy(),
            times()
        )));
        let p = Policy {
            strip_set_cookie: true,
            ..policy()
        };
        let d = decide("GET", &HeaderMap::new(), 200, &resp, &p, times());
        assert_eq!(lifetime(d), 60);
        // The other rules still apply.
        let private = headers(&[("cache-control", "private"), ("set-cookie", "s=1")]);
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            200,
            &private,
            &p,
            times()
        )));
    }

    #[test]
    fn last_modified_gives_a_tenth_of_its_age_capped_only_when_configured() {
        // Date is NOW; Last-Modified 1000 s earlier → 100 s.
        let resp = headers(&[
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
        ]);
        let p = |max: Option<u32>, default_ttl: Option<u32>| Policy {
            default_ttl,
            last_modified_heuristic_max: max,
            ..Policy::default()
        };
        let d =
            |status: u16, p: Policy| decide("GET", &HeaderMap::new(), status, &resp, &p, times());
        assert!(not_stored(&d(200, p(None, None))), "off by default");
        assert_eq!(lifetime(d(200, p(Some(3600), None))), 100);
        assert_eq!(lifetime(d(200, p(Some(30), None))), 30, "capped");
        assert_eq!(
            lifetime(d(200, p(Some(3600), Some(5)))),
            100,
            "Last-Modified wins over the flat default"
        );
        // Only heuristically cacheable statuses (or `public`, tested below).
        assert!(not_stored(&d(302, p(Some(3600), None))));
        assert_eq!(lifetime(d(404, p(Some(3600), None))), 100);
        // Explicit freshness is never replaced by a heuristic.
        let explicit = headers(&[
            ("cache-control", "max-age=7"),
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
        ]);
        let d = decide(
            "GET",
            &HeaderMap::new(),
            200,
            &explicit,
            &p(Some(3600), None),
            times(),
        );
        assert_eq!(lifetime(d), 7);
        // No Date: the response time stands in; a future or doubled Last-Modified is ignored.
        let no_date = headers(&[("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT")]);
        assert_eq!(last_modified_lifetime(&no_date, NOW, 3600), Some(100));
        let future = headers(&[("last-modified", "Tue, 14 Nov 2023 23:00:00 GMT")]);
        assert_eq!(last_modified_lifetime(&future, NOW, 3600), None);
        let twice = headers(&[
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 20:00:00 GMT"),
        ]);
        assert_eq!(last_modified_lifetime(&twice, NOW, 3600), None);
        assert_eq!(last_modified_lifetime(&HeaderMap::new(), NOW, 3600), None);
    }

    #[test]
    fn stale_windows_come_from_directives_or_the_rule_and_must_revalidate_forbids_them() {
        let d = decide_for(&[(
            "cache-control",
            "max-age=10, stale-while-revalidate=20, stale-if-error=100",
        )]);
        let Decision::Store(f) = d else { panic!() };
        let r = RequestRules::default();
        assert_eq!(
            reuse(&f, &r, (NOW + 15) * 1000),
            Reuse::StaleWhileRevalidate
        );
        assert_eq!(
            reuse(&f, &r, (NOW + 31) * 1000),
            Reuse::Revalidate {
                stale_if_error: true
            }
        );
        assert_eq!(
            reuse(&f, &r, (NOW + 111) * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
        assert_eq!(f.keep_secs(false), 110);

        let p = Policy {
            default_ttl: Some(60),
            stale_while_revalidate: 30,
            stale_if_error: 40,
            ..Policy::default()
        };
        let with = |cc: &'static str| {
            let Decision::Store(f) = decide(
                "GET",
                &HeaderMap::new(),
                200,
                &headers(&[("cache-control", cc)]),
                &p,
                times(),
            ) else {
                panic!("{cc}")
            };
            (
                f.stale_while_revalidate_secs,
                f.stale_if_error_secs,
                f.must_revalidate,
            )
        };
        assert_eq!(with("max-age=10"), (30, 40, false));
        assert_eq!(with("max-age=10, must-revalidate"), (0, 0, true));
        assert_eq!(with("max-age=10, proxy-revalidate"), (0, 0, true));
        assert_eq!(with("s-maxage=10"), (0, 0, false));
        // An explicit directive is the origin's permission even with s-maxage.
        assert_eq!(with("s-maxage=10, stale-if-error=5").1, 5);
        let Decision::Store(f) = decide_for(&[(
            "cache-control",
            "max-age=10, must-revalidate, stale-if-error=100",
        )]) else {
            panic!()
        };
        assert_eq!(
            reuse(&f, &RequestRules::default(), (NOW + 20) * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
    }

    #[test]
    fn rfc9110_5_6_7_an_expires_in_any_letter_case_counts_as_its_date() {
        // And an Expires in lower case counts as the date it is, not as expired.
        let d = decide_for(&[
            ("date", "tue, 14 nov 2023 22:13:20 gmt"),
            ("expires", "TUE, 14 NOV 2023 22:15:20 GMT"),
        ]);
        assert_eq!(lifetime(d), 120);
    }

    #[test]
    fn rfc9111_4_2_2_heuristics_cover_501_and_public_on_any_status() {
        let lm = [
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
        ];
        let p = Policy {
            last_modified_heuristic_max: Some(86_400),
            ..Policy::default()
        };
        let d = |status: u16, extra: &[(&'static str, &'static str)]| {
            let mut h = headers(&lm);
            for (k, v) in extra {
                h.append(*k, HeaderValue::from_static(v));
            }
            decide("GET", &HeaderMap::new(), status, &h, &p, times())
        };
        assert_eq!(lifetime(d(501, &[])), 100, "501 is heuristically cacheable");
        assert!(not_stored(&d(302, &[])), "302 is not");
        assert_eq!(
            lifetime(d(302, &[("cache-control", "public")])),
            100,
            "any status marked public is"
        );
        assert!(not_stored(&d(500, &[])));
        for s in HEURISTICALLY_CACHEABLE.into_iter().filter(|s| *s != 206) {
            assert_eq!(lifetime(d(s, &[])), 100, "{s}");
        }
    }

    #[test]
    fn rfc9111_5_2_2_4_no_cache_with_a_validator_and_no_lifetime_is_stored_stale() {
        let p = Policy::default();
        let d = |h: &[(&'static str, &'static str)]| {
            decide("GET", &HeaderMap::new(), 200, &headers(h), &p, times())
        };
        let Decision::Store(f) = d(&[("cache-control", "no-cache"), ("etag", "\"v\"")]) else {
            panic!("stored")
        };
        assert_eq!((f.lifetime_secs, f.no_cache), (0, true));
        assert!(f.keep_secs(true) >= MIN_REVALIDATION_KEEP_SECS);
        assert!(matches!(
            reuse(&f, &RequestRules::default(), NOW * 1000),
            Reuse::Revalidate { .. }
        ));
        assert_eq!(
            lifetime(d(&[
                ("cache-control", "no-cache"),
                ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT")
            ])),
            0
        );
        assert!(
            not_stored(&d(&[("cache-control", "no-cache")])),
            "no validator"
        );
    }

    #[test]
    fn rfc9111_5_2_2_3_must_understand_overrides_no_store_for_understood_statuses() {
        let d = |status: u16| {
            decide(
                "GET",
                &HeaderMap::new(),
                status,
                &headers(&[("cache-control", "must-understand, no-store, max-age=60")]),
                &policy(),
                times(),
            )
        };
        assert_eq!(lifetime(d(200)), 60);
        assert_eq!(lifetime(d(404)), 60);
        assert!(not_stored(&d(299)), "an unknown status is not stored");
        assert_eq!(
            lifetime(decide_for(&[(
                "cache-control",
                "must-understand, max-age=5"
            )])),
            5
        );
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            299,
            &headers(&[("cache-control", "must-understand, max-age=60")]),
            &policy(),
            times(),
        )));
    }

    #[test]
    fn rfc9111_4_2_4_stale_if_unreachable_only_where_stale_is_allowed() {
        let p = Policy {
            stale_if_unreachable: 60,
            ..Policy::default()
        };
        let f = |cc: &'static str| match decide(
            "GET",
            &HeaderMap::new(),
            200,
            &headers(&[("cache-control", cc)]),
            &p,
            times(),
        ) {
            Decision::Store(f) => f,
            Decision::DontStore(why) => panic!("{cc}: {why}"),
        };
        let plain = f("max-age=100");
        assert_eq!(plain.stale_if_unreachable_secs, 60);
        assert_eq!(plain.keep_secs(false), 160, "kept for the window");
        assert!(!stale_if_unreachable(&plain, (NOW + 50) * 1000), "fresh");
        assert!(stale_if_unreachable(&plain, (NOW + 130) * 1000));
        assert!(
            !stale_if_unreachable(&plain, (NOW + 160) * 1000),
            "past the window"
        );
        // Never longer than it was fresh.
        let short = f("max-age=10");
        assert_eq!(short.stale_if_unreachable_secs, 10);
        assert_eq!(short.keep_secs(false), 20);
        assert!(stale_if_unreachable(&short, (NOW + 15) * 1000));
        assert!(!stale_if_unreachable(&short, (NOW + 20) * 1000));
        for cc in [
            "max-age=10, must-revalidate",
            "max-age=10, proxy-revalidate",
            "s-maxage=10",
        ] {
            let g = f(cc);
            assert_eq!(g.stale_if_unreachable_secs, 0, "{cc}");
            assert!(!stale_if_unreachable(&g, (NOW + 30) * 1000), "{cc}");
        }
        // A response stale on arrival is not kept for an outage.
        let arrived_stale = decide(
            "GET",
            &HeaderMap::new(),
            200,
            &headers(&[("cache-control", "max-age=10"), ("age", "20")]),
            &p,
            times(),
        );
        assert!(not_stored(&arrived_stale));
        // Off.
        let off = match decide_for(&[("cache-control", "max-age=10")]) {
            Decision::Store(f) => f,
            _ => panic!(),
        };
        assert!(!stale_if_unreachable(&off, (NOW + 30) * 1000));
    }

    #[test]
    fn rfc9213_2_1_targeted_fields_are_sf_dictionaries_or_ignored() {
        let cdn = |v: &'static str| {
            lifetime(decide_for(&[
                ("cache-control", "max-age=5"),
                ("cdn-cache-control", v),
            ]))
        };
        assert_eq!(cdn("max-age=50"), 50);
        assert_eq!(cdn("max-age=50, stale-if-error=9;x=1"), 50);
        assert_eq!(cdn("public, max-age=50, unknown=(a b), other=?1"), 50);
        // Wrong type for a known directive, or not a Dictionary: ignored, Cache-Control applies.
        for bad in [
            "max-age=\"50\"",
            "max-age=50.0",
            "max-age=-1",
            "no-store=1",
            "Max-Age=50",
            "max-age=50,",
            "max-age=50 public",
            "max-age = 50",
            "",
            "max-age=9999999999999999",
        ] {
            assert_eq!(cdn(bad), 5, "{bad:?}");
        }
        // A key given twice keeps its last value (RFC 8941 §4.2.2).
        assert_eq!(cdn("max-age=1, max-age=50"), 50);
        // Lines combine into one Dictionary.
        let mut h = headers(&[("cache-control", "max-age=5")]);
        h.append("cdn-cache-control", HeaderValue::from_static("public"));
        h.append("cdn-cache-control", HeaderValue::from_static("max-age=40"));
        assert_eq!(
            lifetime(decide(
                "GET",
                &HeaderMap::new(),
                200,
                &h,
                &policy(),
                times()
            )),
            40
        );
        // A valid no-store in the targeted field still wins.
        assert!(not_stored(&decide_for(&[
            ("cache-control", "max-age=60"),
            ("hzcache-cache-control", "no-store")
        ])));
        assert!(
            sf::parse_dictionary(b"a=\"x\\\"y\", b=:aGk=:, c=tok/en, d=?0, e=(1 2);p").is_some()
        );
        assert!(sf::parse_dictionary(b"a=\"unterminated").is_none());
    }
}
