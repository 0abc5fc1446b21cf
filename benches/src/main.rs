//! The procession benchmark harness: the workloads of `PERFORMANCE.md` on procession and its
//! peers (tokio by hand on 2 and 1 workers, actix, ractor, kameo).
//!
//! `bench [--rounds N] [--systems a,b] [--workloads W1,W2] [--timeout SECS]` runs every
//! (system, workload) pair `N` times, each in a fresh child process (`bench run SYSTEM WORKLOAD`)
//! so memory figures start clean, rotating the order of the systems every round. It prints one
//! JSON line per run and, at the end, a Markdown table of medians with the ratios against the
//! best peer. `PROCESSION_BENCH_SCALE` (default 1.0) multiplies every count.

mod actix;
mod chunk;
mod kameo;
mod procession;
mod ractor;
mod report;
mod shared;
mod tokio_by_hand;
mod workload;

use report::{format_value, table};
pub use shared::*;
pub use workload::{scale, Counts, RemoteFlow, Workload, REMOTE_WARMUP};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Systems.

/// One system under test: each workload, measured in this (fresh) process.
pub trait System {
    /// W1: `round_trips` ping-pongs between two actors; the elapsed time.
    fn ping_pong(&self, round_trips: u64) -> Duration;
    /// W1b/W2: a client asks `x -> x + 1` of one server `total` times, `window` in flight.
    fn ask(&self, total: u64, window: usize) -> Duration;
    /// W3: `producers` producers tell one counter `per_producer` times each; elapsed until the
    /// counter has seen them all.
    fn fan_in(&self, producers: usize, per_producer: u64) -> Duration;
    /// W4: spawn `actors`, ask each once (all in flight), await the replies in a loop, stop all
    /// and wait for each in a loop.
    fn spawn_ask_stop(&self, actors: usize) -> Duration;
    /// W4-mem: RSS growth in bytes per idle actor over `actors` actors (handles in a Vec),
    /// spawned and left alone until they have all started (the RSS has settled).
    fn idle_memory(&self, actors: usize) -> f64;
    /// W5: a ring of `nodes` actors passing one token `hops` times.
    fn ring(&self, nodes: usize, hops: u64) -> Duration;
    /// The `then` workload; `None` where it does not apply.
    fn then_chain(&self, chains: u64) -> Option<Duration> {
        let _ = chains;
        None
    }
    /// W3 into a mailbox bounded to `capacity`, senders waiting for room; `None` where it does
    /// not apply.
    fn fan_in_bounded(
        &self,
        producers: usize,
        per_producer: u64,
        capacity: usize,
    ) -> Option<Duration> {
        let _ = (producers, per_producer, capacity);
        None
    }
    /// `restarts` crash-and-restart cycles of a supervised child; `None` where it does not apply.
    fn restart(&self, restarts: u64) -> Option<Duration> {
        let _ = restarts;
        None
    }
    /// `chunks` clones of one `chunk`-byte `Bytes` from a producer task, which awaits each
    /// write, to a consumer task, through a channel that holds `capacity` bytes: procession's
    /// pipe whatever `peer` says, `peer` for tokio; `None` where it does not apply.
    fn pipe(&self, peer: PipePeer, chunks: u64, chunk: usize, capacity: usize) -> Option<Duration> {
        let _ = (peer, chunks, chunk, capacity);
        None
    }
    /// The same `chunks` through source | transform | sink, a task per stage and each hop
    /// bounded at `capacity` bytes; the transform XORs every byte into a new chunk ([`xor`]).
    /// `None` where it does not apply.
    fn pipeline(&self, chunks: u64, chunk: usize, capacity: usize) -> Option<Duration> {
        let _ = (chunks, chunk, capacity);
        None
    }
    /// One producer task puts `items` into an unbounded queue, one consumer task awaits them
    /// one at a time; elapsed until it has them all. `None` where it does not apply.
    fn queue(&self, items: u64) -> Option<Duration> {
        let _ = items;
        None
    }
    /// `tasks` tasks each lock one mutex, increment a shared counter and unlock, `per_task`
    /// times. `None` where it does not apply.
    fn mutex(&self, tasks: usize, per_task: u64) -> Option<Duration> {
        let _ = (tasks, per_task);
        None
    }
    /// Two endpoints in this OS process exchange a small message over loopback TCP,
    /// `round_trips` times, the next only after the reply (after [`REMOTE_WARMUP`] untimed
    /// round trips over the same connections). `None` where it does not apply.
    fn remote_ping_pong(&self, round_trips: u64) -> Option<Duration> {
        let _ = round_trips;
        None
    }
    /// A sender streams `messages` messages of `body` bytes to a receiver over loopback TCP
    /// under the window protocol `flow` (after one untimed window); elapsed until the receiver
    /// has them all. `None` where it does not apply.
    fn remote_one_way(&self, messages: u64, body: usize, flow: RemoteFlow) -> Option<Duration> {
        let _ = (messages, body, flow);
        None
    }
}

