//! What the guards of standing rules share: the rule's life, and the report of a rule that
//! forbids.

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Weak};

use procession::Runtime;

use super::rules::{Pattern, Rules, Violations};

/// A standing rule of one runtime, in force until this is dropped.
#[derive(Debug)]
pub(crate) struct Standing {
    /// Weak: a guard that outlives its runtime must not keep the runtime's rules alive.
    rules: Weak<Rules>,
    id: u64,
}

impl Standing {
    /// Adds a rule that drops every event `pattern` matches.
    pub(crate) fn drop_every(runtime: &Runtime, pattern: Pattern) -> Standing {
        let rules = Rules::of(runtime);
        let id = rules.drop_every(pattern);
        Standing {
            rules: Arc::downgrade(&rules),
            id,
        }
    }

    /// Removes the rule; later calls do nothing.
    fn end(&mut self) {
        if let Some(rules) = std::mem::take(&mut self.rules).upgrade() {
            rules.retire(self.id);
        }
    }
}

impl Drop for Standing {
    fn drop(&mut self) {
        self.end();
    }
}

/// A standing rule that lets the events it matches through and records them, and the failure
/// it reports for them.
pub(crate) struct Watch {
    rule: Standing,
    violations: Arc<Violations>,
    /// The helper and its pattern, as the failure names them.
    expectation: String,
    made_at: &'static Location<'static>,
}

impl Watch {
    /// Adds a rule that records every event `pattern` matches; `expectation` names it in the
    /// failure, with the caller's location.
    #[track_caller]
    pub(crate) fn forbid(runtime: &Runtime, pattern: Pattern, expectation: String) -> Watch {
        let rules = Rules::of(runtime);
        let violations = Arc::new(Violations::default());
        let id = rules.forbid(pattern, violations.clone());
        Watch {
            rule: Standing {
                rules: Arc::downgrade(&rules),
                id,
            },
            violations,
            expectation,
            made_at: Location::caller(),
        }
    }

    /// Panics, naming the first event recorded and counting the others, if there was one.
    pub(crate) fn check(&self) {
        if let Some((first, count)) = self.violations.first() {
            let more = match count {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            panic!(
                "{} made at {}: saw {first}{more}",
                self.expectation, self.made_at
            );
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Retired first, so nothing is recorded after the last check.
        self.rule.end();
        if !std::thread::panicking() {
            self.check();
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("expectation", &self.expectation)
            .field("made_at", &self.made_at)
            .finish()
    }
}
