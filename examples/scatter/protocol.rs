//! What the scatter processes say to each other, and the statistics they compute.
//!
//! Every message crosses the network between the main node and the worker node, so each is
//! serializable; none needs an acknowledgement because the ventilator's timeout covers a lost
//! one (the chunk is issued again).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use procession::{Message, Upid};
use serde::{Deserialize, Serialize};

/// A byte range of one input file: the unit of work, and the key of the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Chunk {
    /// The input's path (every node reads the same file system).
    pub input: String,
    /// The first byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// A byte histogram: exact, and added chunk by chunk in any order to the same total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    // A `Vec`, not `[u64; 256]`: serde derives arrays only up to 32 elements.
    histogram: Vec<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            histogram: vec![0; 256],
        }
    }
}

impl Stats {
    /// The histogram of `bytes`.
    pub fn of(bytes: &[u8]) -> Stats {
        let mut stats = Stats::default();
        for &byte in bytes {
            stats.histogram[usize::from(byte)] += 1;
        }
        stats
    }

    /// The histogram of the bytes `start..end` of the file at `path`, read in one pass (short at
    /// the end of the file): what the scattered computation must equal.
    pub fn of_file(path: &Path, start: u64, end: u64) -> io::Result<Stats> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.take(end.saturating_sub(start))
            .read_to_end(&mut bytes)?;
        Ok(Stats::of(&bytes))
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Stats) {
        for (count, more) in self.histogram.iter_mut().zip(&other.histogram) {
            *count += more;
        }
    }

    /// How many bytes were counted.
    pub fn bytes(&self) -> u64 {
        self.histogram.iter().sum()
    }

    /// The mean byte value.
    pub fn mean(&self) -> f64 {
        let sum: u64 = (0u64..).zip(&self.histogram).map(|(b, n)| b * n).sum();
        sum as f64 / self.bytes().max(1) as f64
    }

    /// The most common byte (the smallest of equals).
    pub fn mode(&self) -> u8 {
        let mut best = 0u8;
        for (byte, count) in (0u8..=255).zip(&self.histogram) {
            if *count > self.histogram[usize::from(best)] {
                best = byte;
            }
        }
        best
    }

    /// Shannon entropy in bits per byte.
    pub fn entropy(&self) -> f64 {
        let total = self.bytes() as f64;
        self.histogram
            .iter()
            .filter(|n| **n > 0)
            .map(|n| {
                let p = *n as f64 / total;
                -p * p.log2()
            })
            .sum()
    }
}

/// One answer to a request: the statistics of the chunks known so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// How many of the request's chunks these statistics cover.
    pub chunks: usize,
    /// How many chunks the request has.
    pub of: usize,
    /// Their statistics.
    pub stats: Stats,
}

impl Answer {
    /// Whether this answer covers the whole request (it is then the last).
    pub fn is_complete(&self) -> bool {
        self.chunks == self.of
    }
}

/// Ventilator → worker: compute `chunk` and report to `sink`.
#[derive(Clone, Debug, Serialize, Deserialize, Message)]
pub struct Work {
    /// This issue of the chunk; a chunk issued again gets a new task.
    pub task: u64,
    /// What to compute.
    pub chunk: Chunk,
    /// Where to send the result.
    pub sink: Upid,
}

/// Ventilator → worker: nobody wants these tasks any more.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Cancel {
    /// The tasks to stop or skip; all of a worker's in one message, so that none of them
    /// starts after another is stopped.
    pub tasks: Vec<u64>,
}

/// Worker → sink: `task` is done.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Done {
    /// The task.
    pub task: u64,
    /// Its chunk.
    pub chunk: Chunk,
    /// The chunk's statistics.
    pub stats: Stats,
}

/// Worker → sink: `task` was cancelled before it was done.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Stopped {
    /// The task.
    pub task: u64,
    /// Whether its work had started (stopped mid-way) or it was still queued (skipped).
    pub started: bool,
}

/// Worker → sink: `task` cannot be computed (its input cannot be read).
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Failed {
    /// The task.
    pub task: u64,
    /// Its chunk.
    pub chunk: Chunk,
    /// Why.
    pub error: String,
}
