//! Whether an origin response may be stored in the shared cache, and for how long (RFC 9111
//! §3 and §4.2, the shared-cache subset this version honours). Pure: headers and the rule's
//! default lifetime in, a decision out.
//!
//! Stored: status 200 to a GET, without `no-store`, `private` or `no-cache`, without
//! `Set-Cookie`, without `Vary` (variants are not keyed yet, so a varying response could be
//! served to the wrong client), and — when the request carried `Authorization` — only if the
//! response says `public`, `s-maxage` or `must-revalidate` (§3.5). Lifetime: `s-maxage`, else
//! `max-age`, else the rule's default. Anything doubtful is not stored: a miss costs one origin
//! fetch, a wrong hit serves someone else's answer.

use hyper::header::{HeaderMap, AUTHORIZATION, CACHE_CONTROL, SET_COOKIE, VARY};

/// The directives of all `Cache-Control` field lines together. Names are case-insensitive.
/// A directive given twice with different values, or with a value that is not a number where
/// one is needed, counts as `invalid_lifetime` (RFC 9111 §4.2.1: treat the response as stale).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub invalid_lifetime: bool,
}

/// Largest lifetime taken from a header: RFC 9111 §1.2.2 says to treat anything larger than
/// 2^31 as 2^31 seconds.
const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

impl CacheControl {
    pub fn parse(headers: &HeaderMap) -> CacheControl {
        let mut cc = CacheControl::default();
        for value in headers.get_all(CACHE_CONTROL) {
            for directive in split_directives(value.as_bytes()) {
                let (name, arg) = match directive.iter().position(|&b| b == b'=') {
                    Some(i) => (&directive[..i], Some(unquote(trim(&directive[i + 1..])))),
                    None => (directive, None),
                };
                let name = trim(name).to_ascii_lowercase();
                match name.as_slice() {
                    b"no-store" => cc.no_store = true,
                    // `no-cache="field"` and `private="field"` name fields not to reuse; the
                    // whole response is then treated as if the directive had no argument.
                    b"no-cache" => cc.no_cache = true,
                    b"private" => cc.private = true,
                    b"public" => cc.public = true,
                    b"must-revalidate" | b"proxy-revalidate" => cc.must_revalidate = true,
                    b"max-age" => set_seconds(&mut cc.max_age, arg, &mut cc.invalid_lifetime),
                    b"s-maxage" => set_seconds(&mut cc.s_maxage, arg, &mut cc.invalid_lifetime),
                    _ => {}
                }
            }
        }
        cc
    }
}

fn set_seconds(slot: &mut Option<u64>, arg: Option<&[u8]>, invalid: &mut bool) {
    let parsed = arg.and_then(|a| {
        if a.is_empty() || !a.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Digits beyond what fits are still a valid, very large number: clamp.
        Some(
            std::str::from_utf8(a)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(MAX_DELTA_SECONDS)
                .min(MAX_DELTA_SECONDS),
        )
    });
    match (parsed, *slot) {
        (None, _) => *invalid = true,
        (Some(v), Some(old)) if v != old => *invalid = true,
        (Some(v), _) => *slot = Some(v),
    }
}

/// Splits on commas outside quoted strings.
fn split_directives(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in v.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == b',' && !quoted {
            parts.push(&v[start..i]);
            start = i + 1;
        }
    }
    parts.push(&v[start..]);
    parts.into_iter().map(trim).filter(|p| !p.is_empty())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

