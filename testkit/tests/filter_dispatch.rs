//! Dispatch filters, after libprocess's `FUTURE_DISPATCH`, `DROP_DISPATCH(ES)` and
//! `EXPECT_NO_FUTURE_DISPATCHES` tests: typed handles from `#[process]` name their methods, and
//! a test waits for, drops or forbids a call by that name.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use procession::{delay, dispatch, process, Context, Pid, Process, Runtime};
use procession_testkit::{
    await_abandoned, await_ready, drop_dispatch, drop_dispatches, expect_no_future_dispatches,
    future_dispatch,
};

#[derive(Default)]
struct Counter {
    count: u64,
}

impl Process for Counter {}

#[process]
impl Counter {
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    pub fn reset(&mut self) {
        self.count = 0;
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[procession::test]
fn future_dispatch_sees_a_call_and_lets_it_run(runtime: &Runtime) {
    let counter = runtime.spawn(Counter::default());
    let called = future_dispatch(runtime, &counter, "add");
    let count = counter.count();
    assert_eq!(await_ready(&count), 0);
    assert!(called.is_pending(), "another method does not match");
    let sum = counter.add(2);
    await_ready(&called);
    assert_eq!(await_ready(&sum), 2);
}

#[procession::test]
fn drop_dispatch_abandons_the_first_call_only(runtime: &Runtime) {
    let counter = runtime.spawn(Counter::default());
    let dropped = drop_dispatch(runtime, &counter, "add");
    let first = counter.add(1);
    let second = counter.add(10);
    await_ready(&dropped);
    await_abandoned(&first);
    assert_eq!(await_ready(&second), 10);
}

#[procession::test]
fn a_dispatch_matches_by_target_and_method(runtime: &Runtime) {
    let a = runtime.spawn(Counter::default());
    let b = runtime.spawn(Counter::default());
    let dropped = drop_dispatch(runtime, &a, "add");
    assert_eq!(await_ready(&b.add(1)), 1, "another target");
    await_ready(&a.reset()); // another method
    let plain = dispatch(&a, |c: &mut Counter| c.add(5)); // a closure has no method name
    assert_eq!(await_ready(&plain), 5);
    assert!(dropped.is_pending());
    await_abandoned(&a.add(7));
    await_ready(&dropped);
    assert_eq!(await_ready(&a.count()), 5);
}

#[procession::test]
fn drop_dispatches_drops_every_call_while_its_guard_lives(runtime: &Runtime) {
    let a = runtime.spawn(Counter::default());
    let b = runtime.spawn(Counter::default());
    let outage = drop_dispatches(runtime, &a, "add");
    await_abandoned(&a.add(1));
    await_abandoned(&a.add(2));
    assert_eq!(await_ready(&b.add(3)), 3, "another target");
    assert_eq!(await_ready(&a.count()), 0, "another method");
    drop(outage);
    assert_eq!(await_ready(&a.add(4)), 4, "none of the dropped calls ran");
}

#[procession::test]
fn a_standing_dispatch_drop_wins_over_a_catching_rule(runtime: &Runtime) {
    let counter = runtime.spawn(Counter::default());
    let seen = future_dispatch(runtime, &counter, "add");
    let _outage = drop_dispatches(runtime, &counter, "add");
    await_abandoned(&counter.add(1));
    await_ready(&seen);
    assert_eq!(await_ready(&counter.count()), 0);
}

#[procession::test]
fn expect_no_future_dispatches_passes_when_none_match(runtime: &Runtime) {
    let a = runtime.spawn(Counter::default());
    let b = runtime.spawn(Counter::default());
    let quiet = expect_no_future_dispatches(runtime, &a, "add");
    await_ready(&a.reset());
    await_ready(&b.add(1));
    await_ready(&dispatch(&a, |c: &mut Counter| c.add(2))); // a closure has no method name
    quiet.check();
    drop(quiet);
    assert_eq!(await_ready(&a.add(3)), 5, "after the guard: allowed");
}

#[procession::test]
#[should_panic(expected = "saw dispatch of `add` to counter(1)@")]
fn expect_no_future_dispatches_fails_when_its_guard_drops(runtime: &Runtime) {
    let counter = runtime.spawn(Counter::default());
    let _quiet = expect_no_future_dispatches(runtime, &counter, "add");
    // Run all the same: the guard reports, it does not drop.
    assert_eq!(await_ready(&counter.add(2)), 2);
}

#[procession::test]
fn expect_no_future_dispatches_names_the_call_and_counts_the_rest(runtime: &Runtime) {
    let counter = runtime.spawn(Counter::default());
    let quiet = expect_no_future_dispatches(runtime, &counter, "reset");
    await_ready(&counter.reset());
    await_ready(&counter.reset());
    let failure = panic::catch_unwind(AssertUnwindSafe(|| quiet.check()));
    let text = *failure.unwrap_err().downcast::<String>().unwrap();
    std::mem::forget(quiet); // it would panic again on drop
    let call = format!("dispatch of `reset` to {}", counter.upid());
    assert!(
        text.starts_with(&format!("expect_no_future_dispatches({call}) made at ")),
        "{text}"
    );
    assert!(text.contains("filter_dispatch.rs"), "{text}");
    assert!(
        text.ends_with(&format!("saw {call} (and 1 more)")),
        "{text}"
    );
}

/// Calls `counter.add(1)` on itself after `period`, through the typed handle.
struct Ticker {
    counter: Pid<Counter>,
    period: Duration,
}

impl Process for Ticker {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        delay(self.period, &ctx.pid(), |t: &mut Ticker| {
            t.counter.add(1);
        });
    }
}

#[procession::test(paused)]
fn a_call_made_by_a_process_on_a_paused_clock(runtime: &Runtime) {
    let clock = runtime.clock();
    let counter = runtime.spawn(Counter::default());
    let ticked = future_dispatch(runtime, &counter, "add");
    runtime.spawn(Ticker {
        counter: counter.clone(),
        period: Duration::from_secs(30),
    });
    clock.settle();
    assert!(ticked.is_pending(), "not before the period");
    clock.advance(Duration::from_secs(29));
    clock.settle();
    assert!(ticked.is_pending());
    clock.advance(Duration::from_secs(1));
    clock.settle();
    assert!(ticked.is_ready());
    assert_eq!(await_ready(&counter.count()), 1);
}

#[test]
fn exactly_one_of_many_racing_calls_is_dropped() {
    for iteration in 0..50 {
        let runtime = Runtime::builder().workers(2).build().unwrap();
        let counter = runtime.spawn(Counter::default());
        let dropped = drop_dispatch(&runtime, &counter, "add");
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..25).map(|_| counter.add(1)).collect::<Vec<_>>())
            })
            .collect();
        let calls: Vec<_> = callers
            .into_iter()
            .flat_map(|caller| caller.join().unwrap())
            .collect();
        await_ready(&dropped);
        let count = await_ready(&counter.count());
        assert_eq!(count, 99, "iteration {iteration}");
        for call in &calls {
            assert!(
                call.wait_for(Duration::from_secs(10)),
                "iteration {iteration}"
            );
        }
        let abandoned = calls.iter().filter(|call| call.is_abandoned()).count();
        assert_eq!(abandoned, 1, "iteration {iteration}");
    }
}

#[test]
fn a_standing_dispatch_rule_sees_every_one_of_many_racing_calls() {
    for iteration in 0..20 {
        let runtime = Runtime::builder().workers(2).build().unwrap();
        let counter = runtime.spawn(Counter::default());
        let _outage = drop_dispatches(&runtime, &counter, "add");
        let quiet = expect_no_future_dispatches(&runtime, &counter, "add");
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..25).map(|_| counter.add(1)).collect::<Vec<_>>())
            })
            .collect();
        for caller in callers {
            for call in caller.join().unwrap() {
                await_abandoned(&call);
            }
        }
        assert_eq!(await_ready(&counter.count()), 0, "iteration {iteration}");
        let failure = panic::catch_unwind(AssertUnwindSafe(|| quiet.check()));
        std::mem::forget(quiet);
        let text = *failure.unwrap_err().downcast::<String>().unwrap();
        assert!(
            text.ends_with("(and 99 more)"),
            "iteration {iteration}: {text}"
        );
    }
}
