//! The master/agents heartbeat scenario (tests/support/heartbeat.rs) under swarm fault
//! profiles, safety and liveness checked, across many seeds; and a buggy agent that the swarm
//! catches, whose seed replays the failure.

mod support;

use procession_testkit::sim::{run_seeds, SimError};
use support::heartbeat::{run, run_traced};

#[test]
fn the_cluster_recovers_from_every_fault_mix() {
    let mut struck = [0u32; 4];
    let mut seeds = 0;
    run_seeds(1000, |seed| {
        let run = run_traced(seed, false);
        if let Err(error) = run.outcome {
            panic!("{error}");
        }
        for (count, hit) in struck.iter_mut().zip(run.faults) {
            *count += u32::from(hit);
        }
        seeds += 1;
    });
    // Swarm profiles: each kind of fault strikes in some runs and not in others.
    for (kind, count) in ["partition", "crash", "pause", "loss"].iter().zip(struck) {
        assert!(count > 0 || seeds < 20, "no run had a {kind}");
        assert!(count < seeds || seeds < 20, "every run had a {kind}");
    }
}

#[test]
fn the_swarm_catches_an_agent_that_forgets_to_register_again() {
    let seeds = std::env::var(procession_testkit::sim::SEEDS_VAR)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000u64);
    let failing = (0..seeds)
        .find(|&seed| run(seed, true).is_err())
        .expect("no seed caught the forgetful agent");
    let error = run(failing, true).unwrap_err();
    assert!(
        matches!(error, SimError::NoConvergence { seed, .. } if seed == failing),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("no convergence"), "{message}");
    assert!(message.contains(&format!("seed {failing}")), "{message}");
    assert!(
        message.contains("profile: latency"),
        "the profile is named: {message}"
    );
    assert_eq!(
        run(failing, true),
        Err(error),
        "the seed replays the failure"
    );
}
