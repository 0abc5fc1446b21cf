//! The workloads of `PERFORMANCE.md`, described once, and the counts the scale knob sets.

// ---------------------------------------------------------------------------------------------
// Workloads, described once.

/// The workloads of `PERFORMANCE.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// Ping-pong between two actors, tell/tell: the next ping only after the pong.
    W1,
    /// One client asks `x -> x + 1` of one server, one request in flight.
    W1b,
    /// The same with 64 requests in flight.
    W2,
    /// Two producers each tell one counting actor 5 M times.
    W3,
    /// Spawn 100 k actors, ask each once (all in flight), stop all and wait for them.
    W4,
    /// RSS growth per idle actor over 200 k actors.
    W4Mem,
    /// A ring of 1,000 actors passing one token 5 M hops.
    W5,
    /// A 10-step chain of `map` on a future completed after the chain is built.
    Then,
    /// W3 into a bounded mailbox (1,024), producers waiting for room (procession only).
    W3Bounded,
    /// A supervised child crashes and is restarted; until the new instance answers (procession
    /// only).
    Restart,
    /// 1 GiB in 64 KiB `Bytes` chunks through a pipe, vs a bounded tokio mpsc of `Bytes`.
    Pipe,
    /// The same pipe run, vs `tokio::io::duplex`, which copies every byte in and out.
    PipeDuplex,
    /// 1 GiB through source | XOR transform | sink, vs the same by hand with tokio mpscs.
    Pipeline,
    /// One producer puts into a `Queue`, one consumer awaits `get`s, vs a tokio unbounded mpsc.
    Queue,
    /// One task locks and unlocks a `Mutex` in a loop, vs `tokio::sync::Mutex`.
    Mutex,
    /// Four tasks increment a counter under one `Mutex`, vs `tokio::sync::Mutex`.
    MutexContended,
    /// Ping-pong between a process on one runtime and a process on another, each runtime with
    /// its own `Net`, over loopback TCP; vs length-prefixed frames echoed over a tokio
    /// `TcpStream`, each end on a tokio runtime of its own (two nodes, as procession's are).
    RemotePingPong,
    /// One-way stream of 100-byte bodies to a process on another runtime over loopback TCP,
    /// acknowledged every [`RemoteFlow::ack_every`] messages with at most
    /// [`RemoteFlow::window`] in flight; vs the same frames and windows over a tokio
    /// `TcpStream`, each end on a tokio runtime of its own.
    RemoteOneWay,
    /// The same with 64 KiB bodies.
    RemoteOneWay64k,
}

impl Workload {
    /// Every workload, in the order of the table.
    pub const ALL: [Workload; 19] = [
        Workload::W1,
        Workload::W1b,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W4Mem,
        Workload::W5,
        Workload::Then,
        Workload::W3Bounded,
        Workload::Restart,
        Workload::Pipe,
        Workload::PipeDuplex,
        Workload::Pipeline,
        Workload::Queue,
        Workload::Mutex,
        Workload::MutexContended,
        Workload::RemotePingPong,
        Workload::RemoteOneWay,
        Workload::RemoteOneWay64k,
    ];

