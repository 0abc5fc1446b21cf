//! procession: an actor runtime modeled on libprocess, the C++ runtime under Apache Mesos.
//!
//! Lightweight *processes* addressed by PIDs run on a worker-thread pool and talk through typed
//! [`dispatch()`]/[`defer`] calls and [`Message`]s; every answer is a composable [`Future`] with
//! `then`/`map`/`after`/[`collect`]/`discard`; and a [`Clock`] a test can pause, advance and
//! settle makes timing-dependent code deterministic to test.
//!
//! ```
//! use std::time::Duration;
//! use procession::{collect, dispatch, Future, Process, Runtime};
//!
//! #[derive(Default)]
//! struct Counter { count: u64 }
//! impl Process for Counter {}
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let counters: Vec<_> = (0..4).map(|_| runtime.spawn(Counter::default())).collect();
//! let replies = counters
//!     .iter()
//!     .map(|pid| dispatch(pid, |c: &mut Counter| { c.count += 1; c.count }))
//!     .collect();
//! let total = collect(replies)
//!     .map(|counts| counts.iter().sum::<u64>())
//!     .after(Duration::from_secs(10), |_| Future::failed("too slow"));
//! assert_eq!(runtime.block_on(total).unwrap(), 4);
//! ```
//!
//! Three macros come with it: [`#[derive(Message)]`](derive@Message) names a message type,
//! [`#[process]`](macro@process) gives a `Pid` typed methods that dispatch a process's own
//! (`counter.add(5)`), and [`#[procession::test]`](macro@test) runs a test on a fresh runtime
//! and fails it if a process panicked (unless it expects that many panics).
//!
//! Everything else is re-exported from the runtime crate; see its modules for the model:
//! [`process`](mod@process), [`dispatch`](mod@dispatch), [`future`], [`message`], [`link`](mod@link),
//! [`filter`], [`transport`], and [`Clock`].

#![forbid(unsafe_code)]

mod harness;

pub use procession_macros::{process, test, Message};
pub use procession_runtime::*;

/// What generated code needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::harness::run_test;
    pub use serde;
}
