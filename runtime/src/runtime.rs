//! `Runtime`: a worker pool, a process table, a clock and an I/O driver — one "node".
//!
//! Nothing in procession is global: every process, timer and message belongs to one runtime,
//! and many runtimes can live in one OS process without seeing each other (tests run in
//! parallel; a multi-node test runs several nodes in one binary).
//!
//! ```
//! use procession::{dispatch, Process, Runtime};
//!
//! struct Greeter;
//! impl Process for Greeter {}
//!
//! let runtime = Runtime::builder().workers(2).build().unwrap();
//! let greeter = runtime.spawn(Greeter);
//! let hello = dispatch(&greeter, |_: &mut Greeter| "hello");
//! assert_eq!(runtime.block_on(hello).unwrap(), "hello");
//! runtime.shutdown(); // runs every finalize, joins every thread
//! ```
//!
//! # Shutdown
//!
//! 1. New spawns are refused (the process never starts; its dispatches end abandoned).
//! 2. Top-level processes (those not spawned as children) end one at a time, newest first, each
//!    after its own children (newest first, recursively); every `finalize` runs, and queued
//!    events run before it.
//! 3. If that takes longer than the builder's `shutdown_timeout` (real time, default 30 s), the
//!    rest is abandoned and listed in the [`ShutdownReport`].
//! 4. Timers are disarmed (their actions never run, their futures end abandoned), the workers
//!    and the timer driver stop and are joined, and the I/O driver stops.
//!
//! Dropping a runtime shuts it down the same way.
//!
//! # Contract
//!
//! Worker threads have the runtime current, so the free functions work in handlers and
//! callbacks; other threads use [`Runtime::enter`]. `block_on` and `shutdown` must not be called
//! from the runtime's own workers (they would wait for themselves) and panic if they are.

use std::fmt;
use std::future::{Future as _, IntoFuture};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::builder::Builder;
use crate::clock::Clock;
use crate::context::{self, EnterGuard};
use crate::driver::Driver;
use crate::filter::Filter;
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::metrics::Metrics;
use crate::pid::Pid;
use crate::pid::Upid;
use crate::process::cell::end_newest_first;
use crate::process::Process;
use crate::scheduler::Trace;
use crate::spawn::{spawn_on, SpawnError, SpawnOptions};
use crate::transport::Inbound;

/// A procession runtime. See the [module docs](self).
pub struct Runtime {
    handle: Handle,
    shutdown_timeout: Duration,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
}

impl Runtime {
    /// A runtime with the default configuration (one worker per core, real time).
    ///
    /// # Panics
    ///
    /// Panics if the OS refuses a thread; use [`Runtime::builder`] to handle that.
    pub fn new() -> Runtime {
        Builder::new()
            .build()
            .expect("starting a procession runtime")
    }

