//! A `Bytes` field that a receiving node decodes without copying: the field becomes a slice of
//! the message as it arrived, sharing its memory.
//!
//! Use it with serde's `with` attribute on a [`Bytes`] field of a [`Message`](super::Message):
//!
//! ```
//! use bytes::Bytes;
//! use procession::Message;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Message)]
//! struct Chunk {
//!     seq: u64,
//!     #[serde(with = "procession::message::shared_bytes")]
//!     body: Bytes,
//! }
//! # let chunk = Chunk { seq: 1, body: Bytes::from_static(b"data") };
//! # let encoded = procession::message::encode(&chunk).unwrap();
//! # let back: Chunk = procession::message::decode(&encoded).unwrap();
//! # assert_eq!(back.body, chunk.body);
//! ```
//!
//! The encoding is the same as a plain `Bytes` field's (a length and the bytes), so either end
//! may use the attribute alone. When the runtime decodes a message that came from another node
//! for its handler, such a field of [`SHARED_FROM`] bytes or more is a slice of the received
//! bytes: a 64 KiB body costs no allocation and no copy. A shorter one, or one decoded any other
//! way (with [`decode`](super::decode), or by another serde format), is a copy, as a plain
//! `Bytes` field would be.
//!
//! The slice keeps the memory it came from alive: the transport's receive buffer, which holds
//! the frames read with it (up to a few hundred KiB). Keep such a field as long as a message's
//! handling needs it; copy it (`Bytes::copy_from_slice`) to hold a part of it for long. Short
//! fields are copied for that reason: a few bytes kept must not keep a whole buffer.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Serializer;

thread_local! {
    /// The encoded message being decoded on this thread, whose slices a field may share.
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// The shortest field shared rather than copied.
pub const SHARED_FROM: usize = 1024;

/// Runs `decode` with `source` as the bytes that fields may share slices of.
pub(crate) fn decoding<R>(source: &Bytes, decode: impl FnOnce() -> R) -> R {
    let previous = SOURCE.with(|s| s.replace(Some(source.clone())));
    // Restored even if `decode` unwinds (a `Deserialize` implementation may panic).
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SOURCE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    decode()
}

/// Serializes the field as bytes, exactly as a plain `Bytes` field is.
///
/// # Errors
///
/// The serializer's error.
pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Deserializes the field: a slice of the received message when the runtime decodes one for a
/// handler, a copy otherwise.
///
/// # Errors
///
/// The deserializer's error, or one naming what it found instead of bytes.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    deserializer.deserialize_bytes(Shared)
}

struct Shared;

impl<'de> Visitor<'de> for Shared {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_borrowed_bytes<E>(self, bytes: &'de [u8]) -> Result<Bytes, E> {
        Ok(share(bytes))
    }

    fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(bytes))
    }

    fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(bytes))
    }

    /// Formats without a bytes type (JSON) write a sequence of numbers.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Bytes::from(bytes))
    }
}

/// `bytes` as a slice of the message being decoded when they lie inside it, else a copy.
fn share(bytes: &[u8]) -> Bytes {
    if bytes.len() < SHARED_FROM {
        return Bytes::copy_from_slice(bytes);
    }
    SOURCE.with(|source| match &*source.borrow() {
        Some(source) if contains(source, bytes) => source.slice_ref(bytes),
        _ => Bytes::copy_from_slice(bytes),
    })
}

/// `bytes` as a slice of the message being decoded, whatever their length, when they lie inside
/// it, else a copy: for a handler that forwards an encoded message as it is.
pub(crate) fn slice(bytes: &[u8]) -> Bytes {
    SOURCE.with(|source| match &*source.borrow() {
        Some(source) if contains(source, bytes) => source.slice_ref(bytes),
        _ => Bytes::copy_from_slice(bytes),
    })
}

/// Whether `part` lies inside `whole`'s memory (compared as addresses, never dereferenced).
fn contains(whole: &[u8], part: &[u8]) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + whole.len()
}
