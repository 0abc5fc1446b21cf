//! Configuring a simulation: [`SimBuilder`], the [`Latency`] distributions, and [`SimError`].

use std::fmt;
use std::time::{Duration, Instant};

use super::network::{NetConfig, Network};
use super::profile::Profile;
use super::trace::Trace;
use super::Sim;

/// How long a message takes to arrive: a distribution the seed draws from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Uniform between `min` and `max`.
    Uniform {
        /// The shortest latency.
        min: Duration,
        /// The longest latency.
        max: Duration,
    },
    /// `min` plus an exponentially distributed delay of mean `mean`, capped at `max`: most
    /// messages are quick and a few are very late, as on a loaded network.
    Exponential {
        /// The shortest latency.
        min: Duration,
        /// The mean of the part above `min`.
        mean: Duration,
        /// The cap.
        max: Duration,
    },
}

impl Latency {
    /// Uniform between `min` and `max`.
    ///
    /// # Panics
    ///
    /// Panics if `min > max`.
    pub fn uniform(min: Duration, max: Duration) -> Latency {
        assert!(min <= max, "latency: min {min:?} is above max {max:?}");
        Latency::Uniform { min, max }
    }

    /// Always exactly `latency`.
    pub fn fixed(latency: Duration) -> Latency {
        Latency::Uniform {
            min: latency,
            max: latency,
        }
    }

    /// `min` plus an exponential delay of mean `mean`, capped at `max`.
    ///
    /// # Panics
    ///
    /// Panics if `min > max`.
    pub fn exponential(min: Duration, mean: Duration, max: Duration) -> Latency {
        assert!(min <= max, "latency: min {min:?} is above max {max:?}");
        Latency::Exponential { min, mean, max }
    }

    pub(crate) fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        match *self {
            Latency::Uniform { min, max } => {
                let spread = max.saturating_sub(min).as_nanos() as u64;
                min + Duration::from_nanos(rng.u64(0..=spread))
            }
            Latency::Exponential { min, mean, max } => {
                min.saturating_add(exponential(rng, mean)).min(max)
            }
        }
    }
}

impl Default for Latency {
    /// 1 ms to 5 ms, uniform.
    fn default() -> Self {
        Latency::uniform(Duration::from_millis(1), Duration::from_millis(5))
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Uniform { min, max } => write!(f, "uniform {min:?}..{max:?}"),
            Latency::Exponential { min, mean, max } => {
                write!(f, "{min:?} + exponential(mean {mean:?}), at most {max:?}")
            }
        }
    }
}

/// An exponentially distributed duration of mean `mean`, drawn by `rng`.
pub(crate) fn exponential(rng: &mut fastrand::Rng, mean: Duration) -> Duration {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let draw = -(1.0 - rng.f64()).ln() * mean.as_secs_f64();
    Duration::try_from_secs_f64(draw).unwrap_or(Duration::MAX)
}

/// Configures a [`Sim`]: the network's latency, loss, duplication, ordering and failure
/// detection, the node faults of a fault phase (through a [`Profile`]), and the limits that end
/// a run which does not finish.
#[derive(Clone, Debug)]
pub struct SimBuilder {
    pub(crate) seed: u64,
    pub(crate) profile: Profile,
    pub(crate) detect: Duration,
    pub(crate) time_limit: Duration,
    pub(crate) step_limit: u64,
    pub(crate) swarm: bool,
}

impl SimBuilder {
    pub(crate) fn new(seed: u64) -> Self {
        SimBuilder {
            seed,
            profile: Profile::calm(),
            detect: Duration::from_millis(100),
            time_limit: Duration::from_secs(3600),
            step_limit: 10_000_000,
            swarm: false,
        }
    }

    /// How long messages take (default [`Latency::default`]).
    pub fn latency(mut self, latency: Latency) -> Self {
        self.profile.latency = latency;
        self
    }

    /// Drops each message with probability `rate` (default 0; clamped to 0..=1).
    pub fn loss(mut self, rate: f64) -> Self {
        self.profile.loss = probability(rate);
        self
    }

    /// Delivers each message twice with probability `rate` (default 0: the real transport
    /// delivers at most once; turn it on to test code that must tolerate duplicates).
    pub fn duplicate(mut self, rate: f64) -> Self {
        self.profile.duplicate = probability(rate);
        self
    }

