//! The libprocess model in one program, step by step, each step printed: a queue process reached
//! with `dispatch`; `defer` back into a process; `collect` of two asynchronous steps then a
//! third, under one timeout (`after`) over the whole computation that discards the work, with
//! the discard shown reaching the steps; `run_blocking` for a blocking call; `Queue`, `Mutex` and
//! a subprocess killed by a timeout; and, on a paused clock, a one-hour timer fired by `advance`
//! and `settle`, and a message dropped by a filter and spoofed back with a changed field.
//!
//! Run it with `cargo run --example tour`; `cargo test --example tour` checks what each step
//! returns. (`cargo run --example hello` is the shorter tour of crashes, links and supervisors.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use procession::subprocess::subprocess;
use procession::{
    after, collect, defer, delay, dispatch, run_blocking, send, Context, Error, Future, Message,
    Mutex, Pid, Process, Queue, Runtime, Upid,
};
use procession_testkit::{await_ready, drop_message, post, Match};

/// libprocess's first example: state that only its process touches, reached through `dispatch`.
#[derive(Default)]
struct QueueProcess {
    items: VecDeque<String>,
}

impl Process for QueueProcess {}

impl QueueProcess {
    fn enqueue(&mut self, item: String) {
        self.items.push_back(item);
    }

    fn dequeue(&mut self) -> Option<String> {
        self.items.pop_front()
    }
}

/// Step 1: two enqueues and a dequeue, all dispatched; one sender's dispatches run in order.
fn queue_process(runtime: &Runtime) -> (Pid<QueueProcess>, Option<String>) {
    let queue = runtime.spawn(QueueProcess::default());
    for item in ["fetch", "compress"] {
        dispatch(&queue, move |q: &mut QueueProcess| q.enqueue(item.into()));
    }
    let first = runtime.block_on(dispatch(&queue, QueueProcess::dequeue));
    (queue, first.expect("the queue process is alive"))
}

/// Takes items off a queue process and keeps them.
#[derive(Default)]
struct Merger {
    me: Option<Pid<Merger>>,
    merged: Vec<String>,
}

impl Process for Merger {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        self.me = Some(ctx.pid());
    }
}

impl Merger {
    /// The dequeue answers on whatever thread completes it; `defer` makes the merge one of this
    /// process's own events, so `merged` needs no lock.
    fn merge_from(&mut self, queue: &Pid<QueueProcess>) -> Future<usize> {
        let me = self.me.as_ref().expect("initialized before any dispatch");
        let merge = defer(me, |m: &mut Merger, item: Option<String>| {
            m.merged.extend(item);
            m.merged.len()
        });
        dispatch(queue, QueueProcess::dequeue).then(merge)
    }
}

/// Step 2: a process dequeues from the queue process and `defer`s the answer back into itself.
fn defer_back(runtime: &Runtime, queue: &Pid<QueueProcess>) -> Vec<String> {
    let merger = runtime.spawn(Merger::default());
    let queue = queue.clone();
    let merging = dispatch(&merger, move |m: &mut Merger| m.merge_from(&queue)).flatten();
    runtime.block_on(merging).expect("merged");
    let merged = dispatch(&merger, |m: &mut Merger| m.merged.clone());
    runtime.block_on(merged).expect("the merger is alive")
}

/// A store whose lookups answer after a latency, standing in for a remote service.
#[derive(Default)]
struct Store {
    quotes: u64,
}

impl Process for Store {}

impl Store {
    fn lookup(&mut self, value: u64, latency: Duration) -> Future<u64> {
        after(latency).map(move |_| value)
    }

    fn quote(&mut self, price: u64, stock: u64) -> u64 {
        self.quotes += 1;
        price * stock
    }
}

/// What step 3 did: its answer, how each lookup ended, and how many quotes the store computed.
struct Quote {
    answer: Result<u64, Error>,
    price: Result<u64, Error>,
    stock: Result<u64, Error>,
    quotes: u64,
    elapsed: Duration,
}

