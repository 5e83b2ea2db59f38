//! Property tests over the filter's pure modules: configuration, keys and the callout never
//! panic on arbitrary input (style habit 5), and the key encoding keeps its contract; the
//! host's serialized header maps are parsed without panicking, whatever the bytes.

use hzcache_filter::abi::{parse_pairs, serialize_pairs};
use hzcache_filter::callout::{classify, plan, Reply};
use hzcache_filter::config::{parse, KeySource, KeySpec};
use hzcache_filter::key::{cache_key, encode_key, normalise_query, KeyInput, MAX_KEY_LEN};
use hzcache_filter::url::percent_decode;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// JSON built from the schema's own field names and value shapes, so generated documents get
/// past the first unknown-field check and exercise validation in depth.
fn schema_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "companion",
        "cluster",
        "authority",
        "timeout_ms",
        "breaker",
        "failures",
        "cooldown_ms",
        "rules",
        "name",
        "match",
        "path_prefix",
        "methods",
        "host",
        "key",
        "default",
        "query_param",
        "prefix",
        "map",
        "mode",
        "value_type",
        "content_type",
        "ttl_seconds",
        "origin",
        "log_level",
        "bogus",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..70_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "",
            "/",
            "/data",
            "GET",
            "HEAD",
            "POST",
            "body",
            "envelope",
            "string",
            "bytes",
            "debug",
            "example.com",
            "a:1",
            "caché",
            "x\n",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..8).prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

fn header_list() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            ":method",
            ":path",
            ":authority",
            ":status",
            "connection",
            "host",
            "content-length",
            "x-hzcache-outcome",
            "x-hzcache-key",
            "te",
            "cookie",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z:-]{0,10}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "GET",
            "HEAD",
            "/",
            "/data?key=a%20b",
            "/p?b=1&a=2",
            "hit",
            "miss",
            "pass",
            "200",
            "999",
            "close, cookie",
            "example.com:80",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    prop::collection::vec((name, value), 0..12)
}

proptest! {
    #[test]
    fn config_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn config_parser_never_panics_on_schema_like_json(doc in schema_json()) {
        if let Err(e) = parse(doc.to_string().as_bytes()) {
            prop_assert!(!e.path.is_empty());
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn keys_never_panic_and_respect_the_limit(
        authority in ".{0,20}",
        path in ".{0,200}",
        param in "[a-z]{1,4}",
        prefix in ".{0,8}",
    ) {
        let qp = KeySource::QueryParam { name: param.clone(), path: "/d".into() };
        for source in [KeySource::Default, qp] {
            let spec = KeySpec { source, prefix: prefix.clone() };
            let input = KeyInput { scheme: "http", authority: &authority, path: &path, rule_host: None, cookies: &[] };
            if let Ok(keyed) = cache_key(&spec, &input) {
                prop_assert!(keyed.key.len() <= MAX_KEY_LEN);
                prop_assert!(keyed.key.starts_with(&prefix));
                prop_assert!(keyed.origin_path.starts_with('/'));
            }
        }
    }

    #[test]
    fn encoded_keys_are_header_safe_and_decode_back(key in any::<String>()) {
        let encoded = encode_key(&key);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
        prop_assert_eq!(percent_decode(&encoded, false), key.as_bytes().to_vec());
    }

    #[test]
    fn query_normalisation_orders_names_and_keeps_each_names_values_in_order(
        params in prop::collection::vec("[a-c]{0,2}(=[a-c%0-9]{0,3})?", 0..6),
    ) {
        let query = params.join("&");
        let once = normalise_query(&query);
        prop_assert_eq!(normalise_query(&once), once.clone());
        let name = |p: &str| p.split_once('=').map_or(p, |(n, _)| n).to_string();
        let kept: Vec<&String> = params.iter().filter(|p| !p.is_empty()).collect();
        let out: Vec<&str> = once.split('&').filter(|p| !p.is_empty()).collect();
        prop_assert_eq!(out.len(), kept.len());
        // Sorted by name, and for each name its values in the client's order.
        prop_assert!(out.windows(2).all(|w| name(w[0]) <= name(w[1])));
        for n in kept.iter().map(|p| name(p)) {
            let before: Vec<&str> = kept.iter().filter(|p| name(p) == n).map(|p| p.as_str()).collect();
            let after: Vec<&str> = out.iter().filter(|p| name(p) == n).copied().collect();
            prop_assert_eq!(before, after);
        }
    }

    #[test]
    fn callout_planning_never_panics(headers in header_list(), eos in any::<bool>()) {
        let config = parse(br#"{"rules": [
            {"match": {"path_prefix": "/data", "methods": ["GET", "HEAD"]}, "key": {"query_param": "key"}},
            {"match": {"host": "example.com"}}, {}]}"#).unwrap();
        if let Ok(plan) = plan(&config, &headers, eos) {
            // Exactly one of each instruction: none came from the client.
            for name in ["x-hzcache-map", "x-hzcache-key", "x-hzcache-request-path"] {
                prop_assert_eq!(plan.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count(), 1);
            }
            // No secret is configured, so no client can make one appear.
            prop_assert!(!plan.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("x-hzcache-auth")));
        }
    }

    #[test]
    fn reply_classification_never_panics(headers in header_list(), body in prop::collection::vec(any::<u8>(), 0..16)) {
        if let Reply::Serve { status, headers, .. } = classify(&headers, body) {
            prop_assert!((100..=599).contains(&status));
            prop_assert!(headers.iter().all(|(n, _)| !n.starts_with(':') && !n.to_ascii_lowercase().starts_with("x-hzcache-")));
        }
    }
}

/// A serialized header map with its sizes table built from small arbitrary numbers, so inputs
/// get past the count check and exercise the per-entry bounds checks.
fn pairs_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        0u32..6,
        prop::collection::vec(0u32..12, 0..12),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(count, sizes, data)| {
            let mut bytes = count.to_le_bytes().to_vec();
            for size in sizes {
                bytes.extend_from_slice(&size.to_le_bytes());
            }
            bytes.extend_from_slice(&data);
            bytes
        })
}

proptest! {
    #[test]
    fn header_map_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_pairs(&bytes);
    }

    #[test]
    fn header_map_parser_never_panics_on_map_like_bytes(bytes in pairs_like_bytes()) {
        if let Ok(headers) = parse_pairs(&bytes) {
            // Whatever parses is exactly what serializes back.
            prop_assert_eq!(serialize_pairs(&headers).unwrap(), bytes);
        }
    }

    #[test]
    fn serialized_header_maps_parse_back_and_no_prefix_parses(
        headers in header_list(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = serialize_pairs(&headers).unwrap();
        prop_assert_eq!(parse_pairs(&bytes).unwrap(), headers);
        let len = cut.index(bytes.len());
        if len > 0 {
            prop_assert!(parse_pairs(&bytes[..len]).is_err());
        }
        let mut flipped = bytes.clone();
        let at = flip.index(flipped.len());
        flipped[at] ^= 1 << bit;
        let _ = parse_pairs(&flipped);
    }
}
