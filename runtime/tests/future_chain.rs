//! Chaining: `then` (flattening), `map`, `repair`, `recover` and `after`, with a paused clock
//! for everything that waits.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use procession::{after, Future, Promise, Runtime};

/// A runtime whose clock starts paused, so timers fire only when the test advances it.
fn paused_runtime() -> Runtime {
    Runtime::builder().workers(1).paused().build().unwrap()
}

fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    (count.clone(), count)
}

#[test]
fn then_follows_the_future_its_function_returns() {
    let first = Promise::<u32>::new();
    let second = Promise::<String>::new();
    let inner = second.future();
    let result = first.future().then(move |_| inner);
    first.set(1);
    // Flattened: the result waits for the inner future, it is not a future of a future.
    assert!(result.is_pending());
    second.set("done".to_owned());
    assert_eq!(result.get().as_deref(), Some("done"));

    let result = Future::ready(2u32).then(|x| Future::ready(x * 10));
    assert_eq!(result.get(), Some(20));
}

#[test]
fn then_ends_as_the_inner_future_ends() {
    let failing = Future::ready(1u32).then(|_| Future::<u32>::failed("inner failed"));
    assert_eq!(support::failure_message(&failing), "inner failed");

    let inner = Promise::<u32>::new();
    let follow = inner.future();
    let abandoned = Future::ready(1u32).then(move |_| follow);
    drop(inner);
    assert!(abandoned.is_abandoned());
}

#[test]
fn map_transforms_the_value() {
    let promise = Promise::new();
    let result = promise.future().map(|s: &String| s.len()).map(|n| n * 2);
    assert!(result.is_pending());
    promise.set("four".to_owned());
    assert_eq!(result.get(), Some(8));
}

#[test]
fn failure_propagates_through_a_chain_without_running_it() {
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let (c1, c2, c3) = (c.clone(), c.clone(), c.clone());
    let end = promise
        .future()
        .then(move |x| {
            c1.fetch_add(1, Ordering::SeqCst);
            Future::ready(*x)
        })
        .map(move |x| {
            c2.fetch_add(1, Ordering::SeqCst);
            *x
        })
        .then(move |x| {
            c3.fetch_add(1, Ordering::SeqCst);
            Future::ready(*x)
        });
    promise.fail("root cause");
    assert_eq!(support::failure_message(&end), "root cause");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn discarded_and_abandoned_inputs_pass_through_a_chain() {
    let promise = Promise::<u32>::new();
    let end = promise.future().map(|x| x + 1).then(|x| Future::ready(*x));
    promise.discard();
    assert!(end.is_discarded());

    let promise = Promise::<u32>::new();
    let end = promise.future().map(|x| x + 1).then(|x| Future::ready(*x));
    drop(promise);
    assert!(end.is_abandoned());
}

#[test]
fn a_panic_in_then_fails_the_result_with_the_message() {
    let promise = Promise::<u32>::new();
    let result = promise
        .future()
        .then(|_| -> Future<u32> { panic!("boom in then") });
    promise.set(1);
    assert!(result.is_failed());
    assert!(
        support::failure_message(&result).contains("boom in then"),
        "{}",
        support::failure_message(&result)
    );
}

#[test]
fn a_panic_in_map_fails_the_result_with_the_message() {
    let result = Future::ready(3u32).map(|x| -> u32 { panic!("boom in map {x}") });
    assert!(result.is_failed());
    assert!(
        support::failure_message(&result).contains("boom in map 3"),
        "{}",
        support::failure_message(&result)
    );
    // The failure flows on like any other.
    assert!(result.map(|x| x + 1).is_failed());
}

#[test]
fn repair_turns_a_failure_into_a_value() {
    let promise = Promise::<u32>::new();
    let seen = Arc::new(Mutex::new(String::new()));
    let s = seen.clone();
    let repaired = promise.future().repair(move |failure| {
        *s.lock().unwrap() = failure.message().to_owned();
        0
    });
    promise.fail("oops");
    assert_eq!(repaired.get(), Some(0));
    assert_eq!(*seen.lock().unwrap(), "oops");

    let later = Promise::<u32>::new();
    let follow = later.future();
    let repaired = Future::<u32>::failed("x").repair(move |_| follow);
    assert!(repaired.is_pending());
    later.set(5);
    assert_eq!(repaired.get(), Some(5));

    let still_failing = Future::<u32>::failed("x").repair(|_| Future::failed("y"));
    assert_eq!(support::failure_message(&still_failing), "y");
}

#[test]
fn repair_passes_other_outcomes_through_without_running() {
    let (calls, c) = counter();
    let repair = move |future: &Future<u32>| {
        let c = c.clone();
        future.repair(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            0
        })
    };
    assert_eq!(repair(&Future::ready(4)).get(), Some(4));
    let promise = Promise::<u32>::new();
    let discarded = repair(&promise.future());
    promise.discard();
    assert!(discarded.is_discarded());
    let promise = Promise::<u32>::new();
    let abandoned = repair(&promise.future());
    drop(promise);
    assert!(abandoned.is_abandoned());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn recover_turns_any_error_into_a_value() {
    let recover = |future: &Future<u32>| {
        future.recover(|error| {
            if error.is_failed() {
                1
            } else if error.is_discarded() {
                2
            } else if error.is_abandoned() {
                3
            } else {
                99
            }
        })
    };
    assert_eq!(recover(&Future::failed("x")).get(), Some(1));
    let promise = Promise::<u32>::new();
    let discarded = recover(&promise.future());
    promise.discard();
    assert_eq!(discarded.get(), Some(2));
    let promise = Promise::<u32>::new();
    let abandoned = recover(&promise.future());
    drop(promise);
    assert_eq!(abandoned.get(), Some(3));

    let (calls, c) = counter();
    let passed = Future::ready(7u32).recover(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        0
    });
    assert_eq!(passed.get(), Some(7));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn after_times_out_exactly_at_the_deadline() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let clock = rt.clock();
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let answer = promise.future().after(Duration::from_secs(3600), move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Future::failed("timed out")
    });
    clock.advance(Duration::new(3599, 999_999_999));
    assert!(answer.is_pending(), "fired one nanosecond early");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(support::failure_message(&answer), "timed out");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(rt.stats().armed_timers, 0);
    // The input is untouched by the timeout; completing it later changes nothing.
    promise.set(1);
    assert!(answer.is_failed());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn after_passes_an_input_that_completes_in_time_and_cancels_its_timer() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let answer = promise.future().after(Duration::from_secs(10), move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Future::ready(0)
    });
    assert_eq!(rt.stats().armed_timers, 1);
    rt.clock().advance(Duration::from_secs(9));
    promise.set(42);
    assert_eq!(answer.get(), Some(42));
    assert_eq!(rt.stats().armed_timers, 0);
    rt.clock().advance(Duration::from_secs(60));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn after_on_an_abandoned_input_ends_abandoned_at_once() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let answer = promise.future().after(Duration::from_secs(30), move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Future::ready(0)
    });
    assert_eq!(rt.stats().armed_timers, 1);
    drop(promise);
    assert!(answer.is_abandoned());
    assert_eq!(rt.stats().armed_timers, 0, "the timer was not cancelled");
    rt.clock().advance(Duration::from_secs(30));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn after_calls_its_function_even_after_a_discard_request() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let answer = promise
        .future()
        .after(Duration::from_secs(5), move |input| {
            c.fetch_add(1, Ordering::SeqCst);
            assert!(input.is_pending() && input.has_discard());
            Future::ready(7)
        });
    answer.discard();
    assert!(promise.has_discard(), "the request reaches the input");
    assert!(answer.is_pending());
    rt.clock().advance(Duration::from_secs(5));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(answer.get(), Some(7));
}

