//! procession on a 2-worker pool: an ask is a `dispatch` (its reply is a Future), a tell is a
//! `cast` (no reply); the main thread waits with `Runtime::block_on`. The remote workloads run
//! two such runtimes, each with its own `procession_net::Net` on loopback, and typed messages
//! (`send` to a `Upid`, handlers installed in `initialize`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::procession::{
    cast, cast_wait, dispatch, pipe, send, spawn, spawn_async, supervise, terminate, wait, Context,
    Future, Message, Pid, Process, Promise, Queue, Runtime, SpawnOptions, Strategy, Supervisor,
    Upid,
};
use bytes::Bytes;
use procession_net::Net;
use serde::{Deserialize, Serialize};

use crate::{
    payload, per_actor, settled_rss_blocking, xor, PipePeer, RemoteFlow, System, REMOTE_WARMUP,
};

mod remote;

/// procession, `Runtime::builder().workers(2)`.
pub struct Procession;

fn runtime() -> Runtime {
    Runtime::builder()
        .workers(2)
        .build()
        .expect("building the procession runtime")
}

/// A done signal that many processes hold; only the last event of a run takes it.
type DoneSlot = Arc<Mutex<Option<Promise<()>>>>;

fn done_slot() -> (DoneSlot, Future<()>) {
    let promise = Promise::new();
    let future = promise.future();
    (Arc::new(Mutex::new(Some(promise))), future)
}

fn fire(slot: &DoneSlot) {
    if let Some(promise) = slot.lock().expect("done slot").take() {
        promise.set(());
    }
}

// W1 ------------------------------------------------------------------------------------------

struct Pinger {
    pong: Pid<Ponger>,
    done: Option<Promise<()>>,
}

impl Process for Pinger {}

impl Pinger {
    fn ping(&mut self, remaining: u64) {
        if remaining == 0 {
            if let Some(done) = self.done.take() {
                done.set(());
            }
            return;
        }
        cast(&self.pong, move |pong: &mut Ponger| {
            pong.pong(remaining - 1)
        });
    }
}

struct Ponger {
    ping: Option<Pid<Pinger>>,
}

impl Process for Ponger {}

impl Ponger {
    fn pong(&mut self, remaining: u64) {
        let ping = self.ping.as_ref().expect("set before the start");
        cast(ping, move |ping: &mut Pinger| ping.ping(remaining));
    }
}

// W1b, W2, W4 ---------------------------------------------------------------------------------

/// Answers `x -> x + 1`; the dispatched closure is the request.
struct Server;

impl Process for Server {}

/// Keeps `window` requests in flight to the server; each reply comes back into the client with
/// `on_ready` + a dispatch to itself (libprocess's `onReady(defer(self(), ...))`), which sends
/// the next request.
struct Client {
    server: Pid<Server>,
    me: Option<Pid<Client>>,
    total: u64,
    sent: u64,
    received: u64,
    checksum: u64,
    done: Option<Promise<u64>>,
}

impl Process for Client {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
    }
}

impl Client {
    fn start(&mut self, window: usize) {
        for _ in 0..self.total.min(window as u64) {
            self.request();
        }
    }

    fn request(&mut self) {
        let x = self.sent;
        self.sent += 1;
        let me = self.me.clone().expect("set in initialize");
        dispatch(&self.server, move |_: &mut Server| x + 1).on_ready(move |&reply| {
            cast(&me, move |client: &mut Client| client.reply(reply));
        });
    }

    fn reply(&mut self, value: u64) {
        self.received += 1;
        self.checksum = self.checksum.wrapping_add(value);
        if self.sent < self.total {
            self.request();
        } else if self.received == self.total {
            if let Some(done) = self.done.take() {
                done.set(self.checksum);
            }
        }
    }
}

// W3 ------------------------------------------------------------------------------------------

struct Counter {
    seen: u64,
    total: u64,
    done: Option<Promise<()>>,
}

impl Process for Counter {}

impl Counter {
    fn add(&mut self, n: u64) {
        self.seen += n;
        if self.seen == self.total {
            if let Some(done) = self.done.take() {
                done.set(());
            }
        }
    }
}

