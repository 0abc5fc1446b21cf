//! The transport over mutual TLS (feature `tls`), several nodes in one binary on loopback ports,
//! with certificates made at test time: request/reply and order under load, TLS with the shared
//! secret, refusals (a plain node, another CA, a certificate for another address, a handshake
//! that never comes) that are logged and counted and leave the node serving its other peers, and
//! links across TLS when a process ends or its node shuts down.
#![cfg(feature = "tls")]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

use procession::{monitor, send, terminate, Context, ExitReason, Message, Process, Runtime, Upid};
use procession_net::{Net, TlsConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use serde::{Deserialize, Serialize};
use support::{counter, watch, PATIENCE};

mod support;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note(u64);
impl Message for Note {
    const NAME: &'static str = "tls-test::Note";
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ask(u64);
impl Message for Ask {
    const NAME: &'static str = "tls-test::Ask";
}

/// Records every `Note` (with its sender); answers an `Ask(n)` with `Note(n * 2)`.
struct Inbox(mpsc::Sender<(Upid, u64)>);

impl Process for Inbox {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, from: &Upid, Note(n)| {
            let _ = me.0.send((from.clone(), n));
        })
        .unwrap();
        ctx.install(|_: &mut Self, from: &Upid, Ask(n)| send(from, Note(n * 2)))
            .unwrap();
    }
}

fn inbox(runtime: &Runtime) -> (Upid, mpsc::Receiver<(Upid, u64)>) {
    let (notes, received) = mpsc::channel();
    (runtime.spawn(Inbox(notes)).upid(), received)
}

/// A throwaway certificate authority.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// Mutual TLS for a node whose certificate, signed by this CA, names `ip`.
    fn node_for(&self, ip: &str) -> TlsConfig {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![ip.to_owned()]).unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.0).unwrap();
        TlsConfig::from_pem(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            self.0.pem().as_bytes(),
        )
        .unwrap()
    }

    /// Mutual TLS for a node on loopback.
    fn node(&self) -> TlsConfig {
        self.node_for("127.0.0.1")
    }
}

/// A runtime with a TLS transport on a loopback port.
fn tls_node(config: &TlsConfig) -> (Runtime, Net) {
    let runtime = Runtime::new();
    let net = Net::builder().tls(config.clone()).start(&runtime).unwrap();
    (runtime, net)
}

/// `Ask` from a process on `from` to `target`, and the answer: proof both ways work.
fn round_trip(from: &Runtime, target: &Upid) {
    let (asker, replies) = inbox(from);
    {
        let _entered = from.enter();
        procession::post(&asker, target, Ask(21));
    }
    assert_eq!(
        replies.recv_timeout(PATIENCE).unwrap(),
        (target.clone(), 42)
    );
}

/// Waits until `condition` holds; panics after [`PATIENCE`] (a guard against a hang, not a
/// timing assertion).
fn eventually(condition: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "the condition never held");
        std::thread::yield_now();
    }
}

/// What the transport logged at `warn` and above, for every test in this binary (tests run in
/// parallel); the first call starts the capture.
fn logged() -> String {
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    struct Capture(&'static Mutex<Vec<u8>>);
    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .with_ansi(false)
            .with_writer(move || Capture(log))
            .try_init();
        log
    });
    String::from_utf8_lossy(&log.lock().unwrap()).into_owned()
}

#[test]
fn request_and_reply_across_tls_nodes() {
    let ca = Ca::new();
    let (a, _net_a) = tls_node(&ca.node());
    let (b, _net_b) = tls_node(&ca.node());
    let (answerer, _) = inbox(&b);
    round_trip(&a, &answerer);
    assert_eq!(counter(&a, "net.dropped.tls"), 0);
    assert_eq!(counter(&b, "net.dropped.tls"), 0);
}

