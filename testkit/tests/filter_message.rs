//! Message filters, after libprocess's `FUTURE_MESSAGE`, `DROP_MESSAGE(S)` and
//! `EXPECT_NO_FUTURE_MESSAGES` tests: catch a copy, drop, forbid; rules that coexist on one
//! runtime and never leak to another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use procession::message::encode;
use procession::{
    dispatch, post, send, Context, EventView, Filter, InboundRun, Message, Pid, Process, Runtime,
    Upid, Verdict,
};
use procession_testkit::{
    await_discarded, await_failed, await_ready, drop_message, drop_messages,
    expect_no_future_messages, future_message, Match,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Message)]
struct Ping(u32);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Message)]
struct Pong(u32);

/// Records every message it handles as `"<kind> <n> from <sender id>"`.
#[derive(Default)]
struct Recorder {
    seen: Vec<String>,
}

impl Process for Recorder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, Ping(n)| {
            me.seen.push(format!("ping {n} from {}", from.id()))
        })
        .unwrap();
        ctx.install(|me: &mut Self, from: &Upid, Pong(n)| {
            me.seen.push(format!("pong {n} from {}", from.id()))
        })
        .unwrap();
    }
}

/// What `pid` handled so far: a dispatch queued after everything this thread sent.
fn seen(runtime: &Runtime, pid: &Pid<Recorder>) -> Vec<String> {
    runtime
        .block_on(dispatch(pid, |r: &mut Recorder| r.seen.clone()))
        .unwrap()
}

#[procession::test]
fn future_message_catches_a_copy_and_delivers(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let ping = future_message(runtime, Match::message::<Ping>().to(&pid));
    send(&pid.upid(), Pong(1));
    assert!(ping.is_pending(), "another message type does not match");
    send(&pid.upid(), Ping(2));
    send(&pid.upid(), Ping(3));
    let caught = await_ready(&ping);
    assert_eq!(caught.message, Ping(2));
    assert_eq!((caught.from.id(), &caught.to), ("anonymous", &pid.upid()));
    assert_eq!(
        seen(runtime, &pid),
        [
            "pong 1 from anonymous",
            "ping 2 from anonymous",
            "ping 3 from anonymous"
        ]
    );
}

#[procession::test]
fn drop_message_drops_only_the_first_match(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let dropped = drop_message(runtime, Match::message::<Ping>());
    send(&pid.upid(), Ping(1));
    send(&pid.upid(), Ping(2));
    assert_eq!(await_ready(&dropped).message, Ping(1));
    assert_eq!(seen(runtime, &pid), ["ping 2 from anonymous"]);
    assert_eq!(
        runtime.stats().dropped_messages,
        1,
        "a dropped message counts"
    );
}

#[procession::test]
fn one_shot_rules_fire_oldest_first(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let first = future_message(runtime, Match::message::<Ping>());
    let second = drop_message(runtime, Match::message::<Ping>());
    let third = future_message(runtime, Match::message::<Ping>());
    for n in 1..=4 {
        send(&pid.upid(), Ping(n));
    }
    assert_eq!(await_ready(&first).message, Ping(1));
    assert_eq!(await_ready(&second).message, Ping(2));
    assert_eq!(await_ready(&third).message, Ping(3));
    assert_eq!(
        seen(runtime, &pid),
        [
            "ping 1 from anonymous",
            "ping 3 from anonymous",
            "ping 4 from anonymous"
        ]
    );
}

#[procession::test]
fn sender_and_receiver_narrow_the_match(runtime: &Runtime) {
    let a = runtime.spawn(Recorder::default());
    let b = runtime.spawn(Recorder::default());
    let from_a_to_b = drop_message(runtime, Match::message::<Ping>().from(&a).to(&b));
    post(&b.upid(), &a.upid(), Ping(1)); // b to a
    post(&b.upid(), &b.upid(), Ping(2)); // b to b
    send(&b.upid(), Ping(3)); // anonymous to b
    assert!(from_a_to_b.is_pending());
    post(&a.upid(), &b.upid(), Ping(4));
    let dropped = await_ready(&from_a_to_b);
    assert_eq!((dropped.message, dropped.from), (Ping(4), a.upid()));
    assert_eq!(seen(runtime, &a), [format!("ping 1 from {}", b.id())]);
    assert_eq!(
        seen(runtime, &b),
        [
            format!("ping 2 from {}", b.id()),
            "ping 3 from anonymous".into()
        ]
    );
}

#[procession::test]
fn drop_messages_lasts_as_long_as_its_guard(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let partition = drop_messages(runtime, Match::message::<Ping>().to(&pid));
    send(&pid.upid(), Ping(1));
    send(&pid.upid(), Pong(2));
    send(&pid.upid(), Ping(3));
    drop(partition);
    send(&pid.upid(), Ping(4));
    assert_eq!(
        seen(runtime, &pid),
        ["pong 2 from anonymous", "ping 4 from anonymous"]
    );
}

