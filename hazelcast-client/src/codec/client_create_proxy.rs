//! `Client.CreateProxy` (§3.2): announces a distributed object (e.g. a map) before first use.

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;

/// hex: 0x000400
pub const REQUEST_TYPE: i32 = 1024;
/// hex: 0x000401
pub const RESPONSE_TYPE: i32 = 1025;

/// Service name of IMap.
pub const MAP_SERVICE_NAME: &str = "hz:impl:mapService";

pub fn encode_request(name: &str, service_name: &str) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |_| {});
    b.string(name).string(service_name);
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
    use crate::proto::testutil::{bytes_of, hex};

    #[test]
    fn create_proxy_request_has_name_and_service_frames() {
        let m = encode_request("my-map", MAP_SERVICE_NAME);
        assert_eq!(
            bytes_of(&m),
            hex(r#"1600000000c0 00040000 0000000000000000 ffffffff
                | 0c0000000000 "my-map"
                | 180000000020 "hz:impl:mapService""#)
        );
        decode_response(&encode_response()).unwrap();
    }
}
