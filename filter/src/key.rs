//! Cache keys: computing a request's key from its rule (query normalisation, parameter lookup,
//! the canonical origin request); the key's header encoding (docs/callout-protocol.md, "Key
//! encoding") is the contract crate's, re-exported here. The URL helpers the key shares with
//! rule matching are in `url`.

use crate::config::{KeySource, KeySpec};
use crate::url::{percent_decode, split_target};
pub use hzcache_contract::encode_key;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;

/// Longest key (prefix included, before percent-encoding) the filter sends. Hazelcast keys this
/// long are already unusual; the encoded header stays under 12 KiB, far below Envoy's 60 KiB
/// default header limit.
pub const MAX_KEY_LEN: usize = 4096;

/// Why a request has no cache key. None of these is an error: the request just goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The rule keys on a query parameter the request does not carry.
    MissingParam,
    /// The parameter is present but empty (`?key=` or `?key`).
    EmptyParam,
    /// The parameter decodes to bytes that are not UTF-8; the companion would refuse the key.
    NotUtf8,
    /// The default key needs a host and the request has no `:authority`.
    MissingHost,
    /// The default key needs the scheme and the request has no usable `:scheme`.
    MissingScheme,
    /// A `query_param` rule caches one path only, and this request is for another.
    OtherPath,
    /// The path has dot segments, empty segments, a backslash or an encoded dot or slash that
    /// the origin may resolve to another resource than the key names (Envoy's
    /// `normalize_path`/`merge_slashes` remove most before the filter sees them).
    UnnormalisedPath,
    /// The path or query holds a byte a URI may not (RFC 3986 §2: a space, `"`, `<`, `>`, a
    /// backtick, `{`, `}`, `|`, `^`, `[`, `]`, a control or non-ASCII byte). Servers disagree
    /// on what such a request means, and the companion could not send it as it came.
    NotUri,
    /// Longer than [`MAX_KEY_LEN`] (the actual length).
    TooLong(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::MissingParam => write!(f, "key query parameter absent"),
            KeyError::EmptyParam => write!(f, "key query parameter empty"),
            KeyError::NotUtf8 => write!(f, "key query parameter is not UTF-8"),
            KeyError::MissingHost => write!(f, "no :authority for the default key"),
            KeyError::MissingScheme => write!(f, "no :scheme for the default key"),
            KeyError::OtherPath => write!(f, "not the rule's canonical path"),
            KeyError::UnnormalisedPath => write!(f, "path is not normalised"),
            KeyError::NotUri => write!(f, "path or query has bytes a URI may not"),
            KeyError::TooLong(n) => write!(f, "key is {n} bytes (max {MAX_KEY_LEN})"),
        }
    }
}

/// The request line parts a key is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInput<'a> {
    /// `:scheme` (`http`/`https`), as Envoy set it.
    pub scheme: &'a str,
    /// `:authority` as received (may carry a port).
    pub authority: &'a str,
    /// `:path` as received: path and query.
    pub path: &'a str,
    /// The rule's host (lower-case, no port), when it matches on one.
    pub rule_host: Option<&'a str>,
    /// The cookies the rule keys by that the request carries, in the rule's order.
    pub cookies: &'a [(&'a str, &'a str)],
}

/// A request's key and the one origin request that key stands for. Both come from the same
/// parts, so what the origin is asked and what the answer is stored under cannot disagree:
/// any input the key ignores does not reach the origin either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    pub key: String,
    /// Path and (canonical) query the origin is asked for.
    pub origin_path: String,
    /// `Host` for the origin fetch; empty: the companion uses the origin's own authority (a
    /// `query_param` key does not hold the client's host).
    pub origin_host: String,
    /// The scheme the key holds, given to the origin as `X-Forwarded-Proto`; `None` when the
    /// key does not hold one.
    pub scheme: Option<String>,
}

