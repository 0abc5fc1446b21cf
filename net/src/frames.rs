//! Frames encoded one after another for one connection: each leaves out the fields the frame
//! before it had, and a message with the same `from`, `to` and name as the one before joins its
//! run.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use procession::Upid;

use crate::frame::{self, FrameError, Header, Kind, REPEATING};
use crate::peer::Body;

/// The longest frame of several messages, by default. A receiver takes a frame whole: one that
/// straddles the end of its receive buffer is copied into the next, so a longer run costs the
/// receiver copies (measured: 64 KiB runs spent 5% of a stream's time there) while saving
/// nothing more, since per-frame costs are already small against 16 KiB of messages.
pub(crate) const RUN_BYTES: usize = 16 * 1024;

/// Frames encoded one after another into one buffer, each leaving out the `from`, `to` and name
/// that the previous one had (the receiver has them from that frame), and messages that repeat
/// all three joining the run of the frame before: a stream between two processes formats their
/// Upids once, not per frame, and frames a message in 4 bytes.
///
/// A frame of several messages holds at most `run` bytes (given with each message): a message
/// joins a run shorter than half of that, and one longer than the other half is moved to a frame
/// of its own.
#[derive(Default)]
pub(crate) struct Frames {
    pub(crate) bytes: BytesMut,
    /// How many messages (and notices) `bytes` holds.
    pub(crate) count: u64,
    /// Where each message ends in `bytes` and where its frame begins, when kept (see
    /// [`Frames::keeping_ends`]).
    ends: Option<Vec<End>>,
    from: Printed,
    to: Printed,
    name: Option<String>,
    /// Where the last frame begins while messages may join it: a message frame that ends
    /// `bytes`.
    open: Option<usize>,
    /// Where the frame of the last message or notice encoded begins.
    last: usize,
}

/// Where a message ends in the buffer, and where the frame it is in begins.
#[derive(Clone, Copy)]
struct End {
    end: usize,
    frame: usize,
}

impl Frames {
    /// Frames that remember where each message ends, so that
    /// [`copy_fitting`](Self::copy_fitting) can keep those that fit.
    pub(crate) fn keeping_ends() -> Self {
        Frames {
            ends: Some(Vec::new()),
            ..Frames::default()
        }
    }

    /// Appends a frame, or a message to the open run: its header, then the body unless it is
    /// large (queued after the buffer by the caller, who then [takes](Self::take) the buffer).
    /// On an error nothing is appended.
    pub(crate) fn encode(
        &mut self,
        kind: Kind,
        upids: (&Upid, &Upid),
        name: &str,
        run: usize,
        body: &Body<'_>,
    ) -> Result<(), FrameError> {
        self.encode_with(kind, upids, name, run, |bytes| {
            if let Body::Small(small) = body {
                bytes.extend_from_slice(small);
            }
            Ok(body.apart().map_or(0, Bytes::len))
        })
    }

    /// Appends a message (or a notice, whose `body` writes nothing) whose body `body` writes
    /// after the header, answering how many more bytes of it are queued apart; the message joins
    /// the open run when it repeats its fields and the run is under half of `run` bytes. On an
    /// error, or if `body` panics, nothing is appended: a frame is never left half-written.
    pub(crate) fn encode_with<E: From<FrameError>>(
        &mut self,
        kind: Kind,
        (from, to): (&Upid, &Upid),
        name: &str,
        run: usize,
        body: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
    ) -> Result<(), E> {
        let start = self.bytes.len();
        let frame = match self.open_run(kind, (from, to), name, run) {
            Some(open) => open,
            None => {
                self.begin(kind, (from, to), name)?;
                start
            }
        };
        let joins = frame != start;
        let undo = Undo {
            frames: self,
            start,
            frame,
        };
        let bytes = &mut undo.frames.bytes;
        let body_at = bytes.len();
        if kind == Kind::Message {
            bytes.put_u32(0);
        }
        let apart = body(bytes)?;
        let mut frame = frame;
        if kind == Kind::Message {
            // The body and its frame, with the 7 bytes of a header, must each fit a u32.
            let length = bytes.len() - body_at + apart + REPEATING.len();
            if u32::try_from(length).is_err() {
                return Err(FrameError::TooLarge {
                    length,
                    limit: u32::MAX as usize,
                }
                .into());
            }
            frame::finish(&mut bytes[body_at..], apart)?;
            if joins && length > run / 2 {
                // Too large for a run: the run so far ends, and this message starts a frame.
                split(bytes, frame, body_at)?;
                frame = body_at;
            }
        }
        frame::finish(&mut bytes[frame..], apart)?;
        std::mem::forget(undo);
        self.open = (kind == Kind::Message).then_some(frame);
        self.last = frame;
        Ok(())
    }

