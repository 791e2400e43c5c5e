//! Process calls without a safe wrapper in rustix: creating and replacing
//! the process, signal dispositions, namespaces, and taking over a
//! descriptor inherited by number, or handing one on by number. Both
//! drivers use them (going to the background; pasta's spawned command;
//! passt's `--fd`), and qrap (its socket for qemu).
//!
//! Syscalls: `fork`, `execvp`, `_exit`, `signal`, `unshare`,
//! `fcntl(F_GETFD, F_SETFD)`, `dup2`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::Errno;
use rustix::process::Pid;
use rustix::thread::UnshareFlags;

/// Which side of a `fork` the caller is on.
#[derive(Debug)]
pub enum Fork {
    /// The original process; the new one has this PID.
    Parent(Pid),
    /// The new process.
    Child,
}

/// The calling thread's errno after a failed libc call.
fn errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// Fork the process.
///
/// Call only while the process has one thread (the drivers fork during
/// start-up, before any thread that outlives it starts): the child is then
/// a full copy, free to allocate and take locks.
///
/// # Errors
/// `EAGAIN`, `ENOMEM`.
pub fn fork() -> Result<Fork, Errno> {
    // SAFETY: fork(2) has no memory-safety preconditions of its own; what
    // makes running Rust code in the child sound is that no other thread
    // could have held a lock or been mid-update at the time, which the
    // single-thread rule above guarantees.
    match unsafe { libc::fork() } {
        -1 => Err(errno()),
        0 => Ok(Fork::Child),
        pid => Pid::from_raw(pid).map(Fork::Parent).ok_or(Errno::IO),
    }
}

/// Replace the process image with `argv[0]`, looked up in `PATH`.
/// Returns only on failure, with the reason.
pub fn exec(argv: &[CString]) -> Errno {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(core::ptr::null());
    let Some(file) = argv.first() else {
        return Errno::INVAL;
    };
    // SAFETY: `file` and every pointer in `ptrs` point to NUL-terminated
    // strings owned by `argv`, alive for the call; `ptrs` ends with a null
    // pointer as execvp(3) requires.
    unsafe { libc::execvp(file.as_ptr(), ptrs.as_ptr()) };
    errno()
}

/// End the process at once, without running exit handlers or flushing
/// buffers that belong to the other side of a `fork`.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) takes any status and does not return.
    unsafe { libc::_exit(code) }
}

/// Ignore `sig` (`SIGINT` and `SIGQUIT` while a spawned command runs in the
/// foreground, as `system(3)` does), or restore its default action
/// (`SIGPIPE` for the spawned command).
pub fn ignore_signal(sig: libc::c_int, ignore: bool) {
    let action = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: SIG_IGN and SIG_DFL are not handlers: no code of ours runs in
    // signal context.
    unsafe { libc::signal(sig, action) };
}

/// `unshare(2)` of namespaces: the calling thread (or, for a PID
/// namespace, its next child) moves to new ones of the kinds in `flags`.
///
/// # Errors
/// `EINVAL` if `flags` asks to unshare anything but namespaces (the
/// descriptor table, filesystem attributes, System V semaphores); else the
/// kernel's (`EPERM`, `ENOSPC`, `EINVAL` with threads for a user
/// namespace).
pub fn unshare_namespaces(flags: UnshareFlags) -> Result<(), Errno> {
    let not_ns = UnshareFlags::FILES | UnshareFlags::FS | UnshareFlags::SYSVSEM;
    if flags.intersects(not_ns) {
        return Err(Errno::INVAL);
    }
    // SAFETY: no CLONE_FILES among the flags (checked above): the
    // descriptor table stays shared, so no descriptor changes meaning for
    // any thread.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

/// Take ownership of descriptor `fd`, which the process was handed at
/// start by number (passt's `-F/--fd`), for its exclusive use: call it
/// once per such number, before anything else opens a descriptor (so no
/// other owner of that number can exist in the process).
///
/// # Errors
/// `EBADF` if `fd` is not open.
pub fn adopt_inherited(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_GETFD on any integer is harmless: it reads descriptor flags
    // or fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: the descriptor is open (checked above) and was handed to the
    // process by its parent for its exclusive use; by this function's
    // contract nothing else in the process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make `fd` available as descriptor number `target` across `exec` (qrap
/// hands qemu its socket by number): `dup2` onto `target`, whose old
/// descriptor, if any, is closed; the duplicate is not close-on-exec. If
/// `fd` already is `target`, its close-on-exec flag is cleared instead.
/// Call just before `exec`: `target` is no longer owned by anything else
/// in the process afterwards, nor may it be (it belongs to the program
/// about to run).
///
/// # Errors
/// The kernel's (`EBADF` for a negative or too large `target`).
pub fn hand_on_as(fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
    if fd.as_raw_fd() == target {
        return rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty());
    }
    // SAFETY: dup2(2) only reads `fd`, which the borrow keeps open for the
    // call; what it closes at `target` is, by this function's contract,
    // nothing the process still uses (the caller is about to `exec`).
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(errno());
    }
    Ok(())
}
