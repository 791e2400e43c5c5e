//! Datagram batching for the socket executor (`passt_core::host::exec_dgram`):
//! rustix has no safe `recvmmsg` and no `UDP_SEGMENT` option, and
//! passt-core has no `unsafe`, so they are here. One `recvmmsg` reads every datagram a UDP receive has slots for, each into
//! its own slot, with its real length (`MSG_TRUNC`) and the sender's raw
//! address, which passt-core parses; `UDP_SEGMENT` lets a run of
//! equal-sized datagrams go out as one send that the kernel cuts up.
//!
//! Syscalls: `recvmmsg(MSG_DONTWAIT | MSG_TRUNC)`,
//! `setsockopt(SOL_UDP, UDP_SEGMENT)`.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

/// Most datagrams one [`recvmmsg`] reads.
pub const RECV_MAX: usize = 64;

/// Room for a sender address in a [`RecvMeta`]: a `struct sockaddr_in6`.
pub const NAME_LEN: usize = 28;

/// What [`recvmmsg`] reports of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// The datagram's full length (`MSG_TRUNC`: more than its buffer if it
    /// did not fit).
    pub len: u32,
    /// The sender's address as the kernel wrote it (`msg_name`: a
    /// `struct sockaddr_in` or `struct sockaddr_in6`, native layout).
    pub name: [u8; NAME_LEN],
    /// Bytes of `name` the kernel wrote (`msg_namelen`).
    pub name_len: u32,
}

impl Default for RecvMeta {
    fn default() -> Self {
        RecvMeta {
            len: 0,
            name: [0; NAME_LEN],
            name_len: 0,
        }
    }
}

/// `recvmmsg(2)` for the socket executor (rustix has no wrapper): up to
/// [`RECV_MAX`] datagrams with one call (`MSG_DONTWAIT | MSG_TRUNC`),
/// message `i` into `bufs[i]` (one buffer per message), its real length
/// and sender into `meta[i]`, at most `min(bufs.len(), meta.len())`
/// messages. Returns how many were read (`meta` beyond that is untouched),
/// or the error of the first one.
pub fn recvmmsg(
    fd: BorrowedFd<'_>,
    bufs: &mut [IoSliceMut<'_>],
    meta: &mut [RecvMeta],
) -> Result<usize, Errno> {
    let n = bufs.len().min(meta.len()).min(RECV_MAX);
    let mut hdrs: [libc::mmsghdr; RECV_MAX] = core::array::from_fn(|_| libc::mmsghdr {
        msg_hdr: libc::msghdr {
            msg_name: core::ptr::null_mut(),
            msg_namelen: 0,
            msg_iov: core::ptr::null_mut(),
            msg_iovlen: 0,
            msg_control: core::ptr::null_mut(),
            msg_controllen: 0,
            msg_flags: 0,
        },
        msg_len: 0,
    });
    for ((h, b), m) in hdrs.iter_mut().zip(bufs.iter_mut()).zip(meta.iter_mut()) {
        h.msg_hdr.msg_name = m.name.as_mut_ptr().cast();
        h.msg_hdr.msg_namelen = NAME_LEN as libc::socklen_t;
        h.msg_hdr.msg_iov = (b as *mut IoSliceMut<'_>).cast::<libc::iovec>();
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `fd` is a live descriptor borrowed for the call. The first
    // `n` headers each point to one `iovec` (`IoSliceMut` is guaranteed
    // ABI-compatible with it on Unix) describing a distinct buffer of
    // `bufs`, and to a distinct `NAME_LEN`-byte name area of `meta`, all
    // borrowed mutably for the call; the kernel writes at most those
    // lengths, and `msg_len`/`msg_namelen` of the first `n` headers. No
    // control buffer, no timeout.
    let r = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            core::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ));
    }
    let k = (r as usize).min(n);
    for (h, m) in hdrs.iter().zip(meta.iter_mut()).take(k) {
        m.len = h.msg_len;
        m.name_len = h.msg_hdr.msg_namelen;
    }
    Ok(k)
}

/// `setsockopt(SOL_UDP, UDP_SEGMENT)` for the socket executor (rustix has
/// no wrapper): the segment size of UDP generic segmentation offload,
/// udp(7); 0 turns it off.
pub fn udp_segment(fd: BorrowedFd<'_>, size: u16) -> Result<(), Errno> {
    // From <linux/udp.h>; the libc crate has them for uclibc only.
    const SOL_UDP: libc::c_int = 17;
    const UDP_SEGMENT: libc::c_int = 103;
    crate::setsockopt_int(fd, SOL_UDP, UDP_SEGMENT, libc::c_int::from(size))
}
