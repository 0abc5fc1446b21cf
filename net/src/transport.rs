//! The TCP transport: [`Net`] listens on an address, gives the runtime's Upids that address, and
//! carries messages, links and `exited` notices to and from other nodes.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use procession::{ExitReason, Future, Inbound, Outgoing, Runtime, Transport, Upid};

use crate::connection;
use crate::frame::Kind;
use crate::held;
use crate::hello::Hello;
use crate::peer::{with_body, Body, Peer, SHARED_BODY};
use crate::stats::{Reason, Stats};
use crate::wire;

/// The largest frame accepted by default: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The default bound of the frames queued for one peer: 8 MiB.
pub const DEFAULT_PEER_BUFFER: usize = 8 * 1024 * 1024;

/// How long a connection has for its handshakes by default: 5 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Config {
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) max_frame: usize,
    pub(crate) peer_buffer: usize,
    pub(crate) handshake_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::TlsConfig>,
}

impl Config {
    /// The most bytes in a frame of several messages: under the frame limit, which the peer
    /// shares (see the [frame format](crate::frame)).
    pub(crate) fn run(&self) -> usize {
        crate::frames::RUN_BYTES.min(self.max_frame)
    }
}

/// Options for [`Net`]: where to listen, what address to advertise, the shared secret, the
/// bounds and (feature `tls`) TLS. Made by [`Net::builder`].
#[derive(Debug)]
pub struct Builder {
    listen: SocketAddr,
    advertise: Option<SocketAddr>,
    secret: Option<Vec<u8>>,
    max_frame: usize,
    peer_buffer: usize,
    handshake_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<crate::TlsConfig>,
}

impl Builder {
    /// Listens on `address` (default `127.0.0.1:0`: loopback, a port the OS picks).
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = address;
        self
    }

    /// The address other nodes reach this one at, carried by its Upids (default: the address
    /// listened on). Needed when listening on an unspecified address such as `0.0.0.0`.
    pub fn advertise(mut self, address: SocketAddr) -> Self {
        self.advertise = Some(address);
        self
    }

    /// Requires every connection, both ways, to prove it holds `secret` (a challenge–response
    /// with HMAC-SHA256; the secret never crosses the wire). Peers without it are refused.
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Refuses frames longer than `bytes` (default [`DEFAULT_MAX_FRAME`]): the connection that
    /// sends one is closed before its bytes are read. However large a frame this lets in, a
    /// message decodes with at most [`MAX_DECODED`](procession::message::MAX_DECODED)
    /// of strings, vectors and other containers; a larger one is dropped and counted.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Bounds the frames queued for one peer (default [`DEFAULT_PEER_BUFFER`]); past it,
    /// messages to that peer are dropped and counted in `net.dropped.peer_full` (links and exit
    /// notices still go). A message larger than the bound can never be sent.
    pub fn peer_buffer(mut self, bytes: usize) -> Self {
        self.peer_buffer = bytes;
        self
    }

    /// Bounds how long a connection's handshakes may take (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// - An accepted connection has `timeout` for each step: TLS, the shared secret's
    ///   challenge, the other node's hello. One that takes longer is closed, logged and counted
    ///   under the step's reason (`net.dropped.tls`, `net.dropped.unauthenticated`,
    ///   `net.dropped.malformed`).
    /// - A connection this node makes has `timeout` to connect and pass TLS and the secret's
    ///   challenge, then `timeout` again for the other node's hello (frames go out meanwhile).
    ///   Past either, it is closed with what was queued on it (counted in
    ///   `net.dropped.unreachable`) and the node is lost: its linkers get `exited(Lost)`, and
    ///   the next message for it connects again. So a peer that accepts and never answers (not
    ///   a procession node, or a hung one) is not written to for as long as it lets bytes in.
    ///
    /// The other node answers from its workers: one whose workers are all held by handlers for
    /// longer than `timeout` (handlers must not block) is taken for hung, as it already was
    /// when a secret's challenge went unanswered.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Makes every connection, accepted or made, TLS with `config` (see [`crate::tls`]); a
    /// [`secret`](Self::secret) is then checked inside TLS. A connection whose TLS handshake
    /// fails, or (accepted) takes over the [handshake timeout](Self::handshake_timeout), is
    /// closed, logged and counted in `net.dropped.tls`; to the node that made it, the peer is
    /// unreachable (its linkers get `exited(Lost)`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Binds the address and installs the transport on `runtime`, whose Upids carry the
    /// advertised address from now on.
    ///
    /// # Errors
    ///
    /// The bind's I/O error, or `InvalidInput` when listening on an unspecified address (such
    /// as `0.0.0.0`) with no [`advertise`](Self::advertise) address, or when the runtime
    /// already has a metric named like one of the transport's `net.*` metrics but of another
    /// kind.
    pub fn start(self, runtime: &Runtime) -> io::Result<Net> {
        let listener = TcpListener::bind(self.listen)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let address = self.advertise.unwrap_or(bound);
        if address.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("listening on {bound} needs an address to advertise to other nodes"),
            ));
        }
        let inbound = runtime.inbound();
        let stats = Stats::register(&inbound.metrics())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let shared = Arc::new(Shared {
            stats,
            inbound: inbound.clone(),
            address,
            config: Config {
                secret: self.secret,
                max_frame: self.max_frame,
                peer_buffer: self.peer_buffer,
                handshake_timeout: self.handshake_timeout,
                #[cfg(feature = "tls")]
                tls: self.tls,
            },
            peers: Mutex::new(HashMap::default()),
            accepted: Mutex::new(Vec::new()),
            made: AtomicU64::new(0),
            runs: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
            accepting: Mutex::new(None),
        });
        let accepting = inbound.spawn(accept(shared.clone(), listener));
        *shared.accepting.lock() = Some(accepting);
        inbound.set_address(address);
        inbound.set_transport(Arc::new(Tcp {
            shared: shared.clone(),
        }));
        tracing::info!(%address, "transport listening");
        Ok(Net { shared })
    }
}

