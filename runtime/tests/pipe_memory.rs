//! Memory a pipe pins: `read_from` over a source that trickles one byte per read must not keep
//! a whole read buffer alive per chunk, or a pipe bounded in bytes could pin gigabytes. This
//! binary counts live heap bytes with its own global allocator, so it holds this test alone.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use procession::pipe;
use procession::{Promise, Runtime};
use tokio::io::{AsyncRead, ReadBuf};

mod alloc_counter;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

/// A source that yields one byte per read, then the end (a socket or a child's stdout that
/// trickles).
struct Trickle {
    left: usize,
    eof: Option<Promise<()>>,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.left == 0 {
            if let Some(eof) = self.eof.take() {
                eof.set(());
            }
        } else {
            self.left -= 1;
            buf.put_slice(&[7]);
        }
        Poll::Ready(Ok(()))
    }
}

/// `read_from` allocates 64 KiB for every read and freezes it as the chunk, so each small read
/// pins a whole 64 KiB buffer while the pipe's bound counts its length: a pipe bounded at
/// 256 KiB of data can pin 256 Ki chunks x 64 KiB = 16 GiB. Here 512 one-byte reads (512 bytes
/// of data, far under the bound) pin 32 MiB.
#[test]
fn read_from_does_not_pin_a_64k_buffer_per_small_read() {
    const READS: usize = 512;
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let _entered = runtime.enter();
    let eof = Promise::new();
    let reached = eof.future();
    let before = alloc_counter::live();
    let reader = pipe::read_from(Trickle {
        left: READS,
        eof: Some(eof),
    });
    runtime.block_on(reached).unwrap();
    let pinned = alloc_counter::live() - before;
    let all = runtime.block_on(reader.read_all()).unwrap();
    assert_eq!(all.len(), READS);
    let limit = 4 * 1024 * 1024;
    assert!(
        pinned < limit,
        "{READS} bytes of data in the pipe pin {} KiB of heap",
        pinned / 1024
    );
    drop(_entered);
    runtime.shutdown();
}
