//! Remote pipes: a [`Reader`] on one node fed by a [`Writer`] on another, with back-pressure
//! across the network.
//!
//! The reading node makes the pipe: [`remote_pipe`] (chunks of `Bytes`) or [`remote_stream`]
//! (typed items) gives the local `Reader` and a [`RemoteWriter`], a small serializable token.
//! Send the token to the writing node inside any message; there [`RemoteWriter::open`] turns it
//! into an ordinary local `Writer`. From then on the two ends behave as the two ends of a local
//! pipe: `write` is ready while the data fits, `close` ends the stream after the data, `fail`
//! fails the reader after the data, and closing the reader fails the writer's later writes.
//!
//! ```
//! use bytes::Bytes;
//! use procession::{Runtime, Upid};
//! use procession_net::{pipe::remote_pipe, Net};
//!
//! let (reading, writing) = (Runtime::new(), Runtime::new());
//! let _nets = (Net::start(&reading)?, Net::start(&writing)?);
//! let (reader, token) = {
//!     let _entered = reading.enter();
//!     remote_pipe()
//! };
//! // ... the token travels to the writing node in a message; there:
//! let mut writer = {
//!     let _entered = writing.enter();
//!     token.open()
//! };
//! writer.write(Bytes::from_static(b"across "));
//! writer.write(Bytes::from_static(b"the network"));
//! writer.close();
//! let all = reading.block_on(reader.read_all())?;
//! assert_eq!(&all[..], b"across the network");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Flow control
//!
//! Each side holds its data in a bounded local pipe; between them, a *forwarder* process on
//! the writing node and a *receiver* process on the reading node move items with credit-based
//! flow control. The receiver grants credit for a window (bytes for a pipe of `Bytes`, items
//! for a typed stream) and grants it again as items leave for the local pipe; the forwarder
//! sends only while it has credit (a single item larger than the window goes alone). So a slow
//! reader slows the remote writer, and neither node holds more than its local pipe's bound plus
//! the window and one item, however fast the writer writes.
//!
//! # Failures
//!
//! The forwarder and the receiver link to each other. If the connection breaks or either node
//! crashes before the stream ends, both ends fail with [`RemotePipeError::Lost`]: the reader's
//! next read after the data that arrived, the writer's next write. A writer's `fail(e)` reaches
//! the reader as [`RemotePipeError::Failed`] with `e`'s message. A token opens once: a second
//! `open` gives a writer whose writes fail with [`RemotePipeError::AlreadyOpen`]; opening a
//! token whose reader has already closed gives a writer whose writes fail with
//! `PipeError::ReaderClosed`. A token must be made after the reading node's transport started
//! (it carries the node's address).
//!
//! Remote pipes count on what the real transport gives: while a connection lives, messages
//! arrive once and in order. On a simulated network that loses or reorders messages, a gap
//! fails the pipe ([`RemotePipeError::Protocol`]), and a lost grant of credit can stall it.

mod forwarder;
mod receiver;

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use procession::pipe::{Reader, Writer};
use procession::{ExitReason, Message, Upid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a remote pipe's items must be: sendable in a message.
pub trait Item: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Item for T {}

/// The window of [`remote_pipe`]: how many bytes may be in flight between the nodes.
pub const DEFAULT_WINDOW: usize = 1 << 20;

/// A pipe of `Bytes` chunks whose writer will live on another node, with the default window
/// ([`DEFAULT_WINDOW`]); see the [module docs](self).
///
/// # Panics
///
/// Panics if no runtime is current (the receiver process is spawned on it).
pub fn remote_pipe() -> (Reader<Bytes>, RemoteWriter<Bytes>) {
    remote_pipe_with_window(DEFAULT_WINDOW)
}

/// [`remote_pipe`] with a window of `bytes` in flight (and local pipes of that bound).
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn remote_pipe_with_window(bytes: usize) -> (Reader<Bytes>, RemoteWriter<Bytes>) {
    let (reader, writer) = procession::pipe::pipe_with_capacity(bytes);
    let token = receiver::start(writer, bytes as u64);
    (reader, token)
}

/// A stream of typed items whose writer will live on another node, with a window of `items`
/// in flight (and local streams of that bound); see the [module docs](self).
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn remote_stream<T: Item>(items: usize) -> (Reader<T>, RemoteWriter<T>) {
    let (reader, writer) = procession::pipe::stream(items.max(1));
    let token = receiver::start(writer, items.max(1) as u64);
    (reader, token)
}

/// The writing end of a remote pipe, not yet opened: a token naming the reading node's
/// receiver. Serializable, so it travels inside a message; [`open`](Self::open) it on the node
/// that writes.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RemoteWriter<T: Item = Bytes> {
    receiver: Upid,
    window: u64,
    #[serde(skip)]
    item: PhantomData<fn() -> T>,
}

