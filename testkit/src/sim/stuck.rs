//! The stuck report: when nothing can run and an outcome is still pending, who waits on whom.

use super::Sim;

impl Sim {
    /// One line per thing still waiting: each dispatch whose future has not completed, with its
    /// caller and target; each paused node, with its armed timers and their owners; each timer
    /// armed on a node, with its owner (a stuck simulation has none on running nodes, so these
    /// are the paused ones').
    pub(super) fn waiting(&self) -> Vec<String> {
        let mut waiting = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let Some((_, driver)) = &node.runtime else {
                continue;
            };
            for pending in driver.pending_dispatches() {
                let caller = pending
                    .caller
                    .map_or_else(|| "the test".to_owned(), |c| c.to_string());
                let method = pending
                    .method
                    .map_or_else(|| "a dispatch".to_owned(), |m| format!("`{m}`"));
                let since = node.clock.global(self.epoch, pending.since);
                waiting.push(format!(
                    "{caller} waits on {method} to {} (node {index}, since {since:?})",
                    pending.target
                ));
            }
            if node.paused {
                waiting.push(format!(
                    "node {index} ({}) is paused with {} runnable: resume it",
                    node.name,
                    driver.runnable()
                ));
                for timer in driver.armed_timers() {
                    let owner = timer
                        .owner
                        .map_or_else(|| "no process".to_owned(), |o| o.to_string());
                    let at = node.clock.global(self.epoch, timer.deadline);
                    waiting.push(format!(
                        "  a timer of {owner} on the paused node {index}, due at {at:?}"
                    ));
                }
            }
        }
        waiting
    }
}
