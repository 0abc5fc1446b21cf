//! Matching on a message's body (`Match::body`): a test over the message, sent locally or
//! arriving encoded, with every message helper; a body that does not decode does not match.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use procession::message::encode;
use procession::{
    dispatch, post, send, Context, EventView, Filter, Message, Pid, Process, Runtime, Upid, Verdict,
};
use procession_testkit::{
    await_ready, drop_message, drop_messages, expect_no_future_messages, future_message, Match,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Message)]
struct Beat {
    seq: u32,
}

/// Records the sequence numbers of the beats it handles.
#[derive(Default)]
struct Recorder {
    seen: Vec<u32>,
}

impl Process for Recorder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, beat: Beat| me.seen.push(beat.seq))
            .unwrap();
    }
}

/// What `pid` handled so far: a dispatch queued after everything this thread sent.
fn seen(runtime: &Runtime, pid: &Pid<Recorder>) -> Vec<u32> {
    runtime
        .block_on(dispatch(pid, |r: &mut Recorder| r.seen.clone()))
        .unwrap()
}

fn seq(n: u32) -> Match<Beat> {
    Match::message::<Beat>().body(move |beat: &Beat| beat.seq == n)
}

/// Delivers `body` to `to` as a transport would, from a remote agent.
fn deliver_encoded(runtime: &Runtime, to: &Pid<Recorder>, body: Bytes) {
    let from: Upid = "agent(1)@10.0.0.7:5051".parse().unwrap();
    runtime
        .inbound()
        .deliver(from, &to.upid(), Beat::NAME, body);
}

#[procession::test]
fn future_message_skips_bodies_that_fail_the_test(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let second = future_message(runtime, seq(2).to(&pid));
    send(&pid.upid(), Beat { seq: 1 });
    assert!(second.is_pending());
    send(&pid.upid(), Beat { seq: 2 });
    assert_eq!(await_ready(&second).message, Beat { seq: 2 });
    assert_eq!(seen(runtime, &pid), [1, 2]);
}

#[procession::test]
fn drop_message_drops_the_first_body_that_passes(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let dropped = drop_message(runtime, seq(3));
    let later = future_message(runtime, seq(3));
    for n in [1, 3, 2, 3] {
        send(&pid.upid(), Beat { seq: n });
    }
    assert_eq!(await_ready(&dropped).message.seq, 3);
    assert_eq!(await_ready(&later).message.seq, 3, "the second 3");
    assert_eq!(seen(runtime, &pid), [1, 2, 3]);
}

#[procession::test]
fn drop_messages_drops_only_bodies_that_pass(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let even = Match::message::<Beat>().body(|beat: &Beat| beat.seq % 2 == 0);
    let lossy = drop_messages(runtime, even.to(&pid));
    for n in 1..=6 {
        send(&pid.upid(), Beat { seq: n });
    }
    drop(lossy);
    send(&pid.upid(), Beat { seq: 8 });
    assert_eq!(seen(runtime, &pid), [1, 3, 5, 8]);
}

#[procession::test]
fn expect_no_future_messages_forbids_only_bodies_that_pass(runtime: &Runtime) {
    let a = runtime.spawn(Recorder::default());
    let b = runtime.spawn(Recorder::default());
    let quiet = expect_no_future_messages(runtime, seq(0).to(&b));
    send(&b.upid(), Beat { seq: 1 });
    quiet.check();
    post(&a.upid(), &b.upid(), Beat { seq: 0 });
    let failure = panic::catch_unwind(AssertUnwindSafe(|| quiet.check()));
    let text = *failure.unwrap_err().downcast::<String>().unwrap();
    std::mem::forget(quiet); // it would panic again on drop
    let pattern = format!("message `{}` to {} with a body test", Beat::NAME, b.upid());
    assert!(
        text.starts_with(&format!("expect_no_future_messages({pattern})")),
        "{text}"
    );
    assert!(text.contains(&format!("saw message `{}` from {}", Beat::NAME, a.upid())));
    assert_eq!(seen(runtime, &b), [1, 0], "let through");
}

#[procession::test]
fn an_encoded_body_is_decoded_for_the_test(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let dropped = drop_message(runtime, seq(7));
    deliver_encoded(runtime, &pid, encode(&Beat { seq: 6 }).unwrap());
    assert!(dropped.is_pending());
    deliver_encoded(runtime, &pid, encode(&Beat { seq: 7 }).unwrap());
    let dropped = await_ready(&dropped);
    assert_eq!(dropped.message.seq, 7);
    assert_eq!(dropped.from.id(), "agent(1)");
    assert_eq!(seen(runtime, &pid), [6]);
}

