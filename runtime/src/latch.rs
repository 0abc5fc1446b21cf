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

use parking_lot::Mutex;

use crate::future::{undiscardable, Future, Promise};

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
    /// The promise until the first trigger takes it.
    promise: Mutex<Option<Promise<()>>>,
    future: Future<()>,
}

impl Latch {
    /// A latch that has not been triggered.
    pub fn new() -> Self {
        let promise = Promise::new();
        Latch {
            future: promise.future(),
            promise: Mutex::new(Some(promise)),
        }
    }

    /// Triggers the latch, completing every waiter's future; `true` only for the first call.
    ///
    /// The waiters' callbacks run here, on this thread, before `trigger` returns.
    pub fn trigger(&self) -> bool {
        let promise = self.promise.lock().take();
        match promise {
            Some(promise) => {
                promise.set(());
                true
            }
            None => false,
        }
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
    /// see it, and the future still becomes ready on the trigger. Dropping it does nothing.
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
        undiscardable(&self.future)
    }

    /// Whether the latch was triggered (true from the moment the first `trigger` wins, possibly
    /// an instant before every waiter's future is ready).
    pub fn is_triggered(&self) -> bool {
        self.promise.lock().is_none()
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
