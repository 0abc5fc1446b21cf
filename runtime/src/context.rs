//! The thread's current runtime, and the process whose event the thread is running.
//!
//! Worker threads enter their runtime for life; any other thread (a test's main thread, a timer
//! or I/O thread) enters one with [`Runtime::enter`](crate::Runtime::enter). The free functions
//! (`spawn`, `send`, `after`, `Clock::current`, ...) read it here, and callbacks capture it when
//! they are registered ([`Captured`]) so they run with the runtime their registrant saw.
//!
//! The running process is kept as a pointer, not an `Arc`: a visit lends its own `Arc` for as
//! long as it runs (see [`running`]), which saves an atomic increment and decrement a visit
//! (12% of a ping-pong's round trip, 15% of a ring's hop rate, measured). Reading it is the
//! module's only unsafe code; `current_process` makes an owning `Arc` from it when one is needed.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use crate::budget;
use crate::handle::Handle;
use crate::pid::Upid;
use crate::process::cell::AnyCell;
use crate::transport::Transport;

thread_local! {
    static RUNTIME: RefCell<Option<Handle>> = const { RefCell::new(None) };
    /// The process whose event this thread runs: a pointer into the `Arc` that the running
    /// visit borrows for as long as it is here (see [`running`]), so that entering and
    /// leaving count no references.
    static PROCESS: Cell<Option<NonNull<dyn AnyCell>>> = const { Cell::new(None) };
    /// `(runtime id, worker index)` on a worker thread.
    static WORKER: Cell<Option<(u64, usize)>> = const { Cell::new(None) };
    /// The transport the running handler sent through, which may hold its sends back until
    /// the handler returns (see [`with_transport`]).
    static HOLDING: Cell<Option<Arc<dyn Transport>>> = const { Cell::new(None) };
    /// The running process as a sender, made on its first send of the visit (see
    /// [`current_sender`]).
    static SENDER: RefCell<Option<Rc<Sender>>> = const { RefCell::new(None) };
}

/// The current runtime, if any.
pub(crate) fn current() -> Option<Handle> {
    RUNTIME.with(|r| r.borrow().clone())
}

/// The current runtime; panics with a message naming `what` when there is none.
pub(crate) fn expect_current(what: &str) -> Handle {
    current().unwrap_or_else(|| {
        panic!(
            "{what} needs a current procession runtime: call it from a process, a callback, or \
             after `runtime.enter()`"
        )
    })
}

/// Makes `handle` the current runtime until the guard drops, restoring the previous one.
pub(crate) fn enter(handle: Handle) -> EnterGuard {
    let previous = RUNTIME.with(|r| r.replace(Some(handle)));
    EnterGuard {
        previous,
        _not_send: PhantomData,
    }
}

/// Restores the previously current runtime when dropped. It belongs to the thread that entered:
/// it is neither `Send` nor `Sync`, so it cannot be dropped on another thread.
#[must_use = "the runtime stays current only while the guard lives"]
pub struct EnterGuard {
    previous: Option<Handle>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        RUNTIME.with(|r| *r.borrow_mut() = previous);
    }
}

impl std::fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnterGuard")
    }
}

/// A runtime captured when a callback was registered, entered again when it runs.
pub(crate) struct Captured(Option<Handle>);

impl Captured {
    pub(crate) fn current() -> Self {
        Captured(current())
    }

    /// Runs `f` with the captured runtime current (a no-op swap when it already is).
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(handle) = &self.0 else { return f() };
        let already = RUNTIME.with(|r| matches!(&*r.borrow(), Some(h) if Arc::ptr_eq(h, handle)));
        if already {
            f()
        } else {
            let _guard = enter(handle.clone());
            f()
        }
    }
}

