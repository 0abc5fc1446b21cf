//! Frames however the bytes arrive: one split across many reads, many in one read, large bodies
//! (queued without a copy and gathered into writes) between small ones, in order and intact.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use bytes::BytesMut;
use procession::{send, Context, Message, Process, Runtime, Upid};
use procession_net::frame::{Frame, Kind, VERSION};
use procession_net::Net;
use serde::{Deserialize, Serialize};

mod support;

use support::{counter, PATIENCE};

#[derive(Serialize, Deserialize)]
struct Blob {
    seq: u64,
    body: Vec<u8>,
}
impl Message for Blob {
    const NAME: &'static str = "framing::Blob";
}

/// Reports every blob it receives.
struct Inbox(mpsc::Sender<Blob>);
impl Process for Inbox {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, blob: Blob| {
            let _ = me.0.send(blob);
        })
        .unwrap();
    }
}

/// A body of `length` bytes that differs from every other `(seq, length)`'s.
fn pattern(seq: u64, length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect()
}

/// The wire bytes of a blob frame to `to`.
fn wire(to: &Upid, seq: u64, length: usize) -> BytesMut {
    let body = procession::message::encode(&Blob {
        seq,
        body: pattern(seq, length),
    })
    .unwrap();
    let mut wire = BytesMut::new();
    Frame {
        kind: Kind::Message,
        from: "writer@127.0.0.1:9".parse().unwrap(),
        to: to.clone(),
        name: Blob::NAME.into(),
        body,
    }
    .encode(&mut wire)
    .unwrap();
    wire
}

/// Receives the blobs `0..count` (body lengths from `length`) in order and checks every byte.
fn expect_in_order(received: &mpsc::Receiver<Blob>, count: u64, length: impl Fn(u64) -> usize) {
    for seq in 0..count {
        let blob = received.recv_timeout(PATIENCE).expect("the next blob");
        assert_eq!(blob.seq, seq, "in order");
        assert!(
            blob.body == pattern(seq, length(seq)),
            "blob {seq} arrived intact"
        );
    }
}

/// A node with an [`Inbox`], the blobs it receives, and a connection to the node past the
/// hellos.
struct Node {
    runtime: Runtime,
    _net: Net,
    inbox: Upid,
    received: mpsc::Receiver<Blob>,
    stream: TcpStream,
}

fn node_with_inbox() -> Node {
    let (runtime, net) = support::node();
    let (blobs, received) = mpsc::channel();
    let inbox = runtime.spawn(Inbox(blobs)).upid();
    let (stream, _) = support::introduced(&net);
    Node {
        runtime,
        _net: net,
        inbox,
        received,
        stream,
    }
}

#[test]
fn a_frame_split_across_many_reads_arrives_whole() {
    let mut node = node_with_inbox();
    node.stream.set_nodelay(true).unwrap();
    // A large frame in uneven pieces, the first inside the length prefix, each written only
    // once the node has read all before it: the node reads it in exactly these parts.
    let frame = wire(&node.inbox, 0, 100_000);
    let mut rest = &frame[..];
    let mut written = counter(&node.runtime, "net.bytes_in");
    for piece in [2, 1, 7, 30, 1_000, 5_000, 20_000].into_iter().cycle() {
        let (now, later) = rest.split_at(piece.min(rest.len()));
        node.stream.write_all(now).unwrap();
        written += now.len() as u64;
        rest = later;
        if rest.is_empty() {
            break;
        }
        let start = Instant::now();
        while counter(&node.runtime, "net.bytes_in") < written {
            assert!(
                start.elapsed() < PATIENCE,
                "the node never read piece {written}"
            );
            thread::yield_now();
        }
    }
    expect_in_order(&node.received, 1, |_| 100_000);
}

#[test]
fn many_small_frames_in_one_write_all_arrive_in_order() {
    let mut node = node_with_inbox();
    let mut all = BytesMut::new();
    for seq in 0..2_000 {
        all.extend_from_slice(&wire(&node.inbox, seq, (seq % 50) as usize));
    }
    node.stream.write_all(&all).unwrap();
    expect_in_order(&node.received, 2_000, |seq| (seq % 50) as usize);
}

/// The wire bytes of one frame to `to` that carries the blobs `0..count` as a run: a frame
/// of more messages than the node delivers as one event.
fn run_wire(to: &Upid, count: u64, length: impl Fn(u64) -> usize) -> Vec<u8> {
    let mut content = vec![VERSION, 0, 0];
    for field in [
        "writer@127.0.0.1:9".to_owned(),
        format!("{to:#}"),
        Blob::NAME.to_owned(),
    ] {
        content.extend_from_slice(&(field.len() as u16).to_be_bytes());
        content.extend_from_slice(field.as_bytes());
    }
    for seq in 0..count {
        let body = pattern(seq, length(seq));
        let body = procession::message::encode(&Blob { seq, body }).unwrap();
        content.extend_from_slice(&(body.len() as u32).to_be_bytes());
        content.extend_from_slice(&body);
    }
    let mut wire = (content.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&content);
    wire
}

#[test]
fn a_run_of_more_messages_than_one_delivery_arrives_whole_and_in_order() {
    let mut node = node_with_inbox();
    // 1,000 messages in one frame (a node delivers at most 256 as one event), then the same
    // again in pieces that cut bodies and their lengths.
    node.stream
        .write_all(&run_wire(&node.inbox, 1_000, |seq| (seq % 30) as usize))
        .unwrap();
    expect_in_order(&node.received, 1_000, |seq| (seq % 30) as usize);
    for piece in run_wire(&node.inbox, 1_000, |seq| (seq % 30) as usize).chunks(777) {
        node.stream.write_all(piece).unwrap();
    }
    expect_in_order(&node.received, 1_000, |seq| (seq % 30) as usize);
    assert_eq!(counter(&node.runtime, "net.messages_in"), 2_000);
}

/// Sends every blob `0..count` from a process on one node to a process on another.
struct Sender {
    to: Upid,
    count: u64,
    length: fn(u64) -> usize,
}
impl Process for Sender {
    fn initialize(&mut self, _ctx: &mut Context<'_, Self>) {
        for seq in 0..self.count {
            let body = pattern(seq, (self.length)(seq));
            send(&self.to, Blob { seq, body });
        }
    }
}

#[test]
fn large_bodies_between_small_ones_arrive_intact_and_in_order_between_nodes() {
    let (here, _here_net) = support::node();
    let (there, _there_net) = support::node();
    let (blobs, received) = mpsc::channel();
    let inbox = there.spawn(Inbox(blobs)).upid();
    // 64 KiB and 1 MiB bodies (sent as they are) among small ones (copied after their
    // headers): both kinds leave in one batch, in the order sent. About 6.4 MiB in all, queued
    // at once: under the default 8 MiB peer buffer, so none is dropped.
    fn length(seq: u64) -> usize {
        match seq % 4 {
            0 => 64 * 1024,
            1 | 3 => seq as usize % 100,
            _ => 1024 * 1024 + 3,
        }
    }
    here.spawn(Sender {
        to: inbox,
        count: 24,
        length,
    });
    expect_in_order(&received, 24, length);
}
