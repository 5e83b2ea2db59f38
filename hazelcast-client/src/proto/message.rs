//! A whole client message (§2.3): an ordered list of frames whose first ("initial") frame
//! carries the message type, correlation id and either the partition id (requests, events)
//! or the backup-ack count (responses), followed by the fixed-size parameters.
//!
//! Header accessors never panic: on an initial frame too short for the field (which the
//! reader never returns and encoders never build) getters return -1 and setters do nothing.

use super::frame::{flags, Frame, FRAME_HEADER_LEN};
use bytes::{Bytes, BytesMut};

/// Content offset of the message type (`i32` LE).
pub const TYPE_OFFSET: usize = 0;
/// Content offset of the correlation id (`i64` LE).
pub const CORRELATION_ID_OFFSET: usize = 4;
/// Content offset of the partition id (`i32` LE) in requests and events.
pub const PARTITION_ID_OFFSET: usize = 12;
/// Content offset of the backup-ack count (`u8`) in responses.
pub const RESPONSE_BACKUP_ACKS_OFFSET: usize = 12;
/// Request and event fixed parameters start here.
pub const REQUEST_HEADER_LEN: usize = 16;
/// Response fixed parameters start here.
pub const RESPONSE_HEADER_LEN: usize = 13;

/// A message as a list of frames. Encoders set `IS_FINAL` on the last frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMessage {
    pub frames: Vec<Frame>,
}

fn read_le<const N: usize>(content: &[u8], offset: usize) -> Option<[u8; N]> {
    content
        .get(offset..offset.checked_add(N)?)
        .and_then(|s| s.try_into().ok())
}

impl ClientMessage {
    pub fn new(frames: Vec<Frame>) -> ClientMessage {
        ClientMessage { frames }
    }

    /// The initial frame, if any.
    pub fn initial_frame(&self) -> Option<&Frame> {
        self.frames.first()
    }

    fn initial_content(&self) -> &[u8] {
        self.frames.first().map(|f| &f.content[..]).unwrap_or(&[])
    }

    /// The message type, or -1 if the initial frame is missing or too short.
    pub fn message_type(&self) -> i32 {
        read_le::<4>(self.initial_content(), TYPE_OFFSET)
            .map(i32::from_le_bytes)
            .unwrap_or(-1)
    }

    /// The correlation id, or -1 if the initial frame is missing or too short.
    pub fn correlation_id(&self) -> i64 {
        read_le::<8>(self.initial_content(), CORRELATION_ID_OFFSET)
            .map(i64::from_le_bytes)
            .unwrap_or(-1)
    }

    /// Sets the correlation id (no-op on a missing or too-short initial frame).
    pub fn set_correlation_id(&mut self, id: i64) {
        self.patch_initial(CORRELATION_ID_OFFSET, &id.to_le_bytes());
    }

    /// The partition id of a request or event header, or -1 if the initial frame is missing
    /// or too short. Meaningless on responses (that byte is the backup-ack count there).
    pub fn partition_id(&self) -> i32 {
        read_le::<4>(self.initial_content(), PARTITION_ID_OFFSET)
            .map(i32::from_le_bytes)
            .unwrap_or(-1)
    }

    /// Sets the partition id of a request (no-op on a missing or too-short initial frame).
    pub fn set_partition_id(&mut self, pid: i32) {
        self.patch_initial(PARTITION_ID_OFFSET, &pid.to_le_bytes());
    }

    /// The backup-ack count of a response (§8.4), 0 if the initial frame is too short.
    pub fn backup_acks(&self) -> u8 {
        self.initial_content()
            .get(RESPONSE_BACKUP_ACKS_OFFSET)
            .copied()
            .unwrap_or(0)
    }

    /// Flags of the initial frame (0 if there is none).
    pub fn flags(&self) -> u16 {
        self.frames.first().map(|f| f.flags).unwrap_or(0)
    }

    /// ORs `mask` into the initial frame's flags, e.g. [`flags::BACKUP_AWARE`].
    pub fn add_flags(&mut self, mask: u16) {
        if let Some(f) = self.frames.first_mut() {
            f.flags |= mask;
        }
    }

    /// True for event messages: `IS_EVENT` or `BACKUP_EVENT` on the initial frame.
    pub fn is_event(&self) -> bool {
        self.frames
            .first()
            .is_some_and(|f| f.has(flags::IS_EVENT) || f.has(flags::BACKUP_EVENT))
    }

    /// Bytes the whole message takes on the wire.
    pub fn encoded_len(&self) -> usize {
        self.frames.iter().map(Frame::encoded_len).sum()
    }

    /// Appends every frame to `dst`, back to back. Flags are written as they are: encoders
    /// already put `IS_FINAL` on the last frame.
    pub fn write_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        for f in &self.frames {
            f.write_to(dst);
        }
    }

    /// The whole message in wire form, in one buffer of exactly [`Self::encoded_len`] bytes.
    pub fn to_wire(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.write_to(&mut b);
        b
    }

    fn patch_initial(&mut self, offset: usize, bytes: &[u8]) {
        let Some(f) = self.frames.first_mut() else {
            return;
        };
        let end = offset + bytes.len();
        if f.content.len() < end {
            return;
        }
        // The initial frame is small (a few dozen bytes), so copying it is cheap and keeps
        // `Frame::content` an immutable, shareable `Bytes`.
        let mut b = BytesMut::from(&f.content[..]);
        if let Some(dst) = b.get_mut(offset..end) {
            dst.copy_from_slice(bytes);
        }
        f.content = Bytes::from(b);
    }
}

