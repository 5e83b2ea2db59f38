//! The cache flow behind `/v1/fetch`: read the filter's control headers (docs/callout-protocol.md),
//! look the key up in Hazelcast, serve a hit, or on a miss fetch from the origin, store what
//! may be stored, and answer. Every failure of ours becomes `x-hzcache-outcome: error`, on
//! which the filter fails open.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;

use crate::config::Config;
use crate::entry::Entry;
use crate::freshness::{self, Decision};
use crate::hazelcast::{Client, Ttl, Value};
use crate::headers::strip_for_client;
use crate::origin::{OriginClient, OriginError};

pub const OUTCOME: &str = "x-hzcache-outcome";

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
    pub ttl_secs: u32,
    pub content_type: HeaderValue,
    pub origin: String,
    pub method: String,
    pub path: String,
    pub host: String,
    /// The client's own request headers (control headers removed by the origin client).
    pub client_headers: HeaderMap,
}

/// Longest key accepted, after decoding. Hazelcast keys are Strings held in every member's
/// heap; a key this long is a mistake or an attack, not a cache key.
pub const MAX_KEY_BYTES: usize = 8 * 1024;

impl FetchRequest {
    /// Reads the control headers; the error names the header at fault.
    pub fn from_headers(h: &HeaderMap) -> Result<FetchRequest, String> {
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
        let key = percent_decode(&text("x-hzcache-key")?)
            .ok_or_else(|| "x-hzcache-key: bad percent-encoding or not UTF-8".to_string())?;
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!("x-hzcache-key: must be 1 to {MAX_KEY_BYTES} bytes"));
        }
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
        let ttl_secs = text("x-hzcache-ttl")?
            .parse::<u32>()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| "x-hzcache-ttl: must be a whole number of seconds > 0".to_string())?;
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
        Ok(FetchRequest {
            map,
            key,
            mode,
            value_type,
            ttl_secs,
            content_type,
            origin: h
                .get("x-hzcache-origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("default")
                .to_string(),
            method,
            path,
            host: text("x-hzcache-request-host")?,
            client_headers: h.clone(),
        })
    }
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What the companion answers the filter: status, headers (with the outcome) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    fn outcome(
        outcome: &'static str,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Answer {
        headers.insert(OUTCOME, HeaderValue::from_static(outcome));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn error(status: StatusCode, why: &str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Answer::outcome("error", status, headers, Bytes::from(format!("{why}\n")))
    }
}

/// The shared state of the cache flow.
pub struct Cache {
    pub config: Config,
    pub hazelcast: Client,
    pub origin: OriginClient,
}

/// Wall-clock milliseconds, for entry ages. Entries are compared across companions, so this is
/// the one place that reads the system clock rather than a monotonic one.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a stored value means for this request.
enum Lookup {
    Hit(Answer),
    /// Nothing usable stored. `overwrite` says whether a fresh answer may replace what is
    /// there: not when it belongs to someone else (a value of a type we do not write).
    Miss {
        overwrite: bool,
    },
}

