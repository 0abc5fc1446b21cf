//! Engine: the optional bound on a process's mailbox, and what a sender's event meets there.
//!
//! # Protocol
//!
//! A bounded mailbox holds at most `capacity` queued events (the batch a runner has taken does
//! not count). Under the mailbox lock, an event that finds the queue full — or finds senders
//! already waiting, so nobody jumps the line — is handled as its sender chose ([`AtBound`]):
//! dropped and counted, refused and handed back, or parked in `waiting` (FIFO) until the runner
//! takes a batch and [`refill`](Bound::refill) moves parked events into the room it made,
//! completing their "queued" promises after the lock is released. System events (`exited`,
//! terminate) are never bounded: losing one would break the lifecycle. A parked event counts as
//! work for settle, like a queued one; when the process ends, parked events are dropped (their
//! futures end abandoned).

use std::collections::VecDeque;

use crate::event::Event;
use crate::future::Promise;

/// What a sender's event does when the mailbox is at its bound.
pub(crate) enum AtBound {
    /// Not subject to the bound (system events, unbounded mailboxes).
    Ignore,
    /// Dropped and counted (`cast`, messages).
    Drop,
    /// Handed back to the sender (`try_cast`).
    Refuse,
    /// Parked until there is room; the promise, if any, completes then (`cast_wait`;
    /// `dispatch` needs none: its future already waits for the answer).
    Wait(Option<Promise<()>>),
}

/// What became of a pushed event.
pub(crate) enum Pushed<P> {
    Queued,
    Parked,
    /// At the bound: dropped (and counted) or handed back, as the sender chose.
    Full(Event<P>, AtBound),
    /// The process has ended (or is ending).
    Gone(Event<P>),
}

pub(crate) struct Bound<P> {
    capacity: usize,
    waiting: VecDeque<(Event<P>, Option<Promise<()>>)>,
}

impl<P> Bound<P> {
    pub(crate) fn new(capacity: usize) -> Self {
        Bound {
            capacity,
            waiting: VecDeque::new(),
        }
    }

    /// Whether an event must meet the bound now, given the queue's length.
    pub(crate) fn is_full(&self, queued: usize) -> bool {
        queued >= self.capacity || !self.waiting.is_empty()
    }

    pub(crate) fn park(&mut self, event: Event<P>, queued: Option<Promise<()>>) {
        self.waiting.push_back((event, queued));
    }

    /// Moves parked events into the room the runner made; returns their "queued" promises, to
    /// complete once the lock is released.
    pub(crate) fn refill(&mut self, queue: &mut VecDeque<Event<P>>) -> Vec<Promise<()>> {
        let mut queued = Vec::new();
        while queue.len() < self.capacity {
            let Some((event, promise)) = self.waiting.pop_front() else {
                break;
            };
            queue.push_back(event);
            queued.extend(promise);
        }
        queued
    }

    /// Whether senders wait in line.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// How many events are parked (read for the queue-depth metrics).
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Every parked event and its "queued" promise, for dropping when the process ends.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (Event<P>, Option<Promise<()>>)> + '_ {
        self.waiting.drain(..)
    }
}
