//! The ventilator: splits each request into chunks, hands the chunks the cache lacks to the
//! workers (a few at a time each), issues a chunk again when its worker stays silent past a
//! timeout, and stops the chunks nobody wants any more.
//!
//! It never sees a result itself: workers report to the sink, which caches and aggregates and
//! tells the ventilator what finished.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::time::Duration;

use procession::pipe::{self, Reader, Writer};
use procession::{
    defer, delay, dispatch, send, spawn, Context, Future, Pid, Process, Promise, Timer, Upid,
};

use crate::protocol::{Answer, Cancel, Chunk, Work};
use crate::sink::Sink;

/// How the ventilator splits and hands out work.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Chunk boundaries are multiples of this, so overlapping requests share chunks.
    pub chunk: u64,
    /// Chunks a worker holds at once: one it computes, the others queued behind it.
    pub per_worker: usize,
    /// How long (runtime clock) a worker may take from hand-out to answer before its chunk is
    /// issued to another worker and it gets no more work until it answers again.
    pub timeout: Duration,
}

/// What happened since the last [`Scatter::tally`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Chunks answered from the cache when a request arrived.
    pub cached: u64,
    /// Chunks computed (the first result for each).
    pub computed: u64,
    /// Results for chunks already computed (a late worker's), counted once.
    pub duplicates: u64,
    /// Chunks handed to a worker (issues again included).
    pub issued: u64,
    /// Chunks issued again after their worker's timeout.
    pub reissued: u64,
    /// Cancelled chunks a worker stopped mid-way.
    pub stopped: u64,
    /// Cancelled chunks a worker skipped in its queue.
    pub skipped: u64,
    /// Cancelled chunks that were never handed out.
    pub never_issued: u64,
    /// Chunks computed (first results) per worker id.
    pub computed_by: BTreeMap<String, u64>,
}

impl Tally {
    /// Cancelled chunks that were never computed: stopped, skipped or never handed out.
    pub fn never_computed(&self) -> u64 {
        self.stopped + self.skipped + self.never_issued
    }
}

struct Slot {
    upid: Upid,
    holding: usize,
    suspect: bool,
}

struct Task {
    chunk: Chunk,
    worker: usize,
    timer: Timer,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// The chunk's current issue.
    Live,
    /// Sent a `Cancel`; its worker will report.
    Cancelled,
    /// Its worker missed the timeout; it may answer late, or never.
    TimedOut,
}

/// The ventilator process.
pub struct Ventilator {
    config: Config,
    sink: Pid<Sink>,
    me: Option<Pid<Ventilator>>,
    workers: Vec<Slot>,
    next_id: u64,
    /// Open requests and how many of their chunks are still to come.
    open: HashMap<u64, usize>,
    /// Chunks to compute, and the requests that want each.
    wanted: HashMap<Chunk, BTreeSet<u64>>,
    pending: VecDeque<Chunk>,
    tasks: HashMap<u64, Task>,
    tally: Tally,
    quiet: Vec<Promise<()>>,
}

impl Process for Ventilator {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let me = ctx.pid();
        self.me = Some(me.clone());
        // Sent before any request the ventilator passes on, so the sink knows whom to tell.
        dispatch(&self.sink, move |s: &mut Sink| s.attach(me));
    }
}

impl Ventilator {
    fn me(&self) -> &Pid<Ventilator> {
        self.me.as_ref().expect("set in initialize")
    }

    fn ask(&mut self, input: String, range: Range<u64>, answers: Writer<Answer>) {
        let id = self.next_id();
        self.open.insert(id, 0);
        let pieces = split(&input, range, self.config.chunk);
        let me = self.me().clone();
        // The sink answers at once from its cache and tells which chunks it lacks.
        let _ = dispatch(&self.sink, move |s: &mut Sink| s.begin(id, pieces, answers))
            .then(defer(&me, move |v: &mut Ventilator, (cached, missing)| {
                v.schedule(id, cached, missing)
            }));
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, id: u64, cached: usize, missing: Vec<Chunk>) {
        self.tally.cached += cached as u64;
        let Some(count) = self.open.get_mut(&id) else {
            return; // cancelled before its chunks were known
        };
        *count = missing.len();
        if missing.is_empty() {
            self.open.remove(&id);
        }
        for chunk in missing {
            let wanting = self.wanted.entry(chunk.clone()).or_insert_with(|| {
                self.pending.push_back(chunk);
                BTreeSet::new()
            });
            wanting.insert(id);
        }
        self.pump();
    }

