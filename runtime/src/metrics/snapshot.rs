//! [`Snapshot`]: every metric of a runtime at one moment, as a map from name to [`Value`] that
//! serializes to JSON; and the runtime's own metrics, computed when a snapshot is taken.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Kind;
use crate::handle::Shared;

/// How many of the deepest mailboxes a snapshot names (`runtime.queue_depth.<id>`), so a snapshot
/// stays small however many processes there are.
pub(super) const QUEUE_DEPTH_TOP: usize = 10;

/// Every metric of a runtime, by name, in name order: what [`Metrics::snapshot`] returns.
///
/// It serializes (with serde, or [`to_json`](Self::to_json)) as one JSON object from name to
/// value: counters and gauges as numbers, timers as objects of their [`TimerStats`].
///
/// [`Metrics::snapshot`]: super::Metrics::snapshot
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Snapshot {
    entries: BTreeMap<String, Value>,
}

impl Snapshot {
    pub(super) fn new(entries: BTreeMap<String, Value>) -> Self {
        Snapshot { entries }
    }

    /// The value of the metric `name`, if the snapshot has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.get(name)
    }

    /// Every metric, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// How many metrics the snapshot holds (the runtime's own included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the snapshot holds no metric (never, for one taken from a runtime).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The snapshot as a compact JSON object, e.g.
    /// `{"requests":3,"latency":{"count":1,"sum_ns":20000000,...},"runtime.processes":1}`.
    /// It cannot fail: every key is a string and every value a number or an object of numbers.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot of string keys and numbers serializes")
    }
}

/// One metric's value in a [`Snapshot`].
///
/// Serialized untagged: a counter or gauge is a JSON number, a timer a JSON object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Value {
    /// A [`Counter`](super::Counter)'s count.
    Counter(u64),
    /// A [`Gauge`](super::Gauge)'s value.
    Gauge(i64),
    /// A [`Timer`](super::Timer)'s statistics.
    Timer(TimerStats),
}

impl Value {
    /// The kind of metric this value came from.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Counter(_) => Kind::Counter,
            Value::Gauge(_) => Kind::Gauge,
            Value::Timer(_) => Kind::Timer,
        }
    }

    /// The count, if this is a counter's value.
    pub fn as_counter(&self) -> Option<u64> {
        match self {
            Value::Counter(count) => Some(*count),
            _ => None,
        }
    }

    /// The value, if this is a gauge's.
    pub fn as_gauge(&self) -> Option<i64> {
        match self {
            Value::Gauge(value) => Some(*value),
            _ => None,
        }
    }

    /// The statistics, if this is a timer's.
    pub fn as_timer(&self) -> Option<&TimerStats> {
        match self {
            Value::Timer(stats) => Some(stats),
            _ => None,
        }
    }
}

/// What a [`Timer`](super::Timer) has recorded: count, sum, min, max and approximate quantiles.
///
/// Serialized as an object of integer nanoseconds:
/// `{"count":..,"sum_ns":..,"min_ns":..,"max_ns":..,"p50_ns":..,"p90_ns":..,"p99_ns":..}`.
/// With nothing recorded every field is zero.
///
/// Count, sum, min and max are exact (the sum wraps past 2^64 ns, 584 years in total). A
/// quantile is the upper bound of the bucket holding it, kept within `[min, max]`: never below
/// the exact quantile, and at most 25% above it (see [`Timer`](super::Timer)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TimerStats {
    pub(super) count: u64,
    pub(super) sum_ns: u64,
    pub(super) min_ns: u64,
    pub(super) max_ns: u64,
    pub(super) p50_ns: u64,
    pub(super) p90_ns: u64,
    pub(super) p99_ns: u64,
}

impl TimerStats {
    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of every duration recorded.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }

    /// The shortest duration recorded (zero if none was).
    pub fn min(&self) -> Duration {
        Duration::from_nanos(self.min_ns)
    }

    /// The longest duration recorded (zero if none was).
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The mean duration, rounded down to the nanosecond (zero if none was recorded).
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.checked_div(self.count).unwrap_or(0))
    }

    /// The approximate median (see the type's docs for the precision).
    pub fn p50(&self) -> Duration {
        Duration::from_nanos(self.p50_ns)
    }

    /// The approximate 90th percentile.
    pub fn p90(&self) -> Duration {
        Duration::from_nanos(self.p90_ns)
    }

    /// The approximate 99th percentile.
    pub fn p99(&self) -> Duration {
        Duration::from_nanos(self.p99_ns)
    }
}

/// Adds the runtime's own metrics (see the module docs for their meaning). Everything here is
/// read now, from state the runtime keeps anyway, so none of it costs anything on hot paths.
pub(super) fn add_runtime_metrics(runtime: &Shared, entries: &mut BTreeMap<String, Value>) {
    let gauge = |n: usize| Value::Gauge(i64::try_from(n).unwrap_or(i64::MAX));
    let processes = runtime.table().all();
    let mut deepest: Vec<(usize, Arc<str>)> = processes
        .iter()
        .filter_map(|cell| {
            let queued = cell.queued();
            (queued > 0).then(|| (queued, cell.id().clone()))
        })
        .collect();
    let queued: usize = deepest.iter().map(|(queued, _)| queued).sum();
    // Deepest first; equal depths by id, so the same state always names the same processes.
    deepest.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    deepest.truncate(QUEUE_DEPTH_TOP);

    let mut add = |name: &str, value: Value| {
        entries.insert(format!("runtime.{name}"), value);
    };
    add("processes", gauge(processes.len()));
    add(
        "events_handled",
        Value::Counter(runtime.quiesce().events_run()),
    );
    add(
        "messages_dropped",
        Value::Counter(runtime.dropped_messages()),
    );
    add(
        "dropped_at_bound",
        Value::Counter(runtime.dropped_at_bound()),
    );
    add("timers_armed", gauge(runtime.timers().armed()));
    add("queued_events", gauge(queued));
    for (depth, id) in deepest {
        add(&format!("queue_depth.{id}"), gauge(depth));
    }
}
