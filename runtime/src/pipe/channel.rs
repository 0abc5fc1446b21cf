//! Engine: the state both ends of a pipe share, and every transition between its states.
//!
//! One lock guards the buffer, the end the writer chose, whether the reader closed, the reads
//! waiting for an item and the one item held over the bound. Futures and wakers are completed
//! only after the lock is released (their callbacks may use the pipe again), so every transition
//! collects its completions in [`Effects`] and runs them on the way out.
//!
//! # Invariants
//!
//! - Pending reads and buffered items never coexist: a write hands its item to the oldest
//!   pending read before it would buffer it.
//! - `held` is only occupied while the item does not fit; each read that frees room moves it
//!   into the buffer. So the buffer holds at most `max(capacity, one item)` and the pipe at most
//!   one item more.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::PipeError;
use crate::error::Failure;
use crate::future::{Future, Promise};
use crate::line::Line;

/// How the writer ended the stream.
pub(crate) enum End {
    Open,
    Closed,
    Failed(Failure),
    Dropped,
}

/// What a reader gets once the buffer is empty and the writer has ended.
fn end_of(end: &End) -> Option<Result<(), Failure>> {
    match end {
        End::Open => None,
        End::Closed => Some(Ok(())),
        End::Failed(failure) => Some(Err(failure.clone())),
        End::Dropped => Some(Err(PipeError::WriterDropped.into())),
    }
}

pub(crate) struct Channel<T: Send + Sync + 'static> {
    state: Mutex<State<T>>,
    capacity: usize,
    weigh: fn(&T) -> usize,
}

struct State<T: Send + Sync + 'static> {
    buffer: VecDeque<T>,
    buffered: usize,
    end: End,
    /// Set once the reader closed: what the writer's writes fail with from then on.
    reader_closed: Option<Failure>,
    reads: Line<Option<T>>,
    read_waker: Option<Waker>,
    held: Option<Held<T>>,
    write_waker: Option<Waker>,
    closed_watchers: Line<()>,
    next_write: u64,
}

/// The one item over the bound, with the future of the write that brought it (none from `Sink`).
struct Held<T: Send + Sync + 'static> {
    item: T,
    write: Option<(u64, Promise<()>)>,
}

type Completion<T> = (Promise<T>, Result<T, Failure>);

/// Splits the front item into the part a read takes and the rest that stays in front.
pub(crate) type Split<'a, T> = dyn FnMut(T) -> (T, Option<T>) + 'a;

/// Completions gathered under the lock, run after it is released.
struct Effects<T: Send + Sync + 'static> {
    reads: Vec<Completion<Option<T>>>,
    discarded_reads: Vec<Promise<Option<T>>>,
    write: Option<Completion<()>>,
    closed_watchers: Vec<Promise<()>>,
    /// The two ends' wakers: fields rather than a list, so waking costs no allocation.
    wake_reader: Option<Waker>,
    wake_writer: Option<Waker>,
    /// Items the pipe let go of (a closed reader's buffer, a refused or withdrawn write): their
    /// drop may run arbitrary code, such as abandoning a promise, so it waits for the unlock.
    dropped: Vec<T>,
}

impl<T: Send + Sync + 'static> Effects<T> {
    fn new() -> Self {
        Effects {
            reads: Vec::new(),
            discarded_reads: Vec::new(),
            write: None,
            closed_watchers: Vec::new(),
            wake_reader: None,
            wake_writer: None,
            dropped: Vec::new(),
        }
    }

    fn run(self) {
        for promise in self.discarded_reads {
            promise.discard();
        }
        for (promise, outcome) in self.reads {
            match outcome {
                Ok(item) => promise.set(item),
                Err(failure) => promise.fail(failure),
            }
        }
        if let Some((promise, outcome)) = self.write {
            match outcome {
                Ok(()) => promise.set(()),
                Err(failure) => promise.fail(failure),
            }
        }
        for promise in self.closed_watchers {
            promise.set(());
        }
        for waker in [self.wake_reader, self.wake_writer].into_iter().flatten() {
            waker.wake();
        }
        drop(self.dropped);
    }
}

/// What a non-blocking read found.
pub(crate) enum Polled<T> {
    Item(T),
    Ended(Result<(), Failure>),
    Empty,
}

