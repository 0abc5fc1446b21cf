//! Engine: the runtime's time source and its timer queue.
//!
//! # Protocol
//!
//! One mutex guards the time source (real, or paused at a frozen instant) and the queue of timers
//! ordered by `(deadline, sequence number)`, so timers with the same deadline fire in creation
//! order. Callbacks never run under the lock: a firing pops one due timer, unlocks, runs it, and
//! locks again, so a callback may schedule or cancel timers.
//!
//! Who fires timers:
//! - real time, threaded runtime: the driver thread ([`Timers::drive`]) sleeps until the earliest
//!   deadline (or until a new earliest timer, a pause, a resume or shutdown wakes it);
//! - paused time: only [`Timers::advance`] and [`Timers::fire_due`] (called by `Clock::advance`
//!   and `Clock::settle`, or by the deterministic scheduler when it jumps time); the driver
//!   sleeps while the clock is paused.
//!
//! Each timer may carry its owner, the process it is armed for, which only a deterministic
//! runtime records (see `driver::armed`). It rides in the queue entry, so it leaves exactly when
//! the timer fires, is cancelled or is dropped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::driver::ArmedTimer;
use crate::pid::Upid;
use crate::quiesce::Quiesce;

/// A timer's action.
pub(crate) type TimerCallback = Box<dyn FnOnce() + Send>;

/// The process a timer is armed for, boxed so a timer without one costs a word.
pub(crate) type Owner = Option<Box<Upid>>;

struct Armed {
    callback: TimerCallback,
    owner: Owner,
}

/// Identifies one scheduled timer, for cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline: Instant,
    seq: u64,
}

pub(crate) struct Timers {
    state: Mutex<State>,
    wake_driver: Condvar,
}

struct State {
    /// The frozen time while paused.
    paused: Option<Instant>,
    /// Added to the monotonic clock in real mode, so time never runs backwards after a resume.
    offset: Duration,
    queue: BTreeMap<TimerKey, Armed>,
    next_seq: u64,
    shutdown: bool,
}

impl State {
    fn now(&self) -> Instant {
        self.paused.unwrap_or_else(|| Instant::now() + self.offset)
    }

    fn first_due(&self) -> bool {
        let now = self.now();
        self.queue
            .first_key_value()
            .is_some_and(|(key, _)| key.deadline <= now)
    }

    fn pop_due(&mut self) -> Option<TimerCallback> {
        let now = self.now();
        let entry = self.queue.first_entry()?;
        (entry.key().deadline <= now).then(|| entry.remove().callback)
    }
}

