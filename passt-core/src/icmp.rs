//! ICMP and ICMPv6 echo through unprivileged "ping" sockets (RFC 792,
//! RFC 4443 §4).
//!
//! # Model
//!
//! An echo flow is keyed by the guest's address, the destination as the
//! guest addresses it and the echo identifier. Its first request opens a
//! ping socket (`SOCK_DGRAM`, `IPPROTO_ICMP` or `IPPROTO_ICMPV6`,
//! [`Proto::Icmp`]) connected to the destination, mapped as UDP maps it
//! (the gateway stands for the host's loopback, see [`crate::udp`]).
//! Every request is sent whole with a [`SockOp::Send`] naming the guest's
//! ICMP message in its frame: the kernel replaces the identifier with the
//! socket's own and computes the checksum. Replies are read like UDP
//! datagrams, one per tx slot ([`SockOp::Recv`]); the identifier is set
//! back to the guest's, the checksum recomputed and the IP and Ethernet
//! headers written in front.
//!
//! ICMPv6 echo requests to our own link-local address never get here:
//! [`crate::l2::echo`] answers them (unless that address stands for the
//! host, when they come here like any other and the host answers).
//!
//! Ping sockets need the process's group in `net.ipv4.ping_group_range`
//! (both families read it). When the host refuses one (`EACCES`, `EPERM`),
//! the request is dropped and [`Event::PingDenied`] reported, once per
//! family.
//!
//! # TTL and errors (traceroute)
//!
//! The guest's TTL or hop limit goes to the ping socket
//! ([`SockOp::SetTtl`], when it differs from the socket's last one), and
//! with [`crate::Translator::set_host_errors`] the socket reports the ICMP
//! errors its requests caused ([`SockOp::RecvErr`]): each becomes the same
//! error to the guest (`host_error_frame`), from the router that sent
//! it, quoting the request as the guest sent it (see [`crate::udp`],
//! "Errors").
//!
//! # Bad input
//!
//! Echo requests shorter than the 8-byte header, with a bad checksum, or to
//! broadcast and multicast destinations are dropped with their
//! [`DropReason`]; other ICMP messages from the guest (errors, replies) are
//! [`DropReason::Unsupported`]. Replies from the host that are not echo
//! replies or do not fit the guest's MTU are dropped and counted.
//!
//! # Limits and timeouts
//!
//! At most `min(Limits::max_flows, MAX_FLOWS)` flows; when full, the least
//! recently active one is evicted if idle for
//! [`crate::udp::EVICT_MIN_IDLE`]. A flow ends after [`ECHO_TIMEOUT`]
//! without a request or reply.

use core::time::Duration;

use crate::addr::{InAny, SockAddrAny};
use crate::buf::{TxRing, TxStorage};
use crate::config::Config;
use crate::contract::cx::Cx;
use crate::contract::slots::{Module, Owner};
use crate::contract::{
    Completion, Done, DropReason, Errno, Event, Proto, Ready, SockId, SockOp, SockSpec,
};
use crate::flow::index::{FlowIndex, FlowKey};
use crate::flow::siphash::SipHasher13;
use crate::flow::table::FlowTable;
use crate::flow::FlowId;
use crate::ingress::L4Packet;
use crate::time::Instant;
use crate::udp::{is_unicast, Lru, RecvBatch, EVICT_MIN_IDLE};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmp::{icmp_type, IcmpRepr, HEADER_LEN};
use crate::wire::icmpv6::{msg_type, Icmpv6Repr};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{checksum, frame, ip_proto, Result as WireResult, WireError};

/// An echo flow ends after this long without a request or reply.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(60);
/// Most echo flows, whatever [`crate::config::Limits::max_flows`] allows.
pub const MAX_FLOWS: u32 = 1024;
/// Most replies one [`SockOp::Recv`] reads.
const RECV_BATCH: u32 = 8;
/// TTL / hop limit of replies we build.
const TTL: u8 = 64;
/// The TTL a new socket sends with until the guest's differs (Linux's
/// `net.ipv4.ip_default_ttl` and `net.ipv6.conf.*.hop_limit` default).
pub(crate) const DEFAULT_TTL: u8 = 64;
/// Ethernet header length of frames we build.
const ETH_LEN: usize = 14;

