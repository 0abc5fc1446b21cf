//! Engine: the children a runtime started and has not reaped yet, so shutdown can kill them and
//! wait until every one is reaped.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// Live children by key, each with the channel its reaper listens on for kill requests.
#[derive(Default)]
pub(crate) struct Children {
    live: Mutex<Live>,
    reaped: Condvar,
}

#[derive(Default)]
struct Live {
    next_key: u64,
    by_key: HashMap<u64, (u32, UnboundedSender<()>)>,
    /// Shutdown is killing every child: one that registers now is killed as it does.
    closing: bool,
}

impl Children {
    /// Records a child started with OS id `pid`; its reaper calls [`reaped`](Self::reaped) with
    /// the key. Also says whether shutdown is killing every child: one started as it began (a
    /// status callback's replacement, say) is to be killed at once, by its starter, as its
    /// reaper may never run once the I/O driver stops.
    pub(crate) fn started(&self, pid: u32, kill: UnboundedSender<()>) -> (u64, bool) {
        let mut live = self.live.lock();
        let key = live.next_key;
        live.next_key += 1;
        live.by_key.insert(key, (pid, kill));
        (key, live.closing)
    }

    pub(crate) fn reaped(&self, key: u64) {
        self.live.lock().by_key.remove(&key);
        self.reaped.notify_all();
    }

    /// Asks every reaper to kill its child, and every child registered from now on, then waits
    /// until all are reaped or `deadline` passes; gives the OS ids still not reaped.
    pub(crate) fn kill_all(&self, deadline: Instant) -> Vec<u32> {
        let mut live = self.live.lock();
        live.closing = true;
        for (_, kill) in live.by_key.values() {
            let _ = kill.send(());
        }
        while !live.by_key.is_empty() {
            if self.reaped.wait_until(&mut live, deadline).timed_out() {
                break;
            }
        }
        live.by_key.values().map(|(pid, _)| *pid).collect()
    }
}
