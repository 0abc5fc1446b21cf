//! `dispatch`: FIFO per sender, fast abandonment, flattening, never inline, fairness, and
//! `run_blocking`.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use procession::{
    defer, dispatch, run_blocking, terminate, terminate_now, wait, Future, Pid, Process, Promise,
};

/// Appends whatever it is given.
#[derive(Default)]
struct Log(Vec<(usize, usize)>);
impl Process for Log {}

rt_test!(dispatches_from_one_thread_run_in_order, |flavor, rt| {
    let n = support::scaled(10_000);
    let log = rt.spawn(Log::default());
    for i in 0..n {
        dispatch(&log, move |l: &mut Log| l.0.push((0, i)));
    }
    let seen = rt
        .block_on(dispatch(&log, |l: &mut Log| l.0.clone()))
        .unwrap();
    let expected: Vec<_> = (0..n).map(|i| (0, i)).collect();
    assert_eq!(seen.len(), n);
    assert!(
        seen == expected,
        "dispatches from one thread ran out of order"
    );
});

rt_test!(
    dispatches_from_eight_threads_each_run_in_their_own_order,
    |flavor, rt| {
        let per_thread = support::scaled(2_000);
        let log = rt.spawn(Log::default());
        std::thread::scope(|scope| {
            for t in 0..8 {
                let log = log.clone();
                scope.spawn(move || {
                    for i in 0..per_thread {
                        dispatch(&log, move |l: &mut Log| l.0.push((t, i)));
                    }
                });
            }
        });
        let seen = rt
            .block_on(dispatch(&log, |l: &mut Log| l.0.clone()))
            .unwrap();
        assert_eq!(seen.len(), 8 * per_thread);
        for t in 0..8 {
            let order: Vec<usize> = seen.iter().filter(|(s, _)| *s == t).map(|e| e.1).collect();
            assert!(
                order == (0..per_thread).collect::<Vec<_>>(),
                "thread {t} out of order"
            );
        }
    }
);

struct Idle;
impl Process for Idle {}

rt_test!(
    dispatch_to_a_gone_process_is_abandoned_at_once,
    |flavor, rt| {
        let pid = rt.spawn(Idle);
        terminate(&pid);
        rt.block_on(wait(&pid)).unwrap();
        let reply = dispatch(&pid, |_: &mut Idle| 1);
        assert!(reply.is_abandoned(), "not pending: {reply:?}");
        let unit = dispatch(&pid, |_: &mut Idle| ());
        assert!(unit.is_abandoned());
        let error = rt.block_on(reply).unwrap_err();
        assert!(error.is_abandoned() && !error.is_failed());
    }
);

rt_test!(
    a_dispatch_that_never_runs_is_abandoned_not_pending,
    |flavor, rt| {
        let pid = rt.spawn(Idle);
        let me = pid.clone();
        let pending = dispatch(&pid, move |_: &mut Idle| {
            let behind = dispatch(&me, |_: &mut Idle| 2);
            terminate_now(&me);
            behind
        })
        .flatten();
        assert!(rt.block_on(pending).unwrap_err().is_abandoned());
    }
);

#[derive(Default)]
struct Relay {
    waiting: Option<Promise<u64>>,
}
impl Process for Relay {}

rt_test!(a_closure_returning_a_future_flattens, |flavor, rt| {
    let relay = rt.spawn(Relay::default());
    let nested: Future<Future<u64>> = dispatch(&relay, |r: &mut Relay| {
        let promise = Promise::new();
        let future = promise.future();
        r.waiting = Some(promise);
        future
    });
    let flat = nested.flatten();
    rt.block_on(nested.clone()).unwrap();
    assert!(
        flat.is_pending(),
        "follows the inner future, not the outer one"
    );
    dispatch(&relay, |r: &mut Relay| r.waiting.take().unwrap().set(99));
    assert_eq!(rt.block_on(flat).unwrap(), 99);
    let ready = dispatch(&relay, |_: &mut Relay| Future::ready(5u64)).flatten();
    assert_eq!(rt.block_on(ready).unwrap(), 5);
    let failed = dispatch(&relay, |_: &mut Relay| Future::<u64>::failed("inner")).flatten();
    assert_eq!(
        rt.block_on(failed)
            .unwrap_err()
            .failure()
            .unwrap()
            .message(),
        "inner"
    );
});

