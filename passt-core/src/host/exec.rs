//! The socket executor: runs the [`Translator`]'s [`SockOp`]s on real host
//! sockets and feeds the results back (feature `host`), for both frontends.
//!
//! # Model
//!
//! [`SockExec`] owns a table from [`SockId::slot`] to the socket's
//! [`OwnedFd`] and registers every socket with the driver's epoll instance,
//! with the token [`token_of`] (`SockId::to_u64() + 1`; token 0 is left for
//! the driver's tap or qemu socket). [`ready_of`] turns epoll flags into
//! [`Ready`]. After each `handle_*` call the driver calls
//! [`SockExec::run_ops`], which drains `poll_op`, runs each operation and
//! hands completions back until nothing is queued.
//!
//! Readiness is edge-triggered for connected sockets (`EPOLLIN | EPOLLOUT |
//! EPOLLRDHUP | EPOLLET`): the translator reads on its own schedule (when
//! the guest's window opens) and learns about new data from the next edge,
//! and writability is reported once per transition, so a socket with room
//! to write does not wake the loop forever. Listening sockets are
//! level-triggered (`EPOLLIN`): one `Accept` per readiness, and the
//! translator asks for the next one itself until `EAGAIN`.
//!
//! # Operations and their system calls
//!
//! | op | calls |
//! |---|---|
//! | `Open` | `socket(SOCK_NONBLOCK \| SOCK_CLOEXEC)`, `setsockopt(SO_REUSEADDR, IPV6_V6ONLY)`, `bind`, `listen` or a non-blocking `connect` (`EINPROGRESS` is success: the outcome arrives as writability or an error), `setsockopt(SO_PEEK_OFF)`, `epoll_ctl(ADD)` |
//! | `Accept` | `accept4(SOCK_NONBLOCK \| SOCK_CLOEXEC)`, `getsockname`, `setsockopt(SO_PEEK_OFF)`, `epoll_ctl(ADD)`; out of descriptors, `epoll_ctl(MOD)` (see below) |
//! | `Send` | `send(MSG_NOSIGNAL \| MSG_DONTWAIT)`, or one `sendmsg` for a run of them (below); on the first `Send` of a socket, the free space as for `Query` |
//! | `Query` | `getsockopt(SO_SNDBUF)`, `ioctl(SIOCOUTQ)`, `getsockopt(TCP_INFO)`, and a zero-timeout `poll(POLLOUT)` when the buffer is nearly full |
//! | `Peek` | `setsockopt(SO_PEEK_OFF)` when the offset differs, `recvmsg(MSG_PEEK \| MSG_DONTWAIT)` into the payload areas of the slots |
//! | `Discard` | `recv(MSG_TRUNC \| MSG_DONTWAIT)`: TCP drops the bytes without copying |
//! | `Shutdown` | `shutdown` |
//! | `Splice` | [`super::splice`]: `pipe2`, `fcntl(F_SETPIPE_SZ)`, `splice`, `shutdown`, `setsockopt(SO_LINGER)` |
//! | `Close` | `epoll_ctl(DEL)`, `close`; of a socket in a running splice first `setsockopt(SO_LINGER)` on both (reset); `epoll_ctl(MOD)` for each muted listener |
//!
//! # Outbound source and listeners' addresses
//!
//! [`SockExec::set_outbound`] gives the host-side policy of `-o/--outbound`,
//! `--outbound-if4`/`--outbound-if6` and `--freebind` ([`Outbound`]). It
//! applies to sockets made on the host (not [`SockFlags::IN_NS`]):
//!
//! - an *outbound* socket (one with a peer that is not a loopback address,
//!   i.e. a guest's connection, flow or echo to the outside) is bound to
//!   the family's `-o` address (the port asked for, if any, kept), and to
//!   the family's interface with `setsockopt(SO_BINDTODEVICE)`
//!   ([`passt_sys::bind_device`]: rustix has no wrapper);
//! - with `freebind`, every socket bound to an address, listeners of `-t`
//!   and `-u` included, gets `IP_FREEBIND`/`IPV6_FREEBIND` first, so an
//!   address the host does not have (yet) binds (ip(7)).
//!
//! An `Open` with [`SockFlags::IN_NS`] gets its socket, stream or datagram,
//! from the driver's [`NsSockets`] ([`SockExec::set_ns_sockets`]; pasta
//! makes it on a thread inside the namespace) and goes on as any other
//! `Open` (options, bind, connect or listen, registration): a socket is
//! bound to the namespace it was made in, wherever it is used from.
//!
//! # System calls without a safe wrapper
//!
//! Where rustix has no safe call (`SO_PEEK_OFF`, `SIOCOUTQ`, `TCP_INFO`,
//! `recvmmsg`, `UDP_SEGMENT`, `IP_RECVERR`, `SO_BINDTODEVICE`) the
//! executor calls passt-sys, which holds every `unsafe` block of the
//! project: passt-core depends on it (feature `host`), so there is nothing
//! for the driver to supply. Each of those calls but `SO_BINDTODEVICE`
//! (made only when `--outbound-if4/6` asks) has a fallback, used when the
//! kernel refuses it or when it is left out of the executor's [`Calls`]
//! ([`SockExec::with_calls`]: for the tests of the fallbacks); the drivers
//! use them all ([`executor`]).
//!
//! Namespace sockets are the one thing that differs per driver: they are
//! made by the driver (pasta's namespace thread, `pasta-cli/src/netns.rs`),
//! so the executor takes them from a trait object, [`NsSockets`], given
//! once at setup, which owns the driver's state (the channel to that
//! thread). A trait object rather than a type parameter of [`SockExec`]:
//! passt has none, and the executor's type stays one for both drivers.
//! Given by a setter rather than to the constructor: pasta's namespace
//! thread starts only after its last `fork` (to the background), when the
//! executor (made with the event loop, before it) already exists.
//!
//! # Spliced connections
//!
//! After [`SockOp::Splice`] (or [`SockExec::start_splice`], the same entry
//! for a driver that pairs sockets itself) the executor owns the readiness
//! of both sockets: the driver hands every socket readiness to
//! [`SockExec::ready`], which pumps a splice ([`super::splice`]) or passes the
//! readiness on to [`Translator::handle_ready`]. A readiness pumps only
//! the directions it concerns (readable: from that socket; writable:
//! toward it; error or hang-up: both, and `SO_ERROR` is checked). When a
//! splice ends, its one completion goes to the translator from there (or
//! at once from `run_ops` if it ended as it started). `Query` on a spliced
//! socket answers the splice's progress ([`Done::Splicing`]), and `Close`
//! of a socket whose splice still runs resets both connections.
//!
//! # Peeking past unacknowledged bytes
//!
//! `SO_PEEK_OFF` makes `MSG_PEEK` start at an offset the kernel keeps (and
//! moves: forward by what a peek returns, back by what a read removes).
//! rustix has no safe wrapper for it, so it is [`passt_sys::set_peek_off`].
//! The executor tracks the offset it expects and sets it only when a
//! `Peek`'s `skip` differs (after a retransmission). Without it
//! ([`Calls::PEEK_OFF`] off), or if the kernel refuses, it peeks
//! from the head into a scratch area for the skipped prefix and the payload
//! areas after it: correct, but it copies the skipped bytes every time; end
//! of file right after them is then told apart from "no new data" with a
//! zero-timeout `poll(POLLRDHUP)`.
//!
//! # Free send-buffer space
//!
//! The translator sizes the window it offers the guest from the free space
//! of the socket's send buffer, so the guest sends what the kernel will
//! take. Free space is `SO_SNDBUF` (the kernel's figure, which already
//! counts the doubling it applies for overhead) less 1/16 of it for that
//! overhead, less the bytes queued (`SIOCOUTQ`: unsent and unacknowledged).
//! rustix has no safe wrapper for `SIOCOUTQ`, so, as for `SO_PEEK_OFF`, it
//! is passt-sys's ([`passt_sys::outq`]). Without it ([`Calls::OUTQ`] off)
//! `Send` completes with [`Done::Bytes`] and `Query` with `EOPNOTSUPP`, and
//! the translator falls back to a fixed window.
//!
//! Only the first `Send` of a socket reports the space ([`Done::Sent`]);
//! later ones complete with [`Done::Bytes`] and cost one `send` each: the
//! translator keeps the last report and asks again ([`SockOp::Query`])
//! when the guest has used half of the window it allowed. A `Query` also
//! reads `TCP_INFO` ([`passt_sys::tcp_info`], `getsockopt` of a kernel
//! struct rustix does not wrap; parsed by [`tcp_info_from_raw`]) and passes
//! what it tells of the path ([`crate::TcpInfo`]) on; without it
//! ([`Calls::TCP_INFO`] off), or if the call fails, the answer has none and
//! the window is the free space alone.
//!
//! An answer given while nothing was queued (`SIOCOUTQ` 0) cannot change
//! before the socket sends again (the space only grows as queued bytes are
//! acknowledged): it is kept and given again, without system calls, until
//! the socket's next `Send`. A download asks often (with edge-triggered
//! readiness every readable edge carries writability, and a socket that
//! never sent keeps its first, small buffer).
//!
//! When less than a quarter of the buffer is free, a zero-timeout
//! `poll(POLLOUT)` follows: the kernel marks a socket found not writable
//! so that freed space raises a writability edge (`EPOLLOUT` under
//! `EPOLLET`), which is what reopens a window that went to zero without
//! any write being refused.
//!
//! # Out of descriptors
//!
//! An `Open` that finds no descriptor fails with `EMFILE` (or `ENFILE`),
//! and the translator resets the guest's connection (TCP) or drops and
//! counts the datagram (UDP, ping). An `Accept` cannot refuse the peer that
//! way: the connection stays in the listener's backlog, and a
//! level-triggered listener would wake the loop at once, forever. So the
//! executor mutes that listener (`epoll_ctl(MOD)` with no events) when
//! `accept` fails with `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM`, and
//! restores every muted listener at the next `Close`, when a descriptor is
//! free again, or [`UNMUTE_AFTER`] after muting at the latest (descriptors
//! may come back in ways the executor does not see: the driver's own, or
//! another process's under `ENFILE`); the pending connections are then
//! accepted. The driver folds [`SockExec::poll_timeout`] into its wait and
//! calls [`SockExec::run_ops`] when it is due. A listener that still finds
//! no descriptor is muted again: one `accept` per [`UNMUTE_AFTER`], never a
//! spin.
//!
//! # Short writes
//!
//! After a `Send` to a socket was short or failed with `EAGAIN`, later
//! `Send`s to that socket within the same [`SockExec::run_ops`] complete
//! with `EAGAIN` without writing (the contract in [`crate::tcp`]).
//!
//! # Runs of sends
//!
//! `Send`s to the same stream socket that follow each other in the queue
//! (the segments of one connection in a batch from the guest) are written by
//! one `sendmsg` with one iovec each, up to 64; if it is the socket's first
//! write, the free space is asked for once, after it. Each still gets its
//! own completion, in order: the bytes it was given in full ([`Done::Sent`]
//! with the free space on the last one, if asked), a short count on the one the write ended in, and `EAGAIN` after that,
//! as if they had been written one by one.
//!
//! # Datagrams
//!
//! UDP and ping sockets (`Open` with [`Proto::Udp`] or [`Proto::Icmp`]) are
//! created by [`exec_dgram::open`] and registered **level-triggered**
//! (`EPOLLIN`, like listeners). `Send` on them is [`exec_dgram::send`] (no
//! short-write blocking: each datagram stands alone), `SendTo` is
//! [`exec_dgram::send_to`], and `Recv` is [`exec_dgram::run_recv`], run by
//! [`SockExec::run_ops`] itself because it feeds one completion per
//! datagram ([`SockExec::run`] returns `None` for it). `RecvHeld` is run
//! the same way ([`exec_dgram::run_recv_held`]), into the executor's own
//! held buffer, and `SendHeld` sends one of those datagrams on
//! ([`exec_dgram::send_held`]): pasta's `-U` relay, which never makes
//! frames.
//!
//! [`SockExec::run_ops`] gathers a run of consecutive `Send`s (or
//! `SendTo`s) on one datagram socket into a [`SendBatch`] and sends it with
//! one `sendmmsg` ([`exec_dgram::send_batch`]), then feeds the completions
//! back in order; [`crate::batch`] explains why that is the same, for the
//! translator, as running them one by one. With `UDP_SEGMENT`
//! ([`Calls::UDP_SEGMENT`]), stretches of equal-sized
//! datagrams on a connected UDP socket go out as one segmented send
//! instead ([`exec_dgram::send_gso`]); a socket that refuses segmentation
//! is not asked again. `Recv` uses one `recvmmsg` ([`Calls::RECVMMSG`]).

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::epoll;
use rustix::io::Errno as RErrno;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendFlags,
    SocketFlags, SocketType,
};

