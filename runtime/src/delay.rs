//! `delay`: dispatch after a duration of the runtime's clock.
//!
//! ```
//! use std::time::Duration;
//! use procession::{delay, dispatch, Process, Runtime};
//!
//! #[derive(Default)]
//! struct Alarm { rang: bool }
//! impl Process for Alarm {}
//!
//! let runtime = Runtime::new();
//! let clock = runtime.clock();
//! clock.pause();
//! let alarm = runtime.spawn(Alarm::default());
//! let _timer = delay(Duration::from_secs(60), &alarm, |a: &mut Alarm| a.rang = true);
//! clock.advance(Duration::from_secs(60));
//! clock.settle();
//! assert!(runtime.block_on(dispatch(&alarm, |a: &mut Alarm| a.rang)).unwrap());
//! ```
//!
//! # Contract
//!
//! The timer runs on the target's runtime clock, so a paused clock controls it. Once it fires the
//! closure is an ordinary dispatch (queued behind earlier events; dropped if the process is gone).
//! [`Timer::cancel`] before it fires guarantees the closure never runs.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::dispatch::dispatch;
use crate::driver::armed::timer_owner;
use crate::handle::Shared;
use crate::pid::Pid;
use crate::process::Process;
use crate::timer::TimerKey;

/// An armed timer; [`cancel`](Self::cancel) disarms it. Dropping it leaves it armed.
pub struct Timer {
    key: TimerKey,
    runtime: Weak<Shared>,
}

impl Timer {
    /// Disarms the timer; true if it had not fired yet (its action will never run).
    pub fn cancel(&self) -> bool {
        self.runtime
            .upgrade()
            .is_some_and(|handle| handle.timers().cancel(self.key))
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer").field("key", &self.key).finish()
    }
}

/// Dispatches `f` to `pid` after `duration` of the process's runtime clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use procession::{delay, Process, Runtime};
///
/// struct Idle;
/// impl Process for Idle {}
///
/// let runtime = Runtime::new();
/// let pid = runtime.spawn(Idle);
/// let timer = delay(Duration::from_secs(5), &pid, |_: &mut Idle| unreachable!());
/// assert!(timer.cancel());
/// assert!(!timer.cancel());
/// ```
pub fn delay<P, F>(duration: Duration, pid: &Pid<P>, f: F) -> Timer
where
    P: Process,
    F: FnOnce(&mut P) + Send + 'static,
{
    let handle = pid.cell.handle().clone();
    let target = pid.clone();
    let key = handle.timers().schedule_after(
        duration,
        Box::new(move || {
            dispatch(&target, f);
        }),
        timer_owner(&handle, || Some(pid.upid())),
    );
    Timer {
        key,
        runtime: Arc::downgrade(&handle),
    }
}
