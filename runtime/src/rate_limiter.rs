//! `RateLimiter`: grants at most a number of permits per span of the runtime's clock.
//!
//! A rate limiter paces work that must not exceed a rate (requests to a service, retries,
//! log lines), as libprocess's `RateLimiter` does. [`RateLimiter::acquire`] answers with a
//! [`Future`] that becomes ready when the caller may go ahead; callers are served in the order
//! they asked. Time is the runtime's [`Clock`](crate::Clock), read and waited on through
//! procession's own timers ([`after`]), never tokio's or the thread's: a test pauses the clock
//! and advances it to see each grant happen at its exact instant.
//!
//! ```
//! use std::time::Duration;
//! use procession::{RateLimiter, Runtime};
//!
//! let runtime = Runtime::builder().paused().build().unwrap();
//! let _entered = runtime.enter();
//! let clock = runtime.clock();
//! let limiter = RateLimiter::new(2, Duration::from_secs(1));
//! let grants: Vec<_> = (0..3).map(|_| limiter.acquire()).collect();
//! assert!(grants[0].is_ready() && grants[1].is_ready());
//! assert!(grants[2].is_pending()); // the window of one second is full
//! clock.advance(Duration::from_secs(1));
//! assert!(grants[2].is_ready());
//! ```
//!
//! # Departure from libprocess
//!
//! libprocess spaces grants evenly, one every `per / permits`. This limiter keeps a sliding
//! window instead: up to `permits` grants at once, and the next one when the oldest of the last
//! `permits` grants is `per` old. Both keep any window of `per` to at most `permits` grants;
//! this one lets an idle limiter serve a burst without delay.
//!
//! # Contract
//!
//! - Any half-open span `[t, t + per)` of the runtime clock holds at most `permits` grants.
//! - Grants go to the acquires in the order they were made; a grant happens as soon as the
//!   window allows: in `acquire` itself, or from a timer at the instant the oldest grant leaves
//!   the window (exactly then on a paused clock; in real time, as soon as the timer fires).
//! - A pending acquire whose future is discarded gives up its place and consumes no permit.
//! - Grants complete futures after the limiter's lock is released, on the thread that
//!   acquired or that fired the timer.
//! - Dropping the limiter cancels its timer and abandons the pending acquires; so does the
//!   runtime shutting down.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::clock::{after, Clock};
use crate::context;
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::line::Line;

/// Grants at most `permits` acquisitions in any span of `per` of the runtime clock, in the order
/// they were asked for.
///
/// It keeps a sliding window: up to `permits` grants at once, then the next one when the oldest
/// of the last `permits` grants is `per` old (libprocess spaces grants evenly instead, one every
/// `per / permits`). Time is the clock of the runtime that was current at [`new`](Self::new),
/// waited on with procession's timers, so a paused clock controls every grant.
///
/// # Contract
///
/// - Any half-open span `[t, t + per)` of the runtime clock holds at most `permits` grants.
/// - Grants go to the acquires in the order they were made, as soon as the window allows: in
///   `acquire` itself, or from a timer at the instant the oldest grant leaves the window
///   (exactly then on a paused clock).
/// - A pending acquire whose future is discarded gives up its place and consumes no permit.
/// - Grants complete futures after the limiter's lock is released.
/// - Dropping the limiter cancels its timer and abandons the pending acquires; so does the
///   runtime shutting down.
///
/// ```
/// use std::time::Duration;
/// use procession::{RateLimiter, Runtime};
///
/// let runtime = Runtime::builder().paused().build().unwrap();
/// let _entered = runtime.enter();
/// let limiter = RateLimiter::new(1, Duration::from_millis(100));
/// let (first, second) = (limiter.acquire(), limiter.acquire());
/// runtime.clock().advance(Duration::from_millis(99));
/// assert!(first.is_ready() && second.is_pending());
/// runtime.clock().advance(Duration::from_millis(1));
/// assert!(second.is_ready());
/// ```
pub struct RateLimiter {
    shared: Arc<Shared>,
}

struct Shared {
    permits: usize,
    per: Duration,
    /// The runtime whose clock paces the grants, captured by `new`.
    handle: Handle,
    clock: Clock,
    state: Mutex<State>,
}

struct State {
    /// The instants of the latest grants still inside the window, oldest first; at most
    /// `permits` of them.
    grants: VecDeque<Instant>,
    waiters: Line<()>,
    /// The timer that wakes the line when the oldest grant leaves the window; at most one.
    timer: Option<Future<()>>,
}

impl RateLimiter {
    /// A limiter granting at most `permits` acquisitions in any span of `per` of the current
    /// runtime's clock. A zero `per` limits nothing; one too long for the clock to reach
    /// (`Duration::MAX`) never ends, so after `permits` grants every later acquisition waits
    /// forever (until discarded).
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current (see [`Runtime::enter`](crate::Runtime::enter)), or if
    /// `permits` is zero.
    pub fn new(permits: usize, per: Duration) -> Self {
        assert!(permits > 0, "RateLimiter::new needs at least one permit");
        let handle = context::expect_current("RateLimiter::new");
        RateLimiter {
            shared: Arc::new(Shared {
                permits,
                per,
                clock: Clock::new(handle.clone()),
                handle,
                state: Mutex::new(State {
                    grants: VecDeque::new(),
                    waiters: Line::new(),
                    timer: None,
                }),
            }),
        }
    }

