//! Process lifecycle: initialize first, finalize last, terminate at the back or the front, wait,
//! ids, shutdown, and many runtimes in one OS process.

#[macro_use]
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    dispatch, send, spawn, spawn_named, terminate, terminate_now, wait, Context, Future, Message,
    Pid, Process, Upid,
};

type Log = Arc<Mutex<Vec<String>>>;

/// Logs its lifecycle hooks and whatever its dispatches push.
struct Life {
    log: Log,
}

impl Life {
    fn new() -> (Life, Log) {
        let log = Log::default();
        (Life { log: log.clone() }, log)
    }

    fn push(&self, entry: &str) {
        self.log.lock().push(entry.to_owned());
    }
}

impl Process for Life {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        self.push("initialize");
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.push("finalize");
    }
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().clone()
}

rt_test!(
    initialize_runs_before_any_dispatch_and_finalize_after_terminate,
    |flavor, rt| {
        let (life, log) = Life::new();
        let pid = rt.spawn(life);
        let replies: Vec<Future<()>> = (0..3)
            .map(|i| dispatch(&pid, move |l: &mut Life| l.push(&format!("d{i}"))))
            .collect();
        terminate(&pid);
        let late = dispatch(&pid, |l: &mut Life| l.push("late"));
        rt.block_on(wait(&pid)).unwrap();
        assert_eq!(entries(&log), ["initialize", "d0", "d1", "d2", "finalize"]);
        assert!(replies.iter().all(Future::is_ready));
        assert!(
            late.is_abandoned(),
            "a dispatch queued behind terminate ends abandoned"
        );
    }
);

rt_test!(
    terminate_now_drops_queued_dispatches_but_runs_finalize,
    |flavor, rt| {
        let (life, log) = Life::new();
        let pid = rt.spawn(life);
        let me = pid.clone();
        // Queued from inside the process, so they are certainly behind the injected terminate.
        let queued = dispatch(&pid, move |l: &mut Life| {
            l.push("handler");
            let queued: Vec<Future<()>> = (0..3)
                .map(|i| dispatch(&me, move |l: &mut Life| l.push(&format!("q{i}"))))
                .collect();
            terminate_now(&me);
            l.push("handler end");
            queued
        });
        rt.block_on(wait(&pid)).unwrap();
        assert_eq!(
            entries(&log),
            ["initialize", "handler", "handler end", "finalize"]
        );
        let queued = queued.get().expect("the handler ran");
        assert!(queued.iter().all(Future::is_abandoned), "{queued:?}");
    }
);

rt_test!(
    terminate_now_from_a_handler_drops_events_already_queued_behind_it,
    |flavor, rt| {
        let (life, log) = Life::new();
        let pid = rt.spawn(life);
        let me = pid.clone();
        // [stop, after1, after2] are queued together; `stop` injects a terminate, so the two
        // events behind it must not run (DESIGN: "injected, queued events are dropped").
        let behind = dispatch(&pid, move |_: &mut Life| {
            let me2 = me.clone();
            let stop = dispatch(&me, move |l: &mut Life| {
                l.push("stop");
                terminate_now(&me2);
            });
            let after1 = dispatch(&me, |l: &mut Life| l.push("after1"));
            let after2 = dispatch(&me, |l: &mut Life| l.push("after2"));
            vec![stop, after1, after2]
        });
        rt.block_on(wait(&pid)).unwrap();
        let behind = behind.get().unwrap();
        assert_eq!(
            entries(&log),
            ["initialize", "stop", "finalize"],
            "events queued behind an injected terminate ran"
        );
        assert!(behind[0].is_ready());
        assert!(behind[1].is_abandoned() && behind[2].is_abandoned());
    }
);

