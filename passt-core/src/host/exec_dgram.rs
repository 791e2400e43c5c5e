//! The datagram half of the socket executor (feature `host`): UDP and ping
//! sockets for [`SockOp::Open`](crate::SockOp::Open), [`SockOp::Send`](crate::SockOp::Send), [`SockOp::SendTo`](crate::SockOp::SendTo) and
//! [`SockOp::Recv`](crate::SockOp::Recv), as plain functions over a descriptor so that the
//! executor's socket table ([`super`]'s `exec`) stays the one owner of fds.
//!
//! # Operations and their system calls
//!
//! | op | function | calls |
//! |---|---|---|
//! | `Open` (`Proto::Udp`, `Proto::Icmp`) | [`open`] | `socket(SOCK_DGRAM \| SOCK_NONBLOCK \| SOCK_CLOEXEC, IPPROTO_UDP / IPPROTO_ICMP / IPPROTO_ICMPV6)`, `setsockopt(SO_REUSEADDR, IPV6_V6ONLY)`, `bind` (again with port 0 under [`SockFlags::BIND_FALLBACK`]), `connect` |
//! | `Send` on a datagram socket | [`send`] | `send(MSG_DONTWAIT \| MSG_NOSIGNAL)` |
//! | `SendTo` | [`send_to`] | `sendto(MSG_DONTWAIT \| MSG_NOSIGNAL)` |
//! | a run of `Send`s or `SendTo`s on one socket ([`SendBatch`]) | [`send_batch`] | `sendmmsg(MSG_DONTWAIT \| MSG_NOSIGNAL)`, again for what is left after a failed message |
//! | the same, on a connected UDP socket, with [`Calls::UDP_SEGMENT`](super::exec::Calls::UDP_SEGMENT) | [`send_gso`] | per stretch of equal-sized datagrams, `sendmsg(MSG_DONTWAIT \| MSG_NOSIGNAL)` after `setsockopt(UDP_SEGMENT)` ([`passt_sys::mmsg::udp_segment`]) when the size changes; `sendmmsg` for the rest after setting it to 0; 0 again at the end |
//! | `Recv` | [`recv`], then [`Received::completions`]; or [`run_recv`] for both | with [`Calls::RECVMMSG`](super::exec::Calls::RECVMMSG), one `recvmmsg(MSG_DONTWAIT \| MSG_TRUNC)` ([`passt_sys::mmsg::recvmmsg`]); without it, one `recvfrom(MSG_DONTWAIT \| MSG_TRUNC)` per slot until `EAGAIN` |
//! | `RecvHeld` | [`run_recv_held`] | as `Recv`, into the [`Held`] buffer instead of tx slots |
//! | `SendHeld` | [`send_held`] | `send` or `sendto(MSG_DONTWAIT \| MSG_NOSIGNAL)` of one held datagram |
//! | `RecvErr` | [`run_recv_err`] | with [`Calls::ERRQUEUE`](super::exec::Calls::ERRQUEUE), `recvmsg(MSG_ERRQUEUE \| MSG_DONTWAIT)` ([`passt_sys::errqueue::recv_err`]); `EOPNOTSUPP` without |
//! | `SetTtl` | [`set_ttl`] | `setsockopt(IP_TTL)` / `setsockopt(IPV6_UNICAST_HOPS)` |
//! | `Open` with `SockFlags::RECVERR` | [`passt_sys::errqueue::enable`] (with [`Calls::ERRQUEUE`](super::exec::Calls::ERRQUEUE)) | `setsockopt(IP_RECVERR)` / `setsockopt(IPV6_RECVERR)` |
//!
//! Datagram sockets are registered with epoll **level-triggered**
//! (`EPOLLIN`, as listeners are): the translator reads at most one batch
//! per readiness and relies on being told again while datagrams remain.
//!
//! # Receiving
//!
//! A `Recv` names pending tx slots; datagram `k` is read straight into the
//! payload area of slot `k` (no copy), `MSG_TRUNC` giving the real length of
//! one that did not fit so that the translator can drop it. Lengths and
//! senders are kept in a [`Received`] (fixed storage, reused), then fed
//! back as one [`Done::Datagram`] completion each and a final
//! [`Done::Datagrams`] or error, as the [`SockOp::Recv`](crate::SockOp::Recv) contract says.
//!
//! rustix has no safe `recvmmsg`, and this crate has no `unsafe`:
//! [`passt_sys::mmsg::recvmmsg`] reads every slot's datagram in one system
//! call, each message with its own buffer and sender address (raw
//! `sockaddr` bytes, parsed here). Without it ([`Calls::RECVMMSG`](super::exec::Calls::RECVMMSG) off:
//! [`Received::set_recvmmsg`]) each datagram costs one `recvfrom`.
//!
//! # Held datagrams
//!
//! pasta's `-U` moves datagrams from one socket to another without making
//! frames of them ([`crate::udp`]): a `RecvHeld` reads them, exactly as a
//! `Recv` does, into the executor's own [`Held`] buffer, and each
//! `SendHeld` that follows (queued by the translator from the
//! `RecvHeld`'s completions, so run in the same drain, before any other
//! receive can replace them) sends one of them on another socket. One copy
//! into user space and one out, as any relay; no allocation after the
//! buffer's first use.
//!
//! # Sending
//!
//! The executor hands a run of consecutive sends on one datagram socket
//! ([`crate::batch`]) to [`send_batch`]: one `sendmmsg` (rustix has a safe
//! one) sends them all, each with its own destination for `SendTo`. When
//! message `k` fails, `sendmmsg` reports the `k` sent before it; the
//! failing one gets the error of a fresh `sendmmsg` that starts with it,
//! and the rest go on after it (each datagram stands alone), except after
//! `EAGAIN`, which ends the run: the rest complete with `EAGAIN` unsent.
//!
//! Nothing here allocates: the `iovec`s, destination addresses, control
//! buffers and message headers of a batch are arrays of [`SEND_BATCH_MAX`]
//! on the stack (those of a receive, of [`RECV_MAX`]), filled as far as the
//! batch goes (`tests/alloc.rs` counts allocations over steady traffic).
//!
//! With `UDP_SEGMENT` ([`passt_sys::mmsg::udp_segment`]: rustix has no
//! wrapper), [`send_gso`] goes further on a
//! connected UDP socket: a stretch of datagrams of one size (a bulk
//! sender's) becomes one `sendmsg` with UDP generic segmentation offload,
//! so that the host's stack handles one large datagram instead of dozens
//! and cuts it into the original datagrams at the end (udp(7)).
//!
//! # Errors
//!
//! A connected UDP socket that got an ICMP port unreachable fails its next
//! `send` or `recvfrom` with `ECONNREFUSED` (udp(7)); that reaches the
//! translator unchanged and becomes an ICMP error to the guest. A ping
//! socket refused by `net.ipv4.ping_group_range` fails `socket` with
//! `EACCES` (icmp(7)).
//!
//! With the error queue ([`passt_sys::errqueue`]: rustix has neither
//! `IP_RECVERR` nor a parser for its control message), sockets opened with
//! [`SockFlags::RECVERR`] get `IP_RECVERR` / `IPV6_RECVERR`, and
//! [`SockOp::RecvErr`](crate::SockOp::RecvErr) reads one error with
//! `recvmsg(MSG_ERRQUEUE)` ([`run_recv_err`]): the quoted bytes into the
//! slot's payload area, type, code, MTU and the offender's address into a
//! [`Done::HostError`]. [`SockOp::SetTtl`](crate::SockOp::SetTtl) is
//! `setsockopt(IP_TTL)` or `setsockopt(IPV6_UNICAST_HOPS)` ([`set_ttl`]).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno as RErrno;
use rustix::net::{
    self, addr::SocketAddrArg, AddressFamily, MMsgHdr, RecvFlags, SendAncillaryBuffer, SendFlags,
    SocketFlags, SocketType,
};