    /// A future that becomes ready when the caller may proceed: at once if the window has room
    /// and nobody is waiting, otherwise after every earlier acquire, when the window allows.
    ///
    /// May be called from any thread; the clock is that of the runtime the limiter was made on.
    ///
    /// # Errors
    ///
    /// Ends abandoned if the limiter is dropped, or its runtime shuts down, before the grant.
    ///
    /// # Discard
    ///
    /// Discarding a pending acquire removes it from the line and ends it discarded; it consumes
    /// no permit, and the acquires behind it move up. A discard that arrives with the grant comes
    /// too late: the future ends ready and the permit is used. Dropping the future of a pending
    /// acquire does not withdraw it: it still takes its permit when its turn comes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use procession::{RateLimiter, Runtime};
    ///
    /// let runtime = Runtime::builder().paused().build().unwrap();
    /// let _entered = runtime.enter();
    /// let limiter = RateLimiter::new(1, Duration::from_secs(10));
    /// let first = limiter.acquire();
    /// let given_up = limiter.acquire();
    /// let third = limiter.acquire();
    /// given_up.discard();
    /// runtime.clock().advance(Duration::from_secs(10));
    /// assert!(first.is_ready() && given_up.is_discarded() && third.is_ready());
    /// ```
    pub fn acquire(&self) -> Future<()> {
        let promise = Promise::new();
        let future = promise.future();
        {
            let mut state = self.shared.state.lock();
            let key = state.waiters.push(promise);
            let shared = Arc::downgrade(&self.shared);
            // A fresh future has no discard request yet, so the hook cannot run under our lock.
            future.when_discard(move || leave(&shared, key));
        }
        pump(&self.shared, false);
        future
    }
}

/// The discard hook of a pending acquire: leave the line and end discarded (a no-op once it
/// was granted). No permit was taken, and the acquires behind it wait for the same instant as
/// before, so nothing else needs to move.
fn leave(shared: &Weak<Shared>, key: u64) {
    let withdrawn = shared
        .upgrade()
        .and_then(|s| s.state.lock().waiters.withdraw(key));
    if let Some(waiter) = withdrawn {
        waiter.discard();
    }
}

/// Grants every waiter the window has room for now, from the front of the line, and arms the
/// timer for the instant the oldest grant leaves the window if some still wait. `fired` says
/// the armed timer is what called.
fn pump(shared: &Arc<Shared>, fired: bool) {
    let mut granted = Vec::new();
    let mut skipped = Vec::new();
    let wait = {
        let mut state = shared.state.lock();
        if fired {
            state.timer = None;
        }
        let now = shared.clock.now();
        while let Some(&oldest) = state.grants.front() {
            match oldest.checked_add(shared.per) {
                Some(leaves) if leaves <= now => state.grants.pop_front(),
                _ => break,
            };
        }
        // A waiter whose discard was requested (its hook not yet run) is passed over, not
        // granted; with no room, such waiters stay until their hooks withdraw them.
        while state.grants.len() < shared.permits {
            match state.waiters.pop() {
                Some(waiter) if waiter.has_discard() => skipped.push(waiter),
                Some(waiter) => {
                    state.grants.push_back(now);
                    granted.push(waiter);
                }
                None => break,
            }
        }
        let oldest = state.grants.front().copied();
        match oldest.and_then(|oldest| oldest.checked_add(shared.per)) {
            Some(leaves) if state.waiters.len() > 0 && state.timer.is_none() => {
                Some(leaves.saturating_duration_since(now))
            }
            // A window too long for an `Instant` never ends: nothing to arm.
            _ => None,
        }
    };
    for promise in skipped {
        promise.discard();
    }
    for promise in granted {
        promise.set(());
    }
    if let Some(wait) = wait {
        arm(shared, wait);
    }
}

/// Arms the timer that calls [`pump`] after `wait`. The slot is filled before the callback is
/// registered, so no other pump can arm a second timer meanwhile, and a timer that fires at
/// once still finds its slot filled.
fn arm(shared: &Arc<Shared>, wait: Duration) {
    let timer = {
        let _entered = context::enter(shared.handle.clone());
        after(wait)
    };
    {
        let mut state = shared.state.lock();
        if state.timer.is_some() {
            // Another pump armed one between our decision and now.
            drop(state);
            timer.discard();
            return;
        }
        state.timer = Some(timer.clone());
    }
    let shared = Arc::downgrade(shared);
    timer.when_complete(move |outcome| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match outcome {
            Ok(()) => pump(&shared, true),
            // Cancelled by the limiter's drop.
            Err(error) if error.is_discarded() => {}
            // The runtime shut down: no grant can come any more.
            Err(_) => {
                let abandoned = {
                    let mut state = shared.state.lock();
                    state.timer = None;
                    std::mem::replace(&mut state.waiters, Line::new())
                };
                drop(abandoned);
            }
        }
    });
}

impl Drop for RateLimiter {
    fn drop(&mut self) {
        let timer = self.shared.state.lock().timer.take();
        if let Some(timer) = timer {
            timer.discard();
        }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("RateLimiter")
            .field("permits", &self.shared.permits)
            .field("per", &self.shared.per)
            .field("waiting", &state.waiters.len())
            .finish()
    }
}