use super::exec_dgram;
use super::splice::{self, Splice, Wake};
use crate::batch::{SendBatch, SEND_BATCH_MAX};
use crate::buf::{RxBatch, TxRing, TxStorage};
use crate::config::Outbound;
use crate::lazy::LazyArray;
use crate::time::Instant;
use crate::{
    Completion, Done, Errno, Proto, Ready, SockFlags, SockId, SockOp, SockSpec, TcpInfo, Translator,
};

bitflags::bitflags! {
    /// The system calls without a safe rustix wrapper that the executor
    /// makes (passt-sys's), each with a fallback without it (see the
    /// module docs). The drivers use them all ([`SockExec::new`]); the
    /// tests of the fallbacks leave some out ([`SockExec::with_calls`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Calls: u8 {
        /// `setsockopt(SO_PEEK_OFF)` ([`passt_sys::set_peek_off`]).
        const PEEK_OFF = 1 << 0;
        /// `ioctl(SIOCOUTQ)` ([`passt_sys::outq`]): free send-buffer space.
        const OUTQ = 1 << 1;
        /// `getsockopt(TCP_INFO)` ([`passt_sys::tcp_info`]).
        const TCP_INFO = 1 << 2;
        /// `recvmmsg` ([`passt_sys::mmsg::recvmmsg`]).
        const RECVMMSG = 1 << 3;
        /// `setsockopt(UDP_SEGMENT)` ([`passt_sys::mmsg::udp_segment`]).
        const UDP_SEGMENT = 1 << 4;
        /// `IP_RECVERR` and `recvmsg(MSG_ERRQUEUE)` ([`passt_sys::errqueue`]).
        const ERRQUEUE = 1 << 5;
    }
}

impl Outbound {
    /// Whether `spec` is an outbound socket: made on the host, with a peer
    /// other than a loopback address.
    fn applies(spec: &SockSpec) -> bool {
        !spec.flags.contains(SockFlags::IN_NS)
            && !spec.flags.contains(SockFlags::LISTEN)
            && spec.peer.is_some_and(|p| !p.addr.is_loopback())
    }

