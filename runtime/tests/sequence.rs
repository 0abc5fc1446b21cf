//! Sequence: closures start strictly one after another, after the previous future completed
//! on any outcome; a discarded queued item is skipped at once and never runs, a discarded
//! running item gets the request and still holds the line; panics, drops, long runs of ready
//! items, concurrent adders and processes.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex as Recorder;
use procession::{collect, dispatch, Clock, Future, Process, Promise, Sequence};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn sequence_is_send_and_sync() {
    assert_send_sync::<Sequence>();
}

/// Adds an item that records `name` when it starts and answers with `gate`'s future.
fn gated(
    sequence: &Sequence,
    log: &Arc<Recorder<Vec<&'static str>>>,
    name: &'static str,
    gate: &Promise<u32>,
) -> Future<u32> {
    let (log, future) = (log.clone(), gate.future());
    sequence.add(move || {
        log.lock().push(name);
        future
    })
}

#[test]
fn each_closure_starts_after_the_previous_future_completed_on_any_outcome() {
    let sequence = Sequence::new();
    let log = Arc::new(Recorder::new(Vec::new()));
    let gates: Vec<Promise<u32>> = (0..5).map(|_| Promise::new()).collect();
    let names = ["ready", "failed", "discarded", "abandoned", "last"];
    let results: Vec<_> = names
        .iter()
        .zip(&gates)
        .map(|(name, gate)| gated(&sequence, &log, name, gate))
        .collect();
    assert_eq!(*log.lock(), ["ready"], "the first starts at once, alone");
    let mut gates = gates.into_iter();
    gates.next().unwrap().set(1);
    assert_eq!(*log.lock(), ["ready", "failed"]);
    gates.next().unwrap().fail("no");
    assert_eq!(*log.lock(), ["ready", "failed", "discarded"]);
    gates.next().unwrap().discard();
    assert_eq!(log.lock().len(), 4);
    drop(gates.next().unwrap());
    assert_eq!(*log.lock(), names);
    assert!(results[4].is_pending());
    gates.next().unwrap().set(5);
    assert_eq!(results[0].get(), Some(1));
    assert!(results[1].is_failed());
    assert!(results[2].is_discarded());
    assert!(results[3].is_abandoned());
    assert_eq!(results[4].get(), Some(5));
}

#[test]
fn a_discarded_queued_item_is_skipped_at_once_and_the_rest_keep_their_order() {
    let sequence = Sequence::new();
    let log = Arc::new(Recorder::new(Vec::new()));
    let first = Promise::new();
    let (skipped_gate, third) = (Promise::new(), Promise::new());
    let running = gated(&sequence, &log, "first", &first);
    let skipped = gated(&sequence, &log, "skipped", &skipped_gate);
    let after = gated(&sequence, &log, "third", &third);
    skipped.discard();
    assert!(skipped.is_discarded(), "ends discarded at once");
    assert!(!skipped_gate.has_discard(), "its closure never ran");
    assert!(running.is_pending() && !running.has_discard());
    first.set(1);
    assert_eq!(*log.lock(), ["first", "third"]);
    third.set(3);
    assert_eq!(after.get(), Some(3));
}

#[test]
fn a_discarded_running_item_gets_the_request_and_holds_the_line_until_it_completes() {
    let sequence = Sequence::new();
    let log = Arc::new(Recorder::new(Vec::new()));
    let (first, second) = (Promise::new(), Promise::new());
    let running = gated(&sequence, &log, "first", &first);
    let next = gated(&sequence, &log, "second", &second);
    running.discard();
    assert!(
        first.has_discard(),
        "the request reaches the closure's future"
    );
    assert!(running.is_pending());
    assert_eq!(*log.lock(), ["first"], "the next one waits");
    first.discard();
    assert!(running.is_discarded());
    assert_eq!(*log.lock(), ["first", "second"]);
    assert!(!second.has_discard(), "the others are not affected");
    second.set(2);
    assert_eq!(next.get(), Some(2));

    // Discarding a completed item does nothing.
    next.discard();
    assert_eq!(next.get(), Some(2));
}

#[test]
fn a_closure_may_add_to_its_own_sequence_and_the_new_item_runs_after_it() {
    let sequence = Arc::new(Sequence::new());
    let log = Arc::new(Recorder::new(Vec::new()));
    let gate = Promise::<u32>::new();
    let nested = Arc::new(Recorder::new(None));
    let outer = {
        let (inner, log, nested, gate) =
            (sequence.clone(), log.clone(), nested.clone(), gate.future());
        sequence.add(move || {
            log.lock().push("outer");
            let log = log.clone();
            *nested.lock() = Some(inner.add(move || {
                log.lock().push("nested");
                Future::ready(2)
            }));
            gate
        })
    };
    let nested = nested.lock().take().expect("added while running");
    assert!(nested.is_pending(), "waits for the item that added it");
    gate.set(1);
    assert_eq!((outer.get(), nested.get()), (Some(1), Some(2)));
    assert_eq!(*log.lock(), ["outer", "nested"]);
}

#[test]
fn a_panicking_closure_fails_its_item_and_the_sequence_goes_on() {
    support::quiet_expected_panics();
    let sequence = Sequence::new();
    let failed = sequence.add(|| -> Future<u32> { panic!("{}", support::EXPECTED_PANIC) });
    let next = sequence.add(|| Future::ready(7));
    let failure = failed
        .error()
        .unwrap()
        .failure()
        .unwrap()
        .message()
        .to_owned();
    assert!(failure.contains(support::EXPECTED_PANIC), "{failure}");
    assert_eq!(next.get(), Some(7));
}

