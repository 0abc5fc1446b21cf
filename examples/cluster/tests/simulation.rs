//! The same master, agent and client code, unchanged, in the testkit's seeded simulation:
//! messages lost, delayed and reordered, partitions that heal, agents and the master crashing
//! and restarting. Invariants, for every seed: every task reaches exactly one final state, in
//! order, and no task ever runs on two agents at once; once healed, the cluster finishes every
//! task and accepts new ones. A failing seed is printed with its profile, and replays.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::{after, Upid};
use procession_cluster::{
    Agent, AgentConfig, Client, Event, Master, MasterConfig, Resources, TaskSpec, TaskState,
};
use procession_testkit::sim::{run_seeds, Latency, NodeId, Profile, Run, Sim};

/// How many runs of each task are under way: more than one is the violation.
type Running = Arc<Mutex<BTreeMap<String, u32>>>;

/// Counts its run out when the program ends, is killed or its node crashes.
struct RunGuard {
    running: Running,
    task: String,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some(count) = self.running.lock().get_mut(&self.task) {
            *count -= 1;
        }
    }
}

/// `work TASK MILLIS CODE`: runs MILLIS of virtual time, prints the task's name, exits CODE;
/// and fails the seed if the task already runs (on any agent).
fn register_work(sim: &mut Sim, running: &Running, violations: &Arc<Mutex<Vec<String>>>) {
    let (running, violations) = (running.clone(), violations.clone());
    sim.program("work", move |run: Run| {
        let task = run.args[0].clone();
        let already = {
            let mut all = running.lock();
            let count = all.entry(task.clone()).or_default();
            *count += 1;
            *count > 1
        };
        if already {
            violations.lock().push(format!("{task} runs twice at once"));
        }
        let guard = RunGuard {
            running: running.clone(),
            task: task.clone(),
        };
        async move {
            let _guard = guard;
            let millis: u64 = run.args[1].parse().unwrap_or(0);
            let code: i32 = run.args[2].parse().unwrap_or(1);
            let _ = after(Duration::from_millis(millis)).await;
            if let Some(mut stdout) = run.stdout {
                let _ = stdout.write(Bytes::from(task)).await;
                stdout.close();
            }
            code
        }
    });
}

fn profile(seed: u64) -> Profile {
    let mut profile = Profile::swarm(seed);
    // Messages may be lost and late; the real transport never duplicates.
    profile.duplicate = 0.0;
    profile.loss = profile.loss.min(0.1);
    if let Latency::Exponential { max, .. } = &mut profile.latency {
        *max = (*max).min(Duration::from_millis(300));
    }
    profile.pause_every = None;
    profile
}

struct Cluster {
    sim: Sim,
    client: Client,
    targets: Vec<NodeId>,
}

fn cluster(seed: u64, running: &Running, violations: &Arc<Mutex<Vec<String>>>) -> Cluster {
    let mut sim = Sim::builder(seed).profile(profile(seed)).build();
    register_work(&mut sim, running, violations);
    let master_node = sim.add_node("master", |runtime, _| {
        let config = MasterConfig {
            agent_timeout: Duration::from_secs(3),
            grace: Duration::from_secs(2),
        };
        runtime.spawn_named("master", Master::new(config)).unwrap();
    });
    let master = Upid::new("master", sim.address(master_node));
    let mut targets = vec![master_node];
    for n in 0..3 {
        let master = master.clone();
        let node = sim.add_node(&format!("agent{n}"), move |runtime, _| {
            let agent = Agent::new(
                master.clone(),
                Resources::new(1000, 512),
                AgentConfig::default(),
            );
            runtime.spawn_named("agent", agent).unwrap();
        });
        targets.push(node);
    }
    let client_node = sim.add_node("client", |_, _| {});
    let client = {
        let _entered = sim.runtime(client_node).unwrap().enter();
        Client::start(master)
    };
    Cluster {
        sim,
        client,
        targets,
    }
}

/// Every update the client saw, by task, in order.
type Seen = BTreeMap<String, Vec<TaskState>>;

/// Takes the client's events that are ready now.
fn drain(client: &Client, seen: &mut Seen) {
    loop {
        let next = client.next();
        match next.outcome() {
            Some(Ok(Some(Event::Update(status)))) => {
                seen.entry(status.task.clone())
                    .or_default()
                    .push(status.state);
            }
            Some(Ok(Some(_))) => {}
            Some(_) => return,
            None => {
                // A discarded get never takes an event.
                next.discard();
                return;
            }
        }
    }
}

fn submit(c: &Cluster, id: &str, millis: u64, code: i32) {
    let args = [id, &millis.to_string(), &code.to_string()];
    let spec = TaskSpec::new(id, "work", &args).needing(Resources::new(300, 64));
    // The client node runs the readers of the output; nothing here reads them.
    drop(c.client.submit(spec));
}

