//! Engine: the state one future and its promise share.
//!
//! # Protocol
//!
//! A cell holds the outcome in a [`OnceLock`] (written once, then read without a lock) and, under
//! a mutex, what only matters while the future is pending: the completion callbacks, the discard
//! flag and the discard callbacks.
//!
//! - **Completing** (only the promise, once): lock; if `completed` is set, give up; write the
//!   outcome; set `completed`; take the callbacks; unlock; run the callbacks through the
//!   trampoline.
//! - **Registering a callback**: lock; if `completed` is set, unlock and run the callback at once
//!   in the caller; otherwise push it. The outcome is written before `completed` is set, both under
//!   the lock, so a registrant that sees `completed` can read the outcome.
//! - **Requesting a discard**: lock; if the future is completed or a discard was already
//!   requested, do nothing; set `discard`; take the discard callbacks; unlock; run them.
//!
//! No callback ever runs while the lock is held, so a callback may touch the same future or
//! promise again (register, discard, read) without deadlock.
//!
//! # Trampoline
//!
//! Completing a future from inside a callback (the usual case in a `then` chain) does not run the
//! next callbacks on top of the current stack: the callback batch is queued on a per-thread
//! trampoline and drained by the outermost completion before it returns. A chain of a million
//! `then`s therefore completes in constant stack. A callback that panics does not strand the
//! callbacks queued behind it: the drain runs them all, then resumes the first panic.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::error::Error;
use parking_lot::Mutex;

/// What a completed future holds.
pub(crate) type Outcome<T> = Result<T, Error>;

/// A completion callback.
pub(crate) type Callback<T> = Box<dyn FnOnce(&Outcome<T>) + Send>;

/// A discard callback.
pub(crate) type DiscardCallback = Box<dyn FnOnce() + Send>;

pub(crate) struct Cell<T> {
    outcome: OnceLock<Outcome<T>>,
    waiters: Mutex<Waiters<T>>,
}

struct Waiters<T> {
    /// Set once the outcome is written; excludes any further completion.
    completed: bool,
    /// Set by the first discard request while pending; never cleared.
    discard: bool,
    callbacks: Vec<Callback<T>>,
    on_discard: Vec<DiscardCallback>,
}

impl<T: Send + Sync + 'static> Cell<T> {
    pub(crate) fn pending() -> Self {
        Cell {
            outcome: OnceLock::new(),
            waiters: Mutex::new(Waiters {
                completed: false,
                discard: false,
                callbacks: Vec::new(),
                on_discard: Vec::new(),
            }),
        }
    }

    pub(crate) fn completed(outcome: Outcome<T>) -> Self {
        let cell = Cell::pending();
        let _ = cell.outcome.set(outcome);
        cell.waiters.lock().completed = true;
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
    pub(crate) fn complete(self: &std::sync::Arc<Self>, outcome: Outcome<T>) -> bool {
        let callbacks = {
            let mut waiters = self.waiters.lock();
            if waiters.completed {
                return false;
            }
            let _ = self.outcome.set(outcome);
            waiters.completed = true;
            waiters.on_discard.clear();
            std::mem::take(&mut waiters.callbacks)
        };
        if !callbacks.is_empty() {
            let cell = self.clone();
            trampoline(move || {
                let outcome = cell.outcome().expect("completed cell has an outcome");
                for callback in callbacks {
                    callback(outcome);
                }
            });
        }
        true
    }

    /// Runs `callback` on completion, or at once if the cell is already complete.
    pub(crate) fn on_complete(&self, callback: Callback<T>) {
        {
            let mut waiters = self.waiters.lock();
            if !waiters.completed {
                waiters.callbacks.push(callback);
                return;
            }
        }
        callback(self.outcome().expect("completed cell has an outcome"));
    }

    /// Records a discard request and runs the discard callbacks; a no-op once complete.
    pub(crate) fn request_discard(&self) {
        let callbacks = {
            let mut waiters = self.waiters.lock();
            if waiters.completed || waiters.discard {
                return;
            }
            waiters.discard = true;
            std::mem::take(&mut waiters.on_discard)
        };
        for callback in callbacks {
            callback();
        }
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
}

type Job = Box<dyn FnOnce()>;

thread_local! {
    /// `Some` while an outermost completion is draining on this thread.
    static TRAMPOLINE: RefCell<Option<VecDeque<Job>>> = const { RefCell::new(None) };
}

/// Runs `job` now if no completion is draining on this thread, else queues it for the drain.
fn trampoline(job: impl FnOnce() + 'static) {
    let queued = TRAMPOLINE.with(|t| match &mut *t.borrow_mut() {
        Some(queue) => {
            queue.push_back(Box::new(job));
            None
        }
        slot @ None => {
            *slot = Some(VecDeque::new());
            Some(job)
        }
    });
    let Some(job) = queued else { return };

    let mut first_panic = panic::catch_unwind(AssertUnwindSafe(job)).err();
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
        let Some(job) = next else { break };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(job)) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        panic::resume_unwind(payload);
    }
}
