//! Pipe ends without a runtime: order, the bound and the one held write, every way an end
//! stops the other, discards that never lose an item, the read helpers, and integrity and the
//! bound across two threads driving the `Stream`/`Sink` adapters.

#[macro_use]
mod support;

use std::thread;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use procession::pipe::{self, PipeError};
use procession::Failure;
use proptest::prelude::*;

fn chunk(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn pipe_error<T: Send + Sync + 'static>(future: &procession::Future<T>) -> PipeError {
    let error = future.error().expect("the future has an error");
    *error
        .failure()
        .and_then(Failure::downcast_ref::<PipeError>)
        .unwrap_or_else(|| panic!("not a pipe error: {error}"))
}

#[test]
fn ends_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<pipe::Reader>();
    check::<pipe::Writer>();
}

#[test]
fn items_arrive_in_order_then_the_end() {
    let (mut reader, mut writer) = pipe::pipe();
    for text in ["a", "bb", "ccc"] {
        assert!(writer.write(chunk(text)).is_ready());
    }
    writer.close();
    for text in ["a", "bb", "ccc"] {
        assert_eq!(reader.read().get(), Some(Some(chunk(text))));
    }
    assert_eq!(reader.read().get(), Some(None));
    assert_eq!(reader.read().get(), Some(None), "the end is sticky");
}

#[test]
fn pending_reads_are_served_in_order_by_later_writes() {
    let (mut reader, mut writer) = pipe::pipe();
    let reads: Vec<_> = (0..3).map(|_| reader.read()).collect();
    assert!(reads.iter().all(|r| r.is_pending()));
    writer.write(chunk("1"));
    writer.write(chunk("2"));
    assert_eq!(reads[0].get(), Some(Some(chunk("1"))));
    assert_eq!(reads[1].get(), Some(Some(chunk("2"))));
    assert!(reads[2].is_pending());
    assert_eq!(
        writer.buffered_len(),
        0,
        "a served read takes the chunk without buffering it"
    );
    writer.close();
    assert_eq!(reads[2].get(), Some(None));
}

#[test]
fn a_write_that_does_not_fit_is_held_until_a_read_makes_room() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(10);
    assert!(writer.write(Bytes::from(vec![1; 4])).is_ready());
    assert!(writer.write(Bytes::from(vec![2; 4])).is_ready());
    let held = writer.write(Bytes::from(vec![3; 4]));
    assert!(held.is_pending(), "12 bytes would exceed the bound of 10");
    assert_eq!(writer.buffered_len(), 8);

    let refused = writer.write(Bytes::from(vec![4; 4]));
    assert_eq!(pipe_error(&refused), PipeError::WritePending);

    assert_eq!(reader.read().get(), Some(Some(Bytes::from(vec![1; 4]))));
    assert!(held.is_ready(), "the read made room for the held write");
    assert_eq!(writer.buffered_len(), 8);
    writer.close();
    let rest = reader.read_all().get().unwrap();
    assert_eq!(&rest[..], &[[2u8; 4], [3u8; 4]].concat()[..]);
}

#[test]
fn a_chunk_larger_than_the_bound_passes_alone() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(4);
    assert!(writer.write(Bytes::from(vec![0; 100])).is_ready());
    let next = writer.write(chunk("x"));
    assert!(next.is_pending());
    assert_eq!(reader.read().get().unwrap().unwrap().len(), 100);
    assert!(next.is_ready());
}

#[test]
fn a_zero_capacity_pipe_holds_one_chunk_at_a_time() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(0);
    assert!(writer.write(chunk("a")).is_ready());
    let second = writer.write(chunk("b"));
    assert!(second.is_pending());
    assert_eq!(reader.read().get(), Some(Some(chunk("a"))));
    assert!(second.is_ready());
}

