//! Engine: the state one future and its promise share.
//!
//! # Protocol
//!
//! One state word orders everything. The outcome and the first callback live in slots beside it,
//! each written by one party at a time as the word's bits say; everything else (later and
//! removable callbacks, discard callbacks, the upstream a discard request is passed to) sits
//! behind a mutex.
//!
//! - `CLAIMED`: a completer won the right to write the outcome. Set once with `fetch_or`; a
//!   completer that finds it set gives up, so the cell completes once.
//! - `COMPLETE`: the outcome is written (before the bit, with `Release`); whoever sees the bit
//!   (with `Acquire`) may read it. It is never written again.
//! - `WRITING` / `FIRST`: the first callback's slot. A registrant that finds none of `COMPLETE`,
//!   `WRITING`, `FIRST`, `SLOW` sets `WRITING` by compare-and-swap and so owns the slot; it stores
//!   its callback, then in one step clears `WRITING` and, unless `COMPLETE` landed meanwhile,
//!   sets `FIRST`. A completer whose `COMPLETE` lands on `FIRST` runs that callback; one that
//!   lands on `WRITING` leaves it, and the registrant, seeing `COMPLETE` as it clears `WRITING`,
//!   runs its callback itself. Both are read-modify-writes of one word, so exactly one runs it.
//! - `SLOW`: the mutex holds something completion must see. A registrant of anything but a
//!   first callback or a first upstream link locks the mutex, sets `SLOW`, and reads what was
//!   there: if `COMPLETE` was set it acts at once (runs its callback, drops its discard callback),
//!   else it leaves its item under the lock. The completer locks the mutex only if `SLOW` was set when its `COMPLETE`
//!   landed; the lock then waits out any registrant still inside, and the completer takes all.
//! - `DISCARD`: a discard was requested while pending; set under the mutex, read without it.
//!
//! So the common future, one callback and one completion, costs three read-modify-writes of one
//! word and no lock. A registrant that arrives after completion runs its callback at once in the
//! caller, even if earlier callbacks still wait on the trampoline: "at once" wins over
//! registration order, so a blocking wait inside a callback cannot deadlock. A first callback
//! whose `WRITING` a completion lands on counts as arriving after it, and runs the same way. No callback ever runs
//! while the lock is held, so a callback may touch the same future or promise again.
//!
//! A discard request sets `DISCARD` unless the cell completed or one was made, takes the upstream
//! link and the discard callbacks, runs the callbacks, then does the same for the upstream cell,
//! in a loop rather than by recursion, so discarding the end of a million-step chain uses
//! constant stack. Completion drops the discard wiring unrun, except a first upstream link: that
//! one costs no `SLOW` (a chain sets one on every step) and stays until the cell drops. It is a
//! `Weak`, so it keeps the upstream cell's allocation (its size, not what its value owns), never
//! the upstream's value.
//!
//! # Trampoline
//!
//! Completing a future from inside a callback (the usual case in a `then` chain) does not run the
//! next callbacks on top of the current stack: the completed cell (one `Arc`, no allocation) is
//! queued on a per-thread trampoline, and the outermost completion drains the queue before it
//! returns, taking each cell's callbacks (the first from its slot, the rest under its lock) and
//! running them. A chain of a million `then`s therefore completes in constant stack.
//!
//! # Panics in callbacks
//!
//! A callback that panics is caught and logged; the other callbacks run, and the panic never
//! reaches whoever completed the future (a worker, the timer thread, a promise dropped while
//! unwinding), which must not be taken down by an observer's bug. A panic outside every callback,
//! in a value's drop as its last handle goes, does reach the completer, but only after the drain
//! has run every other completion it had queued, and with the trampoline closed.
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
//! observer, one upstream) costs its `Arc`, nothing more: a callback of up to three words is
//! kept in place too (see [`Callback`]), and only a larger one is boxed. The mutex's
//! vectors stay empty, and unallocated, unless a second callback or a discard callback comes.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use super::callback::Callback;
use crate::error::Error;
use crate::sync::{AtomicU64, Mutex, Ordering, UnsafeCell};

/// What a completed future holds.
pub(crate) type Outcome<T> = Result<T, Error>;

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

// The state word's bits; see the protocol above.
const CLAIMED: u64 = 1;
const COMPLETE: u64 = 1 << 1;
const WRITING: u64 = 1 << 2;
const FIRST: u64 = 1 << 3;
const SLOW: u64 = 1 << 4;
const DISCARD: u64 = 1 << 5;