impl Cache {
    pub async fn fetch(self: &Arc<Self>, req: FetchRequest) -> Answer {
        let map = self.hazelcast.map(&req.map);
        let lookup = match map.get(&req.key).await {
            Err(e) => {
                tracing::warn!(map = %req.map, error = %e, "Hazelcast lookup failed; filter will fail open");
                return Answer::error(StatusCode::SERVICE_UNAVAILABLE, &format!("hazelcast: {e}"));
            }
            Ok(None) => Lookup::Miss { overwrite: true },
            Ok(Some(value)) => serve_stored(&req, value, now_ms()),
        };
        let overwrite = match lookup {
            Lookup::Hit(answer) => {
                tracing::debug!(map = %req.map, key = %req.key, "hit");
                return answer;
            }
            Lookup::Miss { overwrite } => overwrite,
        };
        // The miss runs in its own task: if the filter stops waiting (its timeout), the origin
        // answer is still stored for the next request rather than thrown away half-done.
        let this = self.clone();
        match tokio::spawn(async move { this.miss(req, overwrite).await }).await {
            Ok(answer) => answer,
            Err(e) => Answer::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("miss task failed: {e}"),
            ),
        }
    }

    async fn miss(&self, req: FetchRequest, overwrite: bool) -> Answer {
        let Some(origin) = self.config.origins.get(&req.origin) else {
            return Answer::error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "origin '{}' is not configured (--origin NAME=URL)",
                    req.origin
                ),
            );
        };
        let fetched = self
            .origin
            .get(
                origin,
                &req.path,
                &req.host,
                &req.client_headers,
                self.config.max_entry_bytes,
            )
            .await;
        let resp = match fetched {
            Ok(r) => r,
            Err(OriginError::TooLarge(limit)) => {
                tracing::debug!(key = %req.key, limit, "origin body over the entry limit; passing");
                let mut h = HeaderMap::new();
                h.insert("x-hzcache-reason", HeaderValue::from_static("too-large"));
                return Answer::outcome("pass", StatusCode::OK, h, Bytes::new());
            }
            Err(e) => {
                tracing::warn!(origin = %req.origin, error = %e, "origin fetch failed; filter will fail open");
                return Answer::error(StatusCode::BAD_GATEWAY, &e.to_string());
            }
        };
        let decision = freshness::decide(
            &req.client_headers,
            resp.status.as_u16(),
            &resp.headers,
            req.ttl_secs,
        );
        let mut headers = strip_for_client(&resp.headers);
        match decision {
            Decision::Store { lifetime_secs } if overwrite => {
                if let Some(value) =
                    stored_value(&req, resp.status, &headers, &resp.body, lifetime_secs)
                {
                    let ttl = Ttl::After(Duration::from_secs(lifetime_secs as u64));
                    if let Err(e) = self
                        .hazelcast
                        .map(&req.map)
                        .set(&req.key, &value, ttl)
                        .await
                    {
                        tracing::warn!(map = %req.map, error = %e, "could not store the entry");
                    }
                }
            }
            Decision::Store { .. } => {
                tracing::debug!(key = %req.key, "not overwriting a value hzcache did not write")
            }
            Decision::DontStore(why) => tracing::debug!(key = %req.key, why, "not storing"),
        }
        headers.insert("x-cache", HeaderValue::from_static("MISS"));
        let body = if req.method == "HEAD" {
            Bytes::new()
        } else {
            resp.body
        };
        Answer::outcome("miss", resp.status, headers, body)
    }
}

/// The value to store for an origin answer, or `None` when the rule's form cannot hold it
/// (a `string` value whose body is not UTF-8).
fn stored_value(
    req: &FetchRequest,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
    lifetime_secs: u32,
) -> Option<Value> {
    match req.mode {
        Mode::Envelope => {
            let entry = Entry {
                status: status.as_u16(),
                stored_at_ms: now_ms(),
                lifetime_secs,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())))
                    .collect(),
                body: body.clone(),
            };
            match entry.encode() {
                Ok(b) => Some(Value::Bytes(b)),
                Err(e) => {
                    tracing::debug!(error = %e, "response cannot be stored");
                    None
                }
            }
        }
        Mode::Body => match req.value_type {
            ValueType::Bytes => Some(Value::Bytes(body.clone())),
            ValueType::String => match std::str::from_utf8(body) {
                Ok(s) => Some(Value::String(s.to_string())),
                Err(_) => {
                    tracing::debug!(key = %req.key, "body is not UTF-8; not stored as a string");
                    None
                }
            },
        },
    }
}

