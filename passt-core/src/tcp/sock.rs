//! The host socket of a translated connection: its readiness (the end of a
//! connect, data to read, room to write, errors) and the completions of the
//! operations queued on it (`Open`, `Send`, `Query`, `Peek`).
//!
//! A read's completion is framed here: the bytes it put in the reserved tx
//! slots get their headers in place and the frames are committed; zero
//! bytes is end of file, which our FIN follows.

use crate::buf::{TxRing, TxSlots, TxStorage};
use crate::contract::cx::Cx;
use crate::contract::{Done, Errno, Ready};
use crate::flow::FlowId;
use crate::wire::tcp::TcpFlags;

use super::conn::{ConnFlags, State};
use super::frame::{self, Seg};
use super::window::{advertise, ahead, data_mss, report_stale};
use super::Tcp;

impl Tcp {
    /// Readiness of a translated connection's socket.
    pub(super) fn conn_ready(&mut self, cx: &mut Cx<'_>, fid: FlowId, ready: Ready) {
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
            if let Some(c) = self.flows.get_mut(fid) {
                c.flags |= ConnFlags::QUERY_ON_WRITE;
            }
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

    /// A completion for a translated connection's socket: the answer to a
    /// query, its outstanding read, its `Open` or one of its `Send`s.
    pub(super) fn conn_completion<S: TxStorage>(
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
        if c.seq_to_tap.gt(c.seq_max) {
            c.seq_max = c.seq_to_tap;
            c.flags.remove(ConnFlags::FIN_AT_MAX);
        }
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
}
