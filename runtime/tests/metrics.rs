//! Metrics: counters, gauges and timers by name, exact under concurrency and under a paused
//! clock; snapshots as JSON; and the runtime's own metrics (processes, events handled, queue
//! depths, drops, timers).

#[macro_use]
mod support;

use std::sync::mpsc;
use std::time::Duration;

use procession::metrics::{Kind, MetricError, Snapshot, Timer, TimerGuard, Value};
use procession::{
    after, cast, dispatch, send, terminate, wait, Message, Metrics, Process, Runtime, SpawnOptions,
    Upid,
};

use support::{pause_and_settle, quiet_expected_panics, EXPECTED_PANIC};

#[derive(Default)]
struct Idle;
impl Process for Idle {}

#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Note;

fn counter(snapshot: &Snapshot, name: &str) -> u64 {
    let value = snapshot
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"));
    value
        .as_counter()
        .unwrap_or_else(|| panic!("{name} is not a counter"))
}

fn gauge(snapshot: &Snapshot, name: &str) -> i64 {
    let value = snapshot
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"));
    value
        .as_gauge()
        .unwrap_or_else(|| panic!("{name} is not a gauge"))
}

/// The `runtime.queue_depth.*` entries, by process id.
fn queue_depths(snapshot: &Snapshot) -> Vec<(String, i64)> {
    snapshot
        .iter()
        .filter_map(|(name, value)| {
            let id = name.strip_prefix("runtime.queue_depth.")?;
            Some((id.to_owned(), value.as_gauge().expect("a gauge")))
        })
        .collect()
}

#[test]
fn counters_gauges_and_timers_updated_from_many_threads_sum_exactly() {
    const THREADS: u64 = 8;
    const EACH: u64 = 20_000;
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let metrics = runtime.metrics();
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let metrics = metrics.clone();
            scope.spawn(move || {
                // Every thread registers too: concurrent registrations of a name meet.
                let hits = metrics.counter("hits").unwrap();
                let level = metrics.gauge("level").unwrap();
                let latency = metrics.timer("latency").unwrap();
                for i in 0..EACH {
                    hits.increment();
                    hits.add(2);
                    level.increment();
                    if i % 2 == 0 {
                        level.sub(3);
                    }
                    if i % 100 == 0 {
                        latency.record(Duration::from_micros(i));
                    }
                }
            });
        }
    });
    let snapshot = metrics.snapshot();
    assert_eq!(counter(&snapshot, "hits"), THREADS * EACH * 3);
    let expected = THREADS as i64 * (EACH as i64 - 3 * (EACH as i64 / 2));
    assert_eq!(gauge(&snapshot, "level"), expected);
    let latency = snapshot.get("latency").and_then(Value::as_timer).unwrap();
    assert_eq!(latency.count(), THREADS * EACH / 100);
    let per_thread: u64 = (0..EACH).step_by(100).sum();
    assert_eq!(latency.sum(), Duration::from_micros(THREADS * per_thread));
}

rt_test!(
    the_same_name_is_the_same_metric_across_handles_and_handlers,
    |flavor, rt| {
        let first = rt.metrics().counter("net.bytes_out").unwrap();
        let second = rt.metrics().counter("net.bytes_out").unwrap();
        first.add(10);
        second.add(5);
        assert_eq!((first.get(), second.get()), (15, 15));

        // A handler reaches the same registry through Metrics::current (as a library would).
        let process = rt.spawn(Idle);
        let counted = dispatch(&process, |_: &mut Idle| {
            Metrics::current()
                .counter("net.bytes_out")
                .unwrap()
                .add(100)
        });
        rt.block_on(counted).unwrap();
        assert_eq!(first.get(), 115);

        let level = rt.metrics().gauge("level").unwrap();
        rt.metrics().gauge("level").unwrap().set(-4);
        level.decrement();
        assert_eq!(level.get(), -5);

        let snapshot = rt.metrics().snapshot();
        assert_eq!(snapshot.get("net.bytes_out"), Some(&Value::Counter(115)));
        assert_eq!(snapshot.get("level"), Some(&Value::Gauge(-5)));
    }
);

#[test]
fn each_runtime_has_its_own_registry() {
    let one = Runtime::builder().workers(1).build().unwrap();
    let two = Runtime::builder().workers(1).build().unwrap();
    one.metrics().counter("requests").unwrap().add(3);
    two.metrics().gauge("requests").unwrap().set(7);
    assert_eq!(
        one.metrics().snapshot().get("requests"),
        Some(&Value::Counter(3))
    );
    assert_eq!(
        two.metrics().snapshot().get("requests"),
        Some(&Value::Gauge(7))
    );
}

