//! Faults of a fault phase that overlap on one pair or node, injected at chosen times (the
//! random draws only pick the times), each of which must last its whole outage.

use std::time::Duration;

use super::super::{Event, NodeId, Sim};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A calm simulation of two empty nodes: its fault phases inject nothing, only undo.
fn two_nodes() -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(1);
    let a = sim.add_node("a", |_, _| {});
    let b = sim.add_node("b", |_, _| {});
    (sim, a, b)
}

/// Runs a fault phase until virtual time `at` (an undo due at a phase's very end waits for
/// the next phase, so the checks look a millisecond past each due time).
fn phase_until(sim: &mut Sim, at: Duration, targets: &[NodeId]) {
    let duration = at - sim.now();
    sim.run_faults(duration, targets);
    assert_eq!(sim.now(), at);
}

#[test]
fn a_cut_made_while_a_partition_lasts_outlives_the_partition_s_heal() {
    let (mut sim, a, b) = two_nodes();
    sim.inject_partition(a, b, false, ms(100));
    phase_until(&mut sim, ms(30), &[a, b]);
    sim.inject_partition(b, a, true, ms(200));
    phase_until(&mut sim, ms(229), &[a, b]);
    assert!(!sim.network.is_cut(a.0, b.0), "the partition is over");
    assert!(sim.network.is_cut(b.0, a.0), "the one-way cut ended early");
    phase_until(&mut sim, ms(231), &[a, b]);
    assert!(
        !sim.network.is_cut(b.0, a.0),
        "the one-way cut outlived its outage"
    );
    let restored: Vec<_> = sim
        .trace()
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Restored(..)))
        .cloned()
        .collect();
    assert_eq!(restored, [Event::Restored(a, b), Event::Restored(b, a)]);
}

#[test]
fn a_heal_by_hand_ends_every_cut_and_a_cut_by_hand_outlives_a_fault_s() {
    let (mut sim, a, b) = two_nodes();
    sim.inject_partition(a, b, false, ms(100));
    sim.inject_partition(a, b, true, ms(300));
    sim.heal(a, b);
    assert!(!sim.network.is_cut(a.0, b.0) && !sim.network.is_cut(b.0, a.0));
    sim.partition_one_way(a, b);
    phase_until(&mut sim, ms(400), &[a, b]);
    assert!(
        sim.network.is_cut(a.0, b.0),
        "only a heal ends a cut by hand"
    );
    let restored = sim
        .trace()
        .events()
        .iter()
        .any(|e| matches!(e, Event::Restored(..)));
    assert!(!restored, "undoing a healed fault restored something");
}

#[test]
fn a_pause_after_a_crash_and_restart_outlives_the_first_pause_s_resume() {
    let (mut sim, a, b) = two_nodes();
    sim.inject_pause(a, ms(300));
    phase_until(&mut sim, ms(50), &[a, b]);
    sim.inject_crash(a, ms(100));
    phase_until(&mut sim, ms(151), &[a, b]);
    assert!(
        sim.runtime(a).is_some(),
        "restarted when its crash was undone"
    );
    phase_until(&mut sim, ms(200), &[a, b]);
    sim.inject_pause(a, ms(300));
    phase_until(&mut sim, ms(499), &[a, b]);
    assert!(sim.nodes[a.0].paused, "the second pause ended early");
    phase_until(&mut sim, ms(501), &[a, b]);
    assert!(
        !sim.nodes[a.0].paused,
        "the second pause outlived its outage"
    );
}

#[test]
fn a_crash_after_a_restart_by_hand_outlives_the_first_crash_s_restart() {
    let (mut sim, a, b) = two_nodes();
    sim.inject_crash(a, ms(100));
    phase_until(&mut sim, ms(10), &[a, b]);
    sim.restart(a);
    phase_until(&mut sim, ms(20), &[a, b]);
    sim.inject_crash(a, ms(280));
    phase_until(&mut sim, ms(299), &[a, b]);
    assert!(sim.runtime(a).is_none(), "the second crash ended early");
    phase_until(&mut sim, ms(301), &[a, b]);
    assert!(
        sim.runtime(a).is_some(),
        "the second crash outlived its outage"
    );
}
