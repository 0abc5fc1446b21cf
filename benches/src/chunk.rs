//! The message of the 100-byte remote stream, shared by the harness and `send_path`.

use bytes::Bytes;
use procession::Message;
use serde::{Deserialize, Serialize};

/// One message of the one-way stream. The body is encoded as a byte string (its length, then
/// the bytes) and decoded on the receiving node as a slice of the bytes received, not a copy.
#[derive(Serialize, Deserialize)]
pub struct Chunk {
    pub seq: u64,
    #[serde(with = "procession::message::shared_bytes")]
    pub body: Bytes,
}

impl Message for Chunk {
    const NAME: &'static str = "bench::Chunk";
}
