//! The sandbox both daemons enter once set up: what a flaw in the data path
//! could still do afterwards is almost nothing.
//!
//! The steps, in the order [`Lockdown::apply`] takes them (each one a
//! function here, for threads that must take them too):
//!
//! 1. **Isolate** ([`isolate_thread`]): new mount, IPC and UTS namespaces
//!    (`unshare(2)`); every mount made private, so nothing propagates
//!    either way; an empty, read-only `tmpfs` made the root with
//!    `pivot_root(".", ".")` and the old root detached (pivot_root(2), the
//!    stacked form), so `/proc/PID/root` shows an empty directory and no
//!    path resolves to a host file. Without `CAP_SYS_ADMIN` in its user
//!    namespace a process first makes a user namespace of its own
//!    ([`new_userns`], mapping its own IDs; single-threaded only), as an
//!    unprivileged `passt` does.
//! 2. **Bounding set** ([`drop_bounding_set`]): every capability but the
//!    kept ones leaves it (`PR_CAPBSET_DROP`), while `CAP_SETPCAP` lasts.
//! 3. **Identity** ([`set_ids`]): as real root (UID 0 in the initial user
//!    namespace, [`in_initial_userns`]) or with `--runas`, the process
//!    becomes the unprivileged user; supplementary groups are cleared.
//!    UID 0 inside a user namespace keeps its identity: it is confined by
//!    that namespace already, and other IDs are usually not even mapped.
//! 4. **Capabilities** ([`drop_caps_thread`]): effective, permitted and
//!    inheritable sets cut to the kept ones (none for `passt`,
//!    `CAP_NET_BIND_SERVICE` at most for `pasta`), the ambient set cleared.
//! 5. **No way back**: `PR_SET_NO_NEW_PRIVS`, `PR_SET_DUMPABLE` off (no
//!    `/proc/PID/mem`, no ptrace by the same user), then the seccomp
//!    allow-list ([`crate::seccomp`]) on every thread at once.
//!
//! Capabilities, the bounding set and namespaces belong to a thread, not a
//! process: a thread that lives on (pasta's namespace thread) takes steps
//! 1, 2 and 4 itself ([`isolate_thread`], [`drop_bounding_set`],
//! [`drop_caps_thread`]); identity, dumpability and the filter cover every
//! thread.
//!
//! A step the system refuses (already in a restricted container: no user
//! namespaces, no `tmpfs` mounts) is skipped and named in the
//! [`Report`]; the daemon says so once in its log and goes on with the
//! others. A step that is asked for and fails where it must not (an
//! explicit `--runas` that cannot be taken, the filter) is an error.
//!
//! Also here: closing descriptors inherited from the caller
//! ([`close_inherited`]), looking up `--runas` users ([`ids_of`]).
//!
//! Syscalls: `unshare`, `mount`, `pivot_root`, `umount2`, `chdir`,
//! `open`/`write` of `/proc/self/{uid_map,gid_map,setgroups}`, `prctl`,
//! `capget`, `capset`, `setgroups`, `setresgid`, `setresuid`,
//! `close_range`.

use std::os::fd::RawFd;

use rustix::io::Errno;
use rustix::mount::{
    mount, mount_change, unmount, MountFlags, MountPropagationFlags, UnmountFlags,
};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};

/// The calling thread's errno after a failed libc call.
fn errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// A user and group to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// Real, effective and saved user ID.
    pub uid: u32,
    /// Real, effective and saved group ID.
    pub gid: u32,
}

/// IDs of `nobody` when `/etc/passwd` has no entry.
pub const NOBODY: Ids = Ids {
    uid: 65534,
    gid: 65534,
};

/// A user as `--runas` names it: a number or a name, and optionally a
/// group the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    /// A numeric ID.
    Id(u32),
    /// A name, looked up in `/etc/passwd` or `/etc/group`.
    Name(&'a str),
}

/// Fields of the entry named `name` (field 0) or numbered `id` (field 2) in
/// a colon-separated database (`/etc/passwd`, `/etc/group`).
fn lookup<'a>(db: &'a str, who: Who<'_>) -> Option<Vec<&'a str>> {
    db.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .find(|f| match who {
            Who::Name(n) => f[0] == n,
            Who::Id(i) => f[2].parse::<u32>() == Ok(i),
        })
}

