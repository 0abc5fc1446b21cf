//! The simulated network: the [`Transport`] every node of a simulation uses, a queue of packets
//! in flight ordered by delivery time, and the faults (loss, partitions, crashed nodes).
//!
//! # Model
//!
//! Nodes talk over one connection per ordered pair, as with the real transport. A message
//! takes a latency drawn from the configured range; unless reordering is on, messages between
//! two nodes arrive in the order they were sent (a later one never overtakes an earlier one).
//! Loss drops messages only: link requests and exit notices ride the connection's control
//! path, which a lossy link delays but does not lose. A partition cuts the connections between
//! two nodes: what is in flight between them is lost, and after the failure-detection delay
//! each side is told the other is lost (its linkers get `exited` with `Lost`), as a transport
//! reports a broken connection. Sending across a cut, or to a crashed or unknown node, is a
//! failed connect: the message is dropped and the sender's node is told the peer is lost. A
//! crash loses everything in flight to and from the node and tells every other node, after the
//! same delay.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::{ExitReason, Transport, Upid};

/// How the simulated network behaves; set through [`SimBuilder`](super::SimBuilder).
#[derive(Clone, Debug)]
pub(crate) struct NetConfig {
    pub(crate) latency: RangeInclusive<Duration>,
    pub(crate) loss: f64,
    pub(crate) reorder: bool,
    pub(crate) detect: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency: Duration::from_millis(1)..=Duration::from_millis(5),
            loss: 0.0,
            reorder: false,
            detect: Duration::from_millis(100),
        }
    }
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

struct State {
    config: NetConfig,
    rng: fastrand::Rng,
    now: Duration,
    addresses: Vec<SocketAddr>,
    up: Vec<bool>,
    /// Directed pairs `(from, to)` whose connection is cut.
    cut: HashSet<(usize, usize)>,
    queue: BTreeMap<(Duration, u64), Packet>,
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
                cut: HashSet::new(),
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

    /// Takes the earliest packet due now.
    pub(crate) fn pop_due(&self) -> Option<Packet> {
        let mut state = self.state.lock();
        let now = state.now;
        let entry = state.queue.first_entry().filter(|e| e.key().0 <= now)?;
        let packet = entry.remove();
        if let PacketKind::Lost { peer } = packet.kind {
            state.pending_lost.remove(&(packet.to_node, peer));
        }
        Some(packet)
    }

    /// Messages the lossy network dropped since the last call.
    pub(crate) fn take_losses(&self) -> Vec<Loss> {
        std::mem::take(&mut self.state.lock().losses)
    }

    /// Cuts the connections between `a` and `b` both ways.
    pub(crate) fn partition(&self, a: usize, b: usize) {
        let mut state = self.state.lock();
        state.cut.insert((a, b));
        state.cut.insert((b, a));
        let between =
            |p: &Packet| (p.from_node, p.to_node) == (a, b) || (p.from_node, p.to_node) == (b, a);
        state.queue.retain(|_, p| !between(p));
        let (address_a, address_b) = (state.addresses[a], state.addresses[b]);
        state.lost(a, address_b);
        state.lost(b, address_a);
    }

    /// Restores the connections between `a` and `b`.
    pub(crate) fn heal(&self, a: usize, b: usize) {
        let mut state = self.state.lock();
        state.cut.remove(&(a, b));
        state.cut.remove(&(b, a));
    }

    /// Restores every connection.
    pub(crate) fn heal_all(&self) {
        self.state.lock().cut.clear();
    }

    /// Takes `node` down: what is in flight to and from it is lost, and every node that is up
    /// learns it lost its connection to it.
    pub(crate) fn crash(&self, node: usize) {
        let mut state = self.state.lock();
        state.up[node] = false;
        state
            .queue
            .retain(|_, p| p.to_node != node && p.from_node != node);
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
        let mut state = self.state.lock();
        let reachable = state
            .addresses
            .iter()
            .position(|a| *a == to)
            .filter(|&n| state.up[n] && !state.cut.contains(&(from_node, n)));
        let Some(to_node) = reachable else {
            state.lost(from_node, to);
            return;
        };
        if let PacketKind::Message { from, to, name, .. } = &kind {
            let loss = state.config.loss;
            if loss > 0.0 && state.rng.f64() < loss {
                let (from, to, name) = (from.clone(), to.clone(), name.clone());
                state.losses.push(Loss { from, to, name });
                return;
            }
        }
        let (min, max) = state.config.latency.clone().into_inner();
        let spread = max.saturating_sub(min).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            state.rng.u64(0..=spread)
        };
        let mut at = state.now + min + Duration::from_nanos(jitter);
        if !state.config.reorder {
            let last = state.last.entry((from_node, to_node)).or_default();
            at = at.max(*last);
            *last = at;
        }
        state.push(
            at,
            Packet {
                to_node,
                from_node,
                kind,
            },
        );
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
            let at = self.now + self.config.detect;
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
}

impl Transport for Endpoint {
    fn send(&self, from: &Upid, to: &Upid, name: &str, body: Bytes) {
        let kind = PacketKind::Message {
            from: from.clone(),
            to: to.clone(),
            name: name.into(),
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