#[test]
fn a_name_taken_by_another_kind_or_reserved_is_refused() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let metrics = runtime.metrics();
    let requests = metrics.counter("requests").unwrap();
    requests.increment();

    let clash = metrics.gauge("requests").unwrap_err();
    assert_eq!(
        clash,
        MetricError::KindClash {
            name: "requests".into(),
            registered: Kind::Counter,
            requested: Kind::Gauge,
        }
    );
    assert_eq!(
        clash.to_string(),
        r#"metric "requests" is a counter; it cannot also be a gauge"#
    );
    assert!(matches!(
        metrics.timer("requests"),
        Err(MetricError::KindClash {
            registered: Kind::Counter,
            requested: Kind::Timer,
            ..
        })
    ));
    metrics.timer("latency").unwrap();
    assert!(matches!(
        metrics.counter("latency"),
        Err(MetricError::KindClash {
            registered: Kind::Timer,
            requested: Kind::Counter,
            ..
        })
    ));

    let reserved = metrics.counter("runtime.processes").unwrap_err();
    assert_eq!(reserved, MetricError::Reserved("runtime.processes".into()));
    assert!(reserved.to_string().contains("reserved"));
    // Only the prefix with its dot is reserved.
    metrics.counter("runtimes").unwrap();

    // The refusals changed nothing: one counter, still counting.
    requests.increment();
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.get("requests"), Some(&Value::Counter(2)));
    assert_eq!(
        snapshot.get("requests").map(Value::kind),
        Some(Kind::Counter)
    );
    assert_eq!(gauge(&snapshot, "runtime.processes"), 0);
}

/// Holds a running measurement between two dispatches.
struct Timed {
    timer: Timer,
    running: Option<TimerGuard>,
}
impl Process for Timed {}

rt_test!(
    a_timer_measures_the_runtime_clock_exactly_when_paused,
    |flavor, rt| {
        let clock = rt.clock();
        clock.pause();
        let timer = rt.metrics().timer("latency").unwrap();
        assert_eq!(timer.stats(), Default::default());

        let timing = timer.start();
        clock.advance(Duration::from_secs(3));
        drop(timing);

        // Started and stopped in handlers, with the clock moved in between.
        let timed = rt.spawn(Timed {
            timer: timer.clone(),
            running: None,
        });
        rt.block_on(dispatch(&timed, |t: &mut Timed| {
            t.running = Some(t.timer.start())
        }))
        .unwrap();
        clock.advance(Duration::from_millis(250));
        rt.block_on(dispatch(&timed, |t: &mut Timed| t.running = None))
            .unwrap();

        // A paused clock that does not move measures zero.
        drop(timer.start());
        timer.record(Duration::from_millis(750));

        let stats = timer.stats();
        assert_eq!(stats.count(), 4);
        assert_eq!(stats.sum(), Duration::from_secs(4));
        assert_eq!(stats.min(), Duration::ZERO);
        assert_eq!(stats.max(), Duration::from_secs(3));
        assert_eq!(stats.mean(), Duration::from_secs(1));
        let snapshot = rt.metrics().snapshot();
        assert_eq!(
            snapshot.get("latency").and_then(Value::as_timer),
            Some(&stats)
        );
    }
);

/// Asserts `reported` is within the documented precision of `exact`: not below, at most 25% above.
fn assert_near(what: &str, reported: Duration, exact: Duration) {
    assert!(
        reported >= exact && reported <= exact + exact / 4,
        "{what}: {reported:?} is not within [{exact:?}, {exact:?} * 1.25]"
    );
}

#[test]
fn quantiles_land_within_their_bucket() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let metrics = runtime.metrics();
    let spread = metrics.timer("spread").unwrap();
    // Recorded out of order, so nothing depends on arrival order.
    for micros in (1..=1000).rev() {
        spread.record(Duration::from_micros(micros));
    }
    let stats = spread.stats();
    assert_eq!(stats.count(), 1000);
    assert_eq!(stats.sum(), Duration::from_micros(500_500));
    assert_eq!(stats.min(), Duration::from_micros(1));
    assert_eq!(stats.max(), Duration::from_micros(1000));
    assert_near("p50", stats.p50(), Duration::from_micros(500));
    assert_near("p90", stats.p90(), Duration::from_micros(900));
    assert_near("p99", stats.p99(), Duration::from_micros(990));
    assert!(stats.p99() <= stats.max());

    // Every quantile stays within [min, max]: identical values come out exact.
    let flat = metrics.timer("flat").unwrap();
    for _ in 0..10 {
        flat.record(Duration::from_millis(7));
    }
    let stats = flat.stats();
    let quantiles = [stats.p50(), stats.p90(), stats.p99()];
    assert_eq!(quantiles, [Duration::from_millis(7); 3]);

    // One slow outlier among 99 fast: p90 sees the fast ones, p99 too (rank 99), max the outlier.
    let skewed = metrics.timer("skewed").unwrap();
    for _ in 0..99 {
        skewed.record(Duration::from_micros(100));
    }
    skewed.record(Duration::from_secs(2));
    let stats = skewed.stats();
    assert_near("p90", stats.p90(), Duration::from_micros(100));
    assert_near("p99", stats.p99(), Duration::from_micros(100));
    assert_eq!(stats.max(), Duration::from_secs(2));

    // Extremes saturate instead of overflowing.
    let extreme = metrics.timer("extreme").unwrap();
    extreme.record(Duration::MAX);
    extreme.record(Duration::ZERO);
    let stats = extreme.stats();
    assert_eq!(stats.max(), Duration::from_nanos(u64::MAX));
    assert_eq!((stats.min(), stats.p50()), (Duration::ZERO, Duration::ZERO));
    assert_eq!(stats.p99(), Duration::from_nanos(u64::MAX));
}

