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
use crate::flow::index::{FlowIndex, FlowKey};
use crate::flow::siphash::SipHasher13;
use crate::flow::table::FlowTable;
use crate::flow::FlowId;
use crate::time::Instant;
use crate::translator::{L4Cx, L4Packet, SockOwner};
use crate::udp::{is_unicast, to_host, Lru, RecvBatch, EVICT_MIN_IDLE};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmp::{icmp_type, IcmpRepr, HEADER_LEN};
use crate::wire::icmpv6::{msg_type, Icmpv6Repr};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{checksum, frame, ip_proto, Result as WireResult, WireError};
use crate::{Completion, Done, DropReason, Errno, Event, Proto, Ready, SockId, SockOp, SockSpec};

/// An echo flow ends after this long without a request or reply.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(60);
/// Most echo flows, whatever [`crate::config::Limits::max_flows`] allows.
pub const MAX_FLOWS: u32 = 1024;
/// Most replies one [`SockOp::Recv`] reads.
const RECV_BATCH: u32 = 8;
/// TTL / hop limit of replies we build.
const TTL: u8 = 64;
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
}

/// Echo flows of both families.
pub(crate) struct Icmp {
    flows: FlowTable<EchoFlow>,
    index: FlowIndex<EchoKey>,
    lru: Lru,
    recv: Option<RecvBatch>,
    denied: [bool; 2],
}

impl Icmp {
    /// Tables sized from `config.limits`.
    pub(crate) fn new(config: &Config) -> Self {
        let cap = config.limits.max_flows.min(MAX_FLOWS);
        Icmp {
            flows: FlowTable::new(cap),
            index: FlowIndex::new(cap, config.secret),
            lru: Lru::new(cap),
            recv: None,
            denied: [false; 2],
        }
    }

    /// An ICMP or ICMPv6 message from the guest: echo requests go to a
    /// ping socket, anything else is dropped.
    pub(crate) fn handle_tap<S: TxStorage>(
        &mut self,
        cx: &mut L4Cx<'_>,
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
        self.lru.touch(fid.index());
        cx.op(SockOp::Send {
            id,
            payload: pkt.span,
        })?;
        cx.stats.icmp.requests += 1;
        Ok(())
    }

    fn open_flow<S: TxStorage>(
        &mut self,
        cx: &mut L4Cx<'_>,
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
            .alloc_owned(SockOwner::Echo(next.index()))
            .ok_or(DropReason::FlowTableFull)?;
        let peer = to_host(cx.config, SockAddrAny::new(key.remote, 0), false);
        let open = SockOp::Open {
            id: sock,
            spec: SockSpec {
                proto: Proto::Icmp,
                ipv6,
                bind: None,
                peer: Some(peer),
                flags: crate::SockFlags::empty(),
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
        };
        let fid = self
            .flows
            .insert(flow)
            .map_err(|_| DropReason::FlowTableFull)?;
        debug_assert_eq!(fid, next);
        let indexed = self.index.insert(key, fid);
        debug_assert!(indexed);
        self.lru.touch(fid.index());
        cx.stats.icmp.flows_opened += 1;
        Ok(fid)
    }

    fn evict<S: TxStorage>(&mut self, cx: &mut L4Cx<'_>, tx: &mut TxRing<S>) -> bool {
        let Some(fid) = self
            .lru
            .idle_front(&self.flows, cx.now, EVICT_MIN_IDLE, |f| f.last)
        else {
            return false;
        };
        self.close(cx, fid, true, tx);
        cx.stats.icmp.flows_evicted += 1;
        true
    }

    fn close<S: TxStorage>(
        &mut self,
        cx: &mut L4Cx<'_>,
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

    fn close_orphan(cx: &mut L4Cx<'_>, id: SockId) {
        if cx.op(SockOp::Close { id }).is_ok() {
            cx.socks.release(id);
        }
    }

    /// Readiness of ping socket `id` (flow slot `n`): read its replies.
    pub(crate) fn handle_ready<S: TxStorage>(
        &mut self,
        cx: &mut L4Cx<'_>,
        id: SockId,
        n: u32,
        ready: Ready,
        tx: &mut TxRing<S>,
    ) {
        if let Some(b) = self.recv.take() {
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
        let ip_len = if flow.key.remote.is_v4() { 20 } else { 40 };
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
        cx: &mut L4Cx<'_>,
        n: u32,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        let id = done.id;
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
                    cx.stats.icmp.denied += 1;
                    if !self.denied[usize::from(ipv6)] {
                        self.denied[usize::from(ipv6)] = true;
                        cx.event(Event::PingDenied { ipv6 });
                    }
                } else {
                    cx.stats.icmp.open_failed += 1;
                }
                self.close(cx, fid, false, tx);
            }
            return;
        }
        if done.res.is_err() {
            cx.stats.icmp.send_errors += 1;
        }
    }

    /// One reply in the receive in flight: restore the guest's identifier
    /// and frame it.
    fn reply<S: TxStorage>(
        &mut self,
        cx: &mut L4Cx<'_>,
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
                cx.stats.icmp.replies += 1;
                cx.stats.frames_out += 1;
            }
            Err(e) => cx.count_drop(e.into()),
            Ok(_) => cx.count_drop(DropReason::TxFull),
        }
    }

    /// End flows idle for [`ECHO_TIMEOUT`].
    pub(crate) fn handle_timeout<S: TxStorage>(&mut self, cx: &mut L4Cx<'_>, tx: &mut TxRing<S>) {
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
            cx.stats.icmp.flows_expired += 1;
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
