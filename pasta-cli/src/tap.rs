//! The tap device: the namespace's side of the link.
//!
//! A tap device carries whole Ethernet frames between the kernel of the
//! namespace it lives in and the process holding its file descriptor
//! (Linux `Documentation/networking/tuntap.rst`). It is made by opening
//! `/dev/net/tun` and naming an interface with the `TUNSETIFF` ioctl,
//! `IFF_TAP | IFF_NO_PI`: frames without the 4-byte packet-information
//! prefix. The device appears in the network namespace the thread is in at
//! that moment, and stays there when the process moves on.
//!
//! Each `read(2)` returns one frame and each `write(2)` sends one; the
//! descriptor is non-blocking, so an empty queue is `EAGAIN`. A device
//! deleted under us (`ip link del`, or its namespace torn down) makes reads
//! and writes fail with `EBADFD`.
//!
//! Syscalls: `open` (`/dev/net/tun`, `O_RDWR | O_NONBLOCK | O_CLOEXEC`),
//! `ioctl(TUNSETIFF)`, `read`, `write`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{open, Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::ioctl::{self, opcode, Opcode, Updater};

use crate::Error;

/// `TUNSETIFF`: `_IOW('T', 202, int)`, although it takes a `struct ifreq`
/// (`include/uapi/linux/if_tun.h`).
const TUNSETIFF: Opcode = opcode::write::<libc::c_int>(b'T', 202);

/// Length of an interface name buffer, with its terminating NUL.
const IFNAMSIZ: usize = 16;

/// `struct ifreq` with the `ifr_flags` member of its union, padded to the
/// union's size on 64-bit targets (it is smaller on 32-bit ones).
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A tap device, open and non-blocking.
#[derive(Debug)]
pub(crate) struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Create (or attach to) the tap device `name` in the current network
    /// namespace.
    ///
    /// # Errors
    /// If `/dev/net/tun` cannot be opened, or the kernel refuses the name
    /// (`EBUSY` for a device attached elsewhere, `EPERM` without
    /// `CAP_NET_ADMIN`, `EINVAL` for a non-tap device of that name).
    pub(crate) fn create(name: &str) -> Result<Tap, Error> {
        let fd = open(
            "/dev/net/tun",
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("opening /dev/net/tun", e))?;
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        let bytes = name.as_bytes();
        // Leave room for the NUL; the caller checked the length already.
        if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
            return Err(Error::msg(format!("invalid interface name {name:?}")));
        }
        req.name[..bytes.len()].copy_from_slice(bytes);
        tun_set_iff(fd.as_fd(), &mut req)
            .map_err(|e| Error::sys(format!("creating tap device {name}"), e))?;
        // The kernel writes back the name it chose (it may expand "%d").
        let len = req.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        let name = String::from_utf8_lossy(&req.name[..len]).into_owned();
        Ok(Tap { fd, name })
    }

    /// The interface name, as the kernel has it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Read one frame into `buf`; `Ok(None)` if none is queued.
    ///
    /// A frame longer than `buf` is cut short by the kernel, so `buf` should
    /// hold the largest frame the link carries.
    ///
    /// # Errors
    /// The `read(2)` error, other than `EAGAIN` and `EINTR` (retried).
    pub(crate) fn read_frame(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match io::read(&self.fd, &mut *buf) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::AGAIN) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Send one frame to the namespace.
    ///
    /// # Errors
    /// The `write(2)` error, other than `EINTR` (retried).
    pub(crate) fn write_frame(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            match io::write(&self.fd, frame) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `ioctl(fd, TUNSETIFF, req)`: attach `fd` to the interface `req` names.
fn tun_set_iff(fd: BorrowedFd<'_>, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: TUNSETIFF reads and writes back a `struct ifreq` through the
    // pointer; `IfReq` is `repr(C)` with the name and flags at the offsets of
    // `ifr_name` and `ifr_flags`, and at least as large as the kernel's
    // `struct ifreq` on 64-bit targets (larger on 32-bit), so the kernel
    // stays within `*req`, which the `&mut` keeps alive and exclusive for
    // the call. `fd` is an open `/dev/net/tun` descriptor.
    unsafe { ioctl::ioctl(fd, Updater::<TUNSETIFF, IfReq>::new(req)) }
}
