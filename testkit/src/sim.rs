//! A seeded, deterministic simulation of several nodes on one thread.
//!
//! A [`Sim`] runs several *nodes* — each a procession [`Runtime`] in the deterministic mode,
//! with its own address — on the calling thread. One seed decides everything that could go
//! either way: which runnable of which node runs next, when the network delivers each message,
//! which messages a lossy network drops. Virtual time is one clock for all nodes; when nothing
//! can run it jumps to the next timer or delivery, so an hour of heartbeats takes milliseconds.
//! The nodes talk over a simulated network installed behind the same [`Transport`] seam as
//! the real TCP transport, so the processes under test are the production code, unchanged:
//! `send`, `link` and `exited` work across nodes as they do in a deployment.
//!
//! The network can delay (a latency range), drop (a loss rate), reorder, partition and heal;
//! nodes can crash and restart (see [network model](#network-model)). The same seed gives the
//! same [`Trace`] — every step, delivery, fault and move of time, and a hash of them — and
//! [`run_seeds`] runs a test body across many seeds, naming the seed (and the command that
//! replays it) when one fails.
//!
//! ```
//! use std::time::Duration;
//! use procession::{send, Context, Message, Process, Upid};
//! use procession_testkit::sim::Sim;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Message)]
//! struct Ping(u32);
//!
//! #[derive(Default)]
//! struct Pinged { last: u32 }
//! impl Process for Pinged {
//!     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
//!         ctx.install(|p: &mut Self, _: &Upid, Ping(n)| p.last = n).unwrap();
//!     }
//! }
//!
//! let mut sim = Sim::new(42);
//! let server = sim.add_node("server", |_| {});
//! let client = sim.add_node("client", |_| {});
//! let pinged = sim.runtime(server).unwrap().spawn_named("pinged", Pinged::default()).unwrap();
//! {
//!     let _entered = sim.runtime(client).unwrap().enter();
//!     send(&pinged.upid(), Ping(7)); // crosses the simulated network
//! }
//! sim.run_for(Duration::from_secs(1));
//! let last = sim.block_on(procession::dispatch(&pinged, |p: &mut Pinged| p.last));
//! assert_eq!(last.unwrap().unwrap(), 7);
//! ```
//!
//! # Network model
//!
//! Nodes talk over one connection per ordered pair, as with the real transport. A message
//! takes a latency drawn from the configured range ([`SimBuilder::latency`]); unless
//! reordering is on, messages between two nodes arrive in the order sent. Loss drops messages,
//! never link requests or exit notices (those ride a connection that a lossy link slows but
//! does not break). A partition cuts the connections between two nodes: what is in flight
//! between them is lost, and after the failure-detection delay
//! ([`SimBuilder::failure_detection`]) each side's linkers of processes on the other get
//! `exited` with `Lost`, as when a real connection breaks. Sending across a cut, or to a
//! crashed or unknown address, is a failed connect: dropped, and the sender's node learns the
//! peer is lost. A crash loses everything in flight to and from the node and tells every other
//! node, after the same delay; [`Sim::restart`] builds the node again at the same address and
//! runs its start function, so what a node remembers across a crash is exactly what that
//! function gives it.
//!
//! # Contract
//!
//! Drive the simulation only through the `Sim` ([`step`](Sim::step),
//! [`run_for`](Sim::run_for), [`block_on`](Sim::block_on), ...): `block_on`, `Clock::settle`
//! or `Future::wait_for` on one node's runtime would run that node alone and move its clock
//! away from the others. Processes must not use real sockets, threads or wall-clock time: the
//! seed decides only what runs through procession.

mod network;
mod seeds;
mod trace;

use std::fmt;
use std::future::{Future as _, IntoFuture};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use procession::{Driver, Runtime, Transport};

use self::network::{Endpoint, NetConfig, Network, PacketKind};
pub use self::seeds::{run_seeds, SEEDS_VAR, SEED_VAR};
pub use self::trace::{Event, Trace};

/// A node of a simulation: an index in the order nodes were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(usize);

impl NodeId {
    /// The node's index: 0 for the first node added.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

/// Configures a [`Sim`]: the network's latency, loss, ordering and failure detection, and the
/// limits that end a run which does not finish.
#[derive(Clone, Debug)]
pub struct SimBuilder {
    seed: u64,
    net: NetConfig,
    time_limit: Duration,
    step_limit: u64,
}

impl SimBuilder {
    /// Each message takes between `min` and `max` to arrive, drawn uniformly by the seed
    /// (default 1 ms to 5 ms).
    ///
    /// # Panics
    ///
    /// Panics if `min > max`.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        assert!(min <= max, "latency: min {min:?} is above max {max:?}");
        self.net.latency = min..=max;
        self
    }

