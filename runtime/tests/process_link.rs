//! Links: `exited` exactly once per link, at once for a gone target, with the exit reason.

#[macro_use]
mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    dispatch, link, terminate, terminate_now, wait, Context, ExitReason, Pid, Process, Runtime,
    Upid,
};

type Exits = Arc<Mutex<Vec<(Upid, ExitReason)>>>;

/// Records every `exited` it gets; links to `link_in_initialize` when it starts.
#[derive(Default)]
struct Monitor {
    exits: Exits,
    link_in_initialize: Option<Upid>,
}

impl Process for Monitor {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        if let Some(target) = &self.link_in_initialize {
            link(target);
        }
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.lock().push((upid.clone(), reason.clone()));
    }
}

struct Target;
impl Process for Target {}

fn monitor(rt: &Runtime) -> (Pid<Monitor>, Exits) {
    let exits = Exits::default();
    let pid = rt.spawn(Monitor {
        exits: exits.clone(),
        link_in_initialize: None,
    });
    (pid, exits)
}

/// Links `monitor` to `target` `times` times, from inside the monitor.
fn link_from(rt: &Runtime, monitor: &Pid<Monitor>, target: &Upid, times: usize) {
    let target = target.clone();
    rt.block_on(dispatch(monitor, move |_: &mut Monitor| {
        for _ in 0..times {
            link(&target);
        }
    }))
    .unwrap();
}

/// The monitor's exits once every event queued to it so far has run (FIFO: the exited notices
/// were queued before this dispatch).
fn exits_of(rt: &Runtime, monitor: &Pid<Monitor>, exits: &Exits) -> Vec<(Upid, ExitReason)> {
    rt.block_on(dispatch(monitor, |_: &mut Monitor| ()))
        .unwrap();
    exits.lock().clone()
}

rt_test!(
    link_then_terminate_delivers_normal_exactly_once,
    |flavor, rt| {
        let target = rt.spawn(Target);
        let (once, once_exits) = monitor(rt);
        let (twice, twice_exits) = monitor(rt);
        link_from(rt, &once, &target.upid(), 1);
        link_from(rt, &twice, &target.upid(), 2);
        terminate(&target);
        rt.block_on(wait(&target)).unwrap();
        let expected = vec![(target.upid(), ExitReason::Normal)];
        assert_eq!(exits_of(rt, &once, &once_exits), expected);
        assert_eq!(
            exits_of(rt, &twice, &twice_exits),
            expected,
            "linked twice, told once"
        );
        // Nothing more arrives later.
        let clock = rt.clock();
        clock.pause();
        clock.settle();
        assert_eq!(exits_of(rt, &twice, &twice_exits), expected);
    }
);

rt_test!(link_made_in_initialize_is_told, |flavor, rt| {
    let target = rt.spawn(Target);
    let exits = Exits::default();
    let watcher = rt.spawn(Monitor {
        exits: exits.clone(),
        link_in_initialize: Some(target.upid()),
    });
    terminate_now(&target);
    rt.block_on(wait(&target)).unwrap();
    // If initialize ran after the target ended, its NotFound notice is queued behind whatever
    // was already in the watcher's mailbox: settle so it has certainly run.
    support::pause_and_settle(rt);
    let got = exits_of(rt, &watcher, &exits);
    assert_eq!(got.len(), 1, "{got:?}");
    // Linked before or after the target ended: Normal if the link came first, else NotFound.
    assert!(
        matches!(got[0].1, ExitReason::Normal | ExitReason::NotFound),
        "{got:?}"
    );
});

rt_test!(
    link_to_a_gone_or_unknown_process_is_told_at_once,
    |flavor, rt| {
        let target = rt.spawn(Target);
        terminate(&target);
        rt.block_on(wait(&target)).unwrap();
        let (watcher, exits) = monitor(rt);
        link_from(rt, &watcher, &target.upid(), 1);
        let never = Upid::new("never-spawned", rt.address());
        link_from(rt, &watcher, &never, 1);
        assert_eq!(
            exits_of(rt, &watcher, &exits),
            vec![
                (target.upid(), ExitReason::NotFound),
                (never, ExitReason::NotFound)
            ]
        );
    }
);

rt_test!(many_linkers_are_each_told_once, |flavor, rt| {
    let target = rt.spawn(Target);
    let monitors: Vec<_> = (0..10).map(|_| monitor(rt)).collect();
    for (pid, _) in &monitors {
        link_from(rt, pid, &target.upid(), 3);
    }
    terminate(&target);
    rt.block_on(wait(&target)).unwrap();
    for (pid, exits) in &monitors {
        assert_eq!(
            exits_of(rt, pid, exits),
            vec![(target.upid(), ExitReason::Normal)]
        );
    }
});

struct Crasher;
impl Process for Crasher {}

rt_test!(
    a_panicking_target_reports_panicked_with_its_message,
    |flavor, rt| {
        let target = rt.spawn(Crasher);
        let (watcher, exits) = monitor(rt);
        link_from(rt, &watcher, &target.upid(), 1);
        let crash = dispatch(&target, |_: &mut Crasher| -> u32 { panic!("boom {}", 42) });
        rt.block_on(wait(&target)).unwrap();
        assert!(crash.is_abandoned());
        assert_eq!(
            exits_of(rt, &watcher, &exits),
            vec![(target.upid(), ExitReason::Panicked("boom 42".into()))]
        );
        // A link made after the crash (the id is freed by then) reports NotFound.
        let (late, late_exits) = monitor(rt);
        link_from(rt, &late, &target.upid(), 1);
        assert_eq!(
            exits_of(rt, &late, &late_exits),
            vec![(target.upid(), ExitReason::NotFound)]
        );
    }
);

rt_test!(
    a_linker_that_ends_first_is_not_told_and_nothing_breaks,
    |flavor, rt| {
        let target = rt.spawn(Target);
        let (watcher, exits) = monitor(rt);
        link_from(rt, &watcher, &target.upid(), 1);
        terminate(&watcher);
        rt.block_on(wait(&watcher)).unwrap();
        terminate(&target);
        rt.block_on(wait(&target)).unwrap();
        let clock = rt.clock();
        clock.pause();
        clock.settle();
        assert!(exits.lock().is_empty());
    }
);

rt_test!(
    link_outside_a_process_panics_with_a_clear_message,
    |flavor, rt| {
        let target = rt.spawn(Target);
        let upid = target.upid();
        let outside = support::panic_message_of(|| link(&upid)).expect("link outside a process");
        assert!(
            outside.contains("link must be called from a process"),
            "{outside}"
        );
        let entered = rt.enter();
        let in_runtime = support::panic_message_of(|| link(&upid)).expect("not in a process");
        assert!(
            in_runtime.contains("link must be called from a process"),
            "{in_runtime}"
        );
        drop(entered);
        // The runtime is unharmed.
        assert_eq!(
            rt.block_on(dispatch(&target, |_: &mut Target| 5)).unwrap(),
            5
        );
    }
);

#[test]
fn exit_reasons_display_in_lower_case() {
    assert_eq!(ExitReason::Normal.to_string(), "terminated");
    assert_eq!(
        ExitReason::Panicked("boom".into()).to_string(),
        "panicked: boom"
    );
    assert!(ExitReason::Lost.to_string().starts_with("lost"));
    assert_eq!(ExitReason::NotFound.to_string(), "not found");
}