/// Runs `f` with the process whose event this thread is running, if any.
#[allow(unsafe_code)]
fn with_process<R>(f: impl FnOnce(Option<&dyn AnyCell>) -> R) -> R {
    let running = PROCESS.with(Cell::get);
    // SAFETY: only `running` puts a pointer in `PROCESS`, taken from the `Arc` it borrows, and
    // its `Restore` puts the previous one back before it returns or unwinds, so before that
    // borrow ends; runs nest, so each restores in reverse order of entry on this thread. A
    // pointer found here therefore belongs to a `running` call still on this thread's stack,
    // whose cell is alive.
    f(running.map(|cell| unsafe { cell.as_ref() }))
}

/// The process whose event this thread is running, if any.
#[allow(unsafe_code)]
pub(crate) fn current_process() -> Option<Arc<dyn AnyCell>> {
    let running = PROCESS.with(Cell::get)?;
    // SAFETY: the cell is alive (see `with_process`), and the pointer is `Arc::as_ptr` of the
    // `Arc` it lives in, unsized to `dyn AnyCell` (what `Arc::into_raw` of that `Arc`, coerced,
    // would give). One more strong count, taken as an `Arc`, is a new owner, as `Arc::clone`
    // makes.
    Some(unsafe {
        Arc::increment_strong_count(running.as_ptr());
        Arc::from_raw(running.as_ptr())
    })
}

/// Whether this thread is running a process's event.
pub(crate) fn in_process() -> bool {
    PROCESS.with(Cell::get).is_some()
}

/// The Upid of the process whose event this thread is running.
pub(crate) fn current_upid() -> Option<Upid> {
    with_process(|cell| cell.map(|cell| cell.upid()))
}

/// Runs `f` with `cell` as the running process, on a visit with `left` units of its budget left
/// (see [`budget_spent`](crate::budget_spent)), then puts back what was running before, also
/// when `f` or the transport's flush panics. A closure rather than a guard the caller holds, so
/// that no caller can keep the pointer past its borrow of `cell` by forgetting the guard.
// Inlined into the visit, as the guard it replaced was: out of line, with the visit's body as its
// closure, it cost 3% of a ping-pong's round trip.
#[inline(always)]
pub(crate) fn running<C: AnyCell + 'static, R>(
    cell: &Arc<C>,
    left: usize,
    f: impl FnOnce() -> R,
) -> R {
    let running: *const C = Arc::as_ptr(cell);
    let running: *const dyn AnyCell = running;
    let running = NonNull::new(running.cast_mut()).expect("an Arc's pointer is never null");
    let previous = PROCESS.with(Cell::get);
    if previous.is_some() {
        // Inside another handler: what it held goes now, as its transport may be another
        // runtime's and this visit's sends must not go through it.
        flush_held();
    }
    SENDER.with(|s| s.borrow_mut().take());
    let visit = budget::start_visit(left);
    PROCESS.with(|p| p.set(Some(running)));
    let _restore = Restore { previous, visit };
    let result = f();
    // Inside `_restore`'s scope: a panic in a transport's flush still puts the pointer back.
    flush_held();
    result
}

/// What [`running`] puts back when it returns or unwinds: the previous process first, so the
/// pointer never outlives the borrow it came from.
struct Restore {
    previous: Option<NonNull<dyn AnyCell>>,
    visit: Option<usize>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        PROCESS.with(|p| p.set(self.previous));
        SENDER.with(|s| s.borrow_mut().take());
        budget::end_visit(self.visit);
    }
}

/// Runs `f` with `handle`'s transport (if it has one) and whether the transport may hold the
/// send back until [`flush_held`]: it may inside a process's handler, whose return flushes it.
/// A handler's transport is looked up on its first send and kept until the flush, so a stream
/// of sends takes no lock and no reference count on it.
pub(crate) fn with_transport<R>(
    handle: &crate::handle::Shared,
    f: impl FnOnce(Option<&Arc<dyn Transport>>, bool) -> R,
) -> R {
    let in_handler = with_process(|cell| cell.is_some_and(|cell| cell.handle().id == handle.id));
    if !in_handler {
        // Not this runtime's handler (a test's thread, a task, another runtime's callback).
        return f(handle.transport().as_ref(), false);
    }
    with_handler_transport(handle, f)
}

