//! The admin purge API and the unsafe-method invalidation callout, as pure parsing and checks:
//! bearer-token authentication compared in constant time, and the targets a request names.
//! The deletions themselves are `Cache::invalidate` and `Cache::purge` in `store.rs` (they act
//! on Hazelcast, so every companion sees them at once).
//!
//! - `POST /admin/purge?map=M&key=K` (values percent-encoded) with `Authorization: Bearer
//!   TOKEN`: removes that key's entry (and, through the variant index, all its variants);
//!   `prefix=P` instead of `key=` removes every key starting with P (a walk over the map's keys
//!   with Map.FetchKeys), `tag=T` every entry tagged T (a walk over the tag index `M:tags`).
//! - `POST /v1/invalidate` from the filter: one `x-hzcache-invalidate: MAP KEY` line per target
//!   (both percent-encoded), at most [`MAX_INVALIDATE_TARGETS`].

use hyper::header::{HeaderMap, AUTHORIZATION};

use crate::fetch_request::decode_key;
use crate::secret::Secret;

/// Keys per page of a prefix or tag purge (one `Map.FetchKeys` request). A thousand keys of at
/// most 8 KiB each bound a page's memory (and the Hazelcast reader's message limit is sized
/// to fit one: `config::reader_limits`), while small keys make a request per thousand.
pub const PURGE_PAGE_KEYS: i32 = 1000;

/// Targets per invalidation callout: the request URL plus Location and Content-Location, each
/// possibly under a few rules. More is not something the filter sends.
pub const MAX_INVALIDATE_TARGETS: usize = 16;

/// Why an admin request is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("the admin API is off (no admin token configured)")]
    Off,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// Checks `Authorization: Bearer TOKEN` against the configured token (in constant time).
