//! Request/reply on top of messages: [`request`] sends a [`Request`] to any [`Upid`], local or on
//! another node, and returns a [`Future`] of its answer, so a remote call reads like a local
//! [`dispatch`](crate::dispatch()).
//!
//! The answering process installs a handler with [`Context::install_request`]. Each request
//! carries an id its answer comes back under; the answers of a runtime go to one hidden process
//! of that runtime (spawned on the first request), which completes the futures.
//!
//! ```
//! use procession::request::{request, Request};
//! use procession::{Context, Message, Process, Runtime, Upid};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Message)]
//! struct Add(u64, u64);
//! impl Request for Add {
//!     type Response = u64;
//! }
//!
//! struct Adder;
//! impl Process for Adder {
//!     fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
//!         ctx.install_request(|_: &mut Self, _: &Upid, Add(a, b)| a + b).unwrap();
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let adder = runtime.spawn(Adder).upid();
//! let _entered = runtime.enter();
//! assert_eq!(runtime.block_on(request(&adder, Add(2, 3))).unwrap(), 5);
//! ```
//!
//! # Failures
//!
//! - The target ends, was never there, or its node is lost before it answers: the future ends
//!   abandoned (the runtime links to each target it asks). So does every pending request of a
//!   runtime that shuts down.
//! - The answer cannot be encoded or decoded: the future fails, naming why.
//! - The target has no request handler for it: the request is dropped and counted like any
//!   undeliverable message, and the future stays pending while the target lives. Requests are
//!   not time-limited by themselves; bound one with [`Future::after`](crate::Future::after).
//! - Discarding the future forgets the request: a late answer is dropped.
//! - The runtime's requester (the process answers come back to) is killed: its pending requests
//!   end abandoned, and the next request starts a new one. A request made while the old one is
//!   still ending, its name taken, ends abandoned at once. Ids go on across requesters, so a
//!   late answer to an abandoned request matches no later one.
//! - An answer whose sender is not the process asked under its id (a forgery, a stray) is
//!   dropped and counted; it completes nothing.
//!
//! A request travels under one message name of its own, [`ASKED`], with the request's name and
//! id before its body, and meets only handlers installed with `install_request`: a request to
//! a process that only [`install`](Context::install)ed a handler for the type (or has none) is
//! dropped and counted as one without a handler, and a request type sent with plain `send`
//! never reaches a request handler. Neither is ever decoded as the other. A filter (such as the
//! testkit's) sees a request as a message named [`ASKED`].

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::context;
use crate::event::{Body, ExitReason};
use crate::future::{Future, Promise};
use crate::message::{
    decode, deliver_as, encode, encode_value, post, send, shared_bytes, CodecError, Handler,
    Message,
};
use crate::pid::Upid;
use crate::process::{Context, Process};

