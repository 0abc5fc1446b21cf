//! What a simulation did, in order: the evidence that a seed replays the same run.

use std::fmt;
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
    /// The connections between two nodes were cut, both ways.
    Partition(NodeId, NodeId),
    /// The connection from the first node to the second was cut (a one-way partition).
    Cut(NodeId, NodeId),
    /// The connections between two nodes were restored, both ways.
    Heal(NodeId, NodeId),
    /// A fault phase undid the last cut from the first node to the second: that connection
    /// works again. (Undoing a cut while another still holds the connection records nothing.)
    Restored(NodeId, NodeId),
    /// A node crashed.
    Crash(NodeId),
    /// A crashed node started again.
    Restart(NodeId),
    /// A node stopped running (its clock goes on).
    Pause(NodeId),
    /// A paused node runs again.
    Resume(NodeId),
    /// A node's clock was set off the virtual clock.
    Clock {
        /// The node.
        node: NodeId,
        /// How far ahead of the virtual clock it reads.
        offset: Duration,
        /// How much faster (or, negative, slower) it runs, in parts per million.
        drift_ppm: i32,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Run { node, name } => write!(f, "{node} ran {name}"),
            Event::Message { from, to, name } => {
                write!(f, "message {name} from {from} delivered to {to}")
            }
            Event::Dropped { from, to, name } => {
                write!(f, "message {name} from {from} to {to} lost")
            }
            Event::Link { linker, to } => write!(f, "link from {linker} delivered to {to}"),
            Event::Exited { linker, upid } => write!(f, "exit of {upid} delivered to {linker}"),
            Event::Lost { node, peer } => write!(f, "{node} lost its connection to {peer}"),
            Event::Time(at) => write!(f, "time moved to {at:?}"),
            Event::Partition(a, b) => write!(f, "partition between {a} and {b}"),
            Event::Cut(a, b) => write!(f, "one-way cut from {a} to {b}"),
            Event::Heal(a, b) => write!(f, "{a} and {b} healed"),
            Event::Restored(a, b) => write!(f, "connection from {a} to {b} restored"),
            Event::Crash(node) => write!(f, "{node} crashed"),
            Event::Restart(node) => write!(f, "{node} restarted"),
            Event::Pause(node) => write!(f, "{node} paused"),
            Event::Resume(node) => write!(f, "{node} resumed"),
            Event::Clock {
                node,
                offset,
                drift_ppm,
            } => {
                write!(
                    f,
                    "{node}'s clock set {offset:?} ahead, drifting {drift_ppm} ppm"
                )
            }
        }
    }
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
