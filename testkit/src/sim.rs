//! A seeded, deterministic simulation of several nodes on one thread.
//!
//! A [`Sim`] runs several *nodes* — each a procession [`Runtime`] in the deterministic mode,
//! with its own address — on the calling thread. One seed decides everything that could go
//! either way: which runnable of which node runs next, when the network delivers each message,
//! which messages a faulty network loses or duplicates, and which faults a fault phase injects.
//! Virtual time is one clock for all nodes (each node may read it with its own offset and
//! drift); when nothing can run it jumps to the next timer or delivery, so an hour of
//! heartbeats takes milliseconds. The nodes talk over a simulated network installed behind the
//! same [`Transport`] seam as the real TCP transport, so the processes under test are the
//! production code, unchanged: `send`, `link` and `exited` work across nodes as in a deployment.
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
//! let server = sim.add_node("server", |_, _| {});
//! let client = sim.add_node("client", |_, _| {});
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
//! # Faults
//!
//! - The network ([`SimBuilder`]): latency drawn from a [`Latency`] distribution, loss,
//!   duplication (off by default: the real transport delivers at most once), reordering.
//! - By hand, at any point: [`partition`](Sim::partition) (also
//!   [one-way](Sim::partition_one_way)) and [`heal`](Sim::heal), [`crash`](Sim::crash) and
//!   [`restart`](Sim::restart), [`pause`](Sim::pause) and [`resume`](Sim::resume), and
//!   [`set_clock`](Sim::set_clock) for a node's clock offset and drift.
//! - At random: a [`Profile`] says which faults are on and how often; [`Sim::run_faults`] runs
//!   a fault phase that injects them, [`Sim::heal_everything`] ends it, and
//!   [`Sim::converge`] checks that the system recovers (safety, then liveness).
//!   [`SimBuilder::swarm`] draws the profile from the seed, so every seed tries its own mix.
//!
//! The same seed gives the same [`Trace`] — every step, delivery, fault and move of time, and a
//! hash of them; [`check_determinism`] runs a seed twice and names the first event where the
//! runs differ. [`run_seeds`] runs a test body across many seeds, and names the seed, its
//! profile and the command that replays it when one fails; with `PROCESSION_SEED` set, every
//! event of the run is logged through `tracing` (target `procession::sim`).
//!
//! # Network model
//!
//! Nodes talk over one connection per ordered pair, as with the real transport. A message
//! takes a latency drawn from the configured distribution; unless reordering is on, messages
//! between two nodes arrive in the order sent. Loss and duplication touch messages only, never
//! link requests or exit notices (those ride a connection that a bad link slows but does not
//! break). A partition cuts the connections between two nodes: what is in flight between them
//! is lost, and after the failure-detection delay ([`SimBuilder::failure_detection`]) each
//! side's linkers of processes on the other get `exited` with `Lost`, as when a real
//! connection breaks; a one-way cut does this for its sending side only. Sending across a cut,
//! or to a crashed or unknown address, is a failed connect: dropped, and the sender's node
//! learns the peer is lost. A crash loses everything in flight to and from the node and tells
//! every other node, after the same delay. Until a node has that notice, its broken connection
//! is the one it sends on: what it sends to the peer is lost, even after a heal or the peer's
//! restart, and a link it makes meanwhile is reported `Lost` with the others (the peer never
//! holds it); only what it sends once the notice is delivered goes over a new connection.
//! A paused node runs nothing and fires no timer; what arrives for it waits, in order, and its
//! clock goes on, so on [`resume`](Sim::resume) its overdue timers fire at once.
//!
//! # Child processes
//!
//! Each node's runtime has a launcher the simulation supplies: there
//! [`subprocess`](procession::subprocess::subprocess) starts no OS process but runs the program
//! registered under the command's name with [`Sim::program`], an async body on the node's
//! runtime and virtual time, scheduled by the seed (an unregistered name fails like a missing
//! binary). Code that launches children runs unchanged: pipes, exit codes, `kill` and a
//! discarded status behave as with the OS. A crash drops the node's programs with the rest of
//! it; their statuses end abandoned.
//!
//! # What survives a crash
//!
//! [`Sim::restart`] builds the node again at the same address, on the same virtual clock,
//! and runs its start function with the node's [`Disk`]: what a node remembers across a crash
//! is exactly what its processes wrote there. Everything else is lost.
//!
//! # Contract
//!
//! Drive the simulation only through the `Sim` ([`step`](Sim::step),
//! [`run_for`](Sim::run_for), [`block_on`](Sim::block_on), ...): `block_on`, `Clock::settle`
//! or `Future::wait_for` on one node's runtime would run that node alone and move its clock
//! away from the others. Processes must not use real sockets, threads or wall-clock time: the
//! seed decides only what runs through procession.

