//! Datagram flows, the machinery UDP ([`crate::udp`]) and ICMP echo
//! ([`crate::icmp`]) share: a flow table with its keyed index and
//! least-recently-used orders ([`Flows`]), expiry and eviction of the
//! idlest flow, the one receive and the one error-queue read each keeps in
//! flight ([`Receives`]), closing a flow's socket, and the host's ICMP
//! errors passed on to the guest ([`errors`]).
//!
//! | file | part |
//! |---|---|
//! | `lru` | least-recently-used order of flow slots, O(1) per operation |
//! | `recv` | one `Recv` in flight: datagrams read straight into tx slots |
//! | `errors` | host ICMP errors to the guest, quoting the offending datagram |
//!
//! A datagram flow has no end but silence: it expires after a timeout of
//! its own kind without traffic, and when the table is full the least
//! recently active flow makes room if it has been idle for
//! [`EVICT_MIN_IDLE`].

pub(crate) mod errors;
pub(crate) mod lru;
pub(crate) mod recv;

use core::time::Duration;

use crate::addr::InAny;
use crate::buf::{TxRing, TxStorage};
use crate::config::Config;
use crate::contract::cx::Cx;
use crate::contract::slots::Owner;
use crate::contract::{DropReason, SockId, SockOp};
use crate::flow::index::{FlowIndex, FlowKey};
use crate::flow::table::FlowTable;
use crate::flow::FlowId;
use crate::time::Instant;

use errors::{QUOTE_MAX4, QUOTE_MAX6};
use lru::Lru;
use recv::RecvBatch;

/// A flow must have been idle this long to be evicted for a new one.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(1);
/// The TTL a new socket sends with until the guest's differs (Linux's
/// `net.ipv4.ip_default_ttl` and `net.ipv6.conf.*.hop_limit` default).
pub(crate) const DEFAULT_TTL: u8 = 64;
/// Ethernet header length of frames we build.
pub(crate) const ETH_LEN: usize = 14;
/// Length of the ICMP and ICMPv6 header.
const ICMP_HEADER: usize = crate::wire::icmp::HEADER_LEN;

/// What the shared machinery needs to know of a flow.
pub(crate) trait DgramFlow {
    /// The flow's host socket.
    fn sock(&self) -> SockId;
    /// Its latest datagram (either way).
    fn last(&self) -> Instant;
    /// How long it lives without a datagram.
    fn timeout(&self) -> Duration;
    /// Which least-recently-used order it is in.
    fn order(&self) -> usize;
    /// Whether its socket exists on the host (its `Open` completed).
    fn opened(&self) -> bool;
}

/// A module of datagram flows (UDP, echo) with `N` orders: what it tells
/// the shared machinery, and what it gets from it (eviction, expiry, a
/// slot and a socket for a new flow).
pub(crate) trait DgramModule<const N: usize> {
    /// Its flows.
    type Flow: DgramFlow;
    /// Their key.
    type Key: FlowKey;
    /// The flow table.
    fn flows(&mut self) -> &mut Flows<Self::Flow, Self::Key, N>;
    /// The owner token of the socket of flow slot `slot`.
    fn sock_owner(slot: u32) -> Owner;
    /// End flow `fid` (`opened`: its socket exists and needs a `Close`).
    fn close_flow<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        opened: bool,
        tx: &mut TxRing<S>,
    );
    /// Count a flow evicted for a new one.
    fn count_evicted(&mut self);
    /// Count a flow expired.
    fn count_expired(&mut self);

    /// Evict the least recently active flow if it has been idle for
    /// [`EVICT_MIN_IDLE`]; whether one was.
    fn evict<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) -> bool {
        let Some(fid) = self.flows().idlest(cx.now) else {
            return false;
        };
        self.close_flow(cx, fid, true, tx);
        self.count_evicted();
        true
    }

    /// End every flow whose timeout has passed at `cx.now`.
    fn expire<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) {
        while let Some(fid) = self.flows().next_expired(cx.now) {
            let opened = self.flows().table.get(fid).is_some_and(DgramFlow::opened);
            self.close_flow(cx, fid, opened, tx);
            self.count_expired();
        }
    }

    /// A free flow slot and a socket slot owned by it, evicting an idle
    /// flow when the table (or, once more, the socket slots) is full.
    fn reserve<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        tx: &mut TxRing<S>,
    ) -> Result<(FlowId, SockId), DropReason> {
        for attempt in 0..2 {
            if (attempt > 0 || self.flows().table.is_full()) && !self.evict(cx, tx) {
                return Err(DropReason::FlowTableFull);
            }
            let next = self
                .flows()
                .table
                .vacant()
                .ok_or(DropReason::FlowTableFull)?
                .id();
            if let Some(sock) = cx.socks.alloc_owned(Self::sock_owner(next.index())) {
                return Ok((next, sock));
            }
        }
        Err(DropReason::FlowTableFull)
    }
}