impl<T: Item> RemoteWriter<T> {
    /// The receiver process on the reading node.
    pub fn receiver(&self) -> &Upid {
        &self.receiver
    }

    /// Opens the writing end on the current runtime: a local `Writer` whose items flow to the
    /// remote reader. See the [module docs](self) for how its ends fail.
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current (the forwarder process is spawned on it).
    pub fn open(self) -> Writer<T> {
        forwarder::start(self.receiver, self.window)
    }
}

impl<T: Item> Clone for RemoteWriter<T> {
    fn clone(&self) -> Self {
        RemoteWriter {
            receiver: self.receiver.clone(),
            window: self.window,
            item: PhantomData,
        }
    }
}

impl<T: Item> fmt::Debug for RemoteWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWriter")
            .field("receiver", &self.receiver)
            .field("window", &self.window)
            .finish()
    }
}

/// Why a remote pipe's end failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemotePipeError {
    /// The other end's process ended before the stream did: its node crashed or became
    /// unreachable, or the process was terminated.
    Lost(ExitReason),
    /// The writer failed the stream with this message.
    Failed(String),
    /// The token was opened before: a remote pipe has one writer.
    AlreadyOpen,
    /// The other end broke the protocol (a gap in the sequence of items).
    Protocol(String),
}

impl fmt::Display for RemotePipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemotePipeError::Lost(reason) => {
                write!(f, "remote pipe: the other end was lost ({reason})")
            }
            RemotePipeError::Failed(message) => {
                write!(f, "remote pipe: the writer failed: {message}")
            }
            RemotePipeError::AlreadyOpen => f.write_str("remote pipe: the token was opened before"),
            RemotePipeError::Protocol(what) => write!(f, "remote pipe: protocol error: {what}"),
        }
    }
}

impl std::error::Error for RemotePipeError {}

/// The weight of an item against the window: its length for `Bytes`, one otherwise (what the
/// local pipes count too). An empty chunk weighs one, so it still takes credit.
fn weight<T: 'static>(item: &T) -> u64 {
    let any: &dyn std::any::Any = item;
    any.downcast_ref::<Bytes>()
        .map_or(1, |chunk| chunk.len().max(1) as u64)
}

/// Forwarder to receiver: this forwarder writes to the pipe from now on.
#[derive(Serialize, Deserialize)]
struct Open;

impl Message for Open {
    const NAME: &'static str = "procession.pipe.Open";
}

/// Forwarder to receiver: the next item.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Data<T: Item> {
    seq: u64,
    #[serde(with = "item")]
    item: T,
}

/// An item on the wire, as its own serde implementation has it, except that a chunk of `Bytes`
/// is decoded as a slice of the frame it arrived in rather than a copy (the encoding is the
/// same: a length and the bytes).
mod item {
    use std::any::{Any, TypeId};

    use bytes::Bytes;
    use procession::message::shared_bytes;
    use serde::{de, Deserializer, Serializer};

    use super::Item;

    pub(super) fn serialize<T: Item, S: Serializer>(
        item: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        item.serialize(serializer)
    }

    pub(super) fn deserialize<'de, T: Item, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        if TypeId::of::<T>() != TypeId::of::<Bytes>() {
            return T::deserialize(deserializer);
        }
        let mut chunk = Some(shared_bytes::deserialize(deserializer)?);
        let any: &mut dyn Any = &mut chunk;
        any.downcast_mut::<Option<T>>()
            .and_then(Option::take)
            .ok_or_else(|| de::Error::custom("a chunk of bytes that is not `Bytes`"))
    }
}

impl<T: Item> Message for Data<T> {
    const NAME: &'static str = "procession.pipe.Data";
}

/// Forwarder to receiver: the stream ended, cleanly or with the writer's failure.
#[derive(Serialize, Deserialize)]
struct End {
    failure: Option<String>,
}

impl Message for End {
    const NAME: &'static str = "procession.pipe.End";
}

/// Receiver to forwarder: this much more may be sent.
#[derive(Serialize, Deserialize)]
struct Credit(u64);

impl Message for Credit {
    const NAME: &'static str = "procession.pipe.Credit";
}

/// Receiver to forwarder: the reader closed (or the token was opened before).
#[derive(Serialize, Deserialize)]
struct Closed {
    already_open: bool,
}

impl Message for Closed {
    const NAME: &'static str = "procession.pipe.Closed";
}

impl From<RemotePipeError> for procession::Failure {
    fn from(error: RemotePipeError) -> Self {
        procession::Failure::from_error(error)
    }
}
