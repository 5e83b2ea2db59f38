//! Byte stream → [`ClientMessage`]s (§2.1, §2.9). Follows the `Decoder` contract: bytes are
//! taken from the source buffer only a whole frame at a time, `Ok(None)` means "feed me more",
//! and `Err` means the stream is corrupt and the connection must be closed. Every length is
//! checked against [`ReaderLimits`] before any memory is reserved for it.

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use super::frame::{flags, Frame, FRAME_HEADER_LEN};
use super::message::{ClientMessage, PARTITION_ID_OFFSET};

/// The reader guarantees that the initial frame of every message it returns holds at least
/// the message type and correlation id.
const MIN_INITIAL_FRAME_CONTENT: usize = PARTITION_ID_OFFSET;

/// Size of a fragment's leading frame content: the fragmentation id (`i64` LE).
const FRAGMENT_ID_LEN: usize = 8;

/// Bounds on what one connection may make the reader hold in memory.
#[derive(Clone, Copy, Debug)]
pub struct ReaderLimits {
    /// Largest accepted frame, header included.
    pub max_frame_len: usize,
    /// Largest accepted message (sum of its frames on the wire). Also caps the bytes held by
    /// all partially reassembled fragmented messages together.
    pub max_message_len: usize,
    /// How many fragmented messages may be in reassembly at the same time.
    pub max_pending_fragments: usize,
}

impl Default for ReaderLimits {
    /// The protocol has no maximum of its own (§7.2). A cache entry is one `Data` frame, so
    /// 64 MiB per frame is far above any value we store yet small enough that a garbage length
    /// cannot make us reserve gigabytes. A message may hold several such frames (GetAll,
    /// error stack traces), hence 4 frames' worth. Members fragment rarely if ever (§2.9), one
    /// message at a time per sender thread; 64 concurrent reassemblies is generous while
    /// keeping the id map small.
    fn default() -> Self {
        ReaderLimits {
            max_frame_len: 64 * 1024 * 1024,
            max_message_len: 256 * 1024 * 1024,
            max_pending_fragments: 64,
        }
    }
}

/// The byte stream cannot be a valid sequence of client messages.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame length {len} is below the 6-byte frame header")]
    FrameTooShort { len: i32 },
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    FrameTooLong { len: usize, max: usize },
    #[error("message of at least {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLong { len: usize, max: usize },
    #[error("initial frame of a message is shorter than the 12-byte type + correlation id header")]
    InitialFrameTooShort,
    #[error(
        "leading frame of a fragment has {len} content bytes, expected an 8-byte fragmentation id"
    )]
    FragmentHeaderTooShort { len: usize },
    #[error("fragment for unknown fragmentation id {0}")]
    UnknownFragment(i64),
    #[error("first fragment repeats fragmentation id {0} that is already being reassembled")]
    DuplicateFragment(i64),
    #[error("too many fragmented messages in reassembly at once")]
    TooManyFragments,
    #[error("fragmented messages in reassembly hold {len} bytes, above the limit of {max}")]
    FragmentBuffersTooLarge { len: usize, max: usize },
}

/// A fragmented message being reassembled.
#[derive(Debug, Default)]
struct Partial {
    frames: Vec<Frame>,
    /// Wire bytes of `frames`.
    len: usize,
}

/// Incremental reader of client messages from one connection's byte stream.
#[derive(Debug)]
pub struct MessageReader {
    limits: ReaderLimits,
    /// Whole frames of the message (or fragment) currently arriving; kept here so that
    /// `read` can consume them from the source as soon as each frame is complete.
    frames: Vec<Frame>,
    /// Wire bytes of `frames`.
    frames_len: usize,
    fragments: HashMap<i64, Partial>,
    /// Wire bytes held by all of `fragments`.
    fragments_len: usize,
}

impl MessageReader {
    pub fn new(limits: ReaderLimits) -> Self {
        MessageReader {
            limits,
            frames: Vec::new(),
            frames_len: 0,
            fragments: HashMap::new(),
            fragments_len: 0,
        }
    }

    /// Number of fragmented messages currently in reassembly.
    pub fn pending_fragments(&self) -> usize {
        self.fragments.len()
    }

