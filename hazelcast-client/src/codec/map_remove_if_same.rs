//! `Map.RemoveIfSame` (protocol 2.x, Map.yaml `removeIfSame`; not in the protocol sheet):
//! removes a key only if its current value equals the given one, and says whether it did.
//! The layout is that of `Map.Remove` with the value as one more `Data` frame: the thread id
//! in the initial frame, then name, key and value; the answer is one boolean in the initial
//! frame. Sent to the key's partition; not retryable (a second attempt after a dropped
//! connection would report "not removed" for what the first one removed).

use bytes::BufMut;

use super::{fixed_bool, open, CodecError, MessageBuilder, RESPONSE_FIXED};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x010800
pub const REQUEST_TYPE: i32 = 67584;
/// hex: 0x010801
pub const RESPONSE_TYPE: i32 = 67585;

const RESPONSE_REMOVED_OFFSET: usize = RESPONSE_FIXED;

pub fn encode_request(name: &str, key: &Data, value: &Data, thread_id: i64) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| f.put_i64_le(thread_id));
    b.string(name).data(key).data(value);
    b.build()
}

/// Whether the key held `value` and was removed.
pub fn decode_response(msg: &ClientMessage) -> Result<bool, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_bool(fixed, RESPONSE_REMOVED_OFFSET, "Map.RemoveIfSame response")
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
    fn request_carries_thread_id_name_key_and_value() {
        let m = encode_request(
            "my-map",
            &Data::from_string("key-1"),
            &Data::from_string("value-1"),
            0,
        );
        assert_eq!(
            bytes_of(&m),
            hex(
                "1e00000000c0 00080100 0000000000000000 ffffffff 0000000000000000
                | 0c0000000000 6d792d6d6170
                | 170000000000 00000000fffffff5000000056b65792d31
                | 190000000020 00000000fffffff50000000776616c75652d31"
            )
        );
    }

    #[test]
    fn the_response_says_whether_the_key_was_removed() {
        const REMOVED: &str = "1400000000e0 01080100 0900000000000000 00 01";
        assert!(decode_response(&msg(REMOVED)).unwrap());
        assert!(!decode_response(&msg("1400000000e0 01080100 0900000000000000 00 00")).unwrap());
        let mut ours = encode_response(true);
        ours.set_correlation_id(9);
        assert_eq!(bytes_of(&ours), hex(REMOVED));
    }

    #[test]
    fn a_response_of_another_type_or_without_the_boolean_is_refused() {
        // A Map.Remove answer is not a RemoveIfSame answer.
        let other = msg("1400000000e0 01030100 0900000000000000 00 01");
        assert!(matches!(
            decode_response(&other),
            Err(CodecError::UnexpectedMessageType { .. })
        ));
        let short = msg("1300000000e0 01080100 0900000000000000 00");
        assert!(matches!(
            decode_response(&short),
            Err(CodecError::ShortFrame { .. })
        ));
    }
}
