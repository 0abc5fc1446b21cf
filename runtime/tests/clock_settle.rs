//! `Clock::settle`: returns exactly when the runtime has nothing left to do at the paused time.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use procession::{
    after, defer, delay, dispatch, run_blocking, spawn_async, Clock, Future, Pid, Process, Promise,
    Runtime,
};

/// Bounces a ball to its peer until the ball's count runs out.
struct Player {
    peer: Option<Pid<Player>>,
    hits: Arc<AtomicU64>,
}

impl Process for Player {}

fn hit(p: &mut Player, left: u64) {
    p.hits.fetch_add(1, Ordering::Relaxed);
    if left > 0 {
        dispatch(p.peer.as_ref().unwrap(), move |q: &mut Player| {
            hit(q, left - 1)
        });
    }
}

rt_test!(
    settle_waits_for_a_thousand_dispatch_ping_pong,
    |flavor, rt| {
        let clock = rt.clock();
        clock.pause();
        let hits = Arc::new(AtomicU64::new(0));
        let new_player = || {
            rt.spawn(Player {
                peer: None,
                hits: hits.clone(),
            })
        };
        let (a, b) = (new_player(), new_player());
        let (pa, pb) = (a.clone(), b.clone());
        dispatch(&a, move |p: &mut Player| p.peer = Some(pb));
        dispatch(&b, move |p: &mut Player| p.peer = Some(pa));
        dispatch(&a, |p: &mut Player| hit(p, 1_000));
        clock.settle();
        assert_eq!(
            hits.load(Ordering::Relaxed),
            1_001,
            "settle returned mid-rally"
        );
        // Twice in a row is fine and changes nothing.
        clock.settle();
        assert_eq!(hits.load(Ordering::Relaxed), 1_001);
    }
);

/// Busy work that takes a noticeable time without sleeping.
fn grind() -> u64 {
    (0..2_000_000u64).fold(0, |acc, x| std::hint::black_box(acc ^ x.wrapping_mul(31)))
}

#[derive(Default)]
struct Sink(u64);
impl Process for Sink {}

rt_test!(
    settle_waits_for_run_blocking_jobs_and_what_they_start,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let sink = rt.spawn(Sink::default());
        let direct = run_blocking(grind);
        // A job started by a handler, whose result goes back into the process.
        let me = sink.clone();
        dispatch(&sink, move |_: &mut Sink| {
            run_blocking(|| grind() | 1).then(defer(&me, |s: &mut Sink, v: u64| s.0 = v));
        });
        clock.settle();
        assert!(
            direct.is_ready(),
            "settle returned before a blocking job finished"
        );
        let stored = rt.block_on(dispatch(&sink, |s: &mut Sink| s.0)).unwrap();
        assert_eq!(stored, grind() | 1);
    }
);

rt_test!(settle_waits_for_spawned_async_tasks, |flavor, rt| {
    let _entered = rt.enter();
    let clock = rt.clock();
    clock.pause();
    let sink = rt.spawn(Sink::default());
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<Future<u64>> = (0..10u64)
        .map(|i| {
            let sink = sink.clone();
            let done = done.clone();
            spawn_async(async move {
                let seen = dispatch(&sink, move |s: &mut Sink| {
                    s.0 += i;
                    s.0
                })
                .await
                .unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                seen
            })
        })
        .collect();
    clock.settle();
    assert_eq!(done.load(Ordering::SeqCst), 10);
    assert!(tasks.iter().all(Future::is_ready));
    assert_eq!(
        rt.block_on(dispatch(&sink, |s: &mut Sink| s.0)).unwrap(),
        45
    );

    // A task waiting on a timer is idle (settle returns) until time moves.
    let timed = spawn_async(async { after(Duration::from_secs(30)).await.map(|()| 7) });
    clock.settle();
    assert!(timed.is_pending());
    clock.advance(Duration::from_secs(30));
    clock.settle();
    assert_eq!(timed.get().map(|r| r.unwrap()), Some(7));
});

rt_test!(settle_fires_timers_due_at_the_paused_time, |flavor, rt| {
    let clock = rt.clock();
    clock.pause();
    let sink = rt.spawn(Sink::default());
    delay(Duration::ZERO, &sink, |s: &mut Sink| s.0 += 1);
    // Armed by a handler for "now": settle must fire it too.
    let me = sink.clone();
    dispatch(&sink, move |_: &mut Sink| {
        delay(Duration::ZERO, &me, |s: &mut Sink| s.0 += 10);
    });
    delay(Duration::from_nanos(1), &sink, |s: &mut Sink| s.0 += 100);
    clock.settle();
    let total = Arc::new(AtomicU64::new(0));
    let out = total.clone();
    dispatch(&sink, move |s: &mut Sink| out.store(s.0, Ordering::SeqCst));
    clock.settle();
    assert_eq!(
        total.load(Ordering::SeqCst),
        11,
        "the 1ns timer is not due yet"
    );
    assert_eq!(rt.stats().armed_timers, 1);
});

rt_test!(
    settle_panics_on_a_running_clock_and_inside_a_handler,
    |flavor, rt| {
        let clock = rt.clock();
        clock.resume();
        assert!(!clock.is_paused());
        let message =
            support::panic_message_of(|| clock.settle()).expect("settle on a running clock");
        assert!(message.contains("paused"), "{message}");
        clock.pause();

        let sink = rt.spawn(Sink::default());
        let inside = dispatch(&sink, |_: &mut Sink| {
            support::panic_message_of(|| Clock::current().settle())
        });
        let message = rt
            .block_on(inside)
            .unwrap()
            .expect("settle inside a handler");
        assert!(message.contains("would wait for itself"), "{message}");
        clock.settle();
    }
);

rt_test!(
    an_hour_long_timeout_is_tested_in_microseconds,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let reply = Promise::<&'static str>::new();
        let answer = reply
            .future()
            .after(Duration::from_secs(3600), |_| Future::ready("timed out"));
        clock.advance(Duration::from_secs(3600) - Duration::from_micros(1));
        clock.settle();
        assert!(answer.is_pending());
        clock.advance(Duration::from_micros(1));
        clock.settle();
        assert_eq!(answer.get(), Some("timed out"));
        drop(reply);
    }
);

rt_test!(clock_current_in_a_handler_is_its_runtime_clock, |flavor| {
    let (here, there) = (flavor.build(), flavor.build());
    here.clock().pause();
    there.clock().pause();
    there.clock().advance(Duration::from_secs(3600));
    assert_ne!(here.clock().now(), there.clock().now());
    let _entered = here.enter();
    let sink = there.spawn(Sink::default());
    let seen = there.block_on(dispatch(&sink, |_: &mut Sink| Clock::current().now()));
    assert_eq!(seen.unwrap(), there.clock().now());
    drop(_entered);
    here.shutdown();
    there.shutdown();
});

#[test]
fn clock_current_outside_a_runtime_panics_clearly() {
    let message = support::panic_message_of(|| {
        Clock::current();
    })
    .expect("no runtime is current");
    assert!(message.contains("Clock::current"), "{message}");
}

#[test]
fn advance_on_a_running_clock_does_nothing() {
    let rt: Runtime = support::Flavor::OneWorker.build();
    let clock = rt.clock();
    let before = clock.now();
    clock.advance(Duration::from_secs(3600));
    assert!(clock.now() < before + Duration::from_secs(3600));
    rt.shutdown();
}