    /// Drops each message with probability `rate` (default 0; clamped to 0..=1).
    pub fn loss(mut self, rate: f64) -> Self {
        self.net.loss = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self
    }

    /// Lets a later message between two nodes overtake an earlier one (default off: the real
    /// transport keeps the order of one connection).
    pub fn reorder(mut self, reorder: bool) -> Self {
        self.net.reorder = reorder;
        self
    }

    /// How long after a partition or a crash the nodes on the other side learn that their
    /// connection broke (default 100 ms).
    pub fn failure_detection(mut self, delay: Duration) -> Self {
        self.net.detect = delay;
        self
    }

    /// The most virtual time one [`Sim::block_on`] or [`Sim::run_until`] may take before it
    /// fails with [`SimError::TimeLimit`] (default one hour).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// The most steps one [`Sim::block_on`] or [`Sim::run_until`] may take before it fails
    /// with [`SimError::StepLimit`], which catches a livelock that never lets time move
    /// (default ten million).
    pub fn step_limit(mut self, limit: u64) -> Self {
        self.step_limit = limit;
        self
    }

    /// The simulation, with no nodes yet.
    pub fn build(self) -> Sim {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let network = Arc::new(Network::new(self.net, rng.u64(..)));
        Sim {
            seed: self.seed,
            rng,
            epoch: Instant::now(),
            now: Duration::ZERO,
            network,
            nodes: Vec::new(),
            trace: Trace::new(),
            time_limit: self.time_limit,
            step_limit: self.step_limit,
        }
    }
}

/// Why a simulation run ended without its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// Nothing can run, nothing is in flight and no timer is armed, and the outcome is still
    /// pending: it can never come.
    Stuck {
        /// The seed.
        seed: u64,
        /// Virtual time when the simulation ran dry.
        at: Duration,
    },
    /// The virtual-time limit passed first.
    TimeLimit {
        /// The seed.
        seed: u64,
        /// Virtual time when the limit was reached.
        at: Duration,
    },
    /// The step limit passed first (a livelock).
    StepLimit {
        /// The seed.
        seed: u64,
        /// Virtual time when the limit was reached.
        at: Duration,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Stuck { seed, at } => write!(
                f,
                "simulation stuck at {at:?} (seed {seed}): nothing can run and the outcome is still pending"
            ),
            SimError::TimeLimit { seed, at } => write!(
                f,
                "simulation reached its time limit at {at:?} (seed {seed}) with the outcome still pending"
            ),
            SimError::StepLimit { seed, at } => write!(
                f,
                "simulation reached its step limit at {at:?} (seed {seed}) with the outcome still pending"
            ),
        }
    }
}

impl std::error::Error for SimError {}

type Start = Box<dyn FnMut(&Runtime)>;

struct Node {
    name: String,
    address: SocketAddr,
    start: Start,
    runtime: Option<(Runtime, Driver)>,
}

/// A seeded simulation of several nodes; see the [module docs](self).
pub struct Sim {
    seed: u64,
    rng: fastrand::Rng,
    /// The instant every node's clock reads at virtual time zero.
    epoch: Instant,
    now: Duration,
    network: Arc<Network>,
    nodes: Vec<Node>,
    trace: Trace,
    time_limit: Duration,
    step_limit: u64,
}

/// What one call to [`Sim::advance`] did.
enum Progress {
    Ran,
    Idle,
    AtLimit,
}

impl Sim {
    /// A simulation with the default network, seeded with `seed`.
    pub fn new(seed: u64) -> Sim {
        Sim::builder(seed).build()
    }

