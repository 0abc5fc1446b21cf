//! Future states: every transition a promise can cause, what each accessor reports in it, and
//! which `on_*` callbacks fire (exactly once, and only for their own state).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use procession::{Future, Owned, Promise};

/// Counts of each observer, indexed by the constants below.
const ANY: usize = 0;
const READY: usize = 1;
const FAILED: usize = 2;
const DISCARDED: usize = 3;
const ABANDONED: usize = 4;
const DISCARD_REQUEST: usize = 5;

type Counts = Arc<[AtomicUsize; 6]>;

/// Registers every observer on `future`, each bumping its own counter.
fn observe(future: &Future<u32>) -> Counts {
    let counts: Counts = Arc::new(Default::default());
    let c = counts.clone();
    future.on_any(move |_| {
        c[ANY].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    future.on_ready(move |_| {
        c[READY].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    future.on_failed(move |_| {
        c[FAILED].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    future.on_discarded(move || {
        c[DISCARDED].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    future.on_abandoned(move || {
        c[ABANDONED].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    future.on_discard(move || {
        c[DISCARD_REQUEST].fetch_add(1, Ordering::SeqCst);
    });
    counts
}

fn snapshot(counts: &Counts) -> [usize; 6] {
    std::array::from_fn(|i| counts[i].load(Ordering::SeqCst))
}

#[test]
fn pending_future_reports_no_outcome() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    assert!(future.is_pending());
    assert!(!future.is_ready() && !future.is_failed());
    assert!(!future.is_discarded() && !future.is_abandoned());
    assert!(!future.has_discard());
    assert_eq!(future.get(), None);
    assert_eq!(future.value(), None);
    assert!(future.error().is_none());
    assert!(future.outcome().is_none());
}

#[test]
fn set_makes_the_future_ready() {
    let promise = Promise::new();
    let future = promise.future();
    let counts = observe(&future);
    promise.set(7u32);
    assert!(future.is_ready() && !future.is_pending());
    assert!(!future.is_failed() && !future.is_discarded() && !future.is_abandoned());
    assert_eq!(future.get(), Some(7));
    assert_eq!(future.value(), Some(&7));
    assert!(future.error().is_none());
    assert!(matches!(future.outcome(), Some(Ok(7))));
    assert_eq!(snapshot(&counts), [1, 1, 0, 0, 0, 0]);
}

#[test]
fn fail_makes_the_future_failed() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let counts = observe(&future);
    promise.fail("disk full");
    assert!(future.is_failed() && !future.is_pending() && !future.is_ready());
    assert!(!future.is_discarded() && !future.is_abandoned());
    assert_eq!(future.get(), None);
    let error = future.error().expect("a failed future has an error");
    assert!(error.is_failed() && !error.is_discarded() && !error.is_abandoned());
    assert_eq!(error.failure().unwrap().message(), "disk full");
    assert_eq!(error.to_string(), "failed: disk full");
    assert!(matches!(future.outcome(), Some(Err(e)) if e.is_failed()));
    assert_eq!(snapshot(&counts), [1, 0, 1, 0, 0, 0]);
}

#[test]
fn promise_discard_makes_the_future_discarded() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let counts = observe(&future);
    promise.discard();
    assert!(future.is_discarded() && !future.is_pending());
    assert!(!future.is_ready() && !future.is_failed() && !future.is_abandoned());
    let error = future.error().unwrap();
    assert!(error.is_discarded() && error.failure().is_none());
    // The producer discarded without a request: no discard callback fires.
    assert_eq!(snapshot(&counts), [1, 0, 0, 1, 0, 0]);
}

#[test]
fn dropping_the_promise_abandons_the_future_at_once() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let counts = observe(&future);
    drop(promise);
    assert!(future.is_abandoned() && !future.is_pending());
    assert!(!future.is_ready() && !future.is_failed() && !future.is_discarded());
    assert!(future.error().unwrap().is_abandoned());
    assert_eq!(snapshot(&counts), [1, 0, 0, 0, 1, 0]);
}

#[test]
fn completed_constructors_are_in_their_state() {
    assert_eq!(Future::ready(3u32).get(), Some(3));
    let failed = Future::<u32>::failed("no");
    assert_eq!(failed.error().unwrap().failure().unwrap().message(), "no");
    assert_eq!(Future::completed(Ok(4u32)).get(), Some(4));
    let copied = Future::<u32>::completed(Err(failed.error().unwrap()));
    assert!(copied.is_failed());
}

#[test]
fn callbacks_added_after_completion_run_at_once_in_the_caller() {
    let ready = Future::ready(1u32);
    let failed = Future::<u32>::failed("x");
    let promise = Promise::<u32>::new();
    let discarded = promise.future();
    promise.discard();
    let promise = Promise::<u32>::new();
    let abandoned = promise.future();
    drop(promise);

    // Each counter is read right after registration, so "at once" is checked, not "later".
    assert_eq!(snapshot(&observe(&ready)), [1, 1, 0, 0, 0, 0]);
    assert_eq!(snapshot(&observe(&failed)), [1, 0, 1, 0, 0, 0]);
    assert_eq!(snapshot(&observe(&discarded)), [1, 0, 0, 1, 0, 0]);
    assert_eq!(snapshot(&observe(&abandoned)), [1, 0, 0, 0, 1, 0]);

    let caller = thread::current().id();
    let ran_on = Arc::new(Mutex::new(None));
    let slot = ran_on.clone();
    ready.on_ready(move |_| *slot.lock().unwrap() = Some(thread::current().id()));
    assert_eq!(*ran_on.lock().unwrap(), Some(caller));
}

#[test]
fn callbacks_run_on_the_completing_thread_and_see_the_value() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    future.on_ready(move |v| s.lock().unwrap().push((*v, thread::current().id())));
    let completer = thread::spawn(move || {
        promise.set(9);
        thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![(9, completer)]);
}

#[test]
fn on_failed_receives_the_failure() {
    let promise = Promise::<u32>::new();
    let message = Arc::new(Mutex::new(String::new()));
    let m = message.clone();
    promise
        .future()
        .on_failed(move |f| *m.lock().unwrap() = f.message().to_owned());
    promise.fail("bad input");
    assert_eq!(*message.lock().unwrap(), "bad input");
}

#[test]
fn discard_on_a_complete_future_is_ignored() {
    let future = Future::ready(1u32);
    let counts = observe(&future);
    future.discard();
    assert!(!future.has_discard());
    assert!(future.is_ready());
    assert_eq!(snapshot(&counts), [1, 1, 0, 0, 0, 0]);
}

/// Not `Clone`: `into_inner` must move it, not copy it.
#[derive(Debug, PartialEq)]
struct Unique(u32);

#[test]
fn into_inner_moves_the_value_out_of_the_last_handle() {
    assert_eq!(Future::ready(Unique(1)).into_inner().ok(), Some(Unique(1)));

    let promise = Promise::new();
    let future = promise.future();
    promise.set(Unique(2));
    assert_eq!(future.into_inner().ok(), Some(Unique(2)));

    // A future produced by a combinator is also the last handle once complete.
    let promise = Promise::new();
    let mapped = promise.future().map(|x: &u32| Unique(*x + 1));
    promise.set(2u32);
    assert_eq!(mapped.into_inner().ok(), Some(Unique(3)));
}

#[test]
fn into_inner_gives_the_handle_back_otherwise() {
    let future = Future::ready(Unique(5));
    let other = future.clone();
    let back = future.into_inner().expect_err("another handle exists");
    assert_eq!(back.value(), Some(&Unique(5)));
    assert_eq!(other.value(), Some(&Unique(5)));
    drop(other);
    assert_eq!(back.into_inner().ok(), Some(Unique(5)));

    let promise = Promise::<Unique>::new();
    let pending = promise.future().into_inner().expect_err("pending");
    assert!(pending.is_pending());
    promise.set(Unique(6));
    assert_eq!(pending.value(), Some(&Unique(6)));

    let failed = Future::<Unique>::failed("no")
        .into_inner()
        .expect_err("failed");
    assert!(failed.is_failed());
}

#[test]
fn a_callback_may_reenter_its_future() {
    support::with_watchdog("a callback that could deadlock", || {
        let promise = Promise::<u32>::new();
        let future = promise.future();
        let nested = Arc::new(AtomicUsize::new(0));
        let (f, n) = (future.clone(), nested.clone());
        future.on_ready(move |value| {
            // Register, discard and read the future whose callback is running.
            let inner = n.clone();
            f.on_any(move |_| {
                inner.fetch_add(1, Ordering::SeqCst);
            });
            f.discard();
            assert_eq!(f.get(), Some(*value));
            assert!(f.is_ready() && !f.has_discard());
            n.fetch_add(10, Ordering::SeqCst);
        });
        promise.set(4);
        assert_eq!(nested.load(Ordering::SeqCst), 11);
    });
}

#[test]
fn a_discard_callback_may_reenter_its_future_and_promise() {
    support::with_watchdog("a callback that could deadlock", || {
        let promise = Promise::<u32>::new();
        let future = promise.future();
        let slot = Arc::new(Mutex::new(Some(promise)));
        let ended = Arc::new(AtomicUsize::new(0));
        let (f, s, e) = (future.clone(), slot.clone(), ended.clone());
        future.on_discard(move || {
            assert!(f.has_discard() && f.is_pending());
            f.discard(); // a second request is a no-op, not a deadlock
            let e = e.clone();
            f.on_discarded(move || {
                e.fetch_add(1, Ordering::SeqCst);
            });
            let promise = s.lock().unwrap().take().unwrap();
            assert!(promise.has_discard());
            promise.discard();
            assert!(f.is_discarded());
        });
        future.discard();
        assert!(future.is_discarded());
        assert_eq!(ended.load(Ordering::SeqCst), 1);
        assert!(slot.lock().unwrap().is_none());
    });
}

#[test]
fn a_panicking_callback_does_not_strand_the_others() {
    let promise = Promise::<u32>::new();
    let future = promise.future();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    future.on_any(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    future.on_any(|_| panic!("callback panic"));
    let r = ran.clone();
    future.on_any(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| promise.set(1)));
    assert!(
        result.is_ok(),
        "an observer's panic is contained: it never reaches the completer"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    assert_eq!(future.get(), Some(1));
}

/// A value whose drop panics: outside any callback, so nothing contains it.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a value's drop panicked");
    }
}

#[test]
fn a_panic_while_draining_completions_does_not_stall_later_ones() {
    // Both inner completions queue on the trampoline. The last handle to the first's future is
    // the queued one, so its value drops (and panics) inside the drain, outside every callback;
    // the second still runs its callback, and the panic then reaches the completer.
    let outer = Promise::<u32>::new();
    let bomb = Promise::<Bomb>::new();
    let after = Promise::<u32>::new();
    let ran = Arc::new(AtomicUsize::new(0));
    bomb.future().on_any(|_| ());
    let r = ran.clone();
    after.future().on_any(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    outer.future().on_any(move |_| {
        bomb.set(Bomb);
        after.set(3);
    });
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outer.set(1)));
    assert!(unwound.is_err(), "the drop's panic reached the completer");
    assert_eq!(ran.load(Ordering::SeqCst), 1, "a batch after the panic ran");
    // A later completion on this thread still runs its callbacks at once.
    let later = Promise::<u32>::new();
    let r = ran.clone();
    later.future().on_any(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    later.set(2);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "the trampoline was left open"
    );
}

/// Counts drops, so a test can tell a value was dropped exactly once.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn owned_take_hands_the_value_out_once() {
    let future = Future::ready(Owned::new(String::from("guard")));
    let (a, b) = (future.get().unwrap(), future.get().unwrap());
    assert!(!a.is_taken());
    assert_eq!(b.take().as_deref(), Some("guard"));
    assert_eq!(a.take(), None);
    assert_eq!(future.value().unwrap().take(), None);
    assert!(a.is_taken() && b.is_taken());
}

#[test]
fn owned_value_is_dropped_once_when_taken_not_when_handles_go() {
    let drops = Arc::new(AtomicUsize::new(0));
    let future = Future::ready(Owned::new(DropCount(drops.clone())));
    let copy = future.get().unwrap();
    drop(copy.take().expect("first take"));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(copy);
    drop(future);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Never taken: dropped exactly once, with the last handle.
    let drops = Arc::new(AtomicUsize::new(0));
    let future = Future::ready(Owned::new(DropCount(drops.clone())));
    let copy = future.get().unwrap();
    drop(future);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(copy);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
