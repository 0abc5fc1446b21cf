//! The worker-thread pool: a shared run queue, a pinned queue and a hand-off slot per worker,
//! park and unpark.
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
//! - **Tasks beside.** An async task (a connection's writer) that a process's handler wakes
//!   while another worker is spinning goes to the shared queue, where that worker takes it at
//!   once: its system calls then run beside the process instead of after it (a handler that
//!   streams to another node keeps encoding while the last batch is written). With no worker
//!   spinning it is scheduled like a process (the hand-off slot, on a worker of its runtime),
//!   since waking a sleeper would cost more than the parallelism gains; a task woken by a task
//!   is too, as async code handing a value along (a queue's consumer) runs best on the thread
//!   that has it in cache. Measured on two cores: a 100-byte remote stream 25% faster, the
//!   remote ping-pong and the local rows unchanged.
//! - **Shared queue.** Everything else (work from other threads, requeues after a budget) goes
//!   to one FIFO under a mutex; idle workers take from it.
//! - **Pinned queues.** A runnable pinned to worker `w` (see `Runnable::pin`) goes to `w`'s
//!   hand-off slot when `w` itself schedules it, else to `w`'s pinned queue, which only `w` takes
//!   from; it never enters the shared queue nor another worker's slot, so it runs on `w` alone.
//!   The pinned queues live under the shared queue's mutex: a worker checks its own and the
//!   shared one in the same critical section before it sleeps, so one lock and one condition
//!   variable cover every wake-up (no new lock-free structure, nothing to lose between two
//!   locks). A worker with both kinds waiting alternates between them.
//! - **Parking.** A worker with nothing to do polls its pinned queue and the shared queue briefly
//!   (spinning a few microseconds, then yielding the CPU between polls; one worker at a time),
//!   then sleeps on a condition variable; a push to the shared queue wakes one sleeper only if
//!   there is one, a push to a sleeping worker's pinned queue wakes every sleeper (the condition
//!   variable cannot pick one; the others find nothing and sleep again).
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
    workers: usize,
    /// Whether a worker is polling the shared queue before parking: one is enough to catch the
    /// next task, and the others park at once instead of competing for the cores.
    spinning: AtomicBool,
    shared: Mutex<Shared>,
    wake: Condvar,
}

struct Shared {
    queue: VecDeque<Task>,
    /// Per worker: the pinned runnables that only it takes.
    pinned: Box<[VecDeque<Task>]>,
    /// Per worker: asleep on `wake` (so a push to its pinned queue must wake it).
    asleep: Box<[bool]>,
    sleeping: usize,
    shutdown: bool,
}

thread_local! {
    /// This worker's hand-off slot (only ever set on a worker thread).
    static NEXT: RefCell<Option<Task>> = const { RefCell::new(None) };
    static STREAK: Cell<u32> = const { Cell::new(0) };
    /// Whether this worker looks at its pinned queue before the shared one next time.
    static PINNED_FIRST: Cell<bool> = const { Cell::new(true) };
}

