//! Starting a master, an agent or a client as a node of its own: a runtime, the TCP transport
//! (with the cluster's shared secret) and the role's process. What `cargo run --example
//! cluster` and the OS-process tests use.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use procession::subprocess::{Child, Command, Io};
use procession::{Failure, Pid, Runtime, Upid};
use procession_net::Net;

use crate::{Agent, AgentConfig, Client, Master, MasterConfig, Resources};

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Where it listens (default `127.0.0.1:0`, any free port).
    pub listen: SocketAddr,
    /// The cluster's shared secret, if it has one: every connection must prove it knows it.
    pub secret: Option<Vec<u8>>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret: None,
        }
    }
}

/// A running node: its runtime and transport, and the role's handle.
pub struct Node<R> {
    /// The node's runtime.
    pub runtime: Runtime,
    /// Its transport.
    pub net: Net,
    /// The master's or agent's pid, or the client.
    pub role: R,
}

fn start(name: &str, options: &NodeOptions) -> io::Result<(Runtime, Net)> {
    let runtime = Runtime::builder()
        .name(name)
        .build()
        .map_err(io::Error::other)?;
    let mut net = Net::builder().listen(options.listen);
    if let Some(secret) = &options.secret {
        net = net.secret(secret.clone());
    }
    let net = net.start(&runtime)?;
    Ok((runtime, net))
}

/// Starts a master node; the master's Upid is `master@<its address>`.
///
/// # Errors
///
/// Fails if the runtime or the listener cannot start.
pub fn master(options: &NodeOptions, config: MasterConfig) -> io::Result<Node<Pid<Master>>> {
    let (runtime, net) = start("master", options)?;
    let master = runtime
        .spawn_named("master", Master::new(config))
        .map_err(io::Error::other)?;
    Ok(Node {
        runtime,
        net,
        role: master,
    })
}

/// Starts an agent node offering `resources` to `master`.
///
/// # Errors
///
/// Fails if the runtime or the listener cannot start.
pub fn agent(
    options: &NodeOptions,
    master: Upid,
    resources: Resources,
    config: AgentConfig,
) -> io::Result<Node<Pid<Agent>>> {
    let (runtime, net) = start("agent", options)?;
    let agent = runtime
        .spawn_named("agent", Agent::new(master, resources, config))
        .map_err(io::Error::other)?;
    Ok(Node {
        runtime,
        net,
        role: agent,
    })
}

/// Starts a client node of `master`.
///
/// # Errors
///
/// Fails if the runtime or the listener cannot start.
pub fn client(options: &NodeOptions, master: Upid) -> io::Result<Node<Client>> {
    let (runtime, net) = start("client", options)?;
    let client = {
        let _entered = runtime.enter();
        Client::start(master)
    };
    Ok(Node {
        runtime,
        net,
        role: client,
    })
}

/// Prints `upid` as the first line of stdout (what [`ChildNode::start`] reads), then serves
/// until stdin closes: how a node program runs under a parent that started it.
///
/// # Errors
///
/// Fails if stdout or stdin fail.
pub fn serve_until_stdin_closes(upid: &Upid) -> io::Result<()> {
    use std::io::{BufRead, Write};
    let mut stdout = io::stdout();
    writeln!(stdout, "{upid}")?;
    stdout.flush()?;
    let mut line = String::new();
    let mut stdin = io::stdin().lock();
    while stdin.read_line(&mut line)? > 0 {
        line.clear();
    }
    Ok(())
}

/// A node program started as a child process: the child, and the writer of its stdin
/// (closing it asks the node to stop).
pub struct ChildNode {
    /// The child process.
    pub child: Child,
    /// Its stdin; close it to stop the node.
    pub stdin: procession::pipe::Writer,
    /// The Upid the node printed.
    pub upid: Upid,
}

impl ChildNode {
    /// Starts `command` (a node program that calls [`serve_until_stdin_closes`]) with piped
    /// stdin and stdout on the current runtime, and waits at most `patience` (real time) for
    /// the first line of its stdout whose last word is a Upid.
    ///
    /// # Errors
    ///
    /// Fails if the child cannot start, or ends or stays silent before printing a Upid.
    pub fn start(command: Command, patience: Duration) -> Result<ChildNode, Failure> {
        let mut child = command.stdin(Io::Pipe).stdout(Io::Pipe).spawn()?;
        let (Some(stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Failure::new("a node's stdin and stdout are pipes"));
        };
        // The first line that ends with a Upid: a test harness may print before it, even on
        // the same line.
        let mut text = Vec::new();
        let upid = loop {
            if let Some(end) = text.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = text.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let last_word = line.split_whitespace().last().unwrap_or_default();
                if let Ok(upid) = last_word.parse::<Upid>() {
                    break upid;
                }
                continue;
            }
            let read = stdout.read();
            if !read.wait_for(patience) {
                child.kill();
                return Err(Failure::new("the node did not print its Upid in time"));
            }
            match read.outcome() {
                Some(Ok(Some(chunk))) => text.extend_from_slice(chunk),
                _ => return Err(Failure::new("the node ended before printing its Upid")),
            }
        };
        // Whatever else it prints is read and dropped, so it never writes into a closed pipe.
        procession::spawn_async(async move { while let Ok(Some(_)) = stdout.read().await {} });
        Ok(ChildNode { child, stdin, upid })
    }

    /// Asks the node to stop (closes its stdin) and waits at most `patience` for it to exit;
    /// kills it if it does not.
    pub fn stop(self, patience: Duration) {
        self.stdin.close();
        if !self.child.status().wait_for(patience) {
            self.child.kill();
        }
    }
}

/// Waits at most a minute of real time for `future` and gives its value: how a program (not a
/// handler) waits without ever hanging.
///
/// # Errors
///
/// Fails, naming `what`, if the future fails, is discarded or abandoned, or is still pending
/// after the minute.
pub fn bounded<T: Clone + Send + Sync + 'static>(
    future: procession::Future<T>,
    what: &str,
) -> Result<T, Failure> {
    if !future.wait_for(Duration::from_secs(60)) {
        return Err(Failure::new(format!("timed out waiting for {what}")));
    }
    match future.outcome() {
        Some(Ok(value)) => Ok(value.clone()),
        Some(Err(error)) => Err(Failure::new(format!("{what}: {error}"))),
        None => Err(Failure::new(format!("{what} did not complete"))),
    }
}
