//! The launcher seam: an installed launcher sees what the command says and starts the child
//! instead of the OS; its child's pipes, status, kill and discard behave as an OS child's; with
//! the launcher removed, children are OS processes again.
#![cfg(unix)]

#[macro_use]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::pipe::{self, Reader, Writer};
use procession::subprocess::{subprocess, Child, Command, Io, Launcher};
use procession::{Failure, Promise, Runtime};

/// The id every child of [`Fake`] gets: no OS gives it to a `true` started a moment ago.
const FAKE_ID: u32 = u32::MAX;

/// What [`Fake`] saw of one command, and the far ends of its child: the test plays the child.
struct Launched {
    program: String,
    args: Vec<String>,
    envs: Vec<(String, Option<String>)>,
    env_clear: bool,
    dir: Option<PathBuf>,
    io: [&'static str; 3],
    stdin: Option<Reader>,
    stdout: Option<Writer>,
    stderr: Option<Writer>,
    status: Promise<ExitStatus>,
}

/// Records every command, and counts the kills its children receive.
#[derive(Default)]
struct Fake {
    launched: Mutex<Vec<Launched>>,
    kills: Arc<AtomicUsize>,
    /// When set, `launch` fails with this message.
    refuse: Option<&'static str>,
}

impl Fake {
    fn take(&self) -> Launched {
        self.launched.lock().pop().expect("a command was launched")
    }

    fn kills(&self) -> usize {
        self.kills.load(Ordering::SeqCst)
    }
}

fn describe(io: &Io) -> &'static str {
    match io {
        Io::Inherit => "inherit",
        Io::Null => "null",
        Io::Pipe => "pipe",
        Io::Path(_) => "path",
        Io::Fd(_) => "fd",
        _ => "other",
    }
}

/// A pipe when `io` asks for one: (the child's end, the parent's end).
fn pipe_for<A, B>(io: &Io, ends: impl FnOnce() -> (A, B)) -> (Option<A>, Option<B>) {
    match io {
        Io::Pipe => {
            let (a, b) = ends();
            (Some(a), Some(b))
        }
        _ => (None, None),
    }
}

fn text(s: &std::ffi::OsStr) -> String {
    s.to_string_lossy().into_owned()
}

impl Launcher for Fake {
    fn launch(&self, command: &Command) -> Result<Child, Failure> {
        if let Some(why) = self.refuse {
            return Err(Failure::new(why));
        }
        let (child_stdin, parent_stdin) = pipe_for(command.get_stdin(), pipe::pipe);
        let (parent_stdout, child_stdout) = pipe_for(command.get_stdout(), pipe::pipe);
        let (parent_stderr, child_stderr) = pipe_for(command.get_stderr(), pipe::pipe);
        let status = Promise::new();
        let exit = status.future();
        self.launched.lock().push(Launched {
            program: text(command.get_program()),
            args: command.get_args().map(text).collect(),
            envs: command
                .get_envs()
                .map(|(k, v)| (text(k), v.map(text)))
                .collect(),
            env_clear: command.get_env_clear(),
            dir: command.get_current_dir().map(PathBuf::from),
            io: [
                describe(command.get_stdin()),
                describe(command.get_stdout()),
                describe(command.get_stderr()),
            ],
            stdin: child_stdin,
            stdout: child_stdout,
            stderr: child_stderr,
            status,
        });
        let kills = self.kills.clone();
        let kill = move || {
            kills.fetch_add(1, Ordering::SeqCst);
        };
        Ok(Child::from_parts(
            FAKE_ID,
            parent_stdin,
            parent_stdout,
            parent_stderr,
            exit,
            kill,
        ))
    }
}

fn install(rt: &Runtime, fake: Fake) -> Arc<Fake> {
    let fake = Arc::new(fake);
    rt.set_launcher(Some(fake.clone()));
    fake
}

#[test]
fn the_launcher_receives_program_arguments_environment_and_streams() {
    let rt = Runtime::new();
    let fake = install(&rt, Fake::default());
    let _entered = rt.enter();
    let child = subprocess("agent-task")
        .arg("--cpus")
        .args(["2", "--mem=64"])
        .env("DROPPED", "before clear")
        .env_clear()
        .env("TASK", "t-7")
        .env_remove("HOME")
        .current_dir("/sandbox/t-7")
        .stdout(Io::Pipe)
        .stderr(Io::Null)
        .spawn()
        .unwrap();
    assert_eq!(child.id(), FAKE_ID);
    let launched = fake.take();
    assert_eq!(launched.program, "agent-task");
    assert_eq!(launched.args, ["--cpus", "2", "--mem=64"]);
    // Cleared: only what was set after the clear, and nothing to remove.
    assert_eq!(launched.envs, [("TASK".to_owned(), Some("t-7".to_owned()))]);
    assert!(launched.env_clear);
    assert_eq!(launched.dir, Some(PathBuf::from("/sandbox/t-7")));
    assert_eq!(launched.io, ["inherit", "pipe", "null"]);
    assert!(child.stdin.is_none() && child.stdout.is_some() && child.stderr.is_none());
    assert!(launched.stdin.is_none() && launched.stdout.is_some());

    subprocess("inheriting").env_remove("HOME").spawn().unwrap();
    let launched = fake.take();
    assert_eq!(launched.envs, [("HOME".to_owned(), None)]);
    assert!(!launched.env_clear);
    assert!(launched.args.is_empty() && launched.dir.is_none());
}

