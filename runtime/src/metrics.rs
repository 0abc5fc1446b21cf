//! Metrics: counters, gauges and timers registered by name on a runtime, and a [`Snapshot`] of
//! them all — the runtime's own included — as a map that serializes to JSON.
//!
//! # The model
//!
//! Every runtime has one registry, reached through a [`Metrics`] handle:
//! [`Runtime::metrics`](crate::Runtime::metrics), or [`Metrics::current`] inside a handler.
//! Registering a name gives a handle — [`Counter`], [`Gauge`] or [`Timer`] — that is cheap to
//! clone and to update: an update is a relaxed atomic operation on the metric itself (four for a
//! timer's record), never a lock, so code keeps its handles and updates them on every event. The
//! registry's lock is taken only to register a name and to take a snapshot.
//!
//! Registering a name again gives a handle to the same metric, so every place that registers
//! `net.bytes_out` — a library such as a transport, a process restarted by its supervisor —
//! counts in one place. The kinds share one name space: asking for a gauge under a counter's name
//! is an error ([`MetricError::KindClash`]), not a second metric, so a name means one thing in
//! a snapshot. The prefix `runtime.` is the runtime's own ([`MetricError::Reserved`]).
//!
//! A [`Timer`] measures with the runtime's [`Clock`]: under a paused clock a timed section lasts
//! exactly as long as the test advanced the clock.
//!
//! ```
//! use std::time::Duration;
//! use procession::metrics::{Counter, MetricError, Value};
//! use procession::{dispatch, Process, Runtime};
//!
//! struct Frontend { requests: Counter }
//! impl Process for Frontend {}
//!
//! let runtime = Runtime::new();
//! let clock = runtime.clock();
//! clock.pause();
//! let metrics = runtime.metrics();
//! let requests = metrics.counter("frontend.requests").unwrap();
//! let frontend = runtime.spawn(Frontend { requests });
//! runtime.block_on(dispatch(&frontend, |f: &mut Frontend| f.requests.increment())).unwrap();
//!
//! let latency = metrics.timer("frontend.latency").unwrap();
//! let timing = latency.start();
//! clock.advance(Duration::from_millis(20));
//! drop(timing); // records 20 ms of the runtime's clock
//!
//! let snapshot = metrics.snapshot();
//! assert_eq!(snapshot.get("frontend.requests"), Some(&Value::Counter(1)));
//! let stats = snapshot.get("frontend.latency").and_then(Value::as_timer).unwrap();
//! assert_eq!((stats.count(), stats.max()), (1, Duration::from_millis(20)));
//! assert_eq!(snapshot.get("runtime.processes"), Some(&Value::Gauge(1)));
//! assert!(snapshot.to_json().contains(r#""frontend.requests":1"#));
//!
//! assert!(matches!(metrics.gauge("frontend.requests"), Err(MetricError::KindClash { .. })));
//! ```
//!
//! # The runtime's own metrics
//!
//! Every snapshot adds these, read when it is taken from state the runtime keeps anyway (so they
//! cost nothing on hot paths):
//!
//! | name | kind | what it is |
//! |---|---|---|
//! | `runtime.processes` | gauge | processes alive: spawned and not yet ended |
//! | `runtime.events_handled` | counter | events processes ran: dispatches (and casts), messages, `exited` notices and terminate events, whether the handler returned or panicked; not `initialize`/`finalize`, not events dropped unrun, not async tasks, blocking jobs or timers |
//! | `runtime.messages_dropped` | counter | messages not delivered: unknown or gone receiver, filtered, no handler, undecodable, full bounded mailbox, remote with no transport |
//! | `runtime.dropped_at_bound` | counter | casts and messages dropped at a full bounded mailbox (such messages also count in `messages_dropped`) |
//! | `runtime.timers_armed` | gauge | timers waiting to fire (`after`, `delay`, timeouts) |
//! | `runtime.queued_events` | gauge | events waiting in every mailbox, senders parked at a bound included |
//! | `runtime.queue_depth.<id>` | gauge | events waiting in process `<id>`'s mailbox, for the ten deepest non-empty mailboxes (equal depths by id) |
//!
//! A mailbox's depth does not count the batch of events its runner has already taken (up to the
//! scheduler's budget, 64 by default) and is running.
//!
//! # Contract
//!
//! - A snapshot reads each counter and gauge atomically but not all of them at one instant:
//!   under concurrent updates it may hold one metric's newer value beside another's older one,
//!   and a timer's sum, min and max may not yet include a record its count does.
//! - Metrics live as long as their runtime; a name cannot be unregistered.
//! - Counters and gauges wrap on overflow (at 2^64 and ±2^63).

