//! The auto traits of the testkit's public types: patterns, captures and guards can be moved
//! to and shared with other threads (a test may hand them to a helper thread).

use procession::Message;
use procession_testkit::{
    AnyMessage, Captured, DropDispatchesGuard, DropMessagesGuard, Match, NoDispatchesGuard,
    NoMessagesGuard,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, Message)]
struct Ping;

fn send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Match<Ping>>();
    send_sync::<Match<AnyMessage>>();
    send_sync::<Captured<Ping>>();
    send_sync::<AnyMessage>();
    send_sync::<DropMessagesGuard>();
    send_sync::<NoMessagesGuard>();
    send_sync::<DropDispatchesGuard>();
    send_sync::<NoDispatchesGuard>();
}
