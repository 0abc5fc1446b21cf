//! `Future<T>`: a shared, eager handle to one result, completed by a [`Promise`].
//!
//! A future is how every asynchronous operation in procession answers: a dispatch, a timer, a
//! pipe read. It is *eager* (the work runs whether or not anyone is watching), *shared* (clones
//! are handles to the same result) and completed exactly once, by its promise.
//!
//! ```
//! use procession::Promise;
//!
//! let promise = Promise::new();
//! let doubled = promise.future().map(|x: &u32| x * 2);
//! promise.set(21);
//! assert_eq!(doubled.get(), Some(42));
//! ```
//!
//! # States
//!
//! A future starts *pending* and ends in exactly one of four states:
//!
//! | end state | caused by | reported by | callback |
//! |---|---|---|---|
//! | ready | [`Promise::set`] | [`is_ready`](Future::is_ready) | [`on_ready`](Future::on_ready) |
//! | failed | [`Promise::fail`] | [`is_failed`](Future::is_failed) | [`on_failed`](Future::on_failed) |
//! | discarded | [`Promise::discard`] | [`is_discarded`](Future::is_discarded) | [`on_discarded`](Future::on_discarded) |
//! | abandoned | the promise dropped unfulfilled | [`is_abandoned`](Future::is_abandoned) | [`on_abandoned`](Future::on_abandoned) |
//!
//! [`on_any`](Future::on_any) fires on every end state. [`Outcomes`] counts how many futures
//! ended in each state on a thread.
//!
//! # Discard is a request
//!
//! [`discard`](Future::discard) asks the producer to stop; it does not complete the future. The
//! request flows upstream through [`then`](Future::then) chains and into the inputs of
//! [`collect`], [`await_all`] and [`select`], and the producer decides:
//!
//! ```
//! use procession::Promise;
//!
//! let promise = Promise::<u32>::new();
//! let future = promise.future();
//! future.discard();
//! assert!(future.is_pending());      // only a request so far
//! assert!(promise.has_discard());    // the producer sees it ...
//! promise.discard();                 // ... and honours it
//! assert!(future.is_discarded());
//! ```
//!
//! # Contract
//!
//! - Callbacks run synchronously on the thread that completes the future, after its lock is
//!   released; a callback added to a completed future runs at once, in the caller. Callbacks
//!   that complete further futures are queued on a per-thread trampoline, so a long chain
//!   completes in constant stack.
//! - Callbacks borrow the value (`&T`). Owned access ([`get`](Future::get), `.await`) clones it;
//!   [`into_inner`](Future::into_inner) moves it out of the last handle.
//! - Combinators that pass a value through unchanged ([`repair`](Future::repair),
//!   [`recover`](Future::recover), [`after`](Future::after), [`undiscardable`], and flattening in
//!   [`then`](Future::then)) need `T: Clone`; a value with one owner travels as [`Owned`].
//! - Dropping a handle never discards: discarding is explicit.

// Unsafe code: a future's slots, guarded by its state word (see its docs), model-checked under
// loom (tests/loom_future_cell.rs).
#[allow(unsafe_code)]
pub(crate) mod cell;
// Unsafe code: a small callback kept in place, its type erased (see its docs).
#[allow(unsafe_code)]
pub(crate) mod callback;
mod chain;
mod collect;
mod interop;
mod outcomes;
mod owned;
mod promise;
mod repeat;

use std::fmt;
use std::sync::Arc;

use self::callback::Callback;
use self::cell::Cell;
use crate::context::Captured;
use crate::error::{Error, Failure};

pub use self::chain::undiscardable;
pub(crate) use self::chain::{catch, panic_message};
pub use self::collect::{await_all, collect, select};
pub use self::interop::Wait;
pub use self::outcomes::Outcomes;
pub use self::owned::Owned;
pub use self::promise::Promise;
pub use self::repeat::loop_;

/// A shared handle to a result that will be available later. See the [module docs](self).
pub struct Future<T: Send + Sync + 'static> {
    cell: Arc<Cell<T>>,
}

