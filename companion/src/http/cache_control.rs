//! The `Cache-Control` field (RFC 9111 §5.2): its directives, request and response ones
//! together, parsed leniently as RFC 9111 §5.2 asks (unknown directives ignored, names in any
//! case, several field lines combined); a lifetime directive that is malformed or given twice
//! with different values marks the field invalid (§4.2.1). The targeted fields that replace it
//! for a CDN or for hzcache are `targeted`'s.

use hyper::header::{HeaderMap, CACHE_CONTROL};

use crate::http::syntax::{delta_seconds, trim};

/// The directives of all field lines of one Cache-Control-like field together. Names are
/// case-insensitive. A lifetime directive given twice with different values, or with a value
/// that is not a non-negative integer, sets `invalid_lifetime` (RFC 9111 §4.2.1: such a
/// response is treated as stale; hzcache then does not store it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub immutable: bool,
    /// `must-understand` (RFC 9111 §5.2.2.3): with an understood status it overrides
    /// `no-store`; with any other status the response is not stored.
    pub must_understand: bool,
    pub only_if_cached: bool,
    /// Request `max-stale` (§5.2.1.2): `Some(u64::MAX)` without a value (any staleness).
    pub max_stale: Option<u64>,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub min_fresh: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    pub invalid_lifetime: bool,
}

/// At most this many directives are looked at per field: real fields have a handful; a field
/// with thousands is an attack on the parser.
pub const MAX_DIRECTIVES: usize = 64;

impl CacheControl {
    /// Parses every line of field `name`.
    pub fn parse_field(headers: &HeaderMap, name: &str) -> CacheControl {
        CacheControl::parse_lines(headers.get_all(name).iter().map(|v| v.as_bytes()))
    }

    pub fn parse(headers: &HeaderMap) -> CacheControl {
        CacheControl::parse_field(headers, CACHE_CONTROL.as_str())
    }

    pub fn parse_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) -> CacheControl {
        let mut cc = CacheControl::default();
        let mut seen = 0;
        for value in lines {
            for directive in split_directives(value) {
                seen += 1;
                if seen > MAX_DIRECTIVES {
                    cc.invalid_lifetime = true;
                    return cc;
                }
                let (name, arg) = match directive.iter().position(|&b| b == b'=') {
                    Some(i) => (&directive[..i], Some(unquote(trim(&directive[i + 1..])))),
                    None => (directive, None),
                };
                let name = trim(name).to_ascii_lowercase();
                let bad = &mut cc.invalid_lifetime;
                match name.as_slice() {
                    b"no-store" => cc.no_store = true,
                    // `no-cache="field"` and `private="field"` name fields not to reuse; hzcache
                    // treats the whole response as if the directive had no argument (stricter).
                    b"no-cache" => cc.no_cache = true,
                    b"private" => cc.private = true,
                    b"public" => cc.public = true,
                    b"must-revalidate" => cc.must_revalidate = true,
                    b"proxy-revalidate" => cc.proxy_revalidate = true,
                    b"immutable" => cc.immutable = true,
                    b"only-if-cached" => cc.only_if_cached = true,
                    b"must-understand" => cc.must_understand = true,
                    b"max-stale" => match arg.map(delta_seconds) {
                        None => cc.max_stale = Some(u64::MAX),
                        Some(Some(v)) => cc.max_stale = Some(v),
                        // A malformed max-stale is not a permission to serve stale.
                        Some(None) => {}
                    },
                    b"max-age" => set_seconds(&mut cc.max_age, arg, bad),
                    b"s-maxage" => set_seconds(&mut cc.s_maxage, arg, bad),
                    b"min-fresh" => set_seconds(&mut cc.min_fresh, arg, bad),
                    b"stale-while-revalidate" => {
                        set_seconds(&mut cc.stale_while_revalidate, arg, bad)
                    }
                    b"stale-if-error" => set_seconds(&mut cc.stale_if_error, arg, bad),
                    _ => {}
                }
            }
        }
        cc
    }
}

fn set_seconds(slot: &mut Option<u64>, arg: Option<&[u8]>, invalid: &mut bool) {
    let parsed = arg.and_then(delta_seconds);
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

fn unquote(s: &[u8]) -> &[u8] {
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::syntax::MAX_DELTA_SECONDS;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
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