/// Echo counters, in [`crate::Stats::icmp`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcmpStats {
    /// Echo flows opened.
    pub flows_opened: u64,
    /// Echo flows ended by [`ECHO_TIMEOUT`].
    pub flows_expired: u64,
    /// Echo flows evicted for a new one.
    pub flows_evicted: u64,
    /// Echo requests handed to a ping socket.
    pub requests: u64,
    /// Echo replies framed to the guest.
    pub replies: u64,
    /// Ping sockets the host refused (`ping_group_range`).
    pub denied: u64,
    /// Ping sockets that failed to open for another reason.
    pub open_failed: u64,
    /// Sends that failed on the host.
    pub send_errors: u64,
    /// ICMP errors from the host's error queue sent on to the guest.
    pub host_errors: u64,
}

/// An echo flow as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EchoKey {
    guest: InAny,
    remote: InAny,
    ident: u16,
}

impl FlowKey for EchoKey {
    fn hash_into(&self, h: &mut SipHasher13) {
        h.write(&self.guest.0.octets());
        h.write(&self.remote.0.octets());
        h.write(&self.ident.to_be_bytes());
    }
}

/// One echo conversation.
#[derive(Clone, Copy, Debug)]
struct EchoFlow {
    key: EchoKey,
    sock: SockId,
    opening: bool,
    last: Instant,
    /// The TTL / hop limit the socket sends with (the kernel's default
    /// until the guest's differs).
    ttl: u8,
}

/// Echo flows of both families.
pub(crate) struct Icmp {
    flows: FlowTable<EchoFlow>,
    index: FlowIndex<EchoKey>,
    lru: Lru,
    recv: Option<RecvBatch>,
    /// The [`SockOp::RecvErr`] in flight (one slot).
    err: Option<RecvBatch>,
    denied: [bool; 2],
    /// The executor reads error queues ([`crate::Translator::set_host_errors`]).
    pub(crate) host_errors: bool,
    /// Counters, composed into [`crate::Stats::icmp`].
    pub(crate) stats: IcmpStats,
}

impl Icmp {
    /// Tables sized from `config.limits`.
    pub(crate) fn new(config: &Config) -> Self {
        let cap = config.limits.max_flows.min(MAX_FLOWS);
        Icmp {
            flows: FlowTable::new(cap),
            index: FlowIndex::new(cap, config.secret),
            lru: Lru::new(cap),
            stats: IcmpStats::default(),
            recv: None,
            err: None,
            denied: [false; 2],
            host_errors: false,
        }
    }

