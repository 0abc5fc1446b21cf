//! Spawning: give a process an id and a mailbox on a runtime, as a top-level process or as the
//! child of the current one.
//!
//! ```
//! use procession::{spawn_named, Process, Runtime, SpawnOptions};
//!
//! struct Agent;
//! impl Process for Agent {}
//!
//! let runtime = Runtime::new();
//! let generated = runtime.spawn(Agent);
//! assert!(generated.id().starts_with("agent("));
//! let _entered = runtime.enter();
//! let named = spawn_named("agent-7", Agent).unwrap();
//! assert_eq!(named.upid().to_string(), format!("agent-7@{}", runtime.address()));
//! ```
//!
//! # Contract
//!
//! Spawning never blocks and costs no thread: `initialize` runs on the process's first visit,
//! before any event. On a runtime that is shutting down a spawned process never starts.
//!
//! # Affinity
//!
//! By default a process may run on any worker: a process made runnable by a handler runs next
//! on that handler's worker (a hand-off that crosses no thread), and everything else goes to a
//! shared queue that every idle worker takes from, so load spreads by itself (work stealing in
//! spirit). [`SpawnOptions::pin`] instead binds a process to one worker (thread-per-core style):
//! it runs only there, and a message between two processes pinned to the same worker never
//! leaves that worker's core. A pinned process that another thread makes runnable waits in its
//! worker's own queue, which that worker serves in turn with the shared queue, and wakes the
//! worker if it sleeps.
//!
//! Pinning helps when a job splits into independent chains of similar weight, one per worker:
//! each chain's state stays in one core's cache and no two chains contend. Work stealing is
//! better when the load is uneven or unknown: a pinned process cannot move to an idle worker,
//! so a worker with two heavy pinned chains runs them one after the other while another idles.
//! A long handler of a pinned process delays every other process pinned to its worker; it
//! should check [`budget_spent`](crate::budget_spent) and continue in a later event. The
//! `dataflow` example measures both on one job.

use std::fmt;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use crate::context;
use crate::handle::Handle;
use crate::pid::Pid;
use crate::process::cell::{AnyCell, ProcessCell};
use crate::process::Process;

/// Why a process could not be spawned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// A live process of the runtime has the id.
    IdTaken(Arc<str>),
    /// A bounded mailbox needs room for at least one event.
    ZeroCapacity,
    /// An id must not be empty: its Upid's text form could not be read back.
    EmptyId,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::IdTaken(id) => write!(f, "a process with id {id:?} is already running"),
            SpawnError::ZeroCapacity => {
                f.write_str("a bounded mailbox needs a capacity of at least 1")
            }
            SpawnError::EmptyId => f.write_str("a process id cannot be empty"),
        }
    }
}

/// How to spawn a process: its id, its mailbox bound, and the worker it is pinned to.
///
/// ```
/// use procession::{Process, Runtime, SpawnError, SpawnOptions};
///
/// struct Master;
/// impl Process for Master {}
///
/// let runtime = Runtime::new();
/// let master = runtime.spawn_with(Master, SpawnOptions::new().id("master").bounded(1024)).unwrap();
/// assert_eq!(master.id(), "master");
/// let again = runtime.spawn_with(Master, SpawnOptions::new().id("master"));
/// assert_eq!(again.unwrap_err(), SpawnError::IdTaken("master".into()));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    id: Option<Arc<str>>,
    capacity: Option<usize>,
    pin: Option<usize>,
}

impl SpawnOptions {
    /// A generated id and an unbounded mailbox.
    pub fn new() -> Self {
        SpawnOptions::default()
    }

    /// The process's id, instead of a generated `name(n)`.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Bounds the mailbox to `capacity` queued events; what a sender meets at the bound is its
    /// own choice (see [Bounded mailboxes](mod@crate::dispatch#bounded-mailboxes)).
    pub fn bounded(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Pins the process to worker `worker` (taken modulo the runtime's worker count, so any
    /// index is valid): every visit of the process runs on that worker thread, and never on
    /// another. See [Affinity](mod@crate::spawn#affinity) for when that pays. The deterministic
    /// mode runs everything on one thread and ignores it.
    pub fn pin(mut self, worker: usize) -> Self {
        self.pin = Some(worker);
        self
    }
}

impl std::error::Error for SpawnError {}

/// Spawns `process` on the current runtime with a generated id `name(n)`, where `name` is the
/// type's name in lower case.
///
/// On a runtime that is shutting down the process never starts: its dispatches end abandoned
/// and [`wait`](crate::wait) completes at once.
///
/// # Panics
///
/// Panics if no runtime is current; from outside one, use [`Runtime::spawn`](crate::Runtime::spawn).
pub fn spawn<P: Process>(process: P) -> Pid<P> {
    spawn_on(
        &context::expect_current("spawn"),
        process,
        SpawnOptions::new(),
        None,
    )
    .expect("generated ids are unique")
}

/// Spawns `process` on the current runtime as `options` say.
///
/// # Errors
///
/// Fails if the id is empty or taken by a live process of the runtime, or for a zero capacity.
///
/// # Panics
///
/// Panics if no runtime is current; from outside one, use
/// [`Runtime::spawn_with`](crate::Runtime::spawn_with).
pub fn spawn_with<P: Process>(process: P, options: SpawnOptions) -> Result<Pid<P>, SpawnError> {
    spawn_on(
        &context::expect_current("spawn_with"),
        process,
        options,
        None,
    )
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
    spawn_on(&handle, process, SpawnOptions::new(), Some(&parent))
        .expect("generated ids are unique")
}

/// Spawns `process` on the current runtime with the id `id`.
///
/// # Errors
///
/// Fails if the id is empty or a live process of the runtime has it.
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn spawn_named<P: Process>(id: &str, process: P) -> Result<Pid<P>, SpawnError> {
    spawn_with(process, SpawnOptions::new().id(id))
}

pub(crate) fn spawn_on<P: Process>(
    handle: &Handle,
    process: P,
    options: SpawnOptions,
    parent: Option<&Arc<dyn AnyCell>>,
) -> Result<Pid<P>, SpawnError> {
    if options.capacity == Some(0) {
        return Err(SpawnError::ZeroCapacity);
    }
    if options.id.as_deref() == Some("") {
        return Err(SpawnError::EmptyId);
    }
    let generated = options.id.is_none();
    let id: Arc<str> = match options.id {
        Some(id) => id,
        None => handle.table().generate_id(std::any::type_name::<P>()),
    };
    let mut cell = Arc::new(ProcessCell::new(
        id.clone(),
        handle.clone(),
        process,
        options.pin,
    ));
    if let Some(capacity) = options.capacity {
        cell.set_capacity(capacity);
    }
    let shutting_down = || handle.shutting_down.load(SeqCst);
    if shutting_down() {
        if !generated && handle.table().get(&id).is_some() {
            return Err(SpawnError::IdTaken(id));
        }
        tracing::warn!(process = %id, "spawn on a runtime that is shutting down; the process never starts");
        cell.never_started();
        return Ok(Pid { cell });
    }
    // The first visit is counted before the cell is published (see `ProcessCell::start`).
    handle.quiesce().started();
    while !handle.table().insert(cell.clone()) {
        handle.quiesce().finished();
        match Arc::get_mut(&mut cell) {
            // A named process took the generated id (`spawn_named("counter(1)")`): the next.
            Some(unpublished) if generated => {
                unpublished.rename(handle.table().generate_id(std::any::type_name::<P>()));
                handle.quiesce().started();
            }
            _ => return Err(SpawnError::IdTaken(id)),
        }
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
