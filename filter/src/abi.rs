//! The proxy-wasm ABI 0.2.1 as plain data: host status codes and the serialized header-map
//! format ("pairs"). Pure, so the parser of bytes the host hands back is unit- and
//! property-tested natively; `host` (wasm only) makes the calls and uses these.
//!
//! Pairs layout (little-endian, as proxy-wasm-cpp-host's `marshalPairs` writes it):
//! `u32 count`, then `count` × (`u32 name_len`, `u32 value_len`), then for each pair the name
//! bytes, a NUL, the value bytes, a NUL. An empty buffer is an empty map (the host hands back
//! no memory for one).

use std::fmt;

/// A host call's status. A newtype over the raw `u32` rather than an enum: the host may return
/// a value no enum of ours lists (a newer ABI, a stub for a restricted capability), and reading
/// an unlisted value into a Rust enum is undefined behaviour.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    pub const OK: Status = Status(0);
    pub const NOT_FOUND: Status = Status(1);
    pub const BAD_ARGUMENT: Status = Status(2);
    pub const INVALID_MEMORY_ACCESS: Status = Status(6);
    pub const CAS_MISMATCH: Status = Status(8);
    pub const INTERNAL_FAILURE: Status = Status(10);

    /// A host call's raw return value as a result: Ok is 0, anything else (listed in the ABI
    /// or not) is an error the caller decides about.
    pub fn check(raw: u32) -> Result<(), Status> {
        match Status(raw) {
            Status::OK => Ok(()),
            status => Err(status),
        }
    }

    /// The ABI's name for this status, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Ok",
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            5 => "BadExpression",
            6 => "InvalidMemoryAccess",
            7 => "Empty",
            8 => "CasMismatch",
            9 => "ResultMismatch",
            10 => "InternalFailure",
            11 => "BrokenConnection",
            12 => "Unimplemented",
            _ => return None,
        })
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "Status({})", self.0),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a serialized header map was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The buffer ends before the count, the size table or a name/value says it should.
    Truncated,
    /// A name or value is not followed by its NUL.
    MissingNul,
    /// Bytes are left after the last pair.
    TrailingBytes,
    /// A header name is not UTF-8 (Envoy's codecs only pass token characters, so this means
    /// the buffer is not what it claims to be).
    NameNotUtf8,
    /// A name or value too long for the format's `u32` sizes (serializing only).
    TooLong,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapError::Truncated => "header map truncated",
            MapError::MissingNul => "header map entry not NUL-terminated",
            MapError::TrailingBytes => "bytes after the last header map entry",
            MapError::NameNotUtf8 => "header name not UTF-8",
            MapError::TooLong => "header name or value longer than u32::MAX",
        })
    }
}

/// What a host call that returns data can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The host returned a status other than the ones the call treats as success.
    Status(Status),
    /// The host returned Ok with bytes that do not parse.
    Malformed(MapError),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Status(status) => write!(f, "host status {status}"),
            HostError::Malformed(e) => write!(f, "malformed host data: {e}"),
        }
    }
}

impl From<Status> for HostError {
    fn from(status: Status) -> Self {
        HostError::Status(status)
    }
}

impl From<MapError> for HostError {
    fn from(e: MapError) -> Self {
        HostError::Malformed(e)
    }
}

/// Header pairs as the rest of the filter takes them: names are text, values may be any bytes.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Reads a front slice off `rest` without panicking: `None` when fewer than `n` bytes remain.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], MapError> {
    let (head, tail) = rest.split_at_checked(n).ok_or(MapError::Truncated)?;
    *rest = tail;
    Ok(head)
}

fn read_u32(bytes: &[u8]) -> Result<u32, MapError> {
    let word: [u8; 4] = bytes.try_into().map_err(|_| MapError::Truncated)?;
    Ok(u32::from_le_bytes(word))
}

fn to_usize(n: u32) -> Result<usize, MapError> {
    usize::try_from(n).map_err(|_| MapError::Truncated)
}

/// Reads `len` bytes and the NUL after them.
fn take_terminated<'a>(rest: &mut &'a [u8], len: u32) -> Result<&'a [u8], MapError> {
    let field = take(rest, to_usize(len)?)?;
    match take(rest, 1)? {
        [0] => Ok(field),
        _ => Err(MapError::MissingNul),
    }
}

/// Parses a serialized header map, checking every size against the bytes actually there
/// before using or allocating for it: a count or size that does not fit is `Truncated`,
/// never a huge allocation or an out-of-bounds read.
pub fn parse_pairs(bytes: &[u8]) -> Result<Headers, MapError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut rest = bytes;
    let count = to_usize(read_u32(take(&mut rest, 4)?)?)?;
    // Eight bytes of sizes per pair must be present before anything is allocated, so the
    // capacity below is bounded by the buffer's own length.
    let table_len = count.checked_mul(8).ok_or(MapError::Truncated)?;
    let table = take(&mut rest, table_len)?;
    let mut headers = Vec::with_capacity(count);
    for sizes in table.chunks_exact(8) {
        let (name_len, value_len) = sizes.split_at_checked(4).ok_or(MapError::Truncated)?;
        let name = take_terminated(&mut rest, read_u32(name_len)?)?;
        let value = take_terminated(&mut rest, read_u32(value_len)?)?;
        let name = std::str::from_utf8(name).map_err(|_| MapError::NameNotUtf8)?;
        headers.push((name.to_owned(), value.to_vec()));
    }
    if !rest.is_empty() {
        return Err(MapError::TrailingBytes);
    }
    Ok(headers)
}

fn size_u32(len: usize) -> Result<[u8; 4], MapError> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| MapError::TooLong)
}

