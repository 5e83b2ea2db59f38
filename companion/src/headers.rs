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
        if never_crosses(name, &listed) || drop(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Hop-by-hop: in the fixed list or named in `Connection` (`listed`).
fn never_crosses(name: &HeaderName, listed: &[String]) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n) || listed.iter().any(|l| l == n)
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
            // The cache asks for the whole response and answers the client's conditional
            // and range requests itself (a single byte range from a stored 200 or piece,
            // `http::range`, `http::partial`; otherwise the whole 200, always a valid answer
            // to Range). The cache's own Range for a piece's missing bytes is added apart.
            || CONDITIONAL.contains(&n)
    })
}

/// Request fields that make a request conditional or partial (RFC 9110 §13.1, §14.2).
pub const CONDITIONAL: [&str; 6] = [
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// Response fields meant for this cache only, never relayed to the client: the targeted
/// field of hzcache's own name and the purge tags (Fastly and Cloudflare strip theirs too).
pub const CACHE_ONLY: [&str; 3] = ["hzcache-cache-control", "cache-tag", "surrogate-key"];

/// Purge tags from `Cache-Tag` (comma-separated) and `Surrogate-Key` (space-separated),
/// de-duplicated, each at most `MAX_TAG_BYTES`, at most `MAX_TAGS` of them; longer or
/// non-ASCII tags are dropped (a tag is matched exactly, so a cut one would be wrong).
pub fn purge_tags(origin: &HeaderMap) -> Vec<String> {
    use crate::entry::{MAX_TAGS, MAX_TAG_BYTES};
    let mut tags: Vec<String> = Vec::new();
    let lines = origin
        .get_all("cache-tag")
        .iter()
        .map(|v| (v, ','))
        .chain(origin.get_all("surrogate-key").iter().map(|v| (v, ' ')));
    for (value, sep) in lines {
        let Ok(text) = value.to_str() else { continue };
        for t in text.split(sep).map(str::trim) {
            if t.is_empty() || t.len() > MAX_TAG_BYTES || tags.iter().any(|x| x == t) {
                continue;
            }
            if tags.len() == MAX_TAGS {
                return tags;
            }
            tags.push(t.to_string());
        }
    }
    tags
}

/// A stored response's headers updated from a 304 (RFC 9111 §3.2): each field of the 304
/// replaces the stored one of that name, except `content-length` and the fields that are
/// never stored.
pub fn merge_not_modified(stored: &HeaderMap, fresh: &HeaderMap) -> HeaderMap {
    let update = strip_for_storage(fresh);
    let mut out = stored.clone();
    for name in update.keys() {
        out.remove(name);
    }
    for (name, value) in &update {
        out.append(name.clone(), value.clone());
    }
    out
}

/// The origin's response headers as stored with an entry: like [`strip_for_client`] but
/// keeping the cache-only fields (the entry needs its tags and targeted directives when it
/// is revalidated).
pub fn strip_for_storage(origin: &HeaderMap) -> HeaderMap {
    filtered(origin, |n| {
        let n = n.as_str();
        n.starts_with("x-hzcache-") || n == "content-length" || n == "age" || n == "x-cache"
    })
}

/// Fields a client never gets from the cache: `content-length` (Envoy sets it for the local
/// reply), `age` and `x-cache` (the cache's own to set), the cache-only fields and control
/// headers.
fn not_for_client(n: &HeaderName) -> bool {
    let n = n.as_str();
    n.starts_with("x-hzcache-")
        || n == "content-length"
        || n == "age"
        || n == "x-cache"
        || CACHE_ONLY.contains(&n)
}

/// The origin's response headers as stored with an entry and relayed to the client.
/// `content-length` is left out (Envoy sets it for the local reply); `age` and `x-cache` are
/// the cache's own to set.
pub fn strip_for_client(origin: &HeaderMap) -> HeaderMap {
    filtered(origin, not_for_client)
}

/// [`strip_for_client`] on a map the caller owns: the same fields go, without copying the
/// ones that stay (the hit path builds one map per answer, not two).
pub fn strip_for_client_in_place(headers: &mut HeaderMap) {
    let listed = named_in_connection(headers);
    let unwanted: Vec<HeaderName> = headers
        .keys()
        .filter(|name| never_crosses(name, &listed) || not_for_client(name))
        .cloned()
        .collect();
    for name in unwanted {
        headers.remove(name);
    }
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

    #[test]
    fn stripping_in_place_drops_what_a_stripped_copy_drops() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("cache-tag", HeaderValue::from_static("t"));
        h.insert("age", HeaderValue::from_static("3"));
        h.insert("content-length", HeaderValue::from_static("5"));
        h.append("etag", HeaderValue::from_static("\"a\""));
        h.append("vary", HeaderValue::from_static("accept"));
        h.append("vary", HeaderValue::from_static("accept-language"));
        let copy = strip_for_client(&h);
        strip_for_client_in_place(&mut h);
        assert_eq!(h, copy);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn conditional_and_range_fields_never_reach_the_origin() {
        let mut h = HeaderMap::new();
        for n in CONDITIONAL {
            h.insert(n, HeaderValue::from_static("x"));
        }
        h.insert("accept", HeaderValue::from_static("*/*"));
        assert_eq!(strip_for_origin(&h).len(), 1);
    }

    #[test]
    fn cache_only_fields_are_stored_but_never_relayed() {
        let mut h = HeaderMap::new();
        h.insert(
            "hzcache-cache-control",
            HeaderValue::from_static("max-age=9"),
        );
        h.insert("surrogate-key", HeaderValue::from_static("a b"));
        h.insert("cache-tag", HeaderValue::from_static("c"));
        h.insert("cdn-cache-control", HeaderValue::from_static("max-age=9"));
        assert_eq!(strip_for_client(&h).len(), 1);
        assert_eq!(strip_for_storage(&h).len(), 4);
    }

    #[test]
    fn purge_tags_come_from_cache_tag_and_surrogate_key_bounded() {
        let mut h = HeaderMap::new();
        h.append("cache-tag", HeaderValue::from_static("a, b ,,a"));
        h.append("surrogate-key", HeaderValue::from_static("c  b d"));
        assert_eq!(purge_tags(&h), vec!["a", "b", "c", "d"]);
        let many = (0..200)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut h = HeaderMap::new();
        h.insert("cache-tag", HeaderValue::from_str(&many).unwrap());
        h.append(
            "cache-tag",
            HeaderValue::from_str(&"x".repeat(300)).unwrap(),
        );
        assert_eq!(purge_tags(&h).len(), crate::entry::MAX_TAGS);
    }

    #[test]
    fn a_304_replaces_stored_fields_but_not_content_length() {
        let mut stored = HeaderMap::new();
        stored.insert("etag", HeaderValue::from_static("\"a\""));
        stored.insert("cache-control", HeaderValue::from_static("max-age=1"));
        stored.insert("content-type", HeaderValue::from_static("text/plain"));
        let mut fresh = HeaderMap::new();
        fresh.insert("cache-control", HeaderValue::from_static("max-age=60"));
        fresh.insert("content-length", HeaderValue::from_static("0"));
        fresh.insert("connection", HeaderValue::from_static("close"));
        let out = merge_not_modified(&stored, &fresh);
        assert_eq!(out["cache-control"], "max-age=60");
        assert_eq!(out["etag"], "\"a\"");
        assert_eq!(out["content-type"], "text/plain");
        assert!(!out.contains_key("content-length") && !out.contains_key("connection"));
    }
}
