//! Several nodes in one binary, each a runtime with its own transport on a loopback port:
//! request/reply, order under load, a relay through three nodes, links and monitors across
//! nodes (remote terminate, a node shut down, an unreachable node), reconnecting after a node
//! restarts, the shared secret, and a bounded send queue towards a peer that never reads.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use procession::{
    dispatch, monitor, send, terminate, terminate_now, Context, ExitReason, Message, Process,
    Runtime, Upid,
};
mod support;

use procession_net::Net;
use serde::{Deserialize, Serialize};
use support::{counter, node, node_and_silent_peer, watch, PATIENCE};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note(u64);
impl Message for Note {
    const NAME: &'static str = "net-test::Note";
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ask(u64);
impl Message for Ask {
    const NAME: &'static str = "net-test::Ask";
}

/// Records every `Note` (with its sender) into a channel; answers an `Ask(n)` with `Note(n * 2)`
/// to the sender; forwards notes to `relay` when set.
struct Inbox {
    notes: mpsc::Sender<(Upid, u64)>,
    relay: Option<Upid>,
}

impl Process for Inbox {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, Note(n)| match &me.relay {
            Some(next) => send(next, Note(n)),
            None => {
                let _ = me.notes.send((from.clone(), n));
            }
        })
        .unwrap();
        ctx.install(|_: &mut Self, from: &Upid, Ask(n)| send(from, Note(n * 2)))
            .unwrap();
    }
}

fn inbox(runtime: &Runtime, relay: Option<Upid>) -> (Upid, mpsc::Receiver<(Upid, u64)>) {
    let (notes, received) = mpsc::channel();
    (runtime.spawn(Inbox { notes, relay }).upid(), received)
}

#[test]
fn request_and_reply_across_nodes() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (asker, replies) = inbox(&a, None);
    let (answerer, _) = inbox(&b, None);
    {
        let _entered = a.enter();
        procession::post(&asker, &answerer, Ask(21));
    }
    let (from, n) = replies.recv_timeout(PATIENCE).unwrap();
    assert_eq!((from, n), (answerer, 42));
}

#[test]
fn messages_between_two_processes_keep_their_order_under_load() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (sender, _) = inbox(&a, None);
    let (receiver, received) = inbox(&b, None);
    let count = 20_000;
    {
        let _entered = a.enter();
        for i in 0..count {
            procession::post(&sender, &receiver, Note(i));
        }
    }
    for expected in 0..count {
        let (from, n) = received.recv_timeout(PATIENCE).unwrap();
        assert_eq!((&from, n), (&sender, expected));
    }
    assert!(counter(&a, "net.messages_out") >= count);
    assert!(counter(&b, "net.messages_in") >= count);
    assert!(counter(&a, "net.bytes_out") > 0);
}

#[test]
fn a_relay_through_three_nodes() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (c, _net_c) = node();
    let (end, received) = inbox(&c, None);
    let (middle, _) = inbox(&b, Some(end.clone()));
    let (start, _) = inbox(&a, Some(middle));
    {
        let _entered = a.enter();
        for i in 0..100 {
            send(&start, Note(i));
        }
    }
    let got: Vec<u64> = (0..100)
        .map(|_| received.recv_timeout(PATIENCE).unwrap().1)
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_linker_hears_when_a_remote_process_terminates() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let target = b.spawn(Inbox {
        notes: mpsc::channel().0,
        relay: None,
    });
    let notices = watch(&a, &target.upid());
    // The link must reach node b before the terminate does: a round trip proves it.
    let (probe, replies) = inbox(&a, None);
    {
        let _entered = a.enter();
        procession::post(&probe, &target.upid(), Ask(1));
    }
    replies.recv_timeout(PATIENCE).unwrap();
    terminate(&target);
    let (upid, reason) = notices.recv_timeout(PATIENCE).unwrap();
    assert_eq!((upid, reason), (target.upid(), ExitReason::Normal));
}

#[test]
fn a_monitor_of_a_remote_process_that_never_existed_answers_not_found() {
    let (a, _net_a) = node();
    let (b, net_b) = node();
    let ghost: Upid = format!("ghost@{}", net_b.address()).parse().unwrap();
    let _entered = a.enter();
    let reason = a.block_on(monitor(&ghost)).unwrap();
    assert_eq!(reason, ExitReason::NotFound);
    drop(b);
}

#[test]
fn linkers_hear_lost_when_the_remote_node_goes_away() {
    let (a, _net_a) = node();
    let (b, net_b) = node();
    let (target, _) = inbox(&b, None);
    let notices = watch(&a, &target);
    let (probe, replies) = inbox(&a, None);
    {
        let _entered = a.enter();
        procession::post(&probe, &target, Ask(1));
    }
    replies.recv_timeout(PATIENCE).unwrap();
    net_b.shutdown();
    b.shutdown();
    let (upid, reason) = notices.recv_timeout(PATIENCE).unwrap();
    assert_eq!(upid, target);
    assert!(
        matches!(reason, ExitReason::Lost | ExitReason::Normal),
        "the node's shutdown ends the process ({reason:?}) or loses the node"
    );
}

