//! What the net tests share: a node on loopback, a metric reader, and a process that links to a
//! target and reports its `exited` notices.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::mpsc;
use std::time::Duration;

use procession::metrics::Value;
use procession::{dispatch, link, Context, ExitReason, Process, Runtime, Upid};
use procession_net::hello::Hello;
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

/// A numbered note.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Note(pub u64);
impl procession::Message for Note {
    const NAME: &'static str = "net-test::support::Note";
}

/// Passes every `Note` it gets on to a channel.
pub struct Inbox(pub mpsc::Sender<u64>);
impl Process for Inbox {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Note(n)| {
            let _ = me.0.send(n);
        })
        .unwrap();
    }
}

/// The address a raw test connection claims to be a node at.
pub const STRANGER: &str = "127.0.0.1:9";

/// A raw connection to `net` that has said hello as run 1 of a node at [`STRANGER`] and read the
/// node's hello, which it returns: frames written on it are read by the node.
pub fn introduced(net: &Net) -> (std::net::TcpStream, Hello) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(net.address()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let hello = Hello {
        address: STRANGER.parse().unwrap(),
        incarnation: 1,
    };
    stream.write_all(&hello.encode()).unwrap();
    let mut reply = bytes::BytesMut::new();
    loop {
        if let Some(hello) = Hello::decode(&mut reply).unwrap() {
            assert!(reply.is_empty(), "the node wrote more than its hello");
            return (stream, hello);
        }
        let mut byte = [0; 1];
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "the node closed before its hello"
        );
        reply.extend_from_slice(&byte);
    }
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
    let watcher = runtime.spawn(Watcher {
        target: target.clone(),
        notices,
    });
    // Once this answers, `initialize` has run and its link is on its way, ahead of anything
    // the caller sends to the target's node next.
    runtime
        .block_on(dispatch(&watcher, |_: &mut Watcher| ()))
        .expect("the watcher answers");
    received
}

/// A peer that accepts a node's connection and reads nothing until [`frames`](Self::frames) is
/// called, and an address there for the node to send to.
pub struct SilentPeer {
    pub listener: std::net::TcpListener,
    pub sink: Upid,
}

/// A node whose queue towards any one peer holds 64 KiB, and a [`SilentPeer`]: sending to
/// `sink` fills the kernel's buffers, then the queue. The node waits for the peer's hello far
/// longer than any test runs, so the silence never ends the connection.
pub fn node_and_silent_peer() -> (Runtime, Net, SilentPeer) {
    let runtime = Runtime::new();
    let net = Net::builder()
        .handshake_timeout(Duration::from_secs(3600))
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
            let mut greeted = false;
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
                // The node's hello comes first; this peer never answers it.
                if !greeted {
                    match Hello::decode(&mut buffer).unwrap() {
                        Some(_) => greeted = true,
                        None => continue,
                    }
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
