//! Outcome accounting: each way a future ends bumps its own counter once, on the thread that
//! completed it.

use std::thread;

use procession::{Future, Outcomes, Promise};

/// What completed on this thread while `f` ran.
fn during(f: impl FnOnce()) -> Outcomes {
    let before = Outcomes::on_this_thread();
    f();
    Outcomes::on_this_thread().since(before)
}

fn counts(ready: u64, failed: u64, discarded: u64, abandoned: u64) -> Outcomes {
    let mut outcomes = Outcomes::default();
    outcomes.ready = ready;
    outcomes.failed = failed;
    outcomes.discarded = discarded;
    outcomes.abandoned = abandoned;
    outcomes
}

#[test]
fn each_end_state_bumps_exactly_its_counter() {
    assert_eq!(during(|| Promise::new().set(1)), counts(1, 0, 0, 0));
    assert_eq!(
        during(|| Promise::<u32>::new().fail("no")),
        counts(0, 1, 0, 0)
    );
    assert_eq!(
        during(|| Promise::<u32>::new().discard()),
        counts(0, 0, 1, 0)
    );
    assert_eq!(during(|| drop(Promise::<u32>::new())), counts(0, 0, 0, 1));
}

#[test]
fn a_future_counts_once_however_many_observe_it() {
    let delta = during(|| {
        let promise = Promise::new();
        let future = promise.future();
        let clone = future.clone();
        future.on_any(|_| {});
        clone.on_ready(|_: &u32| {});
        promise.set(7);
        assert_eq!(clone.get(), Some(7));
    });
    assert_eq!(delta, counts(1, 0, 0, 0));
}

#[test]
fn futures_born_complete_are_not_counted() {
    let delta = during(|| {
        assert!(Future::ready(1).is_ready());
        assert!(Future::<u32>::failed("no").is_failed());
    });
    assert_eq!(delta, Outcomes::default());
}

#[test]
fn a_chain_counts_each_link() {
    let ready = during(|| {
        let promise = Promise::new();
        let end = promise
            .future()
            .then(|x: &u32| Future::ready(x + 1))
            .map(|x| x * 2)
            .then(|x| Future::ready(x + 3));
        promise.set(1);
        assert_eq!(end.get(), Some(7));
    });
    // The promise and three links; the `Future::ready`s inside were born complete.
    assert_eq!(ready, counts(4, 0, 0, 0));

    let failed = during(|| {
        let promise = Promise::<u32>::new();
        let end = promise.future().map(|x| x + 1).map(|x| x + 1);
        promise.fail("broken");
        assert!(end.is_failed());
    });
    assert_eq!(failed, counts(0, 3, 0, 0));

    let abandoned = during(|| {
        let promise = Promise::<u32>::new();
        let end = promise.future().map(|x| x + 1);
        drop(promise);
        assert!(end.is_abandoned());
    });
    assert_eq!(abandoned, counts(0, 0, 0, 2));
}

#[test]
fn completions_on_another_thread_are_counted_there_only() {
    let here = during(|| {
        let there = thread::spawn(|| {
            during(|| {
                for n in 0..5 {
                    Promise::new().set(n);
                }
                drop(Promise::<u32>::new());
            })
        })
        .join()
        .unwrap();
        assert_eq!(there, counts(5, 0, 0, 1));
    });
    assert_eq!(here, Outcomes::default());
}

#[test]
fn a_future_completed_here_by_another_threads_promise_counts_where_it_completed() {
    let promise = Promise::new();
    let future = promise.future();
    let here = during(|| {
        let there = thread::spawn(move || during(|| promise.set(3)))
            .join()
            .unwrap();
        assert_eq!(there, counts(1, 0, 0, 0));
    });
    assert_eq!(future.get(), Some(3));
    assert_eq!(here, Outcomes::default());
}

#[test]
fn later_minus_earlier_is_since() {
    let before = Outcomes::on_this_thread();
    Promise::new().set(());
    let after = Outcomes::on_this_thread();
    assert_eq!(after - before, after.since(before));
    assert_eq!((after - before).ready, 1);
    assert_eq!(before - after, Outcomes::default());
}
