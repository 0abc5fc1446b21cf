//! The scatter processes on a paused clock, all workers local: every count is exact because
//! each chunk takes a known time (4 blocks of 1 KiB, 10 ms of runtime clock each) and the test
//! moves the clock a millisecond at a time, settling the runtime at each step.

use std::path::PathBuf;
use std::time::Duration;

use procession::{delay, send, terminate, Context, Pid, Process, Runtime, Upid};

use super::*;
use crate::protocol::{Chunk, Done, Work};
use crate::ventilator::split;

const CHUNK: u64 = 4 * KIB;

const TEST_CONFIG: Config = Config {
    chunk: CHUNK,
    per_worker: 2,
    timeout: Duration::from_millis(100),
};

/// 40 ms of runtime clock per chunk.
const PACED: WorkerConfig = WorkerConfig {
    block: KIB,
    pace: Duration::from_millis(10),
};

/// A generated input file, removed when dropped.
struct Input(PathBuf);

impl Input {
    fn new(name: &str, chunks: u64) -> Input {
        let path = std::env::temp_dir().join(format!(
            "procession-scatter-test-{}-{name}.bin",
            std::process::id()
        ));
        generate(&path, chunks * CHUNK, 7).unwrap();
        Input(path)
    }

    fn name(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    fn exact(&self, range: Range<u64>) -> Stats {
        Stats::of_file(&self.0, range.start, range.end).unwrap()
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn workers(runtime: &Runtime, n: usize) -> Vec<Upid> {
    (0..n)
        .map(|_| runtime.spawn(Worker::new(PACED)).upid())
        .collect()
}

/// Moves the paused clock `ms` milliseconds, one at a time, letting everything due run.
fn run_for(runtime: &Runtime, ms: u64) {
    let clock = runtime.clock();
    clock.settle();
    for _ in 0..ms {
        clock.advance(Duration::from_millis(1));
        clock.settle();
    }
}

/// The answers available now, and whether the stream has ended.
fn drain(answers: &mut Reader<Answer>) -> (Vec<Answer>, bool) {
    let mut got = Vec::new();
    loop {
        let read = answers.read();
        match read.outcome() {
            Some(Ok(Some(answer))) => got.push(answer.clone()),
            Some(Ok(None)) => return (got, true),
            Some(Err(error)) => panic!("the answers failed: {error}"),
            None => {
                // A discarded read leaves the line without taking an answer.
                read.discard();
                return (got, false);
            }
        }
    }
}

fn tally(runtime: &Runtime, scatter: &Scatter) -> Tally {
    runtime.block_on(scatter.tally()).unwrap()
}

fn complete(input: &Input, range: Range<u64>) -> Answer {
    let of = split("", range.clone(), CHUNK).len();
    Answer {
        chunks: of,
        of,
        stats: input.exact(range),
    }
}

#[procession::test(paused)]
fn a_cancel_stops_the_running_chunks_and_skips_the_queued_ones(runtime: &Runtime) {
    let input = Input::new("cancel", 10);
    let scatter = Scatter::start(&workers(runtime, 2), TEST_CONFIG);
    let mut answers = scatter.ask(&input.name(), 0..10 * CHUNK);
    // At 40 ms each worker has finished its first chunk, started its second (one block in at
    // 50 ms) and queued a third.
    run_for(runtime, 50);
    assert_eq!(drain(&mut answers), (vec![], false));
    answers.close();
    run_for(runtime, 1000);
    let expected = Tally {
        computed: 2,
        issued: 6,
        stopped: 2,
        skipped: 2,
        never_issued: 4,
        ..Tally::default()
    };
    let got = tally(runtime, &scatter);
    assert_eq!(
        Tally {
            computed_by: Default::default(),
            ..got.clone()
        },
        expected
    );
    assert_eq!(got.never_computed(), 8);

    // The two chunks computed before the cancel are not computed again.
    let mut again = scatter.ask(&input.name(), 0..10 * CHUNK);
    runtime.clock().settle();
    let (first, ended) = drain(&mut again);
    assert_eq!(first[0].chunks, 2);
    assert!(!ended);
    run_for(runtime, 400);
    let (rest, ended) = drain(&mut again);
    assert_eq!(rest, [complete(&input, 0..10 * CHUNK)]);
    assert!(ended);
    let got = tally(runtime, &scatter);
    assert_eq!((got.cached, got.computed), (2, 8));
}

#[procession::test(paused)]
fn a_killed_worker_s_chunks_are_issued_again_after_the_timeout(runtime: &Runtime) {
    let input = Input::new("killed", 6);
    let survivor = runtime.spawn(Worker::new(PACED));
    let doomed = runtime.spawn(Worker::new(PACED));
    let scatter = Scatter::start(&[survivor.upid(), doomed.upid()], TEST_CONFIG);
    let mut answers = scatter.ask(&input.name(), 0..6 * CHUNK);
    run_for(runtime, 20);
    terminate(&doomed);
    run_for(runtime, 400);
    assert_eq!(
        drain(&mut answers),
        (vec![complete(&input, 0..6 * CHUNK)], true)
    );
    let got = tally(runtime, &scatter);
    // The doomed worker held two chunks: one it was computing, one queued.
    assert_eq!((got.computed, got.reissued, got.duplicates), (6, 2, 0));
    assert_eq!(got.issued, 8);
    assert_eq!(got.computed_by.into_values().collect::<Vec<_>>(), [6]);
}

/// Takes work and never answers.
struct Silent;

impl Process for Silent {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|_: &mut Silent, _: &Upid, _: Work| {}).unwrap();
    }
}

#[procession::test(paused)]
fn a_worker_that_never_answers_loses_its_chunks_and_gets_no_more(runtime: &Runtime) {
    let input = Input::new("silent", 8);
    let worker = runtime.spawn(Worker::new(PACED)).upid();
    let silent = runtime.spawn(Silent).upid();
    let scatter = Scatter::start(&[worker, silent], TEST_CONFIG);
    let mut answers = scatter.ask(&input.name(), 0..4 * CHUNK);
    run_for(runtime, 99);
    assert_eq!(drain(&mut answers), (vec![], false));
    run_for(runtime, 200);
    assert_eq!(
        drain(&mut answers),
        (vec![complete(&input, 0..4 * CHUNK)], true)
    );
    let got = tally(runtime, &scatter);
    assert_eq!((got.issued, got.reissued, got.computed), (6, 2, 4));

    // The silent worker holds two chunks it will never answer, so it gets nothing new, and
    // nobody waits for it.
    let mut answers = scatter.ask(&input.name(), 4 * CHUNK..8 * CHUNK);
    run_for(runtime, 160);
    assert_eq!(
        drain(&mut answers),
        (vec![complete(&input, 4 * CHUNK..8 * CHUNK)], true)
    );
    let got = tally(runtime, &scatter);
    assert_eq!((got.issued, got.reissued, got.computed), (4, 0, 4));
    let quiet = scatter.quiet();
    runtime.clock().settle();
    assert!(quiet.is_ready());
}

/// Answers every chunk correctly, but only after `late` of runtime clock, and ignores cancels
/// (as a worker behind a slow link would).
struct Late {
    late: Duration,
    me: Option<Pid<Late>>,
}

impl Process for Late {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
        ctx.install(|late: &mut Late, _: &Upid, work: Work| {
            let me = late.me.clone().unwrap();
            delay(late.late, &me, move |_: &mut Late| {
                let Chunk { input, start, end } = &work.chunk;
                let stats = Stats::of_file(input.as_ref(), *start, *end).unwrap();
                let (task, chunk) = (work.task, work.chunk.clone());
                send(&work.sink, Done { task, chunk, stats });
            });
        })
        .unwrap();
    }
}

