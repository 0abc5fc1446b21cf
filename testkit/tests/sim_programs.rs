//! Child processes in the simulation: registered programs run as async bodies on the node's
//! runtime and virtual time, behind the same `subprocess` calls as OS children, so an agent
//! that launches tasks is the production code, unchanged.
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::subprocess::{subprocess, Child, Io};
use procession::{after, send, spawn_async, Context, Message, Process, Upid};
use procession_testkit::sim::{check_determinism, run_seeds, Latency, NodeId, Run, Sim};

/// Asks an agent to run a task.
#[derive(serde::Serialize, serde::Deserialize, Message)]
struct Launch {
    task: u32,
    program: String,
    args: Vec<String>,
}

/// An agent's report of a task: its stdout and exit code, or why it did not start.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, Message)]
struct Finished {
    task: u32,
    outcome: Result<(String, Option<i32>), String>,
}

/// Runs the tasks it is sent as child processes and reports each to the master: nothing in it
/// knows about the simulation.
struct Agent {
    master: Upid,
}

impl Process for Agent {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|agent: &mut Self, _: &Upid, launch: Launch| agent.launch(launch))
            .unwrap();
    }
}

impl Agent {
    fn launch(&mut self, launch: Launch) {
        let Launch {
            task,
            program,
            args,
        } = launch;
        let master = self.master.clone();
        let spawned = subprocess(&program).args(&args).stdout(Io::Pipe).spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(failure) => {
                let outcome = Err(failure.to_string());
                return send(&master, Finished { task, outcome });
            }
        };
        let output = child.stdout.take().unwrap().read_all();
        let status = child.status();
        spawn_async(async move {
            let output = output.await.unwrap_or_default();
            let code = status.await.ok().and_then(|status| status.code());
            let output = String::from_utf8_lossy(&output).into_owned();
            send(
                &master,
                Finished {
                    task,
                    outcome: Ok((output, code)),
                },
            );
        });
    }
}

type Reports = Arc<Mutex<Vec<Finished>>>;

/// Collects the agents' reports where the test reads them.
struct Master {
    finished: Reports,
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|master: &mut Self, _: &Upid, done: Finished| {
            master.finished.lock().push(done)
        })
        .unwrap();
    }
}

/// `echo`: writes its arguments and a newline, exits 0. `fail`: exits with its argument.
/// `work`: sleeps its argument in milliseconds of virtual time, then writes it.
fn register_programs(sim: &mut Sim) {
    sim.program("echo", |run: Run| async move {
        let mut stdout = run.stdout.unwrap();
        let line = format!("{}\n", run.args.join(" "));
        stdout.write(Bytes::from(line)).await.unwrap();
        0
    });
    sim.program(
        "fail",
        |run: Run| async move { run.args[0].parse().unwrap() },
    );
    sim.program("work", |run: Run| async move {
        let millis: u64 = run.args[0].parse().unwrap();
        let _ = after(Duration::from_millis(millis)).await;
        let mut stdout = run.stdout.unwrap();
        stdout
            .write(Bytes::from(format!("worked {millis}")))
            .await
            .unwrap();
        0
    });
}

/// A master node and two agent nodes, with the programs registered.
struct Cluster {
    sim: Sim,
    master: NodeId,
    agents: [Upid; 2],
    reports: Reports,
}

impl Cluster {
    fn new(sim: Sim) -> Cluster {
        let mut sim = sim;
        register_programs(&mut sim);
        let reports = Reports::default();
        let master = sim.add_node("master", |_, _| {});
        let finished = reports.clone();
        let master_upid = sim
            .runtime(master)
            .unwrap()
            .spawn_named("master", Master { finished })
            .unwrap()
            .upid();
        let agents = ["agent-a", "agent-b"].map(|name| {
            let node = sim.add_node(name, |_, _| {});
            let agent = Agent {
                master: master_upid.clone(),
            };
            sim.runtime(node).unwrap().spawn(agent).upid()
        });
        Cluster {
            sim,
            master,
            agents,
            reports,
        }
    }

    /// The master sends `agent` the task `command`.
    fn launch(&self, agent: usize, task: u32, command: &[&str]) {
        let _entered = self.sim.runtime(self.master).unwrap().enter();
        let launch = Launch {
            task,
            program: command[0].to_owned(),
            args: command[1..].iter().map(|s| (*s).to_owned()).collect(),
        };
        send(&self.agents[agent], launch);
    }

