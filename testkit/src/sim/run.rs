//! Running a simulation until a time, a condition or a future's outcome, and the limits that
//! end a run which would never finish.

use std::future::{Future as _, IntoFuture};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::{Progress, Sim, SimError};

impl Sim {
    /// Runs the simulation for `duration` of virtual time: everything due by then happens, and
    /// the clock reads `now() + duration` afterwards.
    ///
    /// # Panics
    ///
    /// Panics, naming the seed, when more than the builder's
    /// [step limit](super::SimBuilder::step_limit) of steps run at one virtual instant: a
    /// livelock that never lets time move, which would otherwise run forever.
    pub fn run_for(&mut self, duration: Duration) {
        match self.try_run_for(duration) {
            Ok(()) => {}
            Err(SimError::StepLimit { seed, at }) => panic!(
                "Sim::run_for reached its step limit at {at:?} (seed {seed}): {} steps without \
                 virtual time moving, a livelock",
                self.step_limit
            ),
            Err(error) => panic!("Sim::run_for: {error}"),
        }
    }

    /// [`run_for`](Self::run_for), failing with [`SimError::StepLimit`] where it panics.
    pub(super) fn try_run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let target = self.now.saturating_add(duration);
        // Per instant rather than per call: a long run may take any number of steps, but one
        // that keeps stepping while time stands still never ends.
        let (mut instant, mut steps) = (self.now, 0u64);
        loop {
            if self.now != instant {
                (instant, steps) = (self.now, 0);
            }
            steps += 1;
            if steps > self.step_limit {
                let (seed, at) = (self.seed, self.now);
                return Err(SimError::StepLimit { seed, at });
            }
            if !matches!(self.advance(Some(target)), Progress::Ran) {
                break;
            }
        }
        self.set_time(target);
        Ok(())
    }

    /// Runs until `done` holds (checked before every step), at most the builder's time and step
    /// limits.
    ///
    /// # Errors
    ///
    /// [`SimError::Stuck`] if the simulation runs dry first, [`SimError::TimeLimit`] or
    /// [`SimError::StepLimit`] if a limit passes first.
    pub fn run_until(&mut self, mut done: impl FnMut(&Sim) -> bool) -> Result<(), SimError> {
        let limit = self.now.saturating_add(self.time_limit);
        let mut steps = 0u64;
        loop {
            if done(self) {
                return Ok(());
            }
            self.one_more(limit, &mut steps)?;
        }
    }

    /// Runs the simulation until `future` completes and returns its output (a procession
    /// `Future` gives `Result<T, Error>`), at most the builder's time and step limits.
    ///
    /// # Errors
    ///
    /// As [`run_until`](Self::run_until); when stuck, the error names what is still waiting.
    pub fn block_on<F: IntoFuture>(&mut self, future: F) -> Result<F::Output, SimError> {
        let woken = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future.into_future());
        let limit = self.now.saturating_add(self.time_limit);
        let mut steps = 0u64;
        loop {
            if woken.0.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return Ok(output);
                }
            }
            self.one_more(limit, &mut steps)?;
        }
    }

    fn one_more(&mut self, limit: Duration, steps: &mut u64) -> Result<(), SimError> {
        *steps += 1;
        let (seed, at) = (self.seed, self.now);
        if *steps > self.step_limit {
            return Err(SimError::StepLimit { seed, at });
        }
        match self.advance(Some(limit)) {
            Progress::Ran => Ok(()),
            Progress::Idle => Err(SimError::Stuck {
                seed,
                at,
                waiting: self.waiting(),
            }),
            Progress::AtLimit => {
                self.set_time(limit);
                Err(SimError::TimeLimit { seed, at: self.now })
            }
        }
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}
