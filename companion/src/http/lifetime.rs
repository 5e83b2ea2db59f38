//! How long a response stays fresh (RFC 9111 §4.2.1–§4.2.2) and what a stored one keeps of
//! its rules: the explicit lifetime (`s-maxage`, `max-age`, `Expires − Date`), the heuristics
//! for a response without one (which statuses may have one, the `Last-Modified` fraction),
//! the [`Freshness`] record kept with an entry (lifetime, age, stale windows of §4.2.4), how
//! long Hazelcast keeps it, and how much freshness is left.

use hyper::header::HeaderMap;

use crate::http::cache_control::CacheControl;
use crate::http::date::{date_value, expires_value, parse_http_date};
use crate::http::targeted::Source;

/// How long a stale entry that has validators is kept for revalidation beyond its freshness,
/// at least: a conditional request answered 304 is far cheaper than a full fetch. Bounded so a
/// never-requested stale entry does not sit in the cluster for long.
pub const MIN_REVALIDATION_KEEP_SECS: u64 = 60;
/// And at most (one hour); within these bounds the keep time equals the lifetime.
pub const MAX_REVALIDATION_KEEP_SECS: u64 = 3600;

/// Status codes a response may be stored for without explicit freshness (RFC 9110 §15.1
/// "heuristically cacheable"). Any other status is heuristically cacheable only when the
/// response says `public` (RFC 9111 §4.2.2). A 206 is stored as a piece of its representation
/// (`partial`), with a heuristic lifetime like any other.
pub const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether a response without explicit freshness may be given a heuristic lifetime (RFC 9111
/// §4.2.2): a heuristically cacheable status, or `public`.
pub fn heuristically_cacheable(status: u16, cc: &CacheControl) -> bool {
    cc.public || HEURISTICALLY_CACHEABLE.contains(&status)
}

/// The explicit freshness lifetime (RFC 9111 §4.2.1), seconds: `s-maxage`, else `max-age`, else
/// `Expires − Date` (an invalid `Expires` means already expired: 0, §5.3). `Expires` counts
/// only when the directives came from `Cache-Control`: a cache following a targeted field
/// ignores `Cache-Control` and `Expires` (RFC 9213 §2.2). `None`: no lifetime is stated.
pub fn explicit_lifetime(
    cc: &CacheControl,
    source: Source,
    response: &HeaderMap,
    now_secs: i64,
) -> Option<u64> {
    if let Some(s) = cc.s_maxage {
        return Some(s);
    }
    if let Some(m) = cc.max_age {
        return Some(m);
    }
    if source != Source::CacheControl {
        return None;
    }
    match expires_value(response, now_secs)? {
        None => Some(0),
        Some(exp) => {
            let date = date_value(response, now_secs).unwrap_or(now_secs);
            Some((exp - date).max(0) as u64)
        }
    }
}

/// The share of the time since `Last-Modified` that a heuristic lifetime may be (RFC 9111
/// §4.2.2 names 10 % as typical): a page unchanged for ten days is likely unchanged tomorrow.
pub const LAST_MODIFIED_FRACTION_PERCENT: u64 = 10;

/// The heuristic lifetime from `Last-Modified`: [`LAST_MODIFIED_FRACTION_PERCENT`] of
/// `Date − Last-Modified` (the response time when `Date` is missing or invalid), at most
/// `max_secs`. `None` without exactly one valid `Last-Modified` or when it is later than
/// `Date` (a clock problem, not information).
pub fn last_modified_lifetime(response: &HeaderMap, now_secs: i64, max_secs: u32) -> Option<u64> {
    let mut lines = response.get_all("last-modified").iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let modified = parse_http_date(line.as_bytes(), now_secs)?;
    let date = date_value(response, now_secs).unwrap_or(now_secs);
    let unchanged_for = u64::try_from(date - modified).ok()?;
    Some((unchanged_for * LAST_MODIFIED_FRACTION_PERCENT / 100).min(u64::from(max_secs)))
}

/// How a stored response may be reused; kept in the envelope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Freshness lifetime (§4.2.1), seconds.
    pub lifetime_secs: u32,
    /// `corrected_initial_age` (§4.2.3), seconds.
    pub initial_age_secs: u32,
    /// `response_time`, Unix milliseconds.
    pub stored_at_ms: i64,
    pub stale_while_revalidate_secs: u32,
    pub stale_if_error_secs: u32,
    /// No stale serving at all (must-revalidate, proxy-revalidate, s-maxage).
    pub must_revalidate: bool,
    /// `no-cache`: validate before every reuse.
    pub no_cache: bool,
    pub immutable: bool,
    /// How long past freshness it may answer when the origin is unreachable (0: never).
    pub stale_if_unreachable_secs: u32,
}

impl Freshness {
    /// How long Hazelcast keeps the entry: the rest of its freshness plus the longest stale
    /// use it may still have (stale-while-revalidate, stale-if-error, or revalidation when it
    /// has validators). `0`: not worth storing.
    pub fn keep_secs(&self, has_validators: bool) -> u64 {
        let fresh_left =
            u64::from(self.lifetime_secs).saturating_sub(u64::from(self.initial_age_secs));
        let mut stale = 0u64;
        if !self.must_revalidate && !self.no_cache {
            stale = u64::from(
                self.stale_while_revalidate_secs
                    .max(self.stale_if_error_secs),
            );
        }
        // Only a response that was fresh on arrival is kept for an outage of the origin: one
        // that arrived stale is relayed, not stored for it.
        if fresh_left > 0 {
            stale = stale.max(u64::from(self.stale_if_unreachable_secs));
        }
        if has_validators {
            stale = stale.max(
                u64::from(self.lifetime_secs)
                    .clamp(MIN_REVALIDATION_KEEP_SECS, MAX_REVALIDATION_KEEP_SECS),
            );
        }
        fresh_left + stale
    }
}

/// How much longer a stored response stays fresh, milliseconds (0: stale now, or `no-cache`,
/// which is never reused without validation). What an in-Envoy L1 may keep a copy for.
pub fn fresh_ms_left(f: &Freshness, now_ms: i64) -> u64 {
    if f.no_cache {
        return 0;
    }
    let age_ms = u64::from(f.initial_age_secs)
        .saturating_mul(1000)
        .saturating_add((now_ms - f.stored_at_ms).max(0) as u64);
    u64::from(f.lifetime_secs)
        .saturating_mul(1000)
        .saturating_sub(age_ms)
}