rt_test!(
    terminate_then_terminate_now_in_one_visit_still_settles,
    |flavor, rt| {
        let (life, log) = Life::new();
        let pid = rt.spawn(life);
        let me = pid.clone();
        // The next visit holds [stop, Terminate]: `stop` injects a terminate while the back
        // terminate is already in the batch. Whichever ends the process, settle must return.
        dispatch(&pid, move |_: &mut Life| {
            let me2 = me.clone();
            dispatch(&me, move |_: &mut Life| terminate_now(&me2));
            terminate(&me);
        });
        rt.block_on(wait(&pid)).unwrap();
        let clock = rt.clock();
        clock.pause();
        support::settle_within(&clock);
        assert_eq!(entries(&log).last().map(String::as_str), Some("finalize"));
    }
);

rt_test!(
    wait_completes_after_finalize_and_at_once_when_gone,
    |flavor, rt| {
        let (life, log) = Life::new();
        let pid = rt.spawn(life);
        let seen_at_wait = wait(&pid).map(move |_| entries(&log));
        assert!(seen_at_wait.is_pending());
        terminate(&pid);
        let seen = rt.block_on(seen_at_wait).unwrap();
        assert_eq!(seen, ["initialize", "finalize"]);
        assert!(
            wait(&pid).is_ready(),
            "wait on a gone Pid completes at once"
        );
    }
);

rt_test!(wait_by_upid_needs_a_live_local_process, |flavor, rt| {
    let _entered = rt.enter();
    let (life, _) = Life::new();
    let pid = rt.spawn(life);
    let by_upid = wait(&pid.upid());
    assert!(by_upid.is_pending(), "a live local process by Upid");
    terminate(&pid);
    rt.block_on(by_upid.clone()).unwrap();

    let gone = wait(&pid.upid());
    let unknown = wait(&Upid::new("nobody(1)", rt.address()));
    let remote = wait(&"worker(1)@10.1.2.3:5050".parse::<Upid>().unwrap());
    for (what, future) in [("gone", gone), ("unknown", unknown), ("remote", remote)] {
        assert!(future.is_failed(), "{what}: {future:?}");
        let message = future.error().unwrap().to_string();
        assert!(
            message.contains("not a live local process"),
            "{what}: {message}"
        );
    }
});

struct Worker;
impl Process for Worker {}

struct Spawner;
impl Process for Spawner {}

struct Pool<T>(T);
impl<T: Send + 'static> Process for Pool<T> {}

rt_test!(generated_ids_are_typename_n_and_unique, |flavor, rt| {
    let pids: Vec<Pid<Worker>> = (0..200).map(|_| rt.spawn(Worker)).collect();
    let mut ids = HashSet::new();
    for pid in &pids {
        let id = pid.id();
        let n = id
            .strip_prefix("worker(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{id} is not worker(n)"));
        n.parse::<u64>().unwrap();
        assert!(ids.insert(id.to_owned()), "{id} generated twice");
        assert_eq!(pid.upid().address(), rt.address());
    }
    // The free function, from inside a handler, follows the same scheme and counter.
    let spawner = rt.spawn(Spawner);
    let inner = rt
        .block_on(dispatch(&spawner, |_: &mut Spawner| spawn(Worker)))
        .unwrap();
    assert!(inner.id().starts_with("worker(") && !ids.contains(inner.id()));
    assert!(spawner.id().starts_with("spawner("));
    let generic = rt.spawn(Pool(vec![1u8]));
    assert!(generic.id().starts_with("pool("), "{}", generic.id());
    assert_eq!(rt.stats().processes, 203);
});

rt_test!(an_empty_id_is_refused, |flavor, rt| {
    let refused = rt.spawn_named("", Life::new().0).unwrap_err();
    assert_eq!(refused, procession::SpawnError::EmptyId);
});

rt_test!(
    a_generated_id_skips_one_a_named_process_took,
    |flavor, rt| {
        // The counter is shared by every type: name the next few ids a generated one could take.
        let probe = rt.spawn(Life::new().0);
        let n: u64 = probe.id()["life(".len()..probe.id().len() - 1]
            .parse()
            .unwrap();
        let taken: Vec<_> = (n + 1..n + 4)
            .map(|k| {
                rt.spawn_named(&format!("life({k})"), Life::new().0)
                    .unwrap()
            })
            .collect();
        let generated = rt.spawn(Life::new().0);
        assert!(
            taken.iter().all(|t| t.id() != generated.id()),
            "{}",
            generated.id()
        );
        rt.block_on(dispatch(&generated, |l: &mut Life| l.push("answered")))
            .unwrap();
    }
);

