//! `await_ready` and friends: wait for an outcome, or fail the test saying what happened.
//!
//! Each helper blocks the test thread (never a worker) until the future completes or the timeout
//! passes, then asserts the outcome it names. A failure reports the state the future was in and
//! the caller's file and line. On a deterministic runtime (the current one, see
//! `Runtime::enter`) the helpers run the scheduler while they wait, so they never deadlock a test
//! whose runtime only moves when driven; on a paused clock they wait for work already queued
//! and do not move time (advance it yourself).
//!
//! ```
//! use procession::{dispatch, Process, Runtime};
//! use procession_testkit::{await_abandoned, await_ready};
//!
//! struct Echo;
//! impl Process for Echo {}
//!
//! let runtime = Runtime::new();
//! let echo = runtime.spawn(Echo);
//! assert_eq!(await_ready(&dispatch(&echo, |_: &mut Echo| 7)), 7);
//! procession::terminate_now(&echo);
//! await_ready(&procession::wait(&echo));
//! await_abandoned(&dispatch(&echo, |_: &mut Echo| 8));
//! ```
//!
//! # Contract
//!
//! The helpers wait in real time; they are for tests, where a hang is worse than a failure.

use std::fmt::Debug;
use std::panic::Location;
use std::time::Duration;

use procession::{Failure, Future};

/// How long the helpers wait unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Waits until `future` is ready and returns a clone of its value.
///
/// # Panics
///
/// Panics, naming the caller's location and the future's state, if it fails, is discarded or
/// abandoned, or is still pending after [`DEFAULT_TIMEOUT`].
#[track_caller]
pub fn await_ready<T: Clone + Debug + Send + Sync + 'static>(future: &Future<T>) -> T {
    await_ready_for(future, DEFAULT_TIMEOUT)
}

/// [`await_ready`] with an explicit timeout.
///
/// # Panics
///
/// As [`await_ready`].
#[track_caller]
pub fn await_ready_for<T: Clone + Debug + Send + Sync + 'static>(
    future: &Future<T>,
    timeout: Duration,
) -> T {
    settle_outcome(future, timeout, "ready");
    match future.get() {
        Some(value) => value,
        None => fail(future, "ready", Location::caller()),
    }
}

/// Waits until `future` fails and returns the failure.
///
/// # Panics
///
/// Panics, naming the caller's location and the future's state, unless it fails within
/// [`DEFAULT_TIMEOUT`].
#[track_caller]
pub fn await_failed<T: Debug + Send + Sync + 'static>(future: &Future<T>) -> Failure {
    settle_outcome(future, DEFAULT_TIMEOUT, "failed");
    match future.error().as_ref().and_then(|e| e.failure()) {
        Some(failure) => failure.clone(),
        None => fail(future, "failed", Location::caller()),
    }
}

/// Waits until `future` ends discarded.
///
/// # Panics
///
/// Panics, naming the caller's location and the future's state, unless it is discarded within
/// [`DEFAULT_TIMEOUT`].
#[track_caller]
pub fn await_discarded<T: Debug + Send + Sync + 'static>(future: &Future<T>) {
    settle_outcome(future, DEFAULT_TIMEOUT, "discarded");
    if !future.is_discarded() {
        fail(future, "discarded", Location::caller());
    }
}

/// Waits until `future` ends abandoned.
///
/// # Panics
///
/// Panics, naming the caller's location and the future's state, unless it is abandoned within
/// [`DEFAULT_TIMEOUT`].
#[track_caller]
pub fn await_abandoned<T: Debug + Send + Sync + 'static>(future: &Future<T>) {
    settle_outcome(future, DEFAULT_TIMEOUT, "abandoned");
    if !future.is_abandoned() {
        fail(future, "abandoned", Location::caller());
    }
}

#[track_caller]
fn settle_outcome<T: Debug + Send + Sync + 'static>(
    future: &Future<T>,
    timeout: Duration,
    wanted: &str,
) {
    if !future.wait_for(timeout) {
        panic!(
            "{}: expected the future to be {wanted}, but it is still pending after {timeout:?}: {future:?}",
            Location::caller()
        );
    }
}

fn fail<T: Debug + Send + Sync + 'static>(
    future: &Future<T>,
    wanted: &str,
    at: &Location<'_>,
) -> ! {
    panic!("{at}: expected the future to be {wanted}, but it is {future:?}")
}
