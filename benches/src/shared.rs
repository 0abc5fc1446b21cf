//! Helpers the systems share: memory readings, tokio runtimes, per-actor arithmetic, the
//! pipeline's data and transform.

use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers the systems share.

/// The resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field is the resident page count");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

const SETTLE_STEP: Duration = Duration::from_millis(50);
const SETTLE_MAX_STEPS: usize = 200;

/// The RSS once it has stopped changing (two equal readings in a row, 50 ms apart): every actor
/// just spawned has started and gone idle. Blocks this thread while others work.
pub fn settled_rss_blocking() -> u64 {
    let mut settling = Settling::new();
    for _ in 0..SETTLE_MAX_STEPS {
        std::thread::sleep(SETTLE_STEP);
        if settling.observe() {
            break;
        }
    }
    settling.last
}

/// [`settled_rss_blocking`] for a driver task: sleeps with tokio's timer, so the runtime's
/// threads (or actix's one thread) run the actors' start-up meanwhile.
pub async fn settled_rss() -> u64 {
    let mut settling = Settling::new();
    for _ in 0..SETTLE_MAX_STEPS {
        tokio::time::sleep(SETTLE_STEP).await;
        if settling.observe() {
            break;
        }
    }
    settling.last
}

/// Readings of the RSS until it holds still for two steps in a row.
struct Settling {
    last: u64,
    stable: u32,
}

impl Settling {
    fn new() -> Self {
        Settling {
            last: rss_bytes(),
            stable: 0,
        }
    }

    /// Takes a reading; true once the RSS has held still long enough.
    fn observe(&mut self) -> bool {
        let now = rss_bytes();
        self.stable = if now == self.last { self.stable + 1 } else { 0 };
        self.last = now;
        self.stable == 2
    }
}

/// A multi-thread tokio runtime with `workers` workers.
pub fn tokio_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// Runs `driver` as a task on `runtime`'s workers (not on the calling thread) and waits for it.
pub fn drive<F>(runtime: &tokio::runtime::Runtime, driver: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime
        .block_on(runtime.spawn(driver))
        .expect("the driver task panicked")
}

/// Bytes per actor from two RSS readings.
pub fn per_actor(before: u64, after: u64, actors: usize) -> f64 {
    (after as f64 - before as f64) / actors as f64
}

/// The chunk every pipe and pipeline run sends (as clones, so the source never copies): `len`
/// bytes of a repeating pattern.
pub fn payload(len: usize) -> bytes::Bytes {
    (0..len).map(|i| i as u8).collect::<Vec<u8>>().into()
}

/// The pipeline's transform, a stand-in for a cheap compressor: every byte of `chunk` XORed
/// with 0x5A into a new chunk, so each byte is read and written once and each chunk allocates.
pub fn xor(chunk: &[u8]) -> bytes::Bytes {
    chunk.iter().map(|b| b ^ 0x5A).collect::<Vec<u8>>().into()
}

/// Has glibc keep the memory freed in this process rather than hand it back to the OS. The
/// pipeline allocates a chunk per item on one task and frees it on another; whether glibc's
/// default 128 KiB trim threshold then returns pages (a `madvise` every few chunks, each page
/// faulted in again by the next allocations) depends on how the frees interleave with other
/// allocations, not on the channels: left on, it made the tokio reference up to 6× slower and
/// procession barely so.
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes glibc's tuning; it is called before the run allocates.
    unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) };
}
