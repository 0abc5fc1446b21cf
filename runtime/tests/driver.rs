//! The driver's stuck report of armed timers: when each fires, and for whom.

use std::time::Duration;

use procession::{after, delay, dispatch, Driver, Future, Process, Promise, Runtime};

/// Holds whatever it waits on, so the wait outlives the handler that started it.
#[derive(Default)]
struct Client {
    waiting: Vec<Future<u32>>,
    timers: Vec<Future<()>>,
    unkept: Vec<Promise<u32>>,
}
impl Process for Client {}

struct Registry;
impl Process for Registry {}

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

#[test]
fn a_threaded_runtime_has_no_driver() {
    assert!(Runtime::new().driver().is_none());
}

#[test]
fn timers_show_with_their_owners_in_deadline_order() {
    let (runtime, driver) = deterministic();
    let client = runtime.spawn_named("a", Client::default()).unwrap();
    let registry = runtime.spawn_named("b", Registry).unwrap();
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

    // Fired timers go.
    runtime.clock().advance(Duration::from_secs(10));
    assert_eq!(driver.armed_timers().len(), 3);
    run(&driver);

    outside.discard();
    let deadlines: Vec<_> = driver.armed_timers().iter().map(|t| t.deadline).collect();
    assert_eq!(deadlines, [at(20), at(30)]);
}
