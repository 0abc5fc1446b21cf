//! Engine: a timer's recorded durations as fixed buckets of atomics, from which count, sum,
//! min, max and approximate quantiles are read at snapshot time.
//!
//! # Buckets
//!
//! Durations are recorded in nanoseconds. Values below 8 have a bucket each; above, every power
//! of two `[2^e, 2^(e+1))` is split into four equal buckets (the two bits after the leading one
//! pick the bucket). That is 252 buckets covering all of `u64`, and a bucket is at most a quarter
//! as wide as its lower bound, so a quantile read as its bucket's upper bound is at most 25%
//! above the exact one (and never below it). Finer than log2 buckets at a fixed 2 KiB per timer.
//!
//! A record is four relaxed atomic operations (its bucket, the sum, the min and the max); the
//! count is the buckets' sum, so the quantiles always agree with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::snapshot::TimerStats;

/// Bits of each power of two used to pick a bucket within it.
const SUB_BITS: u32 = 2;
const SUBS: usize = 1 << SUB_BITS;
/// The exact buckets below `2 * SUBS`, then `SUBS` per power of two up to `2^63`.
const BUCKETS: usize = SUBS + (64 - SUB_BITS as usize) * SUBS;

pub(super) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration (saturated to `u64::MAX` nanoseconds, 584 years).
    pub(super) fn record(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(nanos, Ordering::Relaxed);
        self.min.fetch_min(nanos, Ordering::Relaxed);
        self.max.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The statistics of everything recorded so far.
    pub(super) fn stats(&self) -> TimerStats {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return TimerStats::default();
        }
        let (min, max) = (
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
        );
        // A record in flight may have bumped its bucket before its min and max: keep the range
        // well-formed (clamp needs min <= max) and the quantiles inside it.
        let min = min.min(max);
        let quantile = |per_mille: u64| quantile(&counts, count, per_mille).clamp(min, max);
        TimerStats {
            count,
            sum_ns: self.sum.load(Ordering::Relaxed),
            min_ns: min,
            max_ns: max,
            p50_ns: quantile(500),
            p90_ns: quantile(900),
            p99_ns: quantile(990),
        }
    }
}

/// The bucket that holds `nanos`.
fn bucket_of(nanos: u64) -> usize {
    if nanos < 2 * SUBS as u64 {
        return nanos as usize;
    }
    let exponent = 63 - nanos.leading_zeros();
    let sub = (nanos >> (exponent - SUB_BITS)) as usize & (SUBS - 1);
    SUBS + (exponent - SUB_BITS) as usize * SUBS + sub
}

/// The largest value bucket `index` holds.
fn upper_bound(index: usize) -> u64 {
    if index < 2 * SUBS {
        return index as u64;
    }
    let exponent = ((index - SUBS) / SUBS) as u32 + SUB_BITS;
    let sub = ((index - SUBS) % SUBS) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    // For the last bucket this is exactly u64::MAX: no overflow.
    (SUBS as u64 + sub) * width + (width - 1)
}

/// The upper bound of the bucket holding the value of rank `ceil(count * per_mille / 1000)`
/// (integer arithmetic, so p90 of 100 values is exactly the 90th).
fn quantile(counts: &[u64], count: u64, per_mille: u64) -> u64 {
    let rank = (u128::from(count) * u128::from(per_mille))
        .div_ceil(1000)
        .max(1);
    let mut seen = 0u128;
    for (index, &n) in counts.iter().enumerate() {
        seen += u128::from(n);
        if seen >= rank {
            return upper_bound(index);
        }
    }
    u64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u64_in_order_without_gaps() {
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(upper_bound(BUCKETS - 1), u64::MAX);
        for index in 1..BUCKETS {
            let lower = upper_bound(index - 1) + 1;
            assert_eq!(bucket_of(lower), index, "lower bound of bucket {index}");
            assert_eq!(
                bucket_of(upper_bound(index)),
                index,
                "upper bound of {index}"
            );
            // No bucket is wider than a quarter of its lower bound (past the exact ones).
            if index >= 2 * SUBS {
                assert!(upper_bound(index) - lower < lower / 4 + 1, "bucket {index}");
            }
        }
    }

    #[test]
    fn small_values_are_exact() {
        for value in 0..8 {
            assert_eq!(upper_bound(bucket_of(value)), value);
        }
    }
}
