//! The `envelope` value stored in Hazelcast for a cached response: a small versioned binary
//! record of status, the headers worth keeping, the body and when it was stored. Decoding is
//! strict: anything that is not a whole record of a known version is refused, so a foreign or
//! damaged value is treated as a miss, never served.
//!
//! Layout (all integers big-endian, like Hazelcast's own Data):
//! ```text
//! "HZCE" magic, u8 version (1)
//! u16 status
//! i64 stored_at (Unix milliseconds; already backdated by the origin's Age)
//! u32 lifetime (seconds the entry is fresh for)
//! u16 header count, then per header: u16 name length, name, u32 value length, value
//! u32 body length, body
//! ```

use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 4] = b"HZCE";
const VERSION: u8 = 1;
/// Response headers beyond this many are a sign of a broken or hostile origin; refuse to store.
pub const MAX_HEADERS: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub status: u16,
    pub stored_at_ms: i64,
    pub lifetime_secs: u32,
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
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

impl Entry {
    pub fn encode(&self) -> Result<Bytes, EntryError> {
        if self.headers.len() > MAX_HEADERS {
            return Err(EntryError::TooManyHeaders(self.headers.len()));
        }
        let size = 4
            + 1
            + 2
            + 8
            + 4
            + 2
            + self
                .headers
                .iter()
                .map(|(n, v)| 6 + n.len() + v.len())
                .sum::<usize>()
            + 4
            + self.body.len();
        let mut out = BytesMut::with_capacity(size);
        out.put_slice(MAGIC);
        out.put_u8(VERSION);
        out.put_u16(self.status);
        out.put_i64(self.stored_at_ms);
        out.put_u32(self.lifetime_secs);
        out.put_u16(self.headers.len() as u16);
        for (name, value) in &self.headers {
            let name_len = u16::try_from(name.len()).map_err(|_| EntryError::TooLarge)?;
            let value_len = u32::try_from(value.len()).map_err(|_| EntryError::TooLarge)?;
            out.put_u16(name_len);
            out.put_slice(name.as_bytes());
            out.put_u32(value_len);
            out.put_slice(value);
        }
        out.put_u32(u32::try_from(self.body.len()).map_err(|_| EntryError::TooLarge)?);
        out.put_slice(&self.body);
        Ok(out.freeze())
    }

    /// Decodes a record; slices of `bytes` are shared, not copied, and nothing is allocated
    /// beyond the header list (bounded by `MAX_HEADERS`).
    pub fn decode(bytes: &Bytes) -> Result<Entry, EntryError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        if r.take(4)? != MAGIC.as_slice() {
            return Err(EntryError::NotAnEnvelope);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(EntryError::UnknownVersion(version));
        }
        let status = r.u16()?;
        let stored_at_ms = r.u64()? as i64;
        let lifetime_secs = r.u32()?;
        let count = r.u16()? as usize;
        if count > MAX_HEADERS {
            return Err(EntryError::TooManyHeaders(count));
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let n = r.u16()? as usize;
            let name = std::str::from_utf8(r.take(n)?)
                .map_err(|_| EntryError::BadHeaderName)?
                .to_string();
            let v = r.u32()? as usize;
            let start = r.pos;
            r.take(v)?;
            headers.push((name, bytes.slice(start..start + v)));
        }
        let body_len = r.u32()? as usize;
        let start = r.pos;
        r.take(body_len)?;
        if r.pos != bytes.len() {
            return Err(EntryError::TrailingBytes);
        }
        Ok(Entry {
            status,
            stored_at_ms,
            lifetime_secs,
            headers,
            body: bytes.slice(start..start + body_len),
        })
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
            stored_at_ms: 1_700_000_000_123,
            lifetime_secs: 60,
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
    fn the_layout_is_stable() {
        let e = Entry {
            status: 404,
            stored_at_ms: 1,
            lifetime_secs: 2,
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
        assert_eq!(hex, want);
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
    fn a_header_count_over_the_limit_is_refused_without_allocating_for_it() {
        let mut v = sample().encode().unwrap().to_vec();
        // header count sits after magic(4) version(1) status(2) stored_at(8) lifetime(4)
        v[19] = 0xff;
        v[20] = 0xff;
        assert_eq!(
            Entry::decode(&Bytes::from(v)),
            Err(EntryError::TooManyHeaders(65535))
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut v = b"HZCE\x01".to_vec();
            v.extend_from_slice(&data);
            let _ = Entry::decode(&Bytes::from(v));
            let _ = Entry::decode(&Bytes::from(data));
        }
    }
}