/// The tokio channel a pipe run is measured against.
#[derive(Clone, Copy, Debug)]
pub enum PipePeer {
    /// A bounded mpsc of `Bytes` (bounded in chunks): chunks are moved, as in the pipe.
    Mpsc,
    /// `tokio::io::duplex` (bounded in bytes): a byte stream, so every chunk is copied in with
    /// `write_all` and out with `read` into a buffer.
    Duplex,
}

/// The systems, in the order of the table's columns.
const SYSTEMS: [&str; 6] = [
    "procession",
    "tokio-2w",
    "tokio-1w",
    "actix",
    "ractor",
    "kameo",
];

/// The peers "best peer" is taken from (PERFORMANCE.md: tokio by hand on 2 workers, actix,
/// ractor, kameo).
const BEST_PEER_FROM: [&str; 4] = ["tokio-2w", "actix", "ractor", "kameo"];

fn system(name: &str) -> Option<Box<dyn System>> {
    Some(match name {
        // `self::`: these modules share their names with the crates they measure.
        "procession" => Box::new(self::procession::Procession),
        "tokio-2w" => Box::new(self::tokio_by_hand::TokioByHand { workers: 2 }),
        "tokio-1w" => Box::new(self::tokio_by_hand::TokioByHand { workers: 1 }),
        "actix" => Box::new(self::actix::Actix),
        "ractor" => Box::new(self::ractor::Ractor),
        "kameo" => Box::new(self::kameo::Kameo),
        _ => return None,
    })
}