mod histogram;
mod snapshot;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use self::histogram::Histogram;
pub use self::snapshot::{Snapshot, TimerStats, Value};
use crate::clock::Clock;
use crate::context;
use crate::handle::Handle;

/// The prefix of the runtime's own metrics, refused to registrations.
const RESERVED: &str = "runtime.";

/// A handle to one runtime's metrics registry: registers metrics by name and takes snapshots.
/// Cheap to clone; every clone reaches the same registry. See the [module docs](self).
#[derive(Clone)]
pub struct Metrics {
    handle: Handle,
}

impl Metrics {
    pub(crate) fn new(handle: Handle) -> Self {
        Metrics { handle }
    }

    /// The current runtime's metrics (in a handler, a callback, or under [`Runtime::enter`]).
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current.
    ///
    /// [`Runtime::enter`]: crate::Runtime::enter
    pub fn current() -> Metrics {
        Metrics::new(context::expect_current("Metrics::current"))
    }

    /// The counter `name`, registered now if it is new.
    ///
    /// # Errors
    ///
    /// Fails if `name` is a gauge or a timer, or starts with `runtime.`.
    pub fn counter(&self, name: &str) -> Result<Counter, MetricError> {
        match self.handle.metrics().get_or_insert(name, Kind::Counter)? {
            Entry::Counter(cell) => Ok(Counter { cell }),
            other => Err(MetricError::clash(name, other.kind(), Kind::Counter)),
        }
    }

    /// The gauge `name`, registered now (at zero) if it is new.
    ///
    /// # Errors
    ///
    /// Fails if `name` is a counter or a timer, or starts with `runtime.`.
    pub fn gauge(&self, name: &str) -> Result<Gauge, MetricError> {
        match self.handle.metrics().get_or_insert(name, Kind::Gauge)? {
            Entry::Gauge(cell) => Ok(Gauge { cell }),
            other => Err(MetricError::clash(name, other.kind(), Kind::Gauge)),
        }
    }

    /// The timer `name`, registered now if it is new.
    ///
    /// # Errors
    ///
    /// Fails if `name` is a counter or a gauge, or starts with `runtime.`.
    pub fn timer(&self, name: &str) -> Result<Timer, MetricError> {
        match self.handle.metrics().get_or_insert(name, Kind::Timer)? {
            Entry::Timer(histogram) => Ok(Timer {
                histogram,
                clock: Clock::new(self.handle.clone()),
            }),
            other => Err(MetricError::clash(name, other.kind(), Kind::Timer)),
        }
    }

    /// Every registered metric's value now, plus the runtime's own metrics (see
    /// [the table](self#the-runtimes-own-metrics)). It locks each mailbox briefly to read its
    /// depth, so it costs time in proportion to the number of processes: take it for a report,
    /// not on every event.
    pub fn snapshot(&self) -> Snapshot {
        let mut entries = self.handle.metrics().values();
        snapshot::add_runtime_metrics(&self.handle, &mut entries);
        Snapshot::new(entries)
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("runtime", &self.handle.name)
            .finish()
    }
}

/// A kind of metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A [`Counter`].
    Counter,
    /// A [`Gauge`].
    Gauge,
    /// A [`Timer`].
    Timer,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Timer => "timer",
        })
    }
}

/// Why a metric could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricError {
    /// The name is already registered as another kind of metric.
    KindClash {
        /// The name asked for.
        name: Arc<str>,
        /// The kind it is registered as.
        registered: Kind,
        /// The kind that was asked for.
        requested: Kind,
    },
    /// The name starts with `runtime.`, the prefix of the runtime's own metrics.
    Reserved(Arc<str>),
}

impl MetricError {
    fn clash(name: &str, registered: Kind, requested: Kind) -> Self {
        MetricError::KindClash {
            name: name.into(),
            registered,
            requested,
        }
    }
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::KindClash {
                name,
                registered,
                requested,
            } => write!(
                f,
                "metric {name:?} is a {registered}; it cannot also be a {requested}"
            ),
            MetricError::Reserved(name) => write!(
                f,
                "metric {name:?} uses the prefix {RESERVED:?}, reserved for the runtime's own metrics"
            ),
        }
    }
}

impl std::error::Error for MetricError {}

/// A monotonic count, such as requests served or bytes sent: a handle from [`Metrics::counter`].
/// Clones share the count. Every update is one relaxed atomic operation.
#[derive(Clone)]
pub struct Counter {
    cell: Arc<Padded<AtomicU64>>,
}

impl Counter {
    /// Adds one.
    pub fn increment(&self) {
        self.add(1);
    }

    /// Adds `n` (wrapping past `u64::MAX`).
    pub fn add(&self, n: u64) {
        self.cell.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.cell.0.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Counter").field(&self.get()).finish()
    }
}

