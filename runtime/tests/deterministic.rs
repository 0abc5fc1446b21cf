//! The deterministic scheduler: the same seed gives the same trace, different seeds give
//! different interleavings, and invariants hold on every seed.
//!
//! A failing seed is printed; replay it with `PROCESSION_SEED=<seed>`.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use procession::{
    delay, dispatch, link, send, terminate, wait, Context, ExitReason, Message, Process, Runtime,
    Trace, Upid,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Token {
    id: u32,
    hops_left: u32,
}
impl Message for Token {
    const NAME: &'static str = "deterministic::Token";
}

/// Forwards each token to a peer drawn from its own generator (seeded by the scenario, so
/// only the scheduler's seed differs between runs).
struct Node {
    index: usize,
    peers: Vec<Upid>,
    rng: u64,
    log: Arc<Mutex<Vec<(usize, u32, u32)>>>,
}

impl Node {
    fn next_peer(&mut self) -> Upid {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        self.peers[(r % self.peers.len() as u64) as usize].clone()
    }
}

impl Process for Node {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, token: Token| {
            me.log.lock().push((me.index, token.id, token.hops_left));
            if token.hops_left > 0 {
                let next = me.next_peer();
                send(
                    &next,
                    Token {
                        id: token.id,
                        hops_left: token.hops_left - 1,
                    },
                );
            }
        })
        .unwrap();
    }
}

const NODES: usize = 20;
const TOKENS: u32 = 10;
const HOPS: u32 = 100;

/// 20 nodes pass 10 tokens 100 hops each (1,000 forwarded messages); returns the trace and
/// the log of (node, token, hops left) in delivery order.
fn gossip(seed: u64) -> (Trace, Vec<(usize, u32, u32)>) {
    let rt = Runtime::builder().deterministic(seed).build().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let peers: Vec<Upid> = (0..NODES)
        .map(|i| Upid::new(format!("node-{i}"), rt.address()))
        .collect();
    for (i, upid) in peers.iter().enumerate() {
        let node = Node {
            index: i,
            peers: peers.clone(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1),
            log: log.clone(),
        };
        let pid = rt.spawn_named(upid.id(), node).unwrap();
        assert_eq!(&pid.upid(), upid);
    }
    {
        let _entered = rt.enter();
        for id in 0..TOKENS {
            send(
                &peers[id as usize],
                Token {
                    id,
                    hops_left: HOPS,
                },
            );
        }
    }
    rt.clock().settle();
    let trace = rt.trace().expect("a deterministic runtime has a trace");
    let log = log.lock().clone();
    assert_eq!(
        log.len(),
        (TOKENS * (HOPS + 1)) as usize,
        "seed {seed}: every hop delivered"
    );
    assert_eq!(rt.stats().dropped_messages, 0, "seed {seed}");
    rt.shutdown();
    (trace, log)
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [0, 1, 42, u64::MAX] {
        let (first, first_log) = gossip(seed);
        let (second, second_log) = gossip(seed);
        assert_eq!(first, second, "seed {seed}: traces differ between two runs");
        assert!(
            first_log == second_log,
            "seed {seed}: delivery orders differ"
        );
        assert!(
            first.steps > u64::from(TOKENS * (HOPS + 1)),
            "seed {seed}: {first:?}"
        );
    }
}

#[test]
fn different_seeds_give_different_interleavings() {
    let traces: Vec<Trace> = (1..=6).map(|seed| gossip(seed).0).collect();
    let distinct: HashSet<u64> = traces.iter().map(|t| t.hash).collect();
    assert!(
        distinct.len() >= 5,
        "six seeds gave only {} traces: {traces:?}",
        distinct.len()
    );
}

/// A counter that watches two clients and counts what they send it.
#[derive(Default)]
struct Counter {
    count: u64,
    exits: Vec<(Upid, ExitReason)>,
    finalized: Arc<AtomicU64>,
}

#[derive(Serialize, Deserialize)]
struct Add(u64);
impl Message for Add {
    const NAME: &'static str = "deterministic::Add";
}

