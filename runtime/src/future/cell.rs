//! Engine: the state one future and its promise share.
//!
//! # Protocol
//!
//! A cell holds the outcome in a [`OnceLock`] (written once, then read without a lock) and, under
//! a mutex, what only matters while the future is pending: the completion callbacks, the discard
//! flag, the upstream future a discard request is passed to, and the discard callbacks.
//!
//! - **Completing** (only the promise, once): lock; if `completed` is set, give up; write the
//!   outcome; set `completed`; drop the discard wiring; unlock; then run the callbacks (see
//!   below).
//! - **Registering a callback**: lock; if `completed` is set, unlock and run the callback at once
//!   in the caller (even if earlier callbacks still wait on the trampoline: "at once" wins over
//!   registration order, so a blocking wait inside a callback cannot deadlock); otherwise push it.
//!   The outcome is written before `completed` is set, both under the lock, so a registrant that
//!   sees `completed` can read the outcome.
//! - **Requesting a discard**: lock; if the future is completed or a discard was already
//!   requested, do nothing; set `discard`; take the upstream link and the discard callbacks;
//!   unlock; run the callbacks, then do the same for the upstream cell, in a loop rather than by
//!   recursion, so discarding the end of a million-step chain uses constant stack.
//!
//! No callback ever runs while the lock is held, so a callback may touch the same future or
//! promise again (register, discard, read) without deadlock.
//!
//! # Trampoline
//!
//! Completing a future from inside a callback (the usual case in a `then` chain) does not run the
//! next callbacks on top of the current stack: the completed cell (one `Arc`, no allocation) is
//! queued on a per-thread trampoline, and the outermost completion drains the queue before it
//! returns, taking each cell's callbacks under its lock and running them. A chain of a million
//! `then`s therefore completes in constant stack.
//!
//! # Panics in callbacks
//!
//! A callback that panics is caught and logged; the other callbacks run, and the panic never
//! reaches whoever completed the future (a worker, the timer thread, a promise dropped while
//! unwinding), which must not be taken down by an observer's bug.
//!
//! # Accounting
//!
//! The completion that wins counts its outcome on the completing thread
//! ([`Outcomes`](super::Outcomes)): one thread-local increment, so that a run can tell how many
//! futures ended each way. A cell born complete never passes here and is not counted.
//!
//! # Allocation
//!
//! The first callback and the upstream discard link live inline, so a future in a chain (one
//! observer, one upstream) costs its `Arc` and its boxed callback, nothing more.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use crate::error::Error;

/// What a completed future holds.
pub(crate) type Outcome<T> = Result<T, Error>;

/// A completion callback.
pub(crate) type Callback<T> = Box<dyn FnOnce(&Outcome<T>) + Send>;

/// A callback with the key that withdraws it.
type Keyed<T> = (u64, Callback<T>);

/// A discard callback.
pub(crate) type DiscardCallback = Box<dyn FnOnce() + Send>;

/// A cell a discard request can be passed to, whatever its value type.
pub(crate) trait Discard: Send + Sync {
    fn request_discard(&self);
    /// One cell's part of a request; see [`Cell::request_discard`].
    fn discard_step(&self) -> Option<Arc<dyn Discard>>;
}

pub(crate) struct Cell<T> {
    outcome: OnceLock<Outcome<T>>,
    waiters: Mutex<Waiters<T>>,
}

struct Waiters<T> {
    /// Set once the outcome is written; excludes any further completion.
    completed: bool,
    /// Set by the first discard request while pending; never cleared.
    discard: bool,
    first: Option<Callback<T>>,
    /// Later callbacks, each with a key (0 for those that cannot be removed).
    rest: Vec<Keyed<T>>,
    next_key: u64,
    upstream: Option<Weak<dyn Discard>>,
    on_discard: Vec<DiscardCallback>,
}

impl<T> Waiters<T> {
    fn take_callbacks(&mut self) -> (Option<Callback<T>>, Vec<Keyed<T>>) {
        (self.first.take(), mem::take(&mut self.rest))
    }
}

