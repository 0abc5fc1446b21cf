//! A transport's run of messages (`Inbound::deliver_run`): one event for many, which must change
//! nothing a process can see: order, drops, bounds, filters, an injected terminate, a panic,
//! and zero-copy `Bytes` fields.

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use procession::message::{encode, shared_bytes};
use procession::{
    dispatch, terminate_now, wait, Context, EventView, ExitReason, Filter, InboundRun, Message,
    MessageBody, Pid, Process, Runtime, SpawnOptions, Upid, Verdict,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Item {
    n: u32,
    #[serde(with = "shared_bytes")]
    body: Bytes,
}
impl Message for Item {
    const NAME: &'static str = "tests::Item";
}

/// The items a sink handled: their numbers and bodies.
type Seen = Arc<Mutex<Vec<(u32, Bytes)>>>;

/// Records every item it handles; ends itself (injected) at `stop_at`, panics at `panic_at`.
#[derive(Default)]
struct Sink {
    me: Option<Upid>,
    seen: Seen,
    stop_at: Option<u32>,
    panic_at: Option<u32>,
}

impl Process for Sink {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.upid());
        ctx.install(|me: &mut Self, _from: &Upid, item: Item| {
            assert_ne!(Some(item.n), me.panic_at, "told to panic");
            me.seen.lock().push((item.n, item.body));
            if Some(item.n) == me.stop_at {
                terminate_now(me.me.as_ref().unwrap());
            }
        })
        .unwrap();
    }
}

fn sink(rt: &Runtime, sink: Sink, options: SpawnOptions) -> (Pid<Sink>, Seen) {
    let seen = sink.seen.clone();
    (rt.spawn_with(sink, options).unwrap(), seen)
}

fn numbers(seen: &Mutex<Vec<(u32, Bytes)>>) -> Vec<u32> {
    seen.lock().iter().map(|(n, _)| *n).collect()
}

fn master() -> Upid {
    Upid::new("master", "10.0.0.1:5050".parse::<SocketAddr>().unwrap())
}

/// Items `numbers`, each with a body of `body` bytes, encoded one after another in one buffer
/// with three bytes of something else (a frame header, say) before each.
fn run_of(numbers: Range<u32>, body: usize) -> InboundRun {
    let (bytes, bodies) = encoded(numbers, body);
    InboundRun::new(master(), Item::NAME.into(), bytes, bodies).unwrap()
}

/// The buffer of [`run_of`] and the ranges of its items.
fn encoded(numbers: Range<u32>, body: usize) -> (Bytes, Vec<Range<usize>>) {
    let mut bytes = BytesMut::new();
    let mut bodies = Vec::new();
    for n in numbers {
        bytes.extend_from_slice(b"hdr");
        let item = Item {
            n,
            body: Bytes::from(vec![n as u8; body]),
        };
        let start = bytes.len();
        bytes.extend_from_slice(&encode(&item).unwrap());
        bodies.push(start..bytes.len());
    }
    (bytes.freeze(), bodies)
}

fn settle(rt: &Runtime) {
    support::pause_and_settle(rt);
}

rt_test!(
    a_run_keeps_the_order_and_drops_what_it_cannot_deliver,
    |_flavor, rt| {
        let (bob, seen) = sink(rt, Sink::default(), SpawnOptions::new());
        let inbound = rt.inbound();
        inbound.deliver_run(&bob.upid(), run_of(0..100, 8));
        inbound.deliver_run(&bob.upid(), run_of(100..101, 8));
        let nobody = Upid::new("nobody", bob.upid().address());
        inbound.deliver_run(&nobody, run_of(0..3, 8));
        let elsewhere = Upid::new(bob.upid().id(), "10.0.0.2:1".parse::<SocketAddr>().unwrap());
        inbound.deliver_run(&elsewhere, run_of(0..4, 8));
        settle(rt);
        assert_eq!(numbers(&seen), (0..101).collect::<Vec<_>>());
        assert!(seen
            .lock()
            .iter()
            .all(|(n, body)| *body == vec![*n as u8; 8]));
        let stats = rt.stats();
        assert_eq!(
            stats.dropped_messages, 7,
            "an unknown receiver, one of another node"
        );
    }
);

