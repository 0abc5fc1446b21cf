//! Frames encoded one after another for one connection, each leaving out the fields the frame
//! before it had.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use procession::Upid;

use crate::frame::{self, FrameError, Header, Kind};
use crate::peer::Body;

/// Frames encoded one after another into one buffer, each leaving out the `from`, `to` and name
/// that the previous one had (the receiver has them from that frame): a stream between two
/// processes formats their Upids once, not per frame.
#[derive(Default)]
pub(crate) struct Frames {
    pub(crate) bytes: BytesMut,
    /// How many frames `bytes` holds.
    pub(crate) count: u64,
    /// Where each frame ends in `bytes`, when kept (see [`Frames::keeping_ends`]).
    ends: Option<Vec<usize>>,
    from: Printed,
    to: Printed,
    name: Option<String>,
}

impl Frames {
    /// Frames that remember where each ends, so that [`Peer::append`](crate::peer::Peer::append) can keep those that fit.
    pub(crate) fn keeping_ends() -> Self {
        Frames {
            ends: Some(Vec::new()),
            ..Frames::default()
        }
    }

    /// Appends a frame: its header, then the body unless it is large (queued after the header
    /// by the caller). On an error nothing is appended.
    pub(crate) fn encode(
        &mut self,
        kind: Kind,
        upids: (&Upid, &Upid),
        name: &str,
        body: &Body<'_>,
    ) -> Result<(), FrameError> {
        self.encode_with(kind, upids, name, |bytes| {
            if let Body::Small(small) = body {
                bytes.extend_from_slice(small);
            }
            Ok(body.apart().map_or(0, Bytes::len))
        })
    }

    /// Appends a frame whose body `body` writes after the header, answering how many more bytes
    /// of it are queued apart. On an error, or if `body` panics, nothing is appended: a frame
    /// is never left half-written.
    pub(crate) fn encode_with<E: From<FrameError>>(
        &mut self,
        kind: Kind,
        (from, to): (&Upid, &Upid),
        name: &str,
        body: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
    ) -> Result<(), E> {
        let start = self.bytes.len();
        let same_name = self.name.as_deref() == Some(name);
        if !same_name {
            let last = self.name.get_or_insert_with(String::new);
            last.clear();
            last.push_str(name);
        }
        let header = Header {
            kind,
            from: self.from.field(from),
            to: self.to.field(to),
            name: (!same_name).then_some(name),
        };
        if let Err(error) = header.encode(&mut self.bytes) {
            self.forget_last();
            return Err(error.into());
        }
        let undo = Undo {
            frames: self,
            start,
        };
        let apart = body(&mut undo.frames.bytes)?;
        frame::finish(&mut undo.frames.bytes[start..], apart)?;
        std::mem::forget(undo);
        Ok(())
    }

    /// Counts the frame just encoded, which ends the buffer.
    pub(crate) fn encoded(&mut self) {
        self.count += 1;
        if let Some(ends) = &mut self.ends {
            ends.push(self.bytes.len());
        }
    }

    /// Takes back a frame begun at `start` (it could not be encoded, or was not kept).
    pub(crate) fn undo(&mut self, start: usize) {
        self.bytes.truncate(start);
        self.forget_last();
    }

    /// Makes the next frame carry every field in full.
    pub(crate) fn forget_last(&mut self) {
        self.from.upid = None;
        self.to.upid = None;
        self.name = None;
    }

    pub(crate) fn ends(&self) -> &[usize] {
        self.ends.as_deref().unwrap_or_default()
    }

    /// How many of the frames, from the first, fit in `room` bytes.
    pub(crate) fn fitting(&self, room: usize) -> usize {
        self.ends().partition_point(|end| *end <= room)
    }

    /// Empties the buffer (keeping its memory); the next frame carries every field in full.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
        if let Some(ends) = &mut self.ends {
            ends.clear();
        }
        self.forget_last();
    }
}

/// A Upid and its text: the last one a frame on the connection carried.
#[derive(Default)]
struct Printed {
    upid: Option<Upid>,
    text: String,
}

impl Printed {
    /// `None` when `upid` is the last one (the frame repeats it), else its text, which it now
    /// is.
    fn field(&mut self, upid: &Upid) -> Option<&str> {
        // Upids equal but for their incarnations are not the same field.
        let same = |last: &Upid| last == upid && last.incarnation() == upid.incarnation();
        if self.upid.as_ref().is_some_and(same) {
            return None;
        }
        self.text.clear();
        let _ = write!(self.text, "{upid:#}");
        self.upid = Some(upid.clone());
        Some(&self.text)
    }
}

/// Takes back the frame begun at `start` unless forgotten: when its encoding fails or panics.
struct Undo<'a> {
    frames: &'a mut Frames,
    start: usize,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        self.frames.undo(self.start);
    }
}
