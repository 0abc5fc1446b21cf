//! The determinism self-check catches what the seed does not control, and says where.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use procession::{send, Context, Message, Process, Upid};
use procession_testkit::sim::{check_determinism, Event, Sim};

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Hello;

/// Greets its peers in the iteration order of its map. A `HashMap` (the planted bug) orders
/// them by a `RandomState` that differs in every run; a `BTreeMap` by name.
enum Peers {
    Hashed(HashMap<String, Upid>),
    Ordered(BTreeMap<String, Upid>),
}

struct Greeter {
    peers: Peers,
}

impl Process for Greeter {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        let peers: Vec<&Upid> = match &self.peers {
            Peers::Hashed(map) => map.values().collect(),
            Peers::Ordered(map) => map.values().collect(),
        };
        for peer in peers {
            send(peer, Hello);
        }
    }
}

struct Quiet;
impl Process for Quiet {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|_: &mut Self, _: &Upid, _: Hello| {}).unwrap();
    }
}

fn greeting(seed: u64, hashed: bool) -> Sim {
    let mut sim = Sim::new(seed);
    let nodes: Vec<_> = (0..8)
        .map(|n| sim.add_node(&format!("peer{n}"), |_, _| {}))
        .collect();
    let mut named = Vec::new();
    for (n, &node) in nodes.iter().enumerate() {
        let pid = sim
            .runtime(node)
            .unwrap()
            .spawn_named("quiet", Quiet)
            .unwrap();
        named.push((format!("peer{n}"), pid.upid()));
    }
    let peers = if hashed {
        Peers::Hashed(named.into_iter().collect())
    } else {
        Peers::Ordered(named.into_iter().collect())
    };
    let greeter = sim.add_node("greeter", |_, _| {});
    sim.runtime(greeter).unwrap().spawn(Greeter { peers });
    sim.run_for(Duration::from_secs(1));
    sim
}

#[test]
fn a_hash_map_iteration_order_is_caught_and_the_first_diverging_event_named() {
    // Two runs order eight peers the same with probability 1/8! per seed.
    let divergence = (0..5)
        .find_map(|seed| check_determinism(seed, |seed| greeting(seed, true)).err())
        .expect("five seeds never caught the HashMap's order");
    let report = divergence.to_string();
    assert!(
        report.contains(&format!("diverge at event {}", divergence.index)),
        "{report}"
    );
    assert!(
        report.contains("first run:") && report.contains("second run:"),
        "{report}"
    );
    let (first, second) = (divergence.first.clone(), divergence.second.clone());
    assert_ne!(first, second);
    // The runs agree until the greeter's sends come out in another order.
    assert!(
        matches!(first, Some(Event::Message { .. } | Event::Run { .. })),
        "{report}"
    );
}

#[test]
fn the_same_greeting_over_an_ordered_map_replays_the_same() {
    for seed in 0..5 {
        check_determinism(seed, |seed| greeting(seed, false)).unwrap();
    }
}
