//! The error queue of datagram sockets, for the socket executor
//! (`passt_core::host::exec_dgram`): rustix can neither set `IP_RECVERR`
//! nor parse its control message. With it, UDP
//! and ping sockets keep the ICMP errors their datagrams caused (ip(7),
//! ipv6(7)), and passt-core passes them on to the guest (traceroute).
//!
//! Syscalls: `setsockopt(SOL_IP, IP_RECVERR)` /
//! `setsockopt(SOL_IPV6, IPV6_RECVERR)` when a socket opens,
//! `recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT)` when it reports an error.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use crate::mmsg::NAME_LEN;

/// What one error-queue message said, as [`recv_err`] fills it from
/// `struct sock_extended_err` (ip(7)) and the data read.
#[derive(Clone, Copy, Debug)]
pub struct ErrMeta {
    /// Bytes of the quoted datagram read into the buffer.
    pub len: u32,
    /// `ee_origin` (`SO_EE_ORIGIN_ICMP` 2, `SO_EE_ORIGIN_ICMP6` 3, ...).
    pub origin: u8,
    /// `ee_type`.
    pub icmp_type: u8,
    /// `ee_code`.
    pub code: u8,
    /// `ee_info` (the MTU of "fragmentation needed" / "packet too big").
    pub info: u32,
    /// The offender's address (`SO_EE_OFFENDER`), raw `sockaddr` bytes.
    pub name: [u8; NAME_LEN],
    /// Bytes of `name` that are valid.
    pub name_len: u32,
}

impl Default for ErrMeta {
    fn default() -> Self {
        ErrMeta {
            len: 0,
            origin: 0,
            icmp_type: 0,
            code: 0,
            info: 0,
            name: [0; NAME_LEN],
            name_len: 0,
        }
    }
}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `IP_RECVERR` (or `IPV6_RECVERR`) on.
pub fn enable(fd: BorrowedFd<'_>, ipv6: bool) -> Result<(), Errno> {
    let one: libc::c_int = 1;
    let (level, name) = if ipv6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    // SAFETY: `fd` is a live descriptor borrowed for the call; the option
    // value is one `c_int` read from `one`, whose size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Control buffer: one `IP_RECVERR` message (`sock_extended_err` and a
/// `sockaddr_in6`) with room to spare, 8-byte aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; 256]);

/// One error-queue message (`recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT)`): its
/// data into `buf`, the extended error and the offender into `meta`
/// (`EAGAIN` when the queue is empty).
pub fn recv_err(fd: BorrowedFd<'_>, buf: &mut [u8], meta: &mut ErrMeta) -> Result<(), Errno> {
    let mut control = Control([0; 256]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero `msghdr` is a valid value (null pointers, zero
    // lengths).
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    // SAFETY: `fd` is a live descriptor borrowed for the call; `msg`
    // points to one `iovec` describing `buf` (borrowed mutably for the
    // call) and to `control`'s bytes with their length; the kernel writes
    // at most those lengths and updates `msg_controllen`/`msg_flags`.
    let r = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        return Err(last_errno());
    }
    meta.len = u32::try_from(r).unwrap_or(0);
    // SAFETY: `msg` was filled by `recvmsg`: `msg_control` and the updated
    // `msg_controllen` describe the control messages the kernel wrote in
    // `control`, which the CMSG macros walk without leaving it.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: `c` is a header within `control` (CMSG_FIRSTHDR /
        // CMSG_NXTHDR return null past the end).
        let h = unsafe { &*c };
        let ours = (h.cmsg_level == libc::SOL_IP && h.cmsg_type == libc::IP_RECVERR)
            || (h.cmsg_level == libc::SOL_IPV6 && h.cmsg_type == libc::IPV6_RECVERR);
        let ee_len = core::mem::size_of::<libc::sock_extended_err>();
        // SAFETY: as above; CMSG_LEN of 0 is the header's length.
        let data_len = h.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
        if ours && data_len >= ee_len {
            // SAFETY: the message's data holds `data_len` bytes (within
            // `control`), at least a `sock_extended_err`, read unaligned.
            let data = unsafe { libc::CMSG_DATA(c) };
            let ee = unsafe { core::ptr::read_unaligned(data.cast::<libc::sock_extended_err>()) };
            meta.origin = ee.ee_origin;
            meta.icmp_type = ee.ee_type;
            meta.code = ee.ee_code;
            meta.info = ee.ee_info;
            // The offender (SO_EE_OFFENDER) follows the structure.
            let n = (data_len - ee_len).min(NAME_LEN);
            // SAFETY: `n` bytes after the structure are within the data.
            let name = unsafe { core::slice::from_raw_parts(data.add(ee_len), n) };
            meta.name[..n].copy_from_slice(name);
            meta.name_len = n as u32;
            return Ok(());
        }
        // SAFETY: `c` is a header of `msg`'s control buffer.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    // Data without an error message: nothing to report.
    Err(Errno::AGAIN)
}