rt_test!(
    spawn_named_refuses_a_live_duplicate_and_accepts_it_after,
    |flavor, rt| {
        let (life, _) = Life::new();
        let first = rt.spawn_named("master", life).unwrap();
        assert_eq!(first.id(), "master");
        let (life, second_log) = Life::new();
        let refused = rt.spawn_named("master", life).unwrap_err();
        assert!(refused.to_string().contains("master"), "{refused}");
        {
            let _entered = rt.enter();
            let (life, _) = Life::new();
            assert_eq!(spawn_named("master", life).unwrap_err(), refused);
        }
        terminate(&first);
        rt.block_on(wait(&first)).unwrap();
        let (life, third_log) = Life::new();
        let third = rt.spawn_named("master", life).unwrap();
        rt.block_on(dispatch(&third, |l: &mut Life| l.push("third")))
            .unwrap();
        assert_eq!(entries(&third_log), ["initialize", "third"]);
        assert!(
            entries(&second_log).is_empty(),
            "the refused process never ran"
        );
    }
);

/// Counts its finalizes; on finalize, optionally spawns a process and dispatches to it.
struct Finalizing {
    finalized: Arc<AtomicUsize>,
    spawn_in_finalize: Option<Arc<Mutex<Vec<Future<u32>>>>>,
}

impl Process for Finalizing {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.finalized.fetch_add(1, Ordering::SeqCst);
        if let Some(slot) = &self.spawn_in_finalize {
            let late = spawn(Worker);
            slot.lock().push(dispatch(&late, |_: &mut Worker| 7));
        }
    }
}

rt_test!(shutdown_runs_every_finalize_after_queued_events, |flavor| {
    let runtime = flavor.build();
    let finalized = Arc::new(AtomicUsize::new(0));
    let mut replies = Vec::new();
    for _ in 0..50 {
        let pid = runtime.spawn(Finalizing {
            finalized: finalized.clone(),
            spawn_in_finalize: None,
        });
        replies.push(dispatch(&pid, |_: &mut Finalizing| 1u32));
    }
    runtime.shutdown();
    assert_eq!(finalized.load(Ordering::SeqCst), 50);
    assert!(
        replies.iter().all(|r| r.get() == Some(1)),
        "queued events ran first"
    );
});

rt_test!(
    spawn_during_shutdown_gives_a_process_whose_dispatches_end_abandoned,
    |flavor| {
        let runtime = flavor.build();
        let finalized = Arc::new(AtomicUsize::new(0));
        let late = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..4 {
            runtime.spawn(Finalizing {
                finalized: finalized.clone(),
                spawn_in_finalize: Some(late.clone()),
            });
        }
        runtime.shutdown();
        assert_eq!(finalized.load(Ordering::SeqCst), 4);
        let late = late.lock();
        assert_eq!(late.len(), 4);
        for reply in late.iter() {
            assert!(reply.is_abandoned(), "spawned during shutdown: {reply:?}");
        }
    }
);

rt_test!(
    spawn_after_shutdown_gives_a_process_whose_dispatches_end_abandoned,
    |flavor| {
        let runtime = flavor.build();
        let entered = runtime.enter();
        runtime.shutdown();
        let pid = spawn(Worker);
        let reply = dispatch(&pid, |_: &mut Worker| 1);
        let waited = wait(&pid);
        drop(entered);
        assert!(
            reply.is_abandoned() && waited.is_ready(),
            "after shutdown: dispatch {reply:?}, wait {waited:?} (both should be complete)"
        );
    }
);

#[derive(serde::Serialize, serde::Deserialize)]
struct Note(u32);
impl Message for Note {
    const NAME: &'static str = "lifecycle::Note";
}

