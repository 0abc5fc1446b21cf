//! Test helpers for procession: wait for a future's outcome without hanging, and catch, drop,
//! spoof or forbid the events processes send each other.
//!
//! - [`await_ready`] and friends block the test thread until a future completes, then assert
//!   its outcome; they fail with the future's state and the caller's location rather than hang.
//! - [`future_message`], [`drop_message`], [`drop_messages`], [`expect_no_future_messages`],
//!   [`future_dispatch`], [`drop_dispatch`], [`drop_dispatches`],
//!   [`expect_no_future_dispatches`], [`future_exited`] and [`drop_exited`] add rules to the
//!   runtime's filter point, libprocess's `FUTURE_MESSAGE` family (see [`Match`] for patterns
//!   and [how rules combine](#how-rules-combine)).
//! - [`post`] delivers a message that claims any sender and [`inject_exited`] an `exited`
//!   notice for an end that did not happen: the runtime's own functions, re-exported here.
//!
//! A paused clock needs no helper of its own: `runtime.clock()` pauses, advances and settles,
//! and `#[procession::test(paused)]` runs a test on a fresh paused runtime.
//!
//! ```
//! use std::time::Duration;
//! use procession::{delay, Context, Message, Process, Runtime, Upid};
//! use procession_testkit::{await_ready, future_message, Match};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
//! struct Tick(u32);
//!
//! struct Clockwork { to: Upid }
//! impl Process for Clockwork {
//!     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
//!         let tick = |c: &mut Self| procession::send(&c.to, Tick(1));
//!         delay(Duration::from_secs(60), &ctx.pid(), tick);
//!     }
//! }
//!
//! struct Sink;
//! impl Process for Sink {}
//!
//! let runtime = Runtime::builder().paused().build().unwrap();
//! let _entered = runtime.enter();
//! let sink = runtime.spawn(Sink);
//! let tick = future_message(&runtime, Match::message::<Tick>().to(&sink));
//! runtime.spawn(Clockwork { to: sink.upid() });
//! let clock = runtime.clock();
//! clock.settle();
//! assert!(tick.is_pending());
//! clock.advance(Duration::from_secs(60)); // a minute, in microseconds
//! clock.settle();
//! assert_eq!(await_ready(&tick).message.0, 1);
//! ```
//!
//! # Filters
//!
//! Every event addressed to a process passes its runtime's one filter point before it is queued
//! (see `procession::filter`). The first helper called on a runtime installs the testkit's
//! filter there, and every helper adds a *rule* to it: a one-shot rule gives a
//! [`Future`](procession::Future) of the first matching event (and drops that event, for the
//! `drop_*` helpers); a standing rule lives as long as the guard it returns. Rules belong to
//! one runtime, so tests running in parallel on their own runtimes never see each other's
//! events.
//!
//! ```
//! use procession::{send, Context, Message, Process, Runtime, Upid};
//! use procession_testkit::{await_ready, drop_message, future_message, Match};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
//! struct Heartbeat { seq: u32 }
//!
//! #[derive(Default)]
//! struct Master { beats: Vec<u32> }
//! impl Process for Master {
//!     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
//!         ctx.install(|m: &mut Self, _: &Upid, h: Heartbeat| m.beats.push(h.seq)).unwrap();
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let master = runtime.spawn(Master::default());
//! let lost = drop_message(&runtime, Match::message::<Heartbeat>().to(&master));
//! let seen = future_message(&runtime, Match::message::<Heartbeat>().to(&master));
//! send(&master.upid(), Heartbeat { seq: 1 }); // dropped
//! send(&master.upid(), Heartbeat { seq: 2 }); // caught, and delivered
//! assert_eq!(await_ready(&lost).message.seq, 1);
//! assert_eq!(await_ready(&seen).message.seq, 2);
//! let beats = runtime.block_on(procession::dispatch(&master, |m: &mut Master| m.beats.clone()));
//! assert_eq!(beats.unwrap(), [2]);
//! ```
//!
//! ## How rules combine
//!
//! An event is matched against its runtime's rules in the order they were added:
//! - the *oldest* matching one-shot rule takes it and retires, so two [`future_message`] calls
//!   for the same message catch the first and the second such message;
//! - every matching [`drop_messages`] or [`drop_dispatches`] rule drops it, whatever the
//!   one-shot rule says;
//! - every matching [`expect_no_future_messages`] or [`expect_no_future_dispatches`] guard
//!   records it (and lets it through).
//!
//! The event is dropped if the one-shot rule that took it drops, or any standing rule does. A
//! filter the test installed itself (`Runtime::set_filter`) before the first helper ran is
//! kept and asked after the rules, for the events they let through; installing one after the
//! helpers replaces theirs.
//!
//! ## Departures from libprocess and DESIGN.md
//!
//! - gmock gives an event to the *newest* matching expectation; here the oldest one-shot rule
//!   takes it, the order a test reads top to bottom.
//! - Patterns are a typed [`Match`] (`Match::message::<Ping>().from(&a).to(&b)`) rather than
//!   three positional arguments with wildcards, and a test on the decoded message
//!   ([`Match::body`]) stands in for a gmock matcher on its fields; dispatches and exits, which
//!   have fixed addresses, take them as arguments.
//! - [`post`] and [`inject_exited`] are the runtime's own functions (the smallest public API
//!   that can spoof a sender or an exit); the testkit re-exports them under DESIGN.md's names.
//! - No clock helpers: `runtime.clock()` already offers `pause`, `advance`, `settle` and
//!   `resume`, and a second spelling would be a second way to do one thing.
//!
//! # Contract
//!
//! A rule sees an event when it passes the filter point, on the sending thread, before the
//! receiver runs it: a future from [`future_message`] can be ready before the receiver has
//! handled the message (settle the clock, or await a dispatch queued after it, to see the
//! effect). A caught message is a copy; a caught dispatch is only its name. The futures of
//! rules that never fire end abandoned when their runtime shuts down. Rules see only the events
//! for their runtime's processes: a message to another node passes that node's filter point.
//! The helpers wait in real time, with [`DEFAULT_TIMEOUT`]; they are for tests, where a hang
//! is worse than a failure.
//!
//! The seeded multi-node simulation is in [`sim`]: several nodes on one thread, one virtual
//! clock, a simulated network that delays, drops, partitions and heals, crashes and restarts,
//! and child processes that run programs the test registers.

#![forbid(unsafe_code)]

mod await_;
mod filter;
pub mod sim;

pub use await_::{
    await_abandoned, await_discarded, await_failed, await_ready, await_ready_for, DEFAULT_TIMEOUT,
};
pub use filter::{
    drop_dispatch, drop_dispatches, drop_exited, drop_message, drop_messages,
    expect_no_future_dispatches, expect_no_future_messages, future_dispatch, future_exited,
    future_message, AnyMessage, Captured, DropDispatchesGuard, DropMessagesGuard, Match,
    NoDispatchesGuard, NoMessagesGuard,
};
pub use procession::{inject_exited, post};