#[test]
fn empty_chunks_count_against_the_bound() {
    let (_reader, mut writer) = pipe::pipe_with_capacity(3);
    let writes: Vec<_> = (0..5).map(|_| writer.write(Bytes::new())).collect();
    assert_eq!(writes.iter().filter(|w| w.is_ready()).count(), 3);
    assert!(writes[3].is_pending());
    assert_eq!(pipe_error(&writes[4]), PipeError::WritePending);
}

#[test]
fn a_writer_that_ignores_back_pressure_cannot_grow_the_pipe() {
    const BOUND: usize = 1000;
    const CHUNK: usize = 300;
    let (mut reader, mut writer) = pipe::pipe_with_capacity(BOUND);
    let mut refused = 0;
    let mut peak = 0;
    for round in 0..200 {
        let write = writer.write(Bytes::from(vec![round as u8; CHUNK]));
        if write.is_failed() {
            assert_eq!(pipe_error(&write), PipeError::WritePending);
            refused += 1;
        }
        peak = peak.max(writer.buffered_len());
        if round % 7 == 0 {
            reader.read();
        }
    }
    assert!(
        refused > 0,
        "the writer outran the reader, so some writes were refused"
    );
    assert!(
        peak <= BOUND,
        "buffered {peak} bytes with a bound of {BOUND}; the held chunk is the one extra"
    );
}

#[test]
fn failing_the_writer_fails_the_reader_after_the_buffered_data() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(1);
    writer.write(chunk("kept"));
    let held = writer.write(chunk("held"));
    writer.fail("disk on fire");
    assert!(held.is_ready(), "failing lets the held write in");
    assert_eq!(reader.read().get(), Some(Some(chunk("kept"))));
    assert_eq!(reader.read().get(), Some(Some(chunk("held"))));
    let failed = reader.read();
    assert_eq!(support::failure_message(&failed), "disk on fire");
    assert!(reader.read().is_failed(), "the failure is sticky");
}

#[test]
fn a_pending_read_sees_the_failure_or_the_close() {
    let (mut reader, writer) = pipe::pipe();
    let read = reader.read();
    writer.fail("broken");
    assert_eq!(support::failure_message(&read), "broken");

    let (mut reader, writer) = pipe::pipe();
    let read = reader.read();
    writer.close();
    assert_eq!(read.get(), Some(None));
}

#[test]
fn dropping_the_writer_is_a_failure_not_an_end() {
    let (mut reader, mut writer) = pipe::pipe();
    writer.write(chunk("partial"));
    let pending_elsewhere = {
        let (mut other_reader, other_writer) = pipe::pipe();
        let read = other_reader.read();
        drop(other_writer);
        read
    };
    drop(writer);
    assert_eq!(reader.read().get(), Some(Some(chunk("partial"))));
    assert_eq!(pipe_error(&reader.read()), PipeError::WriterDropped);
    assert_eq!(pipe_error(&pending_elsewhere), PipeError::WriterDropped);
}

#[test]
fn closing_the_reader_fails_held_and_later_writes() {
    let (reader, mut writer) = pipe::pipe_with_capacity(1);
    let closed = writer.reader_closed();
    writer.write(chunk("dropped with the buffer"));
    let held = writer.write(chunk("held"));
    assert!(closed.is_pending());
    reader.close();
    assert!(closed.is_ready());
    assert_eq!(pipe_error(&held), PipeError::ReaderClosed);
    assert_eq!(
        pipe_error(&writer.write(chunk("late"))),
        PipeError::ReaderClosed
    );
    assert_eq!(
        writer.buffered_len(),
        0,
        "the buffer was dropped with the reader"
    );
    assert!(writer.reader_closed().is_ready());
}

#[test]
fn failing_the_reader_fails_held_and_later_writes_with_its_reason() {
    let (reader, mut writer) = pipe::pipe_with_capacity(1);
    let closed = writer.reader_closed();
    writer.write(chunk("dropped with the buffer"));
    let held = writer.write(chunk("held"));
    reader.fail("the reader's node was lost");
    assert!(closed.is_ready());
    for write in [held, writer.write(chunk("late"))] {
        let failure = write.error().expect("failed").to_string();
        assert!(failure.contains("the reader's node was lost"), "{failure}");
    }
    assert_eq!(writer.buffered_len(), 0);
}

