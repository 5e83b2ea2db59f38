//! A blocking HTTP/1.1 client for tests (hyper on a runtime shared by the harness), so test
//! bodies read top to bottom and can fan out on plain threads.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The runtime the harness's async parts (client, origin) run on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("test runtime: {e}"))
    })
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `x-cache` header, or "" when absent.
    pub fn cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }
}

/// GET `url` with no extra headers.
pub fn get(url: &str) -> Result<Reply> {
    get_with(url, &[])
}

/// GET `url` with `headers`.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Result<Reply> {
    request("GET", url, headers)
}

/// Any method with `headers` and no body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Reply> {
    send(method, url, headers, b"")
}

/// Any method with `headers` and `body`; a 10 s limit so a hung component fails the test
/// instead of hanging it. An empty body is sent as no body at all.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply> {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .context("building request")?;
    runtime().block_on(async {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let exchange = async {
            let resp = client
                .request(req)
                .await
                .with_context(|| format!("{method} {url}"))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.context("reading body")?.to_bytes();
            Ok::<_, anyhow::Error>(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .with_context(|| format!("{method} {url}: no answer within 10 s"))?
    })
}
