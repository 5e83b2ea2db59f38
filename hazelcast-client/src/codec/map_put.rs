//! `Map.Put` (§3.3, §2.8): stores a value with a TTL and returns the previous value.

use bytes::BufMut;

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010100
pub const REQUEST_TYPE: i32 = 65792;
/// hex: 0x010101
pub const RESPONSE_TYPE: i32 = 65793;

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

/// The previous value, if any.
pub fn decode_response(msg: &ClientMessage) -> Result<Option<Data>, CodecError> {
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    c.nullable_data("Map.Put response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(previous: Option<&Data>) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    b.nullable_data(previous);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_matches_the_documented_bytes() {
        let mut m = encode_request(
            "my-map",
            &Data::from_string("key-1"),
            &Data::from_string("value-1"),
            0,
            -1,
        );
        m.set_correlation_id(3);
        m.set_partition_id(94);
        assert_eq!(
            bytes_of(&m),
            hex(
                "2600000000c0 00010100 0300000000000000 5e000000 0000000000000000 ffffffffffffffff
                | 0c0000000000 6d792d6d6170
                | 170000000000 00000000fffffff5000000056b65792d31
                | 190000000020 00000000fffffff50000000776616c75652d31"
            )
        );
    }

    #[test]
    fn previous_value_decodes_present_or_absent() {
        let prev = msg("1300000000c0 01010100 0300000000000000 00 | 190000000020 00000000fffffff50000000776616c75652d31");
        assert_eq!(
            decode_response(&prev).unwrap(),
            Some(Data::from_string("value-1"))
        );
        assert_eq!(decode_response(&encode_response(None)).unwrap(), None);
    }
}
