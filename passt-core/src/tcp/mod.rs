//! TCP: guest segments to host stream sockets and back, without a TCP stack
//! of our own.
//!
//! # Model
//!
//! Each guest connection is one host `SOCK_STREAM` socket. We never hold
//! stream data: the host kernel's socket buffers are the only buffers.
//!
//! - **Guest → host.** In-order guest payload becomes a [`SockOp::Send`]
//!   naming the bytes in the rx batch ([`crate::buf::RxSpan`]). We
//!   acknowledge only what the kernel accepted (the completion's byte count),
//!   once per batch and connection. Out-of-order segments are dropped with a
//!   duplicate ACK; old ones (retransmissions, keepalives) are answered with
//!   an ACK; a partially old one is trimmed. The window we advertise is
//!   the socket's free send-buffer space, which the executor reports with
//!   a `Send` ([`Done::Sent`], at least the first of a socket) and on
//!   request ([`SockOp::Query`]: when a connection to the guest is
//!   established, after settled `Send`s once the guest used half of the
//!   last reported window or any of a report of none, on writability
//!   while what the report left is small, and on a zero-window probe), up
//!   to [`WINDOW_TO_TAP`] ([`WINDOW_TO_TAP`] itself from executors that do
//!   not report it). Where the answer carries
//!   `TCP_INFO` ([`crate::TcpInfo`]), the window is also kept to what the
//!   path will take within [`PATH_RTTS`] flights (at least
//!   [`PATH_FLOOR`]), so that the guest's sending rate follows the real
//!   path instead of filling the send buffer. The
//!   right edge already advertised is kept (RFC 9293 §3.8.6.2.2), so a
//!   full buffer closes the window only as the guest's data reaches that
//!   edge; writability reopens it with one window update. After the kernel
//!   refused bytes (`EAGAIN` or a short write) the window is zero until the
//!   socket is writable again; then a window update and three duplicate
//!   ACKs make the guest retransmit at once (RFC 5681 §3.2).
//! - **Host → guest.** On readability (or when the guest's ACKs open its
//!   window) the connection queues for a read: tx ring slots are reserved
//!   ([`crate::buf::TxRing::reserve_slots`]), one per MSS-sized segment
//!   within the guest's window, and a [`SockOp::Peek`] skipping the bytes
//!   already sent but unacknowledged fills their payload areas. The
//!   completion gives the byte count; headers, sequence numbers and
//!   checksums are written around the payload in place and the frames
//!   committed. Bytes leave the socket ([`SockOp::Discard`]) only when the
//!   guest acknowledges them, once per call for all the ACKs it held
//!   (before the next read, and before the socket is closed). A
//!   retransmission (three duplicate ACKs, or the retransmission timer)
//!   rewinds `seq_to_tap` to the acknowledged point and reads again. On
//!   writability, the free send-buffer space is asked for only when the
//!   last report is used up or left less than two segments: every readable
//!   edge of an edge-triggered socket carries writability too.
//! - **Offloads.** When the guest's device takes them
//!   ([`crate::config::Config::guest_gso`]), a slot holds as many whole
//!   MSS-sized segments as one 64 KiB IP packet does: the frame is a TCP
//!   super-frame (virtio-net GSO) with a partial checksum, cut by the
//!   guest's kernel; sequence and acknowledgement accounting counts it as
//!   the one segment it is on our side. Single segments get a partial
//!   checksum too. In the other direction, a guest super-frame (its device
//!   had TSO) is one large in-order segment like any other: nothing here
//!   limits a received segment to the MSS or the MTU, and its partial
//!   checksum is not verified (see `Translator::handle_tap`).
//! - **Handshakes.** A guest SYN opens a socket with a non-blocking connect
//!   to the same destination, the gateway/`map_host_loopback` address
//!   mapped to the host's loopback and `map_guest_addr` to the host's own
//!   address, port 53 of `dns_forward` the host's resolver (`flow::fwd`); writability ends the connect and sends the
//!   SYN-ACK (our MSS from the MTU, window scaling if the guest offered it);
//!   an error sends RST. Listening sockets for the forwarded ports
//!   (`config.fwd.tcp_in`) accept connections, which become a SYN to the
//!   guest from the peer's address (loopback and the host's own address
//!   mapped to the guest-side addresses that stand for them), to the
//!   address the guest was seen using in the peer's scope, link-local or
//!   global (`seen.rs`; the configured one until the guest spoke).
//! - **Closing.** Guest FIN (after every earlier byte was accepted) is
//!   `shutdown(SHUT_WR)`; end of file on the socket is a FIN to the guest
//!   once every byte before it was sent; each direction closes on its own.
//!   When both FINs are exchanged and ours is acknowledged, the socket is
//!   closed. An RST from the guest closes the socket; a socket error resets
//!   the guest.
//!
//! # Spliced connections (pasta's loopback fast path)
//!
//! With `config.fwd.splice` (pasta without `--no-splice`), a connection
//! accepted on a `-t` listener from the host's loopback (`127.0.0.1`,
//! `::1`) is not translated into frames. The handler opens a second socket
//! inside the namespace ([`SockOp::Open`] with [`SockFlags::IN_NS`]),
//! connected at the forwarded port to the namespace's own address of that
//! family (the one the guest was seen using, else the configured one), so
//! the kernel routes it over the namespace's loopback interface but a
//! service bound only to the namespace's `127.0.0.1` or `::1` is not
//! reached: as the original since 2024. With
//! `config.fwd.host_lo_to_ns_lo` (`--host-lo-to-ns-lo`) it connects to
//! the namespace's loopback address instead. With no usable address of
//! that family (none configured or seen, or only a link-local one) the
//! accepted connection is closed. When it
//! connects (writability) it hands both sockets to the executor
//! ([`SockOp::Splice`]), which moves the bytes inside the kernel
//! (`crate::host::splice`) and owns their readiness until it reports the
//! end (one completion: [`Done::Spliced`] or the error); then both sockets
//! are closed. A refused connect is handed to the executor all the same:
//! its splice ends at once with the error and resets the accepted
//! connection (a failed `Open` just closes it).
//!
//! The other direction, `-T` (`config.fwd.tcp_out`), is always spliced:
//! its listeners are opened inside the namespace (`Open` with
//! [`SockFlags::IN_NS`], `LISTEN`, bound to the namespace's loopback unless
//! the rule names an address), statically at start-up or by
//! [`crate::Translator::set_auto_out_port`] for `-T auto`; a connection
//! they accept gets its second socket connected to the same family's
//! loopback at the target port in the driver's own namespace (the host's).
//!
//! The connection is a flow of the same table (both sides
//! [`crate::flow::Pif::Splice`]; `Conn::splice` names the second socket),
//! so the table's capacity and the socket slots limit it like any other,
//! and the handshake timeout bounds its connect. It has no index key (no
//! guest segment can reach it). Once spliced, the kernel runs both
//! connections and the executor sees their traffic, so the translator
//! checks on it every `conn::SPLICE_CHECK` (30 s) with a
//! [`SockOp::Query`], answered with [`Done::Splicing`] (bytes moved so
//! far, whether one direction ended). With no bytes moved for the idle
//! timeout (2 h), or for the closing timeout (60 s) once one direction
//! ended (counted from when that was first seen), it closes both sockets,
//! and the executor resets both connections (counted in
//! [`TcpStats::splice_timeouts`]). `Tcp::new_spliced` is the entry for both
//! directions (`in_ns` says where the second socket connects).
//!
//! # Ordering of tx ring use
//!
//! The ring holds one pending range at a time, and a pending range blocks
//! every other frame. So a read is issued only at the end of a `handle_*`
//! call, after every other frame of that call, and at most one read is
//! outstanding; control segments (ACKs, SYN-ACKs) produced while it is
//! outstanding are deferred: connections wait in fixed queues
//! (`ctl_q`, `peek_q`, with membership flags so each appears once) and
//! `Tcp::flush` drains them whenever the ring has no pending range.
//!
//! # Limits
//!
//! The flow table holds [`crate::config::Limits::max_flows`] connections; a
//! SYN when it is full is answered with RST and evicts nothing. Work per
//! segment and per completion is constant; `Tcp::handle_timeout` sweeps the
//! table only when the earliest deadline it knows of has passed.
//!
//! # Timeouts
//!
//! Handshake 10 s (`conn::SYN_TIMEOUT`), closing 60 s after the first FIN,
//! idle 2 h, retransmission 1 s doubling to 60 s, reset after 8 tries.
//! Spliced connections: idle 2 h, and 60 s without progress once one
//! direction ended, checked every 30 s (see above).
//!
//! # Executor contract
//!
//! `Send` completes with the bytes the kernel took. After a short write or
//! `EAGAIN` on a socket, a driver must not write later `Send`s of the same
//! drain to that socket (it completes them with `EAGAIN`): the bytes after
//! the refused ones would otherwise land out of order. `Peek` completing with
//! `Done::Bytes(0)` means end of file right after the skipped bytes.

pub(crate) mod conn;
pub(crate) mod frame;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::addr::{InAny, MacAddr, SockAddrAny};
use crate::buf::{RxSpan, TxRing, TxSlots, TxStorage};
use crate::config::ports::FwdMode;
use crate::config::Config;
use crate::flow::index::{FlowIndex, FlowKey};
use crate::flow::siphash::SipHasher13;
use crate::flow::table::FlowTable;
use crate::flow::FlowId;
use crate::lazy::LazyArray;
use crate::queue::FixedQueue;

use crate::contract::cx::Cx;
use crate::contract::slots::{Module, Owner as SlotOwner};
use crate::contract::{
    Completion, Done, DropReason, Errno, Proto, Ready, SockFlags, SockId, SockOp, SockSpec,
};
use crate::time::Instant;
use crate::wire::tcp::{SeqNum, TcpFlags, TcpOptionsWriter, TcpRepr};

use conn::{Conn, ConnFlags, State, FIN_TIMEOUT, IDLE_TIMEOUT, MAX_RETRIES, SPLICE_CHECK};
use frame::Seg;

