//! The few system calls without a safe wrapper in rustix: process creation
//! and replacement, signal dispositions.
//! Each is a thin wrapper with its safety argument; the rest of the binary
//! uses them, never `libc` directly.
//!
//! Syscalls: `fork`, `execvp`, `_exit`, `signal`.

use std::ffi::CString;

use rustix::io::Errno;
use rustix::process::Pid;

/// Which side of a `fork` the caller is on.
#[derive(Debug)]
pub(crate) enum Fork {
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
/// Call only while the process has one thread (pasta's threads are scoped
/// and joined during start-up, and [`crate::netns::NsThread`] starts after
/// the last fork): the child is then a full copy, free to allocate and
/// take locks.
///
/// # Errors
/// `EAGAIN`, `ENOMEM`.
pub(crate) fn fork() -> Result<Fork, Errno> {
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
pub(crate) fn exec(argv: &[CString]) -> Errno {
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
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) takes any status and does not return.
    unsafe { libc::_exit(code) }
}

/// Ignore `sig` (`SIGINT` and `SIGQUIT` while a spawned command runs in the
/// foreground, as `system(3)` does), or restore its default action
/// (`SIGPIPE` for the spawned command).
pub(crate) fn ignore_signal(sig: libc::c_int, ignore: bool) {
    let action = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: SIG_IGN and SIG_DFL are not handlers: no code of ours runs in
    // signal context.
    unsafe { libc::signal(sig, action) };
}
