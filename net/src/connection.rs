//! Inbound: one task per accepted connection, reading frames and handing them to the runtime.
//!
//! A connection that fails a handshake (TLS, the shared secret's or the hello), sends a malformed or
//! oversized frame, or breaks is closed, logged and counted; every other connection carries on.
//! A frame's events reach the runtime in the order they arrived, so messages from one process to
//! another keep their order while the connection lives. An unknown message name or receiver is
//! the runtime's to drop and count (as for a local send).

use std::io;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes, BytesMut};
use procession::{InboundRun, Upid};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frame::{FrameDecoder, FrameError, Kind, Received};
use crate::hello::Hello;
use crate::stats::Reason;
use crate::transport::Shared;
use crate::wire;

/// The least room the reader offers the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The size of a fresh receive buffer.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// The most the reader allocates ahead for a frame whose bytes have not arrived: a length
/// prefix alone must not make a node reserve [`Builder::max_frame`](crate::Builder::max_frame)
/// bytes per connection. A larger frame's buffer grows as its bytes come.
const AHEAD: usize = 1024 * 1024;

/// Serves one accepted connection, numbered `made` when it was accepted; `said` receives the
/// connecting node's hello.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    made: u64,
    said: Arc<OnceLock<Hello>>,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.config.tls {
        let handshake = (Reason::Tls, "TLS handshake");
        let Some(stream) = within(&shared, &peer, handshake, tls.accept(stream)).await else {
            return;
        };
        return serve_stream(&shared, &peer, stream, (made, &said)).await;
    }
    serve_stream(&shared, &peer, stream, (made, &said)).await;
}

/// Authenticates the peer (when the node has a secret), exchanges hellos, then reads its frames
/// until the end (or until the task is discarded: shutdown, a later run of the peer's node).
/// Generic so that plain TCP is read directly, with no layer between the socket and the reader.
async fn serve_stream<S>(
    shared: &Shared,
    peer: &str,
    mut stream: S,
    (made, said): (u64, &OnceLock<Hello>),
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(secret) = &shared.config.secret {
        let handshake = crate::auth::accept(&mut stream, secret);
        let step = (Reason::Unauthenticated, "authentication");
        if within(shared, peer, step, handshake).await.is_none() {
            return;
        }
    }
    let step = (Reason::Malformed, "hello");
    let Some(said_hello) = within(shared, peer, step, hellos(shared, &mut stream)).await else {
        return;
    };
    let Some(hello) = said_hello else {
        return tracing::debug!(%peer, "peer closed its connection before its hello");
    };
    // Said before heard: a later run's hello, heard meanwhile, finds this reader to discard.
    let _ = said.set(hello);
    if !shared.heard(hello.address, hello.incarnation, made) {
        return tracing::info!(%peer, "connection from a run of its node that is gone; closed");
    }
    shared.stats.connections.increment();
    // Decremented when the task is discarded too (shutdown, a later run of the peer's node).
    let connected = crate::stats::scopeguard(|| shared.stats.connections.decrement());
    let error = read_frames(shared, &mut stream).await;
    drop(connected);
    match error {
        None => tracing::debug!(%peer, "peer closed its connection"),
        Some(error) => tracing::info!(%peer, %error, "inbound connection closed"),
    }
}

/// Runs handshake step `what` within the handshake timeout; its failure or its timeout
/// refuses the connection: logged, counted under `reason`, `None`.
async fn within<T>(
    shared: &Shared,
    peer: &str,
    (reason, what): (Reason, &str),
    step: impl std::future::Future<Output = io::Result<T>>,
) -> Option<T> {
    let error = match tokio::time::timeout(shared.config.handshake_timeout, step).await {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(error)) => error.to_string(),
        Err(_) => "none in time".to_owned(),
    };
    shared.stats.dropped(reason, 1);
    tracing::warn!(%peer, %error, "connection refused: {what} failed");
    None
}

/// Reads the connecting node's hello and answers with this node's; `None` if the connection
/// ended before the hello's first byte (a probe, not an error).
async fn hellos<S>(shared: &Shared, stream: &mut S) -> io::Result<Option<Hello>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hello = match Hello::read(stream).await {
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        read => read?,
    };
    stream.write_all(&shared.hello().encode()).await?;
    Ok(Some(hello))
}

/// Reads until the end of the stream (`None`) or an error, which it returns.
async fn read_frames(shared: &Shared, stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut decoder = FrameDecoder::new(shared.config.max_frame);
    let mut run = Run::default();
    let mut buffer = BytesMut::new();
    loop {
        // The frames at the front of the buffer are decoded in place; `parsed` bytes of them.
        let mut parsed = 0;
        loop {
            match decoder.next(&buffer[parsed..]) {
                Ok(Some(frame)) => run.add(shared, frame, (&mut buffer, &mut parsed)),
                Ok(None) => break,
                Err(error) => {
                    run.flush(shared, &mut buffer, parsed);
                    return Some(malformed(shared, &error));
                }
            }
        }
        // Before waiting for more bytes: what arrived is not held back.
        run.flush(shared, &mut buffer, parsed);
        let missing = match decoder.missing(&buffer) {
            Ok(missing) => missing,
            Err(error) => return Some(malformed(shared, &error)),
        };
        make_room(&mut buffer, missing);
        match stream.read_buf(&mut buffer).await {
            Ok(0) if buffer.is_empty() => return None,
            Ok(0) => {
                shared.stats.dropped(Reason::Malformed, 1);
                return Some(format!(
                    "stream ended inside a frame ({} bytes)",
                    buffer.len()
                ));
            }
            Ok(n) => shared.stats.bytes_in.add(n as u64),
            Err(error) => return Some(error.to_string()),
        }
    }
}

