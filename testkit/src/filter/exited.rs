//! The exit helpers: catch or drop the `exited` notice one process gets of another's end.

use procession::{ExitReason, Future, Runtime, Upid};

use super::rules::{Pattern, Rules};

/// A future of the reason in the first `exited` notice telling `to` that `from` ended; the
/// notice is still delivered (libprocess's `FUTURE_EXITED`).
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
/// use procession::{dispatch, link, terminate, ExitReason, Process, Runtime};
/// use procession_testkit::{await_ready, future_exited};
///
/// struct Node;
/// impl Process for Node {}
///
/// let runtime = Runtime::new();
/// let (worker, watcher) = (runtime.spawn(Node), runtime.spawn(Node));
/// let target = worker.upid();
/// await_ready(&dispatch(&watcher, move |_: &mut Node| link(&target)));
/// let exited = future_exited(&runtime, &worker, &watcher);
/// terminate(&worker);
/// assert_eq!(await_ready(&exited), ExitReason::Normal);
/// ```
pub fn future_exited(
    runtime: &Runtime,
    from: impl Into<Upid>,
    to: impl Into<Upid>,
) -> Future<ExitReason> {
    once_exited(runtime, from.into(), to.into(), false)
}

/// Drops the first `exited` notice telling `to` that `from` ended, so `to` never learns of it;
/// the future completes with the reason once it was dropped (libprocess's `DROP_EXITED`).
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
/// use procession::{inject_exited, ExitReason, Process, Runtime};
/// use procession_testkit::{await_ready, drop_exited};
///
/// struct Node;
/// impl Process for Node {}
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let (peer, linker) = (runtime.spawn(Node), runtime.spawn(Node));
/// let dropped = drop_exited(&runtime, &peer, &linker);
/// inject_exited(&peer.upid(), &linker.upid(), ExitReason::Lost);
/// assert_eq!(await_ready(&dropped), ExitReason::Lost);
/// ```
pub fn drop_exited(
    runtime: &Runtime,
    from: impl Into<Upid>,
    to: impl Into<Upid>,
) -> Future<ExitReason> {
    once_exited(runtime, from.into(), to.into(), true)
}

fn once_exited(runtime: &Runtime, from: Upid, to: Upid, drop: bool) -> Future<ExitReason> {
    Rules::of(runtime).once(Pattern::Exited { from, to }, drop, |event| match event {
        procession::EventView::Exited { reason, .. } => Ok((*reason).clone()),
        _ => Err(procession::Failure::new(
            "an exited rule matched another kind of event",
        )),
    })
}
