//! Engine: counts of work started and finished, so [`Clock::settle`](crate::Clock::settle) can
//! tell exactly when the runtime has nothing left to do; and, in the same slots, the count of
//! events processes ran, for the `runtime.events_handled` metric.
//!
//! # Protocol
//!
//! A *unit of work* is an event pushed to a mailbox, a woken async task, or a blocking job.
//! Whoever creates one calls [`Quiesce::started`] **before** making it visible (pushing it,
//! scheduling it); whoever finishes or drops it calls [`Quiesce::finished`] **after** its effects
//! (including any work it started) are done. Every `finished` therefore follows its `started`,
//! and work started by a unit is counted before that unit is counted finished.
//!
//! Each worker thread owns one slot and bumps it with a plain load and store (one writer, no
//! read-modify-write, no shared cache line); every other thread uses the shared `external` slot
//! with `fetch_add`. No atomic is shared by all events.
//!
//! [`Quiesce::is_idle`] sums every slot's `finished` count, then (after a `SeqCst` fence) every
//! slot's `started` count. The counters only grow, and a unit's `finished` happens after its
//! `started`, so the first sum is at most the number of units finished at the fence and the
//! second at least the number started then: if the sums are equal, at that instant every unit
//! started had finished.

use crate::context;
use crate::sync::{fence, AtomicU64, Ordering};

/// One writer's counters, on a cache line of their own.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    started: AtomicU64,
    finished: AtomicU64,
    /// Events a process handler ran (not a unit of work: a subset of them, counted apart).
    events: AtomicU64,
}

pub(crate) struct Quiesce {
    runtime_id: u64,
    workers: Box<[Slot]>,
    external: Slot,
}

impl Quiesce {
    pub(crate) fn new(runtime_id: u64, workers: usize) -> Self {
        Quiesce {
            runtime_id,
            workers: (0..workers).map(|_| Slot::default()).collect(),
            external: Slot::default(),
        }
    }

    /// Counts a unit of work as started; call before the unit becomes visible to its runner.
    pub(crate) fn started(&self) {
        self.started_on(context::worker_of(self.runtime_id));
    }

    /// Counts a unit of work as finished (run or dropped); call after its effects.
    pub(crate) fn finished(&self) {
        self.finished_on(context::worker_of(self.runtime_id));
    }

    /// [`started`](Self::started) from worker `worker` (`None`: any other thread).
    pub(crate) fn started_on(&self, worker: Option<usize>) {
        self.bump(worker, 1, |slot| &slot.started);
    }

    /// [`finished`](Self::finished) from worker `worker` (`None`: any other thread).
    pub(crate) fn finished_on(&self, worker: Option<usize>) {
        self.bump(worker, 1, |slot| &slot.finished);
    }

    /// Counts `events` a process ran as one unit of work (one event, or a transport's run of
    /// messages) and finishes the unit: the common step of a visit, with one worker lookup for
    /// both counters (this is on every event's path).
    pub(crate) fn finished_events(&self, events: u64) {
        let worker = context::worker_of(self.runtime_id);
        self.bump(worker, events, |slot| &slot.events);
        self.bump(worker, 1, |slot| &slot.finished);
    }

    /// Counts an event a process ran whose unit of work finishes later (it ended the process).
    pub(crate) fn ran_event(&self) {
        self.bump(context::worker_of(self.runtime_id), 1, |slot| &slot.events);
    }

    /// Events run by processes so far (see [`finished_events`](Self::finished_events)); a sum
    /// of independent counters, so it may miss events that finish while it reads.
    pub(crate) fn events_run(&self) -> u64 {
        let slots = self.workers.iter().chain(std::iter::once(&self.external));
        slots.map(|s| s.events.load(Ordering::Relaxed)).sum()
    }

    fn bump(&self, worker: Option<usize>, by: u64, counter: impl Fn(&Slot) -> &AtomicU64) {
        match worker.and_then(|i| self.workers.get(i)) {
            Some(slot) => {
                // Only this worker thread writes this slot.
                let counter = counter(slot);
                counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Release);
            }
            None => {
                counter(&self.external).fetch_add(by, Ordering::AcqRel);
            }
        }
    }

    /// Whether every unit of work started so far has finished (see the protocol above).
    pub(crate) fn is_idle(&self) -> bool {
        let slots = || self.workers.iter().chain(std::iter::once(&self.external));
        let finished: u64 = slots().map(|s| s.finished.load(Ordering::Acquire)).sum();
        fence(Ordering::SeqCst);
        let started: u64 = slots().map(|s| s.started.load(Ordering::Acquire)).sum();
        finished == started
    }
}
