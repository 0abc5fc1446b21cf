//! `#[derive(Message)]`: default and explicit names (its compile errors are in `compile_fail.rs`).

use procession::Message;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
struct Plain;

#[derive(Serialize, Deserialize, Message)]
#[message(name = "custom.Name")]
struct Renamed(u32);

#[derive(Serialize, Deserialize, Message)]
struct Generic<T> {
    value: T,
}

mod nested {
    #[derive(serde::Serialize, serde::Deserialize, procession::Message)]
    pub struct Moved;
}

#[test]
fn default_name_is_crate_and_identifier() {
    assert_eq!(Plain::NAME, "derive_message::Plain");
    // The module path is not part of the name: moving a type keeps its wire name.
    assert_eq!(nested::Moved::NAME, "derive_message::Moved");
}

#[test]
fn explicit_name_wins() {
    assert_eq!(Renamed::NAME, "custom.Name");
}

#[test]
fn generic_types_derive() {
    let _ = Generic { value: 1u8 }.value;
    assert_eq!(<Generic<u8> as Message>::NAME, "derive_message::Generic");
}
