//! [`Match`]: which messages an expectation is about; [`Captured`]: the copy of one it caught.

use std::any::type_name;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use procession::message::decode;
use procession::{EventView, Failure, Message, MessageBody, Upid};

use super::rules::{BodyTest, Pattern};

/// Copies a matched message's body into what its capture holds.
pub(crate) type Copier<M> = fn(&MessageBody<'_>) -> Result<M, Failure>;

/// Which messages a filter helper is about: a message type (or name), optionally from one
/// sender, to one receiver, and with a body that passes a test. `M` is what a caught message is
/// copied into.
///
/// ```
/// use procession::{Message, Process, Runtime, Upid};
/// use procession_testkit::Match;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
/// struct Ping(u32);
///
/// struct Idle;
/// impl Process for Idle {}
///
/// let runtime = Runtime::new();
/// let (a, b) = (runtime.spawn(Idle), runtime.spawn(Idle));
/// let from_a_to_b = Match::message::<Ping>().from(&a).to(&b);
/// let any_ping = Match::message::<Ping>();
/// let by_name = Match::named("other_crate::Pong").to(b.upid());
/// let big_pings = Match::message::<Ping>().body(|ping: &Ping| ping.0 > 100);
/// # let _ = (from_a_to_b, any_ping, by_name, big_pings);
/// ```
pub struct Match<M> {
    name: String,
    from: Option<Upid>,
    to: Option<Upid>,
    body: Option<BodyTest>,
    copy: Copier<M>,
}

impl Match<AnyMessage> {
    /// Matches messages of type `M`, from anyone to anyone; a caught one is copied as an `M`
    /// (cloned when it was sent locally, decoded when it arrived encoded).
    pub fn message<M: Message + Clone + Sync>() -> Match<M> {
        Match {
            name: M::NAME.to_owned(),
            from: None,
            to: None,
            body: None,
            copy: copy_typed::<M>,
        }
    }

    /// Matches messages by [`Message::NAME`], for a type this test cannot name; a caught one is
    /// an [`AnyMessage`].
    pub fn named(name: impl Into<String>) -> Match<AnyMessage> {
        Match {
            name: name.into(),
            from: None,
            to: None,
            body: None,
            copy: copy_any,
        }
    }
}

impl<M> Match<M> {
    /// Only messages that claim to come from `sender` (a `&Pid`, a `Pid` or a `Upid`).
    pub fn from(mut self, sender: impl Into<Upid>) -> Self {
        self.from = Some(sender.into());
        self
    }

    /// Only messages addressed to `receiver` (a `&Pid`, a `Pid` or a `Upid`).
    pub fn to(mut self, receiver: impl Into<Upid>) -> Self {
        self.to = Some(receiver.into());
        self
    }

    /// The rule's pattern, and how to copy a message it matched.
    pub(crate) fn into_parts(self) -> (Pattern, Copier<M>) {
        let Match {
            name,
            from,
            to,
            body,
            copy,
        } = self;
        (
            Pattern::Message {
                name,
                from,
                to,
                body,
            },
            copy,
        )
    }

    /// Copies the message of `event`, which this match matched.
    pub(crate) fn capture(copy: Copier<M>, event: &EventView<'_>) -> Result<Captured<M>, Failure> {
        match event {
            EventView::Message { from, to, body, .. } => Ok(Captured {
                from: (*from).clone(),
                to: (*to).clone(),
                message: copy(body)?,
            }),
            _ => Err(Failure::new("a message rule matched another kind of event")),
        }
    }
}

impl<M: Message> Match<M> {
    /// Only messages whose body `test` accepts, given the message as an `M` (borrowed when it
    /// was sent locally, decoded when it arrived encoded). Each call adds a test; a message
    /// must pass all of them.
    ///
    /// A body that is not an `M` (an encoded one that does not decode) does not match: the
    /// test is not called and the rule never sees the message.
    ///
    /// The test runs in the filter, on the sender's thread, before the message is queued; it
    /// must not block, and if it panics, the sender panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use procession::{send, Message, Process, Runtime};
    /// use procession_testkit::{await_ready, drop_messages, future_message, Match};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
    /// struct Heartbeat { seq: u32 }
    ///
    /// struct Master;
    /// impl Process for Master {}
    ///
    /// let runtime = Runtime::new();
    /// let _entered = runtime.enter();
    /// let master = runtime.spawn(Master);
    /// let odd = Match::message::<Heartbeat>().body(|h: &Heartbeat| h.seq % 2 == 1);
    /// let _lossy = drop_messages(&runtime, odd.to(&master));
    /// let second = future_message(&runtime, Match::message().body(|h: &Heartbeat| h.seq == 2));
    /// for seq in 1..=4 {
    ///     send(&master.upid(), Heartbeat { seq });
    /// }
    /// assert_eq!(await_ready(&second).message.seq, 2);
    /// ```
    pub fn body(mut self, test: impl Fn(&M) -> bool + Send + Sync + 'static) -> Self {
        let test: BodyTest = Arc::new(move |body: &MessageBody<'_>| match body {
            MessageBody::Local(value) => value.downcast_ref::<M>().is_some_and(&test),
            // Decoded again if the rule copies the message: tests are for tests, not hot paths.
            MessageBody::Encoded(bytes) => decode::<M>(bytes).is_ok_and(|message| test(&message)),
        });
        self.body = Some(match self.body.take() {
            None => test,
            Some(earlier) => Arc::new(move |body: &MessageBody<'_>| earlier(body) && test(body)),
        });
        self
    }
}

impl<M> fmt::Debug for Match<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Match")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("body", &self.body.as_ref().map(|_| "a test"))
            .finish()
    }
}

