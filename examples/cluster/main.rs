//! The cluster manager as a program: a master, agents and a client, each its own OS process
//! talking over TCP with a shared secret.
//!
//! ```text
//! cargo run --example cluster -- demo
//! cargo run --example cluster -- master [--listen ADDR]
//! cargo run --example cluster -- agent --master master@IP:PORT [--cpus N] [--mem MIB]
//! cargo run --example cluster -- submit --master master@IP:PORT PROGRAM [ARGS...]
//! ```
//!
//! `demo` starts a master and two agents as child processes of its own, submits a few tasks —
//! two that finish, one that fails, one killed by its timeout, one killed on request, one too
//! big for any agent — tells the story as it happens, stops its children and exits 0 if every
//! task ended as it should. The secret comes from `PROCESSION_CLUSTER_SECRET` (the demo makes
//! one for its children). A master or agent prints its Upid and serves until its stdin closes.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use procession::subprocess::subprocess;
use procession::{Runtime, Upid};
use procession_cluster::node::{self, bounded, ChildNode, NodeOptions};
use procession_cluster::{AgentConfig, Event, MasterConfig, Resources, TaskSpec, TaskState};

const SECRET: &str = "PROCESSION_CLUSTER_SECRET";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("master") => serve_master(&args[1..]),
        Some("agent") => serve_agent(&args[1..]),
        Some("submit") => submit(&args[1..]),
        _ => Err("usage: cluster demo | master [--listen ADDR] | agent --master UPID [--cpus N] [--mem MIB] | submit --master UPID PROGRAM [ARGS...]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cluster: {error}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn options(args: &[String]) -> Result<NodeOptions> {
    let mut options = NodeOptions {
        secret: std::env::var(SECRET).ok().map(String::into_bytes),
        ..NodeOptions::default()
    };
    if let Some(listen) = flag(args, "--listen") {
        options.listen = listen.parse::<SocketAddr>()?;
    }
    Ok(options)
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).map(String::as_str)
}

fn serve_master(args: &[String]) -> Result {
    let node = node::master(&options(args)?, MasterConfig::default())?;
    Ok(node::serve_until_stdin_closes(&node.role.upid())?)
}

fn serve_agent(args: &[String]) -> Result {
    let master: Upid = flag(args, "--master")
        .ok_or("agent needs --master")?
        .parse()?;
    let cpus: u32 = flag(args, "--cpus").unwrap_or("1").parse()?;
    let mem: u32 = flag(args, "--mem").unwrap_or("512").parse()?;
    let resources = Resources::new(cpus * 1000, mem);
    let node = node::agent(&options(args)?, master, resources, AgentConfig::default())?;
    Ok(node::serve_until_stdin_closes(&node.role.upid())?)
}

fn submit(args: &[String]) -> Result {
    let master: Upid = flag(args, "--master")
        .ok_or("submit needs --master")?
        .parse()?;
    let command: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    let (program, rest) = command.split_first().ok_or("submit needs a program")?;
    let node = node::client(&options(args)?, master)?;
    let _entered = node.runtime.enter();
    let id = format!("task-{}", std::process::id());
    let task = node.role.submit(TaskSpec::new(id, *program, rest));
    let output = task.stdout.read_all();
    let status = node.runtime.block_on(task.status)?;
    std::io::stdout().write_all(&node.runtime.block_on(output).unwrap_or_default())?;
    println!("{}: {} ({})", status.task, status.state, status.message);
    Ok(())
}

fn start_child(args: &[&str], secret: &str) -> Result<ChildNode> {
    let command = subprocess(std::env::current_exe()?)
        .args(args)
        .env(SECRET, secret);
    Ok(ChildNode::start(command, Duration::from_secs(60))?)
}