    /// A builder for a configured runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(
        handle: Handle,
        workers: usize,
        shutdown_timeout: Duration,
    ) -> std::io::Result<Runtime> {
        let runtime = Runtime {
            handle: handle.clone(),
            shutdown_timeout,
            threads: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        };
        if handle.scheduler().as_threaded().is_none() {
            return Ok(runtime);
        }
        for index in 0..workers {
            let shared = handle.clone();
            let thread = thread::Builder::new()
                .name(format!("{}-worker-{index}", handle.name))
                .spawn(move || {
                    let _entered = context::enter(shared.clone());
                    if let Some(scheduler) = shared.scheduler().as_threaded() {
                        scheduler.work(index);
                    }
                })?;
            runtime.threads.lock().push(thread);
        }
        let shared = handle.clone();
        let driver = thread::Builder::new()
            .name(format!("{}-timer", handle.name))
            .spawn(move || {
                let _entered = context::enter(shared.clone());
                shared.timers().drive(shared.quiesce());
            })?;
        runtime.threads.lock().push(driver);
        Ok(runtime)
    }

    /// The runtime's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// The address this runtime's Upids carry (in-process until a transport listens).
    pub fn address(&self) -> SocketAddr {
        self.handle.address()
    }

    /// The runtime's clock.
    pub fn clock(&self) -> Clock {
        Clock::new(self.handle.clone())
    }

    /// Makes this runtime current on this thread until the guard drops, so the free functions
    /// (`spawn`, `send`, `after`, `Clock::current`, ...) work here.
    pub fn enter(&self) -> EnterGuard {
        context::enter(self.handle.clone())
    }

    /// Spawns `process` with a generated id; see [`spawn`](crate::spawn()).
    pub fn spawn<P: Process>(&self, process: P) -> Pid<P> {
        spawn_on(&self.handle, process, SpawnOptions::new(), None)
            .expect("generated ids are unique")
    }

    /// Spawns `process` with the id `id`.
    ///
    /// # Errors
    ///
    /// Fails if a live process of this runtime has this id.
    pub fn spawn_named<P: Process>(&self, id: &str, process: P) -> Result<Pid<P>, SpawnError> {
        self.spawn_with(process, SpawnOptions::new().id(id))
    }

    /// Spawns `process` as `options` say (id, mailbox bound).
    ///
    /// # Errors
    ///
    /// Fails if the id is taken by a live process of this runtime, or for a zero capacity.
    pub fn spawn_with<P: Process>(
        &self,
        process: P,
        options: SpawnOptions,
    ) -> Result<Pid<P>, SpawnError> {
        spawn_on(&self.handle, process, options, None)
    }

    /// Drives a Rust future on this runtime's workers; see [`spawn_async`].
    pub fn spawn_async<F>(&self, future: F) -> Future<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + Sync + 'static,
    {
        crate::task::spawn(&self.handle, future)
    }

    /// Blocks this thread until `future` completes and returns its output; a procession
    /// [`Future`] gives `Result<T, Error>`. The runtime is current meanwhile. In the
    /// deterministic mode this thread runs the scheduler, and when nothing is runnable the
    /// virtual clock jumps to the next timer.
    ///
    /// # Panics
    ///
    /// Panics if called on one of this runtime's workers.
    pub fn block_on<F: IntoFuture>(&self, future: F) -> F::Output {
        assert!(
            !context::inside(self.handle.id),
            "Runtime::block_on called from inside the runtime (a worker or a handler); it would wait for itself"
        );
        let _entered = self.enter();
        let parker = Parker::new();
        let waker = Waker::from(parker.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future.into_future());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            parker.park(Some(&self.handle), None);
        }
    }

    /// Installs (or with `None` removes) the filter every event to this runtime's processes
    /// passes; see [filter](crate::filter).
    pub fn set_filter(&self, filter: Option<Arc<dyn Filter>>) {
        self.handle.filter().set(filter);
    }

    /// The filter installed with [`set_filter`](Self::set_filter), if any: what a helper that
    /// adds to the filter (rather than replacing it) starts from.
    pub fn filter(&self) -> Option<Arc<dyn Filter>> {
        self.handle.filter().get()
    }

    /// Installs (or with `None` removes) what starts child processes on this runtime instead of
    /// the OS; see [Launchers](crate::subprocess#launchers).
    #[cfg(unix)]
    pub fn set_launcher(&self, launcher: Option<Arc<dyn crate::subprocess::Launcher>>) {
        self.handle.set_launcher(launcher);
    }

    /// The runtime's side of the transport seam, for transport implementations.
    pub fn inbound(&self) -> Inbound {
        Inbound::new(self.handle.clone())
    }

    /// The driver of a deterministic runtime, through which a simulation runs it step by step
    /// (`None` for a threaded runtime); see [driver](crate::driver).
    pub fn driver(&self) -> Option<Driver> {
        Driver::new(self.handle.clone())
    }

    /// The run trace in the deterministic mode (`None` for a threaded runtime).
    pub fn trace(&self) -> Option<Trace> {
        self.handle
            .scheduler()
            .as_deterministic()
            .map(|s| s.trace())
    }

    /// The runtime's metrics: counters, gauges and timers registered by name, and snapshots of
    /// them with the runtime's own (see [metrics](crate::metrics)). Every handle reaches the
    /// same registry.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(self.handle.clone())
    }

    /// A snapshot of the runtime's counters.
    pub fn stats(&self) -> Stats {
        Stats {
            processes: self.handle.table().len(),
            dropped_messages: self.handle.dropped_messages(),
            dropped_at_bound: self.handle.dropped_at_bound(),
            armed_timers: self.handle.timers().armed(),
            panicked: self.handle.panicked(),
            sleeping_workers: self.handle.scheduler().sleeping_workers(),
        }
    }

    /// Shuts the runtime down (see [Shutdown](self#shutdown)) and waits for it, at most the
    /// builder's [`shutdown_timeout`](crate::Builder::shutdown_timeout) of real time for the
    /// processes to end (see the builder's docs for what else it waits for).
    ///
    /// # Errors
    ///
    /// The report lists the processes that had not ended by the deadline (a handler that never
    /// returns, a `finalize` that waits forever); they were abandoned, and so were the worker
    /// threads still running them.
    ///
    /// # Panics
    ///
    /// Panics if called from inside the runtime (a worker or a handler).
    pub fn shutdown(self) -> ShutdownReport {
        assert!(
            !context::inside(self.handle.id),
            "Runtime::shutdown called from inside the runtime; it would wait for itself"
        );
        self.stop()
    }

    fn stop(&self) -> ShutdownReport {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return ShutdownReport::default();
        }
        let _entered = self.enter();
        self.handle.shutting_down.store(true, Ordering::SeqCst);
        let deadline = crate::timer::later(Instant::now(), self.shutdown_timeout);
        let mut report = ShutdownReport::default();
        // Top-level processes end newest first, each with its subtree; repeat until the table
        // stays empty (a spawn racing the flag may publish one more).
        loop {
            let all = self.handle.table().all();
            if all.is_empty() {
                break;
            }
            let mut top: Vec<_> = all.iter().filter(|c| !c.has_parent()).cloned().collect();
            if top.is_empty() {
                top = all;
            }
            top.sort_by_key(|cell| cell.seq());
            let promise = Promise::new();
            let ended = promise.future();
            end_newest_first(top, Box::new(move || promise.set(())));
            let left = deadline.saturating_duration_since(Instant::now());
            if !ended.wait_for(left) {
                let unfinished = self.handle.table().all();
                report.unfinished = unfinished.iter().map(|c| c.upid()).collect();
                unfinished.iter().for_each(|cell| cell.abandon());
                tracing::error!(
                    runtime = %self.handle.name,
                    unfinished = ?report.unfinished,
                    "shutdown deadline passed; abandoning the processes that have not ended"
                );
                break;
            }
        }
        #[cfg(unix)]
        {
            // Children outlive no runtime: kill and reap them while the I/O driver still runs.
            let grace = Instant::now() + Duration::from_secs(1);
            report.unreaped = self.handle.children().kill_all(deadline.max(grace));
            if !report.unreaped.is_empty() {
                tracing::error!(
                    runtime = %self.handle.name,
                    unreaped = ?report.unreaped,
                    "shutdown deadline passed with child processes not reaped"
                );
            }
        }
        self.stop_threads(!report.unfinished.is_empty());
        self.release_seams();
        report.panicked = self.handle.panicked();
        tracing::debug!(runtime = %self.handle.name, "runtime shut down");
        report
    }

    /// Stops the runtime at once, as if its OS process were killed: no `finalize` runs, no
    /// linker on this runtime is told anything, queued events and armed timers are dropped (the
    /// futures waiting on them end abandoned), child processes are killed, and the transport is
    /// cut first, so nothing more leaves the node. Other nodes learn of the crash the way they
    /// would in production: their transport reports the connection lost, and their linkers get
    /// `exited` with [`ExitReason::Lost`](crate::ExitReason::Lost).
    ///
    /// This is for tests of failure handling (a simulation crashes nodes with it); a runtime
    /// meant to end uses [`shutdown`](Self::shutdown).
    ///
    /// # Panics
    ///
    /// Panics if called from inside the runtime (a worker or a handler).
    pub fn crash(self) {
        assert!(
            !context::inside(self.handle.id),
            "Runtime::crash called from inside the runtime; it would wait for itself"
        );
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let _entered = self.enter();
        self.handle.shutting_down.store(true, Ordering::SeqCst);
        self.handle.set_transport(None);
        // Workers first: a visit finishing during the abandon could still tell linkers.
        self.stop_threads(true);
        for cell in self.handle.table().all() {
            cell.abandon();
        }
        #[cfg(unix)]
        self.handle
            .children()
            .kill_all(Instant::now() + Duration::from_secs(1));
        self.release_seams();
        tracing::debug!(runtime = %self.handle.name, "runtime crashed");
    }

    /// Disarms the timers, stops the scheduler and joins the threads, waiting only briefly for
    /// workers when `stuck` ones may be running a handler that never returns.
    fn stop_threads(&self, stuck: bool) {
        self.handle.timers().shutdown();
        self.handle.scheduler().shutdown();
        let grace = Instant::now() + Duration::from_millis(100);
        for thread in self.threads.lock().drain(..) {
            if stuck {
                // A worker may be stuck in a handler that never returns: wait briefly, then
                // leave it behind rather than hang.
                while !thread.is_finished() && Instant::now() < grace {
                    thread::yield_now();
                }
                if !thread.is_finished() {
                    continue;
                }
            }
            if thread.join().is_err() {
                tracing::error!(runtime = %self.handle.name, "a runtime thread panicked");
            }
        }
    }

    /// Stops the I/O driver and removes the transport, filter and launcher (which may hold the
    /// runtime).
    fn release_seams(&self) {
        self.handle.stop_io();
        self.handle.set_transport(None);
        self.handle.filter().set(None);
        #[cfg(unix)]
        self.handle.set_launcher(None);
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

/// What [`Runtime::shutdown`] could not finish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    unfinished: Vec<Upid>,
    unreaped: Vec<u32>,
    panicked: u64,
}

