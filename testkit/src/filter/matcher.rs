//! [`Match`]: which messages an expectation is about; [`Captured`]: the copy of one it caught.

use std::any::type_name;
use std::fmt;

use bytes::Bytes;
use procession::message::decode;
use procession::{EventView, Failure, Message, MessageBody, Upid};

/// Which messages a filter helper is about: a message type (or name), optionally from one
/// sender and to one receiver. `M` is what a caught message is copied into.
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
/// # let _ = (from_a_to_b, any_ping, by_name);
/// ```
pub struct Match<M> {
    pub(crate) name: String,
    pub(crate) from: Option<Upid>,
    pub(crate) to: Option<Upid>,
    pub(crate) copy: fn(&MessageBody<'_>) -> Result<M, Failure>,
}

impl Match<AnyMessage> {
    /// Matches messages of type `M`, from anyone to anyone; a caught one is copied as an `M`
    /// (cloned when it was sent locally, decoded when it arrived encoded).
    pub fn message<M: Message + Clone + Sync>() -> Match<M> {
        Match {
            name: M::NAME.to_owned(),
            from: None,
            to: None,
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

    /// Copies the message of `event`, which this match matched.
    pub(crate) fn capture(
        copy: fn(&MessageBody<'_>) -> Result<M, Failure>,
        event: &EventView<'_>,
    ) -> Result<Captured<M>, Failure> {
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

impl<M> fmt::Debug for Match<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Match")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("to", &self.to)
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
