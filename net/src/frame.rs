//! The frame codec: events on the wire.
//!
//! Every frame is
//!
//! ```text
//! u32  length of what follows (big-endian), at most the decoder's limit
//! u8   version (4)
//! u8   kind: 0 messages, 1 link, 2 exited
//! u8   repeated: bit 0 `from`, bit 1 `to`, bit 2 `name` is the previous frame's on this
//!      connection and is left out below
//! u16  length of `from`, then `from` (a Upid, `id@ip:port#incarnation`, UTF-8)
//! u16  length of `to`, then `to`
//! u16  length of `name`, then `name` (the message name; for `exited`, the reason)
//! ...  for messages, one or more bodies, each a u32 length (big-endian) and the encoded
//!      message; link and exited frames end after the name
//! ```
//!
//! A message frame carries a *run*: every message of it has the frame's `from`, `to` and name.
//! A stream between two processes is then a few frames of many bodies, each body costing 4 bytes
//! of framing, and a receiver parses one header per run, not per message. The transport's sender
//! also leaves out what the previous frame on the connection had (a new run of a stream repeats
//! all three fields: 7 bytes of header), and its receiver keeps the previous frame's fields to
//! fill them in. A connection's frames follow the two nodes' [hellos](crate::hello).
//!
//! The sender keeps a frame of several messages under 16 KiB and under its
//! [`Builder::max_frame`](crate::Builder::max_frame): a message joins a run under half that
//! bound, and a message over the other half starts a frame of its own. So a node whose messages
//! each fit its peer's limit never sends that peer a longer frame, as long as the two nodes
//! have the same limit.
//!
//! ```
//! use bytes::BytesMut;
//! use procession_net::frame::{Frame, FrameDecoder, Kind};
//!
//! let frame = Frame {
//!     kind: Kind::Message,
//!     from: "client@127.0.0.1:4000".parse().unwrap(),
//!     to: "master@127.0.0.1:5050".parse().unwrap(),
//!     name: "cluster::Submit".into(),
//!     body: bytes::Bytes::from_static(b"payload"),
//! };
//! let mut wire = BytesMut::new();
//! frame.encode(&mut wire).unwrap();
//! let decoded = FrameDecoder::new(1 << 20).decode(&mut wire).unwrap().unwrap();
//! assert_eq!(decoded, frame);
//! assert!(wire.is_empty());
//! ```
//!
//! # Contract
//!
//! The decoder never panics and never allocates more than the bytes it was given: a length
//! prefix over the limit is an error at once (before its bytes arrive), a short buffer is
//! `Ok(None)` (wait for more), and anything malformed is an error naming what was wrong, before
//! any message of its frame is returned. A body is a slice of the receive buffer, not a copy.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use procession::Upid;

/// The wire format version this codec speaks.
pub const VERSION: u8 = 4;

/// Bytes before the frame's content: the length prefix.
const PREFIX: usize = 4;

/// Bytes before a body in a message frame: its length.
pub(crate) const BODY_PREFIX: usize = 4;

/// The header of a message frame that repeats the previous frame's `from`, `to` and name: the
/// length prefix (a placeholder), the version, the kind, all three fields repeated.
pub(crate) const REPEATING: [u8; 7] = [0, 0, 0, 0, VERSION, 0, 0b111];

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Messages for `to`'s handler named `name` (on the wire, a run of one or more).
    Message,
    /// `from` asks to be told when `to` ends.
    Link,
    /// `from` ended; `to` had linked to it; `name` is the reason.
    Exited,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Message => 0,
            Kind::Link => 1,
            Kind::Exited => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Message),
            1 => Some(Kind::Link),
            2 => Some(Kind::Exited),
            _ => None,
        }
    }
}

/// One event on the wire: a message (one of a frame's run), a link or an exit notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame carries.
    pub kind: Kind,
    /// The sender.
    pub from: Upid,
    /// The receiver.
    pub to: Upid,
    /// The message name (the reason, for `exited`).
    pub name: String,
    /// The encoded message; empty for a link or an exit notice.
    pub body: Bytes,
}

