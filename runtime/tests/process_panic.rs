//! A panic in a handler ends that process only: its pending work is abandoned, linkers learn
//! `Panicked`, `wait` completes, `finalize` is skipped, and the workers carry on.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use procession::{
    dispatch, link, send, terminate, wait, Context, ExitReason, Future, Message, Pid, Process,
    Runtime, Upid,
};
use support::EXPECTED_PANIC;

/// Counts its finalizes; panics where it is told to.
#[derive(Default)]
struct Fragile {
    finalized: Arc<AtomicUsize>,
    panic_in_initialize: bool,
    panic_in_finalize: bool,
    panic_in_exited: bool,
    panic_on_message: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Poke;
impl Message for Poke {
    const NAME: &'static str = "panic::Poke";
}

impl Process for Fragile {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        assert!(!self.panic_in_initialize, "initialize {EXPECTED_PANIC}");
        ctx.install(|me: &mut Self, _: &Upid, Poke| {
            assert!(!me.panic_on_message, "message {EXPECTED_PANIC}");
        })
        .unwrap();
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.finalized.fetch_add(1, Ordering::SeqCst);
        assert!(!self.panic_in_finalize, "finalize {EXPECTED_PANIC}");
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, _: &Upid, _: &ExitReason) {
        assert!(!self.panic_in_exited, "exited {EXPECTED_PANIC}");
    }
}

type Exits = Arc<Mutex<Vec<(Upid, ExitReason)>>>;

/// Records every `exited`.
struct Monitor(Exits);
impl Process for Monitor {
    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.0.lock().push((upid.clone(), reason.clone()));
    }
}

/// A monitor linked to `target`, and its record of exits.
fn watch(rt: &Runtime, target: &Upid) -> (Pid<Monitor>, Exits) {
    let exits = Exits::default();
    let pid = rt.spawn(Monitor(exits.clone()));
    let target = target.clone();
    rt.block_on(dispatch(&pid, move |_: &mut Monitor| link(&target)))
        .unwrap();
    (pid, exits)
}

fn exits_of(rt: &Runtime, monitor: &Pid<Monitor>, exits: &Exits) -> Vec<(Upid, ExitReason)> {
    rt.block_on(dispatch(monitor, |_: &mut Monitor| ()))
        .unwrap();
    exits.lock().clone()
}

fn panicked(what: &str) -> ExitReason {
    ExitReason::Panicked(format!("{what} {EXPECTED_PANIC}").into())
}

struct Bystander(u64);
impl Process for Bystander {}

rt_test!(a_panicking_dispatch_ends_that_process_only, |flavor, rt| {
    support::quiet_expected_panics();
    let finalized = Arc::new(AtomicUsize::new(0));
    let fragile = rt.spawn(Fragile {
        finalized: finalized.clone(),
        ..Fragile::default()
    });
    let bystander = rt.spawn(Bystander(0));
    let (monitor, exits) = watch(rt, &fragile.upid());
    let me = fragile.clone();
    // The crash and two events behind it, queued from inside so they are certainly queued.
    let queued = dispatch(&fragile, move |_: &mut Fragile| {
        let crash = dispatch(&me, |_: &mut Fragile| -> u32 {
            panic!("dispatch {EXPECTED_PANIC}")
        });
        let behind = (0..2)
            .map(|i| dispatch(&me, move |_: &mut Fragile| i))
            .collect::<Vec<_>>();
        (crash, behind)
    });
    rt.block_on(wait(&fragile)).unwrap();
    let (crash, behind) = queued.get().unwrap();
    assert!(crash.is_abandoned(), "{crash:?}");
    assert!(behind.iter().all(Future::is_abandoned), "{behind:?}");
    assert!(dispatch(&fragile, |_: &mut Fragile| 1).is_abandoned());
    assert_eq!(finalized.load(Ordering::SeqCst), 0, "finalize is skipped");
    assert_eq!(
        exits_of(rt, &monitor, &exits),
        vec![(fragile.upid(), panicked("dispatch"))]
    );
    // The worker that ran the panic goes on serving others.
    for _ in 0..100 {
        dispatch(&bystander, |b: &mut Bystander| b.0 += 1);
    }
    assert_eq!(
        rt.block_on(dispatch(&bystander, |b: &mut Bystander| b.0))
            .unwrap(),
        100
    );
    assert_eq!(rt.stats().processes, 2, "bystander and monitor");
});

