//! Key → partition id (§6): MurmurHash3 x86 32-bit over the key's serialized payload and
//! Java's `HashUtil.hashToIndex`. Owns only the arithmetic, on bytes and integers: `Data`
//! (in `serialization`) applies it to a key, and the partition table (which member owns which
//! partition) lives with the cluster state.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// Seed Hazelcast uses for partition hashing (16777619).
pub const PARTITION_HASH_SEED: u32 = 0x0100_0193;

/// MurmurHash3 x86 32-bit of `data` (4-byte blocks read little-endian), as a signed `i32`.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in blocks.by_ref() {
        let mut k = block
            .iter()
            .rev()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = tail
            .iter()
            .rev()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    // Length is mixed in modulo 2^32, as Java's `int` arithmetic does.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// Java's `HashUtil.hashToIndex`: `|hash| % count`, with `i32::MIN` (whose absolute value
/// does not fit) mapped to 0. A `count <= 0` (no partition table yet) also yields 0 instead
/// of dividing by zero; callers must not route with it.
pub fn hash_to_index(hash: i32, count: i32) -> i32 {
    if count <= 0 || hash == i32::MIN {
        return 0;
    }
    hash.abs() % count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_the_official_client_vectors() {
        let rows: &[(&[u8], i32, i32)] = &[
            (b"key-1", 1228513025, 107),
            (b"key-2", 1503416236, 105),
            (b"key-3", 1876349747, 218),
            (b"key-4", -914632498, 181),
            (b"key-5", -803210507, 111),
            (b"key-8", -1444149994, 208),
            (b"", -1585187909, 238),
            (b"a", -1686100800, 46),
            (b"ab", 312914265, 50),
            (b"abc", -2068121803, 208),
            (b"abcd", -973615161, 236),
        ];
        for &(input, hash, pid) in rows {
            let h = murmur3_x86_32(input, PARTITION_HASH_SEED);
            assert_eq!(h, hash, "hash of {:?}", String::from_utf8_lossy(input));
            assert_eq!(hash_to_index(h, 271), pid);
        }
    }

    #[test]
    fn hash_to_index_follows_java_for_min_and_negative_hashes() {
        assert_eq!(hash_to_index(i32::MIN, 271), 0);
        assert_eq!(hash_to_index(-1, 271), 1);
        assert_eq!(hash_to_index(i32::MAX, 271), i32::MAX % 271);
        assert_eq!(hash_to_index(12345, 0), 0);
        assert_eq!(hash_to_index(12345, -3), 0);
    }
}
