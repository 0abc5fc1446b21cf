//! Discard is a request that flows upstream: it reaches the producer, which decides; every
//! combinator passes it on to its inputs, and the runtime's own producers (timers, async tasks)
//! honour it.

mod support;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use procession::{
    after, await_all, collect, loop_, select, spawn_async, undiscardable, Future, Promise, Runtime,
};

fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    (count.clone(), count)
}

fn promises(n: usize) -> (Vec<Promise<u32>>, Vec<Future<u32>>) {
    let promises: Vec<_> = (0..n).map(|_| Promise::new()).collect();
    let futures = promises.iter().map(Promise::future).collect();
    (promises, futures)
}

#[test]
fn discard_is_only_a_request_until_the_producer_acts() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let (requests, r) = counter();
    let r2 = r.clone();
    future.on_discard(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    promise.on_discard(move || {
        r2.fetch_add(100, Ordering::SeqCst);
    });
    assert!(!future.has_discard());

    future.discard();
    future.discard(); // a second request runs nothing again
    assert!(future.is_pending());
    assert!(future.has_discard() && promise.has_discard());
    assert_eq!(requests.load(Ordering::SeqCst), 101);

    // Registered after the request: runs at once.
    let r = requests.clone();
    future.on_discard(move || {
        r.fetch_add(1000, Ordering::SeqCst);
    });
    assert_eq!(requests.load(Ordering::SeqCst), 1101);

    promise.discard();
    assert!(future.is_discarded());
}

#[test]
fn a_producer_may_ignore_the_request() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    future.discard();
    promise.set(3);
    assert_eq!(future.get(), Some(3));
}