#[test]
fn a_discarded_reader_closed_watch_ends_alone() {
    let (reader, writer) = pipe::pipe();
    let given_up = writer.reader_closed();
    let kept = writer.reader_closed();
    given_up.discard();
    assert!(given_up.is_discarded());
    assert!(kept.is_pending());
    drop(reader);
    assert!(kept.is_ready());
}

#[test]
fn dropping_the_reader_closes_it() {
    let (reader, mut writer) = pipe::pipe();
    let closed = writer.reader_closed();
    drop(reader);
    assert!(closed.is_ready());
    assert_eq!(
        pipe_error(&writer.write(chunk("x"))),
        PipeError::ReaderClosed
    );
}

#[test]
fn a_discarded_read_never_takes_an_item() {
    let (mut reader, mut writer) = pipe::pipe();
    let abandoned = reader.read();
    let waiting = reader.read();
    abandoned.discard();
    assert!(abandoned.is_discarded());
    writer.write(chunk("only"));
    assert_eq!(waiting.get(), Some(Some(chunk("only"))));

    let late = reader.read();
    writer.write(chunk("served"));
    late.discard();
    assert_eq!(
        late.get(),
        Some(Some(chunk("served"))),
        "served before the discard"
    );
}

#[test]
fn a_discarded_held_write_takes_its_chunk_back() {
    let (mut reader, mut writer) = pipe::pipe_with_capacity(1);
    writer.write(chunk("in"));
    let held = writer.write(chunk("withdrawn"));
    held.discard();
    assert!(held.is_discarded());
    assert!(
        writer.write(chunk("next")).is_pending(),
        "the slot is free again"
    );
    writer.close();
    assert_eq!(reader.read().get(), Some(Some(chunk("in"))));
    assert_eq!(reader.read().get(), Some(Some(chunk("next"))));
    assert_eq!(reader.read().get(), Some(None));
}

#[test]
fn read_all_returns_a_single_chunk_without_copying() {
    let (reader, mut writer) = pipe::pipe();
    let data = Bytes::from(vec![7; 4096]);
    let address = data.as_ptr();
    writer.write(data);
    writer.close();
    let all = reader.read_all().get().unwrap();
    assert_eq!(all.as_ptr(), address, "the chunk was moved, not copied");
}

#[test]
fn read_all_waits_for_the_end_and_joins_chunks() {
    let (reader, mut writer) = pipe::pipe();
    let all = reader.read_all();
    writer.write(chunk("ab"));
    writer.write(chunk("cd"));
    assert!(all.is_pending());
    writer.close();
    assert_eq!(all.get(), Some(chunk("abcd")));
}

#[test]
fn read_all_fails_with_the_stream_and_its_discard_closes_the_reader() {
    let (reader, mut writer) = pipe::pipe();
    let all = reader.read_all();
    writer.write(chunk("ab"));
    writer.fail("cut");
    assert_eq!(support::failure_message(&all), "cut");

    let (reader, writer) = pipe::pipe();
    let all = reader.read_all();
    all.discard();
    assert!(all.is_discarded());
    assert!(writer.reader_closed().is_ready());
}

#[test]
fn read_exact_splits_chunks_and_leaves_the_rest() {
    let (mut reader, mut writer) = pipe::pipe();
    let data = Bytes::from_static(b"hello world");
    let address = data.as_ptr();
    writer.write(data);
    let hello = reader.read_exact(5).get().unwrap();
    assert_eq!(hello, "hello");
    assert_eq!(hello.as_ptr(), address, "split, not copied");
    let across = reader.read_exact(8);
    assert!(across.is_pending());
    writer.write(chunk("!!"));
    assert_eq!(across.get(), Some(chunk(" world!!")));
    writer.write(chunk("tail"));
    writer.close();
    let short = reader.read_exact(10);
    assert_eq!(
        pipe_error(&short),
        PipeError::UnexpectedEnd { wanted: 10, got: 4 }
    );
}

