//! `Map.GetAll` (§3.3): the found entries for a set of keys. The invocation layer groups keys
//! by partition and sends one request per partition, with that partition id in the header.

use super::{open, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x012300
pub const REQUEST_TYPE: i32 = 74496;
/// hex: 0x012301
pub const RESPONSE_TYPE: i32 = 74497;

pub fn encode_request(name: &str, keys: &[Data]) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |_| {});
    b.string(name).list_data(keys);
    b.build()
}

/// Found entries only, as (key, value).
pub fn decode_response(msg: &ClientMessage) -> Result<Vec<(Data, Data)>, CodecError> {
    let (_, mut c) = open(msg, RESPONSE_TYPE)?;
    c.entry_list(
        "Map.GetAll response",
        |c| c.data("key"),
        |c| c.data("value"),
    )
}

/// The member's answer. For tests and fakes.
pub fn encode_response(entries: &[(Data, Data)]) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |_| {});
    b.entry_list_data(entries);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const RESPONSE: &str = "1300000000c0 01230100 0700000000000000 00
        | 060000000010
        | 170000000000 00000000fffffff5000000056b65792d31
        | 190000000000 00000000fffffff50000000776616c75652d31
        | 060000000028";

    #[test]
    fn the_documented_response_decodes() {
        let entries = vec![(Data::from_string("key-1"), Data::from_string("value-1"))];
        assert_eq!(decode_response(&msg(RESPONSE)).unwrap(), entries);
        let mut ours = encode_response(&entries);
        ours.set_correlation_id(7);
        assert_eq!(bytes_of(&ours), hex(RESPONSE));
    }

    #[test]
    fn request_carries_the_keys_as_a_list() {
        let m = encode_request("my-map", &[Data::from_string("key-1")]);
        assert_eq!(
            bytes_of(&m),
            hex("1600000000c0 00230100 0000000000000000 ffffffff
                | 0c0000000000 6d792d6d6170
                | 060000000010
                | 170000000000 00000000fffffff5000000056b65792d31
                | 060000000028")
        );
    }

    #[test]
    fn an_entry_list_with_a_dangling_key_is_rejected() {
        let m = msg("1300000000c0 01230100 0700000000000000 00
            | 060000000010
            | 170000000000 00000000fffffff5000000056b65792d31
            | 060000000028");
        assert!(decode_response(&m).is_err());
    }
}
