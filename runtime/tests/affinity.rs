//! Affinity: a pinned process runs only on its worker, wakes that worker from any thread, and
//! a long handler can give its worker up with `budget_spent`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use procession::{
    budget_spent, cast, delay, dispatch, Context, Pid, Process, Runtime, SpawnOptions,
};

/// Records the name of every thread it ran an event on.
#[derive(Default)]
struct Recorder {
    threads: BTreeSet<String>,
    events: u64,
    next: Option<Pid<Recorder>>,
}

impl Process for Recorder {}

/// A runtime with a paused clock, so that `settle` can tell when it has nothing left to do.
fn runtime(name: &str, workers: usize) -> Runtime {
    let rt = Runtime::builder()
        .workers(workers)
        .name(name)
        .build()
        .unwrap();
    rt.clock().pause();
    rt
}

/// Runs one event on `pid`: records the thread, and passes `hops` on down the chain.
fn record(pid: &Pid<Recorder>, hops: u32) {
    cast(pid, move |r: &mut Recorder| {
        r.events += 1;
        r.threads
            .insert(thread::current().name().unwrap_or("?").to_owned());
        if let (Some(next), true) = (&r.next, hops > 0) {
            record(next, hops - 1);
        }
    });
}

fn seen(rt: &Runtime, pid: &Pid<Recorder>) -> (u64, BTreeSet<String>) {
    rt.block_on(dispatch(pid, |r: &mut Recorder| {
        (r.events, r.threads.clone())
    }))
    .unwrap()
}

fn only(name: &str) -> BTreeSet<String> {
    BTreeSet::from([name.to_owned()])
}

#[test]
fn a_pinned_process_runs_only_on_its_worker() {
    let rt = runtime("pin", 2);
    // 3 modulo 2 workers: worker 1.
    let pinned = rt
        .spawn_with(Recorder::default(), SpawnOptions::new().pin(3))
        .unwrap();
    // Relays make it runnable from inside the runtime too: two pinned to the other worker (whose
    // hand-off slot must not take it), two unpinned.
    let relays: Vec<_> = (0..4)
        .map(|i| {
            let relay = Recorder {
                next: Some(pinned.clone()),
                ..Recorder::default()
            };
            let options = SpawnOptions::new();
            rt.spawn_with(relay, if i < 2 { options.pin(0) } else { options })
                .unwrap()
        })
        .collect();
    thread::scope(|scope| {
        for relay in &relays {
            let (rt, pinned) = (&rt, &pinned);
            scope.spawn(move || {
                let _entered = rt.enter();
                for n in 0..2_000 {
                    match n % 2 {
                        0 => record(pinned, 0),
                        _ => record(relay, 1),
                    }
                }
            });
        }
    });
    rt.clock().settle();
    let (events, threads) = seen(&rt, &pinned);
    assert_eq!(events, 8_000);
    assert_eq!(threads, only("pin-worker-1"));
    for relay in &relays[..2] {
        assert_eq!(seen(&rt, relay), (1_000, only("pin-worker-0")));
    }
}

#[test]
fn any_pin_index_is_taken_modulo_the_worker_count() {
    let rt = runtime("modulo", 3);
    // 2^64 - 1 and 65,537 modulo 3: workers 0 and 2, whatever the width the cell keeps.
    for (index, worker) in [(usize::MAX, "modulo-worker-0"), (65_537, "modulo-worker-2")] {
        let pinned = rt
            .spawn_with(Recorder::default(), SpawnOptions::new().pin(index))
            .unwrap();
        let _entered = rt.enter();
        (0..100).for_each(|_| record(&pinned, 0));
        rt.clock().settle();
        assert_eq!(seen(&rt, &pinned), (100, only(worker)));
    }
}

#[test]
fn a_runtime_refuses_zero_workers_and_more_than_65535() {
    for workers in [0, 65_536] {
        let refused = Runtime::builder().workers(workers).build();
        assert!(refused.is_err(), "{workers} workers were accepted");
    }
}

