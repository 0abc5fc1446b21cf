//! `exited` notices, after libprocess's `Exited`, `InjectExited`, `FutureExited` and
//! `DropExited` tests: wait for one, drop one, or inject one for an end that did not happen.

use procession::{
    dispatch, inject_exited, link, terminate, Context, ExitReason, Pid, Process, Runtime, Upid,
};
use procession_testkit::{await_ready, drop_exited, future_exited};

struct Linkee;

impl Process for Linkee {}

/// Links to `to` when it starts, and records every `exited` notice.
struct Linker {
    to: Upid,
    exits: Vec<(Upid, ExitReason)>,
}

impl Process for Linker {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        link(&self.to);
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.exits.push((upid.clone(), reason.clone()));
    }
}

fn linker(runtime: &Runtime, to: &Pid<Linkee>) -> Pid<Linker> {
    let linker = runtime.spawn(Linker {
        to: to.upid(),
        exits: Vec::new(),
    });
    // Linked once initialize ran, which comes before this dispatch.
    await_ready(&dispatch(&linker, |_: &mut Linker| ()));
    linker
}

fn exits(runtime: &Runtime, linker: &Pid<Linker>) -> Vec<(Upid, ExitReason)> {
    runtime.clock().settle();
    await_ready(&dispatch(linker, |l: &mut Linker| l.exits.clone()))
}

#[procession::test(paused)]
fn a_linker_is_told_when_its_linkee_ends(runtime: &Runtime) {
    let linkee = runtime.spawn(Linkee);
    let linker = linker(runtime, &linkee);
    terminate(&linkee);
    assert_eq!(
        exits(runtime, &linker),
        [(linkee.upid(), ExitReason::Normal)]
    );
}

#[procession::test(paused)]
fn future_exited_sees_the_notice_and_lets_it_through(runtime: &Runtime) {
    let linkee = runtime.spawn(Linkee);
    let linker = linker(runtime, &linkee);
    let exited = future_exited(runtime, &linkee, &linker);
    terminate(&linkee);
    assert_eq!(await_ready(&exited), ExitReason::Normal);
    assert_eq!(
        exits(runtime, &linker),
        [(linkee.upid(), ExitReason::Normal)]
    );
}

#[procession::test(paused)]
fn drop_exited_keeps_the_linker_from_learning(runtime: &Runtime) {
    let linkee = runtime.spawn(Linkee);
    let linker = linker(runtime, &linkee);
    let dropped = drop_exited(runtime, &linkee, &linker);
    terminate(&linkee);
    assert_eq!(await_ready(&dropped), ExitReason::Normal);
    assert!(exits(runtime, &linker).is_empty());
}

#[procession::test(paused)]
fn inject_exited_plays_an_end_that_did_not_happen(runtime: &Runtime) {
    let linkee = runtime.spawn(Linkee);
    let linker = linker(runtime, &linkee);
    let seen = future_exited(runtime, &linkee, &linker);
    inject_exited(&linkee.upid(), &linker.upid(), ExitReason::Lost);
    assert_eq!(await_ready(&seen), ExitReason::Lost, "it passes the filter");
    assert_eq!(exits(runtime, &linker), [(linkee.upid(), ExitReason::Lost)]);
    // The linkee is untouched, and its real end is still reported.
    terminate(&linkee);
    assert_eq!(
        exits(runtime, &linker),
        [
            (linkee.upid(), ExitReason::Lost),
            (linkee.upid(), ExitReason::Normal)
        ]
    );
}

#[procession::test(paused)]
fn exited_rules_match_the_ended_process_and_the_linker(runtime: &Runtime) {
    let first = runtime.spawn(Linkee);
    let second = runtime.spawn(Linkee);
    let a = linker(runtime, &first);
    let b = linker(runtime, &second);
    let dropped = drop_exited(runtime, &first, &a);
    inject_exited(&first.upid(), &b.upid(), ExitReason::Lost); // another linker
    inject_exited(&second.upid(), &a.upid(), ExitReason::Lost); // another process
    assert!(dropped.is_pending());
    assert_eq!(exits(runtime, &a), [(second.upid(), ExitReason::Lost)]);
    assert_eq!(exits(runtime, &b), [(first.upid(), ExitReason::Lost)]);
    inject_exited(&first.upid(), &a.upid(), ExitReason::Lost);
    assert_eq!(await_ready(&dropped), ExitReason::Lost);
}
