//! Going to the background, and the PID file.
//!
//! Unless `-f/--foreground` is given (or a command was spawned: pasta then
//! waits for it), pasta forks once the tap device exists and is configured.
//! The child starts a new session (`setsid(2)`: no controlling terminal, no
//! signals from the caller's terminal), finishes its start-up (namespace
//! thread, dropping privileges) and then reports [`Detached::ready`]: it
//! points standard input, output and error to `/dev/null` and writes one byte
//! on a pipe. Only then does the parent write the child's PID to the
//! `-P/--pid` file and exit 0, so that its caller (podman, a script) knows the
//! namespace is ready and the PID file names a running, set-up process. If
//! the child fails first, it prints why on the standard error it still
//! shares, and the parent exits 1.
//!
//! In the foreground, the PID file gets pasta's own PID.
//!
//! Syscalls: `pipe2`, `fork`, `read`, `waitpid`, `_exit`, `setsid`, `open`,
//! `dup2` (through rustix's `dup2_std*`), `write`, `kill`.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{open, Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions};

use crate::{log, Error};
use passt_sys::process::{self as sys, Fork};

/// Write `pid` and a newline to `path` (created or truncated, mode 0644).
///
/// # Errors
/// If the file cannot be created or written.
pub(crate) fn write_pid_file(path: &Path, pid: Pid) -> Result<(), Error> {
    let what = || format!("writing PID file {}", path.display());
    let mut f = std::fs::File::create(path).map_err(|e| crate::io_error(what(), &e))?;
    writeln!(f, "{}", pid.as_raw_nonzero()).map_err(|e| crate::io_error(what(), &e))
}

/// The background child, until it reports that start-up is complete.
#[derive(Debug)]
pub(crate) struct Detached {
    ready: OwnedFd,
    /// `/dev/null`, opened before the sandbox hides it.
    null: OwnedFd,
}

impl Detached {
    /// Start-up is complete: leave the caller's standard streams and let
    /// the parent exit 0.
    ///
    /// # Errors
    /// If the streams cannot be redirected.
    pub(crate) fn ready(self) -> Result<(), Error> {
        let null = self.null;
        log::detach_stderr();
        rustix::stdio::dup2_stdin(&null).map_err(|e| Error::sys("dup2", e))?;
        rustix::stdio::dup2_stdout(&null).map_err(|e| Error::sys("dup2", e))?;
        rustix::stdio::dup2_stderr(&null).map_err(|e| Error::sys("dup2", e))?;
        // The parent may be gone (killed): nothing to tell then.
        let _ = io::write(&self.ready, &[1]);
        Ok(())
    }
}

/// Continue in a background child, which must call [`Detached::ready`]
/// once set up. The parent waits for that, writes the PID file and exits 0
/// (1 if the child fails first, or if the PID file cannot be written: the
/// child is then killed).
///
/// Call only while the process has one thread.
///
/// # Errors
/// If the pipe or `fork` fail (in the parent), or `setsid` or opening
/// `/dev/null` (in the child).
pub(crate) fn daemonise(pid_file: Option<&Path>) -> Result<Detached, Error> {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("creating a pipe", e))?;
    match sys::fork().map_err(|e| Error::sys("forking to the background", e))? {
        Fork::Parent(child) => {
            drop(w);
            let mut b = [0u8; 1];
            let ready = loop {
                match io::read(&r, &mut b) {
                    Err(Errno::INTR) => {}
                    res => break matches!(res, Ok(1)),
                }
            };
            if !ready {
                // It said why on our shared standard error.
                let _ = waitpid(Some(child), WaitOptions::empty());
                sys::exit_now(1);
            }
            if let Some(path) = pid_file {
                if let Err(e) = write_pid_file(path, child) {
                    let _ = kill_process(child, Signal::KILL);
                    crate::error!("{e}");
                    sys::exit_now(1);
                }
            }
            sys::exit_now(0)
        }
        Fork::Child => {
            drop(r);
            log::set_syslog_pid(rustix::process::getpid().as_raw_nonzero().get() as u32);
            rustix::process::setsid().map_err(|e| Error::sys("setsid", e))?;
            let null = open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys("opening /dev/null", e))?;
            Ok(Detached { ready: w, null })
        }
    }
}