#[test]
fn an_unreachable_node_reports_lost_and_counts_the_drops() {
    let (a, _net_a) = node();
    // A port nothing listens on: bind one, note it, close it.
    let closed: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nobody: Upid = format!("nobody@{closed}").parse().unwrap();
    let _entered = a.enter();
    let lost = monitor(&nobody);
    send(&nobody, Note(1));
    assert_eq!(a.block_on(lost).unwrap(), ExitReason::Lost);
}

#[test]
fn a_send_after_the_peer_restarts_reconnects() {
    let (a, _net_a) = node();
    let (sender, _) = inbox(&a, None);
    let address = {
        let (b, net_b) = node();
        let (first, received) = inbox(&b, None);
        {
            let _entered = a.enter();
            procession::post(&sender, &first, Note(1));
        }
        assert_eq!(received.recv_timeout(PATIENCE).unwrap().1, 1);
        let address = net_b.address();
        net_b.shutdown();
        b.shutdown();
        address
    };
    // The same address, a new node: the old connection is dead, the next send reconnects.
    let b = Runtime::new();
    let _net_b = Net::builder().listen(address).start(&b).unwrap();
    let (second, received) = inbox(&b, None);
    let _entered = a.enter();
    let mut delivered = None;
    for attempt in 0..200 {
        procession::post(&sender, &second, Note(attempt));
        if let Ok((_, n)) = received.recv_timeout(Duration::from_millis(100)) {
            delivered = Some(n);
            break;
        }
    }
    assert!(delivered.is_some(), "no message reached the restarted node");
}

#[test]
fn dispatch_answers_stay_local_while_messages_cross() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (remote, received) = inbox(&b, None);
    let local = a.spawn(Inbox {
        notes: mpsc::channel().0,
        relay: Some(remote),
    });
    let answer = dispatch(&local, |me: &mut Inbox| {
        send(me.relay.as_ref().unwrap(), Note(7));
        "sent"
    });
    assert_eq!(a.block_on(answer).unwrap(), "sent");
    assert_eq!(received.recv_timeout(PATIENCE).unwrap().1, 7);
}

#[test]
fn peers_with_the_shared_secret_talk_and_others_are_refused() {
    let secure = |secret: &str| {
        let runtime = Runtime::new();
        let net = Net::builder().secret(secret).start(&runtime).unwrap();
        (runtime, net)
    };
    let (a, _net_a) = secure("sesame");
    let (b, _net_b) = secure("sesame");
    let (c, _net_c) = secure("guess");
    let (target, received) = inbox(&b, None);
    {
        let _entered = a.enter();
        send(&target, Note(1));
    }
    assert_eq!(received.recv_timeout(PATIENCE).unwrap().1, 1);
    let _entered = c.enter();
    let refused = monitor(&target);
    send(&target, Note(2));
    assert_eq!(c.block_on(refused).unwrap(), ExitReason::Lost);
    assert!(received.recv_timeout(Duration::from_millis(200)).is_err());
    assert!(counter(&b, "net.dropped.unauthenticated") >= 1);
}

#[test]
fn a_peer_that_never_reads_cannot_grow_the_senders_memory() {
    // Accepts and never reads: the kernel buffers fill, then the transport's queue.
    let (runtime, _net, silent) = node_and_silent_peer();
    let target = silent.sink.clone();
    let _entered = runtime.enter();
    let body = "x".repeat(1000);
    #[derive(Serialize, Deserialize)]
    struct Blob(String);
    impl Message for Blob {
        const NAME: &'static str = "net-test::Blob";
    }
    const BLOBS: u64 = 20_000;
    for _ in 0..BLOBS {
        send(&target, Blob(body.clone()));
    }
    let dropped = counter(&runtime, "net.dropped.peer_full");
    assert!(
        dropped > 0,
        "20 MB sent to a peer that reads nothing must overflow a 64 KiB queue"
    );
    // A dropped message leaves nothing on the connection: the peer, reading at last, gets
    // exactly the others, whole.
    let frames = silent.frames();
    for _ in 0..BLOBS - dropped {
        let frame = frames.recv_timeout(PATIENCE).unwrap();
        let blob: Blob = procession::message::decode(&frame.body).unwrap();
        assert_eq!(blob.0.len(), 1000);
    }
    assert!(
        frames.recv_timeout(Duration::from_millis(200)).is_err(),
        "no more than were kept"
    );
}

/// A message whose `Serialize` always fails.
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this message refuses to be encoded",
        ))
    }
}