impl Timers {
    /// Timers on a clock paused at `paused`, or following real time for `None`.
    pub(crate) fn new(paused: Option<Instant>) -> Self {
        Timers {
            state: Mutex::new(State {
                paused,
                offset: Duration::ZERO,
                queue: BTreeMap::new(),
                next_seq: 0,
                shutdown: false,
            }),
            wake_driver: Condvar::new(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.state.lock().now()
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.state.lock().paused.is_some()
    }

    /// Schedules `callback` at `deadline` of this clock, armed for `owner`.
    pub(crate) fn schedule_at(
        &self,
        deadline: Instant,
        callback: TimerCallback,
        owner: Owner,
    ) -> TimerKey {
        let mut state = self.state.lock();
        let key = TimerKey {
            deadline,
            seq: state.next_seq,
        };
        state.next_seq += 1;
        if state.shutdown {
            // It would never fire: drop its action now, so what it owns is released.
            drop(state);
            drop(callback);
            return key;
        }
        let earliest = state
            .queue
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        state.queue.insert(key, Armed { callback, owner });
        drop(state);
        if earliest {
            self.wake_driver.notify_all();
        }
        key
    }

    /// Schedules `callback` after `duration` of this clock, armed for `owner`.
    pub(crate) fn schedule_after(
        &self,
        duration: Duration,
        callback: TimerCallback,
        owner: Owner,
    ) -> TimerKey {
        let deadline = later(self.now(), duration);
        self.schedule_at(deadline, callback, owner)
    }

    /// Removes a timer; false if it already fired or was cancelled.
    pub(crate) fn cancel(&self, key: TimerKey) -> bool {
        let removed = self.state.lock().queue.remove(&key);
        removed.is_some()
    }

    pub(crate) fn pause(&self) {
        let mut state = self.state.lock();
        if state.paused.is_none() {
            state.paused = Some(state.now());
        }
    }

    pub(crate) fn resume(&self) {
        let mut state = self.state.lock();
        if let Some(frozen) = state.paused.take() {
            let real = Instant::now();
            state.offset = state.offset.max(frozen.saturating_duration_since(real));
        }
        drop(state);
        self.wake_driver.notify_all();
    }

    /// Moves paused time to `target` if it is later; false (and nothing moves) if not paused.
    ///
    /// Time steps through each due deadline in turn: the clock reads exactly the timer's deadline
    /// while its action runs, and a timer that re-arms itself within the span fires again, as it
    /// would in real time.
    pub(crate) fn advance_to(&self, target: Instant) -> bool {
        loop {
            let mut state = self.state.lock();
            let Some(frozen) = state.paused else {
                return false;
            };
            let next = state
                .queue
                .first_entry()
                .filter(|e| e.key().deadline <= target);
            let Some(entry) = next else {
                state.paused = Some(frozen.max(target));
                return true;
            };
            let deadline = entry.key().deadline;
            let callback = entry.remove().callback;
            state.paused = Some(frozen.max(deadline));
            drop(state);
            callback();
        }
    }

    /// Fires every timer due now, in deadline order; returns how many fired.
    pub(crate) fn fire_due(&self) -> usize {
        let mut fired = 0;
        loop {
            let Some(callback) = self.state.lock().pop_due() else {
                return fired;
            };
            callback();
            fired += 1;
        }
    }

    /// Whether a timer is due now.
    pub(crate) fn has_due(&self) -> bool {
        let state = self.state.lock();
        let now = state.now();
        state
            .queue
            .first_key_value()
            .is_some_and(|(key, _)| key.deadline <= now)
    }

    /// The earliest deadline of an armed timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.state
            .lock()
            .queue
            .first_key_value()
            .map(|(key, _)| key.deadline)
    }

    /// Every armed timer with its owner, in firing order.
    pub(crate) fn armed_list(&self) -> Vec<ArmedTimer> {
        self.state
            .lock()
            .queue
            .iter()
            .map(|(key, armed)| ArmedTimer {
                deadline: key.deadline,
                owner: armed.owner.as_deref().cloned(),
            })
            .collect()
    }

    /// How many timers are armed.
    pub(crate) fn armed(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// The driver loop of a threaded runtime: fires timers in real time until shutdown. Each
    /// firing is a unit of work for settle, started before the timer leaves the queue (under the
    /// lock), so settle sees it either due or running.
    pub(crate) fn drive(&self, quiesce: &Quiesce) {
        let mut state = self.state.lock();
        loop {
            if state.shutdown {
                return;
            }
            if state.paused.is_some() {
                self.wake_driver.wait(&mut state);
                continue;
            }
            if state.first_due() {
                quiesce.started();
                let callback = state.pop_due().expect("checked due under the lock");
                drop(state);
                callback();
                quiesce.finished();
                state = self.state.lock();
                continue;
            }
            match state.queue.first_key_value() {
                Some((key, _)) => {
                    let real_deadline = key
                        .deadline
                        .checked_sub(state.offset)
                        .unwrap_or(key.deadline);
                    self.wake_driver.wait_until(&mut state, real_deadline);
                }
                None => self.wake_driver.wait(&mut state),
            }
        }
    }

    /// Stops the driver loop and drops every armed timer (their callbacks never run).
    pub(crate) fn shutdown(&self) {
        let dropped = {
            let mut state = self.state.lock();
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        self.wake_driver.notify_all();
        drop(dropped);
    }
}

/// `at + by`, or a century after `at` when that is past what an `Instant` can hold: so that
/// `Duration::MAX`, the usual way to say "no timeout", means a deadline that never comes instead
/// of a panic.
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    at.checked_add(by)
        .or_else(|| at.checked_add(CENTURY))
        .unwrap_or(at)
}
