//! Running one test body across many seeds, and replaying the one that failed.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use super::profile::Profile;

thread_local! {
    /// The swarm profile of the simulation the current seed built, for the failure message.
    static PROFILE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Remembers `profile` as the current seed's, so a failure can name it.
pub(crate) fn note_profile(profile: &Profile) {
    PROFILE.with(|p| *p.borrow_mut() = Some(profile.to_string()));
}

/// The environment variable that runs only one seed: `PROCESSION_SEED=42 cargo test name`.
pub const SEED_VAR: &str = "PROCESSION_SEED";

/// The environment variable that overrides how many seeds [`run_seeds`] runs (the scale knob:
/// small in CI, large when hunting).
pub const SEEDS_VAR: &str = "PROCESSION_SEEDS";

/// Runs `body` once for each seed `0..count` (or `0..$PROCESSION_SEEDS` when that is set, or
/// only `$PROCESSION_SEED` when that is set). If the body panics for a seed, this panics with
/// the seed, the body's message, the fault profile when the seed's simulation drew one
/// ([`SimBuilder::swarm`](super::SimBuilder::swarm)), and the command line that replays that
/// seed alone; replayed, the simulation logs every event through `tracing`.
///
/// ```
/// use procession_testkit::sim::{run_seeds, Sim};
///
/// run_seeds(20, |seed| {
///     let mut sim = Sim::new(seed);
///     sim.add_node("lonely", |_, _| {});
///     assert!(!sim.step(), "an empty node has nothing to do");
/// });
/// ```
///
/// # Panics
///
/// Panics if a seed's body panics, or if one of the variables is set to something other than a
/// number.
pub fn run_seeds(count: u64, mut body: impl FnMut(u64)) {
    let (first, count) = match read(SEED_VAR) {
        Some(seed) => {
            log_the_replay();
            (seed, 1)
        }
        None => (0, read(SEEDS_VAR).unwrap_or(count)),
    };
    // Counted from `first`, not a range ending at `first + 1`, which overflows for the last seed.
    for seed in (0..count).map(|n| first.wrapping_add(n)) {
        PROFILE.with(|p| p.borrow_mut().take());
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(seed)));
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            let test = std::thread::current()
                .name()
                .filter(|name| *name != "main")
                .map(|name| format!(" -- --exact {name}"))
                .unwrap_or_default();
            let profile = PROFILE
                .with(|p| p.borrow_mut().take())
                .map(|p| format!("\nfault profile: {p}"))
                .unwrap_or_default();
            panic!(
                "simulation failed with seed {seed}: {message}{profile}\nreplay it alone: {SEED_VAR}={seed} cargo test{test}"
            );
        }
    }
}

fn read(var: &str) -> Option<u64> {
    let value = std::env::var(var).ok()?;
    let parsed = value.trim().parse().unwrap_or_else(|_| {
        panic!("{var} must be a number of seeds or a seed, not {value:?}");
    });
    Some(parsed)
}

/// Shows the replayed seed's events: a test binary has no `tracing` subscriber of its own, so
/// install one that writes through the test harness (shown for a failing test, or with
/// `--nocapture`), filtered by `RUST_LOG` or else to the simulation's events. If the test
/// installed a subscriber already, that one is kept.
fn log_the_replay() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("procession::sim=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
