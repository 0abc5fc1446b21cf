//! Pipes: streams of chunks with asynchronous back-pressure, composed into pipelines.
//!
//! [`pipe()`] gives the two ends of a stream of [`Bytes`] chunks. The [`Writer`] side's
//! [`write`](Writer::write) answers with a [`Future`] that is ready while the pipe has room and
//! pending while it is full, so a producer that chains its next write on the previous one runs
//! exactly as fast as its consumer. The [`Reader`] side's [`read`](Reader::read) answers with the
//! next chunk, or `None` at the end. A chunk is moved from writer to reader, never copied. The
//! same ends carry any other item type: [`stream()`] makes a typed pipe bounded in items.
//!
//! Ends stop each other: [`Writer::close`] ends the stream after what is buffered,
//! [`Writer::fail`] makes the reader fail after what is buffered, dropping a writer without either
//! is a failure the reader sees ([`PipeError::WriterDropped`]), and closing or dropping the reader
//! fails the writer's pending and later writes ([`PipeError::ReaderClosed`]) — so an error or a
//! loss of interest at either end flows through a whole pipeline.
//!
//! ```
//! use bytes::Bytes;
//! use procession::pipe;
//!
//! let (mut reader, mut writer) = pipe::pipe();
//! writer.write(Bytes::from_static(b"hello, "));
//! writer.write(Bytes::from_static(b"pipe"));
//! writer.close();
//! assert_eq!(reader.read().get(), Some(Some(Bytes::from_static(b"hello, "))));
//! assert_eq!(reader.read_all().get(), Some(Bytes::from_static(b"pipe")));
//! ```
//!
//! # Pipelines
//!
//! `reader | stage` attaches a [`Stage`] to a reader: a stage that transforms gives the next
//! reader, and a [`Writer`] (or any stage that consumes) ends the pipeline with a `Future<()>`
//! that completes when all data has flowed, fails when any stage fails, and, when discarded,
//! closes every stage: upstream ends see their reader closed, downstream ends see their writer
//! dropped. Stages run on the current runtime's workers; each holds at most two items beyond its
//! output pipe's bound, so back-pressure from the last stage slows the first.
//!
//! ```
//! use bytes::Bytes;
//! use procession::{pipe, Runtime};
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let (source, mut feed) = pipe::pipe();
//! let (output, sink) = pipe::pipe();
//! let done = source | pipe::map(|chunk: Bytes| Ok(chunk.to_ascii_uppercase().into())) | sink;
//! feed.write(Bytes::from_static(b"quiet"));
//! feed.close();
//! runtime.block_on(done).unwrap();
//! assert_eq!(runtime.block_on(output.read_all()).unwrap(), "QUIET");
//! ```
//!
//! # Contract
//!
//! - Bound: a pipe of [`Bytes`] is bounded in bytes (an empty chunk weighs one), a pipe made by
//!   [`stream()`] in items. A write is accepted when it fits under the bound or the buffer is
//!   empty (so a chunk larger than the bound still passes, alone). A write that does not fit is
//!   held, and its future stays pending until reads make room; one held write at a time: a
//!   further write fails with [`PipeError::WritePending`] and its chunk is dropped. A writer
//!   that ignores back-pressure therefore cannot make the pipe hold more than the bound (or one
//!   larger chunk) plus one chunk.
//! - Order: items are read in the order their writes were accepted; reads are served in the
//!   order they were made.
//! - Failure of the writer: what was buffered (and the held write) stays readable; the read
//!   after it fails with the writer's failure.
//! - Closing the reader drops what is buffered, fails the held write and every later write with
//!   [`PipeError::ReaderClosed`], and completes [`Writer::reader_closed`].
//! - Discard: a pending read whose future is discarded leaves the line and never takes an item,
//!   unless the discard comes as a write is handing it one: then the read ends ready with it
//!   (discard is a request), and a reader that gave up on it (with [`Future::after`], say) finds
//!   the item in the future it discarded. A held write whose future is discarded takes its chunk
//!   back out (unless reads already let it in).
//! - Futures complete on the thread that makes the transition (a write completes a pending
//!   read, a read completes a held write), after the pipe's lock is released.
//!
//! # Deliberate differences from DESIGN.md
//!
//! - DESIGN's typed `Stream<T>` is the same [`Reader<T>`]/[`Writer<T>`] pair made by
//!   [`stream()`]: one implementation, bounded in items rather than bytes.
//! - `Writer::close`/`fail` and `Reader::close` consume the end, so a write after close is a
//!   compile error rather than a runtime one (the `Sink` and `AsyncWrite` adapters, which close
//!   through `&mut`, fail later writes with [`PipeError::WriterClosed`]).

