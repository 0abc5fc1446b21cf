//! Each fault of the menu shows its effect on a small scenario, and replays the same with it on.

mod support;

use std::time::Duration;

use procession::{after, ExitReason};
use procession_testkit::sim::{check_determinism, run_seeds, Event, Latency, Profile, Sim};
use support::{exits, notes, send_notes, two_nodes, watch, Watcher, SETTLE};

#[test]
fn a_one_way_cut_loses_one_direction_and_only_its_sender_learns() {
    run_seeds(30, |seed| {
        let mut sim = Sim::new(seed);
        let (a, b, on_a) = two_nodes(&mut sim);
        let on_b = sim.runtime(b).unwrap().spawn(support::Recorder::default());
        let watcher_a = sim.runtime(a).unwrap().spawn(Watcher::default());
        let watcher_b = sim.runtime(b).unwrap().spawn(Watcher::default());
        watch(&mut sim, &watcher_a, on_b.upid());
        watch(&mut sim, &watcher_b, on_a.upid());
        sim.run_for(SETTLE);
        sim.partition_one_way(b, a);
        send_notes(&mut sim, b, &on_a.upid(), [1]);
        send_notes(&mut sim, a, &on_b.upid(), [2]);
        sim.run_for(SETTLE);
        assert!(notes(&mut sim, &on_a).is_empty(), "b to a is cut");
        assert_eq!(notes(&mut sim, &on_b).len(), 1, "a to b still works");
        assert_eq!(
            exits(&mut sim, &watcher_b),
            [(on_a.upid(), ExitReason::Lost)]
        );
        assert!(exits(&mut sim, &watcher_a).is_empty(), "a never noticed");
    });
}

#[test]
fn an_exponential_latency_has_a_long_tail_within_its_cap() {
    let (min, mean, max) = (
        Duration::from_millis(1),
        Duration::from_millis(5),
        Duration::from_millis(40),
    );
    let mut sim = Sim::builder(11)
        .latency(Latency::exponential(min, mean, max))
        .reorder(true)
        .build();
    let (_, b, recorder) = two_nodes(&mut sim);
    let sent = sim.runtime(b).unwrap().clock().now();
    send_notes(&mut sim, b, &recorder.upid(), 0..500);
    sim.run_for(SETTLE);
    let took: Vec<Duration> = notes(&mut sim, &recorder)
        .iter()
        .map(|n| n.2 - sent)
        .collect();
    assert_eq!(took.len(), 500);
    assert!(took.iter().all(|t| min <= *t && *t <= max));
    let slow = took.iter().filter(|t| **t > min + mean * 3).count();
    assert!(slow > 0, "no message in the tail");
    assert!(slow < 100, "too many in the tail: {slow}");
}

#[test]
fn duplication_delivers_messages_twice_only_when_turned_on() {
    for (rate, copies) in [(0.0, 1), (1.0, 2)] {
        run_seeds(10, |seed| {
            let mut sim = Sim::builder(seed).duplicate(rate).build();
            let (_, b, recorder) = two_nodes(&mut sim);
            send_notes(&mut sim, b, &recorder.upid(), 0..10);
            sim.run_for(SETTLE);
            let mut got: Vec<u32> = notes(&mut sim, &recorder).iter().map(|n| n.1).collect();
            got.sort_unstable();
            let want: Vec<u32> = (0..10)
                .flat_map(|n| std::iter::repeat_n(n, copies))
                .collect();
            assert_eq!(got, want);
        });
    }
}

#[test]
fn a_paused_node_runs_nothing_until_resumed_then_catches_up_in_order() {
    run_seeds(30, |seed| {
        let mut sim = Sim::new(seed);
        let (a, b, recorder) = two_nodes(&mut sim);
        let timer = {
            let _entered = sim.runtime(a).unwrap().enter();
            after(Duration::from_millis(500))
        };
        sim.pause(a);
        send_notes(&mut sim, b, &recorder.upid(), 0..5);
        sim.run_for(Duration::from_secs(2));
        assert!(timer.is_pending(), "a paused node fires no timer");
        let seen = sim
            .trace()
            .events()
            .iter()
            .any(|e| matches!(e, Event::Message { to, .. } if *to == recorder.upid()));
        assert!(!seen, "a paused node was delivered a message");
        sim.resume(a);
        assert!(timer.is_ready(), "the overdue timer fires on resume");
        sim.run_for(SETTLE);
        let got: Vec<u32> = notes(&mut sim, &recorder).iter().map(|n| n.1).collect();
        assert_eq!(got, [0, 1, 2, 3, 4], "what waited arrives in order");
    });
}

