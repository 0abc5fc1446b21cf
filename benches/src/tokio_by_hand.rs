//! tokio by hand: each actor is a spawned task looping over an unbounded mpsc; an ask carries a
//! oneshot. Drivers run as tasks on the runtime's workers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};

use crate::{drive, payload, per_actor, settled_rss, tokio_runtime, xor, PipePeer, System};

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
