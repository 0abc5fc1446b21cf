//! The procession runtime: lightweight processes addressed by PIDs, typed `dispatch`/`defer`
//! calls answered by composable [`Future`]s, and a clock a test can pause, advance and settle.
//!
//! Use it through the facade crate `procession`, which re-exports everything here.
//!
//! # The model
//!
//! A [`Runtime`] owns a pool of worker threads, a table of *processes*, a [`Clock`] with its
//! timers, and an I/O driver. A process is plain state implementing [`Process`]; [`spawn()`] gives
//! it an id and a mailbox, and from then on the runtime runs its events — [`dispatch()`]es,
//! [`Message`]s, [`link()`] notices — one at a time, so its state needs no locks. Every answer is a
//! [`Future`]: shared, eager, completed once by its [`Promise`], chained with `then`/`map`,
//! bounded in time with `after`, combined with [`collect`] and [`select`], cancelled with
//! `discard` (a request that flows upstream to whoever does the work).
//!
//! ```
//! use std::time::Duration;
//! use procession::{dispatch, Future, Process, Runtime};
//!
//! #[derive(Default)]
//! struct Account { balance: u64 }
//! impl Process for Account {}
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let clock = runtime.clock();
//! clock.pause();
//!
//! let account = runtime.spawn(Account::default());
//! dispatch(&account, |a: &mut Account| a.balance += 100);
//! let report = dispatch(&account, |a: &mut Account| a.balance)
//!     .map(|balance| format!("balance: {balance}"))
//!     .after(Duration::from_secs(5), |_| Future::failed("timed out"));
//!
//! assert_eq!(runtime.block_on(report).unwrap(), "balance: 100");
//! clock.settle();
//! ```
//!
//! # Deliberate differences from DESIGN.md
//!
//! - `then` takes a closure returning a [`Future`] (flattening, as in futures-rs); `map` takes one
//!   returning a plain value. Rust cannot infer which was meant from one closure type.
//! - [`dispatch()`] of a closure that returns a `Future<R>` gives `Future<Future<R>>`;
//!   [`Future::flatten`] follows the inner one. (The typed handles `#[process]` generates
//!   flatten for you.)
//! - [`Clock`] is a handle (`runtime.clock()`, [`Clock::current()`]) because a Rust type cannot
//!   have an associated function and a method of the same name.
//! - [`select`] answers with the index and value of the winner rather than a future of a future.

// Unsafe code is allowed in three places only, each with SAFETY lines a reviewer can check: a
// future's cell (its slots, guarded by a state word; loom models in `tests/`), a future's
// callback (a small closure kept in place, its type erased), and the running process's pointer
// in `context` (borrowed from the visit's `Arc`, so a visit counts no references).
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod address;
mod blocking;
mod budget;
mod builder;
mod clock;
mod context;
mod defer;
mod delay;
pub mod dispatch;
pub mod driver;
mod error;
mod event;
pub mod filter;
pub mod future;
mod handle;
mod line;
pub mod link;
pub mod message;
pub mod metrics;
pub mod monitor;
mod pid;
pub mod process;
mod quiesce;
pub mod request;
pub mod runtime;
mod scheduler;
pub mod spawn;
pub mod supervisor;
mod sync;
mod task;
mod timer;
pub mod transport;

#[cfg(all(test, procession_loom))]
mod tests;

pub use crate::blocking::run_blocking;
pub use crate::budget::budget_spent;
pub use crate::builder::{BuildError, Builder};
pub use crate::clock::{after, Clock};
pub use crate::context::EnterGuard;
pub use crate::defer::defer;
pub use crate::delay::{delay, Timer};
pub use crate::dispatch::{cast, cast_wait, dispatch, dispatch_method, try_cast, CastError};
pub use crate::driver::{ArmedTimer, Driver, PendingDispatch};
pub use crate::error::{Error, Failure};
pub use crate::event::ExitReason;
pub use crate::filter::{EventView, Filter, MessageBody, Verdict};
pub use crate::future::{
    await_all, collect, loop_, select, undiscardable, Future, Outcomes, Owned, Promise, Wait,
};
pub use crate::link::{inject_exited, link};
pub use crate::message::{post, send, InstallError, Message};
pub use crate::metrics::Metrics;
pub use crate::monitor::{demonitor, monitor};
pub use crate::pid::{ParseUpidError, Pid, Upid};
pub use crate::process::{terminate, terminate_now, wait, Context, Process, ProcessRef};
pub use crate::request::{request, Request};
pub use crate::runtime::{spawn_async, Runtime, ShutdownReport, Stats};
pub use crate::scheduler::Trace;
pub use crate::spawn::{spawn, spawn_child, spawn_named, spawn_with, SpawnError, SpawnOptions};
pub use crate::supervisor::{supervise, Strategy, Supervisor};
pub use crate::transport::{Inbound, InboundRun, Outgoing, Transport};

mod latch;
mod mutex;
pub mod pipe;
mod queue;
mod rate_limiter;
mod sequence;
#[cfg(unix)]
pub mod subprocess;

pub use crate::latch::Latch;
pub use crate::mutex::{Mutex, MutexGuard};
pub use crate::queue::Queue;
pub use crate::rate_limiter::RateLimiter;
pub use crate::sequence::Sequence;