/// Counts the notes it receives.
struct Inbox {
    notes: Arc<AtomicUsize>,
}

impl Process for Inbox {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Note(_)| {
            me.notes.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
}

rt_test!(many_runtimes_in_one_os_process_do_not_interfere, |flavor| {
    let runtimes: Vec<_> = (0..3).map(|_| flavor.build()).collect();
    let addresses: HashSet<_> = runtimes.iter().map(|r| r.address()).collect();
    assert_eq!(addresses.len(), 3, "every runtime has its own address");

    let counters: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
    let inboxes: Vec<Pid<Inbox>> = runtimes
        .iter()
        .zip(&counters)
        .map(|(rt, notes)| {
            rt.spawn_named(
                "inbox",
                Inbox {
                    notes: notes.clone(),
                },
            )
            .unwrap()
        })
        .collect();
    let upids: HashSet<Upid> = inboxes.iter().map(Pid::upid).collect();
    assert_eq!(
        upids.len(),
        3,
        "the same id on three runtimes gives three Upids"
    );

    // Runtime 0 sends to runtime 1's inbox: not local, no transport, so dropped and counted.
    {
        let _entered = runtimes[0].enter();
        send(&inboxes[1].upid(), Note(1));
        send(&inboxes[0].upid(), Note(0));
    }
    // Each runtime works on its own thread, at the same time.
    std::thread::scope(|scope| {
        for (rt, inbox) in runtimes.iter().zip(&inboxes) {
            scope.spawn(move || {
                let _entered = rt.enter();
                for i in 0..500 {
                    send(&inbox.upid(), Note(i));
                }
                rt.block_on(dispatch(inbox, |_: &mut Inbox| ())).unwrap();
            });
        }
    });
    let received: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(received, [501, 500, 500]);
    let dropped: Vec<u64> = runtimes
        .iter()
        .map(|r| r.stats().dropped_messages)
        .collect();
    assert_eq!(dropped, [1, 0, 0]);
    for rt in runtimes {
        rt.shutdown();
    }
});

#[test]
fn in_process_addresses_stay_unique_while_a_runtime_lives() {
    // A runtime without a transport has an in-process address; DESIGN promises that Upids of
    // two runtimes never collide. Create more runtimes than there are ports while one lives.
    let first = procession::Runtime::builder()
        .deterministic(1)
        .build()
        .unwrap();
    let inbox = first.spawn_named("inbox", Worker).unwrap();
    for created in 1..=66_000u32 {
        let other = procession::Runtime::builder()
            .deterministic(1)
            .build()
            .unwrap();
        assert_ne!(
            other.address(),
            first.address(),
            "runtime #{created} after the first reuses its address, so {} names a process \
             of both",
            inbox.upid()
        );
    }
    first.shutdown();
}

/// Says when its `finalize` starts, then waits for the gate.
struct SlowToEnd {
    finalizing: std::sync::mpsc::Sender<()>,
    gate: std::sync::mpsc::Receiver<()>,
}

impl Process for SlowToEnd {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        let _ = self.finalizing.send(());
        let _ = self.gate.recv_timeout(std::time::Duration::from_secs(20));
    }
}

#[test]
fn spawn_named_refuses_a_taken_id_during_shutdown_too() {
    let rt = procession::Runtime::new();
    let (finalizing, started) = std::sync::mpsc::channel();
    let (release, gate) = std::sync::mpsc::channel();
    rt.spawn_named("master", SlowToEnd { finalizing, gate })
        .unwrap();
    let _entered = rt.enter();
    let shutdown = std::thread::spawn(move || rt.shutdown());
    // Shutting down, and "master" still ending.
    started.recv().unwrap();
    let refused = spawn_named("master", Life::new().0).map(|_| ());
    release.send(()).unwrap();
    assert!(shutdown.join().unwrap().is_complete());
    assert!(
        matches!(refused, Err(procession::SpawnError::IdTaken(_))),
        "{refused:?}"
    );
}