rt_test!(a_launched_childs_pipes_and_status_work, |flavor, rt| {
    let fake = install(rt, Fake::default());
    let _entered = rt.enter();
    let mut child = subprocess("echo-upper")
        .stdin(Io::Pipe)
        .stdout(Io::Pipe)
        .stderr(Io::Pipe)
        .spawn()
        .unwrap();
    let mut launched = fake.take();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write(Bytes::from_static(b"to the child"));
    stdin.close();
    let read = launched.stdin.take().unwrap().read_all();
    assert_eq!(rt.block_on(read).unwrap(), "to the child");
    let mut stdout = launched.stdout.take().unwrap();
    stdout.write(Bytes::from_static(b"from the child"));
    stdout.close();
    let mut stderr = launched.stderr.take().unwrap();
    stderr.write(Bytes::from_static(b"complaints"));
    stderr.close();
    let out = child.stdout.take().unwrap().read_all();
    let err = child.stderr.take().unwrap().read_all();
    assert_eq!(rt.block_on(out).unwrap(), "from the child");
    assert_eq!(rt.block_on(err).unwrap(), "complaints");
    let status = child.status();
    assert!(status.is_pending());
    launched.status.set(ExitStatus::from_raw(3 << 8));
    assert_eq!(rt.block_on(status).unwrap().code(), Some(3));
    assert_eq!(fake.kills(), 0);
});

rt_test!(
    kill_reaches_the_launcher_and_the_status_reports_the_signal,
    |flavor, rt| {
        let fake = install(rt, Fake::default());
        let _entered = rt.enter();
        let child = subprocess("sleep").arg("100").spawn().unwrap();
        let launched = fake.take();
        child.kill();
        assert_eq!(fake.kills(), 1);
        assert!(
            child.status().is_pending(),
            "pending until the launcher ends it"
        );
        launched.status.set(ExitStatus::from_raw(9));
        assert_eq!(rt.block_on(child.status()).unwrap().signal(), Some(9));
    }
);

rt_test!(
    discarding_the_status_kills_then_ends_it_discarded,
    |flavor, rt| {
        let fake = install(rt, Fake::default());
        let _entered = rt.enter();
        let child = subprocess("sleep").arg("100").spawn().unwrap();
        let launched = fake.take();
        let status = child.status();
        status.discard();
        assert_eq!(fake.kills(), 1);
        assert!(status.is_pending(), "pending until the child has ended");
        launched.status.set(ExitStatus::from_raw(9));
        let error = rt.block_on(status).unwrap_err();
        assert!(error.is_discarded(), "{error}");
        child.kill();
        assert_eq!(
            fake.kills(),
            2,
            "a kill after the end still reaches the launcher"
        );
    }
);

#[test]
fn a_status_the_launcher_drops_is_abandoned_and_its_failure_is_the_childs() {
    let rt = Runtime::new();
    let fake = install(&rt, Fake::default());
    let _entered = rt.enter();
    let dropped = subprocess("a").spawn().unwrap();
    drop(fake.take());
    assert!(dropped.status().is_abandoned());
    let failed = subprocess("b").spawn().unwrap();
    fake.take().status.fail("waiting failed");
    let error = rt.block_on(failed.status()).unwrap_err();
    assert_eq!(error.failure().unwrap().message(), "waiting failed");
}

#[test]
fn a_launch_failure_is_the_spawn_error() {
    let rt = Runtime::new();
    install(
        &rt,
        Fake {
            refuse: Some("no such program"),
            ..Fake::default()
        },
    );
    let _entered = rt.enter();
    let failure = subprocess("missing").spawn().unwrap_err();
    assert_eq!(failure.message(), "no such program");
}

#[test]
fn removing_the_launcher_starts_os_processes_again() {
    let rt = Runtime::new();
    let fake = install(&rt, Fake::default());
    let _entered = rt.enter();
    let launched = subprocess("true").spawn().unwrap();
    assert_eq!(launched.id(), FAKE_ID);
    rt.set_launcher(None);
    let real = subprocess("true").spawn().unwrap();
    assert_ne!(real.id(), FAKE_ID);
    assert!(rt.block_on(real.status()).unwrap().success());
    assert_eq!(
        fake.launched.lock().len(),
        1,
        "only the first went to the launcher"
    );
}
