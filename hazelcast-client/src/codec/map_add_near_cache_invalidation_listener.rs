//! `Map.AddNearCacheInvalidationListener` (§3.3, §8.2): subscribes to invalidations of a map
//! for a near cache. Owns the registration and the single / batch invalidation decoders.

use bytes::BufMut;

use super::{
    fixed_i64, fixed_uuid, open, put_bool, put_uuid, CodecError, MessageBuilder, EVENT_FIXED,
    RESPONSE_FIXED, UUID_SIZE,
};
use crate::proto::ClientMessage;
use crate::serialization::Data;
use uuid::Uuid;

/// hex: 0x013F00
pub const REQUEST_TYPE: i32 = 81664;
/// hex: 0x013F01
pub const RESPONSE_TYPE: i32 = 81665;
/// hex: 0x013F02
pub const EVENT_IMAP_INVALIDATION: i32 = 81666;
/// hex: 0x013F03
pub const EVENT_IMAP_BATCH_INVALIDATION: i32 = 81667;

/// What official clients pass as `listener_flags` (EntryEventType INVALIDATION).
pub const INVALIDATION_FLAG: i32 = 256;

const RESPONSE_REGISTRATION_OFFSET: usize = RESPONSE_FIXED;
const EVENT_SOURCE_OFFSET: usize = EVENT_FIXED;
const EVENT_PARTITION_UUID_OFFSET: usize = EVENT_SOURCE_OFFSET + UUID_SIZE;
const EVENT_SEQUENCE_OFFSET: usize = EVENT_PARTITION_UUID_OFFSET + UUID_SIZE;

/// One invalidation. `key == None` means "clear the whole near cache".
#[derive(Clone, Debug, PartialEq)]
pub struct Invalidation {
    pub key: Option<Data>,
    /// Member or client whose write caused it.
    pub source: Option<Uuid>,
    pub partition_uuid: Option<Uuid>,
    pub sequence: i64,
}

pub fn encode_request(name: &str, listener_flags: i32, local_only: bool) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| {
        f.put_i32_le(listener_flags);
        put_bool(f, local_only);
    });
    b.string(name);
    b.build()
}

/// The registration id.
pub fn decode_response(msg: &ClientMessage) -> Result<Uuid, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_uuid(fixed, RESPONSE_REGISTRATION_OFFSET, "registration id")?
        .ok_or(CodecError::UnexpectedNull("registration id"))
}

/// The member's answer. For tests and fakes.
pub fn encode_response(registration_id: Uuid) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| put_uuid(f, Some(registration_id))).build()
}

pub fn decode_invalidation_event(msg: &ClientMessage) -> Result<Invalidation, CodecError> {
    let (fixed, mut c) = open(msg, EVENT_IMAP_INVALIDATION)?;
    Ok(Invalidation {
        source: fixed_uuid(fixed, EVENT_SOURCE_OFFSET, "IMapInvalidation.sourceUuid")?,
        partition_uuid: fixed_uuid(
            fixed,
            EVENT_PARTITION_UUID_OFFSET,
            "IMapInvalidation.partitionUuid",
        )?,
        sequence: fixed_i64(fixed, EVENT_SEQUENCE_OFFSET, "IMapInvalidation.sequence")?,
        key: c.nullable_data("IMapInvalidation.key")?,
    })
}

/// The parallel lists of a batch, zipped. Lists of different lengths are an error.
pub fn decode_batch_invalidation_event(
    msg: &ClientMessage,
) -> Result<Vec<Invalidation>, CodecError> {
    const WHAT: &str = "IMapBatchInvalidation";
    let (_, mut c) = open(msg, EVENT_IMAP_BATCH_INVALIDATION)?;
    let keys = c.list("IMapBatchInvalidation.keys", |c| c.data("key"))?;
    let sources = c.list_uuid("IMapBatchInvalidation.sourceUuids")?;
    let partition_uuids = c.list_uuid("IMapBatchInvalidation.partitionUuids")?;
    let sequences = c.list_i64("IMapBatchInvalidation.sequences")?;
    let n = keys.len();
    if sources.len() != n || partition_uuids.len() != n || sequences.len() != n {
        return Err(CodecError::ListLengthMismatch(WHAT));
    }
    Ok(keys
        .into_iter()
        .zip(sources)
        .zip(partition_uuids)
        .zip(sequences)
        .map(|(((key, source), partition_uuid), sequence)| Invalidation {
            key: Some(key),
            source,
            partition_uuid,
            sequence,
        })
        .collect())
}

