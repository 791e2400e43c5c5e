//! The [`Translator`]: frames, readiness, completions and time in; frames,
//! socket operations, events and the next deadline out.
//!
//! See the crate documentation for the model and the driver contract. This
//! file holds the public vocabulary of that contract ([`SockId`], [`SockOp`],
//! [`Completion`], [`Ready`], [`Event`], [`DropReason`], [`Stats`]) and the
//! ingress dispatcher that hands each frame to the module that owns it.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::{InAny, MacAddr, SockAddrAny};
use crate::buf::{Offload, OffloadFlags, RxBatch, RxSpan, TxRing, TxSlots, TxStorage};
use crate::config::{Config, ConfigError, Services};
use crate::l2::{self, echo, L2Context, Outcome};
use crate::lazy::{LazyArray, SlotAlloc};
use crate::queue::FixedQueue;
use crate::seen::GuestAddrs;
use crate::tcp;
use crate::time::Instant;
use crate::wire::arp::ArpRepr;
use crate::wire::checksum::{pseudo_header_v4, pseudo_header_v6};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmpv6::Icmpv6Repr;
use crate::wire::ipv4::{option_kind as ipv4_opt, Ipv4Repr};
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::ndp::validate as ndp_validate;
use crate::wire::tcp::TcpRepr;
use crate::wire::udp::UdpRepr;
use crate::wire::{ip_proto, WireError};

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

/// Work for the driver, drained with [`Translator::poll_op`].
///
/// Operations carry no borrows: guest payload is named by [`RxSpan`] into the
/// batch of the `handle_tap` call that queued it, host payload lands in tx
/// ring slots named by [`TxSlots`]. Results come back through
/// [`Translator::handle_completion`]; an operation that cannot fail
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

/// Why a frame (or an input) was dropped; each has a counter in [`Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than its headers or length fields say.
    Truncated,
    /// Length fields that disagree.
    BadLength,
    /// A checksum that does not verify.
    BadChecksum,
    /// A field value the protocol forbids.
    Malformed,
    /// A protocol or variant we don't translate.
    Unsupported,
    /// An IP fragment (never reassembled).
    Fragment,
    /// Too many VLAN tags, options or extension headers.
    TooMany,
    /// A source MAC address that is not unicast.
    BadSourceMac,
    /// The frame's address family is turned off (`-4`/`-6`).
    FamilyDisabled,
    /// No translation for this protocol yet in this build.
    NoHandler,
    /// The tx ring had no room for a reply.
    TxFull,
    /// The operation queue was full.
    OpQueueFull,
    /// A completion or readiness for a socket that no longer exists.
    StaleSocket,
    /// No room for a new flow: the table (or the socket slots) is full of
    /// flows active too recently to be evicted.
    FlowTableFull,
    /// A host datagram larger than the guest's MTU allows (see
    /// [`crate::udp`]).
    TooBig,
    /// A protocol turned off by `--no-tcp`, `--no-udp` or `--no-icmp`.
    ProtocolDisabled,
}

impl DropReason {
    /// Number of reasons (the length of [`Stats::drops`]).
    pub const COUNT: usize = DropReason::ProtocolDisabled as usize + 1;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadLength,
        DropReason::BadChecksum,
        DropReason::Malformed,
        DropReason::Unsupported,
        DropReason::Fragment,
        DropReason::TooMany,
        DropReason::BadSourceMac,
        DropReason::FamilyDisabled,
        DropReason::NoHandler,
        DropReason::TxFull,
        DropReason::OpQueueFull,
        DropReason::StaleSocket,
        DropReason::FlowTableFull,
        DropReason::TooBig,
        DropReason::ProtocolDisabled,
    ];
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::BadLength => DropReason::BadLength,
            WireError::BadChecksum => DropReason::BadChecksum,
            WireError::Malformed => DropReason::Malformed,
            WireError::Fragment => DropReason::Fragment,
            WireError::TooMany => DropReason::TooMany,
            WireError::Unsupported | WireError::BufferTooSmall => DropReason::Unsupported,
        }
    }
}