/// A chain of `len` recorders pinned to `worker`, first to last.
fn chain(rt: &Runtime, len: usize, worker: usize) -> Vec<Pid<Recorder>> {
    let mut chain: Vec<Pid<Recorder>> = Vec::new();
    for _ in 0..len {
        let next = chain.last().cloned();
        let pid = rt
            .spawn_with(
                Recorder {
                    next,
                    ..Recorder::default()
                },
                SpawnOptions::new().pin(worker),
            )
            .unwrap();
        chain.push(pid);
    }
    chain.reverse();
    chain
}

#[test]
fn two_pinned_chains_stay_on_their_own_workers() {
    let rt = runtime("chains", 2);
    let chains = [chain(&rt, 4, 0), chain(&rt, 4, 1)];
    thread::scope(|scope| {
        for chain in &chains {
            let rt = &rt;
            scope.spawn(move || {
                let _entered = rt.enter();
                for _ in 0..5_000 {
                    record(&chain[0], 3);
                }
            });
        }
    });
    rt.clock().settle();
    for (worker, chain) in chains.iter().enumerate() {
        for pid in chain {
            let (events, threads) = seen(&rt, pid);
            assert_eq!(events, 5_000);
            assert_eq!(threads, only(&format!("chains-worker-{worker}")));
        }
    }
}

#[test]
fn idle_workers_fall_asleep_and_a_dispatch_wakes_one() {
    let rt = runtime("sleep", 2);
    let asleep = |n: usize| {
        let guard = std::time::Instant::now() + Duration::from_secs(30);
        while rt.stats().sleeping_workers != n {
            assert!(std::time::Instant::now() < guard, "never {n} asleep");
            thread::yield_now();
        }
    };
    asleep(2);
    let pid = rt.spawn(Recorder::default());
    // The handler runs while the test thread watches: a worker is awake for it.
    let (ran, running) = std::sync::mpsc::channel();
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let answer = dispatch(&pid, move |_: &mut Recorder| {
        ran.send(()).unwrap();
        hold.recv().unwrap();
    });
    running.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(rt.stats().sleeping_workers < 2);
    release.send(()).unwrap();
    rt.block_on(answer).unwrap();
    asleep(2);
    let deterministic = Runtime::builder().deterministic(1).build().unwrap();
    assert_eq!(deterministic.stats().sleeping_workers, 0);
}

#[test]
fn a_pinned_process_is_woken_from_foreign_threads_every_time() {
    let rt = runtime("wake", 2);
    let pinned = [0, 1].map(|w| {
        rt.spawn_with(Recorder::default(), SpawnOptions::new().pin(w))
            .unwrap()
    });
    thread::scope(|scope| {
        for (i, pid) in pinned.iter().enumerate() {
            let rt = &rt;
            scope.spawn(move || {
                for n in 0..3_000u32 {
                    // Now and then wait for the workers to run dry and fall asleep, so the
                    // wake-up of a sleeping worker is exercised and not only that of a
                    // spinning one.
                    if n % 100 == i as u32 {
                        let guard = std::time::Instant::now() + Duration::from_secs(30);
                        while rt.stats().sleeping_workers < 2 {
                            assert!(std::time::Instant::now() < guard, "the workers never slept");
                            thread::yield_now();
                        }
                    }
                    let answer = dispatch(pid, move |r: &mut Recorder| {
                        r.events += 1;
                        r.events
                    });
                    // A lost wake-up would leave the event queued forever: fail, don't hang.
                    assert!(
                        answer.wait_for(Duration::from_secs(30)),
                        "event {n} to worker {i} was never run"
                    );
                    assert_eq!(rt.block_on(answer).unwrap(), u64::from(n) + 1);
                }
            });
        }
    });
}

/// Counts timer ticks; each tick re-arms itself until `left` runs out.
#[derive(Default)]
struct Ticker {
    ticks: u32,
    threads: BTreeSet<String>,
}

impl Process for Ticker {}

