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
//! [`crate::udp::EVICT_MIN_IDLE`] (the datagram flows of `dgram`). A flow ends after [`ECHO_TIMEOUT`]
//! without a request or reply.

use core::time::Duration;

use crate::addr::{InAny, SockAddrAny};
use crate::buf::{TxRing, TxStorage};
use crate::config::Config;
use crate::contract::cx::Cx;
use crate::contract::slots::{Module, Owner};
use crate::contract::transport::Transport;
use crate::contract::{
    Completion, Done, DropReason, Errno, Event, Proto, Ready, SockId, SockOp, SockSpec,
};
use crate::dgram::errors::{host_error_frame, icmp4_frame, Quote};
use crate::dgram::recv::RecvBatch;
use crate::dgram::{
    close_orphan, close_sock, is_unicast, DgramFlow, DgramModule, Flows, Receives, DEFAULT_TTL,
    ETH_LEN,
};
use crate::flow::index::FlowKey;
use crate::flow::siphash::SipHasher13;
use crate::flow::FlowId;
use crate::ingress::EchoRequest;
use crate::time::Instant;
use crate::wire::ethernet::EthernetRepr;
use crate::wire::icmp::{icmp_type, HEADER_LEN};
use crate::wire::icmpv6::msg_type;
use crate::wire::{frame, WireError};

/// An echo flow ends after this long without a request or reply.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(60);
/// Most echo flows, whatever [`crate::config::Limits::max_flows`] allows.
pub const MAX_FLOWS: u32 = 1024;
/// Most replies one [`SockOp::Recv`] reads.
const RECV_BATCH: u32 = 8;
/// TTL / hop limit of replies we build.
const TTL: u8 = 64;

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
pub(crate) struct EchoKey {
    guest: InAny,
    remote: InAny,
    ident: u16,
}

