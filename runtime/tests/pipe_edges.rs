//! Pipe edge cases found in review, kept as regressions: a write never overtakes the held one,
//! empty chunks never look like the end to `AsyncRead`, partial reads stay within the bound,
//! a discarded `read_exact` loses nothing (also racing a write on another thread), items are
//! dropped outside the pipe's lock, `read_exact(0)`; and stages that stop when their reader
//! closes, whether blocked on input, in a computation or on a full output.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use procession::pipe::{self, PipeError, Writer};
use procession::{spawn_async, Failure, Future, Promise};
use tokio::io::AsyncReadExt;

// ---------------------------------------------------------------------------------------------
// Helpers

fn chunk(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn pipe_error<T: Send + Sync + 'static>(future: &Future<T>) -> PipeError {
    let error = future.error().expect("the future has an error");
    *error
        .failure()
        .and_then(Failure::downcast_ref::<PipeError>)
        .unwrap_or_else(|| panic!("not a pipe error: {error}"))
}

/// Runs `body` on its own thread and fails (rather than hangs) if it has not returned within a
/// generous limit: a guard against a deadlock, not a timing assertion. A deadlocked thread is
/// leaked.
fn without_deadlock(what: &str, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        let _ = done.send(outcome.map_err(|p| support::panic_text(&*p)));
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(message)) => panic!("{what} panicked: {message}"),
        Err(_) => panic!("{what} deadlocked: it did not return within 30s"),
    }
}

// ---------------------------------------------------------------------------------------------
// Contract edges

/// Contract, Bound: "one held write at a time: a further write fails with WritePending and its
/// chunk is dropped". A further write that happens to fit under the bound is instead buffered
/// *ahead of* the held one, so a writer that ignores back-pressure gets its bytes reordered.
#[test]
fn a_write_while_one_is_held_fails_with_write_pending() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(10);
    assert!(writer.write(Bytes::from(vec![1; 8])).is_ready());
    let held = writer.write(Bytes::from(vec![2; 5]));
    assert!(held.is_pending(), "8 + 5 does not fit under 10: held");
    let further = writer.write(Bytes::from(vec![3; 2]));
    writer.close();
    let mut order = Vec::new();
    while let Some(Some(chunk)) = reader.read().get() {
        order.push(chunk[0]);
    }
    assert!(
        further.is_failed() && pipe_error(&further) == PipeError::WritePending,
        "a write made while another was held was accepted ({further:?}); the reader saw the \
         chunks in the order {order:?} although they were written 1, 2, 3"
    );
}

/// An empty chunk is a legal item (it weighs one). The `AsyncRead` adapter turns it into a read
/// of zero bytes, which tokio's contract defines as the end of the stream: everything after it
/// is silently lost.
#[test]
fn the_async_read_adapter_does_not_end_at_an_empty_chunk() {
    let (mut reader, mut writer) = pipe::pipe();
    writer.write(chunk("before "));
    writer.write(Bytes::new());
    writer.write(chunk("after"));
    writer.close();
    let mut all = Vec::new();
    futures::executor::block_on(reader.read_to_end(&mut all)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&all),
        "before after",
        "the empty chunk ended the AsyncRead stream early"
    );
}

/// Contract, Bound: the pipe never holds more than `max(bound, one chunk)` plus one held chunk.
/// A partial read (`read_exact`) pops a whole chunk, which lets the held write in, and then
/// puts the rest of the chunk back: the buffer ends above the bound, and the writer may hold
/// one more chunk on top.
#[test]
fn a_partial_read_exact_keeps_the_pipe_within_its_bound() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(10);
    assert!(writer.write(Bytes::from(vec![1; 10])).is_ready());
    let held = writer.write(Bytes::from(vec![2; 10]));
    assert!(held.is_pending());
    assert_eq!(reader.read_exact(1).get(), Some(Bytes::from(vec![1])));
    let third = writer.write(Bytes::from(vec![3; 10]));
    let held_now = if third.is_pending() { 10 } else { 0 };
    let total = writer.buffered_len() + held_now;
    assert!(
        total <= 10 + 10,
        "the pipe holds {} buffered + {held_now} held = {total} bytes; the bound (10, chunks of \
         10) allows 10 plus one held chunk",
        writer.buffered_len()
    );
}

