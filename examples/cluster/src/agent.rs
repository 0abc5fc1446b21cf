//! The agent: registers with the master (again after either restarts, backing off), beats,
//! runs tasks as child processes with their output streamed to the client through remote
//! pipes, and reports each task's state until the master acknowledges it.

use std::collections::BTreeMap;
use std::time::Duration;

use procession::subprocess::{subprocess, Child, Io};
use procession::{delay, link, send, Context, ExitReason, Pid, Process, Upid};

use crate::protocol::*;

/// How an agent paces itself.
#[derive(Clone, Copy, Debug)]
pub struct AgentConfig {
    /// Time between heartbeats.
    pub heartbeat: Duration,
    /// The first wait before registering again; it doubles up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between registration attempts.
    pub max_backoff: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            heartbeat: Duration::from_secs(1),
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

struct AgentTask {
    spec: TaskSpec,
    client: Upid,
    state: TaskState,
    child: Option<Child>,
    /// Why the agent killed it, if it did.
    killed: Option<String>,
    /// The update the master has not acknowledged yet.
    unacked: Option<TaskStatus>,
}

/// The agent process; see the [module docs](self).
pub struct Agent {
    master: Upid,
    resources: Resources,
    config: AgentConfig,
    me: Option<Pid<Agent>>,
    registered: bool,
    /// Whether the link to the master stands (it is made again after each registration).
    linked: bool,
    backoff: Duration,
    /// Whether a registration attempt is scheduled.
    retrying: bool,
    tasks: BTreeMap<String, AgentTask>,
}

impl Agent {
    /// An agent offering `resources` to the master at `master`.
    pub fn new(master: Upid, resources: Resources, config: AgentConfig) -> Agent {
        Agent {
            master,
            resources,
            backoff: config.backoff,
            config,
            me: None,
            registered: false,
            linked: false,
            retrying: false,
            tasks: BTreeMap::new(),
        }
    }

    fn me(&self) -> Pid<Agent> {
        self.me.clone().expect("set in initialize")
    }

    fn register(&mut self) {
        if self.registered {
            return;
        }
        let tasks = self
            .tasks
            .values()
            .map(|t| (t.spec.clone(), t.client.clone(), t.state))
            .collect();
        send(
            &self.master,
            RegisterAgent {
                resources: self.resources,
                tasks,
            },
        );
        if !self.retrying {
            self.retrying = true;
            let wait = self.backoff;
            self.backoff = (self.backoff * 2).min(self.config.max_backoff);
            delay(wait, &self.me(), |a: &mut Agent| {
                a.retrying = false;
                a.register();
            });
        }
    }

    fn registered(&mut self) {
        if !self.registered {
            tracing::info!(agent = ?self.me.as_ref().map(|p| p.upid()), master = %self.master, "registered");
        }
        self.registered = true;
        self.backoff = self.config.backoff;
        if !self.linked {
            self.linked = true;
            link(&self.master);
        }
    }

    fn beat(&mut self) {
        if self.registered {
            let tasks = self.tasks.keys().cloned().collect();
            send(&self.master, Heartbeat { tasks });
            for task in self.tasks.values() {
                if let Some(status) = &task.unacked {
                    let update = StatusUpdate {
                        status: status.clone(),
                        client: task.client.clone(),
                    };
                    send(&self.master, update);
                }
            }
        }
        delay(self.config.heartbeat, &self.me(), |a: &mut Agent| a.beat());
    }

