//! Namespaces: the target network namespace, held open and worked in from
//! other threads; the user namespace that owns it.
//!
//! pasta itself stays in the network namespace it started in (the host's):
//! its host sockets belong there. Work inside the target namespace (creating
//! the tap device, configuring it through netlink, opening sockets there)
//! runs on a thread that moves into the namespace with `setns(2)`
//! (`CLONE_NEWNET` only moves the calling thread) and ends with it:
//! [`NetNs::run_in`] for start-up, [`NsThread`] for later. A file descriptor
//! made there (tap, socket) stays bound to the namespace wherever it is used
//! from.
//!
//! `setns` into a network namespace needs `CAP_SYS_ADMIN` both in the
//! caller's user namespace and in the one owning the target. Root has it
//! everywhere; an unprivileged user has it in a user namespace it made (or
//! that `unshare -rUn` made for it), so it first joins that user namespace
//! with [`join_userns`] — for the whole process, which must still be single
//! threaded then, and for good: from then on pasta can no longer enter the
//! host's network namespace, which it never needs to.
//!
//! A namespace is held by an open file descriptor on its `/proc/PID/ns/net`
//! link or a bind mount of it (`/run/netns/NAME`, as `ip netns add` makes).
//!
//! Syscalls: `open` (`O_RDONLY | O_CLOEXEC`), `fstat`, `setns`, `capget`,
//! `clone` (threads).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use passt_core::host::exec::NsSockets;
use passt_core::Proto;
use rustix::fs::{fstat, open, Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
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
            .map_err(|e| Error::sys(format!("opening network namespace {}", path.display()), e))?;
        Ok(NetNs {
            fd,
            path: path.to_owned(),
        })
    }

    /// Where this namespace was opened from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `self` and `other` are the same namespace.
    pub(crate) fn same_as(&self, other: &NetNs) -> bool {
        same_file(self.fd.as_fd(), other.fd.as_fd())
    }

    /// Move the calling thread into this namespace.
    ///
    /// # Errors
    /// `EINVAL` if the file is not a network namespace, `EPERM` without
    /// `CAP_SYS_ADMIN` over it.
    pub(crate) fn enter(&self) -> Result<(), Error> {
        move_into_link_name_space(self.fd.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| {
            let what = match e {
                Errno::INVAL => format!("{} is not a network namespace", self.path.display()),
                _ => format!("joining network namespace {}", self.path.display()),
            };
            match e {
                Errno::INVAL => Error::msg(what),
                _ => Error::sys(what, e),
            }
        })
    }

    /// Run `f` inside this namespace, on a thread of its own that ends with
    /// it; the calling thread stays where it is.
    ///
    /// # Errors
    /// If the namespace cannot be entered or the thread not started, or
    /// what `f` returns.
    pub(crate) fn run_in<T: Send>(
        &self,
        f: impl FnOnce() -> Result<T, Error> + Send,
    ) -> Result<T, Error> {
        thread::scope(|s| {
            let worker = thread::Builder::new()
                .name("pasta-netns".into())
                .spawn_scoped(s, || {
                    self.enter()?;
                    f()
                })
                .map_err(|e| Error::msg(format!("starting a thread: {e}")))?;
            worker
                .join()
                .unwrap_or_else(|_| Err(Error::msg("internal error: namespace thread panicked")))
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether two descriptors are on the same file (namespaces are files of
/// the `nsfs` filesystem: same device and inode, same namespace).
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    match (fstat(a), fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// Whether the process has `CAP_SYS_ADMIN` in its user namespace, which
/// (with the same in the target's owner) lets it enter any network
/// namespace.
pub(crate) fn have_sys_admin() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
    })
}

/// Join the user namespace at `path` for the whole process, unless the
/// process is in it already. Returns whether it moved.
///
/// Must be called while the process has a single thread (`setns(2)`:
/// `EINVAL` otherwise).
///
/// # Errors
/// If the file cannot be opened or is not a user namespace, or `setns`
/// refuses (`EPERM`: no `CAP_SYS_ADMIN` in it).
pub(crate) fn join_userns(path: &Path) -> Result<bool, Error> {
    let what = || format!("joining user namespace {}", path.display());
    let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("opening user namespace {}", path.display()), e))?;
    let ours = open(
        "/proc/self/ns/user",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("opening /proc/self/ns/user", e))?;
    if same_file(fd.as_fd(), ours.as_fd()) {
        return Ok(false);
    }
    move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::User))
        .map_err(|e| Error::sys(what(), e))?;
    Ok(true)
}

