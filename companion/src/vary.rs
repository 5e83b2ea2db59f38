//! Responses that vary (RFC 9111 §4.1): which request values select a variant and how they are
//! normalised, the Hazelcast key each variant lives under, what the primary key holds (an entry
//! of its own, or the variant index `HZCV` naming the Vary fields and a generation), and which
//! generation a newly stored variant joins. What `Vary` means in HTTP (the names a response
//! varies on, the weighted lists normalised by meaning, languages) is `http::vary`'s; the index
//! and entry byte layouts are `entry`'s. Pure: the lookups themselves are the cache flow's.
//!
//! A variant is found in two steps: the primary key gives the index; the request's values of
//! its names give the variant key; the entry found there names the values it was stored for,
//! and they must equal the request's (so a hash collision is a miss, never another client's
//! variant).

use bytes::Bytes;
use hyper::header::HeaderMap;

use crate::entry::{Entry, VaryIndex, ABSENT};
use crate::http::syntax::trim;
use crate::http::vary::normalise_weighted;

/// The request's values of the fields a response varies on, normalised: field lines joined
/// with ",", whitespace around commas removed; an absent field is `ABSENT`. `Accept-Language`
/// and `Accept-Encoding` are normalised by meaning ([`normalise_weighted`], RFC 9111 §4.1),
/// so requests that differ only in order, case, spacing or how a q-value is written share
/// a variant.
pub fn select_vary(request: &HeaderMap, names: &[String]) -> Vec<(String, Bytes)> {
    names
        .iter()
        .map(|n| {
            let mut parts: Vec<&[u8]> = Vec::new();
            for v in request.get_all(n.as_str()) {
                parts.extend(v.as_bytes().split(|&b| b == b',').map(trim));
            }
            let value = if !request.contains_key(n.as_str()) {
                Bytes::from_static(ABSENT)
            } else if n == "accept-language" || n == "accept-encoding" {
                Bytes::from(normalise_weighted(&parts))
            } else {
                Bytes::from(parts.join(&b","[..]))
            };
            (n.clone(), value)
        })
        .collect()
}

/// The marker a language alias variant's `accept-language` value starts with: a control
/// character, which no request field value can hold, so no request selects it by itself.
pub const LANGUAGE_ALIAS: &[u8] = b"\x01content-language=";

