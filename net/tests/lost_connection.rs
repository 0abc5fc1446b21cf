//! What a node counts when a connection breaks while its writer is in the middle of a batch:
//! every message is counted either out (`net.messages_out`) or dropped, none silently lost.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use procession::{send, Message, Runtime};
use serde::{Deserialize, Serialize};
use support::{counter, node_and_silent_peer, PATIENCE};

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
    let _entered = runtime.enter();
    // 20 MB for a peer that reads nothing: the kernel's buffers fill, then the 64 KiB queue,
    // and the writer waits inside a write with a batch in hand.
    const BLOBS: u64 = 20_000;
    for _ in 0..BLOBS {
        send(&sink, Blob("x".repeat(1000)));
    }
    let stream = connection.recv_timeout(PATIENCE).unwrap();
    let mut last = accounted(&runtime);
    let deadline = Instant::now() + PATIENCE;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = accounted(&runtime);
        if now == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never stopped: {now:?}"
        );
        last = now;
    }
    let (out, full, _) = last;
    assert!(
        out + full < BLOBS,
        "some frames are still queued or being written"
    );
    // Closing with bytes unread resets the connection: the write in progress fails.
    drop(stream);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (out, full, lost) = accounted(&runtime);
        if out + full + lost == BLOBS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} messages neither counted out nor dropped ({out} out, {full} at the full queue, \
             {lost} with the connection)",
            BLOBS - out - full - lost
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
