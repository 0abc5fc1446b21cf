//! What the master, the agents and the clients say to each other.
//!
//! Every message is idempotent or acknowledged, so the cluster survives a network that drops,
//! delays and reorders: agents repeat status updates until the master acknowledges them,
//! clients repeat submissions until the master has heard of the task and ask the master for
//! the state of their tasks (reconciliation) until each is final.

use std::fmt;
use std::time::Duration;

use procession::{Message, Upid};
use procession_net::pipe::RemoteWriter;
use serde::{Deserialize, Serialize};

/// What an agent offers and a task needs: CPUs (in thousandths) and memory (in MiB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Thousandths of a CPU.
    pub millicpus: u32,
    /// Memory in MiB.
    pub mem_mib: u32,
}

impl Resources {
    /// `cpus` CPUs (in thousandths) and `mem_mib` MiB.
    pub fn new(millicpus: u32, mem_mib: u32) -> Self {
        Resources { millicpus, mem_mib }
    }

    /// Whether `need` fits in these.
    pub fn fits(&self, need: &Resources) -> bool {
        need.millicpus <= self.millicpus && need.mem_mib <= self.mem_mib
    }

    pub(crate) fn minus(&self, other: &Resources) -> Resources {
        Resources {
            millicpus: self.millicpus.saturating_sub(other.millicpus),
            mem_mib: self.mem_mib.saturating_sub(other.mem_mib),
        }
    }

    pub(crate) fn plus(&self, other: &Resources) -> Resources {
        Resources {
            millicpus: self.millicpus.saturating_add(other.millicpus),
            mem_mib: self.mem_mib.saturating_add(other.mem_mib),
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:03} cpus, {} MiB",
            self.millicpus / 1000,
            self.millicpus % 1000,
            self.mem_mib
        )
    }
}

/// A task: a command to run on some agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique per client: the client's own name for the task.
    pub id: String,
    /// The program to run.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// What it needs.
    pub resources: Resources,
    /// How long it may run before the agent kills it (`None`: no limit).
    pub timeout: Option<Duration>,
}

impl TaskSpec {
    /// A task `id` running `program` with `args`, needing a tenth of a CPU and 32 MiB, with no
    /// time limit.
    pub fn new(id: impl Into<String>, program: impl Into<String>, args: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            resources: Resources::new(100, 32),
            timeout: None,
        }
    }

    /// The same task needing `resources`.
    pub fn needing(mut self, resources: Resources) -> TaskSpec {
        self.resources = resources;
        self
    }

    /// The same task, killed if it runs longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> TaskSpec {
        self.timeout = Some(timeout);
        self
    }
}

/// Where a task is in its life. The last four are final: a task reaches exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// Accepted by the master; waiting for an agent with room, or on its way to one.
    Staging,
    /// Its command runs on an agent.
    Running,
    /// The command exited with status 0.
    Finished,
    /// The command exited otherwise, could not start, or the task can never be placed.
    Failed,
    /// Killed on request or because its timeout passed.
    Killed,
    /// Its agent was lost (crashed, partitioned) or the master forgot it.
    Lost,
}

impl TaskState {
    /// Whether the task is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Lost
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            TaskState::Staging => "STAGING",
            TaskState::Running => "RUNNING",
            TaskState::Finished => "FINISHED",
            TaskState::Failed => "FAILED",
            TaskState::Killed => "KILLED",
            TaskState::Lost => "LOST",
        };
        f.write_str(name)
    }
}

/// A task's state with what explains it (an exit status, an error, the lost agent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task.
    pub task: String,
    /// Its state.
    pub state: TaskState,
    /// Why, in words.
    pub message: String,
    /// The agent it ran on, if it was placed.
    pub agent: Option<Upid>,
}

/// Where a task's output goes: remote pipes whose readers are the client's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Output {
    /// The task's stdout.
    pub stdout: RemoteWriter,
    /// The task's stderr.
    pub stderr: RemoteWriter,
}

macro_rules! messages {
    ($($(#[$doc:meta])* $name:ident $body:tt)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub struct $name $body
        impl Message for $name {
            const NAME: &'static str = concat!("cluster.", stringify!($name));
        }
    )*};
}

messages! {
    /// Agent to master: take me (again, after a restart of either, with what still runs here).
    RegisterAgent {
        /// What the agent offers in all.
        pub resources: Resources,
        /// The tasks it knows: each with its client and state.
        pub tasks: Vec<(TaskSpec, Upid, TaskState)>,
    }
    /// Master to agent: registered.
    AgentRegistered {}
    /// Agent to master: alive.
    Heartbeat {
        /// The ids of the tasks the agent knows, so the master can repeat a lost launch.
        pub tasks: Vec<String>,
    }
    /// Master to agent: I do not know you (I restarted, or I declared you lost): register.
    ReregisterAgent {}
    /// Master to agent: run this task.
    LaunchTask {
        /// The task.
        pub task: TaskSpec,
        /// Its client, to which its updates go.
        pub client: Upid,
        /// Where its output goes.
        pub output: Output,
    }
    /// Master to agent, or client to master: kill this task.
    KillTask {
        /// The task's id.
        pub task: String,
    }
    /// Agent to master: a task changed state (repeated until acknowledged).
    StatusUpdate {
        /// The task's new status.
        pub status: TaskStatus,
        /// Its client.
        pub client: Upid,
    }
    /// Master to agent: this update was recorded.
    StatusAck {
        /// The task's id.
        pub task: String,
        /// The state recorded.
        pub state: TaskState,
    }
    /// Client to master: send me my tasks' updates.
    Subscribe {}
    /// Master to client: subscribed.
    Subscribed {}
    /// Client to master: run this task (repeated until the client hears of it).
    SubmitTask {
        /// The task.
        pub task: TaskSpec,
        /// Where its output goes.
        pub output: Output,
    }
    /// Client to master: what is the state of these tasks?
    Reconcile {
        /// Their ids.
        pub tasks: Vec<String>,
    }
    /// Master to client: a task's state.
    TaskUpdate {
        /// The task's status.
        pub status: TaskStatus,
    }
    /// Client to master: send me your metrics.
    MetricsRequest {}
    /// Master to client: the master's view.
    MetricsReply {
        /// As JSON: agents, queued tasks, tasks by state.
        pub json: String,
    }
}