impl Threaded {
    pub(crate) fn new(runtime_id: u64, budget: usize, workers: usize) -> Self {
        Threaded {
            runtime_id,
            budget,
            workers,
            spinning: AtomicBool::new(false),
            shared: Mutex::new(Shared {
                queue: VecDeque::new(),
                pinned: (0..workers).map(|_| VecDeque::new()).collect(),
                asleep: vec![false; workers].into(),
                sleeping: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
        }
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Workers asleep waiting for work.
    pub(crate) fn sleeping(&self) -> usize {
        self.shared.lock().sleeping
    }

    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// The worker a runnable is pinned to, if any.
    fn pin_of(&self, task: &Task) -> Option<usize> {
        task.pin().map(|pin| pin % self.workers)
    }

    pub(crate) fn schedule(&self, task: Task) {
        match context::worker_of(self.runtime_id) {
            Some(me) if self.pin_of(&task).is_none_or(|pin| pin == me) => {
                if let Some(displaced) = NEXT.with(|next| next.borrow_mut().replace(task)) {
                    self.push(displaced);
                }
            }
            _ => self.push(task),
        }
    }

    pub(crate) fn schedule_task(&self, task: Task) {
        if self.spinning.load(Ordering::Relaxed) && context::in_process() {
            self.push(task);
        } else {
            self.schedule(task);
        }
    }

    pub(crate) fn reschedule(&self, task: Task) {
        self.push(task);
    }

    fn push(&self, task: Task) {
        let pin = self.pin_of(&task);
        let mut shared = self.shared.lock();
        if shared.shutdown {
            // Nothing runs any more: drop the task (an async task's future ends abandoned).
            drop(shared);
            drop(task);
            return;
        }
        let Some(pin) = pin else {
            shared.queue.push_back(task);
            let wake = shared.sleeping > 0;
            drop(shared);
            if wake {
                self.wake.notify_one();
            }
            return;
        };
        shared.pinned[pin].push_back(task);
        // Decided under the lock the worker holds from its last look at its queue until it
        // waits, so either it sees this task or it is asleep by now and hears the notify.
        let wake = shared.asleep[pin];
        drop(shared);
        if wake {
            self.wake.notify_all();
        }
    }

    /// The loop of worker `index`; returns at shutdown.
    pub(crate) fn work(&self, index: usize) {
        context::set_worker(self.runtime_id, index);
        while let Some(task) = self.next_task(index) {
            task.run();
        }
        NEXT.with(|next| next.borrow_mut().take());
    }

    fn next_task(&self, me: usize) -> Option<Task> {
        if let Some(task) = NEXT.with(|next| next.borrow_mut().take()) {
            let streak = STREAK.with(Cell::get);
            if streak < NEXT_STREAK {
                STREAK.with(|s| s.set(streak + 1));
                return Some(task);
            }
            // Fair to the shared queue, but only if someone is waiting in it: otherwise moving
            // the hand-off there would just wake the other worker to bounce it across threads.
            STREAK.with(|s| s.set(0));
            let Some(waiting) = self.pop_queued(me) else {
                return Some(task);
            };
            self.push(task);
            return Some(waiting);
        }
        STREAK.with(|s| s.set(0));
        if let Some(task) = self.spin(me) {
            return Some(task);
        }
        let mut shared = self.shared.lock();
        loop {
            if let Some(task) = pop(&mut shared, me) {
                return Some(task);
            }
            if shared.shutdown {
                return None;
            }
            shared.sleeping += 1;
            shared.asleep[me] = true;
            self.wake.wait(&mut shared);
            shared.asleep[me] = false;
            shared.sleeping -= 1;
        }
    }

    /// Polls the shared queue for a while, unless another worker already does.
    fn spin(&self, me: usize) -> Option<Task> {
        if self.spinning.swap(true, Ordering::Acquire) {
            return None;
        }
        let found = (0..SPINS + YIELDS).find_map(|poll| {
            if let Some(task) = self.try_pop(me) {
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

    fn try_pop(&self, me: usize) -> Option<Task> {
        pop(&mut *self.shared.try_lock()?, me)
    }

    fn pop_queued(&self, me: usize) -> Option<Task> {
        pop(&mut self.shared.lock(), me)
    }

    pub(crate) fn shutdown(&self) {
        let queued = {
            let mut shared = self.shared.lock();
            shared.shutdown = true;
            let mut queued = std::mem::take(&mut shared.queue);
            for pinned in shared.pinned.iter_mut() {
                queued.append(pinned);
            }
            queued
        };
        self.wake.notify_all();
        drop(queued);
    }
}

/// Takes worker `me`'s next runnable from its pinned queue or the shared one, alternating between
/// the two when both have some, so that neither kind starves the other on this worker.
fn pop(shared: &mut Shared, me: usize) -> Option<Task> {
    let Shared { queue, pinned, .. } = shared;
    let pinned = &mut pinned[me];
    if pinned.is_empty() {
        // The unpinned path: no thread-local to touch.
        return queue.pop_front();
    }
    if PINNED_FIRST.with(|first| first.replace(!first.get())) {
        pinned.pop_front().or_else(|| queue.pop_front())
    } else {
        queue.pop_front().or_else(|| pinned.pop_front())
    }
}
