//! Cache keys: computing a request's key from its rule, and percent-encoding it for the
//! `x-hzcache-key` header (docs/callout-protocol.md, "Key encoding"). Also the small URL helpers
//! (target splitting, query parsing, percent-decoding) the keys are built from.

use crate::config::{KeySource, KeySpec};
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
            KeyError::TooLong(n) => write!(f, "key is {n} bytes (max {MAX_KEY_LEN})"),
        }
    }
}

/// The cache key of a request under `spec`. `authority` and `path` are the request's
/// `:authority` and `:path` as received.
// Audited: two string lengths cannot overflow a usize (each is at most isize::MAX).
#[allow(clippy::arithmetic_side_effects)]
pub fn cache_key(spec: &KeySpec, authority: &str, path: &str) -> Result<String, KeyError> {
    let (_, query) = split_target(path);
    let body = match &spec.source {
        KeySource::Default => {
            if authority.is_empty() {
                return Err(KeyError::MissingHost);
            }
            default_key(authority, path)
        }
        KeySource::QueryParam(name) => match query_param(query.unwrap_or(""), name)? {
            Some(value) if value.is_empty() => return Err(KeyError::EmptyParam),
            Some(value) => value,
            None => return Err(KeyError::MissingParam),
        },
    };
    let len = spec.prefix.len() + body.len();
    if len > MAX_KEY_LEN {
        return Err(KeyError::TooLong(len));
    }
    let mut key = String::with_capacity(len);
    key.push_str(&spec.prefix);
    key.push_str(&body);
    Ok(key)
}

/// Lower-cased authority (port kept: two ports may be two sites) + path as received + the
/// normalised query (`?` only when there is one).
// Audited: a capacity hint from lengths of strings held in memory (a wasm32 VM has 4 GiB).
#[allow(clippy::arithmetic_side_effects)]
pub fn default_key(authority: &str, path: &str) -> String {
    let (path, query) = split_target(path);
    let query = normalise_query(query.unwrap_or(""));
    let mut key = String::with_capacity(authority.len() + path.len() + query.len() + 1);
    key.push_str(&authority.to_ascii_lowercase());
    key.push_str(path);
    if !query.is_empty() {
        key.push('?');
        key.push_str(&query);
    }
    key
}

/// Splits a request target into path and query, dropping any fragment (clients should never
/// send one, but a key must not depend on it).
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = match target.split_once('#') {
        Some((before, _)) => before,
        None => target,
    };
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Sorts parameters by name, then value (both compared as sent, i.e. still percent-encoded),
/// and drops empty `&&` segments. Parameters are not re-encoded: `a=%41` and `a=A` stay
/// different keys, which can only cost a hit, never serve the wrong entry.
pub fn normalise_query(query: &str) -> String {
    let mut segments: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    // The last element keeps `a` and `a=` apart (and ordered) although both have an empty value.
    segments.sort_by_key(|segment| {
        let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
        (name, value, segment.contains('='))
    });
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

/// Decodes `%XX` escapes (either hex case). A `%` not followed by two hex digits is kept as is,
/// as browsers and Python's `unquote` do. With `plus_as_space`, `+` becomes a space.
// Audited: `bytes[i]` only while `i < bytes.len()`; `i + 3` at most `len + 2`, far below
// usize::MAX.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub fn percent_decode(input: &str, plus_as_space: bool) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

// Audited: each subtraction is inside the range its arm matched.
#[allow(clippy::arithmetic_side_effects)]
fn hex_value(b: Option<&u8>) -> Option<u8> {
    match b? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a key for the `x-hzcache-key` header: ASCII letters, digits and
/// `-._~/:?=&` as themselves, every other byte as upper-case `%XX` (callout-protocol.md).
// Audited: a nibble (`b >> 4`, `b & 0x0f`) always indexes the 16-entry table.
#[allow(clippy::indexing_slicing)]
pub fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:?=&".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: KeySource, prefix: &str) -> KeySpec {
        KeySpec {
            source,
            prefix: prefix.into(),
        }
    }

    fn param(name: &str) -> KeySpec {
        spec(KeySource::QueryParam(name.into()), "")
    }

    /// The companion's side of the contract: `%XX` back to bytes, then UTF-8.
    fn companion_decode(header: &str) -> Option<String> {
        String::from_utf8(percent_decode(header, false)).ok()
    }

    #[test]
    fn default_key_is_lower_host_path_and_sorted_query() {
        let s = spec(KeySource::Default, "");
        assert_eq!(
            cache_key(&s, "Example.COM", "/A/b?z=1&a=2&m").unwrap(),
            "example.com/A/b?a=2&m&z=1"
        );
        assert_eq!(cache_key(&s, "h:8080", "/p").unwrap(), "h:8080/p");
    }

    #[test]
    fn empty_query_gives_no_question_mark() {
        let s = spec(KeySource::Default, "");
        assert_eq!(cache_key(&s, "h", "/p?").unwrap(), "h/p");
        assert_eq!(cache_key(&s, "h", "/p?&&").unwrap(), "h/p");
        assert_eq!(cache_key(&s, "h", "/p").unwrap(), "h/p");
    }

    #[test]
    fn fragment_never_reaches_the_key() {
        let s = spec(KeySource::Default, "");
        assert_eq!(
            cache_key(&s, "h", "/p?b=1&a=2#frag").unwrap(),
            "h/p?a=2&b=1"
        );
        assert_eq!(cache_key(&s, "h", "/p#x?y=1").unwrap(), "h/p");
    }

    #[test]
    fn query_order_does_not_change_the_key() {
        let s = spec(KeySource::Default, "");
        let a = cache_key(&s, "h", "/p?b=2&a=1&a=0").unwrap();
        let b = cache_key(&s, "h", "/p?a=0&a=1&b=2").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, "h/p?a=0&a=1&b=2");
    }

    #[test]
    fn repeated_parameters_sort_by_value_and_are_all_kept() {
        assert_eq!(normalise_query("a=2&a=1&a=2"), "a=1&a=2&a=2");
    }

    #[test]
    fn bare_and_empty_valued_parameters_stay_distinct() {
        assert_eq!(normalise_query("a=&a"), "a&a=");
        assert_ne!(normalise_query("a"), normalise_query("a="));
    }

    #[test]
    fn default_key_needs_a_host() {
        let s = spec(KeySource::Default, "");
        assert_eq!(cache_key(&s, "", "/p"), Err(KeyError::MissingHost));
    }

    #[test]
    fn prefix_is_prepended() {
        let s = spec(KeySource::Default, "v2:");
        assert_eq!(cache_key(&s, "h", "/p").unwrap(), "v2:h/p");
        let s = spec(KeySource::QueryParam("key".into()), "user:");
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
        assert_eq!(cache_key(&d, "h", "/d?key=%FF").unwrap(), "h/d?key=%FF");
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
        let s = spec(KeySource::QueryParam("key".into()), "pp");
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
