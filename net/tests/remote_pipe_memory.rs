//! A remote pipe moves any amount of data in bounded memory: a fast writer on one node and a
//! reader on another, with the heap of both (one OS process) measured throughout. The amount
//! is the scale knob `PROCESSION_PIPE_BYTES` (default 64 MiB here; 1 GiB and more in a
//! benchmark run). This binary counts heap bytes with its own allocator, so it holds this test
//! alone.

#[path = "../../runtime/tests/alloc_counter/mod.rs"]
mod alloc_counter;
mod support;

use bytes::Bytes;
use procession::Future;
use procession_net::pipe::remote_pipe_with_window;
use support::{node, PATIENCE};

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

const CHUNK: usize = 64 << 10;
const WINDOW: usize = 1 << 20;

fn total_bytes() -> usize {
    std::env::var("PROCESSION_PIPE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 20)
}

fn wait<T: Send + Sync + 'static>(future: &Future<T>) {
    assert!(future.wait_for(PATIENCE * 10), "stalled");
    assert!(future.is_ready(), "{:?}", future.error());
}

#[test]
fn gigabytes_cross_in_bounded_memory() {
    let total = total_bytes();
    let (reading, _reading_net) = node();
    let (writing, _writing_net) = node();
    let (mut reader, token) = {
        let _entered = reading.enter();
        remote_pipe_with_window(WINDOW)
    };
    let mut writer = {
        let _entered = writing.enter();
        token.open()
    };
    // Warm up (connections, buffers) before the baseline.
    let first = Bytes::from(vec![1u8; CHUNK]);
    wait(&writer.write(first));
    wait(&reader.read());
    alloc_counter::reset_peak();
    let baseline = alloc_counter::live();

    let reads = std::thread::spawn(move || {
        let mut got = 0usize;
        let mut sum = 0u64;
        loop {
            let read = reader.read();
            assert!(read.wait_for(PATIENCE * 10), "a read stalled");
            match read.outcome().expect("completed") {
                Ok(Some(chunk)) => {
                    got += chunk.len();
                    sum = chunk.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                }
                Ok(None) => return (got, sum),
                Err(error) => panic!("the reader failed: {error}"),
            }
        }
    });
    let mut sent = 0usize;
    let mut expected = 0u64;
    while sent < total {
        let byte = (sent / CHUNK) as u8;
        let chunk = Bytes::from(vec![byte; CHUNK]);
        expected = expected.wrapping_add(u64::from(byte) * CHUNK as u64);
        wait(&writer.write(chunk));
        sent += CHUNK;
    }
    writer.close();
    let (got, sum) = reads.join().unwrap();
    assert_eq!((got, sum), (sent, expected), "every byte arrived, intact");
    let grew = alloc_counter::peak() - baseline;
    // Both local pipes, the window in flight, the transport's buffers and one chunk in each
    // hand: a few windows, whatever the total.
    let bound = 24 * WINDOW as isize;
    eprintln!(
        "{} MiB moved; heap peak {} KiB above the baseline",
        total >> 20,
        grew >> 10
    );
    assert!(
        grew < bound,
        "{} MiB moved with the heap {} KiB above its baseline at the peak",
        total >> 20,
        grew >> 10
    );
}
