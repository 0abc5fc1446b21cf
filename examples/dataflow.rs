//! Cooperative, pinned stream processing: a job of `source → map → keyed window count → sink`,
//! run as two parallel pipelines, once with each pipeline's processes pinned to one worker
//! (pipeline `i` on worker `i`, thread-per-core style) and once unpinned (any worker may run any
//! process). Both runs must produce the same window counts; the example prints them and the
//! events per second of each, on an even load and on a skewed one (90 % of the records in one
//! pipeline), where work stealing has the edge.
//!
//! Run it with `cargo run --release --example dataflow -- [events] [rounds]` (default 200 000
//! events, 3 rounds; figures are medians over the rounds, pinned and unpinned alternating).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use procession::{
    budget_spent, cast, terminate, wait, Future, Pid, Process, Promise, Runtime, SpawnOptions,
};

/// The number of parallel pipelines, and of workers.
pub const PIPELINES: usize = 2;

/// Counts per `(window, key)`: the job's result.
pub type Counts = BTreeMap<(u64, u32), u64>;

/// What to compute: record `n` (for `n` in `0..events`) has event time `n` and a raw value
/// derived from `n`; it belongs to pipeline 0 if `n % 100 < share`, else to pipeline 1.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    /// Records in the stream.
    pub events: u64,
    /// Distinct keys that map derives from the records.
    pub keys: u32,
    /// Length of a tumbling window, in event time.
    pub window: u64,
    /// Percent of the records that pipeline 0 gets (50: an even load).
    pub share: u64,
    /// Rounds of mixing per record in the map stage (its CPU cost).
    pub work: u32,
}

impl Job {
    /// The short default job, with `share` percent of the records in pipeline 0.
    pub fn new(events: u64, share: u64) -> Self {
        Job {
            events,
            keys: 64,
            window: 1_000,
            share,
            work: 32,
        }
    }

    /// The records of pipeline `pipeline` within a block of 100: `lo..hi`.
    fn slice(&self, pipeline: usize) -> (u64, u64) {
        match pipeline {
            0 => (0, self.share),
            _ => (self.share, 100),
        }
    }
}

/// A stream record: an event time and a raw value.
#[derive(Clone, Copy)]
struct Record {
    time: u64,
    raw: u64,
}

/// SplitMix64's finalizer: a cheap, well-spread function of `x`.
fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Record `n` of the stream.
fn record(n: u64) -> Record {
    Record {
        time: n,
        raw: mix(n),
    }
}

/// What map computes from a record: its key (after `work` rounds of mixing).
fn key_of(raw: u64, job: &Job) -> u32 {
    let mut x = raw;
    for _ in 0..job.work {
        x = mix(x);
    }
    (x % u64::from(job.keys)) as u32
}

/// Generates its pipeline's records in event-time order, a budget's worth per visit.
struct Source {
    job: Job,
    lo: u64,
    hi: u64,
    /// The next record to emit.
    next: u64,
    map: Pid<Map>,
}

impl Process for Source {}

impl Source {
    fn new(job: Job, pipeline: usize, map: Pid<Map>) -> Self {
        let (lo, hi) = job.slice(pipeline);
        let mut source = Source {
            job,
            lo,
            hi,
            next: 0,
            map,
        };
        source.next = source.seek(0);
        source
    }

    /// The first record at or after `n` in this pipeline's slice (`events` when it is empty).
    fn seek(&self, n: u64) -> u64 {
        let at = n % 100;
        if self.lo == self.hi {
            self.job.events
        } else if at < self.lo {
            n + self.lo - at
        } else if at >= self.hi {
            n - at + 100 + self.lo
        } else {
            n
        }
    }

    /// Emits records until the visit's budget is spent, then continues in a later event, so
    /// the other stages pinned to this worker run in between (they could not run elsewhere).
    fn emit(&mut self, me: Pid<Source>) {
        while self.next < self.job.events {
            let record = record(self.next);
            cast(&self.map, move |m: &mut Map| m.record(record));
            self.next = self.seek(self.next + 1);
            if budget_spent() {
                cast(&me.clone(), move |s: &mut Source| s.emit(me));
                return;
            }
        }
        cast(&self.map, Map::end);
    }
}

/// Keys each record.
struct Map {
    job: Job,
    window: Pid<Window>,
}

impl Process for Map {}

impl Map {
    fn record(&mut self, record: Record) {
        let key = key_of(record.raw, &self.job);
        cast(&self.window, move |w: &mut Window| {
            w.record(record.time, key)
        });
    }

    fn end(&mut self) {
        cast(&self.window, Window::end);
    }
}

/// Counts records per key in tumbling windows; sends each window to the sink when it closes.
struct Window {
    length: u64,
    current: u64,
    counts: HashMap<u32, u64>,
    sink: Pid<Sink>,
}

impl Process for Window {}

impl Window {
    fn record(&mut self, time: u64, key: u32) {
        let window = time / self.length;
        if window != self.current {
            self.close();
            self.current = window;
        }
        *self.counts.entry(key).or_default() += 1;
    }

    fn close(&mut self) {
        if self.counts.is_empty() {
            return;
        }
        let window = self.current;
        let counts: Vec<(u32, u64)> = self.counts.drain().collect();
        cast(&self.sink, move |s: &mut Sink| s.window(window, counts));
    }

    fn end(&mut self) {
        self.close();
        cast(&self.sink, Sink::end);
    }
}

/// Collects the closed windows; completes `done` at the end of the stream.
struct Sink {
    counts: Counts,
    done: Option<Promise<Counts>>,
}

impl Process for Sink {}

impl Sink {
    fn window(&mut self, window: u64, counts: Vec<(u32, u64)>) {
        for (key, count) in counts {
            *self.counts.entry((window, key)).or_default() += count;
        }
    }