#[test]
fn a_run_with_a_body_outside_its_bytes_is_refused() {
    let bytes = Bytes::from_static(b"0123456789");
    let new =
        |bodies: Vec<Range<usize>>| InboundRun::new(master(), "x".into(), bytes.clone(), bodies);
    assert!(new(vec![0..10, 3..4]).is_some());
    assert!(new(vec![0..2, 0..11]).is_none(), "past the end");
    assert!(
        new(vec![0..2, 11..11]).is_none(),
        "an empty range past the end"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = vec![0..2, 5..3];
    assert!(new(reversed).is_none(), "reversed");
    let empty = new(Vec::new()).unwrap();
    assert!(empty.is_empty());
    let rt = Runtime::builder().deterministic(1).build().unwrap();
    let (bob, seen) = sink(&rt, Sink::default(), SpawnOptions::new());
    rt.inbound().deliver_run(&bob.upid(), empty);
    settle(&rt);
    assert!(seen.lock().is_empty());
    assert_eq!(rt.stats().dropped_messages, 0);
}

rt_test!(
    a_bounded_mailbox_meets_each_message_of_a_run,
    |flavor, rt| {
        let (bob, seen) = sink(rt, Sink::default(), SpawnOptions::new().bounded(3));
        // The process is kept busy (threaded flavours) or not run at all (deterministic) while the
        // run arrives, so its mailbox holds what the bound lets in.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        if !flavor.is_deterministic() {
            let (started, running) = std::sync::mpsc::channel();
            let _ = dispatch(&bob, move |_: &mut Sink| {
                started.send(()).unwrap();
                let _ = gate.recv();
            });
            running.recv().unwrap();
        }
        rt.inbound().deliver_run(&bob.upid(), run_of(0..10, 8));
        drop(release);
        settle(rt);
        assert_eq!(numbers(&seen), [0, 1, 2]);
        let stats = rt.stats();
        assert_eq!(stats.dropped_at_bound, 7);
        assert_eq!(stats.dropped_messages, 7);
    }
);

rt_test!(
    an_injected_terminate_stops_a_run_between_two_messages,
    |_flavor, rt| {
        let stopping = Sink {
            stop_at: Some(5),
            ..Sink::default()
        };
        let (bob, seen) = sink(rt, stopping, SpawnOptions::new());
        rt.inbound().deliver_run(&bob.upid(), run_of(0..20, 8));
        settle(rt);
        rt.block_on(wait(&bob)).unwrap();
        assert_eq!(numbers(&seen), (0..=5).collect::<Vec<_>>());
    }
);

rt_test!(
    a_panic_in_a_run_ends_the_process_and_the_run,
    |_flavor, rt| {
        support::quiet_expected_panics();
        let panicking = Sink {
            panic_at: Some(3),
            ..Sink::default()
        };
        let (bob, seen) = sink(rt, panicking, SpawnOptions::new());
        let ended = procession::monitor(&bob);
        rt.inbound().deliver_run(&bob.upid(), run_of(0..10, 8));
        settle(rt);
        let reason = rt.block_on(ended).unwrap();
        assert!(matches!(reason, ExitReason::Panicked(_)), "{reason:?}");
        assert_eq!(numbers(&seen), [0, 1, 2]);
    }
);

/// Drops the items whose number is odd, reading each from its encoded body.
struct DropOdd;

impl Filter for DropOdd {
    fn filter(&self, event: &EventView<'_>) -> Verdict {
        match event {
            EventView::Message {
                body: MessageBody::Encoded(bytes),
                ..
            } => {
                let item: Item = procession::message::decode(bytes).unwrap();
                match item.n % 2 {
                    1 => Verdict::Drop,
                    _ => Verdict::Deliver,
                }
            }
            _ => Verdict::Deliver,
        }
    }
}

rt_test!(a_filter_sees_each_message_of_a_run, |_flavor, rt| {
    let (bob, seen) = sink(rt, Sink::default(), SpawnOptions::new());
    rt.set_filter(Some(Arc::new(DropOdd)));
    rt.inbound().deliver_run(&bob.upid(), run_of(0..10, 8));
    settle(rt);
    rt.set_filter(None);
    assert_eq!(numbers(&seen), [0, 2, 4, 6, 8]);
    assert_eq!(rt.stats().dropped_messages, 5);
});

rt_test!(
    a_long_bytes_field_of_a_run_is_a_slice_of_its_buffer,
    |_flavor, rt| {
        let (bob, seen) = sink(rt, Sink::default(), SpawnOptions::new());
        let (bytes, bodies) = encoded(0..3, 2 * shared_bytes::SHARED_FROM);
        let whole = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
        let run = InboundRun::new(master(), Item::NAME.into(), bytes, bodies).unwrap();
        rt.inbound().deliver_run(&bob.upid(), run);
        settle(rt);
        let seen = seen.lock();
        assert_eq!(seen.len(), 3);
        for (n, body) in seen.iter() {
            assert_eq!(*body, vec![*n as u8; 2 * shared_bytes::SHARED_FROM]);
            let inside = whole.start <= body.as_ptr() as usize
                && body.as_ptr() as usize + body.len() <= whole.end;
            assert!(inside, "item {n} was copied, not shared");
        }
    }
);

#[test]
fn a_queued_run_counts_as_its_messages_in_the_mailbox_depth() {
    // The deterministic runtime runs nothing until driven: the run waits in the mailbox.
    let rt = Runtime::builder().deterministic(1).build().unwrap();
    let (bob, seen) = sink(&rt, Sink::default(), SpawnOptions::new());
    settle(&rt);
    rt.inbound().deliver_run(&bob.upid(), run_of(0..10, 8));
    let depth = |name: &str| {
        let snapshot = rt.metrics().snapshot();
        snapshot.get(name).and_then(|value| value.as_gauge())
    };
    assert_eq!(depth("runtime.queued_events"), Some(10));
    assert_eq!(
        depth(&format!("runtime.queue_depth.{}", bob.upid().id())),
        Some(10)
    );
    settle(&rt);
    assert_eq!(seen.lock().len(), 10);
    assert_eq!(depth("runtime.queued_events"), Some(0));
}
