//! Going to the background, and the PID file.
//!
//! Unless `-f/--foreground` is given (or a command was spawned: pasta then
//! waits for it), pasta forks once it is set up: the tap device exists and is
//! configured, so the parent can exit 0 and its caller (podman, a script)
//! knows the namespace is ready. The parent writes the child's PID to the
//! `-P/--pid` file first, so the file names the process that keeps running;
//! the child starts a new session (`setsid(2)`: no controlling terminal, no
//! signals from the caller's terminal) and points standard input, output and
//! error to `/dev/null`, at once, so that a caller reading pasta's output
//! sees it end when the parent exits.
//!
//! In the foreground, the PID file gets pasta's own PID.
//!
//! Syscalls: `fork`, `_exit`, `setsid`, `open`, `dup2` (through rustix's
//! `dup2_std*`), `write`, `kill`.

use std::io::Write;
use std::path::Path;

use rustix::fs::{open, Mode, OFlags};
use rustix::process::{kill_process, Pid, Signal};

use crate::sys::{self, Fork};
use crate::{log, Error};

/// Write `pid` and a newline to `path` (created or truncated, mode 0644).
///
/// # Errors
/// If the file cannot be created or written.
pub(crate) fn write_pid_file(path: &Path, pid: Pid) -> Result<(), Error> {
    let what = || format!("writing PID file {}", path.display());
    let mut f = std::fs::File::create(path).map_err(|e| crate::io_error(what(), &e))?;
    writeln!(f, "{}", pid.as_raw_nonzero()).map_err(|e| crate::io_error(what(), &e))
}

/// Continue in a background child; the parent writes the PID file and
/// exits 0 (1 if the PID file cannot be written: the child is then killed).
///
/// Call only while the process has one thread.
///
/// # Errors
/// If `fork` fails (in the parent), or the child cannot detach.
pub(crate) fn daemonise(pid_file: Option<&Path>) -> Result<(), Error> {
    match sys::fork().map_err(|e| Error::sys("forking to the background", e))? {
        Fork::Parent(child) => {
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
            rustix::process::setsid().map_err(|e| Error::sys("setsid", e))?;
            let null = open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys("opening /dev/null", e))?;
            log::detach_stderr();
            rustix::stdio::dup2_stdin(&null).map_err(|e| Error::sys("dup2", e))?;
            rustix::stdio::dup2_stdout(&null).map_err(|e| Error::sys("dup2", e))?;
            rustix::stdio::dup2_stderr(&null).map_err(|e| Error::sys("dup2", e))?;
            Ok(())
        }
    }
}
