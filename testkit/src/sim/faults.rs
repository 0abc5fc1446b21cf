//! Faults on nodes and links, by hand or at random in a fault phase, and the recovery check
//! that follows one.

use std::time::Duration;

use super::config::exponential;
use super::{Event, NodeId, Sim, SimError};

/// Undoing a fault the fault phase injected, and only that fault: faults that overlap on one
/// node or pair must not end each other early.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Undo {
    /// Undoes the network's cut with this id, from the first node to the second.
    Uncut(NodeId, NodeId, u64),
    /// Restarts the node if it is still down from its crash with this number.
    Restart(NodeId, u64),
    /// Resumes the node if it is still in its pause with this number.
    Resume(NodeId, u64),
}

impl Sim {
    /// Cuts the connections between `a` and `b`, both ways; see the
    /// [network model](super#network-model).
    ///
    /// # Panics
    ///
    /// Panics if `a` and `b` are one node: a node is never cut off from itself.
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        self.cut_both(a, b);
    }

    /// [`partition`](Self::partition), returning the ids of its cuts (`a` to `b`, `b` to `a`).
    fn cut_both(&mut self, a: NodeId, b: NodeId) -> [u64; 2] {
        assert_ne!(
            a, b,
            "Sim::partition: a node cannot be partitioned from itself"
        );
        let cuts = [self.network.cut(a.0, b.0), self.network.cut(b.0, a.0)];
        self.record(Event::Partition(a, b));
        cuts
    }

    /// Cuts the connection from `from` to `to` only: `to` still reaches `from`, and only
    /// `from` learns that its connection broke.
    ///
    /// # Panics
    ///
    /// Panics if `from` and `to` are one node.
    pub fn partition_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut_one_way(from, to);
    }

    /// [`partition_one_way`](Self::partition_one_way), returning the id of its cut.
    fn cut_one_way(&mut self, from: NodeId, to: NodeId) -> u64 {
        assert_ne!(
            from, to,
            "Sim::partition_one_way: a node cannot be cut off from itself"
        );
        let cut = self.network.cut(from.0, to.0);
        self.record(Event::Cut(from, to));
        cut
    }

    /// Restores the connections between `a` and `b`, both ways, whatever cut them: every
    /// partition and one-way cut between the two, by hand or by a fault phase. A side that
    /// has not yet noticed that its connection broke goes on losing what it sends there
    /// until it does (see the [network model](super#network-model)).
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.network.heal(a.0, b.0);
        self.record(Event::Heal(a, b));
    }

    /// Restores every connection.
    pub fn heal_all(&mut self) {
        self.network.heal_all();
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.record(Event::Heal(NodeId(a), NodeId(b)));
            }
        }
    }

    /// Crashes `node` ([`Runtime::crash`](procession::Runtime::crash): no `finalize`,
    /// everything queued lost; its [`Disk`](super::Disk) stays); the other nodes learn of it
    /// after the failure-detection delay. A no-op if it is already down.
    pub fn crash(&mut self, node: NodeId) {
        let Some((runtime, _)) = self.nodes[node.0].runtime.take() else {
            return;
        };
        self.nodes[node.0].paused = false;
        self.nodes[node.0].crashes += 1;
        self.network.crash(node.0);
        runtime.crash();
        self.record(Event::Crash(node));
    }

    /// Starts a crashed `node` again: a new runtime at the same address, on the virtual clock
    /// as it reads now, on which the node's start function runs with its disk. A no-op if the
    /// node is up.
    pub fn restart(&mut self, node: NodeId) {
        if self.nodes[node.0].runtime.is_some() {
            return;
        }
        self.network.restart(node.0);
        self.boot(node.0);
        self.record(Event::Restart(node));
    }

    /// Stops `node` from running: none of its events run and none of its timers fire, and what
    /// arrives for it waits, while its clock goes on (a stop-the-world pause, a `SIGSTOP`). A
    /// no-op if it is paused or crashed.
    pub fn pause(&mut self, node: NodeId) {
        let entry = &mut self.nodes[node.0];
        if entry.paused || entry.runtime.is_none() {
            return;
        }
        entry.paused = true;
        entry.pauses += 1;
        self.network.pause(node.0);
        self.record(Event::Pause(node));
    }

    /// Lets a paused `node` run again: its clock catches up at once (overdue timers fire) and
    /// what arrived meanwhile is delivered in order. A no-op if it is not paused.
    pub fn resume(&mut self, node: NodeId) {
        let entry = &mut self.nodes[node.0];
        if !entry.paused {
            return;
        }
        entry.paused = false;
        if let Some((runtime, _)) = &entry.runtime {
            runtime
                .clock()
                .update(entry.clock.local(self.epoch, self.now));
        }
        self.network.resume(node.0);
        self.record(Event::Resume(node));
        self.record_losses();
    }

    /// Sets `node`'s clock to read `offset` ahead of the virtual clock now and to run
    /// `drift_ppm` parts per million faster (negative: slower) from now on; the drift counts
    /// from this call, not from the start. Its timers follow its own clock. A node's clock
    /// never runs backwards: a reading behind the one before holds it still until the new
    /// reading catches up. It keeps the setting across restarts (it is the machine's clock).
    ///
    /// # Panics
    ///
    /// Panics if `drift_ppm` is beyond ±500,000 (a clock off by half is already broken
    /// hardware; real drift is tens of ppm).
    pub fn set_clock(&mut self, node: NodeId, offset: Duration, drift_ppm: i32) {
        assert!(
            (-500_000..=500_000).contains(&drift_ppm),
            "a clock drift of {drift_ppm} ppm is beyond the ±500,000 ppm a simulation models"
        );
        let entry = &mut self.nodes[node.0];
        entry.clock = super::clock::NodeClock::set(self.now, offset, drift_ppm);
        if let (Some((runtime, _)), false) = (&entry.runtime, entry.paused) {
            runtime
                .clock()
                .update(entry.clock.local(self.epoch, self.now));
        }
        self.record(Event::Clock {
            node,
            offset,
            drift_ppm,
        });
        self.record_losses();
    }

    /// Ends a fault phase: every connection healed, the network no longer loses or
    /// duplicates messages, every paused node resumed, every crashed node restarted, and no
    /// fault left to undo. The network's latency and reordering stay, and so do clock offsets
    /// and drift: they are how the system is, not faults that heal.
    pub fn heal_everything(&mut self) {
        self.agenda.clear();
        self.network.stop_loss();
        self.heal_all();
        for node in self.nodes() {
            self.resume(node);
            self.restart(node);
        }
    }

    /// Runs a fault phase of `duration`: the profile's node faults strike `targets` at random
    /// times drawn from the seed — partitions (half of them one-way) between two targets,
    /// crashes, pauses — each undone again after a random while, some within the phase, the
    /// rest by [`heal_everything`](Self::heal_everything). Each undo ends its own fault only:
    /// a connection two faults cut stays cut until both are undone, and a node paused (or
    /// crashed) again stays so for the whole of its new outage. Clock offsets and drift, when
    /// the profile has them, are set on every target at the start (the drift counting from
    /// there). With a calm profile this is [`run_for`](Self::run_for).
    ///
    /// # Panics
    ///
    /// As [`run_for`](Self::run_for): at the step limit, on a livelock that never lets time
    /// move. Also if a node is named twice among `targets`, or the profile's clock drift is
    /// beyond what [`set_clock`](Self::set_clock) models.
    pub fn run_faults(&mut self, duration: Duration, targets: &[NodeId]) {
        let mut distinct = targets.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            targets.len(),
            "Sim::run_faults: a node is named twice among the targets"
        );
        let end = self.now.saturating_add(duration);
        let profile = self.profile.clone();
        if profile.clock_offset > Duration::ZERO || profile.clock_drift_ppm > 0 {
            for &node in targets {
                let offset_ns = profile.clock_offset.as_nanos() as u64;
                let offset = Duration::from_nanos(self.rng.u64(0..=offset_ns));
                // Past `i32::MAX`, set_clock's own check names the limit.
                let ppm = i32::try_from(profile.clock_drift_ppm).unwrap_or(i32::MAX);
                let drift = self.rng.i32(-ppm..=ppm);
                self.set_clock(node, offset, drift);
            }
        }
        let next = |sim: &mut Sim, every: Option<Duration>| {
            every.map(|mean| sim.now.saturating_add(exponential(&mut sim.rng, mean)))
        };
        let mut partition_at = next(self, profile.partition_every);
        let mut crash_at = next(self, profile.crash_every);
        let mut pause_at = next(self, profile.pause_every);
        loop {
            let undo_at = self.agenda.iter().map(|(at, _)| *at).min();
            let at = [partition_at, crash_at, pause_at, undo_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end)
                .min(end);
            self.run_for(at.saturating_sub(self.now));
            if at >= end {
                return;
            }
            if undo_at == Some(at) {
                self.undo_due();
            } else if partition_at == Some(at) {
                self.random_partition(targets, profile.partition_every);
                partition_at = next(self, profile.partition_every);
            } else if crash_at == Some(at) {
                self.random_crash(targets, profile.crash_every);
                crash_at = next(self, profile.crash_every);
            } else {
                self.random_pause(targets, profile.pause_every);
                pause_at = next(self, profile.pause_every);
            }
        }
    }

    /// Runs until `holds` is true, checking it every 10 ms of virtual time (a check may itself
    /// run the simulation, e.g. to ask a process through [`block_on`](Self::block_on)), for at
    /// most `within` of virtual time: the liveness phase after
    /// [`heal_everything`](Self::heal_everything).
    ///
    /// # Errors
    ///
    /// [`SimError::NoConvergence`], with the seed and the profile, if `holds` is still false
    /// after `within`; [`SimError::StepLimit`] if more than the builder's step limit of steps
    /// run at one virtual instant (a livelock that never lets time move).
    pub fn converge(
        &mut self,
        within: Duration,
        mut holds: impl FnMut(&mut Sim) -> bool,
    ) -> Result<(), SimError> {
        let deadline = self.now.saturating_add(within);
        loop {
            if holds(self) {
                return Ok(());
            }
            if self.now >= deadline {
                return Err(SimError::NoConvergence {
                    seed: self.seed,
                    at: self.now,
                    profile: self.profile.to_string(),
                });
            }
            let step = Duration::from_millis(10).min(deadline - self.now);
            self.try_run_for(step)?;
        }
    }

    fn undo_due(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = self.agenda.drain(..).partition(|(at, _)| *at <= now);
        self.agenda = later;
        for (_, undo) in due {
            match undo {
                Undo::Uncut(from, to, cut) => {
                    if self.network.uncut(from.0, to.0, cut) {
                        self.record(Event::Restored(from, to));
                    }
                }
                Undo::Restart(node, crash) => {
                    if self.nodes[node.0].crashes == crash {
                        self.restart(node);
                    }
                }
                Undo::Resume(node, pause) => {
                    if self.nodes[node.0].pauses == pause {
                        self.resume(node);
                    }
                }
            }
        }
    }

    /// How long an injected fault lasts: about half the mean time between two of its kind.
    fn outage(&mut self, every: Option<Duration>) -> Duration {
        let mean = every.unwrap_or(Duration::from_secs(1)) / 2;
        // Not `clamp`: for a mean under 10 ms its bounds cross, and it panics.
        exponential(&mut self.rng, mean)
            .min(mean.saturating_mul(6))
            .max(Duration::from_millis(10))
    }

    fn random_partition(&mut self, targets: &[NodeId], every: Option<Duration>) {
        if targets.len() < 2 {
            return;
        }
        let a = targets[self.rng.usize(..targets.len())];
        let others: Vec<NodeId> = targets.iter().copied().filter(|&n| n != a).collect();
        let b = others[self.rng.usize(..others.len())];
        let one_way = self.rng.bool();
        let outage = self.outage(every);
        self.inject_partition(a, b, one_way, outage);
    }

    /// Partitions `a` from `b` (only `a` to `b` if `one_way`) for `outage`, after which the
    /// fault phase undoes this partition alone.
    pub(crate) fn inject_partition(
        &mut self,
        a: NodeId,
        b: NodeId,
        one_way: bool,
        outage: Duration,
    ) {
        let until = self.now.saturating_add(outage);
        if one_way {
            let cut = self.cut_one_way(a, b);
            self.agenda.push((until, Undo::Uncut(a, b, cut)));
        } else {
            let [there, back] = self.cut_both(a, b);
            self.agenda.push((until, Undo::Uncut(a, b, there)));
            self.agenda.push((until, Undo::Uncut(b, a, back)));
        }
    }

    fn random_crash(&mut self, targets: &[NodeId], every: Option<Duration>) {
        let up: Vec<NodeId> = targets
            .iter()
            .copied()
            .filter(|n| self.nodes[n.0].runtime.is_some())
            .collect();
        if up.is_empty() {
            return;
        }
        let node = up[self.rng.usize(..up.len())];
        let outage = self.outage(every);
        self.inject_crash(node, outage);
    }

    /// Crashes `node` for `outage`, after which the fault phase restarts it unless it was
    /// restarted (and maybe crashed again) meanwhile. A no-op if it is down.
    pub(crate) fn inject_crash(&mut self, node: NodeId, outage: Duration) {
        if self.nodes[node.0].runtime.is_none() {
            return;
        }
        self.crash(node);
        let until = self.now.saturating_add(outage);
        let crash = self.nodes[node.0].crashes;
        self.agenda.push((until, Undo::Restart(node, crash)));
    }

    fn random_pause(&mut self, targets: &[NodeId], every: Option<Duration>) {
        let running: Vec<NodeId> = targets
            .iter()
            .copied()
            .filter(|n| self.nodes[n.0].runtime.is_some() && !self.nodes[n.0].paused)
            .collect();
        if running.is_empty() {
            return;
        }
        let node = running[self.rng.usize(..running.len())];
        let outage = self.outage(every) / 2;
        self.inject_pause(node, outage);
    }

    /// Pauses `node` for `outage`, after which the fault phase resumes it unless it was
    /// resumed (and maybe paused again) meanwhile. A no-op if it is paused or down.
    pub(crate) fn inject_pause(&mut self, node: NodeId, outage: Duration) {
        let entry = &self.nodes[node.0];
        if entry.paused || entry.runtime.is_none() {
            return;
        }
        self.pause(node);
        let until = self.now.saturating_add(outage);
        let pause = self.nodes[node.0].pauses;
        self.agenda.push((until, Undo::Resume(node, pause)));
    }
}

#[cfg(test)]
mod tests;
