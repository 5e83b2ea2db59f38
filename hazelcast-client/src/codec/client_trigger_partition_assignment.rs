//! `Client.TriggerPartitionAssignment` (§3.2): asks the cluster to assign partition owners now.
//! A fresh cluster assigns them lazily, on the first partition operation, and sends no
//! PartitionsView until every partition has an owner (§3.4); a smart client sends this so it
//! can route by owner from the start. Empty request, empty response.

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;

/// hex: 0x001000
pub const REQUEST_TYPE: i32 = 4096;
/// hex: 0x001001
pub const RESPONSE_TYPE: i32 = 4097;

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
    fn request_is_one_frame_with_the_message_type_and_no_partition() {
        let mut m = encode_request();
        m.set_correlation_id(7);
        assert_eq!(
            bytes_of(&m),
            hex("1600000000e0 00100000 0700000000000000 ffffffff")
        );
    }

    #[test]
    fn response_decodes() {
        decode_response(&encode_response()).unwrap();
        assert!(decode_response(&encode_request()).is_err());
    }
}
