//! Each node's view of the one virtual clock: an offset and a drift rate, counted from when
//! they were set.

use std::time::{Duration, Instant};

const MILLION: i128 = 1_000_000;

/// A node's clock, set at virtual time `since` to read `reading` past the epoch: at virtual
/// time `t` it reads `epoch + reading + (t - since) * (1 + drift_ppm / 10^6)`. Counting the
/// drift from `since` rather than from time zero is what keeps a clock set late from jumping
/// by the drift of all the time before. Integer arithmetic, so every run computes the same
/// instants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeClock {
    since: Duration,
    reading: Duration,
    drift_ppm: i32,
}

impl NodeClock {
    /// A clock set at virtual time `now` to read `offset` ahead of it, and to run `drift_ppm`
    /// faster from then on.
    pub(crate) fn set(now: Duration, offset: Duration, drift_ppm: i32) -> NodeClock {
        NodeClock {
            since: now,
            reading: now.saturating_add(offset),
            drift_ppm,
        }
    }

    /// The node's reading at virtual time `t` (before `since`, what the setting extrapolates
    /// back to; never before the epoch).
    pub(crate) fn local(&self, epoch: Instant, t: Duration) -> Instant {
        let elapsed = t.as_nanos() as i128 - self.since.as_nanos() as i128;
        let scaled = elapsed + elapsed * i128::from(self.drift_ppm) / MILLION;
        let reading = self.reading.as_nanos() as i128 + scaled;
        epoch + Duration::from_nanos(nanos(reading))
    }

    /// The earliest virtual time at which the node's clock reads `instant` or later. The
    /// estimate is off by at most a few nanoseconds for drifts within ±50%, which the two
    /// correction loops walk.
    pub(crate) fn global(&self, epoch: Instant, instant: Instant) -> Duration {
        // Extrapolated back from a late setting, the reading can stay clamped at the epoch for
        // a long while; the correction loops would walk all of it a nanosecond at a time.
        if self.local(epoch, Duration::ZERO) >= instant {
            return Duration::ZERO;
        }
        let local = instant.saturating_duration_since(epoch).as_nanos() as i128;
        let ahead = local - self.reading.as_nanos() as i128;
        let rate = MILLION + i128::from(self.drift_ppm);
        // Ceiling division (`/` truncates toward zero, the ceiling of a negative quotient),
        // then correction steps for the rounding in `local`.
        let elapsed = if ahead > 0 {
            (ahead * MILLION + rate - 1) / rate
        } else {
            ahead * MILLION / rate
        };
        let t = self.since.as_nanos() as i128 + elapsed;
        let mut t = Duration::from_nanos(nanos(t));
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

/// Nanoseconds as a `u64`, held within its range (a virtual time past 584 years saturates
/// rather than wrapping behind the epoch).
fn nanos(ns: i128) -> u64 {
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_is_the_earliest_time_the_local_clock_reaches_an_instant() {
        let epoch = Instant::now();
        for since in [Duration::ZERO, Duration::from_secs(2)] {
            // From 2 s, 50% fast: extrapolated back, the reading sits at the epoch until 0.67 s.
            for drift_ppm in [-500_000, -500, 0, 1, 700, 250_000, 500_000] {
                let clock = NodeClock::set(since, Duration::from_millis(3), drift_ppm);
                for ns in [
                    0u64,
                    1,
                    999,
                    3_000_000,
                    3_000_001,
                    2_003_000_001,
                    12_345_678_901,
                ] {
                    let instant = epoch + Duration::from_nanos(ns);
                    let t = clock.global(epoch, instant);
                    let case = format!("since {since:?}, {drift_ppm} ppm, {ns} ns");
                    assert!(clock.local(epoch, t) >= instant, "{case}");
                    if let Some(before) = t.checked_sub(Duration::from_nanos(1)) {
                        assert!(clock.local(epoch, before) < instant, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_clock_set_late_reads_its_offset_then_and_drifts_only_from_then() {
        let epoch = Instant::now();
        let (late, offset) = (Duration::from_secs(100), Duration::from_secs(1));
        let clock = NodeClock::set(late, offset, 100_000);
        assert_eq!(clock.local(epoch, late), epoch + late + offset);
        let later = late + Duration::from_secs(10);
        assert_eq!(
            clock.local(epoch, later),
            epoch + later + offset + Duration::from_secs(1)
        );
    }
}