/// The window we offer the guest while the kernel takes its data, in bytes.
pub const WINDOW_TO_TAP: u32 = 4 << 20;
/// Flights of the path (its congestion or peer window, from `TCP_INFO`)
/// that may wait unsent in the kernel before the guest's window shrinks.
pub const PATH_RTTS: u32 = 2;
/// On a path with a round trip shorter than this (in microseconds), the
/// kernel may keep what the path sends in this long instead: two flights
/// of a fast path drain before our loop could refresh the window, and a
/// window that small would starve the path.
pub const PATH_HORIZON_US: u32 = 20_000;
/// The least window a `TCP_INFO` limit leaves the guest, in bytes (if the
/// send buffer has that much room): enough to keep a fast path busy
/// between two refreshes, and never a zero window that no writability
/// edge would reopen.
pub const PATH_FLOOR: u32 = 64 << 10;
/// Our window scale shift (RFC 7323 §2.3), when the guest offers scaling.
const WS_TO_TAP: u8 = 7;
/// Ports an `auto` forwarding direction may open, each once per family
/// (the room its listener table reserves).
const AUTO_PORTS: usize = 1 << 16;
/// Most tx slots one read fills.
const MAX_PEEK_SLOTS: u32 = 64;
/// Resets for flows that no longer exist, waiting for a free ring.
const RST_QUEUE: usize = 256;

/// A connection's addresses as the guest sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpKey {
    /// The guest's address and port.
    pub guest: SockAddrAny,
    /// The far end's address and port, as the guest knows it.
    pub remote: SockAddrAny,
}

impl FlowKey for TcpKey {
    fn hash_into(&self, h: &mut SipHasher13) {
        h.write(&self.guest.addr.0.octets());
        h.write(&self.remote.addr.0.octets());
        h.write(&self.guest.port.to_be_bytes());
        h.write(&self.remote.port.to_be_bytes());
    }
}

/// Who a socket slot belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Free,
    Conn(SockId, FlowId),
    Listener(SockId, u32),
    Accepting(SockId, u32),
}

/// The token of every TCP socket in the translator's slots: TCP keeps
/// which object a socket belongs to in its own table (`Tcp::owner`).
const TCP_SOCK: SlotOwner = SlotOwner::new(Module::Tcp, 0);

/// A listening socket for a forwarded port.
#[derive(Clone, Copy, Debug)]
struct Listener {
    sock: SockId,
    /// Whether an `Accept` is outstanding.
    accepting: bool,
    /// Its port and family: `auto` forwarding closes and reopens by port.
    port: u16,
    ipv6: bool,
    /// Whether `sock` is (being) opened; `false` once closed or failed.
    open: bool,
    /// A `-T` listener: inside the namespace, on its loopback; what it
    /// accepts is spliced to the host's loopback.
    out: bool,
}

/// Counters of the TCP handler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connections opened (both directions).
    pub opened: u64,
    /// Connections closed.
    pub closed: u64,
    /// Resets sent to the guest.
    pub rst_sent: u64,
    /// SYNs refused because the table (or the socket slots) was full.
    pub syn_refused: u64,
    /// Retransmissions to the guest (timer or duplicate ACKs).
    pub retransmits: u64,
    /// Segments dropped as out of window or out of order.
    pub out_of_window: u64,
    /// Frames that did not fit the tx ring.
    pub tx_full: u64,
    /// Listening sockets that could not be opened.
    pub listen_failed: u64,
    /// Connections spliced between two sockets instead (counted in
    /// `opened` too).
    pub spliced: u64,
    /// Spliced connections that ended in an error (reset both ways).
    pub splice_errors: u64,
    /// Spliced connections reset for lack of progress (idle, or half-closed
    /// and idle).
    pub splice_timeouts: u64,
    /// Sockets for guest connections that could not be made (`EMFILE`,
    /// `ENFILE`, an immediate connect error): the guest got RST.
    pub open_failed: u64,
    /// Free send-buffer space asked for again after the guest used half of
    /// the window the last answer allowed.
    pub window_queries: u64,
}

/// A guest TCP segment with its addresses, as ingress classified it.
pub(crate) use crate::ingress::Segment as TcpIn;

/// A reset for a segment that has no connection (RFC 9293 §3.10.7.1).
#[derive(Clone, Copy, Debug)]
struct PendingRst {
    key: TcpKey,
    seq: SeqNum,
    ack: Option<SeqNum>,
}

/// The TCP handler: connections, listeners and the queues between them.
pub(crate) struct Tcp {
    flows: FlowTable<Conn>,
    index: FlowIndex<TcpKey>,
    owner: LazyArray<Owner>,
    listeners: Vec<Listener>,
    peek_q: FixedQueue<FlowId>,
    ctl_q: FixedQueue<FlowId>,
    /// Connections with acknowledged bytes still to leave their socket.
    discard_q: FixedQueue<FlowId>,
    rst_q: FixedQueue<PendingRst>,
    /// The outstanding read: its flow and slots.
    peek_out: Option<(FlowId, TxSlots)>,
    /// The socket of a connection closed while its read was outstanding:
    /// that read's slots stay pending until a completion for the socket
    /// comes back stale ([`Tcp::stale_completion`]).
    peek_orphan: Option<SockId>,
    next_deadline: Option<Instant>,
    /// Work that could not be done for lack of ring room: retry at once.
    retry: bool,
    secret: [u8; 16],
    pub(crate) stats: TcpStats,
}

impl Tcp {
    /// Tables sized from `config.limits`.
    pub(crate) fn new(config: &Config) -> Self {
        let l = config.limits;
        // `auto` forwards what the other side binds, found by a later
        // scan: no static listeners, but room for one per port and family,
        // reserved now (never written until used) so that a scan opening
        // ports never allocates (entries are reused by port and family).
        let count = |s: &crate::config::ports::FwdSpec| match s.mode() {
            FwdMode::Ports | FwdMode::All => s.port_count() as usize,
            FwdMode::Auto => AUTO_PORTS,
            FwdMode::None => 0,
        };
        let ports = count(&config.fwd.tcp_in) + count(&config.fwd.tcp_out);
        Tcp {
            flows: FlowTable::new(l.max_flows),
            index: FlowIndex::new(l.max_flows, config.secret),
            owner: LazyArray::new(l.max_sockets as usize, || Owner::Free),
            listeners: Vec::with_capacity(ports * 2),
            peek_q: FixedQueue::new(l.max_flows as usize),
            ctl_q: FixedQueue::new(l.max_flows as usize),
            discard_q: FixedQueue::new(l.max_flows as usize),
            rst_q: FixedQueue::new(RST_QUEUE),
            peek_out: None,
            peek_orphan: None,
            next_deadline: None,
            retry: false,
            secret: config.secret,
            stats: TcpStats::default(),
        }
    }

    /// Connections in the table.
    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// Queue `Open`s of the listening sockets for every forwarded port, in
    /// each enabled family (`IPV6_V6ONLY` on the IPv6 ones): the host's
    /// (`-t`), then the namespace's (`-T`). Called once.
    pub(crate) fn open_listeners(&mut self, cx: &mut Cx<'_>) {
        let mut wanted: Vec<(bool, Option<IpAddr>, u16, bool)> = Vec::new();
        for out in [false, true] {
            let spec = if out {
                &cx.config.fwd.tcp_out
            } else {
                &cx.config.fwd.tcp_in
            };
            if matches!(spec.mode(), FwdMode::None | FwdMode::Auto) {
                continue;
            }
            for r in spec.rules() {
                for port in r.first..=r.last {
                    for ipv6 in [false, true] {
                        if Self::family_on(cx.config, r.addr, ipv6, out) {
                            wanted.push((ipv6, r.addr, port, out));
                        }
                    }
                }
            }
        }
        for (ipv6, addr, port, out) in wanted {
            self.open_listener(cx, ipv6, addr, port, out);
        }
    }

    /// Whether a forward with listening address `addr` has a listener in
    /// the family `ipv6`: not for an address of the other family; on the
    /// host's side (`-t`) only in families the guest has, while the
    /// namespace's loopback (`-T`) has both (IPv6 may be off there: that
    /// listener then fails, counted in [`TcpStats::listen_failed`]).
    fn family_on(config: &Config, addr: Option<IpAddr>, ipv6: bool, out: bool) -> bool {
        if ipv6 {
            (out || config.ip6.is_some()) && !matches!(addr, Some(IpAddr::V4(_)))
        } else {
            (out || config.ip4.is_some()) && !matches!(addr, Some(IpAddr::V6(_)))
        }
    }

    /// `auto` forwarding (`-t auto`, or `-T auto` with `out`): open (`on`)
    /// or close the listening sockets of forwarded `port`, in each enabled
    /// family the rule allows. Does nothing for a port the spec does not
    /// forward or that is already in the state asked for. Returns whether
    /// operations were queued.
    pub(crate) fn set_auto_port(
        &mut self,
        cx: &mut Cx<'_>,
        port: u16,
        on: bool,
        out: bool,
    ) -> bool {
        let spec = if out {
            &cx.config.fwd.tcp_out
        } else {
            &cx.config.fwd.tcp_in
        };
        let Some((_, rule)) = spec.lookup(port) else {
            return false;
        };
        let addr = rule.addr;
        let mut queued = false;
        if on {
            for ipv6 in [false, true] {
                let have = self
                    .listeners
                    .iter()
                    .any(|l| l.open && l.port == port && l.ipv6 == ipv6 && l.out == out);
                if Self::family_on(cx.config, addr, ipv6, out) && !have {
                    queued |= self.open_listener(cx, ipv6, addr, port, out);
                }
            }
            return queued;
        }
        for i in 0..self.listeners.len() {
            let Some(l) = self.listeners.get_mut(i) else {
                break;
            };
            if !l.open || l.port != port || l.out != out {
                continue;
            }
            l.open = false;
            let id = l.sock;
            self.set_owner(id, Owner::Free);
            cx.socks.release(id);
            queued |= cx.try_op(SockOp::Close { id });
        }
        queued
    }

