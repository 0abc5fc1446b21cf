//! The reading node's side of a remote pipe: a process that takes the forwarder's items into
//! the local pipe one at a time and grants credit back as they go in.

use std::collections::VecDeque;

use procession::pipe::Writer;
use procession::{cast, link, send, terminate, Context, ExitReason, Pid, Process, Upid};

use super::{weight, Closed, Credit, Data, End, Item, Open, RemotePipeError, RemoteWriter};

/// Spawns the receiver for `writer` on the current runtime and returns the token that names it.
pub(super) fn start<T: Item>(writer: Writer<T>, window: u64) -> RemoteWriter<T> {
    let receiver = procession::spawn(Receiver {
        me: None,
        writer: Some(writer),
        forwarder: None,
        queue: VecDeque::new(),
        writing: false,
        owed: 0,
        window,
        next_seq: 0,
        end: None,
    });
    RemoteWriter {
        receiver: receiver.upid(),
        window,
        item: std::marker::PhantomData,
    }
}

struct Receiver<T: Item> {
    me: Option<Pid<Receiver<T>>>,
    /// The local pipe's writing end; `None` once it was closed or failed.
    writer: Option<Writer<T>>,
    /// The forwarder that opened the pipe.
    forwarder: Option<Upid>,
    /// Items received and not yet in the local pipe (at most a window and one item).
    queue: VecDeque<T>,
    /// Whether a write to the local pipe is held, waiting for room.
    writing: bool,
    /// Credit to grant back: the weight of items that went into the local pipe.
    owed: u64,
    window: u64,
    next_seq: u64,
    /// How the stream ended, once the forwarder said so: `Some(None)` closed, `Some(Some(e))`
    /// failed with `e`.
    end: Option<Option<String>>,
}

impl<T: Item> Process for Receiver<T> {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let me = ctx.pid();
        self.me = Some(me.clone());
        if let Some(writer) = &self.writer {
            writer.reader_closed().on_ready(move |()| {
                cast(&me, |r: &mut Receiver<T>| r.reader_closed());
            });
        }
        let installed = ctx
            .install(|r: &mut Self, from: &Upid, _: Open| r.open(from))
            .and_then(|()| {
                ctx.install(|r: &mut Self, from: &Upid, data: Data<T>| r.data(from, data))
            })
            .and_then(|()| ctx.install(|r: &mut Self, from: &Upid, end: End| r.end(from, end)));
        if let Err(error) = installed {
            tracing::error!(%error, "remote pipe receiver could not install its handlers");
        }
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        if self.forwarder.as_ref() == Some(upid) && self.end.is_none() {
            tracing::debug!(forwarder = %upid, %reason, "remote pipe writer lost");
            self.finish(Err(RemotePipeError::Lost(reason.clone())));
        }
    }
}

impl<T: Item> Receiver<T> {
    fn open(&mut self, from: &Upid) {
        if self.forwarder.is_some() || self.writer.is_none() {
            let already_open = self.forwarder.is_some();
            send(from, Closed { already_open });
            return;
        }
        self.forwarder = Some(from.clone());
        link(from);
        send(from, Credit(self.window));
    }

    fn data(&mut self, from: &Upid, data: Data<T>) {
        if self.forwarder.as_ref() != Some(from) || self.end.is_some() {
            return;
        }
        if data.seq != self.next_seq {
            let gap = format!("item {} arrived where {} was due", data.seq, self.next_seq);
            self.finish(Err(RemotePipeError::Protocol(gap)));
            return;
        }
        self.next_seq += 1;
        self.queue.push_back(data.item);
        self.pump();
    }

    fn end(&mut self, from: &Upid, end: End) {
        if self.forwarder.as_ref() != Some(from) || self.end.is_some() {
            return;
        }
        self.end = Some(end.failure);
        self.pump();
    }

    /// Moves queued items into the local pipe until one has to wait for room; ends the pipe
    /// once the queue is empty after the end; grants credit for what went in.
    fn pump(&mut self) {
        while !self.writing {
            let (Some(writer), Some(item)) = (self.writer.as_mut(), self.queue.pop_front()) else {
                break;
            };
            let item_weight = weight(&item);
            let written = writer.write(item);
            // Pending first: the reader may complete the write at any moment, and once it is
            // not pending it stays as it is.
            if written.is_pending() {
                self.writing = true;
                let me = self.me.clone().expect("set in initialize");
                written.on_any(move |outcome| {
                    let ok = outcome.is_ok();
                    cast(&me, move |r: &mut Receiver<T>| r.written(item_weight, ok));
                });
                break;
            }
            if written.is_ready() {
                self.owed += item_weight;
                continue;
            }
            // Refused: the reader closed; `reader_closed` tells the forwarder.
            self.queue.clear();
        }
        if self.queue.is_empty() && !self.writing {
            if let Some(end) = self.end.clone() {
                return self.finish(end.map_or(Ok(()), |e| Err(RemotePipeError::Failed(e))));
            }
        }
        if self.owed > 0 && (self.owed >= self.window / 4 || self.queue.is_empty()) {
            self.grant();
        }
    }

    fn written(&mut self, item_weight: u64, ok: bool) {
        self.writing = false;
        if ok {
            self.owed += item_weight;
        } else {
            self.queue.clear();
        }
        self.pump();
    }

    fn grant(&mut self) {
        if let Some(forwarder) = &self.forwarder {
            send(forwarder, Credit(self.owed));
            self.owed = 0;
        }
    }

    /// The local reader closed: tell the forwarder, so the remote writer stops.
    fn reader_closed(&mut self) {
        if let Some(forwarder) = &self.forwarder {
            send(
                forwarder,
                Closed {
                    already_open: false,
                },
            );
        }
        self.writer = None;
        self.queue.clear();
        self.stop();
    }

    /// Ends the local pipe as the stream ended and stops this process.
    fn finish(&mut self, outcome: Result<(), RemotePipeError>) {
        if let Some(writer) = self.writer.take() {
            match outcome {
                Ok(()) => writer.close(),
                Err(error) => writer.fail(error),
            }
        }
        self.queue.clear();
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(me) = &self.me {
            terminate(me);
        }
    }
}
