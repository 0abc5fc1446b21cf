//! The worker-thread pool: a shared run queue, a hand-off slot per worker, park and unpark.
//!
//! # Design
//!
//! - **Hand-off slot.** A runnable made runnable by code running on a worker of this runtime
//!   goes to that worker's `next` slot and runs right after the current visit, on the same
//!   thread: a ping-pong or a ring never crosses threads and wakes nobody. A task already in the
//!   slot moves to the shared queue (and a sleeping worker is woken to take it). After
//!   [`NEXT_STREAK`] hand-offs in a row the worker serves the shared queue, so two processes
//!   bouncing a message cannot starve the rest (when the shared queue is empty there is nobody
//!   to starve, and the hand-off goes on).
//! - **Shared queue.** Everything else (work from other threads, requeues after a budget) goes
//!   to one FIFO under a mutex; idle workers take from it.
//! - **Parking.** A worker with nothing to do polls the shared queue briefly (spinning a few
//!   microseconds, then yielding the CPU between polls; one worker at a time), then sleeps on a
//!   condition variable; a push wakes one sleeper only if there is one.
//!
//! # Shutdown
//!
//! 1. The runtime has ended every process (see `Runtime::shutdown`).
//! 2. [`Threaded::shutdown`] sets the flag and wakes every worker.
//! 3. Each worker finishes its current visit, drains nothing more, and exits its loop.
//! 4. The runtime joins the threads.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Condvar, Mutex};

use super::Task;
use crate::context;

/// Hand-offs a worker runs in a row before it looks at the shared queue.
const NEXT_STREAK: u32 = 64;

/// Polls of the shared queue, a few spin-loop hints apart, before a worker that ran dry starts
/// yielding (a few microseconds): work often arrives right after a worker runs dry, and a park
/// and unpark cost more than the spin.
const SPINS: u32 = 4;

/// Spin-loop hints between two of those polls.
const SPIN_PAUSE: u32 = 32;

/// Polls of the shared queue, each after yielding the CPU, before the worker parks. Yielding
/// rather than spinning matters when threads outnumber cores (two runtimes on two cores, each
/// with workers and an I/O thread, or a build beside the runtime): a spinning worker would hold
/// a core that the thread about to give it work (a socket's I/O thread) needs. Measured on two
/// cores against 256 polls of pure spinning (about 200 µs): a remote ping-pong 4 times faster,
/// and the local rows level or better.
const YIELDS: u32 = 60;

pub(crate) struct Threaded {
    runtime_id: u64,
    budget: usize,
    /// Whether a worker is polling the shared queue before parking: one is enough to catch the
    /// next task, and the others park at once instead of competing for the cores.
    spinning: AtomicBool,
    shared: Mutex<Shared>,
    wake: Condvar,
}

struct Shared {
    queue: VecDeque<Task>,
    sleeping: usize,
    shutdown: bool,
}

thread_local! {
    /// This worker's hand-off slot (only ever set on a worker thread).
    static NEXT: RefCell<Option<Task>> = const { RefCell::new(None) };
    static STREAK: Cell<u32> = const { Cell::new(0) };
}

impl Threaded {
    pub(crate) fn new(runtime_id: u64, budget: usize) -> Self {
        Threaded {
            runtime_id,
            budget,
            spinning: AtomicBool::new(false),
            shared: Mutex::new(Shared {
                queue: VecDeque::new(),
                sleeping: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
        }
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    pub(crate) fn schedule(&self, task: Task) {
        if context::worker_of(self.runtime_id).is_some() {
            if let Some(displaced) = NEXT.with(|next| next.borrow_mut().replace(task)) {
                self.push(displaced);
            }
        } else {
            self.push(task);
        }
    }

    pub(crate) fn reschedule(&self, task: Task) {
        self.push(task);
    }

    fn push(&self, task: Task) {
        let mut shared = self.shared.lock();
        if shared.shutdown {
            // Nothing runs any more: drop the task (an async task's future ends abandoned).
            drop(shared);
            drop(task);
            return;
        }
        shared.queue.push_back(task);
        let wake = shared.sleeping > 0;
        drop(shared);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The loop of worker `index`; returns at shutdown.
    pub(crate) fn work(&self, index: usize) {
        context::set_worker(self.runtime_id, index);
        while let Some(task) = self.next_task() {
            task.run();
        }
        NEXT.with(|next| next.borrow_mut().take());
    }

    fn next_task(&self) -> Option<Task> {
        if let Some(task) = NEXT.with(|next| next.borrow_mut().take()) {
            let streak = STREAK.with(Cell::get);
            if streak < NEXT_STREAK {
                STREAK.with(|s| s.set(streak + 1));
                return Some(task);
            }
            // Fair to the shared queue, but only if someone is waiting in it: otherwise moving
            // the hand-off there would just wake the other worker to bounce it across threads.
            STREAK.with(|s| s.set(0));
            let Some(waiting) = self.pop_shared() else {
                return Some(task);
            };
            self.push(task);
            return Some(waiting);
        }
        STREAK.with(|s| s.set(0));
        if let Some(task) = self.spin() {
            return Some(task);
        }
        let mut shared = self.shared.lock();
        loop {
            if let Some(task) = shared.queue.pop_front() {
                return Some(task);
            }
            if shared.shutdown {
                return None;
            }
            shared.sleeping += 1;
            self.wake.wait(&mut shared);
            shared.sleeping -= 1;
        }
    }

    /// Polls the shared queue for a while, unless another worker already does.
    fn spin(&self) -> Option<Task> {
        if self.spinning.swap(true, Ordering::Acquire) {
            return None;
        }
        let found = (0..SPINS + YIELDS).find_map(|poll| {
            if let Some(task) = self.try_pop() {
                return Some(task);
            }
            if poll < SPINS {
                for _ in 0..SPIN_PAUSE {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
            None
        });
        self.spinning.store(false, Ordering::Release);
        found
    }

    fn try_pop(&self) -> Option<Task> {
        let mut shared = self.shared.try_lock()?;
        shared.queue.pop_front()
    }

    fn pop_shared(&self) -> Option<Task> {
        self.shared.lock().queue.pop_front()
    }

    pub(crate) fn shutdown(&self) {
        let queued = {
            let mut shared = self.shared.lock();
            shared.shutdown = true;
            std::mem::take(&mut shared.queue)
        };
        self.wake.notify_all();
        drop(queued);
    }
}
