//! Local messages: handlers with the sender's Upid, replies, drops counted, spoofing, order, and
//! the transport seam (a recording fake `Transport` and `Inbound`).

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::{
    dispatch, link, post, send, terminate, wait, Context, ExitReason, InstallError, Message,
    Outgoing, Pid, Process, Runtime, Transport, Upid,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Ping {
    n: u32,
}
impl Message for Ping {
    const NAME: &'static str = "tests::Ping";
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Pong {
    n: u32,
}
impl Message for Pong {
    const NAME: &'static str = "tests::Pong";
}

#[derive(Serialize, Deserialize)]
struct Unhandled;
impl Message for Unhandled {
    const NAME: &'static str = "tests::Unhandled";
}

type Seen = Arc<Mutex<Vec<(Upid, u32)>>>;

/// Answers every Ping with a Pong to its sender; records pings, pongs and exits.
#[derive(Default)]
struct Peer {
    pings: Seen,
    pongs: Seen,
    exits: Arc<Mutex<Vec<(Upid, ExitReason)>>>,
    second_install: Option<Result<(), InstallError>>,
}

impl Process for Peer {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, ping: Ping| {
            me.pings.lock().push((from.clone(), ping.n));
            send(from, Pong { n: ping.n });
        })
        .unwrap();
        ctx.install(|me: &mut Self, from: &Upid, pong: Pong| {
            me.pongs.lock().push((from.clone(), pong.n));
        })
        .unwrap();
        self.second_install = Some(ctx.install(|_: &mut Self, _: &Upid, _: Ping| {}));
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.lock().push((upid.clone(), reason.clone()));
    }
}

fn peer(rt: &Runtime) -> (Pid<Peer>, Peer) {
    let state = Peer::default();
    let handles = Peer {
        pings: state.pings.clone(),
        pongs: state.pongs.clone(),
        exits: state.exits.clone(),
        second_install: None,
    };
    (rt.spawn(state), handles)
}

fn settle(rt: &Runtime) {
    support::pause_and_settle(rt);
}

rt_test!(a_handler_sees_the_sender_and_can_reply, |flavor, rt| {
    let (alice, alice_seen) = peer(rt);
    let (bob, bob_seen) = peer(rt);
    let to_bob = bob.upid();
    dispatch(&alice, move |_: &mut Peer| send(&to_bob, Ping { n: 7 }));
    settle(rt);
    assert_eq!(*bob_seen.pings.lock(), [(alice.upid(), 7)]);
    assert_eq!(*alice_seen.pongs.lock(), [(bob.upid(), 7)]);
    assert!(alice_seen.pings.lock().is_empty() && bob_seen.pongs.lock().is_empty());
    assert_eq!(rt.stats().dropped_messages, 0);
});

rt_test!(install_refuses_a_second_handler_for_a_name, |flavor, rt| {
    let (pid, _) = peer(rt);
    let second = rt
        .block_on(dispatch(&pid, |p: &mut Peer| p.second_install.clone()))
        .unwrap()
        .expect("initialize ran");
    let error = second.unwrap_err();
    assert!(error.to_string().contains("tests::Ping"), "{error}");
});

rt_test!(
    undeliverable_messages_are_dropped_and_counted,
    |flavor, rt| {
        let _entered = rt.enter();
        let (pid, seen) = peer(rt);
        send(&Upid::new("nobody", rt.address()), Ping { n: 1 });
        assert_eq!(rt.stats().dropped_messages, 1, "unknown id");
        send(&pid.upid(), Unhandled);
        send(&pid.upid(), Ping { n: 2 });
        settle(rt);
        assert_eq!(
            rt.stats().dropped_messages,
            3,
            "no handler; and the reply to anonymous"
        );
        assert_eq!(
            seen.pings.lock().len(),
            1,
            "the handler still works after a drop"
        );
        terminate(&pid);
        rt.block_on(wait(&pid)).unwrap();
        send(&pid.upid(), Ping { n: 3 });
        assert_eq!(rt.stats().dropped_messages, 4, "a gone receiver");
    }
);

rt_test!(post_spoofs_the_sender, |flavor, rt| {
    let _entered = rt.enter();
    let (alice, alice_seen) = peer(rt);
    let (bob, bob_seen) = peer(rt);
    post(&alice.upid(), &bob.upid(), Ping { n: 3 });
    let ghost: Upid = "ghost@10.9.8.7:6543".parse().unwrap();
    post(&ghost, &bob.upid(), Ping { n: 4 });
    settle(rt);
    assert_eq!(*bob_seen.pings.lock(), [(alice.upid(), 3), (ghost, 4)]);
    assert_eq!(
        *alice_seen.pongs.lock(),
        [(bob.upid(), 3)],
        "the reply went to alice"
    );
    assert_eq!(
        rt.stats().dropped_messages,
        1,
        "the reply to the ghost has no transport"
    );
});

