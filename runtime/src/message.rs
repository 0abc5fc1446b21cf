//! Typed messages: [`send`] a [`Message`] to any [`Upid`], local or remote; a process receives
//! it through a handler it installed for that message type.
//!
//! Messages are the untyped half of procession's communication: where [`dispatch`](crate::dispatch())
//! needs a typed [`Pid`](crate::Pid) in the same runtime, a message needs only an address, can
//! cross the network, and tells the handler who sent it so it can reply.
//!
//! ```
//! use procession::{send, Context, Message, Process, Runtime, Upid};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Ping(u32);
//! impl Message for Ping { const NAME: &'static str = "doc::Ping"; }
//!
//! #[derive(Default)]
//! struct Ponger { seen: Vec<u32> }
//! impl Process for Ponger {
//!     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
//!         ctx.install(|me: &mut Self, _from: &Upid, Ping(n)| me.seen.push(n)).unwrap();
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let ponger = runtime.spawn(Ponger::default());
//! {
//!     let _entered = runtime.enter();
//!     send(&ponger.upid(), Ping(7));
//! }
//! let seen = runtime.block_on(procession::dispatch(&ponger, |p: &mut Ponger| p.seen.clone()));
//! assert_eq!(seen.unwrap(), vec![7]);
//! ```
//!
//! # Contract
//!
//! Local delivery moves the value itself; only a remote receiver makes the runtime encode it
//! (serde with bincode 2 and fixed-width integers; [`encode`] and [`decode`] are that codec).
//! Messages from one sender to one receiver arrive in the order sent. A message to an unknown
//! process, to a process without a handler for its name, or that fails to decode is dropped,
//! counted and logged at debug level; sending never fails and never panics. A message's [`NAME`](Message::NAME) is its identity on the
//! wire: keep it stable when moving the type.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Weak;

use bincode::config::{Configuration, Fixint, Limit, LittleEndian, NoLimit};
use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context;
use crate::event::{Body, Envelope, Payload};
use crate::handle::{Handle, Shared};
use crate::pid::Upid;
use crate::process::cell::ProcessCell;
use crate::process::Process;
use crate::transport::{EncodeBody, Encoder, Erased, InboundRun, Outgoing};

pub mod shared_bytes;

/// A value that can be sent to a process: serializable, with a stable name.
///
/// `#[derive(Message)]` (from the macros crate) implements it with the name
/// `crate_name::TypeName`; by hand:
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Heartbeat { agent: String }
/// impl procession::Message for Heartbeat { const NAME: &'static str = "cluster::Heartbeat"; }
/// ```
pub trait Message: Serialize + DeserializeOwned + Send + 'static {
    /// The name that identifies this message type, locally and on the wire.
    const NAME: &'static str;
}

/// Sends `message` to `to` from the current process (or from an anonymous sender outside any
/// process).
///
/// Returns at once; delivery is asynchronous. A local receiver gets the value itself; a remote
/// one gets it through the transport.
///
/// # Panics
///
/// Panics if no runtime is current.
// Inlined so that the caller builds the message where `deliver` reads it: passed by value
// through one more call it was copied, and the copy stalled on the caller's stores (4% of a
// remote stream's sending time).
#[inline]
pub fn send<M: Message>(to: &Upid, message: M) {
    if let Some(sender) = context::current_sender() {
        return deliver(&sender.handle, (&sender.upid, true), to, message);
    }
    let handle = context::expect_current("send");
    let from = context::current_upid().unwrap_or_else(|| anonymous(&handle));
    deliver(&handle, (&from, false), to, message);
}

