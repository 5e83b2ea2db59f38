//! The small URL helpers that rule matching, configuration checks and keys share: splitting a
//! request target, the host of an authority, and lenient percent-decoding. A leaf: it uses no
//! other module of the filter.

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

/// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`; anything without a numeric port is
/// returned unchanged.
pub fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Decodes `%XX` escapes (either hex case). A `%` not followed by two hex digits is kept as is,
/// as browsers and Python's `unquote` do. With `plus_as_space`, `+` becomes a space (before
/// decoding, so an encoded `%2B` stays a `+`).
pub fn percent_decode(input: &str, plus_as_space: bool) -> Vec<u8> {
    if plus_as_space && input.contains('+') {
        percent_encoding::percent_decode_str(&input.replace('+', " ")).collect()
    } else {
        percent_encoding::percent_decode_str(input).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_only_when_numeric() {
        assert_eq!(host_without_port("a.b:80"), "a.b");
        assert_eq!(host_without_port("a.b"), "a.b");
        assert_eq!(host_without_port("a.b:"), "a.b");
        assert_eq!(host_without_port("a.b:x"), "a.b:x");
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("[::1"), "[::1");
        assert_eq!(host_without_port(""), "");
    }

    #[test]
    fn targets_split_at_the_first_question_mark_and_lose_the_fragment() {
        assert_eq!(split_target("/p?a=1?b#f"), ("/p", Some("a=1?b")));
        assert_eq!(split_target("/p#f?a=1"), ("/p", None));
        assert_eq!(split_target("/p?"), ("/p", Some("")));
        assert_eq!(split_target(""), ("", None));
    }
}
