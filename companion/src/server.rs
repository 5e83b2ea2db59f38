//! The companion's HTTP server: accepts connections (bounded), routes `/v1/fetch` to the cache
//! flow, `/v1/invalidate` (the filter, after unsafe requests) and `/admin/purge` (bearer token)
//! to deletions and `/v1/feed` to the invalidation feed (`feed_driver`), answers `/metrics`,
//! `/healthz` and `/readyz`, and on shutdown stops accepting and lets the requests in flight
//! finish before a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::answer::Answer;
use crate::cache::Cache;
use crate::feed;
use crate::fetch_request::FetchRequest;
use crate::metrics::{ErrorKind, Event, Outcome};
use crate::purge::{self, AdminError};

/// Most connections served at once. Each Envoy worker keeps a small pool to the companion, so
/// this is far above normal use; it exists so a flood cannot exhaust file descriptors.
const MAX_CONNECTIONS: usize = 4096;
/// How long requests in flight may take to finish once shutdown starts.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then drains.
pub async fn run(listener: TcpListener, cache: Arc<Cache>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept: log, pause, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let cache = cache.clone();
        let service = service_fn(move |req| handle(cache.clone(), req));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // A client that never finishes its request head must not hold a connection forever.
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    // Stop listening at once: a connection the kernel would still queue on a listener nobody
    // accepts from would hang its caller (a callout, the filter's health ping) instead of
    // being refused, which the filter would take for a hung companion.
    drop(listener);
    tracing::info!("shutting down: draining requests in flight");
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; closing remaining connections");
    }
}

/// The header that carries the callout secret on every `/v1/*` call.
pub const AUTH_HEADER: &str = "x-hzcache-auth";

/// Whether a `/v1/*` call may proceed: exactly one `x-hzcache-auth` equal to the configured
/// secret (compared in constant time), or no secret configured (loopback only, enforced at
/// start-up).
fn callout_authorized(cache: &Cache, headers: &hyper::HeaderMap) -> bool {
    let Some(secret) = &cache.config.callout_secret else {
        return true;
    };
    let mut given = headers.get_all(AUTH_HEADER).iter();
    matches!((given.next(), given.next()), (Some(v), None) if secret.matches(v.as_bytes()))
}

/// 403 for a map the companion does not serve; counted, and nothing was touched.
fn forbidden(cache: &Cache, why: &str) -> Answer {
    tracing::warn!(%why, "refused a call naming a map that is not served");
    cache.metrics.error(ErrorKind::ForbiddenMap);
    cache.metrics.outcome(Outcome::Error);
    Answer::error(StatusCode::FORBIDDEN, why)
}

async fn handle(
    cache: Arc<Cache>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, _body) = req.into_parts();
    let path = parts.uri.path();
    let answer = if path.starts_with("/v1/") && !callout_authorized(&cache, &parts.headers) {
        cache.metrics.error(ErrorKind::Unauthorized);
        cache.metrics.outcome(Outcome::Error);
        tracing::debug!(path, "callout without a valid secret refused");
        Answer::error(StatusCode::UNAUTHORIZED, "missing or wrong x-hzcache-auth")
    } else {
        route(&cache, parts).await
    };
    let mut resp = Response::new(Full::new(answer.body));
    *resp.status_mut() = answer.status;
    *resp.headers_mut() = answer.headers;
    Ok(resp)
}

async fn route(cache: &Arc<Cache>, parts: hyper::http::request::Parts) -> Answer {
    match (&parts.method, parts.uri.path()) {
        // The callout's headers become the request's client headers: moved, not copied.
        (&Method::GET, "/v1/fetch") => match FetchRequest::from_header_map(parts.headers) {
            Ok(fetch) => match cache
                .config
                .check_map(&fetch.map, fetch.mode, fetch.value_type)
            {
                Ok(()) => cache.fetch(fetch).await,
                Err(why) => forbidden(cache, &why),
            },
            Err(why) => {
                tracing::warn!(%why, "bad callout request");
                cache.metrics.error(ErrorKind::BadRequest);
                cache.metrics.outcome(Outcome::Error);
                Answer::error(StatusCode::BAD_REQUEST, &why)
            }
        },
        (&Method::POST, "/v1/invalidate") => match purge::invalidate_targets(&parts.headers) {
            Ok(targets) if targets.iter().any(|(m, _)| !cache.config.map_allowed(m)) => forbidden(
                cache,
                "an invalidation target names a map that is not served",
            ),
            Ok(targets) => {
                // In its own task: the deletions finish even if Envoy drops the callout.
                let c = cache.clone();
                let n = tokio::spawn(async move { c.invalidate(&targets).await })
                    .await
                    .unwrap_or(0);
                cache.metrics.add(Event::Invalidation, n as u64);
                tracing::debug!(deleted = n, "invalidated after an unsafe request");
                text(StatusCode::OK, &format!("invalidated {n}"))
            }
            Err(why) => {
                cache.metrics.error(ErrorKind::BadRequest);
                text(StatusCode::BAD_REQUEST, &why)
            }
        },
        (&Method::GET, "/v1/feed") => feed_answer(cache, parts.uri.query()),
        (&Method::POST, "/admin/purge") => {
            let checked = purge::authorize(&parts.headers, cache.config.admin_token.as_ref())
                .and_then(|()| purge::purge_target(parts.uri.query()));
            match checked {
                Ok(target) if !cache.config.map_allowed(target.map()) => {
                    cache.metrics.error(ErrorKind::ForbiddenMap);
                    text(
                        StatusCode::FORBIDDEN,
                        "purge names a map that is not served (--map)",
                    )
                }
                Ok(target) => match cache.purge(&target).await {
                    Ok(n) => {
                        // What was purged may name URLs with query strings: debug only.
                        tracing::info!(map = target.map(), purged = n, "purge");
                        tracing::debug!(?target, "purge target");
                        text(StatusCode::OK, &format!("purged {n}"))
                    }
                    Err(e) => {
                        cache.metrics.error(ErrorKind::Hazelcast);
                        text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &format!("purge failed: {e}"),
                        )
                    }
                },
                Err(AdminError::Off) => text(StatusCode::NOT_FOUND, "not found"),
                Err(e @ AdminError::Unauthorized) => {
                    let mut a = text(StatusCode::UNAUTHORIZED, &e.to_string());
                    a.headers
                        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
                    a
                }
                Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
        (&Method::GET, "/metrics") => {
            let mut a = text(StatusCode::OK, "");
            a.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            a.body = Bytes::from(cache.metrics.render());
            a
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") => {
            if cache.hazelcast.is_connected() {
                text(StatusCode::OK, "ready")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not connected to Hazelcast",
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `GET /v1/feed?after=N` (callout-protocol.md, "Invalidation feed"): the lines after the
/// caller's cursor, from memory; `503` while the feed cannot vouch for anything.
fn feed_answer(cache: &Cache, query: Option<&str>) -> Answer {
    let after = match feed::parse_after(query) {
        Ok(a) => a,
        Err(why) => {
            cache.metrics.error(ErrorKind::BadRequest);
            return Answer::error(StatusCode::BAD_REQUEST, &why);
        }
    };
    match cache.feed.answer(after) {
        feed::Answer::Feed(body) => {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Answer::outcome("feed", StatusCode::OK, headers, Bytes::from(body))
        }
        feed::Answer::NotReady => Answer::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "feed not ready (not connected to Hazelcast, or listeners not registered)",
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Answer {
    let mut headers = hyper::HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Answer {
        status,
        headers,
        body: Bytes::from(format!("{body}\n")),
    }
}
