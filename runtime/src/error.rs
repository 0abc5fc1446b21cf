//! Why a future did not produce a value.
//!
//! A [`Future`](crate::Future) ends in one of four states. Three of them carry no value and are
//! reported through the opaque [`Error`]: *failed* (with a [`Failure`] saying why), *discarded*
//! (the producer honoured a discard request) and *abandoned* (the producer went away without an
//! answer: its [`Promise`](crate::Promise) was dropped, or the process a dispatch was sent to is
//! gone).
//!
//! ```
//! use procession::{Failure, Promise};
//!
//! let promise = Promise::<u32>::new();
//! let future = promise.future();
//! promise.fail(Failure::new("disk full"));
//! let error = future.error().unwrap();
//! assert!(error.is_failed());
//! assert_eq!(error.to_string(), "failed: disk full");
//! ```
//!
//! # Contract
//!
//! Errors are cheap to clone (a failure's source is shared), because every observer of a shared
//! future receives its own copy. The `Display` text is lower case and stable enough for logs, not
//! for matching: match with the predicates.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A failure: a message and, optionally, the error that caused it.
#[derive(Clone)]
pub struct Failure {
    message: Arc<str>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl Failure {
    /// A failure with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into().into(),
            source: None,
        }
    }

    /// A failure that wraps `source`; the message is `source`'s display text.
    pub fn from_error<E: StdError + Send + Sync + 'static>(source: E) -> Self {
        Failure {
            message: source.to_string().into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A failure with a message of its own, caused by `source`.
    pub fn with_source<E: StdError + Send + Sync + 'static>(
        message: impl Into<String>,
        source: E,
    ) -> Self {
        Failure {
            message: message.into().into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error that caused this failure, if it is an `E`: how a caller tells, say, a
    /// [`PipeError`](crate::pipe::PipeError) from other failures.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.as_deref()?.downcast_ref::<E>()
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Failure");
        d.field("message", &&*self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Failure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::new(message)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::new(message)
    }
}

/// Why a future has no value: it failed, was discarded, or was abandoned.
#[derive(Clone)]
pub struct Error {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Failed(Failure),
    Discarded,
    Abandoned,
}

impl Error {
    pub(crate) fn failed(failure: Failure) -> Self {
        Error {
            kind: Kind::Failed(failure),
        }
    }

    pub(crate) fn discarded() -> Self {
        Error {
            kind: Kind::Discarded,
        }
    }

    pub(crate) fn abandoned() -> Self {
        Error {
            kind: Kind::Abandoned,
        }
    }

    /// The producer failed; [`failure`](Self::failure) says why.
    pub fn is_failed(&self) -> bool {
        matches!(self.kind, Kind::Failed(_))
    }

    /// The producer honoured a discard request.
    pub fn is_discarded(&self) -> bool {
        matches!(self.kind, Kind::Discarded)
    }

    /// The producer went away without completing the future.
    pub fn is_abandoned(&self) -> bool {
        matches!(self.kind, Kind::Abandoned)
    }

    /// The failure, when the future failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.kind {
            Kind::Failed(failure) => Some(failure),
            _ => None,
        }
    }

    /// Turns this error into a [`Failure`], so that discarded and abandoned inputs can be reported
    /// as the failure of a derived computation.
    pub fn into_failure(self) -> Failure {
        match self.kind {
            Kind::Failed(failure) => failure,
            Kind::Discarded => Failure::new("discarded"),
            Kind::Abandoned => Failure::new("abandoned"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Failed(failure) => f.debug_tuple("Failed").field(failure).finish(),
            Kind::Discarded => f.write_str("Discarded"),
            Kind::Abandoned => f.write_str("Abandoned"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Failed(failure) => write!(f, "failed: {failure}"),
            Kind::Discarded => f.write_str("discarded"),
            Kind::Abandoned => f.write_str("abandoned: the producer went away without an answer"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            Kind::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        Error::failed(failure)
    }
}
