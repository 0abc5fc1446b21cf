//! Incarnations: every Upid a runtime hands out names its run, and an event for a process of
//! another run of the same address is one for a gone process, whatever holds its id now.

#[macro_use]
mod support;

use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    dispatch, link, post, send, Context, ExitReason, Message, Pid, Process, Runtime, Upid,
};

#[derive(serde::Serialize, serde::Deserialize)]
struct Note(u32);
impl Message for Note {
    const NAME: &'static str = "incarnation::Note";
}

/// Records the notes and exit notices it gets.
#[derive(Default)]
struct Recorder {
    notes: Arc<Mutex<Vec<u32>>>,
    exits: Arc<Mutex<Vec<(Upid, ExitReason)>>>,
}

impl Process for Recorder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Note(n)| me.notes.lock().push(n))
            .unwrap();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.lock().push((upid.clone(), reason.clone()));
    }
}

/// `upid` as another run of its runtime would have handed it out.
fn of_another_run(upid: &Upid) -> Upid {
    let other = upid.incarnation().unwrap().wrapping_add(1).max(1);
    format!("{upid}#{other:x}").parse().unwrap()
}

/// What `pid` has recorded once every event queued to it so far has run.
fn recorded(rt: &Runtime, pid: &Pid<Recorder>) -> (Vec<u32>, Vec<(Upid, ExitReason)>) {
    rt.block_on(dispatch(pid, |me: &mut Recorder| {
        (me.notes.lock().clone(), me.exits.lock().clone())
    }))
    .unwrap()
}

#[test]
fn every_upid_of_a_runtime_carries_its_incarnation() {
    let (a, b) = (Runtime::new(), Runtime::new());
    let inc = a.inbound().incarnation();
    assert_ne!(inc, 0);
    assert_ne!(
        inc,
        b.inbound().incarnation(),
        "two runs draw two incarnations"
    );
    let _entered = a.enter();
    for pid in [a.spawn(Recorder::default()), a.spawn(Recorder::default())] {
        assert_eq!(pid.upid().incarnation(), Some(inc));
    }
}

