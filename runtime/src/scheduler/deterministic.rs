//! The seeded single-thread mode: every runnable runs on the thread that drives the runtime, in
//! an order drawn from a seeded generator, and every step is folded into a trace hash.
//!
//! The runnable set is a vector; each [`step`](Deterministic::step) draws an index from a
//! SplitMix64 generator seeded by the builder and runs that runnable for one event. The same
//! seed and the same inputs give the same sequence of steps, which the [`Trace`] (a count and an
//! FNV-1a hash of the runnables' names in run order) lets a test compare between two runs.

use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Instant;

use parking_lot::Mutex;

use super::Task;
use crate::driver::pending::Dispatches;

/// What ran, in what order: a fingerprint of a deterministic run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trace {
    /// Steps run so far.
    pub steps: u64,
    /// FNV-1a hash over the name of every runnable, in run order.
    pub hash: u64,
}

pub(crate) struct Deterministic {
    state: Mutex<State>,
    /// Kept here, so that finding them is the one check a threaded runtime pays for them.
    dispatches: Dispatches,
}

struct State {
    runnable: Vec<Task>,
    /// Set at shutdown: nothing runs any more, so nothing is kept.
    shutdown: bool,
    /// Driving threads parked until another thread (an I/O driver, a blocking job) schedules.
    idle: Vec<Thread>,
    rng: SplitMix64,
    trace: Trace,
}

impl Deterministic {
    pub(crate) fn new(seed: u64) -> Self {
        Deterministic {
            state: Mutex::new(State {
                runnable: Vec::new(),
                shutdown: false,
                idle: Vec::new(),
                rng: SplitMix64(seed),
                trace: Trace {
                    steps: 0,
                    hash: FNV_OFFSET,
                },
            }),
            dispatches: Dispatches::default(),
        }
    }

    pub(crate) fn schedule(&self, task: Task) {
        let mut state = self.state.lock();
        if state.shutdown {
            drop(state);
            drop(task);
            return;
        }
        state.runnable.push(task);
        for driver in &state.idle {
            driver.unpark();
        }
    }

    /// Parks the driving thread until a runnable is scheduled from another thread, it is
    /// unparked otherwise, or `deadline` passes.
    pub(crate) fn idle(&self, deadline: Option<Instant>) {
        let me = thread::current();
        {
            let mut state = self.state.lock();
            if !state.runnable.is_empty() {
                return;
            }
            state.idle.push(me.clone());
        }
        match deadline {
            Some(deadline) => {
                thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => thread::park(),
        }
        self.state.lock().idle.retain(|t| t.id() != me.id());
    }

    /// Drops every runnable and refuses new ones (the runtime is shut down).
    pub(crate) fn shutdown(&self) {
        let runnable = {
            let mut state = self.state.lock();
            state.shutdown = true;
            std::mem::take(&mut state.runnable)
        };
        drop(runnable);
    }

    /// How many runnables wait to run.
    pub(crate) fn runnable(&self) -> usize {
        self.state.lock().runnable.len()
    }

    /// Runs one runnable chosen by the generator and returns its name; `None` if none is
    /// runnable.
    pub(crate) fn step(&self) -> Option<Arc<str>> {
        let task = {
            let mut state = self.state.lock();
            if state.runnable.is_empty() {
                return None;
            }
            let index = (state.rng.next() % state.runnable.len() as u64) as usize;
            let task = state.runnable.swap_remove(index);
            let mut hash = state.trace.hash;
            for byte in task.name().bytes().chain([0xff]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
            }
            state.trace.hash = hash;
            state.trace.steps += 1;
            task
        };
        let name = task.name().clone();
        task.run();
        Some(name)
    }

    pub(crate) fn trace(&self) -> Trace {
        self.state.lock().trace
    }

    /// The dispatches to this runtime's processes that wait for their answer.
    pub(crate) fn dispatches(&self) -> &Dispatches {
        &self.dispatches
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// SplitMix64 (Steele, Lea and Flood): tiny, fast and good enough to pick among runnables.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
