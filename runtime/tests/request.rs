//! Request/reply: answers come back under their ids, a target that ends or never was abandons
//! the request, a discarded request is forgotten, an answer that cannot be encoded fails the
//! request, and `after` bounds one that is never answered.

#[macro_use]
mod support;

use std::time::Duration;

use procession::request::{request, Request};
use procession::{terminate, wait, Context, Future, Message, Process, Runtime, Upid};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct Add(u64, u64);
impl Request for Add {
    type Response = u64;
}

/// An answer whose encoding always fails.
#[derive(Clone, Debug)]
struct Unencodable;
impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refuses to be encoded"))
    }
}
impl<'de> Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("never sent"))
    }
}

#[derive(Serialize, Deserialize, Message)]
struct Odd;
impl Request for Odd {
    type Response = Unencodable;
}

struct Adder;
impl Process for Adder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install_request(|_: &mut Self, _: &Upid, Add(a, b)| a + b)
            .unwrap();
        ctx.install_request(|_: &mut Self, _: &Upid, Odd| Unencodable)
            .unwrap();
    }
}

/// Answers nothing.
struct Mute;
impl Process for Mute {}

rt_test!(answers_come_back_to_their_requests, |_flavor, rt| {
    let adder = rt.spawn(Adder).upid();
    let _entered = rt.enter();
    let answers: Vec<Future<u64>> = (0..100).map(|n| request(&adder, Add(n, 1))).collect();
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(rt.block_on(answer.clone()).unwrap(), n as u64 + 1);
    }
});

rt_test!(
    a_target_that_ends_or_never_was_abandons_the_request,
    |_flavor, rt| {
        let mute = rt.spawn(Mute);
        let _entered = rt.enter();
        let waiting = request(&mute.upid(), Add(1, 1));
        let nobody = request(&Upid::new("nobody", mute.upid().address()), Add(1, 1));
        terminate(&mute);
        support::pause_and_settle(rt);
        assert!(waiting.is_abandoned(), "{waiting:?}");
        assert!(nobody.is_abandoned(), "{nobody:?}");
        assert_eq!(
            rt.stats().dropped_messages,
            2,
            "one the target had no handler for, one with no target"
        );
    }
);

rt_test!(
    an_answer_that_cannot_be_encoded_fails_the_request,
    |_flavor, rt| {
        let adder = rt.spawn(Adder).upid();
        let _entered = rt.enter();
        let answer = request(&adder, Odd);
        let failure = rt.block_on(answer).expect_err("failed");
        assert!(
            failure.to_string().contains("refuses to be encoded"),
            "{failure}"
        );
    }
);

rt_test!(
    a_discarded_request_is_forgotten_and_after_bounds_one,
    |_flavor, rt| {
        let mute = rt.spawn(Mute).upid();
        let adder = rt.spawn(Adder).upid();
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let discarded = request(&mute, Add(1, 1));
        discarded.discard();
        let bounded = request(&mute, Add(1, 1)).after(Duration::from_secs(5), |_| {
            Future::failed("no answer in time")
        });
        clock.advance(Duration::from_secs(5));
        support::pause_and_settle(rt);
        assert!(discarded.is_discarded());
        assert!(bounded.is_failed(), "{bounded:?}");
        // The requester goes on answering.
        assert_eq!(rt.block_on(request(&adder, Add(20, 22))).unwrap(), 42);
    }
);

#[test]
fn a_runtime_shutting_down_abandons_its_requests() {
    let rt = Runtime::new();
    let mute = rt.spawn(Mute).upid();
    let waiting = {
        let _entered = rt.enter();
        request(&mute, Add(1, 1))
    };
    rt.shutdown();
    assert!(waiting.wait_for(Duration::from_secs(20)));
    assert!(waiting.is_abandoned(), "{waiting:?}");
}

#[test]
fn a_killed_requester_abandons_its_requests_and_is_replaced() {
    let rt = Runtime::new();
    let mute = rt.spawn(Mute).upid();
    let adder = rt.spawn(Adder).upid();
    let _entered = rt.enter();
    let waiting = request(&mute, Add(1, 1));
    let requester = Upid::new("procession::requester", adder.address());
    let gone = wait(&requester);
    terminate(&requester);
    assert!(waiting.wait_for(Duration::from_secs(20)));
    assert!(waiting.is_abandoned(), "{waiting:?}");
    // Once the old requester is gone (its name free), the next request starts a new one.
    rt.block_on(gone).unwrap();
    let answered = request(&adder, Add(2, 2));
    assert_eq!(rt.block_on(answered).unwrap(), 4);
}

/// Holds `pid`'s worker in a handler until the returned sender is dropped.
fn hold<P: Process>(pid: &procession::Pid<P>) -> std::sync::mpsc::Sender<()> {
    let (gate, held) = std::sync::mpsc::channel::<()>();
    procession::dispatch(pid, move |_: &mut P| {
        let _ = held.recv();
    });
    gate
}

#[test]
fn a_late_answer_to_a_killed_requesters_request_completes_no_later_one() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let adder = rt.spawn(Adder);
    let _entered = rt.enter();
    let gate = hold(&adder);
    let early = request(&adder.upid(), Add(1, 1));
    let requester = Upid::new("procession::requester", adder.upid().address());
    let gone = wait(&requester);
    terminate(&requester);
    assert!(early.wait_for(Duration::from_secs(20)));
    assert!(early.is_abandoned(), "{early:?}");
    rt.block_on(gone).unwrap();
    let late = request(&adder.upid(), Add(2, 2));
    // The adder answers the abandoned request first; that answer must not be taken for this one.
    drop(gate);
    assert!(late.wait_for(Duration::from_secs(20)));
    assert_eq!(late.get(), Some(4), "{late:?}");
    rt.shutdown();
}

