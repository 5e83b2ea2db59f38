//! Fetching from an origin on a miss: one GET through a pooled HTTP/1.1 client, with a time
//! limit for the whole exchange and a size limit on the body that is enforced while reading, so
//! an oversized answer is abandoned early instead of buffered.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::Origin;
use crate::headers::strip_for_origin;

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("origin request could not be built: {0}")]
    BadRequest(String),
    #[error("origin unreachable or failed: {0}")]
    Failed(String),
    #[error("origin did not answer within {0:?}")]
    Timeout(Duration),
    /// The body has `at_least` bytes, over the `limit`: the declared `Content-Length` (then
    /// no byte of the body was read), or what was read when the limit was crossed.
    #[error("origin body exceeds {limit} bytes (at least {at_least})")]
    TooLarge { limit: usize, at_least: u64 },
}

pub struct OriginResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct OriginClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl OriginClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        OriginClient { client, timeout }
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
        let uri: Uri = format!("http://{}{}{}", origin.authority, origin.path_prefix, path)
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
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| OriginError::Failed(error_chain(&e)))?;
            let (parts, mut body) = resp.into_parts();
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
            let mut buf =
                BytesMut::with_capacity(declared.unwrap_or(0).min(max_body as u64) as usize);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| OriginError::Failed(error_chain(&e)))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max_body {
                        return Err(OriginError::TooLarge {
                            limit: max_body,
                            at_least: (buf.len() + data.len()) as u64,
                        });
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(OriginResponse {
                status: parts.status,
                headers: parts.headers,
                body: buf.freeze(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| OriginError::Timeout(self.timeout))?
    }
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