    /// The name used on the command line, in the JSON lines and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W1b => "W1b",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W4Mem => "W4-mem",
            Workload::W5 => "W5",
            Workload::Then => "then",
            Workload::W3Bounded => "W3-bounded",
            Workload::Restart => "restart",
            Workload::Pipe => "pipe",
            Workload::PipeDuplex => "pipe-duplex",
            Workload::Pipeline => "pipeline",
            Workload::Queue => "queue",
            Workload::Mutex => "mutex",
            Workload::MutexContended => "mutex-contended",
            Workload::RemotePingPong => "remote-ping-pong",
            Workload::RemoteOneWay => "remote-oneway",
            Workload::RemoteOneWay64k => "remote-oneway-64k",
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(name))
    }

    /// What the table's row says.
    pub fn title(self) -> &'static str {
        match self {
            Workload::W1 => "W1 ping-pong (tell/tell)",
            Workload::W1b => "W1b ask one at a time",
            Workload::W2 => "W2 ask, 64 in flight",
            Workload::W3 => "W3 fan-in, 2 producers",
            Workload::W4 => "W4 spawn + one ask + stop",
            Workload::W4Mem => "W4-mem memory per idle actor",
            Workload::W5 => "W5 ring, 1,000 actors",
            Workload::Then => "10-step `map` chain, completed after building",
            Workload::W3Bounded => "W3 into a bounded mailbox (1,024), senders wait for room",
            Workload::Restart => "supervised restart, crash to first answer",
            Workload::Pipe => "pipe, 64 KiB chunks; peer: bounded mpsc of `Bytes` (4 chunks)",
            Workload::PipeDuplex => "pipe, 64 KiB chunks; peer: `tokio::io::duplex` (256 KiB)",
            Workload::Pipeline => "3-stage pipeline (source, XOR `map`, sink), 64 KiB chunks",
            Workload::Queue => "`Queue` put/get, 1 producer, 1 consumer",
            Workload::Mutex => "`Mutex` lock/unlock, uncontended",
            Workload::MutexContended => "`Mutex` lock/unlock, 4 tasks contending",
            Workload::RemotePingPong => "remote ping-pong over loopback TCP (tell/tell)",
            Workload::RemoteOneWay => "remote one-way over loopback TCP, 100-byte bodies, windowed",
            Workload::RemoteOneWay64k => {
                "remote one-way over loopback TCP, 64 KiB bodies, windowed"
            }
        }
    }

    /// The unit of the value reported.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::W1 | Workload::W1b | Workload::RemotePingPong => "ns/round-trip",
            Workload::W2 => "requests/s",
            Workload::W3 => "msgs/s",
            Workload::W4 => "actors/s",
            Workload::W4Mem => "bytes/actor",
            Workload::W5 => "hops/s",
            Workload::Then => "ns/chain",
            Workload::W3Bounded | Workload::RemoteOneWay | Workload::RemoteOneWay64k => "msgs/s",
            Workload::Restart => "ns/restart",
            Workload::Pipe | Workload::PipeDuplex | Workload::Pipeline => "GiB/s",
            Workload::Queue => "items/s",
            Workload::Mutex | Workload::MutexContended => "ns/lock",
        }
    }

    /// Whether a smaller value is better (times and bytes) rather than a larger (rates).
    pub fn lower_is_better(self) -> bool {
        matches!(
            self,
            Workload::W1
                | Workload::W1b
                | Workload::W4Mem
                | Workload::Then
                | Workload::Restart
                | Workload::Mutex
                | Workload::MutexContended
                | Workload::RemotePingPong
        )
    }

    /// The body of every message of a remote one-way workload, in bytes (not scaled); the
    /// table shows its rate in MB/s (10^6 bytes of bodies per second) beside the messages/s.
    pub fn body_bytes(self) -> Option<usize> {
        match self {
            Workload::RemoteOneWay => Some(100),
            Workload::RemoteOneWay64k => Some(64 * 1024),
            _ => None,
        }
    }

    /// The flow control of a remote one-way workload (not scaled).
    pub fn flow(self) -> Option<RemoteFlow> {
        match self {
            // About 0.75 MB of procession frames (about 180 bytes each) in flight.
            Workload::RemoteOneWay => Some(RemoteFlow {
                window: 4096,
                ack_every: 512,
            }),
            // 4 MiB of bodies in flight: half the transport's default 8 MiB peer buffer.
            Workload::RemoteOneWay64k => Some(RemoteFlow {
                window: 64,
                ack_every: 8,
            }),
            _ => None,
        }
    }

    /// PERFORMANCE.md's target for procession, as the bound on `procession / best peer`.
    pub fn target(self) -> f64 {
        match self {
            Workload::W1 | Workload::W1b => 0.7,
            Workload::W2 => 1.7,
            Workload::W3 => 2.0,
            Workload::W4 => 2.5,
            Workload::W4Mem => 0.35,
            Workload::W5 => 1.5,
            Workload::Then => 1.0,
            Workload::Pipe => 1.0,
            Workload::PipeDuplex => 3.0,
            // ≤ 1.5 × a raw TCP ping-pong; ≥ 0.5 × a raw framed TCP stream of 100-byte messages.
            Workload::RemotePingPong => 1.5,
            Workload::RemoteOneWay => 0.5,
            // Procession only (no peer to compare with), or no target in PERFORMANCE.md.
            Workload::W3Bounded
            | Workload::Restart
            | Workload::Pipeline
            | Workload::Queue
            | Workload::Mutex
            | Workload::MutexContended
            | Workload::RemoteOneWay64k => f64::NAN,
        }
    }
}

