//! The one origin every cache sits in front of: the harness's counting origin
//! (`hzcache_e2e::Origin`) with the query language of the harness's programmable origin
//! (`status=N`, `h=Name:Value`, `size=N`, `delay=MS`, `cond=1`, `fail=NAME`), plus what the
//! comparison needs on top:
//! - `cdelay=MS`: delay only conditional requests (to tell a validation the client waited
//!   for from one done in the background);
//! - `seqh=NAME`: a header NAME carrying this answer's sequence number (to see whether a
//!   304's fields reached the stored entry);
//! - byte ranges: a `Range: bytes=A-B` on a 200 is answered 206 with `Content-Range`, as real
//!   origins do;
//! - the default body `"<path> #<n>"` counts every answer, so a refetch always shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use hzcache_e2e::stack::failing;
use hzcache_e2e::{Origin, OriginReply};

/// The byte at offset `i` of a `size=N` body.
pub fn pattern(i: usize) -> u8 {
    b"0123456789abcdef"[i % 16]
}

pub fn start() -> Result<Origin> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    Origin::start(|seen| {
        let n = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
        let (path, query) = seen
            .path_and_query
            .split_once('?')
            .unwrap_or((seen.path_and_query, ""));
        let mut reply = OriginReply::ok(format!("{path} #{n}"));
        let mut etag = None;
        let mut cond = false;
        let mut cdelay = Duration::ZERO;
        let mut down = false;
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
                "cond" => cond = true,
                "fail" if failing(&v) => down = true,
                _ => {}
            }
        }
        if down {
            // A plain outage answer: none of the headers the query asked for.
            return OriginReply::ok("origin down").status(503);
        }
        let header = |name: &str| seen.headers.get(name).and_then(|v| v.to_str().ok());
        if let (true, Some(e), Some(inm)) = (cond, etag, header("if-none-match")) {
            if inm.split(',').any(|t| t.trim() == e) {
                reply.status = 304;
                reply.body = Bytes::new();
            }
        }
        if header("if-none-match").is_some() || header("if-modified-since").is_some() {
            reply.delay += cdelay;
        }
        if let (200, Some(range)) = (reply.status, header("range")) {
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
