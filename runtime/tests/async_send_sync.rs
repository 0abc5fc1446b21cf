//! Pins the auto traits of the public types: handles cross threads (callbacks run on whichever
//! thread completes a future, timers fire on the driver thread), so losing `Send` or `Sync` on
//! any of them is a breaking change this file turns into a compile error.

use procession::{
    Clock, Error, Failure, Future, Owned, Pid, Process, Promise, Runtime, Timer, Upid, Wait,
};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_unpin<T: Unpin>() {}

struct Worker;
impl Process for Worker {}

#[test]
fn futures_and_promises_are_send_and_sync() {
    assert_send_sync::<Future<u32>>();
    assert_send_sync::<Promise<u32>>();
    assert_send_sync::<Owned<String>>();
    // The Rust future `.await` polls can move between executor threads.
    assert_send_sync::<Wait<u32>>();
    assert_unpin::<Wait<u32>>();
}

#[test]
fn runtime_handles_are_send_and_sync() {
    assert_send_sync::<Runtime>();
    assert_send_sync::<Clock>();
    assert_send_sync::<Timer>();
}

#[test]
fn addresses_are_send_and_sync() {
    assert_send_sync::<Pid<Worker>>();
    assert_send_sync::<Upid>();
}

#[test]
fn errors_are_send_and_sync() {
    assert_send_sync::<Error>();
    assert_send_sync::<Failure>();
    // So they can be boxed into the usual `Box<dyn Error + Send + Sync>`.
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(Failure::new("x"));
    let error = Future::<u32>::failed("y").error().unwrap();
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
}
