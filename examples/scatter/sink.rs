//! The sink: collects the workers' results, keeps each chunk's statistics in the cache (by
//! input and range, so no later request computes it again), and streams each request's
//! answers: one at once from the cache, the complete one when its last chunk comes in.

use std::collections::{HashMap, HashSet};

use procession::pipe::Writer;
use procession::{dispatch, Context, Pid, Process, Upid};

use crate::protocol::{Answer, Chunk, Done, Failed, Stats, Stopped};
use crate::ventilator::Ventilator;

struct Open {
    of: usize,
    missing: HashSet<Chunk>,
    stats: Stats,
    answers: Writer<Answer>,
}

/// The sink process.
#[derive(Default)]
pub struct Sink {
    me: Option<Pid<Sink>>,
    ventilator: Option<Pid<Ventilator>>,
    cache: HashMap<Chunk, Stats>,
    open: HashMap<u64, Open>,
}

impl Process for Sink {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
        ctx.install(|s: &mut Sink, from: &Upid, done: Done| s.done(from, done))
            .expect("one handler for Done");
        ctx.install(|s: &mut Sink, _: &Upid, Stopped { task, started }| {
            s.tell(move |v| v.stopped(task, started));
        })
        .expect("one handler for Stopped");
        ctx.install(|s: &mut Sink, _: &Upid, failed: Failed| s.failed(failed))
            .expect("one handler for Failed");
    }
}

impl Sink {
    pub(crate) fn attach(&mut self, ventilator: Pid<Ventilator>) {
        self.ventilator = Some(ventilator);
    }

    fn tell(&self, f: impl FnOnce(&mut Ventilator) + Send + 'static) {
        if let Some(ventilator) = &self.ventilator {
            dispatch(ventilator, f);
        }
    }

    /// Opens request `id`: answers at once what the cache has, and returns how many chunks
    /// that was and the chunks still to compute.
    pub(crate) fn begin(
        &mut self,
        id: u64,
        pieces: Vec<Chunk>,
        mut answers: Writer<Answer>,
    ) -> (usize, Vec<Chunk>) {
        let of = pieces.len();
        let mut stats = Stats::default();
        let mut missing = Vec::new();
        for piece in pieces {
            match self.cache.get(&piece) {
                Some(cached) => stats.add(cached),
                None => missing.push(piece),
            }
        }
        let cached = of - missing.len();
        if cached > 0 {
            let _ = answers.write(Answer {
                chunks: cached,
                of,
                stats: stats.clone(),
            });
        }
        if missing.is_empty() {
            answers.close();
            return (cached, missing);
        }
        let me = self.me.clone().expect("set in initialize");
        answers.reader_closed().on_ready(move |()| {
            dispatch(&me, move |s: &mut Sink| s.closed(id));
        });
        let open = Open {
            of,
            missing: missing.iter().cloned().collect(),
            stats,
            answers,
        };
        self.open.insert(id, open);
        (cached, missing)
    }

    fn closed(&mut self, id: u64) {
        if self.open.remove(&id).is_some() {
            self.tell(move |v| v.cancel(id));
        }
    }

    fn done(&mut self, worker: &Upid, Done { task, chunk, stats }: Done) {
        let first = !self.cache.contains_key(&chunk);
        if first {
            let mut complete = Vec::new();
            for (id, open) in &mut self.open {
                if open.missing.remove(&chunk) {
                    open.stats.add(&stats);
                    if open.missing.is_empty() {
                        complete.push(*id);
                    }
                }
            }
            for id in complete {
                let mut open = self.open.remove(&id).expect("listed above");
                let _ = open.answers.write(Answer {
                    chunks: open.of,
                    of: open.of,
                    stats: open.stats,
                });
                open.answers.close();
            }
            self.cache.insert(chunk.clone(), stats);
        }
        let worker = worker.clone();
        self.tell(move |v| v.finished(task, chunk, &worker, first));
    }

    fn failed(&mut self, Failed { task, chunk, error }: Failed) {
        let failing: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, open)| open.missing.contains(&chunk))
            .map(|(id, _)| *id)
            .collect();
        for id in failing {
            let open = self.open.remove(&id).expect("listed above");
            open.answers
                .fail(format!("{}@{}: {error}", chunk.input, chunk.start));
        }
        self.tell(move |v| v.failed(task, chunk));
    }
}