/// [`with_transport`] for a send that the running handler makes through its own runtime, as
/// [`current_sender`] found: the transport may hold it back.
pub(crate) fn with_handler_transport<R>(
    handle: &crate::handle::Shared,
    f: impl FnOnce(Option<&Arc<dyn Transport>>, bool) -> R,
) -> R {
    // Taken out while in use (a send made inside this one looks it up) and put back even if
    // `f` panics, so that the handler's flush still finds what it held.
    let Some(transport) = HOLDING.take().or_else(|| handle.transport()) else {
        return f(None, true);
    };
    let holding = PutBack(Some(transport));
    f(holding.0.as_ref(), true)
}

/// Puts the handler's transport back when dropped.
struct PutBack(Option<Arc<dyn Transport>>);

impl Drop for PutBack {
    fn drop(&mut self) {
        HOLDING.set(self.0.take());
    }
}

/// Flushes the transport if the handler running on this thread sent through it: when the
/// handler returns, and before it completes a future (a dispatch's answer, say), so that what
/// it sent is on its way before anyone can see that it ran.
///
/// A flush that panics is the transport's bug, not the process's: it is logged, and what the
/// transport held is its own to account for. Caught here because a flush runs between events,
/// outside any handler's `catch_unwind`, where a panic would end the worker thread.
// The check inlined, as it runs after every event; the flush out of line, as few events send.
#[inline]
pub(crate) fn flush_held() {
    if let Some(transport) = HOLDING.take() {
        flush(&*transport);
    }
}

#[inline(never)]
fn flush(transport: &dyn Transport) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| transport.flush())) {
        tracing::error!(
            panic = crate::future::panic_message(&*payload),
            "a transport's flush panicked; the sends it held back are its own to account for"
        );
    }
}

/// The running process as a sender: its Upid and runtime, made once a visit, so that a stream
/// of sends shares them instead of counting a reference to each per message.
pub(crate) struct Sender {
    pub(crate) upid: Upid,
    pub(crate) handle: Handle,
}

/// The process whose event this thread is running, as a [`Sender`], when its runtime is the
/// current one (a callback may run another runtime's code inside a handler).
pub(crate) fn current_sender() -> Option<Rc<Sender>> {
    let sender = process_sender()?;
    let current = RUNTIME.with(|r| {
        r.borrow()
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, &sender.handle))
    });
    current.then_some(sender)
}

/// The process whose event this thread is running, as a [`Sender`].
fn process_sender() -> Option<Rc<Sender>> {
    if let Some(sender) = SENDER.with(|s| s.borrow().clone()) {
        return Some(sender);
    }
    let sender = with_process(|cell| {
        cell.map(|cell| Sender {
            upid: cell.upid(),
            handle: cell.handle().clone(),
        })
    })?;
    let sender = Rc::new(sender);
    SENDER.with(|s| *s.borrow_mut() = Some(sender.clone()));
    Some(sender)
}

/// Marks this thread as worker `index` of runtime `runtime_id`, for life.
pub(crate) fn set_worker(runtime_id: u64, index: usize) {
    WORKER.with(|w| w.set(Some((runtime_id, index))));
}

/// Whether this thread is running inside runtime `runtime_id`: one of its workers, or one of its
/// processes' handlers (in the deterministic mode, handlers run on the driving thread).
pub(crate) fn inside(runtime_id: u64) -> bool {
    worker_of(runtime_id).is_some()
        || with_process(|cell| cell.is_some_and(|cell| cell.handle().id == runtime_id))
}

/// This thread's worker index if it is a worker of runtime `runtime_id`.
pub(crate) fn worker_of(runtime_id: u64) -> Option<usize> {
    WORKER.with(|w| match w.get() {
        Some((id, index)) if id == runtime_id => Some(index),
        _ => None,
    })
}
