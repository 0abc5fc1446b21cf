//! The type-erased face of a process cell, which the runtime's tables, links and supervisors
//! hold without knowing the process's type.

use std::sync::Arc;

use crate::event::{Envelope, ExitReason};
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::pid::Upid;
use crate::scheduler::Runnable;
use crate::transport::InboundRun;

/// The type-erased face of a process cell: what needs no knowledge of `P`.
pub(crate) trait AnyCell: Runnable {
    fn id(&self) -> &Arc<str>;
    fn upid(&self) -> Upid;
    fn handle(&self) -> &Handle;
    /// Queues a message; false if the process is gone (the message is dropped).
    fn deliver_message(self: Arc<Self>, envelope: Envelope) -> bool;
    /// Queues a transport's run of messages, in order, as one event, unless a filter is
    /// installed or the mailbox is bounded: then each message is delivered as
    /// [`deliver_message`] would. `refused` is called once for every message not queued.
    ///
    /// [`deliver_message`]: AnyCell::deliver_message
    fn deliver_run(self: Arc<Self>, run: InboundRun, refused: &mut dyn FnMut(&str));
    /// Queues an `exited` notice about `upid`.
    fn deliver_exited(self: Arc<Self>, upid: Upid, reason: ExitReason);
    fn terminate(self: Arc<Self>, inject: bool);
    fn wait(&self) -> Future<()>;
    /// Records `linker` to be told when this process ends; if it already has, returns why.
    fn add_linker(&self, linker: Upid) -> Result<(), ExitReason>;
    /// Completes `monitor` with the exit reason when this process ends (at once if it has);
    /// returns the key that withdraws it while pending.
    fn add_monitor(&self, monitor: Promise<ExitReason>) -> Option<u64>;
    /// Withdraws a pending monitor.
    fn remove_monitor(&self, key: u64) -> Option<Promise<ExitReason>>;
    /// Spawn order within the runtime.
    fn seq(&self) -> u64;
    /// Whether this process was spawned as a child (its parent ends it).
    fn has_parent(&self) -> bool;
    /// Adopts `child`: it ends before this process does. False (nothing recorded) if this
    /// process is already ending.
    fn add_child(&self, child: Arc<dyn AnyCell>) -> bool;
    /// Gives up on a process that did not end in time (shutdown's deadline): it accepts nothing
    /// more, its undelivered events, waiters and monitors are dropped (their futures end
    /// abandoned) and its id is freed. Its handler, if stuck, is left alone; when it returns,
    /// the rest of its batch ends abandoned too, and nothing more of the process runs.
    fn abandon(&self);
    /// Whether the process has ended: `finalize` ran (or was skipped), linkers were told.
    fn has_ended(&self) -> bool;
    /// Whether the process's exit reason is known: from before its linkers are told, so a
    /// linker that hears of the end sees it, even while the ending is still under way.
    fn has_exited(&self) -> bool;
    /// Events waiting in the mailbox (each message of a run counted), parked senders included
    /// (not the batch being run).
    fn queued(&self) -> usize;
}
