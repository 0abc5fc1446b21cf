//! `delegate`: a process hands every message of one type to another process, unchanged and
//! still from the original sender, locally or across the transport.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::{send, Context, ExitReason, Message, Outgoing, Process, Runtime, Transport, Upid};

#[derive(serde::Serialize, serde::Deserialize, Message, Debug, PartialEq)]
struct Job(u32);

struct Front {
    to: Upid,
}

impl Process for Front {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.delegate::<Job>(&self.to).unwrap();
        assert!(
            ctx.delegate::<Job>(&self.to).is_err(),
            "one route per message name"
        );
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(Upid, Upid, String, Bytes)>>);

impl Transport for Recorder {
    fn send(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>) {
        let body = message.to_bytes().unwrap();
        let name = message.name().to_owned();
        self.0.lock().push((from.clone(), to.clone(), name, body));
    }
    fn link(&self, _: &Upid, _: &Upid) {}
    fn exited(&self, _: &Upid, _: &Upid, _: &ExitReason) {}
}

fn decode(bytes: &Bytes) -> Job {
    procession::message::decode(bytes).unwrap()
}

#[test]
fn delegated_messages_reach_a_remote_process_from_their_sender() {
    let runtime = Runtime::builder().paused().build().unwrap();
    let recorder = Arc::new(Recorder::default());
    runtime.inbound().set_transport(recorder.clone());
    let remote: Upid = "worker@10.1.2.3:5050".parse().unwrap();
    let front = runtime.spawn(Front { to: remote.clone() });
    let sender: Upid = "client@10.9.9.9:4000".parse().unwrap();
    {
        let _entered = runtime.enter();
        // A local value is encoded on its way out ...
        procession::post(&sender, &front.upid(), Job(1));
    }
    // ... and bytes from the network travel on as they came, never decoded here.
    let wire = procession::message::encode(&Job(2)).unwrap();
    runtime
        .inbound()
        .deliver(sender.clone(), &front.upid(), Job::NAME, wire.clone());
    runtime.clock().settle();

    let sent = recorder.0.lock().clone();
    assert_eq!(sent.len(), 2);
    for (from, to, name, _) in &sent {
        assert_eq!((from, to, name.as_str()), (&sender, &remote, Job::NAME));
    }
    assert_eq!(decode(&sent[0].3), Job(1));
    assert_eq!(sent[1].3, wire);
}

#[test]
fn messages_of_other_types_are_not_delegated() {
    #[derive(serde::Serialize, serde::Deserialize, Message)]
    struct Other;

    let runtime = Runtime::builder().paused().build().unwrap();
    let recorder = Arc::new(Recorder::default());
    runtime.inbound().set_transport(recorder.clone());
    let front = runtime.spawn(Front {
        to: "worker@10.1.2.3:5050".parse().unwrap(),
    });
    {
        let _entered = runtime.enter();
        send(&front.upid(), Other);
    }
    runtime.clock().settle();
    assert!(recorder.0.lock().is_empty());
    assert_eq!(runtime.stats().dropped_messages, 1, "no handler for Other");
}

/// Tries to delegate `Job` to itself, and `Job` under the requests' name; records what it got.
#[derive(Default)]
struct Loopy {
    refusals: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize, Message)]
#[message(name = "procession::Asked")]
struct Impostor;

impl Process for Loopy {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let me = ctx.upid();
        for refused in [ctx.delegate::<Job>(&me), ctx.delegate::<Impostor>(&me)] {
            self.refusals.push(refused.unwrap_err().to_string());
        }
        let elsewhere: Upid = "worker@10.1.2.3:5050".parse().unwrap();
        let refused = ctx.delegate::<Impostor>(&elsewhere).unwrap_err();
        self.refusals.push(refused.to_string());
    }
}

#[test]
fn a_delegation_to_itself_or_under_the_requests_name_is_refused() {
    let runtime = Runtime::new();
    let loopy = runtime.spawn(Loopy::default());
    let refusals = runtime
        .block_on(procession::dispatch(&loopy, |l: &mut Loopy| {
            l.refusals.clone()
        }))
        .unwrap();
    assert!(
        refusals[0].contains("delegated to the process itself"),
        "{refusals:?}"
    );
    assert!(
        refusals[2].contains("the name requests travel under"),
        "{refusals:?}"
    );
}
