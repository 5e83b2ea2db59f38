//! `Map.FetchKeys` (protocol 2.x, Map.yaml `fetchKeys`): one batch of a partition's keys, for
//! walking a whole map (prefix and tag purges). The request carries the map name, the
//! iteration pointers (EntryList_Integer_Integer: (table index, table size) pairs, starting at
//! `[(i32::MAX, -1)]`) and a batch size in the initial frame; the answer carries the pointers to
//! continue from and the keys. A partition is exhausted when the last pointer's index is
//! negative. Sent to one partition (its id in the header), retryable.

use bytes::{BufMut, BytesMut};

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x013700
pub const REQUEST_TYPE: i32 = 79616;
/// hex: 0x013701
pub const RESPONSE_TYPE: i32 = 79617;

/// Where a new iteration of a partition starts.
pub const START: [(i32, i32); 1] = [(i32::MAX, -1)];

pub fn encode_request(name: &str, pointers: &[(i32, i32)], batch: i32) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i32_le(batch));
    let mut entries = BytesMut::with_capacity(pointers.len() * 8);
    for (index, size) in pointers {
        entries.put_i32_le(*index);
        entries.put_i32_le(*size);
    }
    b.string(name).bytes(entries.freeze());
    b.build()
}

/// The pointers to continue from, and this batch's keys.
pub type FetchKeys = (Vec<(i32, i32)>, Vec<Data>);

pub fn decode_response(msg: &ClientMessage) -> Result<FetchKeys, CodecError> {
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    let flat = c.list_i32("Map.FetchKeys iterationPointers")?;
    if flat.len() % 2 != 0 {
        return Err(CodecError::BadListLength {
            what: "Map.FetchKeys iterationPointers",
            len: flat.len() * 4,
            item: 8,
        });
    }
    let pointers = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let keys = c.list("Map.FetchKeys keys", |c| c.data("key"))?;
    Ok((pointers, keys))
}

/// Whether the pointers say the partition has no more keys.
pub fn exhausted(pointers: &[(i32, i32)]) -> bool {
    pointers.last().is_none_or(|(index, _)| *index < 0)
}

/// The member's answer. For tests and fakes.
pub fn encode_response(pointers: &[(i32, i32)], keys: &[Data]) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    let flat: Vec<i32> = pointers.iter().flat_map(|(i, s)| [*i, *s]).collect();
    b.list_i32(&flat).list_data(keys);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_carries_batch_name_and_pointers() {
        let m = encode_request("my-map", &START, 100);
        assert_eq!(
            bytes_of(&m),
            hex("1a00000000c0 00370100 0000000000000000 ffffffff 64000000
                | 0c0000000000 6d792d6d6170
                | 0e0000000020 ffffff7f ffffffff")
        );
    }

    const RESPONSE: &str = "1300000000c0 01370100 0700000000000000 00
        | 0e0000000000 05000000 0f000000
        | 060000000010
        | 170000000000 00000000fffffff5000000056b65792d31
        | 060000000028";

    #[test]
    fn the_response_gives_pointers_and_keys() {
        let (pointers, keys) = decode_response(&msg(RESPONSE)).unwrap();
        assert_eq!(pointers, vec![(5, 15)]);
        assert_eq!(keys, vec![Data::from_string("key-1")]);
        assert!(!exhausted(&pointers));
        assert!(exhausted(&[(5, 15), (-1, 15)]));
        assert!(exhausted(&[]));
        let mut ours = encode_response(&[(5, 15)], &[Data::from_string("key-1")]);
        ours.set_correlation_id(7);
        assert_eq!(bytes_of(&ours), hex(RESPONSE));
    }

    #[test]
    fn an_odd_pointer_list_is_rejected() {
        let m = msg("1300000000c0 01370100 0700000000000000 00
            | 0a0000000000 05000000
            | 060000000010
            | 060000000028");
        assert!(decode_response(&m).is_err());
    }
}
