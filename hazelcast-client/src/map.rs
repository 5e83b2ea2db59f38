//! The distributed map API: what users of the crate call. Keys are strings (readable in
//! any Hazelcast tool), values are `Value`s; frames, `Data`, partition and correlation ids stay
//! inside.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use super::codec::{
    map_clear, map_contains_key, map_delete, map_evict_all, map_fetch_keys, map_get, map_get_all,
    map_put, map_put_all, map_put_if_absent, map_remove, map_remove_if_same, map_set, map_set_ttl,
    map_size,
};
use super::error::HazelcastError;
use super::invocation::{Backups, Target};
use super::proto::ReaderLimits;
use super::serialization::{Data, Value};
use super::state::Shared;

/// Keyed operations carry a thread id that only matters for key locks, which hzcache never
/// takes; a constant keeps every request alike (protocol sheet §3.3).
const THREAD_ID: i64 = 0;

/// Map operations that are safe to send again after their connection dropped mid-flight
/// (protocol sheet §7.3). Hazelcast marks Set, Put, Delete, SetTtl and PutAll non-retryable,
/// because the member may or may not have applied them before it died, and the official
/// clients fail them with TargetDisconnected unless "redo" is enabled. For the cache they are
/// idempotent in effect: sending the same value (or the same delete, or the same TTL) for the
/// same key twice leaves the map as sending it once would, so we redo them on another member
/// within the invocation deadline; a member loss then costs no failed write. The price, for
/// `put` only: after a redo the returned old value may be the value this very call stored.
/// Remove and PutIfAbsent stay non-redo: a second attempt would report the first one's
/// effect (nothing removed, value already present) as someone else's.
const REDO_SAFE: bool = true;

/// How long an entry lives in the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The map's configured `time-to-live-seconds`.
    MapDefault,
    /// Never expires.
    Forever,
    /// Expires after this long (rounded up to whole milliseconds, at least one).
    After(Duration),
}

impl Ttl {
    fn to_millis(self) -> i64 {
        match self {
            Ttl::MapDefault => -1,
            Ttl::Forever => 0,
            Ttl::After(d) => {
                let ms = d.as_millis().max(1);
                if d.as_nanos() % 1_000_000 != 0 {
                    (ms + 1).min(i64::MAX as u128) as i64
                } else {
                    ms.min(i64::MAX as u128) as i64
                }
            }
        }
    }
}

/// A handle on one named map (Hazelcast's `IMap`), from [`Client::map`](crate::Client::map);
/// cheap to clone.
///
/// Keys are strings (serialized as Java `String`s, so other clients find the same entries);
/// values are [`Value`]s. Every operation goes to the member owning the key's partition and
/// is retried within the client's invocation timeout when that is safe (see
/// [`HazelcastError::is_retryable`]).
///
/// ```no_run
/// use hazelcast_client::{Client, ClientConfig, Ttl, Value};
/// # async fn run() -> Result<(), hazelcast_client::HazelcastError> {
/// let client = Client::start(ClientConfig::default());
/// let sessions = client.map("sessions");
/// sessions.set("s-1", &Value::from("alice"), Ttl::After(std::time::Duration::from_secs(600))).await?;
/// if let Some(Value::String(user)) = sessions.get("s-1").await? {
///     println!("s-1 belongs to {user}");
/// }
/// assert!(sessions.contains_key("s-1").await?);
/// sessions.delete("s-1").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Map {
    pub(crate) shared: Arc<Shared>,
    pub(crate) name: Arc<str>,
}

