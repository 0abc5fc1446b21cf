//! Engine: queuing events in a process's mailbox, one at a time or a transport's batch at once.
//!
//! # Protocol
//!
//! Every event is counted as started for settle before it meets the mailbox and as finished at
//! once if it is not queued or parked; a queued event finishes when the runner has run it. The
//! push that finds `scheduled` clear sets it and hands the cell to the scheduler, after the lock
//! is released. A batch takes the lock once: each of its messages meets the bound as a single
//! message would (dropped and counted when full), so a batch changes nothing a process can see
//! but the number of lock round trips, and where the process runs: a batch of one (a request or
//! a reply) goes to this thread's hand-off slot, to run when the reader yields (at once, when
//! that was the only frame it had), a larger one to the shared queue, for a worker that is free
//! while the transport's reader goes on reading. Measured on the remote one-way stream:
//! about 15% more messages per second than running every batch here, with the ping-pong's
//! round trip unchanged (running every batch on the shared queue costs it a wake-up).

use std::mem;
use std::sync::Arc;

use super::{AtBound, ProcessCell, Pushed};
use crate::event::{Envelope, Event};
use crate::process::Process;

impl<P: Process> ProcessCell<P> {
    /// Queues `event` (past the filter point), meeting a bounded mailbox's bound as `at_bound`
    /// says. An event that is not queued or parked stays uncounted for settle.
    pub(crate) fn push(self: &Arc<Self>, event: Event<P>, at_bound: AtBound) -> Pushed<P> {
        let quiesce = self.handle.quiesce();
        quiesce.started();
        let mut mailbox = self.mailbox.lock();
        let outcome = if mailbox.terminated {
            Pushed::Gone(event)
        } else {
            let queued = mailbox.queue.len();
            match (mailbox.bound.as_mut(), at_bound) {
                (Some(bound), AtBound::Wait(promise)) if bound.is_full(queued) => {
                    bound.park(event, promise);
                    return Pushed::Parked;
                }
                (Some(bound), AtBound::Ignore) if bound.has_waiting() => {
                    // Behind the parked events, so a terminate still comes after them.
                    bound.park(event, None);
                    return Pushed::Parked;
                }
                (Some(bound), at_bound @ (AtBound::Drop | AtBound::Refuse))
                    if bound.is_full(queued) =>
                {
                    Pushed::Full(event, at_bound)
                }
                (_, at_bound) => {
                    mailbox.queue.push_back(event);
                    let schedule = !mem::replace(&mut mailbox.scheduled, true);
                    drop(mailbox);
                    if schedule {
                        self.handle.scheduler().schedule(self.clone());
                    }
                    if let AtBound::Wait(Some(promise)) = at_bound {
                        promise.set(());
                    }
                    return Pushed::Queued;
                }
            }
        };
        drop(mailbox);
        quiesce.finished();
        if let Pushed::Full(_, AtBound::Drop) = &outcome {
            self.handle.count_dropped_at_bound();
        }
        outcome
    }

    /// Queues `envelopes` in order under one lock (the filter point already passed), each as
    /// [`push`](Self::push) with [`AtBound::Drop`] would; `refused` gets the name of each one
    /// not queued (the process ended, or its mailbox was full).
    pub(super) fn push_messages(
        self: &Arc<Self>,
        envelopes: &mut dyn Iterator<Item = Envelope>,
        refused: &mut dyn FnMut(&str),
    ) {
        let quiesce = self.handle.quiesce();
        let mut mailbox = self.mailbox.lock();
        let mut queued = 0;
        for envelope in envelopes {
            quiesce.started();
            let full = mailbox
                .bound
                .as_ref()
                .is_some_and(|bound| bound.is_full(mailbox.queue.len()));
            if mailbox.terminated || full {
                quiesce.finished();
                if !mailbox.terminated {
                    self.handle.count_dropped_at_bound();
                }
                refused(envelope.body.name());
                continue;
            }
            mailbox.queue.push_back(Event::Message(Box::new(envelope)));
            queued += 1;
        }
        let schedule = queued > 0 && !mem::replace(&mut mailbox.scheduled, true);
        drop(mailbox);
        if schedule && queued == 1 {
            // One message, most likely a request or a reply: on this thread, after the reader.
            self.handle.scheduler().schedule(self.clone());
        } else if schedule {
            // A stream's worth: to an idle worker, in parallel with the reader that delivered
            // it, which goes on reading.
            self.handle.scheduler().reschedule(self.clone());
        }
    }
}
