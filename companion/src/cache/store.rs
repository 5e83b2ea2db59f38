//! The write side of the cache: what goes into Hazelcast for a response (the envelope, or the
//! plain `body`-mode value; for a varying response the variant and its index; one purge-tag
//! index record per tag) with which TTL, and what comes out again: deletions after unsafe
//! requests (invalidation) and by the purge API. Whether a response may be stored at all is
//! `http::storable`'s; when to store is the flow's (`cache.rs`).

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, SET_COOKIE};

use super::Cache;
use crate::coalesce::Done;
use crate::entry::{header_pairs, Entry, VaryIndex};
use crate::fetch_request::{FetchRequest, Mode, ValueType};
use crate::headers::purge_tags;
use crate::http::lifetime::Freshness;
use crate::http::validation::has_validators;
use crate::http::vary::{content_language, top_language, vary_names};
use crate::metrics::{ErrorKind, Event};
use crate::purge::{PurgeTarget, PURGE_PAGE_KEYS};
use crate::vary::{generation_to_join, language_alias, select_vary, variant_key};
use hazelcast_client::{HazelcastError, Ttl, Value};

/// The map holding a cache map's purge-tag index.
pub fn tag_index_map(map: &str) -> String {
    format!("{map}:tags")
}

/// The headers without `Set-Cookie`: a rule that stores such responses keeps the cookie out
/// of the entry, so no other client is ever given it (RFC 9111 §7.3).
fn strip_set_cookie(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    kept.remove(SET_COOKIE);
    kept
}

