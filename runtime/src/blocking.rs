//! `run_blocking`: run blocking code off the workers (libprocess's `async`).
//!
//! A handler must never block: it holds a worker thread that other processes need. Code that
//! blocks — a synchronous file read, a CPU-heavy computation, a C library call — goes to
//! `run_blocking`, which runs it on a separate pool and answers with a [`Future`].
//!
//! ```
//! use procession::{run_blocking, Runtime};
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let sum = run_blocking(|| (1..=100u64).sum::<u64>());
//! assert_eq!(runtime.block_on(sum).unwrap(), 5050);
//! ```
//!
//! # Contract
//!
//! The pool is the runtime's I/O driver's blocking pool (threads are created on demand and
//! reused). A running job counts as work for [`Clock::settle`](crate::Clock::settle). In the
//! deterministic mode the job runs inline, at the call, so the seed alone decides the order.

use crate::context;
use crate::future::{catch, Future, Promise};
use crate::handle::Handle;

/// Runs `f` on the blocking pool; the future completes with its return value.
///
/// # Errors
///
/// The future fails if `f` panics (with the panic message), and ends abandoned if the runtime
/// shuts down before the job starts.
///
/// # Discard
///
/// Discarding the future records the request only: a running job cannot be interrupted.
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn run_blocking<T, F>(f: F) -> Future<T>
where
    T: Send + Sync + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = context::expect_current("run_blocking");
    let promise = Promise::new();
    let future = promise.future();
    if handle.scheduler().as_deterministic().is_some() {
        complete(promise, f);
        return future;
    }
    let job = Job::new(handle.clone());
    handle.io().spawn_blocking(move || {
        let _entered = context::enter(job.handle.clone());
        complete(promise, f);
        drop(job);
    });
    future
}

fn complete<T: Send + Sync + 'static>(promise: Promise<T>, f: impl FnOnce() -> T) {
    match catch(f) {
        Ok(value) => promise.set(value),
        Err(failure) => promise.fail(failure),
    }
}

/// One blocking job as a unit of work for settle: started when created, finished when dropped
/// (after it ran, or unrun if the pool shut down first).
struct Job {
    handle: Handle,
}

impl Job {
    fn new(handle: Handle) -> Self {
        handle.quiesce().started();
        Job { handle }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.handle.quiesce().finished();
    }
}
