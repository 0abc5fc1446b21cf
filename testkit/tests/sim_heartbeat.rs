//! The example: a master and three agents with heartbeats, where a partition makes the
//! master see `exited` for the agent cut off, across many seeds. The master and agents are the
//! swarm scenario's (tests/support/heartbeat.rs), on a fault-free network.

mod support;

use std::time::Duration;

use procession::{ExitReason, Upid};
use procession_testkit::sim::{run_seeds, Sim};
use support::heartbeat::{cluster, master_view};

#[test]
fn a_partition_makes_the_master_see_the_agent_lost_across_seeds() {
    run_seeds(1000, |seed| {
        let mut c = cluster(Sim::new(seed), false);
        c.sim.run_for(Duration::from_secs(3));
        let view = master_view(&mut c.sim, &c.master);
        assert_eq!(view.agents.len(), 3, "every agent registered");
        let beats = view.beats;
        assert!(
            beats >= 9,
            "three agents beat about three times each: {beats}"
        );
        assert!(view.lost.is_empty());

        let (master_node, cut) = (c.nodes[0], c.nodes[2]);
        c.sim.partition(master_node, cut);
        c.sim.run_for(Duration::from_secs(3));
        let view = master_view(&mut c.sim, &c.master);
        let cut_agent = Upid::new("agent", c.sim.address(cut));
        assert_eq!(view.lost, [(cut_agent.clone(), ExitReason::Lost)]);
        assert_eq!(view.agents.len(), 2);
        assert!(!view.agents.contains(&cut_agent));
    });
}
