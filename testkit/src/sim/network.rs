//! The simulated network: the [`Transport`] every node of a simulation uses, a queue of packets
//! in flight ordered by delivery time, and the faults (loss, partitions, crashed nodes).
//!
//! # Model
//!
//! See the [simulation's network model](super#network-model). A paused node's packets wait,
//! in order, until it resumes. A directed pair stays cut while any cut made on it is in place:
//! each [`cut`](Network::cut) is undone alone by [`uncut`](Network::uncut), or all together by
//! [`heal`](Network::heal), so faults that overlap on one pair do not end each other. A node's
//! connection to a peer stays broken until its `Lost` notice for that peer is delivered.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::{ExitReason, Outgoing, Transport, Upid};

use super::config::Latency;

/// How the simulated network behaves; set through [`SimBuilder`](super::SimBuilder).
#[derive(Clone, Debug)]
pub(crate) struct NetConfig {
    pub(crate) latency: Latency,
    pub(crate) loss: f64,
    pub(crate) duplicate: f64,
    pub(crate) reorder: bool,
    pub(crate) detect: Duration,
}

/// Something in flight to a node.
pub(crate) struct Packet {
    pub(crate) to_node: usize,
    from_node: usize,
    pub(crate) kind: PacketKind,
}

pub(crate) enum PacketKind {
    Message {
        from: Upid,
        to: Upid,
        name: Arc<str>,
        body: Bytes,
    },
    Link {
        linker: Upid,
        to: Upid,
    },
    Exited {
        linker: Upid,
        upid: Upid,
        reason: ExitReason,
    },
    /// The receiving node's connection to `peer` broke.
    Lost {
        peer: SocketAddr,
    },
}

/// A message the lossy network dropped, for the trace.
pub(crate) struct Loss {
    pub(crate) from: Upid,
    pub(crate) to: Upid,
    pub(crate) name: Arc<str>,
}

pub(crate) struct Network {
    state: Mutex<State>,
}

/// A packet's place in the queue: its delivery time, then the order it was sent in.
type Key = (Duration, u64);

struct State {
    config: NetConfig,
    rng: fastrand::Rng,
    now: Duration,
    addresses: Vec<SocketAddr>,
    up: Vec<bool>,
    /// Packets that came due for a paused node, in order, until it resumes, each with its
    /// queue key.
    held: Vec<Option<Vec<(Key, Packet)>>>,
    /// Directed pairs `(from, to)` whose connection is cut, each with the cuts in place on it.
    cut: HashMap<(usize, usize), BTreeSet<u64>>,
    next_cut: u64,
    queue: BTreeMap<Key, Packet>,
    next_seq: u64,
    /// The latest delivery time per directed pair, so messages keep their order.
    last: HashMap<(usize, usize), Duration>,
    /// `Lost` notices queued and not yet delivered, so a burst of failed sends makes one.
    pending_lost: HashSet<(usize, SocketAddr)>,
    /// Messages the lossy network dropped, drained into the trace.
    losses: Vec<Loss>,
}

impl Network {
    pub(crate) fn new(config: NetConfig, seed: u64) -> Self {
        Network {
            state: Mutex::new(State {
                config,
                rng: fastrand::Rng::with_seed(seed),
                now: Duration::ZERO,
                addresses: Vec::new(),
                up: Vec::new(),
                held: Vec::new(),
                cut: HashMap::new(),
                next_cut: 0,
                queue: BTreeMap::new(),
                next_seq: 0,
                last: HashMap::new(),
                pending_lost: HashSet::new(),
                losses: Vec::new(),
            }),
        }
    }

    /// Adds a node (up) at `address`; returns its index.
    pub(crate) fn add_node(&self, address: SocketAddr) -> usize {
        let mut state = self.state.lock();
        state.addresses.push(address);
        state.up.push(true);
        state.held.push(None);
        state.addresses.len() - 1
    }

    pub(crate) fn set_now(&self, now: Duration) {
        self.state.lock().now = now;
    }

    /// The delivery time of the earliest packet in flight.
    pub(crate) fn next_delivery(&self) -> Option<Duration> {
        let state = self.state.lock();
        state.queue.first_key_value().map(|((at, _), _)| *at)
    }