/// Step 3: two lookups in parallel, `collect`ed, then a third step on both answers, with one
/// timeout over the whole computation.
fn quote(runtime: &Runtime, stock_latency: Duration, timeout: Duration) -> Quote {
    let started = Instant::now();
    let store = runtime.spawn(Store::default());
    let price = dispatch(&store, |s: &mut Store| {
        s.lookup(12, Duration::from_millis(5))
    })
    .flatten();
    let stock = dispatch(&store, move |s: &mut Store| s.lookup(7, stock_latency)).flatten();
    let quoting = store.clone();
    let work = collect(vec![price.clone(), stock.clone()]).then(move |found: &Vec<u64>| {
        let (price, stock) = (found[0], found[1]);
        dispatch(&quoting, move |s: &mut Store| s.quote(price, stock))
    });
    let answer = work.after(timeout, move |work| {
        // The discard flows up the chain into `collect` and from there into every lookup still
        // running, whose timer it cancels; the third step then never starts.
        work.discard();
        Future::failed(format!("no quote within {timeout:?}"))
    });
    let answer = runtime.block_on(answer);
    let elapsed = started.elapsed();
    let quotes = runtime.block_on(dispatch(&store, |s: &mut Store| s.quotes));
    Quote {
        answer,
        price: runtime.block_on(price),
        stock: runtime.block_on(stock),
        quotes: quotes.expect("the store is alive"),
        elapsed,
    }
}

/// Step 4: a blocking call (reading this program's own binary with `std::fs`) on the blocking
/// pool, where it holds no worker; answers with the bytes read and the thread that read them.
fn blocking_read(runtime: &Runtime) -> Result<(usize, String), String> {
    let read = run_blocking(|| {
        let path = std::env::current_exe().map_err(|e| e.to_string())?;
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        Ok((bytes.len(), thread))
    });
    runtime.block_on(read).map_err(|e| e.to_string())?
}

/// Step 5a: a `Queue` whose `get` is a future; a discarded get never swallows an item.
fn queue_gets() -> (Option<&'static str>, bool, Option<&'static str>) {
    let queue = Queue::new();
    let first = queue.get();
    let given_up = queue.get();
    let third = queue.get();
    given_up.discard();
    queue.put("a");
    queue.put("b");
    (first.get(), given_up.is_discarded(), third.get())
}

/// Step 5b: two critical sections that each span an asynchronous step; the `Mutex` keeps them
/// apart, in the order they asked.
fn mutex_sections(runtime: &Runtime) -> Vec<String> {
    let mutex = Mutex::new();
    let log = Arc::new(StdMutex::new(Vec::new()));
    let sections: Vec<Future<()>> = ["first", "second"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            mutex.with(move || {
                log.lock().unwrap().push(format!("{name}: read"));
                after(Duration::from_millis(10))
                    .map(move |_| log.lock().unwrap().push(format!("{name}: write")))
            })
        })
        .collect();
    runtime
        .block_on(collect(sections))
        .expect("both sections ran");
    let log = log.lock().unwrap().clone();
    log
}

/// What step 5c saw: the bounded status, the child's own status, and how long it ran.
struct Killed {
    pid: u32,
    bounded: Result<std::process::ExitStatus, Error>,
    status: Result<std::process::ExitStatus, Error>,
    ran: Duration,
}

/// Step 5c: `sleep 3600` under a 200 ms timeout; discarding its status kills and reaps it.
fn subprocess_timeout(runtime: &Runtime) -> Killed {
    let started = Instant::now();
    let child = subprocess("sleep")
        .arg("3600")
        .spawn()
        .expect("sleep starts");
    let status = child.status();
    let bounded = status.after(Duration::from_millis(200), |running| {
        running.discard();
        Future::failed("still running after 200ms, killed")
    });
    let bounded = runtime.block_on(bounded);
    Killed {
        pid: child.id(),
        bounded,
        status: runtime.block_on(status),
        ran: started.elapsed(),
    }
}

/// An agent's registration with its master.
#[derive(Clone, serde::Serialize, serde::Deserialize, Message)]
struct Register {
    cpus: u32,
}