    /// The reports, by task, once `count` arrived.
    fn reports(&mut self, count: usize) -> Vec<Finished> {
        let reports = self.reports.clone();
        self.sim
            .run_until(|_| reports.lock().len() >= count)
            .unwrap();
        let mut got = reports.lock().clone();
        got.sort_by_key(|f| f.task);
        got
    }
}

/// Starts `command` on `node`, as a process there would.
fn spawn_on(sim: &Sim, node: NodeId, command: impl FnOnce() -> Child) -> Child {
    let _entered = sim.runtime(node).unwrap().enter();
    command()
}

/// Sets its flag when dropped: whether a program's body was dropped.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Registers `sleep`: says so on its stdout if piped, then sleeps its argument in seconds;
/// `dropped` is set when its body is dropped and `woke` when the sleep ended.
fn sleeper(sim: &mut Sim) -> (Arc<AtomicBool>, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let woke = Arc::new(AtomicBool::new(false));
    let (on_drop, on_wake) = (dropped.clone(), woke.clone());
    sim.program("sleep", move |run: Run| {
        let guard = Dropped(on_drop.clone());
        let woke = on_wake.clone();
        async move {
            let _guard = guard;
            let mut stdout = run.stdout;
            if let Some(stdout) = &mut stdout {
                stdout
                    .write(Bytes::from_static(b"sleeping\n"))
                    .await
                    .unwrap();
            }
            let seconds = run.args[0].parse().unwrap();
            let _ = after(Duration::from_secs(seconds)).await;
            woke.store(true, Ordering::SeqCst);
            0
        }
    });
    (dropped, woke)
}

#[test]
fn an_agent_runs_registered_programs_and_reports_output_and_exit_code() {
    run_seeds(10, |seed| {
        let mut cluster = Cluster::new(Sim::new(seed));
        cluster.launch(0, 1, &["echo", "hello", "world"]);
        cluster.launch(1, 2, &["fail", "3"]);
        cluster.launch(1, 3, &["no-such-program"]);
        let reports = cluster.reports(3);
        assert_eq!(
            reports[0].outcome,
            Ok(("hello world\n".to_owned(), Some(0)))
        );
        assert_eq!(reports[1].outcome, Ok((String::new(), Some(3))));
        let error = reports[2].outcome.as_ref().unwrap_err();
        assert!(error.contains("no-such-program"), "{error}");
    });
}