/// Sends `message` to `to` as if `from` had sent it. The receiver's handler sees `from` as the
/// sender; this is how a test replays or spoofs a message (libprocess's `post`). `from` need
/// not exist: a reply to it is dropped and counted like any undeliverable message.
///
/// # Panics
///
/// Panics if no runtime is current.
///
/// # Examples
///
/// ```
/// use procession::{dispatch, post, Context, Message, Process, Runtime, Upid};
///
/// #[derive(serde::Serialize, serde::Deserialize, Message)]
/// struct Register { hostname: String }
///
/// #[derive(Default)]
/// struct Master { agents: Vec<(Upid, String)> }
/// impl Process for Master {
///     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
///         ctx.install(|m: &mut Self, from: &Upid, r: Register| {
///             m.agents.push((from.clone(), r.hostname))
///         })
///         .unwrap();
///     }
/// }
///
/// let runtime = Runtime::new();
/// let _entered = runtime.enter();
/// let master = runtime.spawn(Master::default());
/// let agent: Upid = "agent(1)@10.0.0.2:5051".parse().unwrap();
/// post(&agent, &master.upid(), Register { hostname: "host-a".into() });
/// let agents = runtime.block_on(dispatch(&master, |m: &mut Master| m.agents.clone())).unwrap();
/// assert_eq!(agents, [(agent, "host-a".to_owned())]);
/// ```
pub fn post<M: Message>(from: &Upid, to: &Upid, message: M) {
    let handle = context::expect_current("post");
    deliver(&handle, (from, false), to, message);
}

/// Delivers `message` from `from` to `to`; `from_handler` says that `from` is the running
/// process of `handle` sending from its handler (the transport needs no more checks then).
fn deliver<M: Message>(
    handle: &Handle,
    (from, from_handler): (&Upid, bool),
    to: &Upid,
    message: M,
) {
    if handle.is_local(to.address()) {
        enqueue(
            handle,
            from,
            to,
            M::NAME,
            Box::new(message),
            encode_any::<M>,
        );
    } else {
        // Encoded by the transport straight from here: the value is never boxed.
        let outgoing = Outgoing::value(M::NAME, &message);
        if from_handler {
            handle.send_remote_from_handler(from, to, &outgoing);
        } else {
            handle.send_remote(from, to, &outgoing);
        }
    }
}

/// Delivers `value` under `name`: the value itself to a local receiver, encoded by `encoder`
/// for a remote one.
pub(crate) fn deliver_as<V: Any + Send>(
    handle: &Handle,
    from: &Upid,
    to: &Upid,
    name: &'static str,
    value: V,
    encoder: Encoder,
) {
    if handle.is_local(to.address()) {
        enqueue(handle, from, to, name, Box::new(value), encoder);
    } else {
        handle.send_remote(from, to, &Outgoing::value(name, &Erased(&value, encoder)));
    }
}

/// Queues local `value` for local `to`; `encoder` encodes it should it leave the node after
/// all (a delegate forwarding it).
fn enqueue(
    handle: &Handle,
    from: &Upid,
    to: &Upid,
    name: &'static str,
    value: Box<dyn Any + Send>,
    encoder: Encoder,
) {
    let envelope = Envelope {
        from: from.clone(),
        body: Payload::Local { name, value },
    };
    handle.route(to, envelope, encoder);
}

impl<M: Message> EncodeBody for M {
    fn encode_body(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        encode_to(self, out)
    }
}

/// Appends a local value known to be an `M`, encoded, to `out`: for a receiver on another node.
fn encode_any<M: Message>(value: &(dyn Any + Send), out: &mut BytesMut) -> Result<(), CodecError> {
    match value.downcast_ref::<M>() {
        Some(message) => encode_to(message, out),
        None => Err(CodecError::new(
            M::NAME,
            "the value is not this message".into(),
        )),
    }
}

/// The sender of messages sent from outside any process.
fn anonymous(handle: &Handle) -> Upid {
    handle.upid("anonymous")
}