impl Frame {
    /// Appends the frame to `out`: a message as a run of one.
    ///
    /// # Errors
    ///
    /// [`FrameError::Field`] when `from`, `to` or `name` is longer than 65,535 bytes,
    /// [`FrameError::TooLarge`] for a frame over 4 GiB, and [`FrameError::Bodies`] for a link
    /// or an exit notice with a body; `out` is then left as it was.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        if self.kind != Kind::Message && !self.body.is_empty() {
            return Err(FrameError::Bodies);
        }
        let (from, to) = (format!("{:#}", self.from), format!("{:#}", self.to));
        let header = Header {
            kind: self.kind,
            from: Some(&from),
            to: Some(&to),
            name: Some(&self.name),
        };
        let start = out.len();
        header.encode(out)?;
        let mut encoded = Ok(());
        if self.kind == Kind::Message {
            let body = out.len();
            out.put_u32(0);
            out.put_slice(&self.body);
            encoded = finish(&mut out[body..], 0);
        }
        encoded = encoded.and_then(|()| finish(&mut out[start..], 0));
        if encoded.is_err() {
            out.truncate(start);
        }
        encoded
    }
}

/// A frame's header: everything but the bodies. What the transport encodes, borrowing the parts
/// of a send instead of building a [`Frame`]; the bodies follow it, then [`finish`] sets the
/// length prefix. A field that is `None` repeats the previous frame's on the connection.
pub(crate) struct Header<'a> {
    pub(crate) kind: Kind,
    pub(crate) from: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
}

impl Header<'_> {
    /// Appends the header with a placeholder length prefix; on an error `out` is left as it
    /// was. See [`Frame::encode`] for the errors.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        if let (None, None, None) = (self.from, self.to, self.name) {
            // A stream's next run: one append.
            let mut header = REPEATING;
            header[5] = self.kind.to_byte();
            out.extend_from_slice(&header);
            return Ok(());
        }
        let fields = [("from", self.from), ("to", self.to), ("name", self.name)];
        let mut repeated = 0;
        let mut length = PREFIX + 3;
        for (bit, (field, text)) in fields.iter().enumerate() {
            match text {
                None => repeated |= 1 << bit,
                Some(text) if u16::try_from(text.len()).is_ok() => length += 2 + text.len(),
                Some(_) => return Err(FrameError::Field(field)),
            }
        }
        out.reserve(length);
        out.put_u32(0);
        out.put_u8(VERSION);
        out.put_u8(self.kind.to_byte());
        out.put_u8(repeated);
        for text in fields.iter().filter_map(|(_, text)| *text) {
            // Checked above.
            out.put_u16(text.len() as u16);
            out.put_slice(text.as_bytes());
        }
        Ok(())
    }
}

