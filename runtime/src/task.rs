//! Engine: a Rust `async` computation driven on procession's workers, completing a [`Future`].
//!
//! # Protocol
//!
//! `scheduled` is set by the waker that finds it clear (that waker counts one unit of work for
//! settle and hands the task to the scheduler) and cleared by the runner just before it polls,
//! so a wake during the poll schedules the task again. The runner finishes the unit after the
//! poll. A discard request on the task's future wakes the task; the next run drops the Rust
//! future (cancelling it) and ends the task's future discarded.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

use crate::error::Failure;
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::scheduler::Runnable;

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

struct Task<T: Send + Sync + 'static> {
    name: Arc<str>,
    handle: Handle,
    scheduled: AtomicBool,
    state: Mutex<Option<Job<T>>>,
}

/// The computation and the promise its outcome completes; taken out when it finishes.
type Job<T> = (BoxFuture<Result<T, Failure>>, Promise<T>);

/// Drives `future` on `handle`'s workers; the returned future completes with its output.
pub(crate) fn spawn<F>(handle: &Handle, future: F) -> Future<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + Sync + 'static,
{
    spawn_try(handle, async move { Ok(future.await) })
}

/// Drives `future` on `handle`'s workers; the returned future completes with its value or
/// fails with its failure.
pub(crate) fn spawn_try<F, T>(handle: &Handle, future: F) -> Future<T>
where
    F: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + Sync + 'static,
{
    let promise = Promise::new();
    let output = promise.future();
    let task = Arc::new(Task {
        name: handle.next_task_name(),
        handle: handle.clone(),
        scheduled: AtomicBool::new(false),
        state: Mutex::new(Some((Box::pin(future), promise))),
    });
    let weak: Weak<Task<T>> = Arc::downgrade(&task);
    output.when_discard(move || {
        if let Some(task) = weak.upgrade() {
            task.wake();
        }
    });
    task.wake();
    output
}

impl<T: Send + Sync + 'static> Wake for Task<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.handle.quiesce().started();
            self.handle.scheduler().schedule_task(self.clone());
        }
    }
}

impl<T: Send + Sync + 'static> Runnable for Task<T> {
    fn run(self: Arc<Self>) {
        self.scheduled.store(false, Ordering::Release);
        let mut state = self.state.lock();
        if let Some((future, promise)) = state.as_mut() {
            if promise.has_discard() {
                let (future, promise) = state.take().expect("checked above");
                drop(state);
                drop(future);
                promise.discard();
            } else {
                // Sockets and timers created inside the future register with the I/O driver.
                let _io = self.handle.io().enter();
                let waker = Waker::from(self.clone());
                let poll =
                    crate::future::catch(|| future.as_mut().poll(&mut Context::from_waker(&waker)));
                match poll {
                    Ok(Poll::Pending) => drop(state),
                    Ok(Poll::Ready(Ok(value))) => {
                        let (future, promise) = state.take().expect("checked above");
                        // Dropping the future may run arbitrary code: not under the lock.
                        drop(state);
                        drop(future);
                        promise.set(value);
                    }
                    Ok(Poll::Ready(Err(failure))) | Err(failure) => {
                        let (future, promise) = state.take().expect("checked above");
                        // Dropping the future may run arbitrary code: not under the lock.
                        drop(state);
                        drop(future);
                        promise.fail(failure);
                    }
                }
            }
        } else {
            drop(state);
        }
        self.handle.quiesce().finished();
    }

    fn name(&self) -> &Arc<str> {
        &self.name
    }
}
