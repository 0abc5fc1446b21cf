//! Outcome accounting: how many futures ended in each state, counted per thread.
//!
//! The completion path pays one thread-local increment and nothing else: no atomic, no lock. A
//! count that must be exact across threads is not wanted here; a simulation runs every node on
//! one thread, where these counts are exact.

use std::cell::Cell;
use std::ops::Sub;

use super::cell::Outcome;

/// How many futures ended ready, failed, discarded and abandoned.
///
/// [`on_this_thread`](Self::on_this_thread) gives the totals of the calling thread; the
/// difference of two readings ([`since`](Self::since), or `-`) gives what completed in between,
/// so a test can assert that nothing was abandoned where an answer was promised:
///
/// ```
/// use procession::{Outcomes, Promise};
///
/// let before = Outcomes::on_this_thread();
/// let answered = Promise::new();
/// answered.set(1);
/// drop(Promise::<u32>::new());
/// let delta = Outcomes::on_this_thread() - before;
/// assert_eq!((delta.ready, delta.abandoned), (1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Outcomes {
    /// Futures whose promise was set ([`Promise::set`](crate::Promise::set)).
    pub ready: u64,
    /// Futures whose promise failed them.
    pub failed: u64,
    /// Futures whose promise discarded them (a discard request honoured).
    pub discarded: u64,
    /// Futures whose promise was dropped unfulfilled, including the answers of dispatches to a
    /// process that was gone or ended first.
    pub abandoned: u64,
}

impl Outcomes {
    /// The totals of the futures completed on the calling thread since it started. Never fails.
    ///
    /// A future counts once, on the thread that completes it (sets, fails, discards or drops its
    /// promise), including each link of a chain (`then`, `map`, ...). A future born complete
    /// ([`Future::ready`](crate::Future::ready), [`Future::failed`](crate::Future::failed),
    /// [`Future::completed`](crate::Future::completed)) is not counted: it never was pending.
    ///
    /// A deterministic runtime completes everything on the thread that drives it, so there the
    /// count is exact. On a threaded runtime completions spread over its workers, its timer
    /// thread and its I/O thread, each counting its own: read it on those threads (in a
    /// handler, say), or use a deterministic runtime to account for a whole run.
    pub fn on_this_thread() -> Outcomes {
        COUNTS
            .try_with(|counts| Outcomes {
                ready: counts.ready.get(),
                failed: counts.failed.get(),
                discarded: counts.discarded.get(),
                abandoned: counts.abandoned.get(),
            })
            .unwrap_or_default()
    }

    /// What completed between `earlier` and `self`, two readings of the same thread. Each count
    /// saturates at zero, so readings of different threads give a meaningless but never
    /// panicking answer.
    pub fn since(self, earlier: Outcomes) -> Outcomes {
        Outcomes {
            ready: self.ready.saturating_sub(earlier.ready),
            failed: self.failed.saturating_sub(earlier.failed),
            discarded: self.discarded.saturating_sub(earlier.discarded),
            abandoned: self.abandoned.saturating_sub(earlier.abandoned),
        }
    }
}

impl Sub for Outcomes {
    type Output = Outcomes;

    /// `later - earlier`: the same as [`later.since(earlier)`](Outcomes::since).
    fn sub(self, earlier: Outcomes) -> Outcomes {
        self.since(earlier)
    }
}

struct Counts {
    ready: Cell<u64>,
    failed: Cell<u64>,
    discarded: Cell<u64>,
    abandoned: Cell<u64>,
}

thread_local! {
    static COUNTS: Counts = const {
        Counts {
            ready: Cell::new(0),
            failed: Cell::new(0),
            discarded: Cell::new(0),
            abandoned: Cell::new(0),
        }
    };
}

/// Counts one completion with `outcome` on this thread.
pub(crate) fn record<T>(outcome: &Outcome<T>) {
    // `try_with`: a promise dropped while this thread's locals are torn down completes
    // uncounted rather than panicking in a destructor.
    let _ = COUNTS.try_with(|counts| {
        let counter = match outcome {
            Ok(_) => &counts.ready,
            Err(error) if error.is_failed() => &counts.failed,
            Err(error) if error.is_discarded() => &counts.discarded,
            Err(_) => &counts.abandoned,
        };
        counter.set(counter.get() + 1);
    });
}
