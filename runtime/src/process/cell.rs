//! Engine: one process's slot — its mailbox, state flags, lifecycle and the type-erased face the
//! rest of the runtime uses to reach it.
//!
//! # Protocol
//!
//! Two mutexes, never held together except `slot` then `mailbox` (in that order):
//!
//! - `mailbox` is touched by every sender and by the runner. It guards the event queue, the flags
//!   below, and the lazily allocated [`Extras`] (linkers, waiters, exit reason).
//!   - `scheduled`: set by the push that finds it clear (that pusher hands the cell to the
//!     scheduler), cleared by the runner when it finds the queue empty at the end of a visit.
//!     While set, the cell is in exactly one run queue or running on exactly one worker, so the
//!     process never runs on two threads at once.
//!   - `inject`: set by `terminate_now` (under the mailbox lock, unless `terminated`); the runner
//!     reads it without the lock before every event and, once it sees it, terminates without
//!     running the queued events. The runner clears it, under the lock, as the process ends.
//!   - `terminated`: set once by the runner when the process ends; excludes every later push
//!     (the event is dropped at once, so a dispatch ends abandoned) and every later link (the
//!     linker is told at once).
//! - `slot` is touched only by the runner (the worker holding `scheduled`): the process value, its
//!   message handlers and the batch being run.
//!
//! # A visit
//!
//! 1. Lock `slot`; lock `mailbox`; move up to the budget of events into the batch (a swap of two
//!    queues when the whole queue fits, so nothing allocates); unlock `mailbox`.
//! 2. Run the batch, each event under `catch_unwind`, counting each as finished for settle;
//!    stop early for a terminate event, a panic, or `inject`.
//! 3. Lock `mailbox`: if the queue is empty clear `scheduled`, else hand the cell back to the
//!    scheduler (to the back, for fairness).
//!
//! # Termination (on the runner)
//!
//! See `lifecycle`: children first, then `finalize`, then (under the lock) the exit reason is set
//! and the undelivered events taken; linkers and monitors are told; then `ended` is set and the
//! waiters complete, so a `wait` never completes before the `exited` notices were queued.

use std::collections::VecDeque;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Context;
use super::Process;
use crate::context;
use crate::event::{Envelope, Event, ExitReason};
use crate::filter::EventView;
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::message::Handlers;
use crate::pid::Upid;
use crate::scheduler::Runnable;
use crate::transport::InboundRun;

mod any;
mod bound;
mod deliver;
mod lifecycle;

pub(crate) use self::any::AnyCell;
use self::bound::Bound;
pub(crate) use self::bound::{AtBound, Pushed};
pub(crate) use self::lifecycle::end_newest_first;
use self::lifecycle::Ending;

pub(crate) struct ProcessCell<P: Process> {
    id: Arc<str>,
    /// Spawn order within the runtime; shutdown ends top-level processes newest first.
    seq: u64,
    handle: Handle,
    mailbox: Mutex<Mailbox<P>>,
    /// `terminate_now` was requested; see the protocol.
    inject: AtomicBool,
    slot: Mutex<Slot<P>>,
    /// The worker the process runs on, if spawned pinned (`SpawnOptions::pin`), already taken
    /// modulo the worker count. Two bytes, so that it packs with `inject`: an idle process's cell
    /// then fits the allocator's next smaller size class (the W4-mem benchmark).
    pin: Option<u16>,
}

struct Mailbox<P> {
    queue: VecDeque<Event<P>>,
    scheduled: bool,
    terminated: bool,
    /// The children of an ending process have ended: the next visit finishes the ending.
    resume_pending: bool,
    extras: Option<Box<Extras>>,
    /// The bound, for processes spawned with one (see `bound`).
    bound: Option<Box<Bound<P>>>,
}

/// What an ending process leaves undelivered: its events and the "queued" promises of parked
/// senders. Dropped by the caller once the mailbox lock is released (dropping either runs
/// callbacks).
type Undelivered<P> = (VecDeque<Event<P>>, Vec<Promise<()>>);

