//! Processes: user state that handles one event at a time, addressed by a [`Pid`].
//!
//! A process is any `Send` value implementing [`Process`]. [`spawn`](crate::spawn()) gives it an id and a
//! mailbox on a runtime (no thread, no stack: an idle process is a few hundred bytes and costs no
//! CPU). From then on the runtime runs its events — dispatches, messages, `exited` notices — one
//! at a time, in order, on some worker thread, so its state needs no locks.
//!
//! ```
//! use procession::{dispatch, terminate, wait, Process, Runtime};
//!
//! #[derive(Default)]
//! struct Counter { total: u64 }
//! impl Process for Counter {}
//!
//! let runtime = Runtime::new();
//! let counter = runtime.spawn(Counter::default());
//! dispatch(&counter, |c: &mut Counter| c.total += 5);
//! let total = dispatch(&counter, |c: &mut Counter| c.total);
//! assert_eq!(runtime.block_on(total).unwrap(), 5);
//! terminate(&counter);
//! runtime.block_on(wait(&counter)).unwrap();
//! ```
//!
//! # Lifecycle
//!
//! 1. [`Process::initialize`] runs first, before any other event.
//! 2. Events run in mailbox order. [`terminate`] queues a terminate event at the back (events
//!    queued before it still run); [`terminate_now`] puts it at the front (queued events are
//!    dropped, and their dispatches end abandoned).
//! 3. [`Process::finalize`] runs last; then linked processes get `exited`, the id is freed and
//!    [`wait`] completes.
//!
//! A panic in any handler ends the process at once: the panic is logged with the process id,
//! `finalize` is skipped, queued dispatches end abandoned, linkers get `exited` with
//! [`ExitReason::Panicked`], and `wait` completes. The worker thread and the runtime carry on.
//!
//! # Contract
//!
//! A process's handlers never run on two threads at once, and each event sees the effects of the
//! ones before it. Dropping every handle does not end a process; only a terminate (or a panic, or
//! the runtime's shutdown) does. Blocking inside a handler stalls a worker: use
//! [`run_blocking`](crate::run_blocking).

pub(crate) mod cell;
pub(crate) mod table;

use std::fmt;
use std::sync::Arc;

use crate::context;
use crate::event::ExitReason;
use crate::future::Future;
use crate::handle::Handle;
use crate::message::{InstallError, Message};
use crate::pid::{Pid, Upid};

use self::cell::{AnyCell, ProcessCell};

/// The state of a process and its lifecycle hooks. Every hook has a default that does nothing.
pub trait Process: Send + Sized + 'static {
    /// Runs before any other event. Install message handlers here.
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx;
    }

    /// Runs after the terminate event, as the last event (not after a panic).
    fn finalize(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx;
    }

    /// A process this one linked to ended (`upid`), for `reason`.
    fn exited(&mut self, ctx: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        let _ = (ctx, upid, reason);
    }
}

/// What a lifecycle hook can reach besides the process state: its own address and its handler
/// table.
pub struct Context<'a, P: Process> {
    cell: &'a Arc<ProcessCell<P>>,
    pub(crate) handlers: &'a mut crate::message::Handlers<P>,
}

impl<'a, P: Process> Context<'a, P> {
    pub(crate) fn new(
        cell: &'a Arc<ProcessCell<P>>,
        handlers: &'a mut crate::message::Handlers<P>,
    ) -> Self {
        Context { cell, handlers }
    }

    /// This process's typed address.
    pub fn pid(&self) -> Pid<P> {
        Pid {
            cell: self.cell.clone(),
        }
    }

    /// This process's untyped address.
    pub fn upid(&self) -> Upid {
        self.cell.upid()
    }

    /// Installs `handler` for messages of type `M`; it gets the process, the sender and the
    /// message.
    ///
    /// # Errors
    ///
    /// Refuses a second handler for the same message name.
    pub fn install<M, F>(&mut self, handler: F) -> Result<(), InstallError>
    where
        M: Message,
        F: FnMut(&mut P, &Upid, M) + Send + 'static,
    {
        self.handlers.install(handler)
    }