fn demo() -> Result {
    let runtime = Runtime::new();
    let _entered = runtime.enter();
    let secret = format!(
        "demo-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let master_node = start_child(&["master"], &secret)?;
    let master = master_node.upid.clone();
    println!("master   {master} (its own OS process)");
    let mut children = vec![master_node];
    for _ in 0..2 {
        let args = ["agent", "--master", &master.to_string(), "--cpus", "1"];
        let agent = start_child(&args, &secret)?;
        println!("agent    {} (1 cpu, 512 MiB)", agent.upid);
        children.push(agent);
    }
    drop(_entered);
    let options = NodeOptions {
        secret: Some(secret.into_bytes()),
        ..NodeOptions::default()
    };
    let client_node = node::client(&options, master)?;
    let outcome = story(&client_node.role, &client_node.runtime);
    for node in children {
        node.stop(Duration::from_secs(10));
    }
    outcome
}

/// Submits the demo's tasks and tells what happens to them; an error if one ends otherwise.
fn story(client: &procession_cluster::Client, runtime: &Runtime) -> Result {
    let _entered = runtime.enter();
    let cpu = |m| Resources::new(m, 64);
    let tasks = vec![
        (
            TaskSpec::new("hello", "echo", &["hello from a task"]),
            TaskState::Finished,
        ),
        (
            TaskSpec::new(
                "count",
                "sh",
                &["-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"],
            ),
            TaskState::Finished,
        ),
        (
            TaskSpec::new("failing", "sh", &["-c", "echo oops >&2; exit 3"]),
            TaskState::Failed,
        ),
        (
            TaskSpec::new("slow", "sleep", &["30"]).timeout(Duration::from_secs(1)),
            TaskState::Killed,
        ),
        (
            TaskSpec::new("unwanted", "sleep", &["30"]).needing(cpu(500)),
            TaskState::Killed,
        ),
        (
            TaskSpec::new("too-big", "true", &[]).needing(cpu(64_000)),
            TaskState::Failed,
        ),
    ];
    let mut submitted = Vec::new();
    for (spec, expected) in tasks {
        println!(
            "submit   {:<9} {} {}",
            spec.id,
            spec.program,
            spec.args.join(" ")
        );
        let id = spec.id.clone();
        submitted.push((id, client.submit(spec), expected));
    }
    let mut remaining = submitted.len();
    let mut killed_unwanted = false;
    while remaining > 0 {
        let event = bounded(client.next(), "the next event")?.ok_or("the event source ended")?;
        match event {
            Event::Update(status) => {
                let on = status.agent.map(|a| format!(" on {a}")).unwrap_or_default();
                println!(
                    "update   {:<9} {:<8} {}{on}",
                    status.task, status.state, status.message
                );
                if status.task == "unwanted"
                    && status.state == TaskState::Running
                    && !killed_unwanted
                {
                    killed_unwanted = true;
                    client.announce("discarding the future of `unwanted`: that kills it");
                    if let Some((_, s, _)) = submitted.iter().find(|(id, _, _)| id == "unwanted") {
                        s.status.discard();
                    }
                }
                if status.state.is_final() {
                    remaining -= 1;
                    let expected = submitted
                        .iter()
                        .find(|(id, _, _)| *id == status.task)
                        .map(|t| t.2);
                    if expected != Some(status.state) {
                        return Err(format!(
                            "{} ended {}, expected {expected:?}",
                            status.task, status.state
                        )
                        .into());
                    }
                }
            }
            Event::Note(note) => println!("note     {note}"),
            Event::Connected => println!("client   connected to the master"),
            Event::Disconnected => println!("client   lost the master; reconnecting"),
        }
    }
    for (id, submission, _) in submitted {
        let out = bounded(submission.stdout.read_all(), "a task's stdout")
            .unwrap_or_else(|_| Bytes::new());
        let err = bounded(submission.stderr.read_all(), "a task's stderr")
            .unwrap_or_else(|_| Bytes::new());
        for (stream, bytes) in [("stdout", out), ("stderr", err)] {
            for line in String::from_utf8_lossy(&bytes).lines() {
                println!("output   {id:<9} {stream}: {line}");
            }
        }
    }
    println!(
        "metrics  {}",
        bounded(client.metrics(), "the master's metrics")?
    );
    Ok(())
}