impl<T: Send + Sync + 'static> Cell<T> {
    pub(crate) fn pending() -> Self {
        Cell {
            outcome: OnceLock::new(),
            waiters: Mutex::new(Waiters {
                completed: false,
                discard: false,
                first: None,
                rest: Vec::new(),
                next_key: 1,
                upstream: None,
                on_discard: Vec::new(),
            }),
        }
    }

    pub(crate) fn completed(outcome: Outcome<T>) -> Self {
        let mut cell = Cell::pending();
        let _ = cell.outcome.set(outcome);
        cell.waiters.get_mut().completed = true;
        cell
    }

    pub(crate) fn outcome(&self) -> Option<&Outcome<T>> {
        self.outcome.get()
    }

    pub(crate) fn into_outcome(self) -> Option<Outcome<T>> {
        self.outcome.into_inner()
    }

    pub(crate) fn has_discard(&self) -> bool {
        self.waiters.lock().discard
    }

    /// Writes the outcome and runs the callbacks; returns false if the cell was already complete.
    pub(crate) fn complete(self: &Arc<Self>, outcome: Outcome<T>) -> bool {
        // Whoever sees the outcome sees what the handler completing it sent before.
        crate::context::flush_held();
        let draining = TRAMPOLINE.with(|t| t.borrow().is_some());
        let (first, rest) = {
            let mut waiters = self.waiters.lock();
            if waiters.completed {
                return false;
            }
            super::outcomes::record(&outcome);
            let _ = self.outcome.set(outcome);
            waiters.completed = true;
            waiters.upstream = None;
            let on_discard = mem::take(&mut waiters.on_discard);
            if waiters.first.is_none() && waiters.rest.is_empty() {
                drop(waiters);
                drop(on_discard);
                return true;
            }
            if draining {
                drop(waiters);
                drop(on_discard);
                TRAMPOLINE.with(|t| {
                    let mut t = t.borrow_mut();
                    t.as_mut().expect("checked above").push_back(self.clone());
                });
                return true;
            }
            waiters.take_callbacks()
        };
        let outcome = self.outcome().expect("completed cell has an outcome");
        drain_from(move || run_callbacks(first, rest, outcome));
        true
    }

    /// Runs `callback` on completion, or at once if the cell is already complete.
    pub(crate) fn on_complete(&self, callback: Callback<T>) {
        {
            let mut waiters = self.waiters.lock();
            if !waiters.completed {
                if waiters.first.is_none() && waiters.rest.is_empty() {
                    waiters.first = Some(callback);
                } else {
                    waiters.rest.push((0, callback));
                }
                return;
            }
        }
        callback(self.outcome().expect("completed cell has an outcome"));
    }

    /// Like [`on_complete`](Self::on_complete), but the registration can be withdrawn with
    /// [`remove_callback`](Self::remove_callback) while pending; `None` if it ran at once.
    pub(crate) fn on_complete_removable(&self, callback: Callback<T>) -> Option<u64> {
        {
            let mut waiters = self.waiters.lock();
            if !waiters.completed {
                let key = waiters.next_key;
                waiters.next_key += 1;
                waiters.rest.push((key, callback));
                return Some(key);
            }
        }
        callback(self.outcome().expect("completed cell has an outcome"));
        None
    }

    /// Withdraws a pending registration (a no-op once the callbacks were taken to run).
    pub(crate) fn remove_callback(&self, key: u64) {
        let removed = {
            let mut waiters = self.waiters.lock();
            let index = waiters.rest.iter().position(|(k, _)| *k == key);
            index.map(|index| waiters.rest.remove(index))
        };
        drop(removed);
    }

    /// Records a discard request, runs the discard callbacks and passes the request upstream,
    /// cell by cell in a loop; a no-op once complete or after a first request.
    pub(crate) fn request_discard(&self) {
        let mut next = self.discard_step();
        while let Some(upstream) = next {
            next = upstream.discard_step();
        }
    }

    /// This cell's part of a discard request: the upstream cell to pass it to, if any.
    fn discard_step(&self) -> Option<Arc<dyn Discard>> {
        let (upstream, callbacks) = {
            let mut waiters = self.waiters.lock();
            if waiters.completed || waiters.discard {
                return None;
            }
            waiters.discard = true;
            (waiters.upstream.take(), mem::take(&mut waiters.on_discard))
        };
        for callback in callbacks {
            guarded(callback);
        }
        upstream.and_then(|upstream| upstream.upgrade())
    }

    /// Runs `callback` when a discard is requested, or at once if one already was (and the cell is
    /// still pending). Dropped unrun if the cell completes first.
    pub(crate) fn on_discard(&self, callback: DiscardCallback) {
        {
            let mut waiters = self.waiters.lock();
            if waiters.completed {
                return;
            }
            if !waiters.discard {
                waiters.on_discard.push(callback);
                return;
            }
        }
        callback();
    }

    /// Passes discard requests on this cell to `upstream` (at once if one was already made),
    /// without keeping `upstream` alive.
    pub(crate) fn forward_discard_to(&self, upstream: Weak<dyn Discard>) {
        {
            let mut waiters = self.waiters.lock();
            if waiters.completed {
                return;
            }
            if !waiters.discard {
                if waiters.upstream.is_none() {
                    waiters.upstream = Some(upstream);
                } else {
                    waiters.on_discard.push(Box::new(move || {
                        if let Some(upstream) = upstream.upgrade() {
                            upstream.request_discard();
                        }
                    }));
                }
                return;
            }
        }
        if let Some(upstream) = upstream.upgrade() {
            upstream.request_discard();
        }
    }
}

