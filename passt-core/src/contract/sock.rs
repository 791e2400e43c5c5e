//! Host sockets as the translator and the driver name them, and the work
//! between them: [`SockId`], the [`SockOp`]s the translator asks for, the
//! [`Completion`]s and [`Ready`] flags that come back, the host's
//! [`Errno`]s and the `TCP_INFO` summary ([`TcpInfo`]).

use crate::addr::{InAny, SockAddrAny};
use crate::buf::{RxSpan, TxSlots};

/// A host socket as the translator names it.
///
/// The driver keeps a table from [`SockId::slot`] to its file descriptor.
/// `gen` changes whenever a slot is reused, so a readiness event or a
/// completion for a socket that was closed meanwhile is recognised and
/// dropped instead of reaching the slot's new owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockId {
    slot: u32,
    gen: u32,
}

impl SockId {
    /// Index into the driver's descriptor table, below
    /// [`crate::config::Limits::max_sockets`].
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Generation of the slot.
    pub fn gen(&self) -> u32 {
        self.gen
    }

    /// Rebuild an id from its parts (drivers that store ids in epoll data).
    pub fn from_parts(slot: u32, gen: u32) -> Self {
        SockId { slot, gen }
    }

    /// Pack into 64 bits (e.g. `epoll_event.u64`).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.gen) << 32) | u64::from(self.slot)
    }

    /// Unpack from [`SockId::to_u64`].
    pub fn from_u64(v: u64) -> Self {
        SockId {
            slot: v as u32,
            gen: (v >> 32) as u32,
        }
    }
}

/// Transport protocol of a host socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `SOCK_STREAM`, `IPPROTO_TCP`.
    Tcp,
    /// `SOCK_DGRAM`, `IPPROTO_UDP`.
    Udp,
    /// Unprivileged echo ("ping") socket: `SOCK_DGRAM`, `IPPROTO_ICMP` or
    /// `IPPROTO_ICMPV6`.
    Icmp,
}

bitflags::bitflags! {
    /// Socket options a [`SockSpec`] asks for.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct SockFlags: u32 {
        /// `SO_REUSEADDR` before binding.
        const REUSEADDR = 1 << 0;
        /// `IPV6_V6ONLY` on an IPv6 socket.
        const V6ONLY = 1 << 1;
        /// Listen instead of connecting (TCP).
        const LISTEN = 1 << 2;
        /// `SO_PEEK_OFF`, so that `Peek` can skip already-sent bytes.
        const PEEK_OFF = 1 << 3;
        /// Report ICMP errors through the error queue (`IP_RECVERR`).
        const RECVERR = 1 << 4;
        /// If binding `bind` fails because its port is taken or privileged
        /// (`EADDRINUSE`, `EACCES`), bind the same address with port 0
        /// instead: UDP flows keep the guest's source port where they can
        /// and fall back to an ephemeral one, in one operation.
        const BIND_FALLBACK = 1 << 5;
        /// Create the socket inside the guest's network namespace (pasta:
        /// the namespace side of a spliced connection) instead of the
        /// driver's own. An executor that cannot fails the `Open` with
        /// `EOPNOTSUPP`.
        const IN_NS = 1 << 6;
    }
}

/// What socket to open: created non-blocking, then bound and/or connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SockSpec {
    /// Transport protocol.
    pub proto: Proto,
    /// Whether the socket is IPv6 (`AF_INET6`) rather than IPv4.
    pub ipv6: bool,
    /// Local address and port to bind, if any.
    pub bind: Option<SockAddrAny>,
    /// Peer to connect to, if any (a non-blocking `connect`).
    pub peer: Option<SockAddrAny>,
    /// Options.
    pub flags: SockFlags,
}

impl SockSpec {
    /// A spec with nothing bound or connected yet.
    pub fn new(proto: Proto, ipv6: bool) -> Self {
        SockSpec {
            proto,
            ipv6,
            bind: None,
            peer: None,
            flags: SockFlags::empty(),
        }
    }
}

