//! Regressions from the review of the core: a user's bug in a callback never takes a runtime
//! thread down, settle waits for a process's whole ending, shutdown leaves no future pending,
//! discards and timers behave on long chains and long advances.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use procession::{
    after, dispatch, link, loop_, spawn_async, terminate, wait, Clock, Context, ExitReason, Future,
    Process, Promise, Runtime, Upid,
};

const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Idle;
impl Process for Idle {}

#[derive(Default)]
struct Watcher {
    exits: Vec<ExitReason>,
}
impl Process for Watcher {
    fn exited(&mut self, _: &mut Context<'_, Self>, _: &Upid, reason: &ExitReason) {
        self.exits.push(reason.clone());
    }
}

#[test]
fn a_panicking_observer_of_a_timer_does_not_stop_the_timer_thread() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let _entered = rt.enter();
    after(Duration::from_millis(1)).on_ready(|_| panic!("observer bug"));
    let later = after(Duration::from_millis(2));
    assert!(
        later.wait_for(PATIENCE),
        "timers still fire after an observer panicked"
    );
}

#[test]
fn a_panicking_observer_of_a_task_does_not_stop_the_worker() {
    let rt = Runtime::builder().workers(1).paused().build().unwrap();
    let _entered = rt.enter();
    spawn_async(async { 1 }).on_ready(|_| panic!("observer bug"));
    let pid = rt.spawn(Idle);
    assert_eq!(rt.block_on(dispatch(&pid, |_: &mut Idle| 7)).unwrap(), 7);
    rt.clock().settle();
}

#[test]
fn a_panicking_observer_of_wait_does_not_break_termination() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let pid = rt.spawn(Idle);
    wait(&pid).on_ready(|_| panic!("observer bug"));
    let second = wait(&pid);
    terminate(&pid);
    assert!(rt.block_on(second).is_ok());
    let other = rt.spawn(Idle);
    assert_eq!(rt.block_on(dispatch(&other, |_: &mut Idle| 1)).unwrap(), 1);
}

#[test]
fn a_panicking_observer_of_an_abandoned_dispatch_does_not_abort_deterministic_mode() {
    let rt = Runtime::builder().deterministic(5).build().unwrap();
    let pid = rt.spawn(Idle);
    let crash = dispatch(&pid, |_: &mut Idle| -> u32 { panic!("handler bug") });
    crash.on_abandoned(|| panic!("observer bug"));
    rt.block_on(wait(&pid)).unwrap();
    assert!(crash.is_abandoned());
}

#[test]
fn settle_waits_for_the_whole_ending_of_a_process() {
    let rt = Runtime::builder().workers(2).paused().build().unwrap();
    let clock = rt.clock();
    for _ in 0..200 {
        let watcher = rt.spawn(Watcher::default());
        let target = rt.spawn(Idle);
        let upid = target.upid();
        rt.block_on(dispatch(&watcher, move |_: &mut Watcher| link(&upid)))
            .unwrap();
        terminate(&target);
        clock.settle();
        assert!(
            wait(&target).is_ready(),
            "wait completes before settle returns"
        );
        let exits = rt.block_on(dispatch(&watcher, |w: &mut Watcher| w.exits.clone()));
        assert_eq!(exits.unwrap(), vec![ExitReason::Normal]);
        terminate(&watcher);
    }
}

#[test]
fn shutdown_abandons_what_can_no_longer_complete() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let _entered = rt.enter();
    let timer = after(Duration::from_secs(3600));
    let promise = Promise::<u32>::new();
    let input = promise.future();
    let task = spawn_async(async move { input.await.unwrap_or(0) });
    drop(_entered);
    rt.shutdown();
    assert!(
        timer.is_abandoned(),
        "a timer that can never fire is abandoned"
    );
    promise.set(1);
    assert!(
        task.is_abandoned(),
        "a task woken after shutdown is abandoned"
    );
}

#[test]
fn discarding_the_end_of_a_long_chain_uses_constant_stack() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let promise = Promise::<u64>::new();
            let mut end = promise.future();
            for _ in 0..1_000_000 {
                end = end.map(|x| x + 1);
            }
            end.discard();
            assert!(promise.has_discard());
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn callbacks_run_with_the_runtime_current_where_they_were_registered() {
    let a = Runtime::builder().name("a").workers(1).build().unwrap();
    let b = Runtime::builder().name("b").workers(1).build().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let promise = Promise::<()>::new();
    {
        let _entered = a.enter();
        let seen = seen.clone();
        promise
            .future()
            .on_ready(move |_| *seen.lock() = format!("{:?}", Clock::current()));
    }
    let on_b = b.spawn(Idle);
    b.block_on(dispatch(&on_b, move |_: &mut Idle| promise.set(())))
        .unwrap();
    assert!(seen.lock().contains("\"a\""), "ran with {}", seen.lock());
}

