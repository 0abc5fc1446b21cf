//! `#[procession::test]`: a fresh runtime per test, its options, and the checks after the body.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use procession::{after, dispatch, spawn, Clock, Context, Process, Runtime};

#[derive(Default)]
struct Echo {
    calls: u32,
}

impl Process for Echo {}

fn echo(runtime: &Runtime) -> procession::Pid<Echo> {
    runtime.spawn(Echo::default())
}

#[procession::test]
fn a_sync_body_gets_the_runtime(runtime: &Runtime) {
    let pid = echo(runtime);
    let calls = dispatch(&pid, |e: &mut Echo| {
        e.calls += 1;
        e.calls
    });
    assert_eq!(runtime.block_on(calls).unwrap(), 1);
}

#[procession::test]
fn the_runtime_is_entered_without_a_parameter() {
    // Free functions find the test's runtime.
    let pid = spawn(Echo::default());
    assert!(!Clock::current().is_paused());
    let answer = dispatch(&pid, |_: &mut Echo| 5);
    assert!(answer.wait_for(Duration::from_secs(10)));
    assert_eq!(answer.get(), Some(5));
}

#[procession::test]
async fn an_async_body_awaits_futures() {
    let pid = spawn(Echo::default());
    let calls = dispatch(&pid, |e: &mut Echo| {
        e.calls += 2;
        e.calls
    })
    .await
    .unwrap();
    assert_eq!(calls, 2);
}

#[procession::test(paused)]
fn paused_starts_with_a_paused_clock(runtime: &Runtime) {
    let clock = runtime.clock();
    assert!(clock.is_paused());
    let timer = after(Duration::from_secs(3600));
    clock.advance(Duration::from_secs(3599));
    clock.settle();
    assert!(timer.is_pending());
    clock.advance(Duration::from_secs(1));
    assert!(timer.is_ready());
}

#[procession::test(seed = 42)]
async fn seed_runs_the_deterministic_scheduler(runtime: &Runtime) {
    assert!(runtime.trace().is_some(), "a seeded runtime keeps a trace");
    assert!(runtime.clock().is_paused(), "with a virtual clock");
    // Virtual time jumps to the timer while the body waits.
    after(Duration::from_secs(60)).await.unwrap();
    let pid = spawn(Echo::default());
    assert_eq!(dispatch(&pid, |_: &mut Echo| 7).await.unwrap(), 7);
}

#[procession::test(workers = 3, paused)]
fn workers_and_paused_combine(runtime: &Runtime) {
    assert!(runtime.clock().is_paused());
    assert_eq!(runtime.name(), "workers_and_paused_combine");
    let pid = echo(runtime);
    let worker = dispatch(&pid, |_: &mut Echo| {
        std::thread::current().name().unwrap_or("").to_owned()
    });
    let worker = runtime.block_on(worker).unwrap();
    assert!(
        worker.starts_with("workers_and_paused_combine-worker-"),
        "{worker}"
    );
}

#[procession::test]
fn a_test_may_return_a_result() -> Result<(), String> {
    let pid = spawn(Echo::default());
    let answer = dispatch(&pid, |_: &mut Echo| 1u8);
    if !answer.wait_for(Duration::from_secs(10)) {
        return Err(format!("no answer: {answer:?}"));
    }
    assert_eq!(answer.get(), Some(1));
    Ok(())
}

#[procession::test]
async fn an_async_body_may_use_the_question_mark() -> Result<(), procession::Error> {
    let pid = spawn(Echo::default());
    let calls = dispatch(&pid, |e: &mut Echo| {
        e.calls += 3;
        e.calls
    })
    .await?;
    assert_eq!(calls, 3);
    Ok(())
}

#[procession::test]
#[should_panic(expected = "1 process(es) panicked while the test ran or its runtime shut down")]
fn a_process_panic_fails_the_test(runtime: &Runtime) {
    let pid = echo(runtime);
    let crash = dispatch(&pid, |_: &mut Echo| -> u8 {
        panic!("deliberate, in a handler")
    });
    assert!(runtime.block_on(crash).unwrap_err().is_abandoned());
}

struct FailsToFinalize;

impl Process for FailsToFinalize {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        panic!("deliberate, in finalize");
    }
}

#[procession::test]
#[should_panic(expected = "1 process(es) panicked")]
fn a_panic_while_shutting_down_fails_the_test(runtime: &Runtime) {
    runtime.spawn(FailsToFinalize);
}

/// Dispatches a call that panics to a fresh process; its future ends abandoned.
fn crash(runtime: &Runtime) {
    let pid = echo(runtime);
    let crash = dispatch(&pid, |_: &mut Echo| -> u8 {
        panic!("deliberate, in a handler")
    });
    assert!(runtime.block_on(crash).unwrap_err().is_abandoned());
}

#[procession::test(panics = 2)]
fn the_expected_panics_pass(runtime: &Runtime) {
    crash(runtime);
    crash(runtime);
}

#[procession::test(panics = 1)]
#[should_panic(
    expected = "0 process(es) panicked while the test ran or its runtime shut down, \
                           where the test expects 1 (`panics = 1`)"
)]
fn fewer_panics_than_expected_fail_the_test(runtime: &Runtime) {
    echo(runtime);
}

#[procession::test(panics = 1)]
#[should_panic(
    expected = "2 process(es) panicked while the test ran or its runtime shut down, \
                           where the test expects 1"
)]
fn more_panics_than_expected_fail_the_test(runtime: &Runtime) {
    crash(runtime);
    crash(runtime);
}

#[procession::test(panics = 1)]
fn an_expected_panic_may_come_while_shutting_down(runtime: &Runtime) {
    runtime.spawn(FailsToFinalize);
}

#[procession::test(seed = 5, panics = 1)]
async fn panics_combines_with_an_async_seeded_body() -> Result<(), procession::Error> {
    let pid = spawn(Echo::default());
    let crash = dispatch(&pid, |_: &mut Echo| -> u8 { panic!("deliberate") }).await;
    assert!(crash.unwrap_err().is_abandoned());
    Ok(())
}

struct Stuck(mpsc::Receiver<()>);

impl Process for Stuck {}

#[test]
fn an_unfinished_shutdown_fails_the_test() {
    let (release, stuck) = mpsc::channel();
    let builder = Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(50));
    let failure = panic::catch_unwind(AssertUnwindSafe(|| {
        procession::__private::run_test(builder, 0, |runtime| {
            let pid = runtime.spawn(Stuck(stuck));
            // Blocks the only worker until released, so the shutdown cannot end the process.
            procession::cast(&pid, |s: &mut Stuck| s.0.recv().unwrap());
        })
    }))
    .unwrap_err();
    release.send(()).unwrap();
    let text = failure.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("shutdown did not finish: processes unfinished [Upid(stuck"),
        "{text}"
    );
}