/// An ICMP or ICMPv6 error the host received for a socket's datagram
/// (`struct sock_extended_err` of ip(7), `IP_RECVERR`, origin ICMP or
/// ICMPv6), as [`SockOp::RecvErr`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError {
    /// Bytes of the quoted datagram written into the slot.
    pub len: u32,
    /// Whether it came as ICMPv6 (`SO_EE_ORIGIN_ICMP6`), not ICMP.
    pub icmp6: bool,
    /// ICMP or ICMPv6 type (`ee_type`).
    pub icmp_type: u8,
    /// Its code (`ee_code`).
    pub code: u8,
    /// `ee_info`: the next-hop MTU of "fragmentation needed" and "packet
    /// too big".
    pub info: u32,
    /// Who sent the error (`SO_EE_OFFENDER`): a router on the way, or the
    /// destination.
    pub offender: InAny,
}

/// Work for the driver, drained with [`crate::Translator::poll_op`].
///
/// Operations carry no borrows: guest payload is named by [`RxSpan`] into the
/// batch of the `handle_tap` call that queued it, host payload lands in tx
/// ring slots named by [`TxSlots`]. Results come back through
/// [`crate::Translator::handle_completion`]; an operation that cannot fail
/// (`Discard`, `Close`) needs no completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SockOp {
    /// Create, configure, bind and/or connect a socket, and register it for
    /// readiness with `id`. Completes with [`Done::Opened`].
    Open {
        /// The new socket's id.
        id: SockId,
        /// What to open.
        spec: SockSpec,
    },
    /// Accept one connection from `listener` as `id`. Completes with
    /// [`Done::Accepted`].
    Accept {
        /// The listening socket.
        listener: SockId,
        /// Id for the accepted socket.
        id: SockId,
    },
    /// Write guest payload to a connected socket. Completes with
    /// [`Done::Bytes`] (how much the kernel took). A driver may run
    /// consecutive `Send`s (or `SendTo`s) on one datagram socket together
    /// and complete them in order afterwards ([`crate::batch`]).
    Send {
        /// The socket.
        id: SockId,
        /// The payload, in the current rx batch.
        payload: RxSpan,
    },
    /// Send one datagram to `dst`. Completes with [`Done::Bytes`].
    SendTo {
        /// The socket.
        id: SockId,
        /// Destination.
        dst: SockAddrAny,
        /// The payload, in the current rx batch.
        payload: RxSpan,
    },
    /// Read without dequeuing (`MSG_PEEK`), skipping `skip` bytes already
    /// sent to the guest, into the payload areas of `into`. Completes with
    /// [`Done::Bytes`].
    Peek {
        /// The socket.
        id: SockId,
        /// Bytes to skip from the head of the receive queue.
        skip: u32,
        /// Where the bytes go.
        into: TxSlots,
    },
    /// Receive datagrams into the payload areas of `into`, one per slot,
    /// in slot order (`recvmmsg`, or one `recvfrom` per slot, with
    /// `MSG_TRUNC` so that an oversized datagram reports its real length).
    ///
    /// Unlike other operations, a `Recv` gets **several completions**, fed
    /// back in this order before the next operation runs: one
    /// [`Done::Datagram`] per datagram received (its length and sender),
    /// then exactly one final completion that ends the operation:
    /// `Ok(`[`Done::Datagrams`]`)` with the number reported, or, if the
    /// first receive already failed, `Err(errno)` (`EAGAIN` when nothing
    /// was queued, `ECONNREFUSED` for an ICMP port unreachable recorded on
    /// a connected socket). An error after some datagrams ends the batch
    /// with `Ok`; the socket reports it again through readiness.
    ///
    /// The translator writes the frame headers in front of each payload
    /// after its completion and publishes the slot; slots not filled are
    /// given back at the final completion. On a ping socket a datagram is
    /// the whole ICMP message.
    Recv {
        /// The socket.
        id: SockId,
        /// Where the datagrams go.
        into: TxSlots,
    },
    /// Receive datagrams into the executor's own *held* buffer instead of
    /// tx slots: datagrams that go from one socket to another and never
    /// become frames (pasta's `-U` relay, see [`crate::udp`]). Completes
    /// as [`SockOp::Recv`] does: one [`Done::Datagram`] per datagram (its
    /// length and sender), then one final [`Done::Datagrams`] or error.
    /// The datagrams stay held, numbered from 0 in completion order, until
    /// the next `RecvHeld` runs; [`SockOp::SendHeld`] sends them on.
    RecvHeld {
        /// The socket.
        id: SockId,
    },
    /// Send datagram `index` of the last [`SockOp::RecvHeld`] on socket
    /// `id`: to `dst`, or to its connected peer without one. Completes for
    /// `id` with [`Done::Bytes`], or the error of the send (`EBADF` when
    /// the executor has no such socket or no such held datagram, `EMSGSIZE`
    /// for one too long to have been held whole).
    SendHeld {
        /// The socket to send on.
        id: SockId,
        /// Destination, for an unconnected socket.
        dst: Option<SockAddrAny>,
        /// Which held datagram.
        index: u32,
    },
    /// Read one ICMP error the host reported for datagram or ping socket
    /// `id` (opened with [`SockFlags::RECVERR`]) from its error queue
    /// (`recvmsg(MSG_ERRQUEUE)`): the part of the offending datagram the
    /// reporting router quoted after the transport header (for a ping
    /// socket, the echo request from its ICMP header on) goes into the
    /// payload area of the one slot of `into`, the rest into the
    /// completion: [`Done::HostError`], or `Err(EAGAIN)` when the queue is
    /// empty, `Err(EOPNOTSUPP)` from an executor that cannot read it.
    RecvErr {
        /// The socket.
        id: SockId,
        /// One slot for the quoted bytes.
        into: TxSlots,
    },
    /// Set the IPv4 TTL (`IP_TTL`) or IPv6 hop limit
    /// (`IPV6_UNICAST_HOPS`) of datagram or ping socket `id` for what it
    /// sends next: the guest's, queued when it changes. No completion.
    SetTtl {
        /// The socket.
        id: SockId,
        /// An IPv6 socket.
        ipv6: bool,
        /// The TTL or hop limit.
        ttl: u8,
    },
    /// Dequeue `len` bytes the guest acknowledged. No completion.
    Discard {
        /// The socket.
        id: SockId,
        /// Bytes to drop from the head of the receive queue.
        len: u32,
    },
    /// Report a stream socket's free send-buffer space. Completes with
    /// [`Done::Space`] (or an error if the executor cannot tell). For the
    /// `id` of a running [`SockOp::Splice`], the splice's progress instead:
    /// [`Done::Splicing`] (how the translator times out idle splices).
    Query {
        /// The socket.
        id: SockId,
    },
    /// `shutdown(SHUT_WR)` (or `SHUT_RD` with `write: false`). No completion.
    Shutdown {
        /// The socket.
        id: SockId,
        /// Shut the write side (else the read side).
        write: bool,
    },
    /// Move bytes both ways between two connected stream sockets inside
    /// the host kernel (pasta's loopback fast path: `splice(2)` through a
    /// pipe pair per direction), until both directions reached end of file
    /// (each end of file is passed on as `shutdown(SHUT_WR)` of the other
    /// socket) or one side failed (the other is then reset). From now on
    /// the executor, not the translator, handles the readiness of both
    /// sockets. Completes **once, when the splice ends**, for `id`:
    /// [`Done::Spliced`], or `Err` (the error that ended it, or why it
    /// could not start). A socket with a pending error (a refused
    /// connect) ends it at once with that error, the other connection
    /// reset. Both sockets stay open until `Close`d; a `Close`
    /// of either while the splice runs aborts it: both connections are
    /// reset (`SO_LINGER` of zero), as for a timeout.
    Splice {
        /// One socket (the accepted one).
        id: SockId,
        /// The other (the one connected for it).
        peer: SockId,
    },
    /// Close the socket and forget `id`. No completion.
    Close {
        /// The socket.
        id: SockId,
    },
}

