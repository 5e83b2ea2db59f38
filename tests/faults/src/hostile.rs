//! Hostile requests, written as raw bytes (an HTTP client library refuses most of them): many
//! headers, quotes, `<` and backticks, oversized URLs and headers, invalid UTF-8, CR/LF, odd
//! `Host` values, odd methods. Each aims at a cacheable path, so the filter calls out for it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hzcache_e2e::loopback;

/// One hostile request: a name and the request head (request line and header lines, without
/// the final blank line) for a cacheable path `p`.
pub struct Hostile {
    pub name: &'static str,
    pub head: Vec<u8>,
}

fn get(target: &[u8], host: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut head = b"GET ".to_vec();
    head.extend_from_slice(target);
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(host);
    for line in extra {
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(line);
    }
    head
}

fn cat(a: &str, b: &[u8]) -> Vec<u8> {
    let mut v = a.as_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// Every hostile request, for paths under `prefix` (e.g. `/f/TAG`).
pub fn all(prefix: &str) -> Vec<Hostile> {
    let p = |k: &str| format!("{prefix}/hostile-{k}");
    let host: &[u8] = b"faults.example";
    let headers = |n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("x-h{i}: v{i}").into_bytes())
            .collect()
    };
    let mut v = vec![
        Hostile {
            name: "86 headers",
            head: get(p("h86").as_bytes(), host, &headers(86)),
        },
        Hostile {
            name: "95 headers",
            head: get(p("h95").as_bytes(), host, &headers(95)),
        },
        Hostile {
            name: "quote in query",
            head: get(format!("{}?a=\"b\"", p("q")).as_bytes(), host, &[]),
        },
        Hostile {
            name: "quote in path",
            head: get(format!("{}/\"q\"", p("qp")).as_bytes(), host, &[]),
        },
        Hostile {
            name: "< in path",
            head: get(format!("{}/<x>", p("lt")).as_bytes(), host, &[]),
        },
        Hostile {
            name: "backtick in path",
            head: get(format!("{}/`x`", p("bt")).as_bytes(), host, &[]),
        },
        Hostile {
            name: "8 KiB URL",
            head: get(
                format!("{}/{}", p("u8k"), "u".repeat(8 * 1024)).as_bytes(),
                host,
                &[],
            ),
        },
        Hostile {
            name: "62 KiB URL",
            head: get(
                format!("{}/{}", p("u62k"), "u".repeat(62 * 1024)).as_bytes(),
                host,
                &[],
            ),
        },
        Hostile {
            name: "32 KiB header",
            head: get(
                p("big").as_bytes(),
                host,
                &[format!("x-big: {}", "b".repeat(32 * 1024)).into_bytes()],
            ),
        },
        Hostile {
            name: "70 KiB of headers",
            head: get(
                p("huge").as_bytes(),
                host,
                &[
                    format!("x-big1: {}", "b".repeat(35 * 1024)).into_bytes(),
                    format!("x-big2: {}", "b".repeat(35 * 1024)).into_bytes(),
                ],
            ),
        },
        Hostile {
            name: "invalid UTF-8 path",
            head: get(&cat(&p("utf8p"), b"/\xff\xfe\xc3\x28"), host, &[]),
        },
        Hostile {
            name: "invalid UTF-8 query",
            head: get(
                &cat(&format!("{}?a=", p("utf8q")), b"\xc3\x28\xff"),
                host,
                &[],
            ),
        },
        Hostile {
            name: "invalid UTF-8 header",
            head: get(
                p("utf8h").as_bytes(),
                host,
                &[b"x-bin: \xff\xfe\x80 \xed\xa0\x80".to_vec()],
            ),
        },
        Hostile {
            name: "%0D%0A in path",
            head: get(
                format!("{}/a%0d%0aSet-Cookie:%20x=y", p("crlfp")).as_bytes(),
                host,
                &[],
            ),
        },
        Hostile {
            name: "%0D%0A in query",
            head: get(
                format!("{}?a=%0D%0AX-Injected:%201", p("crlfq")).as_bytes(),
                host,
                &[],
            ),
        },
        Hostile {
            name: "bare CR in a header",
            head: get(p("cr").as_bytes(), host, &[b"x-a: b\rc".to_vec()]),
        },
        Hostile {
            name: "empty Host",
            head: get(p("host0").as_bytes(), b"", &[]),
        },
        Hostile {
            name: "Host with a space",
            head: get(p("host1").as_bytes(), b"a b.example", &[]),
        },
        Hostile {
            name: "Host with a bad port",
            head: get(p("host2").as_bytes(), b"faults.example:99999", &[]),
        },
        Hostile {
            name: "Host with userinfo",
            head: get(p("host3").as_bytes(), b"user@evil.example", &[]),
        },
        Hostile {
            name: "Host [::1",
            head: get(p("host4").as_bytes(), b"[::1", &[]),
        },
        Hostile {
            name: "2 KiB Host",
            head: get(p("host5").as_bytes(), "h".repeat(2048).as_bytes(), &[]),
        },
        Hostile {
            name: "non-ASCII Host",
            head: get(p("host6").as_bytes(), b"ex\xc3\xa4mple.\xff", &[]),
        },
        Hostile {
            name: "two Hosts",
            head: get(
                p("host7").as_bytes(),
                host,
                &[b"host: other.example".to_vec()],
            ),
        },
        Hostile {
            name: "absolute-form URL",
            head: get(
                format!("http://other.example{}", p("abs")).as_bytes(),
                host,
                &[],
            ),
        },
    ];
    for (name, method) in [
        ("method PURGE", "PURGE".to_string()),
        ("method FOO", "FOO".to_string()),
        ("method get", "get".to_string()),
        ("method M-SEARCH", "M-SEARCH".to_string()),
        ("64-byte method", "X".repeat(64)),
    ] {
        let mut head = format!("{method} {} HTTP/1.1\r\nhost: faults.example", p("m")).into_bytes();
        head.shrink_to_fit();
        v.push(Hostile { name, head });
    }
    v
}

/// Sends `head` with `Connection: close` to 127.0.0.1:`port` and reads the answer's head and
/// its `Content-Length` body (not to the end of the stream: after an error answer Envoy waits
/// up to its delayed-close timeout for the client to close first); the status, or 0 when the
/// connection closed without one.
pub fn send(port: u16, head: &[u8]) -> u16 {
    exchange(port, head).0
}

/// [`send`], returning the answer's `x-cache` (None when absent or no answer).
pub fn send_for_cache(port: u16, head: &[u8]) -> Option<String> {
    exchange(port, head).1
}

fn exchange(port: u16, head: &[u8]) -> (u16, Option<String>) {
    let Ok(mut stream) = TcpStream::connect_timeout(&loopback(port), Duration::from_secs(2)) else {
        return (0, None);
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = head.to_vec();
    request.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
    // Envoy may answer (431, 400) and close before it has read everything.
    let _ = stream.write_all(&request);
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(&response, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if response.len() >= end + 4 + length {
                break;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let line = response.split(|&b| b == b'\r').next().unwrap_or_default();
    let status = std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let end = find(&response, b"\r\n\r\n").unwrap_or(response.len());
    let cache = String::from_utf8_lossy(&response[..end])
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-cache")
                .then(|| value.trim().to_string())
        });
    (status, cache)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