/// How a message travels between nodes: bincode's standard configuration (little-endian, no
/// size limit) with fixed-width integers, not variable-length ones. An integer or a length costs
/// its full width on the wire (8 bytes for a `u64` or a length), and in exchange encoding and
/// decoding it is a plain copy without a branch a byte: measured on a stream of 100-byte
/// messages between two nodes, 6% less time in the sending handler and 7% less CPU a message.
pub(crate) const CONFIG: Configuration<LittleEndian, Fixint, NoLimit> =
    bincode::config::standard().with_fixed_int_encoding();

/// The most a decoded message may allocate for its strings, vectors and other containers:
/// 256 MiB, 16 times the transport's default largest frame.
pub const MAX_DECODED: usize = 256 * 1024 * 1024;

/// [`CONFIG`] for decoding: the same layout, with a bound on what the lengths in the bytes may
/// make the decoder allocate. Without it a hostile 8-byte length prefix asks for up to 2^64
/// bytes, which panics (capacity overflow) or aborts the node (allocation failure) before the
/// read that would find the bytes missing.
pub(crate) const DECODE: Configuration<LittleEndian, Fixint, Limit<MAX_DECODED>> =
    CONFIG.with_limit::<MAX_DECODED>();

/// Encodes `message` the way the runtime carries it to another node (serde with bincode 2 and
/// fixed-width integers), for code that handles message bodies itself: a transport, a test that
/// feeds [`Inbound::deliver`](crate::Inbound::deliver).
///
/// # Errors
///
/// Fails if the message's `Serialize` implementation fails.
///
/// # Examples
///
/// ```
/// use procession::message::{decode, encode};
///
/// #[derive(serde::Serialize, serde::Deserialize, procession::Message, PartialEq, Debug)]
/// struct Ping(u32);
///
/// let bytes = encode(&Ping(7)).unwrap();
/// assert_eq!(decode::<Ping>(&bytes).unwrap(), Ping(7));
/// assert!(decode::<Ping>(&bytes[..0]).is_err());
/// ```
pub fn encode<M: Message>(message: &M) -> Result<Bytes, CodecError> {
    // Sized first, then written into one allocation of that size: growing the buffer instead
    // copies the bytes at every doubling, and a 64 KiB body would end in a 128 KiB buffer that
    // the allocator maps fresh (and the kernel faults in page by page) for every message.
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(message, &mut size, CONFIG)
        .map_err(|error| CodecError::new(M::NAME, error.to_string()))?;
    let mut out = BytesMut::with_capacity(size.bytes_written);
    encode_to(message, &mut out)?;
    Ok(out.freeze())
}

/// Appends `message`, encoded as [`encode`] does, to `out`, which grows as needed: meant for a
/// buffer that is reused (a transport's send buffer), where growing is paid once, not per
/// message.
fn encode_to<M: Message>(message: &M, out: &mut BytesMut) -> Result<(), CodecError> {
    encode_value(M::NAME, message, out)
}

/// Appends `value` encoded as a message body to `out`; an error names message `name`.
pub(crate) fn encode_value(
    name: &'static str,
    value: &impl Serialize,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_writer(value, Appender(out), CONFIG)
        .map_err(|error| CodecError::new(name, error.to_string()))
}

/// Bincode's writer for a growing buffer: each write is one append, inlined into the encoder.
struct Appender<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for Appender<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a body that [`encode`] produced (what a receiver on another node does).
///
/// # Errors
///
/// Fails if `bytes` is not exactly one encoded `M`: malformed, truncated, followed by trailing
/// bytes, or with lengths that would make it allocate more than [`MAX_DECODED`] in all.
pub fn decode<M: Message>(bytes: &[u8]) -> Result<M, CodecError> {
    match bincode::serde::decode_from_slice(bytes, DECODE) {
        Ok((message, read)) if read == bytes.len() => Ok(message),
        Ok((_, read)) => Err(CodecError::new(
            M::NAME,
            format!("{} trailing bytes after the message", bytes.len() - read),
        )),
        Err(error) => Err(CodecError::new(M::NAME, error.to_string())),
    }
}

