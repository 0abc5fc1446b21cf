//! `std::future::Future` interop: `.await` on a [`Future`].
//!
//! The other direction, a std future driven into a `Future<T>`, needs a runtime to poll it, so it
//! lives with the runtime ([`spawn_async`](crate::spawn_async)).

use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::callback::Callback;
use super::Future;
use crate::error::Error;

impl<T: Clone + Send + Sync + 'static> IntoFuture for Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Wait<T>;

    /// Awaiting gives a clone of the value, or the error. Dropping the awaiting Rust future does
    /// not discard this one: other handles may still want the result.
    fn into_future(self) -> Wait<T> {
        Wait {
            future: self,
            waker: None,
            key: None,
        }
    }
}

/// The `std::future::Future` that `.await` on a [`Future`] polls.
///
/// It registers one callback on the future, however often it is polled (a later poll only
/// updates the waker), and withdraws it when dropped, so awaits that are abandoned (a `select!`
/// in a loop) leave nothing behind on a long-pending future.
#[must_use = "futures do nothing unless polled"]
pub struct Wait<T: Send + Sync + 'static> {
    future: Future<T>,
    waker: Option<Arc<Mutex<Option<Waker>>>>,
    key: Option<u64>,
}

impl<T: Send + Sync + 'static> Drop for Wait<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.future.cell.remove_callback(key);
        }
    }
}

impl<T: Clone + Send + Sync + 'static> std::future::Future for Wait<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.future.outcome() {
            return Poll::Ready(outcome.clone());
        }
        match &self.waker {
            Some(slot) => {
                let mut slot = slot.lock();
                match &mut *slot {
                    Some(waker) => waker.clone_from(cx.waker()),
                    None => *slot = Some(cx.waker().clone()),
                }
            }
            None => {
                let slot = Arc::new(Mutex::new(Some(cx.waker().clone())));
                let wake = slot.clone();
                self.waker = Some(slot);
                self.key = self
                    .future
                    .cell
                    .on_complete_removable(Callback::new(move |_| {
                        if let Some(waker) = wake.lock().take() {
                            waker.wake();
                        }
                    }));
            }
        }
        // The callback may have run between the first check and the registration.
        match self.future.outcome() {
            Some(outcome) => Poll::Ready(outcome.clone()),
            None => Poll::Pending,
        }
    }
}

impl<T: Send + Sync + 'static> Unpin for Wait<T> {}

impl<T: Send + Sync + 'static> Future<T> {
    /// Blocks this thread until the future completes or `timeout` of real time passes; true if
    /// it completed. If the current runtime is deterministic, this thread runs its scheduler
    /// meanwhile (virtual time jumps to the next timer when nothing is runnable). Meant for
    /// tests and `main`; inside a process chain with `then` instead.
    ///
    /// # Panics
    ///
    /// Panics on one of the current runtime's workers or in one of its handlers: blocking there
    /// can deadlock it.
    pub fn wait_for(&self, timeout: std::time::Duration) -> bool {
        let runtime = crate::context::current();
        if let Some(handle) = &runtime {
            assert!(
                !crate::context::inside(handle.id),
                "Future::wait_for inside the current runtime (a worker or a handler) would block it; chain with `then`"
            );
        }
        let deadline = crate::timer::later(std::time::Instant::now(), timeout);
        let parker = crate::runtime::Parker::new();
        let waker = Waker::from(parker.clone());
        let key = self
            .cell
            .on_complete_removable(Callback::new(move |_| waker.wake()));
        let completed = parker.park(runtime.as_ref(), Some(deadline)) || !self.is_pending();
        if let Some(key) = key.filter(|_| !completed) {
            self.cell.remove_callback(key);
        }
        completed
    }
}