    /// Whether a `-T` listener of `port` is open (or being opened).
    pub(crate) fn out_listening(&self, port: u16) -> bool {
        self.listeners
            .iter()
            .any(|l| l.open && l.out && l.port == port)
    }

    /// Queue the `Open` of one listening socket; reuses the entry of a
    /// closed listener of the same port, family and side. A `-T` (`out`)
    /// listener is made inside the namespace ([`SockFlags::IN_NS`]) on its
    /// loopback unless the rule names an address. Returns whether queued.
    fn open_listener(
        &mut self,
        cx: &mut Cx<'_>,
        ipv6: bool,
        addr: Option<IpAddr>,
        port: u16,
        out: bool,
    ) -> bool {
        let idx = self
            .listeners
            .iter()
            .position(|l| !l.open && l.port == port && l.ipv6 == ipv6 && l.out == out)
            .unwrap_or(self.listeners.len());
        let owner = TCP_SOCK;
        let Some(sock) = cx.socks.alloc_owned(owner) else {
            self.stats.listen_failed += 1;
            return false;
        };
        let bind_addr = match addr {
            Some(a) => InAny::from(a),
            None if out && ipv6 => Ipv6Addr::LOCALHOST.into(),
            None if out => Ipv4Addr::LOCALHOST.into(),
            None if ipv6 => InAny::UNSPECIFIED6,
            None => InAny::UNSPECIFIED4,
        };
        let mut s = SockSpec::new(Proto::Tcp, ipv6);
        s.bind = Some(SockAddrAny {
            addr: bind_addr,
            port,
        });
        s.flags = SockFlags::LISTEN | SockFlags::REUSEADDR;
        if ipv6 {
            s.flags |= SockFlags::V6ONLY;
        }
        if out {
            s.flags |= SockFlags::IN_NS;
        }
        if !cx.try_op(SockOp::Open { id: sock, spec: s }) {
            cx.socks.release(sock);
            self.stats.listen_failed += 1;
            return false;
        }
        let l = Listener {
            sock,
            accepting: false,
            port,
            ipv6,
            open: true,
            out,
        };
        match self.listeners.get_mut(idx) {
            Some(slot) => *slot = l,
            None => self.listeners.push(l),
        }
        self.set_owner(sock, Owner::Listener(sock, idx as u32));
        true
    }

    /// Record who `sock` belongs to, here and in the translator's socket
    /// slots (which route its readiness and completions to this handler).
    fn set_owner(&mut self, sock: SockId, o: Owner) {
        if let Some(slot) = self.owner.get_mut(sock.slot() as usize) {
            *slot = o;
        }
    }

    fn owner_of(&self, sock: SockId) -> Owner {
        match self.owner.get(sock.slot() as usize).copied() {
            Some(o @ (Owner::Conn(s, _) | Owner::Listener(s, _) | Owner::Accepting(s, _)))
                if s == sock =>
            {
                o
            }
            _ => Owner::Free,
        }
    }

    /// A completion for a socket no longer live: if it is the socket of a
    /// connection closed with its read outstanding, give that read's slots
    /// back. Slots pending for anyone else (a UDP or ICMP receive) are left
    /// alone.
    pub(crate) fn stale_completion<S: TxStorage>(&mut self, sock: SockId, tx: &mut TxRing<S>) {
        if self.peek_orphan == Some(sock) {
            self.peek_orphan = None;
            tx.cancel_pending();
        }
    }

