//! `Map.Delete` (§3.3): removes a key without returning the value. Since protocol 2.7 the
//! response carries whether a value was removed; older members send an empty response.

use bytes::BufMut;

use super::{fixed_bool, open, CodecError, MessageBuilder, RESPONSE_FIXED};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010900
pub const REQUEST_TYPE: i32 = 67840;
/// hex: 0x010901
pub const RESPONSE_TYPE: i32 = 67841;

const RESPONSE_REMOVED_OFFSET: usize = RESPONSE_FIXED;

pub fn encode_request(name: &str, key: &Data, thread_id: i64) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i64_le(thread_id));
    b.string(name).data(key);
    b.build()
}

/// `Some(removed)` from a 2.7+ member, `None` from an older one (field absent).
pub fn decode_response(msg: &ClientMessage) -> Result<Option<bool>, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    if fixed.len() > RESPONSE_REMOVED_OFFSET {
        fixed_bool(fixed, RESPONSE_REMOVED_OFFSET, "Map.Delete response").map(Some)
    } else {
        Ok(None)
    }
}

/// The member's answer (2.7+ form). For tests and fakes.
pub fn encode_response(removed: bool) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| f.put_u8(u8::from(removed))).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_has_the_map_get_layout_with_its_own_type() {
        let m = encode_request("my-map", &Data::from_string("key-1"), 0);
        assert_eq!(
            bytes_of(&m),
            hex(
                "1e00000000c0 00090100 0000000000000000 ffffffff 0000000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000020 00000000fffffff5000000056b65792d31"
            )
        );
    }

    #[test]
    fn the_removed_flag_is_read_only_when_present() {
        assert_eq!(
            decode_response(&msg("1400000000e0 01090100 0100000000000000 00 01")).unwrap(),
            Some(true)
        );
        assert_eq!(
            decode_response(&msg("1400000000e0 01090100 0100000000000000 00 00")).unwrap(),
            Some(false)
        );
        assert_eq!(
            decode_response(&msg("1300000000e0 01090100 0100000000000000 00")).unwrap(),
            None
        );
        assert_eq!(decode_response(&encode_response(true)).unwrap(), Some(true));
    }
}