    fn end(&mut self) {
        if let Some(done) = self.done.take() {
            done.set(std::mem::take(&mut self.counts));
        }
    }
}

/// One run of `job` on `runtime`'s workers: the merged counts and the time it took.
///
/// # Panics
///
/// Panics if a pipeline fails to complete (a stage panicked: its sink's future is abandoned).
pub fn run(runtime: &Runtime, job: Job, pinned: bool) -> (Counts, Duration) {
    let options = |pipeline: usize| match pinned {
        true => SpawnOptions::new().pin(pipeline),
        false => SpawnOptions::new(),
    };
    let spawn = |pipeline| {
        let done = Promise::new();
        let result = done.future();
        let sink = Sink {
            counts: Counts::new(),
            done: Some(done),
        };
        let sink = runtime.spawn_with(sink, options(pipeline)).unwrap();
        let window = Window {
            length: job.window,
            current: 0,
            counts: HashMap::new(),
            sink: sink.clone(),
        };
        let window = runtime.spawn_with(window, options(pipeline)).unwrap();
        let map = Map {
            job,
            window: window.clone(),
        };
        let map = runtime.spawn_with(map, options(pipeline)).unwrap();
        let source = Source::new(job, pipeline, map.clone());
        let source = runtime.spawn_with(source, options(pipeline)).unwrap();
        (source, [map.upid(), window.upid(), sink.upid()], result)
    };
    // Empty slices (a share of 0 or 100) still run, and end at once.
    let pipelines: Vec<_> = (0..PIPELINES).map(spawn).collect();
    let _entered = runtime.enter();
    let started = Instant::now();
    for (source, _, _) in &pipelines {
        let me = source.clone();
        cast(source, move |s: &mut Source| s.emit(me));
    }
    let results: Vec<Future<Counts>> = pipelines.iter().map(|(_, _, r)| r.clone()).collect();
    let mut counts = Counts::new();
    for result in results {
        for (cell, count) in runtime.block_on(result).expect("a pipeline completes") {
            *counts.entry(cell).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    for (source, stages, _) in pipelines {
        // Ask for the ends before terminating: an ended process's id is free, `wait` fails.
        let ended: Vec<Future<()>> = std::iter::once(wait(&source))
            .chain(stages.iter().map(wait))
            .collect();
        terminate(&source);
        stages.iter().for_each(terminate);
        for end in ended {
            runtime.block_on(end).expect("a stage ends");
        }
    }
    (counts, elapsed)
}

/// The counts computed directly, one record after the other, to check the job against.
pub fn expected(job: &Job) -> Counts {
    let mut counts = Counts::new();
    for n in 0..job.events {
        let record = record(n);
        let key = key_of(record.raw, job);
        *counts.entry((record.time / job.window, key)).or_default() += 1;
    }
    counts
}

/// Pinned and unpinned events/s (medians over `rounds`, the two alternating within a round)
/// and the counts, checked to be the same in every run.
///
/// # Panics
///
/// Panics if two runs disagree on the counts.
pub fn compare(job: Job, rounds: usize) -> (f64, f64, Counts) {
    let runtime = Runtime::builder().workers(PIPELINES).build().unwrap();
    let mut rates = [Vec::new(), Vec::new()];
    let mut first: Option<Counts> = None;
    for round in 0..rounds {
        for i in 0..2 {
            // Alternate which mode goes first, so neither always runs on a warmer machine.
            let pinned = (round + i) % 2 == 0;
            let (counts, elapsed) = run(&runtime, job, pinned);
            match &first {
                Some(first) => assert!(*first == counts, "two runs disagree on the counts"),
                None => first = Some(counts),
            }
            rates[usize::from(!pinned)].push(job.events as f64 / elapsed.as_secs_f64());
        }
    }
    runtime.shutdown();
    let [pinned, unpinned] = rates.map(|mut r| {
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    });
    (pinned, unpinned, first.unwrap_or_default())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events = args.next().map_or(200_000, |a| a.parse().expect("events"));
    let rounds = args.next().map_or(3, |a| a.parse().expect("rounds"));
    println!(
        "dataflow: {PIPELINES} pipelines of source → map → window count → sink, {events} events, \
         medians of {rounds} rounds"
    );
    for (label, share) in [("even load (50/50)", 50), ("skewed load (90/10)", 90)] {
        let job = Job::new(events, share);
        let (pinned, unpinned, counts) = compare(job, rounds);
        assert!(counts == expected(&job), "the job miscounted");
        let total: u64 = counts.values().sum();
        println!(
            "{label:<20} pinned {:>6.2} M events/s   unpinned {:>6.2} M events/s   \
             pinned ÷ unpinned {:.2}   ({} (window, key) counts, {total} records, identical in \
             every run and checked)",
            pinned / 1e6,
            unpinned / 1e6,
            pinned / unpinned,
            counts.len(),
        );
    }
    let job = Job::new(events, 50);
    let counts = expected(&job);
    let first: Vec<String> = counts
        .range((0, 0)..(1, 0))
        .take(8)
        .map(|((_, key), count)| format!("key {key}: {count}"))
        .collect();
    println!("window 0, first keys: {}", first.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_and_unpinned_runs_count_exactly() {
        let runtime = Runtime::builder().workers(PIPELINES).build().unwrap();
        for share in [50, 90, 100] {
            let job = Job::new(20_000, share);
            let want = expected(&job);
            assert_eq!(want.values().sum::<u64>(), 20_000);
            for pinned in [true, false] {
                let (counts, _) = run(&runtime, job, pinned);
                assert!(
                    counts == want,
                    "share {share}, pinned {pinned}: counts differ"
                );
            }
        }
        runtime.shutdown();
    }
}
