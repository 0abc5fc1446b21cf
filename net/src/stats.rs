//! The transport's metrics, registered on the runtime's registry under `net.`.

use procession::metrics::{Counter, Gauge, MetricError};
use procession::Metrics;

/// Why a frame, message or connection was dropped.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason {
    /// The peer's send buffer was full.
    PeerFull,
    /// The peer could not be reached, or the connection broke with frames still queued or being
    /// written.
    Unreachable,
    /// Bytes that are not a frame (bad length, version, kind or field), or a frame too large to
    /// encode.
    Malformed,
    /// A peer that failed the shared-secret handshake.
    Unauthenticated,
    /// A connection, in or out, whose TLS handshake failed or (inbound) did not finish in time.
    #[cfg(feature = "tls")]
    Tls,
}

/// Handles to every `net.*` metric; updates are relaxed atomics.
pub(crate) struct Stats {
    pub(crate) connections: Gauge,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) messages_in: Counter,
    pub(crate) messages_out: Counter,
    peer_full: Counter,
    unreachable: Counter,
    malformed: Counter,
    unauthenticated: Counter,
    #[cfg(feature = "tls")]
    tls: Counter,
}

impl Stats {
    /// Registers every `net.*` metric (a second transport on the runtime shares them).
    ///
    /// # Errors
    ///
    /// When one of the names is already registered as another kind of metric.
    pub(crate) fn register(metrics: &Metrics) -> Result<Stats, MetricError> {
        let counter = |name: &str| metrics.counter(name);
        Ok(Stats {
            connections: metrics.gauge("net.connections")?,
            bytes_in: counter("net.bytes_in")?,
            bytes_out: counter("net.bytes_out")?,
            messages_in: counter("net.messages_in")?,
            messages_out: counter("net.messages_out")?,
            peer_full: counter("net.dropped.peer_full")?,
            unreachable: counter("net.dropped.unreachable")?,
            malformed: counter("net.dropped.malformed")?,
            unauthenticated: counter("net.dropped.unauthenticated")?,
            #[cfg(feature = "tls")]
            tls: counter("net.dropped.tls")?,
        })
    }

    pub(crate) fn dropped(&self, why: Reason, count: u64) {
        let counter = match why {
            Reason::PeerFull => &self.peer_full,
            Reason::Unreachable => &self.unreachable,
            Reason::Malformed => &self.malformed,
            Reason::Unauthenticated => &self.unauthenticated,
            #[cfg(feature = "tls")]
            Reason::Tls => &self.tls,
        };
        counter.add(count);
    }
}

/// Runs `f` when dropped.
pub(crate) fn scopeguard(f: impl FnOnce()) -> impl std::ops::Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> std::ops::Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