#[procession::test]
fn a_standing_drop_wins_over_a_catching_rule(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let caught = future_message(runtime, Match::message::<Ping>());
    let _partition = drop_messages(runtime, Match::message::<Ping>());
    send(&pid.upid(), Ping(1));
    assert_eq!(await_ready(&caught).message, Ping(1), "still caught");
    assert!(seen(runtime, &pid).is_empty(), "and dropped");
}

#[procession::test]
fn expect_no_future_messages_passes_when_none_match(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let quiet = expect_no_future_messages(runtime, Match::message::<Ping>().to(&pid));
    send(&pid.upid(), Pong(1));
    quiet.check();
    drop(quiet);
    send(&pid.upid(), Ping(2)); // after the guard: allowed
    assert_eq!(
        seen(runtime, &pid),
        ["pong 1 from anonymous", "ping 2 from anonymous"]
    );
}

#[procession::test]
#[should_panic(expected = "saw message `filter_message::Ping` from anonymous@")]
fn expect_no_future_messages_fails_when_its_guard_drops(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let _quiet = expect_no_future_messages(runtime, Match::message::<Ping>());
    send(&pid.upid(), Ping(1));
    // Delivered all the same: the guard reports, it does not drop.
    assert_eq!(seen(runtime, &pid), ["ping 1 from anonymous"]);
}

#[procession::test]
fn expect_no_future_messages_names_the_first_and_counts_the_rest(runtime: &Runtime) {
    let a = runtime.spawn(Recorder::default());
    let b = runtime.spawn(Recorder::default());
    let quiet = expect_no_future_messages(runtime, Match::message::<Ping>().to(&b));
    post(&a.upid(), &b.upid(), Ping(1));
    post(&a.upid(), &b.upid(), Ping(2));
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| quiet.check()));
    let text = *failure.unwrap_err().downcast::<String>().unwrap();
    std::mem::forget(quiet); // it would panic again on drop
    assert!(text.contains(&format!("to {}", b.upid())), "{text}");
    assert!(text.contains(&format!("from {} to", a.upid())), "{text}");
    assert!(text.contains("(and 1 more)"), "{text}");
    assert!(
        text.contains("filter_message.rs"),
        "names where it was made: {text}"
    );
}

#[procession::test]
fn discarding_a_future_withdraws_its_rule(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let withdrawn = drop_message(runtime, Match::message::<Ping>());
    let later = future_message(runtime, Match::message::<Ping>());
    withdrawn.discard();
    await_discarded(&withdrawn);
    send(&pid.upid(), Ping(1));
    assert_eq!(
        await_ready(&later).message,
        Ping(1),
        "the next rule takes it"
    );
    assert_eq!(
        seen(runtime, &pid),
        ["ping 1 from anonymous"],
        "nothing dropped"
    );
}

#[procession::test]
fn an_encoded_message_is_decoded(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let typed = future_message(runtime, Match::message::<Ping>());
    let named = future_message(runtime, Match::named(Ping::NAME));
    let remote: Upid = "agent(1)@10.0.0.7:5051".parse().unwrap();
    let body = encode(&Ping(5)).unwrap();
    runtime
        .inbound()
        .deliver(remote.clone(), &pid.upid(), Ping::NAME, body.clone());
    runtime
        .inbound()
        .deliver(remote.clone(), &pid.upid(), Ping::NAME, body);
    let typed = await_ready(&typed);
    assert_eq!((typed.message, typed.from), (Ping(5), remote));
    let named = await_ready(&named);
    assert_eq!(named.message.decode::<Ping>().unwrap(), Ping(5));
    assert_eq!(seen(runtime, &pid).len(), 2);
}

#[procession::test]
fn a_transports_run_meets_the_filter_one_message_at_a_time(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let dropped = drop_message(runtime, Match::message::<Ping>().body(|ping| ping.0 == 2));
    let remote: Upid = "agent(1)@10.0.0.7:5051".parse().unwrap();
    let mut bytes = bytes::BytesMut::new();
    let mut bodies = Vec::new();
    for n in 1..=3 {
        let start = bytes.len();
        bytes.extend_from_slice(&encode(&Ping(n)).unwrap());
        bodies.push(start..bytes.len());
    }
    let run = InboundRun::new(remote, Ping::NAME.into(), bytes.freeze(), bodies).unwrap();
    runtime.inbound().deliver_run(&pid.upid(), run);
    assert_eq!(await_ready(&dropped).message, Ping(2));
    assert_eq!(
        seen(runtime, &pid),
        ["ping 1 from agent(1)", "ping 3 from agent(1)"],
        "the others delivered, in order"
    );
}

