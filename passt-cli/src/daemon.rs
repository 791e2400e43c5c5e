//! Process set-up: the PID file, going to the background, and giving up
//! root.
//!
//! - **Background** (unless `-f`, `-d` or `--trace`): `fork`; the parent
//!   writes the child's PID to the `-P` file and exits 0, so that when the
//!   command returns the file names the process that serves; the child
//!   starts a session (`setsid`) and points standard input, output and
//!   error at `/dev/null`. In the foreground the PID file gets our own PID.
//! - **Privileges**: started as root, passt changes to `--runas` (a UID,
//!   `UID:GID`, a login or `LOGIN:GROUP`) or to `nobody`, after everything
//!   that needs root is open: supplementary groups are dropped, then the
//!   group and user IDs set. Names are looked up in `/etc/passwd` and
//!   `/etc/group`; `nobody` falls back to 65534 if it has no entry.
//!
//! Syscalls: `fork`, `setsid`, `open`, `dup2`, `setgroups`, `setgid`,
//! `setuid`, `getpid`, `geteuid`.

use std::fs;
use std::os::fd::AsRawFd;

use passt_core::options::{IdSpec, RunAs};

use crate::log::{debug, info};
use crate::Error;

/// UID and GID of `nobody` when `/etc/passwd` has no such user.
const NOBODY: u32 = 65534;

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
    // SAFETY: the process is single-threaded here (no thread was started),
    // so the child may run any code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::msg(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        )));
    }
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
    // SAFETY: plain system call without pointers.
    unsafe { libc::setsid() };
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("opening /dev/null", &e))?;
    for fd in 0..=2 {
        // SAFETY: dup2 between descriptors we own; the standard ones are
        // replaced atomically.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
    crate::log::detach_stderr();
    Ok(())
}

/// Look `name` up in a colon-separated database (`/etc/passwd`,
/// `/etc/group`): its third and fourth fields.
fn lookup(db: &str, name: &str) -> Option<(u32, Option<u32>)> {
    let text = fs::read_to_string(db).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        let id = f.nth(1)?.parse().ok()?;
        let gid = f.next().and_then(|g| g.parse().ok());
        Some((id, gid))
    })
}

/// The UID and GID `--runas` (or `nobody`) means.
fn resolve(runas: Option<&RunAs>) -> Result<(u32, u32), Error> {
    let Some(r) = runas else {
        return Ok(lookup("/etc/passwd", "nobody")
            .map(|(u, g)| (u, g.unwrap_or(NOBODY)))
            .unwrap_or((NOBODY, NOBODY)));
    };
    let (uid, user_gid) = match &r.user {
        IdSpec::Id(u) => (*u, None),
        IdSpec::Name(n) => {
            let (u, g) = lookup("/etc/passwd", n)
                .ok_or_else(|| Error::msg(format!("--runas: no user named {n:?}")))?;
            (u, g)
        }
    };
    let gid = match &r.group {
        Some(IdSpec::Id(g)) => *g,
        Some(IdSpec::Name(n)) => {
            lookup("/etc/group", n)
                .ok_or_else(|| Error::msg(format!("--runas: no group named {n:?}")))?
                .0
        }
        None => user_gid.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// Give up root: change to `--runas` or `nobody`. Nothing happens if we are
/// not root, except that an explicit `--runas` for another user fails.
///
/// # Errors
/// An unknown user or group, or a refused change.
pub(crate) fn drop_root(runas: Option<&RunAs>) -> Result<(), Error> {
    let euid = rustix::process::geteuid();
    let (uid, gid) = resolve(runas)?;
    if !euid.is_root() {
        if runas.is_some() && euid.as_raw() != uid {
            return Err(Error::msg(format!(
                "--runas {uid}: not root, cannot change user"
            )));
        }
        return Ok(());
    }
    let groups = [gid as libc::gid_t];
    // SAFETY: a pointer to one gid_t that lives across the call.
    let ok = unsafe { libc::setgroups(1, groups.as_ptr()) } == 0
        // SAFETY: plain system calls without pointers.
        && unsafe { libc::setgid(gid) } == 0
        && unsafe { libc::setuid(uid) } == 0;
    if !ok {
        return Err(Error::msg(format!(
            "changing to UID {uid}, GID {gid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    debug!("running as UID {uid}, GID {gid}");
    if runas.is_some() {
        info!("changed to UID {uid}, GID {gid}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_runas_needs_no_lookup() {
        let r = RunAs {
            user: IdSpec::Id(1000),
            group: Some(IdSpec::Id(100)),
        };
        assert_eq!(resolve(Some(&r)).unwrap(), (1000, 100));
        let r = RunAs {
            user: IdSpec::Id(1000),
            group: None,
        };
        assert_eq!(resolve(Some(&r)).unwrap(), (1000, 1000));
        let r = RunAs {
            user: IdSpec::Name("no-such-user-here".into()),
            group: None,
        };
        assert!(resolve(Some(&r)).is_err());
        assert_eq!(
            resolve(None).unwrap().0,
            lookup("/etc/passwd", "nobody").map_or(NOBODY, |e| e.0)
        );
    }
}
