//! The master/agents heartbeat scenario under a swarm fault profile, shared by the simulation
//! tests and the simulation benchmark (benches/src/sim.rs includes this file): a fault phase,
//! a heal phase, then safety and liveness.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use procession::{delay, link, send, Context, ExitReason, Message, Pid, Process, Upid};
use procession_testkit::sim::{Event, NodeId, Sim, SimError};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Register;

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Heartbeat;

/// The master's answer to a heartbeat from an agent it does not know (it restarted, or it
/// lost the agent's link): register again.
#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Reregister;

#[derive(Default)]
pub struct Master {
    agents: BTreeSet<Upid>,
    beats: u64,
    lost: Vec<(Upid, ExitReason)>,
    /// Safety: an `exited` for an agent the master never registered.
    phantom_losses: u32,
}

/// What the master knows, asked through the simulation.
#[derive(Clone, Default)]
pub struct View {
    /// The agents registered now.
    pub agents: BTreeSet<Upid>,
    /// Heartbeats received in all.
    pub beats: u64,
    /// Every `exited` the master got, in order.
    pub lost: Vec<(Upid, ExitReason)>,
    /// Safety violations: an `exited` for an agent the master never registered.
    pub phantom_losses: u32,
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|m: &mut Self, from: &Upid, _: Register| {
            if m.agents.insert(from.clone()) {
                link(from);
            }
        })
        .unwrap();
        ctx.install(|m: &mut Self, from: &Upid, _: Heartbeat| {
            m.beats += 1;
            if !m.agents.contains(from) {
                send(from, Reregister);
            }
        })
        .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.lost.push((upid.clone(), reason.clone()));
        if !self.agents.remove(upid) {
            self.phantom_losses += 1;
        }
    }
}

pub struct Agent {
    master: Upid,
    /// The planted bug: never register again after the first time.
    forgetful: bool,
    registered_once: bool,
}

impl Agent {
    fn register(&mut self) {
        if self.forgetful && self.registered_once {
            return;
        }
        self.registered_once = true;
        send(&self.master, Register);
        link(&self.master);
    }

    fn beat(&mut self, me: Pid<Agent>) {
        send(&self.master, Heartbeat);
        let next = me.clone();
        delay(Duration::from_secs(1), &me, move |a: &mut Agent| {
            a.beat(next)
        });
    }
}

impl Process for Agent {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|a: &mut Self, _: &Upid, _: Reregister| a.register())
            .unwrap();
        self.register();
        self.beat(ctx.pid());
    }

    fn exited(&mut self, ctx: &mut Context<'_, Self>, _: &Upid, _: &ExitReason) {
        // The master is gone or unreachable: register again after a backoff.
        delay(Duration::from_millis(500), &ctx.pid(), |a: &mut Agent| {
            a.register()
        });
    }
}

/// A master and three agents on their own nodes.
pub struct Cluster {
    pub sim: Sim,
    /// The current master (a restart spawns a new one).
    pub master: Arc<Mutex<Option<Pid<Master>>>>,
    /// The master's node, then the agents'.
    pub nodes: Vec<NodeId>,
    pub agents: BTreeSet<Upid>,
}

/// Adds a master and three agents (forgetful ones never register again) to `sim`.
pub fn cluster(mut sim: Sim, forgetful: bool) -> Cluster {
    let master = Arc::new(Mutex::new(None));
    let slot = master.clone();
    let master_node = sim.add_node("master", move |runtime, _| {
        *slot.lock() = Some(runtime.spawn_named("master", Master::default()).unwrap());
    });
    let master_upid = Upid::new("master", sim.address(master_node));
    let mut nodes = vec![master_node];
    let mut agents = BTreeSet::new();
    for n in 0..3 {
        let to = master_upid.clone();
        let node = sim.add_node(&format!("agent{n}"), move |runtime, _| {
            let agent = Agent {
                master: to.clone(),
                forgetful,
                registered_once: false,
            };
            runtime.spawn_named("agent", agent).unwrap();
        });
        agents.insert(Upid::new("agent", sim.address(node)));
        nodes.push(node);
    }
    Cluster {
        sim,
        master,
        nodes,
        agents,
    }
}

/// What the current master knows.
pub fn master_view(sim: &mut Sim, master: &Arc<Mutex<Option<Pid<Master>>>>) -> View {
    let pid = master.lock().clone().expect("the master node started");
    let read = procession::dispatch(&pid, |m: &mut Master| View {
        agents: m.agents.clone(),
        beats: m.beats,
        lost: m.lost.clone(),
        phantom_losses: m.phantom_losses,
    });
    // A crashed master's dispatch is abandoned: it knows nobody.
    sim.block_on(read).unwrap().unwrap_or_default()
}

/// One run: ten seconds of faults, then heal, then every agent must be registered again
/// within thirty seconds, with no safety violation on the way.
pub fn run(seed: u64, forgetful: bool) -> Result<(), SimError> {
    run_traced(seed, forgetful).outcome
}

/// What one [`run_traced`] saw.
pub struct Run {
    /// Whether the cluster converged.
    pub outcome: Result<(), SimError>,
    /// Which kinds of fault struck: partition (either kind), crash, pause, loss.
    pub faults: [bool; 4],
    /// How many events the simulation ran.
    pub events: usize,
}

/// [`run`], with what it saw.
pub fn run_traced(seed: u64, forgetful: bool) -> Run {
    let mut c = cluster(Sim::builder(seed).swarm().build(), forgetful);
    c.sim.run_for(Duration::from_secs(2));
    c.sim.run_faults(Duration::from_secs(10), &c.nodes);
    c.sim.heal_everything();
    let (master, agents) = (c.master.clone(), c.agents.clone());
    let outcome = c.sim.converge(Duration::from_secs(30), |sim| {
        let view = master_view(sim, &master);
        assert_eq!(
            view.phantom_losses, 0,
            "the master lost an agent it never had"
        );
        view.agents == agents
    });
    let events = c.sim.trace().events();
    let struck = |kind: fn(&Event) -> bool| events.iter().any(kind);
    let faults = [
        struck(|e| matches!(e, Event::Partition(..) | Event::Cut(..))),
        struck(|e| matches!(e, Event::Crash(_))),
        struck(|e| matches!(e, Event::Pause(_))),
        struck(|e| matches!(e, Event::Dropped { .. })),
    ];
    Run {
        outcome,
        faults,
        events: events.len(),
    }
}