#[procession::test]
fn an_undecodable_body_fails_the_future_and_is_still_dropped(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let dropped = drop_message(runtime, Match::message::<Ping>().to(&pid));
    let from: Upid = "agent(1)@10.0.0.7:5051".parse().unwrap();
    runtime.inbound().deliver(
        from,
        &pid.upid(),
        Ping::NAME,
        bytes::Bytes::from_static(&[0xff; 12]),
    );
    let failure = await_failed(&dropped);
    assert!(
        failure.message().contains("filter_message::Ping"),
        "{failure}"
    );
    assert!(seen(runtime, &pid).is_empty());
}

#[procession::test]
fn a_message_caught_by_name_locally_has_no_body(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let named = future_message(runtime, Match::named(Pong::NAME).to(&pid));
    send(&pid.upid(), Pong(3));
    let caught = await_ready(&named);
    assert!(caught.message.encoded().is_none());
    let failure = caught.message.decode::<Pong>().unwrap_err();
    assert!(failure.message().contains("sent locally"), "{failure}");
}

/// Counts the messages it sees; drops none.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Filter for Counting {
    fn filter(&self, event: &EventView<'_>) -> Verdict {
        if let EventView::Message { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Deliver
    }
}

#[procession::test]
fn a_filter_the_test_installed_first_is_kept(runtime: &Runtime) {
    let own = Arc::new(Counting::default());
    runtime.set_filter(Some(own.clone()));
    let pid = runtime.spawn(Recorder::default());
    let dropped = drop_message(runtime, Match::message::<Ping>());
    let _quiet = expect_no_future_messages(runtime, Match::message::<Ping>().from(&pid));
    send(&pid.upid(), Ping(1));
    send(&pid.upid(), Ping(2));
    await_ready(&dropped);
    assert_eq!(seen(runtime, &pid), ["ping 2 from anonymous"]);
    assert_eq!(
        own.0.load(Ordering::Relaxed),
        1,
        "asked for what the rules let through"
    );
}

#[procession::test]
fn a_callback_on_a_caught_message_may_send_again(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let target = pid.upid();
    let ping = future_message(runtime, Match::message::<Ping>());
    // Runs inside the filter, on the sending thread: its send passes the filter again.
    ping.on_ready(move |caught| send(&target, Pong(caught.message.0 + 1)));
    let pong = drop_message(runtime, Match::message::<Pong>());
    send(&pid.upid(), Ping(1));
    assert_eq!(await_ready(&pong).message, Pong(2));
    assert_eq!(seen(runtime, &pid), ["ping 1 from anonymous"]);
}

/// Sends `count` pings to `to` when told.
struct Sender {
    to: Upid,
}

impl Process for Sender {}

#[test]
fn rules_hold_under_concurrent_senders() {
    for iteration in 0..40 {
        let runtime = Runtime::builder().workers(4).build().unwrap();
        let receiver = runtime.spawn(Recorder::default());
        let senders: Vec<_> = (0..4)
            .map(|_| {
                runtime.spawn(Sender {
                    to: receiver.upid(),
                })
            })
            .collect();
        let _muted = drop_messages(&runtime, Match::message::<Ping>().from(&senders[0]));
        let first = future_message(&runtime, Match::message::<Ping>().from(&senders[1]));
        let quiet = expect_no_future_messages(&runtime, Match::message::<Pong>());
        let done: Vec<_> = senders
            .iter()
            .map(|sender| {
                dispatch(sender, |s: &mut Sender| {
                    for n in 0..50 {
                        send(&s.to, Ping(n));
                    }
                })
            })
            .collect();
        for sent in &done {
            await_ready(sent);
        }
        let caught = await_ready(&first);
        assert_eq!(
            caught.message,
            Ping(0),
            "iteration {iteration}: the first of sender 1"
        );
        let handled = seen(&runtime, &receiver);
        assert_eq!(handled.len(), 150, "iteration {iteration}");
        let muted = format!("from {}", senders[0].id());
        assert!(
            !handled.iter().any(|line| line.ends_with(&muted)),
            "iteration {iteration}"
        );
        quiet.check();
    }
}

#[test]
fn runtimes_in_parallel_never_see_each_others_rules() {
    let threads: Vec<_> = (0..4)
        .map(|index| {
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let runtime = Runtime::builder().workers(1).build().unwrap();
                    let _entered = runtime.enter();
                    let pid = runtime.spawn(Recorder::default());
                    // Only even threads drop; odd ones must see every ping.
                    let _partition =
                        (index % 2 == 0).then(|| drop_messages(&runtime, Match::message::<Ping>()));
                    let first = future_message(&runtime, Match::message::<Ping>());
                    for n in 0..10 {
                        send(&pid.upid(), Ping(n));
                    }
                    assert_eq!(await_ready(&first).message, Ping(0));
                    let expected = if index % 2 == 0 { 0 } else { 10 };
                    assert_eq!(seen(&runtime, &pid).len(), expected);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
