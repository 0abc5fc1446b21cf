//! Supervisors: each strategy restarts the right children, in order, at the same address; the
//! restart intensity escalates; a normal end is not restarted.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use procession::{
    dispatch, monitor, supervise, terminate, Context, ExitReason, Pid, Process, Runtime, Strategy,
    Supervisor,
};

type Log = Arc<Mutex<Vec<String>>>;

/// Counts its own work; logs its starts and ends.
struct Worker {
    name: &'static str,
    log: Log,
    work: u32,
}

impl Process for Worker {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        self.log.lock().push(format!("start {}", self.name));
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        self.log.lock().push(format!("end {}", self.name));
    }
}

fn supervised(
    rt: &Runtime,
    supervisor: Supervisor,
    log: &Log,
) -> (Pid<Supervisor>, Vec<Pid<Worker>>) {
    let sup = rt.spawn(supervisor);
    let workers = ["w0", "w1", "w2"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            let factory = move || Worker {
                name,
                log: log.clone(),
                work: 0,
            };
            rt.block_on(supervise(&sup, factory)).unwrap()
        })
        .collect::<Vec<_>>();
    for worker in &workers {
        rt.block_on(dispatch(worker, |w: &mut Worker| w.work += 1))
            .unwrap();
    }
    rt.clock().settle();
    log.lock().clear();
    (sup, workers)
}

fn crash(rt: &Runtime, worker: &Pid<Worker>) {
    let crashed = dispatch(worker, |_: &mut Worker| -> u32 { panic!("worker bug") });
    assert!(rt.block_on(crashed).unwrap_err().is_abandoned());
    rt.clock().settle();
}

fn work(rt: &Runtime, workers: &[Pid<Worker>]) -> Vec<u32> {
    workers
        .iter()
        .map(|w| rt.block_on(dispatch(w, |w: &mut Worker| w.work)).unwrap())
        .collect()
}

rt_test!(one_for_one_restarts_only_the_crashed_child, |flavor, rt| {
    rt.clock().pause();
    let log = Log::default();
    let (_, workers) = supervised(rt, Supervisor::new(Strategy::OneForOne), &log);
    crash(rt, &workers[1]);
    assert_eq!(*log.lock(), ["start w1"]);
    assert_eq!(work(rt, &workers), [1, 0, 1], "fresh state at the same Pid");
});

rt_test!(one_for_all_restarts_every_child_in_order, |flavor, rt| {
    rt.clock().pause();
    let log = Log::default();
    let (_, workers) = supervised(rt, Supervisor::new(Strategy::OneForAll), &log);
    crash(rt, &workers[1]);
    assert_eq!(
        *log.lock(),
        ["end w2", "end w0", "start w0", "start w1", "start w2"],
        "siblings end newest first, then all start in order"
    );
    assert_eq!(work(rt, &workers), [0, 0, 0]);
});

rt_test!(
    rest_for_one_restarts_the_child_and_the_younger_ones,
    |flavor, rt| {
        rt.clock().pause();
        let log = Log::default();
        let (_, workers) = supervised(rt, Supervisor::new(Strategy::RestForOne), &log);
        crash(rt, &workers[1]);
        assert_eq!(*log.lock(), ["end w2", "start w1", "start w2"]);
        assert_eq!(work(rt, &workers), [1, 0, 0]);
    }
);

rt_test!(a_normal_end_is_not_restarted, |flavor, rt| {
    rt.clock().pause();
    let log = Log::default();
    let (_, workers) = supervised(rt, Supervisor::new(Strategy::OneForAll), &log);
    terminate(&workers[0]);
    rt.clock().settle();
    assert_eq!(*log.lock(), ["end w0"]);
    assert!(rt
        .block_on(dispatch(&workers[0], |w: &mut Worker| w.work))
        .unwrap_err()
        .is_abandoned());
});

rt_test!(the_intensity_limit_escalates, |flavor, rt| {
    let clock = rt.clock();
    clock.pause();
    let log = Log::default();
    let supervisor = Supervisor::new(Strategy::OneForOne).intensity(2, Duration::from_secs(10));
    let (sup, workers) = supervised(rt, supervisor, &log);
    let failed = monitor(&sup);
    crash(rt, &workers[0]);
    clock.advance(Duration::from_secs(11));
    // The first restart has left the window: two more fit.
    crash(rt, &workers[0]);
    crash(rt, &workers[2]);
    assert!(
        failed.is_pending(),
        "two restarts in the window are allowed"
    );
    crash(rt, &workers[1]);
    let reason = rt.block_on(failed).unwrap();
    assert!(
        matches!(&reason, ExitReason::Panicked(m) if m.contains("restart intensity exceeded")),
        "{reason:?}"
    );
    assert!(
        log.lock()
            .ends_with(&["end w2".to_owned(), "end w0".to_owned()]),
        "the failing supervisor ended its remaining children first: {:?}",
        log.lock()
    );
});

/// Links to `target` when it starts, so that `target`'s ending has a second linker to tell.
struct Linker(procession::Upid);

impl Process for Linker {
    fn initialize(&mut self, _: &mut Context<'_, Self>) {
        procession::link(&self.0);
    }
}

/// The supervisor hears of a crash while the child is still ending (its other linker told, its
/// monitor's callback running on another worker): the crash must still restart it.
#[test]
fn a_crash_heard_while_the_child_is_still_ending_is_restarted() {
    let rt = Runtime::builder().workers(2).paused().build().unwrap();
    let log = Log::default();
    let supervisor = Supervisor::new(Strategy::OneForOne).intensity(100, Duration::from_secs(1));
    let (sup, workers) = supervised(&rt, supervisor, &log);
    let child = &workers[1];
    for round in 0..20 {
        rt.spawn(Linker(child.upid()));
        rt.clock().settle();
        // Holds the ending worker inside the ending, after the linkers were told, until the
        // supervisor (on the other worker) has handled what was queued to it before: its
        // notice. The bound only keeps a supervisor that never runs there from hanging it.
        let sup = sup.clone();
        monitor(child).on_any(move |_| {
            let (handled, heard) = std::sync::mpsc::channel();
            let _ = dispatch(&sup, move |_: &mut Supervisor| handled.send(()));
            let _ = heard.recv_timeout(Duration::from_secs(1));
        });
        crash(&rt, child);
        let answered = dispatch(child, |w: &mut Worker| w.work);
        assert!(
            rt.block_on(answered).is_ok(),
            "round {round}: the crashed child was not restarted"
        );
    }
    rt.shutdown();
}
