//! One protocol frame (§2.1): a 6-byte header (`i32` LE length including the header,
//! `u16` LE flags) followed by the content. Owns the flag constants (§2.2) and the marker
//! frames (BEGIN / END / NULL).

use bytes::{BufMut, Bytes, BytesMut};

/// Flag bits of a frame header (§2.2). A flag test means "all bits of the mask are set".
pub mod flags {
    /// First frame of a message or of its first fragment.
    pub const BEGIN_FRAGMENT: u16 = 0x8000;
    /// First frame of a message or of its last fragment.
    pub const END_FRAGMENT: u16 = 0x4000;
    /// Both fragment bits: the initial frame of every normal (unfragmented) message.
    pub const UNFRAGMENTED: u16 = 0xC000;
    /// Last frame of a message (or of a fragment).
    pub const IS_FINAL: u16 = 0x2000;
    /// Opens a list, map or custom type.
    pub const BEGIN_DATA_STRUCTURE: u16 = 0x1000;
    /// Closes a list, map or custom type.
    pub const END_DATA_STRUCTURE: u16 = 0x0800;
    /// A null value in place of a variable-size parameter.
    pub const IS_NULL: u16 = 0x0400;
    /// On the initial frame of event messages.
    pub const IS_EVENT: u16 = 0x0200;
    /// Request flag: the client collects backup acks itself (§8.4).
    pub const BACKUP_AWARE: u16 = 0x0100;
    /// On backup-ack event messages.
    pub const BACKUP_EVENT: u16 = 0x0080;
}

/// Size of the frame header: `i32` length + `u16` flags.
pub const FRAME_HEADER_LEN: usize = 6;

/// The largest content a frame can describe: the length field is an `i32` that includes the
/// header. Encoders never check it (their inputs are bounded far below by the layers that
/// build them); [`Frame::write_to`] debug-asserts it.
pub const MAX_FRAME_CONTENT_LEN: usize = i32::MAX as usize - FRAME_HEADER_LEN;

/// One frame: flags plus content (the header's length is derived from the content).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub flags: u16,
    pub content: Bytes,
}

impl Frame {
    pub fn new(flags: u16, content: impl Into<Bytes>) -> Frame {
        Frame {
            flags,
            content: content.into(),
        }
    }

    /// The BEGIN marker of a data structure (empty content).
    pub fn begin() -> Frame {
        Frame::new(flags::BEGIN_DATA_STRUCTURE, Bytes::new())
    }

    /// The END marker of a data structure (empty content).
    pub fn end() -> Frame {
        Frame::new(flags::END_DATA_STRUCTURE, Bytes::new())
    }

    /// The NULL marker for an absent nullable variable-size value (§2.6).
    pub fn null() -> Frame {
        Frame::new(flags::IS_NULL, Bytes::new())
    }

    /// True when every bit of `mask` is set.
    pub fn has(&self, mask: u16) -> bool {
        self.flags & mask == mask
    }

    pub fn is_begin(&self) -> bool {
        self.has(flags::BEGIN_DATA_STRUCTURE)
    }

    pub fn is_end(&self) -> bool {
        self.has(flags::END_DATA_STRUCTURE)
    }

    pub fn is_null(&self) -> bool {
        self.has(flags::IS_NULL)
    }

    pub fn is_final(&self) -> bool {
        self.has(flags::IS_FINAL)
    }

    /// Bytes this frame takes on the wire, header included.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.content.len()
    }

    /// Appends header and content to `dst`.
    pub fn write_to(&self, dst: &mut BytesMut) {
        debug_assert!(self.content.len() <= MAX_FRAME_CONTENT_LEN);
        let len = i32::try_from(self.encoded_len()).unwrap_or(i32::MAX);
        dst.reserve(self.encoded_len());
        dst.put_i32_le(len);
        dst.put_u16_le(self.flags);
        dst.put_slice(&self.content);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_frames_have_the_documented_bytes() {
        let mut b = BytesMut::new();
        Frame::begin().write_to(&mut b);
        Frame::end().write_to(&mut b);
        Frame::null().write_to(&mut b);
        assert_eq!(
            &b[..],
            &[6, 0, 0, 0, 0, 0x10, 6, 0, 0, 0, 0, 0x08, 6, 0, 0, 0, 0, 0x04]
        );
    }

    #[test]
    fn flag_tests_require_all_bits_of_the_mask() {
        let f = Frame::new(flags::BEGIN_FRAGMENT, Bytes::new());
        assert!(f.has(flags::BEGIN_FRAGMENT));
        assert!(!f.has(flags::UNFRAGMENTED));
        assert!(Frame::new(0x2800, Bytes::new()).is_end());
        assert!(Frame::new(0x2800, Bytes::new()).is_final());
    }
}
