//! The driver's stuck reports: pending dispatches (who waits on whom, for which method, since
//! when) and armed timers (when, for whom), and that their records leave with what they record.

use std::time::Duration;

use procession::{
    after, delay, dispatch, dispatch_method, process, terminate_now, Driver, Future, Process,
    Promise, Runtime, SpawnOptions, Upid,
};

/// Holds whatever it waits on, so the wait outlives the handler that started it.
#[derive(Default)]
struct Client {
    waiting: Vec<Future<u32>>,
    timers: Vec<Future<()>>,
    unkept: Vec<Promise<u32>>,
}
impl Process for Client {}

#[derive(Default)]
struct Registry {
    answer: Option<Future<u32>>,
}
impl Process for Registry {}

#[process]
impl Registry {
    pub fn register(&mut self) -> Future<u32> {
        self.answer.clone().expect("the test gives an answer first")
    }
}

fn deterministic() -> (Runtime, Driver) {
    let runtime = Runtime::builder().deterministic(3).build().unwrap();
    let driver = runtime
        .driver()
        .expect("a deterministic runtime has a driver");
    (runtime, driver)
}

fn run(driver: &Driver) {
    while driver.step().is_some() {}
}

fn who_waits(driver: &Driver) -> Vec<(Option<Upid>, Upid, Option<&'static str>)> {
    let pending = driver.pending_dispatches().into_iter();
    pending.map(|d| (d.caller, d.target, d.method)).collect()
}

#[test]
fn a_threaded_runtime_has_no_driver() {
    assert!(Runtime::new().driver().is_none());
}

#[test]
fn a_flattened_dispatch_shows_its_caller_target_and_method_until_answered() {
    let (runtime, driver) = deterministic();
    let client = runtime.spawn_named("a", Client::default()).unwrap();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    let promise = Promise::<u32>::new();
    let answer = promise.future();
    let to = registry.clone();
    let asked = dispatch(&client, move |c: &mut Client| {
        let flat = dispatch_method(&to, Some("register"), move |_: &mut Registry| answer);
        c.waiting.push(flat.flatten());
    });
    let asked_at = runtime.clock().now() + Duration::from_secs(3);
    runtime.clock().advance(Duration::from_secs(3));
    run(&driver);

    assert!(asked.is_ready());
    let pending = driver.pending_dispatches();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].caller, Some(client.upid()));
    assert_eq!(pending[0].target, registry.upid());
    assert_eq!(pending[0].method, Some("register"));
    assert_eq!(pending[0].since, asked_at);

    promise.set(7);
    assert!(driver.pending_dispatches().is_empty());
    let got = dispatch(&client, |c: &mut Client| c.waiting[0].get());
    run(&driver);
    assert_eq!(got.get(), Some(Some(7)));
}

#[test]
fn a_process_handle_method_returning_a_future_shows_until_that_future_completes() {
    let (runtime, driver) = deterministic();
    let client = runtime.spawn_named("a", Client::default()).unwrap();
    let promise = Promise::<u32>::new();
    let registry = Registry {
        answer: Some(promise.future()),
    };
    let registry = runtime.spawn_named("b", registry).unwrap();
    let to = registry.clone();
    dispatch(&client, move |c: &mut Client| c.waiting.push(to.register()));
    run(&driver);

    let expected = vec![(Some(client.upid()), registry.upid(), Some("register"))];
    assert_eq!(who_waits(&driver), expected);
    drop(promise);
    assert!(driver.pending_dispatches().is_empty());
}

#[test]
fn a_dispatch_not_flattened_at_once_shows_until_its_closure_ran() {
    let (runtime, driver) = deterministic();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    let promise = Promise::<u32>::new();
    let answer = promise.future();
    let nested = dispatch(&registry, move |_: &mut Registry| answer);
    let other = dispatch(&registry, |_: &mut Registry| ());
    let flat = nested.flatten();
    assert_eq!(driver.pending_dispatches().len(), 2);
    run(&driver);

    assert!(other.is_ready());
    assert!(flat.is_pending());
    assert!(driver.pending_dispatches().is_empty());
    promise.set(1);
    assert_eq!(flat.get(), Some(1));
}

#[test]
fn dispatches_waiting_in_a_busy_mailbox_show_in_call_order() {
    let (runtime, driver) = deterministic();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    let first = dispatch_method(&registry, Some("first"), |_: &mut Registry| 1);
    let second = dispatch_method(&registry, Some("second"), |_: &mut Registry| 2);
    let third = dispatch(&registry, |_: &mut Registry| 3);
    let queued = |names: &[Option<&'static str>]| -> Vec<_> {
        let to = |name: &Option<&'static str>| (None, registry.upid(), *name);
        names.iter().map(to).collect()
    };
    assert_eq!(
        who_waits(&driver),
        queued(&[Some("first"), Some("second"), None])
    );

    // One event per step: the first runs, the others still wait behind it.
    while first.is_pending() {
        driver.step().expect("the registry has events to run");
    }
    assert!(second.is_pending() && third.is_pending());
    assert_eq!(who_waits(&driver), queued(&[Some("second"), None]));
    run(&driver);
    assert!(driver.pending_dispatches().is_empty());
}

