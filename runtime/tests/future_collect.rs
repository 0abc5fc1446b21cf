//! Many futures into one: `collect` (all values or the first error), `await_all` (every
//! outcome) and `select` (the first value).

mod support;

use procession::{await_all, collect, select, Future, Promise};

fn promises(n: usize) -> (Vec<Promise<u32>>, Vec<Future<u32>>) {
    let promises: Vec<_> = (0..n).map(|_| Promise::new()).collect();
    let futures = promises.iter().map(Promise::future).collect();
    (promises, futures)
}

#[test]
fn collect_keeps_input_order_whatever_the_completion_order() {
    let (mut inputs, futures) = promises(3);
    let all = collect(futures);
    let last = inputs.pop().unwrap();
    let middle = inputs.pop().unwrap();
    let first = inputs.pop().unwrap();
    last.set(30);
    first.set(10);
    assert!(all.is_pending());
    middle.set(20);
    assert_eq!(all.get(), Some(vec![10, 20, 30]));
}

#[test]
fn collect_of_ready_inputs_is_ready_at_once() {
    let all = collect(vec![Future::ready(1u32), Future::ready(2)]);
    assert_eq!(all.get(), Some(vec![1, 2]));
}

#[test]
fn collect_of_nothing_is_ready_and_empty() {
    assert_eq!(collect(Vec::<Future<u32>>::new()).get(), Some(vec![]));
}

#[test]
fn collect_fails_on_the_first_failure_and_discards_the_others() {
    let (mut inputs, futures) = promises(3);
    let all = collect(futures);
    let third = inputs.pop().unwrap();
    let second = inputs.pop().unwrap();
    let first = inputs.pop().unwrap();
    first.set(1);
    second.fail("second broke");
    assert_eq!(support::failure_message(&all), "second broke");
    assert!(third.has_discard(), "the pending input was not discarded");
    // A later failure does not replace the first.
    third.fail("third broke too");
    assert_eq!(support::failure_message(&all), "second broke");
}

#[test]
fn collect_with_an_already_failed_input_discards_the_others() {
    let pending = Promise::<u32>::new();
    let all = collect(vec![pending.future(), Future::failed("early")]);
    assert_eq!(support::failure_message(&all), "early");
    assert!(pending.has_discard());
}

#[test]
fn a_discarded_input_fails_the_collect() {
    let (mut inputs, futures) = promises(2);
    let all = collect(futures);
    let other = inputs.pop().unwrap();
    inputs.pop().unwrap().discard();
    assert!(
        all.is_failed(),
        "collect ends discarded only when it was discarded"
    );
    assert!(other.has_discard());
}

#[test]
fn an_abandoned_input_abandons_the_collect() {
    let (mut inputs, futures) = promises(2);
    let all = collect(futures);
    let other = inputs.pop().unwrap();
    drop(inputs.pop().unwrap());
    assert!(all.is_abandoned());
    assert!(other.has_discard());
}

#[test]
fn collect_ends_discarded_only_when_discarded_itself() {
    let (mut inputs, futures) = promises(2);
    let all = collect(futures);
    all.discard();
    assert!(all.is_pending());
    assert!(inputs.iter().all(Promise::has_discard));
    inputs.pop().unwrap().discard();
    assert!(all.is_discarded());

    // Discarded but an input fails instead: the collect fails.
    let (mut inputs, futures) = promises(2);
    let all = collect(futures);
    all.discard();
    inputs
        .pop()
        .unwrap()
        .fail("failed before honouring the request");
    assert!(all.is_failed());

    // Discarded but every input answers anyway: the collect is ready.
    let (inputs, futures) = promises(2);
    let all = collect(futures);
    all.discard();
    inputs.into_iter().for_each(|p| p.set(1));
    assert_eq!(all.get(), Some(vec![1, 1]));
}

#[test]
fn await_all_waits_for_every_outcome() {
    let (mut inputs, futures) = promises(4);
    let all = await_all(futures);
    let abandoned = inputs.pop().unwrap();
    let discarded = inputs.pop().unwrap();
    let failed = inputs.pop().unwrap();
    let ready = inputs.pop().unwrap();
    failed.fail("no");
    assert!(all.is_pending(), "await_all does not stop at a failure");
    discarded.discard();
    ready.set(1);
    assert!(all.is_pending());
    drop(abandoned);
    let outcomes = all.get().expect("await_all is ready");
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes[0].get(), Some(1));
    assert!(outcomes[1].is_failed());
    assert!(outcomes[2].is_discarded());
    assert!(outcomes[3].is_abandoned());
}

#[test]
fn await_all_of_nothing_is_ready_and_empty() {
    assert_eq!(
        await_all(Vec::<Future<u32>>::new()).get().map(|v| v.len()),
        Some(0)
    );
}

#[test]
fn select_picks_the_first_to_become_ready() {
    let (mut inputs, futures) = promises(3);
    let first = select(futures);
    let third = inputs.pop().unwrap();
    let second = inputs.pop().unwrap();
    let zeroth = inputs.pop().unwrap();
    assert!(first.is_pending());
    second.set(20);
    assert_eq!(first.get(), Some((1, 20)));
    zeroth.set(10);
    assert_eq!(first.get(), Some((1, 20)));
    // Losers are left alone.
    assert!(!third.has_discard());
}

#[test]
fn select_skips_failures_and_discards() {
    let (mut inputs, futures) = promises(3);
    let first = select(futures);
    let third = inputs.pop().unwrap();
    let second = inputs.pop().unwrap();
    inputs.pop().unwrap().fail("zeroth broke");
    second.discard();
    assert!(first.is_pending());
    third.set(3);
    assert_eq!(first.get(), Some((2, 3)));
}

#[test]
fn select_fails_with_the_last_failure_when_none_can_be_ready() {
    let (mut inputs, futures) = promises(3);
    let first = select(futures);
    let last = inputs.pop().unwrap();
    let zeroth = inputs.remove(0);
    drop(inputs.pop().unwrap()); // abandoned
    last.fail("last failure");
    assert!(first.is_pending());
    zeroth.fail("final failure");
    assert_eq!(support::failure_message(&first), "final failure");
}

#[test]
fn select_of_nothing_fails() {
    assert!(select(Vec::<Future<u32>>::new()).is_failed());
}

#[test]
fn a_discarded_select_ends_discarded_when_its_inputs_do() {
    let (inputs, futures) = promises(2);
    let first = select(futures);
    first.discard();
    assert!(inputs.iter().all(Promise::has_discard));
    inputs.into_iter().for_each(Promise::discard);
    assert!(first.is_discarded());
}

#[test]
fn select_reports_a_real_failure_over_a_later_discard() {
    let failing = Promise::<u32>::new();
    let discarded = Promise::<u32>::new();
    let first = select(vec![failing.future(), discarded.future()]);
    failing.fail("the real reason");
    discarded.discard();
    assert_eq!(
        first.error().unwrap().failure().unwrap().message(),
        "the real reason"
    );
}
