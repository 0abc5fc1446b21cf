//! Supervisors: restart crashed children by a strategy, keeping their addresses.
//!
//! A [`Supervisor`] is a process whose children are started with [`supervise`] from a factory.
//! When a child *crashes* (a handler panicked), the supervisor restarts it — and, by its
//! [`Strategy`], some of its siblings — with fresh state from the factory, **at the same
//! address**: `Pid`s and `Upid`s held elsewhere stay valid. Dispatches queued to the crashed
//! instance end abandoned; later ones reach the new instance. A child that ends normally (it was
//! terminated) is not restarted.
//!
//! ```
//! use procession::{dispatch, supervise, Process, Runtime, Strategy, Supervisor};
//!
//! #[derive(Default)]
//! struct Counter { count: u64 }
//! impl Process for Counter {}
//!
//! let runtime = Runtime::new();
//! let clock = runtime.clock();
//! clock.pause();
//! let supervisor = runtime.spawn(Supervisor::new(Strategy::OneForOne));
//! let counter = runtime.block_on(supervise(&supervisor, Counter::default)).unwrap();
//! runtime.block_on(dispatch(&counter, |c: &mut Counter| c.count += 1)).unwrap();
//! let crash = dispatch(&counter, |_: &mut Counter| -> u64 { panic!("bug") });
//! assert!(runtime.block_on(crash).unwrap_err().is_abandoned());
//! clock.settle(); // the supervisor has restarted it
//! let count = runtime.block_on(dispatch(&counter, |c: &mut Counter| c.count)).unwrap();
//! assert_eq!(count, 0, "the same Pid reaches a fresh instance");
//! ```
//!
//! # Restart intensity
//!
//! At most `restarts` restarts within `window` of the runtime clock (default: 3 in 5 s). One
//! more crash in the window and the supervisor gives up: it fails (ends as panicked, with
//! "restart intensity exceeded"), ending its children first, so the failure escalates to
//! whoever links to, monitors or supervises it.
//!
//! # Contract
//!
//! Restarts happen in the supervisor's own events, so they follow the order of the crashes.
//! Strategies that restart siblings end them first, newest first (each with its subtree), then
//! start the affected children again in their original order. Everything runs on the runtime
//! clock and works in the paused clock and the deterministic mode.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::context;
use crate::dispatch::{cast, dispatch};
use crate::event::ExitReason;
use crate::future::{Future, Promise};
use crate::pid::{Pid, Upid};
use crate::process::cell::{end_newest_first, AnyCell, ProcessCell};
use crate::process::{Context, Process};
use crate::spawn::spawn_child;

/// Which children a supervisor restarts when one crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the crashed child.
    OneForOne,
    /// Every child: the others are ended first, then all start again.
    OneForAll,
    /// The crashed child and the ones started after it.
    RestForOne,
}

/// A process that restarts its crashed children; see the [module docs](self).
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: u32,
    window: Duration,
    restarts: VecDeque<Instant>,
    children: Vec<Box<dyn Supervised>>,
    /// Children ended for a restart that has not happened yet.
    pending: Vec<Upid>,
    me: Option<Pid<Supervisor>>,
}

impl Supervisor {
    /// A supervisor with `strategy` and the default intensity (3 restarts in 5 s).
    pub fn new(strategy: Strategy) -> Self {
        Supervisor {
            strategy,
            max_restarts: 3,
            window: Duration::from_secs(5),
            restarts: VecDeque::new(),
            children: Vec::new(),
            pending: Vec::new(),
            me: None,
        }
    }

    /// Allows at most `restarts` restarts within `window` of the runtime clock.
    pub fn intensity(mut self, restarts: u32, window: Duration) -> Self {
        self.max_restarts = restarts;
        self.window = window;
        self
    }

    /// Counts a restart; false if it is one too many for the window.
    fn allow_restart(&mut self) -> bool {
        let now = Clock::current().now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.max_restarts as usize
    }