/// A message that expects one answer of type [`Response`](Request::Response).
pub trait Request: Message {
    /// The answer's type.
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// Sends `request` to `to` from this runtime and returns a future of the answer; see the
/// [module docs](self) for how it fails.
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn request<R: Request>(to: &Upid, request: R) -> Future<R::Response> {
    let handle = context::expect_current("request");
    // A local target named by the runtime's in-process address (kept from before a transport
    // started) answers, and ends, under the current one: the one its answer is checked against.
    let current;
    let to = if handle.is_local(to.address()) && to.address() != handle.address() {
        current = Upid::of_run(to.id(), handle.address(), to.incarnation().unwrap_or(0));
        &current
    } else {
        to
    };
    let promise = Promise::new();
    let answer = promise.future();
    if handle.shutting_down.load(Ordering::SeqCst) {
        // Dropped unset: the future ends abandoned, as for a target that is gone.
        return answer;
    }
    let client = handle.requests(|current| match current {
        Some(client) if !client.pending.lock().closed => client.clone(),
        // First request, or the requester ended (killed, or failed): a new one, whose ids go on
        // from the old one's, so that a late answer to an abandoned request matches nothing.
        current => start(current.map_or(0, |old| old.next.load(Ordering::Relaxed))),
    });
    let id = client.next.fetch_add(1, Ordering::Relaxed);
    let complete: Complete = Box::new(move |ending| match ending {
        Ending::Answered(body) => match decode::<Answered<R::Response>>(&body) {
            Ok(Answered(value)) => promise.set(value),
            Err(error) => promise.fail(crate::Failure::from_error(error)),
        },
        Ending::Failed(failure) => promise.fail(failure),
        Ending::Discarded => promise.discard(),
    });
    {
        let mut pending = client.pending.lock();
        if pending.closed {
            // The requester ended meanwhile: nobody would take the answer.
            return answer;
        }
        let target = to.clone();
        pending.map.insert(id, Pending { target, complete });
    }
    // Weak: a pending request must not keep its runtime's requests alive.
    let forget = Arc::downgrade(&client);
    answer.when_discard(move || {
        let pending = forget
            .upgrade()
            .and_then(|client| client.pending.lock().map.remove(&id));
        if let Some(pending) = pending {
            (pending.complete)(Ending::Discarded);
        }
    });
    let requester = handle.upid(client.id.clone());
    post(&requester, &requester, Watch { target: to.clone() });
    let asked = Asked {
        name: R::NAME,
        id,
        request: Box::new(request),
    };
    deliver_as(&handle, &requester, to, ASKED, asked, encode_asked::<R>);
    answer
}

impl<P: Process> Context<'_, P> {
    /// Installs `handler` to answer requests of type `R` (see [`request`]); what it returns goes
    /// back to the runtime that asked. The handler's `from` is that runtime's requester (the
    /// process answers come back to), not the process that called [`request`]: put who asks in
    /// the request when the answerer needs to know.
    ///
    /// # Errors
    ///
    /// Refuses a second handler for `R`'s name, as [`install`](Context::install) does.
    pub fn install_request<R, F>(&mut self, mut handler: F) -> Result<(), crate::InstallError>
    where
        R: Request,
        F: FnMut(&mut P, &Upid, R) -> R::Response + Send + 'static,
    {
        let erased: Handler<P> = Box::new(move |process, from, body| {
            let (id, request) = match body {
                Body::Local(value) => {
                    let asked = value.downcast::<Asked>().map_err(|_| "not a request")?;
                    let request = asked.request.downcast::<R>().map_err(|_| {
                        format!("a local request named {:?} has another type", R::NAME)
                    })?;
                    (asked.id, *request)
                }
                Body::Encoded(bytes) => {
                    let (_, header) = name_prefix(bytes).ok_or("a request without a name")?;
                    let tail = decode::<Tail<R>>(&bytes[header..]).map_err(|e| e.to_string())?;
                    (tail.id, tail.request)
                }
            };
            let response = handler(process, from, request);
            let answer = match encode(&Answered(response)) {
                Ok(body) => Answer {
                    id,
                    body,
                    error: None,
                },
                Err(error) => Answer {
                    id,
                    body: Bytes::new(),
                    error: Some(error.to_string()),
                },
            };
            send(from, answer);
            Ok(())
        });
        self.handlers.install_request(R::NAME, erased)
    }
}

/// The message name every request travels under; its body starts with the request's own name.
pub const ASKED: &str = "procession::Asked";

/// A request between local processes: the request's name and id, and the request itself.
struct Asked {
    name: &'static str,
    id: u64,
    request: Box<dyn Any + Send>,
}

/// Encodes a local [`Asked`] holding an `R` for another node: the request's name, its id, then
/// the request, as bincode lays out a struct of the three.
fn encode_asked<R: Request>(
    value: &(dyn Any + Send),
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let invalid = || CodecError::new(R::NAME, "the value is not this request".into());
    let asked = value.downcast_ref::<Asked>().ok_or_else(invalid)?;
    let request = asked.request.downcast_ref::<R>().ok_or_else(invalid)?;
    encode_value(R::NAME, &(asked.name, asked.id, request), out)
}

/// What follows the name in an encoded request.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Tail<R: Request> {
    id: u64,
    request: R,
}

impl<R: Request> Message for Tail<R> {
    const NAME: &'static str = R::NAME;
}

/// An encoded request's name, and where the rest of it starts.
fn name_prefix(bytes: &[u8]) -> Option<(&str, usize)> {
    bincode::serde::borrow_decode_from_slice(bytes, crate::message::DECODE).ok()
}

/// The name of the request a body sent under [`ASKED`] carries, if it is one.
pub(crate) fn asked_name<'a>(body: &'a Body<'_>) -> Option<&'a str> {
    match body {
        Body::Local(value) => value.downcast_ref::<Asked>().map(|asked| asked.name),
        Body::Encoded(bytes) => name_prefix(bytes).map(|(name, _)| name),
    }
}

/// An answer, to the asking runtime's requester: the encoded response, or why there is none.
#[derive(Serialize, Deserialize)]
struct Answer {
    id: u64,
    #[serde(with = "shared_bytes")]
    body: Bytes,
    error: Option<String>,
}

impl Message for Answer {
    const NAME: &'static str = "procession::Answer";
}

/// A response value, encoded as a message body.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct Answered<T: Serialize + DeserializeOwned + Send + 'static>(T);

impl<T: Serialize + DeserializeOwned + Send + 'static> Message for Answered<T> {
    const NAME: &'static str = "procession::Answered";
}

/// Asks the requester to link to `target`, so its end abandons what was asked of it.
#[derive(Serialize, Deserialize)]
struct Watch {
    target: Upid,
}

impl Message for Watch {
    const NAME: &'static str = "procession::Watch";
}

