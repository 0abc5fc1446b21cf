//! Process addresses: the typed [`Pid<P>`] and the untyped [`Upid`] (`id@ip:port`).
//!
//! A `Pid<P>` is what [`spawn`](crate::spawn) returns: one pointer to the process, typed so that
//! [`dispatch`](crate::dispatch) can run closures on `P`. A `Upid` is the address anyone can hold,
//! print, parse and send across the network; [`send`](crate::send) and [`link`](crate::link) take
//! it, and a `Pid` converts to one.
//!
//! ```
//! use procession::Upid;
//!
//! let upid: Upid = "master@127.0.0.1:5050".parse().unwrap();
//! assert_eq!(upid.id(), "master");
//! assert_eq!(upid.to_string(), "master@127.0.0.1:5050");
//! assert_eq!("worker(1)@[::1]:80".parse::<Upid>().unwrap().address().port(), 80);
//! assert!("no-address".parse::<Upid>().is_err());
//!
//! // A Upid a runtime hands out also names the run of its runtime, its incarnation:
//! let stale: Upid = "worker(1)@127.0.0.1:5050#2a".parse().unwrap();
//! assert_eq!(stale.incarnation(), Some(0x2a));
//! assert_eq!(stale.to_string(), "worker(1)@127.0.0.1:5050");
//! assert_eq!(format!("{stale:#}"), "worker(1)@127.0.0.1:5050#2a");
//! assert_eq!(stale, "worker(1)@127.0.0.1:5050".parse().unwrap());
//! ```
//!
//! # Contract
//!
//! Ids are unique within a runtime while the process lives; a generated id is never reused by
//! that runtime. A runtime without a transport still has an address of its own
//! (in `0.0.0.0/8`, unique within the OS process), so Upids of two runtimes never collide. Holding
//! a `Pid` or `Upid` does not keep a process running: a process lives until it is terminated.
//! Upids also carry their runtime's incarnation: see [`Upid`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::process::cell::ProcessCell;
use crate::process::Process;

/// The untyped address of a process: its id and its runtime's address, shown as `id@ip:port`,
/// and the incarnation of that runtime when it is known.
///
/// # Incarnations
///
/// Every runtime draws an *incarnation* when it starts (from its seed in the deterministic
/// mode), and every Upid it hands out carries it. A node that restarts on the same address is a
/// new incarnation, and its generated ids start again at 1, so `worker(1)` of the old run and
/// `worker(1)` of the new one would otherwise be the same address. An event for a Upid whose
/// incarnation is not its runtime's is treated as one for a process that is gone: a message is
/// dropped and counted, a link gets `exited(NotFound)`. A Upid written by hand or parsed from
/// `id@ip:port` has no incarnation and reaches whatever process has that id now — the way to
/// name a well-known process such as `master`.
///
/// The incarnation is not part of a Upid's identity: equality, hashing and ordering compare the
/// id and address only, so a Upid parsed from a command line equals the one its process sends
/// from. Display prints `id@ip:port`; the alternate form (`{:#}`), `Debug` and serde add
/// `#` and the incarnation in hex, and parsing accepts both forms.
#[derive(Clone)]
pub struct Upid {
    id: Arc<str>,
    address: SocketAddr,
    /// 0 when unknown: whichever run of the runtime holds the address.
    incarnation: u64,
}

impl Upid {
    /// The address of process `id` on the runtime at `address`, whichever incarnation of that
    /// runtime is running.
    pub fn new(id: impl Into<Arc<str>>, address: SocketAddr) -> Self {
        Upid::of_run(id, address, 0)
    }

    /// Process `id` of the run `incarnation` (0: any) of the runtime at `address`.
    pub(crate) fn of_run(
        id: impl Into<Arc<str>>,
        mut address: SocketAddr,
        incarnation: u64,
    ) -> Self {
        // An IPv6 flow label is not part of the text form: kept, a Upid would not equal itself
        // read back.
        if let SocketAddr::V6(v6) = &mut address {
            v6.set_flowinfo(0);
        }
        Upid {
            id: id.into(),
            address,
            incarnation,
        }
    }

    /// The incarnation of the runtime this Upid names a process of: `Some` for one a runtime
    /// handed out, `None` for one made by [`new`](Self::new) or parsed without one.
    pub fn incarnation(&self) -> Option<u64> {
        (self.incarnation != 0).then_some(self.incarnation)
    }