#[test]
fn messages_over_tls_keep_their_order_under_load() {
    let ca = Ca::new();
    let (a, _net_a) = tls_node(&ca.node());
    let (b, _net_b) = tls_node(&ca.node());
    let (sender, _) = inbox(&a);
    let (receiver, received) = inbox(&b);
    let count = 5_000;
    {
        let _entered = a.enter();
        for i in 0..count {
            procession::post(&sender, &receiver, Note(i));
        }
    }
    for expected in 0..count {
        assert_eq!(
            received.recv_timeout(PATIENCE).unwrap(),
            (sender.clone(), expected)
        );
    }
    assert!(counter(&b, "net.messages_in") >= count);
}

#[test]
fn tls_and_the_shared_secret_together() {
    let ca = Ca::new();
    let secure = |secret: &str| {
        let runtime = Runtime::new();
        let net = Net::builder()
            .tls(ca.node())
            .secret(secret)
            .start(&runtime)
            .unwrap();
        (runtime, net)
    };
    let (a, _net_a) = secure("sesame");
    let (b, _net_b) = secure("sesame");
    let (c, _net_c) = secure("guess");
    let (target, received) = inbox(&b);
    round_trip(&a, &target);
    // A good certificate without the secret passes TLS and fails the secret's handshake.
    let _entered = c.enter();
    let refused = monitor(&target);
    send(&target, Note(2));
    assert_eq!(c.block_on(refused).unwrap(), ExitReason::Lost);
    assert!(received.recv_timeout(Duration::from_millis(200)).is_err());
    assert!(counter(&b, "net.dropped.unauthenticated") >= 1);
    assert_eq!(counter(&b, "net.dropped.tls"), 0);
}

#[test]
fn a_plain_node_is_refused_logged_and_counted_and_others_are_served() {
    logged();
    let ca = Ca::new();
    let (b, net_b) = tls_node(&ca.node());
    let (target, received) = inbox(&b);
    let plain = Runtime::new();
    let _net_plain = Net::start(&plain).unwrap();
    let notices = watch(&plain, &target);
    {
        let _entered = plain.enter();
        send(&target, Note(1));
    }
    assert_eq!(
        notices.recv_timeout(PATIENCE).unwrap(),
        (target.clone(), ExitReason::Lost)
    );
    // Counted and logged once the accepting side has read the bytes that are not TLS.
    eventually(|| counter(&b, "net.dropped.tls") >= 1);
    eventually(|| logged().contains("connection refused: TLS handshake failed"));
    assert!(received.try_recv().is_err(), "a plain message got through");
    let (a, _net_a) = tls_node(&ca.node());
    round_trip(&a, &target);
    drop(net_b);
}

#[test]
fn a_tls_node_cannot_reach_a_plain_node() {
    let ca = Ca::new();
    let (a, _net_a) = tls_node(&ca.node());
    let plain = Runtime::new();
    let _net_plain = Net::start(&plain).unwrap();
    let (target, received) = inbox(&plain);
    let notices = watch(&a, &target);
    assert_eq!(
        notices.recv_timeout(PATIENCE).unwrap(),
        (target.clone(), ExitReason::Lost)
    );
    assert!(counter(&a, "net.dropped.tls") >= 1);
    assert!(received.try_recv().is_err());
}

#[test]
fn certificates_from_another_ca_are_refused_both_ways() {
    let (ca, other) = (Ca::new(), Ca::new());
    let (a, _net_a) = tls_node(&ca.node());
    let (b, _net_b) = tls_node(&other.node());
    let (on_a, _) = inbox(&a);
    let (on_b, _) = inbox(&b);
    let a_hears = watch(&a, &on_b);
    let b_hears = watch(&b, &on_a);
    assert_eq!(
        a_hears.recv_timeout(PATIENCE).unwrap(),
        (on_b.clone(), ExitReason::Lost)
    );
    assert_eq!(
        b_hears.recv_timeout(PATIENCE).unwrap(),
        (on_a.clone(), ExitReason::Lost)
    );
    // Each refused the other's certificate when connecting.
    assert!(counter(&a, "net.dropped.tls") >= 1);
    assert!(counter(&b, "net.dropped.tls") >= 1);
    // Both still serve the nodes of their own CA.
    let (c, _net_c) = tls_node(&other.node());
    round_trip(&c, &on_b);
    let (d, _net_d) = tls_node(&ca.node());
    round_trip(&d, &on_a);
}