    /// The earliest deadline, if any.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.retry && self.peek_out.is_none() && self.peek_orphan.is_none() {
            return Some(now);
        }
        self.next_deadline
    }

    fn arm(&mut self, at: Instant) {
        self.next_deadline = Instant::min_deadline(self.next_deadline, Some(at));
    }

    fn isn(&self, key: &TcpKey, now: Instant) -> SeqNum {
        // RFC 6528: a clock plus a keyed hash of the connection's addresses.
        let mut h = SipHasher13::new(self.secret);
        key.hash_into(&mut h);
        let clock = (now.as_nanos() / 4000) as u32;
        SeqNum((h.finish() as u32).wrapping_add(clock))
    }

    // ---------------------------------------------------------------------
    // Guest segments
    // ---------------------------------------------------------------------

    /// Take one guest segment. RFC 9293 §3.10.7.
    pub(crate) fn handle_segment(
        &mut self,
        cx: &mut Cx<'_>,
        p: &TcpIn<'_>,
    ) -> Result<(), DropReason> {
        let key = TcpKey {
            guest: SockAddrAny {
                addr: p.src,
                port: p.seg.src_port,
            },
            remote: SockAddrAny {
                addr: p.dst,
                port: p.seg.dst_port,
            },
        };
        if !frame::is_unicast(&p.src) || !frame::is_unicast(&p.dst) {
            return Err(DropReason::Malformed);
        }
        let flags = p.seg.flags;
        let Some(fid) = self.index.get(&key) else {
            if flags.contains(TcpFlags::RST) {
                return Ok(());
            }
            if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
                return self.guest_syn(cx, key, p);
            }
            // No connection: RST as RFC 9293 §3.10.7.1 says.
            let rst = if flags.contains(TcpFlags::ACK) {
                PendingRst {
                    key,
                    seq: p.seg.ack,
                    ack: None,
                }
            } else {
                PendingRst {
                    key,
                    seq: SeqNum(0),
                    ack: Some(p.seg.seq + p.seg.seq_len(p.payload.len())),
                }
            };
            self.queue_rst(rst);
            return Ok(());
        };
        self.conn_segment(cx, fid, p);
        Ok(())
    }

    /// A SYN for a new connection: open a socket connecting to its
    /// destination.
    fn guest_syn(&mut self, cx: &mut Cx<'_>, key: TcpKey, p: &TcpIn<'_>) -> Result<(), DropReason> {
        let refuse = |t: &mut Tcp| {
            t.stats.syn_refused += 1;
            t.queue_rst(PendingRst {
                key,
                seq: SeqNum(0),
                ack: Some(p.seg.seq + 1),
            });
            Ok(())
        };
        if self.flows.is_full() {
            return refuse(self);
        }
        // The flow slot is recorded once the connection is in the table.
        let Some(sock) = cx.socks.alloc_owned(TCP_SOCK) else {
            return refuse(self);
        };
        let isn = self.isn(&key, cx.now);
        let mut c = Conn::new(key, sock, State::Connecting, isn, cx.now);
        c.isn_from_tap = p.seg.seq;
        c.seq_from_tap = p.seg.seq + 1;
        c.seq_queued = c.seq_from_tap;
        c.wnd_edge = c.seq_from_tap;
        take_syn_options(&mut c, &p.seg);
        let ipv6 = !key.remote.addr.is_v4();
        let mut spec = SockSpec::new(Proto::Tcp, ipv6);
        // The same rules as UDP's, `--dns-forward` included (RFC 1035
        // §4.2.2: DNS over TCP on port 53).
        spec.peer = Some(crate::flow::fwd::guest_to_host(cx.config, key.remote));
        spec.flags = SockFlags::PEEK_OFF;
        if !cx.try_op(SockOp::Open { id: sock, spec }) {
            cx.socks.release(sock);
            return Err(DropReason::OpQueueFull);
        }
        let Some(v) = self.flows.vacant() else {
            cx.socks.release(sock);
            return refuse(self);
        };
        let fid = v.id();
        if !self.index.insert(key, fid) {
            cx.socks.release(sock);
            return refuse(self);
        }
        let deadline = c.deadline();
        v.insert(c);
        self.set_owner(sock, Owner::Conn(sock, fid));
        self.arm(deadline);
        self.stats.opened += 1;
        Ok(())
    }

    fn conn_segment(&mut self, cx: &mut Cx<'_>, fid: FlowId, p: &TcpIn<'_>) {
        let now = cx.now;
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        let seg = &p.seg;
        let flags = seg.flags;
        c.last_activity = now;

        // RST: RFC 9293 §3.10.7.4 first check, with RFC 5961 §3.2.
        if flags.contains(TcpFlags::RST) {
            let ok = match c.state {
                State::SynSent => flags.contains(TcpFlags::ACK) && seg.ack == c.isn_to_tap + 1,
                State::Connecting | State::SynAckSent => seg.seq == c.seq_from_tap,
                State::Established => seg.seq == c.seq_from_tap || seg.seq == c.seq_queued,
            };
            if ok {
                self.close(cx, fid, false);
            } else if c.state == State::Established
                && seg.seq.in_window(c.seq_from_tap, window_bytes(c).max(1))
            {
                // Challenge ACK.
                self.want_ctl(fid, ConnFlags::ACK_DUE);
            }
            return;
        }

        if flags.contains(TcpFlags::SYN) {
            match c.state {
                State::Connecting => {}
                State::SynAckSent => {
                    if seg.seq == c.isn_from_tap && !flags.contains(TcpFlags::ACK) {
                        self.want_ctl(fid, ConnFlags::SYN_DUE);
                    }
                }
                State::SynSent => {
                    if flags.contains(TcpFlags::ACK) && seg.ack == c.isn_to_tap + 1 {
                        c.isn_from_tap = seg.seq;
                        c.seq_from_tap = seg.seq + 1;
                        c.seq_queued = c.seq_from_tap;
                        c.wnd_edge = c.seq_from_tap;
                        take_syn_options(c, seg);
                        c.wnd_from_tap = u32::from(seg.window); // unscaled in SYN
                        c.seq_ack_from_tap = seg.ack;
                        c.state = State::Established;
                        c.rto_at = None;
                        c.retries = 0;
                        c.last_activity = now;
                        // Until a report of the free space, the window is
                        // the cap, more than a small send buffer takes: ask
                        // first (the answer sends the ACK).
                        if !self.window_query(cx, fid) {
                            self.want_ctl(fid, ConnFlags::ACK_DUE);
                        }
                        self.want_peek(fid);
                    } else if flags.contains(TcpFlags::ACK) {
                        let key = c.key;
                        self.queue_rst(PendingRst {
                            key,
                            seq: seg.ack,
                            ack: None,
                        });
                    }
                }
                State::Established => {
                    // RFC 5961 §4: SYN in a synchronized state, challenge.
                    self.want_ctl(fid, ConnFlags::ACK_DUE);
                }
            }
            return;
        }

        if !flags.contains(TcpFlags::ACK) {
            self.stats.out_of_window += 1;
            return;
        }

        match c.state {
            State::Connecting | State::SynSent => return,
            State::SynAckSent => {
                if seg.ack != c.isn_to_tap + 1 {
                    let key = c.key;
                    self.queue_rst(PendingRst {
                        key,
                        seq: seg.ack,
                        ack: None,
                    });
                    return;
                }
                c.state = State::Established;
                c.seq_ack_from_tap = seg.ack;
                c.rto_at = None;
                c.retries = 0;
                self.want_peek(fid);
            }
            State::Established => {}
        }
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };

        // ACK processing, RFC 9293 §3.10.7.4 fifth check.
        let wnd = u32::from(seg.window) << c.ws_from_tap;
        let old_wnd = c.wnd_from_tap;
        let mut peek = false;
        if seg.ack.gt(c.seq_to_tap) {
            // Acknowledges something not sent: ACK and drop.
            self.stats.out_of_window += 1;
            self.want_ctl(fid, ConnFlags::ACK_DUE);
            return;
        }
        if seg.ack.gt(c.seq_ack_from_tap) {
            let acked = seg.ack.distance(c.seq_ack_from_tap);
            let data_before = c.data_in_flight();
            c.seq_ack_from_tap = seg.ack;
            let data_after = c.data_in_flight();
            let mut discard = data_before.saturating_sub(data_after);
            if c.flags.contains(ConnFlags::FIN_SENT) && seg.ack == c.seq_to_tap {
                c.flags |= ConnFlags::FIN_ACKED;
                discard = acked.saturating_sub(1).min(data_before);
            }
            if discard > 0 {
                // One `Discard` per connection and call, however many
                // ACKs the batch held (see `Tcp::flush_discards`).
                // (The queue holds every flow once: it cannot be full.)
                if c.flags.contains(ConnFlags::IN_DISCARD_Q) || self.discard_q.push(fid).is_ok() {
                    c.flags |= ConnFlags::IN_DISCARD_Q;
                    c.discard_due += discard;
                } else {
                    cx.try_op(SockOp::Discard {
                        id: c.sock,
                        len: discard,
                    });
                }
            }
            c.dup_acks = 0;
            c.retries = 0;
            c.rto_at = (c.in_flight() > 0).then(|| now + c.rto());
            c.wnd_from_tap = wnd;
            peek = true;
        } else if seg.ack == c.seq_ack_from_tap {
            if p.payload.is_empty()
                && !flags.contains(TcpFlags::FIN)
                && wnd == old_wnd
                && c.in_flight() > 0
            {
                c.dup_acks = c.dup_acks.saturating_add(1);
                if c.dup_acks == 3 {
                    self.rewind(fid);
                    return self.after_segment(cx, fid, p);
                }
            }
            c.wnd_from_tap = wnd;
            if wnd > old_wnd {
                peek = true;
            }
        }
        if let Some(at) = c.rto_at {
            self.arm(at);
        }
        if peek {
            self.want_peek(fid);
        }
        self.after_segment(cx, fid, p);
        self.maybe_done(cx, fid);
    }

    /// Payload and FIN of an acceptable segment (RFC 9293 §3.10.7.4, the
    /// seventh and eighth checks).
    fn after_segment(&mut self, cx: &mut Cx<'_>, fid: FlowId, p: &TcpIn<'_>) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        let seg = &p.seg;
        let fin = seg.flags.contains(TcpFlags::FIN);
        if p.payload.is_empty() && !fin {
            // RFC 9293 §3.10.7.4: an unacceptable zero-length segment (a
            // keepalive or zero-window probe, one byte before RCV.NXT) gets
            // an ACK; with the window under one segment, after asking for
            // the free space afresh (§3.8.6.1: the probe is how the guest
            // learns that the window reopened).
            if seg.seq.lt(c.seq_from_tap) {
                let shut = c.free_edge.is_some()
                    && window_bytes(c) < u32::from(c.mss)
                    && !c.flags.contains(ConnFlags::SEND_BLOCKED);
                if !(shut && self.window_query(cx, fid)) {
                    self.want_ctl(fid, ConnFlags::ACK_DUE);
                }
            }
            return;
        }
        if c.flags
            .intersects(ConnFlags::GUEST_FIN | ConnFlags::GUEST_FIN_PENDING)
        {
            // Nothing after a FIN: just acknowledge (retransmitted FIN).
            self.want_ctl(fid, ConnFlags::ACK_DUE);
            return;
        }
        let len = p.payload.len() as u32;
        let start = seg.seq;
        let end = start + len;
        if start.gt(c.seq_queued) {
            // A gap: out of order, dropped; a duplicate ACK tells the guest.
            self.stats.out_of_window += 1;
            self.want_ctl(fid, ConnFlags::ACK_DUE);
            return;
        }
        if end.lt(c.seq_queued) || (end == c.seq_queued && !fin) {
            // Old (a retransmission, or a keepalive probe): ACK it.
            self.want_ctl(fid, ConnFlags::ACK_DUE);
            return;
        }
        let skip = c.seq_queued.distance(start);
        let new_len = len - skip.min(len);
        if new_len > 0 {
            if c.flags.contains(ConnFlags::SEND_BLOCKED) {
                self.want_ctl(fid, ConnFlags::ACK_DUE);
                return;
            }
            let Some(span) = p.span else {
                return;
            };
            let payload = RxSpan {
                frame: span.frame,
                offset: span.offset + skip,
                len: new_len,
            };
            if !cx.try_op(SockOp::Send {
                id: c.sock,
                payload,
            }) {
                self.want_ctl(fid, ConnFlags::ACK_DUE);
                return;
            }
            c.sends_inflight += 1;
            c.seq_queued += new_len;
        }
        if fin {
            c.fin_seq = c.seq_queued;
            c.flags |= ConnFlags::GUEST_FIN_PENDING;
        }
        if c.sends_inflight == 0 {
            self.sends_settled(cx, fid);
        }
    }

    /// Every `Send` of a connection completed: account, take a pending FIN,
    /// acknowledge.
    fn sends_settled(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if c.seq_from_tap != c.seq_queued {
            // The kernel refused some: window 0 until writable again.
            c.flags |= ConnFlags::SEND_BLOCKED;
            c.seq_queued = c.seq_from_tap;
            c.flags.remove(ConnFlags::GUEST_FIN_PENDING);
        }
        if c.flags.contains(ConnFlags::GUEST_FIN_PENDING) && c.seq_from_tap == c.fin_seq {
            c.flags.remove(ConnFlags::GUEST_FIN_PENDING);
            c.flags |= ConnFlags::GUEST_FIN;
            c.seq_from_tap += 1;
            c.seq_queued = c.seq_from_tap;
            if !c.flags.contains(ConnFlags::FIN_SENT) {
                c.since = cx.now;
            }
            cx.try_op(SockOp::Shutdown {
                id: c.sock,
                write: true,
            });
            let at = c.deadline();
            self.arm(at);
        }
        let stale = self
            .flows
            .get(fid)
            .is_some_and(|c| report_stale(c) && !c.flags.contains(ConnFlags::SEND_BLOCKED));
        if !(stale && self.window_query(cx, fid)) {
            self.want_ctl(fid, ConnFlags::ACK_DUE);
        }
        self.maybe_done(cx, fid);
    }

    /// Ask for the socket's free space ([`SockOp::Query`]); the answer
    /// sends the ACK with the window ([`Tcp::query_done`]). The callers
    /// decide when: the handshake's end, sends that used up a report
    /// ([`report_stale`]), a writability edge, a zero-window probe (all but
    /// the first only for executors that report the space: a report
    /// exists). One query at a time, and not after the guest's FIN. While
    /// a read of the connection is outstanding (its completion comes first
    /// and would be taken for the answer) the query waits for it
    /// ([`ConnFlags::REFRESH_DUE`]). `true` if the query was issued.
    fn window_query(&mut self, cx: &mut Cx<'_>, fid: FlowId) -> bool {
        let reading = self.peek_out.is_some_and(|(f, _)| f == fid);
        let Some(c) = self.flows.get_mut(fid) else {
            return false;
        };
        if c.flags
            .intersects(ConnFlags::QUERY_OUT | ConnFlags::GUEST_FIN)
            || c.state != State::Established
        {
            return false;
        }
        if reading {
            c.flags |= ConnFlags::REFRESH_DUE;
            return false;
        }
        if !cx.try_op(SockOp::Query { id: c.sock }) {
            return false;
        }
        c.flags |= ConnFlags::QUERY_OUT;
        self.stats.window_queries += 1;
        true
    }

    /// Go back to the last acknowledged byte and send again (RFC 5681 §3.2
    /// fast retransmit, RFC 6298 §5.4 on timeout).
    fn rewind(&mut self, fid: FlowId) {
        if self.peek_out.is_some_and(|(f, _)| f == fid) {
            return;
        }
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        self.stats.retransmits += 1;
        c.dup_acks = 0;
        c.seq_to_tap = c.seq_ack_from_tap;
        // End of file is found again by the reads that follow the data.
        c.flags
            .remove(ConnFlags::FIN_SENT | ConnFlags::SOCK_DRAINED | ConnFlags::SOCK_EOF);
        self.want_peek(fid);
    }

    // ---------------------------------------------------------------------
    // Host side: readiness and completions
    // ---------------------------------------------------------------------

    /// Readiness of a socket this handler owns.
    pub(crate) fn handle_ready(&mut self, cx: &mut Cx<'_>, sock: SockId, ready: Ready) {
        match self.owner_of(sock) {
            Owner::Listener(_, idx) => {
                if ready.contains(Ready::READABLE) {
                    self.accept_next(cx, idx);
                }
            }
            Owner::Conn(s, fid) if self.is_splice(fid) => self.splice_ready(cx, fid, s, ready),
            Owner::Conn(_, fid) => self.conn_ready(cx, fid, ready),
            Owner::Accepting(..) | Owner::Free => {}
        }
    }

    fn conn_ready(&mut self, cx: &mut Cx<'_>, fid: FlowId, ready: Ready) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        match c.state {
            State::Connecting => {
                if ready.contains(Ready::ERROR)
                    || (ready.contains(Ready::HANGUP) && !ready.contains(Ready::WRITABLE))
                {
                    self.close(cx, fid, true);
                    return;
                }
                if ready.contains(Ready::WRITABLE) {
                    c.state = State::SynAckSent;
                    c.since = cx.now;
                    c.rto_at = Some(cx.now + c.rto());
                    let at = c.deadline();
                    self.arm(at);
                    self.want_ctl(fid, ConnFlags::SYN_DUE);
                }
                return;
            }
            State::SynAckSent | State::SynSent => {
                if ready.contains(Ready::ERROR) {
                    self.close(cx, fid, true);
                    return;
                }
                // Data waits until the handshake completes.
                if ready.contains(Ready::HANGUP) {
                    c.flags |= ConnFlags::SOCK_HUP;
                }
                return;
            }
            State::Established => {}
        }
        if ready.contains(Ready::ERROR) {
            self.close(cx, fid, true);
            return;
        }
        c.last_activity = cx.now;
        if ready.contains(Ready::HANGUP) {
            c.flags |= ConnFlags::SOCK_HUP;
        }
        if ready.intersects(Ready::READABLE | Ready::HANGUP) {
            c.flags.remove(ConnFlags::SOCK_DRAINED);
            self.want_peek(fid);
        }
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if !ready.contains(Ready::WRITABLE) || c.flags.contains(ConnFlags::QUERY_OUT) {
            return;
        }
        // A writability edge comes once: after a report of a nearly full
        // buffer it may be the only news of freed space. What the last
        // report left decides, not the window offered, which may still
        // look large (an earlier right edge is kept). Not otherwise: with
        // edge-triggered readiness every readable edge carries writability
        // too, and a report the guest has not used up is still good (a
        // query per edge cost three system calls per read of a download).
        let small = c
            .free_edge
            .is_some_and(|e| ahead(e, c.seq_from_tap) < 2 * u32::from(c.mss) || report_stale(c));
        let blocked = c.free_edge.is_some() && c.flags.contains(ConnFlags::SEND_BLOCKED);
        if (small || blocked) && self.window_query(cx, fid) {
            // The answer reopens the window.
            return;
        }
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if c.flags.contains(ConnFlags::SEND_BLOCKED) {
            c.flags.remove(ConnFlags::SEND_BLOCKED);
            self.want_ctl(fid, ConnFlags::ACK_DUE | ConnFlags::DUP_ACKS_DUE);
        }
    }

    /// The free send-buffer space after writability: a window update, and
    /// after refused bytes duplicate ACKs so that the guest resends them at
    /// once (RFC 5681 §3.2). Without an answer, the window reopens to the
    /// last edge the free space allowed.
    fn query_done(&mut self, fid: FlowId, res: Result<Done, Errno>) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        c.flags.remove(ConnFlags::QUERY_OUT);
        if let Ok(Done::Space { free, info }) = res {
            let w = usable_space(free, info);
            c.free_edge = Some(c.seq_from_tap + w);
            c.free_reported = w;
        }
        let mut what = ConnFlags::ACK_DUE;
        if c.flags.contains(ConnFlags::SEND_BLOCKED) {
            c.flags.remove(ConnFlags::SEND_BLOCKED);
            what |= ConnFlags::DUP_ACKS_DUE;
        }
        self.want_ctl(fid, what);
    }

    fn accept_next(&mut self, cx: &mut Cx<'_>, idx: u32) {
        let Some(l) = self.listeners.get(idx as usize).copied() else {
            return;
        };
        if l.accepting || !l.open {
            return;
        }
        let Some(id) = cx.socks.alloc_owned(TCP_SOCK) else {
            return;
        };
        if !cx.try_op(SockOp::Accept {
            listener: l.sock,
            id,
        }) {
            cx.socks.release(id);
            return;
        }
        if let Some(l) = self.listeners.get_mut(idx as usize) {
            l.accepting = true;
        }
        self.set_owner(id, Owner::Accepting(id, idx));
    }

    /// A completion for a socket this handler owns.
    pub(crate) fn handle_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        match self.owner_of(done.id) {
            Owner::Accepting(id, idx) => self.accepted(cx, id, idx, done.res),
            Owner::Listener(id, idx) => {
                if done.res.is_err() {
                    self.stats.listen_failed += 1;
                    if let Some(l) = self.listeners.get_mut(idx as usize) {
                        l.open = false;
                    }
                    self.set_owner(id, Owner::Free);
                    cx.socks.release(id);
                    cx.try_op(SockOp::Close { id });
                }
            }
            Owner::Conn(_, fid) if self.is_splice(fid) => {
                self.splice_completion(cx, fid, done.id, done.res)
            }
            Owner::Conn(_, fid) => self.conn_completion(cx, fid, done.res, tx),
            Owner::Free => {}
        }
    }

    fn conn_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        res: Result<Done, Errno>,
        tx: &mut TxRing<S>,
    ) {
        // Operations run in order: `Send`s queued before the read complete
        // before it (a read is always the last operation of a call).
        let (sending, querying) = self.flows.get(fid).map_or((false, false), |c| {
            (c.sends_inflight > 0, c.flags.contains(ConnFlags::QUERY_OUT))
        });
        if querying && (!sending || matches!(res, Ok(Done::Space { .. }))) {
            // Issued before any read of the same call (reads come last). A
            // `Space` answer is the query's even with sends still in flight
            // (a driver that queues a tap batch's sends behind it).
            self.query_done(fid, res);
            return;
        }
        if let Some((pf, slots)) = self.peek_out {
            if pf == fid && !sending {
                self.peek_out = None;
                self.peek_done(cx, fid, slots, res, tx);
                let due = self.flows.get_mut(fid).is_some_and(|c| {
                    let due = c.flags.contains(ConnFlags::REFRESH_DUE);
                    c.flags.remove(ConnFlags::REFRESH_DUE);
                    due
                });
                if due {
                    // Its ACK follows the answer.
                    self.window_query(cx, fid);
                }
                return;
            }
        }
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        match (c.state, res) {
            (State::Connecting, Ok(Done::Opened)) => {}
            (State::Connecting, Err(_)) => {
                self.stats.open_failed += 1;
                self.close(cx, fid, true);
            }
            (_, Ok(d @ (Done::Bytes(_) | Done::Sent { .. }))) if c.sends_inflight > 0 => {
                c.sends_inflight -= 1;
                let (n, free) = match d {
                    Done::Sent { bytes, free } => (bytes, Some(free)),
                    Done::Bytes(n) => (n, None),
                    _ => (0, None),
                };
                if !c.flags.contains(ConnFlags::SEND_BLOCKED) {
                    c.seq_from_tap += n.min(c.seq_queued.distance(c.seq_from_tap));
                    if let Some(free) = free {
                        c.free_edge = Some(c.seq_from_tap + free);
                        c.free_reported = free;
                    }
                }
                if c.sends_inflight == 0 {
                    self.sends_settled(cx, fid);
                }
            }
            (_, Err(e)) if c.sends_inflight > 0 => {
                c.sends_inflight -= 1;
                if e == Errno::EAGAIN {
                    if c.sends_inflight == 0 {
                        self.sends_settled(cx, fid);
                    }
                } else {
                    self.close(cx, fid, true);
                }
            }
            _ => {}
        }
    }

    fn accepted(&mut self, cx: &mut Cx<'_>, id: SockId, idx: u32, res: Result<Done, Errno>) {
        let mut out = None;
        if let Some(l) = self.listeners.get_mut(idx as usize) {
            l.accepting = false;
            out = l.out.then_some(l.ipv6);
        }
        self.set_owner(id, Owner::Free);
        let (peer, local) = match res {
            Ok(Done::Accepted { peer, local }) => (peer, local),
            _ => {
                // EAGAIN: nothing more to accept; other errors (EMFILE)
                // wait for the next readiness.
                cx.socks.release(id);
                return;
            }
        };
        let mut ok = false;
        if let Some(ipv6) = out {
            // `-T`: from the namespace to the same family's loopback on
            // the host, always spliced.
            if let Some((port, _)) = cx.config.fwd.tcp_out.lookup(local.port) {
                let addr = if ipv6 {
                    Ipv6Addr::LOCALHOST.into()
                } else {
                    Ipv4Addr::LOCALHOST.into()
                };
                let dst = SockAddrAny { addr, port };
                ok = self.new_spliced(cx, id, peer, dst, false);
            }
        }
        // A rule's target address (`-t 0.0.0.0/5000:192.0.2.5`) replaces
        // the guest's own as the destination, spliced or not.
        let target_addr = cx
            .config
            .fwd
            .tcp_in
            .lookup(local.port)
            .and_then(|(_, r)| r.to_addr)
            .filter(|_| out.is_none())
            .map(InAny::from);
        let splice_port = cx
            .config
            .fwd
            .tcp_in
            .lookup(local.port)
            .map(|(port, _)| port)
            .filter(|_| out.is_none() && cx.config.fwd.splice && peer.addr.is_loopback());
        if out.is_some() {
            // Done above.
        } else if let Some(port) = splice_port {
            let addr = if let Some(to) = target_addr {
                Some(to)
            } else if cx.config.fwd.host_lo_to_ns_lo {
                Some(if peer.addr.is_v4() {
                    Ipv4Addr::LOCALHOST.into()
                } else {
                    Ipv6Addr::LOCALHOST.into()
                })
            } else {
                // The namespace's own address (the loopback peer is not
                // link-local, so the global scope is picked); a
                // link-local one would need a scope: not spliced.
                cx.seen
                    .dst_for(cx.config, peer.addr)
                    .filter(|a| a.is_v4() || !crate::seen::is_link_local6(&a.0))
            };
            if let Some(addr) = addr {
                ok = self.new_spliced(cx, id, peer, SockAddrAny { addr, port }, true);
            }
        } else if let (Some(remote), Some((port, _))) = (
            crate::flow::fwd::host_to_guest_or_gateway(cx.config, peer.addr),
            cx.config.fwd.tcp_in.lookup(local.port),
        ) {
            // The rule's target address, else the address the guest uses,
            // of the peer's scope ([`crate::seen`]): a SLAAC guest's is not
            // the configured one.
            if let Some(g) = target_addr.or_else(|| cx.seen.dst_for(cx.config, remote)) {
                let key = TcpKey {
                    guest: SockAddrAny { addr: g, port },
                    remote: SockAddrAny {
                        addr: remote,
                        port: peer.port,
                    },
                };
                ok = self.new_inbound(cx, key, id);
            }
        }
        if !ok {
            self.stats.syn_refused += 1;
            cx.try_op(SockOp::Close { id });
            cx.socks.release(id);
        }
        // More may be waiting.
        self.accept_next(cx, idx);
    }

    fn new_inbound(&mut self, cx: &mut Cx<'_>, key: TcpKey, sock: SockId) -> bool {
        if self.index.get(&key).is_some() {
            return false;
        }
        let isn = self.isn(&key, cx.now);
        let mut c = Conn::new(key, sock, State::SynSent, isn, cx.now);
        c.seq_to_tap = isn + 1;
        c.rto_at = Some(cx.now + c.rto());
        let Some(v) = self.flows.vacant() else {
            return false;
        };
        let fid = v.id();
        if !self.index.insert(key, fid) {
            return false;
        }
        let at = c.deadline();
        v.insert(c);
        self.set_owner(sock, Owner::Conn(sock, fid));
        self.arm(at);
        self.stats.opened += 1;
        self.want_ctl(fid, ConnFlags::SYN_DUE);
        true
    }

    /// A read finished: frame what it gave, or send our FIN at end of file.
    fn peek_done<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        slots: TxSlots,
        res: Result<Done, Errno>,
        tx: &mut TxRing<S>,
    ) {
        let macs = cx.macs();
        let Some(c) = self.flows.get_mut(fid) else {
            tx.cancel_pending();
            return;
        };
        let n = match res {
            Ok(Done::Bytes(n)) => n,
            Err(e) if e == Errno::EAGAIN => {
                tx.cancel_pending();
                c.flags |= ConnFlags::SOCK_DRAINED;
                return;
            }
            _ => {
                tx.cancel_pending();
                self.close(cx, fid, true);
                return;
            }
        };
        let asked = slots.count * u32::from(slots.payload_len);
        let n = n.min(asked);
        if n == 0 {
            tx.cancel_pending();
            c.flags |= ConnFlags::SOCK_EOF | ConnFlags::SOCK_DRAINED;
            if !c.flags.contains(ConnFlags::FIN_SENT) {
                // ACK_DUE carries the FIN (see `emit_ctl`).
                if !c.flags.contains(ConnFlags::GUEST_FIN) {
                    c.since = cx.now;
                }
                self.want_ctl(fid, ConnFlags::ACK_DUE);
            }
            return;
        }
        let hl = usize::from(slots.payload_offset);
        let window = advertise(c);
        // Segments of one super-frame carry the guest's MSS (as
        // `issue_peek` sized the slots), so the device cuts it there.
        let gso = cx
            .config
            .guest_gso
            .then(|| data_mss(c, cx.config.mtu).min(0xffff) as u16);
        let mut done = 0u32;
        let mut i = 0u32;
        while done < n && i < slots.count {
            let plen = (n - done).min(u32::from(slots.payload_len));
            let seg = Seg {
                seq: c.seq_to_tap + done,
                ack: c.seq_from_tap,
                flags: if done + plen == n {
                    TcpFlags::ACK | TcpFlags::PSH
                } else {
                    TcpFlags::ACK
                },
                window,
                options: &[],
            };
            let ok = tx
                .pending_frame_mut(slots.first + i)
                .and_then(|buf| frame::write_data(buf, macs, &c.key, &seg, plen as usize, gso))
                .is_some_and(|(len, offload)| tx.commit_pending(len, offload));
            debug_assert_eq!(hl, frame::hdr_len(!c.key.guest.addr.is_v4()));
            if !ok {
                break;
            }
            done += plen;
            i += 1;
        }
        tx.cancel_pending();
        c.seq_to_tap += done;
        c.last_activity = cx.now;
        if done < asked && !c.flags.contains(ConnFlags::SOCK_HUP) {
            c.flags |= ConnFlags::SOCK_DRAINED;
        }
        let again = !c.flags.contains(ConnFlags::SOCK_DRAINED);
        if c.rto_at.is_none() && done > 0 {
            let at = cx.now + c.rto();
            c.rto_at = Some(at);
            self.arm(at);
        }
        if again {
            self.want_peek(fid);
        }
    }

    // ---------------------------------------------------------------------
    // Queues and emission
    // ---------------------------------------------------------------------

    fn want_ctl(&mut self, fid: FlowId, what: ConnFlags) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        c.flags |= what;
        if !c.flags.contains(ConnFlags::IN_CTL_Q) && self.ctl_q.push(fid).is_ok() {
            c.flags |= ConnFlags::IN_CTL_Q;
        }
    }

    fn want_peek(&mut self, fid: FlowId) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if !c.flags.contains(ConnFlags::IN_PEEK_Q) && self.peek_q.push(fid).is_ok() {
            c.flags |= ConnFlags::IN_PEEK_Q;
        }
    }

    fn queue_rst(&mut self, r: PendingRst) {
        if self.rst_q.push(r).is_err() {
            self.stats.tx_full += 1;
        }
    }

    /// Emit deferred control segments, then issue the next read: called at
    /// the end of every `handle_*` call. Nothing happens while a read is
    /// outstanding.
    pub(crate) fn flush<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) {
        self.flush_discards(cx);
        if self.peek_out.is_some() || self.peek_orphan.is_some() || tx.pending() > 0 {
            return;
        }
        self.retry = false;
        while let Some(r) = self.rst_q.pop() {
            if !self.emit_rst(cx, &r, tx) {
                self.stats.tx_full += 1;
                self.retry = true;
                break;
            }
        }
        // Bounded by the queue length at entry: requeued ones wait.
        for _ in 0..self.ctl_q_len_hint() {
            let Some(fid) = self.ctl_q.pop() else { break };
            if let Some(c) = self.flows.get_mut(fid) {
                c.flags.remove(ConnFlags::IN_CTL_Q);
            } else {
                continue;
            }
            if !self.emit_ctl(cx, fid, tx) {
                self.retry = true;
                self.want_ctl(fid, ConnFlags::empty());
                break;
            }
        }
        // One read at a time.
        while self.peek_out.is_none() {
            let Some(fid) = self.peek_q.pop() else { break };
            let Some(c) = self.flows.get_mut(fid) else {
                continue;
            };
            c.flags.remove(ConnFlags::IN_PEEK_Q);
            match self.issue_peek(cx, fid, tx) {
                PeekStart::Issued | PeekStart::Nothing => {}
                PeekStart::NoRoom => {
                    self.want_peek(fid);
                    self.retry = true;
                    break;
                }
            }
        }
    }

    /// Remove what the guest acknowledged from the sockets: one
    /// [`SockOp::Discard`] per connection for all the ACKs of a call, so
    /// that a batch of ACKs costs one `recv` (each takes the socket's lock,
    /// and the kernel may answer each with a window update). Called before
    /// any read is issued (a `Peek` skips only what is still unacknowledged,
    /// counted from the head of the queue) and before a socket is closed.
    fn flush_discards(&mut self, cx: &mut Cx<'_>) {
        while let Some(fid) = self.discard_q.pop() {
            self.discard_now(cx, fid);
        }
    }

    fn discard_now(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        c.flags.remove(ConnFlags::IN_DISCARD_Q);
        let len = core::mem::take(&mut c.discard_due);
        if len > 0 {
            cx.try_op(SockOp::Discard { id: c.sock, len });
        }
    }

    fn ctl_q_len_hint(&self) -> usize {
        self.flows.capacity()
    }

    /// Emit what a connection owes the guest: SYN/SYN-ACK, ACK (with our
    /// FIN once the socket reached end of file and every byte was sent),
    /// duplicate ACKs, window probes. `false` if the ring was full.
    fn emit_ctl<S: TxStorage>(&mut self, cx: &mut Cx<'_>, fid: FlowId, tx: &mut TxRing<S>) -> bool {
        let macs = cx.macs();
        let mtu = cx.config.mtu;
        let Some(c) = self.flows.get_mut(fid) else {
            return true;
        };
        if c.flags.contains(ConnFlags::SYN_DUE) {
            let ipv6 = !c.key.guest.addr.is_v4();
            let our_mss = mss_for(mtu, ipv6);
            let (flags, ack, ws) = match c.state {
                State::SynSent => (TcpFlags::SYN, SeqNum(0), Some(WS_TO_TAP)),
                _ => (
                    TcpFlags::SYN | TcpFlags::ACK,
                    c.seq_from_tap,
                    c.flags.contains(ConnFlags::WS).then_some(WS_TO_TAP),
                ),
            };
            let opts = TcpOptionsWriter::syn(our_mss, ws, false, None);
            let seg = Seg {
                seq: c.isn_to_tap,
                ack,
                flags,
                window: WINDOW_TO_TAP.min(0xffff) as u16,
                options: opts.as_bytes(),
            };
            if !push_seg(tx, macs, &c.key, &seg) {
                return false;
            }
            c.seq_to_tap = c.isn_to_tap + 1;
            if c.state != State::SynSent {
                c.wnd_edge = c.seq_from_tap + u32::from(seg.window);
            }
            c.flags.remove(ConnFlags::SYN_DUE);
            return true;
        }
        if c.state != State::Established {
            c.flags.remove(ConnFlags::ACK_DUE | ConnFlags::DUP_ACKS_DUE);
            return true;
        }
        let mut flags = TcpFlags::ACK;
        let send_fin = c.flags.contains(ConnFlags::SOCK_EOF)
            && !c.flags.contains(ConnFlags::FIN_SENT)
            && self.peek_out.map_or(true, |(f, _)| f != fid);
        if send_fin {
            flags |= TcpFlags::FIN;
        }
        if !c
            .flags
            .intersects(ConnFlags::ACK_DUE | ConnFlags::DUP_ACKS_DUE)
            && !send_fin
        {
            return true;
        }
        // A zero-window probe carries SND.NXT - 1: an old sequence number,
        // which the guest must answer with an ACK and its window (RFC 9293
        // §3.8.6.1, §3.10.7.4). An empty segment at SND.NXT is acceptable
        // and taken silently, so a lost window update would never be sent
        // again.
        let probe = c.flags.contains(ConnFlags::PROBE_DUE) && !send_fin && c.in_flight() == 0;
        let seg = Seg {
            seq: if probe {
                c.seq_to_tap - 1
            } else {
                c.seq_to_tap
            },
            ack: c.seq_from_tap,
            flags,
            window: advertise(c),
            options: &[],
        };
        if !push_seg(tx, macs, &c.key, &seg) {
            return false;
        }
        if send_fin {
            c.flags |= ConnFlags::FIN_SENT;
            c.seq_to_tap += 1;
            if c.rto_at.is_none() {
                let at = cx.now + c.rto();
                c.rto_at = Some(at);
                self.next_deadline = Instant::min_deadline(self.next_deadline, Some(at));
            }
            let at = c.deadline();
            self.next_deadline = Instant::min_deadline(self.next_deadline, Some(at));
        }
        if c.flags.contains(ConnFlags::DUP_ACKS_DUE) {
            let seg = Seg {
                seq: c.seq_to_tap,
                flags: TcpFlags::ACK,
                ..seg
            };
            for _ in 0..3 {
                push_seg(tx, macs, &c.key, &seg);
            }
        }
        c.flags
            .remove(ConnFlags::ACK_DUE | ConnFlags::DUP_ACKS_DUE | ConnFlags::PROBE_DUE);
        true
    }

    fn emit_rst<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        r: &PendingRst,
        tx: &mut TxRing<S>,
    ) -> bool {
        let (flags, ack) = match r.ack {
            Some(a) => (TcpFlags::RST | TcpFlags::ACK, a),
            None => (TcpFlags::RST, SeqNum(0)),
        };
        let seg = Seg {
            seq: r.seq,
            ack,
            flags,
            window: 0,
            options: &[],
        };
        let ok = push_seg(tx, cx.macs(), &r.key, &seg);
        if ok {
            self.stats.rst_sent += 1;
        }
        ok
    }

    fn issue_peek<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        tx: &mut TxRing<S>,
    ) -> PeekStart {
        let (mtu, gso) = (cx.config.mtu, cx.config.guest_gso);
        let Some(c) = self.flows.get_mut(fid) else {
            return PeekStart::Nothing;
        };
        if c.state != State::Established
            || c.flags
                .intersects(ConnFlags::SOCK_DRAINED | ConnFlags::FIN_SENT)
        {
            return PeekStart::Nothing;
        }
        let in_flight = c.in_flight();
        let avail = c.wnd_from_tap.saturating_sub(in_flight);
        if avail == 0 {
            // Zero window: probe on the timer.
            if c.rto_at.is_none() {
                let at = cx.now + c.rto();
                c.rto_at = Some(at);
                self.arm(at);
            }
            return PeekStart::Nothing;
        }
        let ipv6 = !c.key.guest.addr.is_v4();
        let hl = frame::hdr_len(ipv6);
        let room = tx.frame_cap().saturating_sub(hl) as u32;
        let mss = data_mss(c, mtu).min(room).max(1);
        // With offloads, one slot takes as many whole segments as a 64 KiB
        // IP packet holds: the guest's device cuts the super-frame.
        let per_slot = if gso {
            (super_payload(ipv6).min(room) / mss).max(1) * mss
        } else {
            mss
        };
        let (count, plen) = if avail >= per_slot {
            ((avail / per_slot).min(MAX_PEEK_SLOTS), per_slot)
        } else {
            (1, avail)
        };
        // No more than the ring's byte budget (the driver's memory bound):
        // the rest waits for the next flush, held back by the window.
        let fit = tx.budget_frames(hl + plen as usize);
        let count = count.min(u32::try_from(fit).unwrap_or(u32::MAX));
        if count == 0 {
            return PeekStart::NoRoom;
        }
        let Some(slots) = tx.reserve_slots(count, hl as u16, plen as u16) else {
            return PeekStart::NoRoom;
        };
        if !cx.try_op(SockOp::Peek {
            id: c.sock,
            skip: c.data_in_flight(),
            into: slots,
        }) {
            tx.cancel_pending();
            return PeekStart::NoRoom;
        }
        self.peek_out = Some((fid, slots));
        PeekStart::Issued
    }

    // ---------------------------------------------------------------------
    // Closing and timeouts
    // ---------------------------------------------------------------------

    // ---------------------------------------------------------------------
    // Spliced connections
    // ---------------------------------------------------------------------

    fn is_splice(&self, fid: FlowId) -> bool {
        self.flows.get(fid).is_some_and(|c| c.splice.is_some())
    }

    /// Start a spliced connection for the accepted socket `sock` (peer
    /// `peer`): open a socket connected to `dst`, inside the namespace if
    /// `in_ns` (`-t` from the host's loopback), else in the driver's own
    /// (`-T` from the namespace's loopback); when it connects, hand both to
    /// the executor ([`SockOp::Splice`]). The flow takes a table entry (so
    /// a full table refuses it) but no index key: no guest segment can
    /// reach it. Returns whether it started; if not, the caller closes
    /// `sock`.
    pub(crate) fn new_spliced(
        &mut self,
        cx: &mut Cx<'_>,
        sock: SockId,
        peer: SockAddrAny,
        dst: SockAddrAny,
        in_ns: bool,
    ) -> bool {
        let Some(v) = self.flows.vacant() else {
            return false;
        };
        let fid = v.id();
        let Some(other) = cx.socks.alloc_owned(TCP_SOCK) else {
            return false;
        };
        let mut spec = SockSpec::new(Proto::Tcp, !dst.addr.is_v4());
        spec.peer = Some(dst);
        if in_ns {
            spec.flags |= SockFlags::IN_NS;
        }
        if !cx.try_op(SockOp::Open { id: other, spec }) {
            cx.socks.release(other);
            return false;
        }
        let key = TcpKey {
            guest: dst,
            remote: peer,
        };
        let mut c = Conn::new(key, sock, State::Connecting, SeqNum(0), cx.now);
        c.splice = Some(other);
        let at = c.deadline();
        v.insert(c);
        self.set_owner(sock, Owner::Conn(sock, fid));
        self.set_owner(other, Owner::Conn(other, fid));
        self.arm(at);
        self.stats.opened += 1;
        self.stats.spliced += 1;
        true
    }

    /// Readiness of either socket of a spliced connection still connecting
    /// (once spliced, the executor keeps it).
    fn splice_ready(&mut self, cx: &mut Cx<'_>, fid: FlowId, sock: SockId, ready: Ready) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if c.flags.contains(ConnFlags::SPLICED) {
            return;
        }
        if Some(sock) != c.splice {
            // The accepted side: its data and end of file wait for the
            // splice, which reads whatever is queued when it starts; an
            // error there (the peer gave up) ends it all.
            if ready.contains(Ready::ERROR) {
                self.splice_close(cx, fid);
            }
            return;
        }
        // A refused or failed connect is handed over too: the splice ends
        // at once with its error and resets the accepted connection, so the
        // peer sees a reset rather than an orderly end of file.
        let failed = ready.contains(Ready::ERROR)
            || (ready.contains(Ready::HANGUP) && !ready.contains(Ready::WRITABLE));
        if failed || ready.contains(Ready::WRITABLE) {
            let (id, peer) = (c.sock, sock);
            if cx.try_op(SockOp::Splice { id, peer }) {
                c.flags |= ConnFlags::SPLICED;
                c.state = State::Established;
                c.since = cx.now;
                c.last_activity = cx.now;
                c.rto_at = Some(cx.now + SPLICE_CHECK);
                let at = c.deadline();
                self.arm(at);
            } else {
                self.splice_close(cx, fid);
            }
        }
    }

    /// A completion for a spliced connection: the `Open` of its second
    /// socket, or the end of the splice.
    fn splice_completion(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        sock: SockId,
        res: Result<Done, Errno>,
    ) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        match res {
            Ok(Done::Opened) if Some(sock) == c.splice => {}
            Ok(Done::Splicing { moved, half_closed }) => {
                c.flags.remove(ConnFlags::QUERY_OUT);
                if moved != c.splice_moved {
                    c.splice_moved = moved;
                    c.last_activity = cx.now;
                }
                if half_closed && !c.flags.contains(ConnFlags::SPLICE_HALF) {
                    // The end of file just passed on counts as activity.
                    c.flags |= ConnFlags::SPLICE_HALF;
                    c.last_activity = cx.now;
                }
                let limit = if c.flags.contains(ConnFlags::SPLICE_HALF) {
                    FIN_TIMEOUT
                } else {
                    IDLE_TIMEOUT
                };
                if c.last_activity + limit <= cx.now {
                    // The executor resets both connections on `Close`.
                    self.stats.splice_timeouts += 1;
                    self.splice_close(cx, fid);
                }
            }
            Ok(Done::Spliced { .. }) => self.splice_close(cx, fid),
            Err(_) => {
                if c.flags.contains(ConnFlags::SPLICED) {
                    self.stats.splice_errors += 1;
                }
                self.splice_close(cx, fid);
            }
            Ok(_) => {}
        }
    }

    /// Remove a spliced connection and close both its sockets.
    fn splice_close(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        let Some(c) = self.flows.remove(fid) else {
            return;
        };
        for s in [Some(c.sock), c.splice].into_iter().flatten() {
            self.set_owner(s, Owner::Free);
            cx.try_op(SockOp::Close { id: s });
            cx.socks.release(s);
        }
        self.stats.closed += 1;
    }

    fn maybe_done(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        if self.flows.get(fid).is_some_and(Conn::is_done) {
            self.close(cx, fid, false);
        }
    }

    /// Remove a connection and close its socket; with `reset`, send the
    /// guest an RST first.
    fn close(&mut self, cx: &mut Cx<'_>, fid: FlowId, reset: bool) {
        if self.is_splice(fid) {
            self.splice_close(cx, fid);
            return;
        }
        // Bytes left unread would make the kernel reset the peer on close.
        self.discard_now(cx, fid);
        let orphaned = self.peek_out.is_some_and(|(f, _)| f == fid);
        if orphaned {
            self.peek_out = None;
        }
        let Some(c) = self.flows.remove(fid) else {
            return;
        };
        if orphaned {
            // Its completion comes back stale and cancels the slots.
            self.peek_orphan = Some(c.sock);
        }
        self.index.remove(&c.key);
        self.set_owner(c.sock, Owner::Free);
        cx.try_op(SockOp::Close { id: c.sock });
        cx.socks.release(c.sock);
        self.stats.closed += 1;
        if reset {
            let (seq, ack) = match c.state {
                State::Connecting => (SeqNum(0), Some(c.seq_from_tap)),
                _ => (c.seq_to_tap, Some(c.seq_from_tap)),
            };
            self.queue_rst(PendingRst {
                key: c.key,
                seq,
                ack,
            });
        }
    }

    /// Expire deadlines due at `cx.now`.
    pub(crate) fn handle_timeout(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now;
        if self.next_deadline.map_or(true, |d| d > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        for i in 0..self.flows.capacity() {
            let Some(fid) = self.flows.id_at(i) else {
                continue;
            };
            self.conn_timeout(cx, fid);
            if let Some(c) = self.flows.get(fid) {
                next = Instant::min_deadline(next, Some(c.deadline()));
            }
        }
        self.next_deadline = next;
    }

    fn conn_timeout(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        let now = cx.now;
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if c.flags.contains(ConnFlags::SPLICED) {
            // Time for a progress check; the answer decides (see
            // `splice_completion`). An unanswered one is simply repeated.
            if c.rto_at.is_some_and(|at| at <= now) {
                c.rto_at = Some(now + SPLICE_CHECK);
                if cx.try_op(SockOp::Query { id: c.sock }) {
                    c.flags |= ConnFlags::QUERY_OUT;
                }
            }
            return;
        }
        if c.state_deadline() <= now {
            self.close(cx, fid, true);
            return;
        }
        let Some(rto) = c.rto_at.filter(|at| *at <= now) else {
            return;
        };
        let _ = rto;
        c.retries = c.retries.saturating_add(1);
        if c.retries > MAX_RETRIES {
            self.close(cx, fid, true);
            return;
        }
        c.rto_at = Some(now + c.rto());
        match c.state {
            State::SynAckSent | State::SynSent => {
                self.stats.retransmits += 1;
                self.want_ctl(fid, ConnFlags::SYN_DUE);
            }
            State::Connecting => c.rto_at = None,
            State::Established => {
                if c.in_flight() > 0 {
                    self.rewind(fid);
                } else if c.wnd_from_tap == 0 {
                    // Zero-window probe: an ACK the guest answers with its
                    // window.
                    self.want_ctl(fid, ConnFlags::ACK_DUE | ConnFlags::PROBE_DUE);
                } else {
                    c.rto_at = None;
                    c.retries = 0;
                    c.flags.remove(ConnFlags::PROBE_DUE);
                    self.want_peek(fid);
                }
            }
        }
    }
}

