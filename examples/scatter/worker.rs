//! A worker: computes the chunks the ventilator hands it, one at a time, in the order given.
//!
//! A chunk is read and counted block by block, each block on the blocking pool, as a `loop_`
//! whose result the worker holds: a `Cancel` discards it, and the loop checks for that discard
//! between blocks, so a cancelled chunk stops after the block in progress. A cancelled chunk
//! still in the queue is dropped without being read.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::Duration;

use procession::{
    after, dispatch, loop_, run_blocking, send, Context, Error, Future, Pid, Process, Upid,
};

use crate::protocol::{Cancel, Chunk, Done, Failed, Stats, Stopped, Work};

/// How a worker reads its chunks.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Bytes read and counted per step; a cancel takes effect between steps.
    pub block: u64,
    /// Runtime-clock time each step also takes, as on a throttled disk (zero in the program):
    /// it puts work in flight at known instants of a paused clock, so tests can stop it there.
    pub pace: Duration,
}

/// The worker process.
pub struct Worker {
    config: WorkerConfig,
    me: Option<Pid<Worker>>,
    queue: VecDeque<Work>,
    running: Option<(Work, Future<Stats>)>,
}

impl Worker {
    /// A worker that reads chunks as `config` says.
    pub fn new(config: WorkerConfig) -> Worker {
        Worker {
            config,
            me: None,
            queue: VecDeque::new(),
            running: None,
        }
    }

    fn start_next(&mut self) {
        if self.running.is_some() {
            return;
        }
        let (Some(work), Some(me)) = (self.queue.pop_front(), self.me.clone()) else {
            return;
        };
        let result = count(work.chunk.clone(), self.config);
        let task = work.task;
        result.on_any(move |outcome| {
            let outcome = outcome.clone();
            dispatch(&me, move |w: &mut Worker| w.finished(task, outcome));
        });
        self.running = Some((work, result));
    }

    fn finished(&mut self, task: u64, outcome: Result<Stats, Error>) {
        let Some((work, _)) = self.running.take_if(|(work, _)| work.task == task) else {
            return;
        };
        match outcome {
            Ok(stats) => send(
                &work.sink,
                Done {
                    task,
                    chunk: work.chunk,
                    stats,
                },
            ),
            Err(error) if error.is_discarded() => send(
                &work.sink,
                Stopped {
                    task,
                    started: true,
                },
            ),
            Err(error) => send(
                &work.sink,
                Failed {
                    task,
                    chunk: work.chunk,
                    error: error.to_string(),
                },
            ),
        }
        self.start_next();
    }

    fn cancel(&mut self, tasks: &[u64]) {
        let (skipped, kept) = self
            .queue
            .drain(..)
            .partition(|work| tasks.contains(&work.task));
        self.queue = kept;
        for work in skipped {
            let (task, started) = (work.task, false);
            send(&work.sink, Stopped { task, started });
        }
        if let Some((work, result)) = &self.running {
            if tasks.contains(&work.task) {
                // `finished` reports it, once the loop has seen the discard.
                result.discard();
            }
        }
    }
}

impl Process for Worker {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
        ctx.install(|w: &mut Worker, _: &Upid, work: Work| {
            w.queue.push_back(work);
            w.start_next();
        })
        .expect("one handler for Work");
        ctx.install(|w: &mut Worker, _: &Upid, Cancel { tasks }| w.cancel(&tasks))
            .expect("one handler for Cancel");
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        // A terminated worker stops reading; the ventilator's timeout issues its chunks again.
        if let Some((_, result)) = &self.running {
            result.discard();
        }
    }
}

/// The statistics of `chunk`, counted block by block; discarding the result stops the count
/// between blocks.
pub fn count(chunk: Chunk, config: WorkerConfig) -> Future<Stats> {
    let mut offset = chunk.start;
    let mut total = Stats::default();
    loop_(
        move || {
            let (path, at) = (chunk.input.clone(), offset);
            let wanted = config.block.min(chunk.end.saturating_sub(at));
            offset += wanted;
            let read = run_blocking(move || Stats::of_file(path.as_ref(), at, at + wanted)).then(
                move |read| match read {
                    // A short block is the end of the file.
                    Ok(stats) => Future::ready((stats.clone(), stats.bytes() < wanted)),
                    Err(error) => Future::failed(error.to_string()),
                },
            );
            let last = offset >= chunk.end;
            let step = read.map(move |(stats, short)| (stats.clone(), *short || last));
            if config.pace.is_zero() {
                step
            } else {
                step.then(move |item| {
                    let item = item.clone();
                    after(config.pace).map(move |()| item.clone())
                })
            }
        },
        move |(block, last): &(Stats, bool)| {
            total.add(block);
            Future::ready(if *last {
                ControlFlow::Break(total.clone())
            } else {
                ControlFlow::Continue(())
            })
        },
    )
}