/// The cache key of a request under `spec`, with its canonical origin request.
pub fn cache_key(spec: &KeySpec, input: &KeyInput<'_>) -> Result<Keyed, KeyError> {
    let (path, query) = split_target(input.path);
    if !is_normalised(path) {
        return Err(KeyError::UnnormalisedPath);
    }
    if !is_uri_text(path) || !query.is_none_or(is_uri_text) {
        return Err(KeyError::NotUri);
    }
    let (body, origin_path, origin_host, scheme) = match &spec.source {
        KeySource::Default => {
            if input.authority.is_empty() {
                return Err(KeyError::MissingHost);
            }
            let scheme = match input.scheme.to_ascii_lowercase().as_str() {
                s @ ("http" | "https") => s.to_string(),
                _ => return Err(KeyError::MissingScheme),
            };
            let host = input.authority.to_ascii_lowercase();
            let query = normalise_query(query.unwrap_or(""));
            let mut origin_path =
                String::with_capacity(path.len().saturating_add(query.len()).saturating_add(1));
            origin_path.push_str(path);
            if !query.is_empty() {
                origin_path.push('?');
                origin_path.push_str(&query);
            }
            let body = format!("{scheme}://{host}{origin_path}");
            (body, origin_path, host, Some(scheme))
        }
        KeySource::QueryParam {
            name,
            path: canonical,
        } => {
            if path != canonical {
                return Err(KeyError::OtherPath);
            }
            let value = match query_param(query.unwrap_or(""), name)? {
                Some(value) if value.is_empty() => return Err(KeyError::EmptyParam),
                Some(value) => value,
                None => return Err(KeyError::MissingParam),
            };
            let origin_path = format!(
                "{canonical}?{}={}",
                encode_component(name),
                encode_component(&value)
            );
            let host = input.rule_host.unwrap_or("").to_string();
            (value, origin_path, host, None)
        }
    };
    let mut key = String::with_capacity(spec.prefix.len().saturating_add(body.len()));
    key.push_str(&spec.prefix);
    key.push_str(&body);
    // NUL cannot occur in a decoded parameter that came through a URL nor in a header, so
    // the cookie part can never be confused with the rest of the key.
    for (name, value) in input.cookies {
        key.push_str("\0cookie:");
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong(key.len()));
    }
    Ok(Keyed {
        key,
        origin_path,
        origin_host,
        scheme,
    })
}

/// Whether a path (without query) is one the origin resolves as written: origin-form (starts
/// with `/`), no `.` or `..`
/// segments (also percent-encoded), no empty segments (`//`), no backslash and no encoded
/// slash or backslash, any of which a server may resolve to a resource other than the one
/// the key names.
pub fn is_normalised(path: &str) -> bool {
    if !path.starts_with('/') || path.contains('\\') || path.contains("//") {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    !lower
        .split('/')
        .any(|seg| matches!(seg.replace("%2e", ".").as_str(), "." | ".."))
}

/// Whether every byte may stand in a URI's path or query as it is (RFC 3986 §3.3, §3.4):
/// unreserved, sub-delims, `:`, `@`, `/`, `?` and `%` (escapes).
fn is_uri_text(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

/// Percent-encodes a query component: unreserved characters (RFC 3986 §2.3) as themselves,
/// every other byte as `%XX`, so the canonical request is the same whatever form the client
/// sent (`a+b`, `a%20b`).
fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT_ESCAPED).to_string()
}

/// Orders parameters by name (compared as sent, still percent-encoded), keeping parameters of
/// the same name in the order the client sent them (`a=2&a=1` is not `a=1&a=2` to an
/// application that reads lists), and drops empty `&&` segments. Parameters are not
/// re-encoded: `a=%41` and `a=A` stay different keys, which can only cost a hit, never serve
/// the wrong entry. The origin is asked for exactly this query.
pub fn normalise_query(query: &str) -> String {
    let mut segments: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    // A stable sort: equal names keep their relative order.
    segments.sort_by_key(|segment| segment.split_once('=').map_or(*segment, |(name, _)| name));
    segments.join("&")
}

/// The decoded value of the first parameter whose decoded name equals `name`.
/// Decoding follows HTML form rules (`+` is a space), as web frameworks do, so that a key
/// written by an application for `?key=a+b` matches the filter's key for the same URL.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, KeyError> {
    for segment in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        if form_decode(raw_name) != name.as_bytes() {
            continue;
        }
        return String::from_utf8(form_decode(raw_value))
            .map(Some)
            .map_err(|_| KeyError::NotUtf8);
    }
    Ok(None)
}

fn form_decode(input: &str) -> Vec<u8> {
    percent_decode(input, true)
}

