//! `Map.FetchNearCacheInvalidationMetadata` (§3.3, §8.2; Map.yaml
//! `fetchNearCacheInvalidationMetadata`): the repair metadata of near-cache invalidations. Sent
//! to one member (its uuid in the request, partition id -1); the member answers for the
//! partitions it owns: per map, the latest invalidation sequence of each partition, and the
//! uuid of each partition. A client compares them with the sequences and partition uuids its
//! invalidation events carried to find events it never received.
//!
//! Layout:
//! - request: initial frame `uuid UUID@16`, then `names List_String` (BEGIN, one String frame
//!   per name, END);
//! - response: `namePartitionSequenceList EntryList_String_EntryList_Integer_Long` (BEGIN, then
//!   per map its name as a String frame and one frame of (partition `i32`, sequence `i64`)
//!   pairs, END), then `partitionUuidList EntryList_Integer_UUID` (one frame of (partition
//!   `i32`, 17-byte UUID) pairs), §2.5.

use bytes::{BufMut, BytesMut};

use super::{
    open, put_uuid, uuid_from_fixed, CodecError, FrameCursor, MessageBuilder, INT_SIZE, LONG_SIZE,
    UUID_SIZE,
};
use crate::proto::ClientMessage;
use uuid::Uuid;

/// hex: 0x013D00
pub const REQUEST_TYPE: i32 = 81152;
/// hex: 0x013D01
pub const RESPONSE_TYPE: i32 = 81153;

/// One entry of EntryList_Integer_Long.
const PARTITION_SEQUENCE_SIZE: usize = INT_SIZE + LONG_SIZE;
/// One entry of EntryList_Integer_UUID.
const PARTITION_UUID_SIZE: usize = INT_SIZE + UUID_SIZE;

/// What one member reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Per map: (partition id, latest sequence) for the partitions the member owns.
    pub sequences: Vec<(String, Vec<(i32, i64)>)>,
    /// (partition id, partition uuid); a null uuid is `None`.
    pub partition_uuids: Vec<(i32, Option<Uuid>)>,
}

/// The request for `names`, addressed to the member `member`.
pub fn encode_request(names: &[String], member: Uuid) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| put_uuid(f, Some(member)));
    b.list_string(names);
    b.build()
}

pub fn decode_response(msg: &ClientMessage) -> Result<Metadata, CodecError> {
    const WHAT: &str = "Map.FetchNearCacheInvalidationMetadata";
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    let sequences = c.entry_list(
        "Map.FetchNearCacheInvalidationMetadata namePartitionSequenceList",
        |c| c.string("map name"),
        partition_sequences,
    )?;
    let content = &c.value(WHAT)?.content;
    let partition_uuids = fixed_pairs(content, PARTITION_UUID_SIZE, WHAT, |b| {
        let (pid, uuid) = b.split_at(INT_SIZE);
        let uuid = <&[u8; UUID_SIZE]>::try_from(uuid)
            .ok()
            .and_then(uuid_from_fixed);
        (le_i32(pid), uuid)
    })?;
    Ok(Metadata {
        sequences,
        partition_uuids,
    })
}

/// EntryList_Integer_Long: one frame of (i32, i64) pairs.
fn partition_sequences(c: &mut FrameCursor<'_>) -> Result<Vec<(i32, i64)>, CodecError> {
    const WHAT: &str = "EntryList_Integer_Long";
    let content = &c.value(WHAT)?.content;
    fixed_pairs(content, PARTITION_SEQUENCE_SIZE, WHAT, |b| {
        let (pid, seq) = b.split_at(INT_SIZE);
        (le_i32(pid), le_i64(seq))
    })
}

