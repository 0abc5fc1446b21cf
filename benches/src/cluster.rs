//! The cluster manager's figures (examples/cluster), each next to its practical limit in the
//! same run:
//!
//! - tasks launched and finished per second: 1,000 `true` tasks over 2 agents (master, agents
//!   and client on their own runtimes over loopback TCP), against the same 1,000 `true` run by
//!   plain `tokio::process` with the same concurrency (20);
//! - heartbeats handled per second when 1,000 agents beat every millisecond to one master;
//! - simulated events per second of the 500-seed simulation test.
//!
//! `cargo run --release --bin cluster -- [tasks] [seeds]` (defaults 1000 and 500).

#[path = "../../examples/cluster/tests/simulation.rs"]
#[allow(dead_code, unused_imports)]
mod simulation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use procession::metrics::Value;
use procession::{Future, Runtime};
use procession_cluster::node::{self, NodeOptions};
use procession_cluster::{AgentConfig, MasterConfig, Resources, TaskSpec, TaskState};

fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().map_or(1000, |s| s.parse().expect("tasks"));
    let seeds: u64 = args.next().map_or(500, |s| s.parse().expect("seeds"));
    let cluster = cluster_tasks(tasks);
    let tokio = tokio_tasks(tasks, 20);
    println!(
        "cluster tasks: {tasks} `true` tasks over 2 agents: {cluster:.0} tasks/s; plain tokio::process, 20 at a time: {tokio:.0} tasks/s; ratio {:.2}",
        cluster / tokio
    );
    let beats = heartbeats(1000, Duration::from_secs(3));
    println!("cluster heartbeats: 1000 agents beating every 1 ms: {beats:.0} heartbeats/s handled by the master");
    let (events, secs) = simulated(seeds);
    println!(
        "cluster simulation: {seeds} seeds in {secs:.2} s: {:.0} seeds/s, {:.2} M events/s",
        seeds as f64 / secs,
        events as f64 / secs / 1e6
    );
}

fn wait<T: Clone + Send + Sync + 'static>(future: &Future<T>) -> T {
    assert!(future.wait_for(Duration::from_secs(600)), "stalled");
    future.get().expect("ready")
}

fn cluster_tasks(count: usize) -> f64 {
    let options = NodeOptions::default();
    let master = node::master(&options, MasterConfig::default()).unwrap();
    let agent = AgentConfig::default();
    let _agents: Vec<_> = (0..2)
        .map(|_| {
            node::agent(
                &options,
                master.role.upid(),
                Resources::new(1000, 4096),
                agent,
            )
            .unwrap()
        })
        .collect();
    let client = node::client(&options, master.role.upid()).unwrap();
    let _entered = client.runtime.enter();
    // Past the master's grace after a start, before the clock starts.
    std::thread::sleep(MasterConfig::default().grace + Duration::from_millis(500));
    let started = Instant::now();
    let statuses: Vec<_> = (0..count)
        .map(|n| {
            client
                .role
                .submit(TaskSpec::new(format!("t{n}"), "true", &[]))
                .status
        })
        .collect();
    for status in &statuses {
        assert_eq!(wait(status).state, TaskState::Finished);
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn tokio_tasks(count: usize, concurrency: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let started = Instant::now();
        let mut runs = Vec::with_capacity(count);
        for _ in 0..count {
            let slot = slots.clone().acquire_owned().await.unwrap();
            runs.push(tokio::spawn(async move {
                let status = tokio::process::Command::new("true").status().await.unwrap();
                assert!(status.success());
                drop(slot);
            }));
        }
        for run in runs {
            run.await.unwrap();
        }
        count as f64 / started.elapsed().as_secs_f64()
    })
}

fn events_handled(runtime: &Runtime) -> u64 {
    match runtime.metrics().snapshot().get("runtime.events_handled") {
        Some(Value::Counter(n)) => *n,
        other => panic!("runtime.events_handled: {other:?}"),
    }
}

fn heartbeats(agents: usize, window: Duration) -> f64 {
    let options = NodeOptions::default();
    let master = node::master(&options, MasterConfig::default()).unwrap();
    let runtime = Runtime::new();
    let _net = procession_net::Net::start(&runtime).unwrap();
    let config = AgentConfig {
        heartbeat: Duration::from_millis(1),
        ..AgentConfig::default()
    };
    for _ in 0..agents {
        let agent =
            procession_cluster::Agent::new(master.role.upid(), Resources::new(1000, 512), config);
        runtime.spawn(agent);
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = events_handled(&master.runtime);
    let started = Instant::now();
    std::thread::sleep(window);
    let handled = events_handled(&master.runtime) - before;
    handled as f64 / started.elapsed().as_secs_f64()
}

fn simulated(seeds: u64) -> (usize, f64) {
    let started = Instant::now();
    let mut events = 0;
    for seed in 0..seeds {
        let (sim, verdict) = simulation::run_traced(seed);
        verdict.expect("the simulation's invariants hold");
        events += sim.trace().len();
    }
    (events, started.elapsed().as_secs_f64())
}