pub fn authorize(headers: &HeaderMap, token: Option<&Secret>) -> Result<(), AdminError> {
    let token = token.ok_or(AdminError::Off)?;
    let mut lines = headers.get_all(AUTHORIZATION).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err(AdminError::Unauthorized);
    };
    let v = line.as_bytes();
    let given = match v.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &v[7..],
        _ => return Err(AdminError::Unauthorized),
    };
    if token.matches(given) {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

/// What a purge request names.
#[derive(Debug, PartialEq, Eq)]
pub enum PurgeTarget {
    /// One key (and all its variants).
    Key { map: String, key: String },
    /// Every key that starts with `prefix` (walks the map's keys).
    Prefix { map: String, prefix: String },
    /// Every entry whose response carried this `Cache-Tag` / `Surrogate-Key` (walks the tag
    /// index).
    Tag { map: String, tag: String },
}

impl PurgeTarget {
    pub fn map(&self) -> &str {
        match self {
            PurgeTarget::Key { map, .. }
            | PurgeTarget::Prefix { map, .. }
            | PurgeTarget::Tag { map, .. } => map,
        }
    }
}

/// Reads `map=` and exactly one of `key=`, `prefix=`, `tag=` from the query (percent-encoded
/// values).
pub fn purge_target(query: Option<&str>) -> Result<PurgeTarget, AdminError> {
    let (mut map, mut key, mut prefix, mut tag) = (None, None, None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = hzcache_contract::key::decode_key(&value.replace('+', " "))
            .ok_or_else(|| AdminError::BadRequest(format!("{name}: bad percent-encoding")))?;
        match name {
            "map" => map = Some(value),
            "key" => key = Some(value),
            "prefix" => prefix = Some(value),
            "tag" => tag = Some(value),
            other => {
                return Err(AdminError::BadRequest(format!(
                    "unknown parameter '{other}'"
                )))
            }
        }
    }
    let map = map
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .ok_or_else(|| AdminError::BadRequest("map: 1 to 255 bytes required".into()))?;
    let bounded = |name: &str, v: &String| {
        if v.is_empty() || v.len() > crate::fetch_request::MAX_KEY_BYTES {
            Err(AdminError::BadRequest(format!(
                "{name}: 1 to 8192 bytes required"
            )))
        } else {
            Ok(())
        }
    };
    match (key, prefix, tag) {
        (Some(key), None, None) => bounded("key", &key).map(|()| PurgeTarget::Key { map, key }),
        (None, Some(prefix), None) => {
            bounded("prefix", &prefix).map(|()| PurgeTarget::Prefix { map, prefix })
        }
        (None, None, Some(tag)) => bounded("tag", &tag).map(|()| PurgeTarget::Tag { map, tag }),
        _ => Err(AdminError::BadRequest(
            "give exactly one of key=, prefix=, tag=".into(),
        )),
    }
}

/// The (map, key) pairs of an invalidation callout.
pub fn invalidate_targets(headers: &HeaderMap) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in headers.get_all("x-hzcache-invalidate") {
        if out.len() == MAX_INVALIDATE_TARGETS {
            return Err(format!("more than {MAX_INVALIDATE_TARGETS} targets"));
        }
        let text = line
            .to_str()
            .map_err(|_| "x-hzcache-invalidate: not ASCII")?;
        let (map, key) = text
            .split_once(' ')
            .ok_or("x-hzcache-invalidate: expected 'MAP KEY'")?;
        let map =
            hzcache_contract::key::decode_key(map).filter(|m| !m.is_empty() && m.len() <= 255);
        let map = map.ok_or("x-hzcache-invalidate: bad map")?;
        let key = decode_key(key).map_err(|e| format!("x-hzcache-invalidate: key {e}"))?;
        out.push((map, key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn token() -> Secret {
        Secret::new("0123456789abcdef").unwrap()
    }

    fn auth(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn the_admin_api_is_off_without_a_token_and_needs_the_exact_bearer_token() {
        assert_eq!(
            authorize(&auth("Bearer 0123456789abcdef"), None),
            Err(AdminError::Off)
        );
        assert_eq!(
            authorize(&auth("Bearer 0123456789abcdef"), Some(&token())),
            Ok(())
        );
        assert_eq!(
            authorize(&auth("bearer 0123456789abcdef"), Some(&token())),
            Ok(())
        );
        for bad in [
            "Bearer 0123456789abcdeF",
            "Bearer 0123456789abcde",
            "Basic 0123456789abcdef",
            "Bearer",
            "",
        ] {
            assert_eq!(
                authorize(&auth(bad), Some(&token())),
                Err(AdminError::Unauthorized),
                "{bad}"
            );
        }
        assert_eq!(
            authorize(&HeaderMap::new(), Some(&token())),
            Err(AdminError::Unauthorized)
        );
        let mut two = auth("Bearer 0123456789abcdef");
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(
            authorize(&two, Some(&token())),
            Err(AdminError::Unauthorized)
        );
    }

    #[test]
    fn purge_targets_are_read_from_the_query() {
        assert_eq!(
            purge_target(Some("map=hzcache&key=h%2Fa%20b")),
            Ok(PurgeTarget::Key {
                map: "hzcache".into(),
                key: "h/a b".into()
            })
        );
        for bad in [
            None,
            Some("map=m"),
            Some("key=k"),
            Some("map=&key=k"),
            Some("map=m&key=%zz"),
            Some("map=m&key=k&x=1"),
        ] {
            assert!(purge_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn invalidation_targets_are_bounded_and_decoded() {
        let mut h = HeaderMap::new();
        h.append(
            "x-hzcache-invalidate",
            HeaderValue::from_static("hzcache h/a%20b"),
        );
        assert_eq!(
            invalidate_targets(&h),
            Ok(vec![("hzcache".into(), "h/a b".into())])
        );
        for _ in 0..MAX_INVALIDATE_TARGETS {
            h.append("x-hzcache-invalidate", HeaderValue::from_static("m k"));
        }
        assert!(invalidate_targets(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-hzcache-invalidate", HeaderValue::from_static("nokey"));
        assert!(invalidate_targets(&h).is_err());
    }
}
