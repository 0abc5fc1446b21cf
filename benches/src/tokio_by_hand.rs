//! tokio by hand: each actor is a spawned task looping over an unbounded mpsc; an ask carries a
//! oneshot. Drivers run as tasks on the runtime's workers. The remote workloads are raw TCP by
//! hand: length-prefixed frames over a loopback `TcpStream`, nodelay, each end on a runtime of
//! its own (two nodes).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::{
    drive, payload, per_actor, settled_rss, tokio_runtime, xor, PipePeer, RemoteFlow, System,
    REMOTE_WARMUP,
};

/// tokio by hand on a multi-thread runtime with `workers` workers.
pub struct TokioByHand {
    /// Worker threads.
    pub workers: usize,
}

type Ask = (u64, oneshot::Sender<u64>);

/// A server answering `x -> x + 1`, as a task; dropping every sender stops it.
fn spawn_server() -> (mpsc::UnboundedSender<Ask>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Ask>();
    let handle = tokio::spawn(async move {
        while let Some((x, reply)) = rx.recv().await {
            let _ = reply.send(x + 1);
        }
    });
    (tx, handle)
}

fn ask(server: &mpsc::UnboundedSender<Ask>, x: u64) -> oneshot::Receiver<u64> {
    let (tx, rx) = oneshot::channel();
    server.send((x, tx)).expect("server alive");
    rx
}

impl System for TokioByHand {
    fn ping_pong(&self, round_trips: u64) -> Duration {
        let runtime = tokio_runtime(self.workers);
        drive(&runtime, async move {
            let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
            let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let to_ping = ping_tx.clone();
            tokio::spawn(async move {
                while let Some(n) = pong_rx.recv().await {
                    let _ = to_ping.send(n);
                }
            });
            tokio::spawn(async move {
                let mut done = Some(done_tx);
                while let Some(n) = ping_rx.recv().await {
                    if n == 0 {
                        if let Some(done) = done.take() {
                            let _ = done.send(());
                        }
                    } else {
                        let _ = pong_tx.send(n - 1);
                    }
                }
            });
            let start = Instant::now();
            ping_tx.send(round_trips).expect("pinger alive");
            done_rx.await.expect("ping-pong");
            start.elapsed()
        })
    }

    fn ask(&self, total: u64, window: usize) -> Duration {
        let runtime = tokio_runtime(self.workers);
        drive(&runtime, async move {
            let (server, _handle) = spawn_server();
            let start = Instant::now();
            let mut in_flight = VecDeque::with_capacity(window);
            let mut sent = 0u64;
            let mut checksum = 0u64;
            while sent < total && in_flight.len() < window {
                in_flight.push_back(ask(&server, sent));
                sent += 1;
            }
            while let Some(reply) = in_flight.pop_front() {
                checksum = checksum.wrapping_add(reply.await.expect("reply"));
                if sent < total {
                    in_flight.push_back(ask(&server, sent));
                    sent += 1;
                }
            }
            let elapsed = start.elapsed();
            assert_eq!(checksum, total * (total + 1) / 2);
            elapsed
        })
    }