/// The IDs that `user` (and `group`, else the user's primary group) name,
/// from the contents of `passwd` and `group` (files only, no NSS). A UID
/// without an entry takes the GID of the same number.
///
/// # Errors
/// A name without an entry, or an entry with unreadable fields: the
/// message names it.
pub fn ids_of(
    user: Who<'_>,
    group: Option<Who<'_>>,
    passwd: &str,
    group_db: &str,
) -> Result<Ids, String> {
    let (uid, primary) = match user {
        Who::Id(uid) => {
            let gid = lookup(passwd, Who::Id(uid))
                .and_then(|f| f.get(3).and_then(|g| g.parse().ok()))
                .unwrap_or(uid);
            (uid, gid)
        }
        Who::Name(name) => {
            let f = lookup(passwd, user).ok_or_else(|| format!("no user named {name:?}"))?;
            let bad = || format!("bad /etc/passwd entry for {name:?}");
            let uid = f[2].parse().map_err(|_| bad())?;
            let gid = f.get(3).and_then(|g| g.parse().ok()).ok_or_else(bad)?;
            (uid, gid)
        }
    };
    let gid = match group {
        None => primary,
        Some(Who::Id(g)) => g,
        Some(Who::Name(name)) => lookup(group_db, Who::Name(name))
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("no group named {name:?}"))?,
    };
    Ok(Ids { uid, gid })
}

