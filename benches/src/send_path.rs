//! The sending half of the 100-byte remote stream on its own: a handler sends bursts of 512
//! messages to another node, and the time inside the handler is divided by the messages sent.
//! What the node at the other end does never enters the figure (a thread reads and discards
//! the bytes), so it is steady to about 1% from run to run: the tool for changes to the send
//! path, whose effect on the whole stream is lost in that benchmark's noise.
//!
//! `cargo run --release --bin send_path` (`BURSTS` bursts, 10,000 by default).

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chunk::Chunk;
use procession::{dispatch, send, Process, Runtime, Upid};
use procession_net::Net;

mod chunk;

struct Streamer {
    to: Upid,
    body: Bytes,
    seq: u64,
    inside: Duration,
}

impl Process for Streamer {}

/// Messages a burst sends: what the stream's sender sends per acknowledgement.
const BURST: u64 = 512;

fn main() {
    let runtime = Runtime::builder()
        .workers(2)
        .name("here")
        .build()
        .expect("runtime");
    // The reader below never says hello: the node must not take it for a hung peer.
    let _net = Net::builder()
        .handshake_timeout(Duration::from_secs(3600))
        .start(&runtime)
        .expect("transport");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let to: Upid = format!("sink@{}", listener.local_addr().expect("address"))
        .parse()
        .expect("upid");
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut buffer = vec![0u8; 1 << 20];
        while stream.read(&mut buffer).is_ok_and(|n| n > 0) {}
    });
    let streamer = runtime.spawn(Streamer {
        to,
        body: Bytes::from(vec![7u8; 100]),
        seq: 0,
        inside: Duration::ZERO,
    });
    let bursts: u64 = std::env::var("BURSTS").map_or(10_000, |b| b.parse().expect("BURSTS"));
    let start = Instant::now();
    for _ in 0..bursts {
        let burst = dispatch(&streamer, |streamer: &mut Streamer| {
            let began = Instant::now();
            for _ in 0..BURST {
                let chunk = Chunk {
                    seq: streamer.seq,
                    body: streamer.body.clone(),
                };
                send(&streamer.to, chunk);
                streamer.seq += 1;
            }
            streamer.inside += began.elapsed();
        });
        runtime.block_on(burst).expect("burst");
    }
    let wall = start.elapsed();
    let inside = runtime
        .block_on(dispatch(&streamer, |streamer: &mut Streamer| {
            streamer.inside
        }))
        .expect("streamer");
    let messages = (bursts * BURST) as f64;
    println!(
        "send path: {:.1} ns a message inside the handler; {:.1} ns a message with the flush \
         and the dispatch around each burst",
        inside.as_nanos() as f64 / messages,
        wall.as_nanos() as f64 / messages,
    );
}
