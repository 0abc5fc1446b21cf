//! Remote pipes between two nodes on loopback: data intact and in order, back-pressure across
//! the network, and every way an end stops the other, including a lost node.

mod support;

use bytes::Bytes;
use procession::pipe::{PipeError, Reader, Writer};
use procession::{Failure, Future, Runtime};
use procession_net::pipe::{remote_pipe_with_window, remote_stream, RemotePipeError, RemoteWriter};
use procession_net::Net;
use support::{node, PATIENCE};

/// Waits (a guard against a hang, not a timing assertion) and returns the outcome.
fn outcome<T: Clone + Send + Sync + 'static>(future: &Future<T>) -> Result<T, String> {
    assert!(
        future.wait_for(PATIENCE),
        "still pending after {PATIENCE:?}"
    );
    match future.outcome().expect("completed") {
        Ok(value) => Ok(value.clone()),
        Err(error) => Err(error.to_string()),
    }
}

fn failure_of<T: Send + Sync + 'static>(future: &Future<T>) -> Failure {
    assert!(
        future.wait_for(PATIENCE),
        "still pending after {PATIENCE:?}"
    );
    let error = future.error().expect("failed");
    error
        .failure()
        .cloned()
        .unwrap_or_else(|| panic!("not a failure: {error}"))
}

struct Pair {
    reading: (Runtime, Net),
    writing: (Runtime, Net),
}

fn pair() -> Pair {
    Pair {
        reading: node(),
        writing: node(),
    }
}

impl Pair {
    fn bytes(&self, window: usize) -> (Reader, Writer) {
        let (reader, token) = {
            let _entered = self.reading.0.enter();
            remote_pipe_with_window(window)
        };
        (reader, self.open(token))
    }

    fn open<T: procession_net::pipe::Item>(&self, token: RemoteWriter<T>) -> Writer<T> {
        let _entered = self.writing.0.enter();
        token.open()
    }
}

fn chunk(n: usize, size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| (n * 31 + i) as u8).collect::<Vec<u8>>())
}

#[test]
fn bytes_arrive_intact_and_in_order() {
    let p = pair();
    let (reader, mut writer) = p.bytes(64 << 10);
    let chunks: Vec<Bytes> = (0..64).map(|n| chunk(n, 16 << 10)).collect();
    let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let all = reader.read_all();
    for c in chunks {
        outcome(&writer.write(c)).unwrap();
    }
    writer.close();
    assert_eq!(outcome(&all).unwrap(), expected);
}

#[test]
fn a_typed_stream_carries_its_items() {
    let p = pair();
    let (reader, token) = {
        let _entered = p.reading.0.enter();
        remote_stream::<(u32, String)>(16)
    };
    let mut writer = p.open(token);
    let items = reader.read_to_vec();
    for n in 0..500u32 {
        outcome(&writer.write((n, format!("item {n}")))).unwrap();
    }
    writer.close();
    let got = outcome(&items).unwrap();
    assert_eq!(got.len(), 500);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, (n, s))| *n == i as u32 && *s == format!("item {i}")));
}

#[test]
fn a_slow_reader_holds_the_remote_writer_within_the_bounds() {
    let window = 64 << 10;
    let p = pair();
    let (mut reader, mut writer) = p.bytes(window);
    // Nothing reads: writes are accepted only until the local pipe, the window in flight and
    // the reader's pipe are full.
    let mut accepted = 0;
    let blocked = loop {
        let write = writer.write(chunk(accepted, 8 << 10));
        if !write.wait_for(std::time::Duration::from_millis(500)) {
            break write;
        }
        outcome(&write).unwrap();
        accepted += 1;
        assert!(accepted < 1000, "the writer was never held back");
    };
    let bound = 3 * window + 2 * (8 << 10);
    assert!(
        accepted * (8 << 10) <= bound,
        "{accepted} chunks of 8 KiB accepted"
    );
    assert!(reader.buffered_len() <= window + (8 << 10));
    // Reading lets the held write through, and everything arrives.
    let mut got = 0;
    while got <= accepted {
        let read = reader.read();
        let item = outcome(&read).unwrap().expect("a chunk");
        assert_eq!(item, chunk(got, 8 << 10));
        got += 1;
    }
    outcome(&blocked).unwrap();
}

#[test]
fn a_failed_writer_fails_the_reader_with_its_message_after_the_data() {
    let p = pair();
    let (mut reader, mut writer) = p.bytes(64 << 10);
    outcome(&writer.write(chunk(1, 10))).unwrap();
    writer.fail("the disk is on fire");
    assert_eq!(outcome(&reader.read()).unwrap(), Some(chunk(1, 10)));
    let failure = failure_of(&reader.read());
    assert!(
        failure.message().contains("the disk is on fire"),
        "{failure:?}"
    );
    assert!(matches!(
        failure.downcast_ref::<RemotePipeError>(),
        Some(RemotePipeError::Failed(_))
    ));
}

