//! The shared-state primitives of the lock-free engine parts, from std and parking_lot or, under
//! `cfg(procession_loom)`, from loom, so that those parts can be model-checked unchanged (see
//! `tests/loom_*.rs`). Lock-based parts that no model covers use `parking_lot` directly.
//!
//! The cfg has the crate's own name so that `RUSTFLAGS="--cfg procession_loom"` does not also
//! switch tokio (which reads `cfg(loom)`) to its loom build.

#[cfg(not(procession_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(procession_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(not(procession_loom))]
pub(crate) use parking_lot::Mutex;

#[cfg(procession_loom)]
pub(crate) use self::model::Mutex;

#[cfg(procession_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` with loom's closure-scoped access, so one code path serves both builds.
#[cfg(not(procession_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(procession_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer for reading; the caller's protocol must exclude writers.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer for writing; the caller's protocol must exclude other access.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(procession_loom)]
mod model {
    /// loom's mutex with parking_lot's signature (no poisoning).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .expect("no model thread panics while holding it")
        }
    }
}