    /// Forwards every message of type `M` that reaches this process to `to`, unchanged and still
    /// from its original sender (libprocess's `delegate`): a front process can hand a protocol
    /// to the process that implements it. The message is not decoded on the way through.
    ///
    /// # Errors
    ///
    /// Refuses if a handler (or a delegation) for `M`'s name is already installed, if the name
    /// is the one requests travel under, or if `to` is this process (each message would come
    /// back to it, forever).
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::{dispatch, send, Context, Message, Pid, Process, Runtime, Upid};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize, Message)]
    /// struct Job(u32);
    ///
    /// #[derive(Default)]
    /// struct Worker { jobs: Vec<(String, u32)> }
    /// impl Process for Worker {
    ///     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
    ///         ctx.install(|w: &mut Self, from: &Upid, Job(n)| w.jobs.push((from.id().to_owned(), n)))
    ///             .unwrap();
    ///     }
    /// }
    ///
    /// struct Front { worker: Upid }
    /// impl Process for Front {
    ///     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
    ///         ctx.delegate::<Job>(&self.worker).unwrap();
    ///     }
    /// }
    ///
    /// let runtime = Runtime::new();
    /// let worker = runtime.spawn(Worker::default());
    /// let front = runtime.spawn(Front { worker: worker.upid() });
    /// {
    ///     let _entered = runtime.enter();
    ///     send(&front.upid(), Job(4));
    /// }
    /// let clock = runtime.clock();
    /// clock.pause();
    /// clock.settle();
    /// let jobs = runtime.block_on(dispatch(&worker, |w: &mut Worker| w.jobs.clone())).unwrap();
    /// assert_eq!(jobs, vec![("anonymous".to_owned(), 4)]);
    /// ```
    pub fn delegate<M: Message>(&mut self, to: &Upid) -> Result<(), InstallError> {
        if to.id() == self.cell.id() && self.cell.handle().is_local(to.address()) {
            // Every such message would come back here, forever.
            return Err(InstallError::to_itself(M::NAME));
        }
        let runtime = Arc::downgrade(self.cell.handle());
        self.handlers.delegate::<M>(runtime, to.clone())
    }
}

impl<P: Process> fmt::Debug for Context<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("pid", &self.cell.upid())
            .finish()
    }
}

/// Something that addresses a process: a [`Pid`] or a [`Upid`]. Sealed.
pub trait ProcessRef: sealed::Resolve {}

impl<P: Process> ProcessRef for Pid<P> {}
impl ProcessRef for Upid {}

mod sealed {
    use std::sync::Arc;

    /// Finds the process a reference addresses.
    pub trait Resolve {
        fn resolve(&self, what: &str) -> Resolved;
    }

    // Unnameable outside the crate (a private module), so its crate-private payload never leaks.
    #[allow(private_interfaces)]
    pub enum Resolved {
        Local(Arc<dyn super::AnyCell>),
        /// A local address that no live process has.
        Gone(super::Upid),
        /// Another node's process, and the runtime that was asked.
        Remote(super::Upid, super::Handle),
    }
}

use self::sealed::Resolve;
pub(crate) use self::sealed::Resolved as Target;

/// What `target` addresses, as seen from the current runtime (for a `Upid`).
pub(crate) fn resolve(target: &impl ProcessRef, what: &str) -> Target {
    target.resolve(what)
}

impl<P: Process> Resolve for Pid<P> {
    fn resolve(&self, _what: &str) -> Target {
        Target::Local(self.cell.clone())
    }
}

impl Resolve for Upid {
    fn resolve(&self, what: &str) -> Target {
        let handle = context::expect_current(what);
        if !handle.is_local(self.address()) {
            return Target::Remote(self.clone(), handle);
        }
        match handle.process(self) {
            Some(cell) => Target::Local(cell),
            None => Target::Gone(self.clone()),
        }
    }
}

/// Ends `target` after the events already queued to it (libprocess `terminate(pid)`).
///
/// A process that is gone, or remote, is left alone.
///
/// # Panics
///
/// Panics if `target` is a [`Upid`] and no runtime is current.
pub fn terminate(target: &impl ProcessRef) {
    if let Target::Local(cell) = target.resolve("terminate") {
        cell.terminate(false);
    }
}

/// Ends `target` before the events already queued to it, which are dropped (their dispatches end
/// abandoned). libprocess's `terminate(pid, inject = true)`.
///
/// # Panics
///
/// Panics if `target` is a [`Upid`] and no runtime is current.
pub fn terminate_now(target: &impl ProcessRef) {
    if let Target::Local(cell) = target.resolve("terminate_now") {
        cell.terminate(true);
    }
}

/// A future that completes once `target` has ended (after `finalize`), at once if it already has.
///
/// # Errors
///
/// Fails at once for a remote process or an id that no local process has.
///
/// # Discard
///
/// Discarding the returned future has no effect on the process.
///
/// # Panics
///
/// Panics if `target` is a [`Upid`] and no runtime is current.
pub fn wait(target: &impl ProcessRef) -> Future<()> {
    match target.resolve("wait") {
        Target::Local(cell) => cell.wait(),
        Target::Gone(upid) | Target::Remote(upid, _) => {
            Future::failed(format!("cannot wait for {upid}: not a live local process"))
        }
    }
}
