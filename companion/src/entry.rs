//! The `envelope` values stored in Hazelcast: a versioned binary record of a cached response
//! (status, how it may be reused, the request headers it varies on, its purge tags, the headers
//! worth keeping and the body) and the variant index stored under a key whose response carries
//! `Vary`. Decoding is strict: anything that is not a whole record of a known version is
//! refused, so a foreign or damaged value is treated as a miss, never served.
//!
//! Entry layout, version 3 (all integers big-endian, like Hazelcast's own Data):
//! ```text
//! "HZCE" magic, u8 version (3)
//! u16 status
//! i64 stored_at (Unix ms: response_time of RFC 9111 §4.2.3)
//! u32 initial_age (corrected_initial_age, seconds)
//! u32 lifetime (freshness lifetime, seconds)
//! u32 stale_while_revalidate (seconds), u32 stale_if_error (seconds)
//! u8 flags: 1 must-revalidate, 2 no-cache, 4 immutable
//! u32 stale_if_unreachable (seconds; absent in version 2, read as 0)
//! u16 vary count, then per name: u16 name length, name, u32 value length, value
//!     (the request's normalised values of the fields named in Vary; "\0" = absent)
//! u16 tag count, then per tag: u16 length, tag
//! u16 header count, then per header: u16 name length, name, u32 value length, value
//! u32 body length, body
//! ```
//! Version 4 has the same layout and holds only partial content (status 206, RFC 9111 §3.3):
//! one piece of a representation, its `Content-Range` among the headers. A partial is never
//! written as version 3 and a version 4 record is never anything but a 206, so a companion
//! that predates partial entries reads one as an unknown version, i.e. a miss, and never
//! serves a piece as if it were the whole response.
//!
//! Version 1 (`HZCE` 1: status, stored_at, lifetime, headers, body) is still decoded, as an
//! entry with no age, no stale windows, no variants and no tags, so entries written before the
//! upgrade keep serving until they expire.
//!
//! Variant index layout (`HZCV`, version 1): u64 generation id, u16 name count, then per name
//! u16 length and name (sorted, lower-case). Variants live under `vary::variant_key`.
//!
//! Too-large marker layout (`HZCT`, version 1), stored under the primary key of a response
//! whose body was over the entry limit: i64 marked_at (Unix ms), u64 at_least (the body has at
//! least this many bytes: the declared `Content-Length`, or one past the limit where reading
//! stopped). 21 bytes, exactly. Its magic differs from the entry's and the index's, so no
//! decoder takes one for another; a companion that predates it reads it as an undecodable
//! value, i.e. a miss.

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::http::lifetime::Freshness;

const MAGIC: &[u8; 4] = b"HZCE";
const INDEX_MAGIC: &[u8; 4] = b"HZCV";
const TOO_LARGE_MAGIC: &[u8; 4] = b"HZCT";
const VERSION: u8 = 3;
/// The version of a partial entry (a 206): same layout as [`VERSION`].
const PARTIAL_VERSION: u8 = 4;
const PARTIAL: u16 = 206;
/// Response headers beyond this many are a sign of a broken or hostile origin; refuse to store.
pub const MAX_HEADERS: usize = 512;
/// Purge tags per entry: enough for real tagging schemes (Fastly allows a few hundred bytes of
/// keys), small enough that a tag index stays cheap.
pub const MAX_TAGS: usize = 64;
/// Longest single tag kept.
pub const MAX_TAG_BYTES: usize = 256;
/// Marks a Vary-selected request header that was absent (NUL never occurs in a field value).
pub const ABSENT: &[u8] = b"\0";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub status: u16,
    pub freshness: Freshness,
    /// (lower-case name, normalised request value) for each field the response varies on.
    pub vary: Vec<(String, Bytes)>,
    pub tags: Vec<String>,
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
}

/// The variant index stored under the primary key of a varying response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaryIndex {
    /// A random generation: variants of an older index (before a purge or a change of the
    /// Vary names) are never found again.
    pub id: u64,
    pub names: Vec<String>,
}

/// Stored header pairs as a header map; a pair that is not a valid header (a foreign or
/// damaged record) is left out rather than served.
pub fn header_map(pairs: &[(String, Bytes)]) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_maybe_shared(value.clone()),
        ) {
            h.append(n, v);
        }
    }
    h
}

