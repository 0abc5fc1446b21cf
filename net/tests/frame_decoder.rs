//! The frame decoder against good, truncated, oversized and random input (proptest stands in for
//! a coverage-guided fuzzer, which needs a nightly toolchain this project cannot assume).

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use procession::Upid;
use procession_net::frame::{Frame, FrameDecoder, FrameError, Kind, VERSION};

const LIMIT: usize = 64 * 1024;

fn upid() -> impl Strategy<Value = Upid> {
    ("[a-z][a-z0-9()_-]{0,20}", any::<[u8; 4]>(), any::<u16>())
        .prop_map(|(id, ip, port)| Upid::new(id, std::net::SocketAddr::from((ip, port))))
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        prop_oneof![Just(Kind::Message), Just(Kind::Link), Just(Kind::Exited)],
        upid(),
        upid(),
        ".{0,40}",
        proptest::collection::vec(any::<u8>(), 0..2048),
    )
        .prop_map(|(kind, from, to, name, body)| Frame {
            kind,
            from,
            to,
            name,
            // A link or an exit notice carries no body.
            body: match kind {
                Kind::Message => Bytes::from(body),
                Kind::Link | Kind::Exited => Bytes::new(),
            },
        })
}

fn encoded(frames: &[Frame]) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        frame.encode(&mut wire).unwrap();
    }
    wire
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_round_trip_through_any_chunking(frames in proptest::collection::vec(frame(), 1..8), cut in any::<prop::sample::Index>()) {
        let wire = encoded(&frames).freeze();
        let mut decoder = FrameDecoder::new(LIMIT);
        let split = cut.index(wire.len() + 1);
        let mut buf = BytesMut::from(&wire[..split]);
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            decoded.push(frame);
        }
        buf.extend_from_slice(&wire[split..]);
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            decoded.push(frame);
        }
        prop_assert_eq!(decoded, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic_or_overreach(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut decoder = FrameDecoder::new(LIMIT);
        let mut buf = BytesMut::from(&bytes[..]);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => prop_assert!(frame.body.len() <= LIMIT && buf.len() < before),
                Ok(None) => break,
                Err(_) => break,
            }
        }
    }

    #[test]
    fn every_truncation_of_a_frame_waits_for_more(frame in frame(), cut in any::<prop::sample::Index>()) {
        let wire = encoded(std::slice::from_ref(&frame));
        let short = cut.index(wire.len());
        let mut buf = BytesMut::from(&wire[..short]);
        prop_assert_eq!(FrameDecoder::new(LIMIT).decode(&mut buf), Ok(None));
        prop_assert_eq!(buf.len(), short, "a short buffer is left untouched");
    }
}

#[test]
fn oversized_length_prefix_is_refused_before_its_bytes_arrive() {
    let mut buf = BytesMut::new();
    buf.put_u32(u32::MAX);
    assert_eq!(
        FrameDecoder::new(LIMIT).decode(&mut buf),
        Err(FrameError::TooLarge {
            length: u32::MAX as usize,
            limit: LIMIT
        })
    );
}

/// A frame with a valid prefix around `content`.
fn raw(content: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(content.len() as u32);
    buf.put_slice(content);
    buf
}

#[test]
fn unknown_version_and_kind_are_errors() {
    let mut decoder = FrameDecoder::new(LIMIT);
    assert_eq!(
        decoder.decode(&mut raw(&[VERSION + 1, 0])),
        Err(FrameError::Version(VERSION + 1))
    );
    assert_eq!(
        decoder.decode(&mut raw(&[VERSION, 9, 0])),
        Err(FrameError::Kind(9))
    );
}

#[test]
fn fields_that_overrun_the_frame_are_truncation_errors() {
    let mut decoder = FrameDecoder::new(LIMIT);
    assert_eq!(
        decoder.decode(&mut raw(&[VERSION])),
        Err(FrameError::Truncated)
    );
    assert_eq!(
        decoder.decode(&mut raw(&[VERSION, 0, 0, 0xff, 0xff, b'a'])),
        Err(FrameError::Truncated)
    );
}

