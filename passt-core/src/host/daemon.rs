//! Going to the background, the PID file, and whom the sandbox makes the
//! process (feature `host`), for both drivers.
//!
//! Unless `-f/--foreground` (and, for passt, `-d` or `--trace`; for pasta,
//! a spawned command, which it waits for) the program forks. The two
//! programs tell their caller in their own ways, as they always did:
//!
//! - **passt** ([`detach`]): the parent writes the child's PID to the
//!   `-P/--pid` file and exits 0 at once, so that when the command returns
//!   the file names the process that serves; the child starts a session
//!   (`setsid(2)`: no controlling terminal) and points standard input,
//!   output and error at `/dev/null`. Its system-log PID is the one the
//!   host sees (`/proc/self`: passt left the caller's PID namespace first).
//! - **pasta** ([`daemonise`], [`Detached::ready`]): the child starts a
//!   session, finishes its start-up (namespace thread, dropping
//!   privileges) and only then reports ready: it points the standard
//!   streams at `/dev/null` and writes one byte on a pipe. The parent then
//!   writes the child's PID to the file and exits 0, so that its caller
//!   (podman, a script) knows the namespace is ready and the file names a
//!   running, set-up process. If the child fails first, it prints why on
//!   the standard error it still shares, and the parent exits 1.
//!
//! In the foreground the PID file gets the program's own PID
//! ([`write_pid_file`]). Fork only while the process has one thread.
//!
//! [`target_ids`] is the identity step of the sandbox
//! (`passt_sys::sandbox`) with `--runas`.
//!
//! Syscalls: `pipe2`, `fork`, `read`, `waitpid`, `_exit`, `setsid`,
//! `open`, `dup2` (through rustix's `dup2_std*`), `write`, `kill`,
//! `readlink(/proc/self)`.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use passt_sys::process::{self, Fork};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{kill_process, waitpid, Signal, WaitOptions};

use super::error::Error;
use super::log;

/// Write `pid` and a newline to `path` (created or truncated, mode 0644).
///
/// # Errors
/// If the file cannot be created or written.
pub fn write_pid_file(path: &Path, pid: u32) -> Result<(), Error> {
    let what = || format!("writing PID file {}", path.display());
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(what(), &e))?;
    writeln!(f, "{pid}").map_err(|e| Error::io(what(), &e))
}

/// `/dev/null`, read-write and close-on-exec: for the standard streams of
/// a process in the background.
///
/// # Errors
/// If it cannot be opened.
fn open_null() -> Result<OwnedFd, Error> {
    open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("opening /dev/null", e))
}

/// passt's way to the background (see the module docs): fork; the parent
/// writes the child's PID to `pid_file` and exits (1 if it cannot, 0
/// else); the child returns, in a new session, its standard streams on
/// `/dev/null` and its log off standard error.
///
/// # Errors
/// If `fork` fails (in the parent) or `/dev/null` cannot be opened (in the
/// child).
pub fn detach(pid_file: Option<&Path>) -> Result<(), Error> {
    // The process is single-threaded here (no thread was started), so the
    // child may run any code after fork.
    match process::fork() {
        Err(e) => return Err(Error::msg(format!("fork: {}", std::io::Error::from(e)))),
        Ok(Fork::Parent(pid)) => {
            // The parent: report the child and leave.
            let pid = pid.as_raw_nonzero().get() as u32;
            let status = match pid_file.map(|p| write_pid_file(p, pid)) {
                Some(Err(e)) => {
                    crate::error!("{e}");
                    1
                }
                _ => 0,
            };
            std::process::exit(status);
        }
        Ok(Fork::Child) => {}
    }
    // The PID the host sees (the PID file's), not 1 of the new PID
    // namespace: /proc is still the caller's here.
    let outer = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(std::process::id);
    log::set_syslog_pid(outer);
    let _ = rustix::process::setsid();
    let null = open_null()?;
    // The standard descriptors are replaced atomically.
    let _ = rustix::stdio::dup2_stdin(&null);
    let _ = rustix::stdio::dup2_stdout(&null);
    let _ = rustix::stdio::dup2_stderr(&null);
    log::detach_stderr();
    Ok(())
}

/// pasta's background child, until it reports that start-up is complete.
#[derive(Debug)]
pub struct Detached {
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
    pub fn ready(self) -> Result<(), Error> {
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

/// pasta's way to the background (see the module docs): continue in a
/// child, which must call [`Detached::ready`] once set up. The parent
/// waits for that, writes the PID file and exits 0 (1 if the child fails
/// first, or if the PID file cannot be written: the child is then killed).
///
/// Call only while the process has one thread.
///
/// # Errors
/// If the pipe or `fork` fail (in the parent), or `setsid` or opening
/// `/dev/null` (in the child).
pub fn daemonise(pid_file: Option<&Path>) -> Result<Detached, Error> {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("creating a pipe", e))?;
    match process::fork().map_err(|e| Error::sys("forking to the background", e))? {
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
                process::exit_now(1);
            }
            if let Some(path) = pid_file {
                let pid = child.as_raw_nonzero().get() as u32;
                if let Err(e) = write_pid_file(path, pid) {
                    let _ = kill_process(child, Signal::KILL);
                    crate::error!("{e}");
                    process::exit_now(1);
                }
            }
            process::exit_now(0)
        }
        Fork::Child => {
            drop(r);
            log::set_syslog_pid(rustix::process::getpid().as_raw_nonzero().get() as u32);
            rustix::process::setsid().map_err(|e| Error::sys("setsid", e))?;
            let null = open_null()?;
            Ok(Detached { ready: w, null })
        }
    }
}

/// Whom the sandbox makes the process: the `--runas` user, else `nobody`
/// as real root (`root_here`), else no change (`None`); also `None` when
/// that is who the process already is.
///
/// # Errors
/// A `--runas` name without an entry.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn target_ids(
    runas: Option<&super::options::RunAs>,
    root_here: bool,
) -> Result<Option<passt_sys::sandbox::Ids>, Error> {
    let ids = passt_sys::sandbox::target_ids(runas.map(super::options::RunAs::who), root_here)
        .map_err(Error::msg)?;
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    Ok(ids.filter(|i| (i.uid, i.gid) != (euid, egid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_holds_the_pid_and_a_newline() {
        let path = std::env::temp_dir().join(format!("passt-pid-test-{}", std::process::id()));
        write_pid_file(&path, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        let _ = std::fs::remove_file(&path);
        assert!(write_pid_file(Path::new("/nonexistent/dir/pid"), 1).is_err());
    }
}