/// A datagram flow table: the flows, their keyed index and `N`
/// least-recently-used orders (one per timeout class).
pub(crate) struct Flows<F, K: FlowKey, const N: usize> {
    /// The flows, by slot.
    pub(crate) table: FlowTable<F>,
    /// Key to flow.
    pub(crate) index: FlowIndex<K>,
    /// Least recently active first, per order.
    pub(crate) lru: [Lru; N],
}

impl<F: DgramFlow, K: FlowKey, const N: usize> Flows<F, K, N> {
    /// Room for `cap` flows, the index keyed with `secret`.
    pub(crate) fn new(cap: u32, secret: [u8; 16]) -> Self {
        Flows {
            table: FlowTable::new(cap),
            index: FlowIndex::new(cap, secret),
            lru: core::array::from_fn(|_| Lru::new(cap)),
        }
    }

    /// The flow in slot `n` if `id` is its socket.
    pub(crate) fn flow_of(&self, n: u32, id: SockId) -> Option<FlowId> {
        let fid = self.table.id_at(n as usize)?;
        (self.table.get(fid)?.sock() == id).then_some(fid)
    }

    /// Take `fid` out of its order (the flow itself stays).
    pub(crate) fn unlink(&mut self, fid: FlowId) {
        if let Some(order) = self.table.get(fid).map(DgramFlow::order) {
            if let Some(lru) = self.lru.get_mut(order) {
                lru.remove(fid.index());
            }
        }
    }

    /// The least recently active flow of all orders, if it has been idle
    /// for [`EVICT_MIN_IDLE`] at `now`: the one to evict.
    pub(crate) fn idlest(&mut self, now: Instant) -> Option<FlowId> {
        let table = &self.table;
        let mut best: Option<(FlowId, Instant)> = None;
        for lru in &mut self.lru {
            let Some(fid) = lru.idle_front(table, now, EVICT_MIN_IDLE, DgramFlow::last) else {
                continue;
            };
            let last = table.get(fid).map_or(Instant::ZERO, DgramFlow::last);
            // The first order wins a tie.
            if !best.is_some_and(|(_, b)| last >= b) {
                best = Some((fid, last));
            }
        }
        best.map(|(fid, _)| fid)
    }

    /// The next flow whose timeout has passed at `now`, the fronts of the
    /// orders first; entries of slots gone meanwhile are dropped on the
    /// way. The caller ends it, then asks again.
    pub(crate) fn next_expired(&mut self, now: Instant) -> Option<FlowId> {
        for order in 0..N {
            while let Some(front) = self.lru[order].front() {
                let Some(fid) = self.table.id_at(front as usize) else {
                    self.lru[order].remove(front);
                    continue;
                };
                let Some(end) = self.table.get(fid).map(|f| f.last() + f.timeout()) else {
                    self.lru[order].remove(front);
                    continue;
                };
                if end > now {
                    break;
                }
                return Some(fid);
            }
        }
        None
    }

    /// When the next flow expires: the earliest of the orders' fronts.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let end = |lru: &Lru| {
            let fid = self.table.id_at(lru.front()? as usize)?;
            self.table.get(fid).map(|f| f.last() + f.timeout())
        };
        self.lru.iter().filter_map(end).min()
    }
}

/// The reads a datagram module keeps in flight, one of each: a
/// [`SockOp::Recv`] of datagrams into tx slots and a [`SockOp::RecvErr`]
/// of one host error.
#[derive(Default)]
pub(crate) struct Receives {
    /// The datagram receive in flight.
    pub(crate) recv: Option<RecvBatch>,
    /// The error-queue read in flight (one slot).
    pub(crate) err: Option<RecvBatch>,
    /// The executor reads error queues
    /// ([`crate::Translator::set_host_errors`]).
    pub(crate) host_errors: bool,
}

impl Receives {
    /// Say whether the executor reads error queues.
    pub(crate) fn set_host_errors(&mut self, on: bool) {
        self.host_errors = on;
    }

