//! The transport's held sends: a handler's remote sends may wait until it returns, go before
//! anyone sees its answer, never go through another runtime's transport, and a transport whose
//! flush panics costs neither the process nor the worker.

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    dispatch, send, Context, ExitReason, Message, Outgoing, Process, Runtime, Transport, Upid,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Note(String);
impl Message for Note {
    const NAME: &'static str = "tests::Note";
}

/// What every transport of a test saw, in one order: `"<transport>:<note>"` when a note goes
/// on its way (at once, or at the flush that releases it).
type Log = Arc<Mutex<Vec<String>>>;

/// Holds the sends it may hold until `flush`; can be told to panic in `flush` after releasing.
struct Holding {
    name: &'static str,
    held: Mutex<Vec<String>>,
    log: Log,
    panic_on_flush: AtomicBool,
}

impl Holding {
    fn new(name: &'static str, log: &Log) -> Arc<Self> {
        Arc::new(Holding {
            name,
            held: Mutex::default(),
            log: log.clone(),
            panic_on_flush: AtomicBool::new(false),
        })
    }

    fn held(&self) -> usize {
        self.held.lock().len()
    }
}

impl Transport for Holding {
    fn send(&self, _from: &Upid, _to: &Upid, message: &Outgoing<'_>) {
        let body = message.to_bytes().expect("a note encodes");
        let Note(note) = procession::message::decode(&body).expect("a note decodes");
        if message.may_wait() {
            self.held.lock().push(note);
        } else {
            self.log.lock().push(format!("{}:{note}", self.name));
        }
    }

    fn link(&self, _linker: &Upid, _to: &Upid) {}

    fn exited(&self, _linker: &Upid, _upid: &Upid, _reason: &ExitReason) {}

    fn flush(&self) {
        let held = std::mem::take(&mut *self.held.lock());
        let mut log = self.log.lock();
        log.extend(held.into_iter().map(|note| format!("{}:{note}", self.name)));
        drop(log);
        if self.panic_on_flush.load(Ordering::Relaxed) {
            panic!("the transport's flush failed");
        }
    }
}

fn remote(id: &str) -> Upid {
    Upid::new(id, "10.0.0.1:5050".parse::<SocketAddr>().unwrap())
}

fn note(text: &str) -> Note {
    Note(text.to_owned())
}

/// Forwards every note it gets to a remote process, prefixed with `relayed-`.
struct Relay;

impl Process for Relay {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|_: &mut Self, _: &Upid, Note(text)| {
            send(&remote("sink"), note(&format!("relayed-{text}")));
        })
        .unwrap();
    }
}

rt_test!(
    a_handlers_sends_wait_for_its_return_and_precede_its_answer,
    |flavor, rt| {
        let log = Log::default();
        let transport = Holding::new("a", &log);
        rt.inbound().set_transport(transport.clone());
        let relay = rt.spawn(Relay);
        let during = {
            let transport = transport.clone();
            dispatch(&relay, move |_: &mut Relay| {
                for n in 0..3 {
                    send(&remote("sink"), note(&n.to_string()));
                }
                transport.held()
            })
        };
        assert_eq!(
            rt.block_on(during).unwrap(),
            3,
            "held while the handler ran"
        );
        assert_eq!(
            *log.lock(),
            ["a:0", "a:1", "a:2"],
            "released before the answer"
        );

        let _entered = rt.enter();
        send(&remote("sink"), note("from the test"));
        assert_eq!(
            log.lock().last().unwrap(),
            "a:from the test",
            "outside a handler: at once"
        );
        assert_eq!(transport.held(), 0);
    }
);

rt_test!(
    a_panicking_flush_costs_neither_the_process_nor_the_worker,
    |flavor| {
        let rt = flavor.build();
        let log = Log::default();
        let transport = Holding::new("a", &log);
        transport.panic_on_flush.store(true, Ordering::Relaxed);
        rt.inbound().set_transport(transport.clone());
        let relay = rt.spawn(Relay);
        let _entered = rt.enter();
        // Flushed between events (a message's handler) and before an answer (a dispatch's).
        send(&relay.upid(), note("1"));
        let answered = dispatch(&relay, |_: &mut Relay| send(&remote("sink"), note("2")));
        rt.block_on(answered).expect("the dispatch is answered");
        send(&relay.upid(), note("3"));
        rt.block_on(dispatch(&relay, |_: &mut Relay| ())).unwrap();
        assert_eq!(*log.lock(), ["a:relayed-1", "a:2", "a:relayed-3"]);
        drop(_entered);
        let report = rt.shutdown();
        assert_eq!(
            report.panicked(),
            0,
            "no process counts the transport's panic"
        );
        assert!(report.is_complete(), "{report:?}");
    }
);

rt_test!(
    a_visit_nested_in_another_runtimes_handler_sends_through_its_own_transport,
    |flavor, rt| {
        let log = Log::default();
        let outer = Holding::new("outer", &log);
        rt.inbound().set_transport(outer.clone());
        let inner_rt = Runtime::builder().deterministic(3).build().unwrap();
        let inner = Holding::new("inner", &log);
        inner_rt.inbound().set_transport(inner.clone());
        let inner_relay = inner_rt.spawn(Relay);
        // Started now: a nested `initialize` would flush what the outer handler held on its own.
        inner_rt.clock().settle();
        {
            let _entered = inner_rt.enter();
            send(&inner_relay.upid(), note("x"));
        }
        let outer_relay = rt.spawn(Relay);
        let nested = {
            let inner_clock = inner_rt.clock();
            dispatch(&outer_relay, move |_: &mut Relay| {
                send(&remote("sink"), note("before"));
                // Runs the inner runtime's relay here, inside this handler.
                inner_clock.settle();
                send(&remote("sink"), note("after"));
            })
        };
        rt.block_on(nested).unwrap();
        assert_eq!(
            *log.lock(),
            ["outer:before", "inner:relayed-x", "outer:after"],
            "what the outer handler held goes first, the nested visit's sends go through its own \
         runtime's transport, and the outer handler's later sends through its own again"
        );
        assert!(inner_rt.shutdown().is_complete());
    }
);
