//! `Clock`: the runtime's time, which a test can pause, move and settle.
//!
//! Every runtime has its own clock. Normally it follows the monotonic clock; paused, it stands
//! still until [`advance`](Clock::advance) moves it, and every timer the runtime owns — `after`,
//! `delay`, and the timeouts of everything built on them — fires exactly when its deadline is
//! reached, in deadline order. [`settle`](Clock::settle) then waits until the runtime has nothing
//! left to do, so a test can check the outcome without sleeping:
//!
//! ```
//! use std::time::Duration;
//! use procession::{Future, Promise, Runtime};
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let clock = runtime.clock();
//! clock.pause();
//! let reply = Promise::<&str>::new();
//! let answer = reply.future().after(Duration::from_secs(3600), |_| Future::ready("timed out"));
//! clock.advance(Duration::from_secs(3599));
//! clock.settle();
//! assert!(answer.is_pending());
//! clock.advance(Duration::from_secs(1)); // an hour-long timeout, tested in microseconds
//! assert_eq!(answer.get(), Some("timed out"));
//! ```
//!
//! # Departure from DESIGN.md
//!
//! DESIGN.md names both free functions (`Clock::pause()` on the current runtime) and
//! `runtime.clock()` offering every method. Rust cannot give one type an associated function and
//! a method with the same name, so `Clock` is a cheap handle: `runtime.clock()` or
//! [`Clock::current()`] inside handlers, and every operation is a method.
//!
//! # Contract
//!
//! [`settle`](Clock::settle) returns exactly when no process has a queued or running event, no
//! async task has been woken without being polled, no `run_blocking` job is running, and no
//! timer is due at the paused time. It cannot see a socket or a child process that has not
//! answered yet: await the future that completes when it answers, then settle. `tokio::time`
//! does not follow this clock; use procession's timers.

use std::fmt;
use std::time::{Duration, Instant};

use crate::context;
use crate::context::current_upid;
use crate::driver::armed::timer_owner;
use crate::future::{Future, Promise};
use crate::handle::Handle;

/// A handle to one runtime's clock: read it, pause it, move it, and settle the runtime.
#[derive(Clone)]
pub struct Clock {
    handle: Handle,
}

impl Clock {
    pub(crate) fn new(handle: Handle) -> Self {
        Clock { handle }
    }

    /// The current runtime's clock.
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current.
    pub fn current() -> Clock {
        Clock::new(context::expect_current("Clock::current"))
    }

    /// The runtime's time now (frozen while paused).
    pub fn now(&self) -> Instant {
        self.handle.timers().now()
    }

    /// Freezes the runtime's time; timers fire only when it is advanced. A no-op if paused.
    pub fn pause(&self) {
        self.handle.timers().pause();
    }

    /// Whether the clock is paused.
    pub fn is_paused(&self) -> bool {
        self.handle.timers().is_paused()
    }

    /// Returns to real time, never moving backwards: time resumes from the later of the paused
    /// time and the real time.
    pub fn resume(&self) {
        self.handle.timers().resume();
    }

    /// Moves paused time forward by `duration`, firing every timer that becomes due, in deadline
    /// order, before returning (their actions run here; the events they queue run on the
    /// workers, see [`settle`](Self::settle)). A duration past what the clock can count
    /// (`Duration::MAX`) moves it a century, firing every timer armed before.
    ///
    /// On a clock that is not paused this does nothing and logs a warning.
    pub fn advance(&self, duration: Duration) {
        let target = crate::timer::later(self.now(), duration);
        self.update(target);
    }

    /// Moves paused time to `instant` if it is later than now, firing timers as
    /// [`advance`](Self::advance) does.
    ///
    /// On a clock that is not paused this does nothing and logs a warning.
    pub fn update(&self, instant: Instant) {
        let _entered = context::enter(self.handle.clone());
        if !self.handle.timers().advance_to(instant) {
            tracing::warn!(runtime = %self.handle.name, "Clock::advance/update on a clock that is not paused; ignored");
        }
    }

    /// Waits until the runtime has nothing left to do at the paused time: no process has a
    /// queued or running event, no async task was woken and not yet polled, no `run_blocking`
    /// job runs, and no timer is due. It cannot see a socket or a child process that has not
    /// answered yet. In the deterministic mode it runs the scheduler itself.
    ///
    /// # Panics
    ///
    /// Panics if the clock is not paused, or if called from one of the runtime's workers or
    /// handlers (it would wait for itself).
    pub fn settle(&self) {
        assert!(
            self.is_paused(),
            "Clock::settle needs a paused clock (call clock.pause() first)"
        );
        assert!(
            !context::inside(self.handle.id),
            "Clock::settle called from inside the runtime it settles; it would wait for itself"
        );
        let _entered = context::enter(self.handle.clone());
        let timers = self.handle.timers();
        let quiesce = self.handle.quiesce();
        let mut idle_rounds = 0u32;
        loop {
            if let Some(scheduler) = self.handle.scheduler().as_deterministic() {
                if scheduler.step().is_some() {
                    continue;
                }
            }
            if timers.fire_due() > 0 {
                idle_rounds = 0;
                continue;
            }
            if quiesce.is_idle() && !timers.has_due() {
                return;
            }
            backoff(&mut idle_rounds);
        }
    }
}

/// Spin, then yield, then sleep briefly: settle polls an exact condition, and the work it waits
/// for runs on other threads.
fn backoff(rounds: &mut u32) {
    *rounds += 1;
    match *rounds {
        0..=64 => std::hint::spin_loop(),
        65..=128 => std::thread::yield_now(),
        _ => std::thread::sleep(Duration::from_micros(50)),
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("runtime", &self.handle.name)
            .field("paused", &self.is_paused())
            .finish()
    }
}

/// A future that becomes ready after `duration` of the current runtime's clock. A duration
/// past what the clock can count (`Duration::MAX`) is a century: in practice, never.
///
/// # Discard
///
/// Discarding it cancels the timer and ends it discarded.
///
/// # Panics
///
/// Panics if no runtime is current.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use procession::{after, Runtime};
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// runtime.clock().pause();
/// let timer = after(Duration::from_secs(10));
/// runtime.clock().advance(Duration::from_secs(10));
/// assert!(timer.is_ready());
/// ```
pub fn after(duration: Duration) -> Future<()> {
    let handle = context::expect_current("after");
    let promise = Promise::new();
    let future = promise.future();
    // Only the timer owns the promise: if the timer is dropped unfired (shutdown), the promise
    // goes with it and the future ends abandoned. The discard hook holds it weakly.
    let slot = std::sync::Arc::new(parking_lot::Mutex::new(Some(promise)));
    let on_discard = std::sync::Arc::downgrade(&slot);
    let key = handle.timers().schedule_after(
        duration,
        Box::new(move || {
            if let Some(promise) = slot.lock().take() {
                promise.set(());
            }
        }),
        timer_owner(&handle, current_upid),
    );
    let timers = std::sync::Arc::downgrade(&handle);
    future.when_discard(move || {
        // Take the promise before cancelling: the cancelled timer owned the slot.
        let promise = on_discard.upgrade().and_then(|slot| slot.lock().take());
        if let Some(handle) = timers.upgrade() {
            handle.timers().cancel(key);
        }
        if let Some(promise) = promise {
            promise.discard();
        }
    });
    future
}
