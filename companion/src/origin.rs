//! Fetching from an origin on a miss: one GET through a pooled HTTP/1.1 client, with a time
//! limit for the whole exchange and a size limit on the body that is enforced while reading, so
//! an oversized answer is abandoned early instead of buffered. Every body's bytes are reserved
//! from the companion's [`BodyBudget`] before they are held, and the returned body owns its
//! reservation, so the bytes count against the budget exactly as long as any part of the miss
//! path (the store, the answer being written to the filter) still holds them.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::budget::{BodyBudget, Reservation};
use crate::config::Origin;
use crate::headers::strip_for_origin;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("origin request could not be built: {0}")]
    BadRequest(String),
    #[error("origin failed: {0}")]
    Failed(String),
    /// The origin could not be reached: connection refused or reset, or closed before a
    /// whole response (RFC 9111 §4.2.4's disconnected cache may then serve stale).
    #[error("origin unreachable: {0}")]
    Unreachable(String),
    /// The origin answered something that is not valid HTTP (a status outside 100–599, a
    /// malformed header section or chunked body): answered as a 502, never asked again.
    #[error("origin answer is not valid HTTP: {0}")]
    Invalid(String),
    #[error("origin did not answer within {0:?}")]
    Timeout(Duration),
    /// The body has `at_least` bytes, over the `limit`: the declared `Content-Length` (then
    /// no byte of the body was read), or what was read when the limit was crossed.
    #[error("origin body exceeds {limit} bytes (at least {at_least})")]
    TooLarge { limit: usize, at_least: u64 },
    /// Origin bodies in flight already hold the whole `--max-inflight-body-bytes` budget: this
    /// one was not fetched (or was abandoned), and the filter's upstream request answers.
    #[error("origin bodies in flight hold the budget of {limit} bytes")]
    OverBudget { limit: usize },
}

pub struct OriginResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Owns the body's budget reservation: released when the last clone is dropped.
    pub body: Bytes,
}

/// A body's bytes together with their reservation, so that `Bytes::from_owner` ties the
/// reservation to the lifetime of the bytes themselves (every clone, every slice).
struct Reserved {
    bytes: Bytes,
    _reservation: Reservation,
}

impl AsRef<[u8]> for Reserved {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Clone)]
pub struct OriginClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    budget: BodyBudget,
    /// The callout secret that marks origin fetches, if any.
    mark: Option<Secret>,
}

impl OriginClient {
    /// `max_inflight_body_bytes`: the budget of body bytes all fetches through this client
    /// may hold together.
    pub fn new(timeout: Duration, max_inflight_body_bytes: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        OriginClient {
            client,
            timeout,
            budget: BodyBudget::new(max_inflight_body_bytes),
            mark: None,
        }
    }

    /// Marks every origin fetch with `x-hzcache-fetch` under `secret` (the callout secret),
    /// so a filter in front of the origin (a mesh sidecar) passes it straight upstream
    /// instead of calling back into a companion (`hzcache_contract`).
    pub fn with_mark(mut self, secret: Option<Secret>) -> Self {
        self.mark = secret;
        self
    }

    /// The budget of body bytes in flight (for metrics).
    pub fn budget(&self) -> &BodyBudget {
        &self.budget
    }

