//! Who armed each timer, for a stuck simulation's report ([`Driver::armed_timers`]).
//!
//! Only a deterministic runtime records an owner: working it out reads the running process and
//! builds its address, which a threaded runtime in production should not pay for every timer.
//! There the check is one branch and the timer carries `None`.
//!
//! [`Driver::armed_timers`]: super::Driver::armed_timers

use std::time::Instant;

use crate::handle::Handle;
use crate::pid::Upid;
use crate::timer::Owner;

/// A timer armed on a deterministic runtime and not yet fired or cancelled, as
/// [`Driver::armed_timers`](super::Driver::armed_timers) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArmedTimer {
    /// When it fires, on the runtime's clock.
    pub deadline: Instant,
    /// The process it is armed for: the target of a [`delay`](crate::delay), else the process
    /// whose handler armed it ([`after`](crate::after), [`Future::after`](crate::Future::after));
    /// `None` when armed from outside any process (a test's thread, a callback or another
    /// timer's action run outside a handler).
    pub owner: Option<Upid>,
}

/// The owner to record for a timer armed now on `handle`'s runtime: `owner()` on a
/// deterministic runtime, nothing (and `owner` not called) on a threaded one.
pub(crate) fn timer_owner(handle: &Handle, owner: impl FnOnce() -> Option<Upid>) -> Owner {
    handle.scheduler().as_deterministic()?;
    owner().map(Box::new)
}