/// `nobody` from the contents of `passwd`, else [`NOBODY`].
pub fn nobody(passwd: &str) -> Ids {
    lookup(passwd, Who::Name("nobody"))
        .and_then(|f| {
            Some(Ids {
                uid: f[2].parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .unwrap_or(NOBODY)
}

/// Whom the daemon becomes: the user `runas` names (`--runas`: a user and
/// optionally a group), else `nobody` if it runs as real root
/// (`root_here`: UID 0 in the initial user namespace, not moved into
/// another one), else nobody else (`None`: the IDs stay). Users are looked
/// up in `/etc/passwd` and `/etc/group`, read now.
///
/// # Errors
/// A `--runas` name without an entry: the message names it.
pub fn target_ids(
    runas: Option<(Who<'_>, Option<Who<'_>>)>,
    root_here: bool,
) -> Result<Option<Ids>, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    match runas {
        Some((user, group)) => {
            let group_db = std::fs::read_to_string("/etc/group").unwrap_or_default();
            ids_of(user, group, &passwd, &group_db)
                .map(Some)
                .map_err(|e| format!("--runas: {e}"))
        }
        None if root_here => Ok(Some(nobody(&passwd))),
        None => Ok(None),
    }
}

/// Whether a `uid_map` (the contents of `/proc/self/uid_map`) is the
/// initial user namespace's: all 2^32 - 1 IDs mapped onto themselves
/// (user_namespaces(7)).
pub fn is_initial_map(uid_map: &str) -> bool {
    let mut lines = uid_map.lines().filter(|l| !l.trim().is_empty());
    let first: Vec<&str> = lines
        .next()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    lines.next().is_none() && first == ["0", "0", "4294967295"]
}

/// Whether the process is in the initial user namespace, where UID 0 is
/// the real root. Unreadable `/proc` counts as the initial one (the safe
/// answer: root then still changes to `nobody`).
pub fn in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").map_or(true, |m| is_initial_map(&m))
}

/// Close every descriptor from 3 up except those in `keep`: what the
/// caller left open is not ours to hold, nor to hand on to a spawned
/// command. Call first thing in `main`, before anything is opened.
pub fn close_inherited(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3u32;
    for k in keep.iter().copied().chain(core::iter::once(u32::MAX)) {
        if k > from {
            close_range(from, k - 1);
        }
        from = k.saturating_add(1);
    }
}

/// `close_range(first, last, 0)`, or closing one by one on kernels before
/// 5.9 (as far as the soft descriptor limit).
fn close_range(first: u32, last: u32) {
    // SAFETY: close_range(2) takes plain integers and closes descriptors
    // only; the caller runs before any descriptor of this process (other
    // than the standard three) is in use, so none that Rust code owns is
    // closed behind its back.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::from(first),
            libc::c_uint::from(last),
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        return;
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
        .min(65536) as u32;
    for fd in first..=last.min(limit) {
        // SAFETY: as above: closing a descriptor nothing owns yet.
        unsafe { libc::close(fd as libc::c_int) };
    }
}

/// Write a `/proc/self` file in one `write`.
fn write_proc(path: &str, text: &str) -> Result<(), Errno> {
    use rustix::fs::{open, Mode, OFlags};
    let fd = open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    match rustix::io::write(&fd, text.as_bytes()) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(_) => Err(Errno::IO),
        Err(e) => Err(e),
    }
}

/// Make a new user namespace for the process, mapping its own user and
/// group onto themselves (`setgroups` denied first, user_namespaces(7)):
/// the process gets the capabilities to isolate itself in it, none over
/// anything outside. With `pid` also a new PID namespace, which the next
/// child made by `fork` is PID 1 of (the daemon's, once it goes to the
/// background).
///
/// # Errors
/// `EINVAL` if the process has more than one thread; `EPERM` or `ENOSPC`
/// where user namespaces are off; failures writing the maps.
pub fn new_userns(pid: bool) -> Result<(), Errno> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let mut flags = UnshareFlags::NEWUSER;
    if pid {
        flags |= UnshareFlags::NEWPID;
    }
    crate::process::unshare_namespaces(flags)?;
    match write_proc("/proc/self/setgroups", "deny") {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    write_proc("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
    write_proc("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Leave the caller's PID namespace: the next child made by `fork` is PID
/// 1 of a new one (pid_namespaces(7)). Needs `CAP_SYS_ADMIN` in the user
/// namespace.
///
/// # Errors
/// `EPERM` without the capability.
pub fn new_pidns() -> Result<(), Errno> {
    crate::process::unshare_namespaces(UnshareFlags::NEWPID)
}

/// The handler of [`exit_on_signals`]: end the process at once.
extern "C" fn exit_now(_sig: libc::c_int) {
    // SAFETY: _exit(2) is async-signal-safe and does not return.
    unsafe { libc::_exit(0) }
}

/// End the process with status 0 on `SIGTERM`, `SIGINT`, `SIGHUP` and
/// `SIGQUIT`. PID 1 of a PID namespace receives only the signals it has a
/// handler for (pid_namespaces(7)): without these, a daemon there could
/// not be stopped but with `SIGKILL`.
pub fn exit_on_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: the handler only calls _exit(2), which is
        // async-signal-safe; `exit_now` has the signature signal(2)
        // expects.
        unsafe {
            libc::signal(
                sig,
                exit_now as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

/// Detach the calling thread into new mount, IPC and UTS namespaces and
/// make its root an empty, read-only `tmpfs`, the old root detached.
///
/// # Errors
/// `EPERM` without `CAP_SYS_ADMIN` in the thread's user namespace; other
/// mount failures. A failure after the `unshare` leaves the thread in its
/// new namespaces with the old root.
pub fn isolate_thread() -> Result<(), Errno> {
    // SAFETY: no CLONE_FILES among the flags (CLONE_NEWNS implies CLONE_FS
    // only: this thread's root and working directory become its own).
    unsafe {
        rustix::thread::unshare_unsafe(
            UnshareFlags::NEWNS | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS,
        )
    }?;
    // Nothing mounted or unmounted here may reach the namespace copied
    // from, nor the other way round.
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    // Any directory serves as the mount point: the mount is in our new
    // namespace only, and the directory is never seen again.
    let dir = ["/tmp", "/run", "/mnt", "/dev", "/"]
        .into_iter()
        .find(|d| rustix::fs::stat(*d).is_ok())
        .unwrap_or("/");
    mount(
        "",
        dir,
        "tmpfs",
        MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        c"nr_inodes=2,nr_blocks=1,mode=0555",
    )?;
    rustix::process::chdir(dir)?;
    // The stacked form: the old root ends up on top of the new one, at
    // ".", and is detached from there (pivot_root(2), NOTES).
    rustix::process::pivot_root(".", ".")?;
    unmount(".", UnmountFlags::DETACH)?;
    rustix::process::chdir("/")?;
    Ok(())
}

/// Remove every capability but `keep` from the calling thread's bounding
/// set, so that not even an `execve` of a privileged file could gain one.
///
/// # Errors
/// `EPERM` without `CAP_SETPCAP` (the bounding set then stays as it is).
pub fn drop_bounding_set(keep: CapabilitySet) -> Result<(), Errno> {
    for cap in 0..64u32 {
        if keep.bits() & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP) takes an integer and touches no
        // memory of ours.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if r != 0 {
            match errno() {
                // Past the last capability this kernel knows.
                Errno::INVAL => break,
                e => return Err(e),
            }
        }
    }
    Ok(())
}

/// Cut the calling thread's effective, permitted and inheritable
/// capabilities to those of `keep` it has, and clear its ambient set.
///
/// # Errors
/// What `capset(2)` says (it only refuses to add).
pub fn drop_caps_thread(keep: CapabilitySet) -> Result<(), Errno> {
    let _ = rustix::thread::clear_ambient_capability_set();
    let now = rustix::thread::capabilities(None)?;
    let kept = now.permitted & keep;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: kept,
            permitted: kept,
            inheritable: CapabilitySet::empty(),
        },
    )
}

/// Switch the whole process (every thread: glibc applies these to all of
/// them) to `ids`: supplementary groups cleared, then real, effective and
/// saved group and user IDs. Capabilities go with UID 0 (capabilities(7)).
///
/// # Errors
/// `EPERM` without `CAP_SETUID`/`CAP_SETGID`; `EINVAL` for IDs not mapped
/// in the user namespace.
pub fn set_ids(ids: Ids) -> Result<(), Errno> {
    // SAFETY: setgroups(2) with a zero count reads no memory; setresgid(2)
    // and setresuid(2) take plain integers.
    unsafe {
        if libc::setgroups(0, core::ptr::null()) != 0 && errno() != Errno::PERM {
            return Err(errno());
        }
        if libc::setresgid(ids.gid, ids.gid, ids.gid) != 0 {
            return Err(errno());
        }
        if libc::setresuid(ids.uid, ids.uid, ids.uid) != 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// What the process is to become: its user and the capabilities it keeps.
#[derive(Debug, Clone)]
pub struct Lockdown {
    /// Become this user (real root, or `--runas`); `None` keeps the IDs.
    pub ids: Option<Ids>,
    /// Capabilities kept (a subset of those held).
    pub keep: CapabilitySet,
}

/// What [`Lockdown::apply`] did, and which steps the system refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// A user namespace was made first (no `CAP_SYS_ADMIN` of our own).
    pub made_userns: bool,
    /// Steps skipped, each with the reason, for one log line each.
    pub skipped: Vec<String>,
}

impl Lockdown {
    /// Take steps 1 to 4 on the calling thread (identity for the whole
    /// process); [`seal`] follows, once other threads that live on have
    /// taken steps 1, 2 and 4 too.
    ///
    /// # Errors
    /// A failed identity change or filter, with what was being done.
    pub fn apply(&self) -> Result<Report, (String, Errno)> {
        let mut report = Report::default();
        match isolate_thread() {
            Ok(()) => {}
            Err(Errno::PERM) if new_userns(false).is_ok() => {
                report.made_userns = true;
                if let Err(e) = isolate_thread() {
                    report
                        .skipped
                        .push(format!("detaching from the host's filesystem: {e}"));
                }
            }
            Err(e) => report
                .skipped
                .push(format!("detaching from the host's filesystem: {e}")),
        }
        if let Err(e) = drop_bounding_set(self.keep) {
            report
                .skipped
                .push(format!("emptying the capability bounding set: {e}"));
        }
        if let Some(ids) = self.ids {
            set_ids(ids).map_err(|e| {
                (
                    format!(
                        "changing to UID {}, GID {} (give --runas a user that exists and is mapped here)",
                        ids.uid, ids.gid
                    ),
                    e,
                )
            })?;
        }
        drop_caps_thread(self.keep).map_err(|e| ("dropping capabilities".to_owned(), e))?;
        Ok(report)
    }
}

/// Step 5, for the whole process: no new privileges, not dumpable, and the
/// seccomp filter `program` ([`crate::seccomp::program`]) on every thread
/// at once.
///
/// # Errors
/// What failed, and why.
pub fn seal(program: &[libc::sock_filter]) -> Result<(), (String, Errno)> {
    rustix::thread::set_no_new_privs(true).map_err(|e| ("setting no_new_privs".to_owned(), e))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| ("making the process not dumpable".to_owned(), e))?;
    crate::seccomp::install(program, true)
        .map_err(|e| ("installing the seccomp filter".to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                          alice:x:1000:1001::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:alice\nnogroup:x:65534:\n";

    #[test]
    fn users_and_groups_resolve() {
        let r = |u, g| ids_of(u, g, PASSWD, GROUP);
        let ids = |uid, gid| Ids { uid, gid };
        assert_eq!(r(Who::Name("alice"), None), Ok(ids(1000, 1001)));
        assert_eq!(r(Who::Id(1000), None), Ok(ids(1000, 1001)));
        assert_eq!(r(Who::Id(4242), None), Ok(ids(4242, 4242)));
        assert_eq!(
            r(Who::Name("alice"), Some(Who::Name("staff"))),
            Ok(ids(1000, 50))
        );
        assert_eq!(r(Who::Id(7), Some(Who::Id(8))), Ok(ids(7, 8)));
        assert_eq!(
            r(Who::Name("bob"), None),
            Err("no user named \"bob\"".to_owned())
        );
        assert_eq!(
            r(Who::Id(1), Some(Who::Name("wheel"))),
            Err("no group named \"wheel\"".to_owned())
        );
        assert_eq!(nobody(PASSWD), ids(65534, 65534));
        assert_eq!(nobody(""), NOBODY);
    }

    #[test]
    fn the_initial_user_namespace_is_recognised_by_its_map() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 0 4294967295\n1 1 1\n"));
        assert!(!is_initial_map("1000 1000 1\n"));
        assert!(!is_initial_map(""));
    }
}