/// Sets the length prefix of `frame` (a frame, or a body with its length before it) to count
/// what follows the prefix plus `more` bytes of body sent separately.
///
/// # Errors
///
/// [`FrameError::TooLarge`] for a frame or body over 4 GiB.
pub(crate) fn finish(frame: &mut [u8], more: usize) -> Result<(), FrameError> {
    let length = frame.len() - PREFIX + more;
    let length = u32::try_from(length).map_err(|_| FrameError::TooLarge {
        length,
        limit: u32::MAX as usize,
    })?;
    frame[..PREFIX].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix is over the decoder's limit.
    TooLarge {
        /// The length the prefix claims.
        length: usize,
        /// The decoder's limit.
        limit: usize,
    },
    /// The frame's version is not [`VERSION`].
    Version(u8),
    /// The frame's kind byte is unknown.
    Kind(u8),
    /// The frame's repeated-fields byte has bits beyond the three fields'.
    Repeated(u8),
    /// A field is marked repeated, but no earlier frame on the connection had one.
    NothingToRepeat(&'static str),
    /// The frame ends inside a field or a body, or is shorter than its header.
    Truncated,
    /// A message frame without a body, or a link or exit notice with one.
    Bodies,
    /// A field is not UTF-8 or not a Upid (decoding), or longer than 64 KiB (encoding).
    Field(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { length, limit } => {
                write!(f, "frame of {length} bytes is over the limit of {limit}")
            }
            FrameError::Version(v) => write!(f, "unknown frame version {v}"),
            FrameError::Kind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::Repeated(bits) => write!(f, "unknown repeated-field bits {bits:#04x}"),
            FrameError::NothingToRepeat(field) => {
                write!(f, "field `{field}` repeats a frame that never came")
            }
            FrameError::Truncated => f.write_str("frame ends inside a field or a body"),
            FrameError::Bodies => f.write_str("message frame without a body, or notice with one"),
            FrameError::Field(field) => write!(f, "malformed frame field `{field}`"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Cuts frames out of one connection's receive buffer, keeping the fields of the previous frame
/// for the next one to repeat.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    limit: usize,
    recent: Recent,
    /// The run [`decode`](Self::decode) cut out last, while it has messages not yet returned.
    pending: Option<Pending>,
}

/// A run cut out of the buffer: its messages' shared fields, its bytes, and where the next
/// body's length is in them.
#[derive(Clone, Debug)]
struct Pending {
    from: Upid,
    to: Upid,
    name: String,
    bytes: Bytes,
    next: Range<usize>,
}

impl FrameDecoder {
    /// A decoder for a new connection that refuses frames longer than `limit` bytes (after the
    /// prefix).
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            limit,
            recent: Recent::default(),
            pending: None,
        }
    }

    /// Takes the next event off the front of `buf`: the next message of a run whose frame was
    /// cut out before, or the first of the next whole frame. A frame is checked whole before
    /// its first message is returned.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] for a malformed or oversized frame; the connection that sent it should be
    /// closed, since the stream cannot be resynchronised. `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.next_pending() {
            return Ok(Some(frame));
        }
        let Some(frame) = self.next(buf)? else {
            return Ok(None);
        };
        let (kind, from, to) = (frame.kind, frame.from.clone(), frame.to.clone());
        let (name, length, next) = (frame.name.to_string(), frame.length, frame.bodies.clone());
        let bytes = buf.split_to(length).freeze();
        if kind != Kind::Message {
            let body = Bytes::new();
            return Ok(Some(Frame {
                kind,
                from,
                to,
                name,
                body,
            }));
        }
        self.pending = Some(Pending {
            from,
            to,
            name,
            bytes,
            next,
        });
        Ok(self.next_pending())
    }

    /// The next message of the pending run, if it has one more.
    fn next_pending(&mut self) -> Option<Frame> {
        let pending = self.pending.as_mut()?;
        let Some(body) = bodies(&pending.bytes, pending.next.clone()).next() else {
            self.pending = None;
            return None;
        };
        pending.next.start = body.end;
        Some(Frame {
            kind: Kind::Message,
            from: pending.from.clone(),
            to: pending.to.clone(),
            name: pending.name.clone(),
            body: pending.bytes.slice(body),
        })
    }

    /// [`decode`](Self::decode) in place, without copies: the next whole frame at the front of
    /// `buf`, its Upids and name the decoder's own (parsed once for a stream between two
    /// processes, since a frame that repeats them refers to the previous frame's) and its bodies
    /// a range of `buf` ([`Received::bodies`]), which is left as it is.
    pub(crate) fn next(&mut self, buf: &[u8]) -> Result<Option<Received<'_>>, FrameError> {
        let Some(length) = self.length(buf)? else {
            return Ok(None);
        };
        if buf.len() < PREFIX + length {
            return Ok(None);
        }
        let mut header = &buf[PREFIX..PREFIX + length];
        let mut frame = parse(&mut header, &mut self.recent)?;
        frame.length = PREFIX + length;
        frame.bodies = frame.length - header.len()..frame.length;
        frame.count = count(&buf[..frame.length], frame.bodies.clone())?;
        if (frame.count > 0) != (frame.kind == Kind::Message) {
            return Err(FrameError::Bodies);
        }
        Ok(Some(frame))
    }

    /// How many more bytes the frame at the front of `buf` needs (0 if it is whole, or if not
    /// even its length prefix has arrived), so that a reader can make room for all of it at
    /// once.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] for a length prefix over the limit.
    pub(crate) fn missing(&self, buf: &[u8]) -> Result<usize, FrameError> {
        Ok(self
            .length(buf)?
            .map_or(0, |length| (PREFIX + length).saturating_sub(buf.len())))
    }

    /// The length the prefix at the front of `buf` claims, once the prefix has arrived.
    fn length(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.first_chunk::<PREFIX>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*prefix) as usize;
        if length > self.limit {
            return Err(FrameError::TooLarge {
                length,
                limit: self.limit,
            });
        }
        Ok(Some(length))
    }
}