mod channel;
mod io;
mod stage;

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::error::{Error, Failure};
use crate::future::{Future, Promise};
use channel::{Channel, End, Polled};

pub use io::{read_from, write_into};
pub use stage::{map, process, then, Stage};

/// The bound of [`pipe()`] and of the byte pipes stages create: 256 KiB.
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// The bound, in items, of the typed pipes stages create.
pub const DEFAULT_ITEMS: usize = 64;

/// A pipe of [`Bytes`] bounded at [`DEFAULT_CAPACITY`] bytes.
pub fn pipe() -> (Reader, Writer) {
    pipe_with_capacity(DEFAULT_CAPACITY)
}

/// A pipe of [`Bytes`] that holds at most `bytes` bytes (one chunk at a time when `bytes` is 0).
pub fn pipe_with_capacity(bytes: usize) -> (Reader, Writer) {
    ends(Channel::new(bytes, Bytes::len))
}

/// A pipe of `T` items that holds at most `items` items (one at a time when `items` is 0).
pub fn stream<T: Send + Sync + 'static>(items: usize) -> (Reader<T>, Writer<T>) {
    ends(Channel::new(items, |_| 1))
}

/// The pipe a stage writes to: bytes bounded in bytes, anything else in items.
fn stage_pipe<T: Send + Sync + 'static>() -> (Reader<T>, Writer<T>) {
    fn weigh<T: 'static>(item: &T) -> usize {
        (item as &dyn std::any::Any)
            .downcast_ref::<Bytes>()
            .map_or(1, Bytes::len)
    }
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<Bytes>() {
        ends(Channel::new(DEFAULT_CAPACITY, weigh::<T>))
    } else {
        stream(DEFAULT_ITEMS)
    }
}

fn ends<T: Send + Sync + 'static>(channel: Arc<Channel<T>>) -> (Reader<T>, Writer<T>) {
    let reader = Reader {
        channel: channel.clone(),
        done: false,
    };
    let writer = Writer {
        channel,
        ended: false,
    };
    (reader, writer)
}

/// Why a pipe operation failed: carried as the source of the [`Failure`], so
/// `failure.downcast_ref::<PipeError>()` tells which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipeError {
    /// The reader closed (or was dropped): nothing written from now on will be read.
    ReaderClosed,
    /// The writer already closed or failed (through the `Sink` or `AsyncWrite` adapter).
    WriterClosed,
    /// The writer was dropped without closing: the stream is incomplete.
    WriterDropped,
    /// A write did not fit while another was already held: the writer ignored back-pressure,
    /// and this chunk was dropped.
    WritePending,
    /// The stream ended before `read_exact` had its bytes.
    UnexpectedEnd {
        /// Bytes asked for.
        wanted: usize,
        /// Bytes the stream still had.
        got: usize,
    },
}

impl fmt::Display for PipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeError::ReaderClosed => f.write_str("pipe reader closed"),
            PipeError::WriterClosed => f.write_str("pipe writer already closed"),
            PipeError::WriterDropped => f.write_str("pipe writer dropped without closing"),
            PipeError::WritePending => {
                f.write_str("pipe full: a write is already waiting for room")
            }
            PipeError::UnexpectedEnd { wanted, got } => {
                write!(f, "pipe ended after {got} of {wanted} bytes")
            }
        }
    }
}

impl std::error::Error for PipeError {}

impl From<PipeError> for Failure {
    fn from(error: PipeError) -> Self {
        Failure::from_error(error)
    }
}