/// Something the driver may log or count, drained with
/// [`Translator::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A frame from the guest was dropped.
    Dropped {
        /// Why.
        reason: DropReason,
        /// Its length.
        len: u32,
    },
    /// Something from the host side was dropped: a datagram a host socket
    /// delivered (too big for a frame, no flow for it, no room in the tx
    /// ring or the operation queue), or a ping reply. Counted in
    /// [`Stats::drops`] too; one event per drop, so that a driver's debug
    /// log names the reason of each.
    HostDropped {
        /// Why.
        reason: DropReason,
    },
    /// The guest's MAC address was learned or changed.
    GuestMac(MacAddr),
    /// The guest's IPv4 address was seen for the first time (the source
    /// of its packets; later changes are used but not reported).
    GuestAddr4(Ipv4Addr),
    /// The guest's IPv6 address, link-local or not, was seen for the first
    /// time (the source of its packets; later changes are used but not
    /// reported).
    GuestAddr6(Ipv6Addr),
    /// Opening a ping socket was refused (`EACCES`/`EPERM`): the host's
    /// `net.ipv4.ping_group_range` does not include our group, so ICMP
    /// echo requests of this family are dropped. Reported once per family.
    PingDenied {
        /// Whether it was an ICMPv6 socket.
        ipv6: bool,
    },
}

/// Counters, always on, read with [`Translator::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received from the guest.
    pub frames_in: u64,
    /// Frames queued to the guest.
    pub frames_out: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// DHCP messages answered.
    pub dhcp_replies: u64,
    /// NDP messages answered (neighbour and router advertisements sent in
    /// reply to solicitations).
    pub ndp_replies: u64,
    /// Unsolicited router advertisements sent.
    pub ra_sent: u64,
    /// DHCPv6 messages answered.
    pub dhcpv6_replies: u64,
    /// ICMPv6 echo requests to our own link-local address answered
    /// ([`crate::l2::echo`]).
    pub echo_replies: u64,
    /// Frames dropped, by [`DropReason`] (index with `reason as usize`).
    pub drops: [u64; DropReason::COUNT],
    /// Events that did not fit the event queue.
    pub events_lost: u64,
    /// UDP flows and datagrams.
    pub udp: crate::udp::UdpStats,
    /// ICMP and ICMPv6 echo.
    pub icmp: crate::icmp::IcmpStats,
}

impl Stats {
    /// The counter for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

/// Which module a socket belongs to, and which of its objects, so that
/// readiness and completions reach their flow in O(1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum SockOwner {
    /// A free slot: no owner recorded.
    #[default]
    Unowned,
    /// The socket of TCP connection slot `n` ([`crate::tcp`]).
    TcpConn(u32),
    /// TCP listening socket `n` of a forwarded port ([`crate::tcp`]).
    TcpListener(u32),
    /// A socket being accepted from TCP listener `n` ([`crate::tcp`]).
    TcpAccept(u32),
    /// The socket of UDP flow slot `n` ([`crate::udp`]).
    UdpFlow(u32),
    /// UDP listening socket `n` of a forwarded port ([`crate::udp`]).
    UdpListener(u32),
    /// The ping socket of echo flow slot `n` ([`crate::icmp`]).
    Echo(u32),
}

/// Socket slots with generations; room for the socket limit is reserved
/// once, and only the slots up to the most sockets open at once are
/// written ([`crate::lazy`]).
pub(crate) struct SockSlots {
    gens: LazyArray<u32>,
    live: LazyArray<bool>,
    owner: LazyArray<SockOwner>,
    /// Lowest slots first, so descriptor tables stay dense.
    free: SlotAlloc,
}

impl SockSlots {
    fn new(max: u32) -> Self {
        SockSlots {
            gens: LazyArray::new(max as usize, || 0),
            live: LazyArray::new(max as usize, || false),
            owner: LazyArray::new(max as usize, || SockOwner::Unowned),
            free: SlotAlloc::new(max),
        }
    }

    /// A new id whose readiness and completions go to `owner`.
    pub(crate) fn alloc_owned(&mut self, owner: SockOwner) -> Option<SockId> {
        let slot = self.free.take()?;
        let i = slot as usize;
        self.gens[i] = self.gens[i].wrapping_add(1);
        self.live[i] = true;
        self.owner[i] = owner;
        Some(SockId {
            slot,
            gen: self.gens[i],
        })
    }

    /// Record a new owner for a live socket (a no-op if `id` is stale).
    pub(crate) fn set_owner(&mut self, id: SockId, owner: SockOwner) {
        if self.is_live(id) {
            if let Some(o) = self.owner.get_mut(id.slot as usize) {
                *o = owner;
            }
        }
    }

    /// The owner of a live socket; `None` if `id` is stale.
    pub(crate) fn owner(&self, id: SockId) -> Option<SockOwner> {
        self.is_live(id)
            .then(|| self.owner.get(id.slot as usize).copied())
            .flatten()
    }

    pub(crate) fn is_live(&self, id: SockId) -> bool {
        let i = id.slot as usize;
        self.live.get(i).copied().unwrap_or(false) && self.gens.get(i) == Some(&id.gen)
    }

