//! Chaining: `then`, `map`, `repair`, `recover`, `after`, `undiscardable`, and how a discard
//! travels upstream through each.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::cell::{Cell, Discard};
use super::{Future, Promise};
use crate::context::current_upid;
use crate::context::{self, Captured};
use crate::driver::armed::timer_owner;
use crate::error::{Error, Failure};

impl<T: Send + Sync + 'static> Future<T> {
    /// Runs `f` with the value once this future is ready and follows the future it returns.
    ///
    /// A failed, discarded or abandoned input ends the result the same way without calling `f`.
    /// `f` runs with the runtime that was current when `then` was called.
    ///
    /// # Errors
    ///
    /// A panic in `f` fails the result with the panic message.
    ///
    /// # Discard
    ///
    /// Discarding the result requests a discard of this future and, once `f` ran, of the future
    /// `f` returned. If this future becomes ready after the request, `f` is not called and the
    /// result ends discarded. Dropping the result does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::{Future, Promise};
    ///
    /// let promise = Promise::new();
    /// let length = promise.future().then(|s: &String| Future::ready(s.len()));
    /// promise.set(String::from("hello"));
    /// assert_eq!(length.get(), Some(5));
    /// ```
    pub fn then<R, F>(&self, f: F) -> Future<R>
    where
        R: Clone + Send + Sync + 'static,
        F: FnOnce(&T) -> Future<R> + Send + 'static,
    {
        self.chain(move |promise, outcome| match outcome {
            Ok(value) => match catch(|| f(value)) {
                Ok(next) => promise.associate(next),
                Err(failure) => promise.fail(failure),
            },
            Err(error) => promise.complete(Err(error.clone())),
        })
    }

    /// Runs `f` with the value once this future is ready; the result is `f`'s return value.
    ///
    /// The same as [`then`](Self::then) for a function that answers at once; `R` needs no
    /// `Clone`.
    ///
    /// # Errors
    ///
    /// As [`then`](Self::then): the input's error passes through, and a panic in `f` fails the
    /// result.
    ///
    /// # Discard
    ///
    /// As [`then`](Self::then).
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Future;
    ///
    /// assert_eq!(Future::ready(20).map(|x: &u32| x + 1).get(), Some(21));
    /// ```
    pub fn map<R, F>(&self, f: F) -> Future<R>
    where
        R: Send + Sync + 'static,
        F: FnOnce(&T) -> R + Send + 'static,
    {
        self.chain(move |promise, outcome| match outcome {
            Ok(value) => match catch(|| f(value)) {
                Ok(next) => promise.set(next),
                Err(failure) => promise.fail(failure),
            },
            Err(error) => promise.complete(Err(error.clone())),
        })
    }

    /// Turns a failure into a value (or another future); ready, discarded and abandoned inputs
    /// pass through unchanged.
    ///
    /// # Errors
    ///
    /// The result fails if `f`'s future fails or `f` panics.
    ///
    /// # Discard
    ///
    /// Discarding the result requests a discard of this future and of `f`'s future.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Future;
    ///
    /// let repaired = Future::<u32>::failed("no answer").repair(|_| 0);
    /// assert_eq!(repaired.get(), Some(0));
    /// ```
    pub fn repair<F, U>(&self, f: F) -> Future<T>
    where
        T: Clone,
        F: FnOnce(&Failure) -> U + Send + 'static,
        U: Into<Future<T>>,
    {
        self.chain(move |promise, outcome| match outcome {
            Err(error) if error.is_failed() => {
                let failure = error.failure().expect("a failed error has a failure");
                match catch(|| f(failure).into()) {
                    Ok(next) => promise.associate(next),
                    Err(failure) => promise.fail(failure),
                }
            }
            other => promise.complete(other.clone()),
        })
    }

    /// Turns a failed, discarded or abandoned outcome into a value (or another future); a ready
    /// input passes through.
    ///
    /// # Errors
    ///
    /// The result fails if `f`'s future fails or `f` panics.
    ///
    /// # Discard
    ///
    /// Discarding the result requests a discard of this future; if this future then ends
    /// discarded, `f` still runs, so a recovered chain can answer a cancelled request.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Promise;
    ///
    /// let promise = Promise::<u32>::new();
    /// let recovered = promise.future().recover(|error| if error.is_abandoned() { 7 } else { 0 });
    /// drop(promise);
    /// assert_eq!(recovered.get(), Some(7));
    /// ```
    pub fn recover<F, U>(&self, f: F) -> Future<T>
    where
        T: Clone,
        F: FnOnce(&Error) -> U + Send + 'static,
        U: Into<Future<T>>,
    {
        let input = self.clone();
        let promise = Promise::new();
        let output = promise.future();
        forward_discard(&output, self);
        let captured = Captured::current();
        input.when_complete(move |outcome| match outcome {
            Ok(value) => promise.set(value.clone()),
            Err(error) => match captured.run(|| catch(|| f(error).into())) {
                Ok(next) => promise.associate(next),
                Err(failure) => promise.fail(failure),
            },
        });
        output
    }

    /// Calls `f` with this future if it is still pending after `duration` of the runtime clock,
    /// and follows the future `f` returns; otherwise the result completes as this future does.
    ///
    /// This is the way to put a timeout on anything. The timer uses the current runtime's clock,
    /// so a paused clock controls it. `f` is called even if a discard was requested meanwhile.
    /// An input that ends abandoned ends the result abandoned at once and cancels the timer.
    ///
    /// # Errors
    ///
    /// As the input, or as `f`'s future once `f` was called.
    ///
    /// # Discard
    ///
    /// Discarding the result requests a discard of this future (and of `f`'s future once `f`
    /// ran); the timer stays armed until the input completes. As in libprocess, a discard is
    /// only a request: if the input ignores it and is still pending when the timer fires, `f`
    /// is called with it (and sees its `has_discard`).
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current (see [`Runtime::enter`](crate::Runtime::enter)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use procession::{Future, Promise, Runtime};
    ///
    /// let runtime = Runtime::new();
    /// let _entered = runtime.enter();
    /// let clock = runtime.clock();
    /// clock.pause();
    /// let promise = Promise::<u32>::new();
    /// let answer = promise.future().after(Duration::from_secs(3600), |pending| {
    ///     pending.discard();
    ///     Future::failed("timed out")
    /// });
    /// clock.advance(Duration::from_secs(3600));
    /// assert!(answer.is_failed());
    /// assert!(promise.has_discard());
    /// ```
    pub fn after<F>(&self, duration: Duration, f: F) -> Future<T>
    where
        T: Clone,
        F: FnOnce(Future<T>) -> Future<T> + Send + 'static,
    {
        let handle = context::expect_current("Future::after");
        let promise = Promise::new();
        let output = promise.future();
        forward_discard(&output, self);
        let slot = Arc::new(Mutex::new(Some(promise)));

        let input = self.clone();
        let on_timeout = slot.clone();
        let timer = handle.timers().schedule_after(
            duration,
            Box::new(move || {
                if !input.is_pending() {
                    return;
                }
                let Some(promise) = on_timeout.lock().take() else {
                    return;
                };
                match catch(|| f(input)) {
                    Ok(next) => promise.associate(next),
                    Err(failure) => promise.fail(failure),
                }
            }),
            timer_owner(&handle, current_upid),
        );
        let timers = Arc::downgrade(&handle);
        self.when_complete(move |outcome| {
            if let Some(handle) = timers.upgrade() {
                handle.timers().cancel(timer);
            }
            if let Some(promise) = slot.lock().take() {
                promise.complete(outcome.clone());
            }
        });
        output
    }

    /// The shared core of the one-input combinators: a new future whose discard flows to this
    /// one, completed by `complete` (run with the runtime current at registration).
    fn chain<R, C>(&self, complete: C) -> Future<R>
    where
        R: Send + Sync + 'static,
        C: FnOnce(Promise<R>, &Result<T, Error>) + Send + 'static,
    {
        let promise = Promise::new();
        let output = promise.future();
        forward_discard(&output, self);
        let captured = Captured::current();
        self.when_complete(move |outcome| {
            if outcome.is_ok() && promise.has_discard() {
                promise.discard();
            } else {
                captured.run(|| complete(promise, outcome));
            }
        });
        output
    }
}

