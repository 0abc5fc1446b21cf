//! The client (a framework, in Mesos' words): submits tasks and reads what happens through a
//! pull-style event source.
//!
//! [`Client::next`] gives the next [`Event`] — a task's update, the connection to the master
//! coming or going, or a note the program [announced](Client::announce) itself — so one loop
//! handles everything; `None` is the graceful end after [`Client::close`], and an error is
//! final (the client's runtime went away). The client reconnects by itself when the master
//! restarts, and keeps asking until each task is final: it repeats a submission until the
//! master has heard of it, then asks for its state (reconciliation).
//!
//! [`Client::submit`] gives a [`Submission`]: the future of the task's final status and the
//! readers of its stdout and stderr, streamed from the agent as the task runs. Discarding the
//! status future kills the task on its agent.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use procession::pipe::Reader;
use procession::{
    cast, delay, link, send, Context, ExitReason, Future, Pid, Process, Promise, Queue, Upid,
};
use procession_net::pipe::remote_pipe;

use crate::protocol::*;

/// What the client's event source gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A task changed state (each state of a task once, in order).
    Update(TaskStatus),
    /// Subscribed to the master (again, after it restarted or a partition healed).
    Connected,
    /// The connection to the master broke; the client reconnects by itself.
    Disconnected,
    /// Something the program announced itself.
    Note(String),
}

#[derive(Clone)]
enum Item {
    Event(Event),
    End,
}

/// A submitted task: its final status to come, and its output as it runs.
pub struct Submission {
    /// The final status (FINISHED, FAILED, KILLED or LOST). Discarding it kills the task.
    pub status: Future<TaskStatus>,
    /// The task's stdout.
    pub stdout: Reader,
    /// The task's stderr.
    pub stderr: Reader,
}

/// A client of the master at one address; see the [module docs](self).
#[derive(Clone)]
pub struct Client {
    pid: Pid<ClientProcess>,
    events: Queue<Item>,
}

impl Client {
    /// Starts a client of `master` on the current runtime.
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current.
    pub fn start(master: Upid) -> Client {
        let events = Queue::new();
        let pid = procession::spawn(ClientProcess {
            master,
            me: None,
            subscribed: false,
            linked: false,
            tasks: BTreeMap::new(),
            events: events.clone(),
            metrics: VecDeque::new(),
        });
        Client { pid, events }
    }

    /// Submits `task` (its id must be unique in the cluster): see [`Submission`].
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current (the output pipes' readers live on it).
    pub fn submit(&self, task: TaskSpec) -> Submission {
        let (stdout, out) = remote_pipe();
        let (stderr, err) = remote_pipe();
        let output = Output {
            stdout: out,
            stderr: err,
        };
        let promise = Promise::new();
        let status = promise.future();
        let pid = self.pid.clone();
        let id = task.id.clone();
        promise.on_discard(move || {
            cast(&pid, move |c: &mut ClientProcess| c.kill(&id));
        });
        cast(&self.pid, move |c: &mut ClientProcess| {
            c.submit(task, output, promise)
        });
        Submission {
            status,
            stdout,
            stderr,
        }
    }

    /// The next event; `None` after [`close`](Self::close) and the events before it.
    ///
    /// # Errors
    ///
    /// Fails (abandoned) if the client's runtime shut down: final.
    pub fn next(&self) -> Future<Option<Event>> {
        let events = self.events.clone();
        self.events.get().map(move |item| match item {
            Item::Event(event) => Some(event.clone()),
            Item::End => {
                // The end stays for every later call.
                events.put(Item::End);
                None
            }
        })
    }

    /// Puts `note` into this client's own event queue, after the events already there.
    pub fn announce(&self, note: impl Into<String>) {
        self.events.put(Item::Event(Event::Note(note.into())));
    }

    /// The master's metrics as JSON (agents, tasks by state).
    ///
    /// # Errors
    ///
    /// Abandoned if the client ends first; it waits while the master is unreachable (bound
    /// it with `after`).
    pub fn metrics(&self) -> Future<String> {
        let promise = Promise::new();
        let answer = promise.future();
        cast(&self.pid, move |c: &mut ClientProcess| {
            c.metrics.push_back(promise);
            send(&c.master, MetricsRequest {});
        });
        answer
    }

    /// Ends the event source: after the events already queued, `next` gives `None`. Tasks
    /// still running go on; their futures end abandoned.
    pub fn close(&self) {
        self.events.put(Item::End);
        procession::terminate(&self.pid);
    }
}

struct Tracked {
    spec: TaskSpec,
    output: Output,
    /// Set until the final status is known (or the future was discarded).
    promise: Option<Promise<TaskStatus>>,
    /// The latest state heard; `None` until the master heard of the task.
    state: Option<TaskState>,
}

struct ClientProcess {
    master: Upid,
    me: Option<Pid<ClientProcess>>,
    subscribed: bool,
    linked: bool,
    tasks: BTreeMap<String, Tracked>,
    events: Queue<Item>,
    metrics: VecDeque<Promise<String>>,
}

impl ClientProcess {
    fn submit(&mut self, task: TaskSpec, output: Output, promise: Promise<TaskStatus>) {
        let id = task.id.clone();
        send(
            &self.master,
            SubmitTask {
                task: task.clone(),
                output: output.clone(),
            },
        );
        let tracked = Tracked {
            spec: task,
            output,
            promise: Some(promise),
            state: None,
        };
        self.tasks.insert(id, tracked);
    }