    /// A builder for a simulation seeded with `seed`.
    pub fn builder(seed: u64) -> SimBuilder {
        SimBuilder {
            seed,
            net: NetConfig::default(),
            time_limit: Duration::from_secs(3600),
            step_limit: 10_000_000,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time since the simulation started.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// What happened so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Adds a node named `name` (the runtime's name) and runs `start` on its new runtime, and
    /// again on each [`restart`](Self::restart): spawn the node's processes there, from what the
    /// node keeps across a crash. Node `n` has the address `10.0.x.y:5050` with `x.y = n + 1`.
    ///
    /// # Panics
    ///
    /// Panics past 65,000 nodes.
    pub fn add_node(&mut self, name: &str, start: impl FnMut(&Runtime) + 'static) -> NodeId {
        let index = self.nodes.len();
        let host = u16::try_from(index + 1)
            .ok()
            .filter(|h| *h < 65_000)
            .expect("a simulation holds at most 65,000 nodes");
        let address = SocketAddr::from((Ipv4Addr::new(10, 0, (host >> 8) as u8, host as u8), 5050));
        let added = self.network.add_node(address);
        debug_assert_eq!(added, index);
        self.nodes.push(Node {
            name: name.to_owned(),
            address,
            start: Box::new(start),
            runtime: None,
        });
        self.boot(index);
        NodeId(index)
    }

    fn boot(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let runtime = Runtime::builder()
            .name(node.name.clone())
            .deterministic(self.rng.u64(..))
            .paused_at(self.epoch + self.now)
            .build()
            .expect("a deterministic runtime starts no thread and cannot fail to build");
        let inbound = runtime.inbound();
        inbound.set_address(node.address);
        let endpoint: Arc<dyn Transport> = Arc::new(Endpoint {
            network: self.network.clone(),
            node: index,
        });
        inbound.set_transport(endpoint);
        let driver = runtime
            .driver()
            .expect("a deterministic runtime has a driver");
        {
            let _entered = runtime.enter();
            (node.start)(&runtime);
        }
        node.runtime = Some((runtime, driver));
    }

    /// The runtime of `node`: spawn processes there, or enter it to send from the test.
    /// `None` while the node is crashed.
    ///
    /// # Panics
    ///
    /// Panics if `node` belongs to another simulation (an index past this one's nodes).
    pub fn runtime(&self, node: NodeId) -> Option<&Runtime> {
        self.nodes[node.0]
            .runtime
            .as_ref()
            .map(|(runtime, _)| runtime)
    }

    /// The address of `node`'s processes.
    ///
    /// # Panics
    ///
    /// Panics if `node` belongs to another simulation.
    pub fn address(&self, node: NodeId) -> SocketAddr {
        self.nodes[node.0].address
    }

    /// Cuts the connections between `a` and `b`, both ways; see the
    /// [network model](self#network-model).
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        self.network.partition(a.0, b.0);
        self.trace.record(Event::Partition(a, b));
    }

    /// Restores the connections between `a` and `b`.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.network.heal(a.0, b.0);
        self.trace.record(Event::Heal(a, b));
    }

