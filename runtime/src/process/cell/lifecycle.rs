//! Engine: how a process starts, ends and starts again — adoption by a parent, the first visit,
//! the ending (children first, newest first, then `finalize`, then the notices), and the
//! reincarnation a supervisor uses.
//!
//! # Protocol
//!
//! 1. A terminate event, an injected terminate or a panic gives the runner an [`Ending`], which
//!    carries the units of work for settle that the ending finishes.
//! 2. [`begin_ending`](ProcessCell::begin_ending): if the process has live children, it stops
//!    accepting events (`terminated` is set early, so dispatches end abandoned), parks the
//!    ending in the slot, and ends the children one at a time, newest first: each gets a
//!    terminate event and the next starts when the previous one's `wait` completes (so each
//!    child's own subtree ends before it). When the last has ended, the cell is scheduled again.
//! 3. [`finish_ending`](ProcessCell::finish_ending), on the runner: `finalize` (not after a
//!    panic), the exit reason, the undelivered events dropped (abandoned), the id freed, linkers
//!    and monitors told, waiters completed, and last the ending's units finished — so `settle`
//!    and `wait` both see the whole subtree gone.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{AnyCell, Extras, ProcessCell, Slot};
use crate::event::ExitReason;
use crate::process::{Context, Process};

/// Why and how a process ends: the panic, if any, and the units of work for settle that end
/// with it (the terminate event, the panicking event, an injected terminate).
pub(super) struct Ending {
    pub(super) panicked: Option<ExitReason>,
    pub(super) units: u64,
}

impl Ending {
    pub(super) fn panicked(reason: ExitReason) -> Self {
        Ending {
            panicked: Some(reason),
            units: 1,
        }
    }
}

impl<P: Process> ProcessCell<P> {
    /// Marks the process as a child of `parent`, which will hear of its end (`exited`) and end
    /// it before ending itself. Called before the cell starts.
    pub(crate) fn adopt_by(self: &Arc<Self>, parent: &Arc<dyn AnyCell>) -> bool {
        {
            let mut mailbox = self.mailbox.lock();
            let extras = mailbox.extras.get_or_insert_with(Default::default);
            extras.has_parent = true;
            extras.linkers.push(parent.upid());
        }
        parent.add_child(self.clone())
    }

    /// Brings an ended process back at the same cell, so its `Pid` and `Upid` stay valid: a
    /// fresh state, a fresh mailbox, `initialize` first, `parent` as its parent again. Events
    /// sent while it was down were dropped (abandoned); later ones reach the new instance.
    ///
    /// Returns false if the process has not ended, or its id was taken meanwhile.
    pub(crate) fn reincarnate(self: &Arc<Self>, process: P, parent: &Arc<dyn AnyCell>) -> bool {
        let mut slot = self.slot.lock();
        {
            let mut mailbox = self.mailbox.lock();
            let ended = mailbox.extras.as_ref().is_some_and(|e| e.ended);
            if !mailbox.terminated || !ended || slot.process.is_some() {
                return false;
            }
            // Counted before the cell is published again, as at spawn.
            self.handle.quiesce().started();
            if !self.handle.table().insert(self.clone()) {
                self.handle.quiesce().finished();
                return false;
            }
            mailbox.terminated = false;
            mailbox.extras = Some(Box::new(Extras {
                has_parent: true,
                linkers: vec![parent.upid()],
                ..Extras::default()
            }));
        }
        slot.process = Some(process);
        slot.initialized = false;
        drop(slot);
        if !parent.add_child(self.clone()) {
            self.clone().terminate(false);
        }
        self.start();
        true
    }

    /// Ends a process that never started (spawned on a runtime that is shutting down): it is
    /// terminated before any event, so dispatches end abandoned and `wait` is ready at once.
    pub(crate) fn never_started(&self) {
        let process = {
            let mut mailbox = self.mailbox.lock();
            mailbox.terminated = true;
            let extras = mailbox.extras.get_or_insert_with(Default::default);
            extras.exit = Some(ExitReason::NotFound);
            extras.ended = true;
            self.slot.lock().process.take()
        };
        drop(process);
    }

    /// Schedules the first visit, which runs `initialize` before any event. Called once, after
    /// the cell is published; the caller counted the visit as a unit of work for settle before
    /// publishing it, so a sender that finds the id first cannot make the count run backwards.
    pub(crate) fn start(self: &Arc<Self>) {
        // A sender that found the id in the table first may have scheduled the visit already.
        if !mem::replace(&mut self.mailbox.lock().scheduled, true) {
            self.handle.scheduler().schedule(self.clone());
        }
    }

    /// Starts ending the process: its children first if it has any, else at once.
    pub(super) fn begin_ending(self: &Arc<Self>, slot: &mut Slot<P>, ending: Ending) {
        let (children, queue) = {
            let mut mailbox = self.mailbox.lock();
            if mailbox
                .extras
                .as_ref()
                .is_some_and(|e| e.ended && e.exit == Some(ExitReason::Abandoned))
            {
                // Given up on while a handler was stuck (see `abandon_now`), which has returned
                // now: the rest of its batch ends abandoned, nothing more of it runs.
                drop(mailbox);
                self.drop_batch(slot);
                drop(slot.process.take());
                return;
            }
            let children: Vec<Arc<dyn AnyCell>> = match mailbox.extras.as_mut() {
                Some(extras) => mem::take(&mut extras.children),
                None => Vec::new(),
            };
            // A child that is itself ending (its own children first) has not ended: wait for it.
            let children: Vec<_> = children.into_iter().filter(|c| !c.has_ended()).collect();
            if children.is_empty() {
                (children, None)
            } else {
                mailbox.terminated = true;
                (children, Some(mailbox.take_all()))
            }
        };
        let Some((queue, parked)) = queue else {
            return self.finish_ending(slot, ending);
        };
        tracing::debug!(process = %self.upid(), children = children.len(), "ending children first");
        drop(parked);
        let quiesce = self.handle.quiesce();
        for event in queue.into_iter().chain(slot.batch.drain(..)) {
            drop(event);
            quiesce.finished();
        }
        slot.stopping = Some(Box::new(ending));
        let me = self.clone();
        end_newest_first(children, Box::new(move || me.resume()));
    }