impl<T: Send + Sync + 'static> Discard for Cell<T> {
    fn request_discard(&self) {
        Cell::request_discard(self);
    }

    fn discard_step(&self) -> Option<Arc<dyn Discard>> {
        Cell::discard_step(self)
    }
}

/// Runs every callback; see [Panics in callbacks](self#panics-in-callbacks).
fn run_callbacks<T>(first: Option<Callback<T>>, rest: Vec<Keyed<T>>, outcome: &Outcome<T>) {
    for callback in first
        .into_iter()
        .chain(rest.into_iter().map(|(_, callback)| callback))
    {
        guarded(|| callback(outcome));
    }
}

/// Runs a callback, catching and logging a panic.
fn guarded(callback: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(callback)) {
        let message = super::chain::panic_message(&*payload);
        tracing::error!(panic = %message, "a future's callback panicked; the panic is contained");
    }
}

/// A completed cell whose callbacks wait on the trampoline.
trait Batch {
    fn run_batch(&self);
}

impl<T: Send + Sync + 'static> Batch for Cell<T> {
    fn run_batch(&self) {
        let (first, rest) = self.waiters.lock().take_callbacks();
        let outcome = self.outcome().expect("a batched cell is complete");
        run_callbacks(first, rest, outcome);
    }
}

thread_local! {
    /// `Some` while an outermost completion is draining on this thread.
    static TRAMPOLINE: RefCell<Option<VecDeque<Arc<dyn Batch>>>> = const { RefCell::new(None) };
}

/// Runs `job` as the outermost completion on this thread, then every batch it (transitively)
/// queued, in order. Callbacks are guarded one by one, so nothing here unwinds.
fn drain_from(job: impl FnOnce()) {
    TRAMPOLINE.with(|t| *t.borrow_mut() = Some(VecDeque::new()));
    job();
    loop {
        let next = TRAMPOLINE.with(|t| {
            let mut t = t.borrow_mut();
            let queue = t.as_mut().expect("trampoline is active");
            let next = queue.pop_front();
            if next.is_none() {
                *t = None;
            }
            next
        });
        let Some(batch) = next else { break };
        batch.run_batch();
    }
}