    pub(crate) fn release(&mut self, id: SockId) {
        if self.is_live(id) {
            self.live[id.slot as usize] = false;
            self.free.release(id.slot);
        }
    }
}

/// What a transport handler gets besides its own state: the shared socket
/// slots, queues and counters of the [`Translator`] (built by `l4cx!`).
pub(crate) struct L4Cx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) now: Instant,
    pub(crate) guest_mac: Option<MacAddr>,
    /// The guest's source addresses as seen (where inbound flows go).
    pub(crate) seen: &'a GuestAddrs,
    pub(crate) socks: &'a mut SockSlots,
    pub(crate) ops: &'a mut FixedQueue<SockOp>,
    pub(crate) events: &'a mut FixedQueue<Event>,
    pub(crate) stats: &'a mut Stats,
}

impl L4Cx<'_> {
    /// Queue an operation.
    pub(crate) fn op(&mut self, op: SockOp) -> Result<(), DropReason> {
        self.ops.push(op).map_err(|_| DropReason::OpQueueFull)
    }

    /// Report an event (counted as lost if the queue is full).
    pub(crate) fn event(&mut self, e: Event) {
        if self.events.push(e).is_err() {
            self.stats.events_lost += 1;
        }
    }

    /// Count a drop of something other than a guest frame (host
    /// datagrams), and report it ([`Event::HostDropped`]).
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.stats.drops[reason as usize] += 1;
        self.event(Event::HostDropped { reason });
    }

    /// Where frames to the guest go: its MAC once known, else broadcast.
    pub(crate) fn guest_mac(&self) -> MacAddr {
        self.guest_mac.unwrap_or(MacAddr::BROADCAST)
    }
}

/// A transport packet from the guest, as the dispatcher hands it on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct L4Packet<'a> {
    /// Source address (IPv4 v4-mapped).
    pub(crate) src: InAny,
    /// Destination address.
    pub(crate) dst: InAny,
    /// Transport protocol ([`ip_proto`]).
    pub(crate) protocol: u8,
    /// The transport header and payload.
    pub(crate) l4: &'a [u8],
    /// Where `l4` lies in the batch, for operations naming guest payload.
    pub(crate) span: RxSpan,
    /// Whether checksums the dispatcher did not check must be verified.
    pub(crate) verify: bool,
    /// The guest's IPv4 TTL or IPv6 hop limit, carried to the host socket.
    pub(crate) ttl: u8,
}

impl L4Packet<'_> {
    /// The span of `sub`, a sub-slice of [`L4Packet::l4`].
    pub(crate) fn span_of(&self, sub: &[u8]) -> Option<RxSpan> {
        let off = (sub.as_ptr() as usize).checked_sub(self.l4.as_ptr() as usize)?;
        if off.checked_add(sub.len())? > self.l4.len() {
            return None;
        }
        Some(RxSpan {
            frame: self.span.frame,
            offset: self.span.offset.checked_add(u32::try_from(off).ok()?)?,
            len: u32::try_from(sub.len()).ok()?,
        })
    }
}

/// The span of `l4` within frame `i` (`l4` being a sub-slice of `frame`).
fn l4_span(i: usize, frame: &[u8], l4: &[u8]) -> RxSpan {
    let off = (l4.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize);
    RxSpan {
        frame: i as u32,
        offset: off as u32,
        len: l4.len() as u32,
    }
}

/// An [`L4Cx`] over the translator's fields, borrowed disjointly from the
/// transport module being called.
macro_rules! l4cx {
    ($t:expr) => {
        L4Cx {
            config: &$t.config,
            now: $t.now,
            guest_mac: $t.guest_mac,
            seen: &$t.seen,
            socks: &mut $t.socks,
            ops: &mut $t.ops,
            events: &mut $t.events,
            stats: &mut $t.stats,
        }
    };
}

/// The translator between a guest's Layer-2 link and host Layer-4 sockets.
///
/// # Contract
/// After any `handle_*` call, the driver drains [`Translator::poll_op`] and
/// runs every operation (feeding results back through
/// [`Translator::handle_completion`], whose own operations are drained the
/// same way) **before** it reuses the rx arena of the last batch or writes out
/// the tx ring. It writes out committed tx frames in order, drains
/// [`Translator::poll_event`] when convenient, and calls
/// [`Translator::handle_timeout`] once [`Translator::poll_timeout`] has passed.
///
/// No call blocks, reads a clock, or makes a syscall; after `new`, no call
/// allocates.
pub struct Translator {
    config: Config,
    guest_mac: Option<MacAddr>,
    /// The guest's source addresses ([`crate::seen`]).
    seen: GuestAddrs,
    now: Instant,
    ops: FixedQueue<SockOp>,
    events: FixedQueue<Event>,
    socks: SockSlots,
    stats: Stats,
    dhcp: l2::dhcp::Dhcp,
    ndp: l2::ndp::Ndp,
    dhcpv6: l2::dhcpv6::Dhcpv6,
    udp: crate::udp::Udp,
    icmp: crate::icmp::Icmp,
    tcp: tcp::Tcp,
}

