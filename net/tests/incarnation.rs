//! Node incarnations across real sockets: a node restarted on the same address does not take
//! what was meant for its last run, and a connection left over from a run that vanished
//! without closing it is closed when the node's next run says hello.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use procession::{link, post, Context, ExitReason, Message, Process, Runtime, Upid};
use procession_net::hello::Hello;
use procession_net::Net;
use serde::{Deserialize, Serialize};

mod support;
use support::{node, watch, Inbox, Note, PATIENCE};

/// Posts `note` to `to` from `from` until `received` has it (the first posts after a node
/// restarted may go down the connection to its last run), then a last note on the connection
/// that worked, taking every late copy of `note` off `received` before it.
fn deliver(a: &Runtime, from: &Upid, to: &Upid, note: u64, received: &mpsc::Receiver<u64>) {
    let _entered = a.enter();
    for _ in 0..200 {
        post(from, to, Note(note));
        if let Ok(n) = received.recv_timeout(Duration::from_millis(100)) {
            assert_eq!(n, note);
            let last = u64::MAX - note;
            post(from, to, Note(last));
            while received.recv_timeout(PATIENCE).unwrap() != last {}
            return;
        }
    }
    panic!("note {note} never reached {to:?}");
}

#[test]
fn a_restarted_node_does_not_take_what_was_meant_for_its_last_run() {
    let (a, _net_a) = node();
    let sender = a.spawn(Inbox(mpsc::channel().0)).upid();
    let (old, address) = {
        let (b, net_b) = node();
        let (notes, received) = mpsc::channel();
        let old = b.spawn(Inbox(notes)).upid();
        deliver(&a, &sender, &old, 1, &received);
        let address = net_b.address();
        net_b.shutdown();
        b.shutdown();
        (old, address)
    };
    let b = Runtime::new();
    let _net_b = Net::builder().listen(address).start(&b).unwrap();
    let (notes, received) = mpsc::channel();
    let new = b.spawn(Inbox(notes)).upid();
    assert_eq!(new, old, "the new run hands out the same id again");
    assert_ne!(new.incarnation(), old.incarnation());
    deliver(&a, &sender, &new, 2, &received);
    // The connection to the new run is up: each post below arrives in order on it.
    let dropped = b.stats().dropped_messages;
    let bare = Upid::new(old.id(), old.address());
    {
        let _entered = a.enter();
        post(&sender, &old, Note(3));
        post(&sender, &bare, Note(4));
        post(&sender, &new, Note(5));
    }
    assert_eq!(received.recv_timeout(PATIENCE).unwrap(), 4);
    assert_eq!(received.recv_timeout(PATIENCE).unwrap(), 5);
    assert_eq!(b.stats().dropped_messages, dropped + 1);
    // A link to the last run's process hears that it is gone.
    let notices = watch(&a, &old);
    let (upid, reason) = notices.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        (upid.incarnation(), reason),
        (old.incarnation(), ExitReason::NotFound)
    );
}

/// A node's last run that vanished without closing its connections: it answers hellos as run 7
/// and then neither reads, writes nor closes.
struct Vanished {
    listener: TcpListener,
}

impl Vanished {
    fn address(&self) -> std::net::SocketAddr {
        self.listener.local_addr().unwrap()
    }

    fn hello(&self) -> Vec<u8> {
        Hello {
            address: self.address(),
            incarnation: 7,
        }
        .encode()
    }

    /// Accepts the node's connection and answers its hello; the connection is kept open.
    fn accept(&self) -> TcpStream {
        let (mut stream, _) = self.listener.accept().unwrap();
        stream.write_all(&self.hello()).unwrap();
        stream
    }

    /// A connection to `net` as this run, hellos exchanged.
    fn connect(&self, net: &Net) -> TcpStream {
        let mut stream = TcpStream::connect(net.address()).unwrap();
        stream.write_all(&self.hello()).unwrap();
        read_hello(&mut stream);
        stream
    }
}

/// Whether the other end closed `stream` (rather than `PATIENCE` passing in silence).
fn closed(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Link to the first, then send `Note(0)` to the second.
#[derive(Serialize, Deserialize)]
struct LinkTo(Upid, Upid);
impl Message for LinkTo {
    const NAME: &'static str = "incarnation::LinkTo";
}

/// Links to `first` when it starts and to whatever a `LinkTo` names (and says so); passes notes
/// on and reports every exit notice.
struct Linker {
    first: Upid,
    notes: mpsc::Sender<u64>,
    exits: mpsc::Sender<(Upid, ExitReason)>,
}
impl Process for Linker {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        link(&self.first);
        ctx.install(|me: &mut Self, _: &Upid, Note(n)| {
            let _ = me.notes.send(n);
        })
        .unwrap();
        ctx.install(|_: &mut Self, _: &Upid, LinkTo(upid, done)| {
            link(&upid);
            procession::send(&done, Note(0));
        })
        .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        let _ = self.exits.send((upid.clone(), reason.clone()));
    }
}

