//! Sans-IO framing of the Hazelcast Open Binary Client Protocol 2.x (protocol sheet §2):
//! frames, whole client messages, and a byte-oriented reader that reassembles fragmented
//! messages. No sockets, no clocks: bytes in, messages out. What the frames *mean* lives
//! in `codec`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// The framing layer is complete as the protocol sheet has it (every flag, offset and
// accessor); the client uses only part of it, the tests and codecs the rest.
#![allow(dead_code, unused_imports)]

pub mod frame;
pub mod message;
pub mod reader;

pub use frame::{flags, Frame, FRAME_HEADER_LEN, MAX_FRAME_CONTENT_LEN};
pub use message::{
    patch_initial_flags, patch_request_ids, ClientMessage, CORRELATION_ID_OFFSET,
    PARTITION_ID_OFFSET, REQUEST_HEADER_LEN, RESPONSE_BACKUP_ACKS_OFFSET, RESPONSE_HEADER_LEN,
    TYPE_OFFSET,
};
pub use reader::{MessageReader, ProtocolError, ReaderLimits};

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers shared by the unit tests of `proto` and `codec`: turn the hex dumps of the
    //! protocol sheet §12 into bytes and messages.

    use super::{ClientMessage, MessageReader, ReaderLimits};
    use bytes::BytesMut;

    /// Hex digits, with whitespace and `|` ignored, `"text"` standing for its UTF-8 bytes and
    /// `(comments)` skipped — the notation of the protocol sheet §12.
    pub fn hex(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        let mut nibble: Option<u8> = None;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
                '(' => {
                    for c in chars.by_ref() {
                        if c == ')' {
                            break;
                        }
                    }
                }
                c if c.is_ascii_hexdigit() => {
                    let v = c.to_digit(16).unwrap() as u8;
                    match nibble.take() {
                        Some(hi) => out.push(hi << 4 | v),
                        None => nibble = Some(v),
                    }
                }
                c if c.is_whitespace() || c == '|' => {}
                other => panic!("unexpected character {other:?} in hex dump"),
            }
        }
        assert!(nibble.is_none(), "odd number of hex digits");
        out
    }

    /// Reads exactly one message from a hex dump, asserting nothing is left over.
    pub fn msg(s: &str) -> ClientMessage {
        let mut buf = BytesMut::from(&hex(s)[..]);
        let mut r = MessageReader::new(ReaderLimits::default());
        let m = r.read(&mut buf).unwrap().expect("a whole message");
        assert!(buf.is_empty(), "trailing bytes after the message");
        m
    }

    /// The wire bytes of a message.
    pub fn bytes_of(m: &ClientMessage) -> Vec<u8> {
        let mut b = BytesMut::new();
        m.write_to(&mut b);
        assert_eq!(b.len(), m.encoded_len());
        b.to_vec()
    }
}
