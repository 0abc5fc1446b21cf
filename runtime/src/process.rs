//! Processes: user state that handles one event at a time, addressed by a [`Pid`].
//!
//! A process is any `Send` value implementing [`Process`]. [`spawn`] gives it an id and a
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
use std::sync::atomic::Ordering::SeqCst;
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
    handlers: &'a mut crate::message::Handlers<P>,
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
    /// Refuses if a handler (or a delegation) for `M`'s name is already installed.
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

/// The id is taken by a live process of the same runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnError {
    id: Arc<str>,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a process with id {:?} is already running", self.id)
    }
}

impl std::error::Error for SpawnError {}

/// Spawns `process` on the current runtime with a generated id `name(n)`, where `name` is the
/// type's name in lower case.
///
/// On a runtime that is shutting down the process never starts: its dispatches end abandoned
/// and [`wait`] completes at once.
///
/// # Panics
///
/// Panics if no runtime is current; from outside one, use [`Runtime::spawn`](crate::Runtime::spawn).
pub fn spawn<P: Process>(process: P) -> Pid<P> {
    spawn_on(&context::expect_current("spawn"), None, process).expect("generated ids are unique")
}

/// Spawns `process` as a child of the current process, with a generated id.
///
/// The parent hears of the child's end through [`Process::exited`] (a normal end, a panic, a
/// lost node), and ending the parent ends its children first, newest first, each with its own
/// subtree and `finalize`; `wait(parent)` completes only after all of them. The runtime's
/// shutdown leaves children to their parents.
///
/// # Panics
///
/// Panics outside a process's handler: a child needs a parent.
///
/// # Examples
///
/// ```
/// use procession::{dispatch, spawn_child, terminate, wait, Context, Process, Runtime};
/// use std::sync::{Arc, Mutex};
///
/// struct Node { name: &'static str, log: Arc<Mutex<Vec<&'static str>>> }
/// impl Process for Node {
///     fn finalize(&mut self, _: &mut Context<'_, Self>) {
///         self.log.lock().unwrap().push(self.name);
///     }
/// }
///
/// let runtime = Runtime::new();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let parent = runtime.spawn(Node { name: "parent", log: log.clone() });
/// let (a, b) = (log.clone(), log.clone());
/// runtime.block_on(dispatch(&parent, move |_: &mut Node| {
///     spawn_child(Node { name: "first child", log: a });
///     spawn_child(Node { name: "second child", log: b });
/// })).unwrap();
/// terminate(&parent);
/// runtime.block_on(wait(&parent)).unwrap();
/// assert_eq!(*log.lock().unwrap(), ["second child", "first child", "parent"]);
/// ```
pub fn spawn_child<P: Process>(process: P) -> Pid<P> {
    let parent = context::current_process()
        .expect("spawn_child must be called from a process's handler (the parent)");
    let handle = parent.handle().clone();
    spawn_with_parent(&handle, process, Some(&parent))
}

/// Spawns `process` on the current runtime with the id `id`.
///
/// # Errors
///
/// Fails if a live process of the runtime has this id.
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn spawn_named<P: Process>(id: &str, process: P) -> Result<Pid<P>, SpawnError> {
    spawn_on(&context::expect_current("spawn_named"), Some(id), process)
}

fn spawn_with_parent<P: Process>(
    handle: &Handle,
    process: P,
    parent: Option<&Arc<dyn AnyCell>>,
) -> Pid<P> {
    spawn_as(handle, None, process, parent).expect("generated ids are unique")
}

pub(crate) fn spawn_on<P: Process>(
    handle: &Handle,
    id: Option<&str>,
    process: P,
) -> Result<Pid<P>, SpawnError> {
    spawn_as(handle, id, process, None)
}

fn spawn_as<P: Process>(
    handle: &Handle,
    id: Option<&str>,
    process: P,
    parent: Option<&Arc<dyn AnyCell>>,
) -> Result<Pid<P>, SpawnError> {
    let id: Arc<str> = match id {
        Some(id) => id.into(),
        None => handle.table().generate_id(std::any::type_name::<P>()),
    };
    let cell = Arc::new(ProcessCell::new(id.clone(), handle.clone(), process));
    let shutting_down = || handle.shutting_down.load(SeqCst);
    if shutting_down() {
        tracing::warn!(process = %id, "spawn on a runtime that is shutting down; the process never starts");
        cell.never_started();
        return Ok(Pid { cell });
    }
    // The first visit is counted before the cell is published (see `ProcessCell::start`).
    handle.quiesce().started();
    if !handle.table().insert(cell.clone()) {
        handle.quiesce().finished();
        return Err(SpawnError { id });
    }
    let orphaned = parent.is_some_and(|parent| !cell.adopt_by(parent));
    cell.start();
    if orphaned || shutting_down() {
        // The parent is already ending, or shutdown began while this spawn published the
        // process: end it like the others (shutdown also finds it in the table, whichever
        // comes first).
        cell.clone().terminate(false);
    }
    Ok(Pid { cell })
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
        match handle.table().get(self.id()) {
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