    fn fan_in(&self, producers: usize, per_producer: u64) -> Duration {
        let runtime = tokio_runtime(self.workers);
        drive(&runtime, async move {
            let total = producers as u64 * per_producer;
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            let (done_tx, done_rx) = oneshot::channel::<()>();
            tokio::spawn(async move {
                let mut seen = 0u64;
                let mut done = Some(done_tx);
                while let Some(n) = rx.recv().await {
                    seen += n;
                    if seen == total {
                        if let Some(done) = done.take() {
                            let _ = done.send(());
                        }
                    }
                }
            });
            let start = Instant::now();
            for _ in 0..producers {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for _ in 0..per_producer {
                        let _ = tx.send(1);
                    }
                });
            }
            done_rx.await.expect("fan-in");
            start.elapsed()
        })
    }

    fn spawn_ask_stop(&self, actors: usize) -> Duration {
        let runtime = tokio_runtime(self.workers);
        drive(&runtime, async move {
            let start = Instant::now();
            let servers: Vec<_> = (0..actors).map(|_| spawn_server()).collect();
            let replies: Vec<_> = servers
                .iter()
                .zip(0u64..)
                .map(|((server, _), x)| ask(server, x))
                .collect();
            for reply in replies {
                reply.await.expect("reply");
            }
            // Stop: drop the sender; the task's loop ends. Then wait for each task.
            let handles: Vec<_> = servers.into_iter().map(|(_, handle)| handle).collect();
            for handle in handles {
                handle.await.expect("server task");
            }
            start.elapsed()
        })
    }

    fn idle_memory(&self, actors: usize) -> f64 {
        let runtime = tokio_runtime(self.workers);
        drive(&runtime, async move {
            let (warm, handle) = spawn_server();
            ask(&warm, 0).await.expect("warm-up");
            drop(warm);
            handle.await.expect("warm-up exit");

            let before = settled_rss().await;
            let mut servers = Vec::with_capacity(actors);
            for _ in 0..actors {
                servers.push(spawn_server().0);
            }
            let after = settled_rss().await;
            let bytes = per_actor(before, after, actors);
            std::mem::forget(servers); // keep them alive; the process exits next
            bytes
        })
    }

    fn ring(&self, nodes: usize, hops: u64) -> Duration {
        let runtime = tokio_runtime(self.workers);
        drive(&runtime, async move {
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let done = Arc::new(Mutex::new(Some(done_tx)));
            let (senders, receivers): (Vec<_>, Vec<_>) =
                (0..nodes).map(|_| mpsc::unbounded_channel::<u64>()).unzip();
            for (i, mut rx) in receivers.into_iter().enumerate() {
                let next = senders[(i + 1) % nodes].clone();
                let done = done.clone();
                tokio::spawn(async move {
                    while let Some(hops) = rx.recv().await {
                        if hops == 0 {
                            if let Some(done) = done.lock().expect("done").take() {
                                let _ = done.send(());
                            }
                        } else {
                            let _ = next.send(hops - 1);
                        }
                    }
                });
            }
            let start = Instant::now();
            senders[0].send(hops).expect("ring alive");
            done_rx.await.expect("ring");
            start.elapsed()
        })
    }

    /// A chain of 10 `futures` `map`s on a oneshot, completed after building and awaited on a
    /// current-thread runtime (the same whatever `workers` says).
    fn then_chain(&self, chains: u64) -> Option<Duration> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("current-thread runtime");
        let (elapsed, checksum) = runtime.block_on(async move {
            let mut checksum = 0u64;
            let start = Instant::now();
            for i in 0..chains {
                let (tx, rx) = oneshot::channel::<u64>();
                let chain = rx
                    .map(|r| r.expect("sent") + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1)
                    .map(|x| x + 1);
                tx.send(i).expect("receiver alive");
                checksum = checksum.wrapping_add(chain.await);
            }
            (start.elapsed(), checksum)
        });
        assert_eq!(checksum, (0..chains).map(|i| i + 10).sum::<u64>());
        Some(elapsed)
    }

    fn pipe(&self, peer: PipePeer, chunks: u64, chunk: usize, capacity: usize) -> Option<Duration> {
        let runtime = tokio_runtime(self.workers);
        let data = payload(chunk);
        Some(drive(&runtime, async move {
            let start = Instant::now();
            let received = match peer {
                PipePeer::Mpsc => {
                    let (tx, rx) = mpsc::channel(chunks_in(capacity, chunk));
                    tokio::spawn(send_chunks(tx, data, chunks));
                    tokio::spawn(receive_chunks(rx)).await
                }
                PipePeer::Duplex => {
                    let (mut tx, mut rx) = tokio::io::duplex(capacity);
                    tokio::spawn(async move {
                        for _ in 0..chunks {
                            tx.write_all(&data).await.expect("reader alive");
                        }
                        // Dropping `tx` ends the stream.
                    });
                    tokio::spawn(async move {
                        let mut buffer = vec![0; chunk];
                        let mut received = 0;
                        loop {
                            match rx.read(&mut buffer).await.expect("read") {
                                0 => return received,
                                n => received += n as u64,
                            }
                        }
                    })
                    .await
                }
            };
            let elapsed = start.elapsed();
            assert_eq!(received.expect("consumer"), chunks * chunk as u64);
            elapsed
        }))
    }

    fn pipeline(&self, chunks: u64, chunk: usize, capacity: usize) -> Option<Duration> {
        let runtime = tokio_runtime(self.workers);
        let data = payload(chunk);
        Some(drive(&runtime, async move {
            let start = Instant::now();
            let (source, mut input) = mpsc::channel::<Bytes>(chunks_in(capacity, chunk));
            let (output, sink) = mpsc::channel(chunks_in(capacity, chunk));
            tokio::spawn(send_chunks(source, data, chunks));
            tokio::spawn(async move {
                while let Some(chunk) = input.recv().await {
                    output.send(xor(&chunk)).await.expect("sink alive");
                }
            });
            let received = tokio::spawn(receive_chunks(sink)).await.expect("sink");
            let elapsed = start.elapsed();
            assert_eq!(received, chunks * chunk as u64);
            elapsed
        }))
    }

    fn queue(&self, items: u64) -> Option<Duration> {
        let runtime = tokio_runtime(self.workers);
        Some(drive(&runtime, async move {
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            let start = Instant::now();
            let consumer = tokio::spawn(async move {
                let mut sum = 0;
                for _ in 0..items {
                    sum += rx.recv().await.expect("an item");
                }
                sum
            });
            tokio::spawn(async move {
                for i in 0..items {
                    let _ = tx.send(i);
                }
            });
            let sum = consumer.await.expect("consumer");
            let elapsed = start.elapsed();
            assert_eq!(sum, items * (items - 1) / 2, "every item got once");
            elapsed
        }))
    }

    fn mutex(&self, tasks: usize, per_task: u64) -> Option<Duration> {
        let runtime = tokio_runtime(self.workers);
        Some(drive(&runtime, async move {
            let counter = Arc::new(tokio::sync::Mutex::new(0u64));
            let start = Instant::now();
            let lockers: Vec<_> = (0..tasks)
                .map(|_| {
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        for _ in 0..per_task {
                            *counter.lock().await += 1;
                        }
                    })
                })
                .collect();
            for locker in lockers {
                locker.await.expect("locker");
            }
            let elapsed = start.elapsed();
            assert_eq!(*counter.lock().await, tasks as u64 * per_task);
            elapsed
        }))
    }

    /// Two tasks, the driver and an echo task on a runtime of its own, exchange a length-prefixed 100-byte frame over a
    /// loopback `TcpStream` (nodelay both ends), the driver checking the sequence number each
    /// echo carries back.
    fn remote_ping_pong(&self, round_trips: u64) -> Option<Duration> {
        let (runtime, node) = (tokio_runtime(self.workers), tokio_runtime(self.workers));
        let there = node.handle().clone();
        Some(drive(&runtime, async move {
            let (client, server) = loopback_pair().await;
            let echo = there.spawn(async move {
                let (read, mut write) = adopt(server).into_split();
                let mut read = BufReader::new(read);
                let mut frame = vec![0; PREFIX + PING_FRAME];
                let mut echoed = 0u64;
                while read_frame(&mut read, &mut frame, PING_FRAME).await {
                    write.write_all(&frame).await.expect("pinger alive");
                    echoed += 1;
                }
                echoed
            });
            let (read, mut write) = client.into_split();
            let mut read = BufReader::new(read);
            let mut frame = vec![0; PREFIX + PING_FRAME];
            frame[..PREFIX].copy_from_slice(&(PING_FRAME as u32).to_be_bytes());
            let mut reply = frame.clone();
            let mut seq = 0u64;
            let mut run = async |round_trips: u64| {
                for _ in 0..round_trips {
                    frame[PREFIX..PREFIX + 8].copy_from_slice(&seq.to_be_bytes());
                    write.write_all(&frame).await.expect("echo alive");
                    assert!(read_frame(&mut read, &mut reply, PING_FRAME).await);
                    assert_eq!(reply, frame, "the echo of ping {seq}");
                    seq += 1;
                }
            };
            // Warms the connection up before the clock starts, as procession's run does.
            run(REMOTE_WARMUP).await;
            let start = Instant::now();
            run(round_trips).await;
            let elapsed = start.elapsed();
            drop(write); // ends the echo task's stream
            let echoed = echo.await.expect("echo task");
            assert_eq!(echoed, REMOTE_WARMUP + round_trips, "every ping echoed");
            elapsed
        }))
    }

    /// The driver writes `[u32 length][u64 seq][body]` frames through a 64 KiB `BufWriter`
    /// (flushed before it waits for an ack) to a receiver task, on a runtime of its own, reading through a 64 KiB
    /// `BufReader` into one reused buffer; acks are `[u32 8][u64 received]` frames back on the
    /// same connection, with the window protocol of procession's run.
    fn remote_one_way(&self, messages: u64, body: usize, flow: RemoteFlow) -> Option<Duration> {
        let (runtime, node) = (tokio_runtime(self.workers), tokio_runtime(self.workers));
        let there = node.handle().clone();
        Some(drive(&runtime, async move {
            let (client, server) = loopback_pair().await;
            let warmup = flow.window;
            let total = warmup + messages;
            let receiver = there.spawn(async move {
                let (read, mut write) = adopt(server).into_split();
                let mut read = BufReader::with_capacity(STREAM_BUFFER, read);
                let mut frame = vec![0; PREFIX + 8 + body];
                let (mut received, mut bytes, mut misordered) = (0u64, 0u64, 0u64);
                while received < total {
                    assert!(read_frame(&mut read, &mut frame, 8 + body).await);
                    let seq = u64::from_be_bytes(frame[PREFIX..PREFIX + 8].try_into().unwrap());
                    if seq != received {
                        misordered += 1;
                    }
                    received += 1;
                    bytes += body as u64;
                    if received.is_multiple_of(flow.ack_every)
                        || received == warmup
                        || received == total
                    {
                        let mut ack = [0; PREFIX + 8];
                        ack[..PREFIX].copy_from_slice(&8u32.to_be_bytes());
                        ack[PREFIX..].copy_from_slice(&received.to_be_bytes());
                        write.write_all(&ack).await.expect("sender alive");
                    }
                }
                (received, bytes - warmup * body as u64, misordered)
            });
            let (read, write) = client.into_split();
            let mut sender = FrameSender {
                write: BufWriter::with_capacity(STREAM_BUFFER, write),
                acks: BufReader::new(read),
                frame: {
                    let mut frame = vec![0; PREFIX + 8];
                    frame[..PREFIX].copy_from_slice(&((8 + body) as u32).to_be_bytes());
                    frame.extend_from_slice(&payload(body));
                    frame
                },
                window: flow.window,
                sent: 0,
                acked: 0,
            };
            // One window, untimed, acknowledged whole: the connection is warm.
            sender.send_up_to(warmup).await;
            while sender.acked < warmup {
                sender.read_ack().await;
            }
            let start = Instant::now();
            sender.send_up_to(total).await;
            let (received, bytes, misordered) = receiver.await.expect("receiver");
            let elapsed = start.elapsed();
            assert_eq!(received, total, "every message arrived");
            assert_eq!(bytes, messages * body as u64, "every byte arrived");
            assert_eq!(misordered, 0, "in order");
            elapsed
        }))
    }
}