impl<P> Mailbox<P> {
    /// Every undelivered event, queued or parked at the bound (for dropping at the end).
    fn take_all(&mut self) -> Undelivered<P> {
        let mut events = mem::take(&mut self.queue);
        let mut promises = Vec::new();
        if let Some(bound) = self.bound.as_mut() {
            for (event, promise) in bound.drain() {
                events.push_back(event);
                promises.extend(promise);
            }
        }
        (events, promises)
    }
}

/// What most processes never need, allocated on first use.
#[derive(Default)]
struct Extras {
    linkers: Vec<Upid>,
    waiters: Vec<Promise<()>>,
    /// Monitors by key (keys count up from 1 per process).
    monitors: Vec<(u64, Promise<ExitReason>)>,
    next_monitor: u64,
    /// Children in spawn order (pruned of ended ones as it grows).
    children: Vec<Arc<dyn AnyCell>>,
    /// Spawned as a child: ended by its parent, not by the runtime's shutdown.
    has_parent: bool,
    /// Set as the ending begins to tell linkers and monitors: later ones are told at once.
    exit: Option<ExitReason>,
    /// Set once every linker and monitor was told: `wait` completes from here on.
    ended: bool,
}

struct Slot<P> {
    process: Option<P>,
    /// The ending waiting for the children to end first (see `lifecycle`).
    stopping: Option<Box<Ending>>,
    /// `initialize` ran (the first visit sets it).
    initialized: bool,
    handlers: Handlers<P>,
    batch: VecDeque<Event<P>>,
}

impl<P: Process> ProcessCell<P> {
    /// Gives a cell not yet published another id.
    pub(crate) fn rename(&mut self, id: Arc<str>) {
        self.id = id;
    }