#[procession::test(paused)]
fn a_chunk_computed_twice_is_counted_once(runtime: &Runtime) {
    let input = Input::new("late", 2);
    let worker = runtime.spawn(Worker::new(PACED)).upid();
    let late = Late {
        late: Duration::from_millis(150),
        me: None,
    };
    let late = runtime.spawn(late).upid();
    let scatter = Scatter::start(&[worker.clone(), late], TEST_CONFIG);
    let mut answers = scatter.ask(&input.name(), 0..2 * CHUNK);
    // The late worker's chunk times out at 100 ms and the other worker has it at 140 ms; the
    // late answer comes at 150 ms.
    run_for(runtime, 140);
    assert_eq!(
        drain(&mut answers),
        (vec![complete(&input, 0..2 * CHUNK)], true)
    );
    run_for(runtime, 100);
    let got = tally(runtime, &scatter);
    assert_eq!(
        (got.computed, got.duplicates, got.reissued, got.issued),
        (2, 1, 1, 3)
    );
    assert_eq!(
        got.computed_by.into_iter().collect::<Vec<_>>(),
        [(worker.id().to_owned(), 2)]
    );
}

#[procession::test(paused)]
fn overlapping_requests_share_chunks_and_answer_exactly(runtime: &Runtime) {
    let input = Input::new("overlap", 10);
    let scatter = Scatter::start(&workers(runtime, 2), TEST_CONFIG);
    let (a, b) = (0..6 * CHUNK, 3 * CHUNK..10 * CHUNK);
    let mut first = scatter.ask(&input.name(), a.clone());
    let mut second = scatter.ask(&input.name(), b.clone());
    run_for(runtime, 400);
    assert_eq!(drain(&mut first), (vec![complete(&input, a)], true));
    assert_eq!(drain(&mut second), (vec![complete(&input, b)], true));
    let got = tally(runtime, &scatter);
    assert_eq!((got.computed, got.issued, got.duplicates), (10, 10, 0));

    // Unaligned: six whole chunks from the cache at once, the two partial ones computed.
    let c = 1000..7 * CHUNK + 1000;
    let mut third = scatter.ask(&input.name(), c.clone());
    runtime.clock().settle();
    let (quick, ended) = drain(&mut third);
    assert_eq!(quick.len(), 1);
    assert_eq!((quick[0].chunks, quick[0].of), (6, 8));
    assert_eq!(quick[0].stats, input.exact(CHUNK..7 * CHUNK));
    assert!(!ended);
    run_for(runtime, 100);
    assert_eq!(drain(&mut third), (vec![complete(&input, c)], true));
    let got = tally(runtime, &scatter);
    assert_eq!((got.cached, got.computed), (6, 2));

    // All cached: one complete answer at once, nothing issued.
    let d = 2 * CHUNK..5 * CHUNK;
    let mut fourth = scatter.ask(&input.name(), d.clone());
    runtime.clock().settle();
    assert_eq!(drain(&mut fourth), (vec![complete(&input, d)], true));
    let got = tally(runtime, &scatter);
    assert_eq!((got.cached, got.issued), (3, 0));
}

#[procession::test(paused)]
fn an_unreadable_input_fails_the_request(runtime: &Runtime) {
    let scatter = Scatter::start(&workers(runtime, 1), TEST_CONFIG);
    let mut answers = scatter.ask("/nonexistent/procession-scatter", 0..2 * CHUNK);
    let read = answers.read();
    runtime.clock().settle();
    let error = read.error().expect("the request failed");
    assert!(
        error.to_string().contains("procession-scatter@0"),
        "{error}"
    );
    run_for(runtime, 200);
    let got = tally(runtime, &scatter);
    // The other chunk fails too, or is stopped by the cancel, whichever comes first.
    assert_eq!((got.computed, got.issued), (0, 2));
}
