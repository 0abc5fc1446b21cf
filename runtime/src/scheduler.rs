//! Engine: who runs next. One enum over the two flavours — the threaded pool and the seeded
//! single-thread mode — which differ only in their run-queue policy; process cells, mailboxes,
//! dispatch, timers, links and settle are one implementation above them.
//!
//! # Contract
//!
//! A [`Runnable`] (a process cell or an async task) is handed to [`Scheduler::schedule`] (an
//! async task: [`Scheduler::schedule_task`]) when it becomes runnable, by the one party that
//! flipped its "scheduled" flag, and to
//! [`Scheduler::reschedule`] when it used its budget with work left. The scheduler runs each
//! handed-over runnable exactly once per hand-over, on one thread.

mod deterministic;
mod threaded;

use std::sync::Arc;

pub(crate) use self::deterministic::Deterministic;
pub use self::deterministic::Trace;
pub(crate) use self::threaded::Threaded;

/// Something a worker can run: a process visit or an async task poll.
pub(crate) trait Runnable: Send + Sync + 'static {
    fn run(self: Arc<Self>);
    /// A stable name, for the deterministic trace.
    fn name(&self) -> &Arc<str>;
    /// The worker this runnable must run on (modulo the worker count), if it is pinned; the
    /// deterministic mode has one thread and ignores it.
    fn pin(&self) -> Option<usize> {
        None
    }
}

pub(crate) type Task = Arc<dyn Runnable>;

pub(crate) enum Scheduler {
    Threaded(Threaded),
    Deterministic(Deterministic),
}

impl Scheduler {
    /// Hands over a runnable that just became runnable.
    pub(crate) fn schedule(&self, task: Task) {
        match self {
            Scheduler::Threaded(s) => s.schedule(task),
            Scheduler::Deterministic(s) => s.schedule(task),
        }
    }

    /// Hands over an async task just woken: beside the process that woke it when a worker is
    /// free to take it at once, else like [`schedule`](Self::schedule).
    pub(crate) fn schedule_task(&self, task: Task) {
        match self {
            Scheduler::Threaded(s) => s.schedule_task(task),
            Scheduler::Deterministic(s) => s.schedule(task),
        }
    }

    /// Hands back a runnable that used its budget and still has work.
    pub(crate) fn reschedule(&self, task: Task) {
        match self {
            Scheduler::Threaded(s) => s.reschedule(task),
            Scheduler::Deterministic(s) => s.schedule(task),
        }
    }

    /// The number of worker threads, never zero (the builder refuses zero; 1 in the deterministic
    /// mode, whose one thread runs all).
    pub(crate) fn workers(&self) -> usize {
        match self {
            Scheduler::Threaded(s) => s.workers(),
            Scheduler::Deterministic(_) => 1,
        }
    }

    /// Workers asleep on the condition variable, waiting for work.
    pub(crate) fn sleeping_workers(&self) -> usize {
        match self {
            Scheduler::Threaded(s) => s.sleeping(),
            Scheduler::Deterministic(_) => 0,
        }
    }

    /// Events a process may handle per visit before others get a turn.
    pub(crate) fn budget(&self) -> usize {
        match self {
            Scheduler::Threaded(s) => s.budget(),
            // One event per visit: every interleaving the seed can choose stays reachable.
            Scheduler::Deterministic(_) => 1,
        }
    }

    /// Stops running anything; runnables handed over later are dropped.
    pub(crate) fn shutdown(&self) {
        match self {
            Scheduler::Threaded(s) => s.shutdown(),
            Scheduler::Deterministic(s) => s.shutdown(),
        }
    }

    pub(crate) fn as_deterministic(&self) -> Option<&Deterministic> {
        match self {
            Scheduler::Deterministic(s) => Some(s),
            Scheduler::Threaded(_) => None,
        }
    }

    pub(crate) fn as_threaded(&self) -> Option<&Threaded> {
        match self {
            Scheduler::Threaded(s) => Some(s),
            Scheduler::Deterministic(_) => None,
        }
    }
}