    /// An ICMP or ICMPv6 message from the guest: echo requests go to a
    /// ping socket, anything else is dropped.
    pub(crate) fn handle_tap<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        pkt: &L4Packet<'_>,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason> {
        let ident = if pkt.protocol == ip_proto::ICMP {
            match IcmpRepr::parse(pkt.l4, pkt.verify)? {
                (IcmpRepr::EchoRequest { ident, .. }, _) => ident,
                _ => return Err(DropReason::Unsupported),
            }
        } else {
            // The dispatcher verified the checksum already.
            match Icmpv6Repr::parse(pkt.l4, None)? {
                Icmpv6Repr::EchoRequest { ident, .. } => ident,
                _ => return Err(DropReason::Unsupported),
            }
        };
        if !is_unicast(cx.config, pkt.dst) {
            return Err(DropReason::Unsupported);
        }
        if !is_unicast(cx.config, pkt.src) {
            return Err(DropReason::Malformed);
        }
        let key = EchoKey {
            guest: pkt.src,
            remote: pkt.dst,
            ident,
        };
        let fid = match self.index.get(&key) {
            Some(fid) => fid,
            None => self.open_flow(cx, key, tx)?,
        };
        let flow = self.flows.get_mut(fid).ok_or(DropReason::StaleSocket)?;
        flow.last = cx.now;
        let id = flow.sock;
        if flow.ttl != pkt.ttl {
            flow.ttl = pkt.ttl;
            let ipv6 = !key.remote.is_v4();
            cx.op(SockOp::SetTtl {
                id,
                ipv6,
                ttl: pkt.ttl,
            })?;
        }
        self.lru.touch(fid.index());
        cx.op(SockOp::Send {
            id,
            payload: pkt.span,
        })?;
        self.stats.requests += 1;
        Ok(())
    }

    fn open_flow<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        key: EchoKey,
        tx: &mut TxRing<S>,
    ) -> Result<FlowId, DropReason> {
        let ipv6 = !key.remote.is_v4();
        if self.denied[usize::from(ipv6)] {
            return Err(DropReason::Unsupported);
        }
        if self.flows.is_full() && !self.evict(cx, tx) {
            return Err(DropReason::FlowTableFull);
        }
        let next = self.flows.vacant().ok_or(DropReason::FlowTableFull)?.id();
        let sock = cx
            .socks
            .alloc_owned(Owner::new(Module::Icmp, next.index()))
            .ok_or(DropReason::FlowTableFull)?;
        let peer = crate::flow::fwd::guest_to_host(cx.config, SockAddrAny::new(key.remote, 0));
        let open = SockOp::Open {
            id: sock,
            spec: SockSpec {
                proto: Proto::Icmp,
                ipv6,
                bind: None,
                peer: Some(peer),
                flags: if self.host_errors {
                    crate::SockFlags::RECVERR
                } else {
                    crate::SockFlags::empty()
                },
            },
        };
        if let Err(e) = cx.op(open) {
            cx.socks.release(sock);
            return Err(e);
        }
        let flow = EchoFlow {
            key,
            sock,
            opening: true,
            last: cx.now,
            ttl: DEFAULT_TTL,
        };
        let fid = self
            .flows
            .insert(flow)
            .map_err(|_| DropReason::FlowTableFull)?;
        debug_assert_eq!(fid, next);
        let indexed = self.index.insert(key, fid);
        debug_assert!(indexed);
        self.lru.touch(fid.index());
        self.stats.flows_opened += 1;
        Ok(fid)
    }

    fn evict<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) -> bool {
        let Some(fid) = self
            .lru
            .idle_front(&self.flows, cx.now, EVICT_MIN_IDLE, |f| f.last)
        else {
            return false;
        };
        self.close(cx, fid, true, tx);
        self.stats.flows_evicted += 1;
        true
    }

    fn close<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        opened: bool,
        tx: &mut TxRing<S>,
    ) {
        let Some(flow) = self.flows.remove(fid) else {
            return;
        };
        self.index.remove(&flow.key);
        self.lru.remove(fid.index());
        if let Some(b) = self.recv.filter(|b| b.sock == flow.sock) {
            b.finish(tx);
            self.recv = None;
        }
        if let Some(b) = self.err.filter(|b| b.sock == flow.sock) {
            b.finish(tx);
            self.err = None;
        }
        if !opened || cx.op(SockOp::Close { id: flow.sock }).is_ok() {
            cx.socks.release(flow.sock);
        } else {
            cx.count_drop(DropReason::OpQueueFull);
        }
    }

    fn flow_of(&self, n: u32, id: SockId) -> Option<FlowId> {
        let fid = self.flows.id_at(n as usize)?;
        (self.flows.get(fid)?.sock == id).then_some(fid)
    }

    fn close_orphan(cx: &mut Cx<'_>, id: SockId) {
        if cx.op(SockOp::Close { id }).is_ok() {
            cx.socks.release(id);
        }
    }

    /// Readiness of ping socket `id` (flow slot `n`): read its replies.
    pub(crate) fn handle_ready<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        n: u32,
        ready: Ready,
        tx: &mut TxRing<S>,
    ) {
        if let Some(b) = self.recv.take() {
            b.finish(tx);
        }
        if let Some(b) = self.err.take() {
            b.finish(tx);
        }
        let Some(fid) = self.flow_of(n, id) else {
            return Self::close_orphan(cx, id);
        };
        let Some(flow) = self.flows.get(fid) else {
            return;
        };
        if !ready.intersects(Ready::READABLE | Ready::ERROR | Ready::HANGUP) {
            return;
        }
        let ipv6 = !flow.key.remote.is_v4();
        if self.host_errors && ready.contains(Ready::ERROR) {
            // The error queue first; replies on the next readiness (the
            // socket is level-triggered).
            self.err = start_recv_err(cx, id, ipv6, 0, tx);
            return;
        }
        self.start_recv(cx, id, ipv6, tx);
    }

    /// Queue a [`SockOp::Recv`] of replies on `id`.
    fn start_recv<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        ipv6: bool,
        tx: &mut TxRing<S>,
    ) {
        let ip_len = if ipv6 { 40 } else { 20 };
        let max = usize::from(cx.config.mtu).saturating_sub(ip_len);
        let Some(b) = RecvBatch::reserve(tx, id, RECV_BATCH, ETH_LEN + ip_len, max) else {
            cx.count_drop(DropReason::TxFull);
            return;
        };
        if cx.op(SockOp::Recv { id, into: b.slots }).is_err() {
            b.finish(tx);
            cx.count_drop(DropReason::OpQueueFull);
            return;
        }
        self.recv = Some(b);
    }

    /// The result of an operation on ping socket of flow slot `n`.
    pub(crate) fn handle_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        n: u32,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        let id = done.id;
        if let Some(mut b) = self.err.filter(|b| b.sock == id) {
            self.err = None;
            let flow = self.flow_of(n, id).and_then(|f| self.flows.get(f)).copied();
            match (done.res, flow) {
                (Ok(Done::HostError(e)), Some(f)) => {
                    let k = f.key;
                    let q = Quote {
                        guest: SockAddrAny::new(k.guest, 0),
                        remote: SockAddrAny::new(k.remote, 0),
                        host_remote: crate::flow::fwd::guest_to_host(
                            cx.config,
                            SockAddrAny::new(k.remote, 0),
                        )
                        .addr,
                        ttl: f.ttl,
                        udp_len: None,
                        echo_ident: Some(k.ident),
                    };
                    if host_error_frame(cx, &mut b, &q, &e, tx) {
                        self.stats.host_errors += 1;
                    }
                }
                // Nothing queued after all (or the executor cannot read
                // it): what made the socket report an error is read as a
                // reply would be, which clears it.
                (Err(_), Some(f)) => {
                    b.finish(tx);
                    self.start_recv(cx, id, !f.key.remote.is_v4(), tx);
                    return;
                }
                _ => {}
            }
            b.finish(tx);
            return;
        }
        if let Some(mut b) = self.recv.filter(|b| b.sock == id) {
            match done.res {
                Ok(Done::Datagram { len, .. }) => {
                    self.reply(cx, n, &mut b, len as usize, tx);
                    self.recv = Some(b);
                    return;
                }
                Ok(Done::Datagrams { .. }) | Err(_) => {
                    b.finish(tx);
                    self.recv = None;
                    return;
                }
                Ok(_) => {}
            }
        }
        let Some(fid) = self.flow_of(n, id) else {
            return Self::close_orphan(cx, id);
        };
        let Some(flow) = self.flows.get_mut(fid) else {
            return;
        };
        if flow.opening {
            flow.opening = false;
            if let Err(e) = done.res {
                let ipv6 = !flow.key.remote.is_v4();
                if e == Errno::EACCES || e == Errno::EPERM {
                    self.stats.denied += 1;
                    if !self.denied[usize::from(ipv6)] {
                        self.denied[usize::from(ipv6)] = true;
                        cx.event(Event::PingDenied { ipv6 });
                    }
                } else {
                    self.stats.open_failed += 1;
                }
                self.close(cx, fid, false, tx);
            }
            return;
        }
        if done.res.is_err() {
            self.stats.send_errors += 1;
        }
    }

    /// One reply in the receive in flight: restore the guest's identifier
    /// and frame it.
    fn reply<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        n: u32,
        b: &mut RecvBatch,
        len: usize,
        tx: &mut TxRing<S>,
    ) {
        let Some(fid) = self.flow_of(n, b.sock) else {
            b.skip();
            cx.count_drop(DropReason::StaleSocket);
            return;
        };
        let Some(flow) = self.flows.get_mut(fid) else {
            b.skip();
            return;
        };
        if len < HEADER_LEN || len > b.payload_len() {
            b.skip();
            cx.count_drop(if len < HEADER_LEN {
                DropReason::Truncated
            } else {
                DropReason::TooBig
            });
            return;
        }
        let key = flow.key;
        let eth = EthernetRepr::new(cx.guest_mac(), cx.config.our_mac, 0);
        let Some(buf) = b.place(tx, len) else {
            cx.count_drop(DropReason::TooBig);
            return;
        };
        let ident = key.ident.to_be_bytes();
        let built = match (key.remote.v4(), key.guest.v4()) {
            (Some(r), Some(g)) => icmp4_frame(buf, &eth, r, g, |m| {
                let msg = m.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
                if msg[0] != icmp_type::ECHO_REPLY || msg[1] != 0 {
                    return Err(WireError::Unsupported);
                }
                msg[4..6].copy_from_slice(&ident);
                Ok(len)
            }),
            (None, None) => frame::icmpv6(buf, &eth, key.remote.0, key.guest.0, TTL, |m| {
                let msg = m.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
                if msg[0] != msg_type::ECHO_REPLY || msg[1] != 0 {
                    return Err(WireError::Unsupported);
                }
                msg[4..6].copy_from_slice(&ident);
                Ok(len)
            }),
            _ => Err(WireError::Unsupported),
        };
        match built {
            Ok(frame_len) if b.commit(tx, frame_len) => {
                flow.last = cx.now;
                self.lru.touch(fid.index());
                self.stats.replies += 1;
            }
            Err(e) => cx.count_drop(e.into()),
            Ok(_) => cx.count_drop(DropReason::TxFull),
        }
    }

    /// End flows idle for [`ECHO_TIMEOUT`].
    pub(crate) fn handle_timeout<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) {
        while let Some(front) = self.lru.front() {
            let Some(fid) = self.flows.id_at(front as usize) else {
                self.lru.remove(front);
                continue;
            };
            let Some(f) = self.flows.get(fid) else {
                self.lru.remove(front);
                continue;
            };
            if f.last + ECHO_TIMEOUT > cx.now {
                break;
            }
            let opened = !f.opening;
            self.close(cx, fid, opened, tx);
            self.stats.flows_expired += 1;
        }
    }

    /// When the idlest flow expires.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let front = self.lru.front()?;
        let fid = self.flows.id_at(front as usize)?;
        Some(self.flows.get(fid)?.last + ECHO_TIMEOUT)
    }
}

