//! Pipelines on a runtime, on every flavour (one and four workers, paused clock, deterministic
//! seeds): `reader | stage | writer` moves every byte intact and in order, each pipe stays
//! within its bound, a failure anywhere fails the pipeline and stops the source, a discard
//! closes every stage, and the tokio and futures adapters make files, sockets and sinks stages.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use procession::pipe::{self, PipeError, Reader, Writer};
use procession::{spawn_async, Failure, Future, Process, Runtime};

fn pipe_error<T: Send + Sync + 'static>(future: &Future<T>) -> PipeError {
    let error = future.error().expect("the future has an error");
    *error
        .failure()
        .and_then(Failure::downcast_ref::<PipeError>)
        .unwrap_or_else(|| panic!("not a pipe error: {error}"))
}

/// Chunks of pseudo-random sizes (0..max) with contents derived from their index.
fn chunks(count: usize, max: usize, seed: u64) -> Vec<Bytes> {
    let mut state = seed | 1;
    (0..count)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % max as u64) as usize;
            Bytes::from((0..len).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>())
        })
        .collect()
}

/// Writes `chunks` honouring back-pressure, then closes; checks the bound after each write.
fn feed(mut writer: Writer, chunks: Vec<Bytes>) -> Future<()> {
    spawn_async(async move {
        let largest = chunks.iter().map(Bytes::len).max().unwrap_or(0).max(1);
        for chunk in chunks {
            writer
                .write(chunk)
                .await
                .expect("the pipeline accepts the write");
            assert!(writer.buffered_len() <= writer.capacity().max(largest));
        }
        writer.close();
    })
}

fn joined(chunks: &[Bytes]) -> Vec<u8> {
    chunks.concat()
}

rt_test!(
    bytes_flow_intact_through_a_three_stage_pipeline,
    |flavor, rt| {
        let _entered = rt.enter();
        let input = chunks(support::scaled(400), 20_000, 7);
        let expected: Vec<u8> = joined(&input).iter().map(|b| b ^ 0x5a).collect();
        let (source, writer) = pipe::pipe_with_capacity(8 * 1024);
        let (output, sink) = pipe::pipe();
        let fed = feed(writer, input);
        let done = source
            | pipe::map(|chunk: Bytes| {
                Ok(chunk.iter().map(|b| b ^ 0x5a).collect::<Vec<_>>().into())
            })
            | pipe::then(|chunk: Bytes| async move { Ok(chunk) })
            | sink;
        let all = output.read_all();
        rt.block_on(done).unwrap();
        rt.block_on(fed).unwrap();
        assert_eq!(rt.block_on(all).unwrap(), expected);
    }
);

rt_test!(
    back_pressure_from_a_slow_sink_bounds_every_pipe,
    |flavor, rt| {
        let _entered = rt.enter();
        const CHUNK: usize = 1000;
        const BOUND: usize = 4 * CHUNK;
        let (source, mut writer) = pipe::pipe_with_capacity(BOUND);
        let (mut output, sink) = pipe::pipe_with_capacity(BOUND);
        let stages_peak = Arc::new(AtomicUsize::new(0));
        let peak = stages_peak.clone();
        let done = source | pipe::map(|chunk: Bytes| Ok(chunk)) | sink;
        let total = support::scaled(200);
        let producer = spawn_async(async move {
            for i in 0..total {
                writer
                    .write(Bytes::from(vec![i as u8; CHUNK]))
                    .await
                    .unwrap();
                peak.fetch_max(writer.buffered_len(), Ordering::Relaxed);
            }
            writer.close();
        });
        // The sink reads one chunk at a time, only when asked: the producer must wait for it.
        let mut received = 0;
        while let Some(chunk) = rt.block_on(output.read()).unwrap() {
            assert_eq!(chunk.len(), CHUNK);
            assert!(output.buffered_len() <= BOUND);
            received += 1;
        }
        assert_eq!(received, total);
        rt.block_on(done).unwrap();
        rt.block_on(producer).unwrap();
        assert!(stages_peak.load(Ordering::Relaxed) <= BOUND);
    }
);