#[test]
fn connections_to_and_from_a_vanished_run_close_when_the_next_run_says_hello() {
    let (a, net_a) = node();
    let vanished = Vanished {
        listener: TcpListener::bind("127.0.0.1:0").unwrap(),
    };
    let mut inbound = vanished.connect(&net_a);
    // The node's next run, not yet listening, and a process on it with the id a process of the
    // vanished run had.
    let b = Runtime::new();
    let worker = b.spawn(Inbox(mpsc::channel().0));
    let old: Upid = format!("{}@{}#7", worker.id(), vanished.address())
        .parse()
        .unwrap();
    // A links to the vanished run's process: the link goes out on a connection that stays
    // open with nobody behind it, so no end of it will ever tell A anything.
    let (notes, received) = mpsc::channel();
    let (exits, exited) = mpsc::channel();
    let linker = a
        .spawn(Linker {
            first: old.clone(),
            notes,
            exits,
        })
        .upid();
    let mut outbound = vanished.accept();
    assert!(exited.recv_timeout(Duration::from_millis(200)).is_err());

    // The next run (same address, new incarnation; the last run's connections still open)
    // talks to A, which links to its process at once: a link to the new run, not a repeat of
    // the one to the last.
    let address = vanished.address();
    drop(vanished);
    let _net_b = Net::builder().listen(address).start(&b).unwrap();
    let new = worker.upid();
    assert_eq!(new, old);
    let (linked_tx, linked) = mpsc::channel();
    let sender = b.spawn(Inbox(linked_tx)).upid();
    {
        let _entered = b.enter();
        post(&sender, &linker, LinkTo(new.clone(), sender.clone()));
    }
    deliver(&b, &sender, &linker, 1, &received);
    // Sent after the link on the same connection: the link reached the new run.
    assert_eq!(linked.recv_timeout(PATIENCE).unwrap(), 0);
    let (upid, reason) = exited.recv_timeout(PATIENCE).unwrap();
    assert_eq!((upid.incarnation(), reason), (Some(7), ExitReason::Lost));
    assert!(
        closed(&mut outbound),
        "the connection to the last run is open"
    );
    assert!(
        closed(&mut inbound),
        "the connection from the last run is open"
    );
    // The link to the new run holds: it reports the new process's end, and nothing before.
    procession::terminate(&worker);
    let (upid, reason) = exited.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        (upid.incarnation(), reason),
        (new.incarnation(), ExitReason::Normal)
    );
}

#[test]
fn a_hello_naming_a_gone_run_over_an_older_connection_closes_only_that_connection() {
    let (a, net_a) = node();
    let (notes, received) = mpsc::channel();
    let inbox = a.spawn(Inbox(notes)).upid();
    let node: std::net::SocketAddr = support::STRANGER.parse().unwrap();
    let hello = |incarnation| {
        Hello {
            address: node,
            incarnation,
        }
        .encode()
    };
    // Made first (the node's last run), says its hello last.
    let mut older = TcpStream::connect(net_a.address()).unwrap();
    let mut newer = TcpStream::connect(net_a.address()).unwrap();
    newer.write_all(&hello(2)).unwrap();
    read_hello(&mut newer);
    older.write_all(&hello(1)).unwrap();
    assert!(closed(&mut older), "the connection of the gone run is open");
    // The newer connection is still read.
    let mut frame = bytes::BytesMut::new();
    procession_net::frame::Frame {
        kind: procession_net::frame::Kind::Message,
        from: format!("sender@{node}#2").parse().unwrap(),
        to: inbox,
        name: Note::NAME.into(),
        body: procession::message::encode(&Note(5)).unwrap(),
    }
    .encode(&mut frame)
    .unwrap();
    newer.write_all(&frame).unwrap();
    assert_eq!(received.recv_timeout(PATIENCE).unwrap(), 5);
}

/// Reads the node's hello off `stream`.
fn read_hello(stream: &mut TcpStream) -> Hello {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buffer = bytes::BytesMut::new();
    loop {
        if let Some(hello) = Hello::decode(&mut buffer).unwrap() {
            return hello;
        }
        let mut byte = [0; 1];
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed before its hello"
        );
        buffer.extend_from_slice(&byte);
    }
}