    fn kill(&mut self, id: &str) {
        if let Some(task) = self.tasks.get_mut(id) {
            if let Some(promise) = task.promise.take() {
                promise.discard();
            }
            send(
                &self.master,
                KillTask {
                    task: id.to_owned(),
                },
            );
        }
    }

    fn update(&mut self, status: TaskStatus) {
        let Some(task) = self.tasks.get_mut(&status.task) else {
            return;
        };
        if task
            .state
            .is_some_and(|s| s.is_final() || s >= status.state)
        {
            return;
        }
        let ran = task.state.is_some_and(|s| s >= TaskState::Running);
        task.state = Some(status.state);
        if status.state.is_final() {
            if let Some(promise) = task.promise.take() {
                promise.set(status.clone());
            }
            // A task the client never saw running may never have opened its output: end the
            // readers here. If its agent did open them, this open is refused, changing nothing.
            if !ran {
                task.output.stdout.clone().open().close();
                task.output.stderr.clone().open().close();
            }
        }
        self.events.put(Item::Event(Event::Update(status)));
    }

    /// Every second: subscribe while not subscribed, repeat what the master may not have
    /// heard, ask about what is not final.
    fn tick(&mut self) {
        if !self.subscribed {
            send(&self.master, Subscribe {});
        }
        let mut ask = Vec::new();
        for (id, task) in &self.tasks {
            match task.state {
                None => send(
                    &self.master,
                    SubmitTask {
                        task: task.spec.clone(),
                        output: task.output.clone(),
                    },
                ),
                Some(state) if !state.is_final() => ask.push(id.clone()),
                Some(_) => {}
            }
        }
        if !ask.is_empty() {
            send(&self.master, Reconcile { tasks: ask });
        }
        let me = self.me.clone().expect("set in initialize");
        delay(Duration::from_secs(1), &me, |c: &mut ClientProcess| {
            c.tick()
        });
    }

    fn subscribed(&mut self) {
        if !self.subscribed {
            self.subscribed = true;
            self.events.put(Item::Event(Event::Connected));
        }
        if !self.linked {
            self.linked = true;
            link(&self.master);
        }
    }
}

impl Process for ClientProcess {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
        let installed = [
            ctx.install(|c: &mut Self, _: &Upid, _: Subscribed| c.subscribed()),
            ctx.install(|c: &mut Self, _: &Upid, u: TaskUpdate| c.update(u.status)),
            ctx.install(|c: &mut Self, _: &Upid, reply: MetricsReply| {
                if let Some(promise) = c.metrics.pop_front() {
                    promise.set(reply.json);
                }
            }),
        ];
        for result in installed {
            if let Err(error) = result {
                tracing::error!(%error, "client could not install a handler");
            }
        }
        self.tick();
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        if *upid == self.master {
            tracing::warn!(master = %upid, %reason, "master lost; reconnecting");
            self.subscribed = false;
            self.linked = false;
            self.events.put(Item::Event(Event::Disconnected));
        }
    }
}
