//! Message codecs (§3, §4, §8): one module per Hazelcast message, all of the same shape —
//! message-type constants, `encode_request`, `decode_response`, and event decoders — plus
//! the shared pieces they are built from: [`MessageBuilder`] for encoding, [`FrameCursor`]
//! and the `fixed_*` readers for decoding, the built-in variable-size types (§2.5) and the
//! custom types in [`custom`]. No I/O: messages in, values out.
//!
//! Decoders follow the compatibility rules of §0.2: they accept initial frames longer than
//! they need, ignore trailing frames, and skip unknown trailing fields of custom types up to
//! the matching END frame. They never panic on malformed input; they return [`CodecError`].

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Each codec covers its whole message as the protocol definition has it: both directions (the
// member's side serves the unit tests and the fake member) and every constant, whether the
// client sends that message or reads that field yet or not. Unused items here are expected.
#![allow(dead_code, unused_imports)]

use bytes::{BufMut, Bytes, BytesMut};

use crate::proto::{flags, ClientMessage, Frame, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN};
use crate::serialization::{Data, SerializationError};
use uuid::Uuid;

pub mod custom;
pub mod error;

pub mod client_add_cluster_view_listener;
pub mod client_authentication;
pub mod client_create_proxy;
pub mod client_local_backup_listener;
pub mod client_ping;
pub mod client_trigger_partition_assignment;
pub mod map_add_entry_listener;
pub mod map_add_near_cache_invalidation_listener;
pub mod map_clear;
pub mod map_contains_key;
pub mod map_delete;
pub mod map_evict_all;
pub mod map_fetch_keys;
pub mod map_fetch_near_cache_invalidation_metadata;
pub mod map_get;
pub mod map_get_all;
pub mod map_put;
pub mod map_put_all;
pub mod map_put_if_absent;
pub mod map_remove;
pub mod map_remove_entry_listener;
pub mod map_remove_if_same;
pub mod map_set;
pub mod map_set_ttl;
pub mod map_size;

/// Partition table as sent by members: member uuid → partition ids it owns.
pub type PartitionTable = Vec<(Uuid, Vec<i32>)>;

/// Size of a UUID fixed field: `isNull` byte + two `i64` LE (§2.4).
pub const UUID_SIZE: usize = 17;
/// Size of a boolean or byte fixed field.
pub const BOOL_SIZE: usize = 1;
/// Size of an `int` fixed field.
pub const INT_SIZE: usize = 4;
/// Size of a `long` fixed field.
pub const LONG_SIZE: usize = 8;

/// A message does not have the layout its codec expects.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("expected message type {expected:#08x}, got {got:#08x}")]
    UnexpectedMessageType { expected: i32, got: i32 },
    #[error("message ends before {0}")]
    MissingFrame(&'static str),
    #[error("{what}: frame has {got} bytes, needs {need}")]
    ShortFrame {
        what: &'static str,
        need: usize,
        got: usize,
    },
    #[error("{what}: expected a {expected} frame, got flags {flags:#06x}")]
    UnexpectedFrame {
        what: &'static str,
        expected: &'static str,
        flags: u16,
    },
    #[error("{0}: null where a value is required")]
    UnexpectedNull(&'static str),
    #[error("{what}: fixed-size list of {len} bytes is not a multiple of {item} bytes")]
    BadListLength {
        what: &'static str,
        len: usize,
        item: usize,
    },
    #[error("{0}: parallel lists have different lengths")]
    ListLengthMismatch(&'static str),
    #[error("{0}: not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("invalid serialized data: {0}")]
    Serialization(#[from] SerializationError),
}

// ---------------------------------------------------------------------------------------
// Fixed-size fields (§2.4), little-endian, at offsets inside a frame's content.

fn fixed<const N: usize>(c: &[u8], off: usize, what: &'static str) -> Result<[u8; N], CodecError> {
    off.checked_add(N)
        .and_then(|end| c.get(off..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(CodecError::ShortFrame {
            what,
            need: off.saturating_add(N),
            got: c.len(),
        })
}

pub fn fixed_u8(c: &[u8], off: usize, what: &'static str) -> Result<u8, CodecError> {
    fixed::<1>(c, off, what).map(|[b]| b)
}

pub fn fixed_i8(c: &[u8], off: usize, what: &'static str) -> Result<i8, CodecError> {
    fixed::<1>(c, off, what).map(i8::from_le_bytes)
}

/// Booleans are `== 1` (§2.4).
pub fn fixed_bool(c: &[u8], off: usize, what: &'static str) -> Result<bool, CodecError> {
    fixed_u8(c, off, what).map(|b| b == 1)
}

pub fn fixed_i32(c: &[u8], off: usize, what: &'static str) -> Result<i32, CodecError> {
    fixed::<4>(c, off, what).map(i32::from_le_bytes)
}

pub fn fixed_i64(c: &[u8], off: usize, what: &'static str) -> Result<i64, CodecError> {
    fixed::<8>(c, off, what).map(i64::from_le_bytes)
}

/// A nullable UUID field: `None` when its `isNull` byte is non-zero.
pub fn fixed_uuid(c: &[u8], off: usize, what: &'static str) -> Result<Option<Uuid>, CodecError> {
    let b = fixed::<UUID_SIZE>(c, off, what)?;
    Ok(uuid_from_fixed(&b))
}

pub(crate) fn uuid_from_fixed(b: &[u8; UUID_SIZE]) -> Option<Uuid> {
    let (is_null, rest) = b.split_first()?;
    if *is_null != 0 {
        return None;
    }
    let (msb, lsb) = rest.split_first_chunk::<8>()?;
    let lsb = <[u8; 8]>::try_from(lsb).ok()?;
    // Java's `UUID(mostSigBits, leastSigBits)`: two signed 64-bit halves, each little-endian
    // on the wire; the same bits as the `uuid` crate's (high, low) pair.
    Some(Uuid::from_u64_pair(
        u64::from_le_bytes(*msb),
        u64::from_le_bytes(lsb),
    ))
}

pub fn put_bool(b: &mut BytesMut, v: bool) {
    b.put_u8(u8::from(v));
}

/// Writes a UUID fixed field; a null UUID still takes 17 bytes (zeros after the flag).
pub fn put_uuid(b: &mut BytesMut, v: Option<Uuid>) {
    match v {
        Some(u) => {
            let (msb, lsb) = u.as_u64_pair();
            b.put_u8(0);
            b.put_u64_le(msb);
            b.put_u64_le(lsb);
        }
        None => {
            b.put_u8(1);
            b.put_bytes(0, 16);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Encoding.

/// Builds a message frame by frame. The initial frame gets `UNFRAGMENTED` flags; `build`
/// puts `IS_FINAL` on the last frame.
#[derive(Debug)]
pub struct MessageBuilder {
    frames: Vec<Frame>,
}

impl MessageBuilder {
    fn with_header(
        message_type: i32,
        header_tail: impl FnOnce(&mut BytesMut),
        fixed: impl FnOnce(&mut BytesMut),
        extra_flags: u16,
    ) -> MessageBuilder {
        let mut b = BytesMut::with_capacity(64);
        b.put_i32_le(message_type);
        b.put_i64_le(0);
        header_tail(&mut b);
        fixed(&mut b);
        // Room for the initial frame and the few frames a keyed request adds (name, key,
        // value) without growing the vector on the hot path.
        let mut frames = Vec::with_capacity(4);
        frames.push(Frame::new(flags::UNFRAGMENTED | extra_flags, b.freeze()));
        MessageBuilder { frames }
    }

    /// A request: correlation id 0 and partition id -1 (the invocation layer sets both),
    /// then the fixed parameters written by `fixed`.
    pub fn request(message_type: i32, fixed: impl FnOnce(&mut BytesMut)) -> MessageBuilder {
        Self::with_header(message_type, |b| b.put_i32_le(-1), fixed, 0)
    }

    /// A response (backup-ack count 0), as a member would send it. For tests and fakes.
    pub fn response(message_type: i32, fixed: impl FnOnce(&mut BytesMut)) -> MessageBuilder {
        Self::with_header(message_type, |b| b.put_u8(0), fixed, 0)
    }

    /// An event (`IS_EVENT`, partition id -1), as a member would send it. For tests and fakes.
    pub fn event(message_type: i32, fixed: impl FnOnce(&mut BytesMut)) -> MessageBuilder {
        Self::with_header(message_type, |b| b.put_i32_le(-1), fixed, flags::IS_EVENT)
    }

    pub fn frame(&mut self, f: Frame) -> &mut Self {
        self.frames.push(f);
        self
    }

    pub fn bytes(&mut self, b: impl Into<Bytes>) -> &mut Self {
        self.frame(Frame::new(0, b))
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    pub fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }

    pub fn data(&mut self, d: &Data) -> &mut Self {
        self.bytes(d.clone().into_bytes())
    }

    pub fn nullable_data(&mut self, d: Option<&Data>) -> &mut Self {
        match d {
            Some(d) => self.data(d),
            None => self.null(),
        }
    }

    pub fn null(&mut self) -> &mut Self {
        self.frame(Frame::null())
    }

    pub fn begin(&mut self) -> &mut Self {
        self.frame(Frame::begin())
    }

    pub fn end(&mut self) -> &mut Self {
        self.frame(Frame::end())
    }

    /// List_String: BEGIN, one frame per item, END.
    pub fn list_string(&mut self, items: &[String]) -> &mut Self {
        self.begin();
        for s in items {
            self.string(s);
        }
        self.end()
    }

    /// List_Data: BEGIN, one frame per item, END.
    pub fn list_data(&mut self, items: &[Data]) -> &mut Self {
        self.begin();
        for d in items {
            self.data(d);
        }
        self.end()
    }

    /// EntryList_Data_Data: BEGIN, k1, v1, k2, v2, …, END.
    pub fn entry_list_data(&mut self, entries: &[(Data, Data)]) -> &mut Self {
        self.begin();
        for (k, v) in entries {
            self.data(k);
            self.data(v);
        }
        self.end()
    }

    /// Map_String_String: BEGIN, k1, v1, …, END.
    pub fn map_string_string(&mut self, entries: &[(String, String)]) -> &mut Self {
        self.begin();
        for (k, v) in entries {
            self.string(k);
            self.string(v);
        }
        self.end()
    }

    /// List_Integer: one frame of `i32` LE.
    pub fn list_i32(&mut self, items: &[i32]) -> &mut Self {
        let mut b = BytesMut::with_capacity(items.len() * INT_SIZE);
        items.iter().for_each(|v| b.put_i32_le(*v));
        self.bytes(b.freeze())
    }

    /// List_Long: one frame of `i64` LE.
    pub fn list_i64(&mut self, items: &[i64]) -> &mut Self {
        let mut b = BytesMut::with_capacity(items.len() * LONG_SIZE);
        items.iter().for_each(|v| b.put_i64_le(*v));
        self.bytes(b.freeze())
    }

    /// List_UUID: one frame of 17-byte UUIDs.
    pub fn list_uuid(&mut self, items: &[Option<Uuid>]) -> &mut Self {
        let mut b = BytesMut::with_capacity(items.len() * UUID_SIZE);
        items.iter().for_each(|v| put_uuid(&mut b, *v));
        self.bytes(b.freeze())
    }

    /// EntryList_UUID_List_Integer (§2.5, partition table): BEGIN, one List_Integer frame per
    /// entry, END, then one List_UUID frame with all the keys.
    pub fn partition_table(&mut self, entries: &[(Uuid, Vec<i32>)]) -> &mut Self {
        self.begin();
        for (_, ids) in entries {
            self.list_i32(ids);
        }
        self.end();
        let keys: Vec<Option<Uuid>> = entries.iter().map(|(u, _)| Some(*u)).collect();
        self.list_uuid(&keys)
    }

    /// Finishes the message: `IS_FINAL` on its last frame.
    pub fn build(mut self) -> ClientMessage {
        if let Some(last) = self.frames.last_mut() {
            last.flags |= flags::IS_FINAL;
        }
        ClientMessage::new(self.frames)
    }
}

// ---------------------------------------------------------------------------------------
// Decoding.

/// Walks the frames of a message after its initial frame.
#[derive(Clone, Debug)]
pub struct FrameCursor<'a> {
    frames: &'a [Frame],
    pos: usize,
}

/// Checks the message type and returns the initial frame's content and a cursor on the
/// frame after it. Used for responses and events alike.
pub fn open(msg: &ClientMessage, expected: i32) -> Result<(&[u8], FrameCursor<'_>), CodecError> {
    let got = msg.message_type();
    if got != expected {
        return Err(CodecError::UnexpectedMessageType { expected, got });
    }
    let initial = msg
        .frames
        .first()
        .ok_or(CodecError::MissingFrame("initial frame"))?;
    Ok((
        &initial.content,
        FrameCursor {
            frames: &msg.frames,
            pos: 1,
        },
    ))
}

/// Offset of the first fixed response parameter.
pub const RESPONSE_FIXED: usize = RESPONSE_HEADER_LEN;
/// Offset of the first fixed request or event parameter.
pub const EVENT_FIXED: usize = REQUEST_HEADER_LEN;

impl<'a> FrameCursor<'a> {
    /// A cursor over arbitrary frames, starting at the first.
    pub fn new(frames: &'a [Frame]) -> Self {
        FrameCursor { frames, pos: 0 }
    }

    pub fn peek(&self) -> Option<&'a Frame> {
        self.frames.get(self.pos)
    }

    pub fn has_more(&self) -> bool {
        self.pos < self.frames.len()
    }

    pub fn next(&mut self, what: &'static str) -> Result<&'a Frame, CodecError> {
        let f = self.peek().ok_or(CodecError::MissingFrame(what))?;
        self.pos += 1;
        Ok(f)
    }

    /// Consumes the next frame if it is a NULL frame.
    pub fn next_is_null(&mut self) -> bool {
        let null = self.peek().is_some_and(Frame::is_null);
        if null {
            self.pos += 1;
        }
        null
    }

    /// True if the next frame is an END frame (not consumed).
    pub fn at_end(&self) -> bool {
        self.peek().is_some_and(Frame::is_end)
    }

    /// Next frame, which must not be BEGIN, END or NULL.
    pub fn value(&mut self, what: &'static str) -> Result<&'a Frame, CodecError> {
        let f = self.next(what)?;
        if f.is_null() {
            return Err(CodecError::UnexpectedNull(what));
        }
        if f.is_begin() || f.is_end() {
            return Err(CodecError::UnexpectedFrame {
                what,
                expected: "value",
                flags: f.flags,
            });
        }
        Ok(f)
    }

    pub fn begin(&mut self, what: &'static str) -> Result<(), CodecError> {
        let f = self.next(what)?;
        if !f.is_begin() {
            return Err(CodecError::UnexpectedFrame {
                what,
                expected: "BEGIN",
                flags: f.flags,
            });
        }
        Ok(())
    }

    /// After a BEGIN has been consumed: skips every frame up to and including the matching
    /// END, counting nested BEGIN/END pairs (§2.7). This is how unknown trailing fields of
    /// newer protocol versions are ignored.
    pub fn skip_to_end(&mut self, what: &'static str) -> Result<(), CodecError> {
        let mut depth = 1usize;
        while depth > 0 {
            let f = self.next(what)?;
            if f.is_end() {
                depth -= 1;
            } else if f.is_begin() {
                depth += 1;
            }
        }
        Ok(())
    }

    pub fn bytes(&mut self, what: &'static str) -> Result<Bytes, CodecError> {
        Ok(self.value(what)?.content.clone())
    }

    pub fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        let f = self.value(what)?;
        std::str::from_utf8(&f.content)
            .map(str::to_owned)
            .map_err(|_| CodecError::InvalidUtf8(what))
    }

    pub fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>, CodecError> {
        if self.next_is_null() {
            return Ok(None);
        }
        self.string(what).map(Some)
    }

    pub fn data(&mut self, what: &'static str) -> Result<Data, CodecError> {
        Ok(Data::from_wire(self.value(what)?.content.clone())?)
    }

    pub fn nullable_data(&mut self, what: &'static str) -> Result<Option<Data>, CodecError> {
        if self.next_is_null() {
            return Ok(None);
        }
        self.data(what).map(Some)
    }

    fn fixed_list<const N: usize, T>(
        &mut self,
        what: &'static str,
        item: impl Fn(&[u8; N]) -> T,
    ) -> Result<Vec<T>, CodecError> {
        let c = &self.value(what)?.content;
        if c.len() % N != 0 {
            return Err(CodecError::BadListLength {
                what,
                len: c.len(),
                item: N,
            });
        }
        Ok(c.chunks_exact(N)
            .filter_map(|s| <&[u8; N]>::try_from(s).ok())
            .map(item)
            .collect())
    }

    /// List_Integer (one frame).
    pub fn list_i32(&mut self, what: &'static str) -> Result<Vec<i32>, CodecError> {
        self.fixed_list::<4, _>(what, |b| i32::from_le_bytes(*b))
    }

    /// List_Long (one frame).
    pub fn list_i64(&mut self, what: &'static str) -> Result<Vec<i64>, CodecError> {
        self.fixed_list::<8, _>(what, |b| i64::from_le_bytes(*b))
    }

    /// List_UUID (one frame); null entries are `None`.
    pub fn list_uuid(&mut self, what: &'static str) -> Result<Vec<Option<Uuid>>, CodecError> {
        self.fixed_list::<UUID_SIZE, _>(what, uuid_from_fixed)
    }

    /// A multi-frame list: BEGIN, items decoded by `item`, END.
    pub fn list<T>(
        &mut self,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        self.begin(what)?;
        let mut out = Vec::new();
        loop {
            let f = self.peek().ok_or(CodecError::MissingFrame(what))?;
            if f.is_end() {
                self.pos += 1;
                return Ok(out);
            }
            let before = self.pos;
            out.push(item(self)?);
            if self.pos == before {
                // Every item decoder consumes a frame; guard against looping forever anyway.
                return Err(CodecError::MissingFrame(what));
            }
        }
    }

    /// EntryList_K_V / Map_K_V for variable K and V: BEGIN, k1, v1, …, END.
    pub fn entry_list<K, V>(
        &mut self,
        what: &'static str,
        mut key: impl FnMut(&mut Self) -> Result<K, CodecError>,
        mut value: impl FnMut(&mut Self) -> Result<V, CodecError>,
    ) -> Result<Vec<(K, V)>, CodecError> {
        self.list(what, |c| {
            let k = key(c)?;
            let v = value(c)?;
            Ok((k, v))
        })
    }

    /// EntryList_UUID_List_Integer (§2.5): BEGIN, List_Integer per entry, END, List_UUID.
    pub fn partition_table(&mut self, what: &'static str) -> Result<PartitionTable, CodecError> {
        let values = self.list(what, |c| c.list_i32(what))?;
        let keys = self.list_uuid(what)?;
        if keys.len() != values.len() {
            return Err(CodecError::ListLengthMismatch(what));
        }
        keys.into_iter()
            .zip(values)
            .map(|(k, v)| Ok((k.ok_or(CodecError::UnexpectedNull(what))?, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uuid_fixed_field_matches_the_documented_layout() {
        let mut b = BytesMut::new();
        put_uuid(
            &mut b,
            Some(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff)),
        );
        assert_eq!(
            &b[..],
            &crate::proto::testutil::hex("00 7766554433221100 ffeeddccbbaa9988")[..]
        );
        let arr = <[u8; UUID_SIZE]>::try_from(&b[..]).unwrap();
        assert_eq!(
            uuid_from_fixed(&arr).unwrap().to_string(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        let mut n = BytesMut::new();
        put_uuid(&mut n, None);
        assert_eq!(n.len(), UUID_SIZE);
        assert_eq!(fixed_uuid(&n, 0, "u").unwrap(), None);
    }

    #[test]
    fn fixed_reads_past_the_frame_report_a_short_frame() {
        assert!(matches!(
            fixed_i64(&[0; 10], 4, "x"),
            Err(CodecError::ShortFrame {
                what: "x",
                need: 12,
                got: 10
            })
        ));
        assert!(fixed_i32(&[0; 4], usize::MAX, "x").is_err());
    }

    #[test]
    fn skipping_to_end_steps_over_nested_structures() {
        let mut b = MessageBuilder::request(1, |_| {});
        b.begin()
            .string("known")
            .begin()
            .string("new")
            .end()
            .string("newer")
            .end()
            .string("after");
        let m = b.build();
        let mut c = FrameCursor::new(&m.frames[1..]);
        c.begin("t").unwrap();
        assert_eq!(c.string("known").unwrap(), "known");
        c.skip_to_end("t").unwrap();
        assert_eq!(c.string("after").unwrap(), "after");
        assert!(!c.has_more());
    }

    #[test]
    fn an_unterminated_list_is_an_error_not_a_hang() {
        let mut b = MessageBuilder::request(1, |_| {});
        b.begin().string("a");
        let m = b.build();
        let mut c = FrameCursor::new(&m.frames[1..]);
        assert!(matches!(
            c.list("l", |c| c.string("s")),
            Err(CodecError::MissingFrame("l"))
        ));
        let mut c = FrameCursor::new(&m.frames[1..]);
        c.begin("x").unwrap();
        assert!(c.skip_to_end("x").is_err());
    }

    #[test]
    fn partition_table_round_trips() {
        let u = Uuid::new_v4();
        let table = vec![(u, vec![0, 1, 2]), (Uuid::new_v4(), vec![])];
        let mut b = MessageBuilder::event(1, |_| {});
        b.partition_table(&table);
        let m = b.build();
        let mut c = FrameCursor::new(&m.frames[1..]);
        assert_eq!(c.partition_table("p").unwrap(), table);
    }

    /// Runs every decoder on `m`; only the absence of panics matters.
    fn decode_with_everything(m: &ClientMessage) {
        let _ = error::decode_error(m);
        let _ = client_authentication::decode_response(m);
        let _ = client_add_cluster_view_listener::decode_response(m);
        let _ = client_add_cluster_view_listener::decode_members_view(m);
        let _ = client_add_cluster_view_listener::decode_partitions_view(m);
        let _ = client_ping::decode_response(m);
        let _ = client_create_proxy::decode_response(m);
        let _ = map_get::decode_response(m);
        let _ = map_put::decode_response(m);
        let _ = map_set::decode_response(m);
        let _ = map_put_if_absent::decode_response(m);
        let _ = map_remove::decode_response(m);
        let _ = map_delete::decode_response(m);
        let _ = map_contains_key::decode_response(m);
        let _ = map_set_ttl::decode_response(m);
        let _ = map_size::decode_response(m);
        let _ = map_clear::decode_response(m);
        let _ = map_evict_all::decode_response(m);
        let _ = map_get_all::decode_response(m);
        let _ = map_put_all::decode_response(m);
        let _ = map_add_entry_listener::decode_response(m);
        let _ = map_add_entry_listener::decode_entry_event(m);
        let _ = map_remove_entry_listener::decode_response(m);
        let _ = map_add_near_cache_invalidation_listener::decode_response(m);
        let _ = map_add_near_cache_invalidation_listener::decode_invalidation_event(m);
        let _ = map_add_near_cache_invalidation_listener::decode_batch_invalidation_event(m);
        let _ = map_fetch_near_cache_invalidation_metadata::decode_response(m);
        if let Ok(v) = map_get::decode_response(m) {
            let _ = v.map(|d| d.to_value());
        }
    }

    const KNOWN_TYPES: &[i32] = &[
        error::ERROR_MESSAGE_TYPE,
        client_authentication::RESPONSE_TYPE,
        client_add_cluster_view_listener::RESPONSE_TYPE,
        client_add_cluster_view_listener::EVENT_MEMBERS_VIEW,
        client_add_cluster_view_listener::EVENT_PARTITIONS_VIEW,
        client_ping::RESPONSE_TYPE,
        client_create_proxy::RESPONSE_TYPE,
        map_get::RESPONSE_TYPE,
        map_put::RESPONSE_TYPE,
        map_set::RESPONSE_TYPE,
        map_put_if_absent::RESPONSE_TYPE,
        map_remove::RESPONSE_TYPE,
        map_delete::RESPONSE_TYPE,
        map_contains_key::RESPONSE_TYPE,
        map_set_ttl::RESPONSE_TYPE,
        map_size::RESPONSE_TYPE,
        map_clear::RESPONSE_TYPE,
        map_evict_all::RESPONSE_TYPE,
        map_get_all::RESPONSE_TYPE,
        map_put_all::RESPONSE_TYPE,
        map_add_entry_listener::RESPONSE_TYPE,
        map_add_entry_listener::EVENT_ENTRY,
        map_remove_entry_listener::RESPONSE_TYPE,
        map_add_near_cache_invalidation_listener::RESPONSE_TYPE,
        map_add_near_cache_invalidation_listener::EVENT_IMAP_INVALIDATION,
        map_add_near_cache_invalidation_listener::EVENT_IMAP_BATCH_INVALIDATION,
        map_fetch_near_cache_invalidation_metadata::RESPONSE_TYPE,
    ];

    /// Frames biased towards the shapes decoders look for (markers, short fixed fields,
    /// plausible Data) so that the property reaches deep into the decoders.
    fn arb_frame() -> impl Strategy<Value = Frame> {
        let flags = prop_oneof![
            Just(0u16),
            Just(flags::BEGIN_DATA_STRUCTURE),
            Just(flags::END_DATA_STRUCTURE),
            Just(flags::IS_NULL),
            any::<u16>(),
        ];
        let content = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(|tail| [
                &[0u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xf5][..],
                &tail[..]
            ]
            .concat()),
        ];
        (flags, content).prop_map(|(f, c)| Frame::new(f, c))
    }

    fn arb_message() -> impl Strategy<Value = ClientMessage> {
        (
            proptest::sample::select(KNOWN_TYPES),
            proptest::collection::vec(any::<u8>(), 0..80),
            proptest::collection::vec(arb_frame(), 0..24),
        )
            .prop_map(|(t, fixed, rest)| {
                let mut initial = t.to_le_bytes().to_vec();
                initial.extend(fixed);
                let mut frames = vec![Frame::new(flags::UNFRAGMENTED, initial)];
                frames.extend(rest);
                ClientMessage::new(frames)
            })
    }

    proptest! {
        #[test]
        fn cursor_helpers_never_panic_on_arbitrary_frames(
            frames in proptest::collection::vec(
                (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40))
                    .prop_map(|(f, c)| Frame::new(f, c)),
                0..12)
        ) {
            let mut c = FrameCursor::new(&frames);
            let _ = c.clone().partition_table("p");
            let _ = c.clone().entry_list("e", |c| c.data("k"), |c| c.nullable_string("v"));
            let _ = c.clone().list("l", |c| custom::decode_member_info(c));
            let _ = c.clone().list_uuid("u");
            let _ = c.skip_to_end("s");
        }

        #[test]
        fn every_decoder_survives_arbitrary_frames(m in arb_message()) {
            decode_with_everything(&m);
        }

        #[test]
        fn every_decoder_survives_whatever_the_reader_makes_of_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            let mut r = crate::proto::MessageReader::new(Default::default());
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(m)) = r.read(&mut buf) {
                decode_with_everything(&m);
            }
        }

        #[test]
        fn well_formed_responses_survive_truncation_and_extra_frames(cut in 0usize..40, extra in arb_frame()) {
            let full = client_authentication::encode_response(&client_authentication::AuthResponse {
                status: 0,
                member_uuid: Some(Uuid::new_v4()),
                serialization_version: 1,
                partition_count: 271,
                cluster_id: None,
                failover_supported: false,
                address: Some(custom::Address { host: "h".into(), port: 1 }),
                server_version: "5.5.0".into(),
                member_list_version: Some(1),
                partition_list_version: None,
                members: vec![],
                partitions: vec![(Uuid::new_v4(), vec![1, 2])],
            });
            let mut frames = full.frames.clone();
            frames.truncate(cut.max(1));
            frames.push(extra);
            decode_with_everything(&ClientMessage::new(frames));
        }
    }
}
