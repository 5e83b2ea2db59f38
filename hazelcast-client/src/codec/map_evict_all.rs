//! `Map.EvictAll` (§3.3): evicts every entry of the map (not locked ones), cluster-wide.

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;

/// hex: 0x011F00
pub const REQUEST_TYPE: i32 = 73472;
/// hex: 0x011F01
pub const RESPONSE_TYPE: i32 = 73473;

pub fn encode_request(name: &str) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |_| {});
    b.string(name);
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
    fn request_is_the_name_only() {
        assert_eq!(
            bytes_of(&encode_request("my-map")),
            hex("1600000000c0 001f0100 0000000000000000 ffffffff | 0c0000000020 6d792d6d6170")
        );
    }

    #[test]
    fn empty_response_decodes() {
        decode_response(&msg("1300000000e0 011f0100 0100000000000000 00")).unwrap();
        decode_response(&encode_response()).unwrap();
    }
}
