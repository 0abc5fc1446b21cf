//! ractor 0.16 on a 2-worker tokio runtime. Tells are `cast`; a single ask is `call`; a window
//! of asks casts requests carrying their own reply ports. Drivers run as tasks on the workers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;

use crate::{drive, per_actor, settled_rss, tokio_runtime, System};

/// ractor on a 2-worker tokio runtime.
pub struct Ractor;

const WORKERS: usize = 2;

type Done = Arc<Mutex<Option<oneshot::Sender<()>>>>;

fn fire(done: &Done) {
    if let Some(done) = done.lock().expect("done").take() {
        let _ = done.send(());
    }
}

// W1 ------------------------------------------------------------------------------------------

struct Pinger;

struct PingerState {
    pong: ActorRef<PongMsg>,
    done: Done,
}

impl Actor for Pinger {
    type Msg = u64;
    type State = PingerState;
    type Arguments = PingerState;

    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        state: PingerState,
    ) -> Result<PingerState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        _: ActorRef<u64>,
        remaining: u64,
        state: &mut PingerState,
    ) -> Result<(), ActorProcessingErr> {
        if remaining == 0 {
            fire(&state.done);
        } else {
            let _ = state.pong.cast(PongMsg::Pong(remaining - 1));
        }
        Ok(())
    }
}

enum PongMsg {
    SetPing(ActorRef<u64>, RpcReplyPort<()>),
    Pong(u64),
}

struct Ponger;

impl Actor for Ponger {
    type Msg = PongMsg;
    type State = Option<ActorRef<u64>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<PongMsg>,
        _: (),
    ) -> Result<Option<ActorRef<u64>>, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<PongMsg>,
        message: PongMsg,
        ping: &mut Option<ActorRef<u64>>,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PongMsg::SetPing(actor, reply) => {
                *ping = Some(actor);
                let _ = reply.send(());
            }
            PongMsg::Pong(remaining) => {
                let _ = ping.as_ref().expect("set before the start").cast(remaining);
            }
        }
        Ok(())
    }
}

// W1b, W2, W4, W4-mem -------------------------------------------------------------------------

/// `Inc(x, reply)` answers `x + 1`.
struct Inc(u64, RpcReplyPort<u64>);

struct Server;

impl Actor for Server {
    type Msg = Inc;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Inc>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Inc>,
        Inc(x, reply): Inc,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(x + 1);
        Ok(())
    }
}

async fn spawn_server() -> (ActorRef<Inc>, ::ractor::concurrency::JoinHandle<()>) {
    Actor::spawn(None, Server, ()).await.expect("spawn")
}

/// Sends `Inc(x)` with a reply port and returns the port's receiver: an ask in flight.
fn ask(server: &ActorRef<Inc>, x: u64) -> oneshot::Receiver<u64> {
    let (tx, rx) = ::ractor::concurrency::oneshot();
    server.cast(Inc(x, tx.into())).expect("server alive");
    rx
}

// W3 ------------------------------------------------------------------------------------------

struct Counter;

struct CounterState {
    seen: u64,
    total: u64,
    done: Done,
}

impl Actor for Counter {
    type Msg = u64;
    type State = CounterState;
    type Arguments = CounterState;

    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        state: CounterState,
    ) -> Result<CounterState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        _: ActorRef<u64>,
        n: u64,
        state: &mut CounterState,
    ) -> Result<(), ActorProcessingErr> {
        state.seen += n;
        if state.seen == state.total {
            fire(&state.done);
        }
        Ok(())
    }
}

// W5 ------------------------------------------------------------------------------------------

enum NodeMsg {
    SetNext(ActorRef<NodeMsg>, RpcReplyPort<()>),
    Token(u64),
}

struct Node;

struct NodeState {
    next: Option<ActorRef<NodeMsg>>,
    done: Done,
}

impl Actor for Node {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = Done;

    async fn pre_start(
        &self,
        _: ActorRef<NodeMsg>,
        done: Done,
    ) -> Result<NodeState, ActorProcessingErr> {
        Ok(NodeState { next: None, done })
    }

