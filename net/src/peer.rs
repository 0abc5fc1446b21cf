//! Outbound: one connection per peer node, made on the first frame for it and kept.
//!
//! The connection starts with this node's [hello](crate::hello); frames follow at once, and the
//! peer's hello is read alongside them. A peer that says no hello within the
//! [handshake timeout](crate::Builder::handshake_timeout) is lost (it is not a procession node,
//! or it hangs). A connection stopped because a later run of the node
//! said hello elsewhere (or whose hello names a run that is gone) reports the node lost once.
//!
//! A message's body is serialized before any lock is taken, into a buffer each thread reuses (so
//! a `Serialize` implementation never runs under the transport's locks); then the sender copies
//! the frame into the peer's buffer under a short lock and never waits (a handler's sends are
//! [held](crate::held) and copied in together when it returns). The peer's writer task
//! takes the whole buffer at once, so under load many frames leave in one write. A body already
//! encoded (a forwarded message) of 4 KiB or more is not copied: it is queued as it is after its
//! header, and the writer gathers the pieces into vectored writes. A message that cannot be
//! encoded is dropped and counted as malformed. The buffer is bounded: a message past
//! [`Config::peer_buffer`] is dropped and counted (links and exit notices are small and always
//! queued, so no linker waits forever), because a send must not block a handler and a slow peer
//! must not grow the sender's memory. The writer also watches the connection's read side: the
//! peer closing it or an I/O error ends the connection, drops what was still queued or being
//! written (counted: every message is counted out or dropped), and reports the node lost so
//! every local process linked to one of its processes gets `exited(Lost)`.
//! The next frame for the node makes a new connection.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use procession::{Outgoing, Upid};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frame::Kind;
use crate::frames::Frames;
use crate::hello::Hello;
use crate::stats::Reason;
use crate::transport::Shared;

/// Bodies this long or longer are queued as they are (the writer gathers them into its writes);
/// shorter ones are copied after their header, cheaper than one more slice per write.
pub(crate) const SHARED_BODY: usize = 4 * 1024;

/// The most segments gathered into one write (Linux takes up to 1,024).
const GATHER: usize = 64;

pub(crate) struct Peer {
    address: SocketAddr,
    /// The run of the node the connection reached, once its hello arrived (0 before).
    incarnation: AtomicU64,
    /// The node was reported lost for this connection (once: when it ended, or earlier when a
    /// later run of the node said hello).
    reported: AtomicBool,
    queue: Mutex<Queue>,
    /// Wakes a connection attempt that [`stop`](Self::stop) should cut short.
    stopped: tokio::sync::Notify,
}

struct Queue {
    /// Frames encoded since the writer last took them, in order: `segments`, then `frames`.
    /// Small frames are copied into `frames`; a large body goes into `segments` as it is, after
    /// its header, so that it is never copied on this side of the socket.
    segments: Vec<Bytes>,
    frames: Frames,
    /// The bytes in `segments` and `frames`, held to the peer buffer's bound.
    queued: usize,
    writer: Option<Waker>,
    /// The connection ended: frames are no longer accepted.
    closed: bool,
}

