//! Sends held back while a handler runs, and sent together when it returns.
//!
//! A message that a process's handler sends to another node
//! ([`Outgoing::may_wait`](procession::Outgoing::may_wait)) is serialized straight into a buffer
//! of the thread's own, with no lock taken: it joins the run of the previous held message when
//! it has the same sender, receiver and name, and its header leaves out what the previous frame
//! had otherwise, as a connection's frames do. When the handler returns, the runtime flushes the
//! transport and the frames join the peer's send buffer under one lock, the first with every
//! field in full. A stream of small messages then costs one lock, one map lookup and one copy
//! per handler instead of per message. A `Serialize` that fails or panics leaves nothing of its
//! frame behind; one that sends a message itself (the buffer is in use then) has that message
//! held right after its own.
//!
//! Order is kept between what a handler sends: a thread holds frames for one peer at a time (a
//! send to another node flushes them first), a message sent at once (a forwarded body of 4 KiB
//! or more, queued as it is) and a link or exit notice flush them first, and a process's next
//! handler runs only after the flush. A send made meanwhile on another thread in the process's
//! name (a timer's or a task's `post`) is another sender: it may arrive first. Memory is
//! bounded: past [`HOLD`] bytes the frames go at once. The peer buffer's bound applies at the
//! flush: the messages that do not fit are dropped and counted, from the first that does not on
//! (a run cut short ends with the last message kept).

use std::cell::RefCell;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use procession::message::CodecError;
use procession::{Outgoing, Upid};

use crate::frame::{FrameError, Kind};
use crate::frames::Frames;
use crate::peer::Peer;
use crate::stats::Reason;
use crate::transport::Shared;

/// The most bytes a thread holds back before sending them.
const HOLD: usize = 64 * 1024;

thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held {
        target: None,
        frames: Frames::keeping_ends(),
    });
    /// Messages sent from inside a held message's `Serialize`, held after it.
    static NESTED: RefCell<Vec<Nested>> = const { RefCell::new(Vec::new()) };
}

/// The frames a thread holds back, and the connection they are for.
struct Held {
    target: Option<(Arc<Shared>, Arc<Peer>)>,
    frames: Frames,
}

/// A message sent while the thread's buffer was in use, its body encoded apart.
struct Nested {
    shared: Arc<Shared>,
    upids: (Upid, Upid),
    name: String,
    body: Bytes,
}

/// Holds `message` from `from` to `to` back until [`flush`].
pub(crate) fn hold(shared: &Arc<Shared>, (from, to): (&Upid, &Upid), message: &Outgoing<'_>) {
    HELD.with(|held| {
        let Ok(mut held) = held.try_borrow_mut() else {
            return nest(shared, (from, to), message);
        };
        held.push(shared, (from, to), message.name(), |bytes| {
            message.encode_into(bytes).map(|()| 0)
        });
        held.push_nested();
        if held.frames.bytes.len() >= HOLD {
            held.flush();
        }
    });
}

/// Sends the frames this thread holds back.
pub(crate) fn flush() {
    HELD.with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.push_nested();
            held.flush();
        }
    });
}

/// Keeps a message sent from inside a held message's `Serialize` for the sender to hold after
/// that message.
fn nest(shared: &Arc<Shared>, (from, to): (&Upid, &Upid), message: &Outgoing<'_>) {
    let mut body = BytesMut::new();
    if let Err(error) = message.encode_into(&mut body) {
        return unencodable(shared, to, message.name(), &error);
    }
    let nested = Nested {
        shared: shared.clone(),
        upids: (from.clone(), to.clone()),
        name: message.name().to_owned(),
        body: body.freeze(),
    };
    NESTED.with(|list| list.borrow_mut().push(nested));
}

fn unencodable(shared: &Shared, to: &Upid, name: &str, error: &dyn std::fmt::Display) {
    shared.stats.dropped(Reason::Malformed, 1);
    tracing::warn!(%to, name, %error, "message cannot be encoded; dropped");
}

impl Held {
    /// Frames a message for `to`'s node, its body written by `body`, after sending what is held
    /// for another node.
    fn push(
        &mut self,
        shared: &Arc<Shared>,
        (from, to): (&Upid, &Upid),
        name: &str,
        body: impl FnOnce(&mut BytesMut) -> Result<usize, CodecError>,
    ) {
        let address = to.address();
        let same =
            |(s, p): &(Arc<Shared>, Arc<Peer>)| Arc::ptr_eq(s, shared) && p.address() == address;
        if !self.target.as_ref().is_some_and(same) {
            self.flush();
            let Some(peer) = shared.peer_for(address) else {
                return shared.stats.dropped(Reason::Unreachable, 1);
            };
            self.target = Some((shared.clone(), peer));
        }
        let run = shared.config.run();
        let encoded = self
            .frames
            .encode_with(Kind::Message, (from, to), name, run, |bytes| {
                body(bytes).map_err(Unsendable::Body)
            });
        match encoded {
            Ok(()) => self.frames.encoded(),
            Err(Unsendable::Body(error)) => unencodable(shared, to, name, &error),
            Err(Unsendable::Frame(error)) => unencodable(shared, to, name, &error),
        }
    }

    /// Holds the messages sent from inside the last one's `Serialize`.
    fn push_nested(&mut self) {
        // Nearly always none: a look, not a take.
        if !NESTED.with(|list| list.borrow().is_empty()) {
            self.push_all_nested();
        }
    }

    #[cold]
    fn push_all_nested(&mut self) {
        for nested in NESTED.with(|list| std::mem::take(&mut *list.borrow_mut())) {
            let (from, to) = &nested.upids;
            self.push(&nested.shared, (from, to), &nested.name, |bytes| {
                bytes.extend_from_slice(&nested.body);
                Ok(0)
            });
        }
    }

    fn flush(&mut self) {
        let Some((shared, mut peer)) = self.target.take() else {
            return;
        };
        // A connection that ended meanwhile is replaced, as for a message sent at once.
        while self.frames.count > 0 && !peer.append(&shared, &mut self.frames) {
            shared.forget_peer(&peer);
            match shared.peer_for(peer.address()) {
                Some(next) => peer = next,
                None => {
                    shared.stats.dropped(Reason::Unreachable, self.frames.count);
                    break;
                }
            }
        }
        self.frames.clear();
    }
}

/// Why a held message could not be framed: its body's encoding or the frame's fields.
enum Unsendable {
    Body(CodecError),
    Frame(FrameError),
}

impl From<FrameError> for Unsendable {
    fn from(error: FrameError) -> Self {
        Unsendable::Frame(error)
    }
}