    /// Lets a later message between two nodes overtake an earlier one (default off: the real
    /// transport keeps the order of one connection).
    pub fn reorder(mut self, reorder: bool) -> Self {
        self.profile.reorder = reorder;
        self
    }

    /// How long after a partition or a crash the nodes on the other side learn that their
    /// connection broke (default 100 ms).
    pub fn failure_detection(mut self, delay: Duration) -> Self {
        self.detect = delay;
        self
    }

    /// Takes the network settings and the node faults of [`Sim::run_faults`] from `profile`,
    /// replacing what was set before.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self.swarm = false;
        self
    }

    /// Draws the profile from the seed ([`Profile::swarm`]), so each seed runs its own mix of
    /// faults; a failing seed's profile is printed with it by [`run_seeds`](super::run_seeds).
    pub fn swarm(mut self) -> Self {
        self.profile = Profile::swarm(self.seed);
        self.swarm = true;
        self
    }

    /// The most virtual time one [`Sim::block_on`] or [`Sim::run_until`] may take before it
    /// fails with [`SimError::TimeLimit`] (default one hour).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// The most steps one [`Sim::block_on`] or [`Sim::run_until`] may take before it fails
    /// with [`SimError::StepLimit`], and the most [`Sim::run_for`] (so [`Sim::run_faults`]
    /// and [`Sim::converge`]) may take at one virtual instant before it fails the same way:
    /// this catches a livelock that never lets time move (default ten million).
    pub fn step_limit(mut self, limit: u64) -> Self {
        self.step_limit = limit;
        self
    }

    /// The simulation, with no nodes yet.
    pub fn build(self) -> Sim {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let net = NetConfig {
            latency: self.profile.latency.clone(),
            loss: self.profile.loss,
            duplicate: self.profile.duplicate,
            reorder: self.profile.reorder,
            detect: self.detect,
        };
        let network = Network::new(net, rng.u64(..));
        if self.swarm {
            super::seeds::note_profile(&self.profile);
        }
        Sim::assemble(self, rng, network, Instant::now(), Trace::new())
    }
}

fn probability(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// Why a simulation run ended without its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// Nothing can run, nothing is in flight and no timer is armed, and the outcome is still
    /// pending: it can never come. The report names who waits on whom.
    Stuck {
        /// The seed.
        seed: u64,
        /// Virtual time when the simulation ran dry.
        at: Duration,
        /// What is still waiting, one line each (pending dispatches, paused nodes).
        waiting: Vec<String>,
    },
    /// The virtual-time limit passed first.
    TimeLimit {
        /// The seed.
        seed: u64,
        /// Virtual time when the limit was reached.
        at: Duration,
    },
    /// The step limit passed first (a livelock).
    StepLimit {
        /// The seed.
        seed: u64,
        /// Virtual time when the limit was reached.
        at: Duration,
    },
    /// After the faults were healed, the condition did not hold within the bound.
    NoConvergence {
        /// The seed.
        seed: u64,
        /// Virtual time when the bound passed.
        at: Duration,
        /// The fault profile the run used.
        profile: String,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Stuck { seed, at, waiting } => {
                write!(
                    f,
                    "simulation stuck at {at:?} (seed {seed}): nothing can run and the outcome is still pending"
                )?;
                if waiting.is_empty() {
                    f.write_str("; nothing is waiting on anything the simulation can see")
                } else {
                    f.write_str("; waiting:")?;
                    waiting.iter().try_for_each(|w| write!(f, "\n  {w}"))
                }
            }
            SimError::TimeLimit { seed, at } => write!(
                f,
                "simulation reached its time limit at {at:?} (seed {seed}) with the outcome still pending"
            ),
            SimError::StepLimit { seed, at } => write!(
                f,
                "simulation reached its step limit at {at:?} (seed {seed}) with the outcome still pending"
            ),
            SimError::NoConvergence { seed, at, profile } => write!(
                f,
                "no convergence: the condition still did not hold at {at:?}, after the faults were healed (seed {seed}; profile: {profile})"
            ),
        }
    }
}

impl std::error::Error for SimError {}
