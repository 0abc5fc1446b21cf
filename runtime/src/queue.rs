//! `Queue<T>`: an unbounded FIFO whose `get` answers with a future.
//!
//! A queue hands values from producers to consumers that must not block, as libprocess's
//! `process::Queue` does. [`Queue::put`] never waits. [`Queue::get`] answers with a [`Future`]:
//! ready at once when an item is waiting, otherwise completed by a later `put`, with pending gets
//! served in the order they were made. A process chains on `get` with `then` (or `defer`s back
//! into itself) instead of blocking; a test or `main` can `block_on` it. `Queue` is a cheap
//! [`Clone`] handle, so processes, callbacks and threads can share one. It needs no runtime.
//!
//! ```
//! use procession::Queue;
//!
//! let queue = Queue::new();
//! let first = queue.get();
//! let second = queue.get();
//! queue.put("a");
//! queue.put("b");
//! queue.put("c");
//! assert_eq!((first.get(), second.get()), (Some("a"), Some("b")));
//! assert_eq!(queue.len(), 1);
//! assert_eq!(queue.get().get(), Some("c"));
//! ```
//!
//! # Contract
//!
//! - Every item put is handed out exactly once, in the order the puts took the queue's lock: to
//!   the oldest pending get, or else kept until the next get. Items never wait while a get is
//!   pending, and gets never wait while an item is queued.
//! - A pending get whose future is discarded leaves the line at once and ends discarded; it
//!   never receives an item, so a discarded get cannot swallow one. A discard requested at the
//!   instant a put hands that get its item comes too late: the future ends ready with the item.
//! - A put completes the get's future on the putting thread, after the queue's lock is released,
//!   so its callbacks may use the queue again.
//! - When the last handle is dropped, pending gets end abandoned and queued items are dropped.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::future::{Future, Promise};
use crate::line::Line;

/// An unbounded FIFO queue whose [`get`](Self::get) returns a future, completed by a later
/// [`put`](Self::put) if no item is waiting.
///
/// Clones are handles to the same queue. It needs no runtime.
///
/// # Contract
///
/// Every item is handed out exactly once, in put order: to the oldest pending get, or else kept
/// for the next get. A pending get whose future is discarded leaves the line at once and ends
/// discarded, so it never swallows an item; a discard that arrives as the put hands it its item
/// comes too late, and the future ends ready. A put completes the get's future on the putting
/// thread, after the queue's lock is released. When the last handle is dropped, pending gets end
/// abandoned and queued items are dropped.
///
/// ```
/// use procession::Queue;
///
/// let queue = Queue::new();
/// let consumer = queue.clone();
/// let next = consumer.get().map(|n: &u32| n * 10);
/// queue.put(4);
/// assert_eq!(next.get(), Some(40));
/// ```
pub struct Queue<T: Send + Sync + 'static> {
    shared: Arc<Shared<T>>,
}

struct Shared<T: Send + Sync + 'static> {
    state: Mutex<State<T>>,
}

/// Invariant: `items` and `getters` are never both non-empty.
struct State<T: Send + Sync + 'static> {
    items: VecDeque<T>,
    getters: Line<T>,
}

impl<T: Send + Sync + 'static> Queue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Queue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    items: VecDeque::new(),
                    getters: Line::new(),
                }),
            }),
        }
    }

    /// Adds `item`: the oldest pending get receives it, or it waits in the queue for the next.
    ///
    /// The get's future completes here, on this thread, and its callbacks run before `put`
    /// returns, unless `put` is called from a future's callback: then they run when that
    /// callback returns (completions inside callbacks queue, so a chain uses constant stack).
    /// Gets whose discard was requested are passed over (and end discarded).
    pub fn put(&self, item: T) {
        let mut skipped = Vec::new();
        let receiver = {
            let mut state = self.shared.state.lock();
            let getter = loop {
                match state.getters.pop() {
                    Some(getter) if getter.has_discard() => skipped.push(getter),
                    other => break other,
                }
            };
            match getter {
                Some(getter) => Some((getter, item)),
                None => {
                    state.items.push_back(item);
                    None
                }
            }
        };
        for promise in skipped {
            promise.discard();
        }
        if let Some((promise, item)) = receiver {
            promise.set(item);
        }
    }

    /// A future of the next item: ready at once if one is queued, otherwise completed by a later
    /// [`put`](Self::put), after every get made before this one has been served.
    ///
    /// # Errors
    ///
    /// Ends abandoned if every handle to the queue is dropped while the get is pending.
    ///
    /// # Discard
    ///
    /// Discarding a pending get removes it from the line and ends it discarded at once; the item
    /// it would have received goes to the next get or stays queued. A discard that arrives after
    /// the get was served does nothing (the future holds the item). Dropping the future of a
    /// pending get does not withdraw it: the item it receives is dropped with the future.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Queue;
    ///
    /// let queue = Queue::new();
    /// let abandoned = queue.get();
    /// let waiting = queue.get();
    /// abandoned.discard();
    /// queue.put(1);
    /// assert!(abandoned.is_discarded());
    /// assert_eq!(waiting.get(), Some(1));
    /// ```
    pub fn get(&self) -> Future<T> {
        let mut state = self.shared.state.lock();
        if let Some(item) = state.items.pop_front() {
            return Future::ready(item);
        }
        let promise = Promise::new();
        let future = promise.future();
        let key = state.getters.push(promise);
        let shared = Arc::downgrade(&self.shared);
        // A fresh future has no discard request yet, so the hook cannot run under our lock.
        future.when_discard(move || leave(&shared, key));
        future
    }

    /// How many items wait in the queue (not how many gets wait).
    pub fn len(&self) -> usize {
        self.shared.state.lock().items.len()
    }

    /// Whether no item waits in the queue.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The discard hook of a pending get: leave the line and end discarded (a no-op if a put
/// already took the get out of the line).
fn leave<T: Send + Sync + 'static>(shared: &Weak<Shared<T>>, key: u64) {
    let withdrawn = shared
        .upgrade()
        .and_then(|s| s.state.lock().getters.withdraw(key));
    if let Some(getter) = withdrawn {
        getter.discard();
    }
}

impl<T: Send + Sync + 'static> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Queue")
            .field("items", &state.items.len())
            .field("pending_gets", &state.getters.len())
            .finish()
    }
}