rt_test!(
    a_failing_stage_fails_the_pipeline_and_closes_the_source,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, mut writer) = pipe::pipe();
        let (output, sink) = pipe::pipe();
        let closed = writer.reader_closed();
        let mut seen = 0;
        let done = source
            | pipe::map(move |chunk: Bytes| {
                seen += 1;
                if seen == 3 {
                    Err(Failure::new("corrupt chunk"))
                } else {
                    Ok(chunk)
                }
            })
            | sink;
        let all = output.read_all();
        for _ in 0..3 {
            writer.write(Bytes::from_static(b"data"));
        }
        assert!(rt.block_on(done.clone()).is_err());
        assert_eq!(support::failure_message(&done), "corrupt chunk");
        rt.block_on(closed).unwrap();
        assert_eq!(
            pipe_error(&writer.write(Bytes::from_static(b"x"))),
            PipeError::ReaderClosed
        );
        assert!(rt.block_on(all.clone()).is_err());
        assert_eq!(support::failure_message(&all), "corrupt chunk");
    }
);

rt_test!(
    a_failing_source_fails_the_pipeline_with_its_failure,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, mut writer) = pipe::pipe();
        let (output, sink) = pipe::pipe();
        let done = source | pipe::map(|chunk: Bytes| Ok(chunk)) | sink;
        let all = output.read_all();
        writer.write(Bytes::from_static(b"half"));
        writer.fail("source lost");
        assert!(rt.block_on(done.clone()).is_err());
        assert_eq!(support::failure_message(&done), "source lost");
        assert!(rt.block_on(all.clone()).is_err());
        assert_eq!(support::failure_message(&all), "source lost");
    }
);

rt_test!(a_closed_sink_reader_stops_the_source, |flavor, rt| {
    let _entered = rt.enter();
    let (source, mut writer) = pipe::pipe_with_capacity(16);
    let (output, sink) = pipe::pipe_with_capacity(16);
    let closed = writer.reader_closed();
    let done = source | pipe::map(|chunk: Bytes| Ok(chunk)) | sink;
    writer.write(Bytes::from_static(b"first"));
    output.close();
    assert!(rt.block_on(done.clone()).is_err());
    assert_eq!(pipe_error(&done), PipeError::ReaderClosed);
    rt.block_on(closed).unwrap();
});

rt_test!(
    discarding_a_pipeline_mid_flow_closes_every_stage,
    |flavor, rt| {
        let _entered = rt.enter();
        let (source, mut writer) = pipe::pipe_with_capacity(64);
        let (mut output, sink) = pipe::pipe_with_capacity(64);
        let source_closed = writer.reader_closed();
        let done =
            source | pipe::map(|chunk: Bytes| Ok(chunk)) | pipe::map(|c: Bytes| Ok(c)) | sink;
        let producer = spawn_async(async move {
            let mut written = 0usize;
            loop {
                match writer.write(Bytes::from(vec![1; 32])).await {
                    Ok(()) => written += 1,
                    Err(error) => {
                        let failure = error.failure().expect("a failure").clone();
                        assert_eq!(failure.downcast_ref(), Some(&PipeError::ReaderClosed));
                        return written;
                    }
                }
            }
        });
        // Let data flow, then lose interest.
        for _ in 0..5 {
            assert!(rt.block_on(output.read()).unwrap().is_some());
        }
        done.discard();
        rt.block_on(source_closed).unwrap();
        let written = rt.block_on(producer).unwrap();
        assert!(written >= 5, "wrote {written}");
        loop {
            match rt.block_on(output.read()) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a discarded pipeline must not look like a complete stream"),
                Err(error) => {
                    assert_eq!(
                        error.failure().and_then(Failure::downcast_ref::<PipeError>),
                        Some(&PipeError::WriterDropped)
                    );
                    break;
                }
            }
        }
        if flavor.is_deterministic() || matches!(flavor, support::Flavor::Paused) {
            support::pause_and_settle(rt);
        }
    }
);

/// A process stage: numbers each chunk with the process's counter.
#[derive(Default)]
struct Numberer {
    next: u64,
}
impl Process for Numberer {}