/// A single invalidation event as a member would send it. For tests and fakes.
pub fn encode_invalidation_event(inv: &Invalidation) -> ClientMessage {
    let mut b = MessageBuilder::event(EVENT_IMAP_INVALIDATION, |f| {
        put_uuid(f, inv.source);
        put_uuid(f, inv.partition_uuid);
        f.put_i64_le(inv.sequence);
    });
    b.nullable_data(inv.key.as_ref());
    b.build()
}

/// A batch invalidation event as a member would send it (keys must be present). For tests
/// and fakes.
pub fn encode_batch_invalidation_event(batch: &[Invalidation]) -> ClientMessage {
    let mut b = MessageBuilder::event(EVENT_IMAP_BATCH_INVALIDATION, |_| {});
    let keys: Vec<Data> = batch.iter().filter_map(|i| i.key.clone()).collect();
    let sources: Vec<Option<Uuid>> = batch.iter().map(|i| i.source).collect();
    let partitions: Vec<Option<Uuid>> = batch.iter().map(|i| i.partition_uuid).collect();
    let sequences: Vec<i64> = batch.iter().map(|i| i.sequence).collect();
    b.list_data(&keys)
        .list_uuid(&sources)
        .list_uuid(&partitions)
        .list_i64(&sequences);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const EVENT: &str = "4000000000c2 023f0100 0b00000000000000 ffffffff
        00 3333222211111111 5555555555554444  00 7777888899999999 5555555555556666  2a00000000000000
        | 170000000020 00000000fffffff5000000056b65792d31";

    fn inv() -> Invalidation {
        Invalidation {
            key: Some(Data::from_string("key-1")),
            source: Some(Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555)),
            partition_uuid: Some(Uuid::from_u128(0x9999_9999_8888_7777_6666_5555_5555_5555)),
            sequence: 42,
        }
    }

    #[test]
    fn the_documented_invalidation_event_decodes() {
        let m = msg(EVENT);
        assert_eq!(m.correlation_id(), 11);
        assert_eq!(decode_invalidation_event(&m).unwrap(), inv());
        let mut ours = encode_invalidation_event(&inv());
        ours.set_correlation_id(11);
        assert_eq!(bytes_of(&ours), hex(EVENT));
    }

    #[test]
    fn a_null_key_means_clear_everything() {
        let clear = Invalidation { key: None, ..inv() };
        assert_eq!(
            decode_invalidation_event(&encode_invalidation_event(&clear)).unwrap(),
            clear
        );
    }

    #[test]
    fn a_batch_round_trips_and_mismatched_lists_are_rejected() {
        let batch = vec![
            inv(),
            Invalidation {
                sequence: 43,
                key: Some(Data::from_string("k2")),
                ..inv()
            },
        ];
        assert_eq!(
            decode_batch_invalidation_event(&encode_batch_invalidation_event(&batch)).unwrap(),
            batch
        );

        let mut b = MessageBuilder::event(EVENT_IMAP_BATCH_INVALIDATION, |_| {});
        b.list_data(&[Data::from_string("k")])
            .list_uuid(&[])
            .list_uuid(&[])
            .list_i64(&[1]);
        assert!(matches!(
            decode_batch_invalidation_event(&b.build()),
            Err(CodecError::ListLengthMismatch(_))
        ));
    }

    #[test]
    fn request_packs_flags_and_local_only() {
        assert_eq!(
            bytes_of(&encode_request("my-map", INVALIDATION_FLAG, true)),
            hex("1b00000000c0 003f0100 0000000000000000 ffffffff 00010000 01
                | 0c0000000020 6d792d6d6170")
        );
        let id = Uuid::new_v4();
        assert_eq!(decode_response(&encode_response(id)).unwrap(), id);
    }
}