fn tick(pid: Pid<Ticker>, left: u32) {
    let me = pid.clone();
    delay(Duration::from_secs(1), &pid, move |t: &mut Ticker| {
        t.ticks += 1;
        t.threads
            .insert(thread::current().name().unwrap_or("?").to_owned());
        if left > 1 {
            tick(me, left - 1);
        }
    });
}

#[test]
fn settle_on_a_paused_clock_waits_for_pinned_processes() {
    let rt = runtime("settle", 2);
    let clock = rt.clock();
    let _entered = rt.enter();
    let tickers = [0, 1].map(|w| {
        rt.spawn_with(Ticker::default(), SpawnOptions::new().pin(w))
            .unwrap()
    });
    for ticker in &tickers {
        tick(ticker.clone(), 10);
    }
    for second in 1..=10 {
        clock.advance(Duration::from_secs(1));
        clock.settle();
        for (w, ticker) in tickers.iter().enumerate() {
            let (ticks, threads) = rt
                .block_on(dispatch(ticker, |t: &mut Ticker| {
                    (t.ticks, t.threads.clone())
                }))
                .unwrap();
            assert_eq!(ticks, second, "ticker {w} after {second} s");
            assert_eq!(threads, only(&format!("settle-worker-{w}")));
        }
    }
}

/// Counts its `finalize` in a shared counter.
struct Finalized(Arc<Mutex<u32>>);

impl Process for Finalized {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        *self.0.lock().unwrap() += 1;
    }
}

#[test]
fn shutdown_ends_pinned_processes() {
    let rt = runtime("down", 2);
    let finalized = Arc::new(Mutex::new(0));
    let pids: Vec<_> = (0..20)
        .map(|i| {
            rt.spawn_with(Finalized(finalized.clone()), SpawnOptions::new().pin(i))
                .unwrap()
        })
        .collect();
    let _entered = rt.enter();
    for pid in &pids {
        for _ in 0..100 {
            cast(pid, |_: &mut Finalized| thread::yield_now());
        }
    }
    drop(_entered);
    let report = rt.shutdown();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(*finalized.lock().unwrap(), 20);
}

/// Logs what ran on a worker, in order.
struct Logger {
    log: Arc<Mutex<Vec<String>>>,
}

impl Process for Logger {}

/// A long job of `items` items that yields whenever its budget is spent: each visit logs the
/// slice it ran, and the first one also makes `other` runnable on the same worker.
fn job(me: Pid<Logger>, other: Pid<Logger>, from: u32, items: u32) {
    let _ = cast(&me.clone(), move |l: &mut Logger| {
        if from == 0 {
            cast(&other, |o: &mut Logger| {
                o.log.lock().unwrap().push("other".into())
            });
        }
        let mut i = from;
        while i < items {
            i += 1;
            if i < items && budget_spent() {
                l.log.lock().unwrap().push(format!("slice to {i}"));
                return job(me, other, i, items);
            }
        }
        l.log.lock().unwrap().push("done".into());
    });
}

#[test]
fn a_long_handler_that_checks_its_budget_lets_its_worker_run_others() {
    let rt = Runtime::builder()
        .workers(2)
        .event_budget(16)
        .build()
        .unwrap();
    rt.clock().pause();
    let log = Arc::new(Mutex::new(Vec::new()));
    let [long, other] = [0, 1].map(|_| {
        rt.spawn_with(Logger { log: log.clone() }, SpawnOptions::new().pin(0))
            .unwrap()
    });
    let _entered = rt.enter();
    job(long, other, 0, 1_000);
    rt.clock().settle();
    let log = log.lock().unwrap();
    let other_at = log.iter().position(|l| l == "other").expect("other ran");
    let done_at = log
        .iter()
        .position(|l| l == "done")
        .expect("the job finished");
    assert!(other_at < done_at, "the job kept the worker: {log:?}");
    // 1 000 items, 16 per visit (the first visit's event counts one): about 63 slices.
    assert!(log.len() > 60, "{} entries", log.len());
}
