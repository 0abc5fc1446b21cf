//! The example: a master and three agents with heartbeats, where a partition makes the
//! master see `exited` for the agent cut off, across many seeds.

use std::collections::BTreeSet;
use std::time::Duration;

use procession::{delay, link, send, Context, ExitReason, Message, Pid, Process, Upid};
use procession_testkit::sim::{run_seeds, NodeId, Sim};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Register;

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Heartbeat;

#[derive(Default)]
struct Master {
    agents: BTreeSet<Upid>,
    beats: u64,
    lost: Vec<(Upid, ExitReason)>,
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|m: &mut Self, from: &Upid, _: Register| {
            if m.agents.insert(from.clone()) {
                link(from);
            }
        })
        .unwrap();
        ctx.install(|m: &mut Self, _: &Upid, _: Heartbeat| m.beats += 1)
            .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.agents.remove(upid);
        self.lost.push((upid.clone(), reason.clone()));
    }
}

struct Agent {
    master: Upid,
}

impl Agent {
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
        send(&self.master, Register);
        self.beat(ctx.pid());
    }
}

struct Cluster {
    sim: Sim,
    master_node: NodeId,
    master: Pid<Master>,
    agents: Vec<NodeId>,
}

fn cluster(seed: u64) -> Cluster {
    let mut sim = Sim::new(seed);
    let master_node = sim.add_node("master", |_, _| {});
    let master = sim
        .runtime(master_node)
        .unwrap()
        .spawn_named("master", Master::default())
        .unwrap();
    let agents = (0..3)
        .map(|n| {
            let to = master.upid();
            sim.add_node(&format!("agent{n}"), move |runtime, _| {
                runtime
                    .spawn_named("agent", Agent { master: to.clone() })
                    .unwrap();
            })
        })
        .collect();
    Cluster {
        sim,
        master_node,
        master,
        agents,
    }
}

fn master_view(c: &mut Cluster) -> (BTreeSet<Upid>, u64, Vec<(Upid, ExitReason)>) {
    let read = procession::dispatch(&c.master, |m: &mut Master| {
        (m.agents.clone(), m.beats, m.lost.clone())
    });
    c.sim.block_on(read).unwrap().unwrap()
}

#[test]
fn a_partition_makes_the_master_see_the_agent_lost_across_seeds() {
    run_seeds(1000, |seed| {
        let mut c = cluster(seed);
        c.sim.run_for(Duration::from_secs(3));
        let (agents, beats, lost) = master_view(&mut c);
        assert_eq!(agents.len(), 3, "every agent registered");
        assert!(
            beats >= 9,
            "three agents beat about three times each: {beats}"
        );
        assert!(lost.is_empty());

        let cut = c.agents[1];
        c.sim.partition(c.master_node, cut);
        c.sim.run_for(Duration::from_secs(3));
        let (agents, _, lost) = master_view(&mut c);
        let cut_agent = Upid::new("agent", c.sim.address(cut));
        assert_eq!(lost, [(cut_agent.clone(), ExitReason::Lost)]);
        assert_eq!(agents.len(), 2);
        assert!(!agents.contains(&cut_agent));
    });
}