    fn launch(&mut self, launch: LaunchTask) {
        let id = launch.task.id.clone();
        if self.tasks.contains_key(&id) {
            return;
        }
        let mut task = AgentTask {
            spec: launch.task.clone(),
            client: launch.client,
            state: TaskState::Staging,
            child: None,
            killed: None,
            unacked: None,
        };
        let spawned = subprocess(&launch.task.program)
            .args(&launch.task.args)
            .stdin(Io::Null)
            .stdout(Io::Pipe)
            .stderr(Io::Pipe)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(failure) => {
                self.tasks.insert(id.clone(), task);
                let message = format!("could not start: {failure}");
                return self.update(&id, TaskState::Failed, message);
            }
        };
        // Output streams to the client as it comes; the pipelines end with the child.
        if let Some(stdout) = child.stdout.take() {
            drop(stdout | launch.output.stdout.open());
        }
        if let Some(stderr) = child.stderr.take() {
            drop(stderr | launch.output.stderr.open());
        }
        let me = self.me();
        let ended = id.clone();
        child.status().on_any(move |outcome| {
            let result = match outcome {
                Ok(status) => Ok(*status),
                Err(error) => Err(error.to_string()),
            };
            procession::cast(&me, move |a: &mut Agent| a.child_exited(&ended, result));
        });
        if let Some(timeout) = launch.task.timeout {
            let expired = id.clone();
            delay(timeout, &self.me(), move |a: &mut Agent| {
                a.kill(&expired, format!("timed out after {timeout:?}"));
            });
        }
        task.child = Some(child);
        self.tasks.insert(id.clone(), task);
        tracing::info!(task = %id, program = %launch.task.program, "task running");
        self.update(&id, TaskState::Running, "running".to_owned());
    }

    fn kill(&mut self, id: &str, why: String) {
        if let Some(task) = self.tasks.get_mut(id) {
            if let (Some(child), None) = (&task.child, &task.killed) {
                tracing::info!(task = %id, why = %why, "killing task");
                child.kill();
                task.killed = Some(why);
            }
        }
    }

    fn child_exited(&mut self, id: &str, result: Result<std::process::ExitStatus, String>) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        task.child = None;
        let (state, message) = match (&task.killed, result) {
            (Some(why), _) => (TaskState::Killed, why.clone()),
            (None, Ok(status)) if status.success() => (TaskState::Finished, "exited 0".to_owned()),
            (None, Ok(status)) => (TaskState::Failed, format!("exited with {status}")),
            (None, Err(error)) => (TaskState::Failed, error),
        };
        self.update(id, state, message);
    }

    fn update(&mut self, id: &str, state: TaskState, message: String) {
        let agent = self.me.as_ref().map(|p| p.upid());
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        task.state = state;
        let status = TaskStatus {
            task: id.to_owned(),
            state,
            message,
            agent,
        };
        task.unacked = Some(status.clone());
        let update = StatusUpdate {
            status,
            client: task.client.clone(),
        };
        send(&self.master, update);
    }

    fn acknowledged(&mut self, ack: StatusAck) {
        let Some(task) = self.tasks.get_mut(&ack.task) else {
            return;
        };
        if task.unacked.as_ref().is_some_and(|s| s.state == ack.state) {
            task.unacked = None;
            if ack.state.is_final() {
                self.tasks.remove(&ack.task);
            }
        }
    }

    fn master_lost(&mut self) {
        if self.registered {
            tracing::warn!(master = %self.master, "master lost; registering again");
        }
        self.registered = false;
        self.linked = false;
        self.register();
    }
}

impl Process for Agent {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
        let installed = [
            ctx.install(|a: &mut Self, _: &Upid, _: AgentRegistered| a.registered()),
            ctx.install(|a: &mut Self, _: &Upid, _: ReregisterAgent| {
                a.registered = false;
                a.register();
            }),
            ctx.install(|a: &mut Self, _: &Upid, l: LaunchTask| a.launch(l)),
            ctx.install(|a: &mut Self, _: &Upid, k: KillTask| {
                a.kill(&k.task, "killed on request".to_owned())
            }),
            ctx.install(|a: &mut Self, _: &Upid, ack: StatusAck| a.acknowledged(ack)),
        ];
        for result in installed {
            if let Err(error) = result {
                tracing::error!(%error, "agent could not install a handler");
            }
        }
        self.register();
        self.beat();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, _: &ExitReason) {
        if *upid == self.master {
            self.master_lost();
        }
    }

    fn finalize(&mut self, _: &mut Context<'_, Self>) {
        // The runtime reaps what is killed here when it shuts down.
        for task in self.tasks.values() {
            if let Some(child) = &task.child {
                child.kill();
            }
        }
    }
}