impl<T: Send + Sync + 'static> Channel<T> {
    pub(crate) fn new(capacity: usize, weigh: fn(&T) -> usize) -> Arc<Self> {
        Arc::new(Channel {
            state: Mutex::new(State {
                buffer: VecDeque::new(),
                buffered: 0,
                end: End::Open,
                reader_closed: None,
                reads: Line::new(),
                read_waker: None,
                held: None,
                write_waker: None,
                closed_watchers: Line::new(),
                next_write: 0,
            }),
            capacity,
            weigh,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn buffered(&self) -> usize {
        self.state.lock().buffered
    }

    fn weight(&self, item: &T) -> usize {
        (self.weigh)(item).max(1)
    }

    fn fits(&self, state: &State<T>, weight: usize) -> bool {
        state.buffer.is_empty() || state.buffered + weight <= self.capacity
    }

    /// Takes the front item (only the part `split` takes, the rest staying in front), then
    /// lets the held item in if it now fits.
    fn pop(
        &self,
        state: &mut State<T>,
        effects: &mut Effects<T>,
        split: Option<&mut Split<'_, T>>,
    ) -> Option<T> {
        let front = state.buffer.pop_front()?;
        state.buffered -= self.weight(&front);
        let item = match split {
            None => front,
            Some(split) => {
                let (item, rest) = split(front);
                if let Some(rest) = rest {
                    state.buffered += self.weight(&rest);
                    state.buffer.push_front(rest);
                }
                item
            }
        };
        if let Some(held) = state.held.take() {
            let weight = self.weight(&held.item);
            if self.fits(state, weight) {
                state.buffered += weight;
                state.buffer.push_back(held.item);
                if let Some((_, promise)) = held.write {
                    effects.write = Some((promise, Ok(())));
                }
            } else {
                state.held = Some(held);
            }
        }
        effects.wake_writer = effects.wake_writer.take().or(state.write_waker.take());
        Some(item)
    }

    /// Takes an item (or the part of the front one `split` takes) without waiting; `Empty`
    /// while the writer may still write.
    pub(crate) fn try_read(&self, split: Option<&mut Split<'_, T>>) -> Polled<T> {
        let mut effects = Effects::new();
        let polled = {
            let mut state = self.state.lock();
            self.try_read_locked(&mut state, &mut effects, split)
        };
        effects.run();
        polled
    }

    fn try_read_locked(
        &self,
        state: &mut State<T>,
        effects: &mut Effects<T>,
        split: Option<&mut Split<'_, T>>,
    ) -> Polled<T> {
        if state.reader_closed.is_some() {
            return Polled::Ended(Err(PipeError::ReaderClosed.into()));
        }
        if let Some(item) = self.pop(state, effects, split) {
            return Polled::Item(item);
        }
        match end_of(&state.end) {
            None => Polled::Empty,
            Some(outcome) => Polled::Ended(outcome),
        }
    }

    /// The next item as a future: `None` at the end of the stream.
    pub(crate) fn read(self: &Arc<Self>) -> Future<Option<T>> {
        let mut effects = Effects::new();
        let future = {
            let mut state = self.state.lock();
            match self.try_read_locked(&mut state, &mut effects, None) {
                Polled::Item(item) => Future::ready(Some(item)),
                Polled::Ended(Ok(())) => Future::ready(None),
                Polled::Ended(Err(failure)) => Future::failed(failure),
                Polled::Empty => {
                    let promise = Promise::new();
                    let future = promise.future();
                    let key = state.reads.push(promise);
                    let channel = Arc::downgrade(self);
                    // A fresh future has no discard request yet, so the hook cannot run here.
                    future.when_discard(move || withdraw_read(&channel, key));
                    future
                }
            }
        };
        effects.run();
        future
    }

    /// The next item (or the part of the front one `split` takes), or registers the task to be
    /// woken when there may be one.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        split: Option<&mut Split<'_, T>>,
    ) -> Poll<Result<Option<T>, Failure>> {
        let mut effects = Effects::new();
        let poll = {
            let mut state = self.state.lock();
            match self.try_read_locked(&mut state, &mut effects, split) {
                Polled::Item(item) => Poll::Ready(Ok(Some(item))),
                Polled::Ended(outcome) => Poll::Ready(outcome.map(|()| None)),
                Polled::Empty => {
                    state.read_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        };
        effects.run();
        poll
    }

    /// Puts `item` back at the front, for a reader that took more than it needed.
    pub(crate) fn unread(&self, item: T) {
        let mut state = self.state.lock();
        if state.reader_closed.is_none() {
            state.buffered += self.weight(&item);
            state.buffer.push_front(item);
        }
    }

    /// Why the writer cannot write now, if it cannot.
    fn refusal(state: &State<T>) -> Option<Failure> {
        if let Some(failure) = &state.reader_closed {
            Some(failure.clone())
        } else if !matches!(state.end, End::Open) {
            Some(PipeError::WriterClosed.into())
        } else {
            None
        }
    }

    /// Why a new item cannot be written now: also while one is held, since even an item that
    /// would fit must not overtake it.
    fn write_refusal(state: &State<T>) -> Option<Failure> {
        Self::refusal(state)
            .or_else(|| state.held.is_some().then(|| PipeError::WritePending.into()))
    }

    /// Hands `item` to the oldest pending read, or buffers it if it fits; gives it back if not.
    fn offer(&self, state: &mut State<T>, effects: &mut Effects<T>, item: T) -> Result<(), T> {
        loop {
            match state.reads.pop() {
                Some(read) if read.has_discard() => effects.discarded_reads.push(read),
                Some(read) => {
                    effects.reads.push((read, Ok(Some(item))));
                    return Ok(());
                }
                None => break,
            }
        }
        let weight = self.weight(&item);
        if !self.fits(state, weight) {
            return Err(item);
        }
        state.buffered += weight;
        state.buffer.push_back(item);
        effects.wake_reader = effects.wake_reader.take().or(state.read_waker.take());
        Ok(())
    }

    /// Writes `item`: ready when it fits, pending while it is held over the bound, failed when
    /// another write is already held or the pipe is closed.
    pub(crate) fn write(self: &Arc<Self>, item: T) -> Future<()> {
        let mut effects = Effects::new();
        let future = {
            let mut state = self.state.lock();
            if let Some(failure) = Self::write_refusal(&state) {
                effects.dropped.push(item);
                drop(state);
                effects.run();
                return Future::failed(failure);
            }
            match self.offer(&mut state, &mut effects, item) {
                Ok(()) => Future::ready(()),
                Err(item) => {
                    let promise = Promise::new();
                    let future = promise.future();
                    let key = state.next_write;
                    state.next_write += 1;
                    state.held = Some(Held {
                        item,
                        write: Some((key, promise)),
                    });
                    let channel = Arc::downgrade(self);
                    future.when_discard(move || withdraw_write(&channel, key));
                    future
                }
            }
        };
        effects.run();
        future
    }

    /// Ready when an item may be sent with [`start_send`](Self::start_send) without being held.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        let mut state = self.state.lock();
        if let Some(failure) = Self::refusal(&state) {
            return Poll::Ready(Err(failure));
        }
        if state.held.is_none() && (state.buffer.is_empty() || state.buffered < self.capacity) {
            Poll::Ready(Ok(()))
        } else {
            state.write_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Room for up to this much weight now (at least 1), or registers the task.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<usize, Failure>> {
        let mut state = self.state.lock();
        if let Some(failure) = Self::refusal(&state) {
            return Poll::Ready(Err(failure));
        }
        if state.held.is_none() && state.buffer.is_empty() {
            Poll::Ready(Ok(self.capacity.max(1)))
        } else if state.held.is_none() && state.buffered < self.capacity {
            Poll::Ready(Ok(self.capacity - state.buffered))
        } else {
            state.write_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Sends `item` with no future: buffered if it fits, else held (one at most).
    pub(crate) fn start_send(&self, item: T) -> Result<(), Failure> {
        let mut effects = Effects::new();
        let result = {
            let mut state = self.state.lock();
            if let Some(failure) = Self::write_refusal(&state) {
                effects.dropped.push(item);
                drop(state);
                effects.run();
                return Err(failure);
            }
            match self.offer(&mut state, &mut effects, item) {
                Ok(()) => Ok(()),
                Err(item) => {
                    state.held = Some(Held { item, write: None });
                    Ok(())
                }
            }
        };
        effects.run();
        result
    }

    /// Ready once the reader has closed; otherwise registers the task.
    pub(crate) fn poll_reader_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock();
        if state.reader_closed.is_some() {
            Poll::Ready(())
        } else {
            state.write_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    pub(crate) fn reader_closed(self: &Arc<Self>) -> Future<()> {
        let mut state = self.state.lock();
        if state.reader_closed.is_some() {
            return Future::ready(());
        }
        let promise = Promise::new();
        let future = promise.future();
        let key = state.closed_watchers.push(promise);
        let channel = Arc::downgrade(self);
        // A fresh future has no discard request yet, so the hook cannot run here.
        future.when_discard(move || {
            let withdrawn = channel
                .upgrade()
                .and_then(|c| c.state.lock().closed_watchers.withdraw(key));
            if let Some(watcher) = withdrawn {
                watcher.discard();
            }
        });
        future
    }

    /// Ends the writer's side as `end` says; the held item stays readable.
    pub(crate) fn end_writer(&self, end: End) {
        let mut effects = Effects::new();
        {
            let mut state = self.state.lock();
            if !matches!(state.end, End::Open) {
                return;
            }
            state.end = end;
            if let Some(held) = state.held.take() {
                state.buffered += self.weight(&held.item);
                state.buffer.push_back(held.item);
                if let Some((_, promise)) = held.write {
                    effects.write = Some((promise, Ok(())));
                }
            }
            // Pending reads imply an empty buffer, so each of them sees the end now.
            let outcome = end_of(&state.end).expect("the writer has just ended");
            while let Some(read) = state.reads.pop() {
                effects.reads.push((read, outcome.clone().map(|()| None)));
            }
            effects.wake_reader = effects.wake_reader.take().or(state.read_waker.take());
        }
        effects.run();
    }

    /// The reader's end: drops what is buffered and fails the writer's held and later writes.
    /// Closes the reader's end; the writer's held and later writes fail with `failure`
    /// (`ReaderClosed` when `None`).
    pub(crate) fn close_reader(&self, failure: Option<Failure>) {
        let mut effects = Effects::new();
        {
            let mut state = self.state.lock();
            if state.reader_closed.is_some() {
                return;
            }
            let failure = failure.unwrap_or_else(|| PipeError::ReaderClosed.into());
            state.reader_closed = Some(failure.clone());
            effects.dropped = std::mem::take(&mut state.buffer).into();
            state.buffered = 0;
            if let Some(held) = state.held.take() {
                effects.dropped.push(held.item);
                if let Some((_, promise)) = held.write {
                    effects.write = Some((promise, Err(failure)));
                }
            }
            while let Some(read) = state.reads.pop() {
                effects
                    .reads
                    .push((read, Err(PipeError::ReaderClosed.into())));
            }
            while let Some(watcher) = state.closed_watchers.pop() {
                effects.closed_watchers.push(watcher);
            }
            effects.wake_writer = effects.wake_writer.take().or(state.write_waker.take());
            effects.wake_reader = effects.wake_reader.take().or(state.read_waker.take());
        }
        effects.run();
    }
}

/// The discard hook of a pending read: leave the line (a no-op once a write served it).
fn withdraw_read<T: Send + Sync + 'static>(channel: &Weak<Channel<T>>, key: u64) {
    let withdrawn = channel
        .upgrade()
        .and_then(|c| c.state.lock().reads.withdraw(key));
    if let Some(read) = withdrawn {
        read.discard();
    }
}

/// The discard hook of a held write: take its item back out (a no-op once it was let in).
fn withdraw_write<T: Send + Sync + 'static>(channel: &Weak<Channel<T>>, key: u64) {
    let Some(channel) = channel.upgrade() else {
        return;
    };
    let withdrawn = {
        let mut state = channel.state.lock();
        match state.held.take() {
            Some(Held {
                item,
                write: Some((k, promise)),
            }) if k == key => {
                // The writer may be waiting for the slot through the `Sink` adapter too.
                let waker = state.write_waker.take();
                Some((item, promise, waker))
            }
            other => {
                state.held = other;
                None
            }
        }
    };
    if let Some((item, promise, waker)) = withdrawn {
        drop(item);
        promise.discard();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