impl<M> fmt::Display for Match<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message `{}`", self.name)?;
        if let Some(from) = &self.from {
            write!(f, " from {from}")?;
        }
        if let Some(to) = &self.to {
            write!(f, " to {to}")?;
        }
        if self.body.is_some() {
            write!(f, " with a body test")?;
        }
        Ok(())
    }
}

fn copy_typed<M: Message + Clone>(body: &MessageBody<'_>) -> Result<M, Failure> {
    match body {
        MessageBody::Local(value) => value.downcast_ref::<M>().cloned().ok_or_else(|| {
            Failure::new(format!(
                "a local message named {:?} is not a {}",
                M::NAME,
                type_name::<M>()
            ))
        }),
        MessageBody::Encoded(bytes) => decode::<M>(bytes).map_err(Failure::from_error),
    }
}

fn copy_any(body: &MessageBody<'_>) -> Result<AnyMessage, Failure> {
    Ok(AnyMessage {
        encoded: match body {
            MessageBody::Encoded(bytes) => Some((*bytes).clone()),
            MessageBody::Local(_) => None,
        },
    })
}

/// A message caught by a filter helper: a copy of it, and who sent it to whom. The receiver
/// gets its own (unless the helper dropped it).
#[derive(Clone)]
pub struct Captured<M> {
    /// The sender, as the message claims ([`post`](procession::post) can claim anyone).
    pub from: Upid,
    /// The receiver.
    pub to: Upid,
    /// The copy.
    pub message: M,
}

impl<M> fmt::Debug for Captured<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without `M: Debug`, so any message can be awaited with `await_ready`.
        f.debug_struct("Captured")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("message", &type_name::<M>())
            .finish()
    }
}

/// A message caught by name ([`Match::named`]), whose type the test does not name.
#[derive(Clone, Debug)]
pub struct AnyMessage {
    encoded: Option<Bytes>,
}

impl AnyMessage {
    /// The body as it arrived from a transport; `None` for a message sent by a local process,
    /// which travels as a value of a type this capture did not name.
    pub fn encoded(&self) -> Option<&Bytes> {
        self.encoded.as_ref()
    }

    /// Decodes the body as an `M`.
    ///
    /// # Errors
    ///
    /// Fails for a message sent locally (it has no encoded body; match it with
    /// [`Match::message`] instead) and for a body that is not an encoded `M`.
    pub fn decode<M: Message>(&self) -> Result<M, Failure> {
        match &self.encoded {
            Some(bytes) => decode::<M>(bytes).map_err(Failure::from_error),
            None => Err(Failure::new(format!(
                "the message was sent locally and has no encoded body; match it with \
                 Match::message::<{}>() to copy it",
                type_name::<M>()
            ))),
        }
    }
}
