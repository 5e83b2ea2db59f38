//! The faults suite's origin: a real HTTP/1.1 server on 127.0.0.1 whose behaviour can be
//! switched while the stack runs (normal, slow, 5xx, hang before the headers, hang after the
//! headers), and whose bodies are a deterministic function of the path, so a client can tell a
//! right body from a wrong or truncated one without asking the origin.
//!
//! Path families choose the response's caching:
//! - `/f/…` fresh: `Cache-Control: max-age=3600`
//! - `/s/…` short-lived with stale-if-error: `max-age=1, stale-if-error=300`
//! - `/u/…` uncached: `no-store`
//! - `/big/…` a 5 MB body, `max-age=3600` (over the companion's entry limit)
//! - `/cold/…` `max-age=3600`, always answered after 800 ms (the stampede's cold key)
//! - anything else: `no-store` (hostile requests land here)

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::runtime::rt;

/// Size of a `/big/…` body.
pub const BIG_BODY: usize = 5 * 1024 * 1024;
/// How long the origin takes for a `/cold/…` key.
pub const COLD_DELAY: Duration = Duration::from_millis(800);
/// A hung request is released at the latest after this long (so nothing hangs forever).
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// What the origin does with every request (the path families' own delays aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Answers after the delay.
    Slow(Duration),
    /// `503` with no caching headers, as an origin in trouble does.
    Fail5xx,
    /// Reads the request and never answers, until the mode changes.
    Hang,
    /// Sends the headers and the first bytes of the body, then nothing until the mode changes,
    /// then closes the connection mid-body.
    HangBody,
}

impl Mode {
    pub fn name(self) -> String {
        match self {
            Mode::Normal => "normal".into(),
            Mode::Slow(d) => format!("slow {} ms", d.as_millis()),
            Mode::Fail5xx => "5xx".into(),
            Mode::Hang => "hang".into(),
            Mode::HangBody => "hang after headers".into(),
        }
    }
}

/// FNV-1a 64: the checksum clients compare bodies with.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The body the origin serves for `path` (the query is ignored): the path on the first line,
/// then bytes from a generator seeded by the path, 256–1279 of them (5 MB under `/big/`).
pub fn body_for(path: &str) -> Bytes {
    let path = path.split('?').next().unwrap_or(path);
    let seed = checksum(path.as_bytes());
    let len = if path.starts_with("/big/") {
        BIG_BODY
    } else {
        path.len() + 1 + 256 + (seed % 1024) as usize
    };
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(path.as_bytes());
    out.push(b'\n');
    let mut x = seed | 1;
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        for b in v.to_le_bytes() {
            if out.len() < len {
                // Printable, so a wrong body reads well in a log.
                out.push(b'a' + (b % 26));
            }
        }
    }
    Bytes::from(out)
}

/// The `Cache-Control` of a path's family.
pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with("/f/") || path.starts_with("/big/") || path.starts_with("/cold/") {
        "max-age=3600"
    } else if path.starts_with("/s/") {
        "max-age=1, stale-if-error=300"
    } else {
        "no-store"
    }
}

type OriginBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// The controllable origin. Stops when dropped.
pub struct FaultOrigin {
    pub port: u16,
    mode: watch::Sender<Mode>,
    counts: Arc<Mutex<HashMap<String, u64>>>,
    total: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultOrigin {
    pub fn start() -> Result<FaultOrigin> {
        let listener = rt().block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let (mode, mode_rx) = watch::channel(Mode::Normal);
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let total = Arc::new(AtomicU64::new(0));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (c, t) = (counts.clone(), total.clone());
        rt().spawn(async move {
            loop {
                let stream = tokio::select! {
                    a = listener.accept() => match a {
                        Ok((s, _)) => s,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                    _ = &mut stop_rx => return,
                };
                let _ = stream.set_nodelay(true);
                let (mode_rx, counts, total) = (mode_rx.clone(), c.clone(), t.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (mode_rx, counts, total) =
                            (mode_rx.clone(), counts.clone(), total.clone());
                        async move {
                            Ok::<_, Infallible>(answer(req, mode_rx, &counts, &total).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(FaultOrigin {
            port,
            mode,
            counts,
            total,
            stop: Some(stop_tx),
        })
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// `default=http://127.0.0.1:PORT`, the companion's `--origin`.
    pub fn origin_arg(&self) -> String {
        format!("default=http://127.0.0.1:{}", self.port)
    }

    /// Requests seen for this path (query ignored).
    pub fn count(&self, path: &str) -> u64 {
        let path = path.split('?').next().unwrap_or(path);
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests seen in all.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for FaultOrigin {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Waits while the mode is `which`, at most [`HANG_LIMIT`].
async fn wait_while(mut rx: watch::Receiver<Mode>, which: Mode) {
    let deadline = tokio::time::Instant::now() + HANG_LIMIT;
    loop {
        if *rx.borrow_and_update() != which {
            return;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(deadline) => return,
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    mode_rx: watch::Receiver<Mode>,
    counts: &Mutex<HashMap<String, u64>>,
    total: &AtomicU64,
) -> Response<OriginBody> {
    let path = req.uri().path().to_string();
    total.fetch_add(1, Ordering::Relaxed);
    *counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(path.clone())
        .or_insert(0) += 1;
    // The request body (if any) is read and dropped, bounded.
    let _ = http_body_util::Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await;
    let mode = *mode_rx.borrow();
    match mode {
        Mode::Normal | Mode::HangBody => {}
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Fail5xx => return plain(503, "origin failing"),
        Mode::Hang => wait_while(mode_rx.clone(), Mode::Hang).await,
    }
    if path.starts_with("/cold/") {
        tokio::time::sleep(COLD_DELAY).await;
    }
    let body = body_for(&path);
    let builder = Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .header("cache-control", cache_control(&path))
        .header("content-length", body.len());
    let body: OriginBody = if mode == Mode::HangBody {
        let first = body.slice(..body.len().min(64));
        HangingBody {
            first: Some(first),
            wait: Box::pin(wait_while(mode_rx, Mode::HangBody)),
        }
        .boxed_unsync()
    } else {
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync()
    };
    builder
        .body(body)
        .unwrap_or_else(|_| plain(500, "bad response"))
}

fn plain(status: u16, text: &'static str) -> Response<OriginBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp
}

/// The first bytes of a body, then nothing until `wait` ends, then an error (the connection is
/// closed mid-body, as a dying origin does).
struct HangingBody {
    first: Option<Bytes>,
    wait: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Body for HangingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match self.wait.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Some(Err(std::io::Error::other("origin closed mid-body"))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_depend_on_the_path_only() {
        assert_eq!(body_for("/f/a/1"), body_for("/f/a/1?x=y"));
        assert_ne!(body_for("/f/a/1"), body_for("/f/a/2"));
        assert_eq!(body_for("/big/x").len(), BIG_BODY);
        assert!(body_for("/f/a/1").starts_with(b"/f/a/1\n"));
    }

    #[test]
    fn families_choose_their_caching() {
        assert_eq!(cache_control("/f/x"), "max-age=3600");
        assert!(cache_control("/s/x").contains("stale-if-error"));
        assert_eq!(cache_control("/u/x"), "no-store");
        assert_eq!(cache_control("/other"), "no-store");
    }
}
