//! The master: knows the agents and their free resources, places tasks, and keeps every task's
//! state, telling its client each change.
//!
//! An agent is *lost* when its link breaks or it misses heartbeats for
//! [`MasterConfig::agent_timeout`]; its unfinished tasks become LOST, once. A task no agent
//! could ever hold fails at once; one that waits for room waits in a queue. After a restart the
//! master knows nothing: for [`MasterConfig::grace`] it places nothing and forgets nothing,
//! while agents register again with the tasks they run and clients ask about theirs; then a
//! task nobody reported is LOST.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use procession::{delay, link, send, Clock, Context, ExitReason, Pid, Process, Upid};

use crate::protocol::*;

/// How patient the master is.
#[derive(Clone, Copy, Debug)]
pub struct MasterConfig {
    /// An agent silent this long is lost.
    pub agent_timeout: Duration,
    /// After a start, how long agents have to register again before the master places tasks
    /// and declares unknown tasks lost.
    pub grace: Duration,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            agent_timeout: Duration::from_secs(5),
            grace: Duration::from_secs(3),
        }
    }
}

struct AgentEntry {
    total: Resources,
    free: Resources,
    last_seen: Instant,
}

struct TaskEntry {
    spec: TaskSpec,
    client: Upid,
    /// Where output goes; `None` for a task the master learned of from its agent.
    output: Option<Output>,
    state: TaskState,
    message: String,
    agent: Option<Upid>,
    changed_at: Option<Instant>,
}

/// The master process; see the [module docs](self).
pub struct Master {
    config: MasterConfig,
    started: Option<Instant>,
    agents: BTreeMap<Upid, AgentEntry>,
    tasks: BTreeMap<String, TaskEntry>,
    queue: VecDeque<String>,
    clients: BTreeSet<Upid>,
}

impl Master {
    /// A master with `config`, knowing nothing.
    pub fn new(config: MasterConfig) -> Master {
        Master {
            config,
            started: None,
            agents: BTreeMap::new(),
            tasks: BTreeMap::new(),
            queue: VecDeque::new(),
            clients: BTreeSet::new(),
        }
    }

    /// The master's view as JSON: agents, and tasks by state.
    pub fn metrics(&self) -> String {
        let mut by_state = BTreeMap::new();
        for task in self.tasks.values() {
            *by_state.entry(task.state.to_string()).or_insert(0u32) += 1;
        }
        serde_json::json!({
            "agents": self.agents.len(),
            "queued": self.queue.len(),
            "tasks": by_state,
        })
        .to_string()
    }

    /// Every task's state, by id.
    pub fn task_states(&self) -> BTreeMap<String, TaskState> {
        self.tasks
            .iter()
            .map(|(id, t)| (id.clone(), t.state))
            .collect()
    }

    /// The registered agents.
    pub fn agents(&self) -> Vec<Upid> {
        self.agents.keys().cloned().collect()
    }

    fn now() -> Instant {
        Clock::current().now()
    }

    fn in_grace(&self) -> bool {
        self.started
            .is_some_and(|s| Self::now() < s + self.config.grace)
    }

    fn tick(&mut self, me: Pid<Master>) {
        let now = Self::now();
        let silent: Vec<Upid> = self
            .agents
            .iter()
            .filter(|(_, a)| now.saturating_duration_since(a.last_seen) > self.config.agent_timeout)
            .map(|(upid, _)| upid.clone())
            .collect();
        for agent in silent {
            self.agent_lost(&agent, "missed its heartbeats");
        }
        self.place();
        let next = me.clone();
        delay(Duration::from_secs(1), &me, move |m: &mut Master| {
            m.tick(next)
        });
    }

    fn register(&mut self, agent: &Upid, message: RegisterAgent) {
        let mut used = Resources::default();
        let reported: Vec<String> = message
            .tasks
            .iter()
            .map(|(spec, _, _)| spec.id.clone())
            .collect();
        for (spec, client, state) in message.tasks {
            match self.tasks.get_mut(&spec.id) {
                Some(task) if task.agent.as_ref() == Some(agent) && !task.state.is_final() => {
                    if state > task.state && !state.is_final() {
                        task.state = state;
                    }
                    used = used.plus(&spec.resources);
                }
                Some(_) => send(agent, KillTask { task: spec.id }),
                None => {
                    tracing::info!(task = %spec.id, %agent, %state, "task learned from its agent");
                    used = used.plus(&spec.resources);
                    let entry = TaskEntry {
                        spec: spec.clone(),
                        client: client.clone(),
                        output: None,
                        state,
                        message: "reported by its agent".to_owned(),
                        agent: Some(agent.clone()),
                        changed_at: Some(Self::now()),
                    };
                    self.tasks.insert(spec.id, entry);
                    self.clients.insert(client);
                }
            }
        }
        if !self.agents.contains_key(agent) {
            tracing::info!(%agent, resources = %message.resources, "agent registered");
            link(agent);
        }
        self.agents.insert(
            agent.clone(),
            AgentEntry {
                total: message.resources,
                free: message.resources.minus(&used),
                last_seen: Self::now(),
            },
        );
        send(agent, AgentRegistered {});
        self.check_agent_tasks(agent, &reported);
        self.place();
    }

