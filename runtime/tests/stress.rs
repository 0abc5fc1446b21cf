//! Stress: many processes, many messages, many threads; every count exact.
//!
//! Sizes scale with `PROCESSION_STRESS_SCALE` (a factor, default 1), so a slow machine can run
//! them smaller and a soak run larger. Each runs on every flavour.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use procession::{
    collect, dispatch, send, terminate, wait, Context, Future, Message, Process, Upid,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Hello {
    laps_left: u32,
}
impl Message for Hello {
    const NAME: &'static str = "stress::Hello";
}

/// One link of a ring: counts what it receives, passes laps on to the next.
struct Link {
    next: Upid,
    received: u64,
    total: Arc<AtomicU64>,
}

impl Process for Link {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, hello: Hello| {
            me.received += 1;
            me.total.fetch_add(1, Ordering::Relaxed);
            if hello.laps_left > 0 {
                send(
                    &me.next,
                    Hello {
                        laps_left: hello.laps_left - 1,
                    },
                );
            }
        })
        .unwrap();
    }
}

#[test]
fn ten_thousand_processes_each_send_to_the_next() {
    let n = support::scaled(10_000);
    support::on_flavors(&support::flavors(), |_, rt| {
        let total = Arc::new(AtomicU64::new(0));
        let id = |i: usize| format!("ring-{}", i % n);
        let ring: Vec<_> = (0..n)
            .map(|i| {
                let link = Link {
                    next: Upid::new(id(i + 1), rt.address()),
                    received: 0,
                    total: total.clone(),
                };
                rt.spawn_named(&id(i), link).unwrap()
            })
            .collect();
        // Every link sends one hello to the next, which forwards it once more: 2n deliveries.
        for link in &ring {
            dispatch(link, |l: &mut Link| send(&l.next, Hello { laps_left: 1 }));
        }
        let clock = rt.clock();
        clock.pause();
        clock.settle();
        assert_eq!(total.load(Ordering::Relaxed), 2 * n as u64);
        let reads = ring.iter().map(|l| dispatch(l, |l: &mut Link| l.received));
        let counts = rt.block_on(collect(reads.collect())).unwrap();
        assert_eq!(counts.len(), n);
        assert!(
            counts.iter().all(|&c| c == 2),
            "every link received exactly two"
        );
        assert_eq!(rt.stats().dropped_messages, 0);
    });
}

#[derive(Default)]
struct Sum {
    total: u64,
    count: u64,
}
impl Process for Sum {}

#[test]
fn eight_threads_dispatching_to_one_process_lose_nothing() {
    let per_thread = support::scaled(10_000) as u64;
    support::on_flavors(&support::flavors(), |_, rt| {
        let sum = rt.spawn(Sum::default());
        let last: Vec<Future<()>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let sum = sum.clone();
                    scope.spawn(move || {
                        let mut last = None;
                        for v in 1..=per_thread {
                            last = Some(dispatch(&sum, move |s: &mut Sum| {
                                s.total += v;
                                s.count += 1;
                            }));
                        }
                        last.unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        rt.block_on(collect(last)).unwrap();
        let (total, count) = rt
            .block_on(dispatch(&sum, |s: &mut Sum| (s.total, s.count)))
            .unwrap();
        assert_eq!(count, 8 * per_thread);
        assert_eq!(total, 8 * per_thread * (per_thread + 1) / 2);
    });
}

/// Counts its finalizes.
struct Ephemeral {
    finalized: Arc<AtomicU64>,
}

impl Process for Ephemeral {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.finalized.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn ten_thousand_spawn_dispatch_terminate_cycles_all_complete() {
    let n = support::scaled(10_000);
    support::on_flavors(&support::flavors(), |_, rt| {
        let finalized = Arc::new(AtomicU64::new(0));
        let mut replies = Vec::with_capacity(n);
        let mut waits = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let pid = rt.spawn(Ephemeral {
                finalized: finalized.clone(),
            });
            replies.push(dispatch(&pid, move |_: &mut Ephemeral| i));
            terminate(&pid);
            waits.push(wait(&pid));
        }
        rt.block_on(collect(waits)).unwrap();
        assert_eq!(finalized.load(Ordering::Relaxed), n as u64);
        let values = rt.block_on(collect(replies)).unwrap();
        assert!(
            values.iter().copied().eq(0..n as u64),
            "every dispatch ran before terminate"
        );
        assert_eq!(rt.stats().processes, 0);
    });
}
