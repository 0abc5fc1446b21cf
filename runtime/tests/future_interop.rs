//! `std::future::Future` interop: `.await` on a procession `Future` (in `spawn_async`, in
//! `block_on`, and hand-polled with no runtime), and `spawn_async` turning Rust futures into
//! procession ones.

use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use procession::{spawn_async, Error, Future, Promise, Runtime};

fn paused_runtime() -> Runtime {
    Runtime::builder().workers(2).paused().build().unwrap()
}

/// A waker that only counts its wake-ups, for polling without any runtime.
#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    fn new() -> (Arc<Self>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        (counter.clone(), Waker::from(counter))
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll<F: std::future::Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

#[test]
fn await_inside_spawn_async_waits_for_the_value() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let clock = rt.clock();
    let promise = Promise::<u32>::new();
    let awaited = promise.future();
    let task = spawn_async(async move { awaited.await.map(|v| v * 2) });
    clock.settle(); // polled once, now waiting
    assert!(task.is_pending());
    promise.set(21);
    clock.settle();
    assert!(matches!(task.get(), Some(Ok(42))), "{:?}", task.get());
}

#[test]
fn await_inside_block_on_and_block_on_a_future_directly() {
    let rt = paused_runtime();
    let promise = Promise::<u32>::new();
    let awaited = promise.future();
    let kept = awaited.clone();
    // The promise is completed by a task on the runtime while this thread blocks.
    let _setter = rt.spawn_async(async move { promise.set(5) });
    let sum = rt.block_on(async move {
        let first = awaited.clone().await?;
        let again = awaited.await?; // awaiting gives a clone; the value stays
        Ok::<_, Error>(first + again)
    });
    assert_eq!(sum.unwrap(), 10);
    assert_eq!(rt.block_on(kept).unwrap(), 5);
}

#[test]
fn await_reports_why_there_is_no_value() {
    let rt = paused_runtime();

    let failed = rt.block_on(Future::<u32>::failed("no disk")).unwrap_err();
    assert!(failed.is_failed() && !failed.is_abandoned() && !failed.is_discarded());
    assert_eq!(failed.failure().unwrap().message(), "no disk");

    let promise = Promise::<u32>::new();
    let orphan = promise.future();
    let _dropper = rt.spawn_async(async move { drop(promise) });
    let abandoned = rt.block_on(async move { orphan.await }).unwrap_err();
    assert!(abandoned.is_abandoned() && !abandoned.is_failed());

    let promise = Promise::<u32>::new();
    let cancelled = promise.future();
    promise.discard();
    let discarded = rt.block_on(cancelled).unwrap_err();
    assert!(discarded.is_discarded() && !discarded.is_failed());
}

#[test]
fn dropping_an_awaiter_does_not_discard_the_future() {
    let promise = Promise::<u32>::new();
    let (_, waker) = CountingWaker::new();
    let mut wait = promise.future().into_future();
    assert!(poll(&mut wait, &waker).is_pending());
    drop(wait);
    assert!(!promise.has_discard());

    // The same through a task on the runtime that is cancelled while awaiting.
    let rt = paused_runtime();
    let _g = rt.enter();
    let awaited = promise.future();
    let task = spawn_async(async move { awaited.await });
    rt.clock().settle();
    task.discard();
    rt.clock().settle();
    assert!(task.is_discarded());
    assert!(!promise.has_discard());
    promise.set(1);
}

#[test]
fn a_hand_polled_await_is_woken_exactly_once() {
    let promise = Promise::<u32>::new();
    let (counter, waker) = CountingWaker::new();
    let mut wait = IntoFuture::into_future(promise.future());
    for _ in 0..3 {
        assert!(poll(&mut wait, &waker).is_pending());
    }
    assert_eq!(counter.wakes(), 0);
    promise.set(8);
    // Three polls, one wake: the first poll registered the only callback.
    assert_eq!(counter.wakes(), 1);
    assert!(matches!(poll(&mut wait, &waker), Poll::Ready(Ok(8))));
    assert_eq!(counter.wakes(), 1);
}

#[test]
fn a_later_poll_replaces_the_waker_instead_of_adding_one() {
    let promise = Promise::<u32>::new();
    let (first, first_waker) = CountingWaker::new();
    let (second, second_waker) = CountingWaker::new();
    let mut wait = IntoFuture::into_future(promise.future());
    assert!(poll(&mut wait, &first_waker).is_pending());
    assert!(poll(&mut wait, &second_waker).is_pending());
    assert!(poll(&mut wait, &second_waker).is_pending());
    // Completed from another thread, as a worker would.
    std::thread::spawn(move || promise.set(1)).join().unwrap();
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
}

#[test]
fn a_complete_future_is_ready_on_the_first_poll_without_a_wake() {
    let (counter, waker) = CountingWaker::new();
    let mut ready = IntoFuture::into_future(Future::ready(3u32));
    assert!(matches!(poll(&mut ready, &waker), Poll::Ready(Ok(3))));
    let mut failed = IntoFuture::into_future(Future::<u32>::failed("x"));
    assert!(matches!(poll(&mut failed, &waker), Poll::Ready(Err(e)) if e.is_failed()));
    assert_eq!(counter.wakes(), 0);
}

#[test]
fn spawn_async_output_becomes_a_future() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let task = spawn_async(async { Future::ready(20u32).await.unwrap() + 1 });
    assert_eq!(rt.block_on(task).unwrap(), 21);
}

#[test]
fn a_panicking_async_block_fails_its_future() {
    let rt = paused_runtime();
    let _g = rt.enter();
    let task = spawn_async(async {
        if Future::ready(true).await.unwrap() {
            panic!("async boom");
        }
        0u32
    });
    let error = rt.block_on(task.clone()).unwrap_err();
    assert!(error.is_failed());
    let message = error.failure().unwrap().message().to_owned();
    assert!(message.contains("async boom"), "{message}");
    assert!(task.is_failed());
    // The runtime survives the panic.
    assert_eq!(rt.block_on(spawn_async(async { 1u32 })).unwrap(), 1);
}
