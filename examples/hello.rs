//! The tour in one file: spawn processes, dispatch to them, chain the answers, put a timeout
//! on the whole computation, watch a crash reach a linked process, and let a supervisor restart
//! a crashed worker at the same address.
//!
//! Run it with `cargo run --example hello`.

use std::time::Duration;

use procession::{
    collect, dispatch, link, monitor, supervise, terminate, wait, Context, ExitReason, Future,
    Process, Runtime, Strategy, Supervisor, Upid,
};

/// A worker that squares numbers, slowly for big ones.
#[derive(Default)]
struct Squarer {
    handled: u64,
}

impl Process for Squarer {}

impl Squarer {
    fn square(&mut self, x: u64) -> u64 {
        self.handled += 1;
        assert!(x != 13, "unlucky number");
        x * x
    }
}

/// Watches the workers and records how each one ended.
#[derive(Default)]
struct Watcher {
    exits: Vec<String>,
}

impl Process for Watcher {
    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.push(format!("{upid} ended: {reason}"));
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    let runtime = Runtime::builder().name("hello").build().expect("runtime");
    let _entered = runtime.enter();

    let workers: Vec<_> = (0..4).map(|_| runtime.spawn(Squarer::default())).collect();
    let watcher = runtime.spawn(Watcher::default());
    for worker in &workers {
        let target = worker.upid();
        dispatch(&watcher, move |_: &mut Watcher| link(&target));
    }
    println!("spawned {} workers: {}", workers.len(), names(&workers));

    // Fan out, gather, transform, and bound the whole thing by one timeout.
    let squares: Vec<Future<u64>> = workers
        .iter()
        .zip(1u64..)
        .map(|(pid, x)| dispatch(pid, move |w: &mut Squarer| w.square(x)))
        .collect();
    let total = collect(squares)
        .map(|squares| squares.iter().sum::<u64>())
        .after(Duration::from_secs(1), |slow| {
            slow.discard();
            Future::failed("the squares took longer than a second")
        });
    match runtime.block_on(total) {
        Ok(sum) => println!("sum of squares 1..=4: {sum}"),
        Err(error) => println!("no sum: {error}"),
    }

    // A timeout tested in microseconds: pause the clock, move it an hour.
    let clock = runtime.clock();
    clock.pause();
    let never = procession::Promise::<u64>::new();
    let timed = never.future().after(Duration::from_secs(3600), |_| {
        Future::failed("no answer within an hour")
    });
    clock.advance(Duration::from_secs(3600));
    println!(
        "an hour later (virtually): {}",
        timed.error().expect("timed out")
    );
    clock.resume();

    // A panic ends only that process: its caller sees `abandoned`, its watcher sees why.
    let crash = dispatch(&workers[0], |w: &mut Squarer| w.square(13));
    match runtime.block_on(crash) {
        Ok(_) => println!("13 squared?"),
        Err(error) => println!("dispatch to the crashing worker: {error}"),
    }
    for worker in &workers[1..] {
        terminate(worker);
        runtime.block_on(wait(worker)).expect("wait");
    }
    let handled = dispatch(&workers[1], |w: &mut Squarer| w.handled);
    println!(
        "dispatch to a terminated worker: {}",
        runtime.block_on(handled).unwrap_err()
    );

    clock.pause();
    clock.settle();
    let exits = runtime.block_on(dispatch(&watcher, |w: &mut Watcher| w.exits.clone()));
    for line in exits.expect("watcher alive") {
        println!("watcher: {line}");
    }

    // A supervisor restarts a crashed worker at the same address, with fresh state.
    let supervisor = runtime.spawn(Supervisor::new(Strategy::OneForOne));
    let supervised = runtime
        .block_on(supervise(&supervisor, Squarer::default))
        .expect("supervised");
    let crashed = monitor(&supervised);
    let _ = dispatch(&supervised, |w: &mut Squarer| w.square(13));
    println!(
        "supervised worker {} ended: {}",
        supervised.id(),
        runtime.block_on(crashed).expect("monitor")
    );
    clock.settle();
    let again = dispatch(&supervised, |w: &mut Squarer| (w.square(7), w.handled));
    let (square, handled) = runtime.block_on(again).expect("restarted");
    println!(
        "restarted at the same pid {}: 7 squared is {square}, handled {handled} (fresh state)",
        supervised.id()
    );
    drop(_entered);
    let report = runtime.shutdown();
    println!(
        "runtime shut down {}",
        if report.is_complete() {
            "cleanly"
        } else {
            "with processes abandoned"
        }
    );
}

fn names(pids: &[procession::Pid<Squarer>]) -> String {
    pids.iter()
        .map(|p| p.id().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