    /// Decoder contract: `Ok(Some)` = one whole (reassembled) message; `Ok(None)` = more bytes
    /// needed (whole frames already seen were consumed from `src` and are kept internally);
    /// `Err` = the stream is corrupt, the caller closes the connection (the reader's state is
    /// unspecified afterwards).
    pub fn read(&mut self, src: &mut BytesMut) -> Result<Option<ClientMessage>, ProtocolError> {
        loop {
            let Some((len, frame_flags)) = peek_header(src) else {
                return Ok(None);
            };
            if len < FRAME_HEADER_LEN as i32 {
                return Err(ProtocolError::FrameTooShort { len });
            }
            // Non-negative after the check above.
            let len = len as usize;
            if len > self.limits.max_frame_len {
                return Err(ProtocolError::FrameTooLong {
                    len,
                    max: self.limits.max_frame_len,
                });
            }
            let message_len = self.frames_len.saturating_add(len);
            if message_len > self.limits.max_message_len {
                return Err(ProtocolError::MessageTooLong {
                    len: message_len,
                    max: self.limits.max_message_len,
                });
            }
            if src.len() < len {
                // Only now, with the length within limits, make room for the rest.
                src.reserve(len - src.len());
                return Ok(None);
            }
            let mut raw = src.split_to(len);
            raw.advance(FRAME_HEADER_LEN);
            self.frames.push(Frame::new(frame_flags, raw.freeze()));
            self.frames_len = message_len;

            if frame_flags & flags::IS_FINAL == flags::IS_FINAL {
                let frames = std::mem::take(&mut self.frames);
                self.frames_len = 0;
                if let Some(msg) = self.complete(frames)? {
                    return Ok(Some(msg));
                }
            }
        }
    }

    /// Handles a frame sequence ended by `IS_FINAL`: either a whole message or a fragment.
    fn complete(&mut self, frames: Vec<Frame>) -> Result<Option<ClientMessage>, ProtocolError> {
        let Some(first) = frames.first() else {
            return Ok(None);
        };
        if first.has(flags::UNFRAGMENTED) {
            return whole_message(frames).map(Some);
        }

        let id = first
            .content
            .get(..FRAGMENT_ID_LEN)
            .and_then(|s| <[u8; FRAGMENT_ID_LEN]>::try_from(s).ok())
            .map(i64::from_le_bytes)
            .ok_or(ProtocolError::FragmentHeaderTooShort {
                len: first.content.len(),
            })?;
        let lead_flags = first.flags;
        let body: Vec<Frame> = frames.into_iter().skip(1).collect();
        let body_len: usize = body.iter().map(Frame::encoded_len).sum();
        let all_len = self.fragments_len.saturating_add(body_len);
        if all_len > self.limits.max_message_len {
            return Err(ProtocolError::FragmentBuffersTooLarge {
                len: all_len,
                max: self.limits.max_message_len,
            });
        }

        if lead_flags & flags::BEGIN_FRAGMENT == flags::BEGIN_FRAGMENT {
            if self.fragments.contains_key(&id) {
                return Err(ProtocolError::DuplicateFragment(id));
            }
            if self.fragments.len() >= self.limits.max_pending_fragments {
                return Err(ProtocolError::TooManyFragments);
            }
            self.fragments.insert(
                id,
                Partial {
                    frames: body,
                    len: body_len,
                },
            );
            self.fragments_len = all_len;
            return Ok(None);
        }

        let Some(partial) = self.fragments.get_mut(&id) else {
            return Err(ProtocolError::UnknownFragment(id));
        };
        let message_len = partial.len.saturating_add(body_len);
        if message_len > self.limits.max_message_len {
            return Err(ProtocolError::MessageTooLong {
                len: message_len,
                max: self.limits.max_message_len,
            });
        }
        partial.frames.extend(body);
        partial.len = message_len;
        self.fragments_len = all_len;

        if lead_flags & flags::END_FRAGMENT != flags::END_FRAGMENT {
            return Ok(None);
        }
        let Some(partial) = self.fragments.remove(&id) else {
            return Err(ProtocolError::UnknownFragment(id));
        };
        self.fragments_len = self.fragments_len.saturating_sub(partial.len);
        let mut frames = partial.frames;
        // Each fragment ended with its own IS_FINAL frame; in the reassembled message only the
        // last frame is final.
        let last = frames.len().saturating_sub(1);
        for (i, f) in frames.iter_mut().enumerate() {
            if i != last {
                f.flags &= !flags::IS_FINAL;
            }
        }
        whole_message(frames).map(Some)
    }
}