#[test]
fn a_discarded_read_exact_puts_back_what_it_took() {
    let (mut reader, mut writer) = pipe::pipe();
    writer.write(chunk("abc"));
    let exact = reader.read_exact(10);
    assert!(exact.is_pending());
    exact.discard();
    assert!(exact.is_discarded());
    writer.write(chunk("def"));
    writer.close();
    assert_eq!(reader.read_all().get(), Some(chunk("abcdef")));
}

#[test]
fn a_typed_stream_is_bounded_in_items() {
    let (reader, mut writer) = pipe::stream::<String>(2);
    assert!(writer.write("one".repeat(1000)).is_ready());
    assert!(writer.write("two".to_owned()).is_ready());
    let third = writer.write("three".to_owned());
    assert!(third.is_pending(), "two items fill a stream of two");
    assert_eq!(writer.buffered_len(), 2);
    let all = reader.read_to_vec();
    writer.close();
    assert!(third.is_ready());
    assert_eq!(all.get().unwrap().len(), 3);
}

#[test]
fn the_stream_adapter_yields_a_failure_once_then_ends() {
    let (reader, mut writer) = pipe::pipe();
    writer.write(chunk("a"));
    writer.fail("bad");
    let items: Vec<_> = futures::executor::block_on(reader.collect::<Vec<_>>());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), &chunk("a"));
    assert_eq!(items[1].as_ref().unwrap_err().message(), "bad");
}

#[test]
fn the_sink_adapter_fails_once_the_reader_closed() {
    let (reader, mut writer) = pipe::stream::<u32>(4);
    drop(reader);
    let sent = futures::executor::block_on(writer.send(1));
    let failure = sent.unwrap_err();
    assert_eq!(
        failure.downcast_ref::<PipeError>(),
        Some(&PipeError::ReaderClosed)
    );
}

#[test]
fn the_sink_adapter_refuses_items_after_it_closed() {
    let (reader, mut writer) = pipe::stream::<u32>(4);
    futures::executor::block_on(async {
        writer.send(1).await.unwrap();
        SinkExt::close(&mut writer).await.unwrap();
        let failure = writer.send(2).await.unwrap_err();
        assert_eq!(
            failure.downcast_ref::<PipeError>(),
            Some(&PipeError::WriterClosed)
        );
    });
    assert_eq!(reader.read_to_vec().get(), Some(vec![1]));
}

/// A writer thread and a reader thread drive the ends through the `Sink`/`Stream` adapters.
fn stream_across_threads(chunks: Vec<Bytes>, capacity: usize) -> (Vec<Bytes>, usize) {
    let (reader, writer) = pipe::pipe_with_capacity(capacity);
    let largest = chunks.iter().map(Bytes::len).max().unwrap_or(0);
    let producer = thread::spawn(move || {
        let mut writer = writer;
        futures::executor::block_on(async {
            for chunk in chunks {
                writer.send(chunk).await.unwrap();
                assert!(writer.buffered_len() <= capacity.max(largest).max(1));
            }
            SinkExt::close(&mut writer).await.unwrap();
        });
    });
    let received = futures::executor::block_on(reader.map(Result::unwrap).collect::<Vec<_>>());
    producer.join().unwrap();
    (received, largest)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::scaled(64) as u32))]

    #[test]
    fn chunks_cross_threads_intact_and_in_order(
        sizes in prop::collection::vec(0usize..5000, 0..200),
        capacity in 0usize..20_000,
    ) {
        let chunks: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
            .collect();
        let addresses: Vec<_> = chunks.iter().map(|c| c.as_ptr()).collect();
        let (received, _) = stream_across_threads(chunks.clone(), capacity);
        prop_assert_eq!(&received, &chunks);
        for (got, sent) in received.iter().zip(addresses) {
            if !got.is_empty() {
                prop_assert_eq!(got.as_ptr(), sent, "moved, not copied");
            }
        }
    }
}