/// Serializes pairs in the same layout, for headers the filter hands to the host.
pub fn serialize_pairs<N, V>(pairs: &[(N, V)]) -> Result<Vec<u8>, MapError>
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    // Saturating: the length is only a capacity hint.
    let data: usize = pairs.iter().fold(0usize, |sum, (n, v)| {
        sum.saturating_add(n.as_ref().len())
            .saturating_add(v.as_ref().len())
            .saturating_add(10)
    });
    let mut out = Vec::with_capacity(data.saturating_add(4));
    out.extend_from_slice(&size_u32(pairs.len())?);
    for (name, value) in pairs {
        out.extend_from_slice(&size_u32(name.as_ref().len())?);
        out.extend_from_slice(&size_u32(value.as_ref().len())?);
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK's own test vector (proxy-wasm-rust-sdk `hostcalls.rs`), so both agree on the
    /// layout.
    #[rustfmt::skip]
    const SERIALIZED: &[u8] = &[
        4, 0, 0, 0,
        7, 0, 0, 0, 3, 0, 0, 0,
        5, 0, 0, 0, 8, 0, 0, 0,
        10, 0, 0, 0, 11, 0, 0, 0,
        10, 0, 0, 0, 10, 0, 0, 0,
        b':', b'm', b'e', b't', b'h', b'o', b'd', 0, b'G', b'E', b'T', 0,
        b':', b'p', b'a', b't', b'h', 0, b'/', b'b', b'y', b't', b'e', b's', b'/', b'1', 0,
        b':', b'a', b'u', b't', b'h', b'o', b'r', b'i', b't', b'y', 0,
        b'h', b't', b't', b'p', b'b', b'i', b'n', b'.', b'o', b'r', b'g', 0,
        b'P', b'o', b'w', b'e', b'r', b'e', b'd', b'-', b'B', b'y', 0,
        b'p', b'r', b'o', b'x', b'y', b'-', b'w', b'a', b's', b'm', 0,
    ];

    fn pairs() -> Vec<(&'static str, &'static str)> {
        vec![
            (":method", "GET"),
            (":path", "/bytes/1"),
            (":authority", "httpbin.org"),
            ("Powered-By", "proxy-wasm"),
        ]
    }

    #[test]
    fn parses_the_sdk_test_vector() {
        let parsed = parse_pairs(SERIALIZED).unwrap();
        let expected: Headers = pairs()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn serializes_to_the_sdk_test_vector() {
        assert_eq!(serialize_pairs(&pairs()).unwrap(), SERIALIZED);
    }

    #[test]
    fn empty_buffer_and_zero_count_are_empty_maps() {
        assert_eq!(parse_pairs(&[]).unwrap(), Vec::new());
        assert_eq!(parse_pairs(&[0, 0, 0, 0]).unwrap(), Vec::new());
        assert_eq!(serialize_pairs::<&str, &str>(&[]).unwrap(), [0, 0, 0, 0]);
    }

    #[test]
    fn every_strict_prefix_is_refused() {
        for len in 1..SERIALIZED.len() {
            assert!(
                parse_pairs(&SERIALIZED[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
    }

    #[test]
    fn a_count_larger_than_the_buffer_is_truncated_not_allocated() {
        assert_eq!(
            parse_pairs(&[0xff, 0xff, 0xff, 0xff]),
            Err(MapError::Truncated)
        );
        // One pair more than there is: its sizes are read from the data, which then runs out.
        let mut more = SERIALIZED.to_vec();
        more[0] = 5;
        assert!(parse_pairs(&more).is_err());
    }

    #[test]
    fn a_size_past_the_end_is_truncated() {
        let mut bad = SERIALIZED.to_vec();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_pairs(&bad), Err(MapError::Truncated));
    }

    #[test]
    fn a_missing_terminator_is_refused() {
        let mut bad = SERIALIZED.to_vec();
        // The NUL after ":method".
        bad[4 + 32 + 7] = b'x';
        assert_eq!(parse_pairs(&bad), Err(MapError::MissingNul));
    }

    #[test]
    fn a_shorter_size_than_the_data_is_refused() {
        let mut bad = SERIALIZED.to_vec();
        // ":method" claimed as 6 bytes: the byte after it is 'd', not NUL.
        bad[4] = 6;
        assert_eq!(parse_pairs(&bad), Err(MapError::MissingNul));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bad = SERIALIZED.to_vec();
        bad.push(0);
        assert_eq!(parse_pairs(&bad), Err(MapError::TrailingBytes));
    }

    #[test]
    fn a_non_utf8_name_is_refused_and_a_non_utf8_value_kept() {
        let bad = serialize_pairs(&[(&[0xffu8][..], &b"v"[..])]).unwrap();
        assert_eq!(parse_pairs(&bad), Err(MapError::NameNotUtf8));
        let ok = serialize_pairs(&[(&b"x-bin"[..], &[0xffu8, 0, 0xfe][..])]).unwrap();
        assert_eq!(
            parse_pairs(&ok).unwrap(),
            vec![("x-bin".to_owned(), vec![0xff, 0, 0xfe])]
        );
    }

    #[test]
    fn only_zero_is_ok_and_every_other_status_is_an_error() {
        assert_eq!(Status::check(0), Ok(()));
        for raw in [1, 2, 6, 9, 11, 12, 13, 255, u32::MAX] {
            assert_eq!(Status::check(raw), Err(Status(raw)));
        }
    }

    #[test]
    fn statuses_outside_the_abi_are_representable() {
        assert_eq!(format!("{:?}", Status::NOT_FOUND), "NotFound");
        assert_eq!(format!("{:?}", Status(12)), "Unimplemented");
        assert_eq!(format!("{}", Status(4242)), "Status(4242)");
        assert_eq!(
            HostError::from(MapError::Truncated).to_string(),
            "malformed host data: header map truncated"
        );
    }
}