    pub(crate) fn new(id: Arc<str>, handle: Handle, process: P, pin: Option<usize>) -> Self {
        let pin = pin.map(|worker| {
            let worker = worker % handle.scheduler().workers();
            u16::try_from(worker).expect("the builder allows at most u16::MAX workers")
        });
        ProcessCell {
            seq: handle.table().next_seq(),
            pin,
            id,
            handle,
            inject: AtomicBool::new(false),
            mailbox: Mutex::new(Mailbox {
                queue: VecDeque::new(),
                scheduled: false,
                terminated: false,
                resume_pending: false,
                extras: None,
                bound: None,
            }),
            slot: Mutex::new(Slot {
                process: Some(process),
                stopping: None,
                initialized: false,
                handlers: Handlers::default(),
                batch: VecDeque::new(),
            }),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn upid(&self) -> Upid {
        self.handle.upid(self.id.clone())
    }

    /// Whether the filter point lets an event through; `view` builds what it shows, and is only
    /// called when a filter is installed.
    fn filter_allows(&self, view: impl FnOnce(&Upid) -> bool) -> bool {
        !self.handle.filter().is_installed() || view(&self.upid())
    }

    fn push_unfiltered(self: &Arc<Self>, event: Event<P>) -> bool {
        matches!(self.push(event, AtBound::Ignore), Pushed::Queued)
    }

    /// Bounds the mailbox; called once, before the process starts.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.mailbox.lock().bound = Some(Box::new(Bound::new(capacity)));
    }

    /// Queues a dispatch of `f`; false if the process is gone or the filter dropped it.
    pub(crate) fn dispatch(
        self: &Arc<Self>,
        method: Option<&'static str>,
        f: Box<dyn FnOnce(&mut P) + Send>,
        at_bound: AtBound,
    ) -> Pushed<P> {
        let filter = self.handle.filter();
        if !self.filter_allows(|to| filter.allows(&EventView::Dispatch { to, method })) {
            return Pushed::Gone(Event::Dispatch(f));
        }
        self.push(Event::Dispatch(f), at_bound)
    }

    fn visit(self: &Arc<Self>) {
        let budget = self.handle.scheduler().budget();
        let mut slot = self.slot.lock();
        let slot = &mut *slot;
        let (queued, resume) = {
            let mut mailbox = self.mailbox.lock();
            let resume = mem::take(&mut mailbox.resume_pending);
            if mailbox.queue.len() <= budget {
                mem::swap(&mut mailbox.queue, &mut slot.batch);
            } else {
                slot.batch.extend(mailbox.queue.drain(..budget));
            }
            let Mailbox { bound, queue, .. } = &mut *mailbox;
            (bound.as_mut().map(|bound| bound.refill(queue)), resume)
        };
        // Senders waiting for room at the bound; none for an unbounded mailbox.
        if let Some(queued) = queued {
            queued.into_iter().for_each(|promise| promise.set(()));
        }
        if slot.stopping.is_some() {
            // Ending, children first: finish once they have all ended.
            self.drop_batch(slot);
            if let Some(ending) = slot.stopping.take_if(|_| resume).map(|e| *e) {
                context::running(self, 0, || self.finish_ending(slot, ending));
            }
        } else if slot.process.is_none() {
            // Ended in an earlier visit: only stragglers pushed before `terminated` was set.
            self.drop_batch(slot);
        } else {
            // The events taken for this visit use its budget up front (see `budget_spent`).
            let left = budget.saturating_sub(slot.batch.len());
            context::running(self, left, || {
                let ended = match slot.initialized {
                    true => self.run_batch(slot),
                    false => self.initialize(slot).or_else(|| self.run_batch(slot)),
                };
                if let Some(ending) = ended {
                    self.begin_ending(slot, ending);
                }
            });
        }
        self.end_visit();
    }

    /// Runs `initialize` (the first visit's first act, before any event, even an injected
    /// terminate) and finishes the start's unit of work, unless it panicked: then the process
    /// ends, and the unit with it.
    fn initialize(self: &Arc<Self>, slot: &mut Slot<P>) -> Option<Ending> {
        slot.initialized = true;
        let process = slot.process.as_mut().expect("a live process has its value");
        let mut ctx = Context::new(self, &mut slot.handlers);
        let initialized = panic::catch_unwind(AssertUnwindSafe(|| process.initialize(&mut ctx)));
        context::flush_held();
        match initialized {
            Ok(()) => {
                self.handle.quiesce().finished();
                None
            }
            Err(payload) => Some(Ending::panicked(self.panicked(&*payload))),
        }
    }

    /// Runs the batch until it is empty or the process must end (a terminate event, an injected
    /// terminate, a panic); each event that does not end the process is finished for settle.
    /// Every event run counts for the `runtime.events_handled` metric.
    fn run_batch(self: &Arc<Self>, slot: &mut Slot<P>) -> Option<Ending> {
        let quiesce = self.handle.quiesce();
        loop {
            if self.inject.load(Ordering::Acquire) {
                return Some(Ending {
                    panicked: None,
                    units: 0,
                });
            }
            let event = slot.batch.pop_front()?;
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.handle_event(slot, event)));
            // Before the event counts as finished: what it sent is on its way once it has.
            context::flush_held();
            if let Ok(Some(events)) = outcome {
                quiesce.finished_events(events);
                continue;
            }
            quiesce.ran_event();
            return Some(match outcome {
                Err(payload) => Ending::panicked(self.panicked(&*payload)),
                Ok(_) => Ending {
                    panicked: None,
                    units: 1,
                },
            });
        }
    }

    /// Logs a handler's panic and names it as the exit reason.
    fn panicked(&self, payload: &(dyn std::any::Any + Send)) -> ExitReason {
        let message = crate::future::panic_message(payload).to_owned();
        self.handle.count_panicked();
        tracing::error!(process = %self.upid(), panic = %message, "process panicked; it ends now");
        ExitReason::Panicked(message.into())
    }

    /// Runs one event: the messages it held (one, or a run's that ran before an injected
    /// terminate stopped it), or `None` for `Terminate`.
    fn handle_event(self: &Arc<Self>, slot: &mut Slot<P>, event: Event<P>) -> Option<u64> {
        let process = slot.process.as_mut().expect("a live process has its value");
        match event {
            Event::Dispatch(f) => f(process),
            Event::Message(envelope) => slot.handlers.handle(process, self, *envelope),
            Event::Run(run) => {
                let go_on = || !self.inject.load(Ordering::Acquire);
                let ran = slot.handlers.handle_run(process, self, &run, go_on);
                return Some(ran as u64);
            }
            Event::Exited(exit) => {
                let (upid, reason) = *exit;
                process.exited(&mut Context::new(self, &mut slot.handlers), &upid, &reason)
            }
            Event::Terminate => return None,
        }
        Some(1)
    }

    fn end_visit(self: &Arc<Self>) {
        let mut mailbox = self.mailbox.lock();
        if mailbox.resume_pending {
            // The children ended while this visit ran: one more visit finishes the ending.
            drop(mailbox);
            return self.handle.scheduler().reschedule(self.clone());
        }
        let idle = mailbox.queue.is_empty() && !self.inject.load(Ordering::Acquire);
        if idle || mailbox.terminated {
            mailbox.scheduled = false;
            return;
        }
        drop(mailbox);
        self.handle.scheduler().reschedule(self.clone());
    }

    fn drop_batch(&self, slot: &mut Slot<P>) {
        let quiesce = self.handle.quiesce();
        for event in slot.batch.drain(..) {
            drop(event);
            quiesce.finished();
        }
    }
}