pub(crate) struct Cell<T> {
    state: AtomicU64,
    outcome: UnsafeCell<Option<Outcome<T>>>,
    first: UnsafeCell<Option<Callback<T>>>,
    slow: Mutex<Slow<T>>,
}

// SAFETY: the slots are shared only as the protocol above allows: `outcome` is written by the one
// completer holding `CLAIMED`, before `COMPLETE`, and read only after `COMPLETE` is seen, by
// reference from any thread (hence `T: Sync`); `first` is written by the one registrant holding
// `WRITING` and taken by exactly one party, the completer or that registrant. Callbacks are
// `Send`, and the outcome moves out only through an owned cell (hence `T: Send`).
unsafe impl<T> Sync for Cell<T> where Outcome<T>: Send + Sync {}

/// What completion must see besides the first callback, under the mutex.
struct Slow<T> {
    /// Callbacks after the first, or removable ones, each with a key (0: cannot be removed).
    rest: Vec<Keyed<T>>,
    next_key: u64,
    upstream: Option<Weak<dyn Discard>>,
    on_discard: Vec<DiscardCallback>,
}

impl<T: Send + Sync + 'static> Cell<T> {
    pub(crate) fn pending() -> Self {
        Cell::with_state(0, None)
    }

    pub(crate) fn completed(outcome: Outcome<T>) -> Self {
        Cell::with_state(CLAIMED | COMPLETE, Some(outcome))
    }

    fn with_state(state: u64, outcome: Option<Outcome<T>>) -> Self {
        Cell {
            state: AtomicU64::new(state),
            outcome: UnsafeCell::new(outcome),
            first: UnsafeCell::new(None),
            slow: Mutex::new(Slow {
                rest: Vec::new(),
                next_key: 1,
                upstream: None,
                on_discard: Vec::new(),
            }),
        }
    }

    pub(crate) fn outcome(&self) -> Option<&Outcome<T>> {
        if self.state.load(Ordering::Acquire) & COMPLETE == 0 {
            return None;
        }
        // SAFETY: `COMPLETE` is set and was read with `Acquire`, so the outcome's write is
        // visible, and nothing writes it again while `self` lives.
        self.outcome.with(|outcome| unsafe { (*outcome).as_ref() })
    }

    pub(crate) fn into_outcome(self) -> Option<Outcome<T>> {
        // SAFETY: the cell is owned, so nothing else reaches the slot.
        self.outcome
            .with_mut(|outcome| unsafe { (*outcome).take() })
    }

    pub(crate) fn has_discard(&self) -> bool {
        self.state.load(Ordering::Acquire) & DISCARD != 0
    }

    /// Whether a callback waits on the outcome (one that was registered and withdrawn, as an
    /// abandoned `.await` leaves, does not count).
    pub(crate) fn has_callbacks(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        state & (WRITING | FIRST) != 0 || (state & SLOW != 0 && !self.slow.lock().rest.is_empty())
    }

    /// Writes the outcome and runs the callbacks; returns false if the cell was already complete.
    ///
    /// Inlined, so the caller builds the outcome in the slot: passed through memory to an
    /// out-of-line copy, it cost a store-forwarding stall per completion.
    #[inline]
    pub(crate) fn complete(self: &Arc<Self>, outcome: Outcome<T>) -> bool {
        // Whoever sees the outcome sees what the handler completing it sent before.
        crate::context::flush_held();
        if self.state.fetch_or(CLAIMED, Ordering::Acquire) & CLAIMED != 0 {
            return false;
        }
        super::outcomes::record(&outcome);
        // SAFETY: `CLAIMED` is ours, so no one else writes the slot, and no one reads it before
        // `COMPLETE`, set in `publish`.
        self.outcome
            .with_mut(|slot| unsafe { *slot = Some(outcome) });
        self.publish();
        true
    }

    /// Sets `COMPLETE` over the written outcome and runs the callbacks it landed on, or queues
    /// them on the trampoline.
    fn publish(self: &Arc<Self>) {
        let state = self.state.fetch_or(COMPLETE, Ordering::AcqRel);
        if state & (FIRST | SLOW) == 0 {
            return;
        }
        if draining() {
            if state & SLOW != 0 {
                drop(self.take_discard_wiring());
            }
            TRAMPOLINE.with(|t| {
                let mut t = t.borrow_mut();
                t.as_mut().expect("checked above").push_back(self.clone());
            });
            return;
        }
        // The discard wiring is dropped before the trampoline starts, so that what its drop
        // completes (a promise a discard callback held) runs at once, as the outermost.
        let rest = self.take_rest(state);
        drain_from(|| self.run_callbacks(state, rest));
    }

    /// Runs the callbacks of a completion whose `COMPLETE` landed on `state`: the first, then
    /// `rest` (from [`take_rest`](Self::take_rest)). `FIRST` never changes once `COMPLETE` is
    /// set, so a batch on the trampoline may read the word again. Each callback is guarded
    /// (see [Panics in callbacks](self#panics-in-callbacks)).
    fn run_callbacks(&self, state: u64, rest: Vec<Keyed<T>>) {
        let outcome = self.outcome().expect("completed cell has an outcome");
        if state & FIRST != 0 {
            // SAFETY: `FIRST` was set when `COMPLETE` landed: the registrant finished writing the
            // slot and handed it to the completion, which takes it once (here).
            let first = self.first.with_mut(|slot| unsafe { (*slot).take() });
            if let Some(first) = first {
                guarded(|| first.call(outcome));
            }
        }
        for (_, callback) in rest {
            guarded(|| callback.call(outcome));
        }
    }

    /// The callbacks after the first, taken (with the discard wiring, dropped) if `SLOW` was set
    /// when `COMPLETE` landed on `state`.
    fn take_rest(&self, state: u64) -> Vec<Keyed<T>> {
        if state & SLOW == 0 {
            return Vec::new();
        }
        let (rest, wiring) = {
            let mut slow = self.slow.lock();
            (mem::take(&mut slow.rest), take_wiring(&mut slow))
        };
        drop(wiring);
        rest
    }

    /// Takes the discard callbacks and the upstream link, to be dropped after the lock.
    fn take_discard_wiring(&self) -> (Option<Weak<dyn Discard>>, Vec<DiscardCallback>) {
        take_wiring(&mut self.slow.lock())
    }

    /// Runs `callback` on completion, or at once if the cell is already complete.
    pub(crate) fn on_complete(&self, callback: Callback<T>) {
        let state = self.state.load(Ordering::Relaxed);
        if state & (COMPLETE | WRITING | FIRST | SLOW) == 0
            && self
                .state
                .compare_exchange(state, state | WRITING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: `WRITING` is ours: no one else touches the slot until it is cleared.
            self.first
                .with_mut(|slot| unsafe { *slot = Some(callback) });
            let before = self
                .state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                    let cleared = s & !WRITING;
                    Some(if s & COMPLETE != 0 {
                        cleared
                    } else {
                        cleared | FIRST
                    })
                })
                .expect("the update always applies");
            if before & COMPLETE == 0 {
                return;
            }
            // SAFETY: the completion landed on `WRITING` and left the slot to us; `FIRST` was
            // never set, so no one else will take it.
            let callback = self.first.with_mut(|slot| unsafe { (*slot).take() });
            let callback = callback.expect("stored above");
            callback.call(self.outcome().expect("completed cell has an outcome"));
            return;
        }
        let mut slow = self.slow.lock();
        if self.state.fetch_or(SLOW, Ordering::AcqRel) & COMPLETE == 0 {
            slow.rest.push((0, callback));
            return;
        }
        drop(slow);
        callback.call(self.outcome().expect("completed cell has an outcome"));
    }

    /// Like [`on_complete`](Self::on_complete), but the registration can be withdrawn with
    /// [`remove_callback`](Self::remove_callback) while pending; `None` if it ran at once.
    pub(crate) fn on_complete_removable(&self, callback: Callback<T>) -> Option<u64> {
        let mut slow = self.slow.lock();
        if self.state.fetch_or(SLOW, Ordering::AcqRel) & COMPLETE == 0 {
            let key = slow.next_key;
            slow.next_key += 1;
            slow.rest.push((key, callback));
            return Some(key);
        }
        drop(slow);
        callback.call(self.outcome().expect("completed cell has an outcome"));
        None
    }

    /// Withdraws a pending registration (a no-op once the callbacks were taken to run).
    pub(crate) fn remove_callback(&self, key: u64) {
        let removed = {
            let mut slow = self.slow.lock();
            let index = slow.rest.iter().position(|(k, _)| *k == key);
            index.map(|index| slow.rest.remove(index))
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
            let mut slow = self.slow.lock();
            let marked = self
                .state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                    (s & (COMPLETE | DISCARD) == 0).then_some(s | DISCARD)
                });
            if marked.is_err() {
                return None;
            }
            take_wiring(&mut slow)
        };
        for callback in callbacks {
            guarded(callback);
        }
        upstream.and_then(|upstream| upstream.upgrade())
    }

    /// Runs `callback` when a discard is requested, or at once if one already was (and the cell is
    /// still pending). Dropped unrun if the cell completes first.
    pub(crate) fn on_discard(&self, callback: DiscardCallback) {
        let mut slow = self.slow.lock();
        let state = self.state.fetch_or(SLOW, Ordering::AcqRel);
        if state & (COMPLETE | DISCARD) == 0 {
            slow.on_discard.push(callback);
            return;
        }
        drop(slow);
        if state & COMPLETE == 0 {
            callback();
        }
    }

    /// Passes discard requests on this cell to `upstream` (at once if one was already made),
    /// without keeping `upstream` alive.
    pub(crate) fn forward_discard_to(&self, upstream: Weak<dyn Discard>) {
        let mut slow = self.slow.lock();
        // The first link needs no `SLOW`: completion may leave it (see the protocol), and a
        // discard request reads it under this lock, which orders it against `DISCARD`.
        let state = if slow.upstream.is_none() {
            let state = self.state.load(Ordering::Acquire);
            if state & (COMPLETE | DISCARD) == 0 {
                slow.upstream = Some(upstream);
                return;
            }
            state
        } else {
            let state = self.state.fetch_or(SLOW, Ordering::AcqRel);
            if state & (COMPLETE | DISCARD) == 0 {
                slow.on_discard.push(Box::new(move || {
                    if let Some(upstream) = upstream.upgrade() {
                        upstream.request_discard();
                    }
                }));
                return;
            }
            state
        };
        drop(slow);
        if state & COMPLETE == 0 {
            if let Some(upstream) = upstream.upgrade() {
                upstream.request_discard();
            }
        }
    }
}

