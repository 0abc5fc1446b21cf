//! A small cluster manager built from procession processes: a [`master`] that places tasks on
//! [`agent`]s, which run them as child processes and stream their output back, and a
//! [`client`] that submits tasks and follows them. It is the proof that procession's parts
//! work together — processes, messages, links, timers, subprocesses, remote pipes — and an
//! example of how to build such a daemon: the same code runs as real OS processes over TCP
//! (`cargo run --example cluster -- demo`) and, unchanged, inside the testkit's seeded
//! simulation (this crate's tests).
//!
//! ```no_run
//! use procession::Runtime;
//! use procession_cluster::{Agent, AgentConfig, Client, Master, MasterConfig, Resources, TaskSpec};
//! use procession_net::Net;
//!
//! let runtime = Runtime::new();
//! let _net = Net::start(&runtime)?;
//! let _entered = runtime.enter();
//! let master = runtime.spawn_named("master", Master::new(MasterConfig::default()))?;
//! runtime.spawn(Agent::new(master.upid(), Resources::new(2000, 1024), AgentConfig::default()));
//! let client = Client::start(master.upid());
//! let hello = client.submit(TaskSpec::new("hello", "echo", &["hello"]));
//! let output = runtime.block_on(hello.stdout.read_all())?;
//! assert_eq!(&output[..], b"hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod agent;
pub mod client;
pub mod master;
pub mod node;
pub mod protocol;

pub use agent::{Agent, AgentConfig};
pub use client::{Client, Event, Submission};
pub use master::{Master, MasterConfig};
pub use protocol::{Resources, TaskSpec, TaskState, TaskStatus};
