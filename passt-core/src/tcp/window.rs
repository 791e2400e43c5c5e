//! The window we offer the guest and the sizes of segments to it:
//! sequence-space arithmetic over reports of the socket's free send-buffer
//! space and `TCP_INFO`, RFC 7323 window scaling, the MSS.
//!
//! The window we advertise is the socket's free send-buffer space, which
//! the executor reports with a `Send` ([`Done::Sent`], at least the first
//! of a socket) and on request ([`SockOp::Query`]: when a connection to
//! the guest is established, after settled `Send`s once the guest used
//! half of the last reported window or any of a report of none, on
//! writability while what the report left is small, and on a zero-window
//! probe), up to [`WINDOW_TO_TAP`] ([`WINDOW_TO_TAP`] itself from
//! executors that do not report it). Where the answer carries `TCP_INFO`
//! ([`crate::TcpInfo`]), the window is also kept to what the path will
//! take within [`PATH_RTTS`] flights (at least [`PATH_FLOOR`]), so that
//! the guest's sending rate follows the real path instead of filling the
//! send buffer. The right edge already advertised is kept (RFC 9293
//! §3.8.6.2.2), so a full buffer closes the window only as the guest's
//! data reaches that edge; writability reopens it with one window update.
//! An answer asked for on writability is told the guest only if it moves
//! the right edge by at least the smaller of a segment and half the space
//! (RFC 9293 §3.8.6.2.2): a download's readable edges, which carry
//! writability too, and a request's few bytes acknowledged by the peer do
//! not each cost a window update.
//! After the kernel refused bytes (`EAGAIN` or a short write) the window
//! is zero until the socket is writable again; then a window update and
//! three duplicate ACKs make the guest retransmit at once (RFC 5681 §3.2).

use crate::contract::cx::Cx;
use crate::contract::{Done, Errno, SockOp};
use crate::flow::FlowId;
use crate::wire::tcp::{SeqNum, TcpRepr};

use super::conn::{Conn, ConnFlags, State};
use super::{Tcp, PATH_FLOOR, PATH_HORIZON_US, PATH_RTTS, WINDOW_TO_TAP, WS_TO_TAP};

impl Tcp {
    /// Ask for the socket's free space ([`SockOp::Query`]); the answer
    /// sends the ACK with the window ([`Tcp::query_done`]). The callers
    /// decide when: the handshake's end, sends that used up a report
    /// ([`report_stale`]), a writability edge, a zero-window probe (all but
    /// the first only for executors that report the space: a report
    /// exists). One query at a time, and not after the guest's FIN. While
    /// a read of the connection is outstanding (its completion comes first
    /// and would be taken for the answer) the query waits for it
    /// ([`ConnFlags::REFRESH_DUE`]). `true` if the query was issued.
    pub(super) fn window_query(&mut self, cx: &mut Cx<'_>, fid: FlowId) -> bool {
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

    /// The free send-buffer space after writability: a window update, and
    /// after refused bytes duplicate ACKs so that the guest resends them at
    /// once (RFC 5681 §3.2). Without an answer, the window reopens to the
    /// last edge the free space allowed.
    pub(super) fn query_done(&mut self, fid: FlowId, res: Result<Done, Errno>) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        let on_write = c.flags.contains(ConnFlags::QUERY_ON_WRITE);
        c.flags
            .remove(ConnFlags::QUERY_OUT | ConnFlags::QUERY_ON_WRITE);
        if let Ok(Done::Space { free, info }) = res {
            let w = usable_space(free, info);
            c.free_edge = Some(c.seq_from_tap + w);
            c.free_reported = w;
        }
        if on_write && !c.flags.contains(ConnFlags::SEND_BLOCKED) {
            // Asked on a writability edge (with edge-triggered readiness,
            // every readable edge carries one): a window update only if it
            // moves the right edge the guest knows by at least the smaller
            // of a segment and half the space (receiver-side silly window
            // avoidance, RFC 9293 §3.8.6.2.2).
            let would = c.seq_from_tap + window_bytes(c);
            let sws = u32::from(c.mss).min(c.free_reported / 2).max(1);
            if ahead(would, c.wnd_edge) < sws {
                return;
            }
        }
        let mut what = ConnFlags::ACK_DUE;
        if c.flags.contains(ConnFlags::SEND_BLOCKED) {
            c.flags.remove(ConnFlags::SEND_BLOCKED);
            what |= ConnFlags::DUP_ACKS_DUE;
        }
        self.want_ctl(fid, what);
    }
}

/// MSS we offer for an MTU: the MTU less IP and TCP headers (RFC 9293
/// §3.7.1).
pub(super) fn mss_for(mtu: u16, ipv6: bool) -> u16 {
    mtu.saturating_sub(if ipv6 { 60 } else { 40 }).max(64)
}

/// Payload bytes of a data segment to the guest: its MSS, at most ours
/// for the link MTU.
pub(super) fn data_mss(c: &Conn, mtu: u16) -> u32 {
    let ipv6 = !c.key.guest.addr.is_v4();
    u32::from(c.mss.min(mss_for(mtu, ipv6))).clamp(1, 0xffff)
}

/// Most payload one super-frame to the guest carries: what fits a 64 KiB
/// IPv4 total length (RFC 791 §3.1) or IPv6 payload length (RFC 8200 §3,
/// which excludes the fixed header), after option-less IP and TCP headers.
pub(super) fn super_payload(ipv6: bool) -> u32 {
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
pub(super) fn ahead(edge: SeqNum, from: SeqNum) -> u32 {
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
pub(super) fn report_stale(c: &Conn) -> bool {
    c.free_edge.is_some_and(|e| {
        let start = e - c.free_reported;
        2 * u64::from(c.seq_from_tap.distance(start)) > u64::from(c.free_reported)
    })
}

/// The window we offer the guest, in bytes: the socket's free send-buffer
/// space (when the executor reports it) up to [`window_cap`], and never
/// less than what keeps the right edge already advertised; zero after the
/// kernel refused bytes, and after the guest's FIN.
pub(super) fn window_bytes(c: &Conn) -> u32 {
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
pub(super) fn advertise(c: &mut Conn) -> u16 {
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
pub(super) fn take_syn_options(c: &mut Conn, seg: &TcpRepr<'_>) {
    c.mss = seg.mss().unwrap_or(536).max(64);
    c.wnd_from_tap = u32::from(seg.window);
    if let Some(ws) = seg.window_scale() {
        c.flags |= ConnFlags::WS;
        c.ws_from_tap = ws.min(14);
        c.ws_to_tap = WS_TO_TAP;
    }
}
