//! The 128-bit UUID as Hazelcast carries it: two signed 64-bit halves (Java's
//! `java.util.UUID` layout). Owns generation (random v4), display and parsing;
//! the wire encoding (17-byte fixed field, §2.4 of the protocol sheet) lives in `codec`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::str::FromStr;

/// A UUID as two signed halves, exactly like Java's `UUID(mostSigBits, leastSigBits)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Uuid {
    pub msb: i64,
    pub lsb: i64,
}

/// Parse failure for [`Uuid::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid UUID text (expected 8-4-4-4-12 hex digits)")]
pub struct ParseUuidError;

impl Uuid {
    pub const fn from_halves(msb: i64, lsb: i64) -> Uuid {
        Uuid { msb, lsb }
    }

    pub const fn from_u128(v: u128) -> Uuid {
        Uuid {
            msb: (v >> 64) as u64 as i64,
            lsb: v as u64 as i64,
        }
    }

    pub const fn as_u128(&self) -> u128 {
        ((self.msb as u64 as u128) << 64) | (self.lsb as u64 as u128)
    }

    /// A random (version 4, IETF variant) UUID, as `UUID.randomUUID()` produces.
    pub fn new_v4() -> Uuid {
        let v: u128 = rand::random();
        // Version nibble (bits 12..16 of msb) = 4, variant bits (top two of lsb) = 0b10.
        let v = (v & !(0xF000u128 << 64)) | (0x4000u128 << 64);
        let v = (v & !(0xC000_0000_0000_0000u128)) | 0x8000_0000_0000_0000u128;
        Uuid::from_u128(v)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.as_u128();
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xFFFF_FFFF_FFFF
        )
    }
}

impl FromStr for Uuid {
    type Err = ParseUuidError;

    fn from_str(s: &str) -> Result<Uuid, ParseUuidError> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8usize, 4, 4, 4, 12];
        if groups.len() != lens.len() {
            return Err(ParseUuidError);
        }
        let mut v: u128 = 0;
        for (g, want) in groups.iter().zip(lens) {
            if g.len() != want || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseUuidError);
            }
            let part = u64::from_str_radix(g, 16).map_err(|_| ParseUuidError)?;
            v = (v << (4 * want)) | u128::from(part);
        }
        Ok(Uuid::from_u128(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lowercase_8_4_4_4_12() {
        let u = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        assert_eq!(u.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(u.msb, 0x0011_2233_4455_6677);
        assert_eq!(u.lsb as u64, 0x8899_aabb_ccdd_eeff);
    }

    #[test]
    fn display_and_parse_round_trip() {
        let u = Uuid::new_v4();
        assert_eq!(u.to_string().parse::<Uuid>(), Ok(u));
        assert!("not-a-uuid".parse::<Uuid>().is_err());
        assert!("00112233-4455-6677-8899-aabbccddeefg"
            .parse::<Uuid>()
            .is_err());
    }

    #[test]
    fn new_v4_sets_version_and_variant_bits() {
        for _ in 0..100 {
            let u = Uuid::new_v4();
            assert_eq!((u.msb >> 12) & 0xF, 4);
            assert_eq!((u.lsb as u64) >> 62, 0b10);
        }
        assert_ne!(Uuid::new_v4(), Uuid::new_v4());
    }
}
