//! The transport seam: how a runtime reaches processes on other nodes.
//!
//! The runtime routes every event addressed to a non-local [`Upid`] to the installed
//! [`Transport`]; the net crate implements it over TCP and the testkit's simulation over a
//! simulated network, so process code cannot tell them apart. What arrives from the network
//! comes back in through [`Inbound`].
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use procession::{send, ExitReason, Message, Runtime, Transport, Upid};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Ping(u32);
//! impl Message for Ping { const NAME: &'static str = "doc::Ping"; }
//!
//! #[derive(Default)]
//! struct Recorder(Mutex<Vec<(Upid, String)>>);
//! impl Transport for Recorder {
//!     fn send(&self, _from: &Upid, to: &Upid, name: &str, _body: bytes::Bytes) {
//!         self.0.lock().unwrap().push((to.clone(), name.to_owned()));
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

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::event::ExitReason;
use crate::future::Future;
use crate::handle::Handle;
use crate::pid::Upid;

/// Carries events to processes on other nodes. Implemented by the net crate and the simulation.
pub trait Transport: Send + Sync + 'static {
    /// Delivers the encoded message `name` from local `from` to remote `to`.
    fn send(&self, from: &Upid, to: &Upid, name: &str, body: Bytes);

    /// Asks `to`'s node to report when `to` ends; the answer comes back through
    /// [`Inbound::exited`], or [`Inbound::peer_lost`] if the node becomes unreachable.
    fn link(&self, linker: &Upid, to: &Upid);

    /// Tells remote `linker` that local `upid` ended.
    fn exited(&self, linker: &Upid, upid: &Upid, reason: &ExitReason);
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

    /// Delivers a message received from `from` to local process `to`. An unknown receiver or a
    /// receiver without a handler for `name` drops it and counts the drop.
    pub fn deliver(&self, from: Upid, to: &Upid, name: &str, body: Bytes) {
        self.handle.route_encoded(from, to, name.into(), body);
    }

    /// [`deliver`](Self::deliver) with a shared name: a transport that keeps the names it
    /// received (most frames of a connection carry the same few) passes them on without a copy.
    pub fn deliver_shared(&self, from: Upid, to: &Upid, name: Arc<str>, body: Bytes) {
        self.handle.route_encoded(from, to, name, body);
    }

    /// Remote `linker` asks to be told when local `to` ends. If `to` is already gone, the
    /// transport's [`Transport::exited`] is called at once.
    pub fn link(&self, linker: Upid, to: &Upid) {
        match self.handle.table().get(to.id()) {
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
