//! Syntax shared by the HTTP fields the cache reads: optional whitespace around list members
//! (RFC 9110 §5.6.1, §5.6.3) and delta-seconds (RFC 9111 §1.2.2). No field's meaning lives
//! here, only how its pieces are spelled.

/// Largest lifetime taken from a header: RFC 9111 §1.2.2 says to treat anything larger than
/// 2^31 as 2^31 seconds.
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// A delta-seconds value (RFC 9111 §1.2.2): one or more digits, nothing else; `None` otherwise.
/// Digits beyond what fits are still a valid, very large number: clamped to 2^31.
pub fn delta_seconds(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(MAX_DELTA_SECONDS)
            .min(MAX_DELTA_SECONDS),
    )
}

/// `s` without leading and trailing whitespace (OWS, RFC 9110 §5.6.3).
pub fn trim(s: &[u8]) -> &[u8] {
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