/// Work for an [`NsThread`] at start-up.
type Job = Box<dyn FnOnce() + Send>;

/// What the [`NsThread`]'s mailbox holds.
enum Mail {
    /// Nothing asked.
    Idle,
    /// Run this (start-up work, which may allocate).
    Job(Job),
    /// Make a socket (the event loop's only request, which allocates
    /// nothing).
    Socket(AddressFamily, SocketType),
    /// The answer to the last request, for its caller.
    Done(Option<Result<OwnedFd, Errno>>),
    /// Every handle is gone: the thread ends.
    Closed,
}

/// The mailbox between callers and the thread: one request at a time.
struct Mailbox {
    mail: Mutex<Mail>,
    changed: Condvar,
    /// Held by a caller for a whole request and its answer.
    caller: Mutex<()>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Mail>) -> MutexGuard<'a, Mail> {
        self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
    }

    /// Post `req`, wait for its answer; `None` if the thread is gone.
    fn call(&self, req: Mail) -> Option<Option<Result<OwnedFd, Errno>>> {
        let _one = self.caller.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = self.lock();
        if matches!(*m, Mail::Closed) {
            return None;
        }
        *m = req;
        self.changed.notify_all();
        loop {
            match core::mem::replace(&mut *m, Mail::Idle) {
                Mail::Done(r) => return Some(r),
                Mail::Closed => {
                    *m = Mail::Closed;
                    return None;
                }
                other => *m = other,
            }
            m = self.wait(m);
        }
    }

    /// The thread's side: serve requests until closed.
    fn serve(&self) {
        let mut m = self.lock();
        loop {
            let answer = match core::mem::replace(&mut *m, Mail::Idle) {
                Mail::Closed => return,
                Mail::Job(job) => {
                    drop(m);
                    job();
                    m = self.lock();
                    Mail::Done(None)
                }
                Mail::Socket(family, ty) => {
                    drop(m);
                    let r = socket_with(
                        family,
                        ty,
                        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
                        None,
                    );
                    m = self.lock();
                    Mail::Done(Some(r))
                }
                other => {
                    // Idle, or an answer not yet taken.
                    *m = other;
                    m = self.wait(m);
                    continue;
                }
            };
            if !matches!(*m, Mail::Closed) {
                *m = answer;
            }
            self.changed.notify_all();
        }
    }
}

/// Closes the mailbox when the last [`NsThread`] clone is dropped.
struct Handle(Arc<Mailbox>);

impl Drop for Handle {
    fn drop(&mut self) {
        *self.0.lock() = Mail::Closed;
        self.0.changed.notify_all();
    }
}

/// A thread that stays in the target namespace, to make sockets there
/// after pasta has dropped the privileges it needed to enter it (root
/// becomes `nobody` after start-up, see [`crate::privs`]; without
/// `CAP_SYS_ADMIN`, pasta's own thread can no longer `setns` into the
/// namespace and back, so a thread that is there already is the only way).
///
/// Start it after going to the background (threads do not survive
/// `fork(2)`) and before dropping privileges.
/// Cheap to clone: clones share the one thread, which ends when the last
/// clone is dropped. Requests go through a mailbox (a mutex and a condition
/// variable, allocated at start): [`NsThread::socket`], what the event loop
/// asks for, allocates nothing; [`NsThread::run`] is for start-up.
#[derive(Clone)]
pub(crate) struct NsThread {
    h: Arc<Handle>,
}

impl core::fmt::Debug for NsThread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NsThread")
    }
}