/// The counts of every workload, at `PROCESSION_BENCH_SCALE`.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    /// W1 round trips.
    pub ping_pong: u64,
    /// W1b requests.
    pub ask_one: u64,
    /// W2 requests.
    pub ask_window: u64,
    /// W2 requests in flight (not scaled).
    pub window: usize,
    /// W3 producers (not scaled).
    pub producers: usize,
    /// W3 messages per producer.
    pub per_producer: u64,
    /// W4 actors.
    pub spawn: usize,
    /// W4-mem actors.
    pub idle: usize,
    /// W5 ring size.
    pub ring_nodes: usize,
    /// W5 hops.
    pub ring_hops: u64,
    /// Chains built and completed in the `then` workload.
    pub chains: u64,
    /// Crashes and restarts in the `restart` workload.
    pub restarts: u64,
    /// Chunks through the pipe and the pipeline (1 GiB of them).
    pub chunks: u64,
    /// Bytes per chunk (not scaled).
    pub chunk: usize,
    /// The bound of every pipe or channel in the pipe and pipeline workloads, in bytes (not
    /// scaled): procession's default pipe capacity.
    pub pipe_capacity: usize,
    /// Items through the queue.
    pub queue_items: u64,
    /// Lock/unlock pairs in each mutex workload, over all tasks.
    pub locks: u64,
    /// Tasks contending in `mutex-contended` (not scaled).
    pub contenders: usize,
    /// Round trips in `remote-ping-pong`.
    pub remote_round_trips: u64,
    /// Messages in `remote-oneway` (100-byte bodies).
    pub remote_messages: u64,
    /// Messages in `remote-oneway-64k` (64 KiB bodies: 4 GiB of them).
    pub remote_messages_64k: u64,
}

/// The window protocol of the remote one-way workloads: the receiver acknowledges every
/// `ack_every` messages (and the last one) with the count it has received; the sender keeps at
/// most `window` messages sent and not acknowledged. So at most `window` frames wait in the
/// sender's buffers, well under the transport's 8 MiB per-peer bound, and none is dropped.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFlow {
    /// Messages sent and not yet acknowledged, at most.
    pub window: u64,
    /// The receiver acknowledges every this many messages.
    pub ack_every: u64,
}

/// Untimed round trips (or one window of messages) before the clock starts, so both
/// connections are made and warm (not scaled).
pub const REMOTE_WARMUP: u64 = 100;

impl Counts {
    pub fn at(scale: f64) -> Counts {
        let n = |base: f64, min: f64| (base * scale).round().max(min) as u64;
        Counts {
            ping_pong: n(1e6, 1.0),
            ask_one: n(1e6, 1.0),
            ask_window: n(2e6, 1.0),
            window: 64,
            producers: 2,
            per_producer: n(5e6, 1.0),
            spawn: n(1e5, 1.0) as usize,
            idle: n(2e5, 1.0) as usize,
            ring_nodes: n(1e3, 2.0) as usize,
            ring_hops: n(5e6, 1.0),
            chains: n(1e6, 1.0),
            restarts: n(2e4, 1.0),
            chunks: n(16_384.0, 1.0),
            chunk: 64 * 1024,
            pipe_capacity: procession::pipe::DEFAULT_CAPACITY,
            queue_items: n(1e7, 1.0),
            locks: n(1e7, 1.0),
            contenders: 4,
            remote_round_trips: n(1e5, 1.0),
            remote_messages: n(5e6, 1.0),
            remote_messages_64k: n(65_536.0, 1.0),
        }
    }
}

pub fn scale() -> f64 {
    match std::env::var("PROCESSION_BENCH_SCALE") {
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => v,
            _ => {
                eprintln!("PROCESSION_BENCH_SCALE={s:?} is not a positive number; using 1.0");
                1.0
            }
        },
        Err(_) => 1.0,
    }
}