#[test]
fn a_program_gets_its_arguments_environment_and_pipes() {
    let mut sim = Sim::new(5);
    sim.program("greet", |run: Run| async move {
        assert_eq!(run.program, "greet");
        assert_eq!(run.current_dir.as_deref(), Some("/sandbox".as_ref()));
        let name = run.stdin.unwrap().read_all().await.unwrap();
        let greeting = format!(
            "{}, {}",
            run.env["GREETING"],
            String::from_utf8_lossy(&name)
        );
        let (mut stdout, mut stderr) = (run.stdout.unwrap(), run.stderr.unwrap());
        stdout.write(Bytes::from(greeting)).await.unwrap();
        stderr.write(Bytes::from(run.args.join(","))).await.unwrap();
        assert!(!run.env.contains_key("PATH"), "no inherited environment");
        7
    });
    let node = sim.add_node("agent", |_, _| {});
    let mut children = (1..=2).map(|n| {
        spawn_on(&sim, node, || {
            subprocess("greet")
                .args(["-n", &n.to_string()])
                .env("GREETING", "hello")
                .current_dir("/sandbox")
                .stdin(Io::Pipe)
                .stdout(Io::Pipe)
                .stderr(Io::Pipe)
                .spawn()
                .unwrap()
        })
    });
    let (mut first, second) = (children.next().unwrap(), children.next().unwrap());
    assert_eq!((first.id(), second.id()), (1, 2), "numbered per node");
    let mut stdin = first.stdin.take().unwrap();
    sim.block_on(stdin.write(Bytes::from_static(b"sim")))
        .unwrap()
        .unwrap();
    stdin.close();
    let stdout = first.stdout.take().unwrap().read_all();
    let stderr = first.stderr.take().unwrap().read_all();
    assert_eq!(sim.block_on(stdout).unwrap().unwrap(), "hello, sim");
    assert_eq!(sim.block_on(stderr).unwrap().unwrap(), "-n,1");
    let status = sim.block_on(first.status()).unwrap().unwrap();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn a_program_that_sleeps_ten_virtual_seconds_ends_at_ten_seconds() {
    let mut sim = Sim::new(11);
    let (dropped, woke) = sleeper(&mut sim);
    let node = sim.add_node("agent", |_, _| {});
    let child = spawn_on(&sim, node, || {
        subprocess("sleep").arg("10").spawn().unwrap()
    });
    let status = sim.block_on(child.status()).unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(sim.now(), Duration::from_secs(10));
    assert!(woke.load(Ordering::SeqCst) && dropped.load(Ordering::SeqCst));
}

#[test]
fn kill_stops_the_body_and_ends_with_signal_9() {
    let mut sim = Sim::new(12);
    let (dropped, woke) = sleeper(&mut sim);
    let node = sim.add_node("agent", |_, _| {});
    let mut child = spawn_on(&sim, node, || {
        let sleep = subprocess("sleep").arg("10").stdout(Io::Pipe);
        sleep.spawn().unwrap()
    });
    let output = child.stdout.take().unwrap().read_all();
    sim.run_for(Duration::from_secs(1));
    assert!(!dropped.load(Ordering::SeqCst), "still sleeping");
    child.kill();
    let status = sim.block_on(child.status()).unwrap().unwrap();
    assert_eq!(status.signal(), Some(9));
    assert_eq!(sim.now(), Duration::from_secs(1), "killed at once");
    assert!(dropped.load(Ordering::SeqCst));
    // As an OS pipe: the killed child's output ends, it does not fail.
    assert_eq!(sim.block_on(output).unwrap().unwrap(), "sleeping\n");
    sim.run_for(Duration::from_secs(20));
    assert!(!woke.load(Ordering::SeqCst), "the body never went on");
}

#[test]
fn discarding_the_status_stops_the_body_and_ends_it_discarded() {
    let mut sim = Sim::new(13);
    let (dropped, woke) = sleeper(&mut sim);
    let node = sim.add_node("agent", |_, _| {});
    let child = spawn_on(&sim, node, || {
        subprocess("sleep").arg("10").spawn().unwrap()
    });
    sim.run_for(Duration::from_secs(1));
    let status = child.status();
    drop(child);
    status.discard();
    let error = sim.block_on(status).unwrap().unwrap_err();
    assert!(error.is_discarded(), "{error}");
    assert!(dropped.load(Ordering::SeqCst));
    sim.run_for(Duration::from_secs(20));
    assert!(!woke.load(Ordering::SeqCst), "the body never went on");
}

#[test]
fn an_unregistered_program_fails_to_spawn_as_not_found() {
    let mut sim = Sim::new(14);
    let node = sim.add_node("agent", |_, _| {});
    let _entered = sim.runtime(node).unwrap().enter();
    let failure = subprocess("/usr/bin/true").spawn().unwrap_err();
    let io = failure
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error as the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(failure.message().contains("/usr/bin/true"), "{failure}");
}

#[test]
fn a_crash_drops_the_nodes_programs_and_abandons_their_statuses() {
    let mut sim = Sim::new(15);
    let (dropped, woke) = sleeper(&mut sim);
    let node = sim.add_node("agent", |_, _| {});
    let mut child = spawn_on(&sim, node, || {
        let sleep = subprocess("sleep").arg("10").stdout(Io::Pipe);
        sleep.spawn().unwrap()
    });
    let output = child.stdout.take().unwrap().read_all();
    sim.run_for(Duration::from_secs(1));
    sim.crash(node);
    assert!(child.status().is_abandoned(), "{:?}", child.status());
    assert!(
        dropped.load(Ordering::SeqCst),
        "the body is gone with its node"
    );
    assert!(
        !output.is_pending(),
        "and so is the task feeding its stdout"
    );
    sim.restart(node);
    sim.run_for(Duration::from_secs(20));
    assert!(!woke.load(Ordering::SeqCst));
}

/// Six tasks of different lengths across two agents, over a network with varying latency.
fn busy_cluster(seed: u64) -> Sim {
    let sim = Sim::builder(seed)
        .latency(Latency::uniform(
            Duration::from_millis(1),
            Duration::from_millis(30),
        ))
        .build();
    let mut cluster = Cluster::new(sim);
    for task in 0..6 {
        let millis = (100 * (task % 4) + 50).to_string();
        cluster.launch(task as usize % 2, task, &["work", &millis]);
    }
    let reports = cluster.reports(6);
    for report in &reports {
        let (output, code) = report.outcome.as_ref().unwrap();
        assert!(output.starts_with("worked "), "{output}");
        assert_eq!(*code, Some(0));
    }
    cluster.sim
}

#[test]
fn the_same_seed_gives_the_same_trace_with_programs() {
    run_seeds(10, |seed| {
        if let Err(divergence) = check_determinism(seed, busy_cluster) {
            panic!("{divergence}");
        }
    });
}