// Remote: raw TCP by hand ---------------------------------------------------------------------

/// The length prefix of every frame: a big-endian `u32`.
const PREFIX: usize = 4;

/// The ping-pong frame after its prefix: a `u64` sequence number and a pattern, 100 bytes.
const PING_FRAME: usize = 100;

/// The buffers of the one-way stream's writer and reader.
const STREAM_BUFFER: usize = 64 * 1024;

/// A connected pair of loopback sockets with nodelay set on both: the client registered with
/// the calling runtime, the server end unregistered, for the other node's runtime to
/// [`adopt`]. Each end then has its own threads and I/O driver, as two nodes do, and as
/// procession's two runtimes do in the same workload: one runtime serving both ends would let
/// one thread find each frame the moment the other end wrote it, with no wake-up at all.
async fn loopback_pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let (client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
    let (client, (server, _)) = (client.expect("connect"), accepted.expect("accept"));
    client.set_nodelay(true).expect("nodelay");
    server.set_nodelay(true).expect("nodelay");
    (
        client,
        server.into_std().expect("deregistering the server end"),
    )
}

/// Registers `socket` with the runtime this runs on.
fn adopt(socket: std::net::TcpStream) -> TcpStream {
    TcpStream::from_std(socket).expect("registering the server end")
}

/// Reads one frame, prefix included, into `frame`; false at the end of the stream. Panics on a
/// frame whose length is not `length`.
async fn read_frame(read: &mut BufReader<OwnedReadHalf>, frame: &mut [u8], length: usize) -> bool {
    match read.read_exact(&mut frame[..PREFIX]).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return false,
        Err(error) => panic!("reading a frame: {error}"),
    }
    let prefix = u32::from_be_bytes(frame[..PREFIX].try_into().unwrap()) as usize;
    assert_eq!(prefix, length, "frame length");
    read.read_exact(&mut frame[PREFIX..PREFIX + length])
        .await
        .expect("a whole frame");
    true
}