/// Turns a stored value into a hit, or says why it is not one.
fn serve_stored(req: &FetchRequest, value: Value, now_ms: i64) -> Lookup {
    let mut headers = HeaderMap::new();
    let body = match (req.mode, value) {
        (Mode::Envelope, Value::Bytes(b)) => {
            let Ok(entry) = Entry::decode(&b) else {
                tracing::warn!(map = %req.map, key = %req.key, "stored value is not a valid envelope; refetching");
                return Lookup::Miss { overwrite: true };
            };
            let age_secs = ((now_ms - entry.stored_at_ms).max(0) / 1000) as u64;
            if age_secs >= entry.lifetime_secs as u64 {
                // Hazelcast's TTL normally removes it first; clocks of companions may differ.
                return Lookup::Miss { overwrite: true };
            }
            for (name, value) in &entry.headers {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_maybe_shared(value.clone()),
                ) {
                    headers.append(n, v);
                }
            }
            headers.insert("age", HeaderValue::from(age_secs));
            headers.insert("x-cache", HeaderValue::from_static("HIT"));
            let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
            let body = if req.method == "HEAD" {
                Bytes::new()
            } else {
                entry.body
            };
            return Lookup::Hit(Answer::outcome("hit", status, headers, body));
        }
        (Mode::Envelope, _) => return Lookup::Miss { overwrite: true },
        (Mode::Body, Value::String(s)) => {
            headers.insert(CONTENT_TYPE, req.content_type.clone());
            Bytes::from(s)
        }
        (Mode::Body, Value::Bytes(b)) => {
            headers.insert(CONTENT_TYPE, req.content_type.clone());
            b
        }
        (Mode::Body, Value::Json(s)) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(s)
        }
        (Mode::Body, Value::Int(v)) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Bytes::from(v.to_string())
        }
        (Mode::Body, Value::Long(v)) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Bytes::from(v.to_string())
        }
        (Mode::Body, _) => return Lookup::Miss { overwrite: false },
    };
    headers.insert("x-cache", HeaderValue::from_static("HIT"));
    let body = if req.method == "HEAD" {
        Bytes::new()
    } else {
        body
    };
    Lookup::Hit(Answer::outcome("hit", StatusCode::OK, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
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

    #[test]
    fn control_headers_parse_and_the_key_is_percent_decoded() {
        let r = FetchRequest::from_headers(&control(&[])).unwrap();
        assert_eq!(r.key, "example.com/a b?x=1");
        assert_eq!(r.mode, Mode::Envelope);
        assert_eq!(r.origin, "default");
        assert_eq!(r.ttl_secs, 60);
    }

    #[test]
    fn bad_control_headers_are_refused_naming_the_header() {
        for (h, v) in [
            ("x-hzcache-key", "%zz"),
            ("x-hzcache-key", "%ff%fe"),
            ("x-hzcache-key", ""),
            ("x-hzcache-mode", "other"),
            ("x-hzcache-ttl", "0"),
            ("x-hzcache-ttl", "-5"),
            ("x-hzcache-request-method", "POST"),
            ("x-hzcache-request-path", "nope"),
            ("x-hzcache-value-type", "float"),
            ("x-hzcache-map", ""),
        ] {
            let e = FetchRequest::from_headers(&control(&[(h, v)])).unwrap_err();
            assert!(e.starts_with(h), "{h}={v}: {e}");
        }
        let mut missing = control(&[]);
        missing.remove("x-hzcache-map");
        assert!(FetchRequest::from_headers(&missing)
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn percent_decoding_handles_utf8_and_rejects_truncated_escapes() {
        assert_eq!(percent_decode("%C3%A9t%C3%A9").as_deref(), Some("été"));
        assert_eq!(percent_decode("abc%2"), None);
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("plain"), Some("plain".into()));
    }

    fn request(mode: Mode) -> FetchRequest {
        let mut r = FetchRequest::from_headers(&control(&[])).unwrap();
        r.mode = mode;
        r.content_type = HeaderValue::from_static("text/plain; charset=utf-8");
        r
    }

    #[test]
    fn an_envelope_hit_carries_status_headers_age_and_body() {
        let entry = Entry {
            status: 200,
            stored_at_ms: 10_000,
            lifetime_secs: 60,
            headers: vec![("etag".into(), Bytes::from_static(b"\"v\""))],
            body: Bytes::from_static(b"hello"),
        };
        let value = Value::Bytes(entry.encode().unwrap());
        let Lookup::Hit(a) = serve_stored(&request(Mode::Envelope), value, 15_500) else {
            panic!("expected a hit")
        };
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["age"], "5");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert_eq!(a.headers["x-cache"], "HIT");
        assert_eq!(a.headers[OUTCOME], "hit");
        assert_eq!(a.body, "hello");
    }

    #[test]
    fn an_expired_or_foreign_envelope_is_a_miss() {
        let entry = Entry {
            status: 200,
            stored_at_ms: 0,
            lifetime_secs: 1,
            headers: vec![],
            body: Bytes::new(),
        };
        let v = Value::Bytes(entry.encode().unwrap());
        assert!(matches!(
            serve_stored(&request(Mode::Envelope), v, 5_000),
            Lookup::Miss { overwrite: true }
        ));
        let v = Value::String("someone else's".into());
        assert!(matches!(
            serve_stored(&request(Mode::Envelope), v, 0),
            Lookup::Miss { .. }
        ));
        let v = Value::Bytes(Bytes::from_static(b"garbage"));
        assert!(matches!(
            serve_stored(&request(Mode::Envelope), v, 0),
            Lookup::Miss { .. }
        ));
    }

    #[test]
    fn a_body_mode_string_is_served_with_the_rule_content_type() {
        let Lookup::Hit(a) = serve_stored(&request(Mode::Body), Value::String("v1".into()), 0)
        else {
            panic!("expected a hit")
        };
        assert_eq!(a.body, "v1");
        assert_eq!(a.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(a.headers["x-cache"], "HIT");
    }

    #[test]
    fn a_body_mode_value_of_a_foreign_type_is_neither_served_nor_overwritten() {
        assert!(matches!(
            serve_stored(&request(Mode::Body), Value::Other { type_id: -2 }, 0),
            Lookup::Miss { overwrite: false }
        ));
    }
}