impl<T: Send + Sync + 'static> Future<T> {
    fn from_cell(cell: Arc<Cell<T>>) -> Self {
        Future { cell }
    }

    /// A future that is already ready with `value`.
    pub fn ready(value: T) -> Self {
        Future::from_cell(Arc::new(Cell::completed(Ok(value))))
    }

    /// A future that has already failed.
    pub fn failed(failure: impl Into<Failure>) -> Self {
        Future::from_cell(Arc::new(Cell::completed(Err(Error::failed(
            failure.into(),
        )))))
    }

    /// A future that is already complete with `outcome`.
    pub fn completed(outcome: Result<T, Error>) -> Self {
        Future::from_cell(Arc::new(Cell::completed(outcome)))
    }

    /// Whether no outcome is known yet.
    pub fn is_pending(&self) -> bool {
        self.cell.outcome().is_none()
    }

    /// Whether the future holds a value.
    pub fn is_ready(&self) -> bool {
        matches!(self.cell.outcome(), Some(Ok(_)))
    }

    /// Whether the future failed.
    pub fn is_failed(&self) -> bool {
        matches!(self.cell.outcome(), Some(Err(e)) if e.is_failed())
    }

    /// Whether the producer discarded the future.
    pub fn is_discarded(&self) -> bool {
        matches!(self.cell.outcome(), Some(Err(e)) if e.is_discarded())
    }

    /// Whether the producer went away without completing the future.
    pub fn is_abandoned(&self) -> bool {
        matches!(self.cell.outcome(), Some(Err(e)) if e.is_abandoned())
    }

    /// Whether a discard was requested (the future may still be pending).
    pub fn has_discard(&self) -> bool {
        self.cell.has_discard()
    }

    /// A clone of the value, if the future is ready.
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        self.value().cloned()
    }

    /// A reference to the value, if the future is ready.
    pub fn value(&self) -> Option<&T> {
        self.cell
            .outcome()
            .and_then(|outcome| outcome.as_ref().ok())
    }

    /// Why the future has no value, if it failed, was discarded or was abandoned.
    pub fn error(&self) -> Option<Error> {
        self.cell
            .outcome()
            .and_then(|outcome| outcome.as_ref().err().cloned())
    }

    /// The outcome, if the future is complete.
    pub fn outcome(&self) -> Option<&Result<T, Error>> {
        self.cell.outcome()
    }

    /// Moves the value out of the last handle to a ready future.
    ///
    /// # Errors
    ///
    /// Gives the handle back if other handles exist (including one inside a pending promise) or
    /// the future is not ready.
    pub fn into_inner(self) -> Result<T, Self> {
        if !self.is_ready() {
            return Err(self);
        }
        match Arc::try_unwrap(self.cell) {
            Ok(cell) => match cell.into_outcome() {
                Some(Ok(value)) => Ok(value),
                _ => unreachable!("checked ready above and no other handle can change it"),
            },
            Err(cell) => Err(Future::from_cell(cell)),
        }
    }

    /// Requests that the producer stop; see [Discard is a request](self#discard-is-a-request).
    /// A no-op on a complete future or after a first request.
    pub fn discard(&self) {
        self.cell.request_discard();
    }

    /// Runs `f` with the outcome once the future completes (at once if it already has), on the
    /// completing thread, with the runtime that is current here and now.
    pub fn on_any(&self, f: impl FnOnce(&Result<T, Error>) + Send + 'static) -> &Self {
        let captured = Captured::current();
        self.cell
            .on_complete(Callback::new(move |outcome| captured.run(|| f(outcome))));
        self
    }

    /// The address of the state every handle to this future shares: the same for all of them,
    /// and unique among futures alive at once.
    pub(crate) fn address(&self) -> usize {
        Arc::as_ptr(&self.cell).cast::<()>() as usize
    }

    /// [`on_any`](Self::on_any) without capturing the runtime: for the crate's own plumbing,
    /// which runs no user code directly.
    pub(crate) fn when_complete(&self, f: impl FnOnce(&Result<T, Error>) + Send + 'static) {
        self.cell.on_complete(Callback::new(f));
    }

    /// [`on_discard`](Self::on_discard) without capturing the runtime, for the crate's plumbing.
    pub(crate) fn when_discard(&self, f: impl FnOnce() + Send + 'static) {
        self.cell.on_discard(Box::new(f));
    }

    /// Runs `f` with the value if the future becomes ready.
    pub fn on_ready(&self, f: impl FnOnce(&T) + Send + 'static) -> &Self {
        self.on_any(move |outcome| {
            if let Ok(value) = outcome {
                f(value);
            }
        })
    }

    /// Runs `f` with the failure if the future fails.
    pub fn on_failed(&self, f: impl FnOnce(&Failure) + Send + 'static) -> &Self {
        self.on_any(move |outcome| {
            if let Some(failure) = outcome.as_ref().err().and_then(Error::failure) {
                f(failure);
            }
        })
    }

    /// Runs `f` if the future ends discarded.
    pub fn on_discarded(&self, f: impl FnOnce() + Send + 'static) -> &Self {
        self.on_any(move |outcome| {
            if matches!(outcome, Err(e) if e.is_discarded()) {
                f();
            }
        })
    }

    /// Runs `f` if the future ends abandoned.
    pub fn on_abandoned(&self, f: impl FnOnce() + Send + 'static) -> &Self {
        self.on_any(move |outcome| {
            if matches!(outcome, Err(e) if e.is_abandoned()) {
                f();
            }
        })
    }

    /// Runs `f` when a discard is requested while the future is pending (at once if one already
    /// was), with the runtime that is current here and now; never runs once the future has
    /// completed.
    pub fn on_discard(&self, f: impl FnOnce() + Send + 'static) -> &Self {
        let captured = Captured::current();
        self.cell.on_discard(Box::new(move || captured.run(f)));
        self
    }
}

impl<T: Send + Sync + 'static> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future::from_cell(self.cell.clone())
    }
}

impl<T: Send + Sync + fmt::Debug + 'static> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cell.outcome() {
            None => write!(
                f,
                "Future(pending{})",
                if self.has_discard() {
                    ", discard requested"
                } else {
                    ""
                }
            ),
            Some(Ok(value)) => f.debug_tuple("Future").field(value).finish(),
            Some(Err(error)) => write!(f, "Future({error})"),
        }
    }
}
