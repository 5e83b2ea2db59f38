//! `Map.Remove` (§3.3): removes a key and returns the removed value.

use bytes::BufMut;

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010300
pub const REQUEST_TYPE: i32 = 66304;
/// hex: 0x010301
pub const RESPONSE_TYPE: i32 = 66305;

pub fn encode_request(name: &str, key: &Data, thread_id: i64) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i64_le(thread_id));
    b.string(name).data(key);
    b.build()
}

/// The removed value, if the key was present.
pub fn decode_response(msg: &ClientMessage) -> Result<Option<Data>, CodecError> {
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    c.nullable_data("Map.Remove response")
}

/// The member's answer. For tests and fakes.
pub fn encode_response(removed: Option<&Data>) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    b.nullable_data(removed);
    b.build()
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
                "1e00000000c0 00030100 0000000000000000 ffffffff 0000000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000020 00000000fffffff5000000056b65792d31"
            )
        );
    }

    #[test]
    fn removed_value_decodes_present_or_absent() {
        assert_eq!(
            decode_response(&msg(
                "1300000000c0 01030100 0100000000000000 00 | 060000000024"
            ))
            .unwrap(),
            None
        );
        let d = Data::from_string("v");
        assert_eq!(
            decode_response(&encode_response(Some(&d))).unwrap(),
            Some(d)
        );
    }
}