#[test]
fn a_dropped_writer_fails_the_reader() {
    let p = pair();
    let (reader, writer) = p.bytes(64 << 10);
    drop(writer);
    let failure = failure_of(&reader.read_all());
    assert!(failure.message().contains("dropped"), "{failure:?}");
}

#[test]
fn closing_the_reader_fails_the_remote_writers_writes() {
    let p = pair();
    let (reader, mut writer) = p.bytes(64 << 10);
    outcome(&writer.write(chunk(1, 10))).unwrap();
    let closed = writer.reader_closed();
    reader.close();
    outcome(&closed).unwrap();
    let failure = failure_of(&writer.write(chunk(2, 10)));
    assert_eq!(
        failure.downcast_ref::<PipeError>(),
        Some(&PipeError::ReaderClosed),
        "{failure:?}"
    );
}

#[test]
fn a_token_opens_once() {
    let p = pair();
    let (mut reader, token) = {
        let _entered = p.reading.0.enter();
        remote_pipe_with_window(64 << 10)
    };
    let mut first = p.open(token.clone());
    // The first item through proves the first opening won: two openings racing would make
    // either one the first (each opens from a process of its own).
    outcome(&first.write(chunk(1, 100))).unwrap();
    assert_eq!(outcome(&reader.read()).unwrap(), Some(chunk(1, 100)));
    let mut second = p.open(token);
    outcome(&second.reader_closed()).unwrap();
    let failure = failure_of(&second.write(chunk(0, 1)));
    assert!(matches!(
        failure.downcast_ref::<RemotePipeError>(),
        Some(RemotePipeError::AlreadyOpen)
    ));
    let rest = reader.read_all();
    outcome(&first.write(chunk(2, 100))).unwrap();
    first.close();
    assert_eq!(outcome(&rest).unwrap(), chunk(2, 100));
}

#[test]
fn a_lost_reading_node_fails_the_writer() {
    let p = pair();
    let (reader, mut writer) = p.bytes(64 << 10);
    outcome(&writer.write(chunk(1, 10))).unwrap();
    let closed = writer.reader_closed();
    let (runtime, net) = p.reading;
    drop(reader);
    net.shutdown();
    runtime.crash();
    outcome(&closed).unwrap();
    let failure = failure_of(&writer.write(chunk(2, 10)));
    let lost = failure.downcast_ref::<RemotePipeError>();
    assert!(
        matches!(lost, Some(RemotePipeError::Lost(_)))
            || failure.downcast_ref::<PipeError>() == Some(&PipeError::ReaderClosed),
        "{failure:?}"
    );
}

#[test]
fn a_lost_writing_node_fails_the_reader_after_what_arrived() {
    let p = pair();
    let (mut reader, mut writer) = p.bytes(64 << 10);
    outcome(&writer.write(chunk(1, 10))).unwrap();
    assert_eq!(outcome(&reader.read()).unwrap(), Some(chunk(1, 10)));
    let (runtime, net) = p.writing;
    net.shutdown();
    runtime.crash();
    let failure = failure_of(&reader.read());
    assert!(
        matches!(
            failure.downcast_ref::<RemotePipeError>(),
            Some(RemotePipeError::Lost(_))
        ),
        "{failure:?}"
    );
    drop(writer);
}

/// A writer on another node that breaks the protocol: it opens the pipe like a forwarder, then
/// sends item 0 and item 2 (messages of the forwarder's wire names and encodings).
mod counterfeit {
    use bytes::Bytes;
    use procession::{send, Context, Message, Process, Upid};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Open;
    impl Message for Open {
        const NAME: &'static str = "procession.pipe.Open";
    }

    #[derive(Serialize, Deserialize)]
    struct Data {
        seq: u64,
        item: Bytes,
    }
    impl Message for Data {
        const NAME: &'static str = "procession.pipe.Data";
    }

    pub struct Forwarder(pub Upid);
    impl Process for Forwarder {
        fn initialize(&mut self, _: &mut Context<'_, Self>) {
            send(&self.0, Open);
            for seq in [0, 2] {
                let item = Bytes::from(vec![seq as u8; 4]);
                send(&self.0, Data { seq, item });
            }
        }
    }
}

#[test]
fn a_gap_in_the_items_fails_the_reader_with_a_protocol_error_after_the_data() {
    let p = pair();
    let (mut reader, token) = {
        let _entered = p.reading.0.enter();
        remote_pipe_with_window(64 << 10)
    };
    p.writing
        .0
        .spawn(counterfeit::Forwarder(token.receiver().clone()));
    assert_eq!(
        outcome(&reader.read()).unwrap(),
        Some(Bytes::from(vec![0; 4]))
    );
    let failure = failure_of(&reader.read());
    assert!(
        failure.message().contains("item 2 arrived where 1 was due"),
        "{failure:?}"
    );
    assert!(matches!(
        failure.downcast_ref::<RemotePipeError>(),
        Some(RemotePipeError::Protocol(_))
    ));
}
