//! What the net tests share: a node on loopback, a metric reader, and a process that links to a
//! target and reports its `exited` notices.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::mpsc;
use std::time::Duration;

use procession::metrics::Value;
use procession::{link, Context, ExitReason, Process, Runtime, Upid};
use procession_net::Net;

/// How long a test waits for something that should happen at once: a guard against a hang,
/// not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A runtime with a transport on a loopback port.
pub fn node() -> (Runtime, Net) {
    let runtime = Runtime::new();
    let net = Net::start(&runtime).unwrap();
    (runtime, net)
}

/// The value of counter `name` in the runtime's metrics.
pub fn counter(runtime: &Runtime, name: &str) -> u64 {
    match runtime.metrics().snapshot().get(name) {
        Some(Value::Counter(n)) => *n,
        other => panic!("{name}: {other:?}"),
    }
}

/// Links to `target` at start and reports every `exited` notice.
struct Watcher {
    target: Upid,
    notices: mpsc::Sender<(Upid, ExitReason)>,
}

impl Process for Watcher {
    fn initialize(&mut self, _ctx: &mut Context<'_, Self>) {
        link(&self.target);
    }

    fn exited(&mut self, _ctx: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        let _ = self.notices.send((upid.clone(), reason.clone()));
    }
}

/// Spawns a process on `runtime` linked to `target`; the receiver gets its `exited` notices.
pub fn watch(runtime: &Runtime, target: &Upid) -> mpsc::Receiver<(Upid, ExitReason)> {
    let (notices, received) = mpsc::channel();
    runtime.spawn(Watcher {
        target: target.clone(),
        notices,
    });
    received
}