use crate::addr::SockAddrAny;
use crate::batch::{DgramSend, SendBatch, SEND_BATCH_MAX};
use crate::buf::{RxBatch, TxRing, TxSlots, TxStorage};
use crate::time::Instant;
use crate::{Completion, Done, Errno, Proto, SockFlags, SockId, SockSpec, Translator};

/// Most datagrams one [`recv`] reads, whatever the slot range (as many as
/// one `recvmmsg` of passt-sys reads).
pub use passt_sys::mmsg::RECV_MAX;

/// The raw sender address and length of a datagram `recvmmsg` read, and
/// its room for the address (a `struct sockaddr_in6`).
pub use passt_sys::mmsg::{RecvMeta, NAME_LEN};

/// What one error-queue message said (`struct sock_extended_err`, ip(7)).
pub use passt_sys::errqueue::ErrMeta;

/// `SO_EE_ORIGIN_ICMP`.
const ORIGIN_ICMP: u8 = 2;
/// `SO_EE_ORIGIN_ICMP6`.
const ORIGIN_ICMP6: u8 = 3;

/// Run a [`SockOp::RecvErr`](crate::SockOp::RecvErr): one error-queue
/// message of `fd` into the single slot of `into`, completed to `t` as
/// [`Done::HostError`] (errors of a local origin, or without an offender,
/// are read and reported as `EAGAIN`: nothing for the guest). Without the
/// error queue (`errqueue` false: [`Calls::ERRQUEUE`](super::exec::Calls::ERRQUEUE) off), `EOPNOTSUPP`.
#[allow(clippy::too_many_arguments)]
pub fn run_recv_err<S: TxStorage>(
    fd: Option<BorrowedFd<'_>>,
    id: SockId,
    into: TxSlots,
    t: &mut Translator,
    now: Instant,
    tx: &mut TxRing<S>,
    errqueue: bool,
) {
    let res = match (fd, errqueue, tx.payload_areas(into).next()) {
        (Some(fd), true, Some(area)) => {
            let mut meta = ErrMeta::default();
            match passt_sys::errqueue::recv_err(fd, area, &mut meta) {
                Ok(()) => host_error(&meta).ok_or(Errno::EAGAIN).map(Done::HostError),
                Err(e) => Err(errno(e)),
            }
        }
        (None, ..) => Err(Errno::EBADF),
        (_, false, _) => Err(Errno::EOPNOTSUPP),
        (.., None) => Err(Errno::EINVAL),
    };
    t.handle_completion(now, Completion { id, res }, tx);
}

/// The [`crate::HostError`] of an error-queue message: ICMP or ICMPv6 origin and
/// an offender address only.
fn host_error(m: &ErrMeta) -> Option<crate::HostError> {
    let icmp6 = match m.origin {
        ORIGIN_ICMP => false,
        ORIGIN_ICMP6 => true,
        _ => return None,
    };
    let name = m.name.get(..m.name_len as usize)?;
    let offender = unmap(parse_name(name)?).addr;
    Some(crate::HostError {
        len: m.len,
        icmp6,
        icmp_type: m.icmp_type,
        code: m.code,
        info: m.info,
        offender,
    })
}

/// `setsockopt(IP_TTL)`, or `setsockopt(IPV6_UNICAST_HOPS)` on an IPv6
/// socket, for [`SockOp::SetTtl`](crate::SockOp::SetTtl).
///
/// # Errors
/// The call's errno.
pub fn set_ttl(fd: BorrowedFd<'_>, ipv6: bool, ttl: u8) -> Result<(), RErrno> {
    if ipv6 {
        net::sockopt::set_ipv6_unicast_hops(fd, Some(ttl))
    } else {
        net::sockopt::set_ip_ttl(fd, u32::from(ttl))
    }
}

/// A sender address from the bytes a kernel wrote as `msg_name`; `None`
/// for a family other than IPv4 and IPv6, or too short a name.
pub fn parse_name(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*name.first()?, *name.get(1)?]);
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    if family == AddressFamily::INET.as_raw() {
        let a: [u8; 4] = name.get(4..8)?.try_into().ok()?;
        Some(SocketAddr::new(Ipv4Addr::from(a).into(), port))
    } else if family == AddressFamily::INET6.as_raw() {
        let flow: [u8; 4] = name.get(4..8)?.try_into().ok()?;
        let a: [u8; 16] = name.get(8..24)?.try_into().ok()?;
        let scope: [u8; 4] = name.get(24..28)?.try_into().ok()?;
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(a),
            port,
            u32::from_be_bytes(flow),
            u32::from_ne_bytes(scope),
        )))
    } else {
        None
    }
}

/// Completes the datagrams from `from` on with `EAGAIN`, unsent: a run
/// that met `EAGAIN` ends there (module docs).
fn refuse_from(out: &mut [Result<Done, Errno>], from: usize) {
    out.get_mut(from..)
        .into_iter()
        .flatten()
        .for_each(|r| *r = Err(Errno::EAGAIN));
}

fn errno(e: RErrno) -> Errno {
    Errno(e.raw_os_error())
}

/// A standard address for a socket of family `ipv6`: IPv4 on an IPv6
/// socket becomes v4-mapped.
fn std_addr(a: SockAddrAny, ipv6: bool) -> SocketAddr {
    match (a.to_socket_addr(), ipv6) {
        (SocketAddr::V4(v4), true) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        (s, _) => s,
    }
}

