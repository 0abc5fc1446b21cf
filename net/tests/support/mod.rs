//! What the net tests share: a node on loopback, a metric reader, and a process that links to a
//! target and reports its `exited` notices.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::mpsc;
use std::time::Duration;

use procession::metrics::Value;
use procession::{link, Context, ExitReason, Process, Runtime, Upid};
use procession_net::Net;

/// How long a test waits for something that should happen at once: a guard against a hang,
/// not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A runtime with a transport on a loopback port.
pub fn node() -> (Runtime, Net) {
    let runtime = Runtime::new();
    let net = Net::start(&runtime).unwrap();
    (runtime, net)
}

/// The value of counter `name` in the runtime's metrics.
pub fn counter(runtime: &Runtime, name: &str) -> u64 {
    match runtime.metrics().snapshot().get(name) {
        Some(Value::Counter(n)) => *n,
        other => panic!("{name}: {other:?}"),
    }
}

/// Links to `target` at start and reports every `exited` notice.
struct Watcher {
    target: Upid,
    notices: mpsc::Sender<(Upid, ExitReason)>,
}

impl Process for Watcher {
    fn initialize(&mut self, _ctx: &mut Context<'_, Self>) {
        link(&self.target);
    }

    fn exited(&mut self, _ctx: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        let _ = self.notices.send((upid.clone(), reason.clone()));
    }
}

/// Spawns a process on `runtime` linked to `target`; the receiver gets its `exited` notices.
pub fn watch(runtime: &Runtime, target: &Upid) -> mpsc::Receiver<(Upid, ExitReason)> {
    let (notices, received) = mpsc::channel();
    runtime.spawn(Watcher {
        target: target.clone(),
        notices,
    });
    received
}

/// A peer that accepts a node's connection and reads nothing until [`frames`](Self::frames) is
/// called, and an address there for the node to send to.
pub struct SilentPeer {
    pub listener: std::net::TcpListener,
    pub sink: Upid,
}

/// A node whose queue towards any one peer holds 64 KiB, and a [`SilentPeer`]: sending to
/// `sink` fills the kernel's buffers, then the queue.
pub fn node_and_silent_peer() -> (Runtime, Net, SilentPeer) {
    let runtime = Runtime::new();
    let net = Net::builder()
        .peer_buffer(64 * 1024)
        .start(&runtime)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sink = format!("sink@{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    (runtime, net, SilentPeer { listener, sink })
}

impl SilentPeer {
    /// Starts reading: every frame the node sent, decoded in order, arrives on the channel.
    pub fn frames(self) -> mpsc::Receiver<procession_net::frame::Frame> {
        use std::io::Read;
        let (frames, received) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = self.listener.accept().unwrap();
            let mut decoder = procession_net::frame::FrameDecoder::new(1 << 24);
            let mut buffer = bytes::BytesMut::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
                while let Some(frame) = decoder.decode(&mut buffer).unwrap() {
                    if frames.send(frame).is_err() {
                        return;
                    }
                }
            }
        });
        received
    }
}
