//! Streaming with back-pressure (MESOS-3830): `source | gzip | file` pipelines where the source
//! is a file or a subprocess's stdout, the transform a gzip stage (flate2) and the sink a file
//! writer. Chunks move between stages without copies; every pipe is bounded, so a slow sink slows
//! the source, and the output shows the buffers staying within their bound; discarding the
//! pipeline's future mid-flow closes every stage and stops the subprocess. It prints MB/s
//! (MB = 10^6 bytes) and checks that each finished output decompresses to the input.
//!
//! Run it with `cargo run --example pipeline` (16 MiB of generated text; `-- 256` for 256 MiB),
//! or `cargo run --release --example pipeline` for rates that mean something. It works in a
//! fresh directory under the system's temp dir and removes it at the end.

use std::fs::File;
use std::future::{poll_fn, Future as _, IntoFuture};
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use futures_core::Stream;
use procession::pipe::{self, Reader, Writer};
use procession::subprocess::{subprocess, Io};
use procession::{after, run_blocking, spawn_async, Error, Future, Runtime};

/// The bound of the pipe between the compressor and the sink (the source's pipe has the same).
const BOUND: usize = pipe::DEFAULT_CAPACITY;

const MIB: usize = 1024 * 1024;

/// What the stages report while data flows; each field is written by one stage.
#[derive(Default)]
struct Meter {
    /// Input bytes the compressor has taken from the source.
    read: AtomicU64,
    /// Compressed bytes the sink has written.
    written: AtomicU64,
    /// The most bytes seen waiting in the source's pipe, and in the compressed pipe.
    source_buffered: AtomicUsize,
    sink_buffered: AtomicUsize,
    /// The largest compressed chunk: a pipe may hold one chunk beyond its bound.
    largest_chunk: AtomicUsize,
    /// How the compressor's task ended.
    compressor: Mutex<Option<Future<&'static str>>>,
    samples: Mutex<Vec<Sample>>,
}

/// The flow at the moment the sink wrote a chunk.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    read: u64,
    written: u64,
    buffered: usize,
}

/// The gzip stage: a stage is any function from the reader so far to the next reader. Each input
/// chunk is compressed straight from the buffer the source read into.
fn gzip(meter: Arc<Meter>) -> impl FnOnce(Reader<Bytes>) -> Reader<Bytes> {
    move |input| {
        let (output, writer) = pipe::pipe_with_capacity(BOUND);
        let ended = spawn_async(compress(input, writer, meter.clone()));
        *meter.compressor.lock().unwrap() = Some(ended);
        output
    }
}

/// The gzip stage's task; answers with how it ended.
async fn compress(
    mut input: Reader<Bytes>,
    mut output: Writer<Bytes>,
    meter: Arc<Meter>,
) -> &'static str {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    // Watched while waiting for input too, so a closed sink reaches an idle source at once.
    let mut closed = pin!(output.reader_closed().into_future());
    loop {
        meter
            .source_buffered
            .fetch_max(input.buffered_len(), Relaxed);
        let next = poll_fn(|cx| match Pin::new(&mut input).poll_next(cx) {
            Poll::Ready(next) => Poll::Ready(Some(next)),
            Poll::Pending => closed.as_mut().poll(cx).map(|_| None),
        })
        .await;
        let (compressed, last) = match next {
            // Returning drops `input`, which closes the source's pipe: the close flows upstream.
            None => return "stopped: its reader closed",
            Some(Some(Err(failure))) => {
                output.fail(failure);
                return "failed with its source";
            }
            Some(Some(Ok(chunk))) => {
                meter.read.fetch_add(chunk.len() as u64, Relaxed);
                gzip.write_all(&chunk).expect("compressing into memory");
                (std::mem::take(gzip.get_mut()), false)
            }
            Some(None) => {
                gzip.try_finish().expect("compressing into memory");
                (std::mem::take(gzip.get_mut()), true)
            }
        };
        // Deflate keeps input back until it has a block, so many chunks compress to nothing yet.
        if !compressed.is_empty() {
            meter.largest_chunk.fetch_max(compressed.len(), Relaxed);
            if output.write(Bytes::from(compressed)).await.is_err() {
                return "stopped: its reader closed";
            }
        }
        if last {
            output.close();
            return "finished";
        }
    }
}

