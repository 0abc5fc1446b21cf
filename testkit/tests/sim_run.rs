//! Running a simulation: determinism, crash and restart, and runs that cannot finish.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use procession::{Context, ExitReason, Process, Promise};
use procession_testkit::sim::{run_seeds, Event, Latency, Sim, SimError};
use support::{exits, notes, send_notes, watch, Recorder, Watcher, SETTLE};

/// A small busy scenario: three nodes sending notes to each other's recorders, with loss and
/// reordering so the seed decides a lot.
fn busy(seed: u64) -> Sim {
    let mut sim = Sim::builder(seed)
        .latency(Latency::uniform(
            Duration::from_millis(1),
            Duration::from_millis(40),
        ))
        .reorder(true)
        .loss(0.1)
        .build();
    let nodes: Vec<_> = (0..3)
        .map(|n| sim.add_node(&format!("n{n}"), |_, _| {}))
        .collect();
    let recorders: Vec<_> = nodes
        .iter()
        .map(|&n| sim.runtime(n).unwrap().spawn(Recorder::default()))
        .collect();
    for (i, &from) in nodes.iter().enumerate() {
        for recorder in &recorders {
            send_notes(
                &mut sim,
                from,
                &recorder.upid(),
                (0..30).map(|k| k + 100 * i as u32),
            );
        }
    }
    sim.partition(nodes[0], nodes[2]);
    sim.run_for(SETTLE);
    sim
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    run_seeds(30, |seed| {
        let (first, second) = (busy(seed), busy(seed));
        assert!(
            first.trace().len() > 100,
            "a busy run: {}",
            first.trace().len()
        );
        assert_eq!(first.trace().hash(), second.trace().hash());
        assert_eq!(first.trace().events(), second.trace().events());
    });
}

#[test]
fn different_seeds_give_different_traces() {
    let hashes: std::collections::BTreeSet<u64> = (0..20).map(|s| busy(s).trace().hash()).collect();
    assert!(
        hashes.len() > 15,
        "only {} distinct traces of 20",
        hashes.len()
    );
}

/// Counts its starts in what survives a crash (its "disk"), and how often `finalize` ran.
struct Durable {
    disk: Arc<AtomicU32>,
    finalized: Arc<AtomicU32>,
}

