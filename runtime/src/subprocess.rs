//! Child processes of the OS, with their standard streams as pipes and their exit status as a
//! future that kills the child when discarded.
//!
//! [`subprocess`] starts a [`Command`]; [`Command::spawn`] gives a [`Child`] whose
//! [`status`](Child::status) completes when the child exits and is reaped. Each standard stream
//! is set with an [`Io`]: [`Io::Pipe`] connects it to a procession [`pipe`] — the
//! child's stdin becomes a [`Writer`], its stdout and stderr [`Reader`]s, so a child is a stage
//! of a pipeline with back-pressure both ways. Timeouts compose: a discarded status kills, so
//! `child.status().after(d, |s| { s.discard(); ... })` bounds how long a child may run.
//!
//! ```
//! # #[cfg(unix)] {
//! use bytes::Bytes;
//! use procession::subprocess::{subprocess, Io};
//! use procession::Runtime;
//!
//! let runtime = Runtime::new();
//! let _entered = runtime.enter();
//! let mut child = subprocess("tr")
//!     .args(["a-z", "A-Z"])
//!     .stdin(Io::Pipe)
//!     .stdout(Io::Pipe)
//!     .spawn()
//!     .unwrap();
//! let mut stdin = child.stdin.take().unwrap();
//! stdin.write(Bytes::from_static(b"shout"));
//! stdin.close();
//! let output = child.stdout.take().unwrap().read_all();
//! assert_eq!(runtime.block_on(output).unwrap(), "SHOUT");
//! assert!(runtime.block_on(child.status()).unwrap().success());
//! # }
//! ```
//!
//! # Contract
//!
//! - Every child is reaped: by its reaper as soon as it exits, whether or not anyone holds the
//!   [`Child`] or its status; and when the runtime shuts down, after its processes ended, every
//!   child still running is killed and reaped (within the shutdown timeout) before the runtime
//!   stops its I/O driver. No zombie is left behind.
//! - Discarding the status future kills the child (SIGKILL), reaps it, then ends the future
//!   discarded. [`Child::kill`] kills without discarding: the status then reports the signal.
//! - A child runs in real time: its exit is an outside event that [`Clock::settle`](crate::Clock)
//!   cannot see, so a test waits for the status future (`block_on`), not for settle.
//! - Dropping a [`Child`] leaves the child running; its pipes' ends close as dropped ends do.
//!
//! # Deliberate differences from DESIGN.md
//!
//! - `subprocess(program)` gives a builder and [`Command::spawn`] a `Result`: a child that
//!   cannot start (a missing binary, a bad `Io::Path`) is an error with the OS error as its
//!   source at once, rather than a failed status future, since there is no child whose pipes
//!   could be handed out.

mod children;

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::Bytes;

use crate::context;
use crate::error::Failure;
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::pipe::{self, Reader, Writer};

pub(crate) use children::Children;

/// How often [`reap`] asks the OS whether its process has exited (real time).
const REAP_INTERVAL: Duration = Duration::from_millis(10);

/// A command to start `program` (looked up in `PATH` unless it holds a `/`), with every standard
/// stream inherited until set otherwise.
pub fn subprocess(program: impl AsRef<OsStr>) -> Command {
    Command {
        inner: std::process::Command::new(program),
        stdin: Io::Inherit,
        stdout: Io::Inherit,
        stderr: Io::Inherit,
    }
}

/// Where one of a child's standard streams goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Io {
    /// The parent's own stream.
    Inherit,
    /// Nothing: reads see the end, writes are discarded (`/dev/null`).
    Null,
    /// A procession pipe: [`Child::stdin`] is its [`Writer`], [`Child::stdout`] and
    /// [`Child::stderr`] are [`Reader`]s, bounded at [`pipe::DEFAULT_CAPACITY`].
    Pipe,
    /// A file: read for stdin; for stdout and stderr created if missing and appended to.
    Path(PathBuf),
    /// An open file descriptor, handed to the child.
    Fd(OwnedFd),
}

impl Io {
    fn into_stdio(self, output: bool) -> Result<Stdio, Failure> {
        Ok(match self {
            Io::Inherit => Stdio::inherit(),
            Io::Null => Stdio::null(),
            Io::Pipe => Stdio::piped(),
            Io::Fd(fd) => Stdio::from(fd),
            Io::Path(path) => Stdio::from(open(&path, output)?),
        })
    }
}

fn open(path: &Path, output: bool) -> Result<std::fs::File, Failure> {
    let file = if output {
        OpenOptions::new().create(true).append(true).open(path)
    } else {
        OpenOptions::new().read(true).open(path)
    };
    file.map_err(|e| Failure::with_source(format!("opening {}: {e}", path.display()), e))
}

/// A child process to start: program, arguments, environment, working directory and where its
/// standard streams go. Built by [`subprocess`].
#[derive(Debug)]
pub struct Command {
    inner: std::process::Command,
    stdin: Io,
    stdout: Io,
    stderr: Io,
}