/// The reading end of a pipe. Dropping it closes it (see [`close`](Self::close)).
pub struct Reader<T: Send + Sync + 'static = Bytes> {
    channel: Arc<Channel<T>>,
    /// The `Stream` adapter has reported the end.
    done: bool,
}

impl<T: Send + Sync + 'static> Reader<T> {
    /// The next item: ready at once if one is buffered, `None` once the writer closed and
    /// everything before was read.
    ///
    /// # Errors
    ///
    /// Fails with the writer's failure ([`Writer::fail`]), or [`PipeError::WriterDropped`], once
    /// everything buffered before it was read.
    ///
    /// # Discard
    ///
    /// A pending read whose future is discarded leaves the line and ends discarded; the item it
    /// would have had goes to the next read. A discard that comes as a write is handing the read
    /// its item is too late: the future ends ready with the item. Dropping the future does not
    /// withdraw it.
    pub fn read(&mut self) -> Future<Option<T>> {
        self.channel.read()
    }

    /// Every remaining item, once the writer closes.
    ///
    /// # Errors
    ///
    /// Fails as [`read`](Self::read) does; the items read so far are dropped.
    ///
    /// # Discard
    ///
    /// Discarding the result closes this reader (what it read is dropped).
    pub fn read_to_vec(self) -> Future<Vec<T>>
    where
        T: Clone,
    {
        drain_all(self, Vec::new(), |items, item| items.push(item), Ok)
    }

    /// Closes this end: what is buffered is dropped, the writer's held and later writes fail
    /// with [`PipeError::ReaderClosed`], pending reads fail with it too, and
    /// [`Writer::reader_closed`] completes.
    pub fn close(self) {
        drop(self);
    }

    /// Closes this end as [`close`](Self::close) does, but the writer's held and later writes
    /// fail with `failure` instead of [`PipeError::ReaderClosed`]: why the reader went away
    /// (a forwarder whose remote reader's node was lost, say).
    pub fn fail(self, failure: impl Into<Failure>) {
        self.channel.close_reader(Some(failure.into()));
    }

    /// The weight buffered now: bytes, or items for a [`stream()`].
    pub fn buffered_len(&self) -> usize {
        self.channel.buffered()
    }
}

impl Reader<Bytes> {
    /// Every remaining byte in one buffer, once the writer closes: the single chunk itself when
    /// there is only one, otherwise one copy into a contiguous buffer.
    ///
    /// # Errors
    ///
    /// Fails as [`read`](Self::read) does; the bytes read so far are dropped.
    ///
    /// # Discard
    ///
    /// Discarding the result closes this reader.
    pub fn read_all(self) -> Future<Bytes> {
        drain_all(self, Vec::new(), |chunks, chunk| chunks.push(chunk), concat)
    }

    /// Exactly `n` bytes; what is left of the last chunk stays in the pipe for the next read. A
    /// single chunk is split, not copied.
    ///
    /// Make no other read on this reader until it completes: reads are served in order, so one
    /// made meanwhile takes the bytes in between.
    ///
    /// # Errors
    ///
    /// Fails as [`read`](Self::read) does, or with [`PipeError::UnexpectedEnd`] when the stream
    /// ends first (the bytes read are dropped).
    ///
    /// # Discard
    ///
    /// Discarding the result withdraws its pending read and puts the bytes it had taken back at
    /// the front of the pipe, so nothing is lost.
    pub fn read_exact(&mut self, n: usize) -> Future<Bytes> {
        if n == 0 {
            return Future::ready(Bytes::new());
        }
        let drain = Drain {
            channel: self.channel.clone(),
            owner: None,
            acc: (Vec::new(), 0),
            split: Some(Box::new(
                move |&(_, len): &(Vec<Bytes>, usize), mut chunk: Bytes| {
                    if len + chunk.len() > n {
                        let rest = chunk.split_off(n - len);
                        (chunk, Some(rest))
                    } else {
                        (chunk, None)
                    }
                },
            )),
            step: Box::new(
                move |(chunks, len): &mut (Vec<Bytes>, usize), chunk: Bytes| {
                    *len += chunk.len();
                    chunks.push(chunk);
                    *len == n
                },
            ),
            finish: Box::new(move |(chunks, len)| {
                if len == n {
                    concat(chunks)
                } else {
                    Err(PipeError::UnexpectedEnd {
                        wanted: n,
                        got: len,
                    }
                    .into())
                }
            }),
            give_back: Box::new(|channel, (chunks, _)| {
                for chunk in chunks.into_iter().rev() {
                    channel.unread(chunk);
                }
            }),
        };
        drain.start()
    }
}