/// The TCP transport of one runtime.
///
/// ```
/// use procession::Runtime;
/// use procession_net::Net;
///
/// let runtime = Runtime::new();
/// let net = Net::start(&runtime).unwrap();
/// assert!(net.address().ip().is_loopback());
/// let _entered = runtime.enter();
/// # struct Idle; impl procession::Process for Idle {}
/// let pid = runtime.spawn(Idle);
/// assert_eq!(pid.upid().address(), net.address());
/// net.shutdown();
/// ```
pub struct Net {
    shared: Arc<Shared>,
}

impl Net {
    /// Options, to set before [`Builder::start`].
    pub fn builder() -> Builder {
        Builder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            secret: None,
            max_frame: DEFAULT_MAX_FRAME,
            peer_buffer: DEFAULT_PEER_BUFFER,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Listens on loopback (a port the OS picks) with the default options.
    ///
    /// # Errors
    ///
    /// The bind's I/O error.
    pub fn start(runtime: &Runtime) -> io::Result<Net> {
        Net::builder().start(runtime)
    }

    /// The address this node's Upids carry.
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// Stops listening, closes every connection (linked processes on other nodes are reported
    /// lost, here and there) and removes the transport; later remote sends are dropped and
    /// counted by the runtime.
    pub fn shutdown(self) {
        self.shared.inbound.clear_transport();
        if let Some(accepting) = self.shared.accepting.lock().take() {
            accepting.discard();
        }
        for accepted in self.shared.accepted.lock().drain(..) {
            accepted.serving.discard();
        }
        let peers: Vec<_> = {
            let mut peers = self.shared.peers.lock();
            // Under the map's lock: a send that raced `clear_transport` cannot start a peer now.
            self.shared.stopped.store(true, Ordering::Relaxed);
            peers.drain().map(|(_, p)| p).collect()
        };
        for peer in peers {
            peer.stop();
        }
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("address", &self.shared.address)
            .finish()
    }
}

/// What the connections and the runtime share.
pub(crate) struct Shared {
    pub(crate) inbound: Inbound,
    address: SocketAddr,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
    peers: Mutex<HashMap<SocketAddr, Arc<Peer>, foldhash::fast::RandomState>>,
    /// The inbound connections, discarded when a later run of their node says hello or at
    /// shutdown.
    accepted: Mutex<Vec<Accepted>>,
    /// Numbers the connections in the order they were made.
    made: AtomicU64,
    /// The latest run heard of for each node, and the number of the latest connection that
    /// said so.
    runs: Mutex<HashMap<SocketAddr, (u64, u64)>>,
    /// Set by `Net::shutdown` (under `peers`' lock): no new connection is made.
    stopped: AtomicBool,
    /// The accept loop, discarded at shutdown.
    accepting: Mutex<Option<Future<()>>>,
}

impl Shared {
    /// Queues a frame for `to`'s node, borrowing its parts: nothing is built per send but the
    /// encoded bytes.
    fn send(self: &Arc<Self>, kind: Kind, upids: (&Upid, &Upid), name: &str, body: &Body<'_>) {
        loop {
            let Some(peer) = self.peer_for(upids.1.address()) else {
                self.stats.dropped(Reason::Unreachable, 1);
                return;
            };
            if peer.push(self, kind, upids, name, body) {
                return;
            }
            self.forget_peer(&peer);
        }
    }

    /// The connection to the node at `address`, made if there is none; `None` once the
    /// transport has shut down.
    pub(crate) fn peer_for(self: &Arc<Self>, address: SocketAddr) -> Option<Arc<Peer>> {
        let mut peers = self.peers.lock();
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let peer = peers
            .entry(address)
            .or_insert_with(|| Peer::start(self, address));
        Some(peer.clone())
    }