impl Command {
    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.inner.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.inner.env_remove(key);
        self
    }

    /// Starts from an empty environment instead of the parent's.
    pub fn env_clear(mut self) -> Self {
        self.inner.env_clear();
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    /// Sets where stdin comes from.
    pub fn stdin(mut self, io: Io) -> Self {
        self.stdin = io;
        self
    }

    /// Sets where stdout goes.
    pub fn stdout(mut self, io: Io) -> Self {
        self.stdout = io;
        self
    }

    /// Sets where stderr goes.
    pub fn stderr(mut self, io: Io) -> Self {
        self.stderr = io;
        self
    }

    /// Starts the child on the current runtime, which reaps it.
    ///
    /// # Errors
    ///
    /// Fails when the child cannot start — the program is missing or not executable, an
    /// [`Io::Path`] cannot be opened — with the OS error as the failure's source
    /// (`failure.downcast_ref::<std::io::Error>()`).
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current.
    pub fn spawn(self) -> Result<Child, Failure> {
        let handle = context::expect_current("subprocess");
        let Command {
            mut inner,
            stdin,
            stdout,
            stderr,
        } = self;
        inner
            .stdin(stdin.into_stdio(false)?)
            .stdout(stdout.into_stdio(true)?)
            .stderr(stderr.into_stdio(true)?);
        let program = inner.get_program().to_string_lossy().into_owned();
        let mut command = tokio::process::Command::from(inner);
        // The child's pipes and its exit signal register with the runtime's I/O driver.
        let _io = handle.io().enter();
        let mut child = command
            .spawn()
            .map_err(|e| Failure::with_source(format!("starting {program}: {e}"), e))?;
        let id = child.id().expect("a child that was just started has an id");
        let stdin = child.stdin.take().map(|sink| {
            let (reader, writer) = pipe::pipe();
            drop(reader | pipe::write_into(sink));
            writer
        });
        let stdout = child.stdout.take().map(pipe::read_from);
        let stderr = child.stderr.take().map(pipe::read_from);
        let (status, kill) = watch(&handle, child);
        tracing::debug!(runtime = %handle.name, pid = id, %program, "child started");
        Ok(Child {
            id,
            stdin,
            stdout,
            stderr,
            status,
            kill,
        })
    }
}

/// Starts the reaper of `child` on the I/O driver: it waits for the exit, kills on request,
/// and completes the status.
fn watch(
    handle: &Handle,
    mut child: tokio::process::Child,
) -> (Future<ExitStatus>, tokio::sync::mpsc::UnboundedSender<()>) {
    let (kill, mut kill_requests) = tokio::sync::mpsc::unbounded_channel();
    let promise = Promise::new();
    let status = promise.future();
    let on_discard = kill.clone();
    status.when_discard(move || {
        let _ = on_discard.send(());
    });
    let id = child.id().unwrap_or_default();
    let key = handle.children().started(id, kill.clone());
    let owner = handle.clone();
    handle.io().spawn(async move {
        let exit = loop {
            tokio::select! {
                exit = child.wait() => break exit,
                // The registry holds a sender until this task ends, so `None` cannot come.
                Some(()) = kill_requests.recv() => {
                    if let Err(error) = child.start_kill() {
                        tracing::debug!(pid = id, %error, "kill of an exiting child failed");
                    }
                }
            }
        };
        owner.children().reaped(key);
        tracing::debug!(runtime = %owner.name, pid = id, ?exit, "child reaped");
        match exit {
            Ok(_) if promise.has_discard() => promise.discard(),
            Ok(exit) => promise.set(exit),
            Err(error) => promise.fail(Failure::with_source("waiting for a child failed", error)),
        }
    });
    (status, kill)
}

/// A started child process.
///
/// The pipe ends of streams set to [`Io::Pipe`] are in the public fields, to be taken; the
/// others are `None`.
#[derive(Debug)]
pub struct Child {
    id: u32,
    /// The writing end of the child's stdin, with [`Io::Pipe`]: close it to send end-of-file.
    pub stdin: Option<Writer<Bytes>>,
    /// The reading end of the child's stdout, with [`Io::Pipe`].
    pub stdout: Option<Reader<Bytes>>,
    /// The reading end of the child's stderr, with [`Io::Pipe`].
    pub stderr: Option<Reader<Bytes>>,
    status: Future<ExitStatus>,
    kill: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Child {
    /// The child's OS process id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The exit status, once the child has exited and been reaped; every call gives the same
    /// future.
    ///
    /// # Errors
    ///
    /// Fails if waiting for the child fails (the OS refused `waitpid`), with its error.
    ///
    /// # Discard
    ///
    /// Discarding it kills the child, reaps it, then ends it discarded.
    pub fn status(&self) -> Future<ExitStatus> {
        self.status.clone()
    }

    /// Kills the child (SIGKILL); a no-op once it has exited. The status then reports the
    /// signal.
    pub fn kill(&self) {
        let _ = self.kill.send(());
    }
}

/// The exit status of the child process `pid` that was started some other way than with
/// [`subprocess`] (which reaps its own): polls the OS every 10 ms of real time until the child
/// exits, and reaps it.
///
/// # Errors
///
/// Fails when `pid` is not a child of this OS process, or was already reaped, with the OS error.
///
/// # Discard
///
/// Discarding it stops watching (the child is not killed) and ends it discarded.
///
/// # Panics
///
/// Panics if no runtime is current.
pub fn reap(pid: u32) -> Future<ExitStatus> {
    use rustix::process::{waitpid, Pid, WaitOptions};

    let handle = context::expect_current("reap");
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Future::failed(format!("reap: {pid} is not a process id"));
    };
    let promise = Promise::new();
    let status = promise.future();
    handle.io().spawn(async move {
        let mut poll = tokio::time::interval(REAP_INTERVAL);
        loop {
            if promise.has_discard() {
                return promise.discard();
            }
            match waitpid(Some(target), WaitOptions::NOHANG) {
                Ok(Some((_, wait))) => {
                    return promise.set(ExitStatus::from_raw(wait.as_raw()));
                }
                Ok(None) => {}
                Err(errno) => {
                    let error = std::io::Error::from(errno);
                    return promise
                        .fail(Failure::with_source(format!("reap {pid}: {error}"), error));
                }
            }
            poll.tick().await;
        }
    });
    status
}