    async fn handle(
        &self,
        _: ActorRef<NodeMsg>,
        message: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeMsg::SetNext(next, reply) => {
                state.next = Some(next);
                let _ = reply.send(());
            }
            NodeMsg::Token(0) => fire(&state.done),
            NodeMsg::Token(hops) => {
                let _ = state
                    .next
                    .as_ref()
                    .expect("the ring is closed before the start")
                    .cast(NodeMsg::Token(hops - 1));
            }
        }
        Ok(())
    }
}

impl System for Ractor {
    fn ping_pong(&self, round_trips: u64) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (done_tx, done_rx) = oneshot::channel();
            let (pong, _) = Actor::spawn(None, Ponger, ()).await.expect("spawn");
            let state = PingerState {
                pong: pong.clone(),
                done: Arc::new(Mutex::new(Some(done_tx))),
            };
            let (ping, _) = Actor::spawn(None, Pinger, state).await.expect("spawn");
            let ping_ref = ping.clone();
            pong.call(|reply| PongMsg::SetPing(ping_ref, reply), None)
                .await
                .expect("setup");
            let start = Instant::now();
            ping.cast(round_trips).expect("pinger alive");
            done_rx.await.expect("ping-pong");
            start.elapsed()
        })
    }

    fn ask(&self, total: u64, window: usize) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (server, _) = spawn_server().await;
            let start = Instant::now();
            let mut checksum = 0u64;
            if window == 1 {
                for x in 0..total {
                    let reply = server
                        .call(|reply| Inc(x, reply), None)
                        .await
                        .expect("call");
                    match reply {
                        ::ractor::rpc::CallResult::Success(v) => {
                            checksum = checksum.wrapping_add(v)
                        }
                        _ => panic!("the call failed"),
                    }
                }
            } else {
                let mut in_flight = VecDeque::with_capacity(window);
                let mut sent = 0u64;
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
            }
            let elapsed = start.elapsed();
            assert_eq!(checksum, total * (total + 1) / 2);
            elapsed
        })
    }

    fn fan_in(&self, producers: usize, per_producer: u64) -> Duration {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (done_tx, done_rx) = oneshot::channel();
            let state = CounterState {
                seen: 0,
                total: producers as u64 * per_producer,
                done: Arc::new(Mutex::new(Some(done_tx))),
            };
            let (counter, _) = Actor::spawn(None, Counter, state).await.expect("spawn");
            let start = Instant::now();
            for _ in 0..producers {
                let counter = counter.clone();
                tokio::spawn(async move {
                    for _ in 0..per_producer {
                        let _ = counter.cast(1);
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
            let mut servers = Vec::with_capacity(actors);
            for _ in 0..actors {
                servers.push(spawn_server().await);
            }
            let replies: Vec<_> = servers
                .iter()
                .zip(0u64..)
                .map(|((server, _), x)| ask(server, x))
                .collect();
            for reply in replies {
                reply.await.expect("reply");
            }
            for (server, _) in &servers {
                server.stop(None);
            }
            for (_, handle) in servers {
                handle.await.expect("exit");
            }
            start.elapsed()
        })
    }

    fn idle_memory(&self, actors: usize) -> f64 {
        let runtime = tokio_runtime(WORKERS);
        drive(&runtime, async move {
            let (warm, handle) = spawn_server().await;
            ask(&warm, 0).await.expect("warm-up");
            warm.stop(None);
            handle.await.expect("warm-up exit");

            let before = settled_rss().await;
            let mut servers = Vec::with_capacity(actors);
            for _ in 0..actors {
                servers.push(spawn_server().await.0);
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
            let (done_tx, done_rx) = oneshot::channel();
            let done: Done = Arc::new(Mutex::new(Some(done_tx)));
            let mut refs = Vec::with_capacity(nodes);
            for _ in 0..nodes {
                refs.push(
                    Actor::spawn(None, Node, done.clone())
                        .await
                        .expect("spawn")
                        .0,
                );
            }
            for (i, node) in refs.iter().enumerate() {
                let next = refs[(i + 1) % nodes].clone();
                node.call(|reply| NodeMsg::SetNext(next, reply), None)
                    .await
                    .expect("ring setup");
            }
            let start = Instant::now();
            refs[0].cast(NodeMsg::Token(hops)).expect("ring alive");
            done_rx.await.expect("ring");
            start.elapsed()
        })
    }
}
