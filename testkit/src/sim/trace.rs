//! What a simulation did, in order: the evidence that a seed replays the same run.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use procession::Upid;

use super::NodeId;

/// One thing that happened in a simulation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A node ran one event of a process, or polled an async task (`task(n)`).
    Run {
        /// The node.
        node: NodeId,
        /// The process id or task name.
        name: Arc<str>,
    },
    /// The network delivered a message.
    Message {
        /// The sender.
        from: Upid,
        /// The receiver.
        to: Upid,
        /// The message name.
        name: Arc<str>,
    },
    /// The lossy network dropped a message.
    Dropped {
        /// The sender.
        from: Upid,
        /// The receiver.
        to: Upid,
        /// The message name.
        name: Arc<str>,
    },
    /// The network delivered a link request to `to`'s node.
    Link {
        /// The linking process.
        linker: Upid,
        /// The process linked to.
        to: Upid,
    },
    /// The network told `linker`'s node that `upid` ended.
    Exited {
        /// The process told.
        linker: Upid,
        /// The process that ended.
        upid: Upid,
    },
    /// `node` found its connection to the node at `peer` broken: its linkers of processes
    /// there were told `Lost`.
    Lost {
        /// The node that noticed.
        node: NodeId,
        /// The unreachable node's address.
        peer: SocketAddr,
    },
    /// Virtual time moved to this point (since the simulation started).
    Time(Duration),
    /// The links between two nodes were cut, both ways.
    Partition(NodeId, NodeId),
    /// The links between two nodes were restored.
    Heal(NodeId, NodeId),
    /// A node crashed.
    Crash(NodeId),
    /// A crashed node started again.
    Restart(NodeId),
}

/// Every event of a run in order, and a hash of them: two runs of one seed give equal traces.
#[derive(Clone, Debug)]
pub struct Trace {
    events: Vec<Event>,
    hash: Fnv,
}

impl Trace {
    pub(crate) fn new() -> Self {
        Trace {
            events: Vec::new(),
            hash: Fnv::default(),
        }
    }

    pub(crate) fn record(&mut self, event: Event) {
        event.hash(&mut self.hash);
        self.events.push(event);
    }

    /// The events so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// A hash of every event so far, in order (FNV-1a, the same in every run of the seed).
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// How many events happened.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing happened yet.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// FNV-1a: `std`'s default hasher is seeded per process, which a trace must not be.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
