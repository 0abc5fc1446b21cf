//! Latch: one trigger wins, every waiter (early or late) is released exactly once, a waiter's
//! discard stays its own, and a latch dropped untriggered abandons its waiters.

#[macro_use]
mod support;

use procession::{dispatch, Latch, Process};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn latch_is_send_and_sync() {
    assert_send_sync::<Latch>();
}

#[test]
fn only_the_first_trigger_counts() {
    let latch = Latch::new();
    assert!(!latch.is_triggered());
    assert!(latch.trigger());
    assert!(latch.is_triggered());
    assert!(!latch.trigger());
    assert!(!latch.trigger());
    assert!(latch.is_triggered());
}

#[test]
fn every_waiter_is_released_once() {
    let latch = Latch::new();
    let fired = Arc::new(AtomicUsize::new(0));
    let early: Vec<_> = (0..100).map(|_| latch.future()).collect();
    for waiter in &early {
        let fired = fired.clone();
        waiter.on_ready(move |()| {
            fired.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert!(early.iter().all(|w| w.is_pending()));
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    latch.trigger();
    assert!(early.iter().all(|w| w.is_ready()));
    assert_eq!(fired.load(Ordering::SeqCst), 100);
    latch.trigger();
    assert_eq!(
        fired.load(Ordering::SeqCst),
        100,
        "a second trigger fires nothing"
    );
    let late = latch.future();
    assert!(
        late.is_ready(),
        "a waiter after the trigger is ready at once"
    );
}

#[test]
fn racing_triggers_have_exactly_one_winner() {
    for _ in 0..200 {
        let latch = Arc::new(Latch::new());
        let waiter = latch.future();
        let released = Arc::new(AtomicUsize::new(0));
        {
            let released = released.clone();
            waiter.on_ready(move |()| {
                released.fetch_add(1, Ordering::SeqCst);
            });
        }
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (latch, barrier) = (latch.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    latch.trigger()
                })
            })
            .collect();
        let wins = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(wins, 1);
        assert!(waiter.is_ready());
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_discarded_waiter_does_not_disturb_the_others() {
    let latch = Latch::new();
    let impatient = latch.future();
    let patient = latch.future();
    impatient.discard();
    assert!(impatient.has_discard());
    assert!(!patient.has_discard());
    assert!(impatient.is_pending() && patient.is_pending());
    assert!(!latch.is_triggered());
    assert!(latch.trigger());
    assert!(patient.is_ready());
    assert!(impatient.is_ready(), "the discard is only recorded");
}

#[test]
fn dropping_an_untriggered_latch_abandons_its_waiters() {
    let latch = Latch::new();
    let waiters: Vec<_> = (0..3).map(|_| latch.future()).collect();
    drop(latch);
    assert!(waiters.iter().all(|w| w.is_abandoned()));

    let triggered = Latch::new();
    let waiter = triggered.future();
    triggered.trigger();
    drop(triggered);
    assert!(waiter.is_ready(), "a trigger stands after the drop");
}

rt_test!(
    a_process_triggers_the_waiters_of_another_thread,
    |flavor, rt| {
        struct Starter(Arc<Latch>);
        impl Process for Starter {}

        let latch = Arc::new(Latch::new());
        let started = latch.future();
        let starter = rt.spawn(Starter(latch.clone()));
        let won = dispatch(&starter, |s: &mut Starter| s.0.trigger());
        let lost = dispatch(&starter, |s: &mut Starter| s.0.trigger());
        rt.block_on(started).unwrap();
        assert!(rt.block_on(won).unwrap());
        assert!(!rt.block_on(lost).unwrap());
        assert!(latch.is_triggered());
    }
);