/// Splits a fixed-size entry list into `size`-byte items; a length that is not a multiple of
/// `size` is an error.
fn fixed_pairs<T>(
    content: &[u8],
    size: usize,
    what: &'static str,
    item: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>, CodecError> {
    if content.len() % size != 0 {
        return Err(CodecError::BadListLength {
            what,
            len: content.len(),
            item: size,
        });
    }
    Ok(content.chunks_exact(size).map(item).collect())
}

// `fixed_pairs` hands out whole items, so these slices always have the length read.
fn le_i32(b: &[u8]) -> i32 {
    b.first_chunk::<4>().map_or(0, |a| i32::from_le_bytes(*a))
}

fn le_i64(b: &[u8]) -> i64 {
    b.first_chunk::<8>().map_or(0, |a| i64::from_le_bytes(*a))
}

/// The member's answer. For tests and fakes.
pub fn encode_response(m: &Metadata) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    b.begin();
    for (name, seqs) in &m.sequences {
        let mut f = BytesMut::with_capacity(seqs.len() * PARTITION_SEQUENCE_SIZE);
        for (pid, seq) in seqs {
            f.put_i32_le(*pid);
            f.put_i64_le(*seq);
        }
        b.string(name).bytes(f.freeze());
    }
    b.end();
    let mut f = BytesMut::with_capacity(m.partition_uuids.len() * PARTITION_UUID_SIZE);
    for (pid, uuid) in &m.partition_uuids {
        f.put_i32_le(*pid);
        put_uuid(&mut f, *uuid);
    }
    b.bytes(f.freeze());
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const MEMBER: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);
    const PARTITION: Uuid = Uuid::from_u128(0x9999_9999_8888_7777_6666_5555_5555_5555);

    /// Built by hand from the sheet's rules: initial frame (type, correlation 0, partition -1,
    /// member uuid @16: not-null byte, msb LE, lsb LE), then List_String.
    const REQUEST: &str = "2700000000c0 003d0100 0000000000000000 ffffffff
        00 3333222211111111 5555555555554444
        | 060000000010
        | 0c0000000000 6d792d6d6170
        | 060000000028";

    /// Map `my-map`: partition 3 at sequence 42, partition 7 at sequence 1; partition 3 has
    /// uuid PARTITION, partition 7 a null uuid. Correlation 9.
    const RESPONSE: &str = "1300000000c0 013d0100 0900000000000000 00
        | 060000000010
        | 0c0000000000 6d792d6d6170
        | 1e0000000000 03000000 2a00000000000000 07000000 0100000000000000
        | 060000000008
        | 300000000020 03000000 00 7777888899999999 5555555555556666
                       07000000 01 0000000000000000 0000000000000000";

    fn metadata() -> Metadata {
        Metadata {
            sequences: vec![("my-map".into(), vec![(3, 42), (7, 1)])],
            partition_uuids: vec![(3, Some(PARTITION)), (7, None)],
        }
    }

    #[test]
    fn the_request_names_the_member_and_the_maps() {
        assert_eq!(
            bytes_of(&encode_request(&["my-map".into()], MEMBER)),
            hex(REQUEST)
        );
    }

    #[test]
    fn the_response_decodes_sequences_and_partition_uuids() {
        let m = msg(RESPONSE);
        assert_eq!(m.correlation_id(), 9);
        assert_eq!(decode_response(&m).unwrap(), metadata());
        let mut ours = encode_response(&metadata());
        ours.set_correlation_id(9);
        assert_eq!(bytes_of(&ours), hex(RESPONSE));
    }

    #[test]
    fn an_empty_answer_and_several_maps_round_trip() {
        let empty = Metadata::default();
        assert_eq!(decode_response(&encode_response(&empty)).unwrap(), empty);
        let two = Metadata {
            sequences: vec![("a".into(), vec![(0, 1)]), ("b".into(), vec![])],
            partition_uuids: vec![(0, Some(PARTITION))],
        };
        assert_eq!(decode_response(&encode_response(&two)).unwrap(), two);
    }

    #[test]
    fn a_list_of_the_wrong_length_is_an_error() {
        let bad = "1300000000c0 013d0100 0900000000000000 00
            | 060000000010 | 0c0000000000 6d792d6d6170 | 0b0000000000 0300000000
            | 060000000008 | 060000000020";
        assert!(matches!(
            decode_response(&msg(bad)),
            Err(CodecError::BadListLength { .. })
        ));
        let no_uuids = "1300000000c0 013d0100 0900000000000000 00 | 060000000010 | 060000000028";
        assert!(matches!(
            decode_response(&msg(no_uuids)),
            Err(CodecError::MissingFrame(_))
        ));
    }
}
