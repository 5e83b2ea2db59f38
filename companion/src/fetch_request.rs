//! What the filter asks for in one `/v1/fetch` callout: its control headers
//! (docs/callout-protocol.md) read and checked into a [`FetchRequest`], and the wire form of
//! cache keys (percent-encoding). Pure: nothing here touches Hazelcast or the origin. Also used
//! by the invalidation and purge parsers, which carry keys the same way.

use hyper::header::{HeaderMap, HeaderValue};

use crate::http::storable::Policy;

/// How the value is kept in the map (rule `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Envelope,
    Body,
}

/// How a `body`-mode value is stored (rule `value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    Bytes,
}

/// One lookup as the filter asked for it.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    pub map: String,
    pub key: String,
    pub mode: Mode,
    pub value_type: ValueType,
    pub policy: Policy,
    pub content_type: HeaderValue,
    pub origin: String,
    pub method: String,
    /// The origin request's path and query: the canonical request the key stands for (the
    /// filter builds both from the same parts, so nothing unkeyed reaches the origin).
    pub path: String,
    /// `Host` for the origin; empty: the origin's own authority (the key holds no host).
    pub host: String,
    /// The scheme the key holds, sent to the origin as `X-Forwarded-Proto`.
    pub scheme: Option<&'static str>,
    /// How long the filter waits for the answer (`x-hzcache-deadline-ms`): past it the
    /// companion answers stale-if-error or `pass` instead of waiting on the origin.
    pub deadline: Option<std::time::Duration>,
    /// The client's own request headers (control headers removed by the origin client).
    pub client_headers: HeaderMap,
}

/// Longest key accepted, after decoding. Hazelcast keys are Strings held in every member's
/// heap; a key this long is a mistake or an attack, not a cache key.
pub const MAX_KEY_BYTES: usize = 8 * 1024;
/// Longest lifetime or stale window a rule may send: one year, as the filter enforces.
const MAX_RULE_SECS: u32 = 31_536_000;

fn seconds(h: &HeaderMap, name: &str, zero_ok: bool) -> Result<Option<u32>, String> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let n = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|n| *n <= MAX_RULE_SECS && (zero_ok || *n > 0))
        .ok_or_else(|| {
            format!("{name}: must be a whole number of seconds up to {MAX_RULE_SECS}")
        })?;
    Ok(Some(n))
}

impl FetchRequest {
    /// Reads the control headers; the error names the header at fault.
    pub fn from_headers(h: &HeaderMap) -> Result<FetchRequest, String> {
        FetchRequest::from_header_map(h.clone())
    }