    /// GETs `path` (the canonical path and query of the key) from `origin`, presenting `host`
    /// (empty: the origin's own authority) and `scheme` as `X-Forwarded-Proto`, with the
    /// forwarded client headers (minus hop-by-hop and conditional ones) and `conditional`.
    #[allow(clippy::too_many_arguments)]
    pub async fn get(
        &self,
        origin: &Origin,
        path: &str,
        host: &str,
        scheme: Option<&str>,
        client_headers: &HeaderMap,
        conditional: &HeaderMap,
        max_body: usize,
    ) -> Result<OriginResponse, OriginError> {
        let path_and_query = format!("{}{}", origin.path_prefix, path);
        let uri: Uri = format!("http://{}{path_and_query}", origin.authority)
            .parse()
            .map_err(|e| OriginError::BadRequest(format!("{e}")))?;
        let mut req = Request::get(uri)
            .body(Empty::new())
            .map_err(|e| OriginError::BadRequest(e.to_string()))?;
        *req.headers_mut() = strip_for_origin(client_headers);
        // The cache's own validators when it revalidates a stored entry.
        for (name, value) in conditional {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        let host = if host.is_empty() {
            origin.authority.as_str()
        } else {
            host
        };
        if let Ok(h) = HeaderValue::from_str(host) {
            req.headers_mut().insert(HOST, h);
        }
        // The scheme is part of the key, so the origin may build redirects from it; the
        // client's own X-Forwarded-* never reach this far (the filter does not forward them).
        if let Some(scheme) = scheme.and_then(|s| HeaderValue::from_str(s).ok()) {
            req.headers_mut().insert("x-forwarded-proto", scheme);
        }
        if let Some(secret) = &self.mark {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mark = hzcache_contract::origin_fetch_mark(
                secret.expose().as_bytes(),
                now,
                "GET",
                &path_and_query,
            );
            if let Ok(v) = HeaderValue::from_str(&mark) {
                req.headers_mut()
                    .insert(hzcache_contract::ORIGIN_FETCH_HEADER, v);
            }
        }
        // A spent budget is not worth an origin request: the filter's own one answers.
        let over_budget = || OriginError::OverBudget {
            limit: self.budget.limit(),
        };
        if self.budget.in_use() >= self.budget.limit() {
            return Err(over_budget());
        }
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    OriginError::Unreachable(error_chain(&e))
                } else {
                    classify(&e)
                }
            })?;
            let (parts, mut body) = resp.into_parts();
            // hyper reads any three digits; a final status outside 200–599 is not HTTP
            // (RFC 9110 §15: 100–599, and 1xx are interim, never final here).
            if !(200..=599).contains(&parts.status.as_u16()) {
                return Err(OriginError::Invalid(format!(
                    "status {}",
                    parts.status.as_u16()
                )));
            }
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // A declared length over the limit is refused before any byte of the body is read
            // (the connection is dropped with the body, not drained).
            if let Some(n) = declared.filter(|n| *n > max_body as u64) {
                return Err(OriginError::TooLarge {
                    limit: max_body,
                    at_least: n,
                });
            }
            // Within `max_body` after the check above.
            let declared = declared.unwrap_or(0) as usize;
            // The declared length is reserved before any byte is read; an undeclared (or
            // understated) one grows the reservation chunk by chunk, before the chunk is kept.
            let mut reservation = self.budget.try_reserve(declared).ok_or_else(over_budget)?;
            let mut buf = BytesMut::with_capacity(declared);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| classify(&e))?;
                if let Ok(data) = frame.into_data() {
                    let len = buf.len() + data.len();
                    if len > max_body {
                        return Err(OriginError::TooLarge {
                            limit: max_body,
                            at_least: len as u64,
                        });
                    }
                    if !reservation.grow_to(len) {
                        return Err(over_budget());
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(OriginResponse {
                status: parts.status,
                headers: parts.headers,
                body: Bytes::from_owner(Reserved {
                    bytes: buf.freeze(),
                    _reservation: reservation,
                }),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| OriginError::Timeout(self.timeout))?
    }
}

/// What a failed exchange means: not valid HTTP (hyper's parse errors, a malformed chunked
/// body), the origin gone (reset, closed before a whole response), or another failure.
fn classify(e: &(dyn std::error::Error + 'static)) -> OriginError {
    let text = error_chain(e);
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = src {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return OriginError::Invalid(text);
            }
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return OriginError::Unreachable(text);
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                InvalidData | InvalidInput => return OriginError::Invalid(text),
                ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe
                | UnexpectedEof | NotConnected => return OriginError::Unreachable(text),
                _ => {}
            }
        }
        src = err.source();
    }
    OriginError::Failed(text)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