/// A query component keeps only RFC 3986's unreserved characters (§2.3) as themselves.
const COMPONENT_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: KeySource, prefix: &str) -> KeySpec {
        KeySpec {
            source,
            prefix: prefix.into(),
        }
    }

    fn qp(name: &str) -> KeySource {
        KeySource::QueryParam {
            name: name.into(),
            path: "/d".into(),
        }
    }

    fn param(name: &str) -> KeySpec {
        spec(qp(name), "")
    }

    /// The key of `path` (which for a parameter key is rewritten onto the rule's path `/d`).
    fn cache_key(spec: &KeySpec, authority: &str, path: &str) -> Result<String, KeyError> {
        let path = match &spec.source {
            KeySource::Default => path.to_string(),
            KeySource::QueryParam { .. } => {
                let (_, q) = split_target(path);
                format!("/d{}", q.map(|q| format!("?{q}")).unwrap_or_default())
            }
        };
        keyed(spec, "http", authority, &path).map(|k| k.key)
    }

    fn keyed(spec: &KeySpec, scheme: &str, authority: &str, path: &str) -> Result<Keyed, KeyError> {
        super::cache_key(
            spec,
            &KeyInput {
                scheme,
                authority,
                path,
                rule_host: None,
                cookies: &[],
            },
        )
    }

    /// The companion's side of the contract: `%XX` back to bytes, then UTF-8.
    fn companion_decode(header: &str) -> Option<String> {
        hzcache_contract::decode_key(header)
    }

    #[test]
    fn default_key_is_lower_host_path_and_sorted_query() {
        let s = spec(KeySource::Default, "");
        assert_eq!(
            cache_key(&s, "Example.COM", "/A/b?z=1&a=2&m").unwrap(),
            "http://example.com/A/b?a=2&m&z=1"
        );
        assert_eq!(cache_key(&s, "h:8080", "/p").unwrap(), "http://h:8080/p");
    }

    #[test]
    fn empty_query_gives_no_question_mark() {
        let s = spec(KeySource::Default, "");
        assert_eq!(cache_key(&s, "h", "/p?").unwrap(), "http://h/p");
        assert_eq!(cache_key(&s, "h", "/p?&&").unwrap(), "http://h/p");
        assert_eq!(cache_key(&s, "h", "/p").unwrap(), "http://h/p");
    }

    #[test]
    fn fragment_never_reaches_the_key() {
        let s = spec(KeySource::Default, "");
        assert_eq!(
            cache_key(&s, "h", "/p?b=1&a=2#frag").unwrap(),
            "http://h/p?a=2&b=1"
        );
        assert_eq!(cache_key(&s, "h", "/p#x?y=1").unwrap(), "http://h/p");
    }

    #[test]
    fn the_order_of_different_names_does_not_change_the_key() {
        let s = spec(KeySource::Default, "");
        let a = cache_key(&s, "h", "/p?b=2&a=0&a=1").unwrap();
        let b = cache_key(&s, "h", "/p?a=0&a=1&b=2").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, "http://h/p?a=0&a=1&b=2");
    }

    #[test]
    fn repeated_parameters_keep_their_relative_order() {
        // An application reading `a` as a list sees [2, 1] and [1, 2]: two resources.
        assert_eq!(normalise_query("a=2&b=0&a=1&a=2"), "a=2&a=1&a=2&b=0");
        let s = spec(KeySource::Default, "");
        assert_ne!(
            cache_key(&s, "h", "/q?a=2&a=1").unwrap(),
            cache_key(&s, "h", "/q?a=1&a=2").unwrap()
        );
    }

    #[test]
    fn bare_and_empty_valued_parameters_stay_distinct() {
        assert_eq!(normalise_query("a=&a"), "a=&a");
        assert_ne!(normalise_query("a"), normalise_query("a="));
    }

    #[test]
    fn the_scheme_is_part_of_the_default_key_and_goes_to_the_origin() {
        let s = spec(KeySource::Default, "");
        let http = keyed(&s, "http", "h", "/p").unwrap();
        let https = keyed(&s, "HTTPS", "h", "/p").unwrap();
        assert_eq!(http.key, "http://h/p");
        assert_eq!(https.key, "https://h/p");
        assert_eq!(https.scheme.as_deref(), Some("https"));
        assert_eq!(keyed(&s, "", "h", "/p"), Err(KeyError::MissingScheme));
        assert_eq!(keyed(&s, "ftp", "h", "/p"), Err(KeyError::MissingScheme));
    }

    #[test]
    fn the_origin_is_asked_for_exactly_what_the_key_holds() {
        let s = spec(KeySource::Default, "p:");
        let k = keyed(&s, "http", "Shop.Example:8080", "/a/b?z=1&&a=2#f").unwrap();
        assert_eq!(k.key, "p:http://shop.example:8080/a/b?a=2&z=1");
        assert_eq!(k.origin_path, "/a/b?a=2&z=1");
        assert_eq!(k.origin_host, "shop.example:8080");
        let k = keyed(&s, "http", "h", "/a?").unwrap();
        assert_eq!(k.origin_path, "/a");
    }

    #[test]
    fn a_parameter_key_fetches_its_canonical_request() {
        let s = param("key");
        // Other parameters, a repeated key parameter, and the client's host are not keyed, so
        // the origin does not see them either.
        let k = keyed(&s, "http", "evil.example", "/d?x=1&key=a+b&key=zz").unwrap();
        assert_eq!(k.key, "a b");
        assert_eq!(k.origin_path, "/d?key=a%20b");
        assert_eq!(
            k.origin_host, "",
            "the companion uses the origin's own authority"
        );
        assert_eq!(k.scheme, None);
        let with_host = super::cache_key(
            &s,
            &KeyInput {
                scheme: "http",
                authority: "EVIL:1",
                path: "/d?key=%C3%A9",
                rule_host: Some("shop.example"),
                cookies: &[],
            },
        )
        .unwrap();
        assert_eq!(with_host.origin_path, "/d?key=%C3%A9");
        assert_eq!(with_host.origin_host, "shop.example");
    }

    #[test]
    fn a_parameter_key_caches_its_one_path_only() {
        let s = param("key");
        for other in [
            "/database?key=a",
            "/d/?key=a",
            "/d/x?key=a",
            "/?key=a",
            "/D?key=a",
        ] {
            assert_eq!(
                keyed(&s, "http", "h", other),
                Err(KeyError::OtherPath),
                "{other}"
            );
        }
    }

    #[test]
    fn paths_a_server_may_resolve_elsewhere_are_not_cached() {
        let s = spec(KeySource::Default, "");
        for bad in [
            "/a/../x",
            "/a/./x",
            "/..",
            "/a//b",
            "//a",
            "/a/%2e%2E/x",
            "/a/.%2e/x",
            "/a/%2E/x",
            "/a%2fb",
            "/a%5Cb",
            "/a\\b",
        ] {
            assert_eq!(
                keyed(&s, "http", "h", bad),
                Err(KeyError::UnnormalisedPath),
                "{bad}"
            );
        }
        for good in [
            "/",
            "/a.b/c",
            "/...",
            "/a/..b",
            "/.well-known/x",
            "/a?x=../y",
        ] {
            assert!(keyed(&s, "http", "h", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn keyed_cookies_extend_the_key() {
        let s = spec(KeySource::Default, "");
        let cookies = [("lang", "de"), ("ab", "")];
        let k = super::cache_key(
            &s,
            &KeyInput {
                scheme: "http",
                authority: "h",
                path: "/p",
                rule_host: None,
                cookies: &cookies,
            },
        )
        .unwrap();
        assert_eq!(k.key, "http://h/p\0cookie:lang=de\0cookie:ab=");
        assert_eq!(k.origin_path, "/p");
    }

    #[test]
    fn default_key_needs_a_host() {
        let s = spec(KeySource::Default, "");
        assert_eq!(cache_key(&s, "", "/p"), Err(KeyError::MissingHost));
    }

    #[test]
    fn prefix_is_prepended() {
        let s = spec(KeySource::Default, "v2:");
        assert_eq!(cache_key(&s, "h", "/p").unwrap(), "v2:http://h/p");
        let s = spec(qp("key"), "user:");
        assert_eq!(cache_key(&s, "h", "/data?key=42").unwrap(), "user:42");
    }

    #[test]
    fn query_param_key_is_the_decoded_value() {
        let s = param("key");
        assert_eq!(cache_key(&s, "h", "/data?key=abc").unwrap(), "abc");
        assert_eq!(cache_key(&s, "h", "/data?x=1&key=a%20b").unwrap(), "a b");
        assert_eq!(cache_key(&s, "h", "/data?key=a+b").unwrap(), "a b");
        assert_eq!(
            cache_key(&s, "h", "/data?key=%C3%A9t%C3%A9").unwrap(),
            "été"
        );
        assert_eq!(
            cache_key(&s, "h", "/data?key=a%2Bb%26c%3D").unwrap(),
            "a+b&c="
        );
        // Host is irrelevant for a parameter key.
        assert_eq!(cache_key(&s, "", "/data?key=abc").unwrap(), "abc");
    }

    #[test]
    fn parameter_names_are_decoded_before_comparing() {
        let s = param("my key");
        assert_eq!(cache_key(&s, "h", "/d?my%20key=v").unwrap(), "v");
        assert_eq!(cache_key(&s, "h", "/d?my+key=v").unwrap(), "v");
        assert_eq!(
            cache_key(&param("key"), "h", "/d?KEY=v"),
            Err(KeyError::MissingParam)
        );
    }

    #[test]
    fn repeated_key_parameter_uses_the_first() {
        assert_eq!(
            cache_key(&param("key"), "h", "/d?key=1&key=2").unwrap(),
            "1"
        );
    }

    #[test]
    fn missing_or_empty_parameter_means_not_cached() {
        let s = param("key");
        assert_eq!(cache_key(&s, "h", "/data"), Err(KeyError::MissingParam));
        assert_eq!(
            cache_key(&s, "h", "/data?other=1"),
            Err(KeyError::MissingParam)
        );
        assert_eq!(
            cache_key(&s, "h", "/data?keys=1"),
            Err(KeyError::MissingParam)
        );
        assert_eq!(cache_key(&s, "h", "/data?key="), Err(KeyError::EmptyParam));
        assert_eq!(cache_key(&s, "h", "/data?key"), Err(KeyError::EmptyParam));
        assert_eq!(
            cache_key(&s, "h", "/data#key=1"),
            Err(KeyError::MissingParam)
        );
    }

    #[test]
    fn non_utf8_percent_sequences_mean_not_cached() {
        let s = param("key");
        assert_eq!(cache_key(&s, "h", "/d?key=%FF"), Err(KeyError::NotUtf8));
        assert_eq!(cache_key(&s, "h", "/d?key=%C3"), Err(KeyError::NotUtf8));
        // The default key keeps the query encoded, so the same URL is cacheable there.
        let d = spec(KeySource::Default, "");
        assert_eq!(
            cache_key(&d, "h", "/d?key=%FF").unwrap(),
            "http://h/d?key=%FF"
        );
    }

    #[test]
    fn malformed_escapes_are_kept_literally() {
        assert_eq!(percent_decode("100%", false), b"100%");
        assert_eq!(percent_decode("%zz%4", false), b"%zz%4");
        assert_eq!(percent_decode("%4a%4A", false), b"JJ");
        assert_eq!(cache_key(&param("k"), "h", "/?k=50%25%").unwrap(), "50%%");
    }

    #[test]
    fn plus_is_literal_outside_form_decoding() {
        assert_eq!(percent_decode("a+b", false), b"a+b");
        assert_eq!(percent_decode("a+b", true), b"a b");
    }

    #[test]
    fn key_length_limit_is_inclusive_and_counts_the_prefix() {
        let exact = "k".repeat(MAX_KEY_LEN);
        assert_eq!(
            cache_key(&param("key"), "h", &format!("/?key={exact}")).unwrap(),
            exact
        );
        let over = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            cache_key(&param("key"), "h", &format!("/?key={over}")),
            Err(KeyError::TooLong(MAX_KEY_LEN + 1))
        );
        let s = spec(qp("key"), "pp");
        assert_eq!(
            cache_key(&s, "h", &format!("/?key={}", "k".repeat(MAX_KEY_LEN - 1))),
            Err(KeyError::TooLong(MAX_KEY_LEN + 1))
        );
        let d = spec(KeySource::Default, "");
        let long_path = format!("/{}", "p".repeat(MAX_KEY_LEN));
        assert!(matches!(
            cache_key(&d, "h", &long_path),
            Err(KeyError::TooLong(_))
        ));
    }

    #[test]
    fn encoding_keeps_the_safe_set_and_escapes_the_rest() {
        assert_eq!(encode_key("AZaz09-._~/:?=&"), "AZaz09-._~/:?=&");
        assert_eq!(encode_key("a b"), "a%20b");
        assert_eq!(encode_key("été"), "%C3%A9t%C3%A9");
        assert_eq!(encode_key("%+#\r\n\0"), "%25%2B%23%0D%0A%00");
        assert_eq!(encode_key(""), "");
    }

    #[test]
    fn encoded_keys_are_header_safe_and_round_trip() {
        let samples = [
            "example.com/p?a=1&b=2",
            "a b",
            "été ☃ 𝄞",
            "100% done",
            "\u{0}\u{1f}\u{7f}",
            "already%20encoded",
            "ctrl\r\nInjected: yes",
        ];
        for key in samples {
            let encoded = encode_key(key);
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic()), "{encoded}");
            assert_eq!(companion_decode(&encoded).as_deref(), Some(key));
        }
    }
}
