//! Sends held back while a handler runs, and sent together when it returns.
//!
//! A message that a process's handler sends to another node
//! ([`Outgoing::may_wait`](procession::Outgoing::may_wait)) is serialized as any other (before
//! any buffer of the transport is in use, so a `Serialize` that panics or sends leaves nothing
//! half-written), then framed into a buffer of the thread's own, with no lock taken: its header
//! leaves out what the previous held frame had, as a connection's frames do. When the handler
//! returns, the runtime flushes the transport and the frames join the peer's send buffer under
//! one lock, the first with every field in full. A stream of small messages then costs one
//! lock, one map lookup and one copy per handler instead of per message.
//!
//! Order is kept between what a handler sends: a thread holds frames for one peer at a time (a
//! send to another node flushes them first), a message sent at once (a forwarded body of 4 KiB
//! or more, queued as it is) and a link or exit notice flush them first, and a process's next
//! handler runs only after the flush. A send made meanwhile on another thread in the process's
//! name (a timer's or a task's `post`) is another sender: it may arrive first. Memory is
//! bounded: past [`HOLD`] bytes the frames go at once. The peer buffer's bound applies at the
//! flush: the frames that do not fit are dropped and counted, from the first that does not on.

use std::cell::RefCell;
use std::sync::Arc;

use procession::Upid;

use crate::frame::Kind;
use crate::peer::{Body, Frames, Peer};
use crate::stats::Reason;
use crate::transport::Shared;

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

/// Holds a message named `name` from `from` to `to`, its body encoded, back until [`flush`];
/// false if it cannot be held (a large body, queued as it is; or a send from inside another
/// one's [`hold`]), and the caller sends it at once. The body was encoded before: no code of
/// the sender's runs while the buffer is in use.
pub(crate) fn hold(
    shared: &Arc<Shared>,
    (from, to): (&Upid, &Upid),
    name: &str,
    body: &Body<'_>,
) -> bool {
    if body.apart().is_some() {
        return false;
    }
    HELD.with(|held| {
        let Ok(mut held) = held.try_borrow_mut() else {
            return false;
        };
        let address = to.address();
        let same =
            |(s, p): &(Arc<Shared>, Arc<Peer>)| Arc::ptr_eq(s, shared) && p.address() == address;
        if !held.target.as_ref().is_some_and(same) {
            held.flush();
            let Some(peer) = shared.peer_for(address) else {
                shared.stats.dropped(Reason::Unreachable, 1);
                return true;
            };
            held.target = Some((shared.clone(), peer));
        }
        let start = held.frames.bytes.len();
        match held.frames.encode(Kind::Message, (from, to), name, body) {
            Ok(()) => held.frames.encoded(),
            Err(error) => {
                held.frames.undo(start);
                shared.stats.dropped(Reason::Malformed, 1);
                tracing::warn!(%to, name, %error, "message cannot be encoded; dropped");
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
