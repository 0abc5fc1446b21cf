//! What a node counts when a connection breaks while its writer is in the middle of a batch:
//! every frame is counted either out (`net.messages_out`) or dropped, none silently lost.

use std::sync::mpsc;

use procession::{send, ExitReason, Message, Runtime};
use serde::{Deserialize, Serialize};
use support::{counter, node_and_silent_peer, watch, PATIENCE};

mod support;

#[derive(Serialize, Deserialize)]
struct Blob(String);
impl Message for Blob {
    const NAME: &'static str = "net-test::lost::Blob";
}

/// Out, dropped at the full queue, and dropped with the connection.
fn accounted(runtime: &Runtime) -> (u64, u64, u64) {
    (
        counter(runtime, "net.messages_out"),
        counter(runtime, "net.dropped.peer_full"),
        counter(runtime, "net.dropped.unreachable"),
    )
}

#[test]
fn every_message_is_counted_out_or_dropped_when_the_connection_breaks_mid_write() {
    let (runtime, _net, silent) = node_and_silent_peer();
    let sink = silent.sink;
    let (accepted, connection) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = silent.listener.accept().unwrap();
        let _ = accepted.send(stream);
    });
    // Told when the node loses the peer: after every drop of the connection is counted.
    let notices = watch(&runtime, &sink);
    let _entered = runtime.enter();
    // 20 MB for a peer that reads nothing: the kernel's buffers fill, then the 64 KiB queue,
    // and the writer waits inside a write with a batch in hand.
    const BLOBS: u64 = 20_000;
    for _ in 0..BLOBS {
        send(&sink, Blob("x".repeat(1000)));
    }
    // Closing with bytes unread resets the connection: the write in progress fails.
    drop(connection.recv_timeout(PATIENCE).unwrap());
    assert_eq!(notices.recv_timeout(PATIENCE).unwrap().1, ExitReason::Lost);
    let (out, full, lost) = accounted(&runtime);
    assert!(lost > 0, "frames were still queued or being written");
    // The frames are the messages and the watcher's link.
    assert_eq!(
        out + full + lost,
        BLOBS + 1,
        "every frame counted once: {out} out, {full} at the full queue, {lost} with the \
         connection"
    );
}
