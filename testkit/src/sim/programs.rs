//! Simulated child processes: the programs a test registers with [`Sim::program`], and the
//! launcher every node's runtime gets, which runs them instead of the OS.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use procession::pipe::{self, PipeError, Reader, Writer};
use procession::subprocess::{Child, Command, Io, Launcher};
use procession::{spawn_async, Failure, Promise};

use super::Sim;

/// What a simulated program is started with: the command's arguments and environment, and
/// the program's ends of the streams the command set to [`Io::Pipe`].
pub struct Run {
    /// The program's name, as the command gave it.
    pub program: String,
    /// The arguments, without the program.
    pub args: Vec<String>,
    /// The variables the command set. A simulated program inherits no environment: the test
    /// process's would make the run depend on where it runs.
    pub env: BTreeMap<String, String>,
    /// The working directory the command set, if any.
    pub current_dir: Option<PathBuf>,
    /// What the parent writes to the child's stdin, if it is a pipe.
    pub stdin: Option<Reader>,
    /// Where the child's stdout goes to the parent, if it is a pipe.
    pub stdout: Option<Writer>,
    /// Where the child's stderr goes to the parent, if it is a pipe.
    pub stderr: Option<Writer>,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("current_dir", &self.current_dir)
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

type Body = Pin<Box<dyn std::future::Future<Output = i32> + Send>>;
type Behaviour = Arc<dyn Fn(Run) -> Body + Send + Sync>;

/// The registered programs by name, shared by the simulation and every node's launcher, so a
/// program registered after a node was added still runs there.
#[derive(Clone, Default)]
pub(crate) struct Programs(Arc<Mutex<HashMap<String, Behaviour>>>);

impl Programs {
    /// A launcher for one node's runtime, numbering its children from 1.
    pub(crate) fn launcher(&self) -> Arc<dyn Launcher> {
        Arc::new(SimLauncher {
            programs: self.clone(),
            next_id: AtomicU32::new(1),
        })
    }
}

impl Sim {
    /// Registers `behaviour` as the program `name`: from now on, on every node, a
    /// [`subprocess`](procession::subprocess::subprocess) command whose program is exactly
    /// `name` runs `behaviour` instead of an OS process, and the async body it returns runs on
    /// the node's runtime, under the seed's control and on the node's virtual clock
    /// ([`procession::after`] sleeps). The body's output is the exit code (its low 8 bits, as
    /// for a real process). Registering a name again replaces its behaviour for later launches.
    ///
    /// ```
    /// use std::time::Duration;
    /// use procession::subprocess::subprocess;
    /// use procession_testkit::sim::{Run, Sim};
    ///
    /// let mut sim = Sim::new(3);
    /// sim.program("sleep", |run: Run| async move {
    ///     let seconds = run.args[0].parse().unwrap();
    ///     let _ = procession::after(Duration::from_secs(seconds)).await;
    ///     0
    /// });
    /// let node = sim.add_node("agent", |_, _| {});
    /// let child = {
    ///     let _entered = sim.runtime(node).unwrap().enter();
    ///     subprocess("sleep").arg("30").spawn().unwrap()
    /// };
    /// assert!(sim.block_on(child.status()).unwrap().unwrap().success());
    /// assert_eq!(sim.now(), Duration::from_secs(30));
    /// ```
    ///
    /// A [`Child`] of a simulated program behaves as an OS child:
    ///
    /// - A stream the command sets to [`Io::Pipe`] joins the parent and the body's end in
    ///   [`Run`]; it ends when the body closes or drops its end (or is dropped), as an OS pipe
    ///   ends when its process exits. Other settings give the body no stream: the simulation
    ///   opens no real file or descriptor.
    /// - [`Child::kill`] or discarding the status drops the body (cancelling it where it
    ///   waits) and ends the status with signal 9 (`SIGKILL`).
    /// - Ids count 1, 2, ... per node, in launch order, from 1 again after a restart.
    /// - A body that panics is a bug in the test rather than a way for a program to exit: it
    ///   fails the status with the panic's message.
    ///
    /// A command for a program not registered fails to spawn as a missing binary does, with an
    /// [`std::io::Error`] of kind `NotFound` as the failure's source.
    pub fn program<F, B>(&mut self, name: &str, behaviour: F)
    where
        F: Fn(Run) -> B + Send + Sync + 'static,
        B: std::future::Future<Output = i32> + Send + 'static,
    {
        let behaviour: Behaviour = Arc::new(move |run| Box::pin(behaviour(run)));
        self.programs.0.lock().insert(name.to_owned(), behaviour);
    }
}

/// Runs a node's children as simulated programs on the node's runtime.
struct SimLauncher {
    programs: Programs,
    /// The next child's id: per node and in launch order, so a seed replays them.
    next_id: AtomicU32,
}

/// A pipe when `io` asks for one, as (reader, writer); see [`os_pipe`].
fn pipe_for(io: &Io) -> Option<(Reader, Writer)> {
    // The simulation opens no real file or descriptor: other settings give the program no stream.
    matches!(io, Io::Pipe).then(os_pipe)
}

/// A pipe whose writer, dropped, ends the stream as closing it does: as an OS pipe ends when
/// the process holding its write end exits or is killed. Two procession pipes joined by a task
/// on the current runtime that forwards the chunks (a procession writer dropped fails its
/// reader).
fn os_pipe() -> (Reader, Writer) {
    let (from, writer) = pipe::pipe();
    let (reader, to) = pipe::pipe();
    spawn_async(forward(from, to));
    (reader, writer)
}

async fn forward(mut from: Reader, mut to: Writer) {
    loop {
        match from.read().await {
            Ok(Some(chunk)) => {
                // The reader closed: dropping `from` passes that on to the writer.
                if to.write(chunk).await.is_err() {
                    return;
                }
            }
            Ok(None) => return to.close(),
            Err(error) => match error.failure() {
                Some(failure)
                    if !matches!(failure.downcast_ref(), Some(PipeError::WriterDropped)) =>
                {
                    return to.fail(failure.clone())
                }
                _ => return to.close(),
            },
        }
    }
}

fn text(s: &std::ffi::OsStr) -> String {
    s.to_string_lossy().into_owned()
}

impl Launcher for SimLauncher {
    fn launch(&self, command: &Command) -> Result<Child, Failure> {
        let program = text(command.get_program());
        let behaviour = self.programs.0.lock().get(&program).cloned();
        let Some(behaviour) = behaviour else {
            let missing = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no program of that name is registered in the simulation",
            );
            return Err(Failure::with_source(
                format!("starting {program}: {missing}"),
                missing,
            ));
        };
        let (stdin, to_stdin) = pipe_for(command.get_stdin()).unzip();
        let (from_stdout, stdout) = pipe_for(command.get_stdout()).unzip();
        let (from_stderr, stderr) = pipe_for(command.get_stderr()).unzip();
        let run = Run {
            program,
            args: command.get_args().map(text).collect(),
            env: command
                .get_envs()
                .filter_map(|(key, value)| Some((text(key), text(value?))))
                .collect(),
            current_dir: command.get_current_dir().map(PathBuf::from),
            stdin,
            stdout,
            stderr,
        };
        let body = spawn_async(behaviour(run));
        let promise = Promise::new();
        let status = promise.future();
        body.on_any(move |outcome| match outcome {
            Ok(code) => promise.set(ExitStatus::from_raw((code & 0xff) << 8)),
            Err(error) if error.is_discarded() => promise.set(ExitStatus::from_raw(9)),
            Err(error) => match error.failure() {
                Some(panic) => promise.fail(panic.clone()),
                // Abandoned: the node crashed under the body; so is the status.
                None => drop(promise),
            },
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = move || body.discard();
        Ok(Child::from_parts(
            id,
            to_stdin,
            from_stdout,
            from_stderr,
            status,
            kill,
        ))
    }
}