impl<T: Send + Sync + 'static> From<T> for Future<T> {
    /// A ready future, so that closures given to [`repair`](Future::repair) and
    /// [`recover`](Future::recover) can answer with a plain value.
    fn from(value: T) -> Self {
        Future::ready(value)
    }
}

/// A future that completes as `future` does but ignores discard requests, shielding `future`'s
/// producer from them.
///
/// # Discard
///
/// Discarding the result is recorded on the result only; `future` never sees it.
///
/// # Examples
///
/// ```
/// use procession::{undiscardable, Promise};
///
/// let promise = Promise::new();
/// let shielded = undiscardable(&promise.future());
/// shielded.discard();
/// assert!(!promise.has_discard());
/// promise.set(1);
/// assert_eq!(shielded.get(), Some(1));
/// ```
pub fn undiscardable<T: Clone + Send + Sync + 'static>(future: &Future<T>) -> Future<T> {
    let promise = Promise::new();
    let output = promise.future();
    future.when_complete(move |outcome| promise.complete(outcome.clone()));
    output
}

/// Passes a discard requested on `output` to `input`, without keeping `input` alive.
pub(crate) fn forward_discard<T, U>(output: &Future<T>, input: &Future<U>)
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
{
    output.cell.forward_discard_to(input.discard_link());
}

impl<T: Send + Sync + 'static> Future<T> {
    /// A weak link through which a discard request reaches this future.
    pub(crate) fn discard_link(&self) -> Weak<dyn Discard> {
        let weak: Weak<Cell<T>> = Arc::downgrade(&self.cell);
        weak
    }
}

/// Runs `f`, turning a panic into a failure that carries the panic message.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Failure> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| Failure::new(format!("panicked: {}", panic_message(&*payload))))
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}
