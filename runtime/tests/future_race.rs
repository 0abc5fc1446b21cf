//! Registration, completion and discard racing on real threads, many times over: every callback
//! runs exactly once and sees the value; a discard callback runs at most once, exactly when the
//! request came while the future was pending. (The loom models in `src/tests/loom_future_cell.rs`
//! check the same protocol exhaustively on small cases.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use procession::{Future, Promise};

/// Races per test; `PROCESSION_SEEDS` scales it up for a long run.
fn races() -> usize {
    std::env::var("PROCESSION_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

/// Registers `per_thread` callbacks on `future` that count themselves and check the value.
fn register(future: &Future<u32>, runs: &Arc<AtomicUsize>, per_thread: usize) {
    for _ in 0..per_thread {
        let runs = runs.clone();
        future.on_any(move |outcome| {
            assert_eq!(outcome.as_ref().ok(), Some(&7), "a callback saw the value");
            runs.fetch_add(1, Ordering::SeqCst);
        });
    }
}

#[test]
fn callbacks_registered_while_completing_each_run_once() {
    for _ in 0..races() {
        let promise = Promise::new();
        let future = promise.future();
        let runs = Arc::new(AtomicUsize::new(0));
        let start = Barrier::new(3);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    start.wait();
                    register(&future, &runs, 2);
                });
            }
            start.wait();
            promise.set(7);
        });
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "each of 4 callbacks ran once"
        );
        assert_eq!(future.get(), Some(7));
    }
}

#[test]
fn a_discard_request_racing_completion_runs_its_callback_only_while_pending() {
    for _ in 0..races() {
        let promise = Promise::new();
        let future = promise.future();
        let runs = Arc::new(AtomicUsize::new(0));
        let discards = Arc::new(AtomicUsize::new(0));
        let counted = discards.clone();
        promise.on_discard(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let start = Barrier::new(3);
        thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                register(&future, &runs, 1);
            });
            s.spawn(|| {
                start.wait();
                future.discard();
            });
            start.wait();
            promise.set(7);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the callback ran once");
        let discarded = discards.load(Ordering::SeqCst);
        assert!(discarded <= 1, "a discard callback ran twice");
        assert_eq!(
            discarded == 1,
            future.has_discard(),
            "the discard callback runs exactly when the request came while pending"
        );
    }
}
