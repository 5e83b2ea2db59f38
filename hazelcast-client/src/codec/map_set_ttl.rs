//! `Map.SetTtl` (§3.3): changes the TTL of an existing entry.

use bytes::BufMut;

use super::{fixed_bool, open, CodecError, MessageBuilder, RESPONSE_FIXED};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x014300
pub const REQUEST_TYPE: i32 = 82688;
/// hex: 0x014301
pub const RESPONSE_TYPE: i32 = 82689;

const RESPONSE_OFFSET: usize = RESPONSE_FIXED;

/// `ttl_ms`: -1 = map default, 0 = infinite, > 0 = milliseconds.
pub fn encode_request(name: &str, key: &Data, ttl_ms: i64) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i64_le(ttl_ms));
    b.string(name).data(key);
    b.build()
}

/// `false` when the key is absent.
pub fn decode_response(msg: &ClientMessage) -> Result<bool, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_bool(fixed, RESPONSE_OFFSET, "Map.SetTtl response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(updated: bool) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| f.put_u8(u8::from(updated))).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_carries_the_ttl_as_its_only_fixed_field() {
        let m = encode_request("my-map", &Data::from_string("key-1"), 1000);
        assert_eq!(
            bytes_of(&m),
            hex(
                "1e00000000c0 00430100 0000000000000000 ffffffff e803000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000020 00000000fffffff5000000056b65792d31"
            )
        );
    }

    #[test]
    fn response_decodes() {
        assert!(!decode_response(&msg("1400000000e0 01430100 0100000000000000 00 00")).unwrap());
        assert!(decode_response(&encode_response(true)).unwrap());
    }
}