    /// Restores every connection.
    pub fn heal_all(&mut self) {
        self.network.heal_all();
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.trace.record(Event::Heal(NodeId(a), NodeId(b)));
            }
        }
    }

    /// Crashes `node` ([`Runtime::crash`]: no `finalize`, everything queued lost); the other
    /// nodes learn of it after the failure-detection delay. A no-op if it is already down.
    pub fn crash(&mut self, node: NodeId) {
        let Some((runtime, _)) = self.nodes[node.0].runtime.take() else {
            return;
        };
        self.network.crash(node.0);
        runtime.crash();
        self.trace.record(Event::Crash(node));
    }

    /// Starts a crashed `node` again: a new runtime at the same address, with the virtual time
    /// of the simulation, on which the node's start function runs. A no-op if it is up.
    pub fn restart(&mut self, node: NodeId) {
        if self.nodes[node.0].runtime.is_some() {
            return;
        }
        self.network.restart(node.0);
        self.boot(node.0);
        self.trace.record(Event::Restart(node));
    }

    /// Runs one step: one event on a node, or one delivery, chosen by the seed among all that
    /// can happen now; when nothing can, moves virtual time to the next timer or delivery.
    /// Returns false if nothing is left to do at all (no runnable, no packet, no timer).
    pub fn step(&mut self) -> bool {
        !matches!(self.advance(None), Progress::Idle)
    }

    /// Runs the simulation for `duration` of virtual time: everything due by then happens, and
    /// the clock reads `now() + duration` afterwards.
    pub fn run_for(&mut self, duration: Duration) {
        let target = self.now + duration;
        while let Progress::Ran = self.advance(Some(target)) {}
        self.set_time(target);
    }

    /// Runs until `done` holds (checked before every step), at most the builder's time and step
    /// limits.
    ///
    /// # Errors
    ///
    /// [`SimError::Stuck`] if the simulation runs dry first, [`SimError::TimeLimit`] or
    /// [`SimError::StepLimit`] if a limit passes first.
    pub fn run_until(&mut self, mut done: impl FnMut(&Sim) -> bool) -> Result<(), SimError> {
        let limit = self.now + self.time_limit;
        let mut steps = 0u64;
        loop {
            if done(self) {
                return Ok(());
            }
            self.one_more(limit, &mut steps)?;
        }
    }

    /// Runs the simulation until `future` completes and returns its output (a procession
    /// `Future` gives `Result<T, Error>`), at most the builder's time and step limits.
    ///
    /// # Errors
    ///
    /// As [`run_until`](Self::run_until).
    pub fn block_on<F: IntoFuture>(&mut self, future: F) -> Result<F::Output, SimError> {
        let woken = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future.into_future());
        let limit = self.now + self.time_limit;
        let mut steps = 0u64;
        loop {
            if woken.0.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return Ok(output);
                }
            }
            self.one_more(limit, &mut steps)?;
        }
    }

    fn one_more(&mut self, limit: Duration, steps: &mut u64) -> Result<(), SimError> {
        *steps += 1;
        if *steps > self.step_limit {
            return Err(SimError::StepLimit {
                seed: self.seed,
                at: self.now,
            });
        }
        match self.advance(Some(limit)) {
            Progress::Ran => Ok(()),
            Progress::Idle => Err(SimError::Stuck {
                seed: self.seed,
                at: self.now,
            }),
            Progress::AtLimit => {
                self.set_time(limit);
                Err(SimError::TimeLimit {
                    seed: self.seed,
                    at: self.now,
                })
            }
        }
    }

    /// One step, or a move of time no further than `limit`.
    fn advance(&mut self, limit: Option<Duration>) -> Progress {
        let counts: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| n.runtime.as_ref().map_or(0, |(_, d)| d.runnable()))
            .collect();
        let runnable: usize = counts.iter().sum();
        let due = usize::from(self.network.has_due());
        if runnable + due > 0 {
            let mut pick = self.rng.usize(..runnable + due);
            for (index, count) in counts.iter().enumerate() {
                if pick < *count {
                    self.run_on(index);
                    return Progress::Ran;
                }
                pick -= count;
            }
            self.deliver();
            return Progress::Ran;
        }
        let timers = self.nodes.iter().filter_map(|n| {
            let (_, driver) = n.runtime.as_ref()?;
            let at = driver.next_timer()?;
            Some(at.saturating_duration_since(self.epoch))
        });
        let next = timers.chain(self.network.next_delivery()).min();
        match (next, limit) {
            (None, _) => Progress::Idle,
            (Some(at), Some(limit)) if at > limit => Progress::AtLimit,
            (Some(at), _) => {
                self.set_time(at.max(self.now));
                Progress::Ran
            }
        }
    }

    fn run_on(&mut self, index: usize) {
        let (_, driver) = self.nodes[index]
            .runtime
            .as_ref()
            .expect("only live nodes have runnables");
        if let Some(name) = driver.step() {
            self.trace.record(Event::Run {
                node: NodeId(index),
                name,
            });
        }
        self.record_losses();
    }

    fn deliver(&mut self) {
        let Some(packet) = self.network.pop_due() else {
            return;
        };
        let node = NodeId(packet.to_node);
        let Some((runtime, _)) = self.nodes[node.0].runtime.as_ref() else {
            return;
        };
        let inbound = runtime.inbound();
        let _entered = runtime.enter();
        let event = match packet.kind {
            PacketKind::Message {
                from,
                to,
                name,
                body,
            } => {
                inbound.deliver(from.clone(), &to, &name, body);
                Event::Message { from, to, name }
            }
            PacketKind::Link { linker, to } => {
                inbound.link(linker.clone(), &to);
                Event::Link { linker, to }
            }
            PacketKind::Exited {
                linker,
                upid,
                reason,
            } => {
                inbound.exited(&upid, &reason);
                Event::Exited { linker, upid }
            }
            PacketKind::Lost { peer } => {
                inbound.peer_lost(peer);
                Event::Lost { node, peer }
            }
        };
        self.trace.record(event);
        self.record_losses();
    }

    fn record_losses(&mut self) {
        for loss in self.network.take_losses() {
            self.trace.record(Event::Dropped {
                from: loss.from,
                to: loss.to,
                name: loss.name,
            });
        }
    }

    /// Moves virtual time to `at` (never backwards) on the network and every live node's clock,
    /// firing the timers that come due.
    fn set_time(&mut self, at: Duration) {
        if at < self.now {
            return;
        }
        let moved = at > self.now;
        self.now = at;
        self.network.set_now(at);
        if moved {
            self.trace.record(Event::Time(at));
        }
        for node in &self.nodes {
            if let Some((runtime, _)) = &node.runtime {
                runtime.clock().update(self.epoch + at);
            }
        }
        self.record_losses();
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}