/// The one-way stream's sending side: frames out, acks in, at most `window` unacknowledged.
struct FrameSender {
    write: BufWriter<OwnedWriteHalf>,
    acks: BufReader<OwnedReadHalf>,
    /// The frame, prefix included, whose sequence number is set before each write.
    frame: Vec<u8>,
    window: u64,
    sent: u64,
    acked: u64,
}

impl FrameSender {
    /// Sends until `limit` frames are out, flushing and waiting for an ack whenever the window
    /// is full.
    async fn send_up_to(&mut self, limit: u64) {
        loop {
            while self.sent < limit && self.sent - self.acked < self.window {
                self.frame[PREFIX..PREFIX + 8].copy_from_slice(&self.sent.to_be_bytes());
                self.write
                    .write_all(&self.frame)
                    .await
                    .expect("receiver alive");
                self.sent += 1;
            }
            self.write.flush().await.expect("receiver alive");
            if self.sent == limit {
                return;
            }
            self.read_ack().await;
        }
    }

    async fn read_ack(&mut self) {
        let mut ack = [0; PREFIX + 8];
        assert!(read_frame(&mut self.acks, &mut ack, 8).await, "an ack");
        let received = u64::from_be_bytes(ack[PREFIX..].try_into().unwrap());
        self.acked = self.acked.max(received);
    }
}

/// How many chunks a channel bounded in chunks holds to match a bound of `capacity` bytes.
fn chunks_in(capacity: usize, chunk: usize) -> usize {
    (capacity / chunk).max(1)
}

/// Sends `chunks` clones of `data`, each send awaited (back-pressure); dropping `tx` ends.
async fn send_chunks(tx: mpsc::Sender<Bytes>, data: Bytes, chunks: u64) {
    for _ in 0..chunks {
        tx.send(data.clone()).await.expect("receiver alive");
    }
}

/// Receives until every sender is gone; the bytes received.
async fn receive_chunks(mut rx: mpsc::Receiver<Bytes>) -> u64 {
    let mut received = 0;
    while let Some(chunk) = rx.recv().await {
        received += chunk.len() as u64;
    }
    received
}
