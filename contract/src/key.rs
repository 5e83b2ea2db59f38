//! The key encoding of the callout (docs/callout-protocol.md, "Key encoding"): how a cache key
//! (or map name) travels in a header value (`x-hzcache-key`, `x-hzcache-invalidate`) and in a
//! change-feed line. The filter encodes and decodes feed lines; the companion decodes callouts
//! and encodes feed lines, so both sides use these two functions.
//!
//! The `%XX` work is the `percent-encoding` crate's; this module only fixes which bytes stay as
//! themselves and that a malformed escape is an error (the crate's decoder keeps it as it is).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Every byte but ASCII letters, digits and `-._~/:?=&` is written `%XX`.
const KEY_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':')
    .remove(b'?')
    .remove(b'=')
    .remove(b'&');

/// `key` with ASCII letters, digits and `-._~/:?=&` as themselves and every other byte as
/// upper-case `%XX`: a header-safe value whatever the key holds.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ESCAPED).to_string()
}

/// The inverse of [`encode_key`], strict: `None` for a `%` not followed by two hex digits
/// (either case) or for bytes that are not UTF-8 once decoded. Anything else is taken as it
/// comes (a decoder accepts what an older or other encoder may leave unescaped).
pub fn decode_key(encoded: &str) -> Option<String> {
    if !escapes_well_formed(encoded) {
        return None;
    }
    percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Whether every `%` in `s` starts a `%XX` escape.
pub fn escapes_well_formed(s: &str) -> bool {
    let mut rest = s.as_bytes();
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        match rest.get(at + 1..at + 3) {
            Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                rest = rest.get(at + 3..).unwrap_or_default();
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_letters_digits_and_the_url_punctuation_stay_as_themselves() {
        assert_eq!(encode_key("AZaz09-._~/:?=&"), "AZaz09-._~/:?=&");
        assert_eq!(encode_key("a b"), "a%20b");
        assert_eq!(encode_key("été"), "%C3%A9t%C3%A9");
        assert_eq!(encode_key("%+#\r\n\0"), "%25%2B%23%0D%0A%00");
        assert_eq!(encode_key("a b%\n"), "a%20b%25%0A");
        assert_eq!(encode_key(""), "");
    }

    #[test]
    fn decoding_is_strict_about_escapes_and_utf8() {
        assert_eq!(decode_key("%C3%A9t%c3%a9").as_deref(), Some("été"));
        assert_eq!(decode_key("plain").as_deref(), Some("plain"));
        assert_eq!(decode_key("").as_deref(), Some(""));
        assert_eq!(
            decode_key("a+b").as_deref(),
            Some("a+b"),
            "no form decoding"
        );
        assert_eq!(decode_key("abc%2"), None, "truncated escape");
        assert_eq!(decode_key("%"), None);
        assert_eq!(decode_key("%zz"), None, "not hex");
        assert_eq!(decode_key("%4g"), None);
        assert_eq!(decode_key("%é1"), None, "a non-ASCII byte is no hex digit");
        assert_eq!(decode_key("%FF"), None, "not UTF-8");
        assert_eq!(decode_key("%C3"), None, "a truncated UTF-8 sequence");
    }

    #[test]
    fn every_key_survives_the_round_trip() {
        for key in ["k é\0v:1", "http://h/p?a=1&b=%41", "\u{1F600}\r\n", "100%"] {
            assert_eq!(decode_key(&encode_key(key)).as_deref(), Some(key));
        }
    }
}
