//! Bad input, over real sockets and in the options: a bad or missing hello, garbage, an
//! oversized length prefix, an unknown version, a frame cut short, unknown message names and
//! receivers. The node closes what cannot be trusted,
//! counts and drops the rest, never panics, and keeps serving a well-behaved peer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use procession::{send, Message, Runtime, Upid};
use procession_net::frame::{Frame, Kind};
use procession_net::hello::Hello;
use procession_net::Net;

mod support;
use support::{Inbox, Note};

fn malformed(runtime: &Runtime) -> u64 {
    support::counter(runtime, "net.dropped.malformed")
}

/// Writes `bytes` on a fresh connection after the hellos, ends it, and waits for the node to
/// close its side.
fn closed_after(net: &Net, bytes: &[u8]) {
    closed_after_writing(support::introduced(net).0, bytes);
}

/// Writes `bytes` on `stream`, ends it, and waits for the node to close its side.
fn closed_after_writing(mut stream: TcpStream, bytes: &[u8]) {
    stream.set_read_timeout(Some(support::PATIENCE)).unwrap();
    stream.write_all(bytes).unwrap();
    // Ending our side turns a frame cut short into one the node can tell is broken.
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    // The node closes the connection: the read ends (or is reset) rather than timing out.
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty()),
        Err(error) => assert_ne!(error.kind(), std::io::ErrorKind::WouldBlock, "not closed"),
    }
}

fn frame(to: &Upid, name: &str, body: Bytes) -> BytesMut {
    let mut wire = BytesMut::new();
    Frame {
        kind: Kind::Message,
        from: "stranger@127.0.0.1:9".parse().unwrap(),
        to: to.clone(),
        name: name.into(),
        body,
    }
    .encode(&mut wire)
    .unwrap();
    wire
}

#[test]
fn garbage_and_broken_frames_close_only_their_connection() {
    let runtime = Runtime::new();
    let net = Net::builder().max_frame(1024).start(&runtime).unwrap();
    let (notes, received) = mpsc::channel();
    let inbox = runtime.spawn(Inbox(notes)).upid();
    let good = frame(
        &inbox,
        Note::NAME,
        procession::message::encode(&Note(5)).unwrap(),
    );

    closed_after(&net, b"\x00\x00\x00\x08GARBAGE!");
    closed_after(&net, &u32::MAX.to_be_bytes());
    let mut wrong_version = good.clone();
    wrong_version[4] = 99;
    closed_after(&net, &wrong_version);
    closed_after(&net, &good[..good.len() - 3]);
    let oversized = frame(&inbox, Note::NAME, Bytes::from(vec![0; 2048]));
    closed_after(&net, &oversized);
    assert!(malformed(&runtime) >= 5, "{}", malformed(&runtime));

    // A well-behaved peer is still served.
    let (mut stream, hello) = support::introduced(&net);
    assert_eq!(hello.address, net.address());
    assert_eq!(Some(hello.incarnation), inbox.incarnation());
    stream.write_all(&good).unwrap();
    assert_eq!(received.recv_timeout(Duration::from_secs(20)).unwrap(), 5);
}

#[test]
fn a_run_with_a_broken_body_delivers_none_of_its_messages() {
    let (runtime, net) = support::node();
    let (notes, received) = mpsc::channel();
    let inbox = runtime.spawn(Inbox(notes)).upid();
    // A frame of two messages, the second's length running past the frame's end.
    let mut run = frame(
        &inbox,
        Note::NAME,
        procession::message::encode(&Note(1)).unwrap(),
    );
    run.extend_from_slice(&1000u32.to_be_bytes());
    run.extend_from_slice(&procession::message::encode(&Note(2)).unwrap());
    let length = u32::from_be_bytes(run[..4].try_into().unwrap()) + 4 + 8;
    run[..4].copy_from_slice(&length.to_be_bytes());
    closed_after(&net, &run);
    assert_eq!(malformed(&runtime), 1);
    let good = frame(
        &inbox,
        Note::NAME,
        procession::message::encode(&Note(5)).unwrap(),
    );
    support::introduced(&net).0.write_all(&good).unwrap();
    assert_eq!(received.recv_timeout(support::PATIENCE).unwrap(), 5);
}