    fn crashed(&mut self, index: usize, reason: &ExitReason) {
        let name = self.children[index].upid();
        tracing::warn!(child = %name, %reason, strategy = ?self.strategy, "supervised child crashed");
        if !self.allow_restart() {
            panic!(
                "restart intensity exceeded: more than {} restarts in {:?} (last: {name}, {reason})",
                self.max_restarts, self.window
            );
        }
        let affected: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![index],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (index..self.children.len()).collect(),
        };
        // Siblings still running are ended (newest first) and restarted; siblings that had
        // already ended on their own stay ended.
        let running: Vec<usize> = affected
            .into_iter()
            .filter(|&i| i == index || !self.children[i].cell().has_exited())
            .collect();
        let siblings: Vec<Arc<dyn AnyCell>> = running
            .iter()
            .filter(|&&i| i != index)
            .map(|&i| self.children[i].cell())
            .collect();
        let restart: Vec<Upid> = running.iter().map(|&i| self.children[i].upid()).collect();
        self.pending.extend(restart.iter().cloned());
        let me = self.me.clone().expect("set in initialize");
        // The crashed child may still be ending (its notice comes before its end is complete):
        // the restarts wait for it too, as a restart needs the old instance gone.
        let crashed = self.children[index].cell().wait();
        end_newest_first(
            siblings,
            Box::new(move || {
                crashed.when_complete(move |_| {
                    cast(&me, move |supervisor: &mut Supervisor| {
                        supervisor.restart(restart)
                    });
                });
            }),
        );
    }

    /// Restarts the children `upids` one at a time, in order: each next one starts once the one
    /// before has run `initialize` (as a supervisor starts its children at first). A child that
    /// is running again (an overlapping crash restarted it already) is skipped.
    fn restart(&mut self, upids: Vec<Upid>) {
        let Some((first, rest)) = upids.split_first() else {
            return;
        };
        if let Some(at) = self.pending.iter().position(|u| u == first) {
            self.pending.swap_remove(at);
        }
        let me = self.me.clone().expect("set in initialize");
        let rest = rest.to_vec();
        let next = move || {
            cast(&me, move |supervisor: &mut Supervisor| {
                supervisor.restart(rest)
            });
        };
        let child = self.children.iter().find(|c| c.upid() == *first);
        let Some(child) = child.filter(|c| c.cell().has_ended()) else {
            return next();
        };
        let parent = context::current_process().expect("restarts run in the supervisor");
        let Some(started) = child.restart(&parent) else {
            panic!("could not restart {}: its id was taken", child.upid());
        };
        started.when_complete(move |_| next());
    }
}

impl Process for Supervisor {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        let Some(index) = self.children.iter().position(|c| c.upid() == *upid) else {
            return;
        };
        if !self.children[index].cell().has_exited() {
            // A stale notice: the instance that ended was already replaced. (Not `has_ended`:
            // the notice can arrive while the instance that sent it is still ending.)
            return;
        }
        match reason {
            ExitReason::Panicked(_) => self.crashed(index, reason),
            // Ended on purpose and not about to be restarted: forget it.
            _ if !self.pending.contains(upid) => {
                self.children.remove(index);
            }
            _ => {}
        }
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("children", &self.children.len())
            .finish()
    }
}

/// Starts a child of `supervisor` with state from `factory`, which builds it again at every
/// restart. The future gives the child's `Pid`, valid across restarts.
///
/// # Errors
///
/// The future ends abandoned if the supervisor is gone or ends first.
///
/// # Discard
///
/// Discarding the future does not stop the child from starting.
pub fn supervise<C, F>(supervisor: &Pid<Supervisor>, factory: F) -> Future<Pid<C>>
where
    C: Process,
    F: Fn() -> C + Send + 'static,
{
    let promise = Promise::new();
    let future = promise.future();
    dispatch(supervisor, move |supervisor: &mut Supervisor| {
        let pid = spawn_child(factory());
        supervisor.children.push(Box::new(Child {
            cell: pid.cell.clone(),
            factory: Box::new(factory),
        }));
        promise.set(pid);
    });
    future
}

/// A supervised child, whatever its type.
trait Supervised: Send {
    fn upid(&self) -> Upid;
    fn cell(&self) -> Arc<dyn AnyCell>;
    /// Brings it back with fresh state; false if it could not be.
    /// Brings it back with fresh state; the future completes once its `initialize` ran. `None`
    /// if it could not be brought back.
    fn restart(&self, parent: &Arc<dyn AnyCell>) -> Option<Future<()>>;
}

struct Child<C: Process> {
    cell: Arc<ProcessCell<C>>,
    factory: Box<dyn Fn() -> C + Send>,
}

impl<C: Process> Supervised for Child<C> {
    fn upid(&self) -> Upid {
        self.cell.upid()
    }

    fn cell(&self) -> Arc<dyn AnyCell> {
        self.cell.clone()
    }

    fn restart(&self, parent: &Arc<dyn AnyCell>) -> Option<Future<()>> {
        if !self.cell.reincarnate((self.factory)(), parent) {
            return None;
        }
        let pid = Pid {
            cell: self.cell.clone(),
        };
        Some(dispatch(&pid, |_: &mut C| ()))
    }
}