/// Registers with its master an hour after it starts.
struct Agent {
    master: Upid,
}

impl Process for Agent {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        let register = |a: &mut Agent| send(&a.master, Register { cpus: 4 });
        delay(Duration::from_secs(3600), &ctx.pid(), register);
    }
}

/// Records who registered, with how many CPUs.
#[derive(Default)]
struct Master {
    agents: Vec<(String, u32)>,
}

impl Process for Master {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|m: &mut Master, from: &Upid, r: Register| {
            m.agents.push((from.id().to_owned(), r.cpus));
        })
        .expect("one handler for Register");
    }
}

/// What step 6 saw on the paused clock.
struct Paused {
    dropped_before_the_hour: bool,
    dropped_cpus: u32,
    master_after_drop: Vec<(String, u32)>,
    master_after_spoof: Vec<(String, u32)>,
    hour_took: Duration,
}

/// Step 6: on a paused clock, an agent's one-hour registration timer fires on `advance` and
/// `settle`; a filter drops the message it sends, and the test replays it with twice the CPUs.
fn paused_clock() -> Paused {
    let runtime = Runtime::builder()
        .name("paused")
        .paused()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let clock = runtime.clock();
    let master = runtime.spawn(Master::default());
    let registration = drop_message(&runtime, Match::message::<Register>().to(&master));
    runtime.spawn(Agent {
        master: master.upid(),
    });
    clock.settle();
    let dropped_before_the_hour = !registration.is_pending();

    let started = Instant::now();
    clock.advance(Duration::from_secs(3600));
    clock.settle();
    let hour_took = started.elapsed();
    let dropped = await_ready(&registration);
    let agents = |m: &mut Master| m.agents.clone();
    let master_after_drop = runtime.block_on(dispatch(&master, agents)).expect("alive");

    let spoofed = Register {
        cpus: dropped.message.cpus * 2,
    };
    post(&dropped.from, &dropped.to, spoofed);
    clock.settle();
    let master_after_spoof = runtime.block_on(dispatch(&master, agents)).expect("alive");
    drop(_entered);
    runtime.shutdown();
    Paused {
        dropped_before_the_hour,
        dropped_cpus: dropped.message.cpus,
        master_after_drop,
        master_after_spoof,
        hour_took,
    }
}

