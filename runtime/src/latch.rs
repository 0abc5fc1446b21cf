//! `Latch`: a one-shot trigger that any number of waiters can watch.
//!
//! A latch is the smallest meeting point between the code that learns that something happened
//! and the code waiting for it, as libprocess's `Latch` is. [`Latch::trigger`] fires it once;
//! every [`Future`] handed out by [`Latch::future`], before the trigger or after, is then ready.
//! It is a [`Promise`] that tolerates being completed from many places: a process keeps one in
//! its state and others chain on its future with `then` (or `defer` back into themselves), a
//! test blocks on it. It needs no runtime.
//!
//! ```
//! use procession::Latch;
//!
//! let latch = Latch::new();
//! let early = latch.future();
//! assert!(early.is_pending());
//! assert!(latch.trigger());
//! assert!(!latch.trigger()); // only the first trigger counts
//! assert!(early.is_ready());
//! assert!(latch.future().is_ready()); // a late waiter is ready at once
//! ```
//!
//! # Contract
//!
//! - Of all the calls to `trigger`, on any threads, exactly one returns `true`; the waiters'
//!   futures become ready on that thread, after the latch's lock is released.
//! - Each call to `future` returns a future of its own: discarding it is recorded on that future
//!   only, so one waiter giving up never disturbs the latch or the other waiters.
//! - Dropping a latch that was never triggered abandons every waiter's future: no trigger can
//!   come any more.

use std::fmt;
use std::mem;

use parking_lot::Mutex;

use crate::future::{Future, Promise};

/// A one-shot trigger with many waiters: [`trigger`](Self::trigger) fires it once, and every
/// future from [`future`](Self::future), before or after, becomes ready.
///
/// Share it with an `Arc` (or keep it in a process's state and hand out its futures).
///
/// # Contract
///
/// Of all the calls to `trigger` exactly one returns `true`, and the waiters' futures become
/// ready on its thread, after the latch's lock is released. Each `future` call returns a future
/// of its own, so a waiter's discard never disturbs the latch or the others. Dropping a latch
/// that was never triggered abandons the waiters' futures.
///
/// ```
/// use std::sync::Arc;
/// use procession::Latch;
///
/// let latch = Arc::new(Latch::new());
/// let waiter = latch.future();
/// let other = latch.clone();
/// std::thread::spawn(move || other.trigger()).join().unwrap();
/// assert!(waiter.is_ready() && latch.is_triggered());
/// ```
pub struct Latch {
    state: Mutex<State>,
}

struct State {
    triggered: bool,
    /// A promise per waiter's future, in the order they were asked for; those nobody can see
    /// complete any more are pruned as the list grows, so a long-lived latch asked for a future
    /// per event keeps only the live ones.
    waiters: Vec<Promise<()>>,
}

impl Latch {
    /// A latch that has not been triggered.
    pub fn new() -> Self {
        Latch {
            state: Mutex::new(State {
                triggered: false,
                waiters: Vec::new(),
            }),
        }
    }

    /// Triggers the latch, completing every waiter's future; `true` only for the first call.
    ///
    /// The waiters' callbacks run here, on this thread, before `trigger` returns, unless it is
    /// called from a future's callback: then they run when that callback returns.
    pub fn trigger(&self) -> bool {
        let waiters = {
            let mut state = self.state.lock();
            if mem::replace(&mut state.triggered, true) {
                return false;
            }
            mem::take(&mut state.waiters)
        };
        for waiter in waiters {
            waiter.set(());
        }
        true
    }

    /// A future that becomes ready when the latch is triggered (at once if it already was).
    ///
    /// # Errors
    ///
    /// Ends abandoned if the latch is dropped without being triggered.
    ///
    /// # Discard
    ///
    /// Discarding it is recorded on this future alone: the latch and the other waiters do not
    /// see it, and the future still becomes ready on the trigger. Dropping it (with nothing
    /// registered on it) lets the latch forget it.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Latch;
    ///
    /// let latch = Latch::new();
    /// let impatient = latch.future();
    /// let patient = latch.future();
    /// impatient.discard();
    /// assert!(!patient.has_discard());
    /// latch.trigger();
    /// assert!(patient.is_ready() && impatient.is_ready());
    /// ```
    pub fn future(&self) -> Future<()> {
        let mut state = self.state.lock();
        if state.triggered {
            return Future::ready(());
        }
        let mut forgotten: Vec<Promise<()>> = Vec::new();
        if state.waiters.len() == state.waiters.capacity() {
            // Before the list grows: amortized, each waiter is looked at a bounded number of
            // times. Dropped after the unlock, though nothing observes their abandonment.
            let (live, dead) = mem::take(&mut state.waiters)
                .into_iter()
                .partition(Promise::is_observed);
            state.waiters = live;
            // Room to grow before the next look, so each waiter is looked at a bounded number
            // of times even when most stay watched.
            let len = state.waiters.len();
            state.waiters.reserve(len.max(4));
            forgotten = dead;
        }
        let promise = Promise::new();
        let future = promise.future();
        state.waiters.push(promise);
        drop(state);
        // Not abandoned: nobody could see it, and an abandonment would be counted.
        forgotten.into_iter().for_each(Promise::release);
        future
    }

    /// Whether the latch was triggered (true from the moment the first `trigger` wins, possibly
    /// an instant before every waiter's future is ready).
    pub fn is_triggered(&self) -> bool {
        self.state.lock().triggered
    }
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new()
    }
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latch")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

#[cfg(all(test, not(procession_loom)))]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_latch_asked_for_many_futures_keeps_only_those_still_watched() {
        let latch = Latch::new();
        let kept = latch.future();
        let called = Arc::new(AtomicBool::new(false));
        let flag = called.clone();
        // Only a callback watches this one: its handle is gone, but it must still complete.
        latch
            .future()
            .on_ready(move |()| flag.store(true, Ordering::SeqCst));
        for _ in 0..100_000 {
            drop(latch.future());
        }
        // Waited on for a moment, then given up (the callback registered and withdrawn).
        for _ in 0..1_000 {
            assert!(!latch.future().wait_for(std::time::Duration::ZERO));
        }
        let waiting = latch.state.lock().waiters.len();
        assert!(waiting < 64, "{waiting} waiters kept for 2 watched futures");
        assert!(latch.trigger());
        assert!(kept.is_ready() && called.load(Ordering::SeqCst));
    }
}