#[test]
fn malformed_addresses_are_field_errors() {
    let mut decoder = FrameDecoder::new(LIMIT);
    let mut content = vec![VERSION, 0, 0];
    for field in [&b"not-a-upid"[..], b"master@127.0.0.1:1", b"Name"] {
        content.extend_from_slice(&(field.len() as u16).to_be_bytes());
        content.extend_from_slice(field);
    }
    assert_eq!(
        decoder.decode(&mut raw(&content)),
        Err(FrameError::Field("from"))
    );
    content[5] = 0xff; // not UTF-8 any more
    assert_eq!(
        decoder.decode(&mut raw(&content)),
        Err(FrameError::Field("from"))
    );
}

#[test]
fn unknown_repeated_bits_and_a_repeat_of_nothing_are_errors() {
    let mut decoder = FrameDecoder::new(LIMIT);
    assert_eq!(
        decoder.decode(&mut raw(&[VERSION, 0, 0b1000])),
        Err(FrameError::Repeated(0b1000))
    );
    // A fresh decoder has no previous frame for `from` to repeat.
    assert_eq!(
        decoder.decode(&mut raw(&[VERSION, 0, 0b001])),
        Err(FrameError::NothingToRepeat("from"))
    );
}

/// A message frame from `a@127.0.0.1:1` to `b@127.0.0.1:2` named `N` whose bodies are
/// `bodies`: the bytes after its name, as given (so a test can make one overrun the frame).
fn run_frame(bodies: &[u8]) -> BytesMut {
    let mut content = vec![VERSION, 0, 0];
    for field in [&b"a@127.0.0.1:1"[..], b"b@127.0.0.1:2", b"N"] {
        content.extend_from_slice(&(field.len() as u16).to_be_bytes());
        content.extend_from_slice(field);
    }
    content.extend_from_slice(bodies);
    raw(&content)
}

#[test]
fn a_run_is_decoded_message_by_message() {
    let mut decoder = FrameDecoder::new(LIMIT);
    let mut buf = run_frame(b"\0\0\0\x03one\0\0\0\0\0\0\0\x05three");
    let mut bodies = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        assert_eq!((frame.kind, frame.name.as_str()), (Kind::Message, "N"));
        assert_eq!(frame.to.to_string(), "b@127.0.0.1:2");
        bodies.push(frame.body);
    }
    assert_eq!(bodies, [&b"one"[..], b"", b"three"]);
    assert!(buf.is_empty());
}

#[test]
fn a_body_past_its_frame_and_a_wrong_count_of_bodies_are_errors() {
    for (bodies, error) in [
        (&b"\0\0\0\x03one\0\0\0\x09two"[..], FrameError::Truncated),
        (b"\0\0\0\x03one\0\0", FrameError::Truncated),
        (b"", FrameError::Bodies),
    ] {
        let decoded = FrameDecoder::new(LIMIT).decode(&mut run_frame(bodies));
        assert_eq!(decoded, Err(error), "bodies {bodies:?}");
    }
    let mut link_with_body = run_frame(b"\0\0\0\x03one");
    link_with_body[5] = 1;
    assert_eq!(
        FrameDecoder::new(LIMIT).decode(&mut link_with_body),
        Err(FrameError::Bodies)
    );
}

#[test]
fn a_notice_with_a_body_cannot_be_encoded() {
    let notice = Frame {
        kind: Kind::Link,
        from: "a@127.0.0.1:1".parse().unwrap(),
        to: "b@127.0.0.1:2".parse().unwrap(),
        name: String::new(),
        body: Bytes::from_static(b"x"),
    };
    let mut out = BytesMut::new();
    assert_eq!(notice.encode(&mut out), Err(FrameError::Bodies));
    assert!(out.is_empty());
}

#[test]
fn a_long_run_is_returned_one_message_a_call_and_the_next_frame_after_it() {
    let mut decoder = FrameDecoder::new(LIMIT);
    let mut buf = run_frame(&[0; 4 * 10_000]);
    buf.extend_from_slice(&run_frame(b"\0\0\0\x04last"));
    let mut bodies = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        bodies.push(frame.body);
    }
    assert_eq!(bodies.len(), 10_001);
    assert!(bodies[..10_000].iter().all(Bytes::is_empty));
    assert_eq!(bodies[10_000], &b"last"[..]);
    assert!(buf.is_empty());
}
