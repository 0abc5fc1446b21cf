//! Dispatch filters, after libprocess's `FUTURE_DISPATCH`/`DROP_DISPATCH` tests: typed handles
//! from `#[process]` name their methods, and a test waits for or drops a call by that name.

use std::time::Duration;

use procession::{delay, dispatch, process, Context, Pid, Process, Runtime};
use procession_testkit::{await_abandoned, await_ready, drop_dispatch, future_dispatch};

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
