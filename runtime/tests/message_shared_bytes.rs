//! `shared_bytes` fields: a slice of the received message when the runtime decodes one for a
//! handler, a copy when decoded any other way, and the same encoding as a plain `Bytes` field.

use std::sync::mpsc;

use bytes::Bytes;
use procession::message::shared_bytes::SHARED_FROM;
use procession::message::{decode, encode};
use procession::{Context, Message, Process, Runtime, Upid};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message, Debug, PartialEq)]
struct Chunk {
    seq: u64,
    #[serde(with = "procession::message::shared_bytes")]
    body: Bytes,
}

#[derive(Serialize, Deserialize, Message, Debug, PartialEq)]
struct Plain {
    seq: u64,
    body: Bytes,
}

/// Whether `part`'s bytes lie inside `whole`'s memory.
fn inside(whole: &Bytes, part: &Bytes) -> bool {
    let (start, at) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    at >= start && at + part.len() <= start + whole.len()
}

struct Keeper(mpsc::Sender<Bytes>);

impl Process for Keeper {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, chunk: Chunk| {
            let _ = me.0.send(chunk.body);
        })
        .unwrap();
    }
}

#[test]
fn a_handler_gets_a_slice_of_the_received_bytes() {
    let runtime = Runtime::new();
    let (bodies, received) = mpsc::channel();
    let keeper = runtime.spawn(Keeper(bodies)).upid();
    // Delivers a chunk of `body` as from another node: what the handler got, and the wire bytes.
    let deliver = |body: &Bytes| {
        let wire = encode(&Chunk {
            seq: 1,
            body: body.clone(),
        })
        .unwrap();
        let from: Upid = "sender@10.0.0.2:5050".parse().unwrap();
        runtime
            .inbound()
            .deliver(from, &keeper, Chunk::NAME, wire.clone());
        (received.recv().unwrap(), wire)
    };
    let body = Bytes::from(vec![7u8; 64 * 1024]);
    let (got, wire) = deliver(&body);
    assert_eq!(got, body);
    assert!(
        inside(&wire, &got),
        "no copy: the body shares the received bytes"
    );
    // A short field is copied: a few bytes kept must not keep the whole buffer.
    let short = Bytes::from(vec![1u8; SHARED_FROM - 1]);
    let (got, wire) = deliver(&short);
    assert_eq!(got, short);
    assert!(!inside(&wire, &got), "a short field is copied");
}

#[test]
fn decoded_elsewhere_it_is_a_copy_with_the_plain_encoding() {
    let chunk = Chunk {
        seq: 3,
        body: Bytes::from_static(b"some bytes"),
    };
    let wire = encode(&chunk).unwrap();
    let plain = encode(&Plain {
        seq: 3,
        body: chunk.body.clone(),
    })
    .unwrap();
    assert_eq!(wire, plain, "the same bytes on the wire as a plain field");
    let back: Chunk = decode(&wire).unwrap();
    assert_eq!(back, chunk);
    assert!(!inside(&wire, &back.body));
    let back: Plain = decode(&wire).unwrap();
    assert_eq!(back.body, chunk.body);
}

#[test]
fn formats_without_a_bytes_type_round_trip() {
    let chunk = Chunk {
        seq: 9,
        body: Bytes::from_static(&[0, 1, 254, 255]),
    };
    let json = serde_json::to_string(&chunk).unwrap();
    assert_eq!(serde_json::from_str::<Chunk>(&json).unwrap(), chunk);
    assert!(serde_json::from_str::<Chunk>(r#"{"seq":1,"body":5}"#).is_err());
}
