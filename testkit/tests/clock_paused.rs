//! The paused clock in tests, after libprocess's `Delay`, `Order` and `Settle` tests: time
//! moves only when the test moves it, timers fire exactly at their deadlines, and `settle`
//! waits for every effect without sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use procession::{
    delay, dispatch, spawn, terminate, wait, Clock, Context, Future, Pid, Process, Promise, Runtime,
};
use procession_testkit::await_ready;

/// Records the labels of the timeouts it gets.
#[derive(Default)]
struct Timeouts {
    fired: Vec<&'static str>,
}

impl Process for Timeouts {}

fn fired(runtime: &Runtime, pid: &Pid<Timeouts>) -> Vec<&'static str> {
    runtime.clock().settle();
    await_ready(&dispatch(pid, |t: &mut Timeouts| t.fired.clone()))
}

fn after(duration: Duration, pid: &Pid<Timeouts>, label: &'static str) {
    delay(duration, pid, move |t: &mut Timeouts| t.fired.push(label));
}

#[procession::test(paused)]
fn a_delay_fires_when_the_clock_reaches_it(runtime: &Runtime) {
    let clock = runtime.clock();
    let pid = runtime.spawn(Timeouts::default());
    after(Duration::from_secs(5), &pid, "timeout");
    clock.advance(Duration::from_millis(4_999));
    assert!(fired(runtime, &pid).is_empty());
    clock.advance(Duration::from_millis(1));
    assert_eq!(fired(runtime, &pid), ["timeout"]);
}

#[procession::test(paused)]
fn timers_fire_in_deadline_order_then_creation_order(runtime: &Runtime) {
    let pid = runtime.spawn(Timeouts::default());
    after(Duration::from_secs(3), &pid, "3s");
    after(Duration::from_secs(1), &pid, "1s, first");
    after(Duration::from_secs(2), &pid, "2s");
    after(Duration::from_secs(1), &pid, "1s, second");
    runtime.clock().advance(Duration::from_secs(10));
    assert_eq!(
        fired(runtime, &pid),
        ["1s, first", "1s, second", "2s", "3s"]
    );
}

/// Forwards work to another process: work queued by a process, not by the test.
struct Orderer;

impl Process for Orderer {}

#[procession::test(paused)]
fn paused_time_moves_only_when_the_test_moves_it(runtime: &Runtime) {
    let clock = runtime.clock();
    let pid = runtime.spawn(Timeouts::default());
    let start = clock.now();
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.now(), start + Duration::from_secs(1));
    let orderer = runtime.spawn(Orderer);
    let target = pid.clone();
    dispatch(&orderer, move |_: &mut Orderer| {
        dispatch(&target, |t: &mut Timeouts| t.fired.push("ordered"));
    });
    assert_eq!(fired(runtime, &pid), ["ordered"]);
    assert_eq!(
        clock.now(),
        start + Duration::from_secs(1),
        "work does not move paused time"
    );
}

#[procession::test(paused)]
fn update_moves_time_forward_only(runtime: &Runtime) {
    let clock = runtime.clock();
    let pid = runtime.spawn(Timeouts::default());
    let start = clock.now();
    after(Duration::from_secs(60), &pid, "minute");
    clock.update(start + Duration::from_secs(60));
    assert_eq!(fired(runtime, &pid), ["minute"]);
    clock.update(start);
    assert_eq!(
        clock.now(),
        start + Duration::from_secs(60),
        "never backwards"
    );
}

#[procession::test(paused)]
fn resume_never_moves_time_backwards(runtime: &Runtime) {
    let clock = runtime.clock();
    let paused_at = clock.now() + Duration::from_secs(3600);
    clock.advance(Duration::from_secs(3600));
    clock.resume();
    assert!(!clock.is_paused());
    assert!(clock.now() >= paused_at);
}

#[procession::test(paused)]
fn a_timeout_follows_the_runtime_clock() {
    let clock = Clock::current();
    let reply = Promise::<&str>::new();
    let answer = reply
        .future()
        .after(Duration::from_secs(30), |_| Future::ready("timed out"));
    clock.advance(Duration::from_secs(29));
    clock.settle();
    assert!(answer.is_pending());
    clock.advance(Duration::from_secs(1));
    assert_eq!(await_ready(&answer), "timed out");
    drop(reply);
}

#[test]
fn each_runtime_has_its_own_clock() {
    let paused = Runtime::builder().paused().build().unwrap();
    let running = Runtime::new();
    assert!(paused.clock().is_paused());
    assert!(!running.clock().is_paused());
    let start = paused.clock().now();
    running.clock().advance(Duration::from_secs(5)); // not paused: ignored
    paused.clock().advance(Duration::from_secs(5));
    assert_eq!(paused.clock().now(), start + Duration::from_secs(5));
}

/// libprocess's settle scenario: a chain of work started by `initialize` (a zero delay, a
/// dispatch to itself, a child spawned, terminated and waited for), each step queued by the
/// one before. `settle` returns only after the last.
struct Settler {
    me: Option<Pid<Settler>>,
    steps: Arc<Mutex<Vec<&'static str>>>,
}

impl Process for Settler {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
        self.step("initialize");
        delay(Duration::ZERO, &ctx.pid(), Settler::after_delay);
    }
}

impl Settler {
    fn step(&self, name: &'static str) {
        self.steps.lock().unwrap().push(name);
    }

    fn after_delay(&mut self) {
        self.step("delay");
        let me = self.me.clone().expect("set by initialize");
        dispatch(&me, Settler::after_dispatch);
        let child = spawn(Timeouts::default());
        terminate(&child);
        let steps = self.steps.clone();
        wait(&child).on_ready(move |_| steps.lock().unwrap().push("child ended"));
    }

    fn after_dispatch(&mut self) {
        self.step("dispatch");
        let done = self.steps.clone();
        // One more hop through the timer queue, due at once on the paused clock.
        let me = self.me.clone().expect("set by initialize");
        delay(Duration::ZERO, &me, move |_: &mut Settler| {
            done.lock().unwrap().push("done")
        });
    }
}

fn settle_scenario(runtime: &Runtime, label: &str) {
    let steps = Arc::new(Mutex::new(Vec::new()));
    runtime.spawn(Settler {
        me: None,
        steps: steps.clone(),
    });
    runtime.clock().settle();
    let mut steps = steps.lock().unwrap().clone();
    // The child's end and the dispatch run on different processes: either may come first.
    steps.sort_unstable();
    assert_eq!(
        steps,
        ["child ended", "delay", "dispatch", "done", "initialize"],
        "{label}"
    );
}

#[test]
fn settle_waits_for_a_chain_of_work_on_every_worker_count() {
    for iteration in 0..50 {
        for workers in [1, 2, 4] {
            let runtime = Runtime::builder()
                .workers(workers)
                .paused()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            settle_scenario(
                &runtime,
                &format!("iteration {iteration}, {workers} workers"),
            );
        }
    }
}

#[test]
fn settle_waits_for_a_chain_of_work_on_every_seed() {
    for seed in 0..50 {
        let runtime = Runtime::builder().deterministic(seed).build().unwrap();
        let _entered = runtime.enter();
        settle_scenario(&runtime, &format!("seed {seed}"));
    }
}
