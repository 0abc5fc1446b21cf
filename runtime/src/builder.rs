//! `Builder`: configures and starts a [`Runtime`].

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handle::Shared;
use crate::quiesce::Quiesce;
use crate::runtime::Runtime;
use crate::scheduler::{Deterministic, Scheduler, Threaded};

/// Runtime ids, unique within the OS process; they also give each runtime its in-process address.
static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// Configures a [`Runtime`]: worker count, name, paused clock, deterministic mode.
///
/// ```
/// use procession::Runtime;
///
/// let runtime = Runtime::builder().workers(2).name("agent").build().unwrap();
/// assert_eq!(runtime.name(), "agent");
/// let simulated = Runtime::builder().deterministic(7).build().unwrap();
/// assert!(simulated.clock().is_paused());
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    workers: Option<usize>,
    name: String,
    paused: Option<Option<Instant>>,
    seed: Option<u64>,
    budget: usize,
    shutdown_timeout: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: None,
            name: "procession".to_owned(),
            paused: None,
            seed: None,
            budget: 64,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl Builder {
    /// A builder with the defaults: one worker per core, real time, threaded.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The number of worker threads (default: one per core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The runtime's name, used for its threads and in logs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts with the clock paused (at the time the runtime is built).
    pub fn paused(mut self) -> Self {
        self.paused = Some(None);
        self
    }

    /// Starts with the clock paused at `instant`, which may be earlier than now. A simulation
    /// starts every node at its common virtual time this way, also a node built (or rebuilt
    /// after a crash) long after the others, in real time.
    pub fn paused_at(mut self, instant: Instant) -> Self {
        self.paused = Some(Some(instant));
        self
    }

    /// Runs everything on the thread that drives the runtime (`block_on`, `Clock::settle`), in an
    /// order drawn from `seed`, with a virtual clock that starts paused. The same seed and inputs
    /// give the same order ([`Runtime::trace`]).
    pub fn deterministic(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Events a process handles per visit before other processes get a turn (default 64).
    pub fn event_budget(mut self, budget: usize) -> Self {
        self.budget = budget;
        self
    }

    /// How long (in real time) shutdown waits for the processes to end before it abandons the
    /// rest and reports them (default 30 s). Child processes get at least a second to be killed
    /// and reaped. Other code is not bounded: an async task or a timer callback that blocks its
    /// thread holds the shutdown until it returns.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    ///
    /// Fails for zero workers or more than 65,535 (the default, one per core, included; a seeded
    /// runtime runs on one thread and ignores the count), for a zero event budget, and if the OS
    /// refuses a thread.
    pub fn build(self) -> Result<Runtime, BuildError> {
        if self.workers == Some(0) {
            return Err(BuildError::new("a runtime needs at least one worker"));
        }
        if self.budget == 0 {
            return Err(BuildError::new("the event budget must be at least one"));
        }
        let id = NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed);
        // 0.0.0.0/8 ("this network") is never a peer's address; its 24 bits and the port's 16
        // give 2^40 runtimes an in-process address each before any repeats.
        let ip = Ipv4Addr::from(((id >> 16) & 0x00ff_ffff) as u32);
        let local_address = SocketAddr::from((ip, (id & 0xffff) as u16));
        let workers = match self.seed {
            Some(_) => 0,
            None => self
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        };
        if workers > usize::from(u16::MAX) {
            return Err(BuildError::new("a runtime has at most 65,535 workers"));
        }
        let scheduler = match self.seed {
            Some(seed) => Scheduler::Deterministic(Deterministic::new(seed)),
            None => Scheduler::Threaded(Threaded::new(id, self.budget, workers)),
        };
        let shared = Arc::new(Shared::new(
            id,
            self.name.into(),
            local_address,
            incarnation(self.seed, id),
            scheduler,
            Quiesce::new(id, workers),
            match self.paused {
                Some(at) => Some(at.unwrap_or_else(Instant::now)),
                None => self.seed.map(|_| Instant::now()),
            },
        ));
        Runtime::start(shared, workers, self.shutdown_timeout)
            .map_err(|e| BuildError::new(format!("spawning a runtime thread failed: {e}")))
    }
}

/// A nonzero number for this run of a runtime: drawn from `seed` in the deterministic mode (the
/// same seed, the same Upids), else from the process's random hasher keys, the runtime's id and
/// the time, so that a node restarted on the same address is a new incarnation.
fn incarnation(seed: Option<u64>, id: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let drawn = match seed {
        // A fixed mix (splitmix64's), not the random hasher: reproducible from run to run.
        Some(seed) => {
            let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        None => {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(id);
            hasher.write_u32(std::process::id());
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            hasher.write_u128(now.map_or(0, |d| d.as_nanos()));
            hasher.finish()
        }
    };
    drawn.max(1)
}

/// Why a runtime could not be built.
#[derive(Clone, Debug)]
pub struct BuildError {
    message: String,
}

impl BuildError {
    fn new(message: impl Into<String>) -> Self {
        BuildError {
            message: message.into(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}
