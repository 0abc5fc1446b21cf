//! Monitors: watch a process end without linking to it.
//!
//! [`monitor`] answers with a [`Future`] of the target's [`ExitReason`], completed once, when the
//! target ends (at once if it already has). Unlike a [`link`](crate::link()), it needs no process
//! to receive an `exited` event: any code — a handler, a callback, a test — can hold it, chain
//! on it, or put a timeout on it. [`demonitor`] (or a discard of the future) withdraws it.
//!
//! ```
//! use procession::{demonitor, monitor, terminate, ExitReason, Process, Runtime};
//!
//! struct Worker;
//! impl Process for Worker {}
//!
//! let runtime = Runtime::new();
//! let worker = runtime.spawn(Worker);
//! let ended = monitor(&worker);
//! let withdrawn = monitor(&worker);
//! demonitor(&withdrawn);
//! terminate(&worker);
//! assert_eq!(runtime.block_on(ended).unwrap(), ExitReason::Normal);
//! assert!(withdrawn.is_discarded());
//! ```
//!
//! # Contract
//!
//! A monitor completes exactly once, with the reason the target ended; monitoring a process that
//! is gone (or an id no local process has) completes at once with [`ExitReason::NotFound`] or
//! the reason it ended with. Monitors of remote processes need the transport and are watched
//! through it; without one they complete with [`ExitReason::Lost`].

use std::sync::Arc;

use crate::event::ExitReason;
use crate::future::{Future, Promise};
use crate::process::{resolve, ProcessRef, Target};

/// A future of `target`'s exit reason; see the [module docs](self).
///
/// # Discard
///
/// Discarding the future withdraws the monitor and ends it discarded (the same as
/// [`demonitor`]).
///
/// # Panics
///
/// Panics if `target` is a [`Upid`](crate::Upid) and no runtime is current.
pub fn monitor(target: &impl ProcessRef) -> Future<ExitReason> {
    let promise = Promise::new();
    let future = promise.future();
    match resolve(target, "monitor") {
        Target::Local(cell) => {
            if let Some(key) = cell.add_monitor(promise) {
                let cell = Arc::downgrade(&cell);
                future.when_discard(move || {
                    if let Some(promise) = cell.upgrade().and_then(|c| c.remove_monitor(key)) {
                        promise.discard();
                    }
                });
            }
        }
        Target::Gone(_) => promise.set(ExitReason::NotFound),
        Target::Remote(upid, handle) => handle.monitor_remote(&upid, promise),
    }
    future
}

/// Withdraws a monitor: its future ends discarded and will not report the exit.
pub fn demonitor(monitor: &Future<ExitReason>) {
    monitor.discard();
}
