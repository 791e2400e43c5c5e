//! What ends pasta besides an error: the spawned command exiting, the
//! target process exiting, the target namespace's file being deleted.
//!
//! Each is a descriptor in the event loop's epoll set ([`Watch`], added with
//! `Driver::add_watch` in [`crate::run`]) that becomes readable when
//! something may have happened; [`Watch::ready`] then looks, and returns the
//! exit status pasta should end with, if it should.
//!
//! - [`ChildExit`]: a pidfd of the spawned command (`pidfd_open(2)`,
//!   readable once it exits); pasta reaps it and exits with its status.
//! - [`ProcessExit`]: a pidfd of the process whose namespace pasta joined
//!   (`pasta PID`, or `--netns /proc/PID/ns/net`): its namespace is going
//!   away with it, pasta exits 0.
//! - [`FileGone`]: inotify (inotify(7)) on the directory of a namespace
//!   file (`/run/netns/NAME`, podman's `/run/user/UID/netns/...`): when an
//!   entry is deleted or moved away, or the directory itself goes, pasta
//!   checks whether the file is still there and exits 0 if not (podman
//!   deletes the file to stop pasta). When it may no longer look (after
//!   dropping privileges, podman's runtime directory is closed to it:
//!   `stat` fails with `EACCES`), the event's own name decides: an event
//!   naming the file, or the directory's own end, means it is gone.
//!   `--no-netns-quit` leaves these out.
//!
//! Syscalls: `pidfd_open`, `waitpid(WNOHANG)`, `inotify_init1`, `open(O_PATH)`, `newfstatat`,
//! `inotify_add_watch`, `read`, `stat`.

use core::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;
use rustix::process::{pidfd_open, waitpid, Pid, PidfdFlags, WaitOptions};

use crate::{debug, info, Error};

/// Something the event loop waits on besides the tap and sockets.
pub(crate) trait Watch {
    /// The descriptor to poll for readability.
    fn fd(&self) -> BorrowedFd<'_>;
    /// It became readable: the status to exit with, if pasta should end.
    fn ready(&mut self) -> Option<i32>;
}

/// The spawned command: pasta ends with its status.
#[derive(Debug)]
pub(crate) struct ChildExit {
    pid: Pid,
    pidfd: OwnedFd,
    name: String,
}

impl ChildExit {
    /// Watch child `pid` through `pidfd`; `name` is for the log.
    pub(crate) fn new(pid: Pid, pidfd: OwnedFd, name: String) -> ChildExit {
        ChildExit { pid, pidfd, name }
    }
}

impl Watch for ChildExit {
    fn fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn ready(&mut self) -> Option<i32> {
        match waitpid(Some(self.pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => {
                let code = crate::spawn::exit_code(status);
                debug!("{} exited, status {code}", self.name);
                Some(code)
            }
            Ok(None) | Err(Errno::INTR) => None,
            // Not our child any more (cannot happen): nothing to wait for.
            Err(e) => {
                debug!("waiting for {}: {}", self.name, passt_sys::ErrnoText(e));
                Some(1)
            }
        }
    }
}

/// The process whose namespace pasta serves.
#[derive(Debug)]
pub(crate) struct ProcessExit {
    pid: u32,
    pidfd: OwnedFd,
}

impl ProcessExit {
    /// Watch process `pid`.
    ///
    /// # Errors
    /// `ESRCH` if there is no such process; `ENOSYS` before Linux 5.3.
    pub(crate) fn new(pid: u32) -> Result<ProcessExit, Error> {
        let raw = i32::try_from(pid).ok().and_then(Pid::from_raw);
        let pidfd = raw
            .ok_or(Errno::SRCH)
            .and_then(|p| pidfd_open(p, PidfdFlags::empty()))
            .map_err(|e| match e {
                Errno::SRCH => Error::msg(format!("no process with PID {pid}")),
                e => Error::sys(format!("watching process {pid} (pidfd_open)"), e),
            })?;
        Ok(ProcessExit { pid, pidfd })
    }
}

impl Watch for ProcessExit {
    fn fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn ready(&mut self) -> Option<i32> {
        info!(
            "process {} exited: its namespace is gone, quitting",
            self.pid
        );
        Some(0)
    }
}

/// A namespace file that podman or `ip netns del` may delete.
#[derive(Debug)]
pub(crate) struct FileGone {
    inotify: OwnedFd,
    /// The file's directory, held open: its presence is checked there
    /// (`fstatat`), since no path resolves once pasta is sandboxed.
    dir: OwnedFd,
    /// The file's name in `dir`.
    name: PathBuf,
    path: PathBuf,
}

impl FileGone {
    /// Watch the directory of `path` for its deletion.
    ///
    /// # Errors
    /// If inotify cannot be set up on the directory.
    pub(crate) fn new(path: &Path) -> Result<FileGone, Error> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| Error::sys("inotify_init1", e))?;
        inotify::add_watch(
            &inotify,
            dir,
            WatchFlags::DELETE
                | WatchFlags::MOVED_FROM
                | WatchFlags::DELETE_SELF
                | WatchFlags::MOVE_SELF,
        )
        .map_err(|e| Error::sys(format!("watching {} (inotify)", dir.display()), e))?;
        let dir_fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("opening {}", dir.display()), e))?;
        Ok(FileGone {
            inotify,
            dir: dir_fd,
            name: path
                .file_name()
                .map_or_else(|| PathBuf::from("."), PathBuf::from),
            path: path.to_owned(),
        })
    }

    /// Whether the namespace file is still where it was; `None` when that
    /// cannot be told (no permission to look any more).
    fn present(&self) -> Option<bool> {
        match rustix::fs::statat(&self.dir, &self.name, rustix::fs::AtFlags::empty()) {
            Ok(_) => Some(true),
            Err(Errno::NOENT | Errno::NOTDIR) => Some(false),
            Err(_) => None,
        }
    }
}