/// A message body could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError {
    name: &'static str,
    reason: String,
}

impl CodecError {
    pub(crate) fn new(name: &'static str, reason: String) -> Self {
        CodecError { name, reason }
    }

    /// The name of the message type being encoded or decoded.
    pub fn message_name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for CodecError {}

/// `install` or `delegate` refused: a handler for this message name is installed already, the
/// name is the one requests travel under, or a process delegated to itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallError {
    name: &'static str,
    why: Refused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    Taken,
    Reserved,
    ToItself,
}

impl InstallError {
    fn taken(name: &'static str) -> Self {
        let why = match name == crate::request::ASKED {
            true => Refused::Reserved,
            false => Refused::Taken,
        };
        InstallError { name, why }
    }

    pub(crate) fn to_itself(name: &'static str) -> Self {
        InstallError {
            name,
            why: Refused::ToItself,
        }
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        match self.why {
            Refused::Taken => write!(f, "a handler for message {name:?} is already installed"),
            Refused::Reserved => write!(f, "{name:?} is the name requests travel under"),
            Refused::ToItself => {
                write!(f, "message {name:?} delegated to the process itself")
            }
        }
    }
}

impl std::error::Error for InstallError {}

/// A handler, type-erased: an encoded body is decoded with its buffer set as the
/// [`shared_bytes`] source by the caller.
pub(crate) type Handler<P> = Box<dyn FnMut(&mut P, &Upid, Body<'_>) -> Result<(), String> + Send>;

type HandlerMap<P> = HashMap<&'static str, Handler<P>, foldhash::fast::RandomState>;

/// A process's message handlers by name, and its request handlers by request name (a request
/// travels under one name of its own, [`ASKED`](crate::request::ASKED), so that a message and
/// a request of one type never meet each other's handler). Both maps are allocated together on
/// the first handler, so a process without handlers pays one pointer.
pub(crate) struct Handlers<P> {
    maps: Option<Box<Maps<P>>>,
}

impl<P> Default for Handlers<P> {
    fn default() -> Self {
        Handlers { maps: None }
    }
}

struct Maps<P> {
    messages: HandlerMap<P>,
    requests: HandlerMap<P>,
}

impl<P> Default for Maps<P> {
    fn default() -> Self {
        Maps {
            messages: HandlerMap::default(),
            requests: HandlerMap::default(),
        }
    }
}

impl<P: Process> Handlers<P> {
    pub(crate) fn install<M, F>(&mut self, mut handler: F) -> Result<(), InstallError>
    where
        M: Message,
        F: FnMut(&mut P, &Upid, M) + Send + 'static,
    {
        let map = &mut self.maps.get_or_insert_with(Default::default).messages;
        // Requests' own name: a plain handler for it could never run.
        if map.contains_key(M::NAME) || M::NAME == crate::request::ASKED {
            return Err(InstallError::taken(M::NAME));
        }
        let erased: Handler<P> = Box::new(move |process, from, body| {
            let message = match body {
                Body::Local(value) => *value
                    .downcast::<M>()
                    .map_err(|_| format!("a local message named {:?} has another type", M::NAME))?,
                Body::Encoded(bytes) => decode::<M>(bytes).map_err(|e| e.to_string())?,
            };
            handler(process, from, message);
            Ok(())
        });
        map.insert(M::NAME, erased);
        Ok(())
    }

    /// Installs `handler` for requests named `name` (see `Context::install_request`).
    pub(crate) fn install_request(
        &mut self,
        name: &'static str,
        handler: Handler<P>,
    ) -> Result<(), InstallError> {
        let requests = &mut self.maps.get_or_insert_with(Default::default).requests;
        if requests.contains_key(name) {
            return Err(InstallError::taken(name));
        }
        requests.insert(name, handler);
        Ok(())
    }

    /// Installs, for `M`'s name, a handler that forwards the message to `to` unchanged.
    pub(crate) fn delegate<M: Message>(
        &mut self,
        runtime: Weak<Shared>,
        to: Upid,
    ) -> Result<(), InstallError> {
        let map = &mut self.maps.get_or_insert_with(Default::default).messages;
        if map.contains_key(M::NAME) || M::NAME == crate::request::ASKED {
            return Err(InstallError::taken(M::NAME));
        }
        let forward: Handler<P> = Box::new(move |_, from, body| {
            if let Some(handle) = runtime.upgrade() {
                let body = match body {
                    Body::Local(value) => Payload::Local {
                        name: M::NAME,
                        value,
                    },
                    Body::Encoded(bytes) => Payload::Encoded {
                        name: M::NAME.into(),
                        bytes: shared_bytes::slice(bytes),
                    },
                };
                let envelope = Envelope {
                    from: from.clone(),
                    body,
                };
                handle.route(&to, envelope, encode_any::<M>);
            }
            Ok(())
        });
        map.insert(M::NAME, forward);
        Ok(())
    }

    /// Runs the handler for `envelope`, or drops and counts it.
    pub(crate) fn handle(&mut self, process: &mut P, cell: &ProcessCell<P>, envelope: Envelope) {
        let Envelope { from, body } = envelope;
        match body {
            Payload::Local { name, value } => {
                self.handle_one(process, cell, (&from, name), Body::Local(value));
            }
            Payload::Encoded { name, bytes } => shared_bytes::decoding(&bytes, || {
                self.handle_one(process, cell, (&from, &name), Body::Encoded(&bytes));
            }),
        }
    }

    /// Runs the handlers for `run`'s messages in order while `go_on` says so before each; the
    /// messages run. The handler is looked up once for the run (for each request of a run of
    /// requests, since each names its own), and its buffer is the decode source throughout.
    pub(crate) fn handle_run(
        &mut self,
        process: &mut P,
        cell: &ProcessCell<P>,
        run: &InboundRun,
        mut go_on: impl FnMut() -> bool,
    ) -> usize {
        let mut ran = 0;
        let bodies = run.bodies.iter().take_while(|_| go_on()).map(|range| {
            ran += 1;
            Body::Encoded(&run.bytes[range.clone()])
        });
        shared_bytes::decoding(&run.bytes, || {
            let handler = self
                .maps
                .as_mut()
                .and_then(|m| m.messages.get_mut(&*run.name));
            match handler {
                Some(handler) if &*run.name != crate::request::ASKED => {
                    for body in bodies {
                        if let Err(error) = handler(process, &run.from, body) {
                            undecodable(cell, &error);
                        }
                    }
                }
                _ => bodies.for_each(|body| {
                    self.handle_one(process, cell, (&run.from, &run.name), body);
                }),
            }
        });
        ran
    }

    /// Runs the handler for message `name` from `from`, or drops and counts the message.
    fn handle_one(
        &mut self,
        process: &mut P,
        cell: &ProcessCell<P>,
        (from, mut name): (&Upid, &str),
        body: Body<'_>,
    ) {
        let asked = name == crate::request::ASKED;
        if asked {
            name = crate::request::asked_name(&body).unwrap_or(name);
        }
        let handler = self.maps.as_mut().and_then(|maps| match asked {
            true => maps.requests.get_mut(name),
            false => maps.messages.get_mut(name),
        });
        let Some(handler) = handler else {
            let name = name.to_owned();
            cell.handle()
                .drop_message(&cell.upid(), &name, "no handler installed");
            return;
        };
        if let Err(error) = handler(process, from, body) {
            undecodable(cell, &error);
        }
    }
}

/// Drops and counts a message its handler could not decode.
fn undecodable<P: Process>(cell: &ProcessCell<P>, error: &str) {
    tracing::debug!(process = %cell.upid(), %error, "message undecodable");
    cell.handle()
        .drop_message(&cell.upid(), "(undecodable)", "decoding failed");
}