/// The TCP handler's context, built from the translator's disjoint fields.
macro_rules! tcp_cx {
    ($t:expr) => {
        tcp::Cx {
            config: &$t.config,
            now: $t.now,
            guest_mac: $t.guest_mac,
            seen: &$t.seen,
            socks: &mut $t.socks,
            ops: &mut $t.ops,
        }
    };
}

impl Translator {
    /// Check `config` and allocate every table and queue it sizes.
    ///
    /// # Errors
    /// The [`ConfigError`] that makes the configuration unusable.
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let l = config.limits;
        let mut t = Translator {
            guest_mac: config.guest_mac,
            seen: GuestAddrs::default(),
            now,
            ops: FixedQueue::new(l.op_queue as usize),
            events: FixedQueue::new(l.event_queue as usize),
            socks: SockSlots::new(l.max_sockets),
            stats: Stats::default(),
            dhcp: l2::dhcp::Dhcp::new(&config),
            ndp: l2::ndp::Ndp::new(&config, now),
            dhcpv6: l2::dhcpv6::Dhcpv6::new(&config),
            udp: crate::udp::Udp::new(&config),
            icmp: crate::icmp::Icmp::new(&config),
            tcp: tcp::Tcp::new(&config),
            config,
        };
        // Listening sockets of forwarded ports: the driver drains these
        // `Open`s before its first wait.
        let mut cx = tcp_cx!(t);
        t.tcp.open_listeners(&mut cx);
        Ok(t)
    }

    /// `auto` port forwarding (`-t auto`, `-u auto`): the driver found
    /// `port` bound (`on`) or no longer bound on the guest's side, and asks
    /// for the host's listening sockets of that forwarded port to be opened
    /// or closed. The translator queues the listeners' [`SockOp::Open`]s (a
    /// failure completes as for static forwards, counted in
    /// [`tcp::TcpStats::listen_failed`] / [`crate::udp::UdpStats`]) or
    /// their [`SockOp::Close`]s; the driver runs them like any operation.
    ///
    /// Only ports the spec forwards count (`config.fwd.tcp_in` /
    /// `udp_in`, whichever mode); a port already in the state asked for,
    /// or a protocol other than TCP and UDP, is ignored. Returns whether
    /// operations were queued.
    ///
    /// For forwarding from the guest's side to the host see
    /// [`Translator::set_auto_out_port`] (`-T`, `-U`).
    pub fn set_auto_port(&mut self, proto: Proto, port: u16, on: bool) -> bool {
        match proto {
            Proto::Tcp => {
                let mut cx = tcp_cx!(self);
                self.tcp.set_auto_port(&mut cx, port, on, false)
            }
            Proto::Udp => {
                self.udp
                    .set_auto_port(&self.config, &mut self.socks, &mut self.ops, port, on)
            }
            _ => false,
        }
    }

    /// Say whether the driver's executor reads sockets' error queues
    /// ([`SockOp::RecvErr`], [`SockFlags::RECVERR`]). When it does, UDP
    /// and echo flows pass the ICMP errors the host receives on to the
    /// guest (time exceeded, unreachable, packet too big: traceroute), see
    /// [`crate::udp`]; without, only port unreachable comes back, from the
    /// `ECONNREFUSED` of a connected UDP socket. Set it before traffic.
    pub fn set_host_errors(&mut self, on: bool) {
        self.udp.host_errors = on;
        self.icmp.host_errors = on;
    }

    /// `auto` forwarding from the guest's side to the host (`-T auto`,
    /// `-U auto`): the driver found the target of forwarded `port` bound on
    /// the host (`on`) or no longer bound, and asks for the namespace's
    /// sockets of `port` to be opened or closed. They are made inside the
    /// namespace ([`SockFlags::IN_NS`]) on its loopback, one per family
    /// (IPv6 may fail there: one family is enough). For TCP, what they
    /// accept is spliced to the host's loopback (see [`crate::tcp`]); for
    /// UDP, each sender's datagrams go to the host's loopback from a host
    /// socket of its own, and the replies back (see [`crate::udp`]);
    /// closing a UDP port also ends its flows. Otherwise as
    /// [`Translator::set_auto_port`]: only ports `config.fwd.tcp_out` /
    /// `udp_out` forward count, a failure is counted in
    /// [`tcp::TcpStats::listen_failed`] / [`crate::udp::UdpStats`]; `false`
    /// for other protocols. Returns whether operations were queued.
    pub fn set_auto_out_port(&mut self, proto: Proto, port: u16, on: bool) -> bool {
        match proto {
            Proto::Tcp => {
                let mut cx = tcp_cx!(self);
                self.tcp.set_auto_port(&mut cx, port, on, true)
            }
            Proto::Udp => self.udp.set_auto_out_port(&mut l4cx!(self), port, on),
            _ => false,
        }
    }

    /// Whether a namespace listener of `-T` port `port` is open (or being
    /// opened) in either family: `false` once all failed or were closed.
    pub fn tcp_out_listening(&self, port: u16) -> bool {
        self.tcp.out_listening(port)
    }

    /// Whether a namespace socket of `-U` port `port` is open (or being
    /// opened) in either family: `false` once all failed or were closed.
    pub fn udp_out_listening(&self, port: u16) -> bool {
        self.udp.out_listening(port)
    }

    /// Counters of the TCP handler.
    pub fn tcp_stats(&self) -> &tcp::TcpStats {
        &self.tcp.stats
    }

    /// TCP connections in the flow table.
    pub fn tcp_flows(&self) -> usize {
        self.tcp.len()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The guest's MAC address, once known.
    pub fn guest_mac(&self) -> Option<MacAddr> {
        self.guest_mac
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Take in a batch of frames from the guest.
    ///
    /// Local services (ARP, DHCP, NDP, DHCPv6) answer into `tx`;
    /// transport packets become socket operations. Work bound: one pass over
    /// the batch, a constant amount of work per frame.
    pub fn handle_tap<S: TxStorage>(&mut self, now: Instant, rx: &RxBatch<'_>, tx: &mut TxRing<S>) {
        self.now = now;
        for (i, frame, offload) in rx.iter() {
            self.stats.frames_in += 1;
            let before = tx.len();
            if let Err(reason) = self.tap_frame(rx, i, frame, offload, tx) {
                self.drop_frame(reason, frame.len());
            }
            self.stats.frames_out += (tx.len().saturating_sub(before)) as u64;
        }
        self.flush_l4(tx);
    }

    /// Let the transport handlers emit deferred segments and start reads:
    /// the last thing of every `handle_*` call (see [`crate::tcp`]).
    fn flush_l4<S: TxStorage>(&mut self, tx: &mut TxRing<S>) {
        let before = tx.len();
        let mut cx = tcp_cx!(self);
        self.tcp.flush(&mut cx, tx);
        self.stats.frames_out += (tx.len().saturating_sub(before)) as u64;
    }

    /// Parse a TCP segment and hand it to the TCP handler.
    #[allow(clippy::too_many_arguments)]
    fn tcp_segment(
        &mut self,
        rx: &RxBatch<'_>,
        i: usize,
        src: InAny,
        dst: InAny,
        pseudo: u32,
        verify: bool,
        l4: &[u8],
    ) -> Result<(), DropReason> {
        if !self.config.services.contains(Services::TCP) {
            return Err(DropReason::ProtocolDisabled);
        }
        let (seg, payload) = TcpRepr::parse(l4, verify.then_some(pseudo))?;
        let p = tcp::TcpIn {
            src,
            dst,
            seg,
            payload,
            span: rx.span_of(i, payload),
        };
        let mut cx = tcp_cx!(self);
        self.tcp.handle_segment(&mut cx, &p)
    }

    /// Dispatch one guest frame to the module that owns it.
    fn tap_frame<S: TxStorage>(
        &mut self,
        rx: &RxBatch<'_>,
        i: usize,
        frame: &[u8],
        offload: Offload,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason> {
        let (eth, payload) = EthernetRepr::parse(frame)?;
        if eth.src.is_multicast() || eth.src.is_zero() {
            return Err(DropReason::BadSourceMac);
        }
        if self.guest_mac != Some(eth.src) {
            self.guest_mac = Some(eth.src);
            self.event(Event::GuestMac(eth.src));
        }
        // A partial checksum (to be completed by offload) or one the guest's
        // device already checked is not verified again.
        let verify = !offload
            .flags
            .intersects(OffloadFlags::NEEDS_CSUM | OffloadFlags::DATA_VALID);
        match eth.ethertype {
            ethertype::ARP => {
                if self.config.ip4.is_none() {
                    return Err(DropReason::FamilyDisabled);
                }
                let arp = ArpRepr::parse(payload)?;
                let cx = L2Context {
                    config: &self.config,
                    now: self.now,
                    guest_mac: self.guest_mac,
                };
                let outcome = l2::arp::handle(&cx, &eth, &arp, tx);
                self.l2_outcome(outcome, |s| &mut s.arp_replies)
            }
            ethertype::IPV4 => {
                if self.config.ip4.is_none() {
                    return Err(DropReason::FamilyDisabled);
                }
                // RFC 1122 §3.2.1.2: a datagram with a bad header checksum is
                // silently discarded.
                let (ip, l4) = Ipv4Repr::parse(payload, true)?;
                if self.seen.note(ip.src.into()) {
                    self.event(Event::GuestAddr4(ip.src));
                }
                if ip.is_fragment() {
                    return Err(DropReason::Fragment);
                }
                // Source routing (RFC 791 §3.1 LSRR/SSRR): the pseudo-header
                // would need the final destination, and we don't route.
                if ip
                    .options_iter()
                    .any(|o| matches!(o.kind, ipv4_opt::LSRR | ipv4_opt::SSRR))
                {
                    return Err(DropReason::Unsupported);
                }
                match ip.protocol {
                    ip_proto::UDP => {
                        let pseudo =
                            pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
                        let udp = UdpRepr::parse(l4, verify.then_some(pseudo), false)?;
                        if udp.dst_port == 67 && self.config.services.contains(Services::DHCP) {
                            let cx = L2Context {
                                config: &self.config,
                                now: self.now,
                                guest_mac: self.guest_mac,
                            };
                            let outcome = self.dhcp.handle(&cx, &eth, &ip, &udp, tx);
                            return self.l2_outcome(outcome, |s| &mut s.dhcp_replies);
                        }
                        self.l4_packet(l4_packet4(&ip, i, frame, l4, verify), tx)
                    }
                    ip_proto::TCP => {
                        let pseudo =
                            pseudo_header_v4(ip.src, ip.dst, ip_proto::TCP, l4.len() as u16);
                        self.tcp_segment(rx, i, ip.src.into(), ip.dst.into(), pseudo, verify, l4)
                    }
                    _ => self.l4_packet(l4_packet4(&ip, i, frame, l4, verify), tx),
                }
            }
            ethertype::IPV6 => {
                if self.config.ip6.is_none() {
                    return Err(DropReason::FamilyDisabled);
                }
                let (ip, l4) = Ipv6Repr::parse(payload)?;
                if self.seen.note(ip.src.into()) {
                    self.event(Event::GuestAddr6(ip.src));
                }
                if ip.is_fragment() {
                    return Err(DropReason::Fragment);
                }
                // A Routing header with segments left (RFC 8200 §4.4) names
                // another final destination for the pseudo-header (§8.1).
                let routed = ip.ext_header_iter().any(|h| {
                    h.kind == ip_proto::ROUTING && h.bytes.get(3).is_some_and(|&left| left > 0)
                });
                if routed {
                    return Err(DropReason::Unsupported);
                }
                let pseudo = pseudo_header_v6(&ip.src, &ip.dst, ip.upper_protocol, l4.len() as u32);
                match ip.upper_protocol {
                    ip_proto::UDP => {
                        let udp = UdpRepr::parse(l4, verify.then_some(pseudo), true)?;
                        if udp.dst_port == 547 && self.config.services.contains(Services::DHCPV6) {
                            let cx = L2Context {
                                config: &self.config,
                                now: self.now,
                                guest_mac: self.guest_mac,
                            };
                            let outcome = self.dhcpv6.handle(&cx, &eth, &ip, &udp, tx);
                            return self.l2_outcome(outcome, |s| &mut s.dhcpv6_replies);
                        }
                        self.l4_packet(l4_packet6(&ip, i, frame, l4, verify), tx)
                    }
                    ip_proto::ICMPV6 => {
                        let msg = Icmpv6Repr::parse(l4, verify.then_some(pseudo))?;
                        if let Icmpv6Repr::Ndp(ndp) = &msg {
                            if !self.config.services.contains(Services::NDP) {
                                return Ok(());
                            }
                            // RFC 4861 §6.1.1, §7.1.1: invalid messages are
                            // silently discarded.
                            ndp_validate(ndp, ip.hop_limit, &ip.src, &ip.dst)?;
                            let cx = L2Context {
                                config: &self.config,
                                now: self.now,
                                guest_mac: self.guest_mac,
                            };
                            let outcome = self.ndp.handle(&cx, &eth, &ip, ndp, tx);
                            return self.l2_outcome(outcome, |s| &mut s.ndp_replies);
                        }
                        if matches!(msg, Icmpv6Repr::EchoRequest { .. })
                            && self.config.services.contains(Services::ICMP)
                        {
                            let cx = L2Context {
                                config: &self.config,
                                now: self.now,
                                guest_mac: self.guest_mac,
                            };
                            // Ours to answer, or Ignored and forwarded.
                            match echo::handle(&cx, &eth, &ip, &msg, tx) {
                                Outcome::Ignored => {}
                                outcome => {
                                    return self.l2_outcome(outcome, |s| &mut s.echo_replies)
                                }
                            }
                        }
                        self.l4_packet(l4_packet6(&ip, i, frame, l4, verify), tx)
                    }
                    ip_proto::TCP => {
                        self.tcp_segment(rx, i, ip.src.into(), ip.dst.into(), pseudo, verify, l4)
                    }
                    _ => self.l4_packet(l4_packet6(&ip, i, frame, l4, verify), tx),
                }
            }
            _ => Err(DropReason::Unsupported),
        }
    }

    /// Count what a local service did.
    fn l2_outcome(
        &mut self,
        outcome: Outcome,
        counter: fn(&mut Stats) -> &mut u64,
    ) -> Result<(), DropReason> {
        match outcome {
            Outcome::Replied => {
                *counter(&mut self.stats) += 1;
                Ok(())
            }
            Outcome::Ignored => Ok(()),
            Outcome::Dropped(reason) => Err(reason),
        }
    }

    /// Hand a transport packet to its protocol's handler.
    fn l4_packet<S: TxStorage>(
        &mut self,
        pkt: L4Packet<'_>,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason> {
        let services = self.config.services;
        match pkt.protocol {
            ip_proto::UDP if !services.contains(Services::UDP) => Err(DropReason::ProtocolDisabled),
            ip_proto::ICMP | ip_proto::ICMPV6 if !services.contains(Services::ICMP) => {
                Err(DropReason::ProtocolDisabled)
            }
            ip_proto::UDP => self.udp.handle_tap(&mut l4cx!(self), &pkt, tx),
            ip_proto::ICMP | ip_proto::ICMPV6 => self.icmp.handle_tap(&mut l4cx!(self), &pkt, tx),
            // TCP segments go to `tcp_segment` before this.
            _ => Err(DropReason::Unsupported),
        }
    }

    /// Take in readiness of a host socket.
    ///
    /// Readiness for a socket closed meanwhile is counted and ignored.
    pub fn handle_ready<S: TxStorage>(
        &mut self,
        now: Instant,
        id: SockId,
        ready: Ready,
        tx: &mut TxRing<S>,
    ) {
        self.now = now;
        match self.socks.owner(id) {
            None => self.count_drop(DropReason::StaleSocket),
            Some(owner @ (SockOwner::UdpFlow(_) | SockOwner::UdpListener(_))) => {
                self.udp
                    .handle_ready(&mut l4cx!(self), id, owner, ready, tx);
            }
            Some(SockOwner::Echo(n)) => self.icmp.handle_ready(&mut l4cx!(self), id, n, ready, tx),
            Some(SockOwner::TcpConn(_) | SockOwner::TcpListener(_) | SockOwner::TcpAccept(_)) => {
                self.tcp.handle_ready(&mut tcp_cx!(self), id, ready);
            }
            Some(SockOwner::Unowned) => {}
        }
        self.flush_l4(tx);
    }

    /// Take in the result of an operation from [`Translator::poll_op`].
    ///
    /// A completion for a socket closed meanwhile is counted and ignored.
    pub fn handle_completion<S: TxStorage>(
        &mut self,
        now: Instant,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        self.now = now;
        match self.socks.owner(done.id) {
            None => {
                self.count_drop(DropReason::StaleSocket);
                // A TCP read for a connection closed meanwhile gives its
                // slots back (only TCP's own: another module's may be
                // pending by now).
                self.tcp.stale_completion(done.id, tx);
            }
            Some(owner @ (SockOwner::UdpFlow(_) | SockOwner::UdpListener(_))) => {
                self.udp
                    .handle_completion(&mut l4cx!(self), owner, done, tx);
            }
            Some(SockOwner::Echo(n)) => self.icmp.handle_completion(&mut l4cx!(self), n, done, tx),
            Some(SockOwner::TcpConn(_) | SockOwner::TcpListener(_) | SockOwner::TcpAccept(_)) => {
                let before = tx.len();
                self.tcp.handle_completion(&mut tcp_cx!(self), done, tx);
                self.stats.frames_out += (tx.len().saturating_sub(before)) as u64;
            }
            Some(SockOwner::Unowned) => {}
        }
        self.flush_l4(tx);
    }

    /// Let time pass: expire whatever deadline is due at `now`.
    pub fn handle_timeout<S: TxStorage>(&mut self, now: Instant, tx: &mut TxRing<S>) {
        self.now = now;
        if self.ndp.poll_timeout().is_some_and(|at| at <= now) {
            let before = tx.len();
            let cx = L2Context {
                config: &self.config,
                now,
                guest_mac: self.guest_mac,
            };
            self.ndp.handle_timeout(&cx, tx);
            let sent = tx.len().saturating_sub(before) as u64;
            self.stats.ra_sent += sent;
            self.stats.frames_out += sent;
        }
        self.udp.handle_timeout(&mut l4cx!(self), tx);
        self.icmp.handle_timeout(&mut l4cx!(self), tx);
        self.tcp.handle_timeout(&mut tcp_cx!(self));
        self.flush_l4(tx);
    }

    /// The next queued socket operation.
    ///
    /// Right after [`Translator::new`] this already yields work: the
    /// listening sockets of forwarded TCP ports (`-t`, then `-T` inside
    /// the namespace, queued by `new`),
    /// then those of forwarded UDP ports (`-u`, then `-U` inside the
    /// namespace), opened lazily as the queue drains so that any number of
    /// ports fits the queue. A driver
    /// that drops privileges drains these first.
    #[must_use = "queued operations must run before the next input"]
    pub fn poll_op(&mut self) -> Option<SockOp> {
        self.ops
            .pop()
            .or_else(|| self.udp.next_listener_op(&mut self.socks))
    }

    /// The next event for the driver's log.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// The earliest deadline at which [`Translator::handle_timeout`] has work,
    /// if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = Instant::min_deadline(self.ndp.poll_timeout(), self.udp.poll_timeout());
        let t = Instant::min_deadline(t, self.icmp.poll_timeout());
        Instant::min_deadline(t, self.tcp.poll_timeout(self.now))
    }

    /// The time of the latest input.
    pub fn now(&self) -> Instant {
        self.now
    }

    fn event(&mut self, e: Event) {
        if self.events.push(e).is_err() {
            self.stats.events_lost += 1;
        }
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.stats.drops[reason as usize] += 1;
    }

    fn drop_frame(&mut self, reason: DropReason, len: usize) {
        self.count_drop(reason);
        self.event(Event::Dropped {
            reason,
            len: len as u32,
        });
    }
}

/// An IPv4 transport packet for [`Translator::l4_packet`].
fn l4_packet4<'a>(
    ip: &Ipv4Repr<'_>,
    i: usize,
    frame: &[u8],
    l4: &'a [u8],
    verify: bool,
) -> L4Packet<'a> {
    L4Packet {
        src: ip.src.into(),
        dst: ip.dst.into(),
        protocol: ip.protocol,
        l4,
        span: l4_span(i, frame, l4),
        verify,
        ttl: ip.ttl,
    }
}