/// A header map as the pairs an entry stores.
pub fn header_pairs(h: &HeaderMap) -> Vec<(String, Bytes)> {
    h.iter()
        .map(|(n, v)| (n.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("not an hzcache envelope (bad magic)")]
    NotAnEnvelope,
    #[error("envelope version {0} is not supported")]
    UnknownVersion(u8),
    #[error("envelope is truncated or has a wrong length")]
    Truncated,
    #[error("envelope has trailing bytes")]
    TrailingBytes,
    #[error("envelope header name is not valid")]
    BadHeaderName,
    #[error("too many headers to store ({0})")]
    TooManyHeaders(usize),
    #[error("a header or body is too large to store")]
    TooLarge,
}

fn put_pairs(out: &mut BytesMut, pairs: &[(String, Bytes)]) -> Result<(), EntryError> {
    out.put_u16(u16::try_from(pairs.len()).map_err(|_| EntryError::TooLarge)?);
    for (name, value) in pairs {
        out.put_u16(u16::try_from(name.len()).map_err(|_| EntryError::TooLarge)?);
        out.put_slice(name.as_bytes());
        out.put_u32(u32::try_from(value.len()).map_err(|_| EntryError::TooLarge)?);
        out.put_slice(value);
    }
    Ok(())
}

fn put_strings(out: &mut BytesMut, items: &[String]) -> Result<(), EntryError> {
    out.put_u16(u16::try_from(items.len()).map_err(|_| EntryError::TooLarge)?);
    for s in items {
        out.put_u16(u16::try_from(s.len()).map_err(|_| EntryError::TooLarge)?);
        out.put_slice(s.as_bytes());
    }
    Ok(())
}

impl Entry {
    pub fn encode(&self) -> Result<Bytes, EntryError> {
        if self.headers.len() > MAX_HEADERS || self.vary.len() > MAX_HEADERS {
            return Err(EntryError::TooManyHeaders(self.headers.len()));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(EntryError::TooLarge);
        }
        let pairs =
            |p: &[(String, Bytes)]| p.iter().map(|(n, v)| 6 + n.len() + v.len()).sum::<usize>();
        let size = 44
            + pairs(&self.vary)
            + pairs(&self.headers)
            + self.tags.iter().map(|t| 2 + t.len()).sum::<usize>()
            + self.body.len();
        let f = &self.freshness;
        let mut out = BytesMut::with_capacity(size);
        out.put_slice(MAGIC);
        out.put_u8(if self.status == PARTIAL {
            PARTIAL_VERSION
        } else {
            VERSION
        });
        out.put_u16(self.status);
        out.put_i64(f.stored_at_ms);
        out.put_u32(f.initial_age_secs);
        out.put_u32(f.lifetime_secs);
        out.put_u32(f.stale_while_revalidate_secs);
        out.put_u32(f.stale_if_error_secs);
        out.put_u8(
            u8::from(f.must_revalidate) | u8::from(f.no_cache) << 1 | u8::from(f.immutable) << 2,
        );
        out.put_u32(f.stale_if_unreachable_secs);
        put_pairs(&mut out, &self.vary)?;
        put_strings(&mut out, &self.tags)?;
        put_pairs(&mut out, &self.headers)?;
        out.put_u32(u32::try_from(self.body.len()).map_err(|_| EntryError::TooLarge)?);
        out.put_slice(&self.body);
        Ok(out.freeze())
    }

    /// Decodes a record (version 2, or version 1); slices of `bytes` are shared, not copied,
    /// and nothing is allocated beyond the lists (each bounded).
    pub fn decode(bytes: &Bytes) -> Result<Entry, EntryError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        if r.take(4)? != MAGIC.as_slice() {
            return Err(EntryError::NotAnEnvelope);
        }
        let version = r.u8()?;
        let status = r.u16()?;
        // A 206 only ever as version 4, and version 4 only as a 206: a piece is never read as
        // a whole response.
        if (version == PARTIAL_VERSION) != (status == PARTIAL) {
            return Err(EntryError::UnknownVersion(version));
        }
        let mut f = Freshness::default();
        let (mut vary, mut tags) = (Vec::new(), Vec::new());
        match version {
            1 => {
                f.stored_at_ms = r.u64()? as i64;
                f.lifetime_secs = r.u32()?;
            }
            2..=4 => {
                f.stored_at_ms = r.u64()? as i64;
                f.initial_age_secs = r.u32()?;
                f.lifetime_secs = r.u32()?;
                f.stale_while_revalidate_secs = r.u32()?;
                f.stale_if_error_secs = r.u32()?;
                let flags = r.u8()?;
                f.must_revalidate = flags & 1 != 0;
                f.no_cache = flags & 2 != 0;
                f.immutable = flags & 4 != 0;
                if version >= 3 {
                    f.stale_if_unreachable_secs = r.u32()?;
                }
                vary = r.pairs(bytes)?;
                let count = r.u16()? as usize;
                if count > MAX_TAGS {
                    return Err(EntryError::TooLarge);
                }
                for _ in 0..count {
                    let n = r.u16()? as usize;
                    tags.push(
                        std::str::from_utf8(r.take(n)?)
                            .map_err(|_| EntryError::BadHeaderName)?
                            .to_string(),
                    );
                }
            }
            v => return Err(EntryError::UnknownVersion(v)),
        }
        let headers = r.pairs(bytes)?;
        let body_len = r.u32()? as usize;
        let start = r.pos;
        r.take(body_len)?;
        if r.pos != bytes.len() {
            return Err(EntryError::TrailingBytes);
        }
        Ok(Entry {
            status,
            freshness: f,
            vary,
            tags,
            headers,
            body: bytes.slice(start..start + body_len),
        })
    }
}

