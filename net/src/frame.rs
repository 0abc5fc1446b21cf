//! The frame codec: events on the wire.
//!
//! Every frame is
//!
//! ```text
//! u32  length of what follows (big-endian), at most the decoder's limit
//! u8   version (3)
//! u8   kind: 0 message, 1 link, 2 exited
//! u8   repeated: bit 0 `from`, bit 1 `to`, bit 2 `name` is the previous frame's on this
//!      connection and is left out below
//! u16  length of `from`, then `from` (a Upid, `id@ip:port#incarnation`, UTF-8)
//! u16  length of `to`, then `to`
//! u16  length of `name`, then `name` (the message name; for `exited`, the reason)
//! ...  body: the rest of the frame (the encoded message; empty for link and exited)
//! ```
//!
//! A stream of messages between two processes repeats all three fields, so its frames carry 7
//! bytes of header and the body; the transport's sender leaves out what the previous frame on
//! the connection had, and its receiver keeps the previous frame's fields to fill them in. A
//! connection's frames follow the two nodes' [hellos](crate::hello).
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
//! `Ok(None)` (wait for more), and anything malformed is an error naming what was wrong. The
//! body is a slice of the receive buffer, not a copy.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use procession::Upid;

/// The wire format version this codec speaks.
pub const VERSION: u8 = 3;

/// Bytes before the frame's content: the length prefix.
const PREFIX: usize = 4;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A message for `to`'s handler named `name`.
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

/// One event on the wire.
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
    /// The encoded message.
    pub body: Bytes,
}

impl Frame {
    /// Appends the encoded frame to `out`.
    ///
    /// # Errors
    ///
    /// [`FrameError::Field`] when `from`, `to` or `name` is longer than 65,535 bytes, and
    /// [`FrameError::TooLarge`] for a frame over 4 GiB; `out` is then left as it was.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        let (from, to) = (format!("{:#}", self.from), format!("{:#}", self.to));
        let header = Header {
            kind: self.kind,
            from: Some(&from),
            to: Some(&to),
            name: Some(&self.name),
        };
        let start = out.len();
        header.encode(out)?;
        out.put_slice(&self.body);
        let encoded = finish(&mut out[start..], 0);
        if encoded.is_err() {
            out.truncate(start);
        }
        encoded
    }
}

/// A frame's header: everything but the body. What the transport encodes, borrowing the parts
/// of a send instead of building a [`Frame`]; the body follows it, then [`finish`] sets the
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
            // A stream's frame: the placeholder prefix, the version, the kind, all repeated.
            out.extend_from_slice(&[0, 0, 0, 0, VERSION, self.kind.to_byte(), 0b111]);
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

/// Sets the length prefix of `frame` (a header, maybe with its body after it) to count what
/// follows the prefix plus `more` bytes of body sent separately.
///
/// # Errors
///
/// [`FrameError::TooLarge`] for a frame over 4 GiB.
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
    /// The frame ends inside a field, or is shorter than its header.
    Truncated,
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
            FrameError::Truncated => f.write_str("frame ends inside a field"),
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
}

impl FrameDecoder {
    /// A decoder for a new connection that refuses frames longer than `limit` bytes (after the
    /// prefix).
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            limit,
            recent: Recent::default(),
        }
    }

    /// Takes the next whole frame off the front of `buf`.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] for a malformed or oversized frame; the connection that sent it should be
    /// closed, since the stream cannot be resynchronised. `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(frame) = self.next(buf)? else {
            return Ok(None);
        };
        let (kind, from, to) = (frame.kind, frame.from.clone(), frame.to.clone());
        let (name, body) = (frame.name.to_string(), frame.body);
        buf.advance(body.start);
        let body = buf.split_to(body.len()).freeze();
        Ok(Some(Frame {
            kind,
            from,
            to,
            name,
            body,
        }))
    }

    /// [`decode`](Self::decode) in place, without copies: the next whole frame at the front of
    /// `buf`, its Upids and name the decoder's own (parsed once for a stream between two
    /// processes, since a frame that repeats them refers to the previous frame's) and its body a
    /// range of `buf`, which is left as it is.
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
        frame.body = frame.length - header.len()..frame.length;
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

/// A frame decoded in place: its fields borrowed from the decoder, whether they are all the
/// previous frame's on the connection, and its body a range of the bytes decoded.
pub(crate) struct Received<'r> {
    pub(crate) kind: Kind,
    pub(crate) from: &'r Upid,
    pub(crate) to: &'r Upid,
    pub(crate) name: &'r Arc<str>,
    /// Whether `from`, `to` and the name are all the previous frame's.
    pub(crate) repeats: bool,
    pub(crate) body: Range<usize>,
    /// The frame's length, its prefix included: where the next one starts.
    pub(crate) length: usize,
}

/// The last `from`, `to` and name a connection's decoder parsed, with a copy of the bytes they
/// came from (a copy, so that no receive buffer is kept alive by them).
#[derive(Clone, Debug, Default)]
struct Recent {
    from: Option<(Vec<u8>, Upid)>,
    to: Option<(Vec<u8>, Upid)>,
    name: Option<(Vec<u8>, Arc<str>)>,
}

/// Reads the header off the front of `frame` (through `recent`), leaving `frame` at the body;
/// the frame returned has an empty body.
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
        body: 0..0,
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
