//! Shared harness for the runtime's integration tests.
//!
//! [`rt_test!`] runs one test body on every runtime flavour: a 1-worker pool, a 4-worker pool, a
//! pool whose clock starts paused, and the deterministic scheduler for a few seeds. A flavour is
//! printed before its run, so a failure names it (`cargo test` shows a failing test's output),
//! and a deterministic failure names the seed to replay with `PROCESSION_SEEDS=<seed>`.
//!
//! Nothing here sleeps to synchronise: tests pause the clock and `settle`, or `block_on` a
//! future. The only real-time bound is a guard ([`settle_within`], the watchdog) that turns a
//! runtime bug which would hang the test into a failure with a message.

#![allow(dead_code, unused_macros)]

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use procession::{Clock, Runtime};

/// One way to run a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A threaded pool with one worker, real time.
    OneWorker,
    /// A threaded pool with four workers, real time.
    FourWorkers,
    /// A threaded pool with two workers whose clock starts paused.
    Paused,
    /// The seeded single-thread scheduler; it runs only while the test thread drives it.
    Deterministic(u64),
}

impl Flavor {
    /// A fresh runtime of this flavour.
    pub fn build(self) -> Runtime {
        let builder = Runtime::builder().name(format!("test-{self}"));
        let builder = match self {
            Flavor::OneWorker => builder.workers(1),
            Flavor::FourWorkers => builder.workers(4),
            Flavor::Paused => builder.workers(2).paused(),
            Flavor::Deterministic(seed) => builder.deterministic(seed),
        };
        builder.build().expect("building a test runtime")
    }

    pub fn is_deterministic(self) -> bool {
        matches!(self, Flavor::Deterministic(_))
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flavor::OneWorker => f.write_str("one-worker"),
            Flavor::FourWorkers => f.write_str("four-workers"),
            Flavor::Paused => f.write_str("paused"),
            Flavor::Deterministic(seed) => write!(f, "deterministic(seed={seed})"),
        }
    }
}

/// The seeds the deterministic flavour runs with: `PROCESSION_SEEDS` (comma-separated) or a
/// default three.
pub fn seeds() -> Vec<u64> {
    match std::env::var("PROCESSION_SEEDS") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("PROCESSION_SEEDS is a list of u64"))
            .collect(),
        Err(_) => vec![1, 7, 1234],
    }
}

/// Every flavour: both pools, the paused pool, and the deterministic scheduler per seed.
pub fn flavors() -> Vec<Flavor> {
    let mut all = vec![Flavor::OneWorker, Flavor::FourWorkers, Flavor::Paused];
    all.extend(seeds().into_iter().map(Flavor::Deterministic));
    all
}

/// How long one flavour's run may take before the watchdog declares it hung.
fn watchdog_limit() -> Duration {
    let secs = std::env::var("PROCESSION_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Runs `body` under a watchdog: if it has not returned within the limit, the test binary is
/// aborted with a message naming `what` (a hung runtime would otherwise hang CI forever).
pub fn with_watchdog<R>(what: &str, body: impl FnOnce() -> R) -> R {
    let (done, finished) = mpsc::channel::<()>();
    let label = what.to_owned();
    let limit = watchdog_limit();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
            eprintln!("watchdog: {label} did not finish within {limit:?}; aborting");
            std::process::abort();
        }
    });
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    drop(done);
    let _ = watchdog.join();
    match result {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Runs `run` once per flavour, every flavour even after a failure, then fails with the list of
/// flavours that failed and their panic messages.
fn run_all(flavors: &[Flavor], run: impl Fn(Flavor)) {
    let mut failures = Vec::new();
    for &flavor in flavors {
        eprintln!("--- flavour: {flavor}");
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            with_watchdog(&format!("flavour {flavor}"), || run(flavor))
        }));
        if let Err(payload) = outcome {
            failures.push(format!("{flavor}: {}", panic_text(&*payload)));
        }
    }
    if !failures.is_empty() {
        let hint = if failures.iter().any(|f| f.starts_with("deterministic")) {
            "\n(replay one seed with PROCESSION_SEEDS=<seed>)"
        } else {
            ""
        };
        panic!(
            "failed on {} of {} flavours:\n  {}{hint}",
            failures.len(),
            flavors.len(),
            failures.join("\n  ")
        );
    }
}

/// Runs `body` once per flavour in `flavors`, each on a fresh runtime that is shut down after.
pub fn on_flavors(flavors: &[Flavor], body: impl Fn(Flavor, &Runtime)) {
    run_all(flavors, |flavor| {
        let runtime = flavor.build();
        body(flavor, &runtime);
        runtime.shutdown();
    });
}

/// Runs `body` once per flavour, handing it the flavour so it builds its runtimes itself
/// (for tests that shut a runtime down or need several).
pub fn on_each_flavor(body: impl Fn(Flavor)) {
    run_all(&flavors(), body);
}

/// `rt_test!(name, |flavor, rt| body)`: a `#[test]` that runs `body` on every flavour with a
/// fresh `&Runtime`. `rt_test!(name, |flavor| body)` hands only the flavour.
macro_rules! rt_test {
    ($(#[$meta:meta])* $name:ident, |$flavor:ident, $rt:ident| $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::support::on_flavors(
                &$crate::support::flavors(),
                |$flavor: $crate::support::Flavor, $rt: &::procession::Runtime| {
                    let _ = $flavor;
                    $body
                },
            );
        }
    };
    ($(#[$meta:meta])* $name:ident, |$flavor:ident| $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::support::on_each_flavor(|$flavor: $crate::support::Flavor| $body);
        }
    };
}

/// Settles `clock`, failing the test if settle has not returned within 30 seconds (settle is
/// run on a helper thread, which is leaked if it hangs).
pub fn settle_within(clock: &Clock) {
    let (done, finished) = mpsc::channel();
    let clock = clock.clone();
    std::thread::spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(|| clock.settle()));
        let _ = done.send(result.map_err(|p| panic_text(&*p)));
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(message)) => panic!("settle panicked: {message}"),
        Err(_) => panic!(
            "Clock::settle did not return within 30s: some unit of work counted by settle \
             never finished"
        ),
    }
}

/// Pauses the runtime's clock (a no-op when it already is) and settles it.
pub fn pause_and_settle(runtime: &Runtime) {
    let clock = runtime.clock();
    clock.pause();
    clock.settle();
}

/// The text of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs `f` and returns its panic message, or `None` if it did not panic.
pub fn panic_message_of(f: impl FnOnce()) -> Option<String> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .err()
        .map(|p| panic_text(&*p))
}

/// `n` scaled by `PROCESSION_STRESS_SCALE` (a factor, default 1; at least 1).
pub fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("PROCESSION_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(1)
}

/// The marker that [`quiet_expected_panics`] looks for in a panic message.
pub const EXPECTED_PANIC: &str = "[expected panic]";

/// Installs (once per test binary) a panic hook that stays silent for panics whose message
/// contains [`EXPECTED_PANIC`] and defers to the previous hook for every other panic, so tests
/// that make handlers panic on purpose do not flood the output.
pub fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !panic_text(info.payload()).contains(EXPECTED_PANIC) {
                previous(info);
            }
        }));
    });
}

/// The message of a failed future's failure.
pub fn failure_message<T: Send + Sync + 'static>(future: &procession::Future<T>) -> String {
    let error = future.error().expect("the future has an error");
    error
        .failure()
        .expect("the future failed")
        .message()
        .to_owned()
}
