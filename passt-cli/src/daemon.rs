//! Process set-up: the PID file, going to the background, and giving up
//! root.
//!
//! - **Background** (unless `-f`, `-d` or `--trace`): `fork`; the parent
//!   writes the child's PID to the `-P` file and exits 0, so that when the
//!   command returns the file names the process that serves; the child
//!   starts a session (`setsid`) and points standard input, output and
//!   error at `/dev/null`. In the foreground the PID file gets our own PID.
//! - **PID namespace**: before going to the background, passt leaves the
//!   caller's PID namespace ([`leave_pidns`]): the daemon is PID 1 of its
//!   own, and exits cleanly on `SIGTERM`, `SIGINT`, `SIGHUP` and `SIGQUIT`
//!   (PID 1 gets only the signals it has handlers for).
//! - **Sandbox** ([`lock_down`]), once everything is open: started as real
//!   root, passt changes to `--runas` (a UID, `UID:GID`, a login or
//!   `LOGIN:GROUP`) or to `nobody`; it detaches from the host's
//!   filesystem, keeps no capability, and allows itself only the system
//!   calls of [`crate::seccomp`] ([`passt_sys::sandbox`] has the steps).
//!
//! Syscalls: `fork`, `setsid`, `open`, `dup2`, `getpid`, `geteuid`, and
//! those of [`passt_sys::sandbox`].

use std::fs;

use passt_core::options::RunAs;
use passt_sys::process::Fork;
use passt_sys::sandbox::{self, Lockdown};
use rustix::thread::CapabilitySet;

use crate::log::{debug, info, warning};
use crate::Error;

/// Write `pid` and a newline to `path`.
fn write_pid(path: &str, pid: i32) -> Result<(), Error> {
    fs::write(path, format!("{pid}\n")).map_err(|e| Error::io(format!("writing {path}"), &e))
}

/// Go to the background unless `foreground`; write the PID file either way.
///
/// # Errors
/// If `fork` fails or the PID file cannot be written.
pub(crate) fn daemonise(foreground: bool, pid_file: Option<&str>) -> Result<(), Error> {
    if foreground {
        if let Some(p) = pid_file {
            write_pid(p, std::process::id() as i32)?;
        }
        return Ok(());
    }
    // The process is single-threaded here (no thread was started), so the
    // child may run any code after fork.
    let pid = match passt_sys::process::fork() {
        Err(e) => return Err(Error::msg(format!("fork: {}", std::io::Error::from(e)))),
        Ok(Fork::Parent(pid)) => pid.as_raw_nonzero().get(),
        Ok(Fork::Child) => 0,
    };
    if pid > 0 {
        // The parent: report the child and leave.
        let status = match pid_file.map(|p| write_pid(p, pid)) {
            Some(Err(e)) => {
                crate::log::error!("{e}");
                1
            }
            _ => 0,
        };
        std::process::exit(status);
    }
    // The PID the host sees (the PID file's), not 1 of the new PID
    // namespace: /proc is still the caller's here.
    let outer = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(std::process::id);
    crate::log::set_syslog_pid(outer);
    let _ = rustix::process::setsid();
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("opening /dev/null", &e))?;
    // The standard descriptors are replaced atomically.
    let _ = rustix::stdio::dup2_stdin(&null);
    let _ = rustix::stdio::dup2_stdout(&null);
    let _ = rustix::stdio::dup2_stderr(&null);
    crate::log::detach_stderr();
    Ok(())
}

/// Leave the caller's PID namespace before going to the background: the
/// daemon is PID 1 of a new one, and sees no other process. Real root
/// makes the namespace in place; anyone else makes a user namespace of
/// its own first (which the sandbox then isolates the daemon in). Returns
/// whether it left; a refusal (user namespaces off) is only logged.
///
/// Call while single-threaded, before [`daemonise`] forks.
pub(crate) fn leave_pidns(root_here: bool) -> bool {
    let r = if root_here {
        sandbox::new_pidns()
    } else {
        sandbox::new_userns(true)
    };
    match r {
        Ok(()) => true,
        Err(e) => {
            warning!("sandbox: skipped leaving the PID namespace: {e}");
            false
        }
    }
}

/// Enter the sandbox ([`passt_sys::sandbox`]): as real root become
/// `--runas` or `nobody`; keep no capability at all; then the seccomp
/// allow-list of [`crate::seccomp`]. An unprivileged user keeps its
/// identity, and `--runas` naming another one fails.
///
/// # Errors
/// An unknown `--runas` user, a refused change, a failed filter.
pub(crate) fn lock_down(
    runas: Option<&RunAs>,
    root_here: bool,
    filter: &[libc::sock_filter],
) -> Result<(), Error> {
    let ids = sandbox::target_ids(runas.map(RunAs::who), root_here).map_err(Error::msg)?;
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let ids = ids.filter(|i| (i.uid, i.gid) != (euid, egid));
    let report = Lockdown {
        ids,
        keep: CapabilitySet::empty(),
    }
    .apply()
    .map_err(|(what, e)| Error::sys(what, e))?;
    sandbox::seal(filter).map_err(|(what, e)| Error::sys(what, e))?;
    for s in &report.skipped {
        warning!("sandbox: skipped {s}");
    }
    if let Some(i) = ids {
        debug!("running as UID {}, GID {}", i.uid, i.gid);
        if runas.is_some() {
            info!("changed to UID {}, GID {}", i.uid, i.gid);
        }
    }
    debug!("sandbox entered");
    Ok(())
}