#[test]
fn a_dispatch_parked_at_a_full_mailbox_shows() {
    let (runtime, driver) = deterministic();
    let bounded = SpawnOptions::new().bounded(1);
    let registry = runtime.spawn_with(Registry::default(), bounded).unwrap();
    let queued = dispatch(&registry, |_: &mut Registry| ());
    let parked = dispatch_method(&registry, Some("parked"), |_: &mut Registry| ());
    let methods: Vec<_> = who_waits(&driver).into_iter().map(|w| w.2).collect();
    assert_eq!(methods, [None, Some("parked")]);
    run(&driver);
    assert!(queued.is_ready() && parked.is_ready());
    assert!(driver.pending_dispatches().is_empty());
}

#[test]
fn a_dispatch_to_a_gone_process_does_not_show() {
    let (runtime, driver) = deterministic();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    terminate_now(&registry);
    run(&driver);
    let late = dispatch_method(&registry, Some("late"), |_: &mut Registry| ());
    assert!(late.is_abandoned());
    assert!(driver.pending_dispatches().is_empty());
}

#[test]
fn timers_show_with_their_owners_in_deadline_order() {
    let (runtime, driver) = deterministic();
    let client = runtime.spawn_named("a", Client::default()).unwrap();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    let start = runtime.clock().now();
    let at = |secs| start + Duration::from_secs(secs);

    let outside = {
        let _entered = runtime.enter();
        after(Duration::from_secs(40))
    };
    let _ring = delay(Duration::from_secs(10), &registry, |_: &mut Registry| ());
    dispatch(&client, |c: &mut Client| {
        c.timers.push(after(Duration::from_secs(20)));
        let never = Promise::<u32>::new();
        let timeout = never
            .future()
            .after(Duration::from_secs(30), |_| Future::failed("timed out"));
        c.waiting.push(timeout);
        c.unkept.push(never);
    });
    run(&driver);

    let armed: Vec<_> = driver
        .armed_timers()
        .into_iter()
        .map(|t| (t.deadline, t.owner))
        .collect();
    let (a, b) = (Some(client.upid()), Some(registry.upid()));
    let expected = vec![
        (at(10), b.clone()),
        (at(20), a.clone()),
        (at(30), a),
        (at(40), None),
    ];
    assert_eq!(armed, expected);
    assert_eq!(driver.next_timer(), Some(at(10)));

    // The delay fires: its timer goes, and its dispatch waits for the registry.
    runtime.clock().advance(Duration::from_secs(10));
    assert_eq!(driver.armed_timers().len(), 3);
    assert_eq!(who_waits(&driver), [(None, registry.upid(), None)]);
    assert_eq!(driver.pending_dispatches()[0].since, at(10));
    run(&driver);
    assert!(driver.pending_dispatches().is_empty());

    outside.discard();
    let deadlines: Vec<_> = driver.armed_timers().iter().map(|t| t.deadline).collect();
    assert_eq!(deadlines, [at(20), at(30)]);
}

#[test]
fn records_leave_with_what_they_record() {
    let (runtime, driver) = deterministic();
    let client = runtime.spawn_named("a", Client::default()).unwrap();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    let mut promises = Vec::new();
    let mut answers = Vec::new();
    for n in 0..10_000u32 {
        match n % 4 {
            0 => answers.push(dispatch(&registry, move |_: &mut Registry| n)),
            1 => {
                let promise = Promise::new();
                let answer = promise.future();
                promises.push(promise);
                let flat = dispatch(&registry, move |_: &mut Registry| answer).flatten();
                answers.push(flat);
            }
            2 => {
                let to = registry.clone();
                dispatch(&client, move |c: &mut Client| {
                    let flat = dispatch_method(&to, Some("echo"), move |_: &mut Registry| {
                        Future::ready(n)
                    });
                    c.waiting.push(flat.flatten());
                });
            }
            _ => {
                let wait = Duration::from_millis(u64::from(n));
                let timer = delay(wait, &registry, |_: &mut Registry| ());
                if n % 8 == 3 {
                    assert!(timer.cancel());
                }
            }
        }
    }
    // Every dispatch but the delays', which wait for their timers.
    assert_eq!(driver.pending_dispatches().len(), 7_500);
    assert_eq!(driver.armed_timers().len(), 1_250);
    run(&driver);
    runtime.clock().advance(Duration::from_secs(10));
    run(&driver);

    assert_eq!(driver.pending_dispatches().len(), 2_500, "the unanswered");
    for (n, promise) in promises.into_iter().enumerate() {
        match n % 3 {
            0 => promise.set(0),
            1 => promise.fail("no"),
            _ => drop(promise),
        }
    }
    assert!(driver.pending_dispatches().is_empty());
    assert!(driver.armed_timers().is_empty());
    assert!(answers.iter().all(|answer| !answer.is_pending()));
}

#[test]
fn a_flattened_dispatch_may_outlive_its_runtime() {
    let (runtime, driver) = deterministic();
    let registry = runtime.spawn_named("b", Registry::default()).unwrap();
    let promise = Promise::<u32>::new();
    let answer = promise.future();
    let flat = dispatch(&registry, move |_: &mut Registry| answer).flatten();
    run(&driver);
    assert_eq!(driver.pending_dispatches().len(), 1);
    drop((driver, registry));
    drop(runtime);
    promise.set(5);
    assert_eq!(flat.get(), Some(5));
}
