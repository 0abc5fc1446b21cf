//! The dispatches of a deterministic runtime still waiting for their answer, for a stuck
//! simulation's report ([`Driver::pending_dispatches`]).
//!
//! # Protocol
//!
//! [`track`] runs in every [`dispatch_method`](crate::dispatch_method) once the event is queued
//! (or refused). On a threaded runtime it returns after one branch. On a deterministic one it
//! records the dispatch under the runtime's next sequence number, in its [`Dispatches`], and
//! registers a completion callback on the dispatch's future that removes the record however the
//! future ends: ready, failed, discarded or abandoned. The callback holds the table weakly, so a
//! record keeps nothing alive, and a future that outlives its runtime removes nothing.
//!
//! # Flattening
//!
//! A dispatched closure that returns a future gives a `Future<Future<R>>`, ready as soon as the
//! closure ran; the caller waits on the inner future through [`Future::flatten`], which the
//! `#[process]` handles call right after `dispatch_method`. To report such a dispatch until its
//! answer, `track` leaves a note on its thread naming the record and the dispatch's future, and
//! a `flatten` of exactly that future, before the thread makes another dispatch to a
//! deterministic runtime, hands the record over: from then on the flattened future's completion
//! removes it, and the dispatch's own future's does not. A future flattened later than that, or
//! on another thread, or never, is reported until its closure has run.
//!
//! [`Driver::pending_dispatches`]: super::Driver::pending_dispatches

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use crate::future::Future;
use crate::handle::Handle;
use crate::pid::Upid;

/// A dispatch to a process of a deterministic runtime whose answer has not come yet, as
/// [`Driver::pending_dispatches`](super::Driver::pending_dispatches) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingDispatch {
    /// The process whose handler made the dispatch; `None` when it was made from outside any
    /// process (a test's thread, a timer's action such as a [`delay`](crate::delay)'s, a
    /// callback run outside a handler).
    pub caller: Option<Upid>,
    /// The process the dispatch was sent to.
    pub target: Upid,
    /// The method name given to [`dispatch_method`](crate::dispatch_method), as the `#[process]`
    /// handles do; `None` for a plain [`dispatch`](crate::dispatch()).
    pub method: Option<&'static str>,
    /// The runtime's clock when the dispatch was made.
    pub since: Instant,
}

/// One deterministic runtime's pending dispatches.
#[derive(Default)]
pub(crate) struct Dispatches {
    table: Arc<Mutex<Table>>,
}

#[derive(Default)]
struct Table {
    next_seq: u64,
    /// By sequence number: call order, so the report is the same on every run of a seed.
    pending: BTreeMap<u64, Record>,
}

struct Record {
    dispatch: PendingDispatch,
    /// Handed over to a flattened future, whose completion removes it.
    followed: bool,
}

impl Dispatches {
    /// The pending dispatches in call order.
    pub(crate) fn list(&self) -> Vec<PendingDispatch> {
        let table = self.table.lock();
        let records = table.pending.values();
        records.map(|record| record.dispatch.clone()).collect()
    }

    fn insert(&self, dispatch: PendingDispatch) -> u64 {
        let mut table = self.table.lock();
        let seq = table.next_seq;
        table.next_seq += 1;
        let record = Record {
            dispatch,
            followed: false,
        };
        table.pending.insert(seq, record);
        seq
    }
}

/// What a `flatten` of the future at `future` (its cell's address) would take over. An address
/// is reused only once that future is freed, and by then its record is gone (its promise went
/// with it, abandoning it), so a stale match finds nothing to take.
struct Note {
    table: Weak<Mutex<Table>>,
    seq: u64,
    future: usize,
}

thread_local! {
    /// The note of this thread's latest tracked dispatch.
    static LATEST: RefCell<Option<Note>> = const { RefCell::new(None) };
}

/// On a deterministic runtime, records a dispatch to `target`, a process of `handle`'s runtime,
/// until `future`, its answer, completes; see the [protocol](self#protocol).
pub(crate) fn track<R: Send + Sync + 'static>(
    handle: &Handle,
    target: impl FnOnce() -> Upid,
    method: Option<&'static str>,
    future: &Future<R>,
) {
    let Some(scheduler) = handle.scheduler().as_deterministic() else {
        return;
    };
    let dispatches = scheduler.dispatches();
    let seq = dispatches.insert(PendingDispatch {
        caller: crate::context::current_upid(),
        target: target(),
        method,
        since: handle.timers().now(),
    });
    let table = Arc::downgrade(&dispatches.table);
    let note = Note {
        table: table.clone(),
        seq,
        future: future.address(),
    };
    LATEST.with(|latest| *latest.borrow_mut() = Some(note));
    future.when_complete(move |_| remove(&table, seq, false));
}

/// Hands the record of the dispatch answered by `outer` over to `flat`, when `outer` is the
/// future of this thread's latest tracked dispatch; see [Flattening](self#flattening).
pub(crate) fn follow<T, U>(outer: &Future<T>, flat: &Future<U>)
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
{
    let note = LATEST.with(|latest| {
        let mut latest = latest.borrow_mut();
        let ours = latest
            .as_ref()
            .is_some_and(|note| note.future == outer.address());
        if ours {
            latest.take()
        } else {
            None
        }
    });
    let Some(Note { table, seq, .. }) = note else {
        return;
    };
    let Some(strong) = table.upgrade() else {
        return;
    };
    match strong.lock().pending.get_mut(&seq) {
        Some(record) => record.followed = true,
        // The dispatch's future completed first (its closure ran, or it was abandoned).
        None => return,
    }
    drop(strong);
    flat.when_complete(move |_| remove(&table, seq, true));
}

/// Removes record `seq` when the future that holds it completes: the dispatch's own future
/// (`by_flattened` false) until a `flatten` takes it over, the flattened future after.
fn remove(table: &Weak<Mutex<Table>>, seq: u64, by_flattened: bool) {
    let Some(table) = table.upgrade() else {
        return;
    };
    let mut table = table.lock();
    let holder = table.pending.get(&seq).map(|record| record.followed);
    if holder == Some(by_flattened) {
        table.pending.remove(&seq);
    }
}
