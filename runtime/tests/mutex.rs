//! Mutex: FIFO grants (from one thread, from many threads, through processes), mutual
//! exclusion that keeps a non-atomic counter exact, `with` releasing on every outcome, and no
//! way to leave the mutex held: discarded waiters (also racing their grant), granted futures
//! dropped without taking the guard, long lines of abandoned waiters handed over in constant
//! stack.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use parking_lot::Mutex as Recorder;
use procession::{collect, dispatch, Future, Mutex, MutexGuard, Owned, Process, Promise};

const WAIT: Duration = Duration::from_secs(30);

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn mutex_and_guard_are_send_and_sync() {
    assert_send_sync::<Mutex>();
    assert_send_sync::<MutexGuard>();
}

/// Takes the guard out of a granted lock future.
fn guard(lock: &Future<Owned<MutexGuard>>) -> MutexGuard {
    lock.value()
        .expect("the lock is granted")
        .take()
        .expect("the guard is still there")
}

#[test]
fn waiters_are_granted_in_order() {
    let mutex = Mutex::new();
    let first = guard(&mutex.lock());
    let order = Arc::new(Recorder::new(Vec::new()));
    let waiters: Vec<_> = (0..10)
        .map(|i| {
            let order = order.clone();
            let lock = mutex.lock();
            lock.on_ready(move |owned| {
                order.lock().push(i);
                drop(owned.take()); // release at once: the next one is granted
            });
            lock
        })
        .collect();
    assert!(waiters.iter().all(|w| w.is_pending()));
    assert!(mutex.is_locked());
    drop(first);
    assert_eq!(*order.lock(), (0..10).collect::<Vec<_>>());
    assert!(!mutex.is_locked());
}

#[test]
fn waiters_from_many_threads_are_granted_in_the_order_they_asked() {
    const THREADS: usize = 8;
    for _round in 0..support::scaled(20) {
        let mutex = Mutex::new();
        let held = guard(&mutex.lock());
        let order = Arc::new(Recorder::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..THREADS {
            let (asked, asked_rx) = mpsc::channel();
            let (mutex, order) = (mutex.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let lock = mutex.lock();
                asked.send(()).unwrap();
                assert!(lock.wait_for(WAIT));
                let guard = guard(&lock);
                order.lock().push(i);
                drop(guard);
            }));
            // The next thread asks only after this one is in line.
            asked_rx.recv().unwrap();
        }
        drop(held);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock(), (0..THREADS).collect::<Vec<_>>());
        assert!(!mutex.is_locked());
    }
}

#[test]
fn eight_threads_keep_a_non_atomic_counter_exact() {
    const THREADS: usize = 8;
    let per_thread = support::scaled(1_000);
    let mutex = Mutex::new();
    let counter = Arc::new(AtomicU64::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (mutex, counter, inside) = (mutex.clone(), counter.clone(), inside.clone());
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    let lock = mutex.lock();
                    assert!(lock.wait_for(WAIT), "a waiter was never granted");
                    let guard = guard(&lock);
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    // Read, then write: a lost update shows up as a short count.
                    let value = counter.load(Ordering::Relaxed);
                    std::hint::spin_loop();
                    counter.store(value + 1, Ordering::Relaxed);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        counter.load(Ordering::SeqCst),
        (THREADS * per_thread) as u64
    );
    assert!(!mutex.is_locked());
}

struct Worker {
    counter: Arc<AtomicU64>,
    inside: Arc<AtomicUsize>,
    order: Arc<Recorder<Vec<usize>>>,
}
impl Process for Worker {}

