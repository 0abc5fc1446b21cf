//! The one filter point every event passes before it is queued.
//!
//! A message, a dispatch or an `exited` notice addressed to a process of this runtime is shown to
//! the installed [`Filter`] (if any) just before it enters the mailbox; the filter lets it through
//! or drops it. The testkit builds its drop, capture and expectation helpers on this point (one
//! filter of its own per runtime, holding every expectation a test sets); most programs never
//! install a filter.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use procession::{dispatch, EventView, Filter, Process, Runtime, Verdict};
//!
//! struct DropDispatches(AtomicUsize);
//! impl Filter for DropDispatches {
//!     fn filter(&self, event: &EventView<'_>) -> Verdict {
//!         match event {
//!             EventView::Dispatch { .. } => {
//!                 self.0.fetch_add(1, Ordering::Relaxed);
//!                 Verdict::Drop
//!             }
//!             _ => Verdict::Deliver,
//!         }
//!     }
//! }
//!
//! struct Counter;
//! impl Process for Counter {}
//!
//! let runtime = Runtime::new();
//! let pid = runtime.spawn(Counter);
//! let filter = Arc::new(DropDispatches(AtomicUsize::new(0)));
//! runtime.set_filter(Some(filter.clone()));
//! let answer = dispatch(&pid, |_: &mut Counter| 1);
//! assert!(runtime.block_on(answer).unwrap_err().is_abandoned());
//! assert_eq!(filter.0.load(Ordering::Relaxed), 1);
//! ```
//!
//! # Contract
//!
//! With no filter installed the point costs one relaxed atomic load per event. The filter runs on
//! the sending thread, before the event is queued, and must not block. A dropped dispatch ends
//! abandoned; a dropped message or `exited` notice is gone. Filters are per runtime.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::event::{ExitReason, Payload};
use crate::pid::Upid;

/// What the filter point shows of an event.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventView<'a> {
    /// A message for an installed handler.
    Message {
        /// The sender (as the message claims).
        from: &'a Upid,
        /// The receiver.
        to: &'a Upid,
        /// The message name ([`Message::NAME`](crate::Message::NAME)).
        name: &'a str,
        /// The message itself.
        body: MessageBody<'a>,
    },
    /// A dispatch of a closure.
    Dispatch {
        /// The receiver.
        to: &'a Upid,
        /// The method name, for dispatches made through typed handles; `None` for a plain closure.
        method: Option<&'a str>,
    },
    /// An `exited` notice.
    Exited {
        /// The receiver (the linker).
        to: &'a Upid,
        /// The process that ended.
        upid: &'a Upid,
        /// Why it ended.
        reason: &'a ExitReason,
    },
}

/// A message body as the filter sees it.
#[derive(Debug)]
pub enum MessageBody<'a> {
    /// The value sent by a local process; downcast it to the message type.
    Local(&'a (dyn Any + Send)),
    /// The encoded bytes received from a transport.
    Encoded(&'a Bytes),
}

impl<'a> From<&'a Payload> for MessageBody<'a> {
    fn from(payload: &'a Payload) -> Self {
        match payload {
            Payload::Local { value, .. } => MessageBody::Local(&**value),
            Payload::Encoded { bytes, .. } => MessageBody::Encoded(bytes),
        }
    }
}

/// The filter's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Queue the event as usual.
    Deliver,
    /// Drop the event.
    Drop,
}

/// Sees every event addressed to a process of one runtime before it is queued.
pub trait Filter: Send + Sync + 'static {
    /// Decides the fate of `event`. Runs on the sending thread; must not block.
    fn filter(&self, event: &EventView<'_>) -> Verdict;
}

/// The runtime's filter slot.
#[derive(Default)]
pub(crate) struct FilterPoint {
    installed: AtomicBool,
    filter: RwLock<Option<Arc<dyn Filter>>>,
}

impl FilterPoint {
    pub(crate) fn set(&self, filter: Option<Arc<dyn Filter>>) {
        let replaced = {
            let mut slot = self.filter.write();
            self.installed.store(filter.is_some(), Ordering::Release);
            std::mem::replace(&mut *slot, filter)
        };
        // Dropped unlocked: the last handle to a filter may complete futures whose callbacks
        // send, and a send reads this slot.
        drop(replaced);
    }

    pub(crate) fn get(&self) -> Option<Arc<dyn Filter>> {
        self.filter.read().clone()
    }

    #[inline]
    pub(crate) fn is_installed(&self) -> bool {
        self.installed.load(Ordering::Relaxed)
    }

    pub(crate) fn allows(&self, event: &EventView<'_>) -> bool {
        let filter = self.filter.read().clone();
        match filter {
            Some(filter) => filter.filter(event) == Verdict::Deliver,
            None => true,
        }
    }
}