#[test]
fn a_connection_without_a_valid_hello_is_closed_and_counted() {
    let (runtime, net) = support::node();
    let hello = Hello {
        address: support::STRANGER.parse().unwrap(),
        incarnation: 1,
    }
    .encode();
    let mut other_version = hello.clone();
    other_version[0] = procession_net::frame::VERSION - 1;
    let mut run_zero = hello.clone();
    run_zero[1..9].fill(0);
    let mut no_address = hello.clone();
    no_address[10] = b'?';
    for bad in [other_version, run_zero, no_address] {
        let connect = TcpStream::connect(net.address()).unwrap();
        closed_after_writing(connect, &bad);
    }
    closed_after_writing(TcpStream::connect(net.address()).unwrap(), &hello[..4]);
    assert_eq!(malformed(&runtime), 4);
    support::introduced(&net);
}

#[test]
fn a_connection_that_never_says_hello_is_cut_off() {
    let (runtime, net) = support::node();
    let mut silent = TcpStream::connect(net.address()).unwrap();
    silent.set_read_timeout(Some(support::PATIENCE)).unwrap();
    // Within the handshake's 5 seconds, the node closes it: the read ends, not times out.
    match silent.read(&mut [0; 64]) {
        Ok(n) => assert_eq!(n, 0, "the node wrote to a connection that said nothing"),
        Err(error) => assert_ne!(error.kind(), std::io::ErrorKind::WouldBlock, "not closed"),
    }
    assert_eq!(malformed(&runtime), 1);
}

#[test]
fn unknown_names_and_receivers_are_dropped_and_counted() {
    let runtime = Runtime::new();
    let net = Net::start(&runtime).unwrap();
    let (notes, received) = mpsc::channel();
    let inbox = runtime.spawn(Inbox(notes)).upid();
    let nobody: Upid = format!("nobody@{}", net.address()).parse().unwrap();
    let before = runtime.stats().dropped_messages;
    let (mut stream, _) = support::introduced(&net);
    let body = procession::message::encode(&Note(1)).unwrap();
    stream
        .write_all(&frame(&inbox, "no::SuchMessage", body.clone()))
        .unwrap();
    stream.write_all(&frame(&nobody, Note::NAME, body)).unwrap();
    stream
        .write_all(&frame(
            &inbox,
            Note::NAME,
            Bytes::from_static(b"\xff\xff\xff"),
        ))
        .unwrap();
    stream
        .write_all(&frame(
            &inbox,
            Note::NAME,
            procession::message::encode(&Note(2)).unwrap(),
        ))
        .unwrap();
    // The connection survived the three bad messages: the good one after them arrives.
    assert_eq!(received.recv_timeout(Duration::from_secs(20)).unwrap(), 2);
    assert!(runtime.stats().dropped_messages >= before + 3);
    let _entered = runtime.enter();
    send(&inbox, Note(3));
    assert_eq!(received.recv_timeout(Duration::from_secs(20)).unwrap(), 3);
}

#[test]
fn a_clashing_metric_name_is_an_error_not_a_panic() {
    let runtime = Runtime::new();
    runtime.metrics().gauge("net.bytes_in").unwrap();
    let error = Net::start(&runtime).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("net.bytes_in"), "{error}");
}

#[test]
fn listening_on_an_unspecified_address_needs_one_to_advertise() {
    let runtime = Runtime::new();
    let listen = "0.0.0.0:0".parse().unwrap();
    let error = Net::builder().listen(listen).start(&runtime).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let advertised = "127.0.0.1:1".parse().unwrap();
    let net = Net::builder()
        .listen(listen)
        .advertise(advertised)
        .start(&runtime)
        .unwrap();
    assert_eq!(net.address(), advertised);
}
