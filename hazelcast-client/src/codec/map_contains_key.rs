//! `Map.ContainsKey` (§3.3): whether a key is present.

use bytes::BufMut;

use super::{fixed_bool, open, CodecError, MessageBuilder, RESPONSE_FIXED};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010600
pub const REQUEST_TYPE: i32 = 67072;
/// hex: 0x010601
pub const RESPONSE_TYPE: i32 = 67073;

const RESPONSE_OFFSET: usize = RESPONSE_FIXED;

pub fn encode_request(name: &str, key: &Data, thread_id: i64) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i64_le(thread_id));
    b.string(name).data(key);
    b.build()
}

pub fn decode_response(msg: &ClientMessage) -> Result<bool, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_bool(fixed, RESPONSE_OFFSET, "Map.ContainsKey response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(present: bool) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| f.put_u8(u8::from(present))).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const TRUE: &str = "1400000000e0 01060100 0500000000000000 00 01";

    #[test]
    fn the_documented_true_response_decodes() {
        assert!(decode_response(&msg(TRUE)).unwrap());
        let mut ours = encode_response(true);
        ours.set_correlation_id(5);
        assert_eq!(bytes_of(&ours), hex(TRUE));
        assert!(!decode_response(&encode_response(false)).unwrap());
    }

    #[test]
    fn a_response_without_the_boolean_is_a_short_frame() {
        let m = msg("1300000000e0 01060100 0500000000000000 00");
        assert!(matches!(
            decode_response(&m),
            Err(CodecError::ShortFrame { .. })
        ));
    }

    #[test]
    fn request_has_the_map_get_layout_with_its_own_type() {
        let m = encode_request("my-map", &Data::from_string("key-1"), 0);
        assert_eq!(
            bytes_of(&m),
            hex(
                "1e00000000c0 00060100 0000000000000000 ffffffff 0000000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000020 00000000fffffff5000000056b65792d31"
            )
        );
    }
}