    fn heartbeat(&mut self, agent: &Upid, beat: Heartbeat) {
        let Some(entry) = self.agents.get_mut(agent) else {
            send(agent, ReregisterAgent {});
            return;
        };
        entry.last_seen = Self::now();
        self.check_agent_tasks(agent, &beat.tasks);
    }

    /// Compares what `agent` says it has with what the master placed there: a launch it never
    /// got (the network lost it) goes again; a task it no longer has (it restarted) is LOST.
    /// Only tasks unchanged for a while, since a report may cross a launch or an update.
    fn check_agent_tasks(&mut self, agent: &Upid, reported: &[String]) {
        let now = Self::now();
        let known: BTreeSet<&String> = reported.iter().collect();
        let missing: Vec<(String, TaskState)> = self
            .tasks
            .iter()
            .filter(|(id, t)| {
                t.agent.as_ref() == Some(agent)
                    && !t.state.is_final()
                    && !known.contains(id)
                    && t.changed_at.is_some_and(|at| {
                        now.saturating_duration_since(at) > Duration::from_secs(2)
                    })
            })
            .map(|(id, t)| (id.clone(), t.state))
            .collect();
        for (id, state) in missing {
            let relaunch = state == TaskState::Staging
                && self.tasks.get(&id).is_some_and(|t| t.output.is_some());
            if relaunch {
                self.launch(&id);
                continue;
            }
            if let Some(task) = self.tasks.get_mut(&id) {
                task.state = TaskState::Lost;
                task.message = format!("its agent {agent} no longer has it (it restarted)");
                let need = task.spec.resources;
                if let Some(entry) = self.agents.get_mut(agent) {
                    entry.free = entry.free.plus(&need).min_of(&entry.total);
                }
            }
            self.notify(&id);
        }
    }

    fn status_update(&mut self, agent: &Upid, update: StatusUpdate) {
        let status = update.status;
        send(
            agent,
            StatusAck {
                task: status.task.clone(),
                state: status.state,
            },
        );
        let Some(task) = self.tasks.get_mut(&status.task) else {
            return;
        };
        if task.state.is_final() || task.agent.as_ref() != Some(agent) || status.state <= task.state
        {
            return;
        }
        tracing::info!(task = %status.task, %agent, state = %status.state, message = %status.message, "task update");
        task.state = status.state;
        task.message = status.message.clone();
        task.changed_at = Some(Self::now());
        if status.state.is_final() {
            let need = task.spec.resources;
            if let Some(entry) = self.agents.get_mut(agent) {
                entry.free = entry.free.plus(&need).min_of(&entry.total);
            }
        }
        self.notify(&status.task);
        self.place();
    }

    fn submit(&mut self, client: &Upid, submit: SubmitTask) {
        self.clients.insert(client.clone());
        let id = submit.task.id.clone();
        if self.tasks.contains_key(&id) {
            return self.notify(&id);
        }
        tracing::info!(task = %id, %client, program = %submit.task.program, "task submitted");
        let entry = TaskEntry {
            spec: submit.task,
            client: client.clone(),
            output: Some(submit.output),
            state: TaskState::Staging,
            message: "waiting for an agent".to_owned(),
            agent: None,
            changed_at: None,
        };
        self.tasks.insert(id.clone(), entry);
        self.queue.push_back(id.clone());
        self.notify(&id);
        self.place();
    }

