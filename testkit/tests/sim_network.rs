//! The simulated network: latency, order, reordering, loss, partitions and healing.

mod support;

use std::time::Duration;

use procession::ExitReason;
use procession_testkit::sim::{run_seeds, Event, Latency, Sim};
use support::{exits, notes, send_notes, two_nodes, watch, Watcher, SETTLE};

#[test]
fn every_message_takes_a_latency_within_the_configured_range() {
    run_seeds(50, |seed| {
        let (min, max) = (Duration::from_millis(20), Duration::from_millis(30));
        let mut sim = Sim::builder(seed)
            .latency(Latency::uniform(min, max))
            .build();
        let (a, b, recorder) = two_nodes(&mut sim);
        let sent_at = sim.runtime(b).unwrap().clock().now();
        send_notes(&mut sim, b, &recorder.upid(), 0..20);
        sim.run_for(SETTLE);
        let got = notes(&mut sim, &recorder);
        assert_eq!(got.len(), 20);
        let epoch_gap =
            sim.runtime(a).unwrap().clock().now() - sim.runtime(b).unwrap().clock().now();
        assert_eq!(
            epoch_gap,
            Duration::ZERO,
            "one virtual clock for every node"
        );
        for (_, _, arrived) in got {
            let took = arrived - sent_at;
            assert!(min <= took && took <= max, "took {took:?}");
        }
    });
}

#[test]
fn messages_between_two_nodes_keep_their_order_unless_reordering_is_on() {
    run_seeds(50, |seed| {
        let mut sim = Sim::builder(seed)
            .latency(Latency::uniform(
                Duration::from_millis(1),
                Duration::from_millis(50),
            ))
            .build();
        let (_, b, recorder) = two_nodes(&mut sim);
        send_notes(&mut sim, b, &recorder.upid(), 0..100);
        sim.run_for(SETTLE);
        let order: Vec<u32> = notes(&mut sim, &recorder).iter().map(|n| n.1).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    });
    let mut reordered = 0;
    run_seeds(20, |seed| {
        let mut sim = Sim::builder(seed)
            .latency(Latency::uniform(
                Duration::from_millis(1),
                Duration::from_millis(50),
            ))
            .reorder(true)
            .build();
        let (_, b, recorder) = two_nodes(&mut sim);
        send_notes(&mut sim, b, &recorder.upid(), 0..100);
        sim.run_for(SETTLE);
        let mut order: Vec<u32> = notes(&mut sim, &recorder).iter().map(|n| n.1).collect();
        if order.windows(2).any(|w| w[0] > w[1]) {
            reordered += 1;
        }
        order.sort_unstable();
        assert_eq!(
            order,
            (0..100).collect::<Vec<_>>(),
            "reordered, never duplicated or lost"
        );
    });
    assert!(reordered > 0, "reordering never reordered anything");
}

#[test]
fn a_lossy_network_drops_messages_and_says_which() {
    run_seeds(20, |seed| {
        let mut sim = Sim::builder(seed).loss(0.5).build();
        let (_, b, recorder) = two_nodes(&mut sim);
        send_notes(&mut sim, b, &recorder.upid(), 0..200);
        sim.run_for(SETTLE);
        let arrived = notes(&mut sim, &recorder).len();
        let dropped = sim
            .trace()
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Dropped { .. }))
            .count();
        assert_eq!(arrived + dropped, 200);
        assert!(
            (50..150).contains(&arrived),
            "half of 200 should arrive: {arrived}"
        );
    });
}

#[test]
fn a_partition_loses_messages_both_ways_until_healed() {
    run_seeds(50, |seed| {
        let mut sim = Sim::new(seed);
        let (a, b, recorder) = two_nodes(&mut sim);
        sim.partition(a, b);
        send_notes(&mut sim, b, &recorder.upid(), [1]);
        sim.run_for(SETTLE);
        assert!(notes(&mut sim, &recorder).is_empty());
        sim.heal(a, b);
        send_notes(&mut sim, b, &recorder.upid(), [2]);
        sim.run_for(SETTLE);
        let got: Vec<u32> = notes(&mut sim, &recorder).iter().map(|n| n.1).collect();
        assert_eq!(got, [2]);
    });
}

#[test]
fn a_partition_reports_linked_processes_lost_after_the_detection_delay() {
    run_seeds(50, |seed| {
        let detect = Duration::from_millis(300);
        let mut sim = Sim::builder(seed).failure_detection(detect).build();
        let (a, b, recorder) = two_nodes(&mut sim);
        let watcher = sim.runtime(b).unwrap().spawn(Watcher::default());
        watch(&mut sim, &watcher, recorder.upid());
        sim.run_for(SETTLE);
        sim.partition(a, b);
        sim.run_for(detect - Duration::from_millis(1));
        assert!(
            exits(&mut sim, &watcher).is_empty(),
            "told before the delay"
        );
        sim.run_for(Duration::from_millis(1));
        assert_eq!(
            exits(&mut sim, &watcher),
            [(recorder.upid(), ExitReason::Lost)]
        );
    });
}

#[test]
fn linking_across_a_partition_reports_the_process_lost() {
    run_seeds(20, |seed| {
        let mut sim = Sim::new(seed);
        let (a, b, recorder) = two_nodes(&mut sim);
        sim.partition(a, b);
        let watcher = sim.runtime(b).unwrap().spawn(Watcher::default());
        watch(&mut sim, &watcher, recorder.upid());
        sim.run_for(SETTLE);
        assert_eq!(
            exits(&mut sim, &watcher),
            [(recorder.upid(), ExitReason::Lost)]
        );
    });
}