/// The same through the `AsyncRead` adapter, which reads less than a chunk when the caller's
/// buffer is small.
#[test]
fn a_partial_async_read_keeps_the_pipe_within_its_bound() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(10);
    assert!(writer.write(Bytes::from(vec![1; 10])).is_ready());
    let held = writer.write(Bytes::from(vec![2; 10]));
    assert!(held.is_pending());
    let mut one = [0u8; 1];
    assert_eq!(
        futures::executor::block_on(AsyncReadExt::read(&mut reader, &mut one)).unwrap(),
        1
    );
    let third = writer.write(Bytes::from(vec![3; 10]));
    let held_now = if third.is_pending() { 10 } else { 0 };
    let total = writer.buffered_len() + held_now;
    assert!(
        total <= 10 + 10,
        "the pipe holds {} buffered + {held_now} held = {total} bytes; the bound allows 20",
        writer.buffered_len()
    );
}

/// `read_exact`, Discard: "puts the bytes it had taken back at the front of the pipe, so
/// nothing is lost". When the drain's pending read was served but its completion has not run
/// yet (here: the write is made from inside a callback, so the completion waits on the
/// trampoline; across threads it is a plain race), a discard makes the drain drop the chunk
/// that read brought.
#[test]
fn a_discarded_read_exact_keeps_a_chunk_served_just_before_the_discard() {
    let (mut reader, writer) = pipe::pipe();
    let exact = reader.read_exact(3);
    assert!(exact.is_pending());
    let trigger = Promise::<()>::new();
    let to_discard = exact.clone();
    let mut writer = writer;
    trigger.future().on_ready(move |_| {
        writer.write(chunk("abc"));
        to_discard.discard();
        writer.close();
    });
    trigger.set(());
    if exact.is_ready() {
        assert_eq!(exact.get(), Some(chunk("abc")));
    } else {
        assert!(exact.is_discarded(), "{exact:?}");
        assert_eq!(
            reader.read_all().get(),
            Some(chunk("abc")),
            "read_exact was discarded and the chunk its read had been served is gone"
        );
    }
}

/// The same loss as a race between a writer thread and a discarding thread.
#[test]
fn a_discarded_read_exact_never_loses_a_chunk_across_threads() {
    let rounds = support::scaled(10_000);
    let mut lost = 0;
    for _ in 0..rounds {
        let (mut reader, mut writer) = pipe::pipe();
        // Three bytes taken before the race, so a discard must give back "xyz" and "abc".
        writer.write(chunk("xyz"));
        let exact = reader.read_exact(6);
        assert!(exact.is_pending());
        let barrier = Arc::new(Barrier::new(2));
        let start = barrier.clone();
        let writing = thread::spawn(move || {
            start.wait();
            writer.write(chunk("abc"));
            writer
        });
        barrier.wait();
        exact.discard();
        let writer = writing.join().unwrap();
        writer.close();
        if exact.is_ready() {
            assert_eq!(exact.get(), Some(chunk("xyzabc")));
            assert_eq!(reader.read_all().get(), Some(Bytes::new()));
        } else {
            assert!(exact.is_discarded(), "{exact:?}");
            let rest = reader.read_all().get().unwrap();
            if rest != "xyzabc" {
                assert_eq!(rest, "xyz", "only a lost served chunk is expected here");
                lost += 1;
            }
        }
    }
    assert_eq!(
        lost, 0,
        "in {lost} of {rounds} rounds a discarded read_exact dropped the chunk its read was served"
    );
}

/// Contract: futures complete after the pipe's lock is released, because their callbacks may
/// use the pipe again. Closing the reader drops the buffered items (and the held one) while the
/// lock is held; an item whose drop completes a future (a `Promise`: the reply channel of a
/// request, say) then runs that future's callbacks under the lock, and a callback that touches
/// the pipe deadlocks.
#[test]
fn closing_the_reader_drops_buffered_items_outside_the_lock() {
    without_deadlock("closing a reader of promises", || {
        let (reader, mut writer) = pipe::stream::<Promise<()>>(4);
        let promise = Promise::new();
        let shared: Arc<OnceLock<Writer<Promise<()>>>> = Arc::default();
        let seen = shared.clone();
        promise.future().on_abandoned(move || {
            // Any use of the pipe from a callback: here, asking how full it is.
            if let Some(writer) = seen.get() {
                let _ = writer.buffered_len();
            }
        });
        assert!(writer.write(promise).is_ready());
        assert!(shared.set(writer).is_ok());
        reader.close();
    });
}

