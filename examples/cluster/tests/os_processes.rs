//! The cluster as real OS processes: this test binary starts itself again as a master and as
//! agents (the `node` test, which does nothing unless the environment names a role). Twenty
//! tasks run; one agent is SIGKILLed mid-task: its tasks, and only those, end LOST, the others
//! FINISHED with every output byte intact. Then the master is killed and started again on the
//! same port: the agents and the client reconnect and the cluster runs a new task.

use std::collections::BTreeMap;
use std::time::Duration;

use procession::subprocess::subprocess;
use procession::{Future, Runtime, Upid};
use procession_cluster::node::{self, ChildNode, NodeOptions};
use procession_cluster::{AgentConfig, Event, MasterConfig, Resources, TaskSpec, TaskState};

const ROLE: &str = "PROCESSION_CLUSTER_TEST_ROLE";
const ARG: &str = "PROCESSION_CLUSTER_TEST_ARG";
const SECRET: &[u8] = b"os-test-secret";
const PATIENCE: Duration = Duration::from_secs(60);

fn options(listen: &str) -> NodeOptions {
    NodeOptions {
        listen: listen.parse().unwrap(),
        secret: Some(SECRET.to_vec()),
    }
}

/// A node of the cluster, when the parent test started this binary as one.
#[test]
fn node() {
    let (Ok(role), Ok(arg)) = (std::env::var(ROLE), std::env::var(ARG)) else {
        return;
    };
    match role.as_str() {
        "master" => {
            let config = MasterConfig {
                // Far above the 1 s heartbeat, so a stall of a loaded machine does not lose a
                // live agent; the killed one is lost at once, by its broken link.
                agent_timeout: Duration::from_secs(15),
                grace: Duration::from_secs(2),
            };
            let node = node::master(&options(&arg), config).unwrap();
            node::serve_until_stdin_closes(&node.role.upid()).unwrap();
        }
        "agent" => {
            let resources = Resources::new(1000, 512);
            let node = node::agent(
                &options("127.0.0.1:0"),
                arg.parse().unwrap(),
                resources,
                AgentConfig::default(),
            )
            .unwrap();
            node::serve_until_stdin_closes(&node.role.upid()).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

fn start(role: &str, arg: &str) -> ChildNode {
    let command = subprocess(std::env::current_exe().unwrap())
        .args(["--exact", "node", "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .env(ARG, arg);
    ChildNode::start(command, PATIENCE).unwrap()
}

fn wait<T: Clone + Send + Sync + 'static>(future: &Future<T>) -> T {
    assert!(future.wait_for(PATIENCE), "no answer within {PATIENCE:?}");
    future.get().expect("ready")
}

/// Waits for events until `done` holds for the final states seen so far.
fn follow(
    client: &procession_cluster::Client,
    states: &mut BTreeMap<String, (TaskState, Option<Upid>)>,
    mut done: impl FnMut(&BTreeMap<String, (TaskState, Option<Upid>)>) -> bool,
) {
    while !done(states) {
        let next = client.next();
        assert!(next.wait_for(PATIENCE), "stuck with {states:?}");
        match next.get().expect("ready") {
            Some(Event::Update(status)) => {
                states.insert(status.task, (status.state, status.agent));
            }
            Some(_) => {}
            None => panic!("the event source ended"),
        }
    }
}

#[test]
fn tasks_survive_a_killed_agent_and_a_restarted_master() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let runtime = Runtime::new();
    let _entered = runtime.enter();
    let master = start("master", "127.0.0.1:0");
    let master_upid = master.upid.clone();
    let agents: Vec<ChildNode> = (0..2)
        .map(|_| start("agent", &master_upid.to_string()))
        .collect();
    let client_node = node::client(&options("127.0.0.1:0"), master_upid.clone()).unwrap();
    let client = client_node.role.clone();
    let _client_entered = client_node.runtime.enter();

    let mut submissions = Vec::new();
    for n in 0..20 {
        // Long enough that every task is still running when the last one starts, even on a
        // loaded machine, so the kill below lands mid-task.
        let script = format!("echo start-{n}; sleep 8; echo end-{n}");
        let spec = TaskSpec::new(format!("t{n}"), "sh", &["-c", &script]);
        submissions.push(client.submit(spec));
    }
    let mut states = BTreeMap::new();
    follow(&client, &mut states, |s| {
        s.len() == 20
            && s.values()
                .all(|(state, _)| *state == TaskState::Running || state.is_final())
    });

    // SIGKILL the first agent mid-task.
    let victim = agents[0].upid.clone();
    agents[0].child.kill();
    follow(&client, &mut states, |s| {
        s.values().all(|(state, _)| state.is_final())
    });
    for (n, submission) in submissions.into_iter().enumerate() {
        let (state, agent) = &states[&format!("t{n}")];
        if agent.as_ref() == Some(&victim) {
            assert_eq!(*state, TaskState::Lost, "t{n} ran on the killed agent");
        } else {
            assert_eq!(*state, TaskState::Finished, "t{n}");
            let output = wait(&submission.stdout.read_all());
            assert_eq!(output, format!("start-{n}\nend-{n}\n").as_bytes(), "t{n}");
        }
    }
    let lost = states
        .values()
        .filter(|(s, _)| *s == TaskState::Lost)
        .count();
    assert!(lost > 0 && lost < 20, "both agents ran tasks: {lost} lost");

    // Kill the master and start it again on the same port.
    master.child.kill();
    wait(&master.child.status());
    let restarted = start("master", &master_upid.address().to_string());
    assert_eq!(restarted.upid, master_upid);
    let after = client.submit(TaskSpec::new("after-restart", "echo", &["again"]));
    let status = wait(&after.status);
    assert_eq!(status.state, TaskState::Finished, "{status:?}");
    assert_eq!(wait(&after.stdout.read_all()), &b"again\n"[..]);

    restarted.stop(PATIENCE);
    for agent in agents {
        agent.stop(PATIENCE);
    }
}