    /// [`FetchRequest::from_headers`] taking the headers over: the server's path, which keeps
    /// them as the client's headers without copying the map.
    pub fn from_header_map(h: HeaderMap) -> Result<FetchRequest, String> {
        let text = |name: &str| -> Result<String, String> {
            let v = h.get(name).ok_or_else(|| format!("{name}: missing"))?;
            v.to_str()
                .map(str::to_string)
                .map_err(|_| format!("{name}: not visible ASCII"))
        };
        let map = text("x-hzcache-map")?;
        if map.is_empty() || map.len() > 255 {
            return Err("x-hzcache-map: must be 1 to 255 bytes".into());
        }
        let key = decode_key(&text("x-hzcache-key")?).map_err(|e| format!("x-hzcache-key: {e}"))?;
        let mode = match text("x-hzcache-mode")?.as_str() {
            "envelope" => Mode::Envelope,
            "body" => Mode::Body,
            other => return Err(format!("x-hzcache-mode: unknown mode '{other}'")),
        };
        let value_type = match h.get("x-hzcache-value-type").map(|v| v.as_bytes()) {
            None | Some(b"string") => ValueType::String,
            Some(b"bytes") => ValueType::Bytes,
            Some(_) => return Err("x-hzcache-value-type: must be string or bytes".into()),
        };
        if !h.contains_key("x-hzcache-ttl") {
            return Err("x-hzcache-ttl: missing".into());
        }
        // 0: no default lifetime (heuristic freshness off).
        let default_ttl = seconds(&h, "x-hzcache-ttl", true)?.filter(|t| *t > 0);
        let policy = Policy {
            default_ttl,
            ttl_override: seconds(&h, "x-hzcache-ttl-override", false)?,
            stale_while_revalidate: seconds(&h, "x-hzcache-stale-while-revalidate", true)?
                .unwrap_or(0),
            stale_if_error: seconds(&h, "x-hzcache-stale-if-error", true)?.unwrap_or(0),
            strip_set_cookie: match h.get("x-hzcache-strip-set-cookie").map(|v| v.as_bytes()) {
                None | Some(b"0") => false,
                Some(b"1") => true,
                Some(_) => return Err("x-hzcache-strip-set-cookie: must be 1 or 0".into()),
            },
            last_modified_heuristic_max: seconds(
                &h,
                "x-hzcache-last-modified-heuristic-max",
                false,
            )?,
            // A companion setting, not the rule's: `Cache::policy` fills it in.
            stale_if_unreachable: 0,
        };
        let content_type = h
            .get("x-hzcache-content-type")
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
        let method = text("x-hzcache-request-method")?;
        if method != "GET" && method != "HEAD" {
            return Err(format!(
                "x-hzcache-request-method: '{method}' is not cacheable"
            ));
        }
        let path = text("x-hzcache-request-path")?;
        if !path.starts_with('/') {
            return Err("x-hzcache-request-path: must start with /".into());
        }
        let host = match h.get("x-hzcache-request-host") {
            None => String::new(),
            Some(v) => v
                .to_str()
                .ok()
                .filter(|v| !v.is_empty() && !v.contains(['/', ' ', '@']))
                .ok_or("x-hzcache-request-host: not a host")?
                .to_string(),
        };
        let scheme = match h.get("x-hzcache-request-scheme").map(|v| v.as_bytes()) {
            None => None,
            Some(b"http") => Some("http"),
            Some(b"https") => Some("https"),
            Some(_) => return Err("x-hzcache-request-scheme: must be http or https".into()),
        };
        let origin = h
            .get("x-hzcache-origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("default")
            .to_string();
        let deadline = match h.get("x-hzcache-deadline-ms") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|ms| (1..=600_000).contains(ms))
                    .map(std::time::Duration::from_millis)
                    .ok_or("x-hzcache-deadline-ms: must be 1 to 600000")?,
            ),
        };
        Ok(FetchRequest {
            map,
            key,
            mode,
            value_type,
            policy,
            content_type,
            origin,
            method,
            path,
            host,
            scheme,
            deadline,
            client_headers: h,
        })
    }
}