/// Ends a request's future as `Ending` says; dropped, it abandons it.
type Complete = Box<dyn FnOnce(Ending) + Send>;

enum Ending {
    /// The answer's encoded body.
    Answered(Bytes),
    /// Why there is no answer.
    Failed(crate::Failure),
    /// The caller discarded the request.
    Discarded,
}

struct Pending {
    target: Upid,
    complete: Complete,
}

/// A runtime's side of its requests, shared by [`request`] and the requester process.
pub(crate) struct Client {
    /// The requester's id (its Upid is made with the runtime's current address, which changes
    /// when a transport starts).
    id: Arc<str>,
    next: AtomicU64,
    pending: Mutex<Pendings>,
}

#[derive(Default)]
struct Pendings {
    map: HashMap<u64, Pending>,
    /// The requester ended: nothing more is accepted.
    closed: bool,
}

impl Client {
    /// Accepts nothing more and abandons what is pending (outside the lock, and without letting
    /// a caller's callback unwind into the requester).
    fn close(&self) {
        let abandoned = {
            let mut pending = self.pending.lock();
            pending.closed = true;
            std::mem::take(&mut pending.map)
        };
        abandon(abandoned.into_values().collect());
    }
}

/// Drops `pending` (abandoning their futures), containing a panic in a caller's callback.
fn abandon(pending: Vec<Pending>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(pending))).is_err() {
        tracing::warn!("a callback on an abandoned request panicked");
    }
}

/// The requester's name: one per runtime.
const REQUESTER: &str = "procession::requester";

/// Spawns the current runtime's requester, numbering its requests from `first_id`.
fn start(first_id: u64) -> Arc<Client> {
    let client = Arc::new(Client {
        id: Arc::from(REQUESTER),
        next: AtomicU64::new(first_id),
        pending: Mutex::new(Pendings::default()),
    });
    let requester = Requester {
        client: client.clone(),
        watched: HashSet::new(),
    };
    if let Err(error) = crate::spawn_named(REQUESTER, requester) {
        // The name is still taken by an ending requester, or the runtime is shutting down:
        // this request is abandoned and the next one tries again.
        tracing::warn!(%error, "the runtime's requester could not start");
        client.close();
    }
    client
}

/// Receives a runtime's answers and the ends of the processes it asked.
struct Requester {
    client: Arc<Client>,
    /// The processes linked to, each with the run it was asked as (two runs of a node's
    /// `worker(1)` are two processes).
    watched: HashSet<(Upid, Option<u64>)>,
}

impl Process for Requester {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let installed = ctx
            .install(|me: &mut Self, from: &Upid, answer: Answer| {
                let pending = {
                    let mut pendings = me.client.pending.lock();
                    match pendings.map.get(&answer.id) {
                        Some(pending) if pending.target.may_be(from) => {
                            pendings.map.remove(&answer.id)
                        }
                        _ => None,
                    }
                };
                let Some(pending) = pending else {
                    // Nothing asked `from` under this id: a forgery, or a stray from another
                    // run of this node. Only the process asked answers a request.
                    if let (Some(handle), Some(me)) = (context::current(), context::current_upid())
                    {
                        handle.drop_message(
                            &me,
                            Answer::NAME,
                            "an answer nothing asked its sender for",
                        );
                    }
                    return;
                };
                let outcome = match answer.error {
                    None => Ending::Answered(answer.body),
                    Some(error) => Ending::Failed(crate::Failure::new(error)),
                };
                // Completing runs the caller's callbacks here: a panic in one must not end
                // the process every later answer of this runtime comes back to.
                let completed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    (pending.complete)(outcome)
                }));
                if completed.is_err() {
                    tracing::warn!("a callback on a request's answer panicked");
                }
            })
            .and_then(|()| {
                ctx.install(|me: &mut Self, _: &Upid, Watch { target }| {
                    if me.watched.insert((target.clone(), target.incarnation())) {
                        crate::link(&target);
                    }
                })
            });
        if let Err(error) = installed {
            tracing::error!(%error, "the requester could not install its handlers");
        }
    }

    fn exited(&mut self, _: &mut Context<'_, Self>, upid: &Upid, reason: &ExitReason) {
        // The end of one run of the process is not the end of what was asked of another.
        let ended = |target: &Upid| crate::handle::notice_ends(target, upid, reason);
        self.watched.retain(|(target, _)| !ended(target));
        let abandoned: Vec<Pending> = {
            let mut pending = self.client.pending.lock();
            let ids: Vec<u64> = pending
                .map
                .iter()
                .filter(|(_, p)| ended(&p.target))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| pending.map.remove(id)).collect()
        };
        abandon(abandoned);
    }
}

/// However the requester ends — finalized, panicked, abandoned at a shutdown's deadline — what
/// it was waiting for is abandoned and its client takes nothing more.
impl Drop for Requester {
    fn drop(&mut self) {
        self.client.close();
    }
}
