//! Frames to the guest and the scheduling of the tx ring: the deferred
//! queues of control segments, resets and reads, the control segments
//! themselves (SYN, SYN-ACK, ACK, FIN, duplicate ACKs, window probes,
//! RST), and the reads that fill reserved slots with socket data.
//!
//! When the guest's device takes them
//! ([`crate::config::Config::guest_gso`]), a slot holds as many whole
//! MSS-sized segments as one 64 KiB IP packet does: the frame is a TCP
//! super-frame (virtio-net GSO) with a partial checksum, cut by the guest's
//! kernel; sequence and acknowledgement accounting counts it as the one
//! segment it is on our side. Single segments get a partial checksum too.

use crate::addr::MacAddr;
use crate::buf::{TxRing, TxStorage};
use crate::contract::cx::Cx;
use crate::contract::SockOp;
use crate::flow::FlowId;
use crate::time::Instant;
use crate::wire::tcp::{SeqNum, TcpFlags, TcpOptionsWriter};

use super::conn::{ConnFlags, State};
use super::frame::{self, Seg};
use super::window::{advertise, data_mss, mss_for, super_payload};
use super::{PendingRst, Tcp, TcpKey, MAX_PEEK_SLOTS, WINDOW_TO_TAP, WS_TO_TAP};

impl Tcp {
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

    /// Mark what a connection owes the guest and queue it for `flush`.
    pub(super) fn want_ctl(&mut self, fid: FlowId, what: ConnFlags) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        c.flags |= what;
        if !c.flags.contains(ConnFlags::IN_CTL_Q) && self.ctl_q.push(fid).is_ok() {
            c.flags |= ConnFlags::IN_CTL_Q;
        }
    }

    /// Queue a connection for a read.
    pub(super) fn want_peek(&mut self, fid: FlowId) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if !c.flags.contains(ConnFlags::IN_PEEK_Q) && self.peek_q.push(fid).is_ok() {
            c.flags |= ConnFlags::IN_PEEK_Q;
        }
    }

    /// Queue a reset to the guest, sent by `flush` from its addresses alone
    /// (its connection may be gone by then).
    pub(super) fn queue_rst(&mut self, r: PendingRst) {
        if self.rst_q.push(r).is_err() {
            self.stats.tx_full += 1;
        }
    }

    /// Remove what the guest acknowledged from the sockets: one
    /// [`SockOp::Discard`] per connection for all the ACKs of a call, so
    /// that a batch of ACKs costs one `recv` (each takes the socket's lock,
    /// and the kernel may answer each with a window update). Called before
    /// any read is issued (a `Peek` skips only what is still unacknowledged,
    /// counted from the head of the queue) and before a socket is closed.
    pub(super) fn flush_discards(&mut self, cx: &mut Cx<'_>) {
        while let Some(fid) = self.discard_q.pop() {
            self.discard_now(cx, fid);
        }
    }

    /// Issue a connection's pending `Discard` now.
    pub(super) fn discard_now(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        c.flags.remove(ConnFlags::IN_DISCARD_Q);
        let len = core::mem::take(&mut c.discard_due);
        if len > 0 {
            cx.try_op(SockOp::Discard { id: c.sock, len });
        }
    }

    /// An upper bound of the control queue's length.
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
            c.seq_max = c.seq_to_tap;
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
            if !c.seq_max.gt(c.seq_to_tap) {
                c.seq_max = c.seq_to_tap;
                c.flags |= ConnFlags::FIN_AT_MAX;
            }
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

    /// Emit one queued reset. `false` if the ring was full.
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

    /// Reserve slots for what the guest's window takes and issue the read
    /// that fills them.
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
}

enum PeekStart {
    Issued,
    Nothing,
    NoRoom,
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
