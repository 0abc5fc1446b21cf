//! Starting a master, an agent or a client as a node of its own: a runtime, the TCP transport
//! (with the cluster's shared secret) and the role's process. What `cargo run --example
//! cluster` and the OS-process tests use.

use std::io;
use std::net::SocketAddr;

use procession::{Pid, Runtime, Upid};
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
