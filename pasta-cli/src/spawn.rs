//! Spawn mode: a new user and network namespace, and the command run in it.
//!
//! Without a PID or `--netns`, pasta makes the namespace it serves: it forks
//! a child that detaches into a new user namespace and a new network
//! namespace (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`), maps the caller's
//! user and group to root inside (`/proc/self/setgroups` `deny`, then
//! `uid_map` and `gid_map` `0 ID 1`, user_namespaces(7)), and reports back
//! on a pipe. pasta then sets up the tap device in the child's namespace
//! and, once it is ready, tells the child to go on a second pipe; only then
//! does the child run the command (default: `$SHELL`, else `/bin/sh`),
//! which so finds its network up.
//!
//! The command is kept apart from pasta as well: the child also makes new
//! PID, mount, UTS and IPC namespaces, and forks once more, so that the
//! command is PID 1 of its own PID namespace with a `/proc` of its own
//! mounted there: it cannot see pasta, nor name it to `ptrace` or
//! `/proc/PID/mem` it (pasta is not dumpable either, see
//! [`crate::privs`]). The child stays outside, as the command's parent,
//! and exits with its status; if the child is killed, the command is too
//! (`PR_SET_PDEATHSIG`). pasta stays in the foreground and ends
//! with the command's exit status (128 + the signal number if a signal
//! ended it, as shells report it).
//!
//! The command starts with default signal dispositions (pasta's runtime
//! ignores `SIGPIPE`, which `execve(2)` would pass on).
//!
//! If pasta fails before that, the child reads end-of-file instead of the
//! go-ahead and exits without running anything, and pasta reaps it: nothing
//! is left behind. If the command cannot be run, the child prints why and
//! exits 127 (not found) or 126, as shells do.
//!
//! Syscalls: `pipe2(O_CLOEXEC)`, `fork`, `unshare`, `open`/`write` of
//! `/proc/self/{setgroups,uid_map,gid_map}`, `read`, `write`, `prctl`,
//! `mount`, `execvp`, `_exit`, `pidfd_open`, `waitpid`.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use rustix::fs::{open, Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{pidfd_open, waitpid, Pid, PidfdFlags, WaitOptions, WaitStatus};
use rustix::thread::UnshareFlags;

use crate::Error;
use passt_sys::process::{self as sys, Fork};

/// The child's report that its namespaces are ready.
const READY: u8 = 0;

/// What the child was doing when it failed, by its report code.
const STEPS: [&str; 5] = [
    "creating a user and network namespace",
    "writing /proc/self/setgroups",
    "writing /proc/self/uid_map",
    "writing /proc/self/gid_map",
    "creating PID, mount, UTS and IPC namespaces",
];

/// A child in its new namespaces, waiting for the go-ahead.
#[derive(Debug)]
pub(crate) struct Spawned {
    pid: Pid,
    /// Write end of the go-ahead pipe; `None` once used.
    go: Option<OwnedFd>,
    /// The command, for messages.
    name: String,
    /// The go-ahead was given: the child is the command now.
    started: bool,
}

/// The command to run: as given, or the user's shell.
fn command_line(command: &[String]) -> Result<Vec<CString>, Error> {
    let words: Vec<String> = if command.is_empty() {
        vec![std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".to_owned())]
    } else {
        command.to_vec()
    };
    words
        .into_iter()
        .map(|w| {
            CString::new(w.clone())
                .map_err(|_| Error::msg(format!("command argument {w:?} contains a NUL byte")))
        })
        .collect()
}

/// Fork a child into a new user and network namespace; it runs `command`
/// once [`Spawned::start`] is called.
///
/// Call only while the process has one thread.
///
/// # Errors
/// If the pipes or the child cannot be made, or the child cannot create or
/// map its namespaces (user namespaces disabled, `EPERM`, ...).
pub(crate) fn spawn(command: &[String]) -> Result<Spawned, Error> {
    let argv = command_line(command)?;
    let name = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let (ready_r, ready_w) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("creating a pipe", e))?;
    let (go_r, go_w) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::sys("creating a pipe", e))?;
    match sys::fork().map_err(|e| Error::sys("forking", e))? {
        Fork::Child => {
            drop(ready_r);
            drop(go_w);
            child(ready_w, go_r, &argv, uid, gid)
        }
        Fork::Parent(pid) => {
            drop(ready_w);
            drop(go_r);
            let mut report = [0u8; 5];
            let n = read_full(&ready_r, &mut report);
            let spawned = Spawned {
                pid,
                go: Some(go_w),
                name,
                started: false,
            };
            match (n, report[0]) {
                (Ok(n), READY) if n >= 1 => Ok(spawned),
                (Ok(5), step) => {
                    drop(spawned);
                    let errno = i32::from_ne_bytes([report[1], report[2], report[3], report[4]]);
                    let what = STEPS
                        .get(usize::from(step).wrapping_sub(1))
                        .copied()
                        .unwrap_or("setting up the new namespaces");
                    Err(Error::sys(what, Errno::from_raw_os_error(errno)))
                }
                _ => {
                    drop(spawned);
                    Err(Error::msg(
                        "the child process for the new namespaces failed",
                    ))
                }
            }
        }
    }
}

/// Read until `buf` is full or end-of-file; how much was read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match io::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Write all of `data`, ignoring errors (the reader may be gone).
fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match io::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Write a `/proc/self` file.
fn write_proc(path: &str, text: &str) -> io::Result<()> {
    let fd = open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    match io::write(&fd, text.as_bytes()) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(_) => Err(Errno::IO),
        Err(e) => Err(e),
    }
}

