//! The frame codec: events on the wire.
//!
//! Every frame is
//!
//! ```text
//! u32  length of what follows (big-endian), at most the decoder's limit
//! u8   version (1)
//! u8   kind: 0 message, 1 link, 2 exited
//! u16  length of `from`, then `from` (a Upid, `id@ip:port`, UTF-8)
//! u16  length of `to`, then `to`
//! u16  length of `name`, then `name` (the message name; for `exited`, the reason)
//! ...  body: the rest of the frame (the encoded message; empty for link and exited)
//! ```
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

use std::fmt::{self, Write as _};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use procession::Upid;

/// The wire format version this codec speaks.
pub const VERSION: u8 = 1;

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
    /// Appends the encoded frame to `out`. The Upids are printed straight into `out` and their
    /// lengths patched in after, so encoding allocates nothing beyond `out`'s growth.
    ///
    /// # Errors
    ///
    /// [`FrameError::Field`] when `from`, `to` or `name` is longer than 65,535 bytes, and
    /// [`FrameError::TooLarge`] for a frame over 4 GiB; `out` is then left as it was.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        let header = Header {
            kind: self.kind,
            from: &self.from,
            to: &self.to,
            name: &self.name,
            body: self.body.len(),
        };
        header.encode(out)?;
        out.put_slice(&self.body);
        Ok(())
    }
}

/// A frame's header: everything but the body, which the caller appends (or sends) after it.
/// What the transport encodes, so that a send borrows its parts instead of building a [`Frame`].
pub(crate) struct Header<'a, U> {
    pub(crate) kind: Kind,
    pub(crate) from: U,
    pub(crate) to: U,
    pub(crate) name: &'a str,
    /// The body's length in bytes.
    pub(crate) body: usize,
}

impl<U: fmt::Display> Header<'_, U> {
    /// Appends the header, its length prefix counting the body; on an error `out` is left as it
    /// was. See [`Frame::encode`] for the errors.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        let start = out.len();
        let encoded = self.encode_at(out, start);
        if encoded.is_err() {
            out.truncate(start);
        }
        encoded
    }

    fn encode_at(&self, out: &mut BytesMut, start: usize) -> Result<(), FrameError> {
        out.reserve(PREFIX + 2 + 6 + 64 + self.name.len());
        out.put_u32(0);
        out.put_u8(VERSION);
        out.put_u8(self.kind.to_byte());
        put_field(out, "from", |out| write!(out, "{}", self.from))?;
        put_field(out, "to", |out| write!(out, "{}", self.to))?;
        put_field(out, "name", |out| out.write_str(self.name))?;
        let length = out.len() - start - PREFIX + self.body;
        let length = u32::try_from(length).map_err(|_| FrameError::TooLarge {
            length,
            limit: u32::MAX as usize,
        })?;
        out[start..start + PREFIX].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

/// Writes a u16-length-prefixed field with `write`, patching the length in afterwards.
fn put_field(
    out: &mut BytesMut,
    field: &'static str,
    write: impl FnOnce(&mut BytesMut) -> fmt::Result,
) -> Result<(), FrameError> {
    let at = out.len();
    out.put_u16(0);
    write(out).map_err(|_| FrameError::Field(field))?;
    let length = u16::try_from(out.len() - at - 2).map_err(|_| FrameError::Field(field))?;
    out[at..at + 2].copy_from_slice(&length.to_be_bytes());
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
            FrameError::Truncated => f.write_str("frame ends inside a field"),
            FrameError::Field(field) => write!(f, "malformed frame field `{field}`"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Cuts frames out of a receive buffer.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    limit: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `limit` bytes (after the prefix).
    pub fn new(limit: usize) -> Self {
        FrameDecoder { limit }
    }

    /// Takes the next whole frame off the front of `buf`.
    ///
    /// # Errors
    ///
    /// A [`FrameError`] for a malformed or oversized frame; the connection that sent it should be
    /// closed, since the stream cannot be resynchronised. `Ok(None)` means more bytes are needed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let frame = self.decode_with(buf, &mut Recent::default())?;
        Ok(frame.map(|frame| Frame {
            kind: frame.kind,
            from: frame.from,
            to: frame.to,
            name: frame.name.to_string(),
            body: frame.body,
        }))
    }

    /// [`decode`](Self::decode), reusing the Upids and name of the connection's previous frame
    /// from `recent`: a stream between two processes parses them once, not per frame.
    pub(crate) fn decode_with(
        &self,
        buf: &mut BytesMut,
        recent: &mut Recent,
    ) -> Result<Option<Received>, FrameError> {
        let Some(length) = self.length(buf)? else {
            return Ok(None);
        };
        if buf.len() < PREFIX + length {
            return Ok(None);
        }
        buf.advance(PREFIX);
        let mut frame = buf.split_to(length).freeze();
        parse(&mut frame, recent).map(Some)
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

/// A decoded frame, its name shared with the connection's earlier frames of that name.
pub(crate) struct Received {
    pub(crate) kind: Kind,
    pub(crate) from: Upid,
    pub(crate) to: Upid,
    pub(crate) name: Arc<str>,
    pub(crate) body: Bytes,
}

/// The last `from`, `to` and name a connection's decoder parsed, with a copy of the bytes they
/// came from (a copy, so that no receive buffer is kept alive by them).
#[derive(Default)]
pub(crate) struct Recent {
    from: Option<(Vec<u8>, Upid)>,
    to: Option<(Vec<u8>, Upid)>,
    name: Option<(Vec<u8>, Arc<str>)>,
}

fn parse(frame: &mut Bytes, recent: &mut Recent) -> Result<Received, FrameError> {
    if frame.remaining() < 2 {
        return Err(FrameError::Truncated);
    }
    let version = frame.get_u8();
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let kind_byte = frame.get_u8();
    let kind = Kind::from_byte(kind_byte).ok_or(FrameError::Kind(kind_byte))?;
    let from = reuse(&mut recent.from, field(frame)?, |b| upid(b, "from"))?;
    let to = reuse(&mut recent.to, field(frame)?, |b| upid(b, "to"))?;
    let name = reuse(&mut recent.name, field(frame)?, |b| {
        text(b, "name").map(Arc::from)
    })?;
    Ok(Received {
        kind,
        from,
        to,
        name,
        body: std::mem::take(frame),
    })
}

/// The value `bytes` stand for: `slot`'s if it came from equal bytes, else `make`'s, which then
/// replaces it.
fn reuse<T: Clone>(
    slot: &mut Option<(Vec<u8>, T)>,
    bytes: Bytes,
    make: impl FnOnce(&Bytes) -> Result<T, FrameError>,
) -> Result<T, FrameError> {
    if let Some((seen, value)) = slot {
        if *seen == bytes {
            return Ok(value.clone());
        }
    }
    let value = make(&bytes)?;
    *slot = Some((bytes.to_vec(), value.clone()));
    Ok(value)
}

/// The next `u16`-length-prefixed field.
fn field(frame: &mut Bytes) -> Result<Bytes, FrameError> {
    if frame.remaining() < 2 {
        return Err(FrameError::Truncated);
    }
    let length = frame.get_u16() as usize;
    if frame.remaining() < length {
        return Err(FrameError::Truncated);
    }
    Ok(frame.split_to(length))
}

fn text<'a>(bytes: &'a Bytes, name: &'static str) -> Result<&'a str, FrameError> {
    std::str::from_utf8(bytes).map_err(|_| FrameError::Field(name))
}

fn upid(bytes: &Bytes, name: &'static str) -> Result<Upid, FrameError> {
    text(bytes, name)?
        .parse()
        .map_err(|_| FrameError::Field(name))
}
