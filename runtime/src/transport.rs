//! The transport seam: how a runtime reaches processes on other nodes.
//!
//! The runtime routes every event addressed to a non-local [`Upid`] to the installed
//! [`Transport`]; the net crate implements it over TCP and the testkit's simulation over a
//! simulated network, so process code cannot tell them apart. What arrives from the network
//! comes back in through [`Inbound`].
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use procession::{send, ExitReason, Message, Outgoing, Runtime, Transport, Upid};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Ping(u32);
//! impl Message for Ping { const NAME: &'static str = "doc::Ping"; }
//!
//! #[derive(Default)]
//! struct Recorder(Mutex<Vec<(Upid, String)>>);
//! impl Transport for Recorder {
//!     fn send(&self, _from: &Upid, to: &Upid, message: &Outgoing<'_>) {
//!         self.0.lock().unwrap().push((to.clone(), message.name().to_owned()));
//!     }
//!     fn link(&self, _linker: &Upid, _to: &Upid) {}
//!     fn exited(&self, _linker: &Upid, _upid: &Upid, _reason: &ExitReason) {}
//! }
//!
//! let runtime = Runtime::new();
//! let recorder = Arc::new(Recorder::default());
//! runtime.inbound().set_transport(recorder.clone());
//! let _entered = runtime.enter();
//! let remote: Upid = "master@10.0.0.1:5050".parse().unwrap();
//! send(&remote, Ping(1));
//! assert_eq!(recorder.0.lock().unwrap()[0], (remote, "doc::Ping".to_owned()));
//! ```
//!
//! # Contract
//!
//! The runtime calls a transport from any thread, including workers in the middle of a handler:
//! its methods must not block. Sends are fire-and-forget: failures surface as `exited` notices to
//! linkers (through [`Inbound::peer_lost`] or [`Inbound::exited`]), never as errors to the sender.
//! A message whose encoding fails (its `Serialize` implementation returned an error) is the
//! transport's to drop, log and count.

use std::any::Any;
use std::cell::Cell;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::event::{Envelope, ExitReason, Payload};
use crate::future::Future;
use crate::handle::Handle;
use crate::message::CodecError;
use crate::pid::Upid;

/// Carries events to processes on other nodes. Implemented by the net crate and the simulation.
pub trait Transport: Send + Sync + 'static {
    /// Delivers `message` from local `from` to remote `to`.
    fn send(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>);

    /// Asks `to`'s node to report when `to` ends; the answer comes back through
    /// [`Inbound::exited`], or [`Inbound::peer_lost`] if the node becomes unreachable.
    fn link(&self, linker: &Upid, to: &Upid);

    /// Tells remote `linker` that local `upid` ended.
    fn exited(&self, linker: &Upid, upid: &Upid, reason: &ExitReason);

    /// Sends the messages this transport held back on this thread (see
    /// [`Outgoing::may_wait`]). The runtime calls it on the thread that sent them, when the
    /// handler or callback that sent them returns. The default holds nothing back, so does
    /// nothing.
    ///
    /// A panic here is caught and logged; the process that sent goes on, and what the transport
    /// held is its own to send, count or drop.
    fn flush(&self) {}
}

/// A message on its way to another node: its name, and its body, encoded when the transport asks
/// (so that it can encode into a buffer of its own choosing, with no copy in between).
pub struct Outgoing<'a> {
    name: &'a str,
    body: Body<'a>,
    may_wait: Cell<bool>,
}

enum Body<'a> {
    /// Already encoded: a message forwarded as it arrived.
    Encoded(&'a Bytes),
    /// A local value, which encodes itself.
    Value(&'a dyn EncodeBody),
}

/// Appends a type-erased message value, encoded, to a buffer.
pub(crate) type Encoder = fn(&(dyn Any + Send), &mut BytesMut) -> Result<(), CodecError>;

/// A local value that appends itself, encoded as a message body, to a buffer: a message of a
/// known type, or an [`Erased`] one.
pub(crate) trait EncodeBody {
    fn encode_body(&self, out: &mut BytesMut) -> Result<(), CodecError>;
}

/// A value boxed as `dyn Any` and the encoder that knows its type.
pub(crate) struct Erased<'a>(pub(crate) &'a (dyn Any + Send), pub(crate) Encoder);

