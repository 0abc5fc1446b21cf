//! A future's state word hands each callback to exactly one runner, and no reader sees the outcome
//! before it is written, however registration, completion and discard interleave.
//!
//! Each model runs callbacks that count themselves and check the value they are given; after the
//! threads join, every callback has run exactly once (or, for a discard callback, at most once
//! and only while the cell was pending).

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

// Counters live in loom's `Arc`, which each callback holds: a callback leaked (neither run nor
// dropped) fails the model. The cells stay in std's `Arc`, which their methods take.
type Counter = loom::sync::Arc<AtomicUsize>;

use crate::future::callback::Callback;
use crate::future::cell::{Cell, Discard};

/// Explores every interleaving with up to three preemptions: each race here needs at most two,
/// and the bound keeps the three-thread models to seconds.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A callback that counts itself into `runs` and checks that it sees `Ok(7)`.
fn counting(runs: &Counter) -> Callback<u32> {
    let runs = runs.clone();
    Callback::new(move |outcome| {
        assert_eq!(
            outcome.as_ref().ok(),
            Some(&7),
            "a callback saw the outcome"
        );
        runs.fetch_add(1, Ordering::Relaxed);
    })
}

#[test]
fn loom_future_cell_first_callback_races_completion() {
    model(|| {
        let cell = Arc::new(Cell::<u32>::pending());
        let runs = Counter::new(AtomicUsize::new(0));
        let registrant = {
            let (cell, callback) = (cell.clone(), counting(&runs));
            thread::spawn(move || cell.on_complete(callback))
        };
        assert!(cell.complete(Ok(7)), "the first completion wins");
        assert!(!cell.complete(Ok(8)), "a second completion loses");
        registrant.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1, "the callback ran once");
        assert_eq!(cell.outcome().and_then(|o| o.as_ref().ok()), Some(&7));
    });
}

#[test]
fn loom_future_cell_two_registrants_race_completion() {
    model(|| {
        let cell = Arc::new(Cell::<u32>::pending());
        let runs = Counter::new(AtomicUsize::new(0));
        let registrants: Vec<_> = (0..2)
            .map(|_| {
                let (cell, callback) = (cell.clone(), counting(&runs));
                thread::spawn(move || cell.on_complete(callback))
            })
            .collect();
        cell.complete(Ok(7));
        for registrant in registrants {
            registrant.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::Relaxed), 2, "each callback ran once");
    });
}

#[test]
fn loom_future_cell_completions_race_and_one_wins() {
    model(|| {
        let cell = Arc::new(Cell::<u32>::pending());
        let runs = Counter::new(AtomicUsize::new(0));
        cell.on_complete(counting(&runs));
        let other = {
            let cell = cell.clone();
            thread::spawn(move || cell.complete(Ok(7)))
        };
        let mine = cell.complete(Ok(7));
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one completion wins");
        assert_eq!(runs.load(Ordering::Relaxed), 1, "the callback ran once");
    });
}

#[test]
fn loom_future_cell_discard_races_completion() {
    model(|| {
        let cell = Arc::new(Cell::<u32>::pending());
        let runs = Counter::new(AtomicUsize::new(0));
        let discards = Counter::new(AtomicUsize::new(0));
        cell.on_complete(counting(&runs));
        let discarder = {
            let (cell, discards) = (cell.clone(), discards.clone());
            thread::spawn(move || {
                let counted = discards.clone();
                cell.on_discard(Box::new(move || {
                    counted.fetch_add(1, Ordering::Relaxed);
                }));
                cell.request_discard();
            })
        };
        cell.complete(Ok(7));
        discarder.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1, "the callback ran once");
        let discarded = discards.load(Ordering::Relaxed);
        assert!(discarded <= 1, "a discard callback ran twice");
        assert_eq!(
            discarded == 1,
            cell.has_discard(),
            "a discard callback runs exactly when the request came while pending"
        );
    });
}

#[test]
fn loom_future_cell_completion_on_the_trampoline_races_registration() {
    model(|| {
        let outer = Arc::new(Cell::<u32>::pending());
        let inner = Arc::new(Cell::<u32>::pending());
        let runs = Counter::new(AtomicUsize::new(0));
        // Completing `inner` inside `outer`'s callback queues it on this thread's trampoline, so
        // its callbacks are taken later, by reading the state word again.
        let nested = inner.clone();
        outer.on_complete(Callback::new(move |_| {
            nested.complete(Ok(7));
        }));
        let registrant = {
            let (inner, callback) = (inner.clone(), counting(&runs));
            thread::spawn(move || inner.on_complete(callback))
        };
        outer.complete(Ok(1));
        registrant.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1, "the callback ran once");
    });
}

#[test]
fn loom_future_cell_discard_passes_upstream_only_while_pending() {
    model(|| {
        let upstream = Arc::new(Cell::<u32>::pending());
        let cell = Arc::new(Cell::<u32>::pending());
        let link: Arc<dyn Discard> = upstream.clone();
        cell.forward_discard_to(Arc::downgrade(&link));
        let discarder = {
            let cell = cell.clone();
            thread::spawn(move || cell.request_discard())
        };
        cell.complete(Ok(7));
        discarder.join().unwrap();
        assert_eq!(
            upstream.has_discard(),
            cell.has_discard(),
            "the request reached upstream exactly when it came while pending"
        );
    });
}

#[test]
fn loom_future_cell_removable_callback_races_completion_and_removal() {
    model(|| {
        let cell = Arc::new(Cell::<u32>::pending());
        let runs = Counter::new(AtomicUsize::new(0));
        let key = cell.on_complete_removable(counting(&runs));
        let completer = {
            let cell = cell.clone();
            thread::spawn(move || cell.complete(Ok(7)))
        };
        cell.remove_callback(key.expect("registered while pending"));
        assert!(completer.join().unwrap(), "the one completion wins");
        // Removed before the completion took it, or run by it: once at most, never leaked.
        assert!(runs.load(Ordering::Relaxed) <= 1, "the callback ran twice");
    });
}