impl Process for Durable {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        self.disk.fetch_add(1, Ordering::SeqCst);
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.finalized.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_crash_is_seen_as_lost_and_a_restart_keeps_only_what_the_start_function_gives() {
    run_seeds(30, |seed| {
        let mut sim = Sim::new(seed);
        let disk = Arc::new(AtomicU32::new(0));
        let finalized = Arc::new(AtomicU32::new(0));
        let recorders = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (d, f, r) = (disk.clone(), finalized.clone(), recorders.clone());
        let server = sim.add_node("server", move |runtime, _| {
            let durable = Durable {
                disk: d.clone(),
                finalized: f.clone(),
            };
            runtime.spawn_named("durable", durable).unwrap();
            let recorder = runtime
                .spawn_named("recorder", Recorder::default())
                .unwrap();
            r.lock().push(recorder);
        });
        let client = sim.add_node("client", |_, _| {});
        let recorder = procession::Upid::new("recorder", sim.address(server));
        let watcher = sim.runtime(client).unwrap().spawn(Watcher::default());
        watch(&mut sim, &watcher, recorder.clone());
        send_notes(&mut sim, client, &recorder, [1]);
        sim.run_for(SETTLE);
        assert_eq!(disk.load(Ordering::SeqCst), 1);

        sim.crash(server);
        assert!(sim.runtime(server).is_none());
        assert_eq!(
            finalized.load(Ordering::SeqCst),
            0,
            "a crash runs no finalize"
        );
        sim.run_for(SETTLE);
        assert_eq!(
            exits(&mut sim, &watcher),
            [(recorder.clone(), ExitReason::Lost)]
        );

        let before = sim.now();
        sim.restart(server);
        assert_eq!(
            sim.now(),
            before,
            "the simulated clock kept going while the node was down"
        );
        send_notes(&mut sim, client, &recorder, [2]);
        sim.run_for(SETTLE);
        let second = recorders.lock()[1].clone();
        let got: Vec<u32> = notes(&mut sim, &second).iter().map(|n| n.1).collect();
        assert_eq!(got, [2], "the new incarnation starts empty");
        assert_eq!(
            disk.load(Ordering::SeqCst),
            2,
            "the start function ran again"
        );
        assert!(sim.trace().events().contains(&Event::Restart(server)));
        let node_now = sim.runtime(server).unwrap().clock().now();
        let client_now = sim.runtime(client).unwrap().clock().now();
        assert_eq!(
            node_now, client_now,
            "the restarted node follows the one clock"
        );
    });
}

#[test]
fn a_future_nothing_can_complete_fails_as_stuck() {
    let mut sim = Sim::new(3);
    sim.add_node("idle", |_, _| {});
    let never = Promise::<u32>::new();
    let error = sim.block_on(never.future()).unwrap_err();
    assert!(
        matches!(
            error,
            SimError::Stuck {
                seed: 3,
                at: Duration::ZERO,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("seed 3"), "{error}");
}

#[test]
fn a_future_that_outlasts_the_time_limit_fails_at_the_limit() {
    let mut sim = Sim::builder(4).time_limit(Duration::from_secs(60)).build();
    let node = sim.add_node("ticking", |_, _| {});
    let _entered = sim.runtime(node).unwrap().enter();
    let _ticks = procession::after(Duration::from_secs(3600));
    let never = Promise::<u32>::new();
    let error = sim.block_on(never.future()).unwrap_err();
    assert_eq!(
        error,
        SimError::TimeLimit {
            seed: 4,
            at: Duration::from_secs(60)
        }
    );
    assert_eq!(sim.now(), Duration::from_secs(60));
}

struct Spinner;
impl Process for Spinner {}

fn spin(spinner: procession::Pid<Spinner>) {
    let again = spinner.clone();
    assert!(procession::cast(&spinner, move |_: &mut Spinner| spin(
        again
    )));
}

#[test]
fn a_livelock_that_never_lets_time_move_fails_at_the_step_limit() {
    let mut sim = Sim::builder(5).step_limit(1_000).build();
    let node = sim.add_node("spinning", |_, _| {});
    let spinner = sim.runtime(node).unwrap().spawn(Spinner);
    spin(spinner);
    let never = Promise::<u32>::new();
    let error = sim.block_on(never.future()).unwrap_err();
    assert_eq!(
        error,
        SimError::StepLimit {
            seed: 5,
            at: Duration::ZERO
        }
    );
}

/// Runs `body` on a thread of its own and fails if it does not return within a minute, so a
/// livelock the simulation does not catch fails the test instead of hanging it.
fn within_a_minute<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(body()));
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the simulation was still running after a minute")
}

/// A simulation whose one process keeps sending to itself: time never moves.
fn spinning(seed: u64) -> Sim {
    let mut sim = Sim::builder(seed).step_limit(1_000).build();
    let node = sim.add_node("spinning", |_, _| {});
    let spinner = sim.runtime(node).unwrap().spawn(Spinner);
    spin(spinner);
    sim
}

#[test]
fn a_livelock_under_run_for_fails_at_the_step_limit_naming_the_seed() {
    let failure = within_a_minute(|| {
        let mut sim = spinning(5);
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sim.run_for(Duration::from_secs(1))
        }));
        ran.map_err(|panic| *panic.downcast::<String>().unwrap())
    })
    .unwrap_err();
    assert!(failure.contains("step limit"), "{failure}");
    assert!(failure.contains("seed 5"), "{failure}");
}

