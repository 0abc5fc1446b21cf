//! The writing node's side of a remote pipe: a process the receiver talks to (credit, close)
//! and a task that moves items from the local pipe to the receiver while it has credit.

use std::any::Any;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_core::Stream;
use parking_lot::Mutex;
use procession::pipe::{Reader, Writer};
use procession::{link, post, terminate, Context, ExitReason, Pid, Process, Upid};

use super::{weight, Closed, Credit, Data, End, Item, Open, RemotePipeError};

/// Spawns the forwarder to `receiver` on the current runtime; returns the local writing end.
pub(super) fn start<T: Item>(receiver: Upid, window: u64) -> Writer<T> {
    let (reader, writer) = local_pipe::<T>(window as usize);
    procession::spawn(Forwarder {
        receiver,
        gate: Arc::new(Gate::default()),
        reader: Some(reader),
    });
    writer
}

/// The local pipe between the user's writer and the forwarder, bounded like the remote one: in
/// bytes for a pipe of `Bytes`, in items for a typed stream.
fn local_pipe<T: Item>(window: usize) -> (Reader<T>, Writer<T>) {
    let bytes: Box<dyn Any> = Box::new(procession::pipe::pipe_with_capacity(window));
    match bytes.downcast::<(Reader<T>, Writer<T>)>() {
        Ok(ends) => *ends,
        Err(_) => procession::pipe::stream(window.max(1)),
    }
}

/// Why the forwarder stops before the stream ends.
#[derive(Clone)]
enum Ending {
    ReaderClosed,
    AlreadyOpen,
    Lost(ExitReason),
}

/// Credit and the far end's news, shared by the forwarder process and its task.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    credit: u64,
    ending: Option<Ending>,
    waker: Option<Waker>,
}

impl Gate {
    fn update(&self, change: impl FnOnce(&mut GateState)) {
        let waker = {
            let mut state = self.state.lock();
            change(&mut state);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready with the ending once the far end has gone; pending (and woken) otherwise.
    fn poll_ending(&self, cx: &mut TaskContext<'_>) -> Poll<Ending> {
        let mut state = self.state.lock();
        match &state.ending {
            Some(ending) => Poll::Ready(ending.clone()),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Takes credit for an item of `weight` once there is any (an item larger than the window
    /// goes alone), or gives the ending.
    fn poll_credit(&self, weight: u64, cx: &mut TaskContext<'_>) -> Poll<Result<(), Ending>> {
        let mut state = self.state.lock();
        if let Some(ending) = &state.ending {
            return Poll::Ready(Err(ending.clone()));
        }
        if state.credit > 0 {
            state.credit = state.credit.saturating_sub(weight);
            return Poll::Ready(Ok(()));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Forwarder<T: Item> {
    receiver: Upid,
    gate: Arc<Gate>,
    /// Handed to the task when the process starts.
    reader: Option<Reader<T>>,
}

impl<T: Item> Process for Forwarder<T> {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let gate = self.gate.clone();
        let credit = ctx.install(move |_: &mut Self, _: &Upid, Credit(more)| {
            gate.update(|state| state.credit = state.credit.saturating_add(more));
        });
        let gate = self.gate.clone();
        let closed = ctx.install(move |_: &mut Self, _: &Upid, closed: Closed| {
            let ending = if closed.already_open {
                Ending::AlreadyOpen
            } else {
                Ending::ReaderClosed
            };
            gate.update(|state| {
                state.ending.get_or_insert(ending);
            });
        });
        if let Err(error) = credit.and(closed) {
            tracing::error!(%error, "remote pipe forwarder could not install its handlers");
        }
        link(&self.receiver);
        if let Some(reader) = self.reader.take() {
            let task = pump(reader, self.gate.clone(), ctx.pid(), self.receiver.clone());
            procession::spawn_async(task);
        }
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        if *upid == self.receiver {
            // Not found: the reader closed (or its node restarted) before this writer opened.
            let ending = match reason {
                ExitReason::NotFound => Ending::ReaderClosed,
                reason => Ending::Lost(reason.clone()),
            };
            self.gate.update(|state| {
                state.ending.get_or_insert(ending);
            });
        }
    }
}

/// Moves items from `reader` to the receiver `to` as credit allows, then ends the stream there
/// and stops the forwarder `me`.
async fn pump<T: Item>(mut reader: Reader<T>, gate: Arc<Gate>, me: Pid<Forwarder<T>>, to: Upid) {
    let from = me.upid();
    post(&from, &to, Open);
    let mut seq = 0;
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(ending) = gate.poll_ending(cx) {
                return Poll::Ready(Err(ending));
            }
            Pin::new(&mut reader).poll_next(cx).map(Ok)
        })
        .await;
        let item = match next {
            Err(ending) => break stop_writer(reader, ending),
            Ok(None) => break post(&from, &to, End { failure: None }),
            Ok(Some(Err(failure))) => {
                let failure = Some(failure.to_string());
                break post(&from, &to, End { failure });
            }
            Ok(Some(Ok(item))) => item,
        };
        let item_weight = weight(&item);
        if let Err(ending) = poll_fn(|cx| gate.poll_credit(item_weight, cx)).await {
            break stop_writer(reader, ending);
        }
        post(&from, &to, Data { seq, item });
        seq += 1;
    }
    terminate(&me);
}

/// Ends the local pipe for the writer as the far end went away.
fn stop_writer<T: Item>(reader: Reader<T>, ending: Ending) {
    match ending {
        Ending::ReaderClosed => reader.close(),
        Ending::AlreadyOpen => reader.fail(RemotePipeError::AlreadyOpen),
        Ending::Lost(reason) => reader.fail(RemotePipeError::Lost(reason)),
    }
}
