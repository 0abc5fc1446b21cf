//! Mutual TLS for every connection (feature `tls`), with rustls and its ring provider.
//!
//! With [`Builder::tls`](crate::Builder::tls), every connection the node accepts or makes is
//! TLS: each node presents its certificate and checks the other's against the CAs it trusts.
//! Nodes are addressed by IP, so a node's certificate must name the IP address it advertises
//! (an IP subject alternative name such as `127.0.0.1`); a connecting node checks that name,
//! the accepting node checks only that a trusted CA signed the certificate. When the node also
//! has a [shared secret](crate::Builder::secret), that handshake runs inside TLS.
//!
//! # Refusals
//!
//! A connection that is not TLS (a node without TLS, or any other client), presents a
//! certificate no trusted CA signed, or (accepted) does not finish the handshake within the
//! [handshake timeout](crate::Builder::handshake_timeout) (5 seconds by default) is closed,
//! logged (a `warn` event) and counted in the `net.dropped.tls` metric; the node serves its
//! other peers on. A connection this node makes that fails its handshake is logged and counted
//! the same way and then treated like an unreachable node: what was queued for it is dropped
//! and every local process linked to one of its processes gets `exited(Lost)`.
//!
//! The ring provider is chosen explicitly for every configuration built here: no process-wide
//! default provider is needed, and none is installed.
//!
//! ```
//! use procession::{monitor, ExitReason, Runtime, Upid};
//! use procession_net::{Net, TlsConfig};
//! use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
//!
//! // A throwaway CA, and one certificate naming the IP both nodes listen on.
//! let mut authority = CertificateParams::default();
//! authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! let ca = CertifiedIssuer::self_signed(authority, KeyPair::generate()?)?;
//! let key = KeyPair::generate()?;
//! let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &ca)?;
//! let tls = TlsConfig::from_pem(
//!     cert.pem().as_bytes(),
//!     key.serialize_pem().as_bytes(),
//!     ca.pem().as_bytes(),
//! )?;
//!
//! let (here, there) = (Runtime::new(), Runtime::new());
//! let _here = Net::builder().tls(tls.clone()).start(&here)?;
//! let there_net = Net::builder().tls(tls).start(&there)?;
//! let ghost: Upid = format!("ghost@{}", there_net.address()).parse()?;
//!
//! // A round trip over TLS: the other node answers that no such process exists.
//! let entered = here.enter();
//! assert_eq!(here.block_on(monitor(&ghost))?, ExitReason::NotFound);
//! drop(entered);
//!
//! // A node without TLS is refused: to it, the TLS node is lost.
//! let plain = Runtime::new();
//! let _plain = Net::start(&plain)?;
//! let _entered = plain.enter();
//! assert_eq!(plain.block_on(monitor(&ghost))?, ExitReason::Lost);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{Accept, Connect, TlsAcceptor, TlsConnector};

/// The TLS settings of a node: a rustls server configuration for the connections it accepts and
/// a client configuration for those it makes. Cheap to clone (both are shared).
///
/// [`from_pem`](Self::from_pem) builds mutual TLS from PEM files; [`new`](Self::new) takes any
/// rustls configurations. Give it to [`Builder::tls`](crate::Builder::tls).
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl TlsConfig {
    /// Uses `server` for accepted connections and `client` for the connections this node
    /// makes, as they are.
    ///
    /// The client side names each peer by its IP address ([`ServerName::IpAddress`]), so the
    /// certificates `client` accepts must carry the peer's IP as a subject alternative name.
    /// To refuse peers without a certificate, `server` needs a client-certificate verifier
    /// (as [`from_pem`](Self::from_pem) sets up); nothing here checks that. Misconfigurations
    /// show up as refused handshakes, not as errors here.
    pub fn new(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig {
            acceptor: TlsAcceptor::from(server),
            connector: TlsConnector::from(client),
        }
    }

    /// Mutual TLS from PEM: the node presents `chain` (its certificate first, then any
    /// intermediates) with the private `key` (PKCS#8, PKCS#1 or SEC1), and accepts only peers
    /// whose certificate chains to one of the certificates in `ca`, both when it accepts a
    /// connection and when it makes one. Uses rustls's ring provider and its safe default
    /// protocol versions (TLS 1.3 and 1.2).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when a PEM input does not parse, `chain` or `ca` holds no certificate,
    /// `key` holds no private key, a CA certificate cannot be used as a trust anchor, or the
    /// key is not one the provider supports or does not match the certificate.
    pub fn from_pem(chain: &[u8], key: &[u8], ca: &[u8]) -> io::Result<TlsConfig> {
        let chain = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("the node certificate chain", e))?;
        if chain.is_empty() {
            return Err(invalid("the node certificate chain", "no certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid("the node key", e))?;
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(ca) {
            let certificate = certificate.map_err(|e| invalid("the CA certificates", e))?;
            roots
                .add(certificate)
                .map_err(|e| invalid("a CA certificate", e))?;
        }
        let roots = Arc::new(roots);
        let provider: Arc<CryptoProvider> = Arc::new(ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| invalid("the CA certificates", e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("the crypto provider", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| invalid("the node certificate and key", e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("the crypto provider", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid("the node certificate and key", e))?;
        Ok(TlsConfig::new(Arc::new(server), Arc::new(client)))
    }

    /// The server side of the handshake on an accepted connection.
    pub(crate) fn accept(&self, stream: TcpStream) -> Accept<TcpStream> {
        self.acceptor.accept(stream)
    }

    /// The client side of the handshake with the node at `address`, named by its IP.
    pub(crate) fn connect(&self, address: SocketAddr, stream: TcpStream) -> Connect<TcpStream> {
        self.connector
            .connect(ServerName::from(address.ip()), stream)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server", self.acceptor.config())
            .field("client", self.connector.config())
            .finish()
    }
}

fn invalid(what: &str, error: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {error}"))
}