/// Create, configure, bind and connect a UDP or ping socket for `spec`.
///
/// # Errors
/// The failing call's errno; `EOPNOTSUPP` for a TCP spec (the stream
/// executor's).
pub fn open(
    spec: &SockSpec,
    prepare: impl FnOnce(BorrowedFd<'_>) -> Result<(), RErrno>,
) -> Result<OwnedFd, RErrno> {
    let family = if spec.ipv6 {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let proto = match (spec.proto, spec.ipv6) {
        (Proto::Udp, _) => net::ipproto::UDP,
        (Proto::Icmp, false) => net::ipproto::ICMP,
        (Proto::Icmp, true) => net::ipproto::ICMPV6,
        (Proto::Tcp, _) => return Err(RErrno::OPNOTSUPP),
    };
    let fd = net::socket_with(
        family,
        SocketType::DGRAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        Some(proto),
    )?;
    prepare(std::os::fd::AsFd::as_fd(&fd))?;
    configure(fd, spec)
}

/// Configure, bind and connect a datagram socket made elsewhere (inside
/// the guest's namespace, by the driver's [`super::exec::NsSockets`], for
/// [`SockFlags::IN_NS`]) as [`open`] does its own.
///
/// # Errors
/// The failing call's errno.
pub fn configure(fd: OwnedFd, spec: &SockSpec) -> Result<OwnedFd, RErrno> {
    if spec.flags.contains(SockFlags::REUSEADDR) {
        net::sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    if spec.ipv6 && spec.flags.contains(SockFlags::V6ONLY) {
        net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    if let Some(b) = spec.bind {
        match net::bind(&fd, &std_addr(b, spec.ipv6)) {
            Ok(()) => {}
            Err(RErrno::ADDRINUSE | RErrno::ACCESS)
                if spec.flags.contains(SockFlags::BIND_FALLBACK) && b.port != 0 =>
            {
                let any = SockAddrAny { port: 0, ..b };
                net::bind(&fd, &std_addr(any, spec.ipv6))?;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(p) = spec.peer {
        net::connect(&fd, &std_addr(p, spec.ipv6))?;
    }
    Ok(fd)
}

/// Send one datagram on a connected socket (for a ping socket, a whole
/// ICMP echo request: the kernel sets identifier and checksum).
///
/// # Errors
/// The errno of `send`, e.g. `ECONNREFUSED`, `EAGAIN`, `EMSGSIZE`.
pub fn send(fd: BorrowedFd<'_>, payload: &[u8]) -> Result<Done, Errno> {
    net::send(fd, payload, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
        .map(|n| Done::Bytes(n as u32))
        .map_err(errno)
}

/// Send one datagram to `dst` (a forwarded port's listening socket
/// answering the host peer that wrote to it).
///
/// # Errors
/// The errno of `sendto`.
pub fn send_to(fd: BorrowedFd<'_>, dst: SockAddrAny, payload: &[u8]) -> Result<Done, Errno> {
    let addr = std_addr(dst, !dst.addr.is_v4());
    net::sendto(
        fd,
        payload,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        &addr,
    )
    .map(|n| Done::Bytes(n as u32))
    .map_err(errno)
}

/// Send a run of datagrams on one socket ([`SendBatch`], payloads named
/// in `rx`) with `sendmmsg`; `out[i]` gets the result of datagram `i`, as
/// [`send`] or [`send_to`] would give it (see the module docs for partial
/// sends). A payload not in `rx` completes with `EBADF` and the run is sent
/// without it.
pub fn send_batch(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    batch: &SendBatch,
    out: &mut [Result<Done, Errno>; SEND_BATCH_MAX],
) {
    send_mmsg(fd, rx, batch.msgs(), out);
}

/// [`send_batch`] of `msgs`, results in `out` (as long); whether it ended
/// at `EAGAIN` (the rest then completed with `EAGAIN`, unsent). More than
/// [`SEND_BATCH_MAX`] datagrams (never, from a [`SendBatch`]) go in runs of
/// that many.
fn send_mmsg(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    msgs: &[DgramSend],
    out: &mut [Result<Done, Errno>],
) -> bool {
    let mut at = 0;
    while let Some(m) = msgs.get(at..).filter(|m| !m.is_empty()) {
        let end = at + m.len().min(SEND_BATCH_MAX);
        let (Some(m), Some(o)) = (msgs.get(at..end), out.get_mut(at..end)) else {
            return false;
        };
        if send_mmsg_run(fd, rx, m, o) {
            refuse_from(out, end);
            return true;
        }
        at = end;
    }
    false
}

/// [`send_mmsg`] of at most [`SEND_BATCH_MAX`] datagrams (any more are
/// left alone). Everything the system call needs is on the stack: no
/// allocation on the data path.
fn send_mmsg_run(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    msgs: &[DgramSend],
    out: &mut [Result<Done, Errno>],
) -> bool {
    // Which datagrams go out (a payload outside `rx` does not), in order,
    // with their payloads and destinations.
    let mut index = [0usize; SEND_BATCH_MAX];
    let mut iovs = [IoSlice::new(&[]); SEND_BATCH_MAX];
    let mut addrs: [Option<net::SocketAddrAny>; SEND_BATCH_MAX] = core::array::from_fn(|_| None);
    let mut n = 0;
    for (i, m) in msgs.iter().enumerate().take(SEND_BATCH_MAX) {
        match rx.span(m.payload) {
            Some(bytes) => {
                let (Some(x), Some(v), Some(a)) =
                    (index.get_mut(n), iovs.get_mut(n), addrs.get_mut(n))
                else {
                    break;
                };
                *x = i;
                *v = IoSlice::new(bytes);
                *a = m.dst.map(|d| std_addr(d, !d.addr.is_v4()).as_any());
                n += 1;
            }
            None => {
                if let Some(r) = out.get_mut(i) {
                    *r = Err(Errno::EBADF);
                }
            }
        }
    }
    // One header per datagram, each with its own (empty) control buffer;
    // those past `n` are never passed to the kernel.
    let mut ctrls: [SendAncillaryBuffer<'_, '_, '_>; SEND_BATCH_MAX] =
        core::array::from_fn(|_| SendAncillaryBuffer::default());
    let mut each = iovs.iter().zip(addrs.iter());
    let mut hdrs: [MMsgHdr<'_>; SEND_BATCH_MAX] = ctrls.each_mut().map(|ctrl| match each.next() {
        Some((iov, Some(a))) => MMsgHdr::new_with_addr(a, core::slice::from_ref(iov), ctrl),
        Some((iov, None)) => MMsgHdr::new(core::slice::from_ref(iov), ctrl),
        None => MMsgHdr::new(&[], ctrl),
    });
    let hdrs = hdrs.get_mut(..n).unwrap_or(&mut []);
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let mut at = 0;
    while let Some(rest) = hdrs.get_mut(at..).filter(|r| !r.is_empty()) {
        match net::sendmmsg(fd, rest, flags) {
            Ok(k) if k > 0 => {
                for (j, h) in rest.iter().take(k).enumerate() {
                    if let Some(r) = index.get(at + j).and_then(|&i| out.get_mut(i)) {
                        *r = Ok(Done::Bytes(h.bytes_sent() as u32));
                    }
                }
                at += k;
            }
            res => {
                // Nothing sent: the first message failed (a zero count is
                // not something sendmmsg returns for a non-empty vector;
                // taken as EAGAIN rather than looping).
                let e = match res {
                    Err(e) => errno(e),
                    Ok(_) => Errno::EAGAIN,
                };
                let end = if e == Errno::EAGAIN { rest.len() } else { 1 };
                for j in 0..end {
                    if let Some(r) = index.get(at + j).and_then(|&i| out.get_mut(i)) {
                        *r = Err(e);
                    }
                }
                if e == Errno::EAGAIN {
                    return true;
                }
                at += end;
            }
        }
    }
    false
}

/// Most datagrams in one segmented send (`UDP_MAX_SEGMENTS` of older
/// kernels).
const GSO_MAX_SEGS: usize = 64;
/// Most payload bytes in one segmented send: what an IPv4 datagram can
/// carry after its 20-byte header and the UDP header (RFC 791, RFC 768).
const GSO_MAX_BYTES: usize = 65_507;

/// Send a run of `Send`s on a connected UDP socket, as [`send_batch`], but
/// with generic segmentation offload where it can: each stretch of
/// datagrams of one length `L` (the last may be shorter) goes out as one
/// `sendmsg` of their payloads with `UDP_SEGMENT` set to `L`, so the
/// kernel's stack sees one large datagram and cuts it into the original
/// ones at the end (udp(7)); `UDP_SEGMENT` changes only between stretches
/// of different sizes and is back at 0 before any plain send and when the
/// call returns, so plain sends are never cut. The other datagrams go with
/// `sendmmsg`, in order. Returns `false` if the socket cannot segment
/// (`setsockopt(UDP_SEGMENT)` refused, or the send failed with `EIO`, `EINVAL`, `EMSGSIZE`,
/// `ENOPROTOOPT` or `EOPNOTSUPP`): what it did not send then went with
/// `sendmmsg`, and the caller should not ask again for this socket.
/// `SendTo`s (several destinations) always go with `sendmmsg`.
pub fn send_gso(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    batch: &SendBatch,
    out: &mut [Result<Done, Errno>; SEND_BATCH_MAX],
) -> bool {
    let msgs = batch.msgs();
    if msgs.iter().any(|m| m.dst.is_some()) {
        send_mmsg(fd, rx, msgs, out);
        return true;
    }
    let mut seg = Segmenting { size: 0 };
    let usable = gso_runs(fd, rx, msgs, out, &mut seg);
    // Set back to 0 however the run ended; if that fails, the socket
    // would cut plain sends: it must not be used for segmenting again.
    usable & seg.set(fd, 0).is_ok()
}

/// The `UDP_SEGMENT` setting of the socket during one [`send_gso`]: set
/// only when it changes, back to 0 before plain sends and at the end.
struct Segmenting {
    size: u16,
}

impl Segmenting {
    fn set(&mut self, fd: BorrowedFd<'_>, size: u16) -> Result<(), RErrno> {
        if self.size != size {
            passt_sys::mmsg::udp_segment(fd, size)?;
            self.size = size;
        }
        Ok(())
    }
}

/// [`send_mmsg`] with `UDP_SEGMENT` at 0 first (if it cannot be turned
/// off, the datagrams fail with `EIO` rather than go out cut).
fn send_plain(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    msgs: &[DgramSend],
    out: &mut [Result<Done, Errno>],
    seg: &mut Segmenting,
) -> bool {
    if seg.set(fd, 0).is_err() {
        out.iter_mut().for_each(|r| *r = Err(Errno(5)));
        return false;
    }
    send_mmsg(fd, rx, msgs, out)
}

/// The work of [`send_gso`], leaving `UDP_SEGMENT` as `seg` says.
fn gso_runs(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    msgs: &[DgramSend],
    out: &mut [Result<Done, Errno>; SEND_BATCH_MAX],
    seg_state: &mut Segmenting,
) -> bool {
    let len = |i: usize| msgs.get(i).map_or(0, |m| m.payload.len as usize);
    let mut usable = true;
    // First datagram not sent yet, and the one looked at.
    let (mut sent, mut i) = (0, 0);
    while i < msgs.len() {
        let seg = len(i);
        let (mut j, mut total) = (i + 1, seg);
        while usable && seg > 0 && j < msgs.len() && j - i < GSO_MAX_SEGS {
            let l = len(j);
            if l > seg || total + l > GSO_MAX_BYTES {
                break;
            }
            total += l;
            j += 1;
            if l < seg {
                break;
            }
        }
        let (Some(group), true) = (msgs.get(i..j), j - i >= 2) else {
            i += 1;
            continue;
        };
        // What came before goes first.
        if sent < i {
            let (Some(m), Some(o)) = (msgs.get(sent..i), out.get_mut(sent..i)) else {
                return usable;
            };
            if send_plain(fd, rx, m, o, seg_state) {
                refuse_from(out, i);
                return usable;
            }
        }
        let Some(o) = out.get_mut(i..j) else {
            return usable;
        };
        match send_segmented(fd, rx, group, seg, seg_state) {
            Ok(()) => {
                for (r, m) in o.iter_mut().zip(group) {
                    *r = Ok(Done::Bytes(m.payload.len));
                }
            }
            Err(e) if e == Errno::EAGAIN => {
                out.get_mut(i..)
                    .into_iter()
                    .flatten()
                    .for_each(|r| *r = Err(e));
                return usable;
            }
            Err(e) if [5, 22, 90, 92, 95].contains(&e.0) => {
                // EIO, EINVAL, EMSGSIZE, ENOPROTOOPT, EOPNOTSUPP: nothing
                // went out, and this socket will not segment.
                usable = false;
                if send_plain(fd, rx, group, o, seg_state) {
                    refuse_from(out, j);
                    return usable;
                }
            }
            Err(e) => {
                // An error the socket had pending (e.g. ECONNREFUSED): the
                // first datagram takes it, as with sendmmsg; the rest go.
                if let Some(r) = o.first_mut() {
                    *r = Err(e);
                }
                let (Some(m), Some(o)) = (group.get(1..), o.get_mut(1..)) else {
                    return usable;
                };
                if send_plain(fd, rx, m, o, seg_state) {
                    refuse_from(out, j);
                    return usable;
                }
            }
        }
        sent = j;
        i = j;
    }
    if let (Some(m), Some(o)) = (msgs.get(sent..), out.get_mut(sent..msgs.len())) {
        if !m.is_empty() {
            send_plain(fd, rx, m, o, seg_state);
        }
    }
    usable
}

/// One `sendmsg` of `group`'s payloads with `UDP_SEGMENT` set to `seg`.
fn send_segmented(
    fd: BorrowedFd<'_>,
    rx: &RxBatch<'_>,
    group: &[DgramSend],
    seg: usize,
    state: &mut Segmenting,
) -> Result<(), Errno> {
    let mut iovs = [IoSlice::new(&[]); GSO_MAX_SEGS];
    for (v, m) in iovs.iter_mut().zip(group) {
        *v = IoSlice::new(rx.span(m.payload).ok_or(Errno::EBADF)?);
    }
    let n = group.len().min(GSO_MAX_SEGS);
    let seg = u16::try_from(seg).map_err(|_| Errno::EMSGSIZE)?;
    state.set(fd, seg).map_err(|_| Errno(92))?; // ENOPROTOOPT: cannot segment
    let res = net::sendmsg(
        fd,
        iovs.get(..n).unwrap_or(&[]),
        &mut SendAncillaryBuffer::default(),
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    );
    res.map(|_| ()).map_err(errno)
}

/// What one [`recv`] got: length and sender of each datagram, in slot
/// order, and how the operation ended. Fixed storage, reused across calls.
#[derive(Clone, Debug)]
pub struct Received {
    got: [(u32, SockAddrAny); RECV_MAX],
    meta: [RecvMeta; RECV_MAX],
    count: usize,
    end: Option<Errno>,
    /// Read with one `recvmmsg` ([`passt_sys::mmsg::recvmmsg`]).
    mmsg: bool,
}

impl Default for Received {
    fn default() -> Self {
        let none = SockAddrAny::new(core::net::Ipv4Addr::UNSPECIFIED, 0);
        Received {
            got: [(0, none); RECV_MAX],
            meta: [RecvMeta::default(); RECV_MAX],
            count: 0,
            end: None,
            mmsg: false,
        }
    }
}

impl Received {
    /// Read with one `recvmmsg` per [`recv`] (`on`), or one `recvfrom`
    /// per datagram, from now on (the default: `recvfrom`).
    pub fn set_recvmmsg(&mut self, on: bool) {
        self.mmsg = on;
    }

    /// The datagrams read: (length, sender).
    pub fn datagrams(&self) -> &[(u32, SockAddrAny)] {
        self.got.get(..self.count).unwrap_or(&[])
    }

    /// The completions to feed back for socket `id`, in order: one
    /// [`Done::Datagram`] per datagram, then the final one.
    pub fn completions(&self, id: SockId) -> impl Iterator<Item = Completion> + '_ {
        let each = self.datagrams().iter().map(move |&(len, from)| Completion {
            id,
            res: Ok(Done::Datagram { len, from }),
        });
        let last = Completion {
            id,
            res: match (self.count, self.end) {
                (0, Some(e)) => Err(e),
                (0, None) => Err(Errno::EAGAIN),
                (n, _) => Ok(Done::Datagrams { count: n as u32 }),
            },
        };
        each.chain(core::iter::once(last))
    }
}

/// Read datagrams from `fd` into the payload areas of `into`, one per
/// slot, until `EAGAIN`, an error or the slots run out; results in `out`.
/// With `recvmmsg` on for `out` ([`Received::set_recvmmsg`]), one call
/// reads them all.
pub fn recv<S: TxStorage>(
    fd: BorrowedFd<'_>,
    tx: &mut TxRing<S>,
    into: TxSlots,
    out: &mut Received,
) {
    recv_into(fd, tx.payload_areas(into), out);
}

/// [`recv`] into `areas`, one datagram each, in order.
fn recv_into<'a>(
    fd: BorrowedFd<'_>,
    mut areas: impl Iterator<Item = &'a mut [u8]>,
    out: &mut Received,
) {
    out.count = 0;
    out.end = None;
    if out.mmsg {
        let mut iov: [IoSliceMut<'_>; RECV_MAX] =
            core::array::from_fn(|_| IoSliceMut::new(&mut []));
        let mut n = 0;
        for (v, area) in iov.iter_mut().zip(areas.by_ref()) {
            *v = IoSliceMut::new(area);
            n += 1;
        }
        let (Some(bufs), Some(meta)) = (iov.get_mut(..n), out.meta.get_mut(..n)) else {
            return;
        };
        match passt_sys::mmsg::recvmmsg(fd, bufs, meta) {
            Ok(k) => {
                for (m, g) in out.meta.iter().zip(out.got.iter_mut()).take(k.min(n)) {
                    let name = m.name.get(..m.name_len as usize).unwrap_or(&[]);
                    let from = parse_name(name)
                        .map(unmap)
                        .unwrap_or_else(|| SockAddrAny::new(Ipv4Addr::UNSPECIFIED, 0));
                    *g = (m.len, from);
                    out.count += 1;
                }
                if out.count == 0 {
                    out.end = Some(Errno::EAGAIN);
                }
            }
            Err(e) => out.end = Some(errno(e)),
        }
        return;
    }
    for area in areas.take(RECV_MAX) {
        match net::recvfrom(fd, area, RecvFlags::DONTWAIT | RecvFlags::TRUNC) {
            Ok((_, len, addr)) => {
                let from = addr
                    .and_then(|a| SocketAddr::try_from(a).ok())
                    .map(unmap)
                    .unwrap_or_else(|| SockAddrAny::new(core::net::Ipv4Addr::UNSPECIFIED, 0));
                if let Some(slot) = out.got.get_mut(out.count) {
                    *slot = (u32::try_from(len).unwrap_or(u32::MAX), from);
                    out.count += 1;
                }
            }
            Err(e) => {
                out.end = Some(errno(e));
                break;
            }
        }
    }
}

/// Run a whole [`SockOp::Recv`](crate::SockOp::Recv): [`recv`] on `fd` (`None`: the
/// executor has no such socket, which completes with `EBADF`), then every
/// completion fed to `t`. `out` is scratch storage kept by the executor.
pub fn run_recv<S: TxStorage>(
    fd: Option<BorrowedFd<'_>>,
    id: SockId,
    into: TxSlots,
    t: &mut Translator,
    now: Instant,
    tx: &mut TxRing<S>,
    out: &mut Received,
) {
    match fd {
        Some(fd) => recv(fd, tx, into, out),
        None => {
            out.count = 0;
            out.end = Some(Errno::EBADF);
        }
    }
    for c in out.completions(id) {
        t.handle_completion(now, c, tx);
    }
}

/// Most datagrams one [`SockOp::RecvHeld`](crate::SockOp::RecvHeld)
/// reads: the held buffer's count.
pub const HELD_MAX: usize = 32;

/// Room for each held datagram: any UDP payload (at most 65 535 bytes less
/// the headers) fits whole.
pub const HELD_LEN: usize = 65536;

/// The executor's held datagrams: what the last
/// [`SockOp::RecvHeld`](crate::SockOp::RecvHeld) read, for
/// [`SockOp::SendHeld`](crate::SockOp::SendHeld) to send on (pasta's
/// `-U`, see [`crate::udp`]). The buffer ([`HELD_MAX`] datagrams of
/// [`HELD_LEN`] bytes) is allocated once, zeroed (no memory until written),
/// when the driver gives the executor its namespace sockets ([`Held::ensure`]), so
/// a driver that never relays does not have it and one that does allocates
/// nothing on the data path.
#[derive(Default)]
pub struct Held {
    buf: Box<[u8]>,
    got: Received,
}

impl Held {
    /// Allocate the buffer if it is not yet (once; the executor does it
    /// when it is given namespace sockets, at setup).
    pub fn ensure(&mut self) {
        if self.buf.is_empty() {
            self.buf = vec![0u8; HELD_MAX * HELD_LEN].into_boxed_slice();
        }
    }

    /// Read with one `recvmmsg` per receive (`on`) from now on, as
    /// [`Received::set_recvmmsg`].
    pub fn set_recvmmsg(&mut self, on: bool) {
        self.got.set_recvmmsg(on);
    }

    /// The datagrams held: (length, sender).
    pub fn datagrams(&self) -> &[(u32, SockAddrAny)] {
        self.got.datagrams()
    }

    /// The bytes of held datagram `index`; `None` if there is no such
    /// datagram, `Some(Err(EMSGSIZE))` if it was too long to be held whole.
    pub fn bytes(&self, index: u32) -> Option<Result<&[u8], Errno>> {
        let &(len, _) = self.datagrams().get(index as usize)?;
        let len = len as usize;
        if len > HELD_LEN {
            return Some(Err(Errno::EMSGSIZE));
        }
        let at = index as usize * HELD_LEN;
        self.buf.get(at..at + len).map(Ok)
    }
}

/// Run a whole [`SockOp::RecvHeld`](crate::SockOp::RecvHeld): read up to
/// [`HELD_MAX`] datagrams from `fd` into `held` (replacing what it held;
/// `None`: the executor has no such socket, which completes with `EBADF`),
/// then feed every completion to `t`, as [`run_recv`] does.
pub fn run_recv_held<S: TxStorage>(
    fd: Option<BorrowedFd<'_>>,
    id: SockId,
    t: &mut Translator,
    now: Instant,
    tx: &mut TxRing<S>,
    held: &mut Held,
) {
    match fd {
        Some(fd) => {
            held.ensure();
            let areas = held.buf.chunks_exact_mut(HELD_LEN).take(HELD_MAX);
            recv_into(fd, areas, &mut held.got);
        }
        None => {
            held.got.count = 0;
            held.got.end = Some(Errno::EBADF);
        }
    }
    for c in held.got.completions(id) {
        t.handle_completion(now, c, tx);
    }
}

/// Send held datagram `index` on `fd`: to `dst`, or to the connected peer
/// without one ([`SockOp::SendHeld`](crate::SockOp::SendHeld)).
///
/// # Errors
/// `EBADF` for a datagram not held, `EMSGSIZE` for one held cut, else the
/// errno of `send` or `sendto` (`ECONNREFUSED` after an ICMP port
/// unreachable on a connected socket).
pub fn send_held(
    fd: BorrowedFd<'_>,
    held: &Held,
    index: u32,
    dst: Option<SockAddrAny>,
) -> Result<Done, Errno> {
    let bytes = held.bytes(index).ok_or(Errno::EBADF)??;
    match dst {
        Some(d) => send_to(fd, d, bytes),
        None => send(fd, bytes),
    }
}

/// A sender address as the translator keeps it: v4-mapped IPv6 back to
/// IPv4.
fn unmap(a: SocketAddr) -> SockAddrAny {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SockAddrAny::new(v4, v6.port()),
            None => a.into(),
        },
        SocketAddr::V4(_) => a.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    fn spec(proto: Proto, ipv6: bool) -> SockSpec {
        SockSpec::new(proto, ipv6)
    }

    fn local_port(fd: &OwnedFd) -> u16 {
        let a = SocketAddr::try_from(net::getsockname(fd).unwrap()).unwrap();
        a.port()
    }

    fn wait_readable(fd: &OwnedFd) {
        let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let t = rustix::event::Timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut p, Some(&t)).unwrap();
    }

    /// A loopback UDP port nobody listens on: bound by a probe and closed.
    fn free_port() -> u16 {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    }

    #[test]
    fn udp_flow_socket_sends_and_receives_into_slots() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sport = server.local_addr().unwrap().port();
        // Bind the "guest's port": whatever is free, found by a probe.
        let gport = free_port();
        let mut s = spec(Proto::Udp, false);
        s.bind = Some(SockAddrAny::new(Ipv4Addr::UNSPECIFIED, gport));
        s.peer = Some(SockAddrAny::new(Ipv4Addr::LOCALHOST, sport));
        s.flags = SockFlags::REUSEADDR | SockFlags::BIND_FALLBACK;
        let fd = open(&s, |_| Ok(())).unwrap();
        assert_eq!(local_port(&fd), gport);
        assert_eq!(send(fd.as_fd(), b"hello"), Ok(Done::Bytes(5)));
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from.port()), (&b"hello"[..], gport));

        // Three replies, one too long for its slot.
        server.send_to(b"one", from).unwrap();
        server.send_to(&[7u8; 40], from).unwrap();
        server.send_to(b"three", from).unwrap();
        wait_readable(&fd);
        let mut tx = TxRing::new(8, 64, 0);
        let into = tx.reserve_slots(4, 42, 16).unwrap();
        let mut out = Received::default();
        recv(fd.as_fd(), &mut tx, into, &mut out);
        let peer = SockAddrAny::new(Ipv4Addr::LOCALHOST, sport);
        assert_eq!(out.datagrams(), &[(3, peer), (40, peer), (5, peer)]);
        let areas: Vec<Vec<u8>> = tx.payload_areas(into).map(|a| a.to_vec()).collect();
        assert_eq!(&areas[0][..3], b"one");
        assert_eq!(&areas[1][..], &[7u8; 16]);
        assert_eq!(&areas[2][..5], b"three");
        let id = SockId::from_parts(3, 1);
        let cs: Vec<Completion> = out.completions(id).collect();
        assert_eq!(cs.len(), 4);
        assert_eq!(
            cs[3],
            Completion {
                id,
                res: Ok(Done::Datagrams { count: 3 })
            }
        );
        // Nothing left: the operation ends with EAGAIN.
        recv(fd.as_fd(), &mut tx, into, &mut out);
        let cs: Vec<Completion> = out.completions(id).collect();
        assert_eq!(
            cs,
            [Completion {
                id,
                res: Err(Errno::EAGAIN)
            }]
        );
    }

    #[test]
    fn taken_port_falls_back_to_an_ephemeral_one() {
        let holder = UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let mut s = spec(Proto::Udp, false);
        s.bind = Some(SockAddrAny::new(Ipv4Addr::UNSPECIFIED, port));
        assert_eq!(open(&s, |_| Ok(())).err(), Some(RErrno::ADDRINUSE));
        s.flags = SockFlags::BIND_FALLBACK;
        let fd = open(&s, |_| Ok(())).unwrap();
        assert_ne!(local_port(&fd), port);
    }

    #[test]
    fn refused_datagrams_report_econnrefused() {
        let dead = free_port();
        let mut s = spec(Proto::Udp, false);
        s.peer = Some(SockAddrAny::new(Ipv4Addr::LOCALHOST, dead));
        let fd = open(&s, |_| Ok(())).unwrap();
        assert_eq!(send(fd.as_fd(), b"anyone?"), Ok(Done::Bytes(7)));
        wait_readable(&fd);
        let mut tx = TxRing::new(2, 64, 0);
        let into = tx.reserve_slots(2, 0, 64).unwrap();
        let mut out = Received::default();
        recv(fd.as_fd(), &mut tx, into, &mut out);
        let id = SockId::from_parts(0, 1);
        let cs: Vec<Completion> = out.completions(id).collect();
        assert_eq!(
            cs,
            [Completion {
                id,
                res: Err(Errno::ECONNREFUSED)
            }]
        );
    }

    #[test]
    fn listener_answers_its_sender_with_send_to_both_families() {
        for (any, lo) in [
            (
                SockAddrAny::new(Ipv4Addr::UNSPECIFIED, 0),
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ),
            (
                SockAddrAny::new(Ipv6Addr::UNSPECIFIED, 0),
                SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
            ),
        ] {
            let ipv6 = !any.addr.is_v4();
            let mut s = spec(Proto::Udp, ipv6);
            s.bind = Some(any);
            s.flags = SockFlags::REUSEADDR | SockFlags::V6ONLY;
            let fd = match open(&s, |_| Ok(())) {
                Ok(fd) => fd,
                // No IPv6 on this host.
                Err(RErrno::AFNOSUPPORT | RErrno::ADDRNOTAVAIL) if ipv6 => continue,
                Err(e) => panic!("{e}"),
            };
            let port = local_port(&fd);
            let client = UdpSocket::bind(lo).unwrap();
            let mut to = lo;
            to.set_port(port);
            client.send_to(b"query", to).unwrap();
            wait_readable(&fd);
            let mut tx = TxRing::new(2, 64, 0);
            let into = tx.reserve_slots(1, 0, 64).unwrap();
            let mut out = Received::default();
            recv(fd.as_fd(), &mut tx, into, &mut out);
            let sender = SockAddrAny::from(client.local_addr().unwrap());
            assert_eq!(out.datagrams(), &[(5, sender)]);
            assert_eq!(send_to(fd.as_fd(), sender, b"answer"), Ok(Done::Bytes(6)));
            let mut buf = [0u8; 16];
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"answer");
        }
    }

    #[test]
    fn ping_socket_echoes_or_is_refused_by_ping_group_range() {
        let mut s = spec(Proto::Icmp, false);
        s.peer = Some(SockAddrAny::new(Ipv4Addr::LOCALHOST, 0));
        let fd = match open(&s, |_| Ok(())) {
            Ok(fd) => fd,
            // `net.ipv4.ping_group_range` excludes us (the default "1 0").
            // REQUIRE_PING=1 makes that a failure (run inside `unshare -n`
            // after `ip link set lo up` and widening the range).
            Err(e) => {
                assert!(std::env::var_os("REQUIRE_PING").is_none(), "{e}");
                assert!(matches!(e, RErrno::ACCESS | RErrno::PERM), "{e}");
                return;
            }
        };
        // Echo request id 0x1234 (the kernel sets its own), seq 1.
        let req = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        assert_eq!(send(fd.as_fd(), &req), Ok(Done::Bytes(10)));
        wait_readable(&fd);
        let mut tx = TxRing::new(2, 64, 0);
        let into = tx.reserve_slots(1, 0, 64).unwrap();
        let mut out = Received::default();
        recv(fd.as_fd(), &mut tx, into, &mut out);
        assert_eq!(out.datagrams().len(), 1);
        let reply = tx.payload_areas(into).next().unwrap();
        assert_eq!((reply[0], &reply[6..10]), (0, &[0, 1, b'h', b'i'][..]));
    }

    /// An rx batch of `payloads`, each after 6 bytes of padding, and the
    /// spans naming them.
    fn rx_of(payloads: &[&[u8]]) -> (Vec<u8>, Vec<crate::buf::FrameDesc>, Vec<crate::buf::RxSpan>) {
        let (mut arena, mut descs, mut spans) = (Vec::new(), Vec::new(), Vec::new());
        for (i, p) in payloads.iter().enumerate() {
            let at = arena.len() as u32;
            arena.extend_from_slice(b"hdr---");
            arena.extend_from_slice(p);
            descs.push(crate::buf::FrameDesc::new(at, 6 + p.len() as u32));
            spans.push(crate::buf::RxSpan {
                frame: i as u32,
                offset: 6,
                len: p.len() as u32,
            });
        }
        (arena, descs, spans)
    }

    #[test]
    fn a_batch_goes_out_in_order_each_to_its_destination() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (pa, pb) = (
            SockAddrAny::from(a.local_addr().unwrap()),
            SockAddrAny::from(b.local_addr().unwrap()),
        );
        let mut s = spec(Proto::Udp, false);
        s.bind = Some(SockAddrAny::new(Ipv4Addr::LOCALHOST, 0));
        let fd = open(&s, |_| Ok(())).unwrap();
        let me = local_port(&fd);
        let (arena, descs, spans) = rx_of(&[b"one", b"two-two", b"three"]);
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let id = SockId::from_parts(0, 1);
        let mut batch = SendBatch::new();
        for (span, dst) in spans.iter().zip([pa, pb, pa]) {
            batch
                .push(crate::SockOp::SendTo {
                    id,
                    dst,
                    payload: *span,
                })
                .unwrap();
        }
        // A payload outside the batch is refused alone.
        let bad = crate::buf::RxSpan {
            frame: 9,
            offset: 0,
            len: 1,
        };
        batch
            .push(crate::SockOp::SendTo {
                id,
                dst: pb,
                payload: bad,
            })
            .unwrap();
        let mut out = [Err(Errno::EAGAIN); SEND_BATCH_MAX];
        send_batch(fd.as_fd(), &rx, &batch, &mut out);
        assert_eq!(
            &out[..4],
            &[
                Ok(Done::Bytes(3)),
                Ok(Done::Bytes(7)),
                Ok(Done::Bytes(5)),
                Err(Errno::EBADF)
            ]
        );
        let mut buf = [0u8; 16];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from.port()), (&b"one"[..], me));
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"three");
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from.port()), (&b"two-two"[..], me));

        // On a connected socket: `Send`s, no addresses.
        let mut s = spec(Proto::Udp, false);
        s.peer = Some(pb);
        let fd = open(&s, |_| Ok(())).unwrap();
        let mut batch = SendBatch::new();
        for span in &spans {
            batch
                .push(crate::SockOp::Send { id, payload: *span })
                .unwrap();
        }
        send_batch(fd.as_fd(), &rx, &batch, &mut out);
        assert_eq!(
            &out[..3],
            &[Ok(Done::Bytes(3)), Ok(Done::Bytes(7)), Ok(Done::Bytes(5))]
        );
        for want in [&b"one"[..], b"two-two", b"three"] {
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], want);
        }
    }

    #[test]
    fn kernel_names_parse_to_addresses() {
        let mut v4 = [0u8; NAME_LEN];
        v4[..2].copy_from_slice(&AddressFamily::INET.as_raw().to_ne_bytes());
        v4[2..4].copy_from_slice(&5353u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[192, 0, 2, 7]);
        assert_eq!(
            parse_name(&v4[..16]),
            Some(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 5353)))
        );
        let mut v6 = [0u8; NAME_LEN];
        v6[..2].copy_from_slice(&AddressFamily::INET6.as_raw().to_ne_bytes());
        v6[2..4].copy_from_slice(&53u16.to_be_bytes());
        v6[8..24].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(
            parse_name(&v6),
            Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 53)))
        );
        // Truncated, empty, or another family: no address.
        assert_eq!(parse_name(&v6[..20]), None);
        assert_eq!(parse_name(&[]), None);
        let mut unix = v4;
        unix[..2].copy_from_slice(&AddressFamily::UNIX.as_raw().to_ne_bytes());
        assert_eq!(parse_name(&unix), None);
    }

    #[test]
    fn a_refused_message_fails_alone_and_the_rest_still_go() {
        let dead = free_port();
        let mut s = spec(Proto::Udp, false);
        s.peer = Some(SockAddrAny::new(Ipv4Addr::LOCALHOST, dead));
        let fd = open(&s, |_| Ok(())).unwrap();
        let (arena, descs, spans) = rx_of(&[b"a", b"b", b"c", b"d"]);
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let id = SockId::from_parts(0, 1);
        let mut batch = SendBatch::new();
        for span in &spans {
            batch
                .push(crate::SockOp::Send { id, payload: *span })
                .unwrap();
        }
        let mut out = [Err(Errno::EAGAIN); SEND_BATCH_MAX];
        send_batch(fd.as_fd(), &rx, &batch, &mut out);
        assert_eq!(out[0], Ok(Done::Bytes(1)));
        // The port unreachable is recorded on the socket (POLLERR)...
        wait_readable(&fd);
        send_batch(fd.as_fd(), &rx, &batch, &mut out);
        // ...and fails the next batch's first message only; every message
        // still gets its own result.
        assert_eq!(out[0], Err(Errno::ECONNREFUSED));
        for r in &out[1..4] {
            assert!(
                matches!(r, Ok(Done::Bytes(1)) | Err(Errno::ECONNREFUSED)),
                "{r:?}"
            );
        }
    }

    /// The calls of passt-sys's `mmsg` through this module (they were
    /// passt-sys's own tests when it depended on passt-core).
    mod mmsg {
        use super::super::*;
        use crate::addr::SockAddrAny;
        use crate::buf::TxRing;
        use crate::{Completion, Done, SockId};
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
            out.set_recvmmsg(true);
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
                    res: Err(crate::Errno::EAGAIN)
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
            use crate::batch::{SendBatch, SEND_BATCH_MAX};
            use crate::buf::{FrameDesc, RxBatch, RxSpan};

            use crate::{Errno, Proto, SockOp, SockSpec};

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
            let id = crate::SockId::from_parts(0, 1);
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
            assert!(send_gso(fd.as_fd(), &rx, &batch, &mut out));
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
            assert_eq!(send(fd.as_fd(), &big), Ok(Done::Bytes(3000)));
            wait_readable(&rx_sock);
            assert_eq!(rx_sock.recv(&mut buf).unwrap(), 3000);
        }

        #[test]
        fn a_refusal_during_a_segmented_run_fails_its_first_datagram_only() {
            use crate::batch::{SendBatch, SEND_BATCH_MAX};
            use crate::buf::{FrameDesc, RxBatch, RxSpan};

            use crate::{Errno, Proto, SockOp, SockSpec};

            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            let dead = SockAddrAny::from(probe.local_addr().unwrap());
            drop(probe);
            let mut spec = SockSpec::new(Proto::Udp, false);
            spec.peer = Some(dead);
            let fd = open(&spec, |_| Ok(())).unwrap();
            let arena = [5u8; 400];
            let descs: Vec<FrameDesc> = (0..4).map(|i| FrameDesc::new(i * 100, 100)).collect();
            let rx = RxBatch::new(&arena, &descs).unwrap();
            let id = crate::SockId::from_parts(0, 1);
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
            assert!(send_gso(fd.as_fd(), &rx, &batch, &mut out));
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
            assert!(send_gso(fd.as_fd(), &rx, &batch, &mut out));
            assert_eq!(out[0], Err(Errno::ECONNREFUSED));
            for r in &out[1..4] {
                assert!(
                    matches!(r, Ok(Done::Bytes(100)) | Err(Errno::ECONNREFUSED)),
                    "{r:?}"
                );
            }
        }
    }
}