impl<T: Send + Sync + 'static> Drop for Reader<T> {
    fn drop(&mut self) {
        self.channel.close_reader(None);
    }
}

/// The writing end of a pipe. Dropping it without [`close`](Self::close) or
/// [`fail`](Self::fail) fails the reader with [`PipeError::WriterDropped`].
pub struct Writer<T: Send + Sync + 'static = Bytes> {
    channel: Arc<Channel<T>>,
    ended: bool,
}

impl<T: Send + Sync + 'static> Writer<T> {
    /// Writes `item`. Ready at once when it fits; otherwise the item is held and the future
    /// completes when reads make room for it (or the writer ends, which lets it in).
    ///
    /// # Errors
    ///
    /// Fails with [`PipeError::ReaderClosed`] when the reader closed (the item is dropped), and
    /// with [`PipeError::WritePending`] when another write is already held (this item is
    /// dropped): wait for each write before the next.
    ///
    /// # Discard
    ///
    /// Discarding a held write takes its item back out of the pipe, unless reads already let it
    /// in, and ends the write discarded.
    pub fn write(&mut self, item: T) -> Future<()> {
        self.channel.write(item)
    }

    /// Ends the stream: the reader reads what is buffered (and the held write), then `None`.
    pub fn close(mut self) {
        self.end(End::Closed);
    }

    /// Ends the stream in failure: the reader reads what is buffered (and the held write), then
    /// fails with `failure`.
    pub fn fail(mut self, failure: impl Into<Failure>) {
        self.end(End::Failed(failure.into()));
    }

    /// Completes when the reader closes or is dropped; never fails.
    ///
    /// Each call registers a watcher of its own, kept until the reader closes: ask once and keep
    /// the future (clones are free) rather than asking per write.
    ///
    /// # Errors
    ///
    /// Ends abandoned if the pipe is dropped while the reader is still open.
    pub fn reader_closed(&self) -> Future<()> {
        self.channel.reader_closed()
    }

    /// The weight buffered now: bytes, or items for a [`stream()`].
    pub fn buffered_len(&self) -> usize {
        self.channel.buffered()
    }

    /// The bound this pipe was made with.
    pub fn capacity(&self) -> usize {
        self.channel.capacity()
    }

    fn end(&mut self, end: End) {
        if !self.ended {
            self.ended = true;
            self.channel.end_writer(end);
        }
    }
}

impl<T: Send + Sync + 'static> Drop for Writer<T> {
    fn drop(&mut self) {
        self.end(End::Dropped);
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &self.buffered_len())
            .finish()
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("buffered", &self.buffered_len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

fn concat(chunks: Vec<Bytes>) -> Result<Bytes, Failure> {
    if chunks.len() == 1 {
        return Ok(chunks.into_iter().next().expect("one chunk"));
    }
    let mut all = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in chunks {
        all.extend_from_slice(&chunk);
    }
    Ok(all.freeze())
}

/// Reads items into `acc` with `step` until it says it has enough (returns true) or the stream
/// ends, then answers with `finish(acc)`. Reads that are ready are taken in a loop; a pending
/// one continues from its completion, so a long stream does not grow the stack. A discard
/// request withdraws the pending read, hands what was taken to `give_back`, and drops `owner`.
struct Drain<T: Send + Sync + 'static, A, R> {
    channel: Arc<Channel<T>>,
    owner: Option<Reader<T>>,
    acc: A,
    split: Option<Want<A, T>>,
    step: Step<A, T>,
    finish: Box<dyn FnOnce(A) -> Result<R, Failure> + Send>,
    give_back: GiveBack<A, T>,
}

