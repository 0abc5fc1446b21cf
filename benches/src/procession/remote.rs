//! The remote workloads: two runtimes in this OS process, each with its own `Net` on loopback.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::chunk::Chunk;

// Remote: two runtimes in this OS process, each with its own `Net` on loopback ----------------

/// Starts a runtime like every other run's (2 workers) with its own transport; `name` names its
/// threads (`here-worker-0`), so a profile tells the nodes apart.
fn networked_runtime(name: &str) -> (Runtime, Net) {
    let runtime = Runtime::builder()
        .workers(2)
        .name(name)
        .build()
        .expect("building the procession runtime");
    let net = Net::start(&runtime).expect("starting the transport on loopback");
    (runtime, net)
}

/// Frames the transport dropped because a peer's buffer was full.
fn dropped_peer_full(runtime: &Runtime) -> u64 {
    runtime
        .metrics()
        .counter("net.dropped.peer_full")
        .expect("the transport's counter")
        .get()
}

/// Messages a runtime dropped (unknown receiver, no handler, failed decoding).
fn messages_dropped(runtime: &Runtime) -> u64 {
    runtime
        .metrics()
        .snapshot()
        .get("runtime.messages_dropped")
        .and_then(|value| value.as_counter())
        .unwrap_or(0)
}

/// Ends this OS process if the transport drops a frame: with a window the stream would stall
/// rather than finish, so fail at once instead of at the harness's timeout.
fn watch_for_drops(metrics: ::procession::Metrics) {
    let counter = metrics
        .counter("net.dropped.peer_full")
        .expect("the transport's counter");
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        let dropped = counter.get();
        if dropped > 0 {
            eprintln!("the transport dropped {dropped} frames at a full peer buffer");
            std::process::exit(1);
        }
    });
}

#[derive(Serialize, Deserialize)]
struct RemotePing(u64);

impl Message for RemotePing {
    const NAME: &'static str = "bench::RemotePing";
}

#[derive(Serialize, Deserialize)]
struct RemotePong(u64);

impl Message for RemotePong {
    const NAME: &'static str = "bench::RemotePong";
}

/// Sends `RemotePing(n)`; each `RemotePong(n - 1)` is answered with the next ping until 0.
struct RemotePinger {
    ponger: Upid,
    pongs: u64,
    done: Option<Promise<u64>>,
}

impl Process for RemotePinger {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _from: &Upid, RemotePong(remaining)| {
            me.pongs += 1;
            if remaining == 0 {
                if let Some(done) = me.done.take() {
                    done.set(me.pongs);
                }
            } else {
                send(&me.ponger, RemotePing(remaining));
            }
        })
        .expect("one handler");
    }
}

impl RemotePinger {
    fn start(&mut self, round_trips: u64, done: Promise<u64>) {
        self.pongs = 0;
        self.done = Some(done);
        send(&self.ponger, RemotePing(round_trips));
    }
}

/// Answers every `RemotePing(n)` with `RemotePong(n - 1)` to its sender.
#[derive(Default)]
struct RemotePonger {
    pings: u64,
}

impl Process for RemotePonger {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, RemotePing(remaining)| {
            me.pings += 1;
            send(from, RemotePong(remaining - 1));
        })
        .expect("one handler");
    }
}

/// The receiver's count of messages received so far.
#[derive(Serialize, Deserialize)]
struct Ack(u64);

impl Message for Ack {
    const NAME: &'static str = "bench::Ack";
}

/// Sends `Chunk`s to `to` until `limit`, never more than `window` beyond the last `Ack`.
struct Streamer {
    to: Upid,
    body: Bytes,
    window: u64,
    limit: u64,
    sent: u64,
    acked: u64,
}

impl Process for Streamer {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _from: &Upid, Ack(received)| {
            me.acked = me.acked.max(received);
            me.fill();
        })
        .expect("one handler");
    }
}

impl Streamer {
    fn more(&mut self, messages: u64) {
        self.limit += messages;
        self.fill();
    }

    fn fill(&mut self) {
        while self.sent < self.limit && self.sent - self.acked < self.window {
            let chunk = Chunk {
                seq: self.sent,
                body: self.body.clone(),
            };
            send(&self.to, chunk);
            self.sent += 1;
        }
    }
}