impl<'de> Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("never sent"))
    }
}

impl Message for Unencodable {
    const NAME: &'static str = "net-test::Unencodable";
}

#[test]
fn a_message_that_cannot_be_encoded_is_dropped_and_counted_and_the_next_one_goes() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (target, notes) = inbox(&b, None);
    {
        let _entered = a.enter();
        send(&target, Unencodable);
        send(&target, Note(7));
    }
    assert_eq!(notes.recv_timeout(PATIENCE).unwrap().1, 7);
    assert_eq!(counter(&a, "net.dropped.malformed"), 1);
    assert_eq!(
        counter(&b, "runtime.messages_dropped"),
        0,
        "nothing half-sent"
    );
}

/// Links to `target`, then reports each `Note` and, last, the exit notice (`None`), in the order
/// they reach it.
struct Ordered {
    target: Upid,
    events: mpsc::Sender<Option<u64>>,
}

impl Process for Ordered {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        procession::link(&self.target);
        ctx.install(|me: &mut Self, _: &Upid, Note(n)| {
            let _ = me.events.send(Some(n));
        })
        .unwrap();
        ctx.install(|_: &mut Self, from: &Upid, Ask(n)| send(from, Note(n)))
            .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, _: &Upid, _: &ExitReason) {
        let _ = self.events.send(None);
    }
}

/// Two nodes: on `a` a `sender` (an idle [`Inbox`]), on the other an [`Ordered`] linked to it,
/// whose reports arrive on `received`.
struct OrderedPair {
    a: Runtime,
    _b: Runtime,
    _nets: (Net, Net),
    sender: procession::Pid<Inbox>,
    ordered: procession::Pid<Ordered>,
    received: mpsc::Receiver<Option<u64>>,
}

impl OrderedPair {
    fn new() -> Self {
        let (a, net_a) = node();
        let (b, net_b) = node();
        let sender = a.spawn(Inbox {
            notes: mpsc::channel().0,
            relay: None,
        });
        let (events, received) = mpsc::channel();
        let ordered = b.spawn(Ordered {
            target: sender.upid(),
            events,
        });
        OrderedPair {
            a,
            _b: b,
            _nets: (net_a, net_b),
            sender,
            ordered,
            received,
        }
    }
}

#[test]
fn messages_a_process_sent_before_it_ended_arrive_before_its_exit_notice() {
    const NOTES: u64 = 5_000;
    let pair = OrderedPair::new();
    let (a, sender, ordered, received) = (&pair.a, &pair.sender, &pair.ordered, &pair.received);
    // The link travels on the connection ahead of this round trip, so it is in place after it.
    let (probe, replies) = inbox(a, None);
    {
        let _entered = a.enter();
        procession::post(&probe, &ordered.upid(), Ask(0));
    }
    replies.recv_timeout(PATIENCE).unwrap();
    // The notes leave in a burst and are read in batches; the exit notice follows them on the
    // same connection and must not overtake the batch it arrives behind.
    {
        let _entered = a.enter();
        for n in 0..NOTES {
            procession::post(&sender.upid(), &ordered.upid(), Note(n));
        }
    }
    terminate(sender);
    let got: Vec<Option<u64>> = (0..=NOTES)
        .map(|_| received.recv_timeout(PATIENCE).unwrap())
        .collect();
    let expected: Vec<Option<u64>> = (0..NOTES).map(Some).chain([None]).collect();
    assert_eq!(got, expected);
}

#[test]
fn what_a_handler_sent_before_its_process_ended_arrives_before_its_exit_notice() {
    const NOTES: u64 = 3_000;
    let pair = OrderedPair::new();
    let (a, sender, ordered, received) = (&pair.a, &pair.sender, &pair.ordered, &pair.received);
    // A first note from the handler, seen arriving: the link, sent before it, is in place.
    let to = ordered.upid();
    let first = to.clone();
    a.block_on(dispatch(sender, move |_: &mut Inbox| send(&first, Note(0))))
        .unwrap();
    assert_eq!(received.recv_timeout(PATIENCE).unwrap(), Some(0));
    // One handler sends the rest and ends its process: the notes are held (see `held`) until
    // it returns, and the exit notice must not overtake them.
    let me = sender.upid();
    let _ = dispatch(sender, move |_: &mut Inbox| {
        for n in 1..NOTES {
            send(&to, Note(n));
        }
        terminate_now(&me);
    });
    let got: Vec<Option<u64>> = (1..=NOTES)
        .map(|_| received.recv_timeout(PATIENCE).unwrap())
        .collect();
    let expected: Vec<Option<u64>> = (1..NOTES).map(Some).chain([None]).collect();
    assert_eq!(got, expected);
}

#[derive(Serialize, Deserialize, Message)]
struct Double(u64);
impl procession::request::Request for Double {
    type Response = u64;
}

