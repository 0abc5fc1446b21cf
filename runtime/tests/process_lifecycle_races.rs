//! Regressions from the review of the lifecycle: endings that overlap, restarts that overlap,
//! and what the bound and shutdown must not lose.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use parking_lot::Mutex;
use procession::{
    cast, cast_wait, dispatch, link, monitor, spawn_child, supervise, terminate, terminate_now,
    wait, Context, ExitReason, Pid, Process, Runtime, SpawnOptions, Strategy, Supervisor,
};

type Log = Arc<Mutex<Vec<&'static str>>>;

/// Logs its finalize; `hold` makes finalize wait for the test's signal.
struct Node {
    name: &'static str,
    log: Log,
    hold: Option<mpsc::Receiver<()>>,
}

impl Node {
    fn new(name: &'static str, log: &Log) -> Self {
        Node {
            name,
            log: log.clone(),
            hold: None,
        }
    }
}

impl Process for Node {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        if let Some(hold) = self.hold.take() {
            let _ = hold.recv_timeout(Duration::from_secs(10));
        }
        self.log.lock().push(self.name);
    }
}

#[test]
fn a_parent_waits_for_a_child_that_is_itself_still_ending() {
    let rt = Runtime::builder().workers(3).build().unwrap();
    let log = Log::default();
    let (release, hold) = mpsc::channel();
    let p = rt.spawn(Node::new("P", &log));
    let l = log.clone();
    let c = rt
        .block_on(dispatch(&p, move |_: &mut Node| {
            spawn_child(Node::new("C", &l))
        }))
        .unwrap();
    let l = log.clone();
    rt.block_on(dispatch(&c, move |_: &mut Node| {
        spawn_child(Node {
            hold: Some(hold),
            ..Node::new("G", &l)
        });
    }))
    .unwrap();
    let grandchild_started = monitor(&c);
    terminate(&c); // C ends G first, and G's finalize waits for the signal.
    terminate(&p);
    let parent_ended = wait(&p);
    assert!(
        !parent_ended.wait_for(Duration::from_millis(100)),
        "P ended while its child C was still ending"
    );
    release.send(()).unwrap();
    rt.block_on(parent_ended).unwrap();
    assert!(grandchild_started.is_ready());
    assert_eq!(*log.lock(), ["G", "C", "P"]);
}

/// Links in `finalize`: it must run in the process's context even after its children ended.
struct Linker {
    other: procession::Upid,
}

impl Process for Linker {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        link(&self.other);
    }
}

rt_test!(
    finalize_after_the_children_runs_in_the_process,
    |flavor, rt| {
        let other = rt.spawn(Node::new("other", &Log::default()));
        let parent = rt.spawn(Linker {
            other: other.upid(),
        });
        rt.block_on(dispatch(&parent, |_: &mut Linker| {
            spawn_child(Node::new("child", &Log::default()));
        }))
        .unwrap();
        let ended = monitor(&parent);
        terminate(&parent);
        assert_eq!(rt.block_on(ended).unwrap(), ExitReason::Normal);
    }
);

/// Spawns a child from `finalize`.
struct LateParent {
    child: Arc<Mutex<Option<Pid<Node>>>>,
}

impl Process for LateParent {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        *self.child.lock() = Some(spawn_child(Node::new("late", &Log::default())));
    }
}

rt_test!(
    a_child_spawned_in_finalize_does_not_outlive_its_parent,
    |flavor, rt| {
        let slot = Arc::new(Mutex::new(None));
        let parent = rt.spawn(LateParent {
            child: slot.clone(),
        });
        terminate(&parent);
        rt.block_on(wait(&parent)).unwrap();
        let child = slot.lock().clone().expect("finalize ran");
        rt.block_on(wait(&child)).unwrap();
    }
);

rt_test!(
    a_terminate_queues_behind_senders_waiting_at_the_bound,
    |flavor, rt| {
        let log = Log::default();
        let node = rt
            .spawn_with(Node::new("bounded", &log), SpawnOptions::new().bounded(1))
            .unwrap();
        // Deterministic mode runs nothing until driven, so these meet a full mailbox there.
        let first = dispatch(&node, |_: &mut Node| 1);
        let second = dispatch(&node, |_: &mut Node| 2);
        terminate(&node);
        assert_eq!(rt.block_on(first).unwrap(), 1);
        assert_eq!(
            rt.block_on(second).unwrap(),
            2,
            "the terminate came after it"
        );
    }
);

