//! `Mutex`: an asynchronous lock that hands out its guard through a future, in FIFO order.
//!
//! A process never blocks, so a critical section that spans asynchronous steps (read a record,
//! then write it back) cannot take a thread lock. This `Mutex`, like libprocess's, guards no
//! data; it orders the code that holds its guard. [`Mutex::lock`] answers with a
//! `Future<Owned<MutexGuard>>`, ready at once when the mutex is free and otherwise when every
//! earlier waiter is done. The guard is a value with one owner, so it travels as [`Owned`] (see
//! "Values with one owner" in DESIGN.md): a forgotten clone of the future never keeps the mutex
//! locked once the guard was taken. Dropping the guard unlocks and grants the next waiter.
//! [`Mutex::with`] is the usual form: it runs a future-returning closure under the lock and
//! releases it when that future completes. No runtime is needed.
//!
//! ```
//! use procession::{Future, Mutex, Promise};
//!
//! let mutex = Mutex::new();
//! let write = Promise::<()>::new();
//! let first = mutex.with({
//!     let write = write.future();
//!     move || write
//! });
//! let second = mutex.with(|| Future::ready("second ran"));
//! assert!(second.is_pending()); // waits for the first critical section
//! write.set(());
//! assert!(first.is_ready());
//! assert_eq!(second.get(), Some("second ran"));
//! assert!(!mutex.is_locked());
//! ```
//!
//! # Contract
//!
//! - Waiters are granted in the order their `lock` calls took the mutex's internal lock.
//! - The lock is released exactly once per grant: when the guard is dropped, or, if the guard
//!   was never taken, when the last handle to its future (and every clone of its `Owned`) is
//!   dropped.
//! - No discard can leave the mutex held. A pending `lock` whose future is discarded leaves the
//!   line and ends discarded. If the discard request lands at the very instant the lock is
//!   granted, the mutex takes the guard back and passes the lock on: that future may then end
//!   ready with an [`Owned`] already emptied ([`Owned::take`] gives `None`). A discard requested
//!   after the future is ready does nothing: the guard is its holder's to drop.
//! - A grant completes the waiter's future on the thread that released the lock, after the
//!   internal lock is released, so its callbacks may lock again. A guard dropped while a grant
//!   is being handed over (by a callback, or on another thread) is released by the same loop once
//!   the grant's callbacks return, so a long line of waiters is handed over in constant stack,
//!   and a grant's callback must not block waiting for this mutex.

use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::Mutex as Lock;

use crate::future::{Future, Owned, Promise};
use crate::line::Line;

/// An asynchronous FIFO lock that guards no data, like libprocess's: [`lock`](Self::lock) gives
/// a future of the guard, [`with`](Self::with) runs a future-returning closure under the lock.
///
/// Clones are handles to the same mutex. It needs no runtime.
///
/// # Contract
///
/// - Waiters are granted in the order their `lock` calls took the mutex's internal lock.
/// - The lock is released exactly once per grant: when the guard is dropped, or, if the guard
///   was never taken, when the last handle to its future (and every clone of its [`Owned`]) is
///   dropped.
/// - No discard can leave the mutex held. A pending `lock` whose future is discarded leaves the
///   line and ends discarded. If the discard request lands at the very instant the lock is
///   granted, the mutex takes the guard back and passes the lock on: that future may then end
///   ready with an [`Owned`] already emptied ([`Owned::take`] gives `None`). A discard requested
///   after the future is ready does nothing: the guard is its holder's to drop.
/// - A grant completes the waiter's future on the thread that released the lock, after the
///   internal lock is released, so its callbacks may lock again (but must not block waiting for
///   this mutex); a long line of waiters is handed over in constant stack.
///
/// ```
/// use procession::Mutex;
///
/// let mutex = Mutex::new();
/// let held = mutex.lock();
/// let next = mutex.lock();
/// let guard = held.get().unwrap().take().unwrap();
/// assert!(next.is_pending());
/// drop(guard);
/// assert!(next.is_ready());
/// ```
pub struct Mutex {
    shared: Arc<Shared>,
}

/// The proof of holding a [`Mutex`]: dropping it unlocks the mutex and grants the next waiter.
pub struct MutexGuard {
    shared: Arc<Shared>,
}

struct Shared {
    state: Lock<State>,
}

/// Invariant: `waiters` is empty unless `locked`.
struct State {
    /// Set while some guard exists or is being handed to a waiter.
    locked: bool,
    /// Set while a release loop runs; a release meanwhile only counts itself in `releases`.
    handing_over: bool,
    /// Releases that arrived while `handing_over`, for the running loop to perform.
    releases: usize,
    waiters: Line<Owned<MutexGuard>>,
}

impl Mutex {
    /// An unlocked mutex.
    pub fn new() -> Self {
        Mutex {
            shared: Arc::new(Shared {
                state: Lock::new(State {
                    locked: false,
                    handing_over: false,
                    releases: 0,
                    waiters: Line::new(),
                }),
            }),
        }
    }

