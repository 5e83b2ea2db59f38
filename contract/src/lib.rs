//! What the hzcache filter (wasm, in Envoy) and the companion (native) must agree on byte for
//! byte lives here, once, in a crate both link: the names of the callout's answer fields the
//! filter acts on ([`OUTCOME_HEADER`], [`FRESH_MS_HEADER`]), the origin-fetch marker and the
//! key encoding ([`key`]).
//!
//! **The origin-fetch marker.** In a mesh, the companion's own origin fetch passes through the
//! origin pod's sidecar, where the filter runs again; without a mark it would call back into
//! the companion for the key already in flight and wait for it. So the companion marks its
//! fetches with `x-hzcache-fetch: v1.TS.MAC`, where `MAC` is HMAC-SHA-256 under the callout
//! secret of `TS` (Unix seconds), the method and the path and query. A filter holding the same
//! secret lets a fetch whose mark is valid (right MAC, `TS` within [`MAX_SKEW_SECS`]) straight
//! upstream with no callout; any other value is a client's forgery: removed, and the request is
//! handled like any other. The secret itself never travels: a mark names one request in one
//! short window, so one seen in an origin's log opens nothing else.

pub mod key;

pub use key::{decode_key, encode_key};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// On the companion's answer to a callout: what it is (`hit`, `miss`, `pass`, `error`;
/// docs/callout-protocol.md).
pub const OUTCOME_HEADER: &str = "x-hzcache-outcome";

/// On a whole answer from a fresh stored entry (never a 206, 304, 416 or stale answer): how
/// many more milliseconds it stays fresh, so the filter's L1 may keep a copy that long.
pub const FRESH_MS_HEADER: &str = "x-hzcache-fresh-ms";

/// The header of the origin-fetch marker.
pub const ORIGIN_FETCH_HEADER: &str = "x-hzcache-fetch";

/// How far a mark's time may be from the verifier's clock: clocks of one cluster agree within
/// seconds; a minute bounds what a replayed mark could do.
pub const MAX_SKEW_SECS: u64 = 60;

fn mac(secret: &[u8], ts: u64, method: &str, path: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    m.update(b"hzcache-fetch\n");
    m.update(ts.to_string().as_bytes());
    m.update(b"\n");
    m.update(method.as_bytes());
    m.update(b"\n");
    m.update(path.as_bytes());
    Some(m)
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|pair| {
            let digit = |c: u8| char::from(c).to_digit(16);
            let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// The mark of an origin fetch of `method path` (path and query as sent) at `now_secs`.
pub fn origin_fetch_mark(secret: &[u8], now_secs: u64, method: &str, path: &str) -> String {
    let tag = mac(secret, now_secs, method, path)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("v1.{now_secs}.{tag}")
}

/// Whether `value` is a valid mark of `method path` at `now_secs` (constant-time MAC check).
pub fn origin_fetch_mark_valid(
    secret: &[u8],
    value: &[u8],
    now_secs: u64,
    method: &str,
    path: &str,
) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let mut parts = value.split('.');
    let (Some("v1"), Some(ts), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(ts) = ts.parse::<u64>() else {
        return false;
    };
    if now_secs.abs_diff(ts) > MAX_SKEW_SECS {
        return false;
    }
    let (Some(tag), Some(m)) = (unhex(tag), mac(secret, ts, method, path)) else {
        return false;
    };
    m.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-callout-secret-0123456789";

    #[test]
    fn a_mark_is_valid_for_its_request_within_the_window_only() {
        let mark = origin_fetch_mark(SECRET, 1_000, "GET", "/p?a=1");
        assert!(mark.starts_with("v1.1000."));
        let ok = |v: &str, now, m, p| origin_fetch_mark_valid(SECRET, v.as_bytes(), now, m, p);
        assert!(ok(&mark, 1_000, "GET", "/p?a=1"));
        assert!(ok(&mark, 1_060, "GET", "/p?a=1"));
        assert!(ok(&mark, 940, "GET", "/p?a=1"));
        assert!(!ok(&mark, 1_061, "GET", "/p?a=1"), "too late");
        assert!(!ok(&mark, 939, "GET", "/p?a=1"), "from the future");
        assert!(!ok(&mark, 1_000, "GET", "/p?a=2"), "another path");
        assert!(!ok(&mark, 1_000, "HEAD", "/p?a=1"), "another method");
        assert!(!origin_fetch_mark_valid(
            b"another-secret-0123456",
            mark.as_bytes(),
            1_000,
            "GET",
            "/p?a=1"
        ));
    }

    #[test]
    fn forgeries_and_junk_are_refused() {
        let mark = origin_fetch_mark(SECRET, 1_000, "GET", "/p");
        let ok = |v: &[u8]| origin_fetch_mark_valid(SECRET, v, 1_000, "GET", "/p");
        let mut flipped = mark.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        for bad in [
            &flipped[..],
            b"",
            b"1",
            b"v1",
            b"v1.1000",
            b"v1.1000.",
            b"v1.x.00",
            b"v2.1000.00",
            b"v1.1000.zz",
            b"v1.1000.0",
            b"\xff\xfe",
            format!("{mark}.extra").as_bytes(),
            SECRET,
        ] {
            assert!(!ok(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