/// An error number from the host, as the driver got it (Linux values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// Try again: nothing to read, no room to write.
    pub const EAGAIN: Errno = Errno(11);
    /// Permission denied (e.g. binding a low port, ping sockets not allowed).
    pub const EACCES: Errno = Errno(13);
    /// The system's file table is full.
    pub const ENFILE: Errno = Errno(23);
    /// The process is out of file descriptors.
    pub const EMFILE: Errno = Errno(24);
    /// Broken pipe: the peer closed for reading.
    pub const EPIPE: Errno = Errno(32);
    /// Address already in use.
    pub const EADDRINUSE: Errno = Errno(98);
    /// No buffer space available.
    pub const ENOBUFS: Errno = Errno(105);
    /// Network unreachable.
    pub const ENETUNREACH: Errno = Errno(101);
    /// Connection reset by the peer.
    pub const ECONNRESET: Errno = Errno(104);
    /// Connection timed out.
    pub const ETIMEDOUT: Errno = Errno(110);
    /// Connection refused (for UDP: an ICMP port unreachable came back).
    pub const ECONNREFUSED: Errno = Errno(111);
    /// Message too long for the socket or the path.
    pub const EMSGSIZE: Errno = Errno(90);
    /// Bad file descriptor (an operation on a socket the driver does not
    /// have, e.g. after a failed `Open`).
    pub const EBADF: Errno = Errno(9);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// Operation not supported (an executor without the call asked for).
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// Host unreachable.
    pub const EHOSTUNREACH: Errno = Errno(113);
    /// A non-blocking connect is under way.
    pub const EINPROGRESS: Errno = Errno(115);
}