rt_test!(
    a_panic_in_each_hook_ends_the_process_with_panicked,
    |flavor, rt| {
        support::quiet_expected_panics();
        let finalized = Arc::new(AtomicUsize::new(0));
        let fragile = |configure: fn(&mut Fragile)| {
            let mut process = Fragile {
                finalized: finalized.clone(),
                ..Fragile::default()
            };
            configure(&mut process);
            process
        };

        // initialize: what was queued behind it is abandoned; wait completes.
        let pid = rt.spawn(fragile(|f| f.panic_in_initialize = true));
        let queued = dispatch(&pid, |_: &mut Fragile| 1);
        rt.block_on(wait(&pid)).unwrap();
        assert!(queued.is_abandoned());

        // A message handler.
        let pid = rt.spawn(fragile(|f| f.panic_on_message = true));
        let (monitor, exits) = watch(rt, &pid.upid());
        {
            let _entered = rt.enter();
            send(&pid.upid(), Poke);
        }
        rt.block_on(wait(&pid)).unwrap();
        assert_eq!(
            exits_of(rt, &monitor, &exits),
            vec![(pid.upid(), panicked("message"))]
        );

        // exited: the linker itself crashes, and its own linkers hear about it.
        let target = rt.spawn(Bystander(0));
        let linker = rt.spawn(fragile(|f| f.panic_in_exited = true));
        let (monitor, exits) = watch(rt, &linker.upid());
        let to = target.upid();
        rt.block_on(dispatch(&linker, move |_: &mut Fragile| link(&to)))
            .unwrap();
        terminate(&target);
        rt.block_on(wait(&linker)).unwrap();
        assert_eq!(
            exits_of(rt, &monitor, &exits),
            vec![(linker.upid(), panicked("exited"))]
        );

        assert_eq!(
            finalized.load(Ordering::SeqCst),
            0,
            "no finalize after a panic"
        );

        // finalize: it ran (and counted), the reason is Panicked.
        let pid = rt.spawn(fragile(|f| f.panic_in_finalize = true));
        let (monitor, exits) = watch(rt, &pid.upid());
        terminate(&pid);
        rt.block_on(wait(&pid)).unwrap();
        assert_eq!(finalized.load(Ordering::SeqCst), 1);
        assert_eq!(
            exits_of(rt, &monitor, &exits),
            vec![(pid.upid(), panicked("finalize"))]
        );
    }
);

rt_test!(many_panics_leave_the_workers_serving, |flavor, rt| {
    support::quiet_expected_panics();
    let crashed: Vec<_> = (0..100)
        .map(|_| {
            let pid = rt.spawn(Fragile::default());
            let reply = dispatch(&pid, |_: &mut Fragile| -> u8 { panic!("{EXPECTED_PANIC}") });
            (pid, reply)
        })
        .collect();
    for (pid, reply) in &crashed {
        rt.block_on(wait(pid)).unwrap();
        assert!(reply.is_abandoned());
    }
    assert_eq!(rt.stats().processes, 0);
    let survivor = rt.spawn(Bystander(41));
    let answer = dispatch(&survivor, |b: &mut Bystander| {
        b.0 += 1;
        b.0
    });
    assert_eq!(rt.block_on(answer).unwrap(), 42);
});

rt_test!(
    a_panic_after_terminate_now_in_the_same_handler_still_settles,
    |flavor, rt| {
        support::quiet_expected_panics();
        let pid = rt.spawn(Fragile::default());
        let me = pid.clone();
        // The injected terminate is pending when the handler panics; the panic ends the process.
        let crash = dispatch(&pid, move |_: &mut Fragile| {
            procession::terminate_now(&me);
            panic!("after terminate_now {EXPECTED_PANIC}");
        });
        rt.block_on(wait(&pid)).unwrap();
        assert!(crash.is_abandoned());
        let clock = rt.clock();
        clock.pause();
        support::settle_within(&clock);
    }
);