impl VaryIndex {
    pub fn encode(&self) -> Result<Bytes, EntryError> {
        let mut out =
            BytesMut::with_capacity(16 + self.names.iter().map(|n| 2 + n.len()).sum::<usize>());
        out.put_slice(INDEX_MAGIC);
        out.put_u8(1);
        out.put_u64(self.id);
        put_strings(&mut out, &self.names)?;
        Ok(out.freeze())
    }

    /// `Ok(None)` when the value is not an index at all (an entry, say).
    pub fn decode(bytes: &Bytes) -> Result<Option<VaryIndex>, EntryError> {
        if !bytes.starts_with(INDEX_MAGIC) {
            return Ok(None);
        }
        let mut r = Reader { buf: bytes, pos: 4 };
        let version = r.u8()?;
        if version != 1 {
            return Err(EntryError::UnknownVersion(version));
        }
        let id = r.u64()?;
        let count = r.u16()? as usize;
        if count > crate::http::vary::MAX_VARY_NAMES {
            return Err(EntryError::TooManyHeaders(count));
        }
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            let n = r.u16()? as usize;
            names.push(
                std::str::from_utf8(r.take(n)?)
                    .map_err(|_| EntryError::BadHeaderName)?
                    .to_string(),
            );
        }
        if r.pos != bytes.len() {
            return Err(EntryError::TrailingBytes);
        }
        Ok(Some(VaryIndex { id, names }))
    }
}

/// The marker stored under a key whose response body was too large to store: later lookups
/// pass at once (one origin request, by the filter) instead of fetching and passing (two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub marked_at_ms: i64,
    /// The body is at least this many bytes. A companion with a larger entry limit ignores
    /// the marker and fetches (its own limit may fit the body).
    pub at_least: u64,
}