/// Whether two handles are the same process cell.
pub(crate) fn same_cell(a: &Arc<dyn AnyCell>, b: &Arc<dyn AnyCell>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl<P: Process> Runnable for ProcessCell<P> {
    fn run(self: Arc<Self>) {
        self.visit();
    }

    fn name(&self) -> &Arc<str> {
        &self.id
    }

    fn pin(&self) -> Option<usize> {
        self.pin.map(usize::from)
    }
}

impl<P: Process> AnyCell for ProcessCell<P> {
    fn id(&self) -> &Arc<str> {
        &self.id
    }

    fn upid(&self) -> Upid {
        ProcessCell::upid(self)
    }

    fn handle(&self) -> &Handle {
        &self.handle
    }

    fn deliver_message(self: Arc<Self>, envelope: Envelope) -> bool {
        let filter = self.handle.filter();
        let allowed = self.filter_allows(|to| {
            filter.allows(&EventView::Message {
                from: &envelope.from,
                to,
                name: envelope.body.name(),
                body: (&envelope.body).into(),
            })
        });
        allowed
            && matches!(
                self.push(Event::Message(Box::new(envelope)), AtBound::Drop),
                Pushed::Queued
            )
    }

    fn deliver_run(self: Arc<Self>, run: InboundRun, refused: &mut dyn FnMut(&str)) {
        // A filter may run test code that sends to this process: never under the lock.
        let run = match self.handle.filter().is_installed() {
            true => run,
            false => match self.push_run(run, refused) {
                Some(run) => run,
                None => return,
            },
        };
        for envelope in run.envelopes() {
            if !self.clone().deliver_message(envelope) {
                refused(&run.name);
            }
        }
    }

    fn deliver_exited(self: Arc<Self>, upid: Upid, reason: ExitReason) {
        let filter = self.handle.filter();
        let allowed = self.filter_allows(|to| {
            filter.allows(&EventView::Exited {
                to,
                upid: &upid,
                reason: &reason,
            })
        });
        if allowed {
            self.push_unfiltered(Event::Exited(Box::new((upid, reason))));
        }
    }

    fn terminate(self: Arc<Self>, inject: bool) {
        if !inject {
            self.push_unfiltered(Event::Terminate);
            return;
        }
        // The request is one unit of work for settle, finished by the visit that consumes it.
        let quiesce = self.handle.quiesce();
        quiesce.started();
        let mut mailbox = self.mailbox.lock();
        if mailbox.terminated || self.inject.swap(true, Ordering::AcqRel) {
            drop(mailbox);
            quiesce.finished();
            return;
        }
        let schedule = !mem::replace(&mut mailbox.scheduled, true);
        drop(mailbox);
        if schedule {
            self.handle.scheduler().schedule(self.clone());
        }
    }

    fn wait(&self) -> Future<()> {
        let mut mailbox = self.mailbox.lock();
        let extras = mailbox.extras.get_or_insert_with(Default::default);
        if extras.ended {
            return Future::ready(());
        }
        let promise = Promise::new();
        let future = promise.future();
        extras.waiters.push(promise);
        future
    }

    fn add_linker(&self, linker: Upid) -> Result<(), ExitReason> {
        let mut mailbox = self.mailbox.lock();
        let extras = mailbox.extras.get_or_insert_with(Default::default);
        if let Some(reason) = &extras.exit {
            return Err(reason.clone());
        }
        if !extras.linkers.contains(&linker) {
            extras.linkers.push(linker);
        }
        Ok(())
    }

    fn add_monitor(&self, monitor: Promise<ExitReason>) -> Option<u64> {
        let mut mailbox = self.mailbox.lock();
        let extras = mailbox.extras.get_or_insert_with(Default::default);
        if let Some(reason) = extras.exit.clone() {
            drop(mailbox);
            monitor.set(reason);
            return None;
        }
        extras.next_monitor += 1;
        let key = extras.next_monitor;
        extras.monitors.push((key, monitor));
        Some(key)
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn has_parent(&self) -> bool {
        let mailbox = self.mailbox.lock();
        mailbox.extras.as_ref().is_some_and(|e| e.has_parent)
    }

    fn add_child(&self, child: Arc<dyn AnyCell>) -> bool {
        let mut mailbox = self.mailbox.lock();
        if mailbox.terminated {
            return false;
        }
        let extras = mailbox.extras.get_or_insert_with(Default::default);
        if extras.children.len().is_power_of_two() {
            extras.children.retain(|c| !c.has_ended());
        }
        // A restarted child comes back at the same cell: keep one entry, at its place in spawn
        // order (the list is sorted by it), even if it was pruned while down.
        if !extras.children.iter().any(|c| same_cell(c, &child)) {
            let at = extras.children.partition_point(|c| c.seq() < child.seq());
            extras.children.insert(at, child);
        }
        true
    }

    fn abandon(&self) {
        self.abandon_now();
    }

    fn has_ended(&self) -> bool {
        let mailbox = self.mailbox.lock();
        mailbox.extras.as_ref().is_some_and(|e| e.ended)
    }

    fn has_exited(&self) -> bool {
        let mailbox = self.mailbox.lock();
        mailbox.extras.as_ref().is_some_and(|e| e.exit.is_some())
    }

    fn queued(&self) -> usize {
        let mailbox = self.mailbox.lock();
        // A transport's run counts as the messages it holds.
        let events = mailbox.queue.iter().map(|event| match event {
            Event::Run(run) => run.len(),
            _ => 1,
        });
        events.sum::<usize>() + mailbox.bound.as_ref().map_or(0, |b| b.waiting())
    }

    fn remove_monitor(&self, key: u64) -> Option<Promise<ExitReason>> {
        let mut mailbox = self.mailbox.lock();
        let monitors = &mut mailbox.extras.as_mut()?.monitors;
        let index = monitors.iter().position(|(k, _)| *k == key)?;
        Some(monitors.remove(index).1)
    }
}
/// At 168 bytes an idle process's cell takes 192 with glibc's malloc, 8 more would take 208
/// (W4-mem's target is about 300 for cell, id and table entry together).
#[cfg(all(test, target_pointer_width = "64"))]
#[test]
fn an_idle_process_cell_stays_small() {
    struct Idle;
    impl crate::Process for Idle {}
    assert!(std::mem::size_of::<ProcessCell<Idle>>() <= 168);
}