impl Peer {
    /// A peer for `address` whose connection is made by a task on the runtime.
    pub(crate) fn start(shared: &Arc<Shared>, address: SocketAddr) -> Arc<Peer> {
        let peer = Arc::new(Peer {
            address,
            incarnation: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            stopped: tokio::sync::Notify::new(),
            queue: Mutex::new(Queue {
                segments: Vec::new(),
                frames: Frames::default(),
                queued: 0,
                writer: None,
                closed: false,
            }),
        });
        let task = run(shared.clone(), peer.clone());
        shared.inbound.spawn(task);
        peer
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Tells every local linker of the node's processes that they were lost, unless that was
    /// done for this connection already.
    pub(crate) fn report_lost(&self, shared: &Shared) {
        if !self.reported.swap(true, Ordering::AcqRel) {
            shared.inbound.peer_lost(self.address);
        }
    }

    /// Whether the connection reached a run of the node other than `incarnation`.
    pub(crate) fn is_of_another_run(&self, incarnation: u64) -> bool {
        let reached = self.incarnation.load(Ordering::Relaxed);
        reached != 0 && reached != incarnation
    }

    /// Ends the connection from this side (the transport is shutting down, or the node it
    /// reached has been restarted).
    pub(crate) fn stop(&self) {
        let writer = {
            let mut queue = self.queue.lock();
            queue.closed = true;
            queue.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        self.stopped.notify_one();
    }

    /// Queues a frame of `kind` from `from` to `to` named `name` with `body`; false if this
    /// connection has ended (the caller makes a new one). Runs no code of the caller's: the body
    /// was encoded before.
    pub(crate) fn push(
        &self,
        shared: &Shared,
        kind: Kind,
        (from, to): (&Upid, &Upid),
        name: &str,
        body: &Body<'_>,
    ) -> bool {
        let waker = {
            let mut guard = self.queue.lock();
            let queue = &mut *guard;
            if queue.closed {
                return false;
            }
            let before = queue.frames.bytes.len();
            let run = shared.config.run();
            let encoded = queue.frames.encode(kind, (from, to), name, run, body);
            if let Err(error) = encoded {
                drop(guard);
                shared.stats.dropped(Reason::Malformed, 1);
                tracing::warn!(peer = %self.address, name, %error, "frame cannot be encoded; dropped");
                return true;
            }
            let apart = body.apart();
            let length = queue.frames.bytes.len() - before + apart.map_or(0, Bytes::len);
            // Links and exit notices are small and must not vanish while the connection
            // lives (a linker would wait forever): only messages are held to the bound.
            if queue.queued + length > shared.config.peer_buffer && kind == Kind::Message {
                queue.frames.undo(before);
                drop(guard);
                shared.stats.dropped(Reason::PeerFull, 1);
                tracing::warn!(peer = %self.address, name, "peer send buffer full; message dropped");
                return true;
            }
            if let Some(bytes) = apart {
                let header = queue.frames.take();
                queue.segments.push(header);
                queue.segments.push(bytes.clone());
            }
            queue.queued += length;
            queue.frames.count += 1;
            queue.writer.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Queues the messages of `held` (frames encoded apart from the connection's, the first
    /// with every field in full) and empties it; false if this connection has ended (the
    /// caller makes a new one). The messages that would take the buffer past its bound are
    /// dropped and counted, from the first that does not fit on.
    pub(crate) fn append(&self, shared: &Shared, held: &mut Frames) -> bool {
        let (waker, dropped) = {
            let mut guard = self.queue.lock();
            let queue = &mut *guard;
            if queue.closed {
                return false;
            }
            let room = shared.config.peer_buffer.saturating_sub(queue.queued);
            let before = queue.frames.bytes.len();
            let kept = held.copy_fitting(room, &mut queue.frames.bytes);
            let length = queue.frames.bytes.len() - before;
            // The next frame queued here must not repeat fields of a frame it did not see.
            queue.frames.forget_last();
            queue.queued += length;
            queue.frames.count += kept as u64;
            let dropped = held.count - kept as u64;
            held.clear();
            (queue.writer.take(), dropped)
        };
        if dropped > 0 {
            shared.stats.dropped(Reason::PeerFull, dropped);
            tracing::warn!(peer = %self.address, dropped, "peer send buffer full; messages dropped");
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Ends this connection: later pushes fail; what was queued is dropped and counted.
    fn close(&self, shared: &Shared) {
        let dropped = {
            let mut queue = self.queue.lock();
            queue.closed = true;
            queue.segments = Vec::new();
            queue.queued = 0;
            std::mem::take(&mut queue.frames).count
        };
        if dropped > 0 {
            shared.stats.dropped(Reason::Unreachable, dropped);
        }
    }

    /// The next batch of encoded frames, in order, and how many messages and notices it holds;
    /// `None` once the peer is closed.
    async fn next_batch(&self) -> Option<(Vec<Bytes>, u64)> {
        poll_fn(|cx| {
            let mut queue = self.queue.lock();
            if queue.closed {
                return Poll::Ready(None);
            }
            if queue.queued == 0 {
                queue.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let mut batch = std::mem::take(&mut queue.segments);
            if !queue.frames.bytes.is_empty() {
                batch.push(queue.frames.take());
            }
            queue.queued = 0;
            let frames = std::mem::take(&mut queue.frames.count);
            Poll::Ready(Some((batch, frames)))
        })
        .await
    }
}

/// A frame's body, encoded before any lock is taken: a message's `Serialize` never runs under
/// the transport's locks (where a panic would leave half a frame, and a send from inside it
/// would deadlock).
pub(crate) enum Body<'a> {
    /// Links and exit notices.
    Empty,
    /// Copied after the header.
    Small(&'a [u8]),
    /// Queued as it is after the header: an encoded body of [`SHARED_BODY`] bytes or more.
    Large(Bytes),
}

impl Body<'_> {
    /// The body queued apart from its header, if it is.
    pub(crate) fn apart(&self) -> Option<&Bytes> {
        match self {
            Body::Large(bytes) => Some(bytes),
            Body::Empty | Body::Small(_) => None,
        }
    }
}

thread_local! {
    /// Where a message is encoded before it is queued: reused, so a small one allocates nothing.
    static SCRATCH: std::cell::Cell<BytesMut> = std::cell::Cell::new(BytesMut::new());
}

/// Runs `queue` with `message`'s body encoded (or the reason it cannot be).
pub(crate) fn with_body<R>(
    message: &Outgoing<'_>,
    queue: impl FnOnce(Result<Body<'_>, procession::message::CodecError>) -> R,
) -> R {
    if let Some(bytes) = message.encoded_body() {
        return queue(Ok(if bytes.len() >= SHARED_BODY {
            Body::Large(bytes.clone())
        } else {
            Body::Small(bytes)
        }));
    }
    // Taken out while in use: a send made while encoding finds an empty one.
    let mut scratch = SCRATCH.with(std::cell::Cell::take);
    scratch.clear();
    // Copied into the peer's buffer even when large: a large body split off to be queued as it
    // is would make this buffer allocate anew for the next one, which measured slower (64 KiB
    // bodies: about 25% fewer a second) than one more copy into a buffer that is reused.
    let outcome = match message.encode_into(&mut scratch) {
        Err(error) => queue(Err(error)),
        Ok(()) => queue(Ok(Body::Small(&scratch))),
    };
    SCRATCH.with(|slot| slot.set(scratch));
    outcome
}

/// The connection's life: connect (with TLS and authentication when configured), write batches
/// until it breaks, then report the node lost.
async fn run(shared: Arc<Shared>, peer: Arc<Peer>) {
    let outcome = connect_and_write(&shared, &peer).await;
    if let Err(error) = &outcome {
        tracing::info!(peer = %peer.address, %error, "connection to peer ended");
    }
    peer.close(&shared);
    // Reported before the peer leaves the map: a link made meanwhile still finds this closed
    // peer, so it goes out on a new connection only after this report, not before it.
    peer.report_lost(&shared);
    shared.forget_peer(&peer);
}

async fn connect_and_write(shared: &Shared, peer: &Peer) -> io::Result<()> {
    // Numbered as the TCP connection is made, before any handshake, as an inbound one is when
    // accepted: a slow handshake must not make a connection to a gone run look the later.
    let made = AtomicU64::new(0);
    let connect_tcp = || async {
        let stream = tcp(peer.address).await?;
        made.store(shared.connection_made(), Ordering::Relaxed);
        Ok::<_, io::Error>(stream)
    };
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.config.tls {
        let connect = async {
            let stream = connect_tcp().await?;
            let handshake = tls.connect(peer.address, stream).await;
            if let Err(error) = &handshake {
                shared.stats.dropped(Reason::Tls, 1);
                tracing::warn!(peer = %peer.address, %error, "TLS handshake with peer failed");
            }
            handshake
        };
        let stream = establish(shared, peer, connect).await?;
        // TLS reads and writes share one session, so the halves take turns through a lock.
        let (read, write) = tokio::io::split(stream);
        return carry(shared, peer, made.into_inner(), (read, write)).await;
    }
    let stream = establish(shared, peer, connect_tcp()).await?;
    carry(shared, peer, made.into_inner(), stream.into_split()).await
}

async fn tcp(address: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs `connect`, then the shared-secret handshake when the node has a secret, within
/// the handshake timeout; cut short when the peer is stopped.
async fn establish<S>(
    shared: &Shared,
    peer: &Peer,
    connect: impl std::future::Future<Output = io::Result<S>>,
) -> io::Result<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connect = async {
        let mut stream = connect.await?;
        if let Some(secret) = &shared.config.secret {
            crate::auth::connect(&mut stream, secret).await?;
        }
        // Frames may follow at once: the peer's hello is read alongside them (`carry`).
        stream.write_all(&shared.hello().encode()).await?;
        Ok::<_, io::Error>(stream)
    };
    tokio::select! {
        connected = tokio::time::timeout(shared.config.handshake_timeout, connect) => {
            let timed_out = "connecting and its handshakes timed out";
            connected.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, timed_out))?
        }
        () = peer.stopped.notified() => Err(io::Error::other("the transport is shutting down")),
    }
}

/// Writes the peer's batches on `write` and watches `read` until either ends the connection.
/// Generic so that plain TCP writes straight to the socket's halves.
async fn carry<R, W>(
    shared: &Shared,
    peer: &Peer,
    made: u64,
    (mut read, mut write): (R, W),
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    shared.stats.connections.increment();
    let _connected = crate::stats::scopeguard(|| shared.stats.connections.decrement());
    tracing::debug!(peer = %peer.address, "connected");
    // The frames of the batch being written: lost if the connection ends before they are all
    // written (an error, the peer gone, the task discarded), and counted as such, so that every
    // message is counted either out or dropped.
    let in_flight = AtomicU64::new(0);
    let _lost = crate::stats::scopeguard(|| {
        let lost = in_flight.load(Ordering::Relaxed);
        if lost > 0 {
            shared.stats.dropped(Reason::Unreachable, lost);
        }
    });
    let writing = async {
        while let Some((mut batch, frames)) = peer.next_batch().await {
            in_flight.store(frames, Ordering::Relaxed);
            let bytes = batch.iter().map(Bytes::len).sum::<usize>();
            write_all_vectored(&mut write, &mut batch).await?;
            // A no-op on TCP; TLS may hold the last record until flushed.
            write.flush().await?;
            in_flight.store(0, Ordering::Relaxed);
            shared.stats.bytes_out.add(bytes as u64);
            shared.stats.messages_out.add(frames);
        }
        Ok(())
    };
    // The peer writes its hello, then nothing: any byte or the end means it is gone.
    let watching = async {
        let hello = tokio::time::timeout(shared.config.handshake_timeout, Hello::read(&mut read))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the peer said no hello"))??;
        peer.incarnation.store(hello.incarnation, Ordering::Relaxed);
        if !shared.heard(peer.address, hello.incarnation, made) {
            return Err(io::Error::other(
                "reached a run of the peer's node that is gone",
            ));
        }
        let mut byte = [0u8; 1];
        match read.read(&mut byte).await {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the peer closed the connection",
            )),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer wrote on an outbound connection",
            )),
            Err(error) => Err(error),
        }
    };
    tokio::select! {
        outcome = writing => outcome,
        outcome = watching => outcome,
    }
}

/// Writes every segment of `batch`, in order, gathering up to [`GATHER`] of them per write.
async fn write_all_vectored<W>(write: &mut W, batch: &mut [Bytes]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut next = 0;
    while next < batch.len() {
        let slices: Vec<IoSlice<'_>> = batch[next..]
            .iter()
            .take(GATHER)
            .map(|segment| IoSlice::new(segment))
            .collect();
        let mut written = write.write_vectored(&slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while next < batch.len() && written >= batch[next].len() {
            written -= batch[next].len();
            next += 1;
        }
        if written > 0 {
            batch[next].advance(written);
        }
    }
    Ok(())
}