    /// Hands pending chunks to the least busy trusted workers with room.
    fn pump(&mut self) {
        while !self.pending.is_empty() {
            let Some(worker) = (0..self.workers.len())
                .filter(|w| {
                    let slot = &self.workers[*w];
                    !slot.suspect && slot.holding < self.config.per_worker
                })
                .min_by_key(|w| self.workers[*w].holding)
            else {
                break;
            };
            let chunk = self.pending.pop_front().expect("not empty");
            let task = self.next_id();
            let work = Work {
                task,
                chunk: chunk.clone(),
                sink: self.sink.upid(),
            };
            send(&self.workers[worker].upid, work);
            let timer = delay(self.config.timeout, self.me(), move |v: &mut Ventilator| {
                v.timed_out(task)
            });
            self.workers[worker].holding += 1;
            self.tally.issued += 1;
            let state = State::Live;
            self.tasks.insert(
                task,
                Task {
                    chunk,
                    worker,
                    timer,
                    state,
                },
            );
        }
        self.check_quiet();
    }

    /// Forgets `task`, freeing its worker's place.
    fn end_task(&mut self, task: u64) -> Option<Task> {
        let task = self.tasks.remove(&task)?;
        task.timer.cancel();
        self.workers[task.worker].holding -= 1;
        Some(task)
    }

    /// The sink got `chunk`'s result for `task` from `worker`; `first` if it was new.
    pub(crate) fn finished(&mut self, task: u64, chunk: Chunk, worker: &Upid, first: bool) {
        self.end_task(task);
        if let Some(slot) = self.workers.iter_mut().find(|s| s.upid == *worker) {
            // It answered: whatever made it late is over.
            slot.suspect = false;
        }
        if first {
            self.tally.computed += 1;
            *self
                .tally
                .computed_by
                .entry(worker.id().to_owned())
                .or_default() += 1;
        } else {
            self.tally.duplicates += 1;
        }
        if let Some(requests) = self.wanted.remove(&chunk) {
            for id in requests {
                if let Some(count) = self.open.get_mut(&id) {
                    *count -= 1;
                    if *count == 0 {
                        self.open.remove(&id);
                    }
                }
            }
            self.pending.retain(|c| *c != chunk);
            self.retire_tasks_of(&[chunk]);
        }
        self.pump();
    }

    /// A worker reports `task` stopped before it was done.
    pub(crate) fn stopped(&mut self, task: u64, started: bool) {
        if self.end_task(task).is_some() {
            if started {
                self.tally.stopped += 1;
            } else {
                self.tally.skipped += 1;
            }
        }
        self.pump();
    }

    /// `chunk` cannot be computed: the sink failed its requests; drop their other chunks too.
    pub(crate) fn failed(&mut self, task: u64, chunk: Chunk) {
        self.end_task(task);
        for id in self.wanted.remove(&chunk).unwrap_or_default() {
            self.cancel(id);
        }
        self.pending.retain(|c| *c != chunk);
        self.pump();
    }

    /// Request `id` is no longer wanted (its client closed its stream).
    pub(crate) fn cancel(&mut self, id: u64) {
        if self.open.remove(&id).is_none() {
            return;
        }
        let mut unwanted = Vec::new();
        self.wanted.retain(|chunk, requests| {
            requests.remove(&id);
            if requests.is_empty() {
                unwanted.push(chunk.clone());
            }
            !requests.is_empty()
        });
        let before = self.pending.len();
        self.pending.retain(|c| !unwanted.contains(c));
        self.tally.never_issued += (before - self.pending.len()) as u64;
        self.retire_tasks_of(&unwanted);
        self.pump();
    }