#[test]
fn a_certificate_for_another_address_is_refused() {
    let ca = Ca::new();
    let (a, _net_a) = tls_node(&ca.node());
    let (b, _net_b) = tls_node(&ca.node_for("10.9.8.7"));
    let (target, _) = inbox(&b);
    let notices = watch(&a, &target);
    assert_eq!(
        notices.recv_timeout(PATIENCE).unwrap(),
        (target, ExitReason::Lost)
    );
    assert!(counter(&a, "net.dropped.tls") >= 1);
}

#[test]
fn a_handshake_that_never_comes_is_cut_off_and_others_are_served() {
    let ca = Ca::new();
    let (b, net_b) = tls_node(&ca.node());
    let (target, _) = inbox(&b);
    let mut silent = TcpStream::connect(net_b.address()).unwrap();
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    // While the silent connection hangs in its handshake, a TLS peer is served.
    let (a, _net_a) = tls_node(&ca.node());
    round_trip(&a, &target);
    // The node gives up on the silent one: its read ends instead of timing out.
    match silent.read(&mut [0; 64]) {
        Ok(n) => assert_eq!(n, 0, "the node wrote to a connection that sent nothing"),
        Err(error) => assert!(
            !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the silent connection was never closed"
        ),
    }
    eventually(|| counter(&b, "net.dropped.tls") >= 1);
}

#[test]
fn a_linker_hears_when_a_process_across_tls_terminates() {
    let ca = Ca::new();
    let (a, _net_a) = tls_node(&ca.node());
    let (b, _net_b) = tls_node(&ca.node());
    let target = b.spawn(Inbox(mpsc::channel().0));
    let notices = watch(&a, &target.upid());
    // The link reaches b before the terminate does: a round trip on the same connection.
    round_trip(&a, &target.upid());
    terminate(&target);
    assert_eq!(
        notices.recv_timeout(PATIENCE).unwrap(),
        (target.upid(), ExitReason::Normal)
    );
}

#[test]
fn linkers_hear_lost_when_a_tls_node_shuts_down() {
    let ca = Ca::new();
    let (a, _net_a) = tls_node(&ca.node());
    let (b, net_b) = tls_node(&ca.node());
    let (target, _) = inbox(&b);
    let notices = watch(&a, &target);
    round_trip(&a, &target);
    net_b.shutdown();
    b.shutdown();
    let (upid, reason) = notices.recv_timeout(PATIENCE).unwrap();
    assert_eq!(upid, target);
    assert!(
        matches!(reason, ExitReason::Lost | ExitReason::Normal),
        "the node's shutdown ends the process ({reason:?}) or loses the node"
    );
}

#[test]
fn bad_pem_is_an_error_not_a_panic() {
    let ca = Ca::new();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca.0)
        .unwrap();
    let (cert, key, authority) = (cert.pem(), key.serialize_pem(), ca.0.pem());
    let (cert, key, authority) = (cert.as_bytes(), key.as_bytes(), authority.as_bytes());
    let refused = |what: &str, chain: &[u8], key: &[u8], authority: &[u8]| {
        let error = TlsConfig::from_pem(chain, key, authority).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{what}: {error}");
    };
    refused(
        "garbage",
        b"-----BEGIN CERTIFICATE-----\n!!\n",
        key,
        authority,
    );
    refused("no certificate", b"", key, authority);
    refused("no key", cert, b"", authority);
    refused("no CA", cert, key, b"");
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    refused("another key", cert, other_key.as_bytes(), authority);
    TlsConfig::from_pem(cert, key, authority).unwrap();
}