fn run(seed: u64) -> Result<(), String> {
    run_traced(seed).1
}

/// One run: the simulation it ended with, and what it found.
pub fn run_traced(seed: u64) -> (Sim, Result<(), String>) {
    let running = Running::default();
    let violations = Arc::new(Mutex::new(Vec::new()));
    let mut c = cluster(seed, &running, &violations);
    let client_node = *c.sim.nodes().last().unwrap();
    let entered = c.sim.runtime(client_node).unwrap().enter();
    for n in 0..8 {
        submit(&c, &format!("t{n}"), 200 + 300 * n, i32::from(n % 4 == 3));
    }
    let mut seen = Seen::new();
    let targets = c.targets.clone();
    c.sim.run_faults(Duration::from_secs(15), &targets);
    c.sim.heal_everything();
    // Let failure notices still on their way from the fault phase land (a node restarted at
    // the heal is reported lost once more, for its previous life), then ask for new work.
    c.sim.run_for(Duration::from_secs(10));
    submit(&c, "after-heal", 100, 0);
    let deadline = c.sim.now() + Duration::from_secs(60);
    loop {
        drain(&c.client, &mut seen);
        if everything_final(&seen) || c.sim.now() >= deadline {
            break;
        }
        c.sim.run_for(Duration::from_millis(100));
    }
    drop(entered);
    let verdict = verify(&seen, &violations);
    (c.sim, verdict)
}

/// Whether the client saw all nine tasks end.
fn everything_final(seen: &Seen) -> bool {
    seen.len() == 9
        && seen
            .values()
            .all(|s| s.last().is_some_and(|s| s.is_final()))
}

fn verify(seen: &Seen, violations: &Mutex<Vec<String>>) -> Result<(), String> {
    if let Some(violation) = violations.lock().first() {
        return Err(violation.clone());
    }
    for (task, states) in seen {
        if states.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("{task} went {states:?}"));
        }
        if states.iter().filter(|s| s.is_final()).count() > 1 {
            return Err(format!("{task} ended twice: {states:?}"));
        }
    }
    if !everything_final(seen) {
        return Err(format!("no convergence: {seen:?}"));
    }
    if seen["after-heal"].last() != Some(&TaskState::Finished) {
        return Err(format!(
            "the healed cluster did not run a new task: {seen:?}"
        ));
    }
    Ok(())
}

#[test]
fn the_cluster_keeps_its_invariants_across_seeds() {
    run_seeds(500, |seed| {
        if let Err(violation) = run(seed) {
            panic!("{violation} (profile: {})", profile(seed));
        }
    });
}

#[test]
fn a_seed_replays_the_same_trace() {
    for seed in 0..5 {
        procession_testkit::sim::check_determinism(seed, |seed| run_traced(seed).0)
            .unwrap_or_else(|divergence| panic!("{divergence}"));
    }
}

#[test]
fn bad_tasks_fail_clearly_and_the_agent_runs_on() {
    run_seeds(10, |seed| {
        let running = Running::default();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let mut sim = Sim::new(seed);
        register_work(&mut sim, &running, &violations);
        let master_node = sim.add_node("master", |runtime, _| {
            runtime
                .spawn_named("master", Master::new(MasterConfig::default()))
                .unwrap();
        });
        let master = Upid::new("master", sim.address(master_node));
        let agent_master = master.clone();
        sim.add_node("agent", move |runtime, _| {
            let resources = Resources::new(1000, 512);
            let agent = Agent::new(agent_master.clone(), resources, AgentConfig::default());
            runtime.spawn_named("agent", agent).unwrap();
        });
        let client_node = sim.add_node("client", |_, _| {});
        let _entered = sim.runtime(client_node).unwrap().enter();
        let client = Client::start(master);
        let too_big = TaskSpec::new("too-big", "work", &["too-big", "1", "0"])
            .needing(Resources::new(4000, 64));
        let malformed = TaskSpec::new("malformed", "no-such-program", &[]);
        let fine = TaskSpec::new("fine", "work", &["fine", "100", "0"]);
        let outcomes: Vec<_> = [too_big, malformed, fine]
            .into_iter()
            .map(|spec| client.submit(spec).status)
            .collect();
        let ended: Vec<_> = outcomes
            .into_iter()
            .map(|status| sim.block_on(status).unwrap().unwrap())
            .collect();
        assert_eq!(ended[0].state, TaskState::Failed);
        assert!(
            ended[0].message.contains("more than any agent has"),
            "{:?}",
            ended[0]
        );
        assert_eq!(ended[1].state, TaskState::Failed);
        assert!(
            ended[1].message.contains("could not start"),
            "{:?}",
            ended[1]
        );
        assert_eq!(ended[2].state, TaskState::Finished, "{:?}", ended[2]);
    });
}
