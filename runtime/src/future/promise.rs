//! `Promise<T>`: the one handle that completes a future.

use std::fmt;
use std::sync::Arc;

use super::callback::Callback;
use super::cell::Cell;
use super::Future;
use crate::error::{Error, Failure};

/// The producing side of a [`Future`]: completes it exactly once.
///
/// Completing takes the promise by value, so a promise completes its future at most once by
/// construction. Dropping a promise that has not completed its future *abandons* it: every
/// observer learns at once that no answer will come.
///
/// ```
/// use procession::Promise;
///
/// let promise = Promise::new();
/// let future = promise.future();
/// assert!(future.is_pending());
/// promise.set(42);
/// assert_eq!(future.get(), Some(42));
///
/// let dropped = Promise::<u32>::new();
/// let orphan = dropped.future();
/// drop(dropped);
/// assert!(orphan.is_abandoned());
/// ```
pub struct Promise<T: Send + Sync + 'static> {
    cell: Arc<Cell<T>>,
}

impl<T: Send + Sync + 'static> Promise<T> {
    /// A promise with a pending future.
    pub fn new() -> Self {
        Promise {
            cell: Arc::new(Cell::pending()),
        }
    }

    /// A handle to the future this promise completes; every call returns a handle to the same one.
    pub fn future(&self) -> Future<T> {
        Future::from_cell(self.cell.clone())
    }

    /// Completes the future with `value`.
    pub fn set(self, value: T) {
        self.complete(Ok(value));
    }

    /// Fails the future.
    pub fn fail(self, failure: impl Into<Failure>) {
        self.complete(Err(Error::failed(failure.into())));
    }

    /// Moves the future to the discarded state, normally in answer to a discard request.
    pub fn discard(self) {
        self.complete(Err(Error::discarded()));
    }

    /// Completes the future with the outcome of another future's: `Ok` readies it, a failure
    /// fails it, and a discarded or abandoned error discards or abandons it.
    pub fn complete(self, outcome: Result<T, Error>) {
        self.cell.complete(outcome);
    }

    /// Whether anyone could still see the future complete: a handle to it lives besides this
    /// promise, or a callback waits on it. False means completing it would change nothing
    /// anyone can observe (no new handle can be made from the promise alone but through
    /// [`future`](Self::future)).
    pub(crate) fn is_observed(&self) -> bool {
        if Arc::strong_count(&self.cell) > 1 {
            return true;
        }
        // The count's load is relaxed: what the last other handle did before it dropped
        // (register a callback) must be seen below.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        self.cell.has_callbacks()
    }

    /// Lets the future go without completing it: for one nobody observes (see
    /// [`is_observed`](Self::is_observed)), which would otherwise be counted as abandoned.
    pub(crate) fn release(mut self) {
        let done = Arc::new(Cell::completed(Err(Error::abandoned())));
        drop(std::mem::replace(&mut self.cell, done));
    }

    /// Whether a discard was requested on the future. A producer checks this to stop early.
    pub fn has_discard(&self) -> bool {
        self.cell.has_discard()
    }

    /// Runs `f` when a discard is requested on the future (at once if one already was). `f` is
    /// dropped unrun if the future completes first.
    pub fn on_discard(&self, f: impl FnOnce() + Send + 'static) {
        self.cell.on_discard(Box::new(f));
    }

    /// Ties this promise to `source` in both directions: `source`'s outcome completes this
    /// promise's future (value down), and a discard requested on this promise's future is passed
    /// on to `source` (discard up).
    ///
    /// The value is cloned out of `source`, which stays usable by its other holders.
    pub fn associate(self, source: Future<T>)
    where
        T: Clone,
    {
        super::chain::forward_discard(&self.future(), &source);
        source
            .cell
            .on_complete(Callback::new(move |outcome| self.complete(outcome.clone())));
    }
}

impl<T: Send + Sync + 'static> Default for Promise<T> {
    fn default() -> Self {
        Promise::new()
    }
}

impl<T: Send + Sync + 'static> Drop for Promise<T> {
    fn drop(&mut self) {
        // A completed cell needs no lock to tell: the outcome is written before anyone can see
        // the promise dropped.
        if self.cell.outcome().is_none() {
            self.cell.complete(Err(Error::abandoned()));
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.cell.outcome() {
            None if self.has_discard() => "pending, discard requested",
            None => "pending",
            Some(_) => "complete",
        };
        f.debug_struct("Promise").field("state", &state).finish()
    }
}
