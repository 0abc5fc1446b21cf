//! The atomics of the lock-free engine parts, from std or, under `cfg(procession_loom)`, from
//! loom, so that those parts can be model-checked unchanged (see `tests/loom_*.rs`). Lock-based
//! parts use `parking_lot` directly: a mutex held for a few instructions needs no model.
//!
//! The cfg has the crate's own name so that `RUSTFLAGS="--cfg procession_loom"` does not also
//! switch tokio (which reads `cfg(loom)`) to its loom build.

#[cfg(not(procession_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(procession_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};
