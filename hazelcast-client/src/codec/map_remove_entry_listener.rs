//! `Map.RemoveEntryListener` (§3.3, §8): deregisters an entry or near-cache invalidation
//! listener by its registration id, on the connection it was registered on.

use bytes::BufMut;

use super::{fixed_bool, open, put_uuid, CodecError, MessageBuilder, RESPONSE_FIXED};
use crate::proto::ClientMessage;
use uuid::Uuid;

/// hex: 0x011A00
pub const REQUEST_TYPE: i32 = 72192;
/// hex: 0x011A01
pub const RESPONSE_TYPE: i32 = 72193;

const RESPONSE_OFFSET: usize = RESPONSE_FIXED;

pub fn encode_request(name: &str, registration_id: Uuid) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| put_uuid(f, Some(registration_id)));
    b.string(name);
    b.build()
}

/// Whether a registration was removed.
pub fn decode_response(msg: &ClientMessage) -> Result<bool, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_bool(fixed, RESPONSE_OFFSET, "Map.RemoveEntryListener response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(removed: bool) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| f.put_u8(u8::from(removed))).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_carries_the_registration_uuid() {
        let id = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        assert_eq!(
            bytes_of(&encode_request("my-map", id)),
            hex("2700000000c0 001a0100 0000000000000000 ffffffff 00 7766554433221100 ffeeddccbbaa9988
                | 0c0000000020 6d792d6d6170")
        );
    }

    #[test]
    fn response_decodes() {
        assert!(decode_response(&msg("1400000000e0 011a0100 0100000000000000 00 01")).unwrap());
        assert!(!decode_response(&encode_response(false)).unwrap());
    }
}
