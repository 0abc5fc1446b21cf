//! Mutual challenge–response authentication with a shared secret, run on every connection before
//! any frame when the node has a secret.
//!
//! ```text
//! acceptor  -> connector: nonce_a                                   (32 random bytes)
//! connector -> acceptor:  nonce_c, HMAC-SHA256(secret, "c" | nonce_a | nonce_c)
//! acceptor  -> connector: HMAC-SHA256(secret, "a" | nonce_c | nonce_a)
//! ```
//!
//! Each side proves it holds the secret by answering a challenge it could not predict, and the
//! secret itself never crosses the wire. A side that fails the check closes the connection; the
//! acceptor logs the refusal. Tags are compared in constant time.

use std::io;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const NONCE: usize = 32;
const TAG: usize = 32;

fn nonce() -> io::Result<[u8; NONCE]> {
    let mut nonce = [0; NONCE];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(nonce)
}

fn mac(secret: &[u8], role: &[u8], first: &[u8], second: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(role);
    mac.update(first);
    mac.update(second);
    mac
}

fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, what.to_owned())
}

/// The acceptor's side: challenges the connector, checks its answer, answers its challenge.
pub(crate) async fn accept<S>(stream: &mut S, secret: &[u8]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let nonce_a = nonce()?;
    stream.write_all(&nonce_a).await?;
    let mut reply = [0; NONCE + TAG];
    stream.read_exact(&mut reply).await?;
    let (nonce_c, tag) = reply.split_at(NONCE);
    mac(secret, b"c", &nonce_a, nonce_c)
        .verify_slice(tag)
        .map_err(|_| refused("the peer does not hold the shared secret"))?;
    let answer = mac(secret, b"a", nonce_c, &nonce_a).finalize().into_bytes();
    stream.write_all(&answer).await
}

/// The connector's side: answers the acceptor's challenge and checks its answer to ours.
pub(crate) async fn connect<S>(stream: &mut S, secret: &[u8]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut nonce_a = [0; NONCE];
    stream.read_exact(&mut nonce_a).await?;
    let nonce_c = nonce()?;
    let tag = mac(secret, b"c", &nonce_a, &nonce_c)
        .finalize()
        .into_bytes();
    let mut reply = Vec::with_capacity(NONCE + TAG);
    reply.extend_from_slice(&nonce_c);
    reply.extend_from_slice(&tag);
    stream.write_all(&reply).await?;
    let mut answer = [0; TAG];
    stream.read_exact(&mut answer).await?;
    mac(secret, b"a", &nonce_c, &nonce_a)
        .verify_slice(&answer)
        .map_err(|_| refused("the listening peer does not hold the shared secret"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs both sides, each dropping its end when done (as a refused connection is closed).
    async fn pair(a: &'static [u8], c: &'static [u8]) -> (io::Result<()>, io::Result<()>) {
        let (mut left, mut right) = tokio::io::duplex(256);
        tokio::join!(async move { accept(&mut left, a).await }, async move {
            connect(&mut right, c).await
        })
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_same_secret_passes_both_ways() {
        let (a, c) = run(pair(b"sesame", b"sesame"));
        a.unwrap();
        c.unwrap();
    }

    #[test]
    fn a_different_secret_is_refused() {
        let (a, c) = run(pair(b"sesame", b"guess"));
        assert_eq!(a.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert!(c.is_err());
    }
}
