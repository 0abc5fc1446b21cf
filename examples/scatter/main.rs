//! Scatter/gather with answers that stream, cancel and survive a lost worker: statistics (a
//! byte histogram) over a byte range of a file, split into chunks by a ventilator process,
//! computed by worker processes — two here and two in a second OS process, reached over TCP —
//! and aggregated by a sink that caches every chunk by (input, range).
//!
//! Run it with `cargo run --example scatter` (two generated 8 MiB files in a temp directory;
//! `cargo run --example scatter -- 64` for 64 MiB each). It shows, on real files and with
//! measured times:
//!
//! 1. a cold request answered once, complete, by all four workers;
//! 2. an overlapping request answered twice: at once from the cache, then complete;
//! 3. a client that discards its request after the quick first answer, and how many chunks
//!    were never computed because of it (stopped mid-way, skipped in a queue, never issued);
//! 4. the worker node killed with SIGKILL: its chunks issued again to the local workers after
//!    the timeout, and the answer still exact.
//!
//! Every complete answer is checked against a direct scan of the range; any difference (or a
//! hang) makes it exit non-zero. The tests (`cargo test -p procession --example scatter`) run
//! the same processes on a paused clock: a cancel mid-way, a killed worker, a worker that
//! never answers, a late duplicate, and overlapping requests, all with exact counts.

mod protocol;
mod sink;
mod ventilator;
mod worker;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write as _};
use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use procession::pipe::Reader;
use procession::subprocess::subprocess;
use procession::{Runtime, Upid};
use procession_cluster::node::{bounded, serve_until_stdin_closes, ChildNode};
use procession_net::Net;

use protocol::{Answer, Stats};
use ventilator::{Config, Scatter, Tally};
use worker::{Worker, WorkerConfig};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

const CONFIG: Config = Config {
    chunk: 512 * KIB,
    per_worker: 2,
    timeout: Duration::from_millis(500),
};