#[test]
fn a_seed_draws_the_same_incarnation_every_time() {
    let run = |seed| {
        Runtime::builder()
            .deterministic(seed)
            .build()
            .unwrap()
            .inbound()
            .incarnation()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn the_incarnation_is_not_part_of_a_upids_identity() {
    let bare: Upid = "worker(1)@10.0.0.1:5050".parse().unwrap();
    let run: Upid = "worker(1)@10.0.0.1:5050#2a".parse().unwrap();
    assert_eq!(bare, run);
    assert_eq!(bare.cmp(&run), std::cmp::Ordering::Equal);
    let state = std::hash::RandomState::new();
    assert_eq!(state.hash_one(&bare), state.hash_one(&run));
    assert_eq!((bare.incarnation(), run.incarnation()), (None, Some(0x2a)));
    assert_eq!(format!("{run}"), "worker(1)@10.0.0.1:5050");
    assert_eq!(format!("{run:#}"), "worker(1)@10.0.0.1:5050#2a");
    assert_eq!(format!("{bare:#}"), "worker(1)@10.0.0.1:5050");
    assert_eq!(format!("{run:?}"), "Upid(worker(1)@10.0.0.1:5050#2a)");
    for bad in [
        "a@1.2.3.4:5#",
        "a@1.2.3.4:5#0",
        "a@1.2.3.4:5#xyz",
        "a@1.2.3.4:5#+1",
    ] {
        assert!(bad.parse::<Upid>().is_err(), "{bad}");
    }
}

rt_test!(
    a_message_for_another_run_is_dropped_and_counted,
    |_flavor, rt| {
        let pid = rt.spawn(Recorder::default());
        let current = pid.upid();
        let bare = Upid::new(current.id(), current.address());
        let stale = of_another_run(&current);
        let dropped = rt.stats().dropped_messages;
        let _entered = rt.enter();
        send(&current, Note(1));
        send(&stale, Note(2));
        post(&stale, &stale, Note(3));
        send(&bare, Note(4));
        assert_eq!(recorded(rt, &pid).0, [1, 4]);
        assert_eq!(rt.stats().dropped_messages, dropped + 2);
    }
);

rt_test!(a_link_to_another_run_reports_not_found, |_flavor, rt| {
    let target = rt.spawn(Recorder::default());
    let linker = rt.spawn(Recorder::default());
    let stale = of_another_run(&target.upid());
    let current = target.upid();
    let named = stale.clone();
    rt.block_on(dispatch(&linker, move |_: &mut Recorder| {
        link(&named);
        link(&current);
    }))
    .unwrap();
    let (_, exits) = recorded(rt, &linker);
    assert_eq!(exits, [(target.upid(), ExitReason::NotFound)]);
    assert_eq!(exits[0].0.incarnation(), stale.incarnation());
});

/// Records the links a runtime asks its transport for.
#[derive(Default)]
struct Links(Mutex<Vec<Upid>>);
impl procession::Transport for Links {
    fn send(&self, _: &Upid, _: &Upid, _: &procession::Outgoing<'_>) {}
    fn link(&self, _: &Upid, to: &Upid) {
        self.0.lock().push(to.clone());
    }
    fn exited(&self, _: &Upid, _: &Upid, _: &ExitReason) {}
}

rt_test!(
    links_to_two_runs_of_a_remote_process_end_apart,
    |_flavor, rt| {
        let links = Arc::new(Links::default());
        let inbound = rt.inbound();
        inbound.set_transport(links.clone());
        let linker = rt.spawn(Recorder::default());
        let [last, next, any]: [Upid; 3] = [
            "worker(1)@10.0.0.9:5050#1".parse().unwrap(),
            "worker(1)@10.0.0.9:5050#2".parse().unwrap(),
            "worker(1)@10.0.0.9:5050".parse().unwrap(),
        ];
        let to_link = [last.clone(), next.clone(), last.clone()];
        rt.block_on(dispatch(&linker, move |_: &mut Recorder| {
            to_link.iter().for_each(link);
        }))
        .unwrap();
        // The same process of two runs is two links; a repeat of one is not a third.
        let asked: Vec<_> = links.0.lock().iter().map(Upid::incarnation).collect();
        assert_eq!(asked, [Some(1), Some(2)]);

        // The last run's process ends: only the link to it ends.
        inbound.exited(&last, &ExitReason::Normal);
        let (_, exits) = recorded(rt, &linker);
        let seen: Vec<_> = exits
            .iter()
            .map(|(u, r)| (u.incarnation(), r.clone()))
            .collect();
        assert_eq!(seen, [(Some(1), ExitReason::Normal)]);

        // The node is lost: the link to the new run ends too, reported as the Upid it named.
        inbound.peer_lost(any.address());
        let (_, exits) = recorded(rt, &linker);
        let seen: Vec<_> = exits
            .iter()
            .map(|(u, r)| (u.incarnation(), r.clone()))
            .collect();
        assert_eq!(
            seen,
            [(Some(1), ExitReason::Normal), (Some(2), ExitReason::Lost)]
        );

        // A link to the name and one to its run: one notice from the run ends both, once.
        let names = [any.clone(), next.clone()];
        rt.block_on(dispatch(&linker, move |_: &mut Recorder| {
            names.iter().for_each(link);
        }))
        .unwrap();
        inbound.exited(&next, &ExitReason::Normal);
        let (_, exits) = recorded(rt, &linker);
        assert_eq!(exits.len(), 3, "{exits:?}");
        assert_eq!(exits[2].0.incarnation(), Some(2));

        // NotFound for a run that is gone (the echo of a link to it) leaves a link to the name.
        let names = [any.clone(), last.clone()];
        rt.block_on(dispatch(&linker, move |_: &mut Recorder| {
            names.iter().for_each(link);
        }))
        .unwrap();
        inbound.exited(&last, &ExitReason::NotFound);
        inbound.exited(&any, &ExitReason::Normal);
        let (_, exits) = recorded(rt, &linker);
        let seen: Vec<_> = exits[3..]
            .iter()
            .map(|(u, r)| (u.incarnation(), r.clone()))
            .collect();
        assert_eq!(
            seen,
            [(Some(1), ExitReason::NotFound), (None, ExitReason::Normal)]
        );
        inbound.clear_transport();
    }
);
