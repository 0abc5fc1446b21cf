//! kameo 0.22 on a 2-worker tokio runtime, every actor with an unbounded mailbox (as tokio by
//! hand and ractor have; kameo's default is bounded at 64). Tells are `tell(..).try_send()`;
//! a single ask is `ask(..).await`; a window of asks uses `try_enqueue`. Drivers run as tasks on
//! the workers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::kameo::actor::{Actor, ActorRef, Spawn as _};
use ::kameo::error::Infallible;
use ::kameo::mailbox;
use ::kameo::message::{Context, Message};
use tokio::sync::oneshot;

use crate::{drive, per_actor, settled_rss, tokio_runtime, System};

/// kameo on a 2-worker tokio runtime.
pub struct Kameo;

const WORKERS: usize = 2;

type Done = Arc<Mutex<Option<oneshot::Sender<()>>>>;

fn done() -> (Done, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (Arc::new(Mutex::new(Some(tx))), rx)
}

fn fire(done: &Done) {
    if let Some(done) = done.lock().expect("done").take() {
        let _ = done.send(());
    }
}

fn spawn<A: Actor<Args = A>>(actor: A) -> ActorRef<A> {
    A::spawn_with_mailbox(actor, mailbox::unbounded())
}

/// `Args = Self`, infallible start.
macro_rules! plain_actor {
    ($name:ident) => {
        impl Actor for $name {
            type Args = Self;
            type Error = Infallible;

            async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
                Ok(state)
            }
        }
    };
}

// W1 ------------------------------------------------------------------------------------------

struct Ping(u64);
struct Pong(u64);
struct SetPing(ActorRef<Pinger>);

struct Pinger {
    pong: ActorRef<Ponger>,
    done: Done,
}
plain_actor!(Pinger);

impl Message<Ping> for Pinger {
    type Reply = ();

    async fn handle(&mut self, Ping(remaining): Ping, _: &mut Context<Self, ()>) {
        if remaining == 0 {
            fire(&self.done);
        } else {
            let _ = self.pong.tell(Pong(remaining - 1)).try_send();
        }
    }
}

struct Ponger {
    ping: Option<ActorRef<Pinger>>,
}
plain_actor!(Ponger);

impl Message<Pong> for Ponger {
    type Reply = ();

    async fn handle(&mut self, Pong(remaining): Pong, _: &mut Context<Self, ()>) {
        let _ = self
            .ping
            .as_ref()
            .expect("set before the start")
            .tell(Ping(remaining))
            .try_send();
    }
}

impl Message<SetPing> for Ponger {
    type Reply = ();

    async fn handle(&mut self, SetPing(ping): SetPing, _: &mut Context<Self, ()>) {
        self.ping = Some(ping);
    }
}

// W1b, W2, W4, W4-mem -------------------------------------------------------------------------

struct Inc(u64);

struct Server;
plain_actor!(Server);

impl Message<Inc> for Server {
    type Reply = u64;

    async fn handle(&mut self, Inc(x): Inc, _: &mut Context<Self, u64>) -> u64 {
        x + 1
    }
}

// W3 ------------------------------------------------------------------------------------------

struct Add(u64);

struct Counter {
    seen: u64,
    total: u64,
    done: Done,
}
plain_actor!(Counter);

impl Message<Add> for Counter {
    type Reply = ();

    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, ()>) {
        self.seen += n;
        if self.seen == self.total {
            fire(&self.done);
        }
    }
}

// W5 ------------------------------------------------------------------------------------------

struct Token(u64);
struct SetNext(ActorRef<Node>);

struct Node {
    next: Option<ActorRef<Node>>,
    done: Done,
}
plain_actor!(Node);

impl Message<Token> for Node {
    type Reply = ();

    async fn handle(&mut self, Token(hops): Token, _: &mut Context<Self, ()>) {
        if hops == 0 {
            fire(&self.done);
        } else {
            let _ = self
                .next
                .as_ref()
                .expect("the ring is closed before the start")
                .tell(Token(hops - 1))
                .try_send();
        }
    }
}

impl Message<SetNext> for Node {
    type Reply = ();