#[test]
fn a_skewed_clock_reads_its_offset_and_drift_and_its_timers_follow_it() {
    let mut sim = Sim::new(5);
    let (a, b, _) = two_nodes(&mut sim);
    sim.set_clock(b, Duration::from_secs(7), 100_000); // 7 s ahead, 10% fast
    let now = |sim: &Sim, n| sim.runtime(n).unwrap().clock().now();
    assert_eq!(now(&sim, b) - now(&sim, a), Duration::from_secs(7));
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        now(&sim, b) - now(&sim, a),
        Duration::from_secs(8),
        "10% of 10 s more"
    );

    let (fires_a, fires_b) = {
        let on = |n| {
            let _entered = sim.runtime(n).unwrap().enter();
            after(Duration::from_secs(11))
        };
        (on(a), on(b))
    };
    sim.run_for(Duration::from_secs(10));
    assert!(fires_b.is_ready(), "11 s on a clock 10% fast pass in 10 s");
    assert!(fires_a.is_pending());
    sim.run_for(Duration::from_secs(1));
    assert!(fires_a.is_ready());
}

/// Each fault alone, then all of them at once.
fn fault_profiles() -> Vec<(&'static str, Profile)> {
    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }
    let one = |change: fn(&mut Profile)| {
        let mut profile = Profile::calm();
        change(&mut profile);
        profile
    };
    let all = one(|p| {
        p.latency = Latency::exponential(ms(1), ms(5), ms(200));
        p.loss = 0.1;
        p.duplicate = 0.1;
        p.reorder = true;
        p.partition_every = Some(ms(300));
        p.crash_every = Some(ms(700));
        p.pause_every = Some(ms(500));
        p.clock_offset = ms(50);
        p.clock_drift_ppm = 200;
    });
    vec![
        (
            "latency",
            one(|p| p.latency = Latency::exponential(ms(1), ms(5), ms(200))),
        ),
        ("loss", one(|p| p.loss = 0.2)),
        ("duplication", one(|p| p.duplicate = 0.2)),
        ("reordering", one(|p| p.reorder = true)),
        ("partitions", one(|p| p.partition_every = Some(ms(300)))),
        ("crashes", one(|p| p.crash_every = Some(ms(700)))),
        ("pauses", one(|p| p.pause_every = Some(ms(500)))),
        (
            "clock skew",
            one(|p| {
                p.clock_offset = ms(50);
                p.clock_drift_ppm = 200;
            }),
        ),
        ("everything", all),
    ]
}

/// Three nodes sending notes to each other's recorders through a fault phase and a heal.
fn noisy(seed: u64, profile: &Profile) -> Sim {
    let mut sim = Sim::builder(seed).profile(profile.clone()).build();
    let nodes: Vec<_> = (0..3)
        .map(|n| {
            sim.add_node(&format!("n{n}"), |runtime, _| {
                runtime
                    .spawn_named("recorder", support::Recorder::default())
                    .unwrap();
            })
        })
        .collect();
    for &from in &nodes {
        for &to in &nodes {
            let recorder = procession::Upid::new("recorder", sim.address(to));
            send_notes(&mut sim, from, &recorder, 0..20);
        }
    }
    sim.run_faults(Duration::from_secs(5), &nodes);
    sim.heal_everything();
    sim.run_for(SETTLE);
    sim
}

#[test]
fn every_fault_replays_the_same_trace_alone_and_all_together() {
    for (fault, profile) in fault_profiles() {
        run_seeds(10, |seed| {
            if let Err(divergence) = check_determinism(seed, |seed| noisy(seed, &profile)) {
                panic!("with {fault}: {divergence}");
            }
        });
    }
}