fn unquote(s: &[u8]) -> &[u8] {
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// The storage decision for one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Store { lifetime_secs: u32 },
    DontStore(&'static str),
}

/// Decides whether a response to a GET may be stored and for how long.
pub fn decide(
    request: &HeaderMap,
    status: u16,
    response: &HeaderMap,
    default_ttl_secs: u32,
) -> Decision {
    if status != 200 {
        return Decision::DontStore("status is not 200");
    }
    let cc = CacheControl::parse(response);
    if cc.no_store {
        return Decision::DontStore("no-store");
    }
    if cc.private {
        return Decision::DontStore("private");
    }
    if cc.no_cache {
        return Decision::DontStore("no-cache (revalidation not supported yet)");
    }
    if response.contains_key(SET_COOKIE) {
        return Decision::DontStore("set-cookie");
    }
    if response.contains_key(VARY) {
        return Decision::DontStore("vary (variants not supported yet)");
    }
    if request.contains_key(AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Decision::DontStore("request carried authorization");
    }
    if cc.invalid_lifetime {
        return Decision::DontStore("invalid or conflicting max-age/s-maxage");
    }
    let lifetime = cc
        .s_maxage
        .or(cc.max_age)
        .unwrap_or(default_ttl_secs as u64);
    if lifetime == 0 {
        return Decision::DontStore("zero lifetime");
    }
    Decision::Store {
        lifetime_secs: lifetime.min(u32::MAX as u64) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn decide_for(resp: &[(&'static str, &'static str)]) -> Decision {
        decide(&HeaderMap::new(), 200, &headers(resp), 60)
    }

    #[test]
    fn a_plain_200_is_stored_for_the_rule_default() {
        assert_eq!(decide_for(&[]), Decision::Store { lifetime_secs: 60 });
    }

    #[test]
    fn s_maxage_wins_over_max_age_for_a_shared_cache() {
        assert_eq!(
            decide_for(&[("cache-control", "max-age=10, s-maxage=30")]),
            Decision::Store { lifetime_secs: 30 }
        );
        assert_eq!(
            decide_for(&[("cache-control", "max-age=10")]),
            Decision::Store { lifetime_secs: 10 }
        );
    }

    #[test]
    fn directive_names_are_case_insensitive_and_lines_combine() {
        assert_eq!(
            decide_for(&[("cache-control", "Public"), ("cache-control", "MAX-AGE=5")]),
            Decision::Store { lifetime_secs: 5 }
        );
        assert!(matches!(
            decide_for(&[("cache-control", "No-Store")]),
            Decision::DontStore(_)
        ));
    }

    #[test]
    fn private_no_store_no_cache_set_cookie_and_vary_are_not_stored() {
        for h in [
            ("cache-control", "private"),
            ("cache-control", "no-store"),
            ("cache-control", "no-cache"),
            ("cache-control", "private=\"x\", max-age=60"),
            ("set-cookie", "a=b"),
            ("vary", "accept-encoding"),
            ("vary", "*"),
        ] {
            assert!(matches!(decide_for(&[h]), Decision::DontStore(_)), "{h:?}");
        }
    }

    #[test]
    fn other_statuses_are_not_stored() {
        for s in [201, 204, 206, 301, 404, 500, 503] {
            assert!(matches!(
                decide(&HeaderMap::new(), s, &HeaderMap::new(), 60),
                Decision::DontStore(_)
            ));
        }
    }

    #[test]
    fn authorized_requests_are_stored_only_when_the_response_allows_sharing() {
        let req = headers(&[("authorization", "Bearer x")]);
        assert!(matches!(
            decide(&req, 200, &HeaderMap::new(), 60),
            Decision::DontStore(_)
        ));
        assert_eq!(
            decide(
                &req,
                200,
                &headers(&[("cache-control", "public, max-age=9")]),
                60
            ),
            Decision::Store { lifetime_secs: 9 }
        );
        assert_eq!(
            decide(&req, 200, &headers(&[("cache-control", "s-maxage=7")]), 60),
            Decision::Store { lifetime_secs: 7 }
        );
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
            assert!(
                matches!(decide_for(&[("cache-control", v)]), Decision::DontStore(_)),
                "{v}"
            );
        }
        assert!(matches!(
            decide_for(&[("cache-control", "max-age=0")]),
            Decision::DontStore(_)
        ));
    }

    #[test]
    fn quoted_values_and_commas_inside_quotes_parse() {
        let cc = CacheControl::parse(&headers(&[(
            "cache-control",
            "no-cache=\"set-cookie, x\", max-age=\"20\"",
        )]));
        assert!(cc.no_cache);
        assert_eq!(cc.max_age, Some(20));
    }

    #[test]
    fn huge_lifetimes_are_clamped() {
        let cc = CacheControl::parse(&headers(&[(
            "cache-control",
            "max-age=99999999999999999999999",
        )]));
        assert_eq!(cc.max_age, Some(MAX_DELTA_SECONDS));
        assert!(!cc.invalid_lifetime);
    }
}
