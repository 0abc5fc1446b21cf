//! `Owned<T>`: a value with one owner, carried through shared futures.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

/// A value with one owner (a lock guard, a pipe end, a child process) that can travel inside a
/// shared [`Future`](crate::Future): every clone refers to the same slot, and [`take`](Self::take)
/// hands the value out exactly once.
///
/// A forgotten clone therefore never keeps the value alive past its `take`.
///
/// ```
/// use procession::Owned;
///
/// let owned = Owned::new(String::from("guard"));
/// let other = owned.clone();
/// assert_eq!(other.take().as_deref(), Some("guard"));
/// assert_eq!(owned.take(), None);
/// ```
pub struct Owned<T> {
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> Owned<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Owned {
            slot: Arc::new(Mutex::new(Some(value))),
        }
    }

    /// Hands the value out; `None` if a clone already took it.
    pub fn take(&self) -> Option<T> {
        self.slot.lock().take()
    }

    /// Whether the value is still there to take.
    pub fn is_taken(&self) -> bool {
        self.slot.lock().is_none()
    }
}

impl<T> Clone for Owned<T> {
    fn clone(&self) -> Self {
        Owned {
            slot: self.slot.clone(),
        }
    }
}

impl<T> fmt::Debug for Owned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owned")
            .field("taken", &self.is_taken())
            .finish()
    }
}