fn malformed(shared: &Shared, error: &FrameError) -> String {
    shared.stats.dropped(Reason::Malformed, 1);
    format!("malformed frame: {error}")
}

/// Makes room in `buffer` for the `missing` bytes of the frame begun at its front (all of it,
/// up to [`AHEAD`], so that a large body arrives in one piece and is never moved) and for at
/// least [`READ_CHUNK`] bytes. The frames already cut out of the buffer keep its memory alive
/// until their receivers are done with them, so a new buffer is [`RECEIVE_BUFFER`] bytes or
/// more: the begun frame's bytes are copied into it once per that many bytes read, not once per
/// read.
fn make_room(buffer: &mut BytesMut, missing: usize) {
    let wanted = missing.clamp(READ_CHUNK, AHEAD);
    if buffer.capacity() - buffer.len() < wanted {
        buffer.reserve(wanted.max(RECEIVE_BUFFER - buffer.len().min(RECEIVE_BUFFER)));
    }
}

/// The most messages in one run delivered: a run is one event for its receiver's visit budget,
/// so a bound on it keeps a stream from holding a worker much longer than separate messages
/// would.
const RUN: usize = 256;

/// Consecutive messages of a connection from one sender to one receiver under one name,
/// delivered together as [`InboundRun`]s: their bodies are ranges of the frames decoded in
/// place at the front of the receive buffer, cut off as one piece when the run is delivered.
#[derive(Default)]
struct Run {
    /// The run's `from`, `to` and name, and its bodies' ranges; `None` between runs.
    held: Option<(Head, Vec<Range<usize>>)>,
}

/// What every message of a run shares: its sender, receiver and name.
type Head = (Upid, Upid, Arc<str>);

impl Run {
    /// Takes `frame`, decoded at `parsed` in `buffer`, in order, and moves `parsed` past it: a
    /// frame of messages joins the run (after delivering it if the messages are not its like,
    /// or would make it too long); a link or exit notice is handled after the run, which cannot
    /// overtake it.
    fn add(&mut self, shared: &Shared, frame: Received<'_>, at: (&mut BytesMut, &mut usize)) {
        let (buffer, parsed) = at;
        let joins = frame.kind == Kind::Message
            && frame.repeats
            && self
                .held
                .as_ref()
                .is_some_and(|(_, bodies)| bodies.len() + frame.count <= RUN);
        if !joins {
            self.flush(shared, buffer, *parsed);
            *parsed = 0;
        }
        let head = || (frame.from.clone(), frame.to.clone(), frame.name.clone());
        match frame.kind {
            Kind::Message if frame.count > RUN => {
                // Longer than a run (not from a procession sender): its own runs, in turn.
                let bytes = buffer.split_to(frame.length).freeze();
                let mut bodies = frame.bodies(&bytes);
                loop {
                    let part = bodies.by_ref().take(RUN).collect::<Vec<_>>();
                    if part.is_empty() {
                        return;
                    }
                    self.held = Some((head(), part));
                    self.deliver(shared, bytes.clone());
                }
            }
            Kind::Message => {
                let (_, bodies) = self.held.get_or_insert_with(|| (head(), Vec::new()));
                let frame_bytes = &buffer[*parsed..*parsed + frame.length];
                let at = *parsed;
                bodies.extend(frame.bodies(frame_bytes).map(|b| at + b.start..at + b.end));
            }
            Kind::Link => shared.inbound.link(frame.from.clone(), frame.to),
            Kind::Exited => match wire::decode_reason(frame.name) {
                Some(reason) => shared.inbound.exited(frame.from, &reason),
                None => {
                    shared.stats.dropped(Reason::Malformed, 1);
                    tracing::warn!(from = %frame.from, reason = %frame.name, "exited frame with an unknown reason dropped");
                }
            },
        }
        *parsed += frame.length;
    }

    /// Delivers the run, cutting the first `parsed` bytes (the frames it came from) off the
    /// buffer; with no run, drops them (a link or exit notice, already handled).
    fn flush(&mut self, shared: &Shared, buffer: &mut BytesMut, parsed: usize) {
        if self.held.is_none() {
            return buffer.advance(parsed);
        }
        self.deliver(shared, buffer.split_to(parsed).freeze());
    }

    /// Delivers the run, whose bodies are ranges of `bytes`.
    fn deliver(&mut self, shared: &Shared, bytes: Bytes) {
        let Some(((from, to, name), bodies)) = self.held.take() else {
            return;
        };
        shared.stats.messages_in.add(bodies.len() as u64);
        // The bodies were cut from these bytes, so they lie inside them.
        if let Some(run) = InboundRun::new(from, name, bytes, bodies) {
            shared.inbound.deliver_run(&to, run);
        }
    }
}
