//! Keys and values as Hazelcast `HeapData` (§5): a big-endian header (partition hash,
//! serializer type id) followed by the payload. Owns building `Data` from the few Rust types
//! the cache uses, strict validation of `Data` from the wire, and reading it back as a
//! [`Value`]. Frames around a `Data` are little-endian; everything inside is big-endian.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use bytes::{BufMut, Bytes, BytesMut};

use crate::partition::{hash_to_index, murmur3_x86_32, PARTITION_HASH_SEED};

/// Bytes before the payload: partition hash (`i32` BE) + type id (`i32` BE).
pub const DATA_HEADER_LEN: usize = 8;
const TYPE_ID_OFFSET: usize = 4;

/// Serializer type ids (§5.2, the 4.x/5.x numbering): the whole table, including serializers
/// this client does not read (their `Data` become [`Value::Other`]).
#[allow(dead_code)]
pub mod type_id {
    pub const NULL: i32 = 0;
    pub const PORTABLE: i32 = -1;
    pub const IDENTIFIED_DATA_SERIALIZABLE: i32 = -2;
    pub const BYTE: i32 = -3;
    pub const BOOLEAN: i32 = -4;
    pub const CHAR: i32 = -5;
    pub const SHORT: i32 = -6;
    pub const INTEGER: i32 = -7;
    pub const LONG: i32 = -8;
    pub const FLOAT: i32 = -9;
    pub const DOUBLE: i32 = -10;
    pub const STRING: i32 = -11;
    pub const BYTE_ARRAY: i32 = -12;
    pub const UUID: i32 = -21;
    pub const COMPACT: i32 = -55;
    pub const JAVA_SERIALIZABLE: i32 = -100;
    pub const JSON: i32 = -130;
}

/// A map value of one of the types this client understands, in Hazelcast's own serialization
/// (so other clients read the same value: a `String` here is a Java `String` there).
///
/// [`Map`](crate::Map) stores `String`, `Bytes`, `Int` and `Long`; it reads every kind back.
///
/// ```
/// use hazelcast_client::Value;
///
/// let v = Value::from("hello");
/// assert_eq!(v, Value::String("hello".into()));
/// assert_eq!(Value::from(7i64), Value::Long(7));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The null value (type id 0), as another client may store it.
    Null,
    /// A Java `String`.
    String(String),
    /// A `byte[]`.
    Bytes(Bytes),
    /// A Java `int`.
    Int(i32),
    /// A Java `long`.
    Long(i64),
    /// `HazelcastJsonValue`: JSON text.
    Json(String),
    /// A valid `Data` of a serializer this client does not read.
    Other {
        /// The serializer's type id (negative for Hazelcast's built-in ones).
        type_id: i32,
    },
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Value {
        Value::Bytes(b)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(Bytes::from(b))
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Long(v)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SerializationError {
    #[error("serialized data of {0} bytes is shorter than its 8-byte header")]
    TooShort(usize),
    #[error(
        "declared length {declared} does not match the {available} payload bytes that follow it"
    )]
    BadLength { declared: i32, available: usize },
    #[error("payload of type {type_id} has {got} bytes, expected {expected}")]
    BadPayloadSize {
        type_id: i32,
        expected: usize,
        got: usize,
    },
    #[error("string payload is not valid UTF-8")]
    InvalidUtf8,
}

/// Serialized key or value (`HeapData`): always at least 8 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Data(Bytes);

impl Data {
    fn with_payload(type_id: i32, payload_len: usize, write: impl FnOnce(&mut BytesMut)) -> Data {
        let mut b = BytesMut::with_capacity(DATA_HEADER_LEN + payload_len);
        // Partition hash 0 = "derive from the payload", what clients without a partitioning
        // strategy always write (§5.1).
        b.put_i32(0);
        b.put_i32(type_id);
        write(&mut b);
        Data(b.freeze())
    }

