//! The tests' origin: a small real HTTP server on 127.0.0.1 whose answers each test chooses,
//! and which counts the requests it sees by path and query, so a test can prove that a hit
//! never reached it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::client::runtime;

/// What the origin answers.
#[derive(Clone, Debug)]
pub struct OriginReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub delay: Duration,
}

impl OriginReply {
    pub fn ok(body: impl Into<Bytes>) -> OriginReply {
        OriginReply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a handler sees of a request.
pub struct Seen<'a> {
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

type Handler = Arc<dyn Fn(&Seen) -> OriginReply + Send + Sync>;

pub struct Origin {
    pub port: u16,
    /// By [`canonical`] path and query: the companion asks for the key's canonical request
    /// (parameters ordered by name), Envoy's fail-open path for the client's own; a test
    /// counts a resource either way.
    counts: Arc<Mutex<HashMap<String, u32>>>,
    /// Every path and query exactly as received, in order.
    raw: Arc<Mutex<Vec<String>>>,
    last_headers: Arc<Mutex<HashMap<String, HeaderMap>>>,
    /// The body of the last request for each canonical path and query.
    last_bodies: Arc<Mutex<HashMap<String, Bytes>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Origin {
    /// Starts an origin answering every request with `handler`'s reply.
    pub fn start(handler: impl Fn(&Seen) -> OriginReply + Send + Sync + 'static) -> Result<Origin> {
        let handler: Handler = Arc::new(handler);
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let last_headers = Arc::new(Mutex::new(HashMap::new()));
        let last_bodies = Arc::new(Mutex::new(HashMap::new()));
        let listener = runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (c, l, r) = (counts.clone(), last_headers.clone(), raw.clone());
        let b = last_bodies.clone();
        runtime().spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = &mut stop_rx => return,
                };
                let (handler, counts, last, raw, bodies) =
                    (handler.clone(), c.clone(), l.clone(), r.clone(), b.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (handler, counts, last, raw, bodies) = (
                            handler.clone(),
                            counts.clone(),
                            last.clone(),
                            raw.clone(),
                            bodies.clone(),
                        );
                        async move {
                            let pq = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str())
                                .unwrap_or("/")
                                .to_string();
                            *counts
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .entry(canonical(&pq))
                                .or_insert(0) += 1;
                            raw.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(pq.clone());
                            last.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(canonical(&pq), req.headers().clone());
                            let (parts, body) = req.into_parts();
                            // Test bodies are small; a limit keeps a runaway client bounded.
                            let body = http_body_util::Limited::new(body, 1 << 20)
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            bodies
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(canonical(&pq), body);
                            let reply = handler(&Seen {
                                path_and_query: &pq,
                                headers: &parts.headers,
                            });
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut resp = Response::new(Full::new(reply.body));
                            *resp.status_mut() = hyper::StatusCode::from_u16(reply.status)
                                .unwrap_or(hyper::StatusCode::OK);
                            for (k, v) in &reply.headers {
                                if let (Ok(k), Ok(v)) = (
                                    hyper::header::HeaderName::from_bytes(k.as_bytes()),
                                    hyper::header::HeaderValue::from_str(v),
                                ) {
                                    resp.headers_mut().append(k, v);
                                }
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Origin {
            port,
            counts,
            raw,
            last_headers,
            last_bodies,
            stop: Some(stop_tx),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `default=http://127.0.0.1:PORT`, as the companion's `--origin` wants it.
    pub fn origin_arg(&self) -> String {
        format!("default=http://127.0.0.1:{}", self.port)
    }

    /// How many requests for this path and query (in any parameter order by name) the
    /// origin has seen.
    pub fn count(&self, path_and_query: &str) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&canonical(path_and_query))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests for exactly this path and query, byte for byte.
    pub fn exact_count(&self, path_and_query: &str) -> usize {
        self.raw
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|p| *p == path_and_query)
            .count()
    }

    /// Every path and query received whose path is `path`, exactly as received.
    pub fn requests_for(&self, path: &str) -> Vec<String> {
        self.raw
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|p| p.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    /// The body of the last request for this path and query (empty for none).
    pub fn last_body(&self, path_and_query: &str) -> Option<Bytes> {
        self.last_bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&canonical(path_and_query))
            .cloned()
    }

    /// The headers of the last request for this path and query.
    pub fn last_headers(&self, path_and_query: &str) -> Option<HeaderMap> {
        self.last_headers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&canonical(path_and_query))
            .cloned()
    }
}

/// A path and query with empty `&&` segments dropped and parameters ordered by name, each
/// name's values in their order: the form the filter's default key asks the origin for.
pub fn canonical(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    params.sort_by_key(|p| p.split_once('=').map_or(*p, |(n, _)| n));
    if params.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", params.join("&"))
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