impl Watch for FileGone {
    fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    fn ready(&mut self) -> Option<i32> {
        // Drain the events; which one came does not matter, the file's
        // presence does.
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.inotify, &mut buf);
        let mut named = false;
        let ours = self.path.file_name().map(OsStrExt::as_bytes);
        for _ in 0..1024 {
            match reader.next() {
                Ok(ev) => {
                    let gone_self = ReadFlags::DELETE_SELF
                        | ReadFlags::MOVE_SELF
                        | ReadFlags::IGNORED
                        | ReadFlags::UNMOUNT;
                    if ev.events().intersects(gone_self) {
                        named = true;
                    }
                    if let Some(n) = ev.file_name() {
                        // Compared and shown in place: nothing allocated.
                        named |= ours == Some(n.to_bytes());
                        debug!(
                            "namespace directory changed: {}",
                            n.to_bytes().escape_ascii()
                        );
                    }
                }
                Err(_) => break,
            }
        }
        match self.present() {
            Some(true) => return None,
            Some(false) => {}
            None if named => {}
            None => return None,
        }
        info!(
            "namespace file {} was deleted, quitting",
            self.path.display()
        );
        Some(0)
    }
}

/// The process behind a `/proc/PID/ns/net`-style path, if it is one:
/// procfs does not report deletions, the process's exit is watched instead.
pub(crate) fn proc_pid(path: &Path) -> Option<u32> {
    let s = path.to_str()?;
    let rest = s.strip_prefix("/proc/")?;
    let (pid, tail) = rest.split_once('/')?;
    if tail != "ns/net" || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths_name_their_process() {
        assert_eq!(proc_pid(Path::new("/proc/123/ns/net")), Some(123));
        assert_eq!(proc_pid(Path::new("/proc/self/ns/net")), None);
        assert_eq!(proc_pid(Path::new("/proc/123/ns/user")), None);
        assert_eq!(proc_pid(Path::new("/run/netns/x")), None);
    }

    #[test]
    fn deleting_the_file_is_noticed() {
        let dir = std::env::temp_dir().join(format!("pasta-watch-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ns");
        let other = dir.join("other");
        std::fs::write(&file, b"").unwrap();
        std::fs::write(&other, b"").unwrap();
        let mut w = FileGone::new(&file).unwrap();
        assert_eq!(w.ready(), None);
        std::fs::remove_file(&other).unwrap();
        assert_eq!(w.ready(), None);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(w.ready(), Some(0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_process_is_named() {
        // PIDs above pid_max (at most 2^22) never exist.
        let e = ProcessExit::new(0x7fff_fff0).unwrap_err();
        assert_eq!(e.to_string(), "no process with PID 2147483632");
    }
}
