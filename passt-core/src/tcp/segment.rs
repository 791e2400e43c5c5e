//! Guest segments of a connection: a SYN opening one, then each segment
//! through the checks of RFC 9293 §3.10.7.4 (RST, SYN, ACK, payload, FIN),
//! its payload handed to the socket as `Send`s and acknowledged once they
//! settle.
//!
//! In-order guest payload becomes a [`SockOp::Send`] naming the bytes in
//! the rx batch ([`crate::buf::RxSpan`]). We acknowledge only what the
//! kernel accepted (the completion's byte count), once per batch and
//! connection. Out-of-order segments are dropped with a duplicate ACK; old
//! ones (retransmissions, keepalives) are answered with an ACK; a partially
//! old one is trimmed. A FIN is passed on (`shutdown(SHUT_WR)`) once every
//! byte before it was accepted. A guest super-frame (its device had TSO) is
//! one large in-order segment like any other: nothing here limits a
//! received segment to the MSS or the MTU, and its partial checksum is not
//! verified (see `Translator::handle_tap`).

use crate::buf::RxSpan;
use crate::contract::cx::Cx;
use crate::contract::{DropReason, Proto, SockFlags, SockOp, SockSpec};
use crate::flow::FlowId;
use crate::wire::tcp::{SeqNum, TcpFlags};

use super::conn::{Conn, ConnFlags, State};
use super::window::{report_stale, take_syn_options, window_bytes};
use super::{Owner, PendingRst, Tcp, TcpIn, TcpKey, TCP_SOCK};

impl Tcp {
    /// A SYN for a new connection (no connection yet, as in LISTEN: RFC
    /// 9293 §3.10.7.2): open a socket connecting to its destination.
    pub(super) fn guest_syn(
        &mut self,
        cx: &mut Cx<'_>,
        key: TcpKey,
        p: &TcpIn<'_>,
    ) -> Result<(), DropReason> {
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

    /// A segment of a connection, through the checks of RFC 9293 §3.10.7.4
    /// in order (§3.10.7.3 for the guest's answer to our SYN, `SynSent`).
    /// The first check, whether the sequence number is acceptable, is made
    /// where it decides something: for an RST here (RFC 5961 §3.2), for
    /// payload and empty probes in `after_segment`.
    pub(super) fn conn_segment(&mut self, cx: &mut Cx<'_>, fid: FlowId, p: &TcpIn<'_>) {
        let now = cx.now;
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        let seg = &p.seg;
        let flags = seg.flags;
        c.last_activity = now;

        // RST: RFC 9293 §3.10.7.4 second check, with RFC 5961 §3.2 (in
        // `SynSent`, §3.10.7.3: only with an ACK of our SYN).
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

        // SYN: §3.10.7.4 fourth check (the third, security, has no
        // counterpart). In `SynSent` it is the guest's SYN-ACK (§3.10.7.3);
        // in `SynAckSent` a retransmitted SYN gets our SYN-ACK again.
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

        // §3.10.7.4 fifth check: without ACK, drop; in SYN-RECEIVED
        // (`SynAckSent`) an ACK of our SYN establishes, any other gets RST.
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
        let reading = self.peek_out.is_some_and(|(f, _)| f == fid);
        if seg.ack.gt(c.seq_to_tap) && !seg.ack.gt(c.seq_max) && !reading {
            // Data sent before a retransmission rewound `seq_to_tap`: the
            // retransmission resumes after what this acknowledges. (With
            // a read of the rewound range outstanding, whose segments are
            // numbered from `seq_to_tap`, the ACK waits for a repeat.)
            c.seq_to_tap = seg.ack;
            if c.flags.contains(ConnFlags::FIN_AT_MAX) && seg.ack == c.seq_max {
                // Our FIN too: it was sent, and the socket is at its end.
                c.flags |= ConnFlags::FIN_SENT | ConnFlags::SOCK_EOF | ConnFlags::SOCK_DRAINED;
            }
        }
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

    /// Payload and FIN of a segment that passed the ACK check: the first
    /// check's acceptability test for them (RFC 9293 §3.10.7.4), then the
    /// seventh and eighth checks (URG, the sixth, is not looked at).
    fn after_segment(&mut self, cx: &mut Cx<'_>, fid: FlowId, p: &TcpIn<'_>) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        let seg = &p.seg;
        let fin = seg.flags.contains(TcpFlags::FIN);
        if p.payload.is_empty() && !fin {
            // RFC 9293 §3.10.7.4, first check: an unacceptable zero-length
            // segment (a keepalive or zero-window probe, one byte before
            // RCV.NXT) gets an ACK; with the window under one segment,
            // after asking for the free space afresh (§3.8.6.1: the probe
            // is how the guest learns that the window reopened).
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
            // First check: a gap, out of order, dropped; a duplicate ACK
            // tells the guest.
            self.stats.out_of_window += 1;
            self.want_ctl(fid, ConnFlags::ACK_DUE);
            return;
        }
        if end.lt(c.seq_queued) || (end == c.seq_queued && !fin) {
            // First check: old (a retransmission, or a keepalive probe):
            // ACK it.
            self.want_ctl(fid, ConnFlags::ACK_DUE);
            return;
        }
        // Seventh check: the new part of the text goes to the socket.
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
        // Eighth check: the FIN, taken once every byte before it is
        // (`sends_settled`).
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
    pub(super) fn sends_settled(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
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
}
