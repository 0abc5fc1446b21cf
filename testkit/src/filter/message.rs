//! The message helpers: catch, drop, drop every or forbid messages matching a [`Match`].

use procession::{Future, Runtime};

use super::guard::{Standing, Watch};
use super::matcher::{Captured, Match};
use super::rules::Rules;

/// A future of the first message `pattern` matches from now on; the message is still delivered
/// (unless another rule drops it).
///
/// The future is ready with a copy of the message and its sender and receiver as soon as the
/// message passes the filter point, before the receiver handles it.
///
/// # Errors
///
/// The future fails if the matching message cannot be copied as an `M`: an encoded body that
/// does not decode, or (a bug in the program) a local message of another type under `M`'s
/// name; a pattern with a [`body`](Match::body) test never matches those. It ends abandoned if
/// the runtime shuts down first.
///
/// # Discard
///
/// Discarding the future withdraws the expectation: the rule is removed and the future ends
/// discarded. Dropping it leaves the rule in place.
///
/// # Examples
///
/// ```
/// use procession::{send, Context, Message, Process, Runtime, Upid};
/// use procession_testkit::{await_ready, future_message, Match};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
/// struct Register { agent: String }
///
/// struct Master;
/// impl Process for Master {
///     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
///         ctx.install(|_: &mut Self, _: &Upid, _: Register| {}).unwrap();
///     }
/// }
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let master = runtime.spawn(Master);
/// let register = future_message(&runtime, Match::message::<Register>().to(&master));
/// send(&master.upid(), Register { agent: "a1".into() });
/// let caught = await_ready(&register);
/// assert_eq!(caught.message.agent, "a1");
/// assert_eq!((caught.from.id(), caught.to), ("anonymous", master.upid()));
/// ```
pub fn future_message<M>(runtime: &Runtime, pattern: Match<M>) -> Future<Captured<M>>
where
    M: Clone + Send + Sync + 'static,
{
    once_message(runtime, pattern, false)
}

/// Drops the first message `pattern` matches from now on; the future completes with a copy of
/// it once it was dropped (libprocess's `DROP_MESSAGE`). Replay it, changed or not, with
/// [`post`](procession::post).
///
/// # Errors
///
/// As [`future_message`]; the message is dropped even when its copy fails.
///
/// # Discard
///
/// Discarding the future withdraws the rule (nothing is dropped after that) and ends it
/// discarded. Dropping it leaves the rule in place.
///
/// # Examples
///
/// ```
/// use procession::{dispatch, post, send, Context, Message, Process, Runtime, Upid};
/// use procession_testkit::{await_ready, drop_message, Match};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
/// struct Offer { cpus: u32 }
///
/// #[derive(Default)]
/// struct Scheduler { offers: Vec<(String, u32)> }
/// impl Process for Scheduler {
///     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
///         ctx.install(|s: &mut Self, from: &Upid, o: Offer| {
///             s.offers.push((from.id().into(), o.cpus))
///         })
///         .unwrap();
///     }
/// }
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let scheduler = runtime.spawn(Scheduler::default());
/// let offer = drop_message(&runtime, Match::message::<Offer>().to(&scheduler));
/// send(&scheduler.upid(), Offer { cpus: 4 });
/// let dropped = await_ready(&offer);
/// // Replay it with a changed field, as if it came from a master.
/// let master: Upid = "master@10.0.0.1:5050".parse().unwrap();
/// post(&master, &dropped.to, Offer { cpus: 8, ..dropped.message });
/// let offers = runtime.block_on(dispatch(&scheduler, |s: &mut Scheduler| s.offers.clone()));
/// assert_eq!(offers.unwrap(), [("master".to_owned(), 8)]);
/// ```
pub fn drop_message<M>(runtime: &Runtime, pattern: Match<M>) -> Future<Captured<M>>
where
    M: Clone + Send + Sync + 'static,
{
    once_message(runtime, pattern, true)
}

fn once_message<M>(runtime: &Runtime, pattern: Match<M>, drop: bool) -> Future<Captured<M>>
where
    M: Clone + Send + Sync + 'static,
{
    let (pattern, copy) = pattern.into_parts();
    Rules::of(runtime).once(pattern, drop, move |event| Match::capture(copy, event))
}

