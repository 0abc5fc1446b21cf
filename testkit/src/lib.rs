//! Test helpers for procession.
//!
//! This crate grows into the full testkit (message filters, spoofing, the seeded multi-node
//! simulation); today it holds the `await_*` helpers: wait for a future's outcome in real time,
//! with a default timeout, and fail the test with the future's actual state and the test's
//! location instead of hanging.

#![forbid(unsafe_code)]

mod await_;

pub use await_::{
    await_abandoned, await_discarded, await_failed, await_ready, await_ready_for, DEFAULT_TIMEOUT,
};