    /// Whether this Upid and `other` can name one process: equal, and of one run unless either
    /// does not say which.
    pub(crate) fn may_be(&self, other: &Upid) -> bool {
        self == other && (self.is_of_run(other.incarnation) || other.incarnation == 0)
    }

    /// Whether this Upid and `other` name one process of one run (both without an
    /// incarnation counts).
    pub(crate) fn is_same_run(&self, other: &Upid) -> bool {
        self == other && self.incarnation == other.incarnation
    }

    /// Whether this Upid can name a process of the run `incarnation`.
    pub(crate) fn is_of_run(&self, incarnation: u64) -> bool {
        self.incarnation == 0 || self.incarnation == incarnation
    }

    /// The process id, unique within its runtime.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address of the process's runtime.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// Equal when the ids and addresses are: the incarnation is not compared (module docs).
impl PartialEq for Upid {
    fn eq(&self, other: &Self) -> bool {
        // Clones of one Upid (a stream's receiver, a process's own) share their id's bytes.
        self.address == other.address && (Arc::ptr_eq(&self.id, &other.id) || self.id == other.id)
    }
}

impl Eq for Upid {}

impl Hash for Upid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.address.hash(state);
    }
}

impl PartialOrd for Upid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By id, then address.
impl Ord for Upid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.id, self.address).cmp(&(&other.id, other.address))
    }
}

/// `id@ip:port`; the alternate form (`{:#}`) adds `#` and the incarnation in hex, if known.
impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.address)?;
        if f.alternate() && self.incarnation != 0 {
            write!(f, "#{:x}", self.incarnation)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upid({self:#})")
    }
}

/// Why a string is not a [`Upid`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseUpidError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for ParseUpidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid process address {:?}: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for ParseUpidError {}

impl FromStr for Upid {
    type Err = ParseUpidError;

    /// Parses `id@ip:port` (`id@[v6]:port` for IPv6), optionally followed by `#` and a nonzero
    /// incarnation in hex; the id is everything before the last `@`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |reason| ParseUpidError {
            input: s.to_owned(),
            reason,
        };
        let (id, rest) = s
            .rsplit_once('@')
            .ok_or_else(|| error("expected id@ip:port"))?;
        if id.is_empty() {
            return Err(error("the id is empty"));
        }
        let (address, incarnation) = match rest.split_once('#') {
            None => (rest, 0),
            Some((address, hex)) => match u64::from_str_radix(hex, 16) {
                Ok(incarnation) if incarnation != 0 && !hex.starts_with('+') => {
                    (address, incarnation)
                }
                _ => return Err(error("the part after '#' is not a nonzero hex incarnation")),
            },
        };
        let address = address
            .parse()
            .map_err(|_| error("the part after '@' is not ip:port"))?;
        Ok(Upid::of_run(id, address, incarnation))
    }
}

/// The typed address of a process of type `P`: one pointer, cheap to clone.
///
/// It dispatches to the process without a table lookup and converts to a [`Upid`] with
/// [`upid`](Self::upid). Two `Pid`s are equal when they address the same process.
pub struct Pid<P: Process> {
    pub(crate) cell: Arc<ProcessCell<P>>,
}

impl<P: Process> Pid<P> {
    /// The process id.
    pub fn id(&self) -> &str {
        self.cell.id()
    }

    /// The untyped address, with the runtime's current address.
    pub fn upid(&self) -> Upid {
        self.cell.upid()
    }
}

impl<P: Process> Clone for Pid<P> {
    fn clone(&self) -> Self {
        Pid {
            cell: self.cell.clone(),
        }
    }
}

impl<P: Process> PartialEq for Pid<P> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl<P: Process> Eq for Pid<P> {}

impl<P: Process> Hash for Pid<P> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cell.id().hash(state);
    }
}

impl<P: Process> fmt::Display for Pid<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.upid(), f)
    }
}

impl<P: Process> fmt::Debug for Pid<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pid({})", self.upid())
    }
}

impl<P: Process> From<&Pid<P>> for Upid {
    fn from(pid: &Pid<P>) -> Self {
        pid.upid()
    }
}

impl<P: Process> From<Pid<P>> for Upid {
    fn from(pid: Pid<P>) -> Self {
        pid.upid()
    }
}

/// A Upid travels in messages as its full text, `id@ip:port#incarnation` (`id@ip:port` when it
/// has none).
impl serde::Serialize for Upid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{self:#}"))
    }
}

/// Parses the text form; a malformed one is a decoding error, never a panic.
impl<'de> serde::Deserialize<'de> for Upid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