enum PeekStart {
    Issued,
    Nothing,
    NoRoom,
}

/// MSS we offer for an MTU: the MTU less IP and TCP headers (RFC 9293
/// §3.7.1).
fn mss_for(mtu: u16, ipv6: bool) -> u16 {
    mtu.saturating_sub(if ipv6 { 60 } else { 40 }).max(64)
}

/// Payload bytes of a data segment to the guest: its MSS, at most ours
/// for the link MTU.
fn data_mss(c: &Conn, mtu: u16) -> u32 {
    let ipv6 = !c.key.guest.addr.is_v4();
    u32::from(c.mss.min(mss_for(mtu, ipv6))).clamp(1, 0xffff)
}

/// Most payload one super-frame to the guest carries: what fits a 64 KiB
/// IPv4 total length (RFC 791 §3.1) or IPv6 payload length (RFC 8200 §3,
/// which excludes the fixed header), after option-less IP and TCP headers.
fn super_payload(ipv6: bool) -> u32 {
    if ipv6 {
        65535 - 20
    } else {
        65535 - 20 - 20
    }
}

/// The most we offer the guest: [`WINDOW_TO_TAP`], or 64 KiB less one
/// without window scaling.
fn window_cap(c: &Conn) -> u32 {
    if c.flags.contains(ConnFlags::WS) {
        WINDOW_TO_TAP
    } else {
        WINDOW_TO_TAP.min(0xffff)
    }
}

