//! `#[process]`: typed handle methods that dispatch by name, flatten futures, and work for
//! generic processes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use procession::{
    process, terminate_now, wait, EventView, Filter, Future, Pid, Process, Promise, Runtime,
    Verdict,
};

#[derive(Default)]
struct Counter {
    count: u64,
    pending: Vec<Promise<u64>>,
}

impl Process for Counter {}

#[process]
impl Counter {
    /// Adds `n`; the new count.
    pub fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }

    pub fn reset(&mut self) {
        self.count = 0;
        for promise in self.pending.drain(..) {
            promise.set(0);
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Completes when the next `reset` runs.
    pub fn next_reset(&mut self) -> Future<u64> {
        let promise = Promise::new();
        let future = promise.future();
        self.pending.push(promise);
        future
    }

    pub fn add_all(&mut self, (a, b): (u64, u64), label: &'static str) -> (u64, &'static str) {
        (self.add(a + b), label)
    }

    /// Compiled out, and its handle method with it (`NotAType` does not exist).
    #[cfg(any())]
    pub fn gone(&self) -> NotAType {
        unreachable!()
    }

    /// Not on the handle: no visibility.
    fn helper(&self) -> u64 {
        self.count
    }

    /// Not on the handle: no `self`.
    pub fn new() -> Self {
        Counter::default()
    }
}

/// Records the method names of the dispatches it sees.
#[derive(Default)]
struct Names(Mutex<Vec<Option<String>>>);

impl Filter for Names {
    fn filter(&self, event: &EventView<'_>) -> Verdict {
        if let EventView::Dispatch { method, .. } = event {
            self.0.lock().unwrap().push(method.map(str::to_owned));
        }
        Verdict::Deliver
    }
}

#[test]
fn handle_methods_dispatch_and_return_futures() {
    let runtime = Runtime::new();
    let counter: Pid<Counter> = runtime.spawn(Counter::new());
    assert_eq!(runtime.block_on(counter.add(5)).unwrap(), 5);
    assert_eq!(runtime.block_on(counter.add(2)).unwrap(), 7);
    assert_eq!(runtime.block_on(counter.count()).unwrap(), 7);
    let reset: Future<u64> = counter.next_reset();
    let done: Future<()> = counter.reset();
    runtime.block_on(done).unwrap();
    // Flattened: a Future<u64>, ready once the promise inside the process is set.
    assert_eq!(runtime.block_on(reset).unwrap(), 0);
    let (sum, label) = runtime.block_on(counter.add_all((1, 2), "three")).unwrap();
    assert_eq!((sum, label), (3, "three"));
    let helper = runtime.block_on(procession::dispatch(&counter, |c: &mut Counter| c.helper()));
    assert_eq!(helper.unwrap(), 3);
}

#[test]
fn dispatches_carry_the_method_name() {
    let runtime = Runtime::new();
    let names = Arc::new(Names::default());
    let counter = runtime.spawn(Counter::default());
    runtime.set_filter(Some(names.clone()));
    runtime.block_on(counter.add(1)).unwrap();
    runtime.block_on(counter.count()).unwrap();
    runtime
        .block_on(procession::dispatch(&counter, |_: &mut Counter| ()))
        .unwrap();
    let seen = names.0.lock().unwrap().clone();
    assert_eq!(seen, [Some("add".into()), Some("count".into()), None]);
}

#[test]
fn a_gone_process_abandons_handle_calls() {
    let runtime = Runtime::new();
    let counter = runtime.spawn(Counter::default());
    terminate_now(&counter);
    runtime.block_on(wait(&counter)).unwrap();
    assert!(counter.add(1).is_abandoned());
    assert!(counter.next_reset().is_abandoned());
}

/// A generic process: the handle trait takes the parameters.
struct Store<T> {
    items: Vec<T>,
    added: Arc<AtomicUsize>,
}

impl<T: Send + 'static> Process for Store<T> {}

// `Self: Process` means the process in the impl's clause, and so in the handle trait's too.
#[process(handle = StoreApi)]
impl<T> Store<T>
where
    T: Clone + Send + Sync + 'static,
    Self: Process,
{
    pub fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.added.fetch_add(1, Ordering::Relaxed);
        self.items.len()
    }

    pub fn all(&self) -> Vec<T> {
        self.items.clone()
    }

    pub fn last(&self) -> Future<Option<T>> {
        Future::ready(self.items.last().cloned())
    }

    /// `Self` in a handle's signature means the process type, not the `Pid`.
    pub fn replace(&mut self, items: Vec<T>) -> Self {
        let old = std::mem::replace(&mut self.items, items);
        Store {
            items: old,
            added: self.added.clone(),
        }
    }
}

#[test]
fn generic_processes_get_a_generic_handle() {
    let runtime = Runtime::new();
    let added = Arc::new(AtomicUsize::new(0));
    let store = runtime.spawn(Store {
        items: Vec::<String>::new(),
        added: added.clone(),
    });
    assert_eq!(runtime.block_on(store.push("a".into())).unwrap(), 1);
    assert_eq!(runtime.block_on(store.push("b".into())).unwrap(), 2);
    assert_eq!(runtime.block_on(store.all()).unwrap(), ["a", "b"]);
    assert_eq!(
        runtime.block_on(store.last()).unwrap(),
        Some("b".to_owned())
    );
    // A `Store` is not `Clone`: read the value in place.
    let old = store.replace(vec!["c".into()]);
    assert!(old.wait_for(std::time::Duration::from_secs(10)));
    assert_eq!(old.value().unwrap().items, ["a", "b"]);
    assert_eq!(added.load(Ordering::Relaxed), 2);
    let numbers = runtime.spawn(Store {
        items: vec![1u8],
        added,
    });
    assert_eq!(runtime.block_on(StoreApi::all(&numbers)).unwrap(), [1]);
}

/// A process that is also an iterator, with an inherent `next` of its own.
#[derive(Default)]
struct Ticker {
    ticks: u8,
}

impl Process for Ticker {}

impl Iterator for Ticker {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        Some(0xff)
    }
}

#[process]
impl Ticker {
    /// Shadowed on `&mut Ticker` by `Iterator::next`, which method syntax would call.
    pub fn next(&self) -> Option<u8> {
        Some(self.ticks)
    }

    /// An unnamed argument beside one named as the generated names are.
    pub fn tick(&mut self, _: u8, arg1: u8) -> u8 {
        self.ticks += arg1;
        self.ticks
    }
}

#[test]
fn a_handle_calls_the_inherent_method_and_its_argument_names_never_clash() {
    let runtime = Runtime::new();
    let ticker = runtime.spawn(Ticker::default());
    assert_eq!(runtime.block_on(ticker.tick(0, 3)).unwrap(), 3);
    assert_eq!(runtime.block_on(ticker.next()).unwrap(), Some(3));
}