/// An `Answer` as it travels, with its body made by hand: an encoded `Answered`.
#[derive(Serialize, Deserialize, Message)]
struct ForgedAnswer {
    id: u64,
    body: Vec<u8>,
    error: Option<String>,
}

/// A response as it travels.
#[derive(Serialize, Deserialize, Message)]
struct Answered(u64);

#[test]
fn an_answer_from_a_process_that_was_not_asked_is_dropped() {
    let rt = Runtime::new();
    let mute = rt.spawn(Mute).upid();
    let _entered = rt.enter();
    let waiting = request(&mute, Add(1, 1));
    let address = mute.address();
    let forged = ForgedAnswer {
        id: 0,
        body: procession::message::encode(&Answered(7)).unwrap().to_vec(),
        error: None,
    };
    let forged = procession::message::encode(&forged).unwrap();
    // The request itself is dropped (the target has no handler for it): counted before this.
    support::pause_and_settle(&rt);
    let dropped = rt.stats().dropped_messages;
    rt.inbound().deliver(
        Upid::new("forger", address),
        &Upid::new("procession::requester", address),
        "procession::Answer",
        forged.clone(),
    );
    support::pause_and_settle(&rt);
    assert!(waiting.is_pending(), "{waiting:?}");
    assert_eq!(rt.stats().dropped_messages, dropped + 1);
    // The same answer from the process asked is taken: the check is the sender, not the bytes.
    rt.inbound().deliver(
        mute.clone(),
        &Upid::new("procession::requester", address),
        "procession::Answer",
        forged,
    );
    assert_eq!(rt.block_on(waiting).unwrap(), 7);
    rt.shutdown();
}

/// Handles `Add` as a plain message and counts what it got.
#[derive(Default)]
struct PlainAdder {
    plain: u32,
}
impl Process for PlainAdder {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Add(_, _)| me.plain += 1)
            .unwrap();
    }
}

rt_test!(
    a_request_and_a_plain_message_of_one_type_never_meet_each_others_handler,
    |_flavor, rt| {
        let plain = rt.spawn(PlainAdder::default());
        let adder = rt.spawn(Adder).upid();
        let _entered = rt.enter();
        let unanswered = request(&plain.upid(), Add(1, 2));
        procession::send(&adder, Add(3, 4));
        procession::send(&plain.upid(), Add(5, 6));
        support::pause_and_settle(rt);
        let plain_got = rt
            .block_on(procession::dispatch(&plain, |me: &mut PlainAdder| me.plain))
            .unwrap();
        assert_eq!(
            plain_got, 1,
            "only the plain message reached the plain handler"
        );
        assert!(unanswered.is_pending(), "{unanswered:?}");
        assert_eq!(
            rt.stats().dropped_messages,
            2,
            "the request to the plain handler, the plain message to the request handler"
        );
        // Each handler still takes its own kind.
        assert_eq!(rt.block_on(request(&adder, Add(7, 8))).unwrap(), 15);
    }
);

#[test]
fn a_process_refuses_a_second_request_handler_for_one_type_but_takes_a_plain_one() {
    struct Twice;
    impl Process for Twice {
        fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
            ctx.install_request(|_: &mut Self, _: &Upid, Add(a, b)| a + b)
                .unwrap();
            let again = ctx.install_request(|_: &mut Self, _: &Upid, Add(a, b)| a * b);
            assert!(again.unwrap_err().to_string().contains(Add::NAME));
            ctx.install(|_: &mut Self, _: &Upid, Add(_, _)| ()).unwrap();
        }
    }
    let rt = Runtime::new();
    let twice = rt.spawn(Twice).upid();
    let _entered = rt.enter();
    assert_eq!(rt.block_on(request(&twice, Add(2, 3))).unwrap(), 5);
}

#[test]
fn a_plain_handler_for_the_requests_own_name_is_refused() {
    #[derive(Serialize, Deserialize)]
    struct Impostor;
    impl Message for Impostor {
        const NAME: &'static str = procession::request::ASKED;
    }
    struct Installer(std::sync::mpsc::Sender<bool>);
    impl Process for Installer {
        fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
            let refused = ctx.install(|_: &mut Self, _: &Upid, Impostor| ()).is_err();
            self.0.send(refused).unwrap();
        }
    }
    let rt = Runtime::new();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(Installer(tx));
    assert!(rx.recv_timeout(Duration::from_secs(20)).unwrap());
}

#[test]
fn a_process_named_by_its_address_before_a_transport_started_is_answered() {
    let rt = Runtime::new();
    let adder = rt.spawn(Adder).upid();
    // What a transport does when it starts listening: the runtime's Upids take its address.
    rt.inbound().set_address("127.0.0.1:5050".parse().unwrap());
    assert_ne!(rt.spawn(Mute).upid().address(), adder.address());
    let _entered = rt.enter();
    let answer = request(&adder, Add(1, 2));
    assert!(answer.wait_for(Duration::from_secs(20)), "{answer:?}");
    assert_eq!(answer.get(), Some(3));
}