impl Map {
    pub(crate) fn new(shared: Arc<Shared>, name: &str) -> Map {
        Map {
            shared,
            name: Arc::from(name),
        }
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value stored under `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Value>, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_get::encode_request(&self.name, &key, THREAD_ID);
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), true, Backups::None)
            .await?;
        decode_value(map_get::decode_response(&answer)?)
    }

    /// Stores `value` under `key` without reading the old value back.
    pub async fn set(&self, key: &str, value: &Value, ttl: Ttl) -> Result<(), HazelcastError> {
        let key = Data::from_string(key);
        let value = to_data(value)?;
        let req = map_set::encode_request(&self.name, &key, &value, THREAD_ID, ttl.to_millis());
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), REDO_SAFE, Backups::Sync)
            .await?;
        map_set::decode_response(&answer)?;
        Ok(())
    }

    /// Stores `value` under `key` and returns the value it replaced.
    pub async fn put(
        &self,
        key: &str,
        value: &Value,
        ttl: Ttl,
    ) -> Result<Option<Value>, HazelcastError> {
        let key = Data::from_string(key);
        let value = to_data(value)?;
        let req = map_put::encode_request(&self.name, &key, &value, THREAD_ID, ttl.to_millis());
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), REDO_SAFE, Backups::Sync)
            .await?;
        decode_value(map_put::decode_response(&answer)?)
    }

    /// Removes `key` and returns the value it held.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_remove::encode_request(&self.name, &key, THREAD_ID);
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), false, Backups::Sync)
            .await?;
        decode_value(map_remove::decode_response(&answer)?)
    }

    /// Removes `key` only if it holds `value` (compared by its serialized bytes, on the
    /// member); `true` if it did. Not redone after a dropped connection: a second attempt
    /// would report the first one's removal as "not ours".
    pub async fn remove_if_same(&self, key: &str, value: &Value) -> Result<bool, HazelcastError> {
        let key = Data::from_string(key);
        let value = to_data(value)?;
        let req = map_remove_if_same::encode_request(&self.name, &key, &value, THREAD_ID);
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), false, Backups::Sync)
            .await?;
        Ok(map_remove_if_same::decode_response(&answer)?)
    }

    /// Removes `key` without reading its value back.
    pub async fn delete(&self, key: &str) -> Result<(), HazelcastError> {
        let key = Data::from_string(key);
        let req = map_delete::encode_request(&self.name, &key, THREAD_ID);
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), REDO_SAFE, Backups::Sync)
            .await?;
        map_delete::decode_response(&answer)?;
        Ok(())
    }

    /// Whether `key` has a value.
    pub async fn contains_key(&self, key: &str) -> Result<bool, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_contains_key::encode_request(&self.name, &key, THREAD_ID);
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), true, Backups::None)
            .await?;
        Ok(map_contains_key::decode_response(&answer)?)
    }

    /// The number of entries in the map, over all members.
    pub async fn size(&self) -> Result<i32, HazelcastError> {
        let req = map_size::encode_request(&self.name);
        let answer = self
            .shared
            .invoke(req, Target::Any, true, Backups::None)
            .await?;
        Ok(map_size::decode_response(&answer)?)
    }

    /// Stores `value` only if `key` is absent; returns the value already there, if any
    /// (`None` means this call stored it).
    pub async fn put_if_absent(
        &self,
        key: &str,
        value: &Value,
        ttl: Ttl,
    ) -> Result<Option<Value>, HazelcastError> {
        let key = Data::from_string(key);
        let value = to_data(value)?;
        let req =
            map_put_if_absent::encode_request(&self.name, &key, &value, THREAD_ID, ttl.to_millis());
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), false, Backups::Sync)
            .await?;
        decode_value(map_put_if_absent::decode_response(&answer)?)
    }

    /// Changes the lifetime of an existing entry; `false` if the key is absent.
    pub async fn set_ttl(&self, key: &str, ttl: Ttl) -> Result<bool, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_set_ttl::encode_request(&self.name, &key, ttl.to_millis());
        let answer = self
            .shared
            .invoke(req, Target::Key(&key), REDO_SAFE, Backups::Sync)
            .await?;
        Ok(map_set_ttl::decode_response(&answer)?)
    }

    /// Reads many keys: one request per partition, all in flight together. Absent keys are
    /// left out of the result.
    pub async fn get_all(&self, keys: &[&str]) -> Result<Vec<(String, Value)>, HazelcastError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (pid, group) in self.by_partition(keys.iter().map(|k| Data::from_string(k))) {
            let (shared, name) = (self.shared.clone(), self.name.clone());
            tasks.spawn(async move {
                let req = map_get_all::encode_request(&name, &group);
                let answer = shared
                    .invoke(req, Target::Partition(pid), true, Backups::None)
                    .await?;
                Ok::<_, HazelcastError>(map_get_all::decode_response(&answer)?)
            });
        }
        let mut out = Vec::with_capacity(keys.len());
        while let Some(joined) = tasks.join_next().await {
            let entries =
                joined.map_err(|e| HazelcastError::Protocol(format!("get_all task: {e}")))??;
            for (k, v) in entries {
                let key = match k.to_value()? {
                    Value::String(s) => s,
                    other => {
                        return Err(HazelcastError::Serialization(format!(
                            "get_all returned a non-string key: {other:?}"
                        )))
                    }
                };
                out.push((key, v.to_value()?));
            }
        }
        Ok(out)
    }

    /// Stores many entries (with the map's default TTL): one request per partition, all in
    /// flight together.
    pub async fn put_all(&self, entries: &[(&str, Value)]) -> Result<(), HazelcastError> {
        let mut groups: BTreeMap<i32, Vec<(Data, Data)>> = BTreeMap::new();
        let count = self.shared.partition_count();
        for (k, v) in entries {
            let key = Data::from_string(k);
            groups
                .entry(key.partition_id(count))
                .or_default()
                .push((key, to_data(v)?));
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (pid, group) in groups {
            let (shared, name) = (self.shared.clone(), self.name.clone());
            tasks.spawn(async move {
                let req = map_put_all::encode_request(&name, &group, false);
                let answer = shared
                    .invoke(req, Target::Partition(pid), REDO_SAFE, Backups::Sync)
                    .await?;
                Ok::<_, HazelcastError>(map_put_all::decode_response(&answer)?)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| HazelcastError::Protocol(format!("put_all task: {e}")))??;
        }
        Ok(())
    }

    fn by_partition(&self, keys: impl Iterator<Item = Data>) -> BTreeMap<i32, Vec<Data>> {
        let count = self.shared.partition_count();
        let mut groups: BTreeMap<i32, Vec<Data>> = BTreeMap::new();
        for key in keys {
            groups.entry(key.partition_id(count)).or_default().push(key);
        }
        groups
    }

    /// Evicts every entry (not written through to a map store; listeners see EVICT_ALL).
    pub async fn evict_all(&self) -> Result<(), HazelcastError> {
        let req = map_evict_all::encode_request(&self.name);
        let answer = self
            .shared
            .invoke(req, Target::Any, false, Backups::None)
            .await?;
        map_evict_all::decode_response(&answer)?;
        Ok(())
    }

    /// Removes every entry of the map (entry listeners see one `ClearAll`).
    pub async fn clear(&self) -> Result<(), HazelcastError> {
        let req = map_clear::encode_request(&self.name);
        let answer = self
            .shared
            .invoke(req, Target::Any, false, Backups::None)
            .await?;
        map_clear::decode_response(&answer)?;
        Ok(())
    }

    /// Every String key of the map (other key types are skipped), read page by page with
    /// [`Map::key_pages`]. Bounded: more than `MAX_KEYS` keys is an error rather than an
    /// unbounded allocation. Walks that may meet large maps (purges) should use the pages
    /// directly and hold one page at a time.
    pub async fn keys(&self) -> Result<Vec<String>, HazelcastError> {
        /// Keys per request: a few hundred KB of small keys per answer.
        const KEYS_BATCH: i32 = 1000;
        /// Most keys returned; a purge over more than this should be a map clear.
        const MAX_KEYS: usize = 1_000_000;
        let mut out = Vec::new();
        let mut pages = self.key_pages(KEYS_BATCH);
        while let Some(page) = pages.next_page().await? {
            out.extend(page);
            if out.len() > MAX_KEYS {
                return Err(HazelcastError::Protocol(format!(
                    "map {} has more than {MAX_KEYS} keys",
                    self.name
                )));
            }
        }
        Ok(out)
    }

    /// A walk over the map's String keys, partition by partition, one `Map.FetchKeys` answer
    /// per page: about `batch` keys (the member finishes the hash bucket it is in, so a page
    /// may hold a few more; seen against a 5.x member: 5 for a batch of 4). Not a snapshot: keys added or removed during the walk
    /// may or may not appear; deleting keys of a page already returned is safe (the member
    /// continues from its iteration pointers, which removals do not move).
    pub fn key_pages(&self, batch: i32) -> KeyPages {
        KeyPages {
            map: self.clone(),
            batch: batch.max(1),
            partition: 0,
            pointers: map_fetch_keys::START.to_vec(),
        }
    }
}

/// A map's keys, one page at a time ([`Map::key_pages`]): only the current page is held.
pub struct KeyPages {
    map: Map,
    batch: i32,
    /// The partition being walked; past the last one, the walk is over.
    partition: i32,
    /// Where the member continues in `partition`.
    pointers: Vec<(i32, i32)>,
}

impl KeyPages {
    /// The next non-empty page of String keys (other key types are skipped); `None` once
    /// every partition is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, HazelcastError> {
        while self.partition < self.map.shared.partition_count() {
            let req = map_fetch_keys::encode_request(&self.map.name, &self.pointers, self.batch);
            let answer = self
                .map
                .shared
                .invoke(req, Target::Partition(self.partition), true, Backups::None)
                .await?;
            let (next, keys) = map_fetch_keys::decode_response(&answer)?;
            if keys.is_empty() || map_fetch_keys::exhausted(&next) {
                self.partition += 1;
                self.pointers = map_fetch_keys::START.to_vec();
            } else {
                self.pointers = next;
            }
            let mut page = Vec::with_capacity(keys.len());
            for k in keys {
                if let Value::String(s) = k.to_value()? {
                    page.push(s);
                }
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }
}

impl ReaderLimits {
    /// The largest [`Value::Bytes`] that [`Map::get`] can read back under these limits: a
    /// larger value makes the member's answer exceed `max_frame_len` or `max_message_len`, and
    /// the connection that reads it is closed as if the stream were corrupt. Size the limits
    /// from the largest value the application stores.
    ///
    /// ```
    /// use hazelcast_client::ReaderLimits;
    ///
    /// let limits = ReaderLimits { max_frame_len: 1024 * 1024, ..ReaderLimits::default() };
    /// // The value shares its frame with a few bytes of headers.
    /// assert!(limits.max_bytes_value_len() < 1024 * 1024);
    /// assert!(limits.max_bytes_value_len() > 1024 * 1024 - 64);
    /// ```
    pub fn max_bytes_value_len(&self) -> usize {
        // Measured on the real encoding, so it stays exact if the framing ever changes.
        let empty = Data::from_bytes(&[]);
        let answer = map_get::encode_response(Some(&empty));
        let frame_overhead = answer.frames.last().map_or(0, |f| f.encoded_len());
        let message_overhead = answer.encoded_len();
        self.max_frame_len
            .saturating_sub(frame_overhead)
            .min(self.max_message_len.saturating_sub(message_overhead))
    }
}

fn to_data(value: &Value) -> Result<Data, HazelcastError> {
    match value {
        Value::String(s) => Ok(Data::from_string(s)),
        Value::Bytes(b) => Ok(Data::from_bytes(b)),
        Value::Int(v) => Ok(Data::from_i32(*v)),
        Value::Long(v) => Ok(Data::from_i64(*v)),
        other => Err(HazelcastError::Serialization(format!(
            "cannot store a value of this kind: {other:?}"
        ))),
    }
}

fn decode_value(data: Option<Data>) -> Result<Option<Value>, HazelcastError> {
    match data {
        None => Ok(None),
        Some(d) => Ok(Some(d.to_value()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_bytes_value_len_is_exactly_what_the_reader_accepts() {
        use crate::proto::MessageReader;
        let read = |limits: ReaderLimits, len: usize| {
            let mut wire = bytes::BytesMut::new();
            map_get::encode_response(Some(&Data::from_bytes(&vec![7u8; len]))).write_to(&mut wire);
            MessageReader::new(limits).read(&mut wire)
        };
        for limits in [
            // The frame limit binds.
            ReaderLimits {
                max_frame_len: 4096,
                max_message_len: 1 << 20,
                ..Default::default()
            },
            // The message limit binds.
            ReaderLimits {
                max_frame_len: 1 << 20,
                max_message_len: 4096,
                ..Default::default()
            },
        ] {
            let max = limits.max_bytes_value_len();
            assert!(read(limits, max).unwrap().is_some(), "{limits:?}");
            assert!(read(limits, max + 1).is_err(), "{limits:?}");
        }
        let none = ReaderLimits {
            max_frame_len: 0,
            max_message_len: 0,
            ..Default::default()
        };
        assert_eq!(none.max_bytes_value_len(), 0);
    }

    #[test]
    fn ttl_maps_to_the_protocol_milliseconds() {
        assert_eq!(Ttl::MapDefault.to_millis(), -1);
        assert_eq!(Ttl::Forever.to_millis(), 0);
        assert_eq!(Ttl::After(Duration::from_secs(60)).to_millis(), 60_000);
        assert_eq!(Ttl::After(Duration::from_micros(1500)).to_millis(), 2);
        assert_eq!(Ttl::After(Duration::ZERO).to_millis(), 1);
    }
}