#[test]
fn a_snapshot_serializes_to_json_with_the_runtime_metrics() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let metrics = runtime.metrics();
    metrics.counter("requests").unwrap().add(3);
    metrics.gauge("temperature").unwrap().set(-5);
    metrics
        .timer("latency")
        .unwrap()
        .record(Duration::from_millis(20));
    let snapshot = metrics.snapshot();

    let json: serde_json::Value = serde_json::from_str(&snapshot.to_json()).unwrap();
    assert_eq!(json, serde_json::to_value(&snapshot).unwrap());
    assert_eq!(json["requests"], 3);
    assert_eq!(json["temperature"], -5);
    let latency = &json["latency"];
    assert_eq!(latency["count"], 1);
    assert_eq!(latency["sum_ns"], 20_000_000);
    for field in ["min_ns", "max_ns", "p50_ns", "p90_ns", "p99_ns"] {
        assert_eq!(latency[field], 20_000_000, "{field}");
    }
    let own = [
        "runtime.processes",
        "runtime.events_handled",
        "runtime.messages_dropped",
        "runtime.dropped_at_bound",
        "runtime.timers_armed",
        "runtime.queued_events",
    ];
    for name in own {
        assert!(json[name].is_u64(), "{name} in {json}");
        assert!(snapshot.get(name).is_some(), "{name}");
    }
    // Nothing else: three metrics of ours and the runtime's own, and no queue is deep.
    assert_eq!(snapshot.len(), 3 + own.len());
    let names: Vec<&str> = snapshot.iter().map(|(name, _)| name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "a snapshot iterates in name order");
}

rt_test!(runtime_processes_follows_spawn_and_end, |flavor, rt| {
    let metrics = rt.metrics();
    assert_eq!(gauge(&metrics.snapshot(), "runtime.processes"), 0);
    let pids: Vec<_> = (0..3).map(|_| rt.spawn(Idle)).collect();
    assert_eq!(gauge(&metrics.snapshot(), "runtime.processes"), 3);
    let _entered = rt.enter();
    terminate(&pids[1]);
    rt.block_on(wait(&pids[1])).unwrap();
    assert_eq!(gauge(&metrics.snapshot(), "runtime.processes"), 2);
    for pid in [&pids[0], &pids[2]] {
        terminate(pid);
        rt.block_on(wait(pid)).unwrap();
    }
    assert_eq!(gauge(&metrics.snapshot(), "runtime.processes"), 0);
});

rt_test!(
    events_handled_counts_every_event_a_process_ran,
    |flavor, rt| {
        quiet_expected_panics();
        let _entered = rt.enter();
        let metrics = rt.metrics();
        let before = counter(&metrics.snapshot(), "runtime.events_handled");
        assert_eq!(before, 0, "initialize is not an event, and nothing ran yet");

        let process = rt.spawn(Idle);
        for _ in 0..10 {
            assert!(cast(&process, |_: &mut Idle| ()));
        }
        rt.block_on(dispatch(&process, |_: &mut Idle| ())).unwrap();
        pause_and_settle(rt);
        assert_eq!(counter(&metrics.snapshot(), "runtime.events_handled"), 11);

        // A panicking handler ran its event too; so did the terminate event that ends a process.
        let doomed = rt.spawn(Idle);
        let crashed = dispatch(&doomed, |_: &mut Idle| panic!("{EXPECTED_PANIC} handler"));
        assert!(rt.block_on(crashed).is_err());
        terminate(&process);
        rt.block_on(wait(&process)).unwrap();
        pause_and_settle(rt);
        assert_eq!(counter(&metrics.snapshot(), "runtime.events_handled"), 13);

        // An event that never ran (the process is gone) is not counted.
        assert!(!cast(&process, |_: &mut Idle| ()));
        pause_and_settle(rt);
        assert_eq!(counter(&metrics.snapshot(), "runtime.events_handled"), 13);
    }
);