/// An IPv6 transport packet for [`Translator::l4_packet`].
fn l4_packet6<'a>(
    ip: &Ipv6Repr<'_>,
    i: usize,
    frame: &[u8],
    l4: &'a [u8],
    verify: bool,
) -> L4Packet<'a> {
    L4Packet {
        src: ip.src.into(),
        dst: ip.dst.into(),
        protocol: ip.upper_protocol,
        l4,
        span: l4_span(i, frame, l4),
        verify,
        ttl: ip.hop_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_ids_carry_generations() {
        let mut s = SockSlots::new(2);
        let a = s.alloc_owned(SockOwner::Unowned).unwrap();
        let b = s.alloc_owned(SockOwner::Unowned).unwrap();
        assert_eq!((a.slot(), b.slot()), (0, 1));
        assert!(s.alloc_owned(SockOwner::Unowned).is_none());
        s.release(a);
        s.release(a); // twice: no double free
        let c = s.alloc_owned(SockOwner::Unowned).unwrap();
        assert_eq!(c.slot(), 0);
        assert_ne!(c, a);
        assert!(!s.is_live(a) && s.is_live(c));
        assert!(s.alloc_owned(SockOwner::Unowned).is_none());
        assert_eq!(SockId::from_u64(c.to_u64()), c);
        assert!(!s.is_live(SockId::from_parts(7, 1)));
    }

    #[test]
    fn drop_reasons_index_their_counters() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