impl Process for Counter {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Add(n)| me.count += n)
            .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.push((upid.clone(), reason.clone()));
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.finalized.fetch_add(1, Ordering::SeqCst);
    }
}

/// Sends `Add`s to the counter, some right away and some after a delay.
struct Client {
    counter: Upid,
    finalized: Arc<AtomicU64>,
}

impl Process for Client {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.finalized.fetch_add(1, Ordering::SeqCst);
    }
}

/// Two clients send 5 messages and 5 delayed dispatches each to a counter that links to them;
/// then everything ends. Checks exact counts; returns the trace.
fn small_scenario(seed: u64) -> Trace {
    let rt = Runtime::builder().deterministic(seed).build().unwrap();
    let finalized = Arc::new(AtomicU64::new(0));
    let counter = rt.spawn(Counter {
        finalized: finalized.clone(),
        ..Counter::default()
    });
    let clients: Vec<_> = (0..2)
        .map(|_| {
            rt.spawn(Client {
                counter: counter.upid(),
                finalized: finalized.clone(),
            })
        })
        .collect();
    let linked: Vec<Upid> = clients.iter().map(|c| c.upid()).collect();
    let links = dispatch(&counter, move |_: &mut Counter| {
        linked.iter().for_each(link)
    });
    let mut replies = vec![links];
    for client in &clients {
        let to_counter = counter.clone();
        replies.push(dispatch(client, move |c: &mut Client| {
            for i in 1..=5 {
                send(&c.counter, Add(i));
                delay(
                    Duration::from_millis(i * 10),
                    &to_counter,
                    move |k: &mut Counter| {
                        k.count += 100 * i;
                    },
                );
            }
        }));
    }
    for reply in replies {
        rt.block_on(reply).unwrap();
    }
    // block_on jumps virtual time to each delay as the system goes idle.
    let one_second = {
        let _entered = rt.enter();
        procession::after(Duration::from_secs(1))
    };
    rt.block_on(one_second).unwrap();
    for client in &clients {
        terminate(client);
        rt.block_on(wait(client)).unwrap();
    }
    let (count, exits) = rt
        .block_on(dispatch(&counter, |k: &mut Counter| {
            (k.count, k.exits.clone())
        }))
        .unwrap();
    let replay = format!("seed {seed} (replay: PROCESSION_SEED={seed})");
    assert_eq!(count, 2 * (15 + 1500), "{replay}: counter total");
    let mut expected: Vec<_> = clients
        .iter()
        .map(|c| (c.upid(), ExitReason::Normal))
        .collect();
    let mut exits = exits;
    exits.sort_by(|a, b| a.0.cmp(&b.0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(exits, expected, "{replay}: one Normal exit per client");
    assert_eq!(
        finalized.load(Ordering::SeqCst),
        2,
        "{replay}: client finalizes"
    );
    assert_eq!(rt.stats().armed_timers, 0, "{replay}");
    let trace = rt.trace().unwrap();
    rt.shutdown();
    assert_eq!(
        finalized.load(Ordering::SeqCst),
        3,
        "{replay}: every finalize ran"
    );
    trace
}

#[test]
fn an_invariant_holds_on_two_hundred_seeds() {
    let seeds: Vec<u64> = match std::env::var("PROCESSION_SEED") {
        Ok(seed) => vec![seed.parse().expect("PROCESSION_SEED is a u64")],
        Err(_) => (0..200).collect(),
    };
    let mut hashes = HashSet::new();
    for &seed in &seeds {
        let trace = support::with_watchdog(&format!("seed {seed}"), || small_scenario(seed));
        hashes.insert(trace.hash);
    }
    if seeds.len() == 200 {
        // The scenario is small and the test thread serialises its phases, so many seeds share
        // an order; what matters is that the seed does choose among many.
        assert!(
            hashes.len() >= 20,
            "200 seeds explored only {} orders",
            hashes.len()
        );
    }
    // And the small scenario replays exactly.
    assert_eq!(small_scenario(17), small_scenario(17));
}