rt_test!(
    queue_depth_shows_events_waiting_behind_a_busy_handler,
    |flavor, rt| {
        let _entered = rt.enter();
        let metrics = rt.metrics();
        let process = rt.spawn_named("busy", Idle).unwrap();
        // The deterministic scheduler runs nothing until driven, so events just wait; a pool needs
        // the handler held while the events queue behind it.
        let release = (!flavor.is_deterministic()).then(|| {
            let (entered_tx, entered) = mpsc::channel();
            let (release, released) = mpsc::channel::<()>();
            dispatch(&process, move |_: &mut Idle| {
                entered_tx.send(()).unwrap();
                released.recv().unwrap();
            });
            entered.recv().unwrap();
            release
        });
        for _ in 0..5 {
            assert!(cast(&process, |_: &mut Idle| ()));
        }
        let snapshot = metrics.snapshot();
        assert_eq!(queue_depths(&snapshot), vec![("busy".to_owned(), 5)]);
        assert_eq!(gauge(&snapshot, "runtime.queued_events"), 5);

        if let Some(release) = release {
            release.send(()).unwrap();
        }
        rt.block_on(dispatch(&process, |_: &mut Idle| ())).unwrap();
        let snapshot = metrics.snapshot();
        assert_eq!(queue_depths(&snapshot), vec![]);
        assert_eq!(gauge(&snapshot, "runtime.queued_events"), 0);
    }
);

#[test]
fn queue_depth_names_only_the_ten_deepest_mailboxes() {
    // Deterministic: nothing runs until driven, so every cast stays queued.
    let runtime = Runtime::builder().deterministic(5).build().unwrap();
    let _entered = runtime.enter();
    let mut expected = Vec::new();
    for depth in 1..=15 {
        let id = format!("p{depth:02}");
        let pid = runtime.spawn_named(&id, Idle).unwrap();
        for _ in 0..depth {
            cast(&pid, |_: &mut Idle| ());
        }
        expected.push((id, depth));
    }
    // Two more as deep as the one that is tenth deepest: equal depths are taken in id order.
    for id in ["a-tie", "z-tie"] {
        let pid = runtime.spawn_named(id, Idle).unwrap();
        for _ in 0..6 {
            cast(&pid, |_: &mut Idle| ());
        }
    }
    let snapshot = runtime.metrics().snapshot();
    let mut named = queue_depths(&snapshot);
    named.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut deepest: Vec<_> = expected.into_iter().rev().take(9).collect();
    deepest.push(("a-tie".to_owned(), 6));
    assert_eq!(named, deepest);
    assert_eq!(
        gauge(&snapshot, "runtime.queued_events"),
        (1..=15).sum::<i64>() + 12
    );
    assert_eq!(gauge(&snapshot, "runtime.processes"), 17);
}

rt_test!(
    dropped_messages_and_armed_timers_are_counted,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let metrics = rt.metrics();
        send(&Upid::new("nobody", rt.address()), Note);
        send(&Upid::new("nobody", rt.address()), Note);
        assert_eq!(counter(&metrics.snapshot(), "runtime.messages_dropped"), 2);

        let timeout = after(Duration::from_secs(10));
        assert_eq!(gauge(&metrics.snapshot(), "runtime.timers_armed"), 1);
        clock.advance(Duration::from_secs(10));
        assert!(timeout.is_ready());
        assert_eq!(gauge(&metrics.snapshot(), "runtime.timers_armed"), 0);
    }
);

#[test]
fn casts_dropped_at_a_full_mailbox_are_counted() {
    // Deterministic: nothing runs until driven, so the mailbox fills as sent.
    let runtime = Runtime::builder().deterministic(3).build().unwrap();
    let _entered = runtime.enter();
    let sink = runtime
        .spawn_with(Idle, SpawnOptions::new().bounded(1))
        .unwrap();
    assert!(cast(&sink, |_: &mut Idle| ()));
    assert!(!cast(&sink, |_: &mut Idle| ()));
    assert!(!cast(&sink, |_: &mut Idle| ()));
    let snapshot = runtime.metrics().snapshot();
    assert_eq!(counter(&snapshot, "runtime.dropped_at_bound"), 2);
    assert_eq!(counter(&snapshot, "runtime.messages_dropped"), 0);
    assert_eq!(gauge(&snapshot, "runtime.queued_events"), 1);
}

#[test]
fn handles_are_send_and_sync() {
    // Handles are shared atomics: kept in process state, moved to any thread.
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Metrics>();
    shareable::<procession::metrics::Counter>();
    shareable::<procession::metrics::Gauge>();
    shareable::<Timer>();
    fn sendable<T: Send + 'static>() {}
    sendable::<TimerGuard>();
}