/// The discard callbacks and upstream link, taken to be dropped (or run) outside the lock.
fn take_wiring<T>(slow: &mut Slow<T>) -> (Option<Weak<dyn Discard>>, Vec<DiscardCallback>) {
    (slow.upstream.take(), mem::take(&mut slow.on_discard))
}

impl<T: Send + Sync + 'static> Discard for Cell<T> {
    fn request_discard(&self) {
        Cell::request_discard(self);
    }

    fn discard_step(&self) -> Option<Arc<dyn Discard>> {
        Cell::discard_step(self)
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
        let state = self.state.load(Ordering::Acquire);
        self.run_callbacks(state, self.take_rest(state));
    }
}

/// Completed cells whose callbacks wait their turn on this thread.
type Trampoline = RefCell<Option<VecDeque<Arc<dyn Batch>>>>;

#[cfg(not(procession_loom))]
thread_local! {
    /// `Some` while an outermost completion is draining on this thread.
    static TRAMPOLINE: Trampoline = const { RefCell::new(None) };
}

// loom runs a model's threads on one OS thread: each needs loom's thread-local of its own.
#[cfg(procession_loom)]
loom::thread_local! {
    static TRAMPOLINE: Trampoline = RefCell::new(None);
}

/// Whether an outermost completion is draining on this thread (never, while the thread's locals
/// are being destroyed: a promise dropped then runs its callbacks at once).
fn draining() -> bool {
    TRAMPOLINE
        .try_with(|t| t.borrow().is_some())
        .unwrap_or(false)
}

