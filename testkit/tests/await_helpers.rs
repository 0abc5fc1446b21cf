//! The `await_*` helpers: they return the outcome, drive a deterministic runtime, and fail with
//! the future's state and the caller's location.

use std::time::Duration;

use procession::{after, dispatch, Future, Process, Promise, Runtime};
use procession_testkit::{
    await_abandoned, await_discarded, await_failed, await_ready, await_ready_for,
};

struct Idle;
impl Process for Idle {}

#[test]
fn await_ready_drives_a_deterministic_runtime() {
    let runtime = Runtime::builder().deterministic(3).build().unwrap();
    let _entered = runtime.enter();
    let pid = runtime.spawn(Idle);
    // Nothing runs unless this thread drives the scheduler.
    let answer = dispatch(&pid, |_: &mut Idle| 41).map(|x| x + 1);
    assert_eq!(await_ready(&answer), 42);
    // Virtual time jumps to the next timer when nothing is runnable.
    let timer = after(Duration::from_secs(3600));
    await_ready(&timer);
}

#[test]
fn await_outcomes() {
    assert_eq!(
        await_failed(&Future::<u8>::failed("boom")).message(),
        "boom"
    );
    let promise = Promise::<u8>::new();
    let future = promise.future();
    promise.discard();
    await_discarded(&future);
    let dropped = Promise::<u8>::new();
    let orphan = dropped.future();
    drop(dropped);
    await_abandoned(&orphan);
}

#[test]
#[should_panic(expected = "still pending after 20ms")]
fn pending_future_times_out_with_its_state() {
    let promise = Promise::<u8>::new();
    await_ready_for(&promise.future(), Duration::from_millis(20));
}

#[test]
#[should_panic(expected = "await_helpers.rs")]
fn failure_names_the_callers_location() {
    await_ready(&Future::<u8>::failed("boom"));
}

#[test]
#[should_panic(expected = "expected the future to be failed, but it is Future(7)")]
fn wrong_outcome_names_the_actual_state() {
    await_failed(&Future::ready(7u8));
}