/// An Ethernet + IPv4 + ICMP frame: `body` writes the whole message after
/// the headers (type, code, rest, data) and returns its length; the ICMP
/// checksum (RFC 792, no pseudo-header) and the IPv4 header follow.
///
/// # Errors
/// [`WireError::BufferTooSmall`] if the headers do not fit, what `body`
/// returns, [`WireError::BadLength`] for a message shorter than its header
/// or longer than the space or an IPv4 datagram.
pub(crate) fn icmp4_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    body: impl FnOnce(&mut [u8]) -> WireResult<usize>,
) -> WireResult<usize> {
    let eth = EthernetRepr {
        ethertype: ethertype::IPV4,
        ..*eth
    };
    let el = eth.buffer_len();
    let ip = Ipv4Repr::new(src, dst, ip_proto::ICMP, TTL);
    let at = el + ip.buffer_len();
    let space = buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
    let room = space.len();
    let len = body(space)?;
    if !(HEADER_LEN..=65535 - 20).contains(&len) || len > room {
        return Err(WireError::BadLength);
    }
    let msg = buf.get_mut(at..at + len).ok_or(WireError::BufferTooSmall)?;
    msg[2..4].fill(0);
    let c = checksum::checksum(msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    eth.emit(buf)?;
    ip.emit_with_checksum(buf.get_mut(el..).ok_or(WireError::BufferTooSmall)?, len)?;
    Ok(at + len)
}

/// The offending datagram of a host error as the guest sent it: what
/// [`host_error_frame`] rebuilds the quote from.
pub(crate) struct Quote {
    /// The guest's end (port 0 for echo).
    pub(crate) guest: SockAddrAny,
    /// The remote end as the guest addressed it.
    pub(crate) remote: SockAddrAny,
    /// The remote's address on the host (an offender equal to it is the
    /// destination itself, shown as `remote`).
    pub(crate) host_remote: InAny,
    /// The guest's TTL / hop limit.
    pub(crate) ttl: u8,
    /// UDP: the datagram's UDP length (header included); the UDP header
    /// is rebuilt in front of the quoted payload.
    pub(crate) udp_len: Option<u16>,
    /// Echo: the guest's identifier, put back in the quoted request.
    pub(crate) echo_ident: Option<u16>,
}

/// Most bytes of the offending datagram an IPv4 error quotes: as many as
/// fit a 576-byte datagram with the outer IP and ICMP headers (RFC 1812
/// §4.3.2.3; RFC 792 asks for the IP header and 8 bytes at least).
const QUOTE_MAX4: usize = 576 - 20 - 8;
/// The same for ICMPv6: the error must not exceed the minimum IPv6 MTU,
/// 1280 bytes (RFC 4443 §3).
const QUOTE_MAX6: usize = 1280 - 40 - 8;

/// Reserve one tx slot and queue a [`SockOp::RecvErr`] on `id`: the quoted
/// bytes land where they sit in the error frame, after the Ethernet, IP
/// and ICMP headers and the rebuilt IP header of the offending datagram
/// (and its rebuilt transport header of `l4_hdr` bytes, for UDP).
pub(crate) fn start_recv_err<S: TxStorage>(
    cx: &mut Cx<'_>,
    id: SockId,
    ipv6: bool,
    l4_hdr: usize,
    tx: &mut TxRing<S>,
) -> Option<RecvBatch> {
    let ip_len = if ipv6 { 40 } else { 20 };
    let quote_max = if ipv6 { QUOTE_MAX6 } else { QUOTE_MAX4 };
    let mtu_room = usize::from(cx.config.mtu).saturating_sub(ip_len + HEADER_LEN);
    let max = quote_max.min(mtu_room).saturating_sub(ip_len + l4_hdr);
    let offset = ETH_LEN + ip_len + HEADER_LEN + ip_len + l4_hdr;
    let Some(b) = RecvBatch::reserve(tx, id, 1, offset, max) else {
        cx.count_drop(DropReason::TxFull);
        return None;
    };
    if cx.op(SockOp::RecvErr { id, into: b.slots }).is_err() {
        b.finish(tx);
        cx.count_drop(DropReason::OpQueueFull);
        return None;
    }
    Some(b)
}

/// Turn host error `e` for the datagram `q` describes, whose quoted bytes
/// the [`SockOp::RecvErr`] of `b` wrote, into the same ICMP or ICMPv6
/// error to the guest, and publish it: from the offender as the guest
/// sees it (the remote's address when the destination itself answered),
/// with the offending datagram rebuilt in front of the quoted bytes
/// (RFC 792: type 3 destination unreachable with its code and, for code
/// 4, the next-hop MTU of RFC 1191 §4; type 11 time exceeded. RFC 4443
/// §3.1-3.3: destination unreachable, packet too big with its MTU, time
/// exceeded). Errors of other types, of the other family, or from an
/// offender the guest has no address for are dropped. Whether a frame
/// was published.
pub(crate) fn host_error_frame<S: TxStorage>(
    cx: &mut Cx<'_>,
    b: &mut RecvBatch,
    q: &Quote,
    e: &crate::HostError,
    tx: &mut TxRing<S>,
) -> bool {
    let ipv6 = !q.guest.addr.is_v4();
    // ICMP 3 and 11; ICMPv6 1 (unreachable), 2 (too big), 3 (time exceeded).
    let known = matches!(
        (ipv6, e.icmp6, e.icmp_type),
        (
            false,
            false,
            icmp_type::DEST_UNREACHABLE | icmp_type::TIME_EXCEEDED
        ) | (true, true, 1..=3)
    );
    let offender = if e.offender == q.host_remote {
        Some(q.remote.addr)
    } else {
        crate::flow::fwd::host_to_guest(cx.config, e.offender)
    };
    let (true, Some(offender)) = (known, offender) else {
        b.skip();
        cx.count_drop(DropReason::Unsupported);
        return false;
    };
    let len = e.len as usize;
    let l4_hdr = if q.udp_len.is_some() { 8 } else { 0 };
    if q.echo_ident.is_some() && len < HEADER_LEN {
        b.skip();
        cx.count_drop(DropReason::Truncated);
        return false;
    }
    let eth = EthernetRepr::new(cx.guest_mac(), cx.config.our_mac, 0);
    let Some(buf) = b.place(tx, len) else {
        cx.count_drop(DropReason::TooBig);
        return false;
    };
    let proto = match (q.udp_len.is_some(), ipv6) {
        (true, _) => ip_proto::UDP,
        (false, false) => ip_proto::ICMP,
        (false, true) => ip_proto::ICMPV6,
    };
    // The offending datagram's transport length: UDP's as sent, echo's
    // as quoted.
    let l4_len = q.udp_len.map_or(len, usize::from);
    let (typ, code, info) = (e.icmp_type, e.code, e.info);
    let body = |m: &mut [u8], ip_len: usize| -> WireResult<usize> {
        let total = HEADER_LEN + ip_len + l4_hdr + len;
        let m = m.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        m[0] = typ;
        m[1] = code;
        m[4..8].fill(0);
        match (ipv6, typ, code) {
            // Next-hop MTU (RFC 1191 §4).
            (false, icmp_type::DEST_UNREACHABLE, 4) => {
                let mtu = u16::try_from(info).unwrap_or(u16::MAX);
                m[6..8].copy_from_slice(&mtu.to_be_bytes());
            }
            // Packet too big: the MTU (RFC 4443 §3.2).
            (true, 2, _) => m[4..8].copy_from_slice(&info.to_be_bytes()),
            _ => {}
        }
        let quote = &mut m[HEADER_LEN..];
        let hl = if ipv6 {
            let ip =
                crate::wire::ipv6::Ipv6Repr::new(q.guest.addr.0, q.remote.addr.0, proto, q.ttl);
            ip.emit_with_len(quote, l4_len)?
        } else {
            let (g, r) = (
                q.guest.addr.v4().ok_or(WireError::Unsupported)?,
                q.remote.addr.v4().ok_or(WireError::Unsupported)?,
            );
            Ipv4Repr::new(g, r, proto, q.ttl).emit_with_checksum(quote, l4_len)?
        };
        let l4 = quote.get_mut(hl..).ok_or(WireError::BufferTooSmall)?;
        if let Some(udp_len) = q.udp_len {
            l4[0..2].copy_from_slice(&q.guest.port.to_be_bytes());
            l4[2..4].copy_from_slice(&q.remote.port.to_be_bytes());
            l4[4..6].copy_from_slice(&udp_len.to_be_bytes());
            l4[6..8].fill(0);
        }
        if let Some(ident) = q.echo_ident {
            // The request as the guest sent it: its identifier back, the
            // checksum adjusted for it (RFC 1624 eqn. 3).
            let old = u16::from_be_bytes([l4[4], l4[5]]);
            let sum = u16::from_be_bytes([l4[2], l4[3]]);
            let mut acc = u32::from(!sum) + u32::from(!old) + u32::from(ident);
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            l4[2..4].copy_from_slice(&(!(acc as u16)).to_be_bytes());
            l4[4..6].copy_from_slice(&ident.to_be_bytes());
        }
        Ok(total)
    };
    let built = match (offender.v4(), q.guest.addr.v4()) {
        (Some(o), Some(g)) if !ipv6 => icmp4_frame(buf, &eth, o, g, |m| body(m, 20)),
        (None, None) if ipv6 => {
            frame::icmpv6(buf, &eth, offender.0, q.guest.addr.0, TTL, |m| body(m, 40))
        }
        _ => Err(WireError::Unsupported),
    };
    match built {
        Ok(n) if b.commit(tx, n) => true,
        _ => {
            cx.count_drop(DropReason::Unsupported);
            false
        }
    }
}