/// Answers `Double(n)` with `2 n` and reports each `n` it was asked.
struct Doubler {
    asked: mpsc::Sender<u64>,
}

impl Process for Doubler {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install_request(|me: &mut Self, _: &Upid, Double(n)| {
            let _ = me.asked.send(n);
            n * 2
        })
        .unwrap();
    }
}

#[test]
fn requests_cross_nodes_and_a_lost_node_abandons_them() {
    let (a, _net_a) = node();
    let (b, net_b) = node();
    let (asked, asked_rx) = mpsc::channel();
    let doubler = b.spawn(Doubler { asked }).upid();
    let _entered = a.enter();
    let answers: Vec<_> = (1..=50)
        .map(|n| procession::request::request(&doubler, Double(n)))
        .collect();
    for (n, answer) in (1..=50).zip(&answers) {
        assert_eq!(a.block_on(answer.clone()).unwrap(), n * 2);
    }
    assert_eq!(asked_rx.try_iter().count(), 50);
    // A process the other node never had: abandoned once that node says so.
    let ghost: Upid = format!("ghost@{}", net_b.address()).parse().unwrap();
    let never = procession::request::request(&ghost, Double(1));
    assert!(never.wait_for(PATIENCE));
    assert!(never.is_abandoned(), "{never:?}");
    // The node goes away: what was asked of it is abandoned.
    net_b.shutdown();
    b.shutdown();
    let lost = procession::request::request(&doubler, Double(3));
    assert!(lost.wait_for(PATIENCE));
    assert!(lost.is_abandoned(), "{lost:?}");
}

#[test]
fn across_nodes_a_request_and_a_plain_message_of_one_type_never_meet_each_others_handler() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (asked, asked_rx) = mpsc::channel();
    let doubler = b.spawn(Doubler { asked }).upid();
    struct Plain(mpsc::Sender<u64>);
    impl Process for Plain {
        fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
            ctx.install(|me: &mut Self, _: &Upid, Double(n)| {
                let _ = me.0.send(n);
            })
            .unwrap();
        }
    }
    let (plain_tx, plain_rx) = mpsc::channel();
    let plain = b.spawn(Plain(plain_tx)).upid();
    let dropped = b.stats().dropped_messages;
    let _entered = a.enter();
    let unanswered = procession::request::request(&plain, Double(1));
    send(&doubler, Double(2));
    // Read as a request with id 3 and items [5, 7], its encoding would fit a request's.
    let summer = b.spawn(Summer).upid();
    send(&summer, Sum(vec![2, 5, 7]));
    send(&plain, Double(3));
    // Each kind still reaches its own handler, after those that must not.
    assert_eq!(plain_rx.recv_timeout(PATIENCE).unwrap(), 3);
    let answer = procession::request::request(&doubler, Double(4));
    assert_eq!(a.block_on(answer).unwrap(), 8);
    let sum = procession::request::request(&summer, Sum(vec![1, 2]));
    assert_eq!(a.block_on(sum).unwrap(), 3);
    assert_eq!(asked_rx.try_iter().collect::<Vec<_>>(), [4]);
    assert_eq!(plain_rx.try_iter().count(), 0);
    assert!(unanswered.is_pending());
    assert_eq!(b.stats().dropped_messages, dropped + 3);
}

#[derive(Serialize, Deserialize, Message)]
struct Sum(Vec<u64>);
impl procession::request::Request for Sum {
    type Response = u64;
}

/// Answers `Sum` requests.
struct Summer;
impl Process for Summer {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install_request(|_: &mut Self, _: &Upid, Sum(items)| items.iter().sum())
            .unwrap();
    }
}

/// A message whose `Serialize` panics.
struct Explosive;

impl Serialize for Explosive {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("this message's Serialize panics")
    }
}

impl<'de> Deserialize<'de> for Explosive {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("never sent"))
    }
}

impl Message for Explosive {
    const NAME: &'static str = "net-test::Explosive";
}

#[test]
fn a_panic_while_encoding_leaves_the_connection_whole() {
    let (a, _net_a) = node();
    let (b, _net_b) = node();
    let (target, notes) = inbox(&b, None);
    // A link through the connection: a broken connection would report it lost.
    let notices = watch(&a, &target);
    let send_from_a = |message: Note| {
        let _entered = a.enter();
        send(&target, message);
    };
    send_from_a(Note(1));
    assert_eq!(notes.recv_timeout(PATIENCE).unwrap().1, 1);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _entered = a.enter();
        send(&target, Explosive);
    }));
    assert!(panicked.is_err(), "the sender sees its own panic");
    send_from_a(Note(2));
    assert_eq!(notes.recv_timeout(PATIENCE).unwrap().1, 2);
    assert!(
        notices.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing reported lost: no half-written frame reached the peer"
    );
}
