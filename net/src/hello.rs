//! The hello: what each end of a new connection says of itself before any frame.
//!
//! ```text
//! u8   version (the frame format's, 4)
//! u64  incarnation of the sending node (big-endian, nonzero)
//! u8   length of the address, then the node's address (`ip:port`, UTF-8)
//! ```
//!
//! Once a connection is authenticated (TLS, the shared secret), the connecting node sends its
//! hello and may send frames at once; the accepting node reads that hello before any frame and
//! answers with its own, the only bytes it ever writes on the connection. A node that hears a new
//! incarnation for an address knows the earlier run of that node is gone: connections to or from
//! that run are left over (a host that vanished without closing them) and are closed, which
//! reports the earlier run's processes lost to their linkers. A hello that is malformed or of
//! another version closes the connection.
//!
//! ```
//! use procession_net::hello::Hello;
//!
//! let hello = Hello { address: "127.0.0.1:5050".parse().unwrap(), incarnation: 7 };
//! let mut wire = bytes::BytesMut::from(&hello.encode()[..]);
//! assert_eq!(Hello::decode(&mut wire).unwrap(), Some(hello));
//! assert!(wire.is_empty());
//! ```

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::frame::{FrameError, VERSION};

/// The bytes before the address: version, incarnation, address length.
const FIXED: usize = 10;

/// One node's hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The address the node's Upids carry.
    pub address: SocketAddr,
    /// The node's run (never 0).
    pub incarnation: u64,
}

impl Hello {
    /// The hello's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let address = self.address.to_string();
        let mut out = Vec::with_capacity(FIXED + address.len());
        out.push(VERSION);
        out.extend_from_slice(&self.incarnation.to_be_bytes());
        // An `ip:port` is well under 255 bytes, a scoped IPv6 address included.
        out.push(address.len() as u8);
        out.extend_from_slice(address.as_bytes());
        out
    }

    /// Takes a hello off the front of `buffer`: `Ok(None)` while its bytes have not all
    /// arrived (nothing is taken).
    ///
    /// # Errors
    ///
    /// [`FrameError::Version`] for a hello of another version, [`FrameError::Field`] for an
    /// incarnation of 0 or an address that is not `ip:port`.
    pub fn decode(buffer: &mut BytesMut) -> Result<Option<Hello>, FrameError> {
        let Some(fixed) = buffer.get(..FIXED) else {
            return Ok(None);
        };
        let (incarnation, length) = fixed_part(fixed.try_into().expect("FIXED bytes"))?;
        let Some(address) = buffer.get(FIXED..FIXED + length) else {
            return Ok(None);
        };
        let hello = Hello {
            address: address_part(address)?,
            incarnation,
        };
        buffer.advance(FIXED + length);
        Ok(Some(hello))
    }

    /// Reads the peer's hello off `stream`: `UnexpectedEof` if it ends before the hello's first
    /// byte, `InvalidData` if it ends inside the hello or the hello is bad.
    pub(crate) async fn read(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Hello> {
        let invalid = |error: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad hello: {error}"))
        };
        let cut_short = |error: io::Error| match error.kind() {
            io::ErrorKind::UnexpectedEof => invalid(&"the connection ends inside it"),
            _ => error,
        };
        let mut fixed = [0; FIXED];
        stream.read_exact(&mut fixed[..1]).await?;
        stream
            .read_exact(&mut fixed[1..])
            .await
            .map_err(cut_short)?;
        let (incarnation, length) = fixed_part(&fixed).map_err(|e| invalid(&e))?;
        let mut address = [0; u8::MAX as usize];
        stream
            .read_exact(&mut address[..length])
            .await
            .map_err(cut_short)?;
        Ok(Hello {
            address: address_part(&address[..length]).map_err(|e| invalid(&e))?,
            incarnation,
        })
    }
}

/// The incarnation and the address's length.
fn fixed_part(fixed: &[u8; FIXED]) -> Result<(u64, usize), FrameError> {
    if fixed[0] != VERSION {
        return Err(FrameError::Version(fixed[0]));
    }
    let incarnation = u64::from_be_bytes(fixed[1..9].try_into().expect("8 bytes"));
    if incarnation == 0 {
        return Err(FrameError::Field("incarnation"));
    }
    Ok((incarnation, usize::from(fixed[9])))
}

fn address_part(bytes: &[u8]) -> Result<SocketAddr, FrameError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(FrameError::Field("address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            address: "[2001:db8::1]:4000".parse().unwrap(),
            incarnation: u64::MAX,
        }
    }

    #[test]
    fn a_hello_arrives_whole_or_not_at_all() {
        let bytes = hello().encode();
        for cut in 0..bytes.len() {
            let mut part = BytesMut::from(&bytes[..cut]);
            assert_eq!(Hello::decode(&mut part), Ok(None));
            assert_eq!(part.len(), cut, "nothing is taken");
        }
        let mut whole = BytesMut::from(&bytes[..]);
        whole.extend_from_slice(b"next");
        assert_eq!(Hello::decode(&mut whole), Ok(Some(hello())));
        assert_eq!(&whole[..], b"next");
    }

    #[test]
    fn a_bad_hello_says_what_is_wrong() {
        let mut other = hello().encode();
        other[0] = VERSION - 1;
        let mut zero = hello().encode();
        zero[1..9].fill(0);
        let mut garbage = hello().encode();
        garbage[12] = b'x';
        for (bytes, error) in [
            (other, FrameError::Version(VERSION - 1)),
            (zero, FrameError::Field("incarnation")),
            (garbage, FrameError::Field("address")),
        ] {
            assert_eq!(Hello::decode(&mut BytesMut::from(&bytes[..])), Err(error));
        }
    }

    #[test]
    fn reading_takes_exactly_the_hello() {
        let mut stream = hello().encode();
        stream.extend_from_slice(b"frames");
        let mut reader = &stream[..];
        let read = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Hello::read(&mut reader))
            .unwrap();
        assert_eq!((read, reader), (hello(), &b"frames"[..]));
    }

    #[test]
    fn a_stream_ending_before_the_hello_is_told_from_one_ending_inside_it() {
        let bytes = hello().encode();
        let run = |mut reader: &[u8]| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(Hello::read(&mut reader))
                .unwrap_err()
                .kind()
        };
        assert_eq!(run(&[]), io::ErrorKind::UnexpectedEof);
        for cut in [1, 9, FIXED, bytes.len() - 1] {
            assert_eq!(run(&bytes[..cut]), io::ErrorKind::InvalidData, "{cut}");
        }
    }
}
