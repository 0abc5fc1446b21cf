//! `defer`: a callable that brings a value back into a process's context.
//!
//! Callbacks run on whatever thread completes a future. To touch a process's state from a
//! callback, `defer` it: the callable dispatches `f(&mut P, value)` to the process, so it runs as
//! one of the process's events, with exclusive access to its state.
//!
//! ```
//! use procession::{defer, dispatch, Future, Process, Runtime};
//!
//! #[derive(Default)]
//! struct Sum { total: u64 }
//! impl Process for Sum {}
//!
//! let runtime = Runtime::new();
//! let sum = runtime.spawn(Sum::default());
//! let done = Future::ready(40u64).then(defer(&sum, |s: &mut Sum, x: u64| { s.total += x + 2; s.total }));
//! assert_eq!(runtime.block_on(done).unwrap(), 42);
//! ```
//!
//! # Contract
//!
//! A deferred call never runs inline, even when invoked from the target process itself: it is
//! queued after the handler running now. If the process is gone when the callable is invoked, the
//! returned future ends abandoned.

use crate::dispatch::dispatch;
use crate::future::Future;
use crate::pid::Pid;
use crate::process::Process;

/// A callable that, invoked with `&value`, dispatches `f(&mut P, value.clone())` to `pid` and
/// returns the dispatch's future; made to be passed to [`Future::then`].
///
/// # Errors
///
/// The returned future ends abandoned if the process is gone when the callable is invoked or
/// ends before running `f`.
pub fn defer<P, V, R, F>(pid: &Pid<P>, f: F) -> impl FnOnce(&V) -> Future<R> + Send + 'static
where
    P: Process,
    V: Clone + Send + 'static,
    R: Send + Sync + 'static,
    F: FnOnce(&mut P, V) -> R + Send + 'static,
{
    let pid = pid.clone();
    move |value: &V| {
        let value = value.clone();
        dispatch(&pid, move |process: &mut P| f(process, value))
    }
}