/// "Exactly `n` bytes": zero bytes are there at once; instead the read waits for the next
/// chunk to arrive (forever, on a quiet stream).
#[test]
fn read_exact_of_zero_bytes_is_ready_at_once() {
    let (mut reader, _writer) = pipe::pipe();
    let nothing = reader.read_exact(0);
    assert_eq!(nothing.get(), Some(Bytes::new()), "{nothing:?}");
}

// ---------------------------------------------------------------------------------------------
// Stages and adapters

#[test]
fn a_discarded_read_exact_gives_back_several_chunks_in_order() {
    let (mut reader, mut writer) = pipe::pipe();
    writer.write(chunk("ab"));
    writer.write(chunk("cd"));
    let exact = reader.read_exact(10);
    assert!(exact.is_pending());
    exact.discard();
    assert!(exact.is_discarded());
    writer.write(chunk("ef"));
    writer.close();
    assert_eq!(reader.read_all().get(), Some(chunk("abcdef")));
}

#[test]
fn read_exact_fails_cleanly_when_the_reader_closes_under_it() {
    let (mut reader, mut writer) = pipe::pipe();
    writer.write(chunk("ab"));
    let exact = reader.read_exact(10);
    drop(reader);
    assert_eq!(pipe_error(&exact), PipeError::ReaderClosed);
    assert_eq!(writer.buffered_len(), 0);
    assert_eq!(
        pipe_error(&writer.write(chunk("x"))),
        PipeError::ReaderClosed
    );
}

#[test]
fn read_exact_split_keeps_the_rest_in_order_with_later_writes() {
    let (mut reader, mut writer) = pipe::pipe();
    let exact = reader.read_exact(2);
    writer.write(chunk("abcd"));
    writer.write(chunk("ef"));
    writer.close();
    assert_eq!(exact.get(), Some(chunk("ab")));
    assert_eq!(reader.read_all().get(), Some(chunk("cdef")));
}

#[test]
fn empty_chunks_pass_through_read_and_the_stream_adapter() {
    let (reader, mut writer) = pipe::pipe_with_capacity(0);
    let items = Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = items.clone();
    let consumer = thread::spawn(move || {
        futures::executor::block_on(async move {
            let mut reader = reader;
            while let Some(item) = reader.next().await {
                out.lock().unwrap().push(item.unwrap());
            }
        })
    });
    futures::executor::block_on(async {
        for text in ["a", "", "", "b", ""] {
            writer.send(chunk(text)).await.unwrap();
        }
        SinkExt::close(&mut writer).await.unwrap();
    });
    consumer.join().unwrap();
    let items = items.lock().unwrap().clone();
    assert_eq!(
        items,
        vec![chunk("a"), chunk(""), chunk(""), chunk("b"), chunk("")]
    );
}

#[test]
fn a_discarded_held_write_leaves_the_buffer_intact_and_a_later_read_in_order() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(4);
    writer.write(chunk("1234"));
    let held = writer.write(chunk("5"));
    held.discard();
    assert!(held.is_discarded());
    assert_eq!(reader.read().get(), Some(Some(chunk("1234"))));
    held.discard();
    assert!(writer.write(chunk("6")).is_ready());
    writer.close();
    assert_eq!(reader.read_all().get(), Some(chunk("6")));
}

#[test]
fn a_zero_capacity_async_write_moves_every_byte() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(0);
    let data: Vec<u8> = (0..200u8).collect();
    let expected = data.clone();
    let producer = thread::spawn(move || {
        futures::executor::block_on(async move {
            tokio::io::AsyncWriteExt::write_all(&mut writer, &data)
                .await
                .unwrap();
            tokio::io::AsyncWriteExt::shutdown(&mut writer)
                .await
                .unwrap();
        })
    });
    let mut all = Vec::new();
    futures::executor::block_on(reader.read_to_end(&mut all)).unwrap();
    producer.join().unwrap();
    assert_eq!(all, expected);
}

rt_test!(
    a_stage_blocked_on_a_full_output_stops_when_its_reader_closes,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, mut writer) = pipe::pipe_with_capacity(4 * 1024 * 1024);
        let source_closed = writer.reader_closed();
        let output = source | pipe::map(|c: Bytes| Ok(c));
        // The stage's output holds 256 KiB: the first chunk fills most of it, the second is
        // held, the third waits in the stage for room.
        for _ in 0..4 {
            assert!(writer.write(Bytes::from(vec![0; 200 * 1024])).is_ready());
        }
        support::pause_and_settle(rt);
        output.close();
        rt.block_on(source_closed).unwrap();
        assert_eq!(
            pipe_error(&writer.write(chunk("late"))),
            PipeError::ReaderClosed
        );
    }
);

