//! Links at the edges, from a review: a panic message too long for a frame still reaches the
//! remote linker (cut short), a link made while the peer's queue is full is not dropped, a
//! node whose runtime shut down is reported lost, and so is a peer that never says hello.

use std::sync::mpsc;
use std::time::Duration;

use procession::{link, send, Context, ExitReason, Message, Process, Runtime, Upid};
use procession_net::frame::Kind;
use procession_net::Net;
use serde::{Deserialize, Serialize};
use support::{counter, node_and_silent_peer, watch, PATIENCE};

mod support;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note(u64);
impl Message for Note {
    const NAME: &'static str = "review::Note";
}

#[derive(Serialize, Deserialize)]
struct Blob(String);
impl Message for Blob {
    const NAME: &'static str = "review::Blob";
}

/// Links to `target` at start, then says so.
struct LinkThen {
    target: Upid,
    linked: mpsc::Sender<()>,
}

impl Process for LinkThen {
    fn initialize(&mut self, _ctx: &mut Context<'_, Self>) {
        link(&self.target);
        let _ = self.linked.send(());
    }
}

/// Answers a Note(n) below 1000 with Note(n + 1000) to its sender; panics with a long message
/// on Note(666).
struct Echo {
    seen: mpsc::Sender<u64>,
}

impl Process for Echo {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, Note(n)| {
            let _ = me.seen.send(n);
            if n == 666 {
                panic!("{}", "x".repeat(70_000));
            }
            // Answers questions (below 1000) only, so two echoes do not bounce a note forever.
            if n < 1000 {
                send(from, Note(n + 1000));
            }
        })
        .unwrap();
    }
}

/// A process on B that panics with a message over 64 KiB, linked from A: the `exited` frame
/// must still be encoded (the reason cut short) and reach A's linker.
#[test]
fn a_long_panic_message_still_reaches_the_remote_linker() {
    let a = Runtime::new();
    let _net_a = Net::start(&a).unwrap();
    let b = Runtime::new();
    let _net_b = Net::start(&b).unwrap();
    let (seen, seen_rx) = mpsc::channel();
    let target = b.spawn(Echo { seen }).upid();
    let notices = watch(&a, &target);
    // Round trip so the link has reached B before the panic.
    let (echo_seen, echo_rx) = mpsc::channel();
    let probe = a.spawn(Echo { seen: echo_seen }).upid();
    {
        let _entered = a.enter();
        procession::post(&probe, &target, Note(1));
    }
    assert_eq!(seen_rx.recv_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(echo_rx.recv_timeout(PATIENCE).unwrap(), 1001);
    {
        let _entered = a.enter();
        procession::post(&probe, &target, Note(666));
    }
    assert_eq!(seen_rx.recv_timeout(PATIENCE).unwrap(), 666);
    let (upid, reason) = notices
        .recv_timeout(PATIENCE)
        .expect("the linker on A never heard that the remote process panicked");
    assert_eq!(upid, target);
    assert!(
        matches!(reason, ExitReason::Panicked(_) | ExitReason::Lost),
        "{reason:?}"
    );
}

/// A link (monitor) request made while the peer's queue is full must not be dropped like a
/// message: the connection stays up, so no `peer_lost` would ever come and the linker would wait
/// forever. Checked on the wire: the Link frame arrives, before a message sent after it.
#[test]
fn a_link_made_while_the_queue_is_full_is_not_lost_silently() {
    let (runtime, _net, silent) = node_and_silent_peer();
    let sink = silent.sink.clone();
    let _entered = runtime.enter();
    let body = "x".repeat(1000);
    let mut flooded = false;
    for _ in 0..200_000 {
        send(&sink, Blob(body.clone()));
        if counter(&runtime, "net.dropped.peer_full") > 0 {
            flooded = true;
            break;
        }
    }
    assert!(flooded, "the queue never filled");
    // Top the queue up with the smallest frames until one is dropped: what room is left is less
    // than one small frame, and far less than the link frame of a process with a long id.
    let dropped = counter(&runtime, "net.dropped.peer_full");
    for _ in 0..200_000 {
        send(&sink, Blob(String::new()));
        if counter(&runtime, "net.dropped.peer_full") > dropped {
            break;
        }
    }
    let (linked, linked_rx) = mpsc::channel();
    runtime
        .spawn_named(
            &"w".repeat(300),
            LinkThen {
                target: sink.clone(),
                linked,
            },
        )
        .unwrap();
    linked_rx.recv_timeout(PATIENCE).unwrap();
    // Now read everything.
    let frames = silent.frames();
    let mut saw_link = false;
    'outer: for _ in 0..400 {
        send(&sink, Note(7));
        while let Ok(frame) = frames.recv_timeout(Duration::from_millis(50)) {
            saw_link |= frame.kind == Kind::Link;
            if frame.kind == Kind::Message && frame.name == Note::NAME {
                break 'outer;
            }
        }
    }
    assert!(
        saw_link,
        "the link frame was dropped for a full queue while the connection stayed up"
    );
}

/// B's runtime shuts down without `Net::shutdown`: its listener and connections must not outlive
/// it, or A's sends to B's address go into a socket nobody serves and A's linkers never hear.
#[test]
fn a_node_whose_runtime_shut_down_is_reported_lost() {
    let a = Runtime::new();
    let _net_a = Net::start(&a).unwrap();
    let b = Runtime::new();
    let net_b = Net::start(&b).unwrap();
    let (seen, seen_rx) = mpsc::channel();
    let target = b.spawn(Echo { seen }).upid();
    let (echo_seen, echo_rx) = mpsc::channel();
    let probe = a.spawn(Echo { seen: echo_seen }).upid();
    {
        let _entered = a.enter();
        procession::post(&probe, &target, Note(1));
    }
    assert_eq!(seen_rx.recv_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(echo_rx.recv_timeout(PATIENCE).unwrap(), 1001);
    b.shutdown();
    // A process on A links to a process at B's address made after B went away.
    let ghost: Upid = format!("ghost@{}", net_b.address()).parse().unwrap();
    let notices = watch(&a, &ghost);
    let (upid, reason) = notices
        .recv_timeout(PATIENCE)
        .expect("a link to a node whose runtime shut down never heard Lost");
    assert_eq!(upid, ghost);
    assert!(
        matches!(reason, ExitReason::Lost | ExitReason::NotFound),
        "{reason:?}"
    );
    drop(net_b);
}

/// A peer that accepts connections and never writes (not a procession node, or a hung one) is
/// lost once the handshake timeout passes: its linkers hear it, the node closes the connection
/// instead of writing to it on and on, and the next message connects again.
#[test]
fn a_peer_that_never_says_hello_is_lost_after_the_handshake_timeout() {
    use std::io::Read;
    let runtime = Runtime::new();
    let _net = Net::builder()
        .handshake_timeout(Duration::from_millis(200))
        .start(&runtime)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent: Upid = format!("silent@{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let (accepted, connections) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.map(|stream| accepted.send(stream)).is_err() {
                return;
            }
        }
    });
    let notices = watch(&runtime, &silent);
    assert_eq!(
        notices.recv_timeout(PATIENCE).unwrap(),
        (silent.clone(), ExitReason::Lost)
    );
    let mut first = connections.recv_timeout(PATIENCE).unwrap();
    first.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut written = Vec::new();
    first
        .read_to_end(&mut written)
        .expect("the node closes the connection");
    assert!(!written.is_empty(), "the node said hello and linked");
    {
        let _entered = runtime.enter();
        send(&silent, Note(1));
    }
    connections
        .recv_timeout(PATIENCE)
        .expect("a later message connects again");
}
