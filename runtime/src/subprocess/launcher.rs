//! The launcher seam: what a [`Launcher`] reads from a [`Command`] and how it hands back a
//! [`Child`]; see [Launchers](super#launchers).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{CommandArgs, CommandEnvs, ExitStatus};
use std::sync::Arc;

use bytes::Bytes;

use super::{Child, Command, Io};
use crate::error::Failure;
use crate::future::{Future, Promise};
use crate::pipe::{Reader, Writer};

/// Starts the children of a runtime instead of the OS, once installed with
/// [`Runtime::set_launcher`](crate::Runtime::set_launcher).
///
/// ```
/// use std::os::unix::process::ExitStatusExt;
/// use std::process::ExitStatus;
/// use std::sync::Arc;
/// use procession::subprocess::{subprocess, Child, Command, Launcher};
/// use procession::{Failure, Future, Runtime};
///
/// /// Every program "exits" at once with as many as it has arguments as its code.
/// struct Counting;
/// impl Launcher for Counting {
///     fn launch(&self, command: &Command) -> Result<Child, Failure> {
///         let code = command.get_args().len() as i32;
///         let status = Future::ready(ExitStatus::from_raw(code << 8));
///         Ok(Child::from_parts(1, None, None, None, status, || {}))
///     }
/// }
///
/// let runtime = Runtime::new();
/// runtime.set_launcher(Some(Arc::new(Counting)));
/// let _entered = runtime.enter();
/// let child = subprocess("anything").args(["a", "b"]).spawn().unwrap();
/// assert_eq!(runtime.block_on(child.status()).unwrap().code(), Some(2));
/// ```
///
/// # Contract
///
/// `launch` runs on the thread that called [`Command::spawn`], with the runtime current, often
/// inside a process's handler: it must not block. It gives the child the pipes the command's
/// [`Io::Pipe`] settings ask for, and completes the child's status when the child ends.
pub trait Launcher: Send + Sync + 'static {
    /// Starts `command`'s child.
    ///
    /// # Errors
    ///
    /// A child that cannot start; as with the OS, a missing program should fail with an
    /// [`std::io::Error`] of kind `NotFound` as the failure's source.
    fn launch(&self, command: &Command) -> Result<Child, Failure>;
}

impl Command {
    /// The program to run, as given to [`subprocess`](super::subprocess).
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments, in order, without the program.
    pub fn get_args(&self) -> CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment variables set (`Some`) or removed (`None`) on the command since the last
    /// [`env_clear`](Self::env_clear); the child starts from the parent's environment unless
    /// [`get_env_clear`](Self::get_env_clear).
    pub fn get_envs(&self) -> CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// Whether the child starts from an empty environment rather than the parent's.
    pub fn get_env_clear(&self) -> bool {
        self.env_cleared
    }

    /// The working directory, if one was set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// Where stdin comes from.
    pub fn get_stdin(&self) -> &Io {
        &self.stdin
    }

    /// Where stdout goes.
    pub fn get_stdout(&self) -> &Io {
        &self.stdout
    }

    /// Where stderr goes.
    pub fn get_stderr(&self) -> &Io {
        &self.stderr
    }
}

impl Child {
    /// A child that a [`Launcher`] started: its id, its pipe ends (`Some` for each stream the
    /// command set to [`Io::Pipe`]), its exit status, and `kill`, which asks the launcher to
    /// stop the child (called by [`Child::kill`], and when the status is discarded, with the
    /// runtime current when `from_parts` was called).
    ///
    /// The child's [`status`](Child::status) follows `status`, except that once a discard was
    /// requested, the child's end makes it discarded: so the launcher only has to end `status`
    /// when the child ends, killed or not, and [the contract](super#contract) holds. If
    /// `status` is dropped unanswered (abandoned), so is the child's.
    pub fn from_parts(
        id: u32,
        stdin: Option<Writer<Bytes>>,
        stdout: Option<Reader<Bytes>>,
        stderr: Option<Reader<Bytes>>,
        status: Future<ExitStatus>,
        kill: impl Fn() + Send + Sync + 'static,
    ) -> Child {
        let kill: Arc<dyn Fn() + Send + Sync> = Arc::new(kill);
        let promise = Promise::new();
        let ended = promise.future();
        let on_discard = kill.clone();
        ended.on_discard(move || on_discard());
        status.when_complete(move |outcome| match outcome {
            Ok(_) if promise.has_discard() => promise.discard(),
            outcome => promise.complete(outcome.clone()),
        });
        Child {
            id,
            stdin,
            stdout,
            stderr,
            status: ended,
            kill,
        }
    }
}
