//! Engine: the address a runtime's Upids carry, read on every send and every Upid made.
//!
//! It changes rarely (a transport starts listening) and is read all the time, from every
//! thread: an IPv4 address and port fit in one atomic word, read with a plain load, so that
//! readers never write a shared lock word. An IPv6 address is kept under a lock, which the word
//! then points readers to.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// Set in the word when the address is IPv6: read it from the lock.
const V6: u64 = 1 << 63;

pub(crate) struct Address {
    word: AtomicU64,
    v6: RwLock<Option<SocketAddr>>,
}

impl Address {
    pub(crate) fn new(address: SocketAddr) -> Self {
        let cell = Address {
            word: AtomicU64::new(0),
            v6: RwLock::new(None),
        };
        cell.set(address);
        cell
    }

    pub(crate) fn get(&self) -> SocketAddr {
        let word = self.word.load(Ordering::Acquire);
        if word & V6 == 0 {
            let ip = (word as u32).into();
            return SocketAddr::V4(SocketAddrV4::new(ip, (word >> 32) as u16));
        }
        self.v6
            .read()
            .expect("an IPv6 address is stored before the word says so")
    }

    pub(crate) fn set(&self, address: SocketAddr) {
        match address {
            SocketAddr::V4(v4) => {
                let word = u64::from(u32::from(*v4.ip())) | u64::from(v4.port()) << 32;
                self.word.store(word, Ordering::Release);
            }
            SocketAddr::V6(mut v6) => {
                // As a Upid keeps it (see `Upid::of_run`): no flow label, so that the runtime's
                // own Upids are local to it.
                v6.set_flowinfo(0);
                *self.v6.write() = Some(SocketAddr::V6(v6));
                self.word.store(V6, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_reads_back_as_it_was_set() {
        let addresses = [
            "127.0.0.1:0",
            "10.1.2.3:65535",
            "255.255.255.255:1",
            "[::1]:5050",
        ];
        let cell = Address::new("0.0.0.0:0".parse().unwrap());
        for text in addresses.into_iter().chain(["192.168.0.1:80"]) {
            let address: SocketAddr = text.parse().unwrap();
            cell.set(address);
            assert_eq!(cell.get(), address);
        }
    }
}