rt_test!(messages_from_one_sender_arrive_in_order, |flavor, rt| {
    let _entered = rt.enter();
    let (alice, _) = peer(rt);
    let (bob, bob_seen) = peer(rt);
    let to_bob = bob.upid();
    dispatch(&alice, move |_: &mut Peer| {
        for n in 0..1_000 {
            send(&to_bob, Ping { n });
        }
    });
    for n in 1_000..2_000 {
        send(&bob.upid(), Ping { n });
    }
    settle(rt);
    let pings = bob_seen.pings.lock();
    assert_eq!(pings.len(), 2_000);
    let from_alice: Vec<u32> = pings
        .iter()
        .filter(|p| p.0 == alice.upid())
        .map(|p| p.1)
        .collect();
    let from_outside: Vec<u32> = pings
        .iter()
        .filter(|p| p.0 != alice.upid())
        .map(|p| p.1)
        .collect();
    assert!(
        from_alice == (0..1_000).collect::<Vec<_>>(),
        "alice's pings out of order"
    );
    assert!(
        from_outside == (1_000..2_000).collect::<Vec<_>>(),
        "outside pings out of order"
    );
    assert!(pings
        .iter()
        .filter(|p| p.0 != alice.upid())
        .all(|p| p.0.id() == "anonymous"));
});

/// A fake transport that records every call.
#[derive(Default)]
struct Recorder {
    sends: Mutex<Vec<(Upid, Upid, String, Bytes)>>,
    links: Mutex<Vec<(Upid, Upid)>>,
    exiteds: Mutex<Vec<(Upid, Upid, ExitReason)>>,
}

impl Transport for Recorder {
    fn send(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>) {
        let body = message.to_bytes().unwrap();
        let call = (from.clone(), to.clone(), message.name().to_owned(), body);
        self.sends.lock().push(call);
    }

    fn link(&self, linker: &Upid, to: &Upid) {
        self.links.lock().push((linker.clone(), to.clone()));
    }

    fn exited(&self, linker: &Upid, upid: &Upid, reason: &ExitReason) {
        let call = (linker.clone(), upid.clone(), reason.clone());
        self.exiteds.lock().push(call);
    }
}

fn encode<M: Message>(message: &M) -> Bytes {
    procession::message::encode(message).unwrap()
}

fn decode<M: Message>(bytes: &[u8]) -> M {
    procession::message::decode(bytes).unwrap()
}

const NODE: &str = "10.0.0.1:5050";

fn remote(id: &str, address: &str) -> Upid {
    Upid::new(id, address.parse::<SocketAddr>().unwrap())
}

rt_test!(a_transport_gets_remote_sends_and_links, |flavor, rt| {
    let transport = Arc::new(Recorder::default());
    rt.inbound().set_transport(transport.clone());
    let (alice, alice_seen) = peer(rt);
    let master = remote("master", NODE);
    let to = master.clone();
    rt.block_on(dispatch(&alice, move |_: &mut Peer| {
        send(&to, Ping { n: 5 });
        link(&to);
        link(&to);
    }))
    .unwrap();
    {
        let sends = transport.sends.lock();
        assert_eq!(sends.len(), 1);
        let (from, to, name, body) = &sends[0];
        assert_eq!(
            (from, to, name.as_str()),
            (&alice.upid(), &master, "tests::Ping")
        );
        assert_eq!(decode::<Ping>(body), Ping { n: 5 });
    }
    assert_eq!(
        *transport.links.lock(),
        [(alice.upid(), master.clone())],
        "one link request"
    );
    assert_eq!(rt.stats().dropped_messages, 0);

    // The remote end reports the exit: the local linker is told once.
    rt.inbound().exited(&master, &ExitReason::Normal);
    rt.inbound().exited(&master, &ExitReason::Normal);
    settle(rt);
    assert_eq!(*alice_seen.exits.lock(), [(master, ExitReason::Normal)]);
});

