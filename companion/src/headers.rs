//! Which headers travel where: what the companion forwards to the origin, what it stores with an
//! entry, and what it relays to the filter. Hop-by-hop headers (RFC 9110 §7.6.1) and headers
//! named in `Connection` never cross a hop; `x-hzcache-*` control headers never leave the
//! filter–companion exchange.

use hyper::header::{HeaderMap, HeaderName, CONNECTION};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn named_in_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Copies `headers` without hop-by-hop ones, those named in `Connection`, and those `drop`
/// says no to.
fn filtered(headers: &HeaderMap, drop: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let listed = named_in_connection(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || listed.iter().any(|l| l == n) || drop(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The client's headers as the companion forwards them to the origin.
pub fn strip_for_origin(client: &HeaderMap) -> HeaderMap {
    filtered(client, |n| {
        let n = n.as_str();
        n.starts_with("x-hzcache-")
            || n.starts_with("x-envoy-")
            || n == "host"
            || n == "content-length"
            || n == "expect"
    })
}

/// The origin's response headers as stored with an entry and relayed to the client.
/// `content-length` is left out (Envoy sets it for the local reply); `age` and `x-cache` are
/// the cache's own to set.
pub fn strip_for_client(origin: &HeaderMap) -> HeaderMap {
    filtered(origin, |n| {
        let n = n.as_str();
        n.starts_with("x-hzcache-") || n == "content-length" || n == "age" || n == "x-cache"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn hop_by_hop_and_connection_named_headers_never_reach_the_origin() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-hzcache-key", HeaderValue::from_static("k"));
        h.insert(
            "x-envoy-expected-rq-timeout-ms",
            HeaderValue::from_static("5"),
        );
        h.insert("host", HeaderValue::from_static("companion"));
        h.insert("accept", HeaderValue::from_static("text/html"));
        let out = strip_for_origin(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("accept"));
    }

    #[test]
    fn stored_headers_keep_end_to_end_fields_only() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("age", HeaderValue::from_static("3"));
        h.insert("etag", HeaderValue::from_static("\"a\""));
        let out = strip_for_client(&h);
        let names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["content-type", "etag"]);
    }
}
