//! Links: be told when another process ends.
//!
//! [`link`] from inside a process asks for an `exited(upid, reason)` event when the target
//! ends — terminated normally, crashed, or lost with its node. Linking to a process that is already
//! gone delivers the event at once, so a link can never miss an exit.
//!
//! ```
//! use procession::{dispatch, link, terminate, Context, ExitReason, Pid, Process, Runtime, Upid};
//!
//! struct Worker;
//! impl Process for Worker {}
//!
//! #[derive(Default)]
//! struct Monitor { exits: Vec<(String, ExitReason)> }
//! impl Process for Monitor {
//!     fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
//!         self.exits.push((upid.id().to_owned(), reason.clone()));
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let worker = runtime.spawn(Worker);
//! let monitor = runtime.spawn(Monitor::default());
//! let target = worker.upid();
//! runtime.block_on(dispatch(&monitor, move |_: &mut Monitor| link(&target))).unwrap();
//! terminate(&worker);
//! runtime.block_on(procession::wait(&worker)).unwrap();
//! let clock = runtime.clock();
//! clock.pause();
//! clock.settle();
//! let exits = runtime.block_on(dispatch(&monitor, |m: &mut Monitor| m.exits.clone())).unwrap();
//! assert_eq!(exits, vec![(worker.id().to_owned(), ExitReason::Normal)]);
//! ```
//!
//! # Contract
//!
//! The links a process makes to a live target deliver `exited` exactly once, however often they
//! were made. A link made once the target has ended is answered on its own (as in libprocess),
//! so a process that links again, in a handler that ran after the target ended but before its
//! notice did, hears of the end twice. Links are one-way: the
//! target is not told when the linker ends. A remote target is watched through the transport; a
//! broken connection reports [`ExitReason::Lost`].

use crate::context;
use crate::event::ExitReason;
use crate::pid::Upid;

/// Links the current process to `to`: when `to` ends, the current process's
/// [`exited`](crate::Process::exited) runs with `to` and the reason.
///
/// If `to` is already gone (or never existed), `exited` is queued at once with
/// [`ExitReason::NotFound`] or the reason it ended with.
///
/// # Panics
///
/// Panics if called outside a process's handler: a link needs a linker.
pub fn link(to: &Upid) {
    let linker = context::current_process()
        .expect("link must be called from a process's handler (the linker)");
    let handle = linker.handle().clone();
    let me = linker.upid();
    if !handle.is_local(to.address()) {
        handle.link_remote(me, to);
        return;
    }
    let outcome = match handle.process(to) {
        Some(target) => target.add_linker(me),
        None => Err(ExitReason::NotFound),
    };
    if let Err(reason) = outcome {
        linker.deliver_exited(to.clone(), reason);
    }
}

/// Queues an `exited(from, reason)` notice for process `to`, as if `from`, a process it linked
/// to, had ended (libprocess's `inject::exited`), whether or not `to` ever linked to `from`. A
/// test uses it to play a crash or a lost node to a linker without staging one; nothing happens
/// to `from`.
///
/// The notice passes the receiving runtime's [filter](crate::filter) like any other. A `to` of
/// another node is told through the transport; an unknown local `to` is ignored.
///
/// # Panics
///
/// Panics if no runtime is current.
///
/// # Examples
///
/// ```
/// use procession::{dispatch, inject_exited, Context, ExitReason, Process, Runtime, Upid};
///
/// #[derive(Default)]
/// struct Linker { exits: Vec<(String, ExitReason)> }
/// impl Process for Linker {
///     fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
///         self.exits.push((upid.id().to_owned(), reason.clone()));
///     }
/// }
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let linker = runtime.spawn(Linker::default());
/// let peer: Upid = "agent(1)@10.0.0.2:5051".parse().unwrap();
/// inject_exited(&peer, &linker.upid(), ExitReason::Lost);
/// let exits = runtime.block_on(dispatch(&linker, |l: &mut Linker| l.exits.clone())).unwrap();
/// assert_eq!(exits, vec![("agent(1)".to_owned(), ExitReason::Lost)]);
/// ```
pub fn inject_exited(from: &Upid, to: &Upid, reason: ExitReason) {
    context::expect_current("inject_exited").notify_exited(to, from, &reason);
}