#[test]
fn discard_callbacks_never_run_after_completion() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let (requests, r) = counter();
    future.on_discard(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    promise.set(1);
    future.discard();
    let r = requests.clone();
    future.on_discard(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(requests.load(Ordering::SeqCst), 0);
}

#[test]
fn discard_flows_upstream_through_a_three_step_then_chain() {
    let first = Promise::<u32>::new();
    let step1 = first.future().then(|x| Future::ready(x + 1));
    let step2 = step1.then(|x| Future::ready(x + 1));
    let step3 = step2.then(|x| Future::ready(x + 1));
    step3.discard();
    assert!(
        first.has_discard(),
        "the request did not reach the first promise"
    );
    assert!(step1.has_discard() && step2.has_discard());
    assert!(step3.is_pending());
    first.discard();
    assert!(step1.is_discarded() && step2.is_discarded() && step3.is_discarded());
}

#[test]
fn discard_reaches_the_future_a_then_function_returned() {
    let inner = Promise::<u32>::new();
    let follow = inner.future();
    let result = Future::ready(1u32).then(move |_| follow);
    result.discard();
    assert!(inner.has_discard());
    inner.discard();
    assert!(result.is_discarded());
}

#[test]
fn a_then_whose_input_becomes_ready_after_a_discard_request_ends_discarded() {
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let c2 = c.clone();
    let then = promise.future().then(move |x| {
        c.fetch_add(1, Ordering::SeqCst);
        Future::ready(*x)
    });
    let map = promise.future().map(move |x| {
        c2.fetch_add(1, Ordering::SeqCst);
        *x
    });
    then.discard();
    map.discard();
    // The producer ignores the request and answers anyway.
    promise.set(5);
    assert!(then.is_discarded() && map.is_discarded());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn discarding_after_reaches_its_input_and_an_honoured_discard_cancels_the_timer() {
    let rt = Runtime::builder().workers(1).paused().build().unwrap();
    let _g = rt.enter();
    let (calls, c) = counter();
    let promise = Promise::<u32>::new();
    let answer = promise.future().after(Duration::from_secs(10), move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Future::ready(0)
    });
    answer.discard();
    assert!(promise.has_discard());
    assert_eq!(
        rt.stats().armed_timers,
        1,
        "armed until the input completes"
    );
    promise.discard();
    assert!(answer.is_discarded());
    assert_eq!(rt.stats().armed_timers, 0);
    rt.clock().advance(Duration::from_secs(10));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn discarding_recover_reaches_its_input_and_recover_still_answers() {
    let promise = Promise::<u32>::new();
    let recovered = promise
        .future()
        .recover(|error| if error.is_discarded() { 1 } else { 2 });
    recovered.discard();
    assert!(promise.has_discard());
    promise.discard();
    assert_eq!(recovered.get(), Some(1));
}

#[test]
fn undiscardable_shields_its_input() {
    let promise = Promise::<u32>::new();
    let shielded = undiscardable(&promise.future());
    let chained = shielded.map(|x| x * 2);
    chained.discard();
    assert!(shielded.has_discard());
    assert!(!promise.has_discard(), "the shield let the request through");
    promise.set(4);
    assert_eq!(shielded.get(), Some(4));
    // `map` saw the request before its input was ready, so it ends discarded.
    assert!(chained.is_discarded());
}

#[test]
fn associate_passes_the_value_down_and_the_discard_up() {
    let source = Promise::<u32>::new();
    let tied = Promise::<u32>::new();
    let downstream = tied.future();
    tied.associate(source.future());
    downstream.discard();
    assert!(source.has_discard());
    source.set(9);
    assert_eq!(downstream.get(), Some(9));

    let source = Promise::<u32>::new();
    let tied = Promise::<u32>::new();
    let downstream = tied.future();
    tied.associate(source.future());
    source.fail("upstream failed");
    assert_eq!(
        downstream.error().unwrap().failure().unwrap().message(),
        "upstream failed"
    );

    let source = Promise::<u32>::new();
    let tied = Promise::<u32>::new();
    let downstream = tied.future();
    tied.associate(source.future());
    drop(source);
    assert!(downstream.is_abandoned());
}

#[test]
fn discarding_collect_await_all_or_select_reaches_every_input() {
    let (inputs, futures) = promises(3);
    collect(futures).discard();
    assert!(inputs.iter().all(Promise::has_discard), "collect");

    let (inputs, futures) = promises(3);
    await_all(futures).discard();
    assert!(inputs.iter().all(Promise::has_discard), "await_all");

    let (inputs, futures) = promises(3);
    select(futures).discard();
    assert!(inputs.iter().all(Promise::has_discard), "select");
}

/// A loop whose every item is a pending promise the test completes; counts rounds.
struct PendingLoop {
    items: Arc<Mutex<Vec<Promise<u32>>>>,
    iterations: Arc<AtomicUsize>,
    bodies: Arc<AtomicUsize>,
    output: Future<u32>,
}

fn pending_loop() -> PendingLoop {
    let items = Arc::new(Mutex::new(Vec::new()));
    let (iterations, i) = counter();
    let (bodies, b) = counter();
    let pushed = items.clone();
    let output = loop_(
        move || {
            i.fetch_add(1, Ordering::SeqCst);
            let promise = Promise::new();
            let future = promise.future();
            pushed.lock().unwrap().push(promise);
            future
        },
        move |_: &u32| {
            b.fetch_add(1, Ordering::SeqCst);
            Future::ready(ControlFlow::Continue(()))
        },
    );
    PendingLoop {
        items,
        iterations,
        bodies,
        output,
    }
}

#[test]
fn discarding_a_loop_discards_what_it_waits_on_and_stops_it() {
    let looped = pending_loop();
    // Taken out first: completing runs the next round, which pushes to `items`.
    let first = looped.items.lock().unwrap().remove(0);
    first.set(1); // one full round
    assert_eq!(looped.iterations.load(Ordering::SeqCst), 2);
    looped.output.discard();
    let waiting = looped.items.lock().unwrap().remove(0);
    assert!(waiting.has_discard());
    assert!(looped.output.is_pending());
    waiting.discard();
    assert!(looped.output.is_discarded());
    assert_eq!(looped.iterations.load(Ordering::SeqCst), 2);
    assert_eq!(looped.bodies.load(Ordering::SeqCst), 1);
}

#[test]
fn a_discarded_loop_stops_even_if_the_producer_answers() {
    let looped = pending_loop();
    looped.output.discard();
    let waiting = looped.items.lock().unwrap().remove(0);
    assert!(waiting.has_discard());
    waiting.set(1); // ignores the request
    assert!(looped.output.is_discarded());
    assert_eq!(looped.iterations.load(Ordering::SeqCst), 1);
    assert_eq!(looped.bodies.load(Ordering::SeqCst), 0);
}

#[test]
fn a_loop_body_may_discard_its_own_loop() {
    // The body is a callback of the loop; DESIGN lets a callback touch its own future.
    support::with_watchdog("a callback that could deadlock", || {
        let item = Promise::<u32>::new();
        let waited = Arc::new(Mutex::new(Some(item.future())));
        let own = Arc::new(Mutex::new(None::<Future<u32>>));
        let (bodies, b) = counter();
        let slot = own.clone();
        let output = loop_(
            move || waited.lock().unwrap().take().expect("a single round"),
            move |_: &u32| {
                b.fetch_add(1, Ordering::SeqCst);
                let output = slot.lock().unwrap().clone().unwrap();
                output.discard();
                Future::ready(ControlFlow::Continue(()))
            },
        );
        *own.lock().unwrap() = Some(output.clone());
        item.set(1);
        assert!(output.is_discarded());
        assert_eq!(bodies.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn discarding_the_after_timer_cancels_it() {
    let rt = Runtime::builder().workers(1).paused().build().unwrap();
    let _g = rt.enter();
    let timer = after(Duration::from_secs(60));
    let (fired, f) = counter();
    timer.on_ready(move |_| {
        f.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(rt.stats().armed_timers, 1);
    timer.discard();
    assert!(timer.is_discarded());
    assert_eq!(rt.stats().armed_timers, 0);
    rt.clock().advance(Duration::from_secs(120));
    assert_eq!(fired.load(Ordering::SeqCst), 0);
}

/// Counts drops, to prove the async block was dropped (cancelled) exactly once.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn discarding_spawn_async_drops_the_rust_future() {
    let rt = Runtime::builder().workers(2).paused().build().unwrap();
    let _g = rt.enter();
    let clock = rt.clock();
    let (drops, d) = counter();
    let (after_await, a) = counter();
    let never = Promise::<u32>::new();
    let awaited = never.future();
    let task = spawn_async(async move {
        let _guard = DropCount(d);
        let value = awaited.await;
        a.fetch_add(1, Ordering::SeqCst);
        value
    });
    clock.settle(); // the task has been polled and waits on `never`
    assert!(task.is_pending());
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    task.discard();
    clock.settle();
    assert!(task.is_discarded());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(after_await.load(Ordering::SeqCst), 0);
    // Dropping the awaiting Rust future did not discard the future it awaited.
    assert!(!never.has_discard());
}