const WORKER: WorkerConfig = WorkerConfig {
    block: 64 * KIB,
    pace: Duration::ZERO,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => serve_workers(),
        None => demo(8),
        Some(mib) => match mib.parse::<u64>() {
            Ok(mib) if mib > 0 => demo(mib),
            _ => Err("usage: scatter [SIZE_MIB] | scatter worker".into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scatter: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The second OS process: two workers on a node of their own, until the parent closes stdin.
fn serve_workers() -> Result {
    let runtime = Runtime::new();
    let _net = Net::start(&runtime)?;
    let first = runtime.spawn_named("remote-0", Worker::new(WORKER))?;
    runtime.spawn_named("remote-1", Worker::new(WORKER))?;
    // The parent reads one Upid and finds the other worker by its name at the same address.
    Ok(serve_until_stdin_closes(&first.upid())?)
}

fn demo(mib: u64) -> Result {
    let dir = std::env::temp_dir().join(format!("procession-scatter-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let size = mib * MIB;
    let (a, b) = (dir.join("a.bin"), dir.join("b.bin"));
    generate(&a, size, 1)?;
    generate(&b, size, 2)?;
    println!(
        "inputs   a.bin and b.bin, {mib} MiB each, in {}; chunks of {} KiB",
        dir.display(),
        CONFIG.chunk / KIB
    );
    let outcome = run(&a, &b, size);
    let _ = fs::remove_dir_all(&dir);
    outcome
}

fn run(a: &Path, b: &Path, size: u64) -> Result {
    let runtime = Runtime::builder().name("scatter").build()?;
    let _net = Net::start(&runtime)?;
    let _entered = runtime.enter();
    let command = subprocess(std::env::current_exe()?).arg("worker");
    let remote = ChildNode::start(command, Duration::from_secs(60))?;
    let mut workers = Vec::new();
    for i in 0..2 {
        workers.push(
            runtime
                .spawn_named(&format!("local-{i}"), Worker::new(WORKER))?
                .upid(),
        );
    }
    workers.push(remote.upid.clone());
    workers.push(Upid::new("remote-1", remote.upid.address()));
    println!(
        "workers  local-0, local-1 here (pid {}); remote-0, remote-1 in pid {} at {}",
        std::process::id(),
        remote.child.id(),
        remote.upid.address()
    );
    let scatter = Scatter::start(&workers, CONFIG);
    let outcome = story(&scatter, a, b, size, &remote);
    remote.stop(Duration::from_secs(10));
    drop(_entered);
    let report = runtime.shutdown();
    if !report.is_complete() {
        return Err("the runtime's shutdown left processes behind".into());
    }
    outcome
}

fn story(scatter: &Scatter, a: &Path, b: &Path, size: u64, remote: &ChildNode) -> Result {
    let chunks = size.div_ceil(CONFIG.chunk);

    println!(
        "\n1. a.bin bytes 0..{} MiB, nothing cached yet",
        size * 3 / 4 / MIB
    );
    bounded(scatter.tally(), "the tally")?;
    all_answers(scatter, a, 0..size * 3 / 4)?;
    let tally = bounded(scatter.tally(), "the tally")?;
    println!("   chunks computed by {}", by_worker(&tally));

    println!(
        "\n2. a.bin bytes {}..{} MiB, overlapping 1.",
        size / 4 / MIB,
        size / MIB
    );
    all_answers(scatter, a, size / 4..size)?;
    let tally = bounded(scatter.tally(), "the tally")?;
    println!(
        "   {} chunks from the cache, {} computed",
        tally.cached, tally.computed
    );

    println!("\n3. b.bin bytes 0..{} KiB", CONFIG.chunk / KIB);
    all_answers(scatter, b, 0..CONFIG.chunk)?;
    println!("   then b.bin whole, which the client discards after the quick first answer");
    bounded(scatter.tally(), "the tally")?;
    let started = Instant::now();
    let mut answers = scatter.ask(&b.to_string_lossy(), 0..size);
    let first = bounded(answers.read(), "the first answer")?.ok_or("no first answer")?;
    show(1, &first, started);
    answers.close();
    bounded(scatter.quiet(), "the workers to stop")?;
    let tally = bounded(scatter.tally(), "the tally")?;
    println!(
        "   of {} chunks to compute: {} computed before the cancel reached them; never \
         computed: {} ({} stopped mid-way, {} skipped in a worker's queue, {} never issued)",
        chunks - 1,
        tally.computed,
        tally.never_computed(),
        tally.stopped,
        tally.skipped,
        tally.never_issued
    );

    println!(
        "\n4. the worker node (pid {}) is killed with SIGKILL; b.bin whole again",
        remote.child.id()
    );
    remote.child.kill();
    bounded(remote.child.status(), "the worker node to die")?;
    all_answers(scatter, b, 0..size)?;
    let tally = bounded(scatter.tally(), "the tally")?;
    println!(
        "   {} chunks issued again after the {} ms timeout; {} computed, {} computed twice",
        tally.reissued,
        CONFIG.timeout.as_millis(),
        tally.computed,
        tally.duplicates
    );
    println!("   chunks computed by {}", by_worker(&tally));
    Ok(())
}

fn by_worker(tally: &Tally) -> String {
    let by: Vec<String> = tally
        .computed_by
        .iter()
        .map(|(worker, n)| format!("{worker} {n}"))
        .collect();
    by.join(", ")
}

/// Asks for `range` of `input`, prints every answer as it comes, and checks the last one
/// against a direct scan.
fn all_answers(scatter: &Scatter, input: &Path, range: Range<u64>) -> Result<Vec<Answer>> {
    let started = Instant::now();
    let mut answers = scatter.ask(&input.to_string_lossy(), range.clone());
    let all = read_all(&mut answers, started)?;
    let last = all.last().ok_or("no answer")?;
    if !last.is_complete() || last.stats != Stats::of_file(input, range.start, range.end)? {
        return Err("the last answer differs from a direct scan of the range".into());
    }
    println!("   the last answer equals a direct scan of the range");
    Ok(all)
}

fn read_all(answers: &mut Reader<Answer>, started: Instant) -> Result<Vec<Answer>> {
    let mut all = Vec::new();
    while let Some(answer) = bounded(answers.read(), "an answer")? {
        show(all.len() + 1, &answer, started);
        all.push(answer);
    }
    Ok(all)
}

fn show(n: usize, answer: &Answer, started: Instant) {
    let stats = &answer.stats;
    println!(
        "   answer {n}: {:>2}/{} chunks after {:>6.1} ms: {:.2} MiB, mean {:.2}, most common byte \
         {:#04x}, entropy {:.3} bits/byte",
        answer.chunks,
        answer.of,
        started.elapsed().as_secs_f64() * 1000.0,
        stats.bytes() as f64 / MIB as f64,
        stats.mean(),
        stats.mode(),
        stats.entropy()
    );
}

/// Writes `size` pseudo-random bytes (the same for the same seed) to `path`.
pub fn generate(path: &Path, size: u64, seed: u64) -> io::Result<()> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = BufWriter::new(File::create(path)?);
    let mut block = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = block.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        for byte in &mut block[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The product of two uniform bytes: skewed towards small values, so the
            // statistics have something to say.
            *byte = (((state & 0xff) * ((state >> 8) & 0xff)) >> 8) as u8;
        }
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()
}
