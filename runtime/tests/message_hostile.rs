//! Hostile bodies: a length prefix that claims far more than the bytes hold is a decode error,
//! never a panic or an abort, and the receiving process goes on.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::message::{decode, encode, MAX_DECODED};
use procession::{dispatch, Context, Message, Process, Runtime, Upid};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Message)]
struct Register {
    hostname: String,
    tags: Vec<u64>,
}

/// Length prefixes (the first field's, fixed-width little-endian): absurd, just past the limit,
/// and within it but past the bytes.
fn hostile_bodies() -> Vec<Bytes> {
    let mut bodies = vec![Bytes::from_static(&[0xff; 8])];
    for len in [1u64 << 46, (MAX_DECODED as u64) + 1, 1 << 20] {
        bodies.push(Bytes::copy_from_slice(&len.to_le_bytes()));
    }
    bodies
}

#[test]
fn a_length_past_the_bytes_is_a_decode_error() {
    for body in hostile_bodies() {
        assert!(decode::<Register>(&body).is_err(), "{body:?}");
    }
    let fine = Register {
        hostname: "a".repeat(100_000),
        tags: (0..10_000).collect(),
    };
    assert_eq!(decode::<Register>(&encode(&fine).unwrap()).unwrap(), fine);
}

#[derive(Default)]
struct Master {
    registered: Arc<Mutex<Vec<String>>>,
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, register: Register| {
            me.registered.lock().push(register.hostname);
        })
        .unwrap();
    }
}

#[test]
fn a_hostile_body_from_a_peer_is_dropped_and_the_process_goes_on() {
    let rt = Runtime::new();
    let master = rt.spawn(Master::default());
    let peer = Upid::new("agent", "10.0.0.2:5051".parse().unwrap());
    let before = rt.stats().dropped_messages;
    let bodies = hostile_bodies();
    for body in &bodies {
        rt.inbound()
            .deliver(peer.clone(), &master.upid(), Register::NAME, body.clone());
    }
    let good = Register {
        hostname: "host-a".into(),
        tags: vec![1],
    };
    rt.inbound()
        .deliver(peer, &master.upid(), Register::NAME, encode(&good).unwrap());
    let seen = rt
        .block_on(dispatch(&master, |m: &mut Master| {
            m.registered.lock().clone()
        }))
        .expect("the master is alive");
    assert_eq!(seen, ["host-a"]);
    assert_eq!(rt.stats().dropped_messages, before + bodies.len() as u64);
    assert_eq!(rt.stats().panicked, 0);
    rt.shutdown();
}
