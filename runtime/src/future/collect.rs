//! Many futures into one: `collect`, `await_all`, `select`.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::cell::Discard;
use super::{Future, Promise};
use crate::error::{Error, Failure};

/// A future of all the inputs' values, in input order.
///
/// An empty input is ready at once.
///
/// # Errors
///
/// The first input to fail fails the result, and the first input to end discarded fails it
/// too; the other inputs are then discarded. An abandoned input abandons the result.
///
/// # Discard
///
/// Discarding the result discards every input; the result then ends discarded once an input
/// does (and otherwise as the inputs decide). Dropping the result does nothing.
///
/// # Examples
///
/// ```
/// use procession::{collect, Future, Promise};
///
/// let later = Promise::new();
/// let all = collect(vec![Future::ready(1), later.future()]);
/// assert!(all.is_pending());
/// later.set(2);
/// assert_eq!(all.get(), Some(vec![1, 2]));
/// ```
pub fn collect<T: Clone + Send + Sync + 'static>(futures: Vec<Future<T>>) -> Future<Vec<T>> {
    struct State<T: Send + Sync + 'static> {
        values: Vec<Option<T>>,
        remaining: usize,
        promise: Option<Promise<Vec<T>>>,
    }

    if futures.is_empty() {
        return Future::ready(Vec::new());
    }
    let promise = Promise::new();
    let output = promise.future();
    discard_all_on_discard(&output, &futures);
    let state = Arc::new(Mutex::new(State {
        values: vec![None; futures.len()],
        remaining: futures.len(),
        promise: Some(promise),
    }));
    // Weak links to every input, so a failure can discard the others without keeping them alive.
    let siblings: Arc<[Weak<dyn Discard>]> = futures.iter().map(Future::discard_link).collect();
    for (index, future) in futures.iter().enumerate() {
        let state = state.clone();
        let siblings = siblings.clone();
        future.when_complete(move |outcome| {
            let mut guard = state.lock();
            match outcome {
                Ok(value) => {
                    guard.values[index] = Some(value.clone());
                    guard.remaining -= 1;
                    if guard.remaining == 0 {
                        if let Some(promise) = guard.promise.take() {
                            let values = guard
                                .values
                                .iter_mut()
                                .map(|v| v.take().expect("every input is ready"))
                                .collect();
                            drop(guard);
                            promise.set(values);
                        }
                    }
                }
                Err(error) => {
                    let Some(promise) = guard.promise.take() else {
                        return;
                    };
                    drop(guard);
                    if promise.has_discard() && error.is_discarded() {
                        promise.discard();
                    } else if error.is_abandoned() {
                        promise.complete(Err(error.clone()));
                    } else if error.is_discarded() {
                        promise.fail(Failure::new(format!("collect input {index} was discarded")));
                    } else {
                        promise.complete(Err(error.clone()));
                    }
                    for sibling in siblings.iter().filter_map(Weak::upgrade) {
                        sibling.request_discard();
                    }
                }
            }
        });
    }
    output
}

/// A future of all the inputs, completed once every input is complete, whatever the outcomes.
///
/// # Discard
///
/// Discarding the result discards every input; the result still completes when they all have.
///
/// # Examples
///
/// ```
/// use procession::{await_all, Future};
///
/// let all = await_all(vec![Future::ready(1), Future::failed("no")]);
/// let inputs = all.get().unwrap();
/// assert!(inputs[0].is_ready() && inputs[1].is_failed());
/// ```
pub fn await_all<T: Send + Sync + 'static>(futures: Vec<Future<T>>) -> Future<Vec<Future<T>>> {
    let promise = Promise::new();
    let output = promise.future();
    discard_all_on_discard(&output, &futures);
    let remaining = Arc::new(Mutex::new((futures.len(), Some(promise))));
    let all = futures.clone();
    if futures.is_empty() {
        if let Some(promise) = remaining.lock().1.take() {
            promise.set(all);
        }
        return output;
    }
    let all = Arc::new(Mutex::new(Some(all)));
    for future in &futures {
        let remaining = remaining.clone();
        let all = all.clone();
        future.when_complete(move |_| {
            let mut guard = remaining.lock();
            guard.0 -= 1;
            if guard.0 == 0 {
                let promise = guard.1.take();
                drop(guard);
                if let (Some(promise), Some(all)) = (promise, all.lock().take()) {
                    promise.set(all);
                }
            }
        });
    }
    output
}

/// The index and value of the first input to become ready.
///
/// Inputs that fail, are discarded or are abandoned are skipped; the losers are left running.
///
/// # Errors
///
/// Fails when no input can become ready: with the last input failure if any input failed, else
/// with the last input's discard or abandonment (as a failure); at once for an empty input.
///
/// # Discard
///
/// Discarding the result discards every input.
///
/// # Examples
///
/// ```
/// use procession::{select, Future, Promise};
///
/// let slow = Promise::<u32>::new();
/// let first = select(vec![slow.future(), Future::failed("no"), Future::ready(3)]);
/// assert_eq!(first.get(), Some((2, 3)));
/// ```
pub fn select<T: Clone + Send + Sync + 'static>(futures: Vec<Future<T>>) -> Future<(usize, T)> {
    if futures.is_empty() {
        return Future::failed("select of no futures");
    }
    let promise = Promise::new();
    let output = promise.future();
    discard_all_on_discard(&output, &futures);
    struct State<T: Send + Sync + 'static> {
        remaining: usize,
        promise: Option<Promise<(usize, T)>>,
        /// The last failure seen, preferred over a later discard or abandonment.
        failure: Option<Error>,
    }
    let state = Arc::new(Mutex::new(State {
        remaining: futures.len(),
        promise: Some(promise),
        failure: None,
    }));
    for (index, future) in futures.iter().enumerate() {
        let state = state.clone();
        future.when_complete(move |outcome| {
            let mut guard = state.lock();
            guard.remaining -= 1;
            if let Err(error) = outcome {
                if error.is_failed() || guard.failure.is_none() {
                    guard.failure = Some(error.clone());
                }
            }
            let promise = match outcome {
                Ok(_) => guard.promise.take(),
                Err(_) if guard.remaining == 0 => guard.promise.take(),
                Err(_) => None,
            };
            let failure = guard.failure.clone();
            drop(guard);
            let Some(promise) = promise else { return };
            match (outcome, failure) {
                (Ok(value), _) => promise.set((index, value.clone())),
                (Err(error), _) if error.is_discarded() && promise.has_discard() => {
                    promise.discard()
                }
                (Err(error), failure) => {
                    promise.fail(failure.unwrap_or_else(|| error.clone()).into_failure())
                }
            }
        });
    }
    output
}

fn discard_all_on_discard<T, U>(output: &Future<T>, inputs: &[Future<U>])
where
    T: Send + Sync + 'static,
    U: Send + Sync + 'static,
{
    for input in inputs {
        super::chain::forward_discard(output, input);
    }
}