#[test]
fn a_remote_process_that_terminates_is_reported_with_its_reason() {
    run_seeds(20, |seed| {
        let mut sim = Sim::new(seed);
        let (_, b, recorder) = two_nodes(&mut sim);
        let watcher = sim.runtime(b).unwrap().spawn(Watcher::default());
        watch(&mut sim, &watcher, recorder.upid());
        sim.run_for(SETTLE);
        procession::terminate(&recorder);
        sim.run_for(SETTLE);
        assert_eq!(
            exits(&mut sim, &watcher),
            [(recorder.upid(), ExitReason::Normal)]
        );
    });
}

#[test]
fn a_message_to_an_address_no_node_has_is_a_failed_connect() {
    let mut sim = Sim::new(1);
    let (_, b, _) = two_nodes(&mut sim);
    let nowhere: procession::Upid = "ghost@10.9.9.9:5050".parse().unwrap();
    send_notes(&mut sim, b, &nowhere, [1]);
    sim.run_for(SETTLE);
    assert!(sim
        .trace()
        .events()
        .iter()
        .any(|e| matches!(e, Event::Lost { peer, .. } if *peer == nowhere.address())));
}

/// A message whose `Serialize` fails.
struct Unencodable;
impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("not today"))
    }
}
impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unencodable)
    }
}
impl procession::Message for Unencodable {
    const NAME: &'static str = "sim-network::Unencodable";
}

#[test]
fn a_message_that_cannot_be_encoded_is_dropped_and_counted_by_the_sender() {
    let mut sim = Sim::new(1);
    let (_, b, recorder) = two_nodes(&mut sim);
    struct Sender;
    impl procession::Process for Sender {}
    let runtime = sim.runtime(b).unwrap();
    let before = runtime.stats().dropped_messages;
    let sender = runtime.spawn(Sender);
    let to = recorder.upid();
    let sent = procession::dispatch(&sender, move |_: &mut Sender| {
        procession::send(&to, Unencodable);
    });
    sim.block_on(sent).unwrap().unwrap();
    sim.run_for(SETTLE);
    assert_eq!(sim.runtime(b).unwrap().stats().dropped_messages, before + 1);
    send_notes(&mut sim, b, &recorder.upid(), [7]);
    sim.run_for(SETTLE);
    assert_eq!(notes(&mut sim, &recorder).len(), 1, "the node sends on");
}

/// A partition (or a crash) of the watched node, mended 10 ms later, long before the watchers'
/// node notices: a link made before the break and one made before the notice are reported
/// `Lost`, and the second never reached the peer; one made after the notice holds.
fn links_around_a_lost_notice(seed: u64, mend_by_restart: bool) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node("a", |runtime, _| {
        runtime
            .spawn_named("recorder", support::Recorder::default())
            .unwrap();
    });
    let b = sim.add_node("b", |_, _| {});
    let recorder = procession::Upid::new("recorder", sim.address(a));
    let watcher = |sim: &mut Sim| sim.runtime(b).unwrap().spawn(Watcher::default());
    let before = watcher(&mut sim);
    watch(&mut sim, &before, recorder.clone());
    sim.run_for(SETTLE);
    if mend_by_restart {
        sim.crash(a);
    } else {
        sim.partition(a, b);
    }
    sim.run_for(Duration::from_millis(10));
    if mend_by_restart {
        sim.restart(a);
    } else {
        sim.heal(a, b);
    }
    let hasty = watcher(&mut sim);
    watch(&mut sim, &hasty, recorder.clone());
    sim.run_for(SETTLE);
    let after = watcher(&mut sim);
    watch(&mut sim, &after, recorder.clone());
    sim.run_for(SETTLE * 5);

    let lost = [(recorder.clone(), ExitReason::Lost)];
    assert_eq!(exits(&mut sim, &before), lost, "the notice still comes");
    let held = |sim: &Sim, watcher: &procession::Pid<Watcher>| {
        sim.trace()
            .events()
            .iter()
            .any(|e| matches!(e, Event::Link { linker, .. } if *linker == watcher.upid()))
    };
    assert!(
        !held(&sim, &hasty),
        "a link the peer holds was reported lost while its process lives"
    );
    assert_eq!(exits(&mut sim, &hasty), lost);
    assert!(held(&sim, &after));
    assert!(
        exits(&mut sim, &after).is_empty(),
        "a live link reported lost"
    );
    {
        let _entered = sim.runtime(a).unwrap().enter();
        procession::terminate(&recorder);
    }
    sim.run_for(SETTLE);
    assert_eq!(
        exits(&mut sim, &after),
        [(recorder, ExitReason::Normal)],
        "the link after the notice is the one that counts"
    );
}

#[test]
fn a_lost_notice_in_flight_covers_links_made_before_it_even_after_a_heal() {
    run_seeds(20, |seed| links_around_a_lost_notice(seed, false));
}

#[test]
fn a_lost_notice_in_flight_covers_links_made_before_it_even_after_a_restart() {
    run_seeds(20, |seed| links_around_a_lost_notice(seed, true));
}