/// `selected` with its `accept-language` value replaced by the alias of `language`: the
/// variant a request whose top preference is `language` may reuse (RFC 9111 §4.1 lets a cache
/// use what it knows of a field's semantics). `None` when the response does not vary on
/// `Accept-Language`.
pub fn language_alias(
    selected: &[(String, Bytes)],
    language: &str,
) -> Option<Vec<(String, Bytes)>> {
    if !selected.iter().any(|(n, _)| n == "accept-language") {
        return None;
    }
    Some(
        selected
            .iter()
            .map(|(n, v)| {
                if n == "accept-language" {
                    let mut alias = LANGUAGE_ALIAS.to_vec();
                    alias.extend_from_slice(language.as_bytes());
                    (n.clone(), Bytes::from(alias))
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect(),
    )
}

/// The Hazelcast key of one variant: the primary key, NUL, `v:`, the index generation and a
/// hash of the selected request values. The entry itself carries the values, so a hash
/// collision is a miss, never a wrong variant.
pub fn variant_key(key: &str, id: u64, selected: &[(String, Bytes)]) -> String {
    // FNV-1a 64: stable across processes and versions (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, v) in selected {
        for b in n.bytes().chain([0u8]).chain(v.iter().copied()).chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{key}\0v:{id:016x}:{h:016x}")
}

/// Decodes what the primary key holds, for envelope maps: an entry without variants, or a
/// variant index (then `None` plus the index: the caller fetches the variant).
pub fn decode_primary(b: &Bytes) -> (Option<Entry>, Option<VaryIndex>) {
    match VaryIndex::decode(b) {
        Ok(Some(index)) => (None, Some(index)),
        Ok(None) => match Entry::decode(b) {
            Ok(e) if e.vary.is_empty() => (Some(e), None),
            _ => (None, None),
        },
        Err(_) => (None, None),
    }
}

/// The generation a new variant with these Vary `names` joins: the existing index's, when it
/// names the same fields (so the variants stored before stay reachable); `None`: start a new
/// generation (a new index orphans the old variants, which expire with their TTL).
pub fn generation_to_join(existing: Option<&VaryIndex>, names: &[String]) -> Option<u64> {
    existing.filter(|i| i.names == names).map(|i| i.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::lifetime::Freshness;
    use crate::http::vary::{content_language, top_language};
    use hyper::header::HeaderValue;

    #[test]
    fn a_primary_value_is_an_entry_an_index_or_nothing() {
        let e = Entry {
            status: 200,
            freshness: Freshness {
                lifetime_secs: 1,
                ..Freshness::default()
            },
            vary: vec![],
            tags: vec![],
            headers: vec![("etag".into(), Bytes::from_static(b"\"v\""))],
            body: Bytes::from_static(b"hello"),
        };
        let (got, idx) = decode_primary(&e.encode().unwrap());
        assert_eq!(got, Some(e.clone()));
        assert!(idx.is_none());
        let i = VaryIndex {
            id: 7,
            names: vec!["accept".into()],
        };
        let (got, idx) = decode_primary(&i.encode().unwrap());
        assert!(got.is_none());
        assert_eq!(idx, Some(i));
        // A variant stored under the primary key (never written so) is not served.
        let mut v = e;
        v.vary = vec![("accept".into(), Bytes::from_static(b"x"))];
        assert_eq!(decode_primary(&v.encode().unwrap()), (None, None));
        assert_eq!(
            decode_primary(&Bytes::from_static(b"garbage")),
            (None, None)
        );
    }

    #[test]
    fn vary_selection_normalises_lines_and_marks_absent_fields() {
        let mut h = HeaderMap::new();
        h.append("accept-language", HeaderValue::from_static("de ,  en"));
        h.append("accept-language", HeaderValue::from_static("fr"));
        let s = select_vary(&h, &["accept-language".into(), "user-agent".into()]);
        assert_eq!(s[0].1, "de,en,fr");
        assert_eq!(s[1].1, Bytes::from_static(ABSENT));
        let mut h2 = HeaderMap::new();
        h2.insert("accept-language", HeaderValue::from_static("de,en, fr"));
        assert_eq!(select_vary(&h2, &["accept-language".into()])[0], s[0]);
    }

    #[test]
    fn rfc9111_4_1_accept_language_and_encoding_are_normalised_by_meaning() {
        let sel = |name: &str, v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
            select_vary(&h, &[name.to_string()])[0].1.clone()
        };
        let al = |v| sel("accept-language", v);
        assert_eq!(al("en-US, de;q=0.5"), "en-us,de;q=0.5");
        for same in [
            "de;q=0.5, en-US",
            "EN-us,DE;Q=0.50",
            "en-US;q=1.0 , de ; q=0.500",
            "en-US,de;q=0.5,en-US;q=0.1",
        ] {
            assert_eq!(al(same), al("en-US, de;q=0.5"), "{same}");
        }
        assert_eq!(al("fr, de"), al("de, fr"), "equal weights carry no order");
        assert_ne!(al("en, de;q=0.5"), al("de, en;q=0.5"));
        assert_eq!(al("de;q=0"), "de;q=0");
        let ae = |v| sel("accept-encoding", v);
        assert_eq!(ae("gzip, br"), ae("BR,gzip"));
        assert_eq!(
            ae("gzip;q=1.000, identity;q=0.001"),
            "gzip,identity;q=0.001"
        );
        // Other fields keep the join-and-trim normalisation: their order may mean something.
        let ua = |v| sel("user-agent", v);
        assert_ne!(ua("a, b"), ua("b, a"));
    }

    #[test]
    fn rfc9110_12_5_4_the_top_language_is_the_one_range_preferred_above_all() {
        let top = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("accept-language", HeaderValue::from_static(v));
            top_language(&h)
        };
        assert_eq!(top("de, en;q=0.5").as_deref(), Some("de"));
        assert_eq!(top("en;q=0.4, DE-ch;q=0.9").as_deref(), Some("de-ch"));
        assert_eq!(top("de, en"), None, "a tie leaves the choice to the origin");
        assert_eq!(top("*"), None);
        assert_eq!(top("de;q=0"), None);
        assert_eq!(top_language(&HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert("content-language", HeaderValue::from_static("DE"));
        assert_eq!(content_language(&h).as_deref(), Some("de"));
        h.insert("content-language", HeaderValue::from_static("de, en"));
        assert_eq!(content_language(&h), None);
        let sel = vec![
            ("accept".to_string(), Bytes::from_static(b"x")),
            (
                "accept-language".to_string(),
                Bytes::from_static(b"de,en;q=0.5"),
            ),
        ];
        let alias = language_alias(&sel, "de").unwrap();
        assert_eq!(alias[0], sel[0]);
        assert!(alias[1].1.starts_with(LANGUAGE_ALIAS));
        assert!(language_alias(&sel[..1], "de").is_none());
    }

    #[test]
    fn a_new_variant_joins_the_generation_of_an_index_with_the_same_names() {
        let i = VaryIndex {
            id: 9,
            names: vec!["accept".into()],
        };
        assert_eq!(generation_to_join(Some(&i), &["accept".into()]), Some(9));
        assert_eq!(generation_to_join(Some(&i), &["user-agent".into()]), None);
        assert_eq!(generation_to_join(None, &["accept".into()]), None);
    }

    #[test]
    fn variant_keys_depend_on_generation_and_values() {
        let a = vec![("accept".to_string(), Bytes::from_static(b"text/html"))];
        let b = vec![("accept".to_string(), Bytes::from_static(b"text/plain"))];
        assert_eq!(variant_key("k", 1, &a), variant_key("k", 1, &a));
        assert_ne!(variant_key("k", 1, &a), variant_key("k", 1, &b));
        assert_ne!(variant_key("k", 1, &a), variant_key("k", 2, &a));
        assert!(variant_key("k", 1, &a).starts_with("k\0v:0000000000000001:"));
    }
}