    /// Give back the slots of reads the driver never finished (at the next
    /// readiness: their completions will not come).
    pub(crate) fn abandon<S: TxStorage>(&mut self, tx: &mut TxRing<S>) {
        if let Some(b) = self.recv.take() {
            b.finish(tx);
        }
        if let Some(b) = self.err.take() {
            b.finish(tx);
        }
    }

    /// Give back the slots of reads in flight on `sock`, whose flow ends.
    pub(crate) fn forget<S: TxStorage>(&mut self, sock: SockId, tx: &mut TxRing<S>) {
        if let Some(b) = self.recv.filter(|b| b.sock == sock) {
            b.finish(tx);
            self.recv = None;
        }
        if let Some(b) = self.err.filter(|b| b.sock == sock) {
            b.finish(tx);
            self.err = None;
        }
    }

    /// Reserve up to `batch` tx slots with `headers` bytes of room in front
    /// of at most `max` bytes of payload each, and queue a
    /// [`SockOp::Recv`] of datagrams on `id` into them.
    pub(crate) fn start<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        batch: u32,
        headers: usize,
        max: usize,
        tx: &mut TxRing<S>,
    ) {
        self.recv = reserve_and_queue(cx, id, batch, headers, max, tx, |id, into| SockOp::Recv {
            id,
            into,
        });
    }

    /// Reserve one tx slot and queue a [`SockOp::RecvErr`] on `id`: the
    /// quoted bytes land where they sit in the error frame, after the
    /// Ethernet, IP and ICMP headers and the rebuilt IP header of the
    /// offending datagram (and its rebuilt transport header of `l4_hdr`
    /// bytes, for UDP).
    pub(crate) fn start_err<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        ipv6: bool,
        l4_hdr: usize,
        tx: &mut TxRing<S>,
    ) {
        let ip_len = if ipv6 { 40 } else { 20 };
        let quote_max = if ipv6 { QUOTE_MAX6 } else { QUOTE_MAX4 };
        let mtu_room = usize::from(cx.config.mtu).saturating_sub(ip_len + ICMP_HEADER);
        let max = quote_max.min(mtu_room).saturating_sub(ip_len + l4_hdr);
        let offset = ETH_LEN + ip_len + ICMP_HEADER + ip_len + l4_hdr;
        self.err = reserve_and_queue(cx, id, 1, offset, max, tx, |id, into| SockOp::RecvErr {
            id,
            into,
        });
    }
}

/// Reserve the slots of a read and queue its operation; `None`, counted,
/// if either does not fit.
fn reserve_and_queue<S: TxStorage>(
    cx: &mut Cx<'_>,
    id: SockId,
    batch: u32,
    headers: usize,
    max: usize,
    tx: &mut TxRing<S>,
    op: impl FnOnce(SockId, crate::buf::TxSlots) -> SockOp,
) -> Option<RecvBatch> {
    let Some(b) = RecvBatch::reserve(tx, id, batch, headers, max) else {
        cx.count_drop(DropReason::TxFull);
        return None;
    };
    if cx.op(op(id, b.slots)).is_err() {
        b.finish(tx);
        cx.count_drop(DropReason::OpQueueFull);
        return None;
    }
    Some(b)
}

/// Close the socket of an ended flow, if `opened` (it exists on the host)
/// and give its slot back. When the `Close` does not fit the queue the
/// socket stays ours, orphaned: its next event closes it
/// ([`close_orphan`]).
pub(crate) fn close_sock(cx: &mut Cx<'_>, sock: SockId, opened: bool) {
    if !opened || cx.op(SockOp::Close { id: sock }).is_ok() {
        cx.socks.release(sock);
    } else {
        cx.count_drop(DropReason::OpQueueFull);
    }
}

/// Close a socket whose flow is gone (a `Close` did not fit the queue).
pub(crate) fn close_orphan(cx: &mut Cx<'_>, id: SockId) {
    if cx.op(SockOp::Close { id }).is_ok() {
        cx.socks.release(id);
    }
}

/// Whether the guest may address `a` as a single host: not unspecified,
/// broadcast (limited or of the guest's subnet) or multicast.
pub(crate) fn is_unicast(config: &Config, a: InAny) -> bool {
    match a.v4() {
        Some(v4) => {
            let subnet_bcast = config.ip4.as_ref().is_some_and(|ip4| {
                let len = u32::from(ip4.prefix_len.min(32));
                let host_mask = u32::MAX.checked_shr(len).unwrap_or(0);
                len < 31 && u32::from(v4) == u32::from(ip4.addr) | host_mask
            });
            !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || subnet_bcast)
        }
        None => !(a.0.is_unspecified() || a.0.is_multicast()),
    }
}
