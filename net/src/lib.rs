//! The remote transport for procession: processes on different nodes talk as if local.
//!
//! [`Net::start`] listens on a TCP address (loopback by default) and installs itself as the
//! runtime's [`Transport`](procession::Transport): from then on the runtime's Upids carry that
//! address, and `send`, `post`, `link` and `exited` reach processes on other nodes exactly as
//! they reach local ones. Process code cannot tell the difference.
//!
//! ```
//! use procession::{send, Context, Message, Process, Runtime, Upid};
//! use procession_net::Net;
//! # use std::sync::mpsc;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Hello(String);
//! impl Message for Hello { const NAME: &'static str = "doc::Hello"; }
//!
//! struct Greeter(mpsc::Sender<String>);
//! impl Process for Greeter {
//!     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
//!         ctx.install(|me: &mut Self, _from: &Upid, Hello(text)| me.0.send(text).unwrap())
//!             .unwrap();
//!     }
//! }
//!
//! let (here, there) = (Runtime::new(), Runtime::new());
//! let (_a, _b) = (Net::start(&here).unwrap(), Net::start(&there).unwrap());
//! let (heard, hearing) = mpsc::channel();
//! let greeter = there.spawn(Greeter(heard)).upid();
//! {
//!     let _entered = here.enter();
//!     send(&greeter, Hello("over TCP".into()));
//! }
//! assert_eq!(hearing.recv().unwrap(), "over TCP");
//! ```
//!
//! # Model
//!
//! - **Connections.** One outbound TCP connection per peer node, made on the first event for
//!   it, kept, and made again after it breaks; frames arrive on the peer's inbound connections.
//!   Senders never wait: each peer has a bounded queue of encoded frames, written in batches.
//! - **Frames** ([`frame`]): length-prefixed, versioned, with the sender, receiver and message
//!   name (left out when the previous frame on the connection had the same) and a run of one
//!   or more message bodies, each with its length: consecutive messages from one process to
//!   another under one name share a frame. Bodies are the serde + bincode encoding, serialized
//!   straight into the peer's queue and decoded by the receiving handler's type (a `Bytes`
//!   field marked `#[serde(with = "procession::message::shared_bytes")]` as a slice of the
//!   received bytes). A run is delivered as one `procession::InboundRun`: one mailbox event
//!   for many messages.
//! - **Request/reply.** `procession::request(&upid, req)` works across nodes as it does
//!   locally: the answer comes back to the asking node, and a lost node abandons the request.
//! - **Incarnations** ([`hello`]). Every connection starts with each node saying its address
//!   and incarnation (the run of its runtime, which its Upids carry). A node restarted on the
//!   same address is a new incarnation: a message or link for a Upid of its last run is treated
//!   as one for a gone process (dropped and counted; `exited(NotFound)`), even where the new run
//!   reuses the id. A node that hears a new incarnation for an address (over a connection made
//!   later than the one that told it of the last) closes the connections to and from the last
//!   run whose hello it had heard — left open when a host vanished without closing them — and
//!   the linkers of the node's processes get `exited(Lost)` before the new run's first frame is
//!   read. A connection that turns out to reach a run that is gone closes itself. Links to two
//!   runs of one process are two links: the end of one does not end the other.
//! - **Links.** A link to a remote process travels to its node; when the process ends, the
//!   linker gets `exited` with the reason. When the connection to a node breaks or the node
//!   cannot be reached, every local process linked to one of its processes gets
//!   `exited(Lost)`; so do the linkers of a node that accepts a connection and says no hello
//!   within [`Builder::handshake_timeout`] (5 seconds by default). A later send reconnects.
//! - **Order.** Messages from one process to another arrive in the order sent while the
//!   connection lives. The messages a handler sends to another node are held and queued
//!   together when it returns (or before it completes a future, or links, or at 64 KiB): a
//!   stream costs one lock per handler, not per message.
//! - **Back-pressure.** A peer's queue is bounded ([`Builder::peer_buffer`], 8 MiB by
//!   default): a slow reader cannot grow the sender's memory; messages past the bound are
//!   dropped and counted (`net.dropped.peer_full`), as a lossy network would, and a send never
//!   blocks a handler. Links and exit notices (small) are always queued, so no linker waits
//!   forever behind a full queue.
//! - **Security.** Loopback by default; an optional shared secret authenticates every
//!   connection both ways ([`Builder::secret`]) — without one, anything that reaches the port
//!   can send frames as any process and say hello as any node (which closes the connections to
//!   that node); with the `tls` feature, optional mutual TLS
//!   encrypts every connection and checks both nodes' certificates (`Builder::tls`, the `tls`
//!   module); frames over [`Builder::max_frame`] close the connection before their bytes are
//!   read. Bad input — garbage, truncated frames, oversized length prefixes, unknown versions,
//!   names or receivers — is logged, counted and dropped (the connection closed where the
//!   stream cannot be trusted), and every other peer is served on.
//! - **Metrics** on the runtime's registry: `net.connections`, `net.bytes_in`/`_out`,
//!   `net.messages_in`/`_out`, `net.dropped.{peer_full, unreachable, malformed,
//!   unauthenticated}`, and with the `tls` feature `net.dropped.tls` (connections refused in
//!   the TLS handshake).
//!
//! # Departures from DESIGN.md
//!
//! - **A frame carries a run of messages**, not one: DESIGN.md has one message a frame. The
//!   messages of a run share the frame's sender, receiver and name and each keep their own
//!   body; a 100-byte stream then pays 4 bytes of framing a message instead of 7, and its
//!   receiver parses a header a run instead of a message (about 15% more messages a second on
//!   two cores). Runs stay under [`Builder::max_frame`] (see [`frame`]).
//! - **The incarnation is not part of a Upid's identity** (see [`Upid`](procession::Upid)): two Upids
//!   that differ only in it compare equal, so a well-known address parsed from a command line
//!   (no incarnation) equals the Upid its process sends from. DESIGN.md says the address carries
//!   the incarnation; here the Upid carries it next to the address, which prints as before.
//! - **`Transport::send` borrows an [`Outgoing`](procession::Outgoing)** (a name and a body encoded
//!   on demand) rather than encoded bytes, so a transport can serialize a message straight into
//!   its own buffer, and may hold it until [`Transport::flush`](procession::Transport::flush)
//!   when [`Outgoing::may_wait`](procession::Outgoing::may_wait) allows: the runtime flushes
//!   when the sending handler returns or completes a future. DESIGN.md has each send leave at
//!   once; a handler must not block, so holding its sends until it returns delays them by no
//!   more than its own run.
//!
//! # Features
//!
//! - `tls` (off by default): mutual TLS through rustls with its ring provider — `TlsConfig`,
//!   `Builder::tls` and the `tls` module. Without it the crate has no TLS dependency.

#![forbid(unsafe_code)]

mod auth;
mod connection;
pub mod frame;
mod frames;
mod held;
pub mod hello;
mod peer;
pub mod pipe;
mod stats;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
mod wire;

#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use transport::{
    Builder, Net, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME, DEFAULT_PEER_BUFFER,
};
