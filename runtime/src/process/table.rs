//! Engine: the map from process ids to live processes, and id generation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::RwLock;

use super::cell::AnyCell;

const SHARDS: usize = 16;

type Shard = HashMap<Arc<str>, Arc<dyn AnyCell>, RandomState>;

/// Live processes by id, sharded so that spawns and exits on different workers rarely meet.
pub(crate) struct Table {
    hasher: RandomState,
    shards: [RwLock<Shard>; SHARDS],
    next_id: AtomicU64,
    next_seq: AtomicU64,
}

impl Table {
    pub(crate) fn new() -> Self {
        Table {
            hasher: RandomState::default(),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
            next_id: AtomicU64::new(1),
            next_seq: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: &str) -> &RwLock<Shard> {
        &self.shards[self.hasher.hash_one(id) as usize % SHARDS]
    }

    /// A fresh id `base(n)`; `n` is never reused by this table.
    /// A fresh id `name(n)` from a type name (`my_crate::WorkerPool<T>` gives `workerpool(7)`);
    /// `n` is never reused by this table. Built in a reused per-thread buffer: one allocation.
    pub(crate) fn generate_id(&self, type_name: &str) -> Arc<str> {
        thread_local! {
            static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let without_generics = type_name.split('<').next().unwrap_or(type_name);
        let base = without_generics
            .rsplit("::")
            .next()
            .unwrap_or(without_generics);
        BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            buffer.clear();
            buffer.extend(base.chars().flat_map(char::to_lowercase));
            let _ = write!(buffer, "({n})");
            Arc::from(buffer.as_str())
        })
    }

    /// The next spawn sequence number.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Publishes `cell`; false if its id is taken.
    pub(crate) fn insert(&self, cell: Arc<dyn AnyCell>) -> bool {
        let mut shard = self.shard(cell.id()).write();
        if shard.contains_key(cell.id()) {
            return false;
        }
        shard.insert(cell.id().clone(), cell);
        true
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<dyn AnyCell>> {
        self.shard(id).read().get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &str) {
        self.shard(id).write().remove(id);
    }

    /// Every live process (a snapshot).
    pub(crate) fn all(&self) -> Vec<Arc<dyn AnyCell>> {
        self.shards
            .iter()
            .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}