/// The child: namespaces, report, wait, run.
fn child(ready: OwnedFd, go: OwnedFd, argv: &[CString], uid: u32, gid: u32) -> ! {
    let setup = || -> Result<(), (u8, Errno)> {
        sys::unshare_namespaces(UnshareFlags::NEWUSER | UnshareFlags::NEWNET)
            .map_err(|e| (1, e))?;
        // Linux before 3.19 has no setgroups file, and needs none.
        match write_proc("/proc/self/setgroups", "deny") {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err((2, e)),
        }
        write_proc("/proc/self/uid_map", &format!("0 {uid} 1")).map_err(|e| (3, e))?;
        write_proc("/proc/self/gid_map", &format!("0 {gid} 1")).map_err(|e| (4, e))?;
        // CLONE_NEWPID moves the next child only: the command, PID 1
        // there. The mount namespace is this process's.
        sys::unshare_namespaces(
            UnshareFlags::NEWPID
                | UnshareFlags::NEWNS
                | UnshareFlags::NEWUTS
                | UnshareFlags::NEWIPC,
        )
        .map_err(|e| (5, e))?;
        Ok(())
    };
    match setup() {
        Ok(()) => write_all(&ready, &[READY]),
        Err((step, e)) => {
            let mut report = [step, 0, 0, 0, 0];
            report[1..].copy_from_slice(&e.raw_os_error().to_ne_bytes());
            write_all(&ready, &report);
            sys::exit_now(1);
        }
    }
    drop(ready);
    let mut b = [0u8; 1];
    if !matches!(read_full(&go, &mut b), Ok(1)) {
        // pasta gave up: it has said why.
        sys::exit_now(1);
    }
    drop(go);
    // The command is PID 1 of the new PID namespace: this process stays
    // outside it, as the command's parent, and ends with its status.
    // Keyboard interrupts are for the command.
    sys::ignore_signal(libc::SIGINT, true);
    sys::ignore_signal(libc::SIGQUIT, true);
    match sys::fork() {
        Ok(Fork::Parent(pid)) => sys::exit_now(wait_for(pid)),
        Ok(Fork::Child) => {}
        Err(e) => {
            crate::error!("cannot start {:?}: fork: {e}", argv[0]);
            sys::exit_now(126);
        }
    }
    // If the parent is killed, so is the command, as before the PID
    // namespace came between them.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // A /proc of the new PID namespace: the command sees its own
    // processes, not pasta's. Mounts stay in this namespace.
    let _ = rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    );
    let _ = rustix::mount::mount(
        "proc",
        "/proc",
        "proc",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        None,
    );
    // Rust ignores SIGPIPE in its programs; the command gets the default
    // back (ignored signals stay ignored across execve(2)), and so do the
    // keyboard's.
    sys::ignore_signal(libc::SIGPIPE, false);
    sys::ignore_signal(libc::SIGINT, false);
    sys::ignore_signal(libc::SIGQUIT, false);
    let e = sys::exec(argv);
    let name = argv
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    crate::error!("cannot run {name:?}: {e}");
    sys::exit_now(if e == Errno::NOENT { 127 } else { 126 })
}

/// Wait for the command, `pid`; the status to exit with for it.
fn wait_for(pid: Pid) -> i32 {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return exit_code(status),
            Ok(None) | Err(Errno::INTR) => {}
            Err(_) => return 1,
        }
    }
}

impl Spawned {
    /// The child's PID.
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// The command's name, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace.
    pub(crate) fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid.as_raw_nonzero()))
    }

    /// Its user namespace.
    pub(crate) fn userns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/user", self.pid.as_raw_nonzero()))
    }

    /// A descriptor that becomes readable when the child exits.
    ///
    /// # Errors
    /// The `pidfd_open(2)` error (`ENOSYS` before Linux 5.3).
    pub(crate) fn pidfd(&self) -> Result<OwnedFd, Error> {
        pidfd_open(self.pid, PidfdFlags::empty())
            .map_err(|e| Error::sys("watching the child process (pidfd_open)", e))
    }

    /// Let the child run its command.
    ///
    /// # Errors
    /// If the child is gone already.
    pub(crate) fn start(mut self) -> Result<Pid, Error> {
        let go = self.go.take();
        if let Some(go) = go {
            match io::write(&go, &[1]) {
                Ok(1) => {}
                Ok(_) => return Err(Error::msg("starting the command: short write")),
                Err(e) => return Err(Error::sys("starting the command", e)),
            }
        }
        self.started = true;
        Ok(self.pid)
    }
}

impl Drop for Spawned {
    /// Not started: the child sees end-of-file, exits, and is reaped.
    fn drop(&mut self) {
        if !self.started {
            self.go = None;
            let _ = waitpid(Some(self.pid), WaitOptions::empty());
        }
    }
}

/// The exit status pasta reports for a command that ended with `status`:
/// its exit code, or 128 + the number of the signal that killed it.
pub(crate) fn exit_code(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_command_is_the_users_shell() {
        let argv = command_line(&["ip".into(), "-j".into(), "addr".into()]).unwrap();
        assert_eq!(argv.len(), 3);
        assert_eq!(argv[0].to_str().unwrap(), "ip");
        let argv = command_line(&[]).unwrap();
        assert_eq!(argv.len(), 1);
        let e = command_line(&["a\0b".into()]).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }
}
