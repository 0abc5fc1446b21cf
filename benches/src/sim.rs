//! How fast the seeded simulation runs: the master/agents heartbeat scenario of the testkit's
//! tests (10 s of swarm faults, a heal, up to 30 s to converge, virtual time), across seeds on
//! one thread. Prints seeds per second and simulated events per second.
//!
//! `cargo run --release --bin sim -- [seeds]` (default 1000).

#[path = "../../testkit/tests/support/heartbeat.rs"]
#[allow(dead_code)]
mod heartbeat;

use std::time::Instant;

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the number of seeds"))
        .unwrap_or(1000);
    let started = Instant::now();
    let mut events = 0usize;
    let mut failed = 0u64;
    for seed in 0..seeds {
        let run = heartbeat::run_traced(seed, false);
        events += run.events;
        failed += u64::from(run.outcome.is_err());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sim heartbeat: {seeds} seeds in {secs:.2} s: {:.0} seeds/s, {:.2} M events/s ({events} events, {failed} failed)",
        seeds as f64 / secs,
        events as f64 / secs / 1e6,
    );
}
