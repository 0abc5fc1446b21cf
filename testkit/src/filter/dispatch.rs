//! The dispatch helpers: catch, drop, drop every or forbid dispatches by their target and
//! method name.

use procession::{Future, Runtime, Upid};

use super::guard::{Standing, Watch};
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
    Rules::of(runtime).once(dispatch_pattern(to, method), drop, |_| Ok(()))
}

fn dispatch_pattern(to: Upid, method: &str) -> Pattern {
    Pattern::Dispatch {
        to,
        method: method.to_owned(),
    }
}

/// Drops every dispatch of `method` to `to` until the returned guard is dropped (libprocess's
/// `DROP_DISPATCHES`, which lasts the whole test). Each dropped dispatch's future ends
/// abandoned, as with [`drop_dispatch`]; matching is as in [`future_dispatch`].
///
/// # Examples
///
/// ```
/// use procession::{dispatch_method, Process, Runtime};
/// use procession_testkit::{await_abandoned, await_ready, drop_dispatches};
///
/// struct Store;
/// impl Process for Store {}
///
/// let runtime = Runtime::new();
/// let store = runtime.spawn(Store);
/// let outage = drop_dispatches(&runtime, &store, "write");
/// await_abandoned(&dispatch_method(&store, Some("write"), |_: &mut Store| 1));
/// await_abandoned(&dispatch_method(&store, Some("write"), |_: &mut Store| 2));
/// drop(outage); // the store is back
/// assert_eq!(await_ready(&dispatch_method(&store, Some("write"), |_: &mut Store| 3)), 3);
/// ```
pub fn drop_dispatches(
    runtime: &Runtime,
    to: impl Into<Upid>,
    method: &str,
) -> DropDispatchesGuard {
    DropDispatchesGuard {
        _rule: Standing::drop_every(runtime, dispatch_pattern(to.into(), method)),
    }
}

/// Drops matching dispatches while it lives; see [`drop_dispatches`].
#[must_use = "the dispatches are dropped only while the guard lives"]
#[derive(Debug)]
pub struct DropDispatchesGuard {
    /// Held for its drop, which retires the rule.
    _rule: Standing,
}

/// Fails the test if a dispatch of `method` to `to` is seen while the returned guard lives
/// (libprocess's `EXPECT_NO_FUTURE_DISPATCHES`). Matching dispatches still run; matching is as
/// in [`future_dispatch`].
///
/// As with [`expect_no_future_messages`](crate::expect_no_future_messages), the guard records
/// what it saw (the filter runs on the caller's thread, often a worker, where a panic would
/// only end the calling process) and panics when it is dropped or
/// [`check`](NoDispatchesGuard::check)ed.
///
/// # Panics
///
/// The guard panics, naming the method, the process and where the guard was made, when it is
/// dropped or checked after a match (not while the thread is already panicking).
///
/// # Examples
///
/// ```
/// use procession::{dispatch_method, Process, Runtime};
/// use procession_testkit::{await_ready, expect_no_future_dispatches};
///
/// struct Registry;
/// impl Process for Registry {}
///
/// let runtime = Runtime::new();
/// let registry = runtime.spawn(Registry);
/// let no_recovery = expect_no_future_dispatches(&runtime, &registry, "recover");
/// await_ready(&dispatch_method(&registry, Some("lookup"), |_: &mut Registry| ()));
/// no_recovery.check(); // passes: another method
/// ```
///
/// A match fails the test when the guard is dropped (or checked):
///
/// ```should_panic
/// # use procession::{dispatch_method, Process, Runtime};
/// # use procession_testkit::{await_ready, expect_no_future_dispatches};
/// # struct Registry;
/// # impl Process for Registry {}
/// # let runtime = Runtime::new();
/// # let registry = runtime.spawn(Registry);
/// let no_recovery = expect_no_future_dispatches(&runtime, &registry, "recover");
/// await_ready(&dispatch_method(&registry, Some("recover"), |_: &mut Registry| ()));
/// drop(no_recovery); // panics: "... saw dispatch of `recover` to ..."
/// ```
#[track_caller]
pub fn expect_no_future_dispatches(
    runtime: &Runtime,
    to: impl Into<Upid>,
    method: &str,
) -> NoDispatchesGuard {
    let to = to.into();
    let expectation = format!("expect_no_future_dispatches(dispatch of `{method}` to {to})");
    NoDispatchesGuard(Watch::forbid(
        runtime,
        dispatch_pattern(to, method),
        expectation,
    ))
}

/// Records matching dispatches while it lives, and fails the test if there were any; see
/// [`expect_no_future_dispatches`].
#[must_use = "dispatches are watched only while the guard lives"]
#[derive(Debug)]
pub struct NoDispatchesGuard(Watch);

impl NoDispatchesGuard {
    /// Fails now if a matching dispatch was seen so far.
    ///
    /// # Panics
    ///
    /// Panics, naming the method and the process, if one was seen.
    pub fn check(&self) {
        self.0.check();
    }
}
