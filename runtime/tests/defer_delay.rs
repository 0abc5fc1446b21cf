//! `defer` brings a value back into a process; `delay` dispatches on the runtime clock, and its
//! `Timer` cancels it.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use procession::{
    after, defer, delay, dispatch, terminate, wait, Clock, Future, Process, Promise, Runtime,
};

/// Records what its deferred and delayed calls did, with the clock time they ran at.
#[derive(Default)]
struct Recorder {
    total: u64,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process for Recorder {}

impl Recorder {
    fn note(&mut self, what: impl Into<String>) {
        self.log.lock().push(what.into());
    }
}

fn recorder(rt: &Runtime) -> (procession::Pid<Recorder>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let pid = rt.spawn(Recorder {
        total: 0,
        log: log.clone(),
    });
    (pid, log)
}

rt_test!(
    defer_runs_a_then_callback_inside_the_process,
    |flavor, rt| {
        let (pid, log) = recorder(rt);
        let input = Promise::<u64>::new();
        let deferred = input.future().then(defer(&pid, |r: &mut Recorder, x: u64| {
            r.total += x;
            r.note(format!("deferred {x}"));
            r.total
        }));
        assert!(deferred.is_pending());
        dispatch(&pid, |r: &mut Recorder| r.total = 100);
        input.set(5);
        assert_eq!(
            rt.block_on(deferred).unwrap(),
            105,
            "ran after the queued dispatch"
        );
        assert_eq!(*log.lock(), ["deferred 5"]);
        // Chains keep going through further defers.
        let chained = Future::ready(1u64)
            .then(defer(&pid, |r: &mut Recorder, x: u64| r.total + x))
            .then(defer(&pid, |r: &mut Recorder, x: u64| {
                r.total = x * 2;
                r.total
            }));
        assert_eq!(rt.block_on(chained).unwrap(), 212);
    }
);

rt_test!(defer_to_a_gone_process_ends_abandoned, |flavor, rt| {
    let (pid, log) = recorder(rt);
    terminate(&pid);
    rt.block_on(wait(&pid)).unwrap();
    let late = Future::ready(1u64).then(defer(&pid, |r: &mut Recorder, x: u64| {
        r.note("never");
        x
    }));
    assert!(late.is_abandoned(), "{late:?}");
    assert!(log.lock().is_empty());
});

rt_test!(delay_fires_on_advance_and_not_before, |flavor, rt| {
    let clock = rt.clock();
    clock.pause();
    let (pid, log) = recorder(rt);
    let start = clock.now();
    let at = move |label: &'static str| {
        move |r: &mut Recorder| {
            let elapsed = Clock::current().now() - start;
            r.note(format!("{label} at {}ms", elapsed.as_millis()));
        }
    };
    delay(Duration::from_secs(10), &pid, at("ten"));
    delay(Duration::from_secs(5), &pid, at("five"));
    delay(Duration::from_secs(5), &pid, at("five again"));
    clock.advance(Duration::from_millis(4_999));
    clock.settle();
    assert!(log.lock().is_empty(), "fired early: {:?}", log.lock());
    assert_eq!(rt.stats().armed_timers, 3);
    clock.advance(Duration::from_millis(1));
    clock.settle();
    assert_eq!(*log.lock(), ["five at 5000ms", "five again at 5000ms"]);
    // A delayed dispatch runs after `advance` returns, so it sees the advanced time.
    clock.advance(Duration::from_secs(5));
    clock.settle();
    assert_eq!(
        *log.lock(),
        ["five at 5000ms", "five again at 5000ms", "ten at 10000ms"],
        "timers fire in deadline order, then creation order"
    );
    assert_eq!(rt.stats().armed_timers, 0);
});

rt_test!(a_cancelled_delay_never_runs, |flavor, rt| {
    let clock = rt.clock();
    clock.pause();
    let (pid, log) = recorder(rt);
    let cancelled = delay(Duration::from_secs(1), &pid, |r: &mut Recorder| {
        r.note("cancelled")
    });
    let kept = delay(Duration::from_secs(1), &pid, |r: &mut Recorder| {
        r.note("kept")
    });
    assert!(cancelled.cancel(), "the first cancel disarms it");
    assert!(!cancelled.cancel(), "the second finds nothing to disarm");
    clock.advance(Duration::from_secs(2));
    clock.settle();
    assert_eq!(*log.lock(), ["kept"]);
    assert!(!kept.cancel(), "a fired timer cannot be cancelled");
});

rt_test!(
    a_delay_to_a_process_gone_by_then_is_dropped,
    |flavor, rt| {
        let clock = rt.clock();
        clock.pause();
        let (pid, log) = recorder(rt);
        let _timer = delay(Duration::from_secs(1), &pid, |r: &mut Recorder| {
            r.note("late")
        });
        terminate(&pid);
        rt.block_on(wait(&pid)).unwrap();
        clock.advance(Duration::from_secs(1));
        clock.settle();
        assert!(log.lock().is_empty());
    }
);

rt_test!(delay_from_a_handler_uses_its_runtime_clock, |flavor, rt| {
    let clock = rt.clock();
    clock.pause();
    let (pid, log) = recorder(rt);
    let me = pid.clone();
    // Armed inside a handler, re-armed by itself: a periodic tick on the paused clock.
    fn tick(r: &mut Recorder, me: procession::Pid<Recorder>, left: u32) {
        r.note(format!("tick {left}"));
        if left > 0 {
            let again = me.clone();
            delay(Duration::from_secs(1), &me, move |r: &mut Recorder| {
                tick(r, again, left - 1)
            });
        }
    }
    dispatch(&pid, move |r: &mut Recorder| tick(r, me, 3));
    clock.settle();
    for expected in 1..=4 {
        assert_eq!(log.lock().len(), expected);
        clock.advance(Duration::from_secs(1));
        clock.settle();
    }
    assert_eq!(*log.lock(), ["tick 3", "tick 2", "tick 1", "tick 0"]);
});

rt_test!(
    after_is_a_timer_future_on_the_runtime_clock,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let fired = after(Duration::from_millis(250));
        let dropped = after(Duration::from_millis(250));
        dropped.discard();
        assert!(dropped.is_discarded());
        clock.advance(Duration::from_millis(249));
        assert!(fired.is_pending());
        clock.advance(Duration::from_millis(1));
        assert!(fired.is_ready());
        assert_eq!(
            rt.stats().armed_timers,
            0,
            "the discarded timer was cancelled"
        );
    }
);

rt_test!(delay_follows_the_target_runtime_clock, |flavor| {
    let (here, there) = (flavor.build(), flavor.build());
    here.clock().pause();
    there.clock().pause();
    let (pid, log) = recorder(&there);
    {
        // Armed from a thread where `here` is current: the target's runtime still owns it.
        let _entered = here.enter();
        delay(Duration::from_secs(1), &pid, |r: &mut Recorder| {
            r.note("fired")
        });
    }
    here.clock().advance(Duration::from_secs(5));
    here.clock().settle();
    there.clock().settle();
    assert!(log.lock().is_empty(), "fired on another runtime's clock");
    there.clock().advance(Duration::from_secs(1));
    there.clock().settle();
    assert_eq!(*log.lock(), ["fired"]);
    here.shutdown();
    there.shutdown();
});
