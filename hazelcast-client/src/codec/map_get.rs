//! `Map.Get` (§3.3): the value of one key, or none. Keyed: the invocation layer puts the
//! key's partition id in the header.

use bytes::BufMut;

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010200
pub const REQUEST_TYPE: i32 = 66048;
/// hex: 0x010201
pub const RESPONSE_TYPE: i32 = 66049;

pub fn encode_request(name: &str, key: &Data, thread_id: i64) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i64_le(thread_id));
    b.string(name).data(key);
    b.build()
}

pub fn decode_response(msg: &ClientMessage) -> Result<Option<Data>, CodecError> {
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    c.nullable_data("Map.Get response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(value: Option<&Data>) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    b.nullable_data(value);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const HIT: &str = "1300000000c0 01020100 0400000000000000 00 | 190000000020 00000000fffffff50000000776616c75652d31";
    const MISS: &str = "1300000000c0 01020100 0400000000000000 00 | 060000000024";

    #[test]
    fn request_matches_the_documented_bytes() {
        let mut m = encode_request("my-map", &Data::from_string("key-1"), 0);
        m.set_correlation_id(4);
        m.set_partition_id(94);
        assert_eq!(
            bytes_of(&m),
            hex(
                "1e00000000c0 00020100 0400000000000000 5e000000 0000000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000020 00000000fffffff5000000056b65792d31"
            )
        );
    }

    #[test]
    fn a_hit_and_a_miss_decode() {
        assert_eq!(
            decode_response(&msg(HIT)).unwrap(),
            Some(Data::from_string("value-1"))
        );
        assert_eq!(decode_response(&msg(MISS)).unwrap(), None);
        let mut ours = encode_response(Some(&Data::from_string("value-1")));
        ours.set_correlation_id(4);
        assert_eq!(bytes_of(&ours), hex(HIT));
    }

    #[test]
    fn a_response_without_the_value_frame_is_an_error() {
        let m = msg("1300000000e0 01020100 0400000000000000 00");
        assert!(matches!(
            decode_response(&m),
            Err(CodecError::MissingFrame(_))
        ));
    }
}
