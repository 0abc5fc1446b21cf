//! The filter point: dropped dispatches end abandoned, dropped messages and `exited` notices are
//! gone, and a filter belongs to one runtime.

#[macro_use]
mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    dispatch, dispatch_method, link, send, terminate, wait, Context, EventView, ExitReason, Filter,
    Message, MessageBody, Pid, Process, Runtime, Upid, Verdict,
};
use serde::{Deserialize, Serialize};

/// A filter from a closure, recording a line per event it sees.
struct Rule<F> {
    decide: F,
    seen: Mutex<Vec<String>>,
}

impl<F> Filter for Rule<F>
where
    F: Fn(&EventView<'_>) -> Verdict + Send + Sync + 'static,
{
    fn filter(&self, event: &EventView<'_>) -> Verdict {
        let verdict = (self.decide)(event);
        let line = match event {
            EventView::Dispatch { to, method } => format!("dispatch {} {method:?}", to.id()),
            EventView::Message { name, .. } => format!("message {name}"),
            EventView::Exited { upid, reason, .. } => format!("exited {} {reason}", upid.id()),
            _ => "other".to_owned(),
        };
        self.seen.lock().push(format!("{line} -> {verdict:?}"));
        verdict
    }
}

fn install<F>(rt: &Runtime, decide: F) -> Arc<Rule<F>>
where
    F: Fn(&EventView<'_>) -> Verdict + Send + Sync + 'static,
{
    let rule = Arc::new(Rule {
        decide,
        seen: Mutex::new(Vec::new()),
    });
    rt.set_filter(Some(rule.clone()));
    rule
}

#[derive(Serialize, Deserialize)]
struct Ping(u32);
impl Message for Ping {
    const NAME: &'static str = "filter::Ping";
}

#[derive(Serialize, Deserialize)]
struct Pong(u32);
impl Message for Pong {
    const NAME: &'static str = "filter::Pong";
}

/// Records the messages and exits it receives.
#[derive(Default)]
struct Target {
    got: Arc<Mutex<Vec<String>>>,
}

impl Process for Target {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Ping(n)| me.got.lock().push(format!("ping {n}")))
            .unwrap();
        ctx.install(|me: &mut Self, _: &Upid, Pong(n)| me.got.lock().push(format!("pong {n}")))
            .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.got
            .lock()
            .push(format!("exited {} {reason}", upid.id()));
    }
}

fn target(rt: &Runtime) -> (Pid<Target>, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    (rt.spawn(Target { got: got.clone() }), got)
}

fn settle(rt: &Runtime) {
    support::pause_and_settle(rt);
}

rt_test!(a_dropped_dispatch_ends_abandoned, |flavor, rt| {
    let (pid, _) = target(rt);
    rt.block_on(dispatch(&pid, |_: &mut Target| ())).unwrap();
    let rule = install(rt, |event| match event {
        EventView::Dispatch { .. } => Verdict::Drop,
        _ => Verdict::Deliver,
    });
    let dropped = dispatch(&pid, |_: &mut Target| 1);
    assert!(
        dropped.is_abandoned(),
        "dropped at the filter point: abandoned at once"
    );
    assert_eq!(
        *rule.seen.lock(),
        [format!("dispatch {} None -> Drop", pid.id())]
    );
    rt.set_filter(None);
    assert_eq!(rt.block_on(dispatch(&pid, |_: &mut Target| 2)).unwrap(), 2);
    assert_eq!(rule.seen.lock().len(), 1, "a removed filter sees nothing");
});

rt_test!(dispatches_are_matched_by_method_name, |flavor, rt| {
    let (pid, _) = target(rt);
    install(rt, |event| match event {
        EventView::Dispatch {
            method: Some("poke"),
            ..
        } => Verdict::Drop,
        _ => Verdict::Deliver,
    });
    let poke = dispatch_method(&pid, Some("poke"), |_: &mut Target| 1);
    let prod = dispatch_method(&pid, Some("prod"), |_: &mut Target| 2);
    let plain = dispatch(&pid, |_: &mut Target| 3);
    assert!(poke.is_abandoned());
    assert_eq!(rt.block_on(prod).unwrap(), 2);
    assert_eq!(rt.block_on(plain).unwrap(), 3);
});

