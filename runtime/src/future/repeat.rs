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
        closures: Mutex::new((iterate, body)),
        control: Mutex::new(Control {
            promise: Some(promise),
            waiting_on: None,
        }),
        _item: PhantomData,
    });
    let weak = Arc::downgrade(&state);
    output.when_discard(move || {
        if let Some(state) = weak.upgrade() {
            let waiting = state.control.lock().waiting_on.take();
            if let Some(discard) = waiting {
                discard();
            }
        }
    });
    Loop::run(state, Step::Iterate);
    output
}

/// A running loop.
///
/// Two locks, never held together and never held while user code runs except as noted:
/// `closures` is held by the one step running now while it calls `iterate` or `body` (steps never
/// overlap: the next one starts from the callback of the future this one waits on), and
/// `control` guards the promise and the discard hook for the awaited future, for short critical
/// sections only, so a discard from anywhere (even from `body`) never waits for a step.
struct Loop<T, R: Send + Sync + 'static, I, B> {
    closures: Mutex<(I, B)>,
    control: Mutex<Control<R>>,
    _item: PhantomData<fn() -> T>,
}

struct Control<R: Send + Sync + 'static> {
    promise: Option<Promise<R>>,
    /// Discards the future the loop waits on now.
    waiting_on: Option<Box<dyn FnOnce() + Send>>,
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
            if state.discard_requested() {
                return state.finish(Err(crate::Error::discarded()));
            }
            step = match step {
                Step::Iterate => match catch(|| (state.closures.lock().0)()) {
                    Ok(item) => Step::Item(item),
                    Err(failure) => return state.finish(Err(failure.into())),
                },
                Step::Item(item) => match item.outcome() {
                    None => return Self::wait(state, item, Step::Item),
                    Some(Err(error)) => return state.finish(Err(error.clone())),
                    Some(Ok(value)) => match catch(|| (state.closures.lock().1)(value)) {
                        Ok(decision) => Step::Decision(decision),
                        Err(failure) => return state.finish(Err(failure.into())),
                    },
                },
                Step::Decision(decision) => match decision.outcome() {
                    None => return Self::wait(state, decision, Step::Decision),
                    Some(Err(error)) => return state.finish(Err(error.clone())),
                    Some(Ok(ControlFlow::Break(value))) => return state.finish(Ok(value.clone())),
                    Some(Ok(ControlFlow::Continue(()))) => Step::Iterate,
                },
            };
        }
    }

    /// Whether the loop's result was asked to stop (or is already complete).
    fn discard_requested(&self) -> bool {
        self.control
            .lock()
            .promise
            .as_ref()
            .is_none_or(Promise::has_discard)
    }

    fn wait<U: Send + Sync + 'static>(
        state: Arc<Self>,
        future: Future<U>,
        resume: fn(Future<U>) -> Step<T, R>,
    ) {
        let discard = future.clone();
        state.control.lock().waiting_on = Some(Box::new(move || discard.discard()));
        if state.discard_requested() {
            // The request came before the hook was in place: pass it on now.
            let waiting = state.control.lock().waiting_on.take();
            if let Some(discard) = waiting {
                discard();
            }
        }
        let waited = future.clone();
        future.on_any(move |_| {
            state.control.lock().waiting_on = None;
            Self::run(state, resume(waited));
        });
    }

    fn finish(&self, outcome: Result<R, crate::Error>) {
        let promise = self.control.lock().promise.take();
        if let Some(promise) = promise {
            promise.complete(outcome);
        }
    }
}