impl DgramFlow for EchoFlow {
    fn sock(&self) -> SockId {
        self.sock
    }
    fn last(&self) -> Instant {
        self.last
    }
    fn timeout(&self) -> Duration {
        ECHO_TIMEOUT
    }
    fn order(&self) -> usize {
        0
    }
    fn opened(&self) -> bool {
        !self.opening
    }
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
pub(crate) struct EchoFlow {
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
    /// The flows, one order (one timeout).
    flows: Flows<EchoFlow, EchoKey, 1>,
    /// The receive and the error-queue read in flight.
    rx: Receives,
    denied: [bool; 2],
    /// Counters, composed into [`crate::Stats::icmp`].
    pub(crate) stats: IcmpStats,
}

impl Icmp {
    /// Tables sized from `config.limits`.
    pub(crate) fn new(config: &Config) -> Self {
        let cap = config.limits.max_flows.min(MAX_FLOWS);
        Icmp {
            flows: Flows::new(cap, config.secret),
            rx: Receives::default(),
            stats: IcmpStats::default(),
            denied: [false; 2],
        }
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
        let (next, sock) = self.reserve(cx, tx)?;
        let peer = crate::flow::fwd::guest_to_host(cx.config, SockAddrAny::new(key.remote, 0));
        let open = SockOp::Open {
            id: sock,
            spec: SockSpec {
                proto: Proto::Icmp,
                ipv6,
                bind: None,
                peer: Some(peer),
                flags: if self.rx.host_errors {
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
            .table
            .insert(flow)
            .map_err(|_| DropReason::FlowTableFull)?;
        debug_assert_eq!(fid, next);
        let indexed = self.flows.index.insert(key, fid);
        debug_assert!(indexed);
        self.flows.lru[0].touch(fid.index());
        self.stats.flows_opened += 1;
        Ok(fid)
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
        self.rx.start(cx, id, RECV_BATCH, ETH_LEN + ip_len, max, tx);
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
        let Some(fid) = self.flows.flow_of(n, b.sock) else {
            b.skip();
            cx.count_drop(DropReason::StaleSocket);
            return;
        };
        let Some(flow) = self.flows.table.get_mut(fid) else {
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
                self.flows.lru[0].touch(fid.index());
                self.stats.replies += 1;
            }
            Err(e) => cx.count_drop(e.into()),
            Ok(_) => cx.count_drop(DropReason::TxFull),
        }
    }
}

impl Icmp {
    /// Whether the executor reads sockets' error queues
    /// ([`crate::Translator::set_host_errors`]).
    pub(crate) fn set_host_errors(&mut self, on: bool) {
        self.rx.set_host_errors(on);
    }
}

impl Transport for Icmp {
    type Input<'a> = EchoRequest;

    /// An ICMP or ICMPv6 message from the guest: echo requests go to a
    /// ping socket, anything else is dropped.
    fn handle_tap<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        pkt: &EchoRequest,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason> {
        let ident = pkt.ident;
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
        let fid = match self.flows.index.get(&key) {
            Some(fid) => fid,
            None => self.open_flow(cx, key, tx)?,
        };
        let flow = self
            .flows
            .table
            .get_mut(fid)
            .ok_or(DropReason::StaleSocket)?;
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
        self.flows.lru[0].touch(fid.index());
        cx.op(SockOp::Send {
            id,
            payload: pkt.span,
        })?;
        self.stats.requests += 1;
        Ok(())
    }

    /// Readiness of ping socket `id` (flow slot `n`): read its replies.
    fn handle_ready<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        n: u32,
        ready: Ready,
        tx: &mut TxRing<S>,
    ) {
        self.rx.abandon(tx);
        let Some(fid) = self.flows.flow_of(n, id) else {
            return close_orphan(cx, id);
        };
        let Some(flow) = self.flows.table.get(fid) else {
            return;
        };
        if !ready.intersects(Ready::READABLE | Ready::ERROR | Ready::HANGUP) {
            return;
        }
        let ipv6 = !flow.key.remote.is_v4();
        if self.rx.host_errors && ready.contains(Ready::ERROR) {
            // The error queue first; replies on the next readiness (the
            // socket is level-triggered).
            self.rx.start_err(cx, id, ipv6, 0, tx);
            return;
        }
        self.start_recv(cx, id, ipv6, tx);
    }

    /// The result of an operation on ping socket of flow slot `n`.
    fn handle_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        n: u32,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        let id = done.id;
        if let Some(mut b) = self.rx.err.filter(|b| b.sock == id) {
            self.rx.err = None;
            let flow = self
                .flows
                .flow_of(n, id)
                .and_then(|f| self.flows.table.get(f))
                .copied();
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
        if let Some(mut b) = self.rx.recv.filter(|b| b.sock == id) {
            match done.res {
                Ok(Done::Datagram { len, .. }) => {
                    self.reply(cx, n, &mut b, len as usize, tx);
                    self.rx.recv = Some(b);
                    return;
                }
                Ok(Done::Datagrams { .. }) | Err(_) => {
                    b.finish(tx);
                    self.rx.recv = None;
                    return;
                }
                Ok(_) => {}
            }
        }
        let Some(fid) = self.flows.flow_of(n, id) else {
            return close_orphan(cx, id);
        };
        let Some(flow) = self.flows.table.get_mut(fid) else {
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
                self.close_flow(cx, fid, false, tx);
            }
            return;
        }
        if done.res.is_err() {
            self.stats.send_errors += 1;
        }
    }

    /// End flows idle for [`ECHO_TIMEOUT`].
    fn handle_timeout<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) {
        self.expire(cx, tx);
    }

    /// When the idlest flow expires.
    fn poll_timeout(&self) -> Option<Instant> {
        self.flows.poll_timeout()
    }
}

impl DgramModule<1> for Icmp {
    type Flow = EchoFlow;
    type Key = EchoKey;

    fn flows(&mut self) -> &mut Flows<EchoFlow, EchoKey, 1> {
        &mut self.flows
    }

    fn sock_owner(slot: u32) -> Owner {
        Owner::new(Module::Icmp, slot)
    }

    fn close_flow<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        opened: bool,
        tx: &mut TxRing<S>,
    ) {
        self.flows.unlink(fid);
        let Some(flow) = self.flows.table.remove(fid) else {
            return;
        };
        self.flows.index.remove(&flow.key);
        self.rx.forget(flow.sock, tx);
        close_sock(cx, flow.sock, opened);
    }

    fn count_evicted(&mut self) {
        self.stats.flows_evicted += 1;
    }

    fn count_expired(&mut self) {
        self.stats.flows_expired += 1;
    }
}