rt_test!(a_dropped_message_never_reaches_the_handler, |flavor, rt| {
    let _entered = rt.enter();
    let (pid, got) = target(rt);
    let captured = Arc::new(Mutex::new(Vec::new()));
    let capture = captured.clone();
    install(rt, move |event| match event {
        EventView::Message { name, body, .. } if *name == Ping::NAME => {
            if let MessageBody::Local(value) = body {
                capture.lock().push(value.downcast_ref::<Ping>().unwrap().0);
            }
            Verdict::Drop
        }
        _ => Verdict::Deliver,
    });
    send(&pid.upid(), Ping(1));
    send(&pid.upid(), Pong(2));
    send(&pid.upid(), Ping(3));
    settle(rt);
    assert_eq!(*got.lock(), ["pong 2"]);
    assert_eq!(
        *captured.lock(),
        [1, 3],
        "the filter saw the values it dropped"
    );
    assert_eq!(rt.stats().dropped_messages, 2);
});

rt_test!(a_dropped_exited_notice_is_never_delivered, |flavor, rt| {
    let (watcher, got) = target(rt);
    let (first, _) = target(rt);
    let (second, _) = target(rt);
    let dropped_id = first.id().to_owned();
    let rule = install(rt, move |event| match event {
        EventView::Exited { upid, .. } if upid.id() == dropped_id => Verdict::Drop,
        _ => Verdict::Deliver,
    });
    let targets = [first.upid(), second.upid()];
    rt.block_on(dispatch(&watcher, move |_: &mut Target| {
        targets.iter().for_each(link)
    }))
    .unwrap();
    for pid in [&first, &second] {
        terminate(pid);
        rt.block_on(wait(pid)).unwrap();
    }
    settle(rt);
    assert_eq!(*got.lock(), [format!("exited {} terminated", second.id())]);
    let exited_lines: Vec<String> = rule
        .seen
        .lock()
        .iter()
        .filter(|l| l.starts_with("exited"))
        .cloned()
        .collect();
    assert_eq!(
        exited_lines,
        [
            format!("exited {} terminated -> Drop", first.id()),
            format!("exited {} terminated -> Deliver", second.id()),
        ]
    );
});

rt_test!(filters_are_per_runtime, |flavor| {
    let (filtered, open) = (flavor.build(), flavor.build());
    let rule = install(&filtered, |_| Verdict::Drop);
    let (on_filtered, _) = target(&filtered);
    let (on_open, got) = target(&open);
    assert!(dispatch(&on_filtered, |_: &mut Target| 1).is_abandoned());
    assert_eq!(
        open.block_on(dispatch(&on_open, |_: &mut Target| 2))
            .unwrap(),
        2
    );
    {
        let _entered = open.enter();
        send(&on_open.upid(), Ping(5));
    }
    settle(&open);
    assert_eq!(*got.lock(), ["ping 5"]);
    // Both processes are `target(1)` on their runtimes; the filter saw one event only.
    assert_eq!(
        *rule.seen.lock(),
        [format!("dispatch {} None -> Drop", on_filtered.id())],
        "the filter saw another runtime's events"
    );
    filtered.shutdown();
    open.shutdown();
});

/// Sends a `Ping` to `to` when its last handle goes (on the thread that drops it, with its
/// runtime entered): a filter whose drop completes futures whose callbacks send, as the
/// testkit's does.
struct SendsWhenDropped {
    to: Upid,
}

impl Filter for SendsWhenDropped {
    fn filter(&self, _: &EventView<'_>) -> Verdict {
        Verdict::Deliver
    }
}

impl Drop for SendsWhenDropped {
    fn drop(&mut self) {
        send(&self.to, Ping(1));
    }
}

#[test]
fn replacing_a_filter_whose_drop_sends_does_not_deadlock() {
    let rt = Arc::new(Runtime::new());
    let (target, seen) = target(&rt);
    rt.set_filter(Some(Arc::new(SendsWhenDropped { to: target.upid() })));
    let (done, finished) = std::sync::mpsc::channel();
    let replacing = rt.clone();
    // On a thread of its own, left behind if it hangs, so that a hang fails the test.
    std::thread::spawn(move || {
        let _entered = replacing.enter();
        replacing.set_filter(None);
        let _ = done.send(());
    });
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .is_ok(),
        "set_filter hung: the old filter was dropped under the slot's lock"
    );
    settle(&rt);
    assert_eq!(*seen.lock(), ["ping 1"]);
}
