//! `recvmmsg(2)` for the socket executor: rustix has no safe wrapper, and
//! passt-core has no `unsafe`, so the driver supplies this hook
//! ([`passt_core::host::exec::SockExec::set_recvmmsg_hook`]). One call reads
//! every datagram a UDP receive has slots for, each into its own slot, with
//! its real length (`MSG_TRUNC`) and the sender's raw address, which
//! passt-core parses.
//!
//! Syscalls: `recvmmsg(MSG_DONTWAIT | MSG_TRUNC)`.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd};

use passt_core::host::exec_dgram::{RecvMeta, NAME_LEN, RECV_MAX};
use rustix::io::Errno;

/// `recvmmsg(2)` for the socket executor (rustix has no wrapper): up to
/// [`RECV_MAX`] datagrams with one call, message `i` into `bufs[i]`, its
/// real length (`MSG_TRUNC`) and sender into `meta[i]`.
pub(crate) fn recvmmsg(
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

#[cfg(test)]
mod tests {
    use super::*;
    use passt_core::addr::SockAddrAny;
    use passt_core::buf::TxRing;
    use passt_core::host::exec_dgram::{recv, Received};
    use passt_core::{Completion, Done, SockId};
    use std::net::{Ipv4Addr, UdpSocket};
    use std::os::fd::AsFd;

    fn wait_readable(s: &UdpSocket) {
        let mut p = [rustix::event::PollFd::new(s, rustix::event::PollFlags::IN)];
        let t = rustix::event::Timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut p, Some(&t)).unwrap();
    }

    #[test]
    fn one_call_reads_datagrams_from_several_senders_into_their_slots() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"first", to).unwrap();
        b.send_to(&[9u8; 40], to).unwrap();
        a.send_to(b"third", to).unwrap();
        // Loopback delivers synchronously; wait anyway for the first.
        wait_readable(&rx);
        let mut tx = TxRing::new(8, 64, 0);
        let into = tx.reserve_slots(8, 10, 16).unwrap();
        let mut out = Received::default();
        out.set_hook(recvmmsg);
        recv(rx.as_fd(), &mut tx, into, &mut out);
        let sa = |s: &UdpSocket| SockAddrAny::from(s.local_addr().unwrap());
        // The second did not fit its 16 bytes: its real length is told.
        assert_eq!(out.datagrams(), &[(5, sa(&a)), (40, sa(&b)), (5, sa(&a))]);
        let areas: Vec<Vec<u8>> = tx.payload_areas(into).map(|x| x.to_vec()).collect();
        assert_eq!(&areas[0][..5], b"first");
        assert_eq!(&areas[1][..], &[9u8; 16]);
        assert_eq!(&areas[2][..5], b"third");
        let id = SockId::from_parts(1, 1);
        let last = out.completions(id).last().unwrap();
        assert_eq!(
            last,
            Completion {
                id,
                res: Ok(Done::Datagrams { count: 3 })
            }
        );
        // Nothing left: EAGAIN, as from recvfrom.
        recv(rx.as_fd(), &mut tx, into, &mut out);
        assert_eq!(
            out.completions(id).collect::<Vec<_>>(),
            [Completion {
                id,
                res: Err(passt_core::Errno::EAGAIN)
            }]
        );
        // IPv6 senders come back as IPv6, v4-mapped ones as IPv4.
        if let Ok(rx6) = UdpSocket::bind("[::]:0") {
            let port = rx6.local_addr().unwrap().port();
            let c4 = UdpSocket::bind("127.0.0.1:0").unwrap();
            c4.send_to(b"v4", (Ipv4Addr::LOCALHOST, port)).unwrap();
            let c6 = UdpSocket::bind("[::1]:0");
            if let Ok(c6) = &c6 {
                c6.send_to(b"v6", ("::1", port)).unwrap();
            }
            wait_readable(&rx6);
            recv(rx6.as_fd(), &mut tx, into, &mut out);
            let mut want = vec![(2, sa(&c4))];
            if let Ok(c6) = &c6 {
                want.push((2, sa(c6)));
            }
            assert_eq!(out.datagrams(), want.as_slice());
        }
    }
}