    /// Whether a packet is due now.
    pub(crate) fn has_due(&self) -> bool {
        let state = self.state.lock();
        let now = state.now;
        state
            .queue
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= now)
    }

    /// Takes the earliest packet due now, if its node is not paused; a packet for a paused
    /// node is held for it instead.
    pub(crate) fn pop_due(&self) -> Option<Packet> {
        let mut state = self.state.lock();
        let now = state.now;
        let entry = state.queue.first_entry().filter(|e| e.key().0 <= now)?;
        let (key, packet) = entry.remove_entry();
        if let Some(held) = &mut state.held[packet.to_node] {
            held.push((key, packet));
            return None;
        }
        if let PacketKind::Lost { peer } = packet.kind {
            state.pending_lost.remove(&(packet.to_node, peer));
        }
        Some(packet)
    }

    /// Holds the packets for `node` that come due from now on, until [`resume`](Self::resume).
    pub(crate) fn pause(&self, node: usize) {
        let mut state = self.state.lock();
        state.held[node].get_or_insert_with(Vec::new);
    }

    /// Makes the packets held for `node` due again, under the keys they had: a fresh key would
    /// queue them behind what their senders sent later and is due now (with zero latency).
    pub(crate) fn resume(&self, node: usize) {
        let mut state = self.state.lock();
        for (key, packet) in state.held[node].take().unwrap_or_default() {
            state.queue.insert(key, packet);
        }
    }

    /// Messages the lossy network dropped since the last call.
    pub(crate) fn take_losses(&self) -> Vec<Loss> {
        std::mem::take(&mut self.state.lock().losses)
    }

    /// Cuts the connection from `from` to `to`: what is in flight that way is lost, and `from`
    /// learns (after the detection delay) that it lost `to`. Returns the cut's id, for
    /// [`uncut`](Self::uncut).
    pub(crate) fn cut(&self, from: usize, to: usize) -> u64 {
        let mut state = self.state.lock();
        let id = state.next_cut;
        state.next_cut += 1;
        state.cut.entry((from, to)).or_default().insert(id);
        state
            .queue
            .retain(|_, p| (p.from_node, p.to_node) != (from, to));
        if let Some(held) = &mut state.held[to] {
            held.retain(|(_, p)| p.from_node != from);
        }
        let address = state.addresses[to];
        state.lost(from, address);
        id
    }

    /// Undoes the cut `id` from `from` to `to` (a no-op if it was healed already); returns
    /// whether that restored the connection, no other cut holding it.
    pub(crate) fn uncut(&self, from: usize, to: usize, id: u64) -> bool {
        let mut state = self.state.lock();
        let Some(cuts) = state.cut.get_mut(&(from, to)) else {
            return false;
        };
        if !cuts.remove(&id) || !cuts.is_empty() {
            return false;
        }
        state.cut.remove(&(from, to));
        true
    }

    /// Whether the connection from `from` to `to` is cut.
    #[cfg(test)]
    pub(crate) fn is_cut(&self, from: usize, to: usize) -> bool {
        self.state.lock().cut.contains_key(&(from, to))
    }

    /// Restores the connections between `a` and `b`, whatever cuts made them.
    pub(crate) fn heal(&self, a: usize, b: usize) {
        let mut state = self.state.lock();
        state.cut.remove(&(a, b));
        state.cut.remove(&(b, a));
    }

    /// Restores every connection.
    pub(crate) fn heal_all(&self) {
        self.state.lock().cut.clear();
    }

    /// Stops losing and duplicating messages (latency and reordering stay).
    pub(crate) fn stop_loss(&self) {
        let mut state = self.state.lock();
        state.config.loss = 0.0;
        state.config.duplicate = 0.0;
    }

    /// Takes `node` down: what is in flight to and from it is lost, and every node that is up
    /// learns it lost its connection to it.
    pub(crate) fn crash(&self, node: usize) {
        let mut state = self.state.lock();
        state.up[node] = false;
        state.held[node] = None;
        state
            .queue
            .retain(|_, p| p.to_node != node && p.from_node != node);
        for held in state.held.iter_mut().flatten() {
            held.retain(|(_, p)| p.from_node != node);
        }
        state.pending_lost.retain(|(to, _)| *to != node);
        state
            .last
            .retain(|(from, to), _| *from != node && *to != node);
        let address = state.addresses[node];
        for other in 0..state.up.len() {
            if other != node && state.up[other] {
                state.lost(other, address);
            }
        }
    }

    /// Brings a crashed node back up.
    pub(crate) fn restart(&self, node: usize) {
        self.state.lock().up[node] = true;
    }

    fn route(&self, from_node: usize, to: SocketAddr, kind: PacketKind) {
        let mut guard = self.state.lock();
        // One reborrow, so the generator and the configuration can be borrowed apart.
        let state = &mut *guard;
        // Until its Lost notice is delivered, the node still writes into the connection that
        // broke (a heal or a restart does not mend it): what it sends is lost with the rest,
        // so a link made in the meantime is among those the notice reports, never one that
        // the peer holds while this side is told it is lost.
        let noticing = state.pending_lost.contains(&(from_node, to));
        let reachable = state
            .addresses
            .iter()
            .position(|a| *a == to)
            .filter(|&n| !noticing && state.up[n] && !state.cut.contains_key(&(from_node, n)));
        let Some(to_node) = reachable else {
            state.lost(from_node, to);
            return;
        };
        let mut copy = None;
        if let PacketKind::Message {
            from,
            to,
            name,
            body,
        } = &kind
        {
            let (loss, duplicate) = (state.config.loss, state.config.duplicate);
            if loss > 0.0 && state.rng.f64() < loss {
                let (from, to, name) = (from.clone(), to.clone(), name.clone());
                state.losses.push(Loss { from, to, name });
                return;
            }
            if duplicate > 0.0 && state.rng.f64() < duplicate {
                copy = Some(PacketKind::Message {
                    from: from.clone(),
                    to: to.clone(),
                    name: name.clone(),
                    body: body.clone(),
                });
            }
        }
        for kind in copy.into_iter().chain(Some(kind)) {
            let latency = state.config.latency.draw(&mut state.rng);
            let mut at = state.now.saturating_add(latency);
            if !state.config.reorder {
                let last = state.last.entry((from_node, to_node)).or_default();
                at = at.max(*last);
                *last = at;
            }
            let packet = Packet {
                to_node,
                from_node,
                kind,
            };
            state.push(at, packet);
        }
    }
}

