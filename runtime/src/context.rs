//! The thread's current runtime, and the process whose event the thread is running.
//!
//! Worker threads enter their runtime for life; any other thread (a test's main thread, a timer
//! or I/O thread) enters one with [`Runtime::enter`](crate::Runtime::enter). The free functions
//! (`spawn`, `send`, `after`, `Clock::current`, ...) read it here, and callbacks capture it when
//! they are registered ([`Captured`]) so they run with the runtime their registrant saw.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::budget;
use crate::handle::Handle;
use crate::pid::Upid;
use crate::process::cell::AnyCell;

thread_local! {
    static RUNTIME: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static PROCESS: RefCell<Option<Arc<dyn AnyCell>>> = const { RefCell::new(None) };
    /// `(runtime id, worker index)` on a worker thread.
    static WORKER: Cell<Option<(u64, usize)>> = const { Cell::new(None) };
    /// The running handler sent through a transport that may hold its sends back: the
    /// transport is flushed when the handler returns.
    static HELD: Cell<bool> = const { Cell::new(false) };
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

/// The process whose event this thread is running, if any.
pub(crate) fn current_process() -> Option<Arc<dyn AnyCell>> {
    PROCESS.with(|p| p.borrow().clone())
}

/// The Upid of the process whose event this thread is running.
pub(crate) fn current_upid() -> Option<Upid> {
    PROCESS.with(|p| p.borrow().as_ref().map(|cell| cell.upid()))
}

/// Marks `cell` as the running process, on a visit with `left` units of its budget left (see
/// [`budget_spent`](crate::budget_spent)), until the guard drops.
pub(crate) fn enter_process(cell: Arc<dyn AnyCell>, left: usize) -> ProcessGuard {
    let previous = PROCESS.with(|p| p.replace(Some(cell)));
    let visit = budget::start_visit(left);
    ProcessGuard { previous, visit }
}

pub(crate) struct ProcessGuard {
    previous: Option<Arc<dyn AnyCell>>,
    visit: Option<usize>,
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        flush_held();
        let previous = self.previous.take();
        PROCESS.with(|p| *p.borrow_mut() = previous);
        budget::end_visit(self.visit);
    }
}

/// Whether a send made now may be held back by the transport until [`flush_held`]: only inside
/// a process's handler, whose return flushes it (the handler is then marked as having sent).
pub(crate) fn may_hold_sends() -> bool {
    let inside = PROCESS.with(|p| p.borrow().is_some());
    if inside {
        HELD.set(true);
    }
    inside
}

/// Flushes the transport if the handler running on this thread sent through it: when the
/// handler returns, and before it completes a future (a dispatch's answer, say), so that what
/// it sent is on its way before anyone can see that it ran.
pub(crate) fn flush_held() {
    if !HELD.replace(false) {
        return;
    }
    let handle = PROCESS.with(|p| p.borrow().as_ref().map(|cell| cell.handle().clone()));
    if let Some(transport) = handle.and_then(|handle| handle.transport()) {
        transport.flush();
    }
}

/// Marks this thread as worker `index` of runtime `runtime_id`, for life.
pub(crate) fn set_worker(runtime_id: u64, index: usize) {
    WORKER.with(|w| w.set(Some((runtime_id, index))));
}

/// Whether this thread is running inside runtime `runtime_id`: one of its workers, or one of its
/// processes' handlers (in the deterministic mode, handlers run on the driving thread).
pub(crate) fn inside(runtime_id: u64) -> bool {
    worker_of(runtime_id).is_some()
        || PROCESS.with(|p| {
            p.borrow()
                .as_ref()
                .is_some_and(|cell| cell.handle().id == runtime_id)
        })
}

/// This thread's worker index if it is a worker of runtime `runtime_id`.
pub(crate) fn worker_of(runtime_id: u64) -> Option<usize> {
    WORKER.with(|w| match w.get() {
        Some((id, index)) if id == runtime_id => Some(index),
        _ => None,
    })
}
