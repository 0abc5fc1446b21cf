//! actix 0.13: every actor and the driver on one `System` (one thread; actix has no pool).
//! Tells are `do_send` (never refused); asks are `send`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ::actix::prelude::*;
use tokio::sync::oneshot;

use crate::{per_actor, settled_rss, System as Bench};

/// actix on its `System`.
pub struct Actix;

fn run<F: std::future::Future>(driver: F) -> F::Output {
    ::actix::System::new().block_on(driver)
}

// W1 ------------------------------------------------------------------------------------------

struct Ping(u64);
impl Message for Ping {
    type Result = ();
}

struct Pong(u64);
impl Message for Pong {
    type Result = ();
}

struct SetPing(Addr<Pinger>);
impl Message for SetPing {
    type Result = ();
}

struct Pinger {
    pong: Addr<Ponger>,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Pinger {
    type Context = Context<Self>;
}

impl Handler<Ping> for Pinger {
    type Result = ();
    fn handle(&mut self, Ping(remaining): Ping, _: &mut Context<Self>) {
        if remaining == 0 {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        } else {
            self.pong.do_send(Pong(remaining - 1));
        }
    }
}

struct Ponger {
    ping: Option<Addr<Pinger>>,
}

impl Actor for Ponger {
    type Context = Context<Self>;
}

impl Handler<Pong> for Ponger {
    type Result = ();
    fn handle(&mut self, Pong(remaining): Pong, _: &mut Context<Self>) {
        self.ping
            .as_ref()
            .expect("set before the start")
            .do_send(Ping(remaining));
    }
}

impl Handler<SetPing> for Ponger {
    type Result = ();
    fn handle(&mut self, SetPing(ping): SetPing, _: &mut Context<Self>) {
        self.ping = Some(ping);
    }
}

// W1b, W2, W4, W4-mem -------------------------------------------------------------------------

struct Inc(u64);
impl Message for Inc {
    type Result = u64;
}

struct Stop;
impl Message for Stop {
    type Result = ();
}

/// Answers `x -> x + 1`; tells whoever waits for it when it has stopped.
struct Server {
    stopped: Option<oneshot::Sender<()>>,
}

impl Actor for Server {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.send(());
        }
    }
}

impl Handler<Inc> for Server {
    type Result = u64;
    fn handle(&mut self, Inc(x): Inc, _: &mut Context<Self>) -> u64 {
        x + 1
    }
}