/// How much of the next item the accumulator wants: the part to take and the rest.
type Want<A, T> = Box<dyn FnMut(&A, T) -> (T, Option<T>) + Send>;

/// Takes one item into the accumulator; true when it has enough.
type Step<A, T> = Box<dyn FnMut(&mut A, T) -> bool + Send>;

/// Returns what a discarded drain took to the pipe.
type GiveBack<A, T> = Box<dyn FnOnce(&Channel<T>, A) + Send>;

/// The read a drain waits for, which its discard hook withdraws.
type Waiting<T> = Arc<parking_lot::Mutex<Option<Future<Option<T>>>>>;

/// A drain that owns `reader` and keeps everything it reads.
fn drain_all<T, A, R>(
    reader: Reader<T>,
    acc: A,
    step: impl FnMut(&mut A, T) + Send + 'static,
    finish: impl FnOnce(A) -> Result<R, Failure> + Send + 'static,
) -> Future<R>
where
    T: Clone + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + Sync + 'static,
{
    let mut step = step;
    Drain {
        channel: reader.channel.clone(),
        owner: Some(reader),
        acc,
        split: None,
        step: Box::new(move |acc, item| {
            step(acc, item);
            false
        }),
        finish: Box::new(finish),
        give_back: Box::new(|_, _| {}),
    }
    .start()
}

impl<T, A, R> Drain<T, A, R>
where
    T: Clone + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + Sync + 'static,
{
    fn start(self) -> Future<R> {
        let promise = Promise::new();
        let output = promise.future();
        let waiting: Waiting<T> = Arc::default();
        let withdraw = waiting.clone();
        output.when_discard(move || {
            // Not under the lock: the read's completion runs here and takes it.
            let read = withdraw.lock().take();
            if let Some(read) = read {
                read.discard();
            }
        });
        self.resume(None, promise, waiting);
        output
    }

    /// Takes the next item, or the part of it `split` wants, if one is ready.
    fn try_read(&mut self) -> Polled<T> {
        match &mut self.split {
            Some(split) => {
                let acc = &self.acc;
                self.channel.try_read(Some(&mut |item| split(acc, item)))
            }
            None => self.channel.try_read(None),
        }
    }

    /// Continues with `first` (a read that completed), then with every read ready at once.
    fn resume(
        mut self,
        mut first: Option<Result<Option<T>, Error>>,
        promise: Promise<R>,
        waiting: Waiting<T>,
    ) {
        loop {
            if promise.has_discard() {
                // A read served just before the discard holds the item after the taken ones.
                if let Some(Ok(Some(item))) = first.take() {
                    self.channel.unread(item);
                }
                (self.give_back)(&self.channel, self.acc);
                return promise.discard();
            }
            let next = match first.take() {
                // A pending read was served a whole item: keep only the part wanted.
                Some(Ok(Some(item))) => Ok(Some(match &mut self.split {
                    Some(split) => {
                        let (item, rest) = split(&self.acc, item);
                        if let Some(rest) = rest {
                            self.channel.unread(rest);
                        }
                        item
                    }
                    None => item,
                })),
                Some(next) => next,
                None => match self.try_read() {
                    Polled::Item(item) => Ok(Some(item)),
                    Polled::Ended(outcome) => outcome.map(|()| None).map_err(Error::from),
                    Polled::Empty => {
                        let read = self.channel.read();
                        *waiting.lock() = Some(read.clone());
                        if promise.has_discard() {
                            // The discard hook may have run before the read was stored.
                            read.discard();
                        }
                        let again = waiting.clone();
                        read.when_complete(move |outcome| {
                            again.lock().take();
                            self.resume(Some(outcome.clone()), promise, again);
                        });
                        return;
                    }
                },
            };
            match next {
                Ok(Some(item)) => {
                    if !(self.step)(&mut self.acc, item) {
                        continue;
                    }
                }
                Ok(None) => {}
                Err(error) if error.is_discarded() => continue,
                Err(error) => return promise.fail(error.into_failure()),
            }
            drop(self.owner);
            return match (self.finish)(self.acc) {
                Ok(value) => promise.set(value),
                Err(failure) => promise.fail(failure),
            };
        }
    }
}