impl TooLarge {
    pub const LEN: usize = 4 + 1 + 8 + 8;

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Self::LEN);
        out.put_slice(TOO_LARGE_MAGIC);
        out.put_u8(1);
        out.put_i64(self.marked_at_ms);
        out.put_u64(self.at_least);
        out.freeze()
    }

    /// `Ok(None)` when the value is not a marker at all (an entry, an index).
    pub fn decode(bytes: &Bytes) -> Result<Option<TooLarge>, EntryError> {
        if !bytes.starts_with(TOO_LARGE_MAGIC) {
            return Ok(None);
        }
        let mut r = Reader { buf: bytes, pos: 4 };
        let version = r.u8()?;
        if version != 1 {
            return Err(EntryError::UnknownVersion(version));
        }
        let marked_at_ms = r.u64()? as i64;
        let at_least = r.u64()?;
        if r.pos != bytes.len() {
            return Err(EntryError::TrailingBytes);
        }
        Ok(Some(TooLarge {
            marked_at_ms,
            at_least,
        }))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        let end = self.pos.checked_add(n).ok_or(EntryError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(EntryError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn pairs(&mut self, bytes: &Bytes) -> Result<Vec<(String, Bytes)>, EntryError> {
        let count = self.u16()? as usize;
        if count > MAX_HEADERS {
            return Err(EntryError::TooManyHeaders(count));
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let n = self.u16()? as usize;
            let name = std::str::from_utf8(self.take(n)?)
                .map_err(|_| EntryError::BadHeaderName)?
                .to_string();
            let v = self.u32()? as usize;
            let start = self.pos;
            self.take(v)?;
            out.push((name, bytes.slice(start..start + v)));
        }
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, EntryError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, EntryError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, EntryError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Entry {
        Entry {
            status: 200,
            freshness: Freshness {
                lifetime_secs: 60,
                initial_age_secs: 3,
                stored_at_ms: 1_700_000_000_123,
                stale_while_revalidate_secs: 5,
                stale_if_error_secs: 7,
                must_revalidate: false,
                no_cache: true,
                immutable: true,
                stale_if_unreachable_secs: 9,
            },
            vary: vec![("accept-language".into(), Bytes::from_static(b"de"))],
            tags: vec!["product-1".into(), "all".into()],
            headers: vec![
                ("content-type".into(), Bytes::from_static(b"text/plain")),
                ("etag".into(), Bytes::from_static(b"\"v1\"")),
            ],
            body: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn an_entry_survives_encode_and_decode() {
        let e = sample();
        assert_eq!(Entry::decode(&e.encode().unwrap()).unwrap(), e);
    }

    #[test]
    fn rfc9111_3_3_a_partial_entry_is_version_4_and_only_a_206_is() {
        let piece = Entry {
            status: 206,
            headers: vec![("content-range".into(), Bytes::from_static(b"bytes 0-4/10"))],
            ..sample()
        };
        let bytes = piece.encode().unwrap();
        assert_eq!(bytes[4], 4, "a partial is written as version 4");
        assert_eq!(Entry::decode(&bytes).unwrap(), piece);
        assert_eq!(sample().encode().unwrap()[4], 3);
        // A 206 under another version, or another status under version 4: refused, never
        // served (what a companion that predates partials sees of a version 4 record too).
        let mut as_v3 = bytes.to_vec();
        as_v3[4] = 3;
        assert_eq!(
            Entry::decode(&Bytes::from(as_v3)),
            Err(EntryError::UnknownVersion(3))
        );
        let mut whole_as_v4 = sample().encode().unwrap().to_vec();
        whole_as_v4[4] = 4;
        assert_eq!(
            Entry::decode(&Bytes::from(whole_as_v4)),
            Err(EntryError::UnknownVersion(4))
        );
    }

    #[test]
    fn the_v3_layout_is_stable_and_v2_still_decodes() {
        let e = Entry {
            status: 404,
            freshness: Freshness {
                stored_at_ms: 1,
                initial_age_secs: 3,
                lifetime_secs: 2,
                stale_while_revalidate_secs: 4,
                stale_if_error_secs: 5,
                must_revalidate: true,
                no_cache: false,
                immutable: true,
                stale_if_unreachable_secs: 6,
            },
            vary: vec![("v".into(), Bytes::from_static(b"w"))],
            tags: vec!["t".into()],
            headers: vec![("a".into(), Bytes::from_static(b"b"))],
            body: Bytes::from_static(b"xy"),
        };
        let hex: String = e
            .encode()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let want = [
            "485a4345",
            "03",
            "0194",
            "0000000000000001",
            "00000003",
            "00000002",
            "00000004",
            "00000005",
            "05",
            "00000006",
            "0001",
            "0001",
            "76",
            "00000001",
            "77",
            "0001",
            "0001",
            "74",
            "0001",
            "0001",
            "61",
            "00000001",
            "62",
            "00000002",
            "7879",
        ]
        .concat();
        assert_eq!(hex, want);
        // Version 2: the same without the stale_if_unreachable field, read as 0.
        let v2 = want.replacen("03", "02", 1).replacen("0500000006", "05", 1);
        let bytes: Vec<u8> = (0..v2.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&v2[i..i + 2], 16).unwrap())
            .collect();
        let d = Entry::decode(&Bytes::from(bytes)).unwrap();
        assert_eq!(d.freshness.stale_if_unreachable_secs, 0);
        assert_eq!(d.freshness.stale_if_error_secs, 5);
        assert_eq!(d.body, "xy");
    }

    #[test]
    fn a_version_1_envelope_still_decodes() {
        let v1 = [
            "485a4345",
            "01",
            "0194",
            "0000000000000001",
            "00000002",
            "0001",
            "0001",
            "61",
            "00000001",
            "62",
            "00000002",
            "7879",
        ]
        .concat();
        let bytes: Vec<u8> = (0..v1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).unwrap())
            .collect();
        let e = Entry::decode(&Bytes::from(bytes)).unwrap();
        assert_eq!(e.status, 404);
        assert_eq!(e.freshness.lifetime_secs, 2);
        assert_eq!(e.freshness.stored_at_ms, 1);
        assert_eq!(e.headers, vec![("a".to_string(), Bytes::from_static(b"b"))]);
        assert_eq!(e.body, "xy");
        assert!(e.vary.is_empty() && e.tags.is_empty());
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes.slice(0..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn foreign_values_and_future_versions_are_refused() {
        assert_eq!(
            Entry::decode(&Bytes::from_static(b"plain text value")),
            Err(EntryError::NotAnEnvelope)
        );
        let mut v = sample().encode().unwrap().to_vec();
        v[4] = 9;
        assert_eq!(
            Entry::decode(&Bytes::from(v)),
            Err(EntryError::UnknownVersion(9))
        );
        let mut v = sample().encode().unwrap().to_vec();
        v.push(0);
        assert_eq!(
            Entry::decode(&Bytes::from(v)),
            Err(EntryError::TrailingBytes)
        );
    }

    #[test]
    fn a_list_count_over_the_limit_is_refused_without_allocating_for_it() {
        let mut v = sample().encode().unwrap().to_vec();
        // vary count sits after magic 4, version 1, status 2, stored_at 8, 4 × u32, flags 1,
        // u32 stale_if_unreachable.
        v[36] = 0xff;
        v[37] = 0xff;
        assert_eq!(
            Entry::decode(&Bytes::from(v)),
            Err(EntryError::TooManyHeaders(65535))
        );
    }

    #[test]
    fn a_vary_index_round_trips_and_is_told_apart_from_an_entry() {
        let i = VaryIndex {
            id: 42,
            names: vec!["accept".into(), "accept-language".into()],
        };
        let b = i.encode().unwrap();
        assert_eq!(VaryIndex::decode(&b).unwrap(), Some(i));
        assert_eq!(
            VaryIndex::decode(&sample().encode().unwrap()).unwrap(),
            None
        );
        assert!(Entry::decode(&b).is_err());
        for cut in 4..b.len() {
            assert!(VaryIndex::decode(&b.slice(0..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_too_large_marker_round_trips_and_is_never_taken_for_an_entry_or_index() {
        let m = TooLarge {
            marked_at_ms: 1_700_000_000_123,
            at_least: 3 * 1024 * 1024,
        };
        let b = m.encode();
        assert_eq!(b.len(), TooLarge::LEN);
        assert_eq!(TooLarge::decode(&b).unwrap(), Some(m));
        assert_eq!(Entry::decode(&b), Err(EntryError::NotAnEnvelope));
        assert_eq!(VaryIndex::decode(&b).unwrap(), None);
        assert_eq!(TooLarge::decode(&sample().encode().unwrap()).unwrap(), None);
        let index = VaryIndex {
            id: 1,
            names: vec!["accept".into()],
        };
        assert_eq!(TooLarge::decode(&index.encode().unwrap()).unwrap(), None);
        for cut in 4..b.len() {
            assert!(TooLarge::decode(&b.slice(0..cut)).is_err(), "cut at {cut}");
        }
        let mut long = b.to_vec();
        long.push(0);
        assert_eq!(
            TooLarge::decode(&Bytes::from(long)),
            Err(EntryError::TrailingBytes)
        );
        let mut v2 = b.to_vec();
        v2[4] = 2;
        assert_eq!(
            TooLarge::decode(&Bytes::from(v2)),
            Err(EntryError::UnknownVersion(2))
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            for prefix in [&b"HZCE\x01"[..], b"HZCE\x02", b"HZCV\x01", b"HZCT\x01", b""] {
                let mut v = prefix.to_vec();
                v.extend_from_slice(&data);
                let _ = Entry::decode(&Bytes::from(v.clone()));
                let _ = TooLarge::decode(&Bytes::from(v.clone()));
                let _ = VaryIndex::decode(&Bytes::from(v));
            }
        }
    }
}