/// The sink: writes each chunk to `file` with `std::fs` on the blocking pool, paced to at most
/// `rate` bytes a second when given (a stand-in for a slow disk or link).
fn file_writer(
    file: File,
    rate: Option<f64>,
    meter: Arc<Meter>,
    started: Instant,
) -> impl FnOnce(Reader<Bytes>) -> Future<()> {
    move |mut input| {
        let file = Arc::new(file);
        let writing = spawn_async(async move {
            let fail = |error: Error| error.to_string();
            let mut written = 0u64;
            loop {
                let buffered = input.buffered_len();
                meter.sink_buffered.fetch_max(buffered, Relaxed);
                let Some(chunk) = input.read().await.map_err(fail)? else {
                    return Ok(());
                };
                let length = chunk.len() as u64;
                let file = file.clone();
                let write =
                    run_blocking(move || (&*file).write_all(&chunk).map_err(|e| e.to_string()));
                write.await.map_err(fail)??;
                written += length;
                meter.written.store(written, Relaxed);
                let at = started.elapsed();
                meter.samples.lock().unwrap().push(Sample {
                    at,
                    read: meter.read.load(Relaxed),
                    written,
                    buffered,
                });
                if let Some(rate) = rate {
                    let due = Duration::from_secs_f64(written as f64 / rate);
                    if due > at {
                        after(due - at).await.map_err(fail)?;
                    }
                }
            }
        });
        // Discarding the pipeline's future discards this task, whose reader then closes.
        writing.then(|written: &Result<(), String>| match written {
            Ok(()) => Future::ready(()),
            Err(error) => Future::failed(error.clone()),
        })
    }
}