#[test]
fn a_livelock_under_converge_fails_with_the_step_limit() {
    let error = within_a_minute(|| {
        let mut sim = spinning(7);
        sim.converge(Duration::from_secs(1), |_| false)
    })
    .unwrap_err();
    assert_eq!(
        error,
        SimError::StepLimit {
            seed: 7,
            at: Duration::ZERO
        }
    );
}

#[test]
fn a_failing_seed_is_named_with_the_command_that_replays_it() {
    let failure = std::panic::catch_unwind(|| {
        run_seeds(10, |seed| assert_ne!(seed, 6, "six is unlucky"));
    })
    .unwrap_err();
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(message.contains("seed 6"), "{message}");
    assert!(message.contains("six is unlucky"), "{message}");
    assert!(
        message.contains("PROCESSION_SEED=6 cargo test"),
        "{message}"
    );
}

/// Holds back every lookup it is asked for: the promise is kept and never set.
#[derive(Default)]
struct Directory {
    held: Vec<Promise<String>>,
}
impl Process for Directory {}

struct Front {
    directory: procession::Pid<Directory>,
}
impl Process for Front {}

impl Front {
    fn ask(&mut self) -> procession::Future<String> {
        procession::dispatch_method(&self.directory, Some("lookup"), |d: &mut Directory| {
            let answer = Promise::new();
            let future = answer.future();
            d.held.push(answer);
            future
        })
        .flatten()
    }
}

#[test]
fn a_stuck_run_names_who_waits_on_whom() {
    let mut sim = Sim::new(8);
    let node = sim.add_node("stuck", |_, _| {});
    let runtime = sim.runtime(node).unwrap();
    let directory = runtime
        .spawn_named("directory", Directory::default())
        .unwrap();
    let front = runtime.spawn_named("front", Front { directory }).unwrap();
    let asked = procession::dispatch_method(&front, Some("ask"), |f: &mut Front| f.ask()).flatten();
    let error = sim.block_on(asked).unwrap_err();
    let SimError::Stuck { waiting, .. } = &error else {
        panic!("not stuck: {error}");
    };
    let report = error.to_string();
    assert!(
        waiting
            .iter()
            .any(|w| w.contains("front@") && w.contains("`lookup`") && w.contains("directory@")),
        "{report}"
    );
    assert!(
        waiting
            .iter()
            .any(|w| w.starts_with("the test waits on `ask` to front@")),
        "{report}"
    );
}

#[test]
fn a_stuck_run_names_a_paused_node_and_its_timers() {
    let mut sim = Sim::new(9);
    let node = sim.add_node("sleepy", |_, _| {});
    let _entered = sim.runtime(node).unwrap().enter();
    let woken = procession::after(Duration::from_secs(5));
    drop(_entered);
    sim.pause(node);
    let error = sim.block_on(woken).unwrap_err();
    let report = error.to_string();
    assert!(report.contains("is paused"), "{report}");
    assert!(report.contains("due at 5s"), "{report}");
}

#[test]
fn a_run_counts_how_its_futures_ended() {
    let mut sim = Sim::new(10);
    let node = sim.add_node("counted", |_, _| {});
    let directory = sim.runtime(node).unwrap().spawn(Directory::default());
    for _ in 0..3 {
        let asked = procession::dispatch(&directory, |d: &mut Directory| d.held.len());
        sim.block_on(asked).unwrap().unwrap();
    }
    let outcomes = sim.outcomes();
    assert_eq!((outcomes.ready, outcomes.abandoned), (3, 0), "{outcomes:?}");

    let held = procession::dispatch(&directory, |d: &mut Directory| {
        let answer = Promise::new();
        let future = answer.future();
        d.held.push(answer);
        future
    })
    .flatten();
    sim.run_for(SETTLE);
    sim.crash(node);
    assert!(held.is_abandoned());
    assert!(sim.outcomes().abandoned >= 1, "{:?}", sim.outcomes());
}