fn peek_header(src: &[u8]) -> Option<(i32, u16)> {
    let len = src.get(0..4)?.try_into().ok().map(i32::from_le_bytes)?;
    let fl = src.get(4..6)?.try_into().ok().map(u16::from_le_bytes)?;
    Some((len, fl))
}

fn whole_message(frames: Vec<Frame>) -> Result<ClientMessage, ProtocolError> {
    match frames.first() {
        Some(f) if f.content.len() >= MIN_INITIAL_FRAME_CONTENT => Ok(ClientMessage { frames }),
        _ => Err(ProtocolError::InitialFrameTooShort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};
    use bytes::Bytes;
    use proptest::prelude::*;

    const MAP_PUT: &str =
        "2600000000c0 00010100 0300000000000000 5e000000 0000000000000000 ffffffffffffffff
        | 0c0000000000 6d792d6d6170
        | 170000000000 00000000fffffff5000000056b65792d31
        | 190000000020 00000000fffffff50000000776616c75652d31";
    const PING: &str = "1600000000e0 000b0000 0500000000000000 ffffffff";

    fn reader() -> MessageReader {
        MessageReader::new(ReaderLimits::default())
    }

    fn frame_bytes(flags: u16, content: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        Frame::new(flags, Bytes::copy_from_slice(content)).write_to(&mut b);
        b.to_vec()
    }

    #[test]
    fn a_whole_message_is_read_and_its_bytes_are_consumed() {
        let m = msg(MAP_PUT);
        assert_eq!(m.frames.len(), 4);
        assert_eq!(m.message_type(), 0x010100);
        assert_eq!(m.correlation_id(), 3);
        assert_eq!(m.partition_id(), 94);
        assert_eq!(bytes_of(&m), hex(MAP_PUT));
    }

    #[test]
    fn a_message_split_at_every_byte_offset_is_read_once_whole() {
        let wire = hex(MAP_PUT);
        let expected = msg(MAP_PUT);
        for cut in 0..=wire.len() {
            let mut r = reader();
            let mut buf = BytesMut::from(&wire[..cut]);
            let first = r.read(&mut buf).unwrap();
            if cut < wire.len() {
                assert!(first.is_none(), "cut {cut} produced a message early");
                buf.extend_from_slice(&wire[cut..]);
                let m = r
                    .read(&mut buf)
                    .unwrap()
                    .expect("message after the rest arrives");
                assert_eq!(m, expected);
            } else {
                assert_eq!(first, Some(expected.clone()));
            }
            assert!(buf.is_empty());
            assert!(r.read(&mut buf).unwrap().is_none());
        }
    }

    #[test]
    fn a_message_fed_one_byte_at_a_time_is_read() {
        let wire = hex(MAP_PUT);
        let mut r = reader();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire {
            buf.extend_from_slice(&[b]);
            if let Some(m) = r.read(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![msg(MAP_PUT)]);
    }

    #[test]
    fn back_to_back_messages_are_read_in_order() {
        let mut wire = hex(PING);
        wire.extend(hex(MAP_PUT));
        let mut buf = BytesMut::from(&wire[..]);
        let mut r = reader();
        assert_eq!(r.read(&mut buf).unwrap(), Some(msg(PING)));
        assert_eq!(r.read(&mut buf).unwrap(), Some(msg(MAP_PUT)));
        assert_eq!(r.read(&mut buf).unwrap(), None);
    }

    /// Splits `m` into fragments of the given frame counts, with the given fragmentation id.
    fn fragments(m: &ClientMessage, id: i64, sizes: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut frames = m.frames.iter();
        for (i, n) in sizes.iter().enumerate() {
            let mut lead = 0u16;
            if i == 0 {
                lead |= flags::BEGIN_FRAGMENT;
            }
            if i == sizes.len() - 1 {
                lead |= flags::END_FRAGMENT;
            }
            let mut b = frame_bytes(lead, &id.to_le_bytes());
            let chunk: Vec<&Frame> = frames.by_ref().take(*n).collect();
            for (j, f) in chunk.iter().enumerate() {
                let mut fl = f.flags;
                if j == chunk.len() - 1 {
                    fl |= flags::IS_FINAL;
                }
                b.extend(frame_bytes(fl, &f.content));
            }
            out.push(b);
        }
        out
    }

    #[test]
    fn a_fragmented_message_interleaved_with_a_normal_one_is_reassembled() {
        let put = msg(MAP_PUT);
        let parts = fragments(&put, 77, &[1, 2, 1]);
        let mut wire = Vec::new();
        wire.extend(&parts[0]);
        wire.extend(hex(PING));
        wire.extend(&parts[1]);
        wire.extend(&parts[2]);
        let mut buf = BytesMut::from(&wire[..]);
        let mut r = reader();
        assert_eq!(r.read(&mut buf).unwrap(), Some(msg(PING)));
        assert_eq!(r.pending_fragments(), 1);
        assert_eq!(r.read(&mut buf).unwrap(), Some(put.clone()));
        assert_eq!(r.pending_fragments(), 0);
        assert!(buf.is_empty());
        // The reassembled message has IS_FINAL only on its last frame, so it re-encodes to
        // the original unfragmented bytes.
        assert_eq!(bytes_of(&put), hex(MAP_PUT));
    }

    #[test]
    fn two_fragmented_messages_interleaved_are_reassembled_independently() {
        let put = msg(MAP_PUT);
        let a = fragments(&put, 1, &[2, 2]);
        let b = fragments(&put, 2, &[1, 1, 2]);
        let mut wire = Vec::new();
        for p in [&a[0], &b[0], &b[1], &a[1], &b[2]] {
            wire.extend(p.iter());
        }
        let mut buf = BytesMut::from(&wire[..]);
        let mut r = reader();
        assert_eq!(r.read(&mut buf).unwrap(), Some(put.clone()));
        assert_eq!(r.read(&mut buf).unwrap(), Some(put));
        assert_eq!(r.read(&mut buf).unwrap(), None);
    }

    #[test]
    fn a_fragment_with_an_unknown_id_is_rejected() {
        let parts = fragments(&msg(MAP_PUT), 5, &[2, 2]);
        let mut buf = BytesMut::from(&parts[1][..]);
        assert!(matches!(
            reader().read(&mut buf),
            Err(ProtocolError::UnknownFragment(5))
        ));
    }

    #[test]
    fn a_repeated_first_fragment_is_rejected() {
        let parts = fragments(&msg(MAP_PUT), 5, &[2, 2]);
        let mut wire = parts[0].clone();
        wire.extend(&parts[0]);
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            reader().read(&mut buf),
            Err(ProtocolError::DuplicateFragment(5))
        ));
    }

    #[test]
    fn too_many_concurrent_fragmented_messages_are_rejected() {
        let put = msg(MAP_PUT);
        let mut r = MessageReader::new(ReaderLimits {
            max_pending_fragments: 2,
            ..ReaderLimits::default()
        });
        let mut wire = Vec::new();
        for id in 0..3 {
            wire.extend(&fragments(&put, id, &[2, 2])[0]);
        }
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            r.read(&mut buf),
            Err(ProtocolError::TooManyFragments)
        ));
    }

    #[test]
    fn a_fragment_lead_frame_without_an_id_is_rejected() {
        let wire = frame_bytes(flags::BEGIN_FRAGMENT | flags::IS_FINAL, &[1, 2, 3]);
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            reader().read(&mut buf),
            Err(ProtocolError::FragmentHeaderTooShort { len: 3 })
        ));
    }

    #[test]
    fn an_oversized_frame_length_is_rejected_before_reserving_memory() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0x7f, 0x00, 0xc0][..]);
        let cap = buf.capacity();
        let err = reader().read(&mut buf).unwrap_err();
        assert!(matches!(err, ProtocolError::FrameTooLong { len, .. } if len == i32::MAX as usize));
        assert_eq!(buf.capacity(), cap, "nothing reserved for the bad frame");
        assert_eq!(buf.len(), 6, "nothing consumed");
    }

    #[test]
    fn a_message_over_the_total_limit_is_rejected_before_its_last_frame_arrives() {
        let mut r = MessageReader::new(ReaderLimits {
            max_frame_len: 100,
            max_message_len: 60,
            max_pending_fragments: 1,
        });
        let wire = hex(MAP_PUT); // frames of 38 + 12 + 23 + 25 bytes
        let mut buf = BytesMut::from(&wire[..56]);
        assert!(matches!(
            r.read(&mut buf),
            Err(ProtocolError::MessageTooLong { len: 73, max: 60 })
        ));
    }

    #[test]
    fn a_frame_length_below_the_header_size_is_rejected() {
        for len in [-1i32, 0, 5, i32::MIN] {
            let mut b = len.to_le_bytes().to_vec();
            b.extend([0, 0xc0]);
            let mut buf = BytesMut::from(&b[..]);
            assert!(matches!(
                reader().read(&mut buf),
                Err(ProtocolError::FrameTooShort { len: l }) if l == len
            ));
        }
    }

    #[test]
    fn a_message_whose_initial_frame_lacks_the_header_is_rejected() {
        let wire = frame_bytes(flags::UNFRAGMENTED | flags::IS_FINAL, &[0; 11]);
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            reader().read(&mut buf),
            Err(ProtocolError::InitialFrameTooShort)
        ));
    }

    #[test]
    fn an_empty_frame_message_needs_more_bytes_without_error() {
        let mut r = reader();
        let mut buf = BytesMut::from(&[6u8, 0, 0][..]);
        assert!(r.read(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 3);
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(f, c)| Frame::new(f & !(flags::IS_FINAL), c))
    }

    fn arb_message() -> impl Strategy<Value = ClientMessage> {
        (
            proptest::collection::vec(any::<u8>(), 12..40),
            any::<u16>(),
            proptest::collection::vec(arb_frame(), 0..6),
        )
            .prop_map(|(initial, fl, rest)| {
                let mut frames = vec![Frame::new(
                    (fl | flags::UNFRAGMENTED) & !flags::IS_FINAL,
                    initial,
                )];
                frames.extend(rest);
                if let Some(last) = frames.last_mut() {
                    last.flags |= flags::IS_FINAL;
                }
                ClientMessage { frames }
            })
    }

    proptest! {
        #[test]
        fn read_never_panics_on_arbitrary_bytes(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)
        ) {
            let mut r = MessageReader::new(ReaderLimits {
                max_frame_len: 1024,
                max_message_len: 4096,
                max_pending_fragments: 4,
            });
            let mut buf = BytesMut::new();
            'outer: for c in chunks {
                buf.extend_from_slice(&c);
                loop {
                    match r.read(&mut buf) {
                        Ok(Some(m)) => {
                            // Reader output always has a usable header.
                            prop_assert!(m.frames[0].content.len() >= 12);
                            let _ = (m.message_type(), m.correlation_id(), m.partition_id());
                        }
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
        }

        #[test]
        fn encoded_messages_read_back_identically(
            msgs in proptest::collection::vec(arb_message(), 1..4),
            split in any::<prop::sample::Index>(),
        ) {
            let mut wire = BytesMut::new();
            for m in &msgs {
                m.write_to(&mut wire);
            }
            let cut = split.index(wire.len() + 1);
            let tail = wire.split_off(cut);
            let mut r = reader();
            let mut got = Vec::new();
            while let Some(m) = r.read(&mut wire).unwrap() {
                got.push(m);
            }
            wire.extend_from_slice(&tail);
            while let Some(m) = r.read(&mut wire).unwrap() {
                got.push(m);
            }
            prop_assert_eq!(got, msgs);
            prop_assert!(wire.is_empty());
        }
    }
}