impl NsThread {
    /// Start the thread and move it into `ns`.
    ///
    /// # Errors
    /// If the thread cannot start or enter the namespace.
    pub(crate) fn start(ns: &NetNs) -> Result<NsThread, Error> {
        let fd = ns
            .fd
            .try_clone()
            .map_err(|e| Error::msg(format!("duplicating a namespace descriptor: {e}")))?;
        let ns = NetNs {
            fd,
            path: ns.path.clone(),
        };
        let mailbox = Arc::new(Mailbox {
            mail: Mutex::new(Mail::Idle),
            changed: Condvar::new(),
            caller: Mutex::new(()),
        });
        let theirs = Arc::clone(&mailbox);
        let (ready_tx, ready) = mpsc::channel();
        thread::Builder::new()
            .name("pasta-netns".into())
            .spawn(move || {
                let entered = ns.enter();
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    theirs.serve();
                }
            })
            .map_err(|e| Error::msg(format!("starting a thread: {e}")))?;
        ready
            .recv()
            .unwrap_or_else(|_| Err(Error::msg("internal error: namespace thread died")))?;
        Ok(NsThread {
            h: Arc::new(Handle(mailbox)),
        })
    }

    /// Run `f` on the thread, in the namespace, and wait for its result
    /// (start-up work: this allocates).
    ///
    /// # Errors
    /// If the thread is gone.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let out = Arc::new(Mutex::new(None));
        let theirs = Arc::clone(&out);
        let gone = || Error::msg("internal error: namespace thread gone");
        self.h
            .0
            .call(Mail::Job(Box::new(move || {
                *theirs.lock().unwrap_or_else(|p| p.into_inner()) = Some(f());
            })))
            .ok_or_else(gone)?;
        let r = out.lock().unwrap_or_else(|p| p.into_inner()).take();
        r.ok_or_else(gone)
    }

    /// A non-blocking, close-on-exec socket made in the namespace, without
    /// allocating (the event loop's request).
    ///
    /// # Errors
    /// The kernel's, or `EOPNOTSUPP` if the thread is gone.
    pub(crate) fn socket(&self, family: AddressFamily, ty: SocketType) -> Result<OwnedFd, Errno> {
        match self.h.0.call(Mail::Socket(family, ty)) {
            Some(Some(r)) => r,
            _ => Err(Errno::OPNOTSUPP),
        }
    }
}

/// The executor's sockets inside the namespace (`Open` with
/// `SockFlags::IN_NS`: the namespace side of spliced connections, the `-T`
/// listeners, the `-U` sockets), made on this thread: stream or datagram.
impl NsSockets for NsThread {
    fn socket(&mut self, proto: Proto, ipv6: bool) -> Result<OwnedFd, Errno> {
        let family = if ipv6 {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        let ty = match proto {
            Proto::Tcp => SocketType::STREAM,
            Proto::Udp => SocketType::DGRAM,
            _ => return Err(Errno::OPNOTSUPP),
        };
        NsThread::socket(self, family, ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_in_the_namespace_and_the_caller_stays() {
        let me = NetNs::current().unwrap();
        // The current namespace stands in for a target: entering it needs
        // no privilege beyond what setns(2) checks, which root has; without
        // root, only the failure path is exercised.
        let inside = me.run_in(NetNs::current);
        match inside {
            Ok(ns) => assert!(ns.same_as(&me)),
            Err(e) => assert!(e.to_string().contains("joining"), "{e}"),
        }
        assert!(NetNs::current().unwrap().same_as(&me));
        if let Ok(t) = NsThread::start(&me) {
            let ns = t.run(|| NetNs::current().map(|n| n.path().to_owned()));
            assert!(ns.is_ok());
            // Sockets from the thread, and start-up work, in any order.
            let s = t.socket(AddressFamily::INET, SocketType::DGRAM).unwrap();
            let local = rustix::net::getsockname(&s);
            assert!(local.is_ok());
            assert_eq!(t.run(|| 7).unwrap(), 7);
            // A clone keeps the thread.
            let t2 = t.clone();
            drop(t);
            assert!(t2.socket(AddressFamily::INET, SocketType::STREAM).is_ok());
            drop(t2);
        }
    }

    #[test]
    fn a_file_that_is_no_namespace_is_named() {
        let ns = NetNs::open(Path::new("/proc/self/stat")).unwrap();
        let e = ns.run_in(|| Ok(())).unwrap_err().to_string();
        assert!(
            e.contains("/proc/self/stat is not a network namespace") || e.contains("joining"),
            "{e}"
        );
        let e = NetNs::open(Path::new("/nonexistent/ns")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ns"), "{e}");
    }
}