    /// A future of the guard: ready at once if the mutex is free, otherwise completed once
    /// every earlier waiter has released it.
    ///
    /// Take the guard out with [`Owned::take`]; the mutex stays locked until it is dropped.
    ///
    /// # Errors
    ///
    /// None: the future ends ready, or discarded on request.
    ///
    /// # Discard
    ///
    /// Discarding a pending lock removes it from the line and ends it discarded; if it was
    /// being granted at that instant, the lock passes on to the next waiter (see the
    /// [contract](Mutex#contract)). Discarding a ready future does nothing. Dropping every handle
    /// to the future, pending or ready, releases the lock as soon as it is granted, unless the
    /// guard was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Mutex;
    ///
    /// let mutex = Mutex::new();
    /// let guard = mutex.lock().get().unwrap().take().unwrap();
    /// let given_up = mutex.lock();
    /// let waiting = mutex.lock();
    /// given_up.discard();
    /// assert!(given_up.is_discarded());
    /// drop(guard);
    /// assert!(waiting.is_ready());
    /// ```
    pub fn lock(&self) -> Future<Owned<MutexGuard>> {
        let mut state = self.shared.state.lock();
        if !state.locked {
            state.locked = true;
            drop(state);
            return Future::ready(Owned::new(MutexGuard {
                shared: self.shared.clone(),
            }));
        }
        let promise = Promise::new();
        let future = promise.future();
        let key = state.waiters.push(promise);
        let shared = Arc::downgrade(&self.shared);
        // A fresh future has no discard request yet, so the hook cannot run under our lock.
        future.when_discard(move || leave(&shared, key));
        future
    }

    /// Runs `f` under the lock and releases the lock when the future `f` returns completes,
    /// whatever its outcome; the result completes as that future does.
    ///
    /// `f` runs once the lock is granted (at once, here, if the mutex is free), on the thread
    /// that granted it, with the runtime that is current here and now. The lock is released
    /// before the result completes.
    ///
    /// # Errors
    ///
    /// As `f`'s future; a panic in `f` fails the result with the panic message (the lock is
    /// released).
    ///
    /// # Discard
    ///
    /// Discarding the result while `f` waits for the lock withdraws it from the line: `f` never
    /// runs and the result ends discarded. Once `f` ran, the request passes to `f`'s future, and
    /// the lock is held until that future completes. Dropping the result does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::{Future, Mutex};
    ///
    /// let mutex = Mutex::new();
    /// let answer = mutex.with(|| Future::ready(42));
    /// assert_eq!(answer.get(), Some(42));
    /// assert!(!mutex.is_locked());
    /// ```
    pub fn with<R, F>(&self, f: F) -> Future<R>
    where
        R: Clone + Send + Sync + 'static,
        F: FnOnce() -> Future<R> + Send + 'static,
    {
        self.lock().then(move |owned: &Owned<MutexGuard>| {
            // `then` does not call us when a discard was requested before the grant, and only a
            // discard request empties a granted `Owned` before its holder sees it.
            let Some(guard) = owned.take() else {
                return Future::failed("the lock was given up as it was granted");
            };
            let future = f();
            future.when_complete(move |_| drop(guard));
            future
        })
    }

    /// Whether the mutex is locked (held, or being handed to the next waiter).
    pub fn is_locked(&self) -> bool {
        self.shared.state.lock().locked
    }
}

/// The discard hook of a pending lock: leave the line and end discarded (a no-op once a release
/// took the waiter out of the line).
fn leave(shared: &Weak<Shared>, key: u64) {
    let withdrawn = shared
        .upgrade()
        .and_then(|s| s.state.lock().waiters.withdraw(key));
    if let Some(waiter) = withdrawn {
        waiter.discard();
    }
}

/// Releases one hold of the mutex: grants the next waiter that still wants the lock, or
/// unlocks.
///
/// Only one release loop runs per mutex at a time. A release that arrives meanwhile (a guard
/// dropped by a grant's callback, by the last handle of a granted future going away, or on
/// another thread) is counted in `releases` and performed by the running loop, so granting a
/// long line of abandoned waiters does not recurse.
fn release(shared: &Arc<Shared>) {
    {
        let mut state = shared.state.lock();
        if state.handing_over {
            state.releases += 1;
            return;
        }
        state.handing_over = true;
    }
    loop {
        let mut skipped = Vec::new();
        let next = {
            let mut state = shared.state.lock();
            loop {
                match state.waiters.pop() {
                    Some(waiter) if waiter.has_discard() => skipped.push(waiter),
                    Some(waiter) => break Some(waiter),
                    None => {
                        state.locked = false;
                        break None;
                    }
                }
            }
        };
        for promise in skipped {
            promise.discard();
        }
        if let Some(promise) = next {
            let future = promise.future();
            promise.set(Owned::new(MutexGuard {
                shared: shared.clone(),
            }));
            if future.has_discard() {
                // The waiter gave up between our check and the grant: take the guard back (unless
                // a callback already took it), which counts one more release for this loop.
                drop(future.value().and_then(Owned::take));
            }
            // If ours was the last handle, the guard goes with it: one more release, too.
            drop(future);
        }
        let mut state = shared.state.lock();
        if state.releases > 0 {
            state.releases -= 1;
            continue;
        }
        state.handing_over = false;
        return;
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        release(&self.shared);
    }
}

impl Clone for Mutex {
    fn clone(&self) -> Self {
        Mutex {
            shared: self.shared.clone(),
        }
    }
}

impl Default for Mutex {
    fn default() -> Self {
        Mutex::new()
    }
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Mutex")
            .field("locked", &state.locked)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

impl fmt::Debug for MutexGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MutexGuard")
    }
}