/// A whole, well-formed frame decoded in place: its fields borrowed from the decoder, whether
/// they are all the previous frame's on the connection, and where its bodies lie in the bytes
/// decoded.
pub(crate) struct Received<'r> {
    pub(crate) kind: Kind,
    pub(crate) from: &'r Upid,
    pub(crate) to: &'r Upid,
    pub(crate) name: &'r Arc<str>,
    /// Whether `from`, `to` and the name are all the previous frame's.
    pub(crate) repeats: bool,
    /// The bodies with their lengths: empty but for a message frame.
    bodies: Range<usize>,
    /// How many bodies the frame has.
    pub(crate) count: usize,
    /// The frame's length, its prefix included: where the next one starts.
    pub(crate) length: usize,
}

impl Received<'_> {
    /// The ranges of the message bodies in `frame` (the bytes this frame was decoded from,
    /// from its start), in order.
    pub(crate) fn bodies<'b>(&self, frame: &'b [u8]) -> impl Iterator<Item = Range<usize>> + 'b {
        bodies(frame, self.bodies.clone())
    }
}

/// How many bodies `frame[bodies]` holds, each its length and its bytes.
///
/// # Errors
///
/// [`FrameError::Truncated`] for a body that runs past the end.
fn count(frame: &[u8], bodies: Range<usize>) -> Result<usize, FrameError> {
    let (mut at, mut count) = (bodies.start, 0);
    while at < bodies.end {
        at = body_at(frame, at, bodies.end)
            .ok_or(FrameError::Truncated)?
            .end;
        count += 1;
    }
    Ok(count)
}

/// The ranges of the bodies in `frame[bodies]`, as [`count`] found them (an inconsistent one
/// ends the list).
fn bodies(frame: &[u8], bodies: Range<usize>) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = bodies.start;
    std::iter::from_fn(move || {
        let body = body_at(frame, at, bodies.end)?;
        at = body.end;
        Some(body)
    })
}

/// The range of the body whose length is at `frame[at..]`, if it ends by `end`.
fn body_at(frame: &[u8], at: usize, end: usize) -> Option<Range<usize>> {
    let length = frame.get(at..end)?.first_chunk::<BODY_PREFIX>()?;
    let start = at + BODY_PREFIX;
    let body = start..start.checked_add(u32::from_be_bytes(*length) as usize)?;
    (body.end <= end).then_some(body)
}

/// The last `from`, `to` and name a connection's decoder parsed, with a copy of the bytes they
/// came from (a copy, so that no receive buffer is kept alive by them).
#[derive(Clone, Debug, Default)]
struct Recent {
    from: Option<(Vec<u8>, Upid)>,
    to: Option<(Vec<u8>, Upid)>,
    name: Option<(Vec<u8>, Arc<str>)>,
}

