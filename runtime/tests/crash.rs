//! `Runtime::crash`: the node stops at once, as if killed — no finalize, nothing told, every
//! pending future abandoned — on every runtime flavour.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use procession::{after, dispatch, link, Context, ExitReason, Process, Promise, Upid};

struct Finalizing(Arc<AtomicU32>);

impl Process for Finalizing {
    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Links to a process on the same runtime and counts the `exited` notices it gets.
struct Linker {
    to: Upid,
    told: Arc<AtomicU32>,
}

impl Process for Linker {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        link(&self.to);
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, _: &Upid, _: &ExitReason) {
        self.told.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_crash_runs_no_finalize_tells_no_linker_and_abandons_what_was_pending() {
    for flavor in support::flavors() {
        eprintln!("--- flavour: {flavor}");
        support::with_watchdog(&format!("flavour {flavor}"), || {
            let runtime = flavor.build();
            let _entered = runtime.enter();
            let finalized = Arc::new(AtomicU32::new(0));
            let told = Arc::new(AtomicU32::new(0));
            let target = runtime.spawn(Finalizing(finalized.clone()));
            runtime.spawn(Linker {
                to: target.upid(),
                told: told.clone(),
            });
            // Make sure both started (the link is in place) before the crash.
            runtime
                .block_on(dispatch(&target, |_: &mut Finalizing| ()))
                .unwrap();
            let blocked = Promise::<()>::new();
            let gate = blocked.future();
            let stuck = dispatch(&target, move |_: &mut Finalizing| gate).flatten();
            let queued = dispatch(&target, |_: &mut Finalizing| 1);
            let timer = after(Duration::from_secs(3600));

            runtime.crash();

            assert_eq!(finalized.load(Ordering::SeqCst), 0, "finalize ran");
            assert_eq!(
                told.load(Ordering::SeqCst),
                0,
                "a linker on the crashed node was told"
            );
            assert!(timer.is_abandoned(), "the armed timer's future: {timer:?}");
            // A threaded runtime may have run both dispatches before the crash: the second is
            // then ready, and the first waits on a gate only this test holds. Nothing hangs.
            assert!(!queued.is_pending(), "{queued:?}");
            if flavor.is_deterministic() {
                assert!(
                    queued.is_abandoned(),
                    "nothing ran before the crash: {queued:?}"
                );
            }
            drop(blocked);
            assert!(stuck.is_abandoned(), "{stuck:?}");
        });
    }
}

#[test]
fn a_dispatch_to_a_process_of_a_crashed_runtime_is_abandoned() {
    for flavor in support::flavors() {
        let runtime = flavor.build();
        let target = runtime.spawn(Finalizing(Arc::default()));
        runtime.crash();
        let late = dispatch(&target, |_: &mut Finalizing| 1);
        assert!(late.is_abandoned(), "{flavor}: {late:?}");
    }
}

/// Keeps the promise of every answer it owes.
#[derive(Default)]
struct Owing(Vec<Promise<u32>>);
impl Process for Owing {}

#[test]
fn a_crash_drops_the_state_so_the_promises_it_held_end_abandoned() {
    for flavor in support::flavors() {
        let runtime = flavor.build();
        let owing = runtime.spawn(Owing::default());
        let owed = dispatch(&owing, |o: &mut Owing| {
            let promise = Promise::new();
            let future = promise.future();
            o.0.push(promise);
            future
        })
        .flatten();
        runtime
            .block_on(dispatch(&owing, |o: &mut Owing| o.0.len()))
            .unwrap();
        assert!(owed.is_pending());
        runtime.crash();
        assert!(owed.is_abandoned(), "{flavor}: {owed:?}");
    }
}
