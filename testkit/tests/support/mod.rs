//! Processes the simulation tests share: a recorder of notes, and a watcher that links.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::time::{Duration, Instant};

use procession::{link, Clock, Context, ExitReason, Message, Pid, Process, Upid};
use procession_testkit::sim::{NodeId, Sim};

/// A numbered message.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Message)]
pub struct Note(pub u32);

/// Records every note with its sender and the time on its node's clock when it arrived.
#[derive(Default)]
pub struct Recorder {
    pub notes: Vec<(Upid, u32, Instant)>,
}

impl Process for Recorder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|r: &mut Self, from: &Upid, Note(n)| {
            r.notes.push((from.clone(), n, Clock::current().now()))
        })
        .unwrap();
    }
}

/// Links to whatever it is told to and records every `exited`.
#[derive(Default)]
pub struct Watcher {
    pub exits: Vec<(Upid, ExitReason)>,
}

impl Process for Watcher {
    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.push((upid.clone(), reason.clone()));
    }
}

/// Makes `watcher` link to `to`.
pub fn watch(sim: &mut Sim, watcher: &Pid<Watcher>, to: Upid) {
    let linked = procession::dispatch(watcher, move |_: &mut Watcher| link(&to));
    sim.block_on(linked).unwrap().unwrap();
}

/// The notes `recorder` has received: (sender, number, arrival time).
pub fn notes(sim: &mut Sim, recorder: &Pid<Recorder>) -> Vec<(Upid, u32, Instant)> {
    let read = procession::dispatch(recorder, |r: &mut Recorder| r.notes.clone());
    sim.block_on(read).unwrap().unwrap()
}

/// The exits `watcher` has seen.
pub fn exits(sim: &mut Sim, watcher: &Pid<Watcher>) -> Vec<(Upid, ExitReason)> {
    let read = procession::dispatch(watcher, |w: &mut Watcher| w.exits.clone());
    sim.block_on(read).unwrap().unwrap()
}

/// Sends `Note(n)` for each `n` in `numbers` from a process on `node` to `to`, in order, from
/// one handler.
pub fn send_notes(sim: &mut Sim, node: NodeId, to: &Upid, numbers: impl IntoIterator<Item = u32>) {
    struct Sender;
    impl Process for Sender {}
    let sender = sim.runtime(node).unwrap().spawn(Sender);
    let to = to.clone();
    let numbers: Vec<u32> = numbers.into_iter().collect();
    let sent = procession::dispatch(&sender, move |_: &mut Sender| {
        for n in numbers {
            procession::send(&to, Note(n));
        }
    });
    sim.block_on(sent).unwrap().unwrap();
}

/// A simulation with a recorder on node 0 and nothing on node 1.
pub fn two_nodes(sim: &mut Sim) -> (NodeId, NodeId, Pid<Recorder>) {
    let a = sim.add_node("a", |_, _| {});
    let b = sim.add_node("b", |_, _| {});
    let recorder = sim
        .runtime(a)
        .unwrap()
        .spawn_named("recorder", Recorder::default())
        .unwrap();
    (a, b, recorder)
}

/// Long enough for everything in flight to land with the default network.
pub const SETTLE: Duration = Duration::from_secs(1);
pub mod heartbeat;
