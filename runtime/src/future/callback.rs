//! A completion callback stored inline when it is small.
//!
//! Most callbacks capture a word or two: a promise, a runtime handle, a pid. Boxing each one cost
//! an allocation and a free per future observed, a fifth of an ask's work and half of a `then`
//! chain's. A [`Callback`] keeps a closure of up to three words in place, and boxes only a larger
//! one, still inline as the box's one word, so both kinds share one representation and one call
//! path: the bytes, and a table of two functions made for the closure's type.
//!
//! This module's unsafe code is the type erasure. Its invariant: `data` holds a value of exactly
//! the type the table was made for, initialized, until `call` or `drop` moves it out, once.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

use super::cell::Outcome;

/// The words a closure may take to be kept in place.
const WORDS: usize = 3;

type Storage = MaybeUninit<[usize; WORDS]>;

/// A completion callback: a `FnOnce(&Outcome<T>) + Send` closure, inline when it fits.
pub(crate) struct Callback<T> {
    data: Storage,
    table: &'static Table,
    /// What the closure takes: `call` passes the outcome as an untyped pointer.
    _takes: PhantomData<fn(&Outcome<T>)>,
    /// Not `Sync`, as the closure need not be; `Send` it is, as `new` takes only `Send` ones.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// What a [`Callback`] does with the closure in its storage, made for one closure type.
struct Table {
    /// Moves the closure out of the storage and calls it with the outcome, an `&Outcome<T>` of
    /// the closure's `T`, untyped so that the table needs no `T: 'static`.
    call: unsafe fn(*const Storage, *const ()),
    /// Drops the closure in place.
    drop: unsafe fn(*mut Storage),
}

/// Whether a value of type `F` fits the storage and its alignment.
const fn fits<F>() -> bool {
    mem::size_of::<F>() <= mem::size_of::<Storage>()
        && mem::align_of::<F>() <= mem::align_of::<Storage>()
}

/// The table of a closure type kept in place.
trait Erased<T>: Sized {
    const TABLE: &'static Table;
}

impl<T, F: FnOnce(&Outcome<T>)> Erased<T> for F {
    const TABLE: &'static Table = &Table {
        call: call_in_place::<T, F>,
        drop: drop_in_place::<F>,
    };
}

/// # Safety
///
/// `data` holds an initialized `F`, written when `fits::<F>()`, which no one reads or drops
/// after this; `outcome` is a live `&Outcome<T>`.
unsafe fn call_in_place<T, F: FnOnce(&Outcome<T>)>(data: *const Storage, outcome: *const ()) {
    // SAFETY: the caller's contract: the `F` is there, aligned and within the storage, and the
    // outcome is an `Outcome<T>` borrowed for the call.
    let (f, outcome) = unsafe { (ptr::read(data.cast::<F>()), &*outcome.cast::<Outcome<T>>()) };
    f(outcome);
}

/// # Safety
///
/// As [`call_in_place`].
unsafe fn drop_in_place<F>(data: *mut Storage) {
    // SAFETY: the caller's contract, as in `call_in_place`.
    unsafe { ptr::drop_in_place(data.cast::<F>()) }
}

impl<T> Callback<T> {
    /// Wraps `f`, in place if it fits, else in a box kept in place.
    #[inline]
    pub(crate) fn new<F: FnOnce(&Outcome<T>) + Send + 'static>(f: F) -> Self {
        if fits::<F>() {
            Callback::inline(f)
        } else {
            Callback::inline(Box::new(f))
        }
    }

    #[inline]
    fn inline<F: FnOnce(&Outcome<T>) + Send + 'static>(f: F) -> Self {
        assert!(fits::<F>(), "only a value that fits is kept in place");
        let mut data = Storage::uninit();
        // SAFETY: `F` fits the storage and its alignment (asserted; a constant, so the check
        // compiles away), and the storage is ours and uninitialized.
        unsafe { ptr::write(data.as_mut_ptr().cast::<F>(), f) };
        Callback {
            data,
            table: <F as Erased<T>>::TABLE,
            _takes: PhantomData,
            _not_sync: PhantomData,
        }
    }

    /// Calls the closure with `outcome`, consuming it.
    #[inline]
    pub(crate) fn call(self, outcome: &Outcome<T>) {
        // The closure moves out in `call`, which drops it (also when it panics): not again here.
        let this = ManuallyDrop::new(self);
        let outcome: *const Outcome<T> = outcome;
        // SAFETY: `data` holds the closure `table` was made for (see `inline`), which takes an
        // `&Outcome<T>` (`new`'s bound, recorded in `_takes`); `this` is never dropped, so
        // nothing reads the closure after.
        unsafe { (this.table.call)(&this.data, outcome.cast()) }
    }
}