// W4-mem --------------------------------------------------------------------------------------

struct Idle;

impl Process for Idle {}

// W5 ------------------------------------------------------------------------------------------

struct Node {
    next: Option<Pid<Node>>,
    done: DoneSlot,
}

impl Process for Node {}

impl Node {
    fn token(&mut self, hops: u64) {
        if hops == 0 {
            fire(&self.done);
            return;
        }
        let next = self
            .next
            .as_ref()
            .expect("the ring is closed before the start");
        cast(next, move |node: &mut Node| node.token(hops - 1));
    }
}

impl System for Procession {
    fn ping_pong(&self, round_trips: u64) -> Duration {
        let runtime = runtime();
        let _entered = runtime.enter();
        let pong = runtime.spawn(Ponger { ping: None });
        let promise = Promise::new();
        let done = promise.future();
        let ping = runtime.spawn(Pinger {
            pong: pong.clone(),
            done: Some(promise),
        });
        let ping_pid = ping.clone();
        runtime
            .block_on(dispatch(&pong, move |pong: &mut Ponger| {
                pong.ping = Some(ping_pid)
            }))
            .expect("setup");
        let start = Instant::now();
        cast(&ping, move |ping: &mut Pinger| ping.ping(round_trips));
        runtime.block_on(done).expect("ping-pong");
        start.elapsed()
    }

    fn ask(&self, total: u64, window: usize) -> Duration {
        let runtime = runtime();
        let _entered = runtime.enter();
        let server = runtime.spawn(Server);
        let promise = Promise::new();
        let done = promise.future();
        let client = runtime.spawn(Client {
            server,
            me: None,
            total,
            sent: 0,
            received: 0,
            checksum: 0,
            done: Some(promise),
        });
        runtime
            .block_on(dispatch(&client, |_: &mut Client| ()))
            .expect("client started");
        let start = Instant::now();
        cast(&client, move |client: &mut Client| client.start(window));
        let checksum = runtime.block_on(done).expect("asks");
        let elapsed = start.elapsed();
        assert_eq!(checksum, total * (total + 1) / 2, "every reply seen once");
        elapsed
    }

    fn fan_in(&self, producers: usize, per_producer: u64) -> Duration {
        fan_in(producers, per_producer, None)
    }

    fn spawn_ask_stop(&self, actors: usize) -> Duration {
        let runtime = runtime();
        let driver = runtime.spawn_async(async move {
            let start = Instant::now();
            let pids: Vec<Pid<Server>> = (0..actors).map(|_| spawn(Server)).collect();
            let replies: Vec<Future<u64>> = pids
                .iter()
                .zip(0u64..)
                .map(|(pid, x)| dispatch(pid, move |_: &mut Server| x + 1))
                .collect();
            for reply in replies {
                reply.await.expect("reply");
            }
            let exits: Vec<Future<()>> = pids
                .iter()
                .map(|pid| {
                    terminate(pid);
                    wait(pid)
                })
                .collect();
            for exit in exits {
                exit.await.expect("exit");
            }
            start.elapsed()
        });
        runtime.block_on(driver).expect("driver")
    }

    fn idle_memory(&self, actors: usize) -> f64 {
        let runtime = runtime();
        let _entered = runtime.enter();
        let warm = runtime.spawn(Idle);
        runtime
            .block_on(dispatch(&warm, |_: &mut Idle| ()))
            .expect("warm-up");
        terminate(&warm);
        runtime.block_on(wait(&warm)).expect("warm-up exit");

        let before = settled_rss_blocking();
        let mut pids = Vec::with_capacity(actors);
        for _ in 0..actors {
            pids.push(runtime.spawn(Idle));
        }
        let after = settled_rss_blocking();
        let bytes = per_actor(before, after, actors);
        std::mem::forget(pids); // keep them alive; the process exits next
        bytes
    }