rt_test!(with_serialises_processes_in_fifo_order, |flavor, rt| {
    const WORKERS: usize = 8;
    let total = support::scaled(1_000);
    let counter = Arc::new(AtomicU64::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(Recorder::new(Vec::new()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            rt.spawn(Worker {
                counter: counter.clone(),
                inside: inside.clone(),
                order: order.clone(),
            })
        })
        .collect();
    let mutex = Mutex::new();
    let results: Vec<_> = (0..total)
        .map(|i| {
            let worker = workers[i % WORKERS].clone();
            mutex.with(move || {
                dispatch(&worker, move |w: &mut Worker| {
                    assert_eq!(w.inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    let value = w.counter.load(Ordering::Relaxed);
                    w.counter.store(value + 1, Ordering::Relaxed);
                    w.order.lock().push(i);
                    w.inside.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
        })
        .collect();
    let values = rt.block_on(collect(results)).unwrap();
    assert_eq!(values, (0..total).collect::<Vec<_>>());
    assert_eq!(counter.load(Ordering::SeqCst), total as u64);
    assert_eq!(*order.lock(), (0..total).collect::<Vec<_>>());
    assert!(!mutex.is_locked());
});

#[test]
fn with_releases_on_every_outcome() {
    let mutex = Mutex::new();
    assert_eq!(mutex.with(|| Future::ready(1)).get(), Some(1));
    assert!(!mutex.is_locked());

    assert!(mutex.with(|| Future::<u32>::failed("no")).is_failed());
    assert!(!mutex.is_locked());

    let dropped = Promise::<u32>::new();
    let abandoned = mutex.with({
        let f = dropped.future();
        move || f
    });
    assert!(mutex.is_locked(), "held while f's future is pending");
    drop(dropped);
    assert!(abandoned.is_abandoned());
    assert!(!mutex.is_locked());

    support::quiet_expected_panics();
    let panicked = mutex.with(|| -> Future<u32> { panic!("{}", support::EXPECTED_PANIC) });
    assert!(panicked.is_failed());
    assert!(!mutex.is_locked());
}

#[test]
fn discarding_with_withdraws_a_waiter_or_reaches_the_running_future() {
    let mutex = Mutex::new();
    let busy = Promise::<()>::new();
    let running = mutex.with({
        let f = busy.future();
        move || f
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let withdrawn = mutex.with({
        let ran = ran.clone();
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
            Future::ready(())
        }
    });
    withdrawn.discard();
    assert!(withdrawn.is_discarded());
    running.discard();
    assert!(busy.has_discard(), "the request reaches the running future");
    assert!(mutex.is_locked(), "held until that future completes");
    busy.discard();
    assert!(running.is_discarded());
    assert!(!mutex.is_locked());
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a withdrawn closure never runs"
    );
}

#[test]
fn a_discarded_waiter_leaves_the_line() {
    let mutex = Mutex::new();
    let held = guard(&mutex.lock());
    let given_up = mutex.lock();
    let next = mutex.lock();
    given_up.discard();
    assert!(given_up.is_discarded());
    drop(held);
    assert!(next.is_ready());
    drop(guard(&next));
    assert!(!mutex.is_locked());
}

#[test]
fn a_discard_racing_the_grant_never_leaves_the_mutex_held() {
    for round in 0..support::scaled(5_000) {
        let mutex = Mutex::new();
        let held = guard(&mutex.lock());
        let racing = mutex.lock();
        let behind = mutex.lock();
        let barrier = Arc::new(Barrier::new(2));
        let releaser = {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                drop(held);
            })
        };
        let discarder = {
            let (barrier, racing) = (barrier.clone(), racing.clone());
            std::thread::spawn(move || {
                barrier.wait();
                racing.discard();
            })
        };
        releaser.join().unwrap();
        discarder.join().unwrap();
        // Exactly one of the two waiters holds a guard.
        let racing_guard = racing.value().and_then(Owned::take);
        let behind_guard = behind.value().and_then(Owned::take);
        match (&racing_guard, &behind_guard) {
            (Some(_), None) => assert!(behind.is_pending(), "round {round}"),
            (None, Some(_)) => assert!(!racing.is_pending(), "round {round}"),
            _ => panic!("round {round}: {racing:?} and {behind:?}"),
        }
        drop(racing_guard);
        assert!(behind.is_ready(), "round {round}");
        drop(behind.value().and_then(Owned::take));
        drop(behind_guard);
        assert!(!mutex.is_locked(), "round {round}: left held");
        assert!(mutex.lock().is_ready());
    }
}

#[test]
fn a_granted_future_dropped_without_taking_the_guard_unlocks() {
    let mutex = Mutex::new();

    // Ready at once, never taken.
    let ready = mutex.lock();
    assert!(mutex.is_locked());
    let kept = ready.clone();
    drop(ready);
    assert!(mutex.is_locked(), "a clone still holds the guard");
    drop(kept);
    assert!(!mutex.is_locked());

    // Pending when dropped, granted later.
    let held = guard(&mutex.lock());
    drop(mutex.lock());
    let next = mutex.lock();
    drop(held);
    assert!(next.is_ready(), "the dropped waiter passed the lock on");
    drop(next);
    assert!(!mutex.is_locked());

    // A taken guard outlives its future.
    let lock = mutex.lock();
    let taken = guard(&lock);
    drop(lock);
    assert!(mutex.is_locked());
    drop(taken);
    assert!(!mutex.is_locked());
}

#[test]
fn a_long_line_of_dropped_waiters_is_handed_over_in_constant_stack() {
    let mutex = Mutex::new();
    let held = guard(&mutex.lock());
    for _ in 0..100_000 {
        drop(mutex.lock());
    }
    let last = mutex.lock();
    drop(held);
    assert!(last.is_ready());
    drop(last);
    assert!(!mutex.is_locked());
}

#[test]
fn a_long_line_of_with_runs_in_constant_stack() {
    let mutex = Mutex::new();
    let held = guard(&mutex.lock());
    let count = Arc::new(AtomicUsize::new(0));
    let results: Vec<_> = (0..100_000)
        .map(|_| {
            let count = count.clone();
            mutex.with(move || {
                count.fetch_add(1, Ordering::Relaxed);
                Future::ready(())
            })
        })
        .collect();
    drop(held);
    assert_eq!(count.load(Ordering::SeqCst), 100_000);
    assert!(results.iter().all(Future::is_ready));
    assert!(!mutex.is_locked());
}
