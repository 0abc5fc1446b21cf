//! `Sequence`: runs future-returning closures strictly one after another.
//!
//! A sequence serialises asynchronous steps that must not overlap (writes to one file, updates
//! to one record), as libprocess's `Sequence` does. [`Sequence::add`] queues a closure that
//! returns a [`Future`] and answers with a future of the same result; each closure starts only
//! once the future of the one added before it has completed, whatever its outcome (ready,
//! failed, discarded or abandoned). A process keeps a sequence in its state and adds steps from
//! its handlers; the steps themselves usually `dispatch` or `defer` into processes. No runtime
//! is needed, but a closure runs with the runtime that was current where it was added.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use procession::{Future, Promise, Sequence};
//!
//! let sequence = Sequence::new();
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let slow = Promise::<u32>::new();
//! let first = sequence.add({
//!     let (log, slow) = (log.clone(), slow.future());
//!     move || { log.lock().unwrap().push("first"); slow }
//! });
//! let second = sequence.add({
//!     let log = log.clone();
//!     move || { log.lock().unwrap().push("second"); Future::ready(2) }
//! });
//! assert_eq!(*log.lock().unwrap(), ["first"]); // the second waits for the first's future
//! slow.set(1);
//! assert_eq!(*log.lock().unwrap(), ["first", "second"]);
//! assert_eq!((first.get(), second.get()), (Some(1), Some(2)));
//! ```
//!
//! # Discard
//!
//! Discarding the result of an `add` never breaks the others; the later closures still run in
//! order. What it does depends on where the item is:
//!
//! - **queued** (its closure has not started): the item leaves the line at once, its closure is
//!   never called, and its future ends discarded. libprocess skips such an item only when its
//!   turn comes; leaving at once answers the caller sooner and runs the others in the same
//!   order.
//! - **running**: the request passes to the future its closure returned; the sequence moves on
//!   when that future completes, so two closures never overlap.
//! - **done**: nothing happens.
//!
//! Dropping the `Sequence` requests a discard of every item that has not completed, as
//! libprocess does when a sequence is destroyed: queued items end discarded without running,
//! and the running one's future receives the request.
//!
//! # Contract
//!
//! - Closures run in the order of the `add` calls, one at a time: a closure starts after the
//!   previous item's future completed, on the thread that completed it (or in `add`, on the
//!   caller's thread, when the sequence is idle), after the sequence's lock is released.
//! - A panic in a closure fails that item's future with the panic message; the sequence goes
//!   on.
//! - Items whose futures are already complete are chained in a loop, so a long run of them uses
//!   constant stack.

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::context::Captured;
use crate::future::{catch, Future, Promise};

/// Runs future-returning closures strictly in order: each closure given to
/// [`add`](Self::add) starts once the future of the one added before it has completed, whatever
/// its outcome.
///
/// It needs no runtime; a closure runs with the runtime that was current where it was added.
///
/// # Contract
///
/// - Closures run in the order of the `add` calls, one at a time, on the thread that completed
///   the previous item's future (or in `add`, when the sequence is idle), after the sequence's
///   lock is released. A panic in a closure fails that item; the sequence goes on.
/// - Discarding an item's result never breaks the others. A queued item leaves the line at
///   once: its closure never runs and its future ends discarded (libprocess skips it when its
///   turn comes). A running item's future receives the request, and the next item still waits
///   for it to complete. A completed item ignores it.
/// - Dropping the `Sequence` requests a discard of every item that has not completed, as
///   libprocess does: queued items end discarded without running, the running one's future
///   receives the request.
///
/// ```
/// use procession::{Future, Sequence};
///
/// let sequence = Sequence::new();
/// let results: Vec<_> = (0..3).map(|i| sequence.add(move || Future::ready(i))).collect();
/// assert!(results.iter().enumerate().all(|(i, r)| r.get() == Some(i)));
/// ```
pub struct Sequence {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
}

struct State {
    /// Set while an item runs or the advance loop is starting one; cleared when the line is
    /// empty.
    busy: bool,
    queue: VecDeque<(u64, Box<dyn Item>)>,
    /// Completes when the running item's result does; discarding it discards that result.
    running: Option<Future<()>>,
    next_id: u64,
}

/// A queued closure with the promise of its result, its value type erased.
trait Item: Send {
    /// A future that completes as the result does; discarding it requests the result's discard.
    fn done(&self) -> Future<()>;
    /// Calls the closure unless a discard was requested; false if it was skipped.
    fn start(self: Box<Self>) -> bool;
    /// Ends the item discarded without calling the closure.
    fn skip(self: Box<Self>);
}

struct Job<T: Send + Sync + 'static, F> {
    promise: Promise<T>,
    f: F,
    captured: Captured,
}