/// Sets the correlation id and partition id of a request already in wire form (the output of
/// [`ClientMessage::to_wire`]), in place. The invocation layer encodes a request once per
/// attempt and patches these two fields in the wire bytes: patching the frame list instead
/// costs a copy of the initial frame per field. Does nothing and returns `false` when the
/// first frame, as its own length field says, is too short to hold a request header (encoders
/// never build such a message).
pub fn patch_request_ids(wire: &mut [u8], correlation_id: i64, partition_id: i32) -> bool {
    let first_len = wire
        .get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(i32::from_le_bytes)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(0);
    if first_len < FRAME_HEADER_LEN + REQUEST_HEADER_LEN || wire.len() < first_len {
        return false;
    }
    let at = |offset: usize| FRAME_HEADER_LEN + offset;
    let mut put = |offset: usize, bytes: &[u8]| {
        if let Some(dst) = wire.get_mut(at(offset)..at(offset) + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    };
    put(CORRELATION_ID_OFFSET, &correlation_id.to_le_bytes());
    put(PARTITION_ID_OFFSET, &partition_id.to_le_bytes());
    true
}

/// ORs `mask` into the initial frame's flags of a message already in wire form (e.g.
/// [`flags::BACKUP_AWARE`] on one attempt of a request), in place. Returns `false` and does
/// nothing when the bytes cannot hold a frame header.
pub fn patch_initial_flags(wire: &mut [u8], mask: u16) -> bool {
    let Some(dst) = wire.get_mut(4..FRAME_HEADER_LEN) else {
        return false;
    };
    let flags = u16::from_le_bytes([dst[0], dst[1]]) | mask;
    dst.copy_from_slice(&flags.to_le_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ClientMessage {
        let mut c = Vec::new();
        c.extend_from_slice(&0x000B00i32.to_le_bytes());
        c.extend_from_slice(&0i64.to_le_bytes());
        c.extend_from_slice(&(-1i32).to_le_bytes());
        ClientMessage::new(vec![Frame::new(flags::UNFRAGMENTED | flags::IS_FINAL, c)])
    }

    #[test]
    fn patching_the_initial_flags_keeps_the_others() {
        let mut wire = request().to_wire();
        let before = request().frames[0].flags;
        assert!(patch_initial_flags(&mut wire, flags::BACKUP_AWARE));
        let read = crate::proto::MessageReader::new(Default::default())
            .read(&mut wire)
            .unwrap()
            .unwrap();
        assert_eq!(read.flags(), before | flags::BACKUP_AWARE);
        assert!(!patch_initial_flags(&mut [0u8; 5], flags::BACKUP_AWARE));
    }

    #[test]
    fn header_fields_are_read_and_patched_in_place() {
        let mut m = request();
        assert_eq!(m.message_type(), 0x000B00);
        assert_eq!(m.partition_id(), -1);
        m.set_correlation_id(5);
        m.set_partition_id(94);
        assert_eq!(m.correlation_id(), 5);
        assert_eq!(m.partition_id(), 94);
        assert_eq!(m.message_type(), 0x000B00);
        assert!(!m.is_event());
    }

    #[test]
    fn accessors_on_a_short_or_missing_initial_frame_do_not_panic() {
        let mut empty = ClientMessage::new(vec![]);
        assert_eq!(empty.message_type(), -1);
        assert_eq!(empty.correlation_id(), -1);
        assert_eq!(empty.partition_id(), -1);
        empty.set_correlation_id(1);
        empty.set_partition_id(1);
        empty.add_flags(flags::BACKUP_AWARE);
        assert!(!empty.is_event());

        let mut short = ClientMessage::new(vec![Frame::new(flags::IS_EVENT, vec![1, 0, 0])]);
        assert_eq!(short.message_type(), -1);
        short.set_correlation_id(7);
        assert_eq!(short.frames[0].content.len(), 3);
        assert!(short.is_event());
        assert_eq!(short.backup_acks(), 0);
    }

    #[test]
    fn ids_patched_in_wire_form_equal_ids_set_on_the_message() {
        let mut m = request();
        m.frames.push(Frame::new(flags::IS_FINAL, vec![7u8; 9]));
        m.frames[0].flags &= !flags::IS_FINAL;
        let mut wire = m.to_wire();
        assert_eq!(wire.len(), m.encoded_len());
        assert!(patch_request_ids(&mut wire, 0x0102_0304_0506_0708, 271));
        m.set_correlation_id(0x0102_0304_0506_0708);
        m.set_partition_id(271);
        assert_eq!(&wire[..], &m.to_wire()[..]);
    }

    #[test]
    fn patching_a_wire_message_with_a_short_first_frame_changes_nothing() {
        let short = ClientMessage::new(vec![Frame::new(flags::IS_FINAL, vec![1u8; 15])]);
        let mut wire = short.to_wire();
        let before = wire.clone();
        assert!(!patch_request_ids(&mut wire, 9, 9));
        assert_eq!(wire, before);
        // A length field claiming more than the buffer holds is refused too.
        let mut lying = BytesMut::from(&[0xff, 0, 0, 0, 0, 0xc0][..]);
        assert!(!patch_request_ids(&mut lying, 9, 9));
        assert!(!patch_request_ids(&mut [], 9, 9));
    }

    #[test]
    fn backup_event_counts_as_an_event() {
        let mut m = request();
        m.frames[0].flags |= flags::BACKUP_EVENT;
        assert!(m.is_event());
    }
}