    fn length_prefixed(type_id: i32, bytes: &[u8]) -> Data {
        // Values above 2 GiB cannot be expressed; far above the frame limits anyway.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        Data::with_payload(type_id, 4 + bytes.len(), |b| {
            b.put_i32(len);
            b.put_slice(bytes);
        })
    }

    /// A Java `String` (type -11): `i32` BE byte length + UTF-8.
    pub fn from_string(s: &str) -> Data {
        Data::length_prefixed(type_id::STRING, s.as_bytes())
    }

    /// A `byte[]` (type -12): `i32` BE length + bytes.
    pub fn from_bytes(b: &[u8]) -> Data {
        Data::length_prefixed(type_id::BYTE_ARRAY, b)
    }

    /// A `HazelcastJsonValue` (type -130): same payload as a String.
    #[cfg_attr(not(test), allow(dead_code))] // Value::Json is read, not yet written.
    pub fn from_json(json: &str) -> Data {
        Data::length_prefixed(type_id::JSON, json.as_bytes())
    }

    /// A Java `int` (type -7).
    pub fn from_i32(v: i32) -> Data {
        Data::with_payload(type_id::INTEGER, 4, |b| b.put_i32(v))
    }

    /// A Java `long` (type -8).
    pub fn from_i64(v: i64) -> Data {
        Data::with_payload(type_id::LONG, 8, |b| b.put_i64(v))
    }

    /// Wraps bytes received from the wire after checking they hold the 8-byte header.
    pub fn from_wire(b: Bytes) -> Result<Data, SerializationError> {
        if b.len() < DATA_HEADER_LEN {
            return Err(SerializationError::TooShort(b.len()));
        }
        Ok(Data(b))
    }

    #[cfg_attr(not(test), allow(dead_code))] // Tests compare encodings with byte vectors.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    fn be_i32_at(&self, offset: usize) -> i32 {
        // `Data` always holds at least the 8-byte header, so this never falls back.
        self.0
            .get(offset..offset + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(i32::from_be_bytes)
            .unwrap_or(0)
    }

    fn payload(&self) -> &[u8] {
        self.0.get(DATA_HEADER_LEN..).unwrap_or(&[])
    }

    /// The serializer type id.
    pub fn type_id(&self) -> i32 {
        self.be_i32_at(TYPE_ID_OFFSET)
    }

    /// The partition this key belongs to, for a cluster with `partition_count` partitions
    /// (from the auth response, §6.1).
    pub fn partition_id(&self, partition_count: i32) -> i32 {
        hash_to_index(self.partition_hash(), partition_count)
    }

    /// §6.2: the header's partition hash if non-zero, else Murmur3 of the payload.
    pub fn partition_hash(&self) -> i32 {
        match self.be_i32_at(0) {
            0 => murmur3_x86_32(self.payload(), PARTITION_HASH_SEED),
            preset => preset,
        }
    }

    /// Reads the value back. Strict: a length prefix must match the remaining payload exactly
    /// and fixed-size payloads must have exactly their size. Never allocates more than the
    /// input holds.
    pub fn to_value(&self) -> Result<Value, SerializationError> {
        let payload = self.payload();
        let t = self.type_id();
        let exact = |expected: usize| {
            if payload.len() == expected {
                Ok(())
            } else {
                Err(SerializationError::BadPayloadSize {
                    type_id: t,
                    expected,
                    got: payload.len(),
                })
            }
        };
        match t {
            type_id::NULL => {
                exact(0)?;
                Ok(Value::Null)
            }
            type_id::STRING => Ok(Value::String(utf8(length_prefixed(payload)?)?)),
            type_id::JSON => Ok(Value::Json(utf8(length_prefixed(payload)?)?)),
            type_id::BYTE_ARRAY => {
                let body = length_prefixed(payload)?;
                // Share the buffer rather than copying the (possibly large) body. `body` is a
                // suffix of `self.0`, so the start index cannot underflow or exceed the length.
                Ok(Value::Bytes(self.0.slice(self.0.len() - body.len()..)))
            }
            type_id::INTEGER => {
                exact(4)?;
                Ok(Value::Int(i32::from_be_bytes(fixed::<4>(payload))))
            }
            type_id::LONG => {
                exact(8)?;
                Ok(Value::Long(i64::from_be_bytes(fixed::<8>(payload))))
            }
            other => Ok(Value::Other { type_id: other }),
        }
    }
}

