//! The filter helpers: rules on a runtime's filter point that catch, drop or forbid events. The
//! crate docs teach them ("Filters"); the engine and its locking protocol are in `rules`, the
//! helpers are grouped by the kind of event they are about.

mod dispatch;
mod exited;
mod guard;
mod matcher;
mod message;
mod rules;

pub use self::dispatch::{
    drop_dispatch, drop_dispatches, expect_no_future_dispatches, future_dispatch,
    DropDispatchesGuard, NoDispatchesGuard,
};
pub use self::exited::{drop_exited, future_exited};
pub use self::matcher::{AnyMessage, Captured, Match};
pub use self::message::{
    drop_message, drop_messages, expect_no_future_messages, future_message, DropMessagesGuard,
    NoMessagesGuard,
};
