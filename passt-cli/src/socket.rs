//! The UNIX domain stream socket qemu connects to.
//!
//! `-s/--socket PATH` names it; without it the first free name among
//! `/tmp/passt_1.socket` ... `/tmp/passt_64.socket` is taken, as the
//! original does: a name is free if nothing is there, or if what is there
//! refuses connections (a socket file left behind by a passt that is gone,
//! which is removed first). A name where something accepts connections is
//! another passt's, and is left alone; so is a named `-s PATH` (an error).
//!
//! `-F/--fd FD` instead takes a descriptor the parent already connected;
//! there is no listener then, and passt exits when it closes.
//!
//! Syscalls: `socket`, `connect`, `unlink`, `bind`, `listen`, `fcntl`.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::Error;

/// How many default names are tried.
pub(crate) const DEFAULT_SOCKETS: u32 = 64;

/// The `n`-th default socket name (from 1).
pub(crate) fn default_path(n: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/passt_{n}.socket"))
}

/// What a socket path holds.
enum State {
    /// Nothing: free.
    Absent,
    /// A socket nobody listens on: free once removed.
    Stale,
    /// A listening socket (another passt): taken.
    Live,
    /// Something else (a file, no permission...): taken.
    Other(std::io::Error),
}

fn probe(path: &Path) -> State {
    match UnixStream::connect(path) {
        Ok(_) => State::Live,
        Err(e) if e.kind() == ErrorKind::NotFound => State::Absent,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => State::Stale,
        Err(e) => State::Other(e),
    }
}

/// Bind and listen at `path`, removing a stale socket first.
fn bind_at(path: &Path) -> Result<UnixListener, std::io::Error> {
    match probe(path) {
        State::Live => return Err(std::io::Error::from(ErrorKind::AddrInUse)),
        State::Other(e) => return Err(e),
        State::Stale => std::fs::remove_file(path)?,
        State::Absent => {}
    }
    let l = UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The listener: at `path`, or at the first free default name.
///
/// # Errors
/// `path` taken or not bindable; all 64 default names taken.
pub(crate) fn listen(path: Option<&str>) -> Result<(UnixListener, PathBuf), Error> {
    if let Some(p) = path {
        let p = PathBuf::from(p);
        return match bind_at(&p) {
            Ok(l) => Ok((l, p)),
            Err(e) if e.kind() == ErrorKind::AddrInUse => Err(Error::msg(format!(
                "{} is in use by another process",
                p.display()
            ))),
            Err(e) => Err(Error::io(format!("binding {}", p.display()), &e)),
        };
    }
    for n in 1..=DEFAULT_SOCKETS {
        let p = default_path(n);
        if let Ok(l) = bind_at(&p) {
            return Ok((l, p));
        }
    }
    Err(Error::msg(format!(
        "no free socket name: {} to {} are all taken",
        default_path(1).display(),
        default_path(DEFAULT_SOCKETS).display()
    )))
}

/// Take ownership of the connected socket `fd` from `-F`.
///
/// # Errors
/// If `fd` is not an open stream socket.
pub(crate) fn adopt_fd(fd: i32) -> Result<OwnedFd, Error> {
    // Handed to us by our parent for our exclusive use (-F), and taken
    // before anything else is opened.
    let owned = passt_sys::process::adopt_inherited(fd)
        .map_err(|_| Error::msg(format!("--fd {fd}: not an open descriptor")))?;
    match rustix::net::sockopt::socket_type(&owned) {
        Ok(rustix::net::SocketType::STREAM) => {}
        _ => return Err(Error::msg(format!("--fd {fd}: not a stream socket"))),
    }
    rustix::io::ioctl_fionbio(&owned, true)
        .map_err(|e| Error::sys(format!("--fd {fd}: making it non-blocking"), e))?;
    Ok(owned)
}

/// The lines passt prints once its socket is ready: how to start qemu.
pub(crate) fn usage_hint(path: &Path) -> String {
    let p = path.display();
    format!(
        "UNIX domain socket bound at {p}\n\n\
         You can now start qemu (>= 7.2):\n    \
         qemu-system-x86_64 ... -device virtio-net-pci,netdev=s \
         -netdev stream,id=s,server=off,addr.type=unix,addr.path={p}\n\
         or qrap, for earlier qemu versions:\n    \
         qrap 5 qemu-system-x86_64 ... -netdev socket,fd=5,id=s -device virtio-net-pci,netdev=s"
    )
}