/// Bytes from `from` to `edge`, zero if `edge` is not ahead.
fn ahead(edge: SeqNum, from: SeqNum) -> u32 {
    if edge.gt(from) {
        edge.distance(from)
    } else {
        0
    }
}

/// The window a report of free send-buffer space allows: all of it, or,
/// when `TCP_INFO` tells how much the path takes, what keeps the bytes
/// waiting in the kernel (`notsent`) under [`PATH_RTTS`] flights (the
/// congestion window, or the peer's window if smaller) or what the path
/// sends in [`PATH_HORIZON_US`], whichever is more, but never less than
/// [`PATH_FLOOR`]: the guest then queues only what leaves soon, instead of
/// a whole send buffer behind a slow path. A window this limited is used up
/// sooner, and asked for again when half of it is ([`Tcp::window_query`]).
///
/// The floor is what keeps this from stalling: nothing but the guest's own
/// segments triggers a refresh (a timer per connection would cost a table
/// sweep each time), so the window must stay open enough for them. A guest
/// much faster than the path can therefore still grow the kernel's queue,
/// by up to the floor per refresh, until the free space itself binds.
fn usable_space(free: u32, info: Option<crate::TcpInfo>) -> u32 {
    let Some(i) = info else {
        return free;
    };
    if i.snd_mss == 0 || i.snd_cwnd == 0 || i.rtt_us == 0 {
        return free;
    }
    let mut flight = u64::from(i.snd_cwnd) * u64::from(i.snd_mss);
    if let Some(w) = i.snd_wnd {
        flight = flight.min(u64::from(w));
    }
    let per_horizon = flight * u64::from(PATH_HORIZON_US) / u64::from(i.rtt_us);
    let budget = (flight * u64::from(PATH_RTTS)).max(per_horizon);
    let room = budget
        .saturating_sub(u64::from(i.notsent))
        .max(u64::from(PATH_FLOOR));
    free.min(u32::try_from(room).unwrap_or(u32::MAX))
}