/// A value that goes up and down, such as connections open or items buffered: a handle from
/// [`Metrics::gauge`]. Clones share the value. Every update is one relaxed atomic operation.
#[derive(Clone)]
pub struct Gauge {
    cell: Arc<Padded<AtomicI64>>,
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.cell.0.store(value, Ordering::Relaxed);
    }

    /// Adds `n` (wrapping at the bounds of `i64`).
    pub fn add(&self, n: i64) {
        self.cell.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` (wrapping at the bounds of `i64`).
    pub fn sub(&self, n: i64) {
        self.cell.0.fetch_sub(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn increment(&self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn decrement(&self) {
        self.sub(1);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.cell.0.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

/// Durations, such as request latencies: a handle from [`Metrics::timer`]. Clones share the
/// recordings.
///
/// It keeps count, sum, min and max exactly, and approximate quantiles (p50, p90, p99) from
/// fixed buckets: one per nanosecond below 8 ns, then four per power of two. A quantile is read
/// as the upper bound of its bucket (kept within min and max), so it is never below the exact
/// one and at most 25% above it, in 2 KiB per timer whatever is recorded. A record is four
/// relaxed atomic operations and takes no lock.
#[derive(Clone)]
pub struct Timer {
    histogram: Arc<Histogram>,
    clock: Clock,
}

impl Timer {
    /// Records one duration (saturated at 584 years).
    pub fn record(&self, duration: Duration) {
        self.histogram.record(duration);
    }

    /// Starts timing on the runtime's [`Clock`]: the guard records the time elapsed on that clock
    /// when it drops. Reading the clock takes its lock briefly, at start and at drop.
    pub fn start(&self) -> TimerGuard {
        TimerGuard {
            timer: self.clone(),
            started: self.clock.now(),
        }
    }

    /// What this timer has recorded so far.
    pub fn stats(&self) -> TimerStats {
        self.histogram.stats()
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Timer").field(&self.stats()).finish()
    }
}

/// A running measurement from [`Timer::start`]: records the runtime-clock time since the start
/// when dropped.
#[must_use = "the guard records when it drops: dropping it at once records (almost) nothing"]
pub struct TimerGuard {
    timer: Timer,
    started: Instant,
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        let now = self.timer.clock.now();
        self.timer
            .histogram
            .record(now.saturating_duration_since(self.started));
    }
}

impl fmt::Debug for TimerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerGuard")
            .field("started", &self.started)
            .finish()
    }
}

/// A value on cache lines of its own, so two metrics updated on different threads do not slow
/// each other down by sharing one.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// One registered metric: the shared state its handles point to.
#[derive(Clone)]
enum Entry {
    Counter(Arc<Padded<AtomicU64>>),
    Gauge(Arc<Padded<AtomicI64>>),
    Timer(Arc<Histogram>),
}

impl Entry {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Counter => Entry::Counter(Arc::default()),
            Kind::Gauge => Entry::Gauge(Arc::default()),
            Kind::Timer => Entry::Timer(Arc::default()),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Entry::Counter(_) => Kind::Counter,
            Entry::Gauge(_) => Kind::Gauge,
            Entry::Timer(_) => Kind::Timer,
        }
    }

    fn value(&self) -> Value {
        match self {
            Entry::Counter(cell) => Value::Counter(cell.0.load(Ordering::Relaxed)),
            Entry::Gauge(cell) => Value::Gauge(cell.0.load(Ordering::Relaxed)),
            Entry::Timer(histogram) => Value::Timer(histogram.stats()),
        }
    }
}

/// A runtime's metrics by name (kept in its shared state, reached through [`Metrics`]).
#[derive(Default)]
pub(crate) struct Registry {
    metrics: RwLock<BTreeMap<Arc<str>, Entry>>,
}

impl Registry {
    /// The metric `name`, created as `kind` if it is new. The caller checks the kind of an
    /// existing one.
    fn get_or_insert(&self, name: &str, kind: Kind) -> Result<Entry, MetricError> {
        if name.starts_with(RESERVED) {
            return Err(MetricError::Reserved(name.into()));
        }
        if let Some(entry) = self.metrics.read().get(name) {
            return Ok(entry.clone());
        }
        // Another thread may have registered it between the two locks: the entry API keeps
        // whichever came first.
        let mut metrics = self.metrics.write();
        Ok(metrics
            .entry(name.into())
            .or_insert_with(|| Entry::new(kind))
            .clone())
    }

    /// Every registered metric's value now.
    fn values(&self) -> BTreeMap<String, Value> {
        let metrics = self.metrics.read();
        metrics
            .iter()
            .map(|(name, entry)| (name.to_string(), entry.value()))
            .collect()
    }
}
