//! `Map.Set` (§3.3): stores a value with a TTL without returning the previous one.

use bytes::BufMut;

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010F00
pub const REQUEST_TYPE: i32 = 69376;
/// hex: 0x010F01
pub const RESPONSE_TYPE: i32 = 69377;

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

pub fn decode_response(msg: &ClientMessage) -> Result<(), CodecError> {
    open(msg, RESPONSE_TYPE).map(|_| ())
}

/// The member's answer. For tests and fakes.
pub fn encode_response() -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |_| {}).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_has_the_map_put_layout_with_its_own_type() {
        let m = encode_request(
            "my-map",
            &Data::from_string("key-1"),
            &Data::from_string("value-1"),
            0,
            60_000,
        );
        assert_eq!(
            bytes_of(&m),
            hex(
                "2600000000c0 000f0100 0000000000000000 ffffffff 0000000000000000 60ea000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000000 00000000fffffff5000000056b65792d31
                | 190000000020 00000000fffffff50000000776616c75652d31"
            )
        );
    }

    #[test]
    fn empty_response_decodes() {
        decode_response(&msg("1300000000e0 010f0100 0300000000000000 00")).unwrap();
        decode_response(&encode_response()).unwrap();
    }
}