impl Cache {
    /// Writes an entry (and its variant index and tag index records) to Hazelcast. `index`:
    /// the variant index found at lookup, whose generation a new variant joins.
    pub(crate) async fn store(
        &self,
        req: &FetchRequest,
        status: u16,
        headers: &HeaderMap,
        body: &Bytes,
        f: Freshness,
        index: Option<VaryIndex>,
    ) -> Done {
        let without_cookies;
        let headers = if req.policy.strip_set_cookie && headers.contains_key(SET_COOKIE) {
            without_cookies = strip_set_cookie(headers);
            &without_cookies
        } else {
            headers
        };
        let map = self.hazelcast.map(&req.map);
        let names = vary_names(headers).unwrap_or_default();
        let result = match req.mode {
            Mode::Body => {
                let secs = u64::from(f.lifetime_secs).saturating_sub(u64::from(f.initial_age_secs));
                if !names.is_empty() || secs == 0 || status != 200 {
                    // A plain value has no room for variants, validators or a status.
                    self.metrics.event(Event::NotStored);
                    return Done::NotStored;
                }
                let value = match req.value_type {
                    ValueType::Bytes => Value::Bytes(body.clone()),
                    ValueType::String => match std::str::from_utf8(body) {
                        Ok(s) => Value::String(s.to_string()),
                        Err(_) => {
                            tracing::debug!("body is not UTF-8; not stored as a string");
                            return Done::NotStored;
                        }
                    },
                };
                map.set(&req.key, &value, Ttl::After(Duration::from_secs(secs)))
                    .await
            }
            Mode::Envelope => {
                let keep = f.keep_secs(has_validators(headers));
                let ttl = Ttl::After(Duration::from_secs(keep));
                let entry = Entry {
                    status,
                    freshness: f,
                    vary: select_vary(&req.client_headers, &names),
                    tags: purge_tags(headers),
                    headers: header_pairs(headers),
                    body: body.clone(),
                };
                let bytes = match entry.encode() {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::debug!(error = %e, "response cannot be stored");
                        return Done::NotStored;
                    }
                };
                self.index_tags(req, &entry.tags, ttl).await;
                if names.is_empty() {
                    map.set(&req.key, &Value::Bytes(bytes), ttl).await
                } else {
                    let id =
                        generation_to_join(index.as_ref(), &names).unwrap_or_else(rand::random);
                    let vk = variant_key(&req.key, id, &entry.vary);
                    // The origin chose the language this request prefers above all: requests
                    // with that same top preference may reuse the variant (RFC 9111 §4.1),
                    // through a language alias stored next to it.
                    let alias = content_language(headers)
                        .filter(|l| top_language(&req.client_headers).as_deref() == Some(l))
                        .and_then(|l| language_alias(&entry.vary, &l))
                        .filter(|a| *a != entry.vary);
                    let index = VaryIndex { id, names };
                    match index.encode() {
                        Ok(ib) => match map.set(&vk, &Value::Bytes(bytes), ttl).await {
                            Ok(()) => {
                                if let Some(alias) = alias {
                                    let ak = variant_key(&req.key, id, &alias);
                                    let aliased = Entry {
                                        vary: alias,
                                        ..entry
                                    };
                                    if let Ok(ab) = aliased.encode() {
                                        if let Err(e) = map.set(&ak, &Value::Bytes(ab), ttl).await {
                                            tracing::debug!(error = %e, "language alias not stored");
                                        }
                                    }
                                }
                                map.set(&req.key, &Value::Bytes(ib), ttl).await
                            }
                            Err(e) => Err(e),
                        },
                        Err(_) => return Done::NotStored,
                    }
                }
            }
        };
        match result {
            Ok(()) => Done::Stored,
            Err(e) => {
                tracing::warn!(error = %e, "could not store the entry");
                self.metrics.error(ErrorKind::Store);
                Done::NotStored
            }
        }
    }

    /// Records `tag\0key` in the map's tag index (`MAP:tags`) for each purge tag, with the
    /// entry's TTL, so a tag purge finds its keys without reading every entry. Best effort: a
    /// lost index record means that entry outlives a tag purge until its TTL, so failures are
    /// counted and logged.
    async fn index_tags(&self, req: &FetchRequest, tags: &[String], ttl: Ttl) {
        if tags.is_empty() {
            return;
        }
        let index = self.hazelcast.map(&tag_index_map(&req.map));
        let mut tasks = tokio::task::JoinSet::new();
        for tag in tags {
            let (index, record) = (index.clone(), format!("{tag}\0{}", req.key));
            tasks.spawn(async move { index.set(&record, &Value::Int(1), ttl).await });
        }
        while let Some(done) = tasks.join_next().await {
            if !matches!(done, Ok(Ok(()))) {
                self.metrics.error(ErrorKind::Store);
                tracing::warn!("could not index a purge tag");
            }
        }
    }

    /// Purges what `target` names; returns how many primary keys were deleted. Prefix and
    /// tag purges walk the keys one page at a time ([`PURGE_PAGE_KEYS`]) and delete each
    /// page's matches before fetching the next, so a purge over a map of any size holds one
    /// page of keys, never the whole key set.
    pub async fn purge(&self, target: &PurgeTarget) -> Result<usize, HazelcastError> {
        let mut purged = 0;
        let result = self.purge_counting(target, &mut purged).await;
        // Counted also when a later page fails: those deletions happened.
        self.metrics.add(Event::Purged, purged as u64);
        result.map(|()| purged)
    }

    async fn purge_counting(
        &self,
        target: &PurgeTarget,
        purged: &mut usize,
    ) -> Result<(), HazelcastError> {
        match target {
            PurgeTarget::Key { map, key } => {
                self.hazelcast.map(map).delete(key).await?;
                *purged += 1;
            }
            PurgeTarget::Prefix { map, prefix } => {
                let m = self.hazelcast.map(map);
                let mut pages = m.key_pages(PURGE_PAGE_KEYS);
                while let Some(page) = pages.next_page().await? {
                    for k in page.iter().filter(|k| k.starts_with(prefix.as_str())) {
                        m.delete(k).await?;
                        *purged += 1;
                    }
                }
            }
            PurgeTarget::Tag { map, tag } => {
                let m = self.hazelcast.map(map);
                let index = self.hazelcast.map(&tag_index_map(map));
                let start = format!("{tag}\0");
                let mut pages = index.key_pages(PURGE_PAGE_KEYS);
                while let Some(page) = pages.next_page().await? {
                    for record in page.iter().filter(|r| r.starts_with(&start)) {
                        index.delete(record).await?;
                        m.delete(&record[start.len()..]).await?;
                        *purged += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the stored responses for these (map, key) pairs: the primary key holds the
    /// entry or the variant index, so deleting it makes every variant unreachable (a new
    /// index gets a new generation). Returns how many deletions succeeded.
    pub async fn invalidate(&self, targets: &[(String, String)]) -> usize {
        let mut ok = 0;
        for (map, key) in targets {
            match self.hazelcast.map(map).delete(key).await {
                Ok(()) => ok += 1,
                Err(e) => {
                    self.metrics.error(ErrorKind::Hazelcast);
                    tracing::warn!(%map, key = %crate::fetch_request::key_digest(key), error = %e, "invalidation failed");
                }
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn every_set_cookie_line_is_left_out_and_nothing_else() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("a=1"));
        h.append(SET_COOKIE, HeaderValue::from_static("b=2"));
        h.insert("etag", HeaderValue::from_static("\"v\""));
        let kept = strip_set_cookie(&h);
        assert!(!kept.contains_key(SET_COOKIE));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["etag"], "\"v\"");
    }
}
