//! `Map.Size` (§3.3): number of entries in the map, cluster-wide.

use bytes::BufMut;

use super::{fixed_i32, open, CodecError, MessageBuilder, RESPONSE_FIXED};
use crate::proto::ClientMessage;

/// hex: 0x012A00
pub const REQUEST_TYPE: i32 = 76288;
/// hex: 0x012A01
pub const RESPONSE_TYPE: i32 = 76289;

const RESPONSE_OFFSET: usize = RESPONSE_FIXED;

pub fn encode_request(name: &str) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |_| {});
    b.string(name);
    b.build()
}

pub fn decode_response(msg: &ClientMessage) -> Result<i32, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_i32(fixed, RESPONSE_OFFSET, "Map.Size response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(size: i32) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| f.put_i32_le(size)).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const RESPONSE: &str = "1700000000e0 012a0100 0600000000000000 00 03000000";

    #[test]
    fn request_matches_the_documented_bytes() {
        let mut m = encode_request("my-map");
        m.set_correlation_id(6);
        assert_eq!(
            bytes_of(&m),
            hex("1600000000c0 002a0100 0600000000000000 ffffffff | 0c0000000020 6d792d6d6170")
        );
    }

    #[test]
    fn the_documented_response_decodes() {
        assert_eq!(decode_response(&msg(RESPONSE)).unwrap(), 3);
        let mut ours = encode_response(3);
        ours.set_correlation_id(6);
        assert_eq!(bytes_of(&ours), hex(RESPONSE));
    }

    #[test]
    fn a_longer_initial_frame_is_tolerated() {
        let m = msg("1900000000c0 012a0100 0600000000000000 00 03000000 ffff | 060000000020");
        assert_eq!(decode_response(&m).unwrap(), 3);
    }
}