mod check;
mod clock;
mod config;
mod disk;
mod faults;
mod network;
mod profile;
#[cfg(unix)]
mod programs;
mod run;
mod seeds;
mod stuck;
mod trace;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procession::future::Outcomes;
use procession::{Driver, Runtime, Transport};

pub use self::check::{check_determinism, Divergence};
use self::clock::NodeClock;
pub use self::config::{Latency, SimBuilder, SimError};
pub use self::disk::Disk;
use self::network::{Endpoint, Network, PacketKind};
pub use self::profile::Profile;
#[cfg(unix)]
pub use self::programs::Run;
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

type Start = Box<dyn FnMut(&Runtime, &Disk)>;

struct Node {
    name: String,
    address: SocketAddr,
    start: Start,
    disk: Disk,
    clock: NodeClock,
    paused: bool,
    /// How many times it was paused and crashed: the fault phase undoes a pause or a crash
    /// only if it is still the one it injected.
    pauses: u64,
    crashes: u64,
    runtime: Option<(Runtime, Driver)>,
}

/// A seeded simulation of several nodes; see the [module docs](self).
pub struct Sim {
    seed: u64,
    rng: fastrand::Rng,
    /// The instant every node's clock reads at virtual time zero (before its offset).
    epoch: Instant,
    now: Duration,
    network: Arc<Network>,
    nodes: Vec<Node>,
    trace: Trace,
    /// Set when replaying one seed: every event is logged.
    log: bool,
    profile: Profile,
    /// Undoing of the faults a fault phase injected: uncuts, restarts, resumes, by due time.
    agenda: Vec<(Duration, faults::Undo)>,
    time_limit: Duration,
    step_limit: u64,
    /// Per-node runnable counts, reused by every step.
    counts: Vec<usize>,
    /// The thread's future outcomes when the simulation was built.
    outcomes_at_start: Outcomes,
    /// The programs the nodes' children run ([`Sim::program`]).
    #[cfg(unix)]
    programs: programs::Programs,
}

/// What one call to [`Sim::advance`] did.
enum Progress {
    Ran,
    Idle,
    AtLimit,
}

impl Sim {
    /// A simulation with the default (fault-free) network, seeded with `seed`.
    pub fn new(seed: u64) -> Sim {
        Sim::builder(seed).build()
    }

    /// A builder for a simulation seeded with `seed`.
    pub fn builder(seed: u64) -> SimBuilder {
        SimBuilder::new(seed)
    }

