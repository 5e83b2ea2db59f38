//! A latency histogram with bounded memory: exact below 64 µs, then 32 buckets per power of
//! two (at most 1/32 ≈ 3 % error). Counters are atomic, so the tasks of one runner record into
//! one histogram. `benchmarks/client/java/HzBench.java` and `benchmarks/client/python/hz_bench.py` use the same buckets,
//! so the three clients' percentiles are computed alike.

use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are counted exactly.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two: 2^5 = 32.
const SUB_BITS: u32 = 5;
/// Latencies are capped at 2^40 µs (about 12 days): no operation of a run waits that long, and
/// the cap keeps the table at a fixed 1 152 counters.
const MAX_EXPONENT: u32 = 39;
const BUCKETS: usize = LINEAR as usize + ((MAX_EXPONENT - 5) as usize) * (1 << SUB_BITS);

pub struct Histogram {
    counts: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn index(micros: u64) -> usize {
    let v = micros.min((1u64 << (MAX_EXPONENT + 1)) - 1);
    if v < LINEAR {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros(); // >= 6
    let sub = (v >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + ((exponent - 6) as usize) * (1 << SUB_BITS) + sub as usize
}

/// The value a bucket stands for: the middle of its range.
fn value(index: usize) -> u64 {
    if (index as u64) < LINEAR {
        return index as u64;
    }
    let j = index - LINEAR as usize;
    let exponent = (j >> SUB_BITS) as u32 + 6;
    let sub = (j & ((1 << SUB_BITS) - 1)) as u64;
    let shift = exponent - SUB_BITS;
    let low = ((1u64 << SUB_BITS) + sub) << shift;
    low + ((1u64 << shift) - 1) / 2
}

impl Histogram {
    pub fn record(&self, micros: u64) {
        self.counts[index(micros)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The smallest recorded value with at least `q` (0..=1) of all values at or below it;
    /// 0 when nothing was recorded.
    pub fn percentile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let target = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= target {
                return value(i);
            }
        }
        value(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let h = Histogram::default();
        for v in 1..=10 {
            h.record(v);
        }
        assert_eq!(h.percentile(0.5), 5);
        assert_eq!(h.percentile(0.99), 10);
        assert_eq!(h.percentile(1.0), 10);
    }

    #[test]
    fn large_values_are_within_three_percent() {
        for v in [64u64, 65, 127, 128, 1000, 12_345, 999_999, 1 << 30] {
            let h = Histogram::default();
            h.record(v);
            let got = h.percentile(0.5) as f64;
            assert!(
                (got - v as f64).abs() / v as f64 <= 1.0 / 32.0,
                "{v} read back as {got}"
            );
        }
    }

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let i = index(v);
            assert!(i == last || i == last + 1, "gap at {v}");
            last = i;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_split_a_skewed_distribution() {
        let h = Histogram::default();
        for _ in 0..990 {
            h.record(100);
        }
        for _ in 0..10 {
            h.record(10_000);
        }
        assert_eq!(h.count(), 1000);
        assert!((99..=101).contains(&h.percentile(0.5)));
        assert!((99..=101).contains(&h.percentile(0.99)));
        assert!(h.percentile(0.999) > 9_000);
    }

    #[test]
    fn empty_histogram_reads_zero() {
        assert_eq!(Histogram::default().percentile(0.99), 0);
    }
}