/// Whether `system` runs `workload`: the `then` chain compares procession with a chain of
/// `futures` combinators on a current-thread tokio runtime, reported as tokio-1w.
fn supports(system: &str, workload: Workload) -> bool {
    match workload {
        Workload::Then => matches!(system, "procession" | "tokio-1w"),
        Workload::W3Bounded | Workload::Restart => system == "procession",
        // actix, ractor and kameo have no pipe, queue or mutex of their own: these rows compare
        // procession with tokio by hand only.
        Workload::Pipe
        | Workload::PipeDuplex
        | Workload::Pipeline
        | Workload::Queue
        | Workload::Mutex
        | Workload::MutexContended => {
            matches!(system, "procession" | "tokio-2w" | "tokio-1w")
        }
        // Nor remoting comparable with procession-net in this harness: these rows compare
        // procession with raw TCP written by hand on tokio.
        Workload::RemotePingPong | Workload::RemoteOneWay | Workload::RemoteOneWay64k => {
            matches!(system, "procession" | "tokio-2w" | "tokio-1w")
        }
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// The child: one (system, workload) in this process.

fn measure(system: &dyn System, workload: Workload, counts: &Counts) -> Option<f64> {
    let ns_per = |elapsed: Duration, n: u64| elapsed.as_nanos() as f64 / n as f64;
    let per_second = |elapsed: Duration, n: u64| n as f64 / elapsed.as_secs_f64();
    let streamed = counts.chunks * counts.chunk as u64;
    let gib_per_second = |elapsed: Duration| per_second(elapsed, streamed) / (1u64 << 30) as f64;
    Some(match workload {
        Workload::W1 => ns_per(system.ping_pong(counts.ping_pong), counts.ping_pong),
        Workload::W1b => ns_per(system.ask(counts.ask_one, 1), counts.ask_one),
        Workload::W2 => per_second(
            system.ask(counts.ask_window, counts.window),
            counts.ask_window,
        ),
        Workload::W3 => per_second(
            system.fan_in(counts.producers, counts.per_producer),
            counts.producers as u64 * counts.per_producer,
        ),
        Workload::W4 => per_second(system.spawn_ask_stop(counts.spawn), counts.spawn as u64),
        Workload::W4Mem => system.idle_memory(counts.idle),
        Workload::W5 => per_second(
            system.ring(counts.ring_nodes, counts.ring_hops),
            counts.ring_hops,
        ),
        Workload::Then => ns_per(system.then_chain(counts.chains)?, counts.chains),
        Workload::W3Bounded => per_second(
            system.fan_in_bounded(counts.producers, counts.per_producer, 1024)?,
            counts.producers as u64 * counts.per_producer,
        ),
        Workload::Restart => ns_per(system.restart(counts.restarts)?, counts.restarts),
        Workload::Pipe | Workload::PipeDuplex => {
            let peer = if workload == Workload::Pipe {
                PipePeer::Mpsc
            } else {
                PipePeer::Duplex
            };
            gib_per_second(system.pipe(peer, counts.chunks, counts.chunk, counts.pipe_capacity)?)
        }
        Workload::Pipeline => {
            keep_freed_memory();
            gib_per_second(system.pipeline(counts.chunks, counts.chunk, counts.pipe_capacity)?)
        }
        Workload::Queue => per_second(system.queue(counts.queue_items)?, counts.queue_items),
        Workload::Mutex => ns_per(system.mutex(1, counts.locks)?, counts.locks),
        Workload::MutexContended => {
            let per_task = (counts.locks / counts.contenders as u64).max(1);
            ns_per(
                system.mutex(counts.contenders, per_task)?,
                per_task * counts.contenders as u64,
            )
        }
        Workload::RemotePingPong => ns_per(
            system.remote_ping_pong(counts.remote_round_trips)?,
            counts.remote_round_trips,
        ),
        Workload::RemoteOneWay | Workload::RemoteOneWay64k => {
            let messages = if workload == Workload::RemoteOneWay {
                counts.remote_messages
            } else {
                counts.remote_messages_64k
            };
            let body = workload.body_bytes()?;
            let flow = workload.flow()?;
            per_second(system.remote_one_way(messages, body, flow)?, messages)
        }
    })
}

fn json_line(system: &str, workload: Workload, value: Option<f64>, error: Option<&str>) -> String {
    let value = match value {
        Some(v) if v.is_finite() => format!("{v:.1}"),
        _ => "null".to_owned(),
    };
    let mut line = format!(
        "{{\"system\":\"{system}\",\"workload\":\"{}\",\"value\":{value},\"unit\":\"{}\"",
        workload.name(),
        workload.unit()
    );
    if let Some(error) = error {
        let escaped = error.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = write!(line, ",\"error\":\"{escaped}\"");
    }
    line.push('}');
    line
}

fn child(args: &[String]) -> ExitCode {
    let [system_name, workload_name] = args else {
        eprintln!("usage: bench run SYSTEM WORKLOAD");
        return ExitCode::from(2);
    };
    let Some(workload) = Workload::parse(workload_name) else {
        eprintln!("unknown workload {workload_name:?}");
        return ExitCode::from(2);
    };
    let Some(system) = system(system_name) else {
        eprintln!("unknown system {system_name:?}");
        return ExitCode::from(2);
    };
    let counts = Counts::at(scale());
    let Some(value) = measure(&*system, workload, &counts) else {
        eprintln!("{system_name} does not run {}", workload.name());
        return ExitCode::from(3);
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{}",
        json_line(system_name, workload, Some(value), None)
    );
    let _ = stdout.flush();
    // Skip the teardown (hundreds of thousands of live actors in some workloads): the figure is
    // out, and the OS reclaims everything.
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------------
// The parent: every pair, N rounds, rotated; JSON lines, then the table.

struct Options {
    rounds: usize,
    systems: Vec<&'static str>,
    workloads: Vec<Workload>,
    timeout: Duration,
}

fn usage() -> &'static str {
    "usage: bench [--rounds N] [--systems a,b,..] [--workloads W1,W2,..] [--timeout SECS]\n\
     \x20      bench run SYSTEM WORKLOAD   (one measurement in this process)\n\
     \x20      bench list\n\
     systems: procession tokio-2w tokio-1w actix ractor kameo\n\
     workloads: W1 W1b W2 W3 W4 W4-mem W5 then W3-bounded restart\n\
     \x20          pipe pipe-duplex pipeline queue mutex mutex-contended\n\
     \x20          remote-ping-pong remote-oneway remote-oneway-64k\n\
     PROCESSION_BENCH_SCALE (default 1.0) multiplies every count."
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        rounds: 5,
        systems: SYSTEMS.to_vec(),
        workloads: Workload::ALL.to_vec(),
        timeout: Duration::from_secs(900),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--rounds" => {
                options.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?;
            }
            "--timeout" => {
                let secs: u64 = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                options.timeout = Duration::from_secs(secs);
            }
            "--systems" => {
                let list = value()?;
                options.systems = list
                    .split(',')
                    .map(|name| {
                        SYSTEMS
                            .into_iter()
                            .find(|s| *s == name.trim())
                            .ok_or_else(|| format!("unknown system {name:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--workloads" => {
                let list = value()?;
                options.workloads = list
                    .split(',')
                    .map(|name| {
                        Workload::parse(name.trim())
                            .ok_or_else(|| format!("unknown workload {name:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if options.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(options)
}

/// Runs `bench run system workload` in a child process and returns its value.
fn run_child(system: &str, workload: Workload, timeout: Duration) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args(["run", system, workload.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning the child: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the child: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("child exited with {status}"));
    }
    out.lines()
        .find_map(|line| {
            let rest = line.split_once("\"value\":")?.1;
            let number = rest.split([',', '}']).next()?.trim();
            number.parse::<f64>().ok()
        })
        .ok_or_else(|| format!("no value in the child's output {out:?}"))
}

fn parent(args: &[String]) -> ExitCode {
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let scale = scale();
    eprintln!(
        "scale {scale}, {} rounds; counts: {:?}",
        options.rounds,
        Counts::at(scale)
    );
    let mut results: BTreeMap<(Workload, &'static str), Vec<f64>> = BTreeMap::new();
    let mut failures = 0;
    let stdout = std::io::stdout();
    for round in 0..options.rounds {
        let mut order = options.systems.clone();
        let len = order.len();
        order.rotate_left(round % len.max(1));
        for &workload in &options.workloads {
            for &system in &order {
                if !supports(system, workload) {
                    continue;
                }
                let line = match run_child(system, workload, options.timeout) {
                    Ok(value) => {
                        results.entry((workload, system)).or_default().push(value);
                        eprintln!(
                            "round {}/{}: {:<7} {:<11} {} {}",
                            round + 1,
                            options.rounds,
                            workload.name(),
                            system,
                            format_value(workload, value),
                            workload.unit()
                        );
                        json_line(system, workload, Some(value), None)
                    }
                    Err(error) => {
                        failures += 1;
                        eprintln!(
                            "round {}/{}: {} {} FAILED: {error}",
                            round + 1,
                            options.rounds,
                            workload.name(),
                            system
                        );
                        json_line(system, workload, None, Some(&error))
                    }
                };
                let mut out = stdout.lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }
    let mut out = stdout.lock();
    let _ = writeln!(out, "\n{}", table(&options, &results));
    if failures > 0 {
        eprintln!("{failures} runs failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => child(&args[1..]),
        Some("list") => {
            println!("systems: {}", SYSTEMS.join(" "));
            let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
            println!("workloads: {}", names.join(" "));
            ExitCode::SUCCESS
        }
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        _ => parent(&args),
    }
}
