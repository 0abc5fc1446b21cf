//! The settle counters never report idle while a unit of work is outstanding.
//!
//! An external thread starts unit 1 and publishes it; worker 0 handles it, starting unit 2 before
//! finishing unit 1, then finishes unit 2. `phase` marks ground truth: it is 1 or 2 only while a
//! unit is certainly outstanding (set after a `started`, moved on before the matching
//! `finished`). An observer that sees phase 1 or 2 both before and after its `is_idle` call was
//! looking at a busy system the whole time, so `is_idle` must say no.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::quiesce::Quiesce;

#[test]
fn loom_quiesce_never_idle_while_work_is_outstanding() {
    loom::model(|| {
        let quiesce = Arc::new(Quiesce::new(1, 1));
        let phase = Arc::new(AtomicUsize::new(0));
        let published = Arc::new(AtomicBool::new(false));

        let external = {
            let (quiesce, phase, published) = (quiesce.clone(), phase.clone(), published.clone());
            thread::spawn(move || {
                quiesce.started_on(None);
                phase.store(1, Ordering::SeqCst);
                published.store(true, Ordering::Release);
            })
        };
        let worker = {
            let (quiesce, phase, published) = (quiesce.clone(), phase.clone(), published.clone());
            thread::spawn(move || {
                while !published.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                quiesce.started_on(Some(0));
                phase.store(2, Ordering::SeqCst);
                quiesce.finished_on(Some(0));
                phase.store(3, Ordering::SeqCst);
                quiesce.finished_on(Some(0));
            })
        };

        let before = phase.load(Ordering::SeqCst);
        let idle = quiesce.is_idle();
        let after = phase.load(Ordering::SeqCst);
        if matches!(before, 1 | 2) && matches!(after, 1 | 2) {
            assert!(
                !idle,
                "reported idle while unit {before}..{after} was outstanding"
            );
        }

        external.join().unwrap();
        worker.join().unwrap();
        assert!(quiesce.is_idle(), "every unit finished, yet not idle");
    });
}