    async fn handle(&mut self, SetNext(next): SetNext, _: &mut Context<Self, ()>) {
        self.next = Some(next);
    }
}

impl System for Kameo {
    fn ping_pong(&self, round_trips: u64) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (done, done_rx) = done();
            let pong = spawn(Ponger { ping: None });
            let ping = spawn(Pinger {
                pong: pong.clone(),
                done,
            });
            pong.ask(SetPing(ping.clone())).await.expect("setup");
            let start = Instant::now();
            ping.tell(Ping(round_trips))
                .try_send()
                .expect("pinger alive");
            done_rx.await.expect("ping-pong");
            start.elapsed()
        })
    }

    fn ask(&self, total: u64, window: usize) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let server = spawn(Server);
            server.wait_for_startup().await;
            let start = Instant::now();
            let mut checksum = 0u64;
            if window == 1 {
                for x in 0..total {
                    checksum = checksum.wrapping_add(server.ask(Inc(x)).await.expect("ask"));
                }
            } else {
                let mut in_flight = VecDeque::with_capacity(window);
                let mut sent = 0u64;
                let request = |x: u64| server.ask(Inc(x)).try_enqueue().expect("server alive");
                while sent < total && in_flight.len() < window {
                    in_flight.push_back(request(sent));
                    sent += 1;
                }
                while let Some(reply) = in_flight.pop_front() {
                    checksum = checksum.wrapping_add(reply.await.expect("reply"));
                    if sent < total {
                        in_flight.push_back(request(sent));
                        sent += 1;
                    }
                }
            }
            let elapsed = start.elapsed();
            assert_eq!(checksum, total * (total + 1) / 2);
            elapsed
        })
    }

    fn fan_in(&self, producers: usize, per_producer: u64) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (done, done_rx) = done();
            let counter = spawn(Counter {
                seen: 0,
                total: producers as u64 * per_producer,
                done,
            });
            counter.wait_for_startup().await;
            let start = Instant::now();
            for _ in 0..producers {
                let counter = counter.clone();
                tokio::spawn(async move {
                    for _ in 0..per_producer {
                        let _ = counter.tell(Add(1)).try_send();
                    }
                });
            }
            done_rx.await.expect("fan-in");
            start.elapsed()
        })
    }

    fn spawn_ask_stop(&self, actors: usize) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let start = Instant::now();
            let servers: Vec<ActorRef<Server>> = (0..actors).map(|_| spawn(Server)).collect();
            let replies: Vec<_> = servers
                .iter()
                .zip(0u64..)
                .map(|(server, x)| server.ask(Inc(x)).try_enqueue().expect("server alive"))
                .collect();
            for reply in replies {
                reply.await.expect("reply");
            }
            for server in &servers {
                server.stop_gracefully().await.expect("stop");
            }
            for server in &servers {
                server.wait_for_shutdown().await;
            }
            start.elapsed()
        })
    }

    fn idle_memory(&self, actors: usize) -> f64 {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let warm = spawn(Server);
            warm.ask(Inc(0)).await.expect("warm-up");
            warm.stop_gracefully().await.expect("stop");
            warm.wait_for_shutdown().await;
            drop(warm);

            let before = settled_rss().await;
            let mut servers = Vec::with_capacity(actors);
            for _ in 0..actors {
                servers.push(spawn(Server));
            }
            let after = settled_rss().await;
            let bytes = per_actor(before, after, actors);
            std::mem::forget(servers); // keep them alive; the process exits next
            bytes
        })
    }

    fn ring(&self, nodes: usize, hops: u64) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (done, done_rx) = done();
            let refs: Vec<ActorRef<Node>> = (0..nodes)
                .map(|_| {
                    spawn(Node {
                        next: None,
                        done: done.clone(),
                    })
                })
                .collect();
            for (i, node) in refs.iter().enumerate() {
                let next = refs[(i + 1) % nodes].clone();
                node.ask(SetNext(next)).await.expect("ring setup");
            }
            let start = Instant::now();
            refs[0].tell(Token(hops)).try_send().expect("ring alive");
            done_rx.await.expect("ring");
            start.elapsed()
        })
    }
}
