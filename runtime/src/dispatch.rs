//! `dispatch`: run a closure inside a process, get its result as a [`Future`].
//!
//! A dispatch is an event in the target's mailbox: it runs after the events already queued, on
//! whatever worker runs the process, with exclusive access to its state. Its result comes back as
//! a future, so a caller never blocks and a process never shares its state.
//!
//! ```
//! use procession::{dispatch, Process, Runtime};
//!
//! struct Store { value: u64 }
//! impl Process for Store {}
//!
//! let runtime = Runtime::new();
//! let store = runtime.spawn(Store { value: 1 });
//! let set = dispatch(&store, |s: &mut Store| s.value = 42);
//! let get = dispatch(&store, |s: &mut Store| s.value);
//! assert_eq!(runtime.block_on(get).unwrap(), 42);
//! assert!(set.is_ready());
//! ```
//!
//! # Contract
//!
//! - Dispatches from one thread (or one process) to one process run in the order they were made.
//! - A dispatch to a process that is gone, or that ends before the event runs (an injected
//!   terminate, a panic, shutdown), ends *abandoned* at once — never pending forever.
//! - A closure that returns a [`Future`] gives a `Future<Future<R>>`; [`Future::flatten`] turns
//!   it into the `Future<R>` that follows the inner one.
//! - [`cast`] is the fire-and-forget form: same queueing and order, no future, no allocation for
//!   a reply.
//!
//! # Bounded mailboxes
//!
//! A process spawned with [`SpawnOptions::bounded`](crate::SpawnOptions::bounded) holds at most
//! that many queued events (the default, as in libprocess, is unbounded). At the bound each
//! sender's choice decides: [`dispatch`] waits for room (its future already waits for the
//! answer; the closure waits in the mailbox's line, so a sender that never awaits still grows
//! memory), [`cast_wait`] gives a future of "queued", [`try_cast`] hands the closure back, and
//! [`cast`] and messages drop and count it. `exited` notices and terminates are never bounded.
//! - A panic in the closure ends the process (see [process](crate::process)) and abandons the
//!   result.

use std::fmt;

use crate::driver::pending;
use crate::event::Event;
use crate::future::{Future, Promise};
use crate::pid::Pid;
use crate::process::cell::{AtBound, Pushed};
use crate::process::Process;

/// Runs `f` on `pid`'s state after the events already queued to it; the future completes with
/// `f`'s return value.
///
/// # Errors
///
/// The future ends abandoned if the process is gone, ends before running `f`, or panics in `f`.
///
/// # Discard
///
/// Discarding the returned future records the request (a closure that gets the future can check
/// it); `f` still runs. Dropping it does nothing.
///
/// # Examples
///
/// ```
/// use procession::{dispatch, terminate_now, wait, Process, Runtime};
///
/// struct Idle;
/// impl Process for Idle {}
///
/// let runtime = Runtime::new();
/// let pid = runtime.spawn(Idle);
/// terminate_now(&pid);
/// runtime.block_on(wait(&pid)).unwrap();
/// let late = dispatch(&pid, |_: &mut Idle| 1);
/// assert!(late.is_abandoned());
/// ```
pub fn dispatch<P, R, F>(pid: &Pid<P>, f: F) -> Future<R>
where
    P: Process,
    R: Send + Sync + 'static,
    F: FnOnce(&mut P) -> R + Send + 'static,
{
    dispatch_method(pid, None, f)
}

