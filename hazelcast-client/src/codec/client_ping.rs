//! `Client.Ping` (§3.2, §7.1): the heartbeat sent on write-idle connections. Empty request,
//! empty response.

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;

/// hex: 0x000B00
pub const REQUEST_TYPE: i32 = 2816;
/// hex: 0x000B01
pub const RESPONSE_TYPE: i32 = 2817;

pub fn encode_request() -> ClientMessage {
    MessageBuilder::request(REQUEST_TYPE, |_| {}).build()
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
    use crate::proto::testutil::{bytes_of, hex};

    #[test]
    fn ping_request_matches_the_documented_bytes() {
        let mut m = encode_request();
        m.set_correlation_id(5);
        assert_eq!(
            bytes_of(&m),
            hex("1600000000e0 000b0000 0500000000000000 ffffffff")
        );
    }

    #[test]
    fn ping_response_decodes() {
        decode_response(&encode_response()).unwrap();
        assert!(decode_response(&encode_request()).is_err());
    }
}