/// Drops every message `pattern` matches until the returned guard is dropped (libprocess's
/// `DROP_MESSAGES`, which lasts the whole test).
///
/// # Examples
///
/// ```
/// use procession::{dispatch, send, Context, Message, Process, Runtime, Upid};
/// use procession_testkit::{drop_messages, Match};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
/// struct Ping;
///
/// #[derive(Default)]
/// struct Counter { pings: u32 }
/// impl Process for Counter {
///     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
///         ctx.install(|c: &mut Self, _: &Upid, _: Ping| c.pings += 1).unwrap();
///     }
/// }
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let counter = runtime.spawn(Counter::default());
/// let partition = drop_messages(&runtime, Match::message::<Ping>().to(&counter));
/// send(&counter.upid(), Ping);
/// send(&counter.upid(), Ping);
/// drop(partition); // heal
/// send(&counter.upid(), Ping);
/// let pings = runtime.block_on(dispatch(&counter, |c: &mut Counter| c.pings));
/// assert_eq!(pings.unwrap(), 1);
/// ```
pub fn drop_messages<M>(runtime: &Runtime, pattern: Match<M>) -> DropMessagesGuard {
    DropMessagesGuard {
        _rule: Standing::drop_every(runtime, pattern.into_parts().0),
    }
}

/// Drops matching messages while it lives; see [`drop_messages`].
#[must_use = "the messages are dropped only while the guard lives"]
#[derive(Debug)]
pub struct DropMessagesGuard {
    /// Held for its drop, which retires the rule.
    _rule: Standing,
}

/// Fails the test if a message `pattern` matches is seen while the returned guard lives
/// (libprocess's `EXPECT_NO_FUTURE_MESSAGES`). Matching messages are still delivered.
///
/// The filter runs on the sender's thread, often a worker, where a panic would only end the
/// sending process; so the guard records what it saw, and panics when it is dropped or
/// [`check`](NoMessagesGuard::check)ed.
///
/// # Panics
///
/// The guard panics, naming the first such message with its sender and receiver and where the
/// guard was made, when it is dropped or checked after a match (not while the thread is
/// already panicking).
///
/// # Examples
///
/// ```
/// use procession::{send, Message, Process, Runtime};
/// use procession_testkit::{expect_no_future_messages, Match};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
/// struct Shutdown;
///
/// struct Agent;
/// impl Process for Agent {}
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let agent = runtime.spawn(Agent);
/// let quiet = expect_no_future_messages(&runtime, Match::message::<Shutdown>().to(&agent));
/// // ... the scenario that must not shut the agent down ...
/// quiet.check(); // passes: nothing matched so far
/// ```
///
/// A match fails the test when the guard is dropped (or checked):
///
/// ```should_panic
/// # use procession::{send, Message, Process, Runtime};
/// # use procession_testkit::{expect_no_future_messages, Match};
/// # #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
/// # struct Shutdown;
/// # struct Agent;
/// # impl Process for Agent {}
/// # let runtime = Runtime::new();
/// # let _entered = runtime.enter();
/// # let agent = runtime.spawn(Agent);
/// let quiet = expect_no_future_messages(&runtime, Match::message::<Shutdown>().to(&agent));
/// send(&agent.upid(), Shutdown);
/// drop(quiet); // panics: "... saw message `<crate>::Shutdown` from anonymous@... to agent(1)@..."
/// ```
#[track_caller]
pub fn expect_no_future_messages<M>(runtime: &Runtime, pattern: Match<M>) -> NoMessagesGuard {
    let expectation = format!("expect_no_future_messages({pattern})");
    NoMessagesGuard(Watch::forbid(runtime, pattern.into_parts().0, expectation))
}

/// Records matching messages while it lives, and fails the test if there were any; see
/// [`expect_no_future_messages`].
#[must_use = "messages are watched only while the guard lives"]
#[derive(Debug)]
pub struct NoMessagesGuard(Watch);

impl NoMessagesGuard {
    /// Fails now if a matching message was seen so far.
    ///
    /// # Panics
    ///
    /// Panics, naming the first such message with its sender and receiver, if one was seen.
    pub fn check(&self) {
        self.0.check();
    }
}