/// Whether the last free-space report is used up: the guest sent more
/// than half of the window it allowed since, or anything at all after a
/// report of none (an earlier right edge kept its window open).
fn report_stale(c: &Conn) -> bool {
    c.free_edge.is_some_and(|e| {
        let start = e - c.free_reported;
        2 * u64::from(c.seq_from_tap.distance(start)) > u64::from(c.free_reported)
    })
}

/// The window we offer the guest, in bytes: the socket's free send-buffer
/// space (when the executor reports it) up to [`window_cap`], and never
/// less than what keeps the right edge already advertised; zero after the
/// kernel refused bytes, and after the guest's FIN.
fn window_bytes(c: &Conn) -> u32 {
    if c.flags.contains(ConnFlags::SEND_BLOCKED) || c.flags.contains(ConnFlags::GUEST_FIN) {
        return 0;
    }
    let cap = window_cap(c);
    let free = match c.free_edge {
        Some(e) => ahead(e, c.seq_from_tap).min(cap),
        None => cap,
    };
    free.max(ahead(c.wnd_edge, c.seq_from_tap).min(cap))
}

/// The window field of the next segment to the guest (scaled), recording
/// the right edge it advertises. The part of the window that keeps an
/// earlier edge is rounded up, so scaling never shrinks it.
fn advertise(c: &mut Conn) -> u16 {
    let ws = c.ws_to_tap;
    if c.flags.contains(ConnFlags::SEND_BLOCKED) || c.flags.contains(ConnFlags::GUEST_FIN) {
        // Refused bytes (or nothing more to take): shrink on purpose.
        c.wnd_edge = c.seq_from_tap;
        return 0;
    }
    let w = window_bytes(c);
    let keep = ahead(c.wnd_edge, c.seq_from_tap).min(window_cap(c));
    let unit = (1u32 << ws) - 1;
    let field = (w >> ws).max(keep.saturating_add(unit) >> ws).min(0xffff);
    let edge = c.seq_from_tap + (field << ws);
    c.wnd_edge = c.wnd_edge.max(edge);
    field as u16
}

/// Record the guest's MSS and window scale from its SYN (RFC 9293 §3.7.1,
/// RFC 7323 §2.2: scaling only when both sides send the option; shift at
/// most 14).
fn take_syn_options(c: &mut Conn, seg: &TcpRepr<'_>) {
    c.mss = seg.mss().unwrap_or(536).max(64);
    c.wnd_from_tap = u32::from(seg.window);
    if let Some(ws) = seg.window_scale() {
        c.flags |= ConnFlags::WS;
        c.ws_from_tap = ws.min(14);
        c.ws_to_tap = WS_TO_TAP;
    }
}

/// Build a segment without payload into the next free slot.
fn push_seg<S: TxStorage>(
    tx: &mut TxRing<S>,
    macs: (MacAddr, MacAddr),
    key: &TcpKey,
    seg: &Seg<'_>,
) -> bool {
    tx.push_with(|buf| frame::write(buf, macs, key, seg, 0))
}
