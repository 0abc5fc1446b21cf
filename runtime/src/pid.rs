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
//! ```
//!
//! # Contract
//!
//! Ids are unique within a runtime while the process lives; a generated id is never reused by
//! that runtime. A runtime without a transport still has an address of its own
//! (in `0.0.0.0/8`, unique within the OS process), so Upids of two runtimes never collide. Holding
//! a `Pid` or `Upid` does not keep a process running: a process lives until it is terminated.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::process::cell::ProcessCell;
use crate::process::Process;

/// The untyped address of a process: its id and its runtime's address, shown as `id@ip:port`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upid {
    id: Arc<str>,
    address: SocketAddr,
}

impl Upid {
    /// The address of process `id` on the runtime at `address`.
    pub fn new(id: impl Into<Arc<str>>, address: SocketAddr) -> Self {
        Upid {
            id: id.into(),
            address,
        }
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

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.address)
    }
}

impl fmt::Debug for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upid({self})")
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

    /// Parses `id@ip:port` (`id@[v6]:port` for IPv6); the id is everything before the last `@`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |reason| ParseUpidError {
            input: s.to_owned(),
            reason,
        };
        let (id, address) = s
            .rsplit_once('@')
            .ok_or_else(|| error("expected id@ip:port"))?;
        if id.is_empty() {
            return Err(error("the id is empty"));
        }
        let address = address
            .parse()
            .map_err(|_| error("the part after '@' is not ip:port"))?;
        Ok(Upid::new(id, address))
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

/// A Upid travels in messages as its text, `id@ip:port`.
impl serde::Serialize for Upid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses the text form; a malformed one is a decoding error, never a panic.
impl<'de> serde::Deserialize<'de> for Upid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