fn fixed<const N: usize>(payload: &[u8]) -> [u8; N] {
    payload
        .get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

/// The bytes after an `i32` BE length that must equal their count exactly.
fn length_prefixed(payload: &[u8]) -> Result<&[u8], SerializationError> {
    let (len, rest) = match payload.split_first_chunk::<4>() {
        Some((len, rest)) => (i32::from_be_bytes(*len), rest),
        None => {
            return Err(SerializationError::BadLength {
                declared: -1,
                available: payload.len(),
            })
        }
    };
    if usize::try_from(len).ok() != Some(rest.len()) {
        return Err(SerializationError::BadLength {
            declared: len,
            available: rest.len(),
        });
    }
    Ok(rest)
}

fn utf8(b: &[u8]) -> Result<String, SerializationError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| SerializationError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::hex;
    use proptest::prelude::*;

    #[test]
    fn strings_serialize_byte_identically_to_the_official_client() {
        assert_eq!(
            Data::from_string("key-1").as_bytes(),
            &hex("00000000fffffff5000000056b65792d31")[..]
        );
        assert_eq!(
            Data::from_string("value-1").as_bytes(),
            &hex("00000000fffffff50000000776616c75652d31")[..]
        );
    }

    #[test]
    fn every_supported_type_reads_back_as_written() {
        assert_eq!(
            Data::from_string("été").to_value().unwrap(),
            Value::String("été".into())
        );
        assert_eq!(
            Data::from_bytes(&[0, 1, 2]).to_value().unwrap(),
            Value::Bytes(Bytes::from_static(&[0, 1, 2]))
        );
        assert_eq!(
            Data::from_bytes(&[]).to_value().unwrap(),
            Value::Bytes(Bytes::new())
        );
        assert_eq!(Data::from_i32(-5).to_value().unwrap(), Value::Int(-5));
        assert_eq!(
            Data::from_i64(1 << 40).to_value().unwrap(),
            Value::Long(1 << 40)
        );
        assert_eq!(
            Data::from_json("{}").to_value().unwrap(),
            Value::Json("{}".into())
        );
        assert_eq!(Data::from_i32(1).type_id(), type_id::INTEGER);
    }

    #[test]
    fn unknown_serializers_are_reported_not_rejected() {
        let d = Data::from_wire(hex("00000000 ffffffeb 0011223344556677 8899aabbccddeeff").into())
            .unwrap();
        assert_eq!(d.to_value().unwrap(), Value::Other { type_id: -21 });
        let null = Data::from_wire(hex("00000000 00000000").into()).unwrap();
        assert_eq!(null.to_value().unwrap(), Value::Null);
    }

    #[test]
    fn wire_data_shorter_than_the_header_is_rejected() {
        assert!(matches!(
            Data::from_wire(Bytes::from_static(&[0; 7])),
            Err(SerializationError::TooShort(7))
        ));
    }

    #[test]
    fn length_prefixes_must_match_the_payload_exactly() {
        for bad in [
            "00000000 fffffff5 00000006 6b65792d31",
            "00000000 fffffff5 00000004 6b65792d31",
            "00000000 fffffff5 ffffffff",
            "00000000 fffffff4 7fffffff 00",
            "00000000 fffffff4 0000",
        ] {
            let d = Data::from_wire(hex(bad).into()).unwrap();
            assert!(
                matches!(d.to_value(), Err(SerializationError::BadLength { .. })),
                "{bad}"
            );
        }
        let d = Data::from_wire(hex("00000000 fffffff9 0000002a 00").into()).unwrap();
        assert!(matches!(
            d.to_value(),
            Err(SerializationError::BadPayloadSize {
                expected: 4,
                got: 5,
                ..
            })
        ));
        let d = Data::from_wire(hex("00000000 fffffff5 00000001 ff").into()).unwrap();
        assert!(matches!(d.to_value(), Err(SerializationError::InvalidUtf8)));
    }

    proptest! {
        #[test]
        fn to_value_never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(d) = Data::from_wire(Bytes::from(b)) {
                let _ = d.to_value();
                let _ = d.partition_hash();
            }
        }

        #[test]
        fn strings_and_byte_arrays_round_trip(s in ".*", b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(Data::from_string(&s).to_value().unwrap(), Value::String(s.clone()));
            prop_assert_eq!(Data::from_bytes(&b).to_value().unwrap(), Value::Bytes(Bytes::from(b)));
        }
    }

    #[test]
    fn serialized_keys_map_to_the_partitions_real_clients_compute() {
        let rows: &[(Data, &str, i32, i32)] = &[
            (
                Data::from_string("key-1"),
                "00000000 fffffff5 00000005 6b65792d31",
                2132451398,
                94,
            ),
            (
                Data::from_string("hello"),
                "00000000 fffffff5 00000005 68656c6c6f",
                1985248981,
                270,
            ),
            (
                Data::from_string("foo"),
                "00000000 fffffff5 00000003 666f6f",
                947302427,
                247,
            ),
            (
                Data::from_string("user:42"),
                "00000000 fffffff5 00000007 757365723a3432",
                -1957166892,
                14,
            ),
            (
                Data::from_string("été"),
                "00000000 fffffff5 00000005 c3a974c3a9",
                343894648,
                255,
            ),
            (
                Data::from_bytes(&[1, 2, 3]),
                "00000000 fffffff4 00000003 010203",
                94186855,
                263,
            ),
            (
                Data::from_bytes(b"key-1"),
                "00000000 fffffff4 00000005 6b65792d31",
                2132451398,
                94,
            ),
            (
                Data::from_i32(42),
                "00000000 fffffff9 0000002a",
                2076340387,
                175,
            ),
            (
                Data::from_i64(42),
                "00000000 fffffff8 000000000000002a",
                1624962215,
                145,
            ),
            (
                Data::from_json("{\"a\":1}"),
                "00000000 ffffff7e 00000007 7b2261223a317d",
                1343167611,
                13,
            ),
        ];
        for (data, bytes, hash, pid) in rows {
            assert_eq!(data.as_bytes(), &hex(bytes)[..]);
            assert_eq!(data.partition_hash(), *hash, "{bytes}");
            assert_eq!(data.partition_id(271), *pid, "{bytes}");
        }
    }

    #[test]
    fn a_preset_partition_hash_wins_over_the_payload() {
        let d = Data::from_wire(hex("0000002a fffffff5 00000005 6b65792d31").into()).unwrap();
        assert_eq!(d.partition_hash(), 42);
        assert_eq!(d.partition_id(271), 42);
    }
}