/// Reads the header off the front of `frame` (through `recent`), leaving `frame` at the bodies;
/// the frame returned has none.
fn parse<'r>(frame: &mut &[u8], recent: &'r mut Recent) -> Result<Received<'r>, FrameError> {
    match frame.first() {
        Some(&VERSION) => {}
        Some(&version) => return Err(FrameError::Version(version)),
        None => return Err(FrameError::Truncated),
    }
    let [_, kind_byte, repeated, ..] = **frame else {
        return Err(FrameError::Truncated);
    };
    let kind = Kind::from_byte(kind_byte).ok_or(FrameError::Kind(kind_byte))?;
    if repeated & !0b111 != 0 {
        return Err(FrameError::Repeated(repeated));
    }
    *frame = &frame[3..];
    let (from, from_changed) = next(frame, repeated & 1 != 0, &mut recent.from, "from", |b| {
        upid(b, "from")
    })?;
    let (to, to_changed) = next(frame, repeated & 2 != 0, &mut recent.to, "to", |b| {
        upid(b, "to")
    })?;
    let (name, name_changed) = next(frame, repeated & 4 != 0, &mut recent.name, "name", |b| {
        text(b, "name").map(Arc::from)
    })?;
    Ok(Received {
        kind,
        from,
        to,
        name,
        repeats: !(from_changed || to_changed || name_changed),
        bodies: 0..0,
        count: 0,
        length: 0,
    })
}

/// The next field: the previous frame's if `repeated`, else read off `frame` (and reused if
/// it has the previous frame's bytes); and whether it changed.
fn next<'r, T>(
    frame: &mut &[u8],
    repeated: bool,
    slot: &'r mut Option<(Vec<u8>, T)>,
    field_name: &'static str,
    make: impl FnOnce(&[u8]) -> Result<T, FrameError>,
) -> Result<(&'r T, bool), FrameError> {
    if !repeated {
        return reuse(slot, field(frame)?, make);
    }
    match slot {
        Some((_, value)) => Ok((value, false)),
        None => Err(FrameError::NothingToRepeat(field_name)),
    }
}

/// What `bytes` stand for: `slot`'s value if it came from equal bytes, else `make`'s, which
/// then replaces it; and whether it was replaced.
fn reuse<'r, T>(
    slot: &'r mut Option<(Vec<u8>, T)>,
    bytes: &[u8],
    make: impl FnOnce(&[u8]) -> Result<T, FrameError>,
) -> Result<(&'r T, bool), FrameError> {
    let hit = matches!(slot, Some((seen, _)) if seen == bytes);
    let entry = match slot.take() {
        Some(entry) if hit => entry,
        previous => {
            let value = make(bytes)?;
            // The old bytes' buffer is reused: a connection alternating between two receivers
            // allocates nothing per frame.
            let mut seen = previous.map(|(seen, _)| seen).unwrap_or_default();
            seen.clear();
            seen.extend_from_slice(bytes);
            (seen, value)
        }
    };
    let (_, value) = slot.insert(entry);
    Ok((value, !hit))
}

/// The next `u16`-length-prefixed field, taken off the front of `frame`.
fn field<'a>(frame: &mut &'a [u8]) -> Result<&'a [u8], FrameError> {
    let Some((length, rest)) = frame.split_first_chunk::<2>() else {
        return Err(FrameError::Truncated);
    };
    let length = u16::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err(FrameError::Truncated);
    }
    let (field, rest) = rest.split_at(length);
    *frame = rest;
    Ok(field)
}

fn text<'a>(bytes: &'a [u8], name: &'static str) -> Result<&'a str, FrameError> {
    std::str::from_utf8(bytes).map_err(|_| FrameError::Field(name))
}

fn upid(bytes: &[u8], name: &'static str) -> Result<Upid, FrameError> {
    text(bytes, name)?
        .parse()
        .map_err(|_| FrameError::Field(name))
}