/// Where a run's data comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The file, read through tokio.
    File(&'a Path),
    /// The stdout of `cat` reading the file.
    Cat(&'a Path),
}

/// `cat`'s exit status, when it came, and how much the sink had written by then.
#[derive(Clone, Copy)]
struct CatEnd {
    status: ExitStatus,
    at: Duration,
    written: u64,
}

/// What one run did.
struct Report {
    outcome: Result<(), Error>,
    elapsed: Duration,
    read: u64,
    written: u64,
    source_buffered: usize,
    sink_buffered: usize,
    largest_chunk: usize,
    compressor: &'static str,
    /// How `cat` ended, for a subprocess source.
    cat: Option<CatEnd>,
    samples: Vec<Sample>,
}

impl Report {
    fn mb_per_s(&self, bytes: u64) -> f64 {
        bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// Runs `source | gzip | file_writer(output)`; with `stop_after`, discards the pipeline's future
/// once the sink has written that many bytes.
fn run(
    runtime: &Runtime,
    source: Source<'_>,
    output: &Path,
    rate: Option<f64>,
    stop_after: Option<u64>,
) -> io::Result<Report> {
    let meter = Arc::new(Meter::default());
    let started = Instant::now();
    let (input, cat) = match source {
        Source::File(path) => {
            let file = tokio::fs::File::from_std(File::open(path)?);
            (pipe::read_from(file), None)
        }
        Source::Cat(path) => {
            let mut child = subprocess("cat")
                .arg(path)
                .stdout(Io::Pipe)
                .spawn()
                .map_err(io::Error::other)?;
            let stdout = child.stdout.take().expect("stdout is a pipe");
            let sink = meter.clone();
            let exited = child.status().map(move |status| CatEnd {
                status: *status,
                at: started.elapsed(),
                written: sink.written.load(Relaxed),
            });
            (stdout, Some(exited))
        }
    };
    let sink = file_writer(File::create(output)?, rate, meter.clone(), started);
    let done = input | gzip(meter.clone()) | sink;
    if let Some(limit) = stop_after {
        while done.is_pending() && meter.written.load(Relaxed) < limit {
            std::thread::sleep(Duration::from_millis(1));
        }
        done.discard();
    }
    let outcome = runtime.block_on(done);
    let elapsed = started.elapsed();
    let compressor = meter.compressor.lock().unwrap().take();
    let compressor = runtime.block_on(compressor.expect("the pipeline attached the compressor"));
    let cat = match cat {
        Some(exited) => Some(runtime.block_on(exited).map_err(io::Error::other)?),
        None => None,
    };
    let samples = meter.samples.lock().unwrap().clone();
    Ok(Report {
        outcome,
        elapsed,
        read: meter.read.load(Relaxed),
        written: meter.written.load(Relaxed),
        source_buffered: meter.source_buffered.load(Relaxed),
        sink_buffered: meter.sink_buffered.load(Relaxed),
        largest_chunk: meter.largest_chunk.load(Relaxed),
        compressor: compressor.map_err(io::Error::other)?,
        cat,
        samples,
    })
}

/// `bytes` of generated log lines: varied enough that gzip has work, regular enough to compress.
fn generate(bytes: usize) -> Vec<u8> {
    const VERBS: [&str; 6] = ["launched", "finished", "killed", "lost", "queued", "failed"];
    let mut text = Vec::with_capacity(bytes + 128);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for line in 0u64.. {
        if text.len() >= bytes {
            break;
        }
        // xorshift64: a fixed sequence, so every run compresses the same text.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let verb = VERBS[(state % 6) as usize];
        let (agent, task, ms) = (state >> 8 & 63, state >> 16 & 0xfffff, state >> 40 & 0xfff);
        writeln!(
            text,
            "{line:09} agent-{agent:02} task {task:05x} {verb} in {ms} ms"
        )
        .unwrap();
    }
    text.truncate(bytes);
    text
}

/// Whether `output` is a gzip stream of exactly `input`.
fn decompresses_to(output: &Path, input: &[u8]) -> io::Result<bool> {
    let mut decompressed = Vec::with_capacity(input.len());
    GzDecoder::new(File::open(output)?).read_to_end(&mut decompressed)?;
    Ok(decompressed == input)
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> io::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("procession-{label}-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir(&dir)?;
        Ok(Scratch(dir))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> io::Result<()> {
    let mib: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| io::Error::other("usage: pipeline [MiB]"))?,
        None => 16,
    };
    let scratch = Scratch::new("pipeline")?;
    let input_path = scratch.path("input.log");
    let data = generate(mib * MIB);
    std::fs::write(&input_path, &data)?;
    println!("{mib} MiB of generated log text in {}", scratch.0.display());

    let runtime = Runtime::builder()
        .name("pipeline")
        .build()
        .expect("runtime");
    let _entered = runtime.enter();

    println!("1. file | gzip | file, at full speed");
    let output = scratch.path("full.gz");
    let full = run(&runtime, Source::File(&input_path), &output, None, None)?;
    print_rates(&full);
    print_bounds(&full);
    println!(
        "   decompresses to the input: {}",
        decompresses_to(&output, &data)?
    );

    let rate = full.written as f64 / full.elapsed.as_secs_f64() / 2.0;
    println!(
        "2. cat | gzip | file, the sink held to {:.2} MB/s (half of run 1's output rate)",
        rate / 1e6
    );
    let output = scratch.path("slow.gz");
    let slow = run(
        &runtime,
        Source::Cat(&input_path),
        &output,
        Some(rate),
        None,
    )?;
    println!(
        "   {:>7}  {:>13}  {:>12}  {:>15}",
        "time", "read from cat", "written", "compressed pipe"
    );
    let step = (slow.samples.len() / 6).max(1);
    for sample in slow.samples.iter().step_by(step) {
        println!(
            "   {:>5.2} s  {:>9.1} MiB  {:>8.2} MiB  {:>11} KiB",
            sample.at.as_secs_f64(),
            sample.read as f64 / MIB as f64,
            sample.written as f64 / MIB as f64,
            sample.buffered / 1024
        );
    }
    print_rates(&slow);
    if let Some(cat) = slow.cat {
        println!(
            "   cat ended ({}) at {:.2} s of {:.2} s, when the sink had written {:.2} of {:.2} MiB: the slow sink held it to {:.1} MB/s against {:.1} MB/s at full speed",
            cat.status,
            cat.at.as_secs_f64(),
            slow.elapsed.as_secs_f64(),
            cat.written as f64 / MIB as f64,
            slow.written as f64 / MIB as f64,
            slow.mb_per_s(slow.read),
            full.mb_per_s(full.read),
        );
    }
    print_bounds(&slow);
    println!(
        "   decompresses to the input: {}",
        decompresses_to(&output, &data)?
    );

    let limit = MIB as u64 / 2;
    println!("3. cat | gzip | file as in 2, its future discarded once the sink wrote 0.5 MiB");
    let stopped = run(
        &runtime,
        Source::Cat(&input_path),
        &scratch.path("stopped.gz"),
        Some(rate),
        Some(limit),
    )?;
    println!("   the pipeline's future: {}", show(&stopped.outcome));
    println!("   the gzip stage: {}", stopped.compressor);
    if let Some(cat) = stopped.cat {
        let how = match cat.status.signal() {
            Some(13) => "killed by SIGPIPE: its stdout's reader closed".to_owned(),
            _ => cat.status.to_string(),
        };
        println!(
            "   cat: {how}, after the pipeline read {:.1} of {mib} MiB",
            stopped.read as f64 / MIB as f64
        );
    }

    drop(_entered);
    let report = runtime.shutdown();
    println!(
        "runtime shut down {}",
        if report.is_complete() {
            "cleanly"
        } else {
            "with work abandoned"
        }
    );
    Ok(())
}

fn print_rates(report: &Report) {
    println!(
        "   {:.1} MiB in, {:.1} MiB out ({:.0}%), in {:.2} s: {:.1} MB/s in, {:.1} MB/s out",
        report.read as f64 / MIB as f64,
        report.written as f64 / MIB as f64,
        100.0 * report.written as f64 / report.read.max(1) as f64,
        report.elapsed.as_secs_f64(),
        report.mb_per_s(report.read),
        report.mb_per_s(report.written),
    );
}

fn print_bounds(report: &Report) {
    println!(
        "   most waiting: {} KiB in the source's pipe, {} KiB in the compressed pipe (each bounded at {} KiB, plus one chunk: 64 KiB from the source, {} KiB at most compressed)",
        report.source_buffered / 1024,
        report.sink_buffered / 1024,
        BOUND / 1024,
        report.largest_chunk.div_ceil(1024),
    );
}

fn show(outcome: &Result<(), Error>) -> String {
    match outcome {
        Ok(()) => "finished".to_owned(),
        Err(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source's chunks are at most 64 KiB (`read_from`), the compressed ones as measured.
    fn assert_bounded(report: &Report) {
        let source = report.source_buffered;
        assert!(source <= BOUND + 64 * 1024, "{source}");
        let compressed = report.sink_buffered;
        assert!(compressed <= BOUND + report.largest_chunk, "{compressed}");
    }

    /// A scratch directory with `mib` MiB of input, and the input.
    fn input(mib: usize) -> (Scratch, PathBuf, Vec<u8>) {
        let scratch = Scratch::new("pipeline-test").unwrap();
        let path = scratch.path("input");
        let data = generate(mib * MIB);
        std::fs::write(&path, &data).unwrap();
        (scratch, path, data)
    }

    #[test]
    fn a_file_streams_through_gzip_into_a_file_that_decompresses_to_it() {
        let (scratch, input, data) = input(2);
        let runtime = Runtime::new();
        let _entered = runtime.enter();
        let output = scratch.path("file.gz");
        let full = run(&runtime, Source::File(&input), &output, None, None).unwrap();
        full.outcome.as_ref().unwrap();
        assert_eq!(
            (full.read, full.compressor),
            (data.len() as u64, "finished")
        );
        assert!(decompresses_to(&output, &data).unwrap());
        assert_bounded(&full);
    }

    #[test]
    fn cat_cannot_get_ahead_of_the_sink_by_more_than_the_buffers() {
        let (scratch, input, data) = input(16);
        let runtime = Runtime::new();
        let _entered = runtime.enter();
        let output = scratch.path("cat.gz");
        let paced = run(&runtime, Source::Cat(&input), &output, Some(8e6), None).unwrap();
        paced.outcome.as_ref().unwrap();
        assert!(decompresses_to(&output, &data).unwrap());
        assert_bounded(&paced);
        let cat = paced.cat.unwrap();
        assert!(cat.status.success());
        // Without back-pressure cat would be done before the sink wrote anything; with it, cat
        // ends only once all but the bounded buffers' worth (well under half) has been written.
        assert!(
            cat.written > paced.written / 2,
            "{} of {}",
            cat.written,
            paced.written
        );
    }

    #[test]
    fn discarding_the_future_mid_flow_closes_every_stage_and_stops_cat() {
        // Far more than every buffer on the way holds, so cat is still writing when stopped.
        let (scratch, input, data) = input(16);
        let runtime = Runtime::new();
        let _entered = runtime.enter();
        let output = scratch.path("stopped.gz");
        let stopped = run(
            &runtime,
            Source::Cat(&input),
            &output,
            Some(1e6),
            Some(64 * 1024),
        );
        let stopped = stopped.unwrap();
        assert!(stopped.outcome.as_ref().unwrap_err().is_discarded());
        assert_eq!(stopped.compressor, "stopped: its reader closed");
        let status = stopped.cat.unwrap().status;
        assert!(!status.success(), "{status}");
        assert!(stopped.read < data.len() as u64);
        assert_bounded(&stopped);
    }
}
