//! Engine: a FIFO line of pending promises, each withdrawable by the key its discard hook holds.
//!
//! The waiting side of [`Queue`](crate::Queue), [`Mutex`](crate::Mutex) and
//! [`RateLimiter`](crate::RateLimiter): a caller joins the line with a promise and gets a key;
//! the primitive serves the line from the front; a discard request withdraws the key's entry (a
//! no-op once it was served) and ends its future discarded. The owner keeps the line under its
//! own lock and completes or discards withdrawn promises only after releasing it.

use std::collections::VecDeque;

use crate::future::Promise;

pub(crate) struct Line<T: Send + Sync + 'static> {
    waiting: VecDeque<(u64, Promise<T>)>,
    next_key: u64,
}

impl<T: Send + Sync + 'static> Line<T> {
    pub(crate) fn new() -> Self {
        Line {
            waiting: VecDeque::new(),
            next_key: 0,
        }
    }

    /// Joins the line at the back; the key withdraws the entry.
    pub(crate) fn push(&mut self, promise: Promise<T>) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.waiting.push_back((key, promise));
        key
    }

    /// Serves the front of the line.
    pub(crate) fn pop(&mut self) -> Option<Promise<T>> {
        self.waiting.pop_front().map(|(_, promise)| promise)
    }

    /// Takes `key`'s entry out of the line, if it is still waiting.
    pub(crate) fn withdraw(&mut self, key: u64) -> Option<Promise<T>> {
        let index = self.waiting.iter().position(|(k, _)| *k == key)?;
        self.waiting.remove(index).map(|(_, promise)| promise)
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}
