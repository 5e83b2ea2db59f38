//! Harness additions for the HTTP-caching end-to-end tests: a fleet of N Envoy + companion
//! pairs sharing the one Hazelcast member (each Envoy calls its own companion), companion
//! flags per test, and the companion's own endpoints (`/metrics`, `/admin/purge`).

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::{shared_member, Companion, Envoy, Origin};
use std::sync::atomic::{AtomicU64, Ordering};

/// One Envoy with the filter and the companion it calls out to.
pub struct Node {
    pub envoy: Envoy,
    pub companion: Companion,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    pub fn companion_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.companion.port)
    }

    /// The companion's `/metrics` text.
    pub fn metrics(&self) -> String {
        send("GET", &self.companion_url("/metrics"), &[], b"")
            .map(|r| r.text())
            .unwrap_or_default()
    }
}

/// `n` nodes on the shared member, all fetching misses from `origin`.
pub struct Fleet {
    pub nodes: Vec<Node>,
    pub origin: Origin,
}

impl Fleet {
    /// Starts `n` nodes with `filter_config` (JSON) and `companion_args` for every companion.
    pub fn start(
        origin: Origin,
        n: usize,
        filter_config: &str,
        companion_args: &[&str],
    ) -> Result<Fleet> {
        let member = shared_member();
        let mut nodes = Vec::with_capacity(n);
        // The companions serve exactly the maps the filter's rules name.
        let mut args: Vec<String> = crate::maps_of(filter_config)
            .into_iter()
            .flat_map(|m| ["--map".to_string(), m])
            .collect();
        args.extend(companion_args.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for _ in 0..n {
            let companion = Companion::start(
                &member.cluster_name,
                &[member.address()],
                &[origin.origin_arg()],
                &args,
            )?;
            companion.wait_ready(Duration::from_secs(30))?;
            let envoy = Envoy::start(filter_config, origin.port, companion.port)?;
            nodes.push(Node { envoy, companion });
        }
        Ok(Fleet { nodes, origin })
    }

    /// One node with the demo's filter configuration.
    pub fn single(origin: Origin, companion_args: &[&str]) -> Result<Fleet> {
        Fleet::start(origin, 1, &crate::demo_filter_config()?, companion_args)
    }

    /// One node with the demo's filter configuration and `rules` (a JSON array of rule
    /// objects) matched before the demo's own, for settings the demo does not use.
    pub fn single_with_rules(
        origin: Origin,
        rules: serde_json::Value,
        companion_args: &[&str],
    ) -> Result<Fleet> {
        let config = demo_config_with_rules_first(rules)?;
        Fleet::start(origin, 1, &config, companion_args)
    }

    pub fn url(&self, path: &str) -> String {
        self.nodes[0].url(path)
    }

    pub fn node(&self) -> &Node {
        &self.nodes[0]
    }
}

/// The demo's filter configuration (JSON text) with `rules` put first in its rule list.
pub fn demo_config_with_rules_first(rules: serde_json::Value) -> Result<String> {
    let mut config: serde_json::Value = serde_json::from_str(&crate::demo_filter_config()?)
        .context("envoy/filter-config.json is not JSON")?;
    let serde_json::Value::Array(extra) = rules else {
        anyhow::bail!("rules must be a JSON array");
    };
    let list = config
        .get_mut("rules")
        .and_then(|r| r.as_array_mut())
        .context("envoy/filter-config.json has no rules array")?;
    list.splice(0..0, extra);
    Ok(config.to_string())
}

/// The first answer for `url` that is not a `HIT`, asking for up to 1.5 s: a purge by an
/// operator reaches each Envoy's L1 through the companion's invalidation feed, within a second
/// (`docs/callout-protocol.md`). Returns the last answer if every one was a hit.
pub fn after_purge(url: &str) -> crate::Reply {
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    loop {
        let r = match crate::get(url) {
            Ok(r) => r,
            Err(e) => panic!("GET {url}: {e:#}"),
        };
        if r.cache() != "HIT" || std::time::Instant::now() >= deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Any method, with headers and a body (the harness's one HTTP client, re-exported here).
pub use crate::client::send;

/// The value of one counter line of a Prometheus text (`name{labels} value`), 0 if absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// The byte at offset `i` of a `size=N` body.
pub fn pattern(i: usize) -> u8 {
    b"0123456789abcdef"[i % 16]
}

/// An origin whose answer each request describes in its query, so the tests of one file can
/// share one fleet and still ask for different responses, and the comparison (benchmarks/compare/) can put
/// every cache in front of the same origin:
/// - `status=N`, `h=Name:Value` (repeatable, percent-encoded), `size=N` (a body of N bytes),
///   `delay=MS`, `cond=1` (answer 304 when If-None-Match matches the `etag` given by `h`),
///   `fail=NAME` (answer 503 while `failing(NAME)` is set);
/// - `cdelay=MS`: delay only conditional requests (to tell a validation the client waited for
///   from one done in the background);
/// - `seqh=NAME`: a header NAME carrying this answer's sequence number (to see whether a 304's
///   fields reached the stored entry);
/// - a `Range: bytes=A-B` on a 200 is answered 206 with `Content-Range`, as real origins do.
///
/// The default body is `"<path> #<n>"`, `n` counting every answer of this origin, so a refetch
/// always shows.
pub fn programmable_origin() -> Result<Origin> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    Origin::start(|seen| {
        let n = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
        let (path, query) = seen
            .path_and_query
            .split_once('?')
            .unwrap_or((seen.path_and_query, ""));
        let mut reply = crate::OriginReply::ok(format!("{path} #{n}"));
        let mut etag = None;
        let mut cond = false;
        let mut cdelay = Duration::ZERO;
        let mut down = false;
        let mut first_bytes = None;
        let (mut first_once, mut ignore_if_range, mut seq_fill) = (false, false, false);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = unescape(v);
            match k {
                "status" => reply.status = v.parse().unwrap_or(200),
                "h" => {
                    if let Some((name, value)) = v.split_once(':') {
                        if name.eq_ignore_ascii_case("etag") {
                            etag = Some(value.to_string());
                        }
                        reply = reply.header(name, value);
                    }
                }
                "size" => {
                    let size: usize = v.parse().unwrap_or(0);
                    reply.body = Bytes::from((0..size).map(pattern).collect::<Vec<u8>>());
                }
                "delay" => reply.delay = Duration::from_millis(v.parse().unwrap_or(0)),
                "cdelay" => cdelay = Duration::from_millis(v.parse().unwrap_or(0)),
                "seqh" => reply = reply.header(&v, &n.to_string()),
                // A new strong ETag on every answer: each one is another representation.
                "seqetag" => {
                    let e = format!("\"s{n}\"");
                    reply = reply.header("etag", &e);
                    etag = Some(e);
                }
                // Answer a request without `Range` with a 206 of the first N bytes only, as
                // an origin that serves pieces does.
                "firstbytes" => first_bytes = v.parse::<usize>().ok(),
                // ... and only to the first such request for this path.
                "firstonce" => first_once = true,
                // Serve a range whatever `If-Range` says (an origin that ignores it).
                "ignoreifrange" => ignore_if_range = true,
                // Every byte of the body this answer's own letter: pieces of different
                // answers never look alike.
                "seqfill" => seq_fill = true,
                "cond" => cond = true,
                "fail" if failing(&v) => down = true,
                _ => {}
            }
        }
        if down {
            // A plain outage answer: none of the headers the query asked for.
            return crate::OriginReply::ok("origin down").status(503);
        }
        let header = |name: &str| seen.headers.get(name).and_then(|v| v.to_str().ok());
        if let (true, Some(e), Some(inm)) = (cond, etag.as_deref(), header("if-none-match")) {
            if inm.split(',').any(|t| t.trim() == e) {
                reply.status = 304;
                reply.body = Bytes::new();
            }
        }
        if header("if-none-match").is_some() || header("if-modified-since").is_some() {
            reply.delay += cdelay;
        }
        // If-Range (RFC 9110 §13.1.5): the range only for the representation it names (an
        // exact ETag); otherwise the whole 200.
        let if_range_holds =
            ignore_if_range || header("if-range").is_none_or(|v| etag.as_deref() == Some(v));
        if seq_fill {
            let letter = b'a' + (n % 26) as u8;
            reply.body = Bytes::from(vec![letter; reply.body.len()]);
        }
        let first_time = !first_once || {
            static PIECES_SERVED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
            let mut served = PIECES_SERVED.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = !served.iter().any(|p| p == path);
            if fresh && header("range").is_none() {
                served.push(path.to_string());
            }
            fresh
        };
        if let (200, None, Some(n), true) = (reply.status, header("range"), first_bytes, first_time)
        {
            let total = reply.body.len();
            if n > 0 && n < total {
                reply.body = reply.body.slice(0..n);
                reply.status = 206;
                let last = n - 1;
                reply = reply.header("content-range", &format!("bytes 0-{last}/{total}"));
            }
        }
        if let (200, Some(range), true) = (reply.status, header("range"), if_range_holds) {
            if let Some((start, end)) = byte_range(range, reply.body.len()) {
                let total = reply.body.len();
                reply.body = reply.body.slice(start..=end);
                reply.status = 206;
                reply = reply.header("content-range", &format!("bytes {start}-{end}/{total}"));
            }
        }
        reply
    })
}

/// `bytes=A-B` or `bytes=A-` within a body of `len` bytes; one range only, as most origins.
fn byte_range(value: &str, len: usize) -> Option<(usize, usize)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let start: usize = a.trim().parse().ok()?;
    let end: usize = match b.trim() {
        "" => len.checked_sub(1)?,
        b => b.parse::<usize>().ok()?.min(len.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}

/// Decodes `%XX` (and `+` as space) in a query value; bad escapes are kept.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

static FAILING: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Whether the programmable origin fails requests carrying `fail=NAME`.
pub fn failing(name: &str) -> bool {
    FAILING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|n| n == name)
}

pub fn set_failing(name: &str, on: bool) {
    let mut f = FAILING.lock().unwrap_or_else(|p| p.into_inner());
    f.retain(|n| n != name);
    if on {
        f.push(name.to_string());
    }
}

/// A fresh path `/NAME/<unique>` whose query asks the programmable origin for `headers`
/// (`Name:Value` each) and then `more` (raw query parameters).
pub fn origin_path(name: &str, headers: &[&str], more: &str) -> String {
    let mut p = format!("/{name}/{}?", crate::unique("p"));
    for h in headers {
        p.push_str(&format!("h={}&", q(h)));
    }
    p.push_str(more);
    p
}

/// Percent-encodes a query value for the programmable origin.
pub fn q(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `start` on a thread that never ends and returns its result. Envoy asks Linux for a
/// SIGTERM when the thread that started it exits (a parent-death signal, which is per thread),
/// so a fleet kept in a `static` for several tests must not be started on a test's own thread:
/// the first test to finish would take Envoy down with it.
pub fn start_on_lasting_thread<T: Send + 'static>(start: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(start());
        loop {
            std::thread::park();
        }
    });
    match rx.recv() {
        Ok(v) => v,
        Err(e) => panic!("the starting thread died: {e}"),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_are_read_like_an_origin_would() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=90-500", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), None);
        assert_eq!(byte_range("bytes=9-1", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
    }

    #[test]
    fn query_values_are_unescaped() {
        assert_eq!(unescape("a%3Ab+c%zz%4"), "a:b c%zz%4");
    }
}