impl State {
    fn push(&mut self, at: Duration, packet: Packet) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert((at, seq), packet);
    }

    /// Tells `node`, after the failure-detection delay, that its connection to `peer` broke.
    fn lost(&mut self, node: usize, peer: SocketAddr) {
        if self.up[node] && self.pending_lost.insert((node, peer)) {
            let at = self.now.saturating_add(self.config.detect);
            let packet = Packet {
                to_node: node,
                from_node: node,
                kind: PacketKind::Lost { peer },
            };
            self.push(at, packet);
        }
    }
}

/// One node's side of the simulated network: the transport its runtime routes remote events to.
pub(crate) struct Endpoint {
    pub(crate) network: Arc<Network>,
    pub(crate) node: usize,
    /// The node's runtime, which counts what cannot be sent (the runtime drops this endpoint
    /// when it stops, ending the cycle).
    pub(crate) inbound: procession::Inbound,
}

impl Transport for Endpoint {
    fn send(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>) {
        let body = match message.to_bytes() {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%to, %error, "message cannot be encoded; dropped");
                return self
                    .inbound
                    .dropped(to, message.name(), "cannot be encoded");
            }
        };
        let kind = PacketKind::Message {
            from: from.clone(),
            to: to.clone(),
            name: message.name().into(),
            body,
        };
        self.network.route(self.node, to.address(), kind);
    }

    fn link(&self, linker: &Upid, to: &Upid) {
        let kind = PacketKind::Link {
            linker: linker.clone(),
            to: to.clone(),
        };
        self.network.route(self.node, to.address(), kind);
    }

    fn exited(&self, linker: &Upid, upid: &Upid, reason: &ExitReason) {
        let kind = PacketKind::Exited {
            linker: linker.clone(),
            upid: upid.clone(),
            reason: reason.clone(),
        };
        self.network.route(self.node, linker.address(), kind);
    }
}
