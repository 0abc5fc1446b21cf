//! Queue: gets served in order by later puts, items kept in order for later gets, a discarded
//! get that never swallows an item (also when the discard races the put), every item handed
//! out exactly once across threads and processes, and what the last handle's drop does.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use procession::{dispatch, Process, Queue};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn queue_is_send_and_sync() {
    assert_send_sync::<Queue<u32>>();
}

#[test]
fn pending_gets_are_served_in_order() {
    let queue = Queue::new();
    let gets: Vec<_> = (0..5).map(|_| queue.get()).collect();
    assert!(gets.iter().all(|g| g.is_pending()));
    for i in 0..5 {
        queue.put(i);
        for (j, get) in gets.iter().enumerate() {
            assert_eq!(get.get(), (j <= i).then_some(j), "after put {i}");
        }
    }
    assert!(queue.is_empty());
}

#[test]
fn items_wait_in_order_for_later_gets() {
    let queue = Queue::new();
    assert!(queue.is_empty());
    for i in 0..5 {
        queue.put(i);
        assert_eq!(queue.len(), i + 1);
    }
    for i in 0..5 {
        assert_eq!(queue.get().get(), Some(i), "ready at once, in put order");
        assert_eq!(queue.len(), 4 - i);
    }
    assert!(queue.is_empty());
    assert!(queue.get().is_pending());
}

#[test]
fn a_discarded_get_leaves_the_line_and_never_swallows_an_item() {
    let queue = Queue::new();
    let given_up = queue.get();
    let waiting = queue.get();
    given_up.discard();
    assert!(given_up.is_discarded(), "ends discarded at once");
    queue.put(1);
    assert_eq!(waiting.get(), Some(1), "the item goes to the next get");
    assert!(queue.is_empty());

    // With no other get, the item stays queued.
    let alone = queue.get();
    alone.discard();
    queue.put(2);
    assert!(alone.is_discarded());
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.get().get(), Some(2));
}

#[test]
fn a_discard_after_the_get_was_served_does_nothing() {
    let queue = Queue::new();
    let get = queue.get();
    queue.put("item");
    get.discard();
    assert_eq!(get.get(), Some("item"));
    assert!(!get.has_discard());
}

#[test]
fn a_discard_racing_a_put_loses_no_item() {
    for round in 0..support::scaled(2_000) {
        let queue = Queue::new();
        let racing = queue.get();
        let barrier = Arc::new(Barrier::new(2));
        let putter = {
            let (queue, barrier) = (queue.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                queue.put(round);
            })
        };
        barrier.wait();
        racing.discard();
        putter.join().unwrap();
        // The item is in exactly one place: the racing get (the put won), or the queue.
        match racing.get() {
            Some(item) => {
                assert_eq!(item, round);
                assert!(queue.is_empty(), "round {round}: handed out twice");
            }
            None => {
                assert!(racing.is_discarded(), "round {round}: {racing:?}");
                assert_eq!(queue.len(), 1, "round {round}: swallowed");
                assert_eq!(queue.get().get(), Some(round));
            }
        }
    }
}

#[test]
fn every_item_is_handed_out_exactly_once_across_threads() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    let per_thread = support::scaled(1_000);
    let queue = Queue::new();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|_| {
                        let get = queue.get();
                        assert!(get.wait_for(Duration::from_secs(30)), "a get never served");
                        get.get().unwrap()
                    })
                    .collect::<Vec<usize>>()
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    queue.put(p * per_thread + i);
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let mut received: Vec<usize> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    received.sort_unstable();
    assert_eq!(received, (0..PRODUCERS * per_thread).collect::<Vec<_>>());
    assert!(queue.is_empty());
}

#[test]
fn a_get_callback_may_use_the_queue_again() {
    let queue = Queue::new();
    let echoed = {
        let inner = queue.clone();
        queue.get().then(move |n: &u32| {
            inner.put(n + 1);
            inner.get()
        })
    };
    queue.put(1);
    assert_eq!(echoed.get(), Some(2));
    assert!(queue.is_empty());
}

/// Counts the drops of items.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_last_handle_abandons_gets_and_drops_items_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let queue = Queue::<u32>::new();
    let other = queue.clone();
    let pending = queue.get();
    drop(queue);
    assert!(pending.is_pending(), "a handle is left");
    drop(other);
    assert!(pending.is_abandoned());

    let queue = Queue::new();
    for _ in 0..3 {
        queue.put(Counted(drops.clone()));
    }
    let taken = queue.get();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(queue);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the two queued items");
    drop(taken);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

struct Producer(Queue<u32>);
impl Process for Producer {}

rt_test!(processes_put_and_the_gets_see_their_order, |flavor, rt| {
    let queue = Queue::new();
    let early: Vec<_> = (0..50).map(|_| queue.get()).collect();
    let producer = rt.spawn(Producer(queue.clone()));
    let done = dispatch(&producer, |p: &mut Producer| {
        for i in 0..100 {
            p.0.put(i);
        }
    });
    for (i, get) in early.into_iter().enumerate() {
        assert_eq!(rt.block_on(get).unwrap(), i as u32);
    }
    rt.block_on(done).unwrap();
    assert_eq!(queue.len(), 50);
    for i in 50..100 {
        assert_eq!(rt.block_on(queue.get()).unwrap(), i);
    }
});