    /// `spec` with its bind address set to the `-o` address of its family
    /// where it applies and nothing (or the unspecified address) was asked.
    pub(crate) fn spec(&self, spec: &SockSpec) -> SockSpec {
        let mut s = *spec;
        if !Self::applies(spec) {
            return s;
        }
        let src: Option<crate::addr::InAny> = if spec.ipv6 {
            self.addr6.map(Into::into)
        } else {
            self.addr4.map(Into::into)
        };
        if let Some(addr) = src {
            match s.bind {
                None => s.bind = Some(crate::addr::SockAddrAny { addr, port: 0 }),
                Some(b) if b.addr.is_unspecified() => {
                    s.bind = Some(crate::addr::SockAddrAny { addr, ..b });
                }
                Some(_) => {}
            }
        }
        s
    }

    /// Socket options before `bind`: the interface of an outbound socket,
    /// and `freebind`.
    pub(crate) fn prepare(&self, fd: BorrowedFd<'_>, spec: &SockSpec) -> Result<(), RErrno> {
        if spec.flags.contains(SockFlags::IN_NS) {
            return Ok(());
        }
        let ifname = if spec.ipv6 {
            self.ifname6.as_deref()
        } else {
            self.ifname4.as_deref()
        };
        if let (true, Some(name)) = (Self::applies(spec), ifname) {
            passt_sys::bind_device(fd, name)?;
        }
        if self.freebind && spec.bind.is_some() {
            if spec.ipv6 {
                net::sockopt::set_ipv6_freebind(fd, true)?;
            } else {
                net::sockopt::set_ip_freebind(fd, true)?;
            }
        }
        Ok(())
    }
}

/// Bytes of the Linux `struct tcp_info` the executor asks for: up to and
/// including `tcpi_snd_wnd` (Linux 5.4).
pub const TCP_INFO_LEN: usize = passt_sys::TCP_INFO_LEN;

