//! `loop_`: an asynchronous loop that neither grows the stack nor holds a lock across iterations.

use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::Mutex;

use super::chain::catch;
use super::{Future, Promise};

/// Repeats `iterate` then `body` until `body` answers [`ControlFlow::Break`], and completes with
/// the break value.
///
/// Each round calls `iterate()` for the next item and, once it is ready, `body(&item)` for the
/// decision. Rounds whose futures are already ready run in a plain loop, and a round that waits
/// resumes from the callback of the future it waited on, so a million rounds use constant stack.
/// Run the loop inside a process with [`defer`](crate::defer) in `iterate` or `body`.
///
/// # Errors
///
/// A failed, discarded or abandoned future from either closure ends the loop the same way; a
/// panic in either closure fails it.
///
/// # Discard
///
/// Discarding the result stops the loop: the future it waits on is discarded and no further
/// round starts; the result ends discarded.
///
/// # Examples
///
/// ```
/// use std::ops::ControlFlow;
/// use procession::{loop_, Future};
///
/// let mut n = 0u64;
/// let total = loop_(
///     move || { n += 1; Future::ready(n) },
///     |n: &u64| Future::ready(if *n == 1_000_000 { ControlFlow::Break(*n) } else { ControlFlow::Continue(()) }),
/// );
/// assert_eq!(total.get(), Some(1_000_000));
/// ```
pub fn loop_<T, R, I, B>(iterate: I, body: B) -> Future<R>
where
    T: Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
    I: FnMut() -> Future<T> + Send + 'static,
    B: FnMut(&T) -> Future<ControlFlow<R>> + Send + 'static,
{
    let promise = Promise::new();
    let output = promise.future();
    let state = Arc::new(Loop {
        inner: Mutex::new(Inner {
            iterate,
            body,
            promise: Some(promise),
            waiting_on: None,
            _item: PhantomData,
        }),
    });
    let weak = Arc::downgrade(&state);
    output.on_discard(move || {
        if let Some(state) = weak.upgrade() {
            let waiting = state.inner.lock().waiting_on.take();
            if let Some(discard) = waiting {
                discard();
            }
        }
    });
    Loop::run(state, Step::Iterate);
    output
}

struct Loop<T, R, I, B>
where
    T: Send + Sync + 'static,
    R: Send + Sync + 'static,
{
    inner: Mutex<Inner<T, R, I, B>>,
}

struct Inner<T: Send + Sync + 'static, R: Send + Sync + 'static, I, B> {
    iterate: I,
    body: B,
    promise: Option<Promise<R>>,
    /// Discards the future the loop waits on now.
    waiting_on: Option<Box<dyn FnOnce() + Send>>,
    _item: PhantomData<fn() -> T>,
}

enum Step<T: Send + Sync + 'static, R: Send + Sync + 'static> {
    Iterate,
    Item(Future<T>),
    Decision(Future<ControlFlow<R>>),
}

impl<T, R, I, B> Loop<T, R, I, B>
where
    T: Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
    I: FnMut() -> Future<T> + Send + 'static,
    B: FnMut(&T) -> Future<ControlFlow<R>> + Send + 'static,
{
    fn run(state: Arc<Self>, mut step: Step<T, R>) {
        loop {
            let mut inner = state.inner.lock();
            let Some(promise) = inner.promise.as_ref() else {
                return;
            };
            if promise.has_discard() {
                let promise = inner.promise.take().expect("checked above");
                drop(inner);
                promise.discard();
                return;
            }
            step = match step {
                Step::Iterate => match catch(&mut inner.iterate) {
                    Ok(item) => Step::Item(item),
                    Err(failure) => return Self::finish(inner, Err(failure.into())),
                },
                Step::Item(item) => match item.outcome() {
                    None => return Self::wait(state.clone(), inner, item, Step::Item),
                    Some(Err(error)) => return Self::finish(inner, Err(error.clone())),
                    Some(Ok(value)) => match catch(|| (inner.body)(value)) {
                        Ok(decision) => Step::Decision(decision),
                        Err(failure) => return Self::finish(inner, Err(failure.into())),
                    },
                },
                Step::Decision(decision) => match decision.outcome() {
                    None => return Self::wait(state.clone(), inner, decision, Step::Decision),
                    Some(Err(error)) => return Self::finish(inner, Err(error.clone())),
                    Some(Ok(ControlFlow::Break(value))) => {
                        return Self::finish(inner, Ok(value.clone()))
                    }
                    Some(Ok(ControlFlow::Continue(()))) => Step::Iterate,
                },
            };
        }
    }

    fn wait<U: Send + Sync + 'static>(
        state: Arc<Self>,
        mut inner: parking_lot::MutexGuard<'_, Inner<T, R, I, B>>,
        future: Future<U>,
        resume: fn(Future<U>) -> Step<T, R>,
    ) {
        let discard = future.clone();
        inner.waiting_on = Some(Box::new(move || discard.discard()));
        drop(inner);
        let waited = future.clone();
        future.on_any(move |_| {
            state.inner.lock().waiting_on = None;
            Self::run(state, resume(waited));
        });
    }

    fn finish(
        mut inner: parking_lot::MutexGuard<'_, Inner<T, R, I, B>>,
        outcome: Result<R, crate::Error>,
    ) {
        let promise = inner.promise.take();
        drop(inner);
        if let Some(promise) = promise {
            promise.complete(outcome);
        }
    }
}
