//! Repeated header fields on a real connection: a frame leaves out the `from`, `to` and name the
//! previous frame on the connection had, and a frame the sender dropped is never the previous.

use std::io::Read;
use std::sync::mpsc;

use bytes::BytesMut;
use procession::{post, Message, Runtime, Upid};
use procession_net::frame::{FrameDecoder, Kind};
use procession_net::Net;
use serde::{Deserialize, Serialize};
use support::{counter, PATIENCE};

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
    let runtime = Runtime::new();
    let _net = Net::builder()
        .peer_buffer(64 * 1024)
        .start(&runtime)
        .unwrap();
    // A peer that reads nothing until told to.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sink: Upid = format!("sink@{}", silent.local_addr().unwrap())
        .parse()
        .unwrap();
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
    let (notes, notes_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = silent.accept().unwrap();
        let mut decoder = FrameDecoder::new(1 << 24);
        let mut buffer = BytesMut::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            while let Some(frame) = decoder.decode(&mut buffer).unwrap() {
                let note = frame.kind == Kind::Message && frame.name == Note::NAME;
                if note && notes.send(frame.from).is_err() {
                    return;
                }
            }
        }
    });
    // Once the queue drains, a note from y goes out: it must say y, not repeat x's frames.
    let from = (0..400).find_map(|_| {
        post(&y, &sink, Note(1));
        notes_rx
            .recv_timeout(std::time::Duration::from_millis(50))
            .ok()
    });
    let from = from.unwrap_or_else(|| panic!("no note within {PATIENCE:?}"));
    assert_eq!(from, y);
}
