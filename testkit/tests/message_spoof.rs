//! Spoofing, after Mesos's spoofed re-registration tests: capture an agent's registration,
//! then `post` it again as if from the agent's address (after the agent is gone, or with a
//! changed field) and check what the master makes of it.

use std::collections::BTreeMap;

use procession::{
    dispatch, post, send, terminate, wait, Context, Message, Pid, Process, Runtime, Upid,
};
use procession_testkit::{await_ready, drop_message, future_message, Match};
use serde::{Deserialize, Serialize};

/// An agent's registration: `id` is `None` for a new agent and the id it had for a returning one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Message)]
struct Register {
    hostname: String,
    id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Message)]
struct Registered {
    id: String,
}

#[derive(Default)]
struct Master {
    /// Registered agents by id: their address and hostname.
    agents: BTreeMap<String, (Upid, String)>,
    next_id: u32,
    /// Agents removed because a new registration came from their address.
    removed: Vec<String>,
    /// Re-registrations refused (unknown id, or another hostname).
    refused: u32,
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(Master::register).unwrap();
    }
}

impl Master {
    fn register(&mut self, from: &Upid, register: Register) {
        let id = match register.id {
            None => {
                // A new agent at the address of a registered one: that one failed to recover.
                let stale: Vec<_> = self
                    .agents
                    .iter()
                    .filter(|(_, (upid, _))| upid == from)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in stale {
                    self.agents.remove(&id);
                    self.removed.push(id);
                }
                self.next_id += 1;
                let id = format!("agent-{}", self.next_id);
                self.agents
                    .insert(id.clone(), (from.clone(), register.hostname));
                id
            }
            Some(id) => match self.agents.get_mut(&id) {
                Some((upid, hostname)) if *hostname == register.hostname => {
                    *upid = from.clone();
                    id
                }
                _ => {
                    self.refused += 1;
                    return;
                }
            },
        };
        send(from, Registered { id });
    }
}

/// Registers with the master when it starts and keeps the id it is given.
struct Agent {
    master: Upid,
    hostname: String,
    id: Option<String>,
}

impl Process for Agent {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|agent: &mut Self, _: &Upid, Registered { id }| agent.id = Some(id))
            .unwrap();
        let register = Register {
            hostname: self.hostname.clone(),
            id: self.id.clone(),
        };
        send(&self.master, register);
    }
}

fn agent(runtime: &Runtime, master: &Pid<Master>, id: Option<&str>) -> Pid<Agent> {
    runtime.spawn(Agent {
        master: master.upid(),
        hostname: "host-a".into(),
        id: id.map(str::to_owned),
    })
}

/// The master's view: agent ids with their address ids, and the removed ids.
fn view(runtime: &Runtime, master: &Pid<Master>) -> (Vec<(String, String)>, Vec<String>, u32) {
    runtime.clock().settle();
    await_ready(&dispatch(master, |m: &mut Master| {
        let agents = m
            .agents
            .iter()
            .map(|(id, (upid, _))| (id.clone(), upid.id().to_owned()))
            .collect();
        (agents, m.removed.clone(), m.refused)
    }))
}

/// An agent registers; it is gone; its registration arrives again from its address, as a new
/// agent that failed to recover would send it. The master must replace the old agent.
fn a_registration_replayed_from_a_gone_agent(runtime: &Runtime) {
    let master = runtime.spawn(Master::default());
    // Both filters go in before the agent starts: its registration and the reply may be
    // delivered before `spawn` returns. The reply is matched by its sender for that reason.
    let registration = future_message(runtime, Match::message::<Register>().to(&master));
    let registered = future_message(runtime, Match::message::<Registered>().from(&master));
    let agent = agent(runtime, &master, None);
    let caught = await_ready(&registration);
    assert_eq!(
        (caught.from.clone(), caught.message.id.clone()),
        (agent.upid(), None)
    );
    let reply = await_ready(&registered);
    assert_eq!(
        (reply.to, reply.message.id),
        (agent.upid(), "agent-1".to_owned())
    );

    terminate(&agent);
    await_ready(&wait(&agent));
    post(&caught.from, &caught.to, caught.message);

    let (agents, removed, refused) = view(runtime, &master);
    assert_eq!(agents, [("agent-2".to_owned(), agent.id().to_owned())]);
    assert_eq!((removed, refused), (vec!["agent-1".to_owned()], 0));
}

#[procession::test(paused)]
fn spoofed_registration_replaces_a_failed_agent(runtime: &Runtime) {
    a_registration_replayed_from_a_gone_agent(runtime);
}

#[test]
fn spoofed_registration_on_every_seed() {
    for seed in 0..30 {
        let runtime = Runtime::builder().deterministic(seed).build().unwrap();
        let _entered = runtime.enter();
        a_registration_replayed_from_a_gone_agent(&runtime);
    }
}

#[procession::test(paused)]
fn a_replay_with_a_changed_field_is_refused(runtime: &Runtime) {
    let master = runtime.spawn(Master::default());
    let registered = future_message(runtime, Match::message::<Registered>().from(&master));
    let first = agent(runtime, &master, None);
    let reply = await_ready(&registered);
    assert_eq!(
        (reply.to, reply.message.id),
        (first.upid(), "agent-1".to_owned())
    );

    // The agent restarts at a new address and re-registers; hold its registration back.
    let held = drop_message(runtime, Match::message::<Register>().to(&master));
    terminate(&first);
    let second = agent(runtime, &master, Some("agent-1"));
    let held = await_ready(&held);
    assert_eq!(held.from, second.upid());
    assert_eq!(
        view(runtime, &master).0[0].1,
        first.id(),
        "not re-registered yet"
    );

    // The same registration claiming another host is refused...
    let forged = Register {
        hostname: "host-b".into(),
        ..held.message.clone()
    };
    post(&held.from, &held.to, forged);
    let (agents, _, refused) = view(runtime, &master);
    assert_eq!((agents[0].1.as_str(), refused), (first.id(), 1));

    // ...and the one the agent sent is accepted, from its new address.
    let welcome = future_message(runtime, Match::message::<Registered>().to(&second));
    post(&held.from, &held.to, held.message);
    assert_eq!(await_ready(&welcome).message.id, "agent-1");
    let (agents, removed, refused) = view(runtime, &master);
    assert_eq!(agents, [("agent-1".to_owned(), second.id().to_owned())]);
    assert_eq!((removed.len(), refused), (0, 1));
}