    fn ring(&self, nodes: usize, hops: u64) -> Duration {
        let runtime = runtime();
        let _entered = runtime.enter();
        let (slot, done) = done_slot();
        let pids: Vec<Pid<Node>> = (0..nodes)
            .map(|_| {
                runtime.spawn(Node {
                    next: None,
                    done: slot.clone(),
                })
            })
            .collect();
        let closing: Vec<Future<()>> = (0..nodes)
            .map(|i| {
                let next = pids[(i + 1) % nodes].clone();
                dispatch(&pids[i], move |node: &mut Node| node.next = Some(next))
            })
            .collect();
        for closed in closing {
            runtime.block_on(closed).expect("ring setup");
        }
        let start = Instant::now();
        cast(&pids[0], move |node: &mut Node| node.token(hops));
        runtime.block_on(done).expect("ring");
        start.elapsed()
    }

    fn then_chain(&self, chains: u64) -> Option<Duration> {
        let runtime = runtime();
        let _entered = runtime.enter();
        let mut checksum = 0u64;
        let start = Instant::now();
        for i in 0..chains {
            let promise = Promise::new();
            let mut chain = promise.future();
            for _ in 0..10 {
                chain = chain.map(|x: &u64| x + 1);
            }
            promise.set(i);
            checksum = checksum.wrapping_add(chain.get().expect("the chain completed"));
        }
        let elapsed = start.elapsed();
        assert_eq!(checksum, (0..chains).map(|i| i + 10).sum::<u64>());
        Some(elapsed)
    }

    fn fan_in_bounded(
        &self,
        producers: usize,
        per_producer: u64,
        capacity: usize,
    ) -> Option<Duration> {
        Some(fan_in(producers, per_producer, Some(capacity)))
    }

    fn restart(&self, restarts: u64) -> Option<Duration> {
        // The crashes are the workload: keep the default hook from printing each one.
        std::panic::set_hook(Box::new(|_| {}));
        let runtime = runtime();
        let supervisor = runtime.spawn(
            Supervisor::new(Strategy::OneForOne).intensity(u32::MAX, Duration::from_secs(1)),
        );
        let child = runtime
            .block_on(supervise(&supervisor, || Server))
            .expect("supervised");
        let start = Instant::now();
        for _ in 0..restarts {
            let crash = dispatch(&child, |_: &mut Server| -> u64 {
                panic!("benchmark crash")
            });
            let _ = runtime.block_on(crash);
            // The restart is asynchronous: ask until the new instance answers.
            while runtime
                .block_on(dispatch(&child, |_: &mut Server| 1))
                .is_err()
            {}
        }
        Some(start.elapsed())
    }

    /// The pipe is measured the same way against either peer.
    fn pipe(&self, _: PipePeer, chunks: u64, chunk: usize, capacity: usize) -> Option<Duration> {
        let runtime = runtime();
        let data = payload(chunk);
        let (reader, writer) = pipe::pipe_with_capacity(capacity);
        let start = Instant::now();
        let _ = runtime.spawn_async(produce(writer, data, chunks));
        let received = runtime
            .block_on(runtime.spawn_async(consume(reader)))
            .expect("consumer");
        let elapsed = start.elapsed();
        assert_eq!(received, chunks * chunk as u64);
        Some(elapsed)
    }

    fn pipeline(&self, chunks: u64, chunk: usize, capacity: usize) -> Option<Duration> {
        // `map` writes into a pipe of the default capacity: the same bound as the source's.
        assert_eq!(capacity, pipe::DEFAULT_CAPACITY);
        let runtime = runtime();
        let _entered = runtime.enter(); // the stages run on the current runtime
        let data = payload(chunk);
        let (source, writer) = pipe::pipe_with_capacity(capacity);
        let start = Instant::now();
        let _ = runtime.spawn_async(produce(writer, data, chunks));
        // The sink is a stage that drains `map`'s output itself: two pipes and a task per stage,
        // the shape of the tokio reference (ending in `| writer` would add a third pipe and a
        // task that moves each chunk into it).
        let sink = |output: pipe::Reader| spawn_async(consume(output));
        let received = runtime
            .block_on(source | pipe::map(|chunk: Bytes| Ok(xor(&chunk))) | sink)
            .expect("pipeline");
        let elapsed = start.elapsed();
        assert_eq!(received, chunks * chunk as u64);
        Some(elapsed)
    }