    /// Schedules the visit that finishes a parked ending. If a visit is running now (the
    /// children may end before the visit that started the ending is over), `resume_pending`
    /// makes that visit reschedule the cell instead of going idle.
    fn resume(self: &Arc<Self>) {
        let mut mailbox = self.mailbox.lock();
        mailbox.resume_pending = true;
        let schedule = !mem::replace(&mut mailbox.scheduled, true);
        drop(mailbox);
        if schedule {
            self.handle.scheduler().schedule(self.clone());
        }
    }

    /// Ends the process on its runner. The units of work that ended it are finished last, after
    /// linkers were told and waiters completed, so `settle` sees every effect of the ending.
    pub(super) fn finish_ending(self: &Arc<Self>, slot: &mut Slot<P>, ending: Ending) {
        let Ending {
            panicked,
            mut units,
        } = ending;
        // Nothing more is accepted from here on: not even a child spawned by `finalize`, which
        // would outlive its parent (it is ended at once instead).
        self.mailbox.lock().terminated = true;
        let reason = match panicked {
            Some(reason) => reason,
            None => {
                let process = slot.process.as_mut().expect("a live process has its value");
                let mut ctx = Context::new(self, &mut slot.handlers);
                match panic::catch_unwind(AssertUnwindSafe(|| process.finalize(&mut ctx))) {
                    Ok(()) => ExitReason::Normal,
                    Err(payload) => self.panicked(&*payload),
                }
            }
        };
        let ((queue, parked), linkers, monitors) = {
            let mut mailbox = self.mailbox.lock();
            if self.inject.swap(false, Ordering::AcqRel) {
                // The unit of work `terminate_now` counted ends with the process.
                units += 1;
            }
            let extras = mailbox.extras.get_or_insert_with(Default::default);
            extras.exit = Some(reason.clone());
            let linkers = mem::take(&mut extras.linkers);
            let monitors = mem::take(&mut extras.monitors);
            (mailbox.take_all(), linkers, monitors)
        };
        drop(parked);
        let process = slot.process.take();
        let _handlers = mem::take(&mut slot.handlers);
        drop(process);
        self.drop_batch(slot);
        let quiesce = self.handle.quiesce();
        for event in queue {
            drop(event);
            quiesce.finished();
        }
        self.handle.table().remove(&self.id);
        tracing::debug!(process = %self.upid(), %reason, "process ended");

        let me = self.upid();
        for linker in linkers {
            self.handle.notify_exited(&linker, &me, &reason);
        }
        for (_, monitor) in monitors {
            monitor.set(reason.clone());
        }
        // Only now has the process ended for `wait`: whoever waits can count on the notices
        // having been queued (a dispatch to a linker after `wait` runs after its `exited`).
        let waiters = {
            let mut mailbox = self.mailbox.lock();
            let extras = mailbox.extras.get_or_insert_with(Default::default);
            extras.ended = true;
            mem::take(&mut extras.waiters)
        };
        for waiter in waiters {
            waiter.set(());
        }
        // What `finalize` sent is on its way before the ending counts as finished.
        crate::context::flush_held();
        for _ in 0..units {
            quiesce.finished();
        }
    }
}

/// Ends `processes` one at a time, the last first, each after the one before has ended
/// (subtree included); then calls `done`.
///
/// A loop over the processes already ended, not a recursion: their `wait` is ready, and a
/// callback registered on a ready future runs at once, so a recursion would take a stack frame
/// per process (a shutdown after a mass terminate ends thousands that way).
pub(crate) fn end_newest_first(
    mut processes: Vec<Arc<dyn AnyCell>>,
    done: Box<dyn FnOnce() + Send>,
) {
    while let Some(process) = processes.pop() {
        let ended = process.wait();
        process.terminate(false);
        if !ended.is_ready() {
            ended.when_complete(move |_| end_newest_first(processes, done));
            return;
        }
    }
    done();
}

impl<P: Process> ProcessCell<P> {
    /// Ends the process at once without running anything (a crash, or a shutdown deadline):
    /// the mailbox and the state are dropped, so the promises they hold end abandoned. A state
    /// a handler still holds after a second (a stuck one) goes with the cell instead.
    pub(super) fn abandon_now(&self) {
        let undelivered = {
            let mut mailbox = self.mailbox.lock();
            mailbox.terminated = true;
            // Later waits and monitors answer at once from the exit reason.
            let ended = Extras {
                exit: Some(ExitReason::Abandoned),
                ended: true,
                ..Extras::default()
            };
            let extras = mailbox.extras.replace(Box::new(ended));
            (mailbox.take_all(), extras)
        };
        self.handle.table().remove(&self.id);
        drop(undelivered);
        // A worker may be finishing a visit of this process right now: wait for it briefly (a
        // visit takes microseconds), but never for a handler that does not return.
        // Before the wait, so that a handler returning as it times out sees it: if it is stuck,
        // its batch ends when it returns instead of going on (see `begin_ending`), and nothing
        // of this process runs after the shutdown. Harmless if the slot is taken below.
        self.inject.store(true, Ordering::Release);
        let state = self
            .slot
            .try_lock_for(std::time::Duration::from_secs(1))
            .map(|mut slot| (slot.process.take(), std::mem::take(&mut slot.batch)));
        drop(state);
    }
}
