//! Engine: queuing events in a process's mailbox, one at a time or a transport's run at once.
//!
//! # Protocol
//!
//! Every event is counted as started for settle before it meets the mailbox and as finished at
//! once if it is not queued or parked; a queued event finishes when the runner has run it. The
//! push that finds `scheduled` clear sets it and hands the cell to the scheduler, after the lock
//! is released. A transport's run of messages (consecutive ones from one sender under one name)
//! is one event and one unit of work: the runner runs its messages in order, checking for an
//! injected terminate before each, as it would separate events. A bounded mailbox takes a run's
//! messages one by one instead, so that each meets the bound (dropped and counted when full):
//! a run changes nothing a process can see but the cost. Where the process runs: a run of one
//! (a request or a reply) goes to this thread's hand-off slot, to run when the reader yields (at
//! once, when that was the only frame it had), a longer one to the shared queue, for a worker
//! that is free while the transport's reader goes on reading. Measured on the remote one-way
//! stream: about 15% more messages per second than running every run here, with the
//! ping-pong's round trip unchanged (running every run on the shared queue costs it a wake-up).

use std::mem;
use std::sync::Arc;

use super::{AtBound, ProcessCell, Pushed};
use crate::event::Event;
use crate::process::Process;
use crate::transport::InboundRun;

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

    /// Queues `run` as one event (the filter point already passed), or hands it back when the
    /// mailbox is bounded, for its messages to meet the bound one by one; `refused` gets the
    /// name of each message not queued because the process ended.
    pub(super) fn push_run(
        self: &Arc<Self>,
        run: InboundRun,
        refused: &mut dyn FnMut(&str),
    ) -> Option<InboundRun> {
        let quiesce = self.handle.quiesce();
        quiesce.started();
        let mut mailbox = self.mailbox.lock();
        if mailbox.terminated || mailbox.bound.is_some() {
            let terminated = mailbox.terminated;
            drop(mailbox);
            quiesce.finished();
            if !terminated {
                return Some(run);
            }
            (0..run.len()).for_each(|_| refused(&run.name));
            return None;
        }
        let single = run.len() == 1;
        mailbox.queue.push_back(Event::Run(Box::new(run)));
        let schedule = !mem::replace(&mut mailbox.scheduled, true);
        drop(mailbox);
        if schedule && single {
            // One message, most likely a request or a reply: on this thread, after the reader.
            self.handle.scheduler().schedule(self.clone());
        } else if schedule {
            // A stream's worth: to an idle worker, in parallel with the reader that delivered
            // it, which goes on reading.
            self.handle.scheduler().reschedule(self.clone());
        }
        None
    }
}
