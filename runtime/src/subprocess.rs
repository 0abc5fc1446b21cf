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
//! - Every OS child is reaped: by its reaper as soon as it exits, whether or not anyone holds
//!   the [`Child`] or its status; and when the runtime shuts down, after its processes ended,
//!   every OS child still running is killed and reaped (within the shutdown timeout) before the
//!   runtime stops its I/O driver. No zombie is left behind.
//! - Discarding the status future kills the child (SIGKILL), waits until it has ended, then
//!   ends the future discarded. [`Child::kill`] kills without discarding: the status then
//!   reports the signal. Both hold for a launched child too ([`Child::from_parts`]).
//! - An OS child runs in real time: its exit is an outside event that
//!   [`Clock::settle`](crate::Clock) cannot see, so a test waits for the status future
//!   (`block_on`), not for settle.
//! - Dropping a [`Child`] leaves the child running; its pipes' ends close as dropped ends do.
//!
//! # Launchers
//!
//! A runtime with a [`Launcher`] installed
//! ([`Runtime::set_launcher`](crate::Runtime::set_launcher)) hands every [`Command::spawn`] to
//! it instead of starting an OS process. The launcher reads the command through its accessors
//! ([`Command::get_program`], [`Command::get_args`], [`Command::get_stdout`], ...), starts the
//! child its own way and returns it built with [`Child::from_parts`]; the code that spawned it
//! cannot tell the difference. This is how the testkit's deterministic simulation runs
//! children: there a program is an async body on the node's runtime, under the seed's control
//! and on virtual time, so a node that launches tasks is the same code in a test as in
//! production. A launcher's children are the launcher's to end: the runtime kills and reaps at
//! shutdown only the OS children it started itself.
//!
//! # Deliberate differences from DESIGN.md
//!
//! - `subprocess(program)` gives a builder and [`Command::spawn`] a `Result`: a child that
//!   cannot start (a missing binary, a bad `Io::Path`) is an error with the OS error as its
//!   source at once, rather than a failed status future, since there is no child whose pipes
//!   could be handed out.

mod children;
mod launcher;

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::context;
use crate::error::Failure;
use crate::future::{Future, Promise};
use crate::handle::Handle;
use crate::pipe::{self, Reader, Writer};

pub(crate) use children::Children;
pub use launcher::Launcher;

/// How often [`reap`] asks the OS whether its process has exited (real time).
const REAP_INTERVAL: Duration = Duration::from_millis(10);

/// A command to start `program` (looked up in `PATH` unless it holds a `/`), with every standard
/// stream inherited until set otherwise.
pub fn subprocess(program: impl AsRef<OsStr>) -> Command {
    Command {
        inner: std::process::Command::new(program),
        env_cleared: false,
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
    /// Whether [`env_clear`](Self::env_clear) was called, which std does not report.
    env_cleared: bool,
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
        self.env_cleared = true;
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

    /// Starts the child on the current runtime: with the runtime's [`Launcher`] if one is
    /// installed, otherwise as an OS process that the runtime reaps.
    ///
    /// # Errors
    ///
    /// Fails when the runtime is shutting down (a child started then could outlive it), or
    /// when the child cannot start — the program is missing or not executable, an
    /// [`Io::Path`] cannot be opened — with the OS error as the failure's source
    /// (`failure.downcast_ref::<std::io::Error>()`); with a launcher, whatever the launcher
    /// returns.
    ///
    /// # Panics
    ///
    /// Panics if no runtime is current.
    pub fn spawn(self) -> Result<Child, Failure> {
        let handle = context::expect_current("subprocess");
        if handle.shutting_down.load(Ordering::SeqCst) {
            // Nothing started now could be reaped: shutdown is killing the runtime's children.
            return Err(Failure::new(format!(
                "starting {}: the runtime is shutting down",
                self.inner.get_program().to_string_lossy()
            )));
        }
        if let Some(launcher) = handle.launcher() {
            let child = launcher.launch(&self)?;
            tracing::debug!(
                runtime = %handle.name,
                pid = child.id,
                program = %self.inner.get_program().to_string_lossy(),
                "child launched"
            );
            return Ok(child);
        }
        let Command {
            mut inner,
            env_cleared: _,
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
            kill: Arc::new(move || {
                // The reaper holds the receiver until the child is reaped; later kills are moot.
                let _ = kill.send(());
            }),
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
    let (key, closing) = handle.children().started(id, kill.clone());
    if closing {
        if let Err(error) = child.start_kill() {
            tracing::debug!(pid = id, %error, "kill of a child started during shutdown failed");
        }
    }
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
pub struct Child {
    id: u32,
    /// The writing end of the child's stdin, with [`Io::Pipe`]: close it to send end-of-file.
    pub stdin: Option<Writer<Bytes>>,
    /// The reading end of the child's stdout, with [`Io::Pipe`].
    pub stdout: Option<Reader<Bytes>>,
    /// The reading end of the child's stderr, with [`Io::Pipe`].
    pub stderr: Option<Reader<Bytes>>,
    status: Future<ExitStatus>,
    /// Asks whoever runs the child (its reaper, or a launcher) to kill it.
    kill: Arc<dyn Fn() + Send + Sync>,
}

impl Child {
    /// The child's process id: the OS's, or the one its [`Launcher`] gave it.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The exit status, once the child has exited and been reaped; every call gives the same
    /// future.
    ///
    /// # Errors
    ///
    /// Fails if waiting for the child fails (the OS refused `waitpid`), with its error; a
    /// launched child's as its launcher says.
    ///
    /// # Discard
    ///
    /// Discarding it kills the child, waits until it has ended (an OS child is reaped), then
    /// ends it discarded.
    pub fn status(&self) -> Future<ExitStatus> {
        self.status.clone()
    }

    /// Kills the child (SIGKILL, or what its [`Launcher`] does instead); a no-op once it has
    /// exited. The status then reports the signal.
    pub fn kill(&self) {
        (self.kill)();
    }
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.id)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("status", &self.status)
            .finish_non_exhaustive()
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
