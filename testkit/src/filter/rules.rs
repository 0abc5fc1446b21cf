//! Engine: the one [`Filter`] the testkit installs on a runtime, holding every rule the test's
//! helpers add, and the registry that finds it again.
//!
//! # Protocol
//!
//! - `REGISTRY` lists (weakly) every composite filter installed. A helper takes it to look up
//!   the runtime's installed filter and, if that is not one of ours, to install a new one; the
//!   lock is held across both steps, so two helpers racing on one runtime install one filter.
//!   A filter found installed that is not the testkit's (the test's own) is kept as `inner` and
//!   asked after the rules, so the testkit never silently replaces it.
//! - `Rules::state` guards the rule list. [`Filter::filter`] holds it only to match the event:
//!   it records violations for `Forbid` rules, notes whether a standing rule drops the event,
//!   and removes the oldest matching one-shot rule. It releases the lock before completing
//!   that rule's future, because completing runs callbacks, and a callback may add a rule (the
//!   lock again) or send a message (the filter again, on this thread).
//! - A one-shot rule is removed under the lock by exactly one party: the event that fires it,
//!   or the discard request that withdraws it (see [`Rules::once`]). Whoever removes it
//!   completes its promise, so the future completes exactly once.
//! - Body tests ([`BodyTest`]) are user code, which may decode, send (the filter again) or add
//!   a rule, so they run with the lock released: a first pass under it collects the tests of
//!   the rules the event otherwise matches, the tests run, and the matching pass counts a rule
//!   with a body test only if its test passed. A rule added between the passes does not see the
//!   event (it came after it); one removed or fired by another event between them is skipped.
//! - Violations of `Forbid` rules sit behind their own leaf lock, shared with the guard that
//!   reports them; nothing else is locked while it is held.

use std::fmt::Write as _;
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use procession::{
    EventView, Failure, Filter, Future, MessageBody, Promise, Runtime, Upid, Verdict,
};

/// Every composite filter the testkit installed, by weak reference.
static REGISTRY: Mutex<Vec<Weak<Rules>>> = Mutex::new(Vec::new());

/// Locks `mutex`, ignoring poison: the state behind each of these locks is consistent between
/// statements, and a test that panicked elsewhere must still get clear reports here.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The composite filter of one runtime.
pub(crate) struct Rules {
    /// A filter installed before ours, asked after the rules let an event through.
    inner: Option<Arc<dyn Filter>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// In the order they were added: the oldest matching one-shot rule fires first.
    rules: Vec<Rule>,
}

struct Rule {
    id: u64,
    pattern: Pattern,
    action: Action,
}