    /// What this node says of itself on a new connection.
    pub(crate) fn hello(&self) -> Hello {
        Hello {
            address: self.address,
            incarnation: self.inbound.incarnation(),
        }
    }

    /// A number for a connection just made: a later connection gets a larger one.
    pub(crate) fn connection_made(&self) -> u64 {
        self.made.fetch_add(1, Ordering::Relaxed)
    }

    /// The connection numbered `made` (see [`connection_made`](Self::connection_made)) says
    /// node `address` runs as `incarnation`. False if a connection made later said another
    /// run: this one reached a run that is gone (incarnations are random, so only the order in
    /// which connections were made tells which run is the latest), and its caller closes it.
    /// Otherwise a connection to or from another run of the node is left over from a node that
    /// restarted without closing it (a host that vanished), and is closed; every local linker of
    /// the node's processes hears at once that they were lost, before this connection's first
    /// frame is read, so no link to the new run is taken for one to the last.
    pub(crate) fn heard(&self, address: SocketAddr, incarnation: u64, made: u64) -> bool {
        let stale = {
            // Held while the connections of other runs are stopped, so that a hello heard
            // meanwhile over another connection is judged after this one's effects.
            let mut runs = self.runs.lock();
            match runs.get_mut(&address) {
                Some(latest) if latest.0 == incarnation => latest.1 = latest.1.max(made),
                Some(latest) if latest.1 > made => return false,
                _ => {
                    runs.insert(address, (incarnation, made));
                }
            }
            let peer = self.peers.lock().get(&address).cloned();
            // Discarded rather than told: a reader waiting on a signal kept in `Shared` would
            // be kept alive by it after its runtime shut down, its socket open.
            for accepted in self.accepted.lock().iter() {
                let said = accepted.hello.get();
                if said.is_some_and(|h| h.address == address && h.incarnation != incarnation) {
                    accepted.serving.discard();
                }
            }
            peer.filter(|p| p.is_of_another_run(incarnation))
                .inspect(|peer| peer.stop())
        };
        if let Some(peer) = stale {
            tracing::info!(peer = %address, "peer restarted; closed the connection to its last run");
            peer.report_lost(self);
        }
        true
    }

    /// Removes `peer` from the map if it is still the connection for its address.
    pub(crate) fn forget_peer(&self, peer: &Arc<Peer>) {
        let mut peers = self.peers.lock();
        if peers
            .get(&peer.address())
            .is_some_and(|p| Arc::ptr_eq(p, peer))
        {
            peers.remove(&peer.address());
        }
    }
}

/// An inbound connection: the task reading it, and the hello of the node that made it once
/// said.
struct Accepted {
    hello: Arc<OnceLock<Hello>>,
    serving: Future<()>,
}

async fn accept(shared: Arc<Shared>, listener: TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => return tracing::error!(%error, "cannot listen"),
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let hello = Arc::new(OnceLock::new());
                let made = shared.connection_made();
                let serving = connection::serve(shared.clone(), stream, made, hello.clone());
                let serving = shared.inbound.spawn(serving);
                let mut accepted = shared.accepted.lock();
                accepted.retain(|a| a.serving.is_pending());
                accepted.push(Accepted { hello, serving });
            }
            // Out of descriptors, a connection reset before accept: the listener itself is fine.
            Err(error) => tracing::warn!(%error, "accept failed"),
        }
    }
}

/// The runtime's view of the transport.
struct Tcp {
    shared: Arc<Shared>,
}

impl Transport for Tcp {
    fn send(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>) {
        if message.may_wait() {
            let large = message
                .encoded_body()
                .is_some_and(|body| body.len() >= SHARED_BODY);
            if !large {
                return held::hold(&self.shared, (from, to), message);
            }
            // Queued as it is, at once: after what the handler sent before.
            held::flush();
        }
        let name = message.name();
        with_body(message, |body| match body {
            Ok(body) => self.shared.send(Kind::Message, (from, to), name, &body),
            Err(error) => {
                self.shared.stats.dropped(Reason::Malformed, 1);
                tracing::warn!(%to, name, %error, "message cannot be encoded; dropped");
            }
        });
    }

    fn link(&self, linker: &Upid, to: &Upid) {
        // After the messages held back: a link or notice never overtakes what was sent before.
        held::flush();
        self.shared.send(Kind::Link, (linker, to), "", &Body::Empty);
    }

    fn exited(&self, linker: &Upid, upid: &Upid, reason: &ExitReason) {
        held::flush();
        let reason = wire::encode_reason(reason);
        self.shared
            .send(Kind::Exited, (upid, linker), &reason, &Body::Empty);
    }

    fn flush(&self) {
        held::flush();
    }
}
