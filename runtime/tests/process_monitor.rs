//! Monitors: one notification when the target ends, with its reason, without a link; withdrawn
//! by `demonitor`; at once for a target already gone; across the transport seam too.

#[macro_use]
mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    demonitor, dispatch, monitor, terminate, wait, ExitReason, Outgoing, Process, Runtime,
    Transport, Upid,
};

struct Target;
impl Process for Target {}

rt_test!(a_monitor_reports_a_normal_end_once, |flavor, rt| {
    let target = rt.spawn(Target);
    let first = monitor(&target);
    let second = {
        // By Upid: resolved in the current runtime.
        let _entered = rt.enter();
        monitor(&target.upid())
    };
    terminate(&target);
    assert_eq!(rt.block_on(first).unwrap(), ExitReason::Normal);
    assert_eq!(rt.block_on(second).unwrap(), ExitReason::Normal);
});

rt_test!(a_monitor_reports_a_panic, |flavor, rt| {
    let target = rt.spawn(Target);
    let ended = monitor(&target);
    let _ = dispatch(&target, |_: &mut Target| -> () { panic!("boom") });
    assert_eq!(
        rt.block_on(ended).unwrap(),
        ExitReason::Panicked("boom".into())
    );
});

rt_test!(demonitor_withdraws_the_notification, |flavor, rt| {
    let target = rt.spawn(Target);
    let withdrawn = monitor(&target);
    let kept = monitor(&target);
    demonitor(&withdrawn);
    assert!(
        withdrawn.is_discarded(),
        "withdrawn at once, not at the end"
    );
    terminate(&target);
    rt.block_on(wait(&target)).unwrap();
    assert!(withdrawn.is_discarded());
    assert_eq!(rt.block_on(kept).unwrap(), ExitReason::Normal);
});

rt_test!(
    monitoring_a_process_already_gone_answers_at_once,
    |flavor, rt| {
        let target = rt.spawn(Target);
        terminate(&target);
        rt.block_on(wait(&target)).unwrap();
        assert_eq!(monitor(&target).get(), Some(ExitReason::Normal));
        let _entered = rt.enter();
        let never: Upid = Upid::new("never-spawned", rt.address());
        assert_eq!(monitor(&never).get(), Some(ExitReason::NotFound));
    }
);

rt_test!(a_monitor_does_not_affect_its_target, |flavor, rt| {
    let target = rt.spawn(Target);
    let watched = monitor(&target);
    drop(watched);
    assert_eq!(
        rt.block_on(dispatch(&target, |_: &mut Target| 5)).unwrap(),
        5
    );
});

#[derive(Default)]
struct Links(Mutex<Vec<(Upid, Upid)>>);

impl Transport for Links {
    fn send(&self, _: &Upid, _: &Upid, _: &Outgoing<'_>) {}
    fn link(&self, linker: &Upid, to: &Upid) {
        self.0.lock().push((linker.clone(), to.clone()));
    }
    fn exited(&self, _: &Upid, _: &Upid, _: &ExitReason) {}
}

#[test]
fn remote_monitors_go_through_the_transport() {
    let rt = Runtime::builder().paused().build().unwrap();
    let remote: Upid = "agent@10.0.0.7:5051".parse().unwrap();
    let _entered = rt.enter();
    assert_eq!(
        monitor(&remote).get(),
        Some(ExitReason::Lost),
        "no transport: the node is unreachable"
    );
    let links = Arc::new(Links::default());
    rt.inbound().set_transport(links.clone());
    let first = monitor(&remote);
    let second = monitor(&remote);
    assert_eq!(links.0.lock().len(), 1, "one watch per remote process");
    rt.inbound().exited(&remote, &ExitReason::Normal);
    assert_eq!(first.get(), Some(ExitReason::Normal));
    assert_eq!(second.get(), Some(ExitReason::Normal));
    let other: Upid = "agent@10.0.0.8:5051".parse().unwrap();
    let lost = monitor(&other);
    rt.inbound().peer_lost(other.address());
    assert_eq!(lost.get(), Some(ExitReason::Lost));
}
