//! The atomics of the lock-free engine parts, from std or, under `cfg(loom)`, from loom, so that
//! those parts can be model-checked unchanged (see `tests/loom_*.rs`). Lock-based parts use
//! `parking_lot` directly: a mutex held for a few instructions needs no model.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};
