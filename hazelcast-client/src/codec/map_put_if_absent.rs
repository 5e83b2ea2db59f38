//! `Map.PutIfAbsent` (§3.3): stores a value only if the key is absent; returns the existing
//! value (none = the value was inserted).

use bytes::BufMut;

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010E00
pub const REQUEST_TYPE: i32 = 69120;
/// hex: 0x010E01
pub const RESPONSE_TYPE: i32 = 69121;

/// `ttl_ms`: -1 = map default, 0 = infinite, > 0 = milliseconds.
pub fn encode_request(
    name: &str,
    key: &Data,
    value: &Data,
    thread_id: i64,
    ttl_ms: i64,
) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| {
        f.put_i64_le(thread_id);
        f.put_i64_le(ttl_ms);
    });
    b.string(name).data(key).data(value);
    b.build()
}

/// The value already present, or `None` if ours was inserted.
pub fn decode_response(msg: &ClientMessage) -> Result<Option<Data>, CodecError> {
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    c.nullable_data("Map.PutIfAbsent response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(existing: Option<&Data>) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    b.nullable_data(existing);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_has_the_map_put_layout_with_its_own_type() {
        let m = encode_request("m", &Data::from_string("k"), &Data::from_i32(1), 7, -1);
        assert_eq!(
            bytes_of(&m),
            hex(
                "2600000000c0 000e0100 0000000000000000 ffffffff 0700000000000000 ffffffffffffffff
                | 070000000000 6d
                | 130000000000 00000000fffffff500000001 6b
                | 120000000020 00000000fffffff9 00000001"
            )
        );
    }

    #[test]
    fn existing_value_decodes() {
        let m = msg(
            "1300000000c0 010e0100 0300000000000000 00 | 120000000020 00000000fffffff9 00000001",
        );
        assert_eq!(decode_response(&m).unwrap(), Some(Data::from_i32(1)));
        assert_eq!(decode_response(&encode_response(None)).unwrap(), None);
    }
}