    /// Tells the workers still holding any of `chunks` to drop them.
    fn retire_tasks_of(&mut self, chunks: &[Chunk]) {
        let mut cancels: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for (id, task) in &mut self.tasks {
            if chunks.contains(&task.chunk) {
                if task.state == State::Live {
                    task.state = State::Cancelled;
                }
                cancels.entry(task.worker).or_default().push(*id);
            }
        }
        for (worker, tasks) in cancels {
            send(&self.workers[worker].upid, Cancel { tasks });
        }
    }

    fn timed_out(&mut self, id: u64) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        let was_live = task.state == State::Live;
        task.state = State::TimedOut;
        let (chunk, worker) = (task.chunk.clone(), task.worker);
        // Its place stays taken: the worker may still be busy with it. If it answers late, the
        // answer counts (once) and frees it; if it never does, it gets no more work.
        self.workers[worker].suspect = true;
        let live = self
            .tasks
            .values()
            .any(|t| t.chunk == chunk && t.state == State::Live);
        if was_live && self.wanted.contains_key(&chunk) && !live {
            self.pending.push_front(chunk);
            self.tally.reissued += 1;
        }
        self.pump();
    }

    fn check_quiet(&mut self) {
        // Tasks of silent workers are not waited for: they may never answer.
        let busy =
            !self.pending.is_empty() || self.tasks.values().any(|t| t.state != State::TimedOut);
        if !busy {
            for promise in self.quiet.drain(..) {
                promise.set(());
            }
        }
    }
}

/// Splits `range` of `input` at the multiples of `chunk`: the whole chunks inside it are the
/// cache's keys for every request that covers them.
pub fn split(input: &str, range: Range<u64>, chunk: u64) -> Vec<Chunk> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = ((start / chunk + 1) * chunk).min(range.end);
        pieces.push(Chunk {
            input: input.to_owned(),
            start,
            end,
        });
        start = end;
    }
    pieces
}

/// The client's handle on a running scatter: a ventilator and its sink.
#[derive(Clone)]
pub struct Scatter {
    ventilator: Pid<Ventilator>,
}

impl Scatter {
    /// Spawns a sink and a ventilator handing chunks to `workers` (any processes that handle
    /// `Work`, local or remote) on the current runtime.
    pub fn start(workers: &[Upid], config: Config) -> Scatter {
        let sink = spawn(Sink::default());
        let workers = workers
            .iter()
            .map(|upid| Slot {
                upid: upid.clone(),
                holding: 0,
                suspect: false,
            })
            .collect();
        let ventilator = spawn(Ventilator {
            config,
            sink,
            me: None,
            workers,
            next_id: 0,
            open: HashMap::new(),
            wanted: HashMap::new(),
            pending: VecDeque::new(),
            tasks: HashMap::new(),
            tally: Tally::default(),
            quiet: Vec::new(),
        });
        Scatter { ventilator }
    }

    /// Asks for the statistics of `range` of `input`: a stream of answers, the first at once
    /// if the cache has part of it, the last complete. Closing (or dropping) the stream
    /// discards the request.
    pub fn ask(&self, input: &str, range: Range<u64>) -> Reader<Answer> {
        let (answers, writer) = pipe::stream(2);
        let input = input.to_owned();
        dispatch(&self.ventilator, move |v: &mut Ventilator| {
            v.ask(input, range, writer)
        });
        answers
    }

    /// Completes when no chunk is pending or being computed or cancelled, except by workers
    /// that missed their timeout.
    pub fn quiet(&self) -> Future<()> {
        dispatch(&self.ventilator, |v: &mut Ventilator| {
            let promise = Promise::new();
            let quiet = promise.future();
            v.quiet.push(promise);
            v.check_quiet();
            quiet
        })
        .flatten()
    }

    /// What happened since the last call.
    pub fn tally(&self) -> Future<Tally> {
        dispatch(&self.ventilator, |v: &mut Ventilator| {
            std::mem::take(&mut v.tally)
        })
    }
}
