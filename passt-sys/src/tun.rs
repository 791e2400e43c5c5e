//! The tap device's ioctls (`/dev/net/tun`, Documentation/networking/tuntap
//! of the kernel): rustix has their opcodes' plumbing but no safe call, as
//! each one's argument is a pointer or an integer the kernel interprets.
//! pasta's tap module (pasta-cli) builds on them.
//!
//! Syscalls: `ioctl(TUNSETIFF)`, `ioctl(TUNSETVNETHDRSZ)`,
//! `ioctl(TUNSETOFFLOAD)`.

use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use rustix::ioctl::{self, opcode, IntegerSetter, Opcode, Setter, Updater};

/// `TUNSETIFF`: `_IOW('T', 202, int)`, although it takes a `struct ifreq`
/// (`include/uapi/linux/if_tun.h`).
const TUNSETIFF: Opcode = opcode::write::<libc::c_int>(b'T', 202);

/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`, the flags passed by
/// value.
const TUNSETOFFLOAD: Opcode = opcode::write::<libc::c_uint>(b'T', 208);

/// `TUNSETVNETHDRSZ`: `_IOW('T', 216, int)`, through a pointer.
const TUNSETVNETHDRSZ: Opcode = opcode::write::<libc::c_int>(b'T', 216);

/// Length of an interface name buffer, with its terminating NUL.
pub const IFNAMSIZ: usize = 16;

/// `struct ifreq` with the `ifr_flags` member of its union, padded to the
/// union's size on 64-bit targets (it is smaller on 32-bit ones).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `ioctl(fd, TUNSETIFF)`: attach the `/dev/net/tun` descriptor `fd` to
/// the interface `name` (created if there is none) with `flags`
/// (`IFF_TAP | IFF_NO_PI`, and `IFF_VNET_HDR`...). Returns the name the
/// kernel has for it (it may expand `%d`).
///
/// # Errors
/// `EINVAL` for a name that is empty, does not fit [`IFNAMSIZ`] or holds a
/// NUL; else the kernel's (`EBUSY`, `EPERM`, `EINVAL`...). A refusal leaves
/// the descriptor unattached.
pub fn set_iff(fd: BorrowedFd<'_>, name: &str, flags: libc::c_short) -> Result<String, Errno> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(Errno::INVAL);
    }
    let mut req = IfReq {
        name: [0; IFNAMSIZ],
        flags,
        _pad: [0; 22],
    };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: TUNSETIFF reads and writes back a `struct ifreq` through the
    // pointer; `IfReq` is `repr(C)` with the name and flags at the offsets of
    // `ifr_name` and `ifr_flags`, and at least as large as the kernel's
    // `struct ifreq` on 64-bit targets (larger on 32-bit), so the kernel
    // stays within `req`, which the `&mut` keeps alive and exclusive for
    // the call. A descriptor of anything but `/dev/net/tun` refuses the
    // request (`ENOTTY`).
    unsafe { ioctl::ioctl(fd, Updater::<TUNSETIFF, IfReq>::new(&mut req)) }?;
    let len = req.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    Ok(String::from_utf8_lossy(&req.name[..len]).into_owned())
}

/// `ioctl(fd, TUNSETVNETHDRSZ, &size)`: bytes of the virtio-net header in
/// front of every frame.
///
/// # Errors
/// The kernel's.
pub fn set_vnet_hdr_sz(fd: BorrowedFd<'_>, size: libc::c_int) -> Result<(), Errno> {
    // SAFETY: TUNSETVNETHDRSZ reads one `int` through the pointer, which
    // `Setter` makes to its own copy of `size`; on another descriptor the
    // request is refused.
    unsafe { ioctl::ioctl(fd, Setter::<TUNSETVNETHDRSZ, libc::c_int>::new(size)) }
}

/// `ioctl(fd, TUNSETOFFLOAD, flags)`: the `TUN_F_*` offloads the device
/// may hand us; the flags go by value.
///
/// # Errors
/// The kernel's.
pub fn set_offload(fd: BorrowedFd<'_>, flags: libc::c_uint) -> Result<(), Errno> {
    // SAFETY: TUNSETOFFLOAD takes its argument as an integer (the `TUN_F_*`
    // bits), never dereferenced; on another descriptor the request is
    // refused.
    unsafe {
        ioctl::ioctl(
            fd,
            IntegerSetter::<TUNSETOFFLOAD>::new_usize(flags as usize),
        )
    }
}
