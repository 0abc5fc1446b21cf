//! Each node's view of the one virtual clock: an offset and a drift rate.

use std::time::{Duration, Instant};

const MILLION: i128 = 1_000_000;

/// A node's clock reads `epoch + offset + t * (1 + drift_ppm / 10^6)` at virtual time `t`.
/// Integer arithmetic, so every run computes the same instants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeClock {
    pub(crate) offset: Duration,
    pub(crate) drift_ppm: i32,
}

impl NodeClock {
    /// The node's reading at virtual time `t`.
    pub(crate) fn local(&self, epoch: Instant, t: Duration) -> Instant {
        let t = t.as_nanos() as i128;
        let scaled = t + t * i128::from(self.drift_ppm) / MILLION;
        epoch + self.offset + Duration::from_nanos(scaled.max(0) as u64)
    }

    /// The earliest virtual time at which the node's clock reads `instant` or later. The
    /// estimate is off by at most a few nanoseconds for drifts within ±50%, which the two
    /// correction loops walk.
    pub(crate) fn global(&self, epoch: Instant, instant: Instant) -> Duration {
        let local = instant.saturating_duration_since(epoch + self.offset);
        let local = local.as_nanos() as i128;
        let rate = MILLION + i128::from(self.drift_ppm);
        // Ceiling division, then a correction step for the rounding in `local`.
        let mut t = Duration::from_nanos(((local * MILLION + rate - 1) / rate) as u64);
        let ns = Duration::from_nanos(1);
        while self.local(epoch, t) < instant {
            t += ns;
        }
        while t > Duration::ZERO && self.local(epoch, t - ns) >= instant {
            t -= ns;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_is_the_earliest_time_the_local_clock_reaches_an_instant() {
        let epoch = Instant::now();
        for drift_ppm in [-500_000, -500, 0, 1, 700, 250_000, 500_000] {
            let clock = NodeClock {
                offset: Duration::from_millis(3),
                drift_ppm,
            };
            for ns in [0u64, 1, 999, 3_000_000, 3_000_001, 12_345_678_901] {
                let instant = epoch + Duration::from_nanos(ns);
                let t = clock.global(epoch, instant);
                assert!(clock.local(epoch, t) >= instant, "{drift_ppm} {ns}");
                if let Some(before) = t.checked_sub(Duration::from_nanos(1)) {
                    assert!(clock.local(epoch, before) < instant, "{drift_ppm} {ns}");
                }
            }
        }
    }
}
