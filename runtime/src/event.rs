//! The closed set of events a process's mailbox carries, and why a process ended.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::pid::Upid;
use crate::transport::InboundRun;

/// One event for a process of type `P`. A process handles its events one at a time, in order.
///
/// Every variant is at most two words, so a queue slot is small; the rare, larger events are
/// boxed. (`P::initialize` is not an event: the first visit runs it before any event.)
pub(crate) enum Event<P> {
    /// Runs a closure in the process's context. Dropping it unrun abandons its result.
    Dispatch(Box<dyn FnOnce(&mut P) + Send>),
    /// A message for an installed handler.
    Message(Box<Envelope>),
    /// Messages a transport received in a row, for installed handlers: one event for many, so
    /// a stream costs one queue slot, one box and one unit of work per run, not per message.
    Run(Box<InboundRun>),
    /// A linked process ended.
    Exited(Box<(Upid, ExitReason)>),
    /// Ends the process after the events queued before it.
    Terminate,
}

/// A message on its way to a handler.
pub(crate) struct Envelope {
    pub(crate) from: Upid,
    pub(crate) body: Payload,
}

/// A message body: the value itself between local processes, bytes from a transport.
pub(crate) enum Payload {
    Local {
        name: &'static str,
        value: Box<dyn Any + Send>,
    },
    Encoded {
        name: Arc<str>,
        bytes: Bytes,
    },
}

impl Payload {
    pub(crate) fn name(&self) -> &str {
        match self {
            Payload::Local { name, .. } => name,
            Payload::Encoded { name, .. } => name,
        }
    }

    /// The name, kept past the payload's delivery without copying it.
    pub(crate) fn shared_name(&self) -> Cow<'static, str> {
        match self {
            Payload::Local { name, .. } => Cow::Borrowed(name),
            Payload::Encoded { name, .. } => Cow::Owned(name.to_string()),
        }
    }
}

/// What a handler is given: the value itself between local processes, or the bytes from a
/// transport (borrowed: a run's messages share one buffer, set as the decode source by the
/// caller, see [`shared_bytes`](crate::message::shared_bytes)).
pub(crate) enum Body<'a> {
    Local(Box<dyn Any + Send>),
    Encoded(&'a [u8]),
}

/// Why a process ended, as reported to the processes linked to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitReason {
    /// It was terminated and ran `finalize`.
    Normal,
    /// A handler panicked; `finalize` did not run. Carries the panic message.
    Panicked(Arc<str>),
    /// Its node became unreachable (the connection broke or the peer is gone).
    Lost,
    /// It was not running when the link was made: it ended earlier or never existed.
    NotFound,
    /// The runtime's shutdown gave up on it: it had not ended by the deadline.
    Abandoned,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("terminated"),
            ExitReason::Panicked(message) => write!(f, "panicked: {message}"),
            ExitReason::Lost => f.write_str("lost: its node is unreachable"),
            ExitReason::NotFound => f.write_str("not found"),
            ExitReason::Abandoned => f.write_str("abandoned at shutdown"),
        }
    }
}