#[test]
fn a_loop_resumed_from_another_thread_keeps_its_runtime() {
    let rt = Runtime::builder().workers(1).paused().build().unwrap();
    let _entered = rt.enter();
    let gate = Promise::<()>::new();
    let opened = gate.future();
    let mut round = 0;
    let looped = loop_(
        move || {
            round += 1;
            if round == 1 {
                opened.clone()
            } else {
                Future::ready(())
            }
        },
        // `after` needs a current runtime: the loop must carry it into the resumed round.
        |_| after(Duration::ZERO).map(|_| ControlFlow::Break(7u32)),
    );
    std::thread::spawn(move || gate.set(())).join().unwrap();
    rt.clock().settle();
    assert_eq!(looped.get(), Some(7));
}

#[test]
fn a_periodic_timer_fires_at_each_deadline_during_one_long_advance() {
    let rt = Runtime::builder().workers(1).paused().build().unwrap();
    let _entered = rt.enter();
    let clock = rt.clock();
    let start = clock.now();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    fn arm(ticks: Arc<Mutex<Vec<Duration>>>, start: Instant) {
        after(Duration::from_secs(1)).on_ready(move |_| {
            ticks.lock().push(Clock::current().now() - start);
            arm(ticks, start);
        });
    }
    arm(ticks.clone(), start);
    clock.advance(Duration::from_secs(10));
    let expected: Vec<Duration> = (1..=10).map(Duration::from_secs).collect();
    assert_eq!(*ticks.lock(), expected);
}

#[test]
fn a_callback_may_wait_for_a_future_completed_inside_it() {
    let outer = Promise::<u32>::new();
    let inner = Promise::<u32>::new();
    let inner_future = inner.future();
    inner_future.on_ready(|_| {});
    let result = Arc::new(AtomicUsize::new(0));
    let r = result.clone();
    outer.future().on_ready(move |&x| {
        inner.set(x + 1);
        // Registered on a completed future: runs at once, even inside a completion.
        let doubled = inner_future.map(|y| y * 2);
        assert!(doubled.wait_for(PATIENCE));
        r.store(doubled.get().unwrap() as usize, Ordering::SeqCst);
    });
    outer.set(1);
    assert_eq!(result.load(Ordering::SeqCst), 4);
}

#[test]
fn block_on_inside_a_deterministic_handler_panics_instead_of_hanging() {
    let rt = Runtime::builder().deterministic(9).build().unwrap();
    let pid = rt.spawn(Idle);
    let stuck = dispatch(&pid, |_: &mut Idle| {
        Future::ready(1).wait_for(Duration::from_secs(1))
    });
    rt.block_on(wait(&pid)).unwrap();
    assert!(
        stuck.is_abandoned(),
        "the handler panicked and its process ended"
    );
}

#[test]
fn an_abandoned_await_leaves_nothing_registered_on_a_pending_future() {
    use std::future::{Future as _, IntoFuture};
    use std::task::{Context as TaskContext, Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let token = Arc::new(Noop);
    for _ in 0..1000 {
        let waker = Waker::from(token.clone());
        let mut wait = future.clone().into_future();
        assert!(std::pin::Pin::new(&mut wait)
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
        drop(wait);
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "every registration (and its waker) was withdrawn"
    );
    assert!(!future.wait_for(Duration::from_millis(1)));
    promise.set(3);
    assert_eq!(future.get(), Some(3));
}

#[test]
fn duration_max_means_a_deadline_that_never_comes_not_a_panic() {
    let rt = Runtime::builder()
        .paused()
        .shutdown_timeout(Duration::MAX)
        .build()
        .unwrap();
    let _entered = rt.enter();
    let never = after(Duration::MAX);
    let pending = Promise::<u32>::new();
    let bounded = pending.future().after(Duration::MAX, |_| Future::ready(0));
    rt.clock().advance(Duration::from_secs(3600 * 24 * 365));
    rt.clock().settle();
    assert!(never.is_pending() && bounded.is_pending());
    assert!(Future::ready(1).wait_for(Duration::MAX));
    pending.set(5);
    assert_eq!(bounded.get(), Some(5));
    // Advancing by the most there is fires what is due, however far.
    rt.clock().advance(Duration::MAX);
    assert!(never.is_ready());
    drop(_entered);
    assert!(rt.shutdown().is_complete());
}

#[test]
fn shutdown_after_a_mass_terminate_ends_every_process_on_a_bounded_stack() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let pids: Vec<_> = (0..50_000).map(|_| rt.spawn(Idle)).collect();
    let _entered = rt.enter();
    for pid in &pids {
        terminate(pid);
    }
    drop(_entered);
    let report = rt.shutdown();
    assert!(report.is_complete(), "{report:?}");
}