impl ShutdownReport {
    /// Whether every process ended (and ran `finalize`) and every child process was reaped
    /// before the deadline.
    pub fn is_complete(&self) -> bool {
        self.unfinished.is_empty() && self.unreaped.is_empty()
    }

    /// The OS ids of child processes (started with `subprocess`) that were killed but not
    /// reaped by the deadline.
    pub fn unreaped(&self) -> &[u32] {
        &self.unreaped
    }

    /// The processes that had not ended by the deadline and were abandoned.
    pub fn unfinished(&self) -> &[Upid] {
        &self.unfinished
    }

    /// How many processes a panic ended over the runtime's life, shutdown included (in a
    /// handler, or in a `finalize` the shutdown ran): the last [`Stats::panicked`], which
    /// cannot be read once the runtime is gone. They did end, so
    /// [`is_complete`](Self::is_complete) does not count them.
    pub fn panicked(&self) -> u64 {
        self.panicked
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if context::worker_of(self.handle.id).is_some() {
            tracing::error!(runtime = %self.handle.name, "runtime dropped on its own worker; not waiting for it");
            return;
        }
        self.stop();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("name", &self.handle.name)
            .field("address", &self.address())
            .finish()
    }
}

/// Counters of one runtime, read by [`Runtime::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Processes alive.
    pub processes: usize,
    /// Messages dropped: unknown receiver, no handler, undecodable, no transport.
    pub dropped_messages: u64,
    /// Casts and messages dropped because a bounded mailbox was full.
    pub dropped_at_bound: u64,
    /// Timers armed.
    pub armed_timers: usize,
    /// Processes that ended because a handler (`initialize`, an event, `finalize`) panicked.
    pub panicked: u64,
    /// Workers asleep, waiting for work (none in the deterministic mode, which has no workers).
    pub sleeping_workers: usize,
}

