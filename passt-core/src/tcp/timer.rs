//! Timers of a connection: its state's deadline (handshake, closing,
//! idle), retransmission with exponential backoff (RFC 6298), zero-window
//! probes, a spliced connection's progress check; and the rewind that
//! retransmits, on a timeout or three duplicate ACKs (RFC 5681 §3.2).

use crate::contract::cx::Cx;
use crate::contract::SockOp;
use crate::flow::FlowId;

use super::conn::{ConnFlags, State, MAX_RETRIES, SPLICE_CHECK};
use super::Tcp;

impl Tcp {
    /// One connection's deadlines at `cx.now`: the state's (reset), the
    /// retransmission timer, or a spliced connection's progress check.
    pub(super) fn conn_timeout(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
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

    /// Go back to the last acknowledged byte and send again (RFC 5681 §3.2
    /// fast retransmit, RFC 6298 §5.4 on timeout).
    pub(super) fn rewind(&mut self, fid: FlowId) {
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
}