#[derive(Default)]
struct Reentrant(Vec<&'static str>);
impl Process for Reentrant {}

rt_test!(
    dispatch_and_defer_to_self_queue_after_the_running_handler,
    |flavor, rt| {
        let pid = rt.spawn(Reentrant::default());
        let me = pid.clone();
        let inline = dispatch(&pid, move |r: &mut Reentrant| {
            r.0.push("start");
            let by_dispatch = dispatch(&me, |r: &mut Reentrant| r.0.push("dispatched"));
            let by_defer =
                Future::ready(()).then(defer(&me, |r: &mut Reentrant, ()| r.0.push("deferred")));
            r.0.push("end");
            by_dispatch.is_pending() && by_defer.is_pending()
        });
        assert!(rt.block_on(inline).unwrap(), "a self-dispatch ran inline");
        let log = rt
            .block_on(dispatch(&pid, |r: &mut Reentrant| r.0.clone()))
            .unwrap();
        assert_eq!(log, ["start", "end", "dispatched", "deferred"]);
    }
);

/// Dispatches `spin` to itself forever (until stopped).
struct Flood {
    me: Option<Pid<Flood>>,
    spins: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Process for Flood {}

fn spin(f: &mut Flood) {
    f.spins.fetch_add(1, Ordering::Relaxed);
    if !f.stop.load(Ordering::Relaxed) {
        let me = f.me.clone().unwrap();
        dispatch(&me, spin);
    }
}

rt_test!(
    a_process_flooding_itself_does_not_starve_others,
    |flavor, rt| {
        let spins = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let flood = rt.spawn(Flood {
            me: None,
            spins: spins.clone(),
            stop: stop.clone(),
        });
        let me = flood.clone();
        dispatch(&flood, move |f: &mut Flood| {
            f.me = Some(me);
            spin(f);
        });
        let other = rt.spawn(Idle);
        // On one worker this only completes if the flood yields after its event budget.
        for round in 0..20 {
            assert_eq!(
                rt.block_on(dispatch(&other, move |_: &mut Idle| round))
                    .unwrap(),
                round
            );
        }
        assert!(spins.load(Ordering::Relaxed) > 0);
        stop.store(true, Ordering::Relaxed);
        terminate(&flood);
        rt.block_on(wait(&flood)).unwrap();
    }
);

rt_test!(
    run_blocking_answers_with_the_value_or_a_failure,
    |flavor, rt| {
        support::quiet_expected_panics();
        let _entered = rt.enter();
        let sum = run_blocking(|| (1..=1000u64).sum::<u64>());
        assert_eq!(rt.block_on(sum).unwrap(), 500_500);
        let boom = run_blocking(|| -> u64 { panic!("blocking {}", support::EXPECTED_PANIC) });
        let error = rt.block_on(boom).unwrap_err();
        assert!(error.is_failed(), "{error:?}");
        assert!(
            error.failure().unwrap().message().contains("blocking"),
            "{error}"
        );
        // From inside a handler, flattened back through the dispatch.
        let pid = rt.spawn(Idle);
        let nested = dispatch(&pid, |_: &mut Idle| run_blocking(|| 6 * 7)).flatten();
        assert_eq!(rt.block_on(nested).unwrap(), 42);
    }
);

/// Floods itself like [`Flood`], and every 100 events asks `prober` to note how many flood
/// events ran between the ask and the answer.
struct ProbingFlood {
    me: Option<Pid<ProbingFlood>>,
    prober: Pid<Prober>,
    spins: Arc<AtomicU64>,
}

impl Process for ProbingFlood {}

#[derive(Default)]
struct Prober(Vec<u64>);
impl Process for Prober {}

const PROBES: u64 = 50;

fn probe_spin(f: &mut ProbingFlood) {
    let at = f.spins.fetch_add(1, Ordering::SeqCst) + 1;
    if at % 100 == 0 {
        let spins = f.spins.clone();
        dispatch(&f.prober, move |p: &mut Prober| {
            p.0.push(spins.load(Ordering::SeqCst) - at)
        });
    }
    if at < PROBES * 100 {
        dispatch(f.me.as_ref().unwrap(), probe_spin);
    }
}

#[test]
fn the_event_budget_bounds_how_long_others_wait_on_one_worker() {
    const BUDGET: usize = 16;
    let rt = procession::Runtime::builder()
        .workers(1)
        .event_budget(BUDGET)
        .build()
        .unwrap();
    let prober = rt.spawn(Prober::default());
    let flood = rt.spawn(ProbingFlood {
        me: None,
        prober: prober.clone(),
        spins: Arc::default(),
    });
    let me = flood.clone();
    // The probes are queued from inside the flood (on the worker), so the measure does not
    // depend on how the OS schedules the test thread.
    dispatch(&flood, move |f: &mut ProbingFlood| {
        f.me = Some(me);
        probe_spin(f);
    });
    support::with_watchdog("the flood", || {
        let clock = rt.clock();
        clock.pause();
        clock.settle();
    });
    let waits = rt
        .block_on(dispatch(&prober, |p: &mut Prober| p.0.clone()))
        .unwrap();
    assert_eq!(waits.len() as u64, PROBES);
    // At most the rest of the flood's visit runs before the prober gets the worker.
    let worst = *waits.iter().max().unwrap();
    assert!(
        worst < BUDGET as u64,
        "a probe waited {worst} flood events (budget {BUDGET})"
    );
    rt.shutdown();
}