rt_test!(
    inbound_deliver_reaches_the_handler_and_bad_bytes_are_counted,
    |flavor, rt| {
        let transport = Arc::new(Recorder::default());
        rt.inbound().set_transport(transport.clone());
        let (bob, bob_seen) = peer(rt);
        let master = remote("master", NODE);
        let inbound = rt.inbound();
        inbound.deliver(
            master.clone(),
            &bob.upid(),
            Ping::NAME,
            encode(&Ping { n: 9 }),
        );
        settle(rt);
        assert_eq!(*bob_seen.pings.lock(), [(master.clone(), 9)]);
        // The reply to a remote sender goes out through the transport, encoded.
        let sends = transport.sends.lock().clone();
        assert_eq!(sends.len(), 1);
        assert_eq!((&sends[0].1, sends[0].2.as_str()), (&master, "tests::Pong"));
        assert_eq!(decode::<Pong>(&sends[0].3), Pong { n: 9 });

        let mut trailing = encode(&Ping { n: 1 }).to_vec();
        trailing.push(0);
        inbound.deliver(
            master.clone(),
            &bob.upid(),
            Ping::NAME,
            Bytes::from_static(&[0xff; 3]),
        );
        inbound.deliver(master.clone(), &bob.upid(), Ping::NAME, trailing.into());
        inbound.deliver(
            master.clone(),
            &bob.upid(),
            "tests::Nope",
            encode(&Ping { n: 2 }),
        );
        inbound.deliver(
            master.clone(),
            &remote("bob", "10.0.0.2:1"),
            Ping::NAME,
            encode(&Ping { n: 3 }),
        );
        settle(rt);
        assert_eq!(
            bob_seen.pings.lock().len(),
            1,
            "nothing undecodable reached the handler"
        );
        assert_eq!(
            rt.stats().dropped_messages,
            4,
            "garbage, trailing bytes, unknown name, a receiver that is not local"
        );
        assert_eq!(
            transport.sends.lock().len(),
            1,
            "inbound traffic is never forwarded"
        );
    }
);

rt_test!(peer_lost_tells_local_linkers_lost, |flavor, rt| {
    let transport = Arc::new(Recorder::default());
    rt.inbound().set_transport(transport.clone());
    let (alice, alice_seen) = peer(rt);
    let on_node = [remote("a", NODE), remote("b", NODE)];
    let elsewhere = remote("c", "10.0.0.2:5050");
    let targets: Vec<Upid> = on_node.iter().chain([&elsewhere]).cloned().collect();
    rt.block_on(dispatch(&alice, move |_: &mut Peer| {
        targets.iter().for_each(link)
    }))
    .unwrap();
    assert_eq!(transport.links.lock().len(), 3);
    rt.inbound().peer_lost(NODE.parse().unwrap());
    rt.inbound().peer_lost(NODE.parse().unwrap());
    settle(rt);
    let mut exits = alice_seen.exits.lock().clone();
    exits.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<_> = on_node
        .iter()
        .map(|u| (u.clone(), ExitReason::Lost))
        .collect();
    assert_eq!(
        exits, expected,
        "each link on the lost node, once; none elsewhere"
    );
});

rt_test!(
    a_remote_linker_is_told_through_the_transport,
    |flavor, rt| {
        let transport = Arc::new(Recorder::default());
        rt.inbound().set_transport(transport.clone());
        let (bob, _) = peer(rt);
        let watcher = remote("watcher", NODE);
        rt.inbound().link(watcher.clone(), &bob.upid());
        rt.inbound()
            .link(watcher.clone(), &Upid::new("gone", rt.address()));
        terminate(&bob);
        rt.block_on(wait(&bob)).unwrap();
        let exiteds = transport.exiteds.lock().clone();
        assert_eq!(
            exiteds,
            [
                (
                    watcher.clone(),
                    Upid::new("gone", rt.address()),
                    ExitReason::NotFound
                ),
                (watcher, bob.upid(), ExitReason::Normal),
            ]
        );
    }
);

rt_test!(
    without_a_transport_remote_sends_drop_and_links_report_lost,
    |flavor, rt| {
        let (alice, alice_seen) = peer(rt);
        let master = remote("master", NODE);
        let to = master.clone();
        rt.block_on(dispatch(&alice, move |_: &mut Peer| {
            send(&to, Ping { n: 1 });
            link(&to);
        }))
        .unwrap();
        settle(rt);
        assert_eq!(rt.stats().dropped_messages, 1);
        assert_eq!(*alice_seen.exits.lock(), [(master, ExitReason::Lost)]);
    }
);

#[test]
fn integers_and_lengths_travel_at_their_full_width() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Wide {
        small: u64,
        text: String,
    }
    impl Message for Wide {
        const NAME: &'static str = "tests::Wide";
    }
    let wide = Wide {
        small: 1,
        text: "ab".into(),
    };
    let bytes = encode(&wide);
    // 8 bytes of integer, 8 of length, 2 of text, little-endian: no variable-length integers.
    assert_eq!(&bytes[..], b"\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0ab");
    assert_eq!(decode::<Wide>(&bytes), wide);
}