/// A test on a message's body, its type erased: false for a body that is not of its type.
pub(crate) type BodyTest = Arc<dyn Fn(&MessageBody<'_>) -> bool + Send + Sync>;

/// Which events a rule is about; `None` matches any address, or any body.
pub(crate) enum Pattern {
    Message {
        name: String,
        from: Option<Upid>,
        to: Option<Upid>,
        body: Option<BodyTest>,
    },
    Dispatch {
        to: Upid,
        method: String,
    },
    Exited {
        from: Upid,
        to: Upid,
    },
}

impl Pattern {
    /// Whether `event` matches all but the body test, if there is one.
    fn matches(&self, event: &EventView<'_>) -> bool {
        let address = |want: &Option<Upid>, got: &Upid| want.as_ref().is_none_or(|w| w == got);
        match (self, event) {
            (
                Pattern::Message { name, from, to, .. },
                EventView::Message {
                    from: f,
                    to: t,
                    name: n,
                    ..
                },
            ) => name == n && address(from, f) && address(to, t),
            (Pattern::Dispatch { to, method }, EventView::Dispatch { to: t, method: m }) => {
                to == *t && *m == Some(method.as_str())
            }
            (Pattern::Exited { from, to }, EventView::Exited { to: t, upid, .. }) => {
                from == *upid && to == *t
            }
            _ => false,
        }
    }

    fn body_test(&self) -> Option<&BodyTest> {
        match self {
            Pattern::Message { body, .. } => body.as_ref(),
            _ => None,
        }
    }
}

/// What a matching rule does.
enum Action {
    /// Fires once, on the first match, then retires; drops that event if `drop`.
    Once { drop: bool, fire: Box<dyn Fire> },
    /// Drops every match while the rule lives.
    DropEvery,
    /// Lets every match through and records it as a violation.
    Forbid(Arc<Violations>),
}

/// The completion of a one-shot rule's future.
trait Fire: Send {
    /// Completes the future from the matched event.
    fn fire(self: Box<Self>, event: &EventView<'_>);
    /// Ends the future discarded: the rule was withdrawn before any match.
    fn withdraw(self: Box<Self>);
}

struct Completion<T: Send + Sync + 'static, F> {
    promise: Promise<T>,
    make: F,
}

impl<T, F> Fire for Completion<T, F>
where
    T: Send + Sync + 'static,
    F: FnOnce(&EventView<'_>) -> Result<T, Failure> + Send,
{
    fn fire(self: Box<Self>, event: &EventView<'_>) {
        let Completion { promise, make } = *self;
        match make(event) {
            Ok(value) => promise.set(value),
            Err(failure) => promise.fail(failure),
        }
    }

    fn withdraw(self: Box<Self>) {
        self.promise.discard();
    }
}

/// The events a `Forbid` rule saw: the first, described, and how many.
#[derive(Default)]
pub(crate) struct Violations(Mutex<(Option<String>, usize)>);

impl Violations {
    fn record(&self, event: &EventView<'_>) {
        let mut seen = lock(&self.0);
        seen.1 += 1;
        if seen.0.is_none() {
            seen.0 = Some(describe(event));
        }
    }

    /// The first violation and the count of all of them, if any.
    pub(crate) fn first(&self) -> Option<(String, usize)> {
        let seen = lock(&self.0);
        seen.0.clone().map(|first| (first, seen.1))
    }
}

/// An event as a failure message names it.
fn describe(event: &EventView<'_>) -> String {
    let mut text = String::new();
    let _ = match event {
        EventView::Message { from, to, name, .. } => {
            write!(text, "message `{name}` from {from} to {to}")
        }
        EventView::Dispatch { to, method } => match method {
            Some(method) => write!(text, "dispatch of `{method}` to {to}"),
            None => write!(text, "dispatch to {to}"),
        },
        EventView::Exited { to, upid, reason } => {
            write!(text, "exited notice to {to}: {upid} {reason}")
        }
        _ => write!(text, "an event"),
    };
    text
}

impl Rules {
    /// The runtime's composite filter, installed now if the runtime has none of ours.
    pub(crate) fn of(runtime: &Runtime) -> Arc<Rules> {
        let mut registry = lock(&REGISTRY);
        registry.retain(|rules| rules.strong_count() > 0);
        let installed = runtime.filter();
        if let Some(installed) = &installed {
            // Compared without upgrading the others: an upgrade could leave this thread with
            // another runtime's last handle, dropping its rules here, under the registry's lock.
            let ours = registry
                .iter()
                .find(|rules| ptr::addr_eq(rules.as_ptr(), Arc::as_ptr(installed)))
                .and_then(Weak::upgrade);
            if let Some(rules) = ours {
                return rules;
            }
        }
        let rules = Arc::new(Rules {
            inner: installed,
            state: Mutex::new(State::default()),
        });
        runtime.set_filter(Some(rules.clone()));
        registry.push(Arc::downgrade(&rules));
        rules
    }

    fn reserve_id(&self) -> u64 {
        let mut state = lock(&self.state);
        state.next_id += 1;
        state.next_id
    }

    fn push(&self, id: u64, pattern: Pattern, action: Action) {
        lock(&self.state).rules.push(Rule {
            id,
            pattern,
            action,
        });
    }

    /// Adds a one-shot rule: the first event matching `pattern` completes the returned future
    /// with what `make` builds from it (and is dropped if `drop`). A discard request on the
    /// future withdraws the rule and ends the future discarded.
    pub(crate) fn once<T, F>(self: &Arc<Self>, pattern: Pattern, drop: bool, make: F) -> Future<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce(&EventView<'_>) -> Result<T, Failure> + Send + 'static,
    {
        let id = self.reserve_id();
        let promise = Promise::new();
        let future = promise.future();
        // Weak: the rule owns the promise, which owns this callback.
        let rules = Arc::downgrade(self);
        promise.on_discard(move || {
            let withdrawn = rules.upgrade().and_then(|rules| rules.remove(id));
            if let Some(Action::Once { fire, .. }) = withdrawn {
                fire.withdraw();
            }
        });
        let fire = Box::new(Completion { promise, make });
        self.push(id, pattern, Action::Once { drop, fire });
        future
    }

    /// Adds a rule that drops every match until [`remove`](Self::remove)d; returns its id.
    pub(crate) fn drop_every(&self, pattern: Pattern) -> u64 {
        let id = self.reserve_id();
        self.push(id, pattern, Action::DropEvery);
        id
    }

    /// Adds a rule that records every match in `violations` until removed; returns its id.
    pub(crate) fn forbid(&self, pattern: Pattern, violations: Arc<Violations>) -> u64 {
        let id = self.reserve_id();
        self.push(id, pattern, Action::Forbid(violations));
        id
    }

    /// Removes rule `id` if it is still there (a one-shot rule that fired is not).
    fn remove(&self, id: u64) -> Option<Action> {
        let mut state = lock(&self.state);
        let index = state.rules.iter().position(|rule| rule.id == id)?;
        Some(state.rules.remove(index).action)
    }

    /// Removes a standing rule (a guard's).
    pub(crate) fn retire(&self, id: u64) {
        drop(self.remove(id));
    }

    /// The ids of the rules whose body test `event` passes, among those it otherwise matches;
    /// the tests run with the lock released.
    fn passed_body_tests(&self, event: &EventView<'_>) -> Vec<u64> {
        let EventView::Message { body, .. } = event else {
            return Vec::new();
        };
        let tests: Vec<(u64, BodyTest)> = lock(&self.state)
            .rules
            .iter()
            .filter(|rule| rule.pattern.matches(event))
            .filter_map(|rule| Some((rule.id, rule.pattern.body_test()?.clone())))
            .collect();
        tests
            .into_iter()
            .filter(|(_, test)| test(body))
            .map(|(id, _)| id)
            .collect()
    }
}

impl Filter for Rules {
    fn filter(&self, event: &EventView<'_>) -> Verdict {
        let passed = self.passed_body_tests(event);
        let (fire, mut drop) = {
            let mut state = lock(&self.state);
            let mut drop = false;
            let mut first_once = None;
            for (index, rule) in state.rules.iter().enumerate() {
                if !rule.pattern.matches(event) {
                    continue;
                }
                if rule.pattern.body_test().is_some() && !passed.contains(&rule.id) {
                    continue;
                }
                match &rule.action {
                    Action::Once { .. } => {
                        first_once.get_or_insert(index);
                    }
                    Action::DropEvery => drop = true,
                    Action::Forbid(violations) => violations.record(event),
                }
            }
            let fire = first_once.map(|index| state.rules.remove(index).action);
            (fire, drop)
        };
        if let Some(Action::Once { drop: drops, fire }) = fire {
            drop |= drops;
            fire.fire(event);
        }
        match (&self.inner, drop) {
            (_, true) => Verdict::Drop,
            (Some(inner), false) => inner.filter(event),
            (None, false) => Verdict::Deliver,
        }
    }
}
