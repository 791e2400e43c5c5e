//! passt's privileges: leaving the caller's PID namespace, and the
//! sandbox. (Going to the background and the PID file are
//! [`passt_core::host::daemon`]'s.)
//!
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
//! Syscalls: `getpid`, `geteuid`, and those of [`passt_sys::sandbox`].

use passt_core::host::daemon;
use passt_core::host::options::RunAs;
use passt_sys::sandbox::{self, Lockdown};
use rustix::thread::CapabilitySet;

use crate::{debug, info, warning, Error};

/// Leave the caller's PID namespace before going to the background: the
/// daemon is PID 1 of a new one, and sees no other process. Real root
/// makes the namespace in place; anyone else makes a user namespace of
/// its own first (which the sandbox then isolates the daemon in). Returns
/// whether it left; a refusal (user namespaces off) is only logged.
///
/// Call while single-threaded, before [`daemon::detach`] forks.
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
    let ids = daemon::target_ids(runas, root_here)?;
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
