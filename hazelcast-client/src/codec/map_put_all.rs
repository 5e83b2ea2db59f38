//! `Map.PutAll` (§3.3): stores many entries. The invocation layer groups entries by partition
//! and sends one request per partition, with that partition id in the header.

use super::{open, put_bool, CodecError, MessageBuilder};
use crate::proto::ClientMessage;
use crate::serialization::Data;

/// hex: 0x012C00
pub const REQUEST_TYPE: i32 = 76800;
/// hex: 0x012C01
pub const RESPONSE_TYPE: i32 = 76801;

pub fn encode_request(
    name: &str,
    entries: &[(Data, Data)],
    trigger_map_loader: bool,
) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| put_bool(f, trigger_map_loader));
    b.string(name).entry_list_data(entries);
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
    fn request_carries_the_loader_flag_and_the_entries() {
        let m = encode_request(
            "my-map",
            &[(Data::from_string("key-1"), Data::from_string("value-1"))],
            true,
        );
        assert_eq!(
            bytes_of(&m),
            hex("1700000000c0 002c0100 0000000000000000 ffffffff 01
                | 0c0000000000 6d792d6d6170
                | 060000000010
                | 170000000000 00000000fffffff5000000056b65792d31
                | 190000000000 00000000fffffff50000000776616c75652d31
                | 060000000028")
        );
        decode_response(&encode_response()).unwrap();
    }
}