impl EncodeBody for Erased<'_> {
    fn encode_body(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        (self.1)(self.0, out)
    }
}

impl<'a> Outgoing<'a> {
    pub(crate) fn encoded(name: &'a str, body: &'a Bytes) -> Self {
        Outgoing {
            name,
            body: Body::Encoded(body),
            may_wait: Cell::new(false),
        }
    }

    pub(crate) fn value(name: &'a str, value: &'a dyn EncodeBody) -> Self {
        Outgoing {
            name,
            body: Body::Value(value),
            may_wait: Cell::new(false),
        }
    }

    /// Lets the transport hold the message back until its [`Transport::flush`], or not (see
    /// [`may_wait`](Self::may_wait)).
    pub(crate) fn let_wait(&self, may_wait: bool) {
        self.may_wait.set(may_wait);
    }

    /// Whether the transport may hold the message back, to send it together with the others the
    /// same handler sends: the runtime then calls [`Transport::flush`] on this thread when the
    /// handler returns, before anything else can run on the sending process. False for a send
    /// made outside a process's handler (a test's thread, a future's callback): such a message
    /// must go at once.
    pub fn may_wait(&self) -> bool {
        self.may_wait.get()
    }

    /// The message name, by which the receiving node finds the handler.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The body if it is already encoded (a forwarded message): a transport can send these
    /// bytes as they are, without copying them.
    pub fn encoded_body(&self) -> Option<&'a Bytes> {
        match self.body {
            Body::Encoded(bytes) => Some(bytes),
            Body::Value(..) => None,
        }
    }

    /// Appends the encoded body to `out`, which grows as needed.
    ///
    /// # Errors
    ///
    /// The message's `Serialize` implementation failed; `out` is then left as it was.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        match self.body {
            Body::Encoded(bytes) => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            Body::Value(value) => {
                let start = out.len();
                let encoded = value.encode_body(out);
                if encoded.is_err() {
                    out.truncate(start);
                }
                encoded
            }
        }
    }

    /// The encoded body on its own (a copy of the reference for an already encoded one).
    ///
    /// # Errors
    ///
    /// The message's `Serialize` implementation failed.
    pub fn to_bytes(&self) -> Result<Bytes, CodecError> {
        if let Body::Encoded(bytes) = self.body {
            return Ok(bytes.clone());
        }
        let mut out = BytesMut::new();
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Messages from one sender under one name that arrived in a row for one process, for
/// [`Inbound::deliver_run`]: their bodies are ranges of one buffer, so a stream costs the
/// runtime one queued event per run instead of one per message.
#[derive(Clone, Debug)]
pub struct InboundRun {
    pub(crate) from: Upid,
    pub(crate) name: Arc<str>,
    pub(crate) bytes: Bytes,
    pub(crate) bodies: Vec<Range<usize>>,
}

impl InboundRun {
    /// Messages named `name` from `from` whose bodies are `bytes[body]` for each of `bodies`,
    /// in order; `None` if a range is not inside `bytes`.
    pub fn new(
        from: Upid,
        name: Arc<str>,
        bytes: Bytes,
        bodies: Vec<Range<usize>>,
    ) -> Option<InboundRun> {
        let inside = |body: &Range<usize>| body.start <= body.end && body.end <= bytes.len();
        bodies.iter().all(inside).then_some(InboundRun {
            from,
            name,
            bytes,
            bodies,
        })
    }

    /// The messages, one envelope each (each body a slice of the shared buffer).
    pub(crate) fn envelopes(&self) -> impl Iterator<Item = Envelope> + '_ {
        self.bodies.iter().map(|body| Envelope {
            from: self.from.clone(),
            body: Payload::Encoded {
                name: self.name.clone(),
                bytes: self.bytes.slice(body.clone()),
            },
        })
    }

    /// The number of messages.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether the run holds no message.
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

/// The runtime's side of the seam: what a transport calls when something arrives.
#[derive(Clone)]
pub struct Inbound {
    handle: Handle,
}

impl Inbound {
    pub(crate) fn new(handle: Handle) -> Self {
        Inbound { handle }
    }

    /// Installs `transport` for every non-local address.
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        self.handle.set_transport(Some(transport));
    }

    /// Removes the transport; later remote sends are dropped and counted.
    pub fn clear_transport(&self) {
        self.handle.set_transport(None);
    }

    /// Sets the address that Upids of this runtime carry from now on (the listen address). The
    /// runtime still answers to its in-process address too.
    pub fn set_address(&self, address: SocketAddr) {
        self.handle.set_address(address);
    }

    /// This run of the runtime (never 0): its Upids carry it ([`Upid::incarnation`]), and a
    /// transport tells it to the nodes it connects to.
    pub fn incarnation(&self) -> u64 {
        self.handle.incarnation
    }

    /// Delivers a message received from `from` to local process `to`. An unknown receiver or a
    /// receiver without a handler for `name` drops it and counts the drop.
    pub fn deliver(&self, from: Upid, to: &Upid, name: &str, body: Bytes) {
        let envelope = Envelope {
            from,
            body: Payload::Encoded {
                name: name.into(),
                bytes: body,
            },
        };
        self.handle.route_received(to, envelope);
    }

    /// Delivers `run`'s messages, in order, to local process `to`, as [`deliver`](Self::deliver)
    /// would one by one: a transport that reads many frames at once hands over consecutive ones
    /// from one sender under one name together. The receiver is looked up once, its mailbox
    /// locked once and its handler looked up once for them all (unless a filter is installed or
    /// its mailbox is bounded: then each message meets them as it would alone).
    pub fn deliver_run(&self, to: &Upid, run: InboundRun) {
        self.handle.route_run(to, run);
    }

    /// Counts a message to `to` that the transport dropped for reason `why` (it could not be
    /// encoded, say) among the runtime's dropped messages (`Stats::dropped_messages`), for a
    /// transport with no metrics of its own.
    pub fn dropped(&self, to: &Upid, name: &str, why: &'static str) {
        self.handle.drop_message(to, name, why);
    }

    /// Remote `linker` asks to be told when local `to` ends. If `to` is already gone, the
    /// transport's [`Transport::exited`] is called at once.
    pub fn link(&self, linker: Upid, to: &Upid) {
        match self.handle.process(to) {
            Some(cell) => {
                if let Err(reason) = cell.add_linker(linker.clone()) {
                    self.handle.notify_exited(&linker, to, &reason);
                }
            }
            None => self
                .handle
                .notify_exited(&linker, to, &ExitReason::NotFound),
        }
    }

    /// Remote `upid`, to which local processes linked, ended.
    pub fn exited(&self, upid: &Upid, reason: &ExitReason) {
        self.handle.remote_exited(upid, reason);
    }

    /// Drives `future` (a connection's reader or writer) on this runtime's workers, with the
    /// runtime's I/O driver current, so sockets made inside it register there. See
    /// [`spawn_async`](crate::spawn_async).
    pub fn spawn<F>(&self, future: F) -> Future<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + Sync + 'static,
    {
        crate::task::spawn(&self.handle, future)
    }

    /// The runtime's metrics, where a transport registers its own.
    pub fn metrics(&self) -> crate::Metrics {
        crate::Metrics::new(self.handle.clone())
    }

    /// The node at `address` is unreachable: every local process linked to one of its processes
    /// gets `exited` with [`ExitReason::Lost`].
    pub fn peer_lost(&self, address: SocketAddr) {
        self.handle.peer_lost(address);
    }
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("runtime", &self.handle.name)
            .finish()
    }
}