/// Counts the messages the testkit's rules let through; drops none.
#[derive(Default)]
struct LetThrough(AtomicUsize);

impl Filter for LetThrough {
    fn filter(&self, event: &EventView<'_>) -> Verdict {
        if let EventView::Message { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Deliver
    }
}

#[procession::test]
fn a_body_that_does_not_decode_does_not_match(runtime: &Runtime) {
    // Installed before the helpers, so they keep it and ask it about what they let through.
    let let_through = Arc::new(LetThrough::default());
    runtime.set_filter(Some(let_through.clone()));
    let pid = runtime.spawn(Recorder::default());
    let any = || Match::message::<Beat>().body(|_: &Beat| true);
    let _lossy = drop_messages(runtime, any().to(&pid));
    let caught = future_message(runtime, any());
    let quiet = expect_no_future_messages(runtime, any());
    // A stray byte after the message: the codec refuses it.
    let mut garbled = encode(&Beat { seq: 1 }).unwrap().to_vec();
    garbled.push(0);
    deliver_encoded(runtime, &pid, Bytes::from(garbled));
    assert_eq!(let_through.0.load(Ordering::Relaxed), 1, "not dropped");
    assert!(caught.is_pending(), "not caught");
    quiet.check();
    drop(quiet);
    let whole = encode(&Beat { seq: 2 }).unwrap();
    deliver_encoded(runtime, &pid, whole);
    assert_eq!(await_ready(&caught).message.seq, 2);
    assert_eq!(let_through.0.load(Ordering::Relaxed), 1, "dropped");
    assert!(seen(runtime, &pid).is_empty());
}

#[procession::test]
fn body_tests_combine(runtime: &Runtime) {
    let pid = runtime.spawn(Recorder::default());
    let between = Match::message::<Beat>()
        .body(|beat: &Beat| beat.seq > 2)
        .body(|beat: &Beat| beat.seq < 5);
    let _band = drop_messages(runtime, between);
    for n in 1..=6 {
        send(&pid.upid(), Beat { seq: n });
    }
    assert_eq!(seen(runtime, &pid), [1, 2, 5, 6]);
}

#[procession::test]
fn a_body_test_may_send(runtime: &Runtime) {
    let echo = runtime.spawn(Recorder::default());
    let pid = runtime.spawn(Recorder::default());
    let target = echo.upid();
    // Runs inside the filter, on the sending thread: its send passes the filter again.
    let echoing = Match::message::<Beat>().to(&pid).body(move |beat: &Beat| {
        send(
            &target,
            Beat {
                seq: beat.seq + 100,
            },
        );
        true
    });
    let caught = future_message(runtime, echoing);
    send(&pid.upid(), Beat { seq: 1 });
    assert_eq!(await_ready(&caught).message.seq, 1);
    assert_eq!(seen(runtime, &echo), [101]);
}

/// Sends beats to `to` when told.
struct Sender {
    to: Upid,
}

impl Process for Sender {}

#[test]
fn body_rules_hold_under_concurrent_senders() {
    for iteration in 0..20 {
        let runtime = Runtime::builder().workers(2).build().unwrap();
        let receiver = runtime.spawn(Recorder::default());
        let senders: Vec<_> = (0..4)
            .map(|_| {
                runtime.spawn(Sender {
                    to: receiver.upid(),
                })
            })
            .collect();
        let even = Match::message::<Beat>().body(|beat: &Beat| beat.seq % 2 == 0);
        let _lossy = drop_messages(&runtime, even);
        let catches: Vec<_> = (0..3).map(|_| future_message(&runtime, seq(49))).collect();
        let done: Vec<_> = senders
            .iter()
            .map(|sender| {
                dispatch(sender, |s: &mut Sender| {
                    for n in 0..50 {
                        send(&s.to, Beat { seq: n });
                    }
                })
            })
            .collect();
        for sent in &done {
            await_ready(sent);
        }
        for caught in &catches {
            assert_eq!(await_ready(caught).message.seq, 49, "iteration {iteration}");
        }
        let handled = seen(&runtime, &receiver);
        assert_eq!(handled.len(), 100, "iteration {iteration}");
        assert!(handled.iter().all(|n| n % 2 == 1), "iteration {iteration}");
    }
}