#[test]
#[should_panic(expected = "beyond the ±500,000 ppm")]
fn a_clock_drift_beyond_what_the_simulation_models_is_refused() {
    let mut sim = Sim::new(1);
    let node = sim.add_node("n", |_, _| {});
    sim.set_clock(node, Duration::ZERO, 600_000);
}

#[test]
#[should_panic(expected = "is above max")]
fn a_latency_range_upside_down_is_refused() {
    let _ = Latency::uniform(Duration::from_millis(5), Duration::from_millis(1));
}

#[test]
fn faults_more_frequent_than_the_shortest_outage_still_run() {
    let mut profile = Profile::calm();
    profile.partition_every = Some(Duration::from_millis(3));
    let sim = noisy(1, &profile);
    assert!(sim
        .trace()
        .events()
        .iter()
        .any(|e| matches!(e, Event::Partition(..))));
}

#[test]
#[should_panic(expected = "cannot be partitioned from itself")]
fn a_node_cannot_be_partitioned_from_itself() {
    let mut sim = Sim::builder(1).build();
    let (a, _, _) = two_nodes(&mut sim);
    sim.partition(a, a);
}

#[test]
fn a_clock_set_late_takes_its_offset_and_drift_from_then_on() {
    let mut sim = Sim::new(6);
    let (a, b, _) = two_nodes(&mut sim);
    let now = |sim: &Sim, n| sim.runtime(n).unwrap().clock().now();
    sim.run_for(Duration::from_secs(100));
    let fires = {
        let _entered = sim.runtime(b).unwrap().enter();
        after(Duration::from_secs(5))
    };
    sim.set_clock(b, Duration::ZERO, 100_000);
    assert_eq!(
        now(&sim, b),
        now(&sim, a),
        "no jump by 10% of the 100 s before"
    );
    assert!(fires.is_pending(), "a timer 5 s ahead is not overdue");
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        now(&sim, b) - now(&sim, a),
        Duration::from_secs(1),
        "10% fast from then on"
    );
    assert!(fires.is_ready());

    // Setting it again (as each fault phase does) starts from that moment too.
    sim.set_clock(b, Duration::from_secs(2), 0);
    assert_eq!(now(&sim, b) - now(&sim, a), Duration::from_secs(2));
    sim.run_for(Duration::from_secs(10));
    assert_eq!(now(&sim, b) - now(&sim, a), Duration::from_secs(2));
}

#[test]
fn a_resumed_node_gets_what_waited_before_what_was_sent_after() {
    run_seeds(10, |seed| {
        let mut sim = Sim::builder(seed)
            .latency(Latency::fixed(Duration::ZERO))
            .build();
        let (a, b, recorder) = two_nodes(&mut sim);
        let send = |sim: &Sim, n| {
            let _entered = sim.runtime(b).unwrap().enter();
            procession::send(&recorder.upid(), support::Note(n));
        };
        sim.pause(a);
        send(&sim, 1);
        sim.run_for(SETTLE); // 1 comes due and waits for the paused node
        send(&sim, 2); // due at once, queued before the resume
        sim.resume(a);
        sim.run_for(SETTLE);
        let got: Vec<u32> = notes(&mut sim, &recorder).iter().map(|n| n.1).collect();
        assert_eq!(got, [1, 2], "what waited keeps its place");
    });
}

#[test]
fn duration_max_is_a_bound_never_reached_not_an_overflow() {
    let mut sim = Sim::builder(1)
        .latency(Latency::exponential(
            Duration::ZERO,
            Duration::MAX,
            Duration::from_millis(5),
        ))
        .build();
    let (a, b, _) = two_nodes(&mut sim);
    sim.run_for(Duration::from_millis(10));
    let converged = sim.converge(Duration::MAX, |_| true);
    assert!(converged.is_ok(), "{converged:?}");
    sim.set_clock(b, Duration::from_secs(1), 0);
    // Quiet nodes: time runs to the end of what it can count, and stops there.
    sim.run_for(Duration::MAX);
    let _ = a;
}

#[test]
#[should_panic(expected = "named twice")]
fn a_fault_phase_refuses_a_node_named_twice() {
    let mut sim = Sim::builder(1).build();
    let (a, _, _) = two_nodes(&mut sim);
    sim.run_faults(Duration::from_secs(1), &[a, a]);
}
