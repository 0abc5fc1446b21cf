//! The dispatch helpers: catch or drop a dispatch by its target and method name.

use procession::{Future, Runtime, Upid};

use super::rules::{Pattern, Rules};

/// A future that completes when a dispatch of `method` to `to` passes the filter point; the
/// dispatch still runs (libprocess's `FUTURE_DISPATCH`).
///
/// Only dispatches that carry a method name match: those of the typed handles `#[process]`
/// generates, and [`dispatch_method`](procession::dispatch_method). A plain closure dispatch
/// has no name.
///
/// # Errors
///
/// The future ends abandoned if the runtime shuts down first.
///
/// # Discard
///
/// Discarding the future withdraws the rule and ends it discarded.
///
/// # Examples
///
/// ```
/// use procession::{dispatch_method, Process, Runtime};
/// use procession_testkit::{await_ready, future_dispatch};
///
/// #[derive(Default)]
/// struct Counter { count: u64 }
/// impl Process for Counter {}
///
/// let runtime = Runtime::new();
/// let counter = runtime.spawn(Counter::default());
/// let added = future_dispatch(&runtime, &counter, "add");
/// let sum = dispatch_method(&counter, Some("add"), |c: &mut Counter| { c.count += 2; c.count });
/// await_ready(&added);
/// assert_eq!(await_ready(&sum), 2);
/// ```
pub fn future_dispatch(runtime: &Runtime, to: impl Into<Upid>, method: &str) -> Future<()> {
    once_dispatch(runtime, to.into(), method, false)
}

/// Drops the first dispatch of `method` to `to`; the dispatch's own future ends abandoned, and
/// the returned one completes once it was dropped (libprocess's `DROP_DISPATCH`). Matching is
/// as in [`future_dispatch`].
///
/// # Errors
///
/// The future ends abandoned if the runtime shuts down first.
///
/// # Discard
///
/// Discarding the future withdraws the rule and ends it discarded.
///
/// # Examples
///
/// ```
/// use procession::{dispatch_method, Process, Runtime};
/// use procession_testkit::{await_abandoned, await_ready, drop_dispatch};
///
/// struct Store;
/// impl Process for Store {}
///
/// let runtime = Runtime::new();
/// let store = runtime.spawn(Store);
/// let dropped = drop_dispatch(&runtime, &store, "write");
/// let write = dispatch_method(&store, Some("write"), |_: &mut Store| 1);
/// await_ready(&dropped);
/// await_abandoned(&write);
/// ```
pub fn drop_dispatch(runtime: &Runtime, to: impl Into<Upid>, method: &str) -> Future<()> {
    once_dispatch(runtime, to.into(), method, true)
}

fn once_dispatch(runtime: &Runtime, to: Upid, method: &str, drop: bool) -> Future<()> {
    let pattern = Pattern::Dispatch {
        to,
        method: method.to_owned(),
    };
    Rules::of(runtime).once(pattern, drop, |_| Ok(()))
}
