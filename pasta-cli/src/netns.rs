//! Network namespaces: joining the target namespace and coming back.
//!
//! pasta creates its tap device *inside* the namespace it serves, then
//! returns to the namespace it started in (the host's): a tap file
//! descriptor stays bound to the device, and so to the namespace, wherever
//! the process goes, while host sockets opened later belong to the host's
//! namespace. A namespace is held by an open file descriptor on its
//! `/proc/PID/ns/net` link or on a bind mount of it (`/run/netns/NAME`, as
//! `ip netns add` makes), and entered with `setns(2)` (`CLONE_NEWNET`).
//!
//! `setns` moves only the calling thread; the driver is single-threaded, and
//! does this before anything else runs.
//!
//! Syscalls: `open` (`O_RDONLY | O_CLOEXEC`), `setns`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{open, Mode, OFlags};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::Error;

/// A network namespace, held open.
#[derive(Debug)]
pub(crate) struct NetNs {
    fd: OwnedFd,
    path: PathBuf,
}

impl NetNs {
    /// The namespace the calling thread is in now.
    ///
    /// # Errors
    /// If `/proc/thread-self/ns/net` cannot be opened (no `/proc`).
    pub(crate) fn current() -> Result<NetNs, Error> {
        NetNs::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// Open the namespace file at `path` (without entering it).
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub(crate) fn open(path: &Path) -> Result<NetNs, Error> {
        let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys(format!("opening namespace {}", path.display()), e))?;
        Ok(NetNs {
            fd,
            path: path.to_owned(),
        })
    }

    /// Where this namespace was opened from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Move the calling thread into this namespace.
    ///
    /// # Errors
    /// `EINVAL` if the file is not a network namespace, `EPERM` without
    /// `CAP_SYS_ADMIN` over it.
    pub(crate) fn enter(&self) -> Result<(), Error> {
        move_into_link_name_space(self.fd.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| {
            Error::sys(
                format!("joining network namespace {}", self.path.display()),
                e,
            )
        })
    }

    /// Run `f` inside `self`, then return to `home`, whatever `f` returned.
    ///
    /// # Errors
    /// If either move fails; failing to return is reported even if `f`
    /// failed too, as the process is then in the wrong namespace.
    pub(crate) fn run_in<T>(
        &self,
        home: &NetNs,
        f: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.enter()?;
        let res = f();
        home.enter()?;
        res
    }
}
