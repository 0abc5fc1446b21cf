//! Repeated header fields on a real connection: a frame leaves out the `from`, `to` and name the
//! previous frame on the connection had, and a frame the sender dropped is never the previous.

use std::time::Duration;

use procession::{post, Message, Upid};
use procession_net::frame::Kind;
use serde::{Deserialize, Serialize};
use support::{counter, node_and_silent_peer};

mod support;

#[derive(Serialize, Deserialize)]
struct Blob(String);
impl Message for Blob {
    const NAME: &'static str = "net-test::Blob";
}

#[derive(Serialize, Deserialize)]
struct Note(u64);
impl Message for Note {
    const NAME: &'static str = "net-test::Note";
}

#[test]
fn a_frame_dropped_at_a_full_queue_is_not_the_one_the_next_repeats() {
    let (runtime, _net, silent) = node_and_silent_peer();
    let sink = silent.sink.clone();
    let (x, y): (Upid, Upid) = (
        "x@10.0.0.1:5050".parse().unwrap(),
        "y@10.0.0.1:5050".parse().unwrap(),
    );
    let _entered = runtime.enter();
    let body = "b".repeat(1000);
    let full = (0..200_000).any(|_| {
        post(&x, &sink, Blob(body.clone()));
        counter(&runtime, "net.dropped.peer_full") > 0
    });
    assert!(full, "the queue never filled");
    // From y, as large: dropped as well, after its header named y.
    let dropped = counter(&runtime, "net.dropped.peer_full");
    post(&y, &sink, Blob(body.clone()));
    assert_eq!(counter(&runtime, "net.dropped.peer_full"), dropped + 1);
    let frames = silent.frames();
    // Once the queue drains, a note from y goes out: it must say y, not repeat x's frames.
    let from = (0..400).find_map(|_| {
        post(&y, &sink, Note(1));
        std::iter::from_fn(|| frames.recv_timeout(Duration::from_millis(50)).ok())
            .find(|frame| frame.kind == Kind::Message && frame.name == Note::NAME)
            .map(|frame| frame.from)
    });
    assert_eq!(from, Some(y));
}
