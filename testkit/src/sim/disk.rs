//! What a node keeps across a crash.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// A node's durable store: the one thing that survives [`Sim::crash`](super::Sim::crash).
///
/// Each node has one, handed to its start function on every start; processes keep a clone and
/// write to it, and a restarted node reads back what was written before the crash. Everything
/// else a node had — its processes, their state, its queues — is lost. A write is durable at
/// once (there is no unsynced window to lose).
///
/// ```
/// use procession_testkit::sim::Sim;
///
/// let mut sim = Sim::new(1);
/// let node = sim.add_node("store", |_, disk| {
///     let boots = disk.get("boots").map_or(0, |b| b[0]);
///     disk.put("boots", vec![boots + 1]);
/// });
/// sim.crash(node);
/// sim.restart(node);
/// assert_eq!(sim.disk(node).get("boots").unwrap()[..], [2]);
/// ```
#[derive(Clone, Default)]
pub struct Disk {
    entries: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl Disk {
    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.lock().get(key).cloned()
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn put(&self, key: impl Into<String>, value: impl Into<Bytes>) {
        self.entries.lock().insert(key.into(), value.into());
    }

    /// Removes `key`; returns what was stored there.
    pub fn remove(&self, key: &str) -> Option<Bytes> {
        self.entries.lock().remove(key)
    }

    /// The keys stored, in order.
    pub fn keys(&self) -> Vec<String> {
        self.entries.lock().keys().cloned().collect()
    }
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries.lock().keys()).finish()
    }
}
