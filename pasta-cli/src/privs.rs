//! pasta's sandbox, entered once set up ([`passt_sys::sandbox`] has the
//! steps): whom it becomes, what it keeps, on which threads.
//!
//! - **Identity.** As real root (UID 0 in the initial user namespace, and
//!   not moved into the target's user namespace), pasta becomes `nobody`,
//!   or the user of `--runas`. UID 0 in any other user namespace (`unshare
//!   -r`, rootless podman, bubblewrap) keeps its identity: that namespace
//!   confines it already, and usually maps no other ID. An unprivileged
//!   user keeps its identity; `--runas` naming another one fails, with a
//!   one-line reason.
//! - **Capabilities.** `CAP_NET_BIND_SERVICE` at most, in the user
//!   namespace pasta works in, for `auto` forwards of low ports found
//!   later; nothing else. Entering the namespace again is never needed:
//!   the namespace thread ([`crate::netns::NsThread`]) stays in it.
//! - **Threads.** Namespaces and capabilities belong to a thread: the
//!   namespace thread detaches from the host's filesystem and drops its
//!   capabilities itself, then the main thread takes every step and the
//!   seccomp filter covers both ([`crate::seccomp`] lists its calls).
//!
//! A step the system refuses (no user namespaces, no `tmpfs` in a
//! restricted container) is named once in the log and skipped.
//!
//! Nothing that needs privileges or files happens afterwards: the event
//! loop only uses descriptors opened before (tap, capture and log files,
//! watches), and work inside the target namespace goes through the
//! namespace thread.

use passt_core::host::options::RunAs;
use passt_sys::sandbox::{self, Lockdown};
use rustix::thread::CapabilitySet;

use crate::netns::NsThread;
use crate::{debug, warning, Error};

/// The capabilities pasta keeps.
const KEEP: CapabilitySet = CapabilitySet::NET_BIND_SERVICE;

/// Enter the sandbox: the namespace thread `ns` first, then the process.
///
/// `started_as_root`: the effective UID was 0 at start. `joined_userns`:
/// pasta moved into the target's user namespace, which is its confinement
/// already (its IDs there are mapped ones).
///
/// # Errors
/// A `--runas` user that does not exist or cannot be taken, or a failed
/// step that must not fail (the filter).
pub(crate) fn lock_down(
    ns: &NsThread,
    started_as_root: bool,
    joined_userns: bool,
    runas: Option<&RunAs>,
    filter: &[libc::sock_filter],
) -> Result<(), Error> {
    let root_here = started_as_root && !joined_userns && sandbox::in_initial_userns();
    let ids = passt_core::host::daemon::target_ids(runas, root_here)?;

    // The namespace thread: its own empty root, its bounding set, and
    // (after the identity changed for all threads) its capabilities.
    let thread_skipped = ns.run(|| {
        let mut skipped = Vec::new();
        if let Err(e) = sandbox::isolate_thread() {
            skipped.push(format!(
                "detaching the namespace thread from the host's filesystem: {e}"
            ));
        }
        let _ = sandbox::drop_bounding_set(KEEP);
        skipped
    })?;
    let report = Lockdown { ids, keep: KEEP }
        .apply()
        .map_err(|(what, e)| Error::sys(what, e))?;
    ns.run(|| sandbox::drop_caps_thread(KEEP))?
        .map_err(|e| Error::sys("dropping the namespace thread's capabilities", e))?;
    sandbox::seal(filter).map_err(|(what, e)| Error::sys(what, e))?;

    for s in report.skipped.iter().chain(&thread_skipped) {
        warning!("sandbox: skipped {s}");
    }
    if let Some(i) = ids {
        debug!("running as UID {}, GID {}", i.uid, i.gid);
    }
    debug!("sandbox entered");
    Ok(())
}