/// Runs `job` as the outermost completion on this thread, then every batch it (transitively)
/// queued, in order. Callbacks are guarded one by one; a drop outside them (a value's, as the
/// last handle goes) may still panic: the drain then goes on with the other batches, closes the
/// trampoline, and passes the first such panic on to the completer.
fn drain_from(job: impl FnOnce()) {
    if TRAMPOLINE
        .try_with(|t| *t.borrow_mut() = Some(VecDeque::new()))
        .is_err()
    {
        return job();
    }
    // Closed on the way out whatever happens, or every later completion here would queue
    // forever.
    let _close = CloseTrampoline;
    let mut panicked = panic::catch_unwind(AssertUnwindSafe(job)).err();
    loop {
        let next = TRAMPOLINE.with(|t| t.borrow_mut().as_mut().and_then(VecDeque::pop_front));
        let Some(batch) = next else { break };
        // The batch is moved in, so that its drop (maybe the cell's last) is caught too.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || batch.run_batch())) {
            panicked.get_or_insert(payload);
        }
    }
    if let Some(payload) = panicked {
        panic::resume_unwind(payload);
    }
}

/// Closes this thread's trampoline when dropped (see [`drain_from`]).
struct CloseTrampoline;

impl Drop for CloseTrampoline {
    fn drop(&mut self) {
        let _ = TRAMPOLINE.try_with(|t| t.borrow_mut().take());
    }
}