/// Counts `Chunk`s (checking their order and size) and acknowledges every `ack_every`, and the
/// one that reaches `target`, when it completes `done` with the bytes received.
struct Sink {
    ack_every: u64,
    body: usize,
    received: u64,
    bytes: u64,
    misordered: u64,
    target: u64,
    done: Option<Promise<u64>>,
}

impl Process for Sink {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, chunk: Chunk| {
            if chunk.seq != me.received || chunk.body.len() != me.body {
                me.misordered += 1;
            }
            me.received += 1;
            me.bytes += chunk.body.len() as u64;
            let last = me.received == me.target;
            if me.received.is_multiple_of(me.ack_every) || last {
                send(from, Ack(me.received));
            }
            if last {
                if let Some(done) = me.done.take() {
                    done.set(me.bytes);
                }
            }
        })
        .expect("one handler");
    }
}

impl Sink {
    fn expect(&mut self, messages: u64, done: Promise<u64>) {
        self.target = self.received + messages;
        self.bytes = 0;
        self.done = Some(done);
    }
}

/// Has `streamer` send `messages` more and waits until `sink` has them all; the elapsed time
/// and the body bytes received.
fn stream(
    runtime: &Runtime,
    streamer: &Pid<Streamer>,
    sink: &Pid<Sink>,
    messages: u64,
) -> (Duration, u64) {
    let promise = Promise::new();
    let done = promise.future();
    runtime
        .block_on(dispatch(sink, move |sink: &mut Sink| {
            sink.expect(messages, promise)
        }))
        .expect("sink ready");
    let start = Instant::now();
    cast(streamer, move |streamer: &mut Streamer| {
        streamer.more(messages)
    });
    let bytes = runtime.block_on(done).expect("stream");
    (start.elapsed(), bytes)
}

impl Procession {
    pub fn remote_ping_pong(round_trips: u64) -> Duration {
        let (here, _here_net) = networked_runtime("here");
        let (there, _there_net) = networked_runtime("there");
        let ponger = there.spawn(RemotePonger::default());
        let pinger = here.spawn(RemotePinger {
            ponger: ponger.upid(),
            pongs: 0,
            done: None,
        });
        assert_ne!(pinger.upid().address(), ponger.upid().address());
        let run = |round_trips: u64| {
            let promise = Promise::new();
            let done = promise.future();
            let start = Instant::now();
            cast(&pinger, move |pinger: &mut RemotePinger| {
                pinger.start(round_trips, promise)
            });
            let pongs = here.block_on(done).expect("ping-pong");
            let elapsed = start.elapsed();
            assert_eq!(pongs, round_trips, "every pong arrived");
            elapsed
        };
        // Makes both connections (one each way) before the clock starts.
        run(REMOTE_WARMUP);
        let elapsed = run(round_trips);
        let pings = there
            .block_on(dispatch(&ponger, |ponger: &mut RemotePonger| ponger.pings))
            .expect("ponger");
        assert_eq!(pings, REMOTE_WARMUP + round_trips, "every ping arrived");
        assert_eq!(messages_dropped(&here) + messages_dropped(&there), 0);
        elapsed
    }

    pub fn remote_one_way(messages: u64, body: usize, flow: RemoteFlow) -> Duration {
        let (here, _here_net) = networked_runtime("here");
        let (there, _there_net) = networked_runtime("there");
        watch_for_drops(here.metrics());
        watch_for_drops(there.metrics());
        let sink = there.spawn(Sink {
            ack_every: flow.ack_every,
            body,
            received: 0,
            bytes: 0,
            misordered: 0,
            target: 0,
            done: None,
        });
        let streamer = here.spawn(Streamer {
            to: sink.upid(),
            body: payload(body),
            window: flow.window,
            limit: 0,
            sent: 0,
            acked: 0,
        });
        // One window, untimed: makes both connections (data one way, acks the other).
        stream(&there, &streamer, &sink, flow.window);
        let (elapsed, bytes) = stream(&there, &streamer, &sink, messages);
        assert_eq!(bytes, messages * body as u64, "every byte arrived");
        let (received, misordered) = there
            .block_on(dispatch(&sink, |sink: &mut Sink| {
                (sink.received, sink.misordered)
            }))
            .expect("sink");
        assert_eq!(received, flow.window + messages, "every message arrived");
        assert_eq!(misordered, 0, "in order, whole");
        assert_eq!(dropped_peer_full(&here) + dropped_peer_full(&there), 0);
        assert_eq!(messages_dropped(&here) + messages_dropped(&there), 0);
        elapsed
    }
}
