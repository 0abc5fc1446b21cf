//! Bounded mailboxes: each sender's choice at the bound (drop, refuse, wait), memory that stays
//! bounded under a producer far faster than its consumer, and no deadlock when full mailboxes
//! point at each other.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use procession::{
    cast, cast_wait, dispatch, loop_, send, terminate, try_cast, wait, Context, Future, Message,
    Pid, Process, Runtime, SpawnError, SpawnOptions, Upid,
};

#[derive(Default)]
struct Sink {
    seen: u64,
}

impl Process for Sink {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|s: &mut Self, _: &Upid, Note| s.seen += 1)
            .unwrap();
    }
}

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Note;

fn bounded(rt: &Runtime, capacity: usize) -> Pid<Sink> {
    let sink = rt
        .spawn_with(Sink::default(), SpawnOptions::new().bounded(capacity))
        .unwrap();
    // Let `initialize` run so the mailbox starts empty.
    rt.block_on(dispatch(&sink, |_: &mut Sink| ())).unwrap();
    sink
}

fn seen(rt: &Runtime, sink: &Pid<Sink>) -> u64 {
    rt.block_on(dispatch(sink, |s: &mut Sink| s.seen)).unwrap()
}

#[test]
fn a_zero_capacity_is_refused() {
    let rt = Runtime::new();
    let refused = rt.spawn_with(Sink::default(), SpawnOptions::new().bounded(0));
    assert_eq!(refused.unwrap_err(), SpawnError::ZeroCapacity);
}

#[test]
fn at_the_bound_cast_drops_try_cast_refuses_and_messages_drop() {
    // Deterministic: nothing runs until the test drives it, so the mailbox fills as sent.
    let rt = Runtime::builder().deterministic(3).build().unwrap();
    let sink = bounded(&rt, 2);
    assert!(cast(&sink, |s: &mut Sink| s.seen += 1));
    assert!(try_cast(&sink, |s: &mut Sink| s.seen += 1).is_ok());
    assert!(!cast(&sink, |s: &mut Sink| s.seen += 100), "full: dropped");
    let refused = try_cast(&sink, |s: &mut Sink| s.seen += 1000).unwrap_err();
    assert!(refused.is_full());
    {
        let _entered = rt.enter();
        send(&sink.upid(), Note);
    }
    assert_eq!(rt.stats().dropped_at_bound, 2, "the cast and the message");
    assert_eq!(seen(&rt, &sink), 2);
    // The refused closure came back intact: retry it now that there is room.
    assert!(try_cast(&sink, refused.into_inner()).is_ok());
    assert_eq!(seen(&rt, &sink), 1002);
}

#[test]
fn at_the_bound_cast_wait_and_dispatch_wait_their_turn_in_order() {
    let rt = Runtime::builder().deterministic(4).build().unwrap();
    let sink = bounded(&rt, 1);
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let log = |n: u32| {
        let order = order.clone();
        move |_: &mut Sink| order.lock().push(n)
    };
    let first = cast_wait(&sink, log(1));
    let second = cast_wait(&sink, log(2));
    let third = dispatch(&sink, log(3));
    assert!(first.is_ready(), "there was room");
    assert!(second.is_pending() && third.is_pending(), "full: they wait");
    rt.block_on(third).unwrap();
    assert!(second.is_ready());
    assert_eq!(*order.lock(), [1, 2, 3], "the line keeps its order");
}

#[test]
fn waiting_senders_are_abandoned_when_the_process_ends() {
    let rt = Runtime::builder().deterministic(5).build().unwrap();
    let sink = bounded(&rt, 1);
    assert!(cast(&sink, |_: &mut Sink| ()));
    let moved_in = cast_wait(&sink, |_: &mut Sink| ());
    let still_waiting = cast_wait(&sink, |_: &mut Sink| ());
    let waiting_dispatch = dispatch(&sink, |s: &mut Sink| s.seen);
    procession::terminate_now(&sink);
    rt.block_on(wait(&sink)).unwrap();
    // The visit that found the terminate first took the queue, making room for one.
    assert!(
        moved_in.is_ready(),
        "queued (then dropped by the terminate)"
    );
    assert!(still_waiting.is_abandoned());
    assert!(waiting_dispatch.is_abandoned());
    assert!(
        cast_wait(&sink, |_: &mut Sink| ()).is_abandoned(),
        "gone: abandoned at once"
    );
}