rt_test!(
    a_stage_blocked_in_its_computation_stops_when_its_reader_closes,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, mut writer) = pipe::pipe();
        let source_closed = writer.reader_closed();
        let output =
            source | pipe::then(|_: Bytes| std::future::pending::<Result<Bytes, Failure>>());
        writer.write(chunk("never done"));
        support::pause_and_settle(rt);
        output.close();
        rt.block_on(source_closed).unwrap();
    }
);

rt_test!(
    discarding_a_pipeline_blocked_on_a_full_sink_drops_both_ends,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, mut writer) = pipe::pipe_with_capacity(8);
        let (mut output, sink) = pipe::pipe_with_capacity(8);
        let source_closed = writer.reader_closed();
        let done = source | pipe::map(|c: Bytes| Ok(c)) | sink;
        for _ in 0..3 {
            writer.write(chunk("12345678"));
        }
        support::pause_and_settle(rt);
        done.discard();
        rt.block_on(source_closed).unwrap();
        assert!(rt.block_on(done.clone()).is_err());
        assert!(done.is_discarded(), "{done:?}");
        loop {
            match rt.block_on(output.read()) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a discarded pipeline looks like a complete stream"),
                Err(error) => {
                    assert_eq!(
                        error.failure().and_then(Failure::downcast_ref::<PipeError>),
                        Some(&PipeError::WriterDropped)
                    );
                    break;
                }
            }
        }
    }
);

rt_test!(zero_capacity_pipes_carry_a_pipeline, |flavor, rt| {
    let _entered = rt.enter();
    let (source, mut writer) = pipe::pipe_with_capacity(0);
    let (output, sink) = pipe::pipe_with_capacity(0);
    let done = source | pipe::map(|c: Bytes| Ok(c)) | sink;
    let all = output.read_all();
    let total = 50;
    let fed = spawn_async(async move {
        for i in 0..total {
            writer.write(Bytes::from(vec![i as u8; 3])).await.unwrap();
        }
        writer.close();
    });
    rt.block_on(fed).unwrap();
    rt.block_on(done).unwrap();
    let expected: Vec<u8> = (0..total).flat_map(|i| [i as u8; 3]).collect();
    assert_eq!(rt.block_on(all).unwrap(), expected);
});

rt_test!(
    a_typed_pipeline_stops_its_source_when_the_last_reader_closes_midway,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, writer) = pipe::stream::<u64>(2);
        let closed = writer.reader_closed();
        let output = source | pipe::map(|n: u64| Ok(n + 1)) | pipe::map(|n: u64| Ok(n * 2));
        let fed = spawn_async(async move {
            let mut writer = writer;
            let mut n = 0;
            while writer.write(n).await.is_ok() {
                n += 1;
            }
            n
        });
        let mut output = output;
        for i in 0..10u64 {
            assert_eq!(rt.block_on(output.read()).unwrap(), Some((i + 1) * 2));
        }
        output.close();
        rt.block_on(closed).unwrap();
        assert!(rt.block_on(fed).unwrap() >= 10);
    }
);

/// Many short pipelines on a four-worker pool whose readers close at random points: every
/// source must learn it (a lost wakeup in any stage would hang here and trip the watchdog).
#[test]
fn closing_midway_always_reaches_the_source_across_threads() {
    support::with_watchdog("closing pipelines midway", || {
        let runtime = support::Flavor::FourWorkers.build();
        let _entered = runtime.enter();
        let rounds = support::scaled(300);
        let count = Arc::new(AtomicUsize::new(0));
        for round in 0..rounds {
            let (source, writer) = pipe::pipe_with_capacity(64);
            let closed = writer.reader_closed();
            let output =
                source | pipe::map(|c: Bytes| Ok(c)) | pipe::then(|c: Bytes| async move { Ok(c) });
            let written = count.clone();
            let fed = spawn_async(async move {
                let mut writer = writer;
                while writer.write(Bytes::from(vec![1; 40])).await.is_ok() {
                    written.fetch_add(1, Ordering::Relaxed);
                }
            });
            let mut output = output;
            for _ in 0..(round % 5) {
                assert!(runtime.block_on(output.read()).unwrap().is_some());
            }
            output.close();
            runtime.block_on(closed).unwrap();
            runtime.block_on(fed).unwrap();
        }
        drop(_entered);
        runtime.shutdown();
    });
}