    fn queue(&self, items: u64) -> Option<Duration> {
        let runtime = runtime();
        let queue = Queue::new();
        let start = Instant::now();
        let consumer = runtime.spawn_async({
            let queue = queue.clone();
            async move {
                let mut sum = 0;
                for _ in 0..items {
                    sum += queue.get().await.expect("an item");
                }
                sum
            }
        });
        let _ = runtime.spawn_async(async move {
            for i in 0..items {
                queue.put(i);
            }
        });
        let sum = runtime.block_on(consumer).expect("consumer");
        let elapsed = start.elapsed();
        assert_eq!(sum, items * (items - 1) / 2, "every item got once");
        Some(elapsed)
    }

    fn mutex(&self, tasks: usize, per_task: u64) -> Option<Duration> {
        let runtime = runtime();
        let mutex = ::procession::Mutex::new();
        // procession's Mutex guards no data: the counter is an atomic only to be shared, and
        // its separate load and store lose increments unless the lock orders them.
        let counter = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let lockers: Vec<Future<()>> = (0..tasks)
            .map(|_| {
                let (mutex, counter) = (mutex.clone(), counter.clone());
                runtime.spawn_async(async move {
                    for _ in 0..per_task {
                        let owned = mutex.lock().await.expect("granted");
                        let guard = owned.take().expect("the guard is ours");
                        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                        drop(guard);
                    }
                })
            })
            .collect();
        for locker in lockers {
            runtime.block_on(locker).expect("locker");
        }
        let elapsed = start.elapsed();
        assert_eq!(counter.load(Ordering::Relaxed), tasks as u64 * per_task);
        Some(elapsed)
    }

    fn remote_ping_pong(&self, round_trips: u64) -> Option<Duration> {
        Some(Procession::remote_ping_pong(round_trips))
    }

    fn remote_one_way(&self, messages: u64, body: usize, flow: RemoteFlow) -> Option<Duration> {
        Some(Procession::remote_one_way(messages, body, flow))
    }
}

/// Writes `chunks` clones of `data`, each write awaited (back-pressure), then closes.
async fn produce(mut writer: pipe::Writer, data: Bytes, chunks: u64) {
    for _ in 0..chunks {
        writer
            .write(data.clone())
            .await
            .expect("the reader reads to the end");
    }
    writer.close();
}

/// Reads `reader` to the end of the stream; the bytes read.
async fn consume(mut reader: pipe::Reader) -> u64 {
    let mut received = 0;
    while let Some(chunk) = reader.read().await.expect("the writer closes the stream") {
        received += chunk.len() as u64;
    }
    received
}

/// W3: `producers` tasks send to one counter; with a `capacity`, its mailbox is bounded and the
/// senders wait for room (`cast_wait`), else they `cast` into an unbounded one.
fn fan_in(producers: usize, per_producer: u64, capacity: Option<usize>) -> Duration {
    let runtime = runtime();
    let _entered = runtime.enter();
    let promise = Promise::new();
    let done = promise.future();
    let counter = Counter {
        seen: 0,
        total: producers as u64 * per_producer,
        done: Some(promise),
    };
    let options = match capacity {
        Some(capacity) => SpawnOptions::new().bounded(capacity),
        None => SpawnOptions::new(),
    };
    let counter = runtime.spawn_with(counter, options).expect("spawn");
    runtime
        .block_on(dispatch(&counter, |_: &mut Counter| ()))
        .expect("counter started");
    let start = Instant::now();
    for _ in 0..producers {
        let counter = counter.clone();
        let _ = runtime.spawn_async(async move {
            for _ in 0..per_producer {
                let add = |counter: &mut Counter| counter.add(1);
                if capacity.is_some() {
                    // Wait for room: memory stays within the bound.
                    let _ = cast_wait(&counter, add).await;
                } else {
                    cast(&counter, add);
                }
            }
        });
    }
    runtime.block_on(done).expect("fan-in");
    start.elapsed()
}