    /// Where the open run begins, if a message of `kind` from `from` to `to` named `name` joins
    /// it: it repeats the last frame's fields, and the run is under half of `run` bytes.
    #[inline]
    fn open_run(
        &self,
        kind: Kind,
        (from, to): (&Upid, &Upid),
        name: &str,
        run: usize,
    ) -> Option<usize> {
        let open = self.open?;
        let joins = kind == Kind::Message
            && self.bytes.len() - open < run / 2
            && self.from.is(from)
            && self.to.is(to)
            && self.name.as_deref() == Some(name);
        joins.then_some(open)
    }

    /// Appends the header of a frame that begins here, leaving out the fields the last frame
    /// had; on an error nothing is appended, and the next frame carries every field.
    #[inline(never)]
    fn begin(
        &mut self,
        kind: Kind,
        (from, to): (&Upid, &Upid),
        name: &str,
    ) -> Result<(), FrameError> {
        let header = Header {
            kind,
            from: self.from.field(from),
            to: self.to.field(to),
            name: field(&mut self.name, name),
        };
        let begun = header.encode(&mut self.bytes);
        if begun.is_err() {
            self.forget_last();
        }
        begun
    }

    /// Counts the message just encoded, which ends the buffer.
    pub(crate) fn encoded(&mut self) {
        self.count += 1;
        if let Some(ends) = &mut self.ends {
            ends.push(End {
                end: self.bytes.len(),
                frame: self.last,
            });
        }
    }

    /// Takes back a message begun at `start` (it could not be encoded, or was not kept).
    pub(crate) fn undo(&mut self, start: usize) {
        self.bytes.truncate(start);
        match self.open {
            // It had joined the run: the run's frame ends where it did.
            Some(open) if open < start => {
                frame::finish(&mut self.bytes[open..], 0).expect("the run's length fitted before");
            }
            _ => self.forget_last(),
        }
    }

    /// Makes the next frame carry every field in full, and ends the open run.
    pub(crate) fn forget_last(&mut self) {
        self.from.upid = None;
        self.to.upid = None;
        self.name = None;
        self.open = None;
    }

    /// Takes the frames encoded so far (the writer sends them); the next message starts a new
    /// frame, which may still repeat the last one's fields.
    pub(crate) fn take(&mut self) -> Bytes {
        self.open = None;
        self.bytes.split().freeze()
    }

    /// Appends to `out` the messages, from the first, that fit in `room` bytes (the frame of the
    /// last one ending with it) and answers how many they are. Needs the ends kept.
    pub(crate) fn copy_fitting(&self, room: usize, out: &mut BytesMut) -> usize {
        let ends = self.ends.as_deref().unwrap_or_default();
        let kept = ends.partition_point(|end| end.end <= room);
        if let Some(last) = kept.checked_sub(1).map(|last| ends[last]) {
            let start = out.len();
            out.extend_from_slice(&self.bytes[..last.end]);
            // A run cut short ends with the last message kept.
            let frame = &mut out[start + last.frame..];
            frame::finish(frame, 0).expect("a part of a frame that fitted fits");
        }
        kept
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

/// `None` when `name` is the last one (the frame repeats it), else `name`, which it now is.
fn field<'a>(last: &mut Option<String>, name: &'a str) -> Option<&'a str> {
    if last.as_deref() == Some(name) {
        return None;
    }
    let last = last.get_or_insert_with(String::new);
    last.clear();
    last.push_str(name);
    Some(name)
}

/// Ends the run of the frame at `frame` before the body at `body_at` (the last in `bytes`), which
/// goes into a frame of its own that repeats the run's fields.
fn split(bytes: &mut BytesMut, frame: usize, body_at: usize) -> Result<(), FrameError> {
    let end = bytes.len();
    bytes.extend_from_slice(&REPEATING);
    bytes.copy_within(body_at..end, body_at + REPEATING.len());
    bytes[body_at..body_at + REPEATING.len()].copy_from_slice(&REPEATING);
    frame::finish(&mut bytes[frame..body_at], 0)
}

/// A Upid and its text: the last one a frame on the connection carried.
#[derive(Default)]
struct Printed {
    upid: Option<Upid>,
    text: String,
}

impl Printed {
    /// Whether `upid` is the last one: equal, and of the same incarnation (Upids equal but for
    /// their incarnations are not the same field).
    #[inline]
    fn is(&self, upid: &Upid) -> bool {
        self.upid
            .as_ref()
            .is_some_and(|last| last == upid && last.incarnation() == upid.incarnation())
    }