/// [`dispatch`] with a method name the filter point sees, so a test's filter can match the
/// dispatch by the method it stands for (what typed handles call).
pub fn dispatch_method<P, R, F>(pid: &Pid<P>, method: Option<&'static str>, f: F) -> Future<R>
where
    P: Process,
    R: Send + Sync + 'static,
    F: FnOnce(&mut P) -> R + Send + 'static,
{
    let promise = Promise::new();
    let future = promise.future();
    let run = Box::new(move |process: &mut P| promise.set(f(process)));
    // Not queued (gone, filtered): the closure, and with it the promise, is dropped, so the
    // future ends abandoned at once.
    let _ = pid.cell.dispatch(method, run, AtBound::Wait(None));
    // Recorded once queued, so its note is this thread's latest even if a filter dispatched
    // meanwhile: a `flatten` right after takes the record over.
    pending::track(pid.cell.handle(), || pid.cell.upid(), method, &future);
    future
}

/// Runs `f` on `pid`'s state after the events already queued to it, with no reply: nothing is
/// allocated for an answer (libprocess's dispatch of a `void` method, Erlang's `cast`). The
/// fire-and-forget counterpart of [`dispatch`], for messages nobody waits on.
///
/// Returns false if the event was not queued: the process is gone, the filter dropped it, or
/// its mailbox is bounded and full (then the event is dropped and counted in
/// [`Stats::dropped_at_bound`](crate::Stats::dropped_at_bound); see [`try_cast`] and
/// [`cast_wait`] for the other choices at the bound).
///
/// # Examples
///
/// ```
/// use procession::{cast, dispatch, Process, Runtime};
///
/// #[derive(Default)]
/// struct Tally { count: u64 }
/// impl Process for Tally {}
///
/// let runtime = Runtime::new();
/// let tally = runtime.spawn(Tally::default());
/// for _ in 0..3 {
///     assert!(cast(&tally, |t: &mut Tally| t.count += 1));
/// }
/// assert_eq!(runtime.block_on(dispatch(&tally, |t: &mut Tally| t.count)).unwrap(), 3);
/// ```
pub fn cast<P, F>(pid: &Pid<P>, f: F) -> bool
where
    P: Process,
    F: FnOnce(&mut P) + Send + 'static,
{
    matches!(
        pid.cell.dispatch(None, Box::new(f), AtBound::Drop),
        Pushed::Queued
    )
}

/// [`cast`] that never drops: if `pid`'s bounded mailbox is full, the closure is handed back in
/// the error (boxed), so the sender can retry, shed load, or report.
///
/// # Errors
///
/// [`CastError`] when the mailbox is full or the process is gone (or the filter dropped it).
///
/// # Examples
///
/// ```
/// use procession::{try_cast, Process, Runtime, SpawnOptions};
///
/// struct Slow;
/// impl Process for Slow {}
///
/// let runtime = Runtime::builder().deterministic(1).build().unwrap(); // nothing runs until driven
/// let slow = runtime.spawn_with(Slow, SpawnOptions::new().bounded(2)).unwrap();
/// assert!(try_cast(&slow, |_: &mut Slow| ()).is_ok());
/// assert!(try_cast(&slow, |_: &mut Slow| ()).is_ok());
/// let refused = try_cast(&slow, |_: &mut Slow| ()).unwrap_err();
/// assert!(refused.is_full());
/// let _closure_back = refused.into_inner();
/// ```
pub fn try_cast<P, F>(pid: &Pid<P>, f: F) -> Result<(), CastError<P>>
where
    P: Process,
    F: FnOnce(&mut P) + Send + 'static,
{
    let refused = |event, full| match event {
        Event::Dispatch(f) => Err(CastError { f, full }),
        _ => unreachable!("a cast is a dispatch event"),
    };
    match pid.cell.dispatch(None, Box::new(f), AtBound::Refuse) {
        Pushed::Queued | Pushed::Parked => Ok(()),
        Pushed::Full(event, _) => refused(event, true),
        Pushed::Gone(event) => refused(event, false),
    }
}

/// [`cast`] that waits for room: the future completes once the event is in `pid`'s mailbox (at
/// once when there is room or the mailbox is unbounded). No thread ever blocks, so a full
/// mailbox cannot deadlock the runtime, even for a process casting to itself.
///
/// # Errors
///
/// The future ends abandoned if the process is gone (or ends while the event waits, or the
/// filter dropped it).
///
/// # Discard
///
/// Discarding the future does not withdraw the event.
///
/// # Examples
///
/// ```
/// use procession::{cast_wait, dispatch, Process, Runtime, SpawnOptions};
///
/// #[derive(Default)]
/// struct Sink { seen: u32 }
/// impl Process for Sink {}
///
/// let runtime = Runtime::new();
/// let sink = runtime.spawn_with(Sink::default(), SpawnOptions::new().bounded(1)).unwrap();
/// for _ in 0..10 {
///     // Each waits for room before the next is offered: memory stays bounded.
///     runtime.block_on(cast_wait(&sink, |s: &mut Sink| s.seen += 1)).unwrap();
/// }
/// assert_eq!(runtime.block_on(dispatch(&sink, |s: &mut Sink| s.seen)).unwrap(), 10);
/// ```
pub fn cast_wait<P, F>(pid: &Pid<P>, f: F) -> Future<()>
where
    P: Process,
    F: FnOnce(&mut P) + Send + 'static,
{
    let promise = Promise::new();
    let queued = promise.future();
    let _ = pid
        .cell
        .dispatch(None, Box::new(f), AtBound::Wait(Some(promise)));
    queued
}

/// A [`try_cast`] that was refused; it hands the closure back.
pub struct CastError<P> {
    f: Box<dyn FnOnce(&mut P) + Send>,
    full: bool,
}

impl<P> CastError<P> {
    /// The mailbox was full (otherwise the process is gone, or the filter dropped the event).
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The refused closure, to retry or drop.
    pub fn into_inner(self) -> Box<dyn FnOnce(&mut P) + Send> {
        self.f
    }
}

impl<P> fmt::Debug for CastError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CastError")
            .field("full", &self.full)
            .finish()
    }
}

impl<P> fmt::Display for CastError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.full {
            true => "cast refused: the mailbox is full",
            false => "cast refused: the process is gone",
        })
    }
}

impl<P> std::error::Error for CastError<P> {}

impl<T: Clone + Send + Sync + 'static> Future<Future<T>> {
    /// The future that follows the inner future: what a dispatched closure returning a future
    /// gives once flattened.
    ///
    /// # Errors
    ///
    /// Ends as the outer future if it does not become ready, else as the inner one.
    ///
    /// # Discard
    ///
    /// Discarding the result discards the outer future and, once known, the inner one.
    ///
    /// # Stuck reports
    ///
    /// Flattening the future of the dispatch this thread made last keeps that dispatch in
    /// [`Driver::pending_dispatches`](crate::Driver::pending_dispatches) until the flattened
    /// future completes, rather than until the closure ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::Future;
    ///
    /// let nested = Future::ready(Future::ready(5));
    /// assert_eq!(nested.flatten().get(), Some(5));
    /// ```
    pub fn flatten(&self) -> Future<T> {
        let flat = self.then(|inner| inner.clone());
        pending::follow(self, &flat);
        flat
    }
}