/// The fields [`TcpInfo`] keeps, from the bytes `getsockopt(TCP_INFO)`
/// wrote (native byte order; `raw` cut to the length the kernel returned).
/// `None` if even the congestion window is missing; a kernel too old for
/// `tcpi_snd_wnd` gives `snd_wnd: None`, one without `tcpi_notsent_bytes`
/// (before 4.6) `None` as well, since the window then cannot tell queued
/// bytes from ones in flight.
pub fn tcp_info_from_raw(raw: &[u8]) -> Option<TcpInfo> {
    // Offsets in `struct tcp_info` (include/uapi/linux/tcp.h).
    const SND_MSS: usize = 16;
    const RTT: usize = 68;
    const SND_CWND: usize = 80;
    const NOTSENT_BYTES: usize = 144;
    const SND_WND: usize = 228;
    let word = |at: usize| -> Option<u32> {
        let b = raw.get(at..at + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some(TcpInfo {
        snd_mss: word(SND_MSS)?,
        snd_cwnd: word(SND_CWND)?,
        snd_wnd: word(SND_WND),
        notsent: word(NOTSENT_BYTES)?,
        rtt_us: word(RTT)?,
    })
}

/// Makes sockets inside the guest's network namespace, for `Open` with
/// [`SockFlags::IN_NS`] (pasta's, served by its namespace thread; see the
/// module docs for why a trait object). Any `FnMut(Proto, bool)` closure
/// is one.
pub trait NsSockets {
    /// A socket of protocol [`Proto::Tcp`] (a stream socket) or
    /// [`Proto::Udp`] (a datagram socket), IPv6 if `ipv6`, made in the
    /// namespace. It must be non-blocking and close-on-exec; the executor
    /// sets its options, binds and connects it as for any `Open`.
    ///
    /// # Errors
    /// Why it could not be made (the executor's `Open` fails with it).
    fn socket(&mut self, proto: Proto, ipv6: bool) -> Result<OwnedFd, RErrno>;
}

impl<F: FnMut(Proto, bool) -> Result<OwnedFd, RErrno>> NsSockets for F {
    fn socket(&mut self, proto: Proto, ipv6: bool) -> Result<OwnedFd, RErrno> {
        self(proto, ipv6)
    }
}

/// A socket executor for `config`'s sockets registered with `epoll`, as
/// the drivers make it: every call of [`Calls`], and `config`'s outbound
/// policy (`-o`, `--outbound-if4/6`, `--freebind`).
pub fn executor(config: &crate::config::Config, epoll: OwnedFd) -> SockExec {
    let mut exec = SockExec::new(config.limits.max_sockets, epoll);
    exec.set_outbound(config.outbound.clone());
    exec
}

/// No splice in a slot.
const NO_SPLICE: u32 = u32::MAX;

/// Backlog of listening sockets.
const BACKLOG: i32 = 1024;
/// Scratch bytes for skipped prefixes and for `Discard` lengths (never
/// touched by the kernel for `MSG_TRUNC` on TCP).
const SCRATCH: usize = 16 << 20;

/// Most consecutive `Send`s to one stream socket written by one `sendmsg`.
const SEND_RUN: usize = 64;
/// Peek offset unknown: use the scratch fallback.
const NO_PEEK_OFF: u32 = u32::MAX;
/// Most buffers of one `Peek` (the kernel's `UIO_MAXIOV`): the scratch
/// prefix and the payload areas of up to 1023 slots, more than any tx ring
/// of the drivers holds. Areas past it are left out (a shorter read).
const MAX_IOV: usize = 1024;
/// The iovec of a read of fewer slots than this (and the prefix) is a
/// small array: room for the 64 slots the TCP handler reads at most.
const SMALL_IOV: usize = 65;

/// The epoll token of a socket.
pub fn token_of(id: SockId) -> u64 {
    id.to_u64().wrapping_add(1)
}

/// The socket a token names; `None` for token 0 (the driver's own).
pub fn id_of(token: u64) -> Option<SockId> {
    token.checked_sub(1).map(SockId::from_u64)
}

/// Readiness from epoll flags.
pub fn ready_of(flags: epoll::EventFlags) -> Ready {
    let mut r = Ready::empty();
    if flags.contains(epoll::EventFlags::IN) {
        r |= Ready::READABLE;
    }
    if flags.contains(epoll::EventFlags::OUT) {
        r |= Ready::WRITABLE;
    }
    if flags.intersects(epoll::EventFlags::RDHUP | epoll::EventFlags::HUP) {
        r |= Ready::HANGUP;
    }
    if flags.contains(epoll::EventFlags::ERR) {
        r |= Ready::ERROR;
    }
    r
}

/// How long a listener muted for want of descriptors stays muted if no
/// `Close` frees one (see the module docs, "Out of descriptors").
pub const UNMUTE_AFTER: core::time::Duration = core::time::Duration::from_secs(1);

/// Socket table and the work of every [`SockOp`].
pub struct SockExec {
    epoll: OwnedFd,
    fds: LazyArray<Option<OwnedFd>>,
    peek_off: LazyArray<u32>,
    /// Whether the socket in each slot is a datagram (UDP or ping) one.
    dgram: LazyArray<bool>,
    /// Whether the socket in each slot has reported its free space (on its
    /// first `Send`).
    space_told: LazyArray<bool>,
    /// The last `Query` answer of a stream socket whose send buffer was
    /// empty then, until its next `Send` (see "Free send-buffer space").
    space_idle: LazyArray<Option<(u32, Option<TcpInfo>)>>,
    /// Listeners muted after an `Accept` ran out of descriptors, and how
    /// many.
    muted: LazyArray<Option<SockId>>,
    muted_count: u32,
    /// When the first of the muted listeners was muted (set by the
    /// `run_ops` that muted it).
    muted_at: Option<Instant>,
    /// Scratch of every `Recv`.
    received: exec_dgram::Received,
    /// Datagrams of the last `RecvHeld`, for `SendHeld`.
    held: exec_dgram::Held,
    /// The run of datagram sends being gathered, and their results.
    batch: Box<SendBatch>,
    sent: Box<[Result<Done, Errno>; SEND_BATCH_MAX]>,
    /// The calls without a safe wrapper it makes.
    calls: Calls,
    /// Whether the datagram socket in each slot must not segment (a ping
    /// socket, or a UDP socket that refused).
    gso_off: LazyArray<bool>,
    /// Sockets whose send would block, for the rest of one `run_ops`: slot
    /// `i` is blocked while `blocked[i] == drain` (a stamp per slot: set,
    /// test and clear-all in O(1), without allocating).
    blocked: LazyArray<u32>,
    /// The current `run_ops`'s stamp (never 0, the stamp of no drain).
    drain: u32,
    scratch: Box<[u8]>,
    ns: Option<Box<dyn NsSockets>>,
    outbound: Outbound,
    /// Splices, at the slot of their `a` socket.
    splices: LazyArray<Option<Splice>>,
    /// For each slot in a splice, the slot of its `a` socket.
    splice_at: LazyArray<u32>,
    /// Operations that failed where no completion reports it.
    pub errors: u64,
}

fn errno(e: RErrno) -> Errno {
    Errno(e.raw_os_error())
}

impl SockExec {
    /// An executor for `max_sockets` sockets (the translator's
    /// `Limits::max_sockets`), registering them with `epoll` (a duplicate
    /// of the driver's epoll descriptor), making every call of [`Calls`].
    pub fn new(max_sockets: u32, epoll: OwnedFd) -> Self {
        Self::with_calls(max_sockets, epoll, Calls::all())
    }

    /// [`SockExec::new`] making only the calls in `calls`: the others take
    /// their fallbacks (see the module docs), as on a kernel that refuses
    /// them. For the tests of those fallbacks.
    pub fn with_calls(max_sockets: u32, epoll: OwnedFd, calls: Calls) -> Self {
        // Per-socket tables: reserved for the limit, written only up to
        // the most sockets open at once.
        let n = max_sockets as usize;
        let mut received = exec_dgram::Received::default();
        received.set_recvmmsg(calls.contains(Calls::RECVMMSG));
        let mut held = exec_dgram::Held::default();
        held.set_recvmmsg(calls.contains(Calls::RECVMMSG));
        SockExec {
            epoll,
            fds: LazyArray::new(n, || None),
            peek_off: LazyArray::new(n, || NO_PEEK_OFF),
            dgram: LazyArray::new(n, || false),
            space_told: LazyArray::new(n, || false),
            space_idle: LazyArray::new(n, || None),
            muted: LazyArray::new(n, || None),
            muted_count: 0,
            muted_at: None,
            received,
            held,
            batch: Box::default(),
            sent: Box::new([Err(Errno::EAGAIN); SEND_BATCH_MAX]),
            calls,
            gso_off: LazyArray::new(n, || true),
            blocked: LazyArray::new(n, || 0),
            drain: 1,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
            ns: None,
            outbound: Outbound::default(),
            splices: LazyArray::new(n, || None),
            splice_at: LazyArray::new(n, || NO_SPLICE),
            errors: 0,
        }
    }

    /// Whether a send to `id` would block, as seen earlier in this drain.
    fn is_blocked(&self, id: SockId) -> bool {
        self.blocked.get(id.slot() as usize) == Some(&self.drain)
    }

    /// Marks `id` as blocked for sending until the next drain.
    fn block(&mut self, id: SockId) {
        if let Some(b) = self.blocked.get_mut(id.slot() as usize) {
            *b = self.drain;
        }
    }

    /// Give the executor the driver's maker of sockets inside the guest's
    /// namespace (`Open` with [`SockFlags::IN_NS`]; without one such an
    /// `Open` fails with `EOPNOTSUPP`).
    pub fn set_ns_sockets(&mut self, ns: Box<dyn NsSockets>) {
        self.ns = Some(ns);
        // What namespace datagram sockets receive is relayed (`-U`): the
        // held buffer is allocated now, at setup (zeroed, so it costs no
        // memory until written), not when the first one opens.
        self.held.ensure();
    }

    /// Start splicing between the connected stream sockets `a` and `b`,
    /// both open in this executor (what [`SockOp::Splice`] runs). Pumps
    /// once at once; `Some` if the splice already ended (or could not
    /// start: `EBADF` for a socket not open here, `EMFILE` without
    /// descriptors for the pipes): its completion, for `a`.
    pub fn start_splice(&mut self, a: SockId, b: SockId) -> Option<Completion> {
        let (sa, sb) = (a.slot() as usize, b.slot() as usize);
        let fail = |e: Errno| Some(Completion { id: a, res: Err(e) });
        if sa == sb || self.fd(a).is_none() || self.fd(b).is_none() {
            return fail(Errno(9)); // EBADF
        }
        let sp = match Splice::new(a, b) {
            Ok(sp) => sp,
            Err(e) => return fail(errno(e)),
        };
        self.unsplice(sa);
        self.unsplice(sb);
        if let Some(s) = self.splices.get_mut(sa) {
            *s = Some(sp);
        }
        for slot in [sa, sb] {
            if let Some(at) = self.splice_at.get_mut(slot) {
                *at = sa as u32;
            }
        }
        // The error check finds a socket whose connect failed: the splice
        // then ends at once and resets the other.
        let res = self.pump(
            sa,
            Wake {
                check: true,
                ..Wake::BOTH
            },
        )?;
        // Over as it started: its pipes go, and a later `Close` of its
        // sockets is an ordinary one.
        self.unsplice(sa);
        Some(Completion { id: a, res })
    }

    /// The splice socket `id` is in, by the slot of its `a` socket.
    fn splice_of(&self, id: SockId) -> Option<usize> {
        let at = self.splice_at.get(id.slot() as usize).copied()?;
        self.splices
            .get(at as usize)
            .and_then(Option::as_ref)
            .is_some_and(|sp| sp.a == id || sp.b == id)
            .then_some(at as usize)
    }

    /// Readiness of socket `id` (with the epoll `flags`): pumps its splice,
    /// if it is in one (feeding the translator the completion if the splice
    /// ended), else hands it to [`Translator::handle_ready`]. The driver
    /// calls [`SockExec::run_ops`] afterwards, as after any `handle_*`.
    pub fn ready<S: TxStorage>(
        &mut self,
        t: &mut Translator,
        now: Instant,
        id: SockId,
        flags: epoll::EventFlags,
        tx: &mut TxRing<S>,
    ) {
        let Some(at) = self.splice_of(id) else {
            t.handle_ready(now, id, ready_of(flags), tx);
            return;
        };
        let is_a = self
            .splices
            .get(at)
            .and_then(Option::as_ref)
            .is_some_and(|sp| sp.a == id);
        if let Some(res) = self.pump(at, Wake::of(flags, is_a)) {
            let a = self.splices.get(at).and_then(Option::as_ref).map(|sp| sp.a);
            self.unsplice(at);
            if let Some(a) = a {
                t.handle_completion(now, Completion { id: a, res }, tx);
            }
        }
    }

    /// Pump the splice at `slot` as `wake` asks; `Some` when it is over.
    fn pump(&mut self, slot: usize, wake: Wake) -> Option<Result<Done, Errno>> {
        let sp = self.splices.get_mut(slot)?.as_mut()?;
        let a = self.fds.get(sp.a.slot() as usize)?.as_ref()?;
        let b = self.fds.get(sp.b.slot() as usize)?.as_ref()?;
        sp.pump(a.as_fd(), b.as_fd(), wake)
    }

    /// `Close` of a socket still in a running splice: the splice is given
    /// up (the translator timed it out), so both connections are reset
    /// rather than closed in order; then the splice is forgotten.
    fn abort_splice(&mut self, id: SockId) {
        let Some(at) = self.splice_of(id) else {
            return;
        };
        if let Some(sp) = self.splices.get(at).and_then(Option::as_ref) {
            if let (Some(a), Some(b)) = (self.fd(sp.a), self.fd(sp.b)) {
                splice::abort(a.as_fd(), b.as_fd());
            }
        }
        self.unsplice(at);
    }

    /// Forget the splice `slot` is part of (its pipes close); the sockets
    /// stay.
    fn unsplice(&mut self, slot: usize) {
        let Some(at) = self.splice_at.get(slot).copied() else {
            return;
        };
        if at == NO_SPLICE {
            return;
        }
        if let Some(sp) = self.splices.get_mut(at as usize).and_then(Option::take) {
            for s in [sp.a.slot(), sp.b.slot()] {
                if let Some(x) = self.splice_at.get_mut(s as usize) {
                    *x = NO_SPLICE;
                }
            }
        }
        if let Some(x) = self.splice_at.get_mut(slot) {
            *x = NO_SPLICE;
        }
    }

    /// Apply `outbound` to the sockets opened from now on (see the module
    /// docs).
    pub fn set_outbound(&mut self, outbound: Outbound) {
        self.outbound = outbound;
    }

    /// Whether datagram sockets opened with [`SockFlags::RECVERR`] report
    /// ICMP errors, read by [`SockOp::RecvErr`] ([`Calls::ERRQUEUE`]; tell
    /// the translator: [`Translator::set_host_errors`]).
    pub fn has_errqueue(&self) -> bool {
        self.calls.contains(Calls::ERRQUEUE)
    }

    /// Free send-buffer space of a stream socket; `None` without
    /// [`Calls::OUTQ`] or if a call fails.
    fn free_space(&self, fd: BorrowedFd<'_>) -> Option<u32> {
        self.space(fd).map(|(free, _)| free)
    }

    /// The free send-buffer space and the bytes queued (`SIOCOUTQ`).
    fn space(&self, fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
        if !self.calls.contains(Calls::OUTQ) {
            return None;
        }
        let sndbuf = net::sockopt::socket_send_buffer_size(fd).ok()?;
        let sndbuf = u32::try_from(sndbuf).unwrap_or(u32::MAX);
        let outq = passt_sys::outq(fd).ok()?;
        let free = (sndbuf - sndbuf / 16).saturating_sub(outq);
        if free < sndbuf / 4 {
            // Arms the writability edge for when space frees up.
            let mut pfd = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::OUT,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let _ = rustix::event::poll(&mut pfd, Some(&zero));
        }
        Some((free, outq))
    }

    /// Sockets open.
    pub fn open_count(&self) -> usize {
        self.fds.touched().iter().filter(|f| f.is_some()).count()
    }

    /// Drain the translator's operations, run them, feed completions back,
    /// until none is left. `rx` is the batch of the `handle_tap` call just
    /// made (or [`RxBatch::EMPTY`]).
    pub fn run_ops<S: TxStorage>(
        &mut self,
        t: &mut Translator,
        now: Instant,
        rx: &RxBatch<'_>,
        tx: &mut TxRing<S>,
    ) {
        if self.muted_at.is_some_and(|at| now >= at + UNMUTE_AFTER) {
            self.unmute_all();
        }
        // A new stamp unblocks every socket; on wrap-around, clear them all.
        self.drain = self.drain.wrapping_add(1);
        if self.drain == 0 {
            self.blocked.reset();
            self.drain = 1;
        }
        // An operation taken from the queue that ended a run of sends.
        let mut held = None;
        while let Some(op) = held.take().or_else(|| t.poll_op()) {
            match op {
                SockOp::Recv { id, into } => {
                    let fd = self
                        .fds
                        .get(id.slot() as usize)
                        .and_then(Option::as_ref)
                        .map(AsFd::as_fd);
                    exec_dgram::run_recv(fd, id, into, t, now, tx, &mut self.received);
                }
                SockOp::RecvErr { id, into } => {
                    let fd = self
                        .fds
                        .get(id.slot() as usize)
                        .and_then(Option::as_ref)
                        .map(AsFd::as_fd);
                    exec_dgram::run_recv_err(fd, id, into, t, now, tx, self.has_errqueue());
                }
                SockOp::RecvHeld { id } => {
                    let fd = self
                        .fds
                        .get(id.slot() as usize)
                        .and_then(Option::as_ref)
                        .map(AsFd::as_fd);
                    exec_dgram::run_recv_held(fd, id, t, now, tx, &mut self.held);
                }
                SockOp::Send { id, .. } | SockOp::SendTo { id, .. } if self.is_dgram(id) => {
                    held = self.batch.gather(op, || t.poll_op());
                    self.send_batch(t, now, rx, tx);
                }
                SockOp::Send { id, payload } => {
                    held = self.run_sends(t, now, id, payload, rx, tx);
                }
                op => {
                    if let Some(c) = self.run(op, rx, tx) {
                        t.handle_completion(now, c, tx);
                    }
                }
            }
        }
        if self.muted_count > 0 && self.muted_at.is_none() {
            self.muted_at = Some(now);
        }
    }

    /// When muted listeners are to listen again without a `Close` (see the
    /// module docs, "Out of descriptors"): a deadline for the driver's wait,
    /// after which it calls [`SockExec::run_ops`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.muted_at.map(|at| at + UNMUTE_AFTER)
    }

    /// How many listeners are muted for want of descriptors.
    pub fn muted(&self) -> u32 {
        self.muted_count
    }

    /// Send the gathered run of datagrams and feed back a completion for
    /// each, in order.
    fn send_batch<S: TxStorage>(
        &mut self,
        t: &mut Translator,
        now: Instant,
        rx: &RxBatch<'_>,
        tx: &mut TxRing<S>,
    ) {
        let Some(id) = self.batch.id() else {
            return;
        };
        let n = self.batch.len();
        match self.fds.get(id.slot() as usize).and_then(Option::as_ref) {
            Some(fd) if n > 1 => {
                let slot = id.slot() as usize;
                let gso = self.gso_off.get(slot).is_some_and(|off| !off);
                if gso && self.calls.contains(Calls::UDP_SEGMENT) {
                    let ok = exec_dgram::send_gso(fd.as_fd(), rx, &self.batch, &mut self.sent);
                    if let (false, Some(off)) = (ok, self.gso_off.get_mut(slot)) {
                        *off = true;
                    }
                } else {
                    exec_dgram::send_batch(fd.as_fd(), rx, &self.batch, &mut self.sent);
                }
            }
            Some(fd) => {
                let res = self
                    .batch
                    .msgs()
                    .first()
                    .map(|m| match (rx.span(m.payload), m.dst) {
                        (Some(bytes), None) => exec_dgram::send(fd.as_fd(), bytes),
                        (Some(bytes), Some(dst)) => exec_dgram::send_to(fd.as_fd(), dst, bytes),
                        (None, _) => Err(Errno::EBADF),
                    });
                if let (Some(r), Some(res)) = (self.sent.first_mut(), res) {
                    *r = res;
                }
            }
            None => self.sent.fill(Err(Errno::EBADF)),
        }
        for res in self.sent.iter().take(n).copied() {
            t.handle_completion(now, Completion { id, res }, tx);
        }
        self.batch.clear();
    }

    /// A `Send` to a stream socket, with the `Send`s to the same socket
    /// queued right behind it: one `sendmsg` for all of them, then one
    /// completion each, in order (see the module docs). Returns the
    /// operation that ended the run, if one was taken from the queue.
    fn run_sends<S: TxStorage>(
        &mut self,
        t: &mut Translator,
        now: Instant,
        id: SockId,
        first: crate::buf::RxSpan,
        rx: &RxBatch<'_>,
        tx: &mut TxRing<S>,
    ) -> Option<SockOp> {
        self.forget_space(id);
        let mut spans = [first; SEND_RUN];
        let mut n = 1;
        let mut rest = None;
        while n < SEND_RUN {
            match t.poll_op() {
                Some(SockOp::Send { id: other, payload }) if other == id => {
                    spans[n] = payload;
                    n += 1;
                }
                op => {
                    rest = op;
                    break;
                }
            }
        }
        let spans = &spans[..n];
        let mut iov = [std::io::IoSlice::new(&[]); SEND_RUN];
        let mut resolved = true;
        for (v, s) in iov.iter_mut().zip(spans) {
            match rx.span(*s) {
                Some(bytes) => *v = std::io::IoSlice::new(bytes),
                None => resolved = false,
            }
        }
        let fd = self.fd(id).map(AsFd::as_fd);
        let (Some(fd), true, false, 2..) = (fd, resolved, self.is_blocked(id), n) else {
            // One at a time, each with its own outcome.
            for s in spans {
                let op = SockOp::Send { id, payload: *s };
                if let Some(c) = self.run(op, rx, tx) {
                    t.handle_completion(now, c, tx);
                }
            }
            return rest;
        };
        let total: usize = spans.iter().map(|s| s.len as usize).sum();
        let sent = net::sendmsg(
            fd,
            &iov[..n],
            &mut SendAncillaryBuffer::default(),
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        );
        // As for a single `Send`: only a socket's first run reports the
        // free space (later the translator asks with `Query`).
        let slot = id.slot() as usize;
        let first = self.space_told.get(slot).is_some_and(|t| !t);
        let all_sent = matches!(sent, Ok(k) if k == total);
        let free = (all_sent && first).then(|| self.free_space(fd)).flatten();
        if let (true, Some(t)) = (all_sent, self.space_told.get_mut(slot)) {
            *t = true;
        }
        let (mut left, failed) = match sent {
            Ok(k) => (k, Errno::EAGAIN),
            Err(e) => (0, errno(e)),
        };
        if !matches!(sent, Ok(k) if k == total) && failed == Errno::EAGAIN {
            self.block(id);
        }
        for (i, s) in spans.iter().enumerate() {
            let len = s.len as usize;
            let res = if left >= len && (len > 0 || sent.is_ok()) {
                left -= len;
                match free {
                    Some(free) if i + 1 == n => Ok(Done::Sent {
                        bytes: len as u32,
                        free,
                    }),
                    _ => Ok(Done::Bytes(len as u32)),
                }
            } else if left > 0 {
                let part = left;
                left = 0;
                Ok(Done::Bytes(part as u32))
            } else {
                Err(failed)
            };
            t.handle_completion(now, Completion { id, res }, tx);
        }
        rest
    }

    fn fd(&self, id: SockId) -> Option<&OwnedFd> {
        self.fds.get(id.slot() as usize)?.as_ref()
    }

    /// Run one operation; the completion, for operations that have one.
    /// `Recv` is not run here (its completions are many): `None`.
    pub fn run<S: TxStorage>(
        &mut self,
        op: SockOp,
        rx: &RxBatch<'_>,
        tx: &mut TxRing<S>,
    ) -> Option<Completion> {
        match op {
            SockOp::Open { id, spec } => Some(Completion {
                id,
                res: self.open(id, &spec).map_err(errno),
            }),
            SockOp::Accept { listener, id } => {
                let res = self.accept(listener, id);
                if matches!(
                    res,
                    Err(RErrno::MFILE | RErrno::NFILE | RErrno::NOBUFS | RErrno::NOMEM)
                ) {
                    self.mute(listener);
                }
                Some(Completion {
                    id,
                    res: res.map_err(errno),
                })
            }
            SockOp::Send { id, payload } if self.is_dgram(id) => {
                let res = match (self.fd(id), rx.span(payload)) {
                    (Some(fd), Some(bytes)) => exec_dgram::send(fd.as_fd(), bytes),
                    _ => Err(Errno::EBADF),
                };
                Some(Completion { id, res })
            }
            SockOp::Send { id, payload } => {
                self.forget_space(id);
                let fd = self.fds.get(id.slot() as usize).and_then(Option::as_ref);
                let res = match (fd, rx.span(payload)) {
                    _ if self.is_blocked(id) => Err(Errno::EAGAIN),
                    (Some(fd), Some(bytes)) => {
                        match net::send(fd, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
                            Ok(n) => {
                                if n < bytes.len() {
                                    self.block(id);
                                    Ok(Done::Bytes(n as u32))
                                } else {
                                    let told = self.space_told.get_mut(id.slot() as usize);
                                    let first = told.is_some_and(|t| !std::mem::replace(t, true));
                                    Ok(match first.then(|| self.free_space(fd.as_fd())) {
                                        Some(Some(free)) => Done::Sent {
                                            bytes: n as u32,
                                            free,
                                        },
                                        _ => Done::Bytes(n as u32),
                                    })
                                }
                            }
                            Err(e) => {
                                if e == RErrno::AGAIN {
                                    self.block(id);
                                }
                                Err(errno(e))
                            }
                        }
                    }
                    _ => Err(Errno::EBADF),
                };
                Some(Completion { id, res })
            }
            SockOp::Peek { id, skip, into } => {
                let res = self.peek(id, skip, tx, into).map_err(errno);
                Some(Completion { id, res })
            }
            SockOp::Query { id } if self.splice_of(id).is_some() => {
                let res = self
                    .splice_of(id)
                    .and_then(|at| self.splices.get(at)?.as_ref())
                    .map(Splice::progress)
                    .ok_or(Errno::EBADF);
                Some(Completion { id, res })
            }
            SockOp::Query { id } => {
                let slot = id.slot() as usize;
                if let Some(Some((free, info))) = self.space_idle.get(slot).copied() {
                    let res = Ok(Done::Space { free, info });
                    return Some(Completion { id, res });
                }
                let res = match self.fd(id) {
                    Some(fd) => match self.space(fd.as_fd()) {
                        Some((free, queued)) => {
                            let info = self.tcp_info(fd.as_fd());
                            if queued == 0 {
                                if let Some(s) = self.space_idle.get_mut(slot) {
                                    *s = Some((free, info));
                                }
                            }
                            Ok(Done::Space { free, info })
                        }
                        None => Err(Errno(95)), // EOPNOTSUPP
                    },
                    None => Err(Errno(9)),
                };
                Some(Completion { id, res })
            }
            SockOp::Discard { id, len } => {
                self.discard(id, len);
                None
            }
            SockOp::Shutdown { id, write } => {
                if let Some(fd) = self.fd(id) {
                    let how = if write {
                        net::Shutdown::Write
                    } else {
                        net::Shutdown::Read
                    };
                    if net::shutdown(fd, how).is_err() {
                        self.errors += 1;
                    }
                }
                None
            }
            SockOp::Splice { id, peer } => self.start_splice(id, peer),
            SockOp::Close { id } => {
                self.abort_splice(id);
                self.unsplice(id.slot() as usize);
                if let Some(fd) = self.fds.get_mut(id.slot() as usize).and_then(Option::take) {
                    let _ = epoll::delete(&self.epoll, &fd);
                    drop(fd);
                    self.unmute_all();
                }
                None
            }
            SockOp::SendTo { id, dst, payload } => {
                let res = match (self.fd(id), rx.span(payload)) {
                    (Some(fd), Some(bytes)) => exec_dgram::send_to(fd.as_fd(), dst, bytes),
                    _ => Err(Errno::EBADF),
                };
                Some(Completion { id, res })
            }
            SockOp::SendHeld { id, dst, index } => {
                let res = match self.fd(id) {
                    Some(fd) => exec_dgram::send_held(fd.as_fd(), &self.held, index, dst),
                    None => Err(Errno::EBADF),
                };
                Some(Completion { id, res })
            }
            SockOp::SetTtl { id, ipv6, ttl } => {
                if let Some(fd) = self.fd(id) {
                    if exec_dgram::set_ttl(fd.as_fd(), ipv6, ttl).is_err() {
                        self.errors += 1;
                    }
                }
                None
            }
            // Run by `run_ops` (`exec_dgram::run_recv`, `run_recv_held`,
            // `run_recv_err`).
            SockOp::Recv { .. } | SockOp::RecvHeld { .. } | SockOp::RecvErr { .. } => None,
        }
    }

    /// Stop readiness of a listener that could not accept for want of
    /// descriptors (see the module docs).
    fn mute(&mut self, listener: SockId) {
        let slot = listener.slot() as usize;
        let Some(fd) = self.fds.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if !matches!(self.muted.get(slot), Some(None)) {
            return;
        }
        let data = epoll::EventData::new_u64(token_of(listener));
        if epoll::modify(&self.epoll, fd, data, epoll::EventFlags::empty()).is_ok() {
            if let Some(m) = self.muted.get_mut(slot) {
                *m = Some(listener);
                self.muted_count += 1;
            }
        }
    }

    /// A descriptor was freed: every muted listener listens again (and,
    /// level-triggered, reports its waiting connections at once).
    fn unmute_all(&mut self) {
        self.muted_at = None;
        if self.muted_count == 0 {
            return;
        }
        for (slot, m) in self.muted.touched_mut() {
            let Some(id) = m.take() else {
                continue;
            };
            let Some(fd) = self.fds.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            let data = epoll::EventData::new_u64(token_of(id));
            if epoll::modify(&self.epoll, fd, data, epoll::EventFlags::IN).is_err() {
                self.errors += 1;
            }
        }
        self.muted_count = 0;
    }

    fn is_dgram(&self, id: SockId) -> bool {
        self.dgram.get(id.slot() as usize).copied().unwrap_or(false)
    }

    fn install(&mut self, id: SockId, fd: OwnedFd, listen: bool) -> Result<(), RErrno> {
        let flags = if listen {
            epoll::EventFlags::IN
        } else {
            epoll::EventFlags::IN
                | epoll::EventFlags::OUT
                | epoll::EventFlags::RDHUP
                | epoll::EventFlags::ET
        };
        let slot = self.fds.get_mut(id.slot() as usize).ok_or(RErrno::MFILE)?;
        epoll::add(
            &self.epoll,
            &fd,
            epoll::EventData::new_u64(token_of(id)),
            flags,
        )?;
        if let Some(old) = slot.replace(fd) {
            let _ = epoll::delete(&self.epoll, &old);
        }
        if let Some(t) = self.space_told.get_mut(id.slot() as usize) {
            *t = false;
        }
        self.forget_space(id);
        Ok(())
    }

    /// A `Send` (or a new socket in the slot) may change the free space: the
    /// next `Query` asks the kernel.
    fn forget_space(&mut self, id: SockId) {
        if let Some(s) = self.space_idle.get_mut(id.slot() as usize) {
            *s = None;
        }
    }

    /// What `TCP_INFO` tells of a stream socket's path; `None` without
    /// [`Calls::TCP_INFO`] or if the call fails.
    fn tcp_info(&self, fd: BorrowedFd<'_>) -> Option<TcpInfo> {
        if !self.calls.contains(Calls::TCP_INFO) {
            return None;
        }
        let mut raw = [0u8; TCP_INFO_LEN];
        let len = passt_sys::tcp_info(fd, &mut raw).ok()?;
        tcp_info_from_raw(raw.get(..len).unwrap_or(&raw))
    }

    /// `SO_PEEK_OFF` at `off`; whether it is set.
    fn try_peek_off(&self, fd: BorrowedFd<'_>, off: u32) -> bool {
        match i32::try_from(off) {
            Ok(v) if self.calls.contains(Calls::PEEK_OFF) => passt_sys::set_peek_off(fd, v).is_ok(),
            _ => false,
        }
    }

    fn set_peek_off(&mut self, id: SockId, fd: BorrowedFd<'_>, off: u32) {
        let ok = self.try_peek_off(fd, off);
        if let Some(p) = self.peek_off.get_mut(id.slot() as usize) {
            *p = if ok { off } else { NO_PEEK_OFF };
        }
    }

    fn open(&mut self, id: SockId, spec: &SockSpec) -> Result<Done, RErrno> {
        let spec = &self.outbound.spec(spec);
        let dgram = matches!(spec.proto, Proto::Udp | Proto::Icmp);
        if let Some(d) = self.dgram.get_mut(id.slot() as usize) {
            *d = dgram;
        }
        if let Some(off) = self.gso_off.get_mut(id.slot() as usize) {
            *off = spec.proto != Proto::Udp;
        }
        if dgram {
            let fd = if spec.flags.contains(SockFlags::IN_NS) {
                let made = match &mut self.ns {
                    Some(ns) => ns.socket(spec.proto, spec.ipv6)?,
                    None => return Err(RErrno::OPNOTSUPP),
                };
                exec_dgram::configure(made, spec)?
            } else {
                let out = &self.outbound;
                exec_dgram::open(spec, |fd| out.prepare(fd, spec))?
            };
            if spec.flags.contains(SockFlags::RECVERR) && self.has_errqueue() {
                passt_sys::errqueue::enable(fd.as_fd(), spec.ipv6)?;
            }
            if let Some(p) = self.peek_off.get_mut(id.slot() as usize) {
                *p = NO_PEEK_OFF;
            }
            // Level-triggered, as listeners.
            self.install(id, fd, true)?;
            return Ok(Done::Opened);
        }
        let (family, proto) = (
            if spec.ipv6 {
                AddressFamily::INET6
            } else {
                AddressFamily::INET
            },
            match spec.proto {
                Proto::Tcp => net::ipproto::TCP,
                _ => return Err(RErrno::OPNOTSUPP),
            },
        );
        let fd = if spec.flags.contains(SockFlags::IN_NS) {
            match &mut self.ns {
                Some(ns) => ns.socket(Proto::Tcp, spec.ipv6)?,
                None => return Err(RErrno::OPNOTSUPP),
            }
        } else {
            net::socket_with(
                family,
                SocketType::STREAM,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
                Some(proto),
            )?
        };
        if spec.flags.contains(SockFlags::REUSEADDR) {
            net::sockopt::set_socket_reuseaddr(&fd, true)?;
        }
        if spec.ipv6 && spec.flags.contains(SockFlags::V6ONLY) {
            net::sockopt::set_ipv6_v6only(&fd, true)?;
        }
        self.outbound.prepare(fd.as_fd(), spec)?;
        if let Some(b) = spec.bind {
            net::bind(&fd, &sock_addr(b.to_socket_addr(), spec.ipv6))?;
        }
        let listen = spec.flags.contains(SockFlags::LISTEN);
        if listen {
            net::listen(&fd, BACKLOG)?;
        } else if let Some(p) = spec.peer {
            match net::connect(&fd, &sock_addr(p.to_socket_addr(), spec.ipv6)) {
                Ok(()) | Err(RErrno::INPROGRESS) => {}
                Err(e) => return Err(e),
            }
        }
        if spec.flags.contains(SockFlags::PEEK_OFF) {
            self.set_peek_off(id, fd.as_fd(), 0);
        } else if let Some(p) = self.peek_off.get_mut(id.slot() as usize) {
            *p = NO_PEEK_OFF;
        }
        self.install(id, fd, listen)?;
        Ok(Done::Opened)
    }

    fn accept(&mut self, listener: SockId, id: SockId) -> Result<Done, RErrno> {
        let lfd = self.fd(listener).ok_or(RErrno::BADF)?;
        let (fd, peer) = net::acceptfrom_with(lfd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
        let peer = peer
            .and_then(|a| SocketAddr::try_from(a).ok())
            .ok_or(RErrno::AFNOSUPPORT)?;
        let local =
            SocketAddr::try_from(net::getsockname(&fd)?).map_err(|_| RErrno::AFNOSUPPORT)?;
        self.set_peek_off(id, fd.as_fd(), 0);
        if let Some(d) = self.dgram.get_mut(id.slot() as usize) {
            *d = false;
        }
        self.install(id, fd, false)?;
        Ok(Done::Accepted {
            peer: unmap(peer).into(),
            local: unmap(local).into(),
        })
    }

    fn peek<S: TxStorage>(
        &mut self,
        id: SockId,
        skip: u32,
        tx: &mut TxRing<S>,
        into: crate::buf::TxSlots,
    ) -> Result<Done, RErrno> {
        let slot = id.slot() as usize;
        let fd = self
            .fds
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(RErrno::BADF)?;
        let mut tracked = self.peek_off.get(slot).copied().unwrap_or(NO_PEEK_OFF);
        if tracked != NO_PEEK_OFF && tracked != skip {
            let ok = self.try_peek_off(fd.as_fd(), skip);
            tracked = if ok { skip } else { NO_PEEK_OFF };
        }
        let fallback = tracked == NO_PEEK_OFF;
        let prefix = if fallback { skip as usize } else { 0 };
        if prefix > self.scratch.len() {
            return Err(RErrno::NOBUFS);
        }
        // On the stack: no allocation per read; a small array for the
        // usual read of a few slots, so that its set-up stays cheap.
        let prefix_area = (prefix > 0).then(|| &mut self.scratch[..prefix]);
        let areas = tx.payload_areas(into);
        let got = if into.count < SMALL_IOV as u32 {
            peek_into::<SMALL_IOV>(fd.as_fd(), prefix_area, areas)?
        } else {
            peek_into::<MAX_IOV>(fd.as_fd(), prefix_area, areas)?
        };
        let n = if fallback {
            if got == 0 {
                0
            } else if got <= prefix {
                // Nothing past the skipped bytes: end of file, or not yet?
                let mut pfd = [rustix::event::PollFd::new(
                    fd,
                    rustix::event::PollFlags::RDHUP,
                )];
                let zero = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                let _ = rustix::event::poll(&mut pfd, Some(&zero));
                if pfd[0].revents().contains(rustix::event::PollFlags::RDHUP) && got == prefix {
                    0
                } else {
                    return Err(RErrno::AGAIN);
                }
            } else {
                got - prefix
            }
        } else {
            got
        };
        if let Some(p) = self.peek_off.get_mut(slot) {
            *p = if fallback {
                NO_PEEK_OFF
            } else {
                tracked.wrapping_add(n as u32)
            };
        }
        Ok(Done::Bytes(n as u32))
    }

    fn discard(&mut self, id: SockId, len: u32) {
        let slot = id.slot() as usize;
        let Some(fd) = self.fds.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let mut left = len as usize;
        while left > 0 {
            let chunk = left.min(self.scratch.len());
            match net::recv(
                fd,
                &mut self.scratch[..chunk],
                RecvFlags::TRUNC | RecvFlags::DONTWAIT,
            ) {
                Ok((n, _)) if n > 0 => left -= n.min(left),
                _ => {
                    self.errors += 1;
                    break;
                }
            }
        }
        if let Some(p) = self.peek_off.get_mut(slot) {
            if *p != NO_PEEK_OFF {
                // The kernel moved its offset back by what was removed.
                *p = p.saturating_sub(len - left as u32);
            }
        }
    }
}

/// `recvmsg(MSG_PEEK | MSG_DONTWAIT)` into `prefix` (if any) then `areas`,
/// with an iovec of at most `N` buffers on the stack (areas past it are
/// left out: a shorter read).
fn peek_into<'a, const N: usize>(
    fd: BorrowedFd<'_>,
    prefix: Option<&'a mut [u8]>,
    areas: impl Iterator<Item = &'a mut [u8]>,
) -> Result<usize, RErrno> {
    let mut iov: [IoSliceMut<'a>; N] = std::array::from_fn(|_| IoSliceMut::new(&mut []));
    let mut used = 0;
    for (v, area) in iov.iter_mut().zip(prefix.into_iter().chain(areas)) {
        *v = IoSliceMut::new(area);
        used += 1;
    }
    let iov = iov.get_mut(..used).unwrap_or_default();
    Ok(net::recvmsg(
        fd,
        iov,
        &mut RecvAncillaryBuffer::default(),
        RecvFlags::PEEK | RecvFlags::DONTWAIT,
    )?
    .bytes)
}

/// An address for a socket of the given family: IPv4 addresses on IPv6
/// sockets become v4-mapped.
fn sock_addr(a: SocketAddr, ipv6: bool) -> SocketAddr {
    match (a, ipv6) {
        (SocketAddr::V4(v4), true) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        _ => a,
    }
}

/// A v4-mapped IPv6 address back to IPv4.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_info_fields_come_from_their_offsets() {
        let mut raw = [0u8; TCP_INFO_LEN];
        for (at, v) in [
            (16usize, 1448u32),
            (68, 420),
            (80, 37),
            (144, 90_000),
            (228, 262_144),
        ] {
            raw[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let full = TcpInfo {
            snd_mss: 1448,
            snd_cwnd: 37,
            snd_wnd: Some(262_144),
            notsent: 90_000,
            rtt_us: 420,
        };
        assert_eq!(tcp_info_from_raw(&raw), Some(full));
        // Before Linux 5.4: no peer window.
        let old = tcp_info_from_raw(&raw[..224]);
        assert_eq!(
            old,
            Some(TcpInfo {
                snd_wnd: None,
                ..full
            })
        );
        // Before 4.6 (no unsent count), or nothing at all: no answer.
        assert_eq!(tcp_info_from_raw(&raw[..104]), None);
        for len in 0..84 {
            assert_eq!(tcp_info_from_raw(&raw[..len]), None);
        }
    }
}
