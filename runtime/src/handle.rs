//! Engine: [`Handle`], the cloneable reference to one runtime's shared parts. It is what the
//! thread-local current runtime holds, what every process cell keeps, and the one place where an
//! event is routed to a local process or to the transport.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use crate::address::Address;
use crate::context;
use crate::event::{Envelope, ExitReason, Payload};
use crate::filter::FilterPoint;
use crate::future::Promise;
use crate::metrics::Registry;
use crate::pid::Upid;
use crate::process::table::Table;
use crate::quiesce::Quiesce;
use crate::scheduler::Scheduler;
use crate::timer::Timers;
use crate::transport::{Encoder, Erased, InboundRun, Outgoing, Transport};

pub(crate) type Handle = Arc<Shared>;

/// Why a message for a local Upid no process answers to is dropped.
const GONE: &str = "unknown process, or one of an earlier incarnation";

/// Who watches each remote process, each with the Upid it asked about (its run, when that
/// names one: a process of two runs of a node is two processes, under one key).
type Watchers<T> = HashMap<Upid, Vec<(T, Upid)>>;

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) name: Arc<str>,
    /// The in-process address every runtime has, transport or not.
    local_address: SocketAddr,
    /// The address Upids carry: the transport's once it listens.
    address: Address,
    /// This run of the runtime, carried by its Upids (never 0).
    pub(crate) incarnation: u64,
    table: Table,
    scheduler: Scheduler,
    timers: Timers,
    quiesce: Quiesce,
    filter: FilterPoint,
    transport: RwLock<Option<Arc<dyn Transport>>>,
    /// Local linkers of remote processes, by remote process, so a lost peer can be reported.
    remote_links: Mutex<Watchers<Upid>>,
    /// Monitors of remote processes, by remote process.
    remote_monitors: Mutex<Watchers<Promise<ExitReason>>>,
    /// The I/O driver, owned here so shutdown can stop it; `io_handle` reaches it without a lock.
    io: Mutex<Option<tokio::runtime::Runtime>>,
    io_handle: OnceLock<tokio::runtime::Handle>,
    pub(crate) shutting_down: AtomicBool,
    dropped_messages: AtomicU64,
    dropped_at_bound: AtomicU64,
    /// Processes ended by a panic (`Stats::panicked`), so a test harness can fail on one.
    panicked: AtomicU64,
    next_task: AtomicU64,
    /// The metrics registered by name (`Runtime::metrics`).
    metrics: Registry,
    /// Child processes started and not yet reaped.
    #[cfg(unix)]
    children: crate::subprocess::Children,
    /// What starts child processes instead of the OS, when installed.
    #[cfg(unix)]
    launcher: RwLock<Option<Arc<dyn crate::subprocess::Launcher>>>,
    /// The requests this runtime made, started with the first (`request`).
    requests: Mutex<Option<Arc<crate::request::Client>>>,
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        name: Arc<str>,
        local_address: SocketAddr,
        incarnation: u64,
        scheduler: Scheduler,
        quiesce: Quiesce,
        paused: Option<std::time::Instant>,
    ) -> Self {
        Shared {
            id,
            name,
            local_address,
            address: Address::new(local_address),
            incarnation,
            table: Table::new(),
            scheduler,
            timers: Timers::new(paused),
            quiesce,
            filter: FilterPoint::default(),
            transport: RwLock::new(None),
            remote_links: Mutex::new(HashMap::new()),
            remote_monitors: Mutex::new(HashMap::new()),
            io: Mutex::new(None),
            io_handle: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            dropped_messages: AtomicU64::new(0),
            dropped_at_bound: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            next_task: AtomicU64::new(1),
            metrics: Registry::default(),
            #[cfg(unix)]
            children: Default::default(),
            #[cfg(unix)]
            launcher: RwLock::new(None),
            requests: Mutex::new(None),
        }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address.get()
    }

    pub(crate) fn set_address(&self, address: SocketAddr) {
        self.address.set(address);
    }

    pub(crate) fn is_local(&self, address: SocketAddr) -> bool {
        address == self.local_address || address == self.address()
    }

    /// The Upid of this runtime's process `id`.
    pub(crate) fn upid(&self, id: impl Into<Arc<str>>) -> Upid {
        Upid::of_run(id, self.address(), self.incarnation)
    }

    /// The local process `upid` names, if it runs: one of an earlier incarnation of this
    /// runtime's address is gone, whatever now has its id.
    pub(crate) fn process(&self, upid: &Upid) -> Option<Arc<dyn crate::process::cell::AnyCell>> {
        upid.is_of_run(self.incarnation)
            .then(|| self.table.get(upid.id()))
            .flatten()
    }

    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    pub(crate) fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub(crate) fn timers(&self) -> &Timers {
        &self.timers
    }

    pub(crate) fn quiesce(&self) -> &Quiesce {
        &self.quiesce
    }

    pub(crate) fn filter(&self) -> &FilterPoint {
        &self.filter
    }

    pub(crate) fn metrics(&self) -> &Registry {
        &self.metrics
    }

    #[cfg(unix)]
    pub(crate) fn children(&self) -> &crate::subprocess::Children {
        &self.children
    }

    #[cfg(unix)]
    pub(crate) fn launcher(&self) -> Option<Arc<dyn crate::subprocess::Launcher>> {
        self.launcher.read().clone()
    }

    #[cfg(unix)]
    pub(crate) fn set_launcher(&self, launcher: Option<Arc<dyn crate::subprocess::Launcher>>) {
        *self.launcher.write() = launcher;
    }

    /// This runtime's requests: what `pick` makes of the current ones (none before the first).
    pub(crate) fn requests(
        &self,
        pick: impl FnOnce(Option<&Arc<crate::request::Client>>) -> Arc<crate::request::Client>,
    ) -> Arc<crate::request::Client> {
        let mut requests = self.requests.lock();
        let client = pick(requests.as_ref());
        *requests = Some(client.clone());
        client
    }

    pub(crate) fn transport(&self) -> Option<Arc<dyn Transport>> {
        self.transport.read().clone()
    }

    pub(crate) fn set_transport(&self, transport: Option<Arc<dyn Transport>>) {
        *self.transport.write() = transport;
    }

    pub(crate) fn next_task_name(&self) -> Arc<str> {
        format!("task({})", self.next_task.fetch_add(1, Ordering::Relaxed)).into()
    }

    /// The tokio runtime that drives sockets, child processes and blocking jobs, built on first
    /// use with one I/O thread.
    pub(crate) fn io(&self) -> &tokio::runtime::Handle {
        self.io_handle.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("{}-io", self.name))
                .enable_all()
                .build()
                .expect("building the I/O driver (a tokio runtime) failed");
            let handle = runtime.handle().clone();
            *self.io.lock() = Some(runtime);
            handle
        })
    }

    /// Stops the I/O driver without waiting for its tasks (shutdown, after every process ended).
    pub(crate) fn stop_io(&self) {
        if let Some(io) = self.io.lock().take() {
            io.shutdown_background();
        }
    }

    /// Counts (and logs) a message that could not be delivered.
    pub(crate) fn drop_message(&self, to: &Upid, name: &str, why: &'static str) {
        self.dropped_messages.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(runtime = %self.name, %to, message = name, reason = why, "message dropped");
    }

    pub(crate) fn dropped_messages(&self) -> u64 {
        self.dropped_messages.load(Ordering::Relaxed)
    }

    /// Counts an event dropped at a full mailbox (a `cast` or message that chose to drop).
    pub(crate) fn count_dropped_at_bound(&self) {
        self.dropped_at_bound.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped_at_bound(&self) -> u64 {
        self.dropped_at_bound.load(Ordering::Relaxed)
    }

    /// Counts a process that a panic ended.
    pub(crate) fn count_panicked(&self) {
        self.panicked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn panicked(&self) -> u64 {
        self.panicked.load(Ordering::Relaxed)
    }

    /// Delivers a message to a local process, or hands it to the transport.
    ///
    /// A local value bound for another node is encoded by the transport with `encoder` (the
    /// caller knows its type); encoded bytes travel as they are.
    pub(crate) fn route(&self, to: &Upid, envelope: Envelope, encoder: Encoder) {
        if !self.is_local(to.address()) {
            let from = &envelope.from;
            match &envelope.body {
                Payload::Encoded { name, bytes } => {
                    self.send_remote(from, to, &Outgoing::encoded(name, bytes));
                }
                Payload::Local { name, value } => {
                    let value = Erased(&**value, encoder);
                    self.send_remote(from, to, &Outgoing::value(name, &value));
                }
            }
            return;
        }
        let name = envelope.body.shared_name();
        match self.process(to) {
            Some(cell) => {
                if !cell.deliver_message(envelope) {
                    self.drop_message(to, &name, "receiver gone or filtered");
                }
            }
            None => self.drop_message(to, &name, GONE),
        }
    }

    /// Hands `message` for remote `to` to the transport (which encodes it), or drops it.
    pub(crate) fn send_remote(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>) {
        context::with_transport(self, |transport, may_wait| {
            self.hand_over(transport, may_wait, (from, to), message);
        });
    }

    /// [`send_remote`](Self::send_remote) from the running handler of one of this runtime's
    /// processes, as [`context::current_sender`] found it.
    pub(crate) fn send_remote_from_handler(&self, from: &Upid, to: &Upid, message: &Outgoing<'_>) {
        context::with_handler_transport(self, |transport, may_wait| {
            self.hand_over(transport, may_wait, (from, to), message);
        });
    }

    fn hand_over(
        &self,
        transport: Option<&Arc<dyn Transport>>,
        may_wait: bool,
        (from, to): (&Upid, &Upid),
        message: &Outgoing<'_>,
    ) {
        match transport {
            Some(transport) => {
                message.let_wait(may_wait);
                transport.send(from, to, message);
            }
            None => self.drop_message(to, message.name(), "remote address and no transport"),
        }
    }

    /// Delivers a message that arrived from a transport to local `to`, or drops and counts it.
    pub(crate) fn route_received(&self, to: &Upid, envelope: Envelope) {
        let name = envelope.body.shared_name();
        match self.receiver(to) {
            Ok(cell) => {
                if !cell.deliver_message(envelope) {
                    self.drop_message(to, &name, "receiver gone or filtered");
                }
            }
            Err(why) => self.drop_message(to, &name, why),
        }
    }

    /// Delivers a run of messages that arrived from a transport to local `to`, in order, or
    /// drops and counts each.
    pub(crate) fn route_run(&self, to: &Upid, run: InboundRun) {
        let name = run.name.clone();
        let mut refused = |_: &str| self.drop_message(to, &name, "receiver gone or filtered");
        match self.receiver(to) {
            Ok(cell) => cell.deliver_run(run, &mut refused),
            Err(why) => (0..run.len()).for_each(|_| self.drop_message(to, &name, why)),
        }
    }

    /// The local process a transport's message for `to` goes to, or why there is none.
    fn receiver(&self, to: &Upid) -> Result<Arc<dyn crate::process::cell::AnyCell>, &'static str> {
        if !self.is_local(to.address()) {
            return Err("arrived for a process of another node");
        }
        self.process(to).ok_or(GONE)
    }

    /// Tells `linker` that `upid` ended.
    pub(crate) fn notify_exited(&self, linker: &Upid, upid: &Upid, reason: &ExitReason) {
        if self.is_local(linker.address()) {
            if let Some(cell) = self.process(linker) {
                cell.deliver_exited(upid.clone(), reason.clone());
            }
        } else if let Some(transport) = self.transport() {
            transport.exited(linker, upid, reason);
        }
    }

    /// Links local `linker` to remote `to` through the transport.
    pub(crate) fn link_remote(&self, linker: Upid, to: &Upid) {
        let Some(transport) = self.transport() else {
            self.notify_exited(&linker, to, &ExitReason::Lost);
            return;
        };
        {
            let mut links = self.remote_links.lock();
            let linkers = links.entry(to.clone()).or_default();
            if linkers
                .iter()
                .any(|(l, t)| *l == linker && t.is_same_run(to))
            {
                return;
            }
            linkers.push((linker.clone(), to.clone()));
        }
        transport.link(&linker, to);
    }

    /// Watches remote `upid` for a monitor: the transport reports its end like a link's.
    pub(crate) fn monitor_remote(&self, upid: &Upid, monitor: Promise<ExitReason>) {
        let Some(transport) = self.transport() else {
            monitor.set(ExitReason::Lost);
            return;
        };
        let first = {
            let mut monitors = self.remote_monitors.lock();
            let watchers = monitors.entry(upid.clone()).or_default();
            let first = !watchers.iter().any(|(_, t)| t.is_same_run(upid));
            watchers.push((monitor, upid.clone()));
            first
        };
        if first {
            transport.link(&self.upid("monitor"), upid);
        }
    }

    /// Remote `upid` ended: tells each local linker and monitor of it once, unless it asked
    /// about another run of `upid`'s node (see [`notice_ends`]).
    pub(crate) fn remote_exited(&self, upid: &Upid, reason: &ExitReason) {
        self.end_remote(upid, reason, Some(upid), |target| {
            notice_ends(target, upid, reason)
        });
    }

    /// Every process at `address` is unreachable: tells their local linkers and monitors they
    /// were lost, each with the Upid it asked about.
    pub(crate) fn peer_lost(&self, address: SocketAddr) {
        let on_peer = |upid: &&Upid| upid.address() == address;
        let mut lost: Vec<Upid> = self
            .remote_links
            .lock()
            .keys()
            .filter(on_peer)
            .cloned()
            .collect();
        lost.extend(self.remote_monitors.lock().keys().filter(on_peer).cloned());
        lost.sort();
        lost.dedup();
        for upid in lost {
            self.end_remote(&upid, &ExitReason::Lost, None, |_| true);
        }
    }

    /// Ends the links and monitors of `upid` whose target `ended` says, reporting `reported`
    /// (or each one's target) as the process that ended.
    fn end_remote(
        &self,
        upid: &Upid,
        reason: &ExitReason,
        reported: Option<&Upid>,
        ended: impl Fn(&Upid) -> bool,
    ) {
        let mut linkers = take_ended(&mut self.remote_links.lock(), upid, &ended);
        if reported.is_some() {
            // One notice, once to each linker (one may have linked to two names of it).
            linkers.sort_by(|a, b| a.0.cmp(&b.0));
            linkers.dedup_by(|a, b| a.0 == b.0);
        }
        for (linker, target) in linkers {
            self.notify_exited(&linker, reported.unwrap_or(&target), reason);
        }
        let monitors = take_ended(&mut self.remote_monitors.lock(), upid, &ended);
        for (monitor, _) in monitors {
            monitor.set(reason.clone());
        }
    }
}

/// Whether a notice that `upid` ended with `reason` ends a link to (or a watch of) `target`: a
/// notice ends what was asked of its run or of no run in particular, and a notice naming no run
/// ends what was asked of any — except that `NotFound` naming a run (the echo of a link to a
/// run that is gone) ends only what was asked of that run, not a live name.
pub(crate) fn notice_ends(target: &Upid, upid: &Upid, reason: &ExitReason) -> bool {
    match (reason, upid.incarnation()) {
        (ExitReason::NotFound, Some(_)) => target.is_same_run(upid),
        _ => target.may_be(upid),
    }
}

/// Removes and returns the entries for `upid` in `map` whose target `ended` says.
fn take_ended<T>(
    map: &mut Watchers<T>,
    upid: &Upid,
    ended: impl Fn(&Upid) -> bool,
) -> Vec<(T, Upid)> {
    let Some(entries) = map.get_mut(upid) else {
        return Vec::new();
    };
    let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(entries)
        .into_iter()
        .partition(|(_, target)| ended(target));
    if kept.is_empty() {
        map.remove(upid);
    } else {
        *entries = kept;
    }
    taken
}