impl<T, F> Item for Job<T, F>
where
    T: Clone + Send + Sync + 'static,
    F: FnOnce() -> Future<T> + Send + 'static,
{
    fn done(&self) -> Future<()> {
        self.promise.future().map(|_| ())
    }

    fn start(self: Box<Self>) -> bool {
        let Job {
            promise,
            f,
            captured,
        } = *self;
        if promise.has_discard() {
            promise.discard();
            return false;
        }
        match captured.run(|| catch(f)) {
            Ok(future) => promise.associate(future),
            Err(failure) => promise.fail(failure),
        }
        true
    }

    fn skip(self: Box<Self>) {
        self.promise.discard();
    }
}

impl Sequence {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequence {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    busy: false,
                    queue: VecDeque::new(),
                    running: None,
                    next_id: 0,
                }),
            }),
        }
    }

    /// Queues `f`, to be called once every item added before it has completed; the result
    /// completes as the future `f` returns.
    ///
    /// If the sequence is idle, `f` is called at once, here. `f` runs with the runtime that is
    /// current here and now.
    ///
    /// # Errors
    ///
    /// As `f`'s future; a panic in `f` fails the result with the panic message.
    ///
    /// # Discard
    ///
    /// Discarding the result before `f` is called removes the item: `f` is never called and the
    /// result ends discarded at once. Once `f` was called, the request passes to `f`'s future,
    /// and the next item waits until that future completes. The other items are not affected.
    /// Dropping the result does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::{Future, Promise, Sequence};
    ///
    /// let sequence = Sequence::new();
    /// let busy = Promise::<()>::new();
    /// let running = sequence.add({ let busy = busy.future(); move || busy });
    /// let skipped = sequence.add(|| -> Future<()> { unreachable!("never called") });
    /// let next = sequence.add(|| Future::ready("ran"));
    /// skipped.discard();
    /// assert!(skipped.is_discarded());
    /// busy.set(());
    /// assert!(running.is_ready());
    /// assert_eq!(next.get(), Some("ran"));
    /// ```
    pub fn add<T, F>(&self, f: F) -> Future<T>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Future<T> + Send + 'static,
    {
        let promise = Promise::new();
        let result = promise.future();
        let captured = Captured::current();
        let idle = {
            let mut state = self.shared.state.lock();
            let id = state.next_id;
            state.next_id += 1;
            let shared = Arc::downgrade(&self.shared);
            // A fresh promise has no discard request yet, so the hook cannot run under our lock.
            promise.on_discard(move || leave(&shared, id));
            let job = Job {
                promise,
                f,
                captured,
            };
            state.queue.push_back((id, Box::new(job)));
            !mem::replace(&mut state.busy, true)
        };
        if idle {
            advance(&self.shared);
        }
        result
    }
}

/// The discard hook of a queued item: leave the line and end discarded (a no-op once the item
/// was taken out of the line to start).
fn leave(shared: &Weak<Shared>, id: u64) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let removed = {
        let mut state = shared.state.lock();
        let index = state.queue.iter().position(|(key, _)| *key == id);
        index.and_then(|index| state.queue.remove(index))
    };
    if let Some((_, item)) = removed {
        item.skip();
    }
}

/// Starts the next item once the previous one completed, and goes on while items complete at
/// once; returns when an item is pending (its completion calls this again) or the line is
/// empty.
///
/// Whichever of two parties comes second carries on: this loop, after registering the
/// completion callback, or the callback itself. So an item that completes before or during the
/// registration continues the loop here instead of nesting a call.
fn advance(shared: &Arc<Shared>) {
    loop {
        let (item, done) = {
            let mut state = shared.state.lock();
            match state.queue.pop_front() {
                Some((_, item)) => {
                    // Running from here on, under the lock that a drop of the sequence takes:
                    // a drop from now discards it, so it is skipped if it has not started.
                    let done = item.done();
                    state.running = Some(done.clone());
                    (item, done)
                }
                None => {
                    state.running = None;
                    state.busy = false;
                    return;
                }
            }
        };
        if !item.start() {
            continue;
        }
        let arrived = Arc::new(Mutex::new(false));
        let other = arrived.clone();
        let next = shared.clone();
        done.when_complete(move |_| {
            if mem::replace(&mut *other.lock(), true) {
                advance(&next);
            }
        });
        if mem::replace(&mut *arrived.lock(), true) {
            continue;
        }
        return;
    }
}

impl Drop for Sequence {
    fn drop(&mut self) {
        let (queued, running) = {
            let mut state = self.shared.state.lock();
            (mem::take(&mut state.queue), state.running.clone())
        };
        if let Some(running) = running {
            running.discard();
        }
        for (_, item) in queued {
            item.skip();
        }
    }
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence::new()
    }
}

impl fmt::Debug for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Sequence")
            .field("running", &state.running.is_some())
            .field("queued", &state.queue.len())
            .finish()
    }
}
