//! Stages: what `reader | stage` attaches, and the transforming stages built in.
//!
//! A stage is anything that takes the reader of the pipeline so far: a closure
//! `FnOnce(Reader<T>) -> O` (so any function that builds the next reader, or consumes the stream
//! into a future, is a stage), or a [`Writer`], which ends the pipeline. Transforming stages run
//! one item at a time on the current runtime and watch both sides: a failure from upstream fails
//! their output, a failure of their own fails their output and closes their input, and a reader
//! closed downstream closes their input — which is how discarding a pipeline reaches its source.

use std::future::poll_fn;
use std::ops::BitOr;
use std::task::Poll;

use super::{stage_pipe, PipeError, Reader, Writer};
use crate::context;
use crate::dispatch::dispatch;
use crate::error::Failure;
use crate::future::Future;
use crate::pid::Pid;
use crate::process::Process;
use crate::task;

/// Something `reader | stage` can attach to a reader of `T`: a transform gives the next
/// [`Reader`], an end of the pipeline gives a [`Future`].
///
/// Implemented by every `FnOnce(Reader<T>) -> O` and by [`Writer<T>`].
pub trait Stage<T: Send + Sync + 'static> {
    /// What attaching gives: a `Reader` for a transform, a `Future<()>` for an end.
    type Output;

    /// Attaches this stage to `input`.
    fn attach(self, input: Reader<T>) -> Self::Output;
}

impl<T, F, O> Stage<T> for F
where
    T: Send + Sync + 'static,
    F: FnOnce(Reader<T>) -> O,
{
    type Output = O;

    fn attach(self, input: Reader<T>) -> O {
        self(input)
    }
}

/// Ends a pipeline in another pipe: every item is moved into this writer, which is closed at the
/// end of the stream (or failed with its failure).
///
/// The future is ready when everything has been written and the writer closed. It fails with the
/// stream's failure, or with [`PipeError::ReaderClosed`] when this writer's reader closed first
/// (the input is then closed too). Discarding it drops both ends: the input's writer sees
/// `ReaderClosed`, this writer's reader sees [`PipeError::WriterDropped`].
///
/// # Panics
///
/// Panics if no runtime is current.
impl<T: Send + Sync + 'static> Stage<T> for Writer<T> {
    type Output = Future<()>;

    fn attach(self, input: Reader<T>) -> Future<()> {
        let mut output = self;
        spawn_try(async move {
            let mut input = input;
            loop {
                match next_unless_closed(&mut input, &output).await {
                    None => return Err(PipeError::ReaderClosed.into()),
                    Some(Ok(Some(item))) => send(&mut output, item).await?,
                    Some(Ok(None)) => {
                        output.close();
                        return Ok(());
                    }
                    Some(Err(failure)) => {
                        output.fail(failure.clone());
                        return Err(failure);
                    }
                }
            }
        })
    }
}

impl<T: Send + Sync + 'static, S: Stage<T>> BitOr<S> for Reader<T> {
    type Output = S::Output;

    /// `reader | stage`: attaches `stage` to this reader.
    fn bitor(self, stage: S) -> S::Output {
        stage.attach(self)
    }
}

/// A stage that applies `f` to each item.
///
/// Its output is a pipe bounded like every stage's: in bytes ([`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY))
/// for [`Bytes`](bytes::Bytes), in items ([`DEFAULT_ITEMS`](super::DEFAULT_ITEMS)) otherwise.
///
/// # Errors
///
/// When `f` fails, the output fails with its failure and the input is closed.
///
/// # Panics
///
/// Attaching it panics if no runtime is current.
pub fn map<T, U, F>(f: F) -> impl FnOnce(Reader<T>) -> Reader<U>
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
    F: FnMut(T) -> Result<U, Failure> + Send + 'static,
{
    let mut f = f;
    then(move |item| std::future::ready(f(item)))
}

/// A stage that awaits `f(item)` for each item, one at a time, and passes on what it gives.
///
/// Bounded like [`map`]. A reader closed downstream drops the computation in flight.
///
/// # Errors
///
/// When a computation fails, the output fails with its failure and the input is closed.
///
/// # Panics
///
/// Attaching it panics if no runtime is current.
pub fn then<T, U, F, Fut>(f: F) -> impl FnOnce(Reader<T>) -> Reader<U>
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<U, Failure>> + Send + 'static,
{
    move |input| {
        let (reader, output) = stage_pipe();
        let handle = context::expect_current("a pipe stage");
        task::spawn(&handle, transform(input, output, f));
        reader
    }
}

/// A stage run by a process: each item is dispatched to `pid`, where `f` transforms it with the
/// process's state, in order and one at a time.
///
/// # Errors
///
/// When `f` fails, or the process is gone, the output fails and the input is closed.
///
/// # Panics
///
/// Attaching it panics if no runtime is current.
pub fn process<P, T, U, F>(pid: &Pid<P>, f: F) -> impl FnOnce(Reader<T>) -> Reader<U>
where
    P: Process,
    T: Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
    F: Fn(&mut P, T) -> Result<U, Failure> + Send + Sync + 'static,
{
    let pid = pid.clone();
    let f = std::sync::Arc::new(f);
    then(move |item| {
        let f = f.clone();
        let answer = dispatch(&pid, move |state: &mut P| f(state, item));
        async move { answer.await.map_err(|error| error.into_failure())? }
    })
}

/// Passes each item of `input` through `f` into `output` until the stream ends, a side fails,
/// or the reader of `output` closes. Returning drops `input`, which closes it.
async fn transform<T, U, F, Fut>(mut input: Reader<T>, mut output: Writer<U>, mut f: F)
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = Result<U, Failure>>,
{
    loop {
        let item = match next_unless_closed(&mut input, &output).await {
            None => return,
            Some(Ok(Some(item))) => item,
            Some(Ok(None)) => return output.close(),
            Some(Err(failure)) => return output.fail(failure),
        };
        let mut computation = std::pin::pin!(f(item));
        let computed = poll_fn(|cx| match computation.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending => output.channel.poll_reader_closed(cx).map(|()| None),
        })
        .await;
        match computed {
            None => return,
            Some(Ok(value)) => {
                if send(&mut output, value).await.is_err() {
                    return;
                }
            }
            Some(Err(failure)) => return output.fail(failure),
        }
    }
}

/// The next item of `input`, or `None` once the reader of `output` has closed.
async fn next_unless_closed<T, U>(
    input: &mut Reader<T>,
    output: &Writer<U>,
) -> Option<Result<Option<T>, Failure>>
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
{
    poll_fn(|cx| {
        if let Poll::Ready(next) = input.channel.poll_read(cx, None) {
            return Poll::Ready(Some(next));
        }
        output.channel.poll_reader_closed(cx).map(|()| None)
    })
    .await
}

/// Sends `item` once the pipe has room.
pub(super) async fn send<T: Send + Sync + 'static>(
    output: &mut Writer<T>,
    item: T,
) -> Result<(), Failure> {
    poll_fn(|cx| output.channel.poll_ready(cx)).await?;
    output.channel.start_send(item)
}

/// Runs a stage's driver on the current runtime.
pub(super) fn spawn_try<F, T>(future: F) -> Future<T>
where
    F: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + Sync + 'static,
{
    task::spawn_try(&context::expect_current("a pipe stage"), future)
}
