//! Long chains and loops complete in constant stack, and callbacks never run under a future's
//! lock. Each long test runs on a thread with a 256 KiB stack, so stack growth per step would
//! overflow it long before a million steps.

mod support;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use procession::{loop_, Future, Promise};

const STEPS: u64 = 1_000_000;
const SMALL_STACK: usize = 256 * 1024;

/// Runs `body` on a thread with a small stack; a stack overflow aborts the test binary.
fn on_small_stack(body: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name("small-stack".into())
        .stack_size(SMALL_STACK)
        .spawn(body)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_million_step_chain_completes_without_stack_overflow() {
    on_small_stack(|| {
        let promise = Promise::<u64>::new();
        let mut end = promise.future();
        for step in 0..STEPS {
            // Alternate the two shapes: `then` flattens through a second future, `map` does not.
            end = if step % 2 == 0 {
                end.then(|x| Future::ready(x + 1))
            } else {
                end.map(|x| x + 1)
            };
        }
        assert!(end.is_pending());
        promise.set(0);
        assert_eq!(end.get(), Some(STEPS));
    });
}

#[test]
fn a_million_ready_loop_rounds_complete_without_stack_overflow() {
    on_small_stack(|| {
        let mut next = 0u64;
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        let total = loop_(
            move || {
                next += 1;
                Future::ready(next)
            },
            move |n: &u64| {
                counted.fetch_add(1, Ordering::Relaxed);
                Future::ready(if *n == STEPS {
                    ControlFlow::Break(*n)
                } else {
                    ControlFlow::Continue(())
                })
            },
        );
        assert_eq!(total.get(), Some(STEPS));
        assert_eq!(rounds.load(Ordering::Relaxed) as u64, STEPS);
    });
}

#[test]
fn a_million_loop_rounds_completed_by_another_thread_complete() {
    on_small_stack(|| {
        // Every item is a pending promise that a second small-stack thread completes, so each
        // round resumes from a completion callback instead of the loop's own call.
        let (to_complete, incoming) = mpsc::channel::<(Promise<u64>, u64)>();
        let completer = thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let mut completed = 0u64;
                for (promise, value) in incoming {
                    promise.set(value);
                    completed += 1;
                }
                completed
            })
            .unwrap();

        let mut next = 0u64;
        let total = loop_(
            move || {
                next += 1;
                let promise = Promise::new();
                let item = promise.future();
                to_complete.send((promise, next)).unwrap();
                item
            },
            |n: &u64| {
                Future::ready(if *n == STEPS {
                    ControlFlow::Break(*n)
                } else {
                    ControlFlow::Continue(())
                })
            },
        );
        let (done, finished) = mpsc::channel();
        total.on_any(move |outcome| done.send(outcome.clone()).unwrap());
        assert_eq!(finished.recv().unwrap().unwrap(), STEPS);
        // The loop's `iterate` (and with it the sender) is dropped once it finishes.
        assert_eq!(completer.join().unwrap(), STEPS);
    });
}

#[test]
fn a_completion_callback_may_use_its_future_while_it_completes() {
    support::with_watchdog("a callback that could deadlock", || {
        let promise = Promise::<u32>::new();
        let future = promise.future();
        let (inner, observed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (f, i, o) = (future.clone(), inner.clone(), observed.clone());
        future.on_any(move |_| {
            // Each of these takes the future's lock; none may find it still held.
            f.discard();
            assert!(!f.is_pending());
            let i = i.clone();
            f.on_any(move |_| {
                i.fetch_add(1, Ordering::SeqCst);
            });
            o.fetch_add(1, Ordering::SeqCst);
        });
        promise.set(1);
        assert_eq!(observed.load(Ordering::SeqCst), 1);
        assert_eq!(inner.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_discard_callback_may_use_its_future_while_the_request_runs() {
    support::with_watchdog("a callback that could deadlock", || {
        let promise = Promise::<u32>::new();
        let future = promise.future();
        let completed = Arc::new(AtomicUsize::new(0));
        let (f, c) = (future.clone(), completed.clone());
        future.on_discard(move || {
            f.discard();
            assert!(f.is_pending() && f.has_discard());
            let c = c.clone();
            f.on_any(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            });
        });
        future.discard();
        assert_eq!(completed.load(Ordering::SeqCst), 0);
        promise.discard();
        assert_eq!(completed.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_chain_callback_may_use_an_earlier_future_of_the_chain() {
    support::with_watchdog("a callback that could deadlock", || {
        let promise = Promise::<u32>::new();
        let root = promise.future();
        let r = root.clone();
        let end = root.map(|x| x + 1).then(move |x| {
            // Runs inside the drain of `root`'s completion.
            r.discard();
            let seen = r.map(|y| y * 100);
            assert!(r.is_ready() && !r.is_pending());
            let value = *x;
            seen.map(move |y| y + value)
        });
        promise.set(1);
        assert_eq!(end.get(), Some(102));
    });
}