/// What a successful operation gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Done {
    /// The socket exists (a connect may still be in progress: its outcome
    /// arrives as readiness).
    Opened,
    /// A connection was accepted from `peer`.
    Accepted {
        /// The remote end.
        peer: SockAddrAny,
        /// Our end.
        local: SockAddrAny,
    },
    /// Bytes sent, peeked or received.
    Bytes(u32),
    /// Bytes a stream `Send` wrote, with the socket's free send-buffer
    /// space after the write (send buffer size less the bytes queued in
    /// it), in bytes. An executor that cannot tell the free space completes
    /// `Send` with [`Done::Bytes`] instead.
    Sent {
        /// Bytes written.
        bytes: u32,
        /// Free send-buffer space after the write.
        free: u32,
    },
    /// The answer to [`SockOp::Query`]: free send-buffer space, in bytes,
    /// and what `TCP_INFO` tells of the path, if the executor read it.
    Space {
        /// Free send-buffer space.
        free: u32,
        /// The connection's path, from `TCP_INFO`.
        info: Option<TcpInfo>,
    },
    /// One datagram of a [`SockOp::Recv`], in the payload area of the next
    /// slot of its range.
    Datagram {
        /// Its length: the bytes written, or more if it did not fit the
        /// payload area (`MSG_TRUNC`), in which case it is dropped.
        len: u32,
        /// Who sent it (for a ping socket, the echo reply's source; the
        /// port is then 0).
        from: SockAddrAny,
    },
    /// The answer to [`SockOp::RecvErr`]: an ICMP error from the host's
    /// error queue.
    HostError(HostError),
    /// The end of a [`SockOp::Recv`]: this many [`Done::Datagram`]
    /// completions came before.
    Datagrams {
        /// Datagrams received.
        count: u32,
    },
    /// The progress of a running [`SockOp::Splice`], the answer to
    /// [`SockOp::Query`] for its `id`.
    Splicing {
        /// Bytes moved both ways so far.
        moved: u64,
        /// One direction reached end of file and was passed on (half-closed).
        half_closed: bool,
    },
    /// The end of a [`SockOp::Splice`]: both directions closed cleanly.
    Spliced {
        /// Bytes moved from `id` to `peer`.
        to_peer: u64,
        /// Bytes moved from `peer` to `id`.
        from_peer: u64,
    },
}

/// What the kernel's `TCP_INFO` (Linux `struct tcp_info`) tells about a
/// host connection's path: the fields the window offered to the guest
/// uses ([`crate::tcp`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Sender MSS (`tcpi_snd_mss`), bytes.
    pub snd_mss: u32,
    /// Congestion window (`tcpi_snd_cwnd`), segments.
    pub snd_cwnd: u32,
    /// The peer's receive window, scaled (`tcpi_snd_wnd`, Linux 5.4 and
    /// later), bytes; `None` where the kernel does not report it.
    pub snd_wnd: Option<u32>,
    /// Bytes written but not yet sent (`tcpi_notsent_bytes`).
    pub notsent: u32,
    /// Smoothed round-trip time (`tcpi_rtt`), microseconds; 0 if unknown.
    pub rtt_us: u32,
}

/// The result of one [`SockOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The socket the operation was for.
    pub id: SockId,
    /// What it gave.
    pub res: Result<Done, Errno>,
}

bitflags::bitflags! {
    /// Readiness of a host socket, as the driver's poller reported it.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Ready: u8 {
        /// Data (or a connection, or EOF) to read.
        const READABLE = 1 << 0;
        /// Room to write; a pending connect finished.
        const WRITABLE = 1 << 1;
        /// The peer closed (`EPOLLRDHUP`/`EPOLLHUP`).
        const HANGUP = 1 << 2;
        /// An error is pending (`EPOLLERR`).
        const ERROR = 1 << 3;
    }
}