    /// `None` when `upid` is the last one (the frame repeats it), else its text, which it now
    /// is.
    fn field(&mut self, upid: &Upid) -> Option<&str> {
        if self.is(upid) {
            return None;
        }
        self.text.clear();
        let _ = write!(self.text, "{upid:#}");
        self.upid = Some(upid.clone());
        Some(&self.text)
    }
}

/// Takes back the message begun at `start` unless forgotten: when its encoding fails or panics.
struct Undo<'a> {
    frames: &'a mut Frames,
    start: usize,
    /// Where its frame begins: before `start` when it joined the open run.
    frame: usize,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.frame == self.start {
            // It began a frame: the open run (if any) ended before it and is left closed.
            self.frames.open = None;
        }
        self.frames.undo(self.start);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::FrameDecoder;

    /// A small run bound, so that runs fill and large messages split in few bytes.
    const RUN: usize = 4096;

    /// One send: which of two senders, receivers and names, the body, and whether its encoding
    /// fails after writing part of it.
    #[derive(Clone, Debug)]
    struct Send {
        from: usize,
        to: usize,
        name: usize,
        body: Vec<u8>,
        fails: bool,
    }

    fn send() -> impl Strategy<Value = Send> {
        let body = prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..40),
            1 => proptest::collection::vec(any::<u8>(), 1500..3000),
        ];
        (
            0..2usize,
            0..2usize,
            0..2usize,
            body,
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(from, to, name, body, fails)| Send {
                from,
                to,
                name,
                body,
                fails,
            })
    }

    fn upid(id: &str, index: usize) -> Upid {
        format!("{id}{index}@127.0.0.1:{}#{:x}", 4000 + index, index + 1)
            .parse()
            .unwrap()
    }

    /// Encodes `sends` as the transport holds them; answers the frames and the sends kept.
    fn encode(sends: &[Send]) -> (Frames, Vec<&Send>) {
        let mut frames = Frames::keeping_ends();
        let kept = sends
            .iter()
            .filter(|send| push(&mut frames, send))
            .collect();
        (frames, kept)
    }

    /// Encodes `send` into `frames` as the transport holds it; whether it was kept.
    fn push(frames: &mut Frames, send: &Send) -> bool {
        let upids = (&upid("from", send.from), &upid("to", send.to));
        let name = ["a::Name", "b::Other"][send.name];
        let encoded = frames.encode_with(Kind::Message, upids, name, RUN, |bytes| {
            bytes.extend_from_slice(&send.body);
            if send.fails {
                return Err(FrameError::Field("body"));
            }
            Ok(0)
        });
        if encoded.is_ok() {
            frames.encoded();
        }
        encoded.is_ok()
    }

    /// A send from sender `from` to receiver `to` under the first name, of `length` bytes
    /// `byte`, that encodes.
    fn ok(from: usize, to: usize, byte: u8, length: usize) -> Send {
        Send {
            from,
            to,
            name: 0,
            body: vec![byte; length],
            fails: false,
        }
    }

    /// Decodes every message of `bytes`, with a decoder whose limit is the run bound: no frame
    /// may be longer.
    fn decode(bytes: &[u8]) -> Vec<crate::frame::Frame> {
        let mut buf = BytesMut::from(bytes);
        let mut decoder = FrameDecoder::new(RUN);
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            decoded.push(frame);
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        decoded
    }

    fn assert_same(decoded: &[crate::frame::Frame], sent: &[&Send]) {
        assert_eq!(decoded.len(), sent.len());
        for (frame, send) in decoded.iter().zip(sent) {
            assert_eq!(frame.from, upid("from", send.from));
            assert_eq!(frame.to, upid("to", send.to));
            assert_eq!(frame.name, ["a::Name", "b::Other"][send.name]);
            assert_eq!(frame.body, send.body);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn runs_decode_to_the_messages_sent(sends in proptest::collection::vec(send(), 1..64)) {
            let (frames, kept) = encode(&sends);
            assert_same(&decode(&frames.bytes), &kept);
        }

        #[test]
        fn a_copy_cut_short_holds_the_first_messages_whole(
            sends in proptest::collection::vec(send(), 1..64),
            room in any::<prop::sample::Index>(),
        ) {
            let (frames, kept) = encode(&sends);
            let mut out = BytesMut::from(&b"earlier"[..]);
            let room = room.index(frames.bytes.len() + 1);
            let copied = frames.copy_fitting(room, &mut out);
            prop_assert!(out.len() - 7 <= room);
            assert_same(&decode(&out[7..]), &kept[..copied]);
            // As many as fit: with one more, the copy would not have.
            if copied < kept.len() {
                let mut more = BytesMut::new();
                let everything = frames.copy_fitting(frames.bytes.len(), &mut more);
                prop_assert_eq!(everything, kept.len());
                let next_end = decode_ends(&frames.bytes)[copied];
                prop_assert!(next_end > room, "message {} ends at {}", copied, next_end);
            }
        }
    }

    #[test]
    fn a_stream_is_one_frame_until_the_run_is_full() {
        let sends = vec![ok(0, 1, 7, 100); 100];
        let (frames, _) = encode(&sends);
        let prefixes = decode_prefixes(&frames.bytes);
        // A full header, then 4 bytes a body; a new run (7 bytes of header) at half the bound.
        assert!(prefixes.len() >= 4 && prefixes.len() <= 6, "{prefixes:?}");
        assert!(prefixes.iter().all(|length| *length <= RUN));
    }

    #[test]
    fn a_message_that_fails_leaves_the_run_as_it_was() {
        let failing = Send {
            fails: true,
            ..ok(0, 0, 9, 10)
        };
        let sends = [ok(0, 0, 1, 10), failing, ok(0, 0, 2, 10)];
        let (frames, kept) = encode(&sends);
        assert_eq!(decode_prefixes(&frames.bytes).len(), 1, "one run of two");
        assert_same(&decode(&frames.bytes), &kept);
    }

    #[test]
    fn a_message_taken_back_after_it_joined_leaves_the_run_as_it_was() {
        let send = ok(1, 0, 3, 10);
        let sends = [send.clone(), send.clone(), send];
        let (mut frames, kept) = encode(&sends);
        let third = frames.bytes.len() - 14;
        frames.undo(third);
        assert_eq!(decode_prefixes(&frames.bytes).len(), 1);
        assert_same(&decode(&frames.bytes), &kept[..2]);
    }

    /// Where each message of `bytes` ends (frames decoded by hand).
    fn decode_ends(mut bytes: &[u8]) -> Vec<usize> {
        let (mut ends, mut offset) = (Vec::new(), 0);
        while let Some((prefix, rest)) = bytes.split_first_chunk::<4>() {
            let length = u32::from_be_bytes(*prefix) as usize;
            let frame = &rest[..length];
            // The header: version, kind, repeated bits, then the fields not repeated.
            let mut at = 3;
            for bit in 0..3 {
                if frame[2] & (1 << bit) == 0 {
                    at += 2 + u16::from_be_bytes([frame[at], frame[at + 1]]) as usize;
                }
            }
            while at < length {
                at += 4 + u32::from_be_bytes(frame[at..at + 4].try_into().unwrap()) as usize;
                ends.push(offset + 4 + at);
            }
            offset += 4 + length;
            bytes = &rest[length..];
        }
        ends
    }

    #[test]
    fn after_a_take_the_next_message_starts_a_frame_that_repeats_the_fields() {
        let send = ok(0, 1, 5, 10);
        let (mut frames, _) = encode(&[send.clone(), send.clone()]);
        let taken = frames.take();
        assert!(push(&mut frames, &send));
        assert_eq!(
            &frames.bytes[4..7],
            &REPEATING[4..],
            "a header of repeated fields"
        );
        assert_eq!(
            decode_prefixes(&taken).len(),
            1,
            "the taken frame is untouched"
        );
        let mut all = taken.to_vec();
        all.extend_from_slice(&frames.bytes);
        assert_same(&decode(&all), &[&send, &send, &send]);
    }

    #[test]
    fn a_large_message_split_off_a_run_and_taken_back_leaves_the_run_whole() {
        let small = ok(1, 1, 1, 20);
        let sends = [small.clone(), small.clone(), ok(1, 1, 2, 2500)];
        let (mut frames, kept) = encode(&sends);
        let split = decode_prefixes(&frames.bytes).len();
        assert_eq!(split, 2, "split off into a frame");
        frames.undo(decode_ends(&frames.bytes)[1]);
        assert_same(&decode(&frames.bytes), &kept[..2]);
        // The next message joins nothing stale.
        assert!(push(&mut frames, &small));
        assert_same(&decode(&frames.bytes), &[&small, &small, &small]);
    }

    /// The length prefixes of the frames in `bytes`.
    fn decode_prefixes(mut bytes: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        while let Some((prefix, rest)) = bytes.split_first_chunk::<4>() {
            let length = u32::from_be_bytes(*prefix) as usize;
            lengths.push(length);
            bytes = &rest[length..];
        }
        lengths
    }
}
