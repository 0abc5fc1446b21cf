//! The simulation seam: how a simulation drives deterministic runtimes one step at a time.
//!
//! A deterministic runtime ([`Builder::deterministic`](crate::Builder::deterministic)) runs
//! nothing by itself: `block_on` and `Clock::settle` drive it from the calling thread. A
//! simulation of several nodes needs finer control, to interleave the nodes and move one
//! virtual time for all of them: it takes each node's [`Driver`], asks how much is
//! [`runnable`](Driver::runnable), runs one [`step`](Driver::step) at a time on the node it
//! picks, and when no node can run, moves every node's clock (`Clock::update`) to the earliest
//! [`next_timer`](Driver::next_timer). The testkit's `Sim` is built on exactly this.
//!
//! When no node can run and a future the test awaits is still pending, the simulation is stuck,
//! and two reports say who waits on whom: [`pending_dispatches`](Driver::pending_dispatches),
//! every dispatch to a process of the runtime still waiting for its answer (who sent it, to
//! whom, which method, since when), and [`armed_timers`](Driver::armed_timers), every timer not
//! yet fired with the process it is armed for. Only a deterministic runtime keeps these records;
//! a threaded one pays a branch per dispatch and per timer, and a thread-local read per
//! [`Future::flatten`](crate::Future::flatten).
//!
//! ```
//! use procession::{dispatch, Process, Runtime};
//!
//! struct Counter(u32);
//! impl Process for Counter {}
//!
//! let runtime = Runtime::builder().deterministic(7).build().unwrap();
//! let driver = runtime.driver().expect("a deterministic runtime has a driver");
//! let counter = runtime.spawn(Counter(0));
//! let read = {
//!     let _entered = runtime.enter();
//!     dispatch(&counter, |c: &mut Counter| { c.0 += 1; c.0 })
//! };
//! let mut ran = Vec::new();
//! while let Some(name) = driver.step() {
//!     ran.push(name.to_string());
//! }
//! assert_eq!(read.get(), Some(1));
//! assert!(ran.iter().all(|name| name.starts_with("counter")));
//! ```

pub(crate) mod armed;
pub(crate) mod pending;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::context;
use crate::handle::Handle;

pub use self::armed::ArmedTimer;
pub use self::pending::PendingDispatch;

/// Runs a deterministic runtime one step at a time; see the [module docs](self).
#[derive(Clone)]
pub struct Driver {
    handle: Handle,
}

impl Driver {
    pub(crate) fn new(handle: Handle) -> Option<Driver> {
        handle.scheduler().as_deterministic()?;
        Some(Driver { handle })
    }

    fn scheduler(&self) -> &crate::scheduler::Deterministic {
        self.handle
            .scheduler()
            .as_deterministic()
            .expect("a driver exists only for a deterministic runtime")
    }

    /// How many runnables (process visits and async task polls) wait to run.
    pub fn runnable(&self) -> usize {
        self.scheduler().runnable()
    }

    /// Runs one runnable, chosen by the runtime's seed, for one event, with the runtime current
    /// on this thread; returns its name (a process id, or `task(n)` for an async task), or
    /// `None` if nothing was runnable. Timers are not fired here: see
    /// [`next_timer`](Self::next_timer).
    ///
    /// # Panics
    ///
    /// Panics if called from inside a runtime's handler (a simulation drives from outside).
    pub fn step(&self) -> Option<Arc<str>> {
        assert!(
            !context::inside(self.handle.id),
            "Driver::step called from inside the runtime it drives"
        );
        let _entered = context::enter(self.handle.clone());
        self.scheduler().step()
    }

    /// The deadline of the earliest armed timer, on this runtime's clock.
    pub fn next_timer(&self) -> Option<Instant> {
        self.handle.timers().next_deadline()
    }

    /// Every dispatch to a process of this runtime whose answer has not come yet, in the order
    /// the dispatches were made (the same on every run of a seed).
    ///
    /// A dispatch shows from the call until its future completes, however it ends: while it
    /// waits in the mailbox (or for room in a bounded one), while its closure runs, and, when the
    /// closure returns a future that the caller flattens at once ([`Future::flatten`] right
    /// after the dispatch, as the `#[process]` handles do), until that future completes. A
    /// dispatch's future flattened later, or not at all, shows until its closure has run.
    /// Casts are not shown: nobody waits on them. Never fails.
    ///
    /// [`Future::flatten`]: crate::Future::flatten
    pub fn pending_dispatches(&self) -> Vec<PendingDispatch> {
        self.scheduler().dispatches().list()
    }

    /// Every timer armed on this runtime that has neither fired nor been cancelled, in the order
    /// they will fire (by deadline, then creation), with the process each is armed for. Never
    /// fails.
    pub fn armed_timers(&self) -> Vec<ArmedTimer> {
        self.handle.timers().armed_list()
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("runtime", &self.handle.name)
            .field("runnable", &self.runnable())
            .finish()
    }
}