#[test]
fn dropping_the_sequence_discards_what_has_not_completed() {
    let sequence = Sequence::new();
    let log = Arc::new(Recorder::new(Vec::new()));
    let (first, queued_gate) = (Promise::new(), Promise::new());
    let running = gated(&sequence, &log, "first", &first);
    let queued = gated(&sequence, &log, "queued", &queued_gate);
    drop(sequence);
    assert!(first.has_discard(), "the running item gets the request");
    assert!(queued.is_discarded(), "a queued item ends discarded");
    first.set(1);
    assert_eq!(running.get(), Some(1), "the producer decides");
    assert_eq!(*log.lock(), ["first"], "the queued closure never ran");
}

#[test]
fn an_item_not_started_when_the_sequence_is_dropped_never_starts() {
    let rounds = std::env::var("PROCESSION_SEEDS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(5_000);
    for _ in 0..rounds {
        let sequence = Sequence::new();
        let first = Promise::<()>::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let late = Arc::new(AtomicBool::new(false));
        let _ = sequence.add({
            let first = first.future();
            move || first
        });
        let _ = sequence.add({
            let (dropped, late) = (dropped.clone(), late.clone());
            move || {
                // Started after the drop returned: the drop must have prevented this.
                late.store(dropped.load(Ordering::SeqCst), Ordering::SeqCst);
                Future::ready(())
            }
        });
        std::thread::scope(|scope| {
            scope.spawn(move || first.set(()));
            drop(sequence);
            dropped.store(true, Ordering::SeqCst);
        });
        assert!(
            !late.load(Ordering::SeqCst),
            "an item started after the drop"
        );
    }
}

#[test]
fn a_long_run_of_ready_items_uses_constant_stack() {
    let sequence = Sequence::new();
    let gate = Promise::<usize>::new();
    let head = sequence.add({
        let f = gate.future();
        move || f
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let results: Vec<_> = (0..100_000)
        .map(|i| {
            let ran = ran.clone();
            sequence.add(move || {
                assert_eq!(ran.fetch_add(1, Ordering::Relaxed), i, "out of order");
                Future::ready(i)
            })
        })
        .collect();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    gate.set(0);
    assert!(head.is_ready());
    assert_eq!(ran.load(Ordering::SeqCst), 100_000);
    assert!(results.iter().enumerate().all(|(i, r)| r.get() == Some(i)));
}

#[test]
fn concurrent_adders_never_overlap_and_keep_their_own_order() {
    const THREADS: usize = 8;
    let per_thread = support::scaled(500);
    let sequence = Arc::new(Sequence::new());
    let inside = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Recorder::new(Vec::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sequence, inside, log) = (sequence.clone(), inside.clone(), log.clone());
            std::thread::spawn(move || {
                let results: Vec<_> = (0..per_thread)
                    .map(|i| {
                        let (inside, log) = (inside.clone(), log.clone());
                        sequence.add(move || {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "overlap");
                            log.lock().push((t, i));
                            inside.fetch_sub(1, Ordering::SeqCst);
                            Future::ready(())
                        })
                    })
                    .collect();
                results
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(results.iter().all(Future::is_ready));
    let log = log.lock();
    assert_eq!(log.len(), THREADS * per_thread);
    for t in 0..THREADS {
        let mine: Vec<_> = log
            .iter()
            .filter(|(u, _)| *u == t)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(mine, (0..per_thread).collect::<Vec<_>>());
    }
}

struct Step {
    inside: Arc<AtomicUsize>,
    order: Arc<Recorder<Vec<usize>>>,
}
impl Process for Step {}

rt_test!(
    steps_dispatched_to_processes_run_one_at_a_time_in_order,
    |flavor, rt| {
        let inside = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Recorder::new(Vec::new()));
        let steps: Vec<_> = (0..4)
            .map(|_| {
                rt.spawn(Step {
                    inside: inside.clone(),
                    order: order.clone(),
                })
            })
            .collect();
        let sequence = Sequence::new();
        let total = support::scaled(400);
        let results: Vec<_> = (0..total)
            .map(|i| {
                let step = steps[i % steps.len()].clone();
                sequence.add(move || {
                    dispatch(&step, move |s: &mut Step| {
                        assert_eq!(s.inside.fetch_add(1, Ordering::SeqCst), 0, "overlap");
                        s.order.lock().push(i);
                        s.inside.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
            })
            .collect();
        assert_eq!(
            rt.block_on(collect(results)).unwrap(),
            (0..total).collect::<Vec<_>>()
        );
        assert_eq!(*order.lock(), (0..total).collect::<Vec<_>>());
    }
);

rt_test!(
    a_closure_runs_with_the_runtime_current_where_it_was_added,
    |flavor, rt| {
        let sequence = Sequence::new();
        let gate = Promise::<()>::new();
        let paused = {
            let _entered = rt.enter();
            let head = gate.future();
            sequence.add(move || head);
            sequence.add(|| Future::ready(Clock::current().is_paused()))
        };
        // Completed on a thread with no current runtime: the closure still finds its own.
        std::thread::spawn(move || gate.set(())).join().unwrap();
        assert_eq!(paused.get(), Some(rt.clock().is_paused()));
    }
);