rt_test!(a_process_can_be_a_stage, |flavor, rt| {
    let _entered = rt.enter();
    let numberer = rt.spawn(Numberer::default());
    let (source, writer) = pipe::pipe();
    let total = support::scaled(100);
    let fed = feed(
        writer,
        (0..total).map(|_| Bytes::from_static(b"x")).collect(),
    );
    let numbered: Reader<u64> = source
        | pipe::process(&numberer, |state: &mut Numberer, _chunk: Bytes| {
            state.next += 1;
            Ok(state.next)
        });
    let all = numbered.read_to_vec();
    rt.block_on(fed).unwrap();
    let expected: Vec<u64> = (1..=total as u64).collect();
    assert_eq!(rt.block_on(all).unwrap(), expected);
});

rt_test!(
    a_stage_whose_process_is_gone_fails_the_pipeline,
    |flavor, rt| {
        let _entered = rt.enter();
        let numberer = rt.spawn(Numberer::default());
        procession::terminate(&numberer);
        rt.block_on(procession::wait(&numberer)).unwrap();
        let (source, mut writer) = pipe::pipe();
        let numbered = source | pipe::process(&numberer, |_: &mut Numberer, _: Bytes| Ok(0u64));
        let all = numbered.read_to_vec();
        writer.write(Bytes::from_static(b"x"));
        assert!(rt.block_on(all).is_err());
    }
);

rt_test!(tokio_readers_and_writers_are_stages, |flavor, rt| {
    let _entered = rt.enter();
    let data: Vec<u8> = (0..support::scaled(300_000))
        .map(|i| (i % 251) as u8)
        .collect();
    let (output, sink) = pipe::pipe_with_capacity(10_000);
    // A `&'static [u8]` is an AsyncRead; a pipe Writer is an AsyncWrite.
    let source: &'static [u8] = Vec::leak(data.clone());
    let done = pipe::read_from(source) | pipe::write_into(sink);
    let all = output.read_all();
    rt.block_on(done).unwrap();
    assert_eq!(rt.block_on(all).unwrap(), data);
});

rt_test!(a_reader_is_an_async_read, |flavor, rt| {
    let _entered = rt.enter();
    let (reader, mut writer) = pipe::pipe();
    writer.write(Bytes::from_static(b"hello "));
    writer.write(Bytes::from_static(b"async read"));
    writer.close();
    let text = spawn_async(async move {
        let mut reader = reader;
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut text)
            .await
            .map(|_| text)
            .map_err(|e| e.to_string())
    });
    assert_eq!(rt.block_on(text).unwrap().unwrap(), "hello async read");
});

rt_test!(
    the_futures_adapters_forward_a_stream_into_a_sink,
    |flavor, rt| {
        let _entered = rt.enter();
        let (reader, mut writer) = pipe::stream::<u32>(3);
        let (output, sink) = pipe::stream::<u32>(3);
        let total = support::scaled(500) as u32;
        let forwarded = spawn_async(async move {
            let mut sink = sink;
            let mut items = reader;
            while let Some(item) = items.next().await {
                sink.send(item.unwrap() * 2).await.unwrap();
            }
            SinkExt::close(&mut sink).await.unwrap();
        });
        let producer = spawn_async(async move {
            for i in 0..total {
                writer.send(i).await.unwrap();
            }
            SinkExt::close(&mut writer).await.unwrap();
        });
        let all = output.read_to_vec();
        rt.block_on(producer).unwrap();
        rt.block_on(forwarded).unwrap();
        let expected: Vec<u32> = (0..total).map(|i| i * 2).collect();
        assert_eq!(rt.block_on(all).unwrap(), expected);
    }
);

#[test]
fn attaching_a_stage_without_a_runtime_panics_clearly() {
    let (source, _writer) = pipe::pipe();
    let message = support::panic_message_of(|| {
        let _ = source | pipe::map(|c: Bytes| Ok(c));
    })
    .expect("it panics");
    assert!(message.contains("pipe stage"), "{message}");
    drop(Runtime::new());
}
