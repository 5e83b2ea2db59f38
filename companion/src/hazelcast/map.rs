//! The distributed map API: what code outside `hazelcast/` uses. Keys are strings (readable in
//! any Hazelcast tool), values are `Value`s; frames, `Data`, partition and correlation ids stay
//! inside.

use std::sync::Arc;
use std::time::Duration;

use super::client::Client;
use super::codec::{
    map_clear, map_contains_key, map_delete, map_get, map_put, map_remove, map_set, map_size,
};
use super::error::HazelcastError;
use super::serialization::{Data, Value};

/// Keyed operations carry a thread id that only matters for key locks, which hzcache never
/// takes; a constant keeps every request alike (protocol sheet §3.3).
const THREAD_ID: i64 = 0;

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

/// A handle on one named map; cheap to clone.
#[derive(Clone)]
pub struct Map {
    client: Client,
    name: Arc<str>,
}

impl Map {
    pub(crate) fn new(client: Client, name: &str) -> Map {
        Map {
            client,
            name: Arc::from(name),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn get(&self, key: &str) -> Result<Option<Value>, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_get::encode_request(&self.name, &key, THREAD_ID);
        let answer = self.client.invoke(req, Some(&key), true).await?;
        decode_value(map_get::decode_response(&answer)?)
    }

    /// Stores `value` under `key` without reading the old value back.
    pub async fn set(&self, key: &str, value: &Value, ttl: Ttl) -> Result<(), HazelcastError> {
        let key = Data::from_string(key);
        let value = to_data(value)?;
        let req = map_set::encode_request(&self.name, &key, &value, THREAD_ID, ttl.to_millis());
        let answer = self.client.invoke(req, Some(&key), false).await?;
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
        let answer = self.client.invoke(req, Some(&key), false).await?;
        decode_value(map_put::decode_response(&answer)?)
    }

    /// Removes `key` and returns the value it held.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_remove::encode_request(&self.name, &key, THREAD_ID);
        let answer = self.client.invoke(req, Some(&key), false).await?;
        decode_value(map_remove::decode_response(&answer)?)
    }

    /// Removes `key` without reading its value back.
    pub async fn delete(&self, key: &str) -> Result<(), HazelcastError> {
        let key = Data::from_string(key);
        let req = map_delete::encode_request(&self.name, &key, THREAD_ID);
        let answer = self.client.invoke(req, Some(&key), false).await?;
        map_delete::decode_response(&answer)?;
        Ok(())
    }

    pub async fn contains_key(&self, key: &str) -> Result<bool, HazelcastError> {
        let key = Data::from_string(key);
        let req = map_contains_key::encode_request(&self.name, &key, THREAD_ID);
        let answer = self.client.invoke(req, Some(&key), true).await?;
        Ok(map_contains_key::decode_response(&answer)?)
    }

    pub async fn size(&self) -> Result<i32, HazelcastError> {
        let req = map_size::encode_request(&self.name);
        let answer = self.client.invoke(req, None, true).await?;
        Ok(map_size::decode_response(&answer)?)
    }

    pub async fn clear(&self) -> Result<(), HazelcastError> {
        let req = map_clear::encode_request(&self.name);
        let answer = self.client.invoke(req, None, false).await?;
        map_clear::decode_response(&answer)?;
        Ok(())
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
    fn ttl_maps_to_the_protocol_milliseconds() {
        assert_eq!(Ttl::MapDefault.to_millis(), -1);
        assert_eq!(Ttl::Forever.to_millis(), 0);
        assert_eq!(Ttl::After(Duration::from_secs(60)).to_millis(), 60_000);
        assert_eq!(Ttl::After(Duration::from_micros(1500)).to_millis(), 2);
        assert_eq!(Ttl::After(Duration::ZERO).to_millis(), 1);
    }
}