impl Handler<Stop> for Server {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct Idle;

impl Actor for Idle {
    type Context = Context<Self>;
}

struct Poke;
impl Message for Poke {
    type Result = ();
}

impl Handler<Poke> for Idle {
    type Result = ();
    fn handle(&mut self, _: Poke, _: &mut Context<Self>) {}
}

// W3 ------------------------------------------------------------------------------------------

struct Add(u64);
impl Message for Add {
    type Result = ();
}

struct Counter {
    seen: u64,
    total: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Add> for Counter {
    type Result = ();
    fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) {
        self.seen += n;
        if self.seen == self.total {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

// W5 ------------------------------------------------------------------------------------------

struct Token(u64);
impl Message for Token {
    type Result = ();
}

struct SetNext(Addr<Node>);
impl Message for SetNext {
    type Result = ();
}

struct Node {
    next: Option<Addr<Node>>,
    done: Rc<RefCell<Option<oneshot::Sender<()>>>>,
}

impl Actor for Node {
    type Context = Context<Self>;
}

impl Handler<Token> for Node {
    type Result = ();
    fn handle(&mut self, Token(hops): Token, _: &mut Context<Self>) {
        if hops == 0 {
            if let Some(done) = self.done.borrow_mut().take() {
                let _ = done.send(());
            }
        } else {
            self.next
                .as_ref()
                .expect("the ring is closed before the start")
                .do_send(Token(hops - 1));
        }
    }
}

impl Handler<SetNext> for Node {
    type Result = ();
    fn handle(&mut self, SetNext(next): SetNext, _: &mut Context<Self>) {
        self.next = Some(next);
    }
}

impl Bench for Actix {
    fn ping_pong(&self, round_trips: u64) -> Duration {
        run(async move {
            let (done_tx, done_rx) = oneshot::channel();
            let pong = Ponger { ping: None }.start();
            let ping = Pinger {
                pong: pong.clone(),
                done: Some(done_tx),
            }
            .start();
            pong.send(SetPing(ping.clone())).await.expect("setup");
            let start = Instant::now();
            ping.do_send(Ping(round_trips));
            done_rx.await.expect("ping-pong");
            start.elapsed()
        })
    }

    fn ask(&self, total: u64, window: usize) -> Duration {
        run(async move {
            // Room for the whole window in the mailbox (the default is 16), so `send` never
            // has to hold a request back.
            let server = Server::create(|ctx| {
                ctx.set_mailbox_capacity(window.max(16));
                Server { stopped: None }
            });
            let start = Instant::now();
            let mut in_flight = VecDeque::with_capacity(window);
            let mut sent = 0u64;
            let mut checksum = 0u64;
            while sent < total && in_flight.len() < window {
                in_flight.push_back(server.send(Inc(sent)));
                sent += 1;
            }
            while let Some(reply) = in_flight.pop_front() {
                checksum = checksum.wrapping_add(reply.await.expect("reply"));
                if sent < total {
                    in_flight.push_back(server.send(Inc(sent)));
                    sent += 1;
                }
            }
            let elapsed = start.elapsed();
            assert_eq!(checksum, total * (total + 1) / 2);
            elapsed
        })
    }

    /// The producers are plain OS threads (the System is one thread) using `do_send`.
    fn fan_in(&self, producers: usize, per_producer: u64) -> Duration {
        run(async move {
            let (done_tx, done_rx) = oneshot::channel();
            let counter = Counter {
                seen: 0,
                total: producers as u64 * per_producer,
                done: Some(done_tx),
            }
            .start();
            let start = Instant::now();
            let threads: Vec<_> = (0..producers)
                .map(|_| {
                    let counter = counter.clone();
                    std::thread::spawn(move || {
                        for _ in 0..per_producer {
                            counter.do_send(Add(1));
                        }
                    })
                })
                .collect();
            done_rx.await.expect("fan-in");
            let elapsed = start.elapsed();
            for thread in threads {
                thread.join().expect("producer");
            }
            elapsed
        })
    }

    fn spawn_ask_stop(&self, actors: usize) -> Duration {
        run(async move {
            let start = Instant::now();
            let mut servers = Vec::with_capacity(actors);
            let mut exits = Vec::with_capacity(actors);
            for _ in 0..actors {
                let (tx, rx) = oneshot::channel();
                servers.push(Server { stopped: Some(tx) }.start());
                exits.push(rx);
            }
            let replies: Vec<_> = servers
                .iter()
                .zip(0u64..)
                .map(|(server, x)| server.send(Inc(x)))
                .collect();
            for reply in replies {
                reply.await.expect("reply");
            }
            for server in &servers {
                server.do_send(Stop);
            }
            for exit in exits {
                exit.await.expect("exit");
            }
            start.elapsed()
        })
    }

    fn idle_memory(&self, actors: usize) -> f64 {
        run(async move {
            let warm = Idle.start();
            warm.send(Poke).await.expect("warm-up");
            drop(warm);

            let before = settled_rss().await;
            let mut idle = Vec::with_capacity(actors);
            for _ in 0..actors {
                idle.push(Idle.start());
            }
            let after = settled_rss().await;
            let bytes = per_actor(before, after, actors);
            std::mem::forget(idle); // keep them alive; the process exits next
            bytes
        })
    }

    fn ring(&self, nodes: usize, hops: u64) -> Duration {
        run(async move {
            let (done_tx, done_rx) = oneshot::channel();
            let done = Rc::new(RefCell::new(Some(done_tx)));
            let addrs: Vec<Addr<Node>> = (0..nodes)
                .map(|_| {
                    Node {
                        next: None,
                        done: done.clone(),
                    }
                    .start()
                })
                .collect();
            for (i, addr) in addrs.iter().enumerate() {
                let next = addrs[(i + 1) % nodes].clone();
                addr.send(SetNext(next)).await.expect("ring setup");
            }
            let start = Instant::now();
            addrs[0].do_send(Token(hops));
            done_rx.await.expect("ring");
            start.elapsed()
        })
    }
}