    pub(crate) fn assemble(
        config: SimBuilder,
        rng: fastrand::Rng,
        network: Network,
        epoch: Instant,
        trace: Trace,
    ) -> Sim {
        Sim {
            seed: config.seed,
            rng,
            epoch,
            now: Duration::ZERO,
            network: Arc::new(network),
            nodes: Vec::new(),
            trace,
            log: std::env::var_os(SEED_VAR).is_some(),
            profile: config.profile,
            agenda: Vec::new(),
            time_limit: config.time_limit,
            step_limit: config.step_limit,
            counts: Vec::new(),
            outcomes_at_start: Outcomes::on_this_thread(),
            #[cfg(unix)]
            programs: programs::Programs::default(),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The fault profile: the network's settings and the faults of [`run_faults`](Self::run_faults).
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Virtual time since the simulation started.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// What happened so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// How the futures that completed since the simulation was built ended: ready, failed,
    /// discarded, abandoned. Every node runs on this thread, so the count is exact (futures the
    /// test completed on this thread between steps count too). A test where delivery was
    /// promised can assert that none was abandoned.
    pub fn outcomes(&self) -> Outcomes {
        Outcomes::on_this_thread().since(self.outcomes_at_start)
    }

    /// Adds a node named `name` (the runtime's name) and runs `start` on its new runtime with
    /// the node's [`Disk`], and again on each [`restart`](Self::restart): spawn the node's
    /// processes there, from what the disk kept. Node `n` has the address `10.0.x.y:5050` with
    /// `x.y = n + 1`.
    ///
    /// # Panics
    ///
    /// Panics past 65,000 nodes.
    pub fn add_node(&mut self, name: &str, start: impl FnMut(&Runtime, &Disk) + 'static) -> NodeId {
        let index = self.nodes.len();
        let host = u16::try_from(index + 1)
            .ok()
            .filter(|h| *h <= 65_000)
            .expect("a simulation holds at most 65,000 nodes");
        let [high, low] = host.to_be_bytes();
        let address = SocketAddr::from((Ipv4Addr::new(10, 0, high, low), 5050));
        let added = self.network.add_node(address);
        debug_assert_eq!(added, index);
        self.nodes.push(Node {
            name: name.to_owned(),
            address,
            start: Box::new(start),
            disk: Disk::default(),
            clock: NodeClock::default(),
            paused: false,
            pauses: 0,
            crashes: 0,
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
            .paused_at(node.clock.local(self.epoch, self.now))
            .build()
            .expect("a deterministic runtime starts no thread and cannot fail to build");
        let inbound = runtime.inbound();
        inbound.set_address(node.address);
        let endpoint: Arc<dyn Transport> = Arc::new(Endpoint {
            network: self.network.clone(),
            node: index,
            inbound: inbound.clone(),
        });
        inbound.set_transport(endpoint);
        // A real child process would run outside the seed's control and virtual time.
        #[cfg(unix)]
        runtime.set_launcher(Some(self.programs.launcher()));
        let driver = runtime
            .driver()
            .expect("a deterministic runtime has a driver");
        {
            let _entered = runtime.enter();
            (node.start)(&runtime, &node.disk);
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

    /// What `node` keeps across crashes.
    ///
    /// # Panics
    ///
    /// Panics if `node` belongs to another simulation.
    pub fn disk(&self, node: NodeId) -> &Disk {
        &self.nodes[node.0].disk
    }

    /// The nodes, in the order they were added.
    pub fn nodes(&self) -> Vec<NodeId> {
        (0..self.nodes.len()).map(NodeId).collect()
    }

    /// Runs one step: one event on a node, or one delivery, chosen by the seed among all that
    /// can happen now; when nothing can, moves virtual time to the next timer or delivery.
    /// Returns false if nothing is left to do at all (no runnable, no packet, no timer).
    pub fn step(&mut self) -> bool {
        !matches!(self.advance(None), Progress::Idle)
    }

    /// One step, or a move of time no further than `limit`.
    fn advance(&mut self, limit: Option<Duration>) -> Progress {
        self.counts.clear();
        self.counts
            .extend(self.nodes.iter().map(|n| match &n.runtime {
                Some((_, driver)) if !n.paused => driver.runnable(),
                _ => 0,
            }));
        let runnable: usize = self.counts.iter().sum();
        let due = usize::from(self.network.has_due());
        if runnable + due > 0 {
            let mut pick = self.rng.usize(..runnable + due);
            for index in 0..self.counts.len() {
                let count = self.counts[index];
                if pick < count {
                    self.run_on(index);
                    return Progress::Ran;
                }
                pick -= count;
            }
            self.deliver();
            return Progress::Ran;
        }
        let epoch = self.epoch;
        let timers = self.nodes.iter().filter(|n| !n.paused).filter_map(|n| {
            let (_, driver) = n.runtime.as_ref()?;
            Some(n.clock.global(epoch, driver.next_timer()?))
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
            self.record(Event::Run {
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
        drop(_entered);
        self.record(event);
        self.record_losses();
    }

    fn record_losses(&mut self) {
        for loss in self.network.take_losses() {
            self.record(Event::Dropped {
                from: loss.from,
                to: loss.to,
                name: loss.name,
            });
        }
    }

    fn record(&mut self, event: Event) {
        if self.log {
            tracing::info!(
                target: "procession::sim",
                seed = self.seed,
                index = self.trace.len(),
                at = ?self.now,
                "{event}"
            );
        }
        self.trace.record(event);
    }

    /// Moves virtual time to `at` (never backwards) on the network and every running node's
    /// clock, firing the timers that come due.
    fn set_time(&mut self, at: Duration) {
        if at < self.now {
            return;
        }
        if at > self.now {
            self.now = at;
            self.record(Event::Time(at));
        }
        self.network.set_now(at);
        for node in self.nodes.iter().filter(|n| !n.paused) {
            if let Some((runtime, _)) = &node.runtime {
                runtime.clock().update(node.clock.local(self.epoch, at));
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