/// A short stand-in for a key in logs above debug: keys hold URLs and query strings, which
/// may carry tokens or personal data, so warnings name a key only by this digest (the debug
/// line `looking up` pairs the digest with the key, for whoever turns debug on).
pub fn key_digest(key: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A percent-encoded key from the wire: decoded, UTF-8, 1 to `MAX_KEY_BYTES` bytes.
pub fn decode_key(s: &str) -> Result<String, String> {
    let key = hzcache_contract::decode_key(s).ok_or("bad percent-encoding or not UTF-8")?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("must be 1 to {MAX_KEY_BYTES} bytes"));
    }
    Ok(key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Valid control headers for `example.com/a b?x=1`, with `pairs` set on top.
    pub(crate) fn control(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-hzcache-map", "hzcache"),
            ("x-hzcache-key", "example.com/a%20b?x=1"),
            ("x-hzcache-mode", "envelope"),
            ("x-hzcache-ttl", "60"),
            ("x-hzcache-request-method", "GET"),
            ("x-hzcache-request-path", "/a%20b?x=1"),
            ("x-hzcache-request-host", "example.com"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// A parsed request in `mode` serving `text/plain` for body-mode hits.
    pub(crate) fn request(mode: Mode, extra: &[(&'static str, &'static str)]) -> FetchRequest {
        let mut r = FetchRequest::from_headers(&control(extra)).unwrap();
        r.mode = mode;
        r.content_type = HeaderValue::from_static("text/plain; charset=utf-8");
        r
    }

    #[test]
    fn control_headers_parse_and_the_key_is_percent_decoded() {
        let r = FetchRequest::from_headers(&control(&[])).unwrap();
        assert_eq!(r.key, "example.com/a b?x=1");
        assert_eq!(r.mode, Mode::Envelope);
        assert_eq!(r.origin, "default");
        assert_eq!(r.policy.default_ttl, Some(60));
        assert_eq!(r.policy.ttl_override, None);
    }

    #[test]
    fn a_zero_ttl_turns_the_default_lifetime_off_and_rule_windows_parse() {
        let r = FetchRequest::from_headers(&control(&[
            ("x-hzcache-ttl", "0"),
            ("x-hzcache-ttl-override", "9"),
            ("x-hzcache-stale-while-revalidate", "5"),
            ("x-hzcache-stale-if-error", "600"),
        ]))
        .unwrap();
        assert_eq!(r.policy.default_ttl, None);
        assert_eq!(r.policy.ttl_override, Some(9));
        assert_eq!(r.policy.stale_while_revalidate, 5);
        assert_eq!(r.policy.stale_if_error, 600);
        assert!(!r.policy.strip_set_cookie);
        assert_eq!(r.policy.last_modified_heuristic_max, None);
        let r = FetchRequest::from_headers(&control(&[
            ("x-hzcache-strip-set-cookie", "1"),
            ("x-hzcache-last-modified-heuristic-max", "3600"),
        ]))
        .unwrap();
        assert!(r.policy.strip_set_cookie);
        assert_eq!(r.policy.last_modified_heuristic_max, Some(3600));
    }

    #[test]
    fn bad_control_headers_are_refused_naming_the_header() {
        for (h, v) in [
            ("x-hzcache-key", "%zz"),
            ("x-hzcache-key", "%ff%fe"),
            ("x-hzcache-key", ""),
            ("x-hzcache-mode", "other"),
            ("x-hzcache-ttl", "-5"),
            ("x-hzcache-ttl", "1e3"),
            ("x-hzcache-ttl", "99999999999"),
            ("x-hzcache-ttl-override", "0"),
            ("x-hzcache-stale-if-error", "x"),
            ("x-hzcache-request-method", "POST"),
            ("x-hzcache-request-path", "nope"),
            ("x-hzcache-request-scheme", "ftp"),
            ("x-hzcache-deadline-ms", "0"),
            ("x-hzcache-request-host", "a b"),
            ("x-hzcache-value-type", "float"),
            ("x-hzcache-map", ""),
            ("x-hzcache-strip-set-cookie", "yes"),
            ("x-hzcache-last-modified-heuristic-max", "0"),
        ] {
            let e = FetchRequest::from_headers(&control(&[(h, v)])).unwrap_err();
            assert!(e.starts_with(h), "{h}={v}: {e}");
        }
        let mut missing = control(&[]);
        missing.remove("x-hzcache-map");
        assert!(FetchRequest::from_headers(&missing)
            .unwrap_err()
            .contains("missing"));
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        let mut h = control(&[]);
        h.insert("x-hzcache-key", HeaderValue::from_str(&long).unwrap());
        assert!(FetchRequest::from_headers(&h).is_err());
    }

    #[test]
    fn percent_decoding_handles_utf8_and_rejects_truncated_escapes() {
        assert_eq!(decode_key("%C3%A9t%C3%A9").as_deref(), Ok("été"));
        assert!(decode_key("abc%2").is_err());
        assert!(decode_key("%").is_err());
        assert!(decode_key("%FF").is_err());
        assert_eq!(decode_key("plain").as_deref(), Ok("plain"));
    }
}