rt_test!(a_fast_producer_stays_within_the_bound, |flavor, rt| {
    const CAPACITY: u64 = 8;
    let total = support::scaled(20_000) as u64;
    let sink = bounded(rt, CAPACITY as usize);
    let queued = Arc::new(AtomicU64::new(0));
    let worst = Arc::new(AtomicU64::new(0));
    // The producer offers the next event as soon as the last one is queued (far faster than the
    // consumer, which does work per event); the consumer checks how many offers are ahead of it.
    let mut sent = 0;
    let (q, w) = (queued.clone(), worst.clone());
    let target = sink.clone();
    let produced = loop_(
        move || {
            sent += 1;
            let n = sent;
            let (seen_by, worst_by) = (q.clone(), w.clone());
            q.fetch_add(1, Ordering::SeqCst);
            let offered = cast_wait(&target, move |s: &mut Sink| {
                s.seen += 1;
                let behind = seen_by.load(Ordering::SeqCst) - s.seen;
                worst_by.fetch_max(behind, Ordering::SeqCst);
                std::hint::black_box((0..100).sum::<u64>());
            });
            offered.map(move |_| n)
        },
        move |&n| {
            Future::ready(if n == total {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            })
        },
    );
    rt.block_on(produced).unwrap();
    assert_eq!(seen(rt, &sink), total);
    // Offered but not yet run, never more than: the batch the runner took (at most a full
    // queue), the queue refilled behind it, and the one offer waiting for room.
    assert!(
        worst.load(Ordering::SeqCst) <= 2 * CAPACITY + 1,
        "{flavor}: {} events were waiting",
        worst.load(Ordering::SeqCst)
    );
    assert_eq!(rt.stats().dropped_at_bound, 0);
});

/// Casts to itself, waiting for room each time: a full mailbox must not stall it.
struct SelfFeeder {
    me: Option<Pid<SelfFeeder>>,
    left: u32,
    done: Option<procession::Promise<()>>,
}

impl Process for SelfFeeder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
    }
}

impl SelfFeeder {
    fn step(&mut self) {
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                done.set(());
            }
            return;
        }
        self.left -= 1;
        let me = self.me.clone().unwrap();
        // Two offers per step into a mailbox of one: the second always meets the bound.
        let _ = cast_wait(&me, |_: &mut SelfFeeder| ());
        let _ = cast_wait(&me, |s: &mut SelfFeeder| s.step());
    }
}

rt_test!(
    a_process_casting_to_its_own_full_mailbox_does_not_deadlock,
    |flavor, rt| {
        let done = procession::Promise::new();
        let finished = done.future();
        let feeder = rt
            .spawn_with(
                SelfFeeder {
                    me: None,
                    left: 1_000,
                    done: Some(done),
                },
                SpawnOptions::new().bounded(1),
            )
            .unwrap();
        let _ = cast(&feeder, |s: &mut SelfFeeder| s.step());
        rt.block_on(finished).unwrap();
        terminate(&feeder);
        rt.block_on(wait(&feeder)).unwrap();
    }
);

/// Two processes flooding each other's mailbox of one.
struct Peer {
    other: Option<Pid<Peer>>,
    left: u32,
    done: Option<procession::Promise<()>>,
}

impl Process for Peer {}

impl Peer {
    fn volley(&mut self) {
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                done.set(());
            }
            return;
        }
        self.left -= 1;
        let other = self.other.clone().unwrap();
        let _ = cast_wait(&other, |_: &mut Peer| ());
        let _ = cast_wait(&other, |p: &mut Peer| p.volley());
    }
}

rt_test!(
    two_processes_flooding_each_other_do_not_deadlock,
    |flavor, rt| {
        let options = || SpawnOptions::new().bounded(1);
        let done = procession::Promise::new();
        let finished = done.future();
        let a = rt
            .spawn_with(
                Peer {
                    other: None,
                    left: 500,
                    done: Some(done),
                },
                options(),
            )
            .unwrap();
        let b = rt
            .spawn_with(
                Peer {
                    other: Some(a.clone()),
                    left: 500,
                    done: None,
                },
                options(),
            )
            .unwrap();
        let to_b = b.clone();
        rt.block_on(dispatch(&a, move |p: &mut Peer| p.other = Some(to_b)))
            .unwrap();
        let _ = cast(&a, |p: &mut Peer| p.volley());
        rt.block_on(finished).unwrap();
    }
);

rt_test!(
    a_fast_producer_that_drops_or_is_refused_loses_nothing_silently,
    |flavor, rt| {
        const CAPACITY: usize = 4;
        let sink = bounded(rt, CAPACITY);
        let offers = support::scaled(10_000) as u64;
        // The producer is a process too, so in every flavour it offers far faster than the sink
        // (one event of the producer makes many offers).
        struct Producer;
        impl Process for Producer {}
        let producer = rt.spawn(Producer);
        let target = sink.clone();
        let (queued, refused) = rt
            .block_on(dispatch(&producer, move |_: &mut Producer| {
                let (mut queued, mut refused) = (0u64, 0u64);
                for i in 0..offers {
                    // The sink does real work per event: it cannot keep up.
                    let slow = |s: &mut Sink| {
                        s.seen += 1;
                        std::hint::black_box((0..2_000u64).sum::<u64>());
                    };
                    let ok = match i % 2 {
                        0 => cast(&target, slow),
                        _ => try_cast(&target, slow).is_ok(),
                    };
                    if ok {
                        queued += 1;
                    } else {
                        refused += 1;
                    }
                }
                (queued, refused)
            }))
            .unwrap();
        assert_eq!(queued + refused, offers);
        assert!(refused > 0, "{flavor}: the bound was met");
        assert_eq!(seen(rt, &sink), queued, "every queued event ran, no other");
        assert!(
            rt.stats().dropped_at_bound <= refused,
            "casts counted, try_casts handed back"
        );
    }
);