/// Spins of a blocked thread before it parks.
const PARK_SPINS: u32 = 4096;

/// Blocks a thread outside the workers (`block_on`, `Future::wait_for`) until woken.
pub(crate) struct Parker {
    thread: Thread,
    woken: AtomicBool,
}

impl Parker {
    pub(crate) fn new() -> Arc<Parker> {
        Arc::new(Parker {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        })
    }

    /// Waits until woken or until `deadline` (real time) passes; false on the deadline. With a
    /// deterministic runtime this thread runs its scheduler meanwhile, firing due timers and
    /// jumping virtual time to the next timer when nothing is runnable.
    pub(crate) fn park(&self, runtime: Option<&Handle>, deadline: Option<Instant>) -> bool {
        let deterministic = runtime.and_then(|h| h.scheduler().as_deterministic().map(|s| (h, s)));
        if deterministic.is_none() {
            // An answer from a worker usually comes within microseconds: spin briefly before
            // paying for a park and an unpark.
            for _ in 0..PARK_SPINS {
                if self.woken.load(Ordering::Acquire) {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        while !self.woken.swap(false, Ordering::AcqRel) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            if let Some((handle, scheduler)) = deterministic {
                let timers = handle.timers();
                if scheduler.step().is_some() || timers.fire_due() > 0 {
                    continue;
                }
                if let Some(next) = timers.next_deadline() {
                    timers.advance_to(next);
                    continue;
                }
                // Only another thread (an I/O driver, a blocking job) can make progress now.
                scheduler.idle(deadline);
                continue;
            }
            match deadline {
                Some(deadline) => {
                    thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
                }
                None => thread::park(),
            }
        }
        true
    }
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Drives `future` on the current runtime's workers; the returned [`Future`] completes with its
/// output. This is how `async` Rust code joins procession: the future is polled on procession's
/// workers (under the seed's control in the deterministic mode), and tokio is only the I/O reactor.
///
/// # Errors
///
/// The result fails if polling panics.
///
/// # Discard
///
/// Discarding the result drops the Rust future at its next poll (cancelling it) and ends the
/// result discarded. Dropping the result does not cancel anything.
///
/// # Panics
///
/// Panics if no runtime is current.
///
/// # Examples
///
/// ```
/// use procession::{spawn_async, Future, Runtime};
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let doubled = spawn_async(async { Future::ready(21).await.unwrap() * 2 });
/// assert_eq!(runtime.block_on(doubled).unwrap(), 42);
/// ```
pub fn spawn_async<F>(future: F) -> Future<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + Sync + 'static,
{
    crate::task::spawn(&context::expect_current("spawn_async"), future)
}
