//! Cooperative yielding: whether the handler running now should stop and continue later.
//!
//! A visit of a process runs up to [`Builder::event_budget`](crate::Builder::event_budget)
//! events before the worker serves others. A single long handler would hold the worker past
//! that budget; [`budget_spent`] lets it notice and split itself: do a slice of work, and once
//! the budget is spent, [`cast`](crate::cast) the rest to itself and return. The rest then runs
//! after whatever else waits on the worker, which matters most for processes pinned to one
//! worker ([`SpawnOptions::pin`](crate::SpawnOptions::pin)): nobody else can run them.
//!
//! The budget is counted, not timed: each event the visit took from the mailbox costs one (all
//! of them up front, as the visit starts, which costs nothing per event), and so does each call
//! of [`budget_spent`] that answered `false` (a call stands for one slice of work, worth one
//! event). So the same program yields at the same points on any machine, and a seeded run of
//! the deterministic mode (budget one: every call answers `true`) stays reproducible.

use std::cell::Cell;

thread_local! {
    /// What is left of the budget of the visit running on this thread; `None` outside a visit.
    static VISIT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Whether the visit running on this thread has used its event budget, so that the handler
/// should leave the rest of its work for later (by dispatching it to its own process).
///
/// Each event the visit took from the mailbox counts one (the events after the current one
/// included: they wait too), and each call that answers `false` counts one more; once the count
/// reaches the runtime's event budget every call answers `true` until the visit ends. Call it after each slice of work, not before the first: with a budget of one (the
/// deterministic mode) it answers `true` at once, and a handler that yields before doing
/// anything would never finish. Outside a process's handler (a plain thread, an async task) it
/// answers `false`: there is no visit to bound.
///
/// # Examples
///
/// ```
/// use procession::{budget_spent, cast, dispatch, Pid, Process, Runtime};
///
/// #[derive(Default)]
/// struct Summer { total: u64, slices: u32 }
/// impl Process for Summer {}
///
/// /// Adds `from..to`, a slice per visit, then answers through `done`.
/// fn sum(me: Pid<Summer>, from: u64, to: u64, done: procession::Promise<u64>) {
///     let _ = cast(&me.clone(), move |s: &mut Summer| {
///         s.slices += 1;
///         let mut i = from;
///         while i < to {
///             s.total += i;
///             i += 1;
///             if budget_spent() {
///                 return sum(me, i, to, done);
///             }
///         }
///         done.set(s.total);
///     });
/// }
///
/// let runtime = Runtime::builder().workers(1).event_budget(16).build().unwrap();
/// let summer = runtime.spawn(Summer::default());
/// let done = procession::Promise::new();
/// let total = done.future();
/// sum(summer.clone(), 0, 1000, done);
/// assert_eq!(runtime.block_on(total).unwrap(), 499_500);
/// let slices = runtime.block_on(dispatch(&summer, |s: &mut Summer| s.slices)).unwrap();
/// assert!(slices > 1, "the handler split itself into {slices} slices");
/// ```
pub fn budget_spent() -> bool {
    VISIT.with(|visit| match visit.get() {
        Some(0) => true,
        Some(left) => {
            visit.set(Some(left - 1));
            false
        }
        None => false,
    })
}

/// Starts counting a visit with `left` units of budget on this thread; returns what to restore
/// when it ends (see [`end_visit`]).
pub(crate) fn start_visit(left: usize) -> Option<usize> {
    VISIT.with(|visit| visit.replace(Some(left)))
}

/// Ends the visit counted on this thread, restoring `previous`.
pub(crate) fn end_visit(previous: Option<usize>) {
    VISIT.with(|visit| visit.set(previous));
}