impl<T> Drop for Callback<T> {
    fn drop(&mut self) {
        // SAFETY: `data` holds the closure `table` was made for; a called one was never dropped.
        unsafe { (self.table.drop)(&mut self.data) }
    }
}

impl<T> fmt::Debug for Callback<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Callback")
    }
}

#[cfg(all(test, not(procession_loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::error::Error;

    /// Counts its drops, so a test sees every closure dropped exactly once.
    struct Tracked(Arc<AtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    /// Whether `f`'s type is kept in place.
    fn kept_in_place<F>(_: &F) -> bool {
        fits::<F>()
    }

    #[test]
    fn a_small_closure_is_kept_in_place_called_once_and_dropped_once() {
        let (drops, seen) = (counter(), counter());
        let tracked = Tracked(drops.clone());
        let seen_in = seen.clone();
        let f = move |outcome: &Outcome<u32>| {
            let _keep = &tracked;
            seen_in.fetch_add(*outcome.as_ref().unwrap() as usize, Ordering::SeqCst);
        };
        assert!(kept_in_place(&f));
        Callback::new(f).call(&Ok(7));
        assert_eq!(
            (seen.load(Ordering::SeqCst), drops.load(Ordering::SeqCst)),
            (7, 1)
        );
    }

    #[test]
    fn a_large_closure_is_boxed_and_called_the_same() {
        let (drops, seen) = (counter(), counter());
        let big = [1usize; 16];
        let tracked = Tracked(drops.clone());
        let seen_in = seen.clone();
        let f = move |_: &Outcome<u32>| {
            let _keep = &tracked;
            seen_in.fetch_add(big.iter().sum(), Ordering::SeqCst);
        };
        assert!(!kept_in_place(&f));
        Callback::new(f).call(&Err(Error::abandoned()));
        assert_eq!(
            (seen.load(Ordering::SeqCst), drops.load(Ordering::SeqCst)),
            (16, 1)
        );
    }

    #[test]
    fn an_uncalled_callback_drops_its_closure_once_inline_or_boxed() {
        let drops = counter();
        let small = Tracked(drops.clone());
        drop(Callback::<()>::new(move |_| drop(small)));
        let large = (Tracked(drops.clone()), [0u64; 8]);
        drop(Callback::<()>::new(move |_| drop(large)));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_closure_is_dropped_once_while_unwinding() {
        let drops = counter();
        let tracked = Tracked(drops.clone());
        let callback = Callback::<()>::new(move |_| {
            let _keep = &tracked;
            panic!("the callback failed");
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            callback.call(&Ok(()));
        }));
        assert!(outcome.is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_over_aligned_closure_is_boxed() {
        #[repr(align(32))]
        struct Wide(u8);
        let wide = Wide(5);
        let seen = counter();
        let seen_in = seen.clone();
        let f = move |_: &Outcome<()>| {
            let wide: Wide = wide;
            seen_in.fetch_add(usize::from(wide.0), Ordering::SeqCst);
        };
        assert!(!kept_in_place(&f));
        Callback::new(f).call(&Ok(()));
        assert_eq!(seen.load(Ordering::SeqCst), 5);
    }

    fn send_only<S: Send>() {}

    #[test]
    fn a_callback_is_four_words_and_send() {
        send_only::<Callback<std::rc::Rc<()>>>();
        assert_eq!(
            mem::size_of::<Option<Callback<u64>>>(),
            4 * mem::size_of::<usize>()
        );
    }
}
