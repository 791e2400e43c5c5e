//! Datagram batching hooks for the socket executor: rustix has no safe
//! `recvmmsg` and no `UDP_SEGMENT` option, and passt-core has no `unsafe`,
//! so the driver supplies them
//! ([`passt_core::host::exec::SockExec::set_recvmmsg_hook`],
//! [`passt_core::host::exec::SockExec::set_udp_segment_hook`]). One
//! `recvmmsg` reads every datagram a UDP receive has slots for, each into
//! its own slot, with its real length (`MSG_TRUNC`) and the sender's raw
//! address, which passt-core parses; `UDP_SEGMENT` lets a run of
//! equal-sized datagrams go out as one send that the kernel cuts up.
//!
//! Syscalls: `recvmmsg(MSG_DONTWAIT | MSG_TRUNC)`,
//! `setsockopt(SOL_UDP, UDP_SEGMENT)`.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd};

use passt_core::host::exec_dgram::{RecvMeta, NAME_LEN, RECV_MAX};
use rustix::io::Errno;

/// `recvmmsg(2)` for the socket executor (rustix has no wrapper): up to
/// [`RECV_MAX`] datagrams with one call, message `i` into `bufs[i]`, its
/// real length (`MSG_TRUNC`) and sender into `meta[i]`.
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

    #[test]
    fn equal_sized_runs_go_out_segmented_and_arrive_as_the_original_datagrams() {
        use passt_core::batch::{SendBatch, SEND_BATCH_MAX};
        use passt_core::buf::{FrameDesc, RxBatch, RxSpan};
        use passt_core::host::exec_dgram::{open, send_gso};
        use passt_core::{Errno, Proto, SockOp, SockSpec};

        let rx_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = SockAddrAny::from(rx_sock.local_addr().unwrap());
        let mut spec = SockSpec::new(Proto::Udp, false);
        spec.peer = Some(peer);
        let fd = open(&spec, |_| Ok(())).unwrap();
        // Three of 1400 and a shorter one (one segmented send), then odd
        // sizes (plain), then two of 1000 (segmented again).
        let sizes = [1400usize, 1400, 1400, 700, 50, 1300, 1000, 1000];
        let mut arena = Vec::new();
        let mut descs = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let at = arena.len() as u32;
            arena.extend((0..n).map(|k| (i * 31 + k) as u8));
            descs.push(FrameDesc::new(at, n as u32));
        }
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let id = passt_core::SockId::from_parts(0, 1);
        let mut batch = SendBatch::new();
        for (i, &n) in sizes.iter().enumerate() {
            let payload = RxSpan {
                frame: i as u32,
                offset: 0,
                len: n as u32,
            };
            batch.push(SockOp::Send { id, payload }).unwrap();
        }
        let mut out = [Err(Errno::EAGAIN); SEND_BATCH_MAX];
        assert!(send_gso(fd.as_fd(), &rx, &batch, &mut out, udp_segment));
        for (r, &n) in out.iter().zip(&sizes) {
            assert_eq!(*r, Ok(Done::Bytes(n as u32)));
        }
        let mut buf = [0u8; 65536];
        for (i, &n) in sizes.iter().enumerate() {
            wait_readable(&rx_sock);
            let got = rx_sock.recv(&mut buf).unwrap();
            let want: Vec<u8> = (0..n).map(|k| (i * 31 + k) as u8).collect();
            assert_eq!(got, n, "datagram {i}");
            assert_eq!(&buf[..got], &want[..], "datagram {i}");
        }
        // The setting went back to 0: a plain send of 3000 bytes is one
        // datagram.
        let big = [7u8; 3000];
        assert_eq!(
            passt_core::host::exec_dgram::send(fd.as_fd(), &big),
            Ok(Done::Bytes(3000))
        );
        wait_readable(&rx_sock);
        assert_eq!(rx_sock.recv(&mut buf).unwrap(), 3000);
    }

    #[test]
    fn a_refusal_during_a_segmented_run_fails_its_first_datagram_only() {
        use passt_core::batch::{SendBatch, SEND_BATCH_MAX};
        use passt_core::buf::{FrameDesc, RxBatch, RxSpan};
        use passt_core::host::exec_dgram::{open, send_gso};
        use passt_core::{Errno, Proto, SockOp, SockSpec};

        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead = SockAddrAny::from(probe.local_addr().unwrap());
        drop(probe);
        let mut spec = SockSpec::new(Proto::Udp, false);
        spec.peer = Some(dead);
        let fd = open(&spec, |_| Ok(())).unwrap();
        let arena = [5u8; 400];
        let descs: Vec<FrameDesc> = (0..4).map(|i| FrameDesc::new(i * 100, 100)).collect();
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let id = passt_core::SockId::from_parts(0, 1);
        let mut batch = SendBatch::new();
        for i in 0..4 {
            let payload = RxSpan {
                frame: i,
                offset: 0,
                len: 100,
            };
            batch.push(SockOp::Send { id, payload }).unwrap();
        }
        let mut out = [Err(Errno::EAGAIN); SEND_BATCH_MAX];
        assert!(send_gso(fd.as_fd(), &rx, &batch, &mut out, udp_segment));
        assert_eq!(out[0], Ok(Done::Bytes(100)));
        // The port unreachable is recorded on the socket (POLLERR)...
        let mut p = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let t = rustix::event::Timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut p, Some(&t)).unwrap();
        // ...and the next run reports it on its first datagram; every
        // other datagram still gets its own result, and the socket can
        // still segment.
        assert!(send_gso(fd.as_fd(), &rx, &batch, &mut out, udp_segment));
        assert_eq!(out[0], Err(Errno::ECONNREFUSED));
        for r in &out[1..4] {
            assert!(
                matches!(r, Ok(Done::Bytes(100)) | Err(Errno::ECONNREFUSED)),
                "{r:?}"
            );
        }
    }
}