    fn kill(&mut self, id: &str) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        match (&task.agent, task.state.is_final()) {
            (_, true) => {}
            (Some(agent), false) => send(
                agent,
                KillTask {
                    task: id.to_owned(),
                },
            ),
            (None, false) => {
                task.state = TaskState::Killed;
                task.message = "killed before it was placed".to_owned();
                self.queue.retain(|q| q != id);
                self.notify(id);
            }
        }
    }

    fn reconcile(&mut self, client: &Upid, tasks: Vec<String>) {
        for id in tasks {
            if self.tasks.contains_key(&id) {
                self.notify(&id);
            } else if !self.in_grace() {
                let status = TaskStatus {
                    task: id,
                    state: TaskState::Lost,
                    message: "the master does not know this task (it restarted)".to_owned(),
                    agent: None,
                };
                send(client, TaskUpdate { status });
            }
        }
    }

    /// Places queued tasks on the first agent with room, in order; fails those no agent could
    /// ever hold.
    fn place(&mut self) {
        if self.in_grace() {
            return;
        }
        let mut waiting = VecDeque::new();
        while let Some(id) = self.queue.pop_front() {
            let Some(task) = self.tasks.get(&id) else {
                continue;
            };
            let need = task.spec.resources;
            let room = self.agents.iter_mut().find(|(_, a)| a.free.fits(&need));
            if let Some((agent, entry)) = room {
                entry.free = entry.free.minus(&need);
                let agent = agent.clone();
                if let Some(task) = self.tasks.get_mut(&id) {
                    task.agent = Some(agent);
                }
                self.launch(&id);
            } else if !self.agents.is_empty() && !self.agents.values().any(|a| a.total.fits(&need))
            {
                let largest = self
                    .agents
                    .values()
                    .map(|a| a.total.to_string())
                    .collect::<Vec<_>>();
                if let Some(task) = self.tasks.get_mut(&id) {
                    task.state = TaskState::Failed;
                    task.message = format!(
                        "needs {need}, more than any agent has ({})",
                        largest.join("; ")
                    );
                }
                self.notify(&id);
            } else {
                waiting.push_back(id);
            }
        }
        self.queue = waiting;
    }

    fn launch(&mut self, id: &str) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        let (Some(agent), Some(output)) = (task.agent.clone(), task.output.clone()) else {
            return;
        };
        task.changed_at = Some(Self::now());
        tracing::info!(task = %id, %agent, "task launched");
        let launch = LaunchTask {
            task: task.spec.clone(),
            client: task.client.clone(),
            output,
        };
        send(&agent, launch);
    }

    fn agent_lost(&mut self, agent: &Upid, why: &str) {
        if self.agents.remove(agent).is_none() {
            return;
        }
        tracing::warn!(%agent, why, "agent lost");
        let lost: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.agent.as_ref() == Some(agent) && !t.state.is_final())
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            if let Some(task) = self.tasks.get_mut(&id) {
                task.state = TaskState::Lost;
                task.message = format!("its agent {agent} {why}");
            }
            self.notify(&id);
        }
    }

    fn notify(&self, id: &str) {
        let Some(task) = self.tasks.get(id) else {
            return;
        };
        let status = TaskStatus {
            task: id.to_owned(),
            state: task.state,
            message: task.message.clone(),
            agent: task.agent.clone(),
        };
        send(&task.client, TaskUpdate { status });
    }
}

impl Resources {
    fn min_of(&self, cap: &Resources) -> Resources {
        Resources::new(
            self.millicpus.min(cap.millicpus),
            self.mem_mib.min(cap.mem_mib),
        )
    }
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.started = Some(Self::now());
        let installed = [
            ctx.install(|m: &mut Self, from: &Upid, r: RegisterAgent| m.register(from, r)),
            ctx.install(|m: &mut Self, from: &Upid, b: Heartbeat| m.heartbeat(from, b)),
            ctx.install(|m: &mut Self, from: &Upid, u: StatusUpdate| m.status_update(from, u)),
            ctx.install(|m: &mut Self, from: &Upid, s: SubmitTask| m.submit(from, s)),
            ctx.install(|m: &mut Self, _: &Upid, k: KillTask| m.kill(&k.task)),
            ctx.install(|m: &mut Self, from: &Upid, r: Reconcile| m.reconcile(from, r.tasks)),
            ctx.install(|m: &mut Self, from: &Upid, _: Subscribe| {
                m.clients.insert(from.clone());
                send(from, Subscribed {});
            }),
            ctx.install(|m: &mut Self, from: &Upid, _: MetricsRequest| {
                send(from, MetricsReply { json: m.metrics() });
            }),
        ];
        for result in installed {
            if let Err(error) = result {
                tracing::error!(%error, "master could not install a handler");
            }
        }
        tracing::info!(master = %ctx.upid(), "master started");
        self.tick(ctx.pid());
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        self.agent_lost(upid, &format!("is gone ({reason})"));
    }
}
