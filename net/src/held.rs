//! Sends held back while a handler runs, and sent together when it returns.
//!
//! A message that a process's handler sends to another node ([`Outgoing::may_wait`]) is encoded
//! into a buffer of the thread's own, with no lock taken: its header leaves out what the
//! previous held frame had, as a connection's frames do. When the handler returns, the runtime
//! flushes the transport and the frames join the peer's send buffer under one lock, the first
//! with every field in full. A stream of small messages then costs one lock, one map lookup and
//! one copy per handler instead of per message.
//!
//! Order is kept: a thread holds frames for one peer at a time (a send to another node flushes
//! them first), a link or exit notice flushes them before it is queued, and a process's next
//! handler runs only after the flush. Memory is bounded: past [`HOLD`] bytes the frames go at
//! once. The peer buffer's bound applies at the flush: the frames that do not fit are dropped
//! and counted, from the first that does not on. A body of [`SHARED_BODY`] bytes or more
//! already encoded (a forwarded message) is never held: it is queued as it is, not copied.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use procession::message::CodecError;
use procession::{Outgoing, Upid};

use crate::frame::{FrameError, Kind};
use crate::peer::{Frames, Peer};
use crate::stats::Reason;
use crate::transport::Shared;

#[cfg(doc)]
use crate::peer::SHARED_BODY;

/// The most bytes a thread holds back before sending them.
const HOLD: usize = 64 * 1024;

thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held {
        target: None,
        frames: Frames::keeping_ends(),
    });
}

/// The frames a thread holds back, and the connection they are for.
struct Held {
    target: Option<(Arc<Shared>, Arc<Peer>)>,
    frames: Frames,
}

/// Holds `message` from `from` to `to` back until [`flush`]; false if it cannot be held (the
/// thread is holding a message already: a send from inside a message's `Serialize`), and the
/// caller sends it at once.
pub(crate) fn hold(
    shared: &Arc<Shared>,
    (from, to): (&Upid, &Upid),
    message: &Outgoing<'_>,
) -> bool {
    HELD.with(|held| {
        let Ok(mut held) = held.try_borrow_mut() else {
            return false;
        };
        let address = to.address();
        let same = |(s, p): &(Arc<Shared>, Arc<Peer>)| Arc::ptr_eq(s, shared) && p.address() == address;
        if !held.target.as_ref().is_some_and(same) {
            held.flush();
            let Some(peer) = shared.peer_for(address) else {
                shared.stats.dropped(Reason::Unreachable, 1);
                return true;
            };
            held.target = Some((shared.clone(), peer));
        }
        let start = held.frames.bytes.len();
        let encoded = held.frames.encode_with(Kind::Message, (from, to), message.name(), |bytes| {
            message.encode_into(bytes).map_err(Unsendable::Body)?;
            Ok::<_, Unsendable>(0)
        });
        match encoded {
            Ok(()) => held.frames.encoded(),
            Err(error) => {
                held.frames.undo(start);
                shared.stats.dropped(Reason::Malformed, 1);
                tracing::warn!(%to, name = message.name(), %error, "message cannot be encoded; dropped");
            }
        }
        if held.frames.bytes.len() >= HOLD {
            held.flush();
        }
        true
    })
}

/// Sends the frames this thread holds back.
pub(crate) fn flush() {
    HELD.with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.flush();
        }
    });
}

impl Held {
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

/// Why a held message could not be encoded.
enum Unsendable {
    Frame(FrameError),
    Body(CodecError),
}

impl From<FrameError> for Unsendable {
    fn from(error: FrameError) -> Self {
        Unsendable::Frame(error)
    }
}

impl fmt::Display for Unsendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsendable::Frame(error) => error.fmt(f),
            Unsendable::Body(error) => error.fmt(f),
        }
    }
}
