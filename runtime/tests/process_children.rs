//! Parents and children: children end first, newest first, each with its subtree; the parent
//! hears how each child ended; shutdown ends top-level processes newest first and reports what
//! missed its deadline.

#[macro_use]
mod support;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use parking_lot::Mutex;
use procession::{
    dispatch, monitor, spawn_child, terminate, terminate_now, wait, Context, ExitReason, Pid,
    Process, Runtime, Upid,
};

type Log = Arc<Mutex<Vec<String>>>;

/// Logs its `finalize` and the `exited` notices it receives.
struct Node {
    name: String,
    log: Log,
}

impl Node {
    fn new(name: &str, log: &Log) -> Node {
        Node {
            name: name.to_owned(),
            log: log.clone(),
        }
    }

    /// Spawns the named children; each name `a/b` is a grandchild `b` under child `a`.
    fn grow(&mut self, names: &[&str]) -> Vec<Pid<Node>> {
        names
            .iter()
            .map(|name| spawn_child(Node::new(name, &self.log)))
            .collect()
    }
}

impl Process for Node {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.log.lock().push(format!("finalize {}", self.name));
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        let _ = upid;
        self.log
            .lock()
            .push(format!("{} saw a child end: {reason}", self.name));
    }
}

/// A three-level tree: root → (a, b), a → (a1, a2), b → (b1).
fn tree(rt: &Runtime, log: &Log) -> Pid<Node> {
    let root = rt.spawn(Node::new("root", log));
    let children = rt
        .block_on(dispatch(&root, |r: &mut Node| r.grow(&["a", "b"])))
        .unwrap();
    rt.block_on(dispatch(&children[0], |a: &mut Node| {
        a.grow(&["a1", "a2"]);
    }))
    .unwrap();
    rt.block_on(dispatch(&children[1], |b: &mut Node| {
        b.grow(&["b1"]);
    }))
    .unwrap();
    root
}

fn finalizes(log: &Log) -> Vec<String> {
    let log = log.lock();
    log.iter()
        .filter_map(|line| line.strip_prefix("finalize ").map(str::to_owned))
        .collect()
}

rt_test!(a_tree_ends_children_first_newest_first, |flavor, rt| {
    let log = Log::default();
    let root = tree(rt, &log);
    terminate(&root);
    rt.block_on(wait(&root)).unwrap();
    assert_eq!(finalizes(&log), ["b1", "b", "a2", "a1", "a", "root"]);
});

rt_test!(
    terminate_now_on_a_parent_still_ends_its_children,
    |flavor, rt| {
        let log = Log::default();
        let root = tree(rt, &log);
        terminate_now(&root);
        rt.block_on(wait(&root)).unwrap();
        assert_eq!(finalizes(&log), ["b1", "b", "a2", "a1", "a", "root"]);
    }
);

rt_test!(a_parent_hears_how_each_child_ended, |flavor, rt| {
    let log = Log::default();
    let parent = rt.spawn(Node::new("parent", &log));
    let kids = rt
        .block_on(dispatch(&parent, |p: &mut Node| {
            p.grow(&["calm", "crashy"])
        }))
        .unwrap();
    terminate(&kids[0]);
    let _ = dispatch(&kids[1], |_: &mut Node| -> () { panic!("child bug") });
    rt.block_on(wait(&kids[0])).unwrap();
    rt.block_on(wait(&kids[1])).unwrap();
    // The notices are events of the parent: a dispatch behind them sees them all.
    rt.block_on(dispatch(&parent, |_: &mut Node| ())).unwrap();
    let log = log.lock().clone();
    assert!(
        log.contains(&"parent saw a child end: terminated".to_owned()),
        "{log:?}"
    );
    assert!(
        log.contains(&"parent saw a child end: panicked: child bug".to_owned()),
        "{log:?}"
    );
});

rt_test!(a_crashing_parent_ends_its_children_first, |flavor, rt| {
    let log = Log::default();
    let parent = rt.spawn(Node::new("parent", &log));
    let kids = rt
        .block_on(dispatch(&parent, |p: &mut Node| p.grow(&["k1", "k2"])))
        .unwrap();
    let ended = monitor(&parent);
    let _ = dispatch(&parent, |_: &mut Node| -> () { panic!("parent bug") });
    assert_eq!(
        rt.block_on(ended).unwrap(),
        ExitReason::Panicked("parent bug".into())
    );
    assert!(wait(&kids[0]).is_ready() && wait(&kids[1]).is_ready());
    assert_eq!(
        finalizes(&log),
        ["k2", "k1"],
        "no finalize for the crashed parent"
    );
});

rt_test!(an_ending_parent_accepts_no_more_work, |flavor, rt| {
    let log = Log::default();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let parent = rt.spawn(Node::new("parent", &log));
    let kids = rt
        .block_on(dispatch(&parent, |p: &mut Node| p.grow(&["slow"])))
        .unwrap();
    // Keep the child busy so the parent is caught mid-ending.
    let held = gate.clone();
    if !flavor.is_deterministic() {
        let _ = dispatch(&kids[0], move |_: &mut Node| {
            let _ = held.lock().recv_timeout(Duration::from_secs(10));
        });
    }
    terminate(&parent);
    let late = dispatch(&parent, |_: &mut Node| 1);
    release.send(()).unwrap();
    rt.block_on(wait(&parent)).unwrap();
    assert!(
        late.is_abandoned(),
        "work sent to an ending parent is abandoned"
    );
});

#[test]
#[should_panic(expected = "spawn_child must be called from a process's handler")]
fn a_child_needs_a_parent() {
    let rt = Runtime::new();
    let _entered = rt.enter();
    spawn_child(Node::new("orphan", &Log::default()));
}

rt_test!(
    shutdown_ends_top_level_processes_newest_first,
    |flavor, rt| {
        let log = Log::default();
        let runtime = flavor.build();
        let first = tree(&runtime, &log);
        let _second = runtime.spawn(Node::new("second", &log));
        let _third = runtime.spawn(Node::new("third", &log));
        drop(first);
        let report = runtime.shutdown();
        assert!(report.is_complete());
        assert_eq!(
            finalizes(&log),
            ["third", "second", "b1", "b", "a2", "a1", "a", "root"]
        );
        let _ = rt;
    }
);

#[test]
fn shutdown_abandons_and_reports_what_misses_the_deadline() {
    let rt = Runtime::builder()
        .workers(2)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let stuck = rt.spawn(Node::new("stuck", &Log::default()));
    let upid = stuck.upid();
    let (started, running) = mpsc::channel();
    let _ = dispatch(&stuck, move |_: &mut Node| {
        started.send(()).unwrap();
        // A handler that blocks (a bug): shutdown must not hang on it.
        let _ = gate.recv_timeout(Duration::from_secs(30));
    });
    running.recv().unwrap();
    let report = rt.shutdown();
    assert!(!report.is_complete());
    assert_eq!(report.unfinished(), [upid]);
    release.send(()).unwrap();
}