fn main() {
    let runtime = Runtime::builder().name("tour").build().expect("runtime");
    let _entered = runtime.enter();

    println!("1. a queue process, reached with dispatch");
    let (queue, first) = queue_process(&runtime);
    println!("   enqueue(fetch), enqueue(compress), dequeue() -> {first:?}");

    println!("2. defer: a merger dequeues and handles the answer as its own event");
    println!("   merger's state: {:?}", defer_back(&runtime, &queue));

    println!("3. collect two lookups, then quote them; one timeout over all of it");
    for (stock_latency, timeout) in [
        (Duration::from_millis(10), Duration::from_secs(1)),
        (Duration::from_secs(3600), Duration::from_millis(100)),
    ] {
        let q = quote(&runtime, stock_latency, timeout);
        println!(
            "   stock lookup takes {stock_latency:?}, timeout {timeout:?}: {} after {}",
            show(&q.answer),
            ms(q.elapsed)
        );
        println!(
            "     price lookup: {}; stock lookup: {}; quotes computed: {}",
            show(&q.price),
            show(&q.stock),
            q.quotes
        );
    }

    println!("4. run_blocking: a blocking std::fs read, off the workers");
    match blocking_read(&runtime) {
        Ok((bytes, thread)) => println!("   read {bytes} bytes of this program on thread {thread}"),
        Err(error) => println!("   the read failed: {error}"),
    }

    println!("5. Queue, Mutex, and a subprocess killed by a timeout");
    let (first, given_up, third) = queue_gets();
    println!(
        "   Queue: three gets, the second discarded, then put a, b: {first:?}, discarded: {given_up}, {third:?}"
    );
    println!("   Mutex: {}", mutex_sections(&runtime).join(", "));
    let killed = subprocess_timeout(&runtime);
    println!(
        "   sleep 3600 (pid {}): {}; its status: {} (killed and reaped) after {}",
        killed.pid,
        show(&killed.bounded),
        show(&killed.status),
        ms(killed.ran)
    );

    println!("6. a paused clock, a filter and a spoofed message");
    let paused = paused_clock();
    println!(
        "   registration dropped before the hour passed: {}",
        paused.dropped_before_the_hour
    );
    println!(
        "   advance(1h) + settle took {} of real time; the filter dropped Register {{ cpus: {} }}; master saw {:?}",
        ms(paused.hour_took),
        paused.dropped_cpus,
        paused.master_after_drop
    );
    println!(
        "   replayed with post as the agent, cpus doubled; master saw {:?}",
        paused.master_after_spoof
    );

    drop(_entered);
    let report = runtime.shutdown();
    println!(
        "runtime shut down {}",
        if report.is_complete() {
            "cleanly"
        } else {
            "with processes abandoned"
        }
    );
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

fn show<T: std::fmt::Debug>(outcome: &Result<T, Error>) -> String {
    match outcome {
        Ok(value) => format!("ready {value:?}"),
        Err(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> Runtime {
        Runtime::builder()
            .name("tour-test")
            .build()
            .expect("runtime")
    }

    #[test]
    fn dispatch_and_defer_go_through_the_processes() {
        let runtime = runtime();
        let _entered = runtime.enter();
        let (queue, first) = queue_process(&runtime);
        assert_eq!(first.as_deref(), Some("fetch"));
        assert_eq!(defer_back(&runtime, &queue), ["compress"]);
    }

    #[test]
    fn the_quote_arrives_within_its_timeout() {
        let runtime = runtime();
        let _entered = runtime.enter();
        // A generous timeout: this asserts the composition, not the machine's speed.
        let q = quote(&runtime, Duration::from_millis(10), Duration::from_secs(60));
        assert_eq!(q.answer.unwrap(), 84);
        assert_eq!((q.price.unwrap(), q.stock.unwrap(), q.quotes), (12, 7, 1));
    }

    #[test]
    fn the_timeout_discards_the_lookups_and_the_third_step_never_runs() {
        let runtime = runtime();
        let _entered = runtime.enter();
        let q = quote(
            &runtime,
            Duration::from_secs(3600),
            Duration::from_millis(100),
        );
        let failure = q.answer.unwrap_err();
        assert!(failure.to_string().contains("no quote within"), "{failure}");
        assert!(q.stock.unwrap_err().is_discarded());
        assert_eq!(q.quotes, 0);
    }

    #[test]
    fn the_blocking_read_runs_off_the_workers() {
        let runtime = runtime();
        let _entered = runtime.enter();
        let (bytes, thread) = blocking_read(&runtime).unwrap();
        let size = std::fs::metadata(std::env::current_exe().unwrap())
            .unwrap()
            .len();
        assert_eq!(bytes as u64, size);
        assert!(!thread.contains("-worker-"), "{thread}");
    }

    #[test]
    fn queue_mutex_and_a_killed_subprocess() {
        assert_eq!(queue_gets(), (Some("a"), true, Some("b")));
        let runtime = runtime();
        let _entered = runtime.enter();
        assert_eq!(
            mutex_sections(&runtime),
            [
                "first: read",
                "first: write",
                "second: read",
                "second: write"
            ]
        );
        let killed = subprocess_timeout(&runtime);
        assert!(killed.bounded.unwrap_err().is_failed());
        assert!(killed.status.unwrap_err().is_discarded());
    }

    #[test]
    fn an_hour_passes_on_the_paused_clock_and_the_spoofed_message_arrives() {
        let paused = paused_clock();
        assert!(!paused.dropped_before_the_hour);
        assert_eq!(paused.dropped_cpus, 4);
        assert!(paused.master_after_drop.is_empty());
        assert_eq!(paused.master_after_spoof.len(), 1);
        let (agent, cpus) = &paused.master_after_spoof[0];
        assert!(agent.starts_with("agent"), "{agent}");
        assert_eq!(*cpus, 8);
    }
}