rt_test!(
    an_abandoned_waiter_may_touch_its_process_while_it_ends,
    |flavor, rt| {
        let node = rt
            .spawn_with(
                Node::new("bounded", &Log::default()),
                SpawnOptions::new().bounded(1),
            )
            .unwrap();
        let busy = cast(&node, |_: &mut Node| ());
        assert!(busy || !flavor.is_deterministic());
        let target = node.clone();
        let waiting = cast_wait(&node, |_: &mut Node| ());
        let _ = cast_wait(&node, |_: &mut Node| ());
        waiting.on_abandoned(move || {
            // Runs while the process ends: it must not find the mailbox locked by its own thread.
            let _ = wait(&target);
        });
        terminate_now(&node);
        rt.block_on(wait(&node)).unwrap();
    }
);

#[derive(Default)]
struct Crashy;
impl Process for Crashy {}

rt_test!(
    overlapping_crashes_under_one_for_all_do_not_kill_the_supervisor,
    |flavor, rt| {
        let sup =
            rt.spawn(Supervisor::new(Strategy::OneForAll).intensity(10, Duration::from_secs(60)));
        let a = rt.block_on(supervise(&sup, Crashy::default)).unwrap();
        let b = rt.block_on(supervise(&sup, Crashy::default)).unwrap();
        let alive = monitor(&sup);
        let _ = dispatch(&b, |_: &mut Crashy| -> () { panic!("b") });
        let _ = dispatch(&a, |_: &mut Crashy| -> () { panic!("a") });
        let clock = rt.clock();
        clock.pause();
        clock.settle();
        assert!(alive.is_pending(), "{flavor}: the supervisor survived");
        assert_eq!(rt.block_on(dispatch(&a, |_: &mut Crashy| 1)).unwrap(), 1);
        assert_eq!(rt.block_on(dispatch(&b, |_: &mut Crashy| 2)).unwrap(), 2);
    }
);

rt_test!(
    a_supervisor_forgets_children_that_ended_on_purpose,
    |flavor, rt| {
        let sup = rt.spawn(Supervisor::new(Strategy::OneForOne));
        for _ in 0..100 {
            let child = rt.block_on(supervise(&sup, Crashy::default)).unwrap();
            terminate(&child);
            rt.block_on(wait(&child)).unwrap();
        }
        let clock = rt.clock();
        clock.pause();
        clock.settle();
        let described = rt.block_on(dispatch(&sup, |s: &mut Supervisor| format!("{s:?}")));
        assert!(described.unwrap().contains("children: 0"));
    }
);

#[test]
fn after_the_shutdown_deadline_leftovers_answer_instead_of_hanging() {
    let rt = Runtime::builder()
        .workers(2)
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let stuck = rt.spawn(Node::new("stuck", &Log::default()));
    let (started, running) = mpsc::channel();
    let _ = dispatch(&stuck, move |_: &mut Node| {
        started.send(()).unwrap();
        let _ = gate.recv_timeout(Duration::from_secs(30));
    });
    running.recv().unwrap();
    let queued = dispatch(&stuck, |_: &mut Node| 1);
    let report = rt.shutdown();
    assert!(!report.is_complete());
    assert!(
        queued.is_abandoned(),
        "queued work is abandoned, not left pending"
    );
    assert_eq!(monitor(&stuck).get(), Some(ExitReason::Abandoned));
    release.send(()).unwrap();
}

#[test]
fn after_the_shutdown_deadline_the_rest_of_a_stuck_handlers_batch_never_runs() {
    let rt = Runtime::builder()
        .workers(1)
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let log = Log::default();
    let stuck = rt.spawn(Node::new("stuck", &log));
    let other = rt.spawn(Node::new("other", &log));
    // The one worker waits in `other` while both events are queued to `stuck`, so that its
    // visit takes them as one batch.
    let (queued, hold) = mpsc::channel::<()>();
    let _ = dispatch(&other, move |_: &mut Node| {
        let _ = hold.recv_timeout(Duration::from_secs(30));
    });
    let (release, gate) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel();
    let _ = dispatch(&stuck, move |_: &mut Node| {
        started.send(()).unwrap();
        let _ = gate.recv_timeout(Duration::from_secs(30));
    });
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let later = dispatch(&stuck, move |_: &mut Node| {
        flag.store(true, Ordering::SeqCst)
    });
    queued.send(()).unwrap();
    running.recv().unwrap();
    let report = rt.shutdown();
    assert!(!report.is_complete());
    release.send(()).unwrap();
    assert!(later.wait_for(Duration::from_secs(20)), "{later:?}");
    assert!(later.is_abandoned(), "{later:?}");
    assert!(
        !ran.load(Ordering::SeqCst),
        "nothing of it runs after the shutdown"
    );
}
