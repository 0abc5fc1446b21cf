//! Fault profiles: which faults a run has and how often, fixed by hand or drawn from the seed.

use std::fmt;
use std::time::Duration;

use super::config::Latency;

/// The faults of a simulation: the network's behaviour for the whole run, and the node faults
/// that [`Sim::run_faults`](super::Sim::run_faults) injects during a fault phase.
///
/// [`Profile::swarm`] draws one from a seed: every fault is on or off by a coin flip and its
/// rate is drawn from a range, so many seeds explore many different mixes of faults (swarm
/// testing) instead of all of them at once, which tends to hide the bugs that need a quiet
/// network around one kind of fault.
///
/// ```
/// use procession_testkit::sim::Profile;
///
/// let profile = Profile::swarm(7);
/// assert_eq!(profile, Profile::swarm(7), "the seed decides the profile");
/// println!("seed 7 runs with {profile}");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Profile {
    /// How long messages take.
    pub latency: Latency,
    /// The probability that a message is lost.
    pub loss: f64,
    /// The probability that a message is delivered twice.
    pub duplicate: f64,
    /// Whether a later message between two nodes may overtake an earlier one.
    pub reorder: bool,
    /// The mean time between partitions in a fault phase (`None`: no partitions). Half of them
    /// cut one direction only.
    pub partition_every: Option<Duration>,
    /// The mean time between node crashes in a fault phase (`None`: no crashes). A crashed node
    /// restarts after a while, within the phase or when it heals.
    pub crash_every: Option<Duration>,
    /// The mean time between node pauses in a fault phase (`None`: no pauses).
    pub pause_every: Option<Duration>,
    /// The largest clock offset between nodes a fault phase sets (zero: none).
    pub clock_offset: Duration,
    /// The largest clock drift, in parts per million either way, a fault phase sets (zero:
    /// none).
    pub clock_drift_ppm: u32,
}

impl Profile {
    /// No faults: the default latency, nothing lost, duplicated or reordered, no node faults.
    pub fn calm() -> Profile {
        Profile {
            latency: Latency::default(),
            loss: 0.0,
            duplicate: 0.0,
            reorder: false,
            partition_every: None,
            crash_every: None,
            pause_every: None,
            clock_offset: Duration::ZERO,
            clock_drift_ppm: 0,
        }
    }

    /// A profile drawn from `seed`: each fault on with probability one half, at a rate drawn
    /// from a range that makes it matter within seconds of virtual time.
    pub fn swarm(seed: u64) -> Profile {
        // Its own stream, so the profile does not depend on anything else the seed draws.
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_f00d_cafe_d00d);
        let ms = Duration::from_millis;
        let latency = if rng.bool() {
            Latency::uniform(ms(rng.u64(0..=2)), ms(rng.u64(3..=50)))
        } else {
            Latency::exponential(ms(1), ms(rng.u64(2..=20)), ms(rng.u64(100..=1000)))
        };
        let maybe = |rng: &mut fastrand::Rng, range: std::ops::RangeInclusive<u64>| {
            rng.bool().then(|| ms(rng.u64(range)))
        };
        let partition_every = maybe(&mut rng, 500..=5000);
        let crash_every = maybe(&mut rng, 1000..=10_000);
        let pause_every = maybe(&mut rng, 500..=5000);
        Profile {
            latency,
            loss: if rng.bool() { rng.f64() * 0.2 } else { 0.0 },
            duplicate: if rng.bool() { rng.f64() * 0.1 } else { 0.0 },
            reorder: rng.bool(),
            partition_every,
            crash_every,
            pause_every,
            clock_offset: if rng.bool() {
                ms(rng.u64(1..=500))
            } else {
                Duration::ZERO
            },
            clock_drift_ppm: if rng.bool() { rng.u32(1..=1000) } else { 0 },
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::calm()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let every = |what: &str, d: Option<Duration>| match d {
            Some(d) => format!("{what} every ~{d:?}"),
            None => format!("no {what}"),
        };
        write!(
            f,
            "latency {}, loss {:.1}%, duplicates {:.1}%, {}, {}, {}, {}, clock offset up to {:?}, drift up to {} ppm",
            self.latency,
            self.loss * 100.0,
            self.duplicate * 100.0,
            if self.reorder { "reordering" } else { "in order" },
            every("partitions", self.partition_every),
            every("crashes", self.crash_every),
            every("pauses", self.pause_every),
            self.clock_offset,
            self.clock_drift_ppm,
        )
    }
}