#[test]
fn a_panic_in_the_after_function_fails_the_result() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let promise = Promise::<u32>::new();
    let answer = promise
        .future()
        .after(Duration::from_secs(1), |_| -> Future<u32> {
            panic!("timeout handler broke")
        });
    rt.clock().advance(Duration::from_secs(1));
    assert!(support::failure_message(&answer).contains("timeout handler broke"));
}

#[test]
fn timers_with_the_same_deadline_fire_in_creation_order() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let order = Arc::new(Mutex::new(Vec::new()));
    // Created latest-deadline first, so firing in creation order alone would be wrong.
    let deadlines = [(0, 20), (1, 10), (2, 10), (3, 10), (4, 15), (5, 20)];
    let timers: Vec<_> = deadlines
        .iter()
        .map(|&(index, secs)| {
            let order = order.clone();
            let timer = after(Duration::from_secs(secs));
            timer.on_ready(move |_| order.lock().unwrap().push(index));
            timer
        })
        .collect();
    rt.clock().advance(Duration::from_secs(20));
    assert_eq!(*order.lock().unwrap(), vec![1, 2, 3, 4, 0, 5]);
    assert!(timers.iter().all(Future::is_ready));
}

#[test]
fn advance_on_an_unpaused_clock_does_nothing() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let _g = rt.enter();
    let clock = rt.clock();
    assert!(!clock.is_paused());
    let timer = after(Duration::from_secs(3600));
    let before = clock.now();
    clock.advance(Duration::from_secs(3600));
    clock.update(before + Duration::from_secs(7200));
    assert!(timer.is_pending());
    assert!(clock.now() < before + Duration::from_secs(3600));
    assert_eq!(rt.stats().armed_timers, 1);
}

#[test]
fn then_runs_with_the_runtime_current_at_registration() {
    let rt = paused_runtime();
    let promise = Promise::<u64>::new();
    let timed = {
        let _g = rt.enter();
        // `after` inside the function needs a current runtime; the completing thread has none.
        promise
            .future()
            .then(|secs| after(Duration::from_secs(*secs)))
    };
    std::thread::spawn(move || promise.set(5)).join().unwrap();
    assert!(timed.is_pending(), "{:?}", timed.error());
    rt.clock().advance(Duration::from_secs(5));
    assert!(timed.is_ready());
}
