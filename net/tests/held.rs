//! Sends a handler makes are held back and leave together when it returns: order, exit notices
//! and the peer buffer's bound must be as if each had gone at once.

mod support;

use std::sync::mpsc;

use procession::{dispatch, send, Context, Message, Pid, Process, Runtime, Upid};
use procession_net::Net;
use serde::{Deserialize, Serialize};
use support::{counter, node, node_and_silent_peer, Note, PATIENCE};

/// Does nothing of its own: the tests dispatch the sends to it, so they run in its handler.
struct Sender;
impl Process for Sender {}

#[derive(Serialize, Deserialize, Message)]
struct Blob {
    seq: u64,
    body: String,
}

#[test]
fn held_sends_past_the_peer_buffer_are_dropped_whole_and_counted() {
    const BLOBS: u64 = 20_000;
    let (runtime, _net, silent) = node_and_silent_peer();
    let sender = runtime.spawn(Sender);
    let target = silent.sink.clone();
    // 20 MB from handlers to a peer that reads nothing yet: its kernel buffers fill, then the
    // node's 64 KiB queue, and the frames past it are dropped at a flush.
    for batch in 0..20 {
        let target = target.clone();
        runtime
            .block_on(dispatch(&sender, move |_: &mut Sender| {
                for seq in batch * BLOBS / 20..(batch + 1) * BLOBS / 20 {
                    let body = "x".repeat(1000);
                    send(&target, Blob { seq, body });
                }
            }))
            .unwrap();
    }
    let dropped = counter(&runtime, "net.dropped.peer_full");
    assert!(dropped > 0, "20 MB must overflow a 64 KiB queue");
    // What was queued arrives whole and in order: a frame after a cut carries its fields.
    let frames = silent.frames();
    let mut last = None;
    let mut arrived = 0;
    while arrived + dropped < BLOBS {
        let frame = frames.recv_timeout(PATIENCE).unwrap();
        assert_eq!(frame.name, Blob::NAME);
        assert_eq!(frame.to, target);
        let blob: Blob = procession::message::decode(&frame.body).unwrap();
        assert!(last < Some(blob.seq), "{:?} then {}", last, blob.seq);
        assert_eq!(blob.body.len(), 1000);
        last = Some(blob.seq);
        arrived += 1;
    }
    assert_eq!(counter(&runtime, "net.dropped.peer_full"), dropped);
    assert_eq!(counter(&runtime, "net.dropped.unreachable"), 0);
}

#[derive(Serialize, Deserialize, Message)]
struct Sized {
    seq: u64,
    body: Vec<u8>,
}

/// Forwards every `Sized` to `to` as it arrived.
struct Relay {
    to: Upid,
}

impl Process for Relay {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.delegate::<Sized>(&self.to).unwrap();
    }
}

/// Passes the number of every `Sized` it gets on to a channel.
struct Numbers(mpsc::Sender<u64>);

impl Process for Numbers {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, sized: Sized| {
            let _ = me.0.send(sized.seq);
        })
        .unwrap();
    }
}

#[test]
fn a_relay_forwarding_small_and_large_bodies_in_one_run_keeps_their_order() {
    const MESSAGES: u64 = 400;
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (c, _net_c) = node();
    let (seen, numbers) = mpsc::channel();
    let sink = c.spawn(Numbers(seen));
    let relay = b.spawn(Relay { to: sink.upid() });
    // Small bodies are held by the relay's handler; large ones (forwarded as they arrived, 4 KiB
    // and more) go at once, and must not overtake the small ones before them.
    {
        let _entered = a.enter();
        for seq in 0..MESSAGES {
            let body = vec![7; if seq % 3 == 0 { 5000 } else { 10 }];
            send(&relay.upid(), Sized { seq, body });
        }
    }
    let got: Vec<u64> = (0..MESSAGES)
        .map(|_| numbers.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert_eq!(got, (0..MESSAGES).collect::<Vec<_>>());
}

/// Records, in order, the notes and marks it gets.
struct Log(mpsc::Sender<String>);

impl Process for Log {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Note(n)| {
            let _ = me.0.send(format!("note {n}"));
        })
        .unwrap();
        ctx.install(|me: &mut Self, _: &Upid, Mark(n)| {
            let _ = me.0.send(format!("mark {n}"));
        })
        .unwrap();
    }
}

