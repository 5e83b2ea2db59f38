//! Requests as raw bytes, for what an HTTP client library refuses to send (hostile heads:
//! quotes and backticks in the target, non-UTF-8 values, header counts near Envoy's limits),
//! and reading Envoy's `/stats` counters.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::loopback;

/// Sends `head` (request line and headers, without the final blank line) with
/// `Connection: close`, and returns the response status, or 0 when Envoy closed the connection
/// without one.
pub fn raw(port: u16, head: &[u8], body: &[u8]) -> u16 {
    let Ok(mut stream) = TcpStream::connect(loopback(port)) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let mut request = head.to_vec();
    request.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    request.extend_from_slice(body);
    // Envoy may answer (431, 400) and close before it has read everything.
    let _ = stream.write_all(&request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let line = response.split(|&b| b == b'\r').next().unwrap_or_default();
    std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A GET of `target` for `host` with extra header lines.
pub fn get_head(target: &[u8], host: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut head = b"GET ".to_vec();
    head.extend_from_slice(target);
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(host.as_bytes());
    for line in extra {
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(line);
    }
    head
}

/// Envoy's value of a counter or gauge in `/stats` text.
pub fn stat(stats: &str, name: &str) -> Option<u64> {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
}
