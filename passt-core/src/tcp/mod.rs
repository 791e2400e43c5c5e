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
//!   the socket's free send-buffer space, up to [`WINDOW_TO_TAP`], and
//!   where the executor reports `TCP_INFO` ([`crate::TcpInfo`]) what the
//!   path takes within [`PATH_RTTS`] flights (at least [`PATH_FLOOR`])
//!   (`tcp/window.rs` tells when it is asked for and how it is kept).
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
//!   edge of an edge-triggered socket carries writability too. With
//!   offloads ([`crate::config::Config::guest_gso`]), a slot holds a TCP
//!   super-frame (`tcp/tx.rs`).
//! - **Handshakes.** A guest SYN opens a socket with a non-blocking connect
//!   to the same destination, the gateway/`map_host_loopback` address
//!   mapped to the host's loopback and `map_guest_addr` to the host's own
//!   address, port 53 of `dns_forward` the host's resolver (`flow::fwd`);
//!   writability ends the connect and sends the SYN-ACK (our MSS from the
//!   MTU, window scaling if the guest offered it); an error sends RST.
//!   Listening sockets for the forwarded ports (`config.fwd.tcp_in`)
//!   accept connections, which become a SYN to the guest from the peer's
//!   address (loopback and the host's own address mapped to the
//!   guest-side addresses that stand for them), to the address the guest
//!   was seen using in the peer's scope, link-local or global (`seen.rs`;
//!   the configured one until the guest spoke).
//! - **Closing.** Guest FIN (after every earlier byte was accepted) is
//!   `shutdown(SHUT_WR)`; end of file on the socket is a FIN to the guest
//!   once every byte before it was sent; each direction closes on its own.
//!   When both FINs are exchanged and ours is acknowledged, the socket is
//!   closed. An RST from the guest closes the socket; a socket error resets
//!   the guest.
//!
//! # Spliced connections (pasta's loopback fast path)
//!
//! A connection accepted on a `-t` listener from the host's loopback, with
//! `config.fwd.splice` (pasta without `--no-splice`), and every connection
//! accepted on a `-T` listener (`config.fwd.tcp_out`) are not translated
//! into frames: a second socket is connected on the other side and the
//! executor moves the bytes between the two inside the kernel
//! ([`SockOp::Splice`]) until it reports the end
//! ([`Done::Spliced`](crate::contract::Done::Spliced)) or the translator
//! finds the connection idle ([`TcpStats::splice_timeouts`]). See
//! `tcp/splice.rs`.
//!
//! # Files
//!
//! This file holds the handler's state and the entry points for guest
//! segments, socket readiness and completions, and timeouts, which
//! dispatch to the rest:
//!
//! - `segment.rs`: guest segments (RFC 9293 §3.10.7);
//! - `sock.rs`: readiness and completions of a connection's socket;
//! - `window.rs`: the window we offer the guest, segment sizes;
//! - `tx.rs`: frames to the guest, the deferred queues and reads
//!   (`Tcp::flush`, at the end of every call);
//! - `listen.rs`: listening sockets, accepted connections, `auto` ports,
//!   run-time forwarding changes (`crate::change`);
//! - `splice.rs`: spliced connections;
//! - `timer.rs`: timeouts and retransmission;
//! - `conn.rs`: one connection's state; `frame.rs`: building segments.
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
//! direction ended, checked every 30 s (`tcp/splice.rs`).
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
mod listen;
mod segment;
mod sock;
mod splice;
mod timer;
mod tx;
mod window;

use crate::addr::{InAny, SockAddrAny};
use crate::buf::{TxRing, TxSlots, TxStorage};
use crate::change::Progress;
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
use crate::contract::transport::Transport;
use crate::contract::{Completion, DropReason, Ready, SockId, SockOp};
use crate::time::Instant;
use crate::wire::tcp::{SeqNum, TcpFlags};

use conn::{Conn, State};

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
    /// The address it is bound to.
    bind: InAny,
    /// Opened for the forwarding change in flight, not in force yet: it
    /// accepts nothing until the swap (`crate::change`).
    pending: bool,
    /// In force, and the rules of the change in flight want it too.
    keep: bool,
    /// Removed from the rules: its `Close` waits to be handed out
    /// ([`Tcp::next_close_op`]); its socket slot is still taken.
    closing: bool,
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
    /// This handler's part of the forwarding change in flight.
    pub(crate) change: Progress,
    /// Listeners marked `closing`, and where the next search for one
    /// starts.
    to_close: u32,
    close_from: usize,
    /// Where the next search for a free listener entry starts, during a
    /// change (reset when it begins).
    free_from: usize,
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
            listeners: Vec::with_capacity(ports * 2 + l.change_listeners as usize),
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
            change: Progress::default(),
            to_close: 0,
            close_from: 0,
            free_from: 0,
        }
    }

    /// Connections in the table.
    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// Record who `sock` belongs to, here and in the translator's socket
    /// slots (which route its readiness and completions to this handler).
    fn set_owner(&mut self, sock: SockId, o: Owner) {
        if let Some(slot) = self.owner.get_mut(sock.slot() as usize) {
            *slot = o;
        }
    }

    /// Who `sock` belongs to; [`Owner::Free`] for a stale id.
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

    /// Whether work waits for room in the tx ring (segments to build, a
    /// read to start) and no read is outstanding: the driver retries it
    /// once it has written the ring out.
    pub(crate) fn wants_retry(&self) -> bool {
        self.retry && self.peek_out.is_none() && self.peek_orphan.is_none()
    }

    /// Bring the next sweep forward to `at` if it is earlier.
    fn arm(&mut self, at: Instant) {
        self.next_deadline = Instant::min_deadline(self.next_deadline, Some(at));
    }

    /// Our initial sequence number for a connection.
    fn isn(&self, key: &TcpKey, now: Instant) -> SeqNum {
        // RFC 6528: a clock plus a keyed hash of the connection's addresses.
        let mut h = SipHasher13::new(self.secret);
        key.hash_into(&mut h);
        let clock = (now.as_nanos() / 4000) as u32;
        SeqNum((h.finish() as u32).wrapping_add(clock))
    }

    /// Close a connection once both directions are closed and our FIN is
    /// acknowledged.
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
}

impl Transport for Tcp {
    type Input<'a> = TcpIn<'a>;

    /// Take one guest segment. RFC 9293 §3.10.7.
    fn handle_tap<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        p: &TcpIn<'_>,
        _tx: &mut TxRing<S>,
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

    /// Readiness of a socket this handler owns.
    fn handle_ready<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        sock: SockId,
        _tag: u32,
        ready: Ready,
        _tx: &mut TxRing<S>,
    ) {
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

    /// A completion for a socket this handler owns.
    fn handle_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        _tag: u32,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        match self.owner_of(done.id) {
            Owner::Accepting(id, idx) => self.accepted(cx, id, idx, done.res),
            Owner::Listener(id, idx) => {
                if let Some(l) = self.listeners.get_mut(idx as usize).filter(|l| l.pending) {
                    self.change.opened(l.port, done.res.map(|_| ()));
                    if done.res.is_err() {
                        l.pending = false;
                    }
                }
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

    /// Expire deadlines due at `cx.now`.
    fn handle_timeout<S: TxStorage>(&mut self, cx: &mut Cx<'_>, _tx: &mut TxRing<S>) {
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

    /// The earliest deadline, if any.
    fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline
    }
}