/// A message whose `Serialize` first sends a `Note` to `to` (a send from inside a send), or
/// panics when `to` is `None`.
struct Mark(u64);

thread_local! {
    static NESTED: std::cell::RefCell<Option<Upid>> = const { std::cell::RefCell::new(None) };
}

impl Serialize for Mark {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match NESTED.with(|nested| nested.borrow().clone()) {
            Some(to) => send(&to, Note(100 + self.0)),
            None => panic!("this mark refuses to be encoded"),
        }
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Mark {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Mark)
    }
}

impl Message for Mark {
    const NAME: &'static str = "net-test::held::Mark";
}

/// Two nodes: a [`Sender`] on `a`, and on `b` a [`Log`] at `target` whose entries arrive on
/// `entries`.
struct LogPair {
    a: Runtime,
    b: Runtime,
    _nets: (Net, Net),
    sender: Pid<Sender>,
    target: Upid,
    entries: mpsc::Receiver<String>,
}

impl LogPair {
    fn new() -> Self {
        let (a, net_a) = node();
        let (b, net_b) = node();
        let (log, entries) = mpsc::channel();
        let target = b.spawn(Log(log)).upid();
        let sender = a.spawn(Sender);
        LogPair {
            a,
            b,
            _nets: (net_a, net_b),
            sender,
            target,
            entries,
        }
    }
}

#[test]
fn a_send_from_inside_a_held_messages_encoding_keeps_its_place() {
    let pair = LogPair::new();
    let (a, sender, entries) = (&pair.a, &pair.sender, &pair.entries);
    let to = pair.target.clone();
    a.block_on(dispatch(sender, move |_: &mut Sender| {
        NESTED.with(|nested| *nested.borrow_mut() = Some(to.clone()));
        send(&to, Note(1));
        send(&to, Mark(2));
        send(&to, Note(3));
        NESTED.with(|nested| nested.borrow_mut().take());
    }))
    .unwrap();
    let got: Vec<String> = (0..4)
        .map(|_| entries.recv_timeout(PATIENCE).unwrap())
        .collect();
    // The note sent while the mark was being encoded follows the mark: the thread's buffer
    // was in use, and nothing held before the mark is overtaken.
    assert_eq!(got, ["note 1", "mark 2", "note 102", "note 3"]);
}

#[test]
fn a_panic_while_encoding_a_held_message_loses_nothing_held_around_it() {
    let pair = LogPair::new();
    let (a, b, target) = (&pair.a, &pair.b, &pair.target);
    let (sender, entries) = (&pair.sender, &pair.entries);
    // A handler that catches the panic goes on sending: nothing of the failed frame is left
    // between the ones before and after it.
    let to = target.clone();
    a.block_on(dispatch(sender, move |_: &mut Sender| {
        send(&to, Note(1));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            send(&to, Mark(2));
        }));
        assert!(caught.is_err());
        send(&to, Note(3));
    }))
    .unwrap();
    assert_eq!(entries.recv_timeout(PATIENCE).unwrap(), "note 1");
    assert_eq!(entries.recv_timeout(PATIENCE).unwrap(), "note 3");
    // A handler that does not: its process ends, and what it sent before the panic still goes.
    let to = target.clone();
    let _ = dispatch(sender, move |_: &mut Sender| {
        send(&to, Note(4));
        send(&to, Mark(5));
    });
    assert_eq!(entries.recv_timeout(PATIENCE).unwrap(), "note 4");
    let other = a.spawn(Sender);
    let to = target.clone();
    a.block_on(dispatch(&other, move |_: &mut Sender| send(&to, Note(6))))
        .unwrap();
    assert_eq!(entries.recv_timeout(PATIENCE).unwrap(), "note 6");
    assert_eq!(counter(b, "net.dropped.malformed"), 0);
    assert_eq!(counter(b, "runtime.messages_dropped"), 0);
}
