//! Pipes meet the rest of async Rust: `futures` `Stream`/`Sink`, tokio `AsyncRead`/`AsyncWrite`,
//! and stages that read from or write into any of tokio's readers and writers (a file, a socket,
//! a child's stdout).
//!
//! The byte adapters copy, because tokio's traits hand over slices: a [`Reader`] as `AsyncRead`
//! copies out of its chunks (what is left of one stays in the pipe), a [`Writer`] as
//! `AsyncWrite` copies each slice into a new chunk, at most the room the pipe has.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::stage::{send, spawn_try};
use super::{stage_pipe, End, Reader, Writer};
use crate::error::Failure;
use crate::future::Future;
use crate::{context, task};

/// How much [`read_from`] asks its source for at a time.
const CHUNK: usize = 64 * 1024;

/// A reader of everything `source` yields, in chunks of up to 64 KiB, read on the current
/// runtime as fast as the pipe (bounded at [`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY))
/// drains.
///
/// # Errors
///
/// An I/O error of `source` fails the reader with it. Closing the reader stops reading and
/// drops `source`.
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn read_from<R>(source: R) -> Reader<Bytes>
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let (reader, mut output) = stage_pipe();
    let mut source = source;
    let handle = context::expect_current("pipe::read_from");
    task::spawn(&handle, async move {
        // One buffer, split after each read: small reads share an allocation rather than each
        // pinning a whole chunk's worth of memory, so the memory the buffered chunks pin stays
        // within a few chunks of their length.
        let mut buffer = BytesMut::new();
        loop {
            if buffer.capacity() < CHUNK / 16 {
                buffer.reserve(CHUNK);
            }
            let read = {
                let mut fill = std::pin::pin!(source.read_buf(&mut buffer));
                std::future::poll_fn(|cx| match fill.as_mut().poll(cx) {
                    Poll::Ready(result) => Poll::Ready(Some(result)),
                    Poll::Pending => output.channel.poll_reader_closed(cx).map(|()| None),
                })
                .await
            };
            match read {
                None => return,
                Some(Ok(0)) => return output.close(),
                Some(Ok(_)) => {
                    if send(&mut output, buffer.split().freeze()).await.is_err() {
                        return;
                    }
                }
                Some(Err(error)) => return output.fail(Failure::from_error(error)),
            }
        }
    });
    reader
}

/// A stage that ends a pipeline in `sink`: writes every chunk, then flushes and shuts `sink`
/// down at the end of the stream.
///
/// The future is ready once all was written, flushed and shut down.
///
/// # Errors
///
/// Fails with the stream's failure, or with the I/O error of `sink` (the input is then closed).
/// Discarding the future stops writing and closes the input.
///
/// # Panics
///
/// Attaching it panics if no runtime is current.
pub fn write_into<W>(sink: W) -> impl FnOnce(Reader<Bytes>) -> Future<()>
where
    W: AsyncWrite + Send + Unpin + 'static,
{
    move |input| {
        let mut sink = sink;
        spawn_try(async move {
            while let Some(chunk) =
                std::future::poll_fn(|cx| input.channel.poll_read(cx, None)).await?
            {
                sink.write_all(&chunk).await.map_err(Failure::from_error)?;
            }
            sink.flush().await.map_err(Failure::from_error)?;
            sink.shutdown().await.map_err(Failure::from_error)
        })
    }
}

impl<T: Send + Sync + 'static> futures_core::Stream for Reader<T> {
    type Item = Result<T, Failure>;

    /// The next item; a failure is yielded once, after which the stream ends.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = std::task::ready!(self.channel.poll_read(cx, None));
        self.done = !matches!(next, Ok(Some(_)));
        Poll::Ready(next.transpose())
    }
}

impl<T: Send + Sync + 'static> futures_sink::Sink<T> for Writer<T> {
    type Error = Failure;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        self.channel.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Failure> {
        self.channel.start_send(item)
    }

    /// Ready at once: a sent item is already in the pipe, where the reader can take it.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the stream, as [`Writer::close`] does.
    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        self.end(End::Closed);
        Poll::Ready(Ok(()))
    }
}

fn io_error(failure: Failure) -> io::Error {
    io::Error::other(failure)
}

impl AsyncRead for Reader<Bytes> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        if room == 0 {
            return Poll::Ready(Ok(()));
        }
        // Taking only what fits, under the pipe's lock, keeps the rest counted in the bound.
        let mut fit = |mut chunk: Bytes| {
            let rest = (chunk.len() > room).then(|| chunk.split_off(room));
            (chunk, rest)
        };
        loop {
            match std::task::ready!(self.channel.poll_read(cx, Some(&mut fit))) {
                // An empty read would tell the caller the stream has ended.
                Ok(Some(chunk)) if chunk.is_empty() => continue,
                Ok(Some(chunk)) => {
                    buf.put_slice(&chunk);
                    return Poll::Ready(Ok(()));
                }
                Ok(None) => return Poll::Ready(Ok(())),
                Err(failure) => return Poll::Ready(Err(io_error(failure))),
            }
        }
    }
}

impl AsyncWrite for Writer<Bytes> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = std::task::ready!(self.channel.poll_room(cx)).map_err(io_error)?;
        let n = room.min(buf.len());
        self.channel
            .start_send(Bytes::copy_from_slice(&buf[..n]))
            .map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the stream, as [`Writer::close`] does.
    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.end(End::Closed);
        Poll::Ready(Ok(()))
    }
}
