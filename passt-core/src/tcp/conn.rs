//! One translated connection: the guest's side (sequence numbers, windows,
//! options) and the state of its host socket.
//!
//! Names follow the direction of the bytes, as passt does: `seq_to_tap` is
//! the next sequence number we send to the guest (RFC 9293 SND.NXT on the
//! guest-facing side), `seq_ack_from_tap` the oldest the guest has not
//! acknowledged (SND.UNA), `seq_from_tap` the next the guest sends that the
//! host kernel has accepted (RCV.NXT as we acknowledge it), and `seq_queued`
//! the end of what we have handed to the kernel but not yet heard back about.

use core::time::Duration;

use crate::time::Instant;
use crate::wire::tcp::SeqNum;
use crate::SockId;

use super::TcpKey;

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// The guest sent a SYN; the host socket's `connect` is under way.
    Connecting,
    /// The connect finished and our SYN-ACK went to the guest; waiting for
    /// its ACK.
    SynAckSent,
    /// A host connection was accepted and our SYN went to the guest;
    /// waiting for its SYN-ACK.
    SynSent,
    /// Synchronized both ways (FINs are tracked in [`ConnFlags`]).
    Established,
}

bitflags::bitflags! {
    /// Per-connection flags.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) struct ConnFlags: u32 {
        /// The guest's FIN was taken (`shutdown(SHUT_WR)` done, counted in
        /// `seq_from_tap`).
        const GUEST_FIN = 1 << 0;
        /// The guest sent FIN at `fin_seq`, waiting for earlier sends.
        const GUEST_FIN_PENDING = 1 << 1;
        /// The socket reached end of file.
        const SOCK_EOF = 1 << 2;
        /// Our FIN went to the guest (at `seq_to_tap - 1`).
        const FIN_SENT = 1 << 3;
        /// The guest acknowledged our FIN.
        const FIN_ACKED = 1 << 4;
        /// The kernel refused guest data: window 0 until the socket is
        /// writable again.
        const SEND_BLOCKED = 1 << 5;
        /// The last read found the receive queue drained: wait for
        /// readability before reading again.
        const SOCK_DRAINED = 1 << 6;
        /// Queued for a socket read.
        const IN_PEEK_Q = 1 << 7;
        /// Queued for a control segment.
        const IN_CTL_Q = 1 << 8;
        /// An ACK is owed to the guest.
        const ACK_DUE = 1 << 9;
        /// Our SYN or SYN-ACK is to be (re)sent.
        const SYN_DUE = 1 << 10;
        /// The guest asked for window scaling (and we use it both ways).
        const WS = 1 << 11;
        /// Send three duplicate ACKs after a window update, so the guest
        /// retransmits what the kernel refused (RFC 5681 §3.2).
        const DUP_ACKS_DUE = 1 << 12;
        /// The next control segment is a zero-window probe (the guest's
        /// window is zero and the probe timer fired): it carries an old
        /// sequence number.
        const PROBE_DUE = 1 << 13;
        /// The connection is being torn down: reset the guest and close.
        const RESET_DUE = 1 << 14;
        /// The peer closed its side (`EPOLLRDHUP`): a short read is followed
        /// by another, which finds end of file, since no edge will come.
        const SOCK_HUP = 1 << 15;
        /// A [`crate::SockOp::Query`] is outstanding.
        const QUERY_OUT = 1 << 16;
        /// A spliced connection handed to the executor
        /// ([`crate::SockOp::Splice`]): no frames; its only deadline is the
        /// next progress check (`rto_at`, see [`crate::tcp`]).
        const SPLICED = 1 << 17;
        /// A spliced connection of which one direction ended (end of file
        /// passed on): it closes after [`FIN_TIMEOUT`] without progress.
        const SPLICE_HALF = 1 << 18;
        /// A window refresh ([`crate::SockOp::Query`]) waits for the
        /// connection's outstanding read, whose completion would be taken
        /// for the answer.
        const REFRESH_DUE = 1 << 19;
        /// Queued for a [`crate::SockOp::Discard`] of `discard_due` bytes.
        const IN_DISCARD_Q = 1 << 20;
        /// The outstanding [`crate::SockOp::Query`] was asked on a
        /// writability edge: its answer is told the guest only if it moves
        /// the right edge enough (see `Tcp::query_done`).
        const QUERY_ON_WRITE = 1 << 21;
        /// `seq_max` ends with our FIN (sent once, maybe rewound since).
        const FIN_AT_MAX = 1 << 22;
    }
}

/// One connection between the guest and a host socket.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    /// Addresses as the guest sees them.
    pub(crate) key: TcpKey,
    /// The host socket (of a spliced connection: the accepted one).
    pub(crate) sock: SockId,
    /// Of a spliced connection: the socket connected on the other side
    /// (both ends [`crate::flow::Pif::Splice`]); `None` for a connection
    /// with the guest through frames.
    pub(crate) splice: Option<SockId>,
    /// Handshake state.
    pub(crate) state: State,
    /// Flags.
    pub(crate) flags: ConnFlags,
    /// Our initial sequence number toward the guest.
    pub(crate) isn_to_tap: SeqNum,
    /// Next sequence number to the guest (SND.NXT).
    pub(crate) seq_to_tap: SeqNum,
    /// Oldest unacknowledged sequence number (SND.UNA).
    pub(crate) seq_ack_from_tap: SeqNum,
    /// The end of the data ever sent to the guest (BSD's `snd_max`): a
    /// retransmission moves `seq_to_tap` back, not this, so that an ACK of
    /// what was sent before it is still taken (RFC 9293 §3.10.7.4 checks
    /// ACKs against the highest SND.NXT).
    pub(crate) seq_max: SeqNum,
    /// The guest's receive window, scaled, in bytes.
    pub(crate) wnd_from_tap: u32,
    /// The guest's window scale shift.
    pub(crate) ws_from_tap: u8,
    /// Our window scale shift.
    pub(crate) ws_to_tap: u8,
    /// The guest's MSS.
    pub(crate) mss: u16,
    /// The guest's initial sequence number.
    pub(crate) isn_from_tap: SeqNum,
    /// Next guest sequence number the kernel accepted (what we ACK).
    pub(crate) seq_from_tap: SeqNum,
    /// End of guest data handed to the kernel in `Send`s.
    pub(crate) seq_queued: SeqNum,
    /// Sequence number of the guest's FIN, once seen.
    pub(crate) fin_seq: SeqNum,
    /// The right edge of the window the socket's free send-buffer space
    /// allows (`seq_from_tap` plus the free space when last reported);
    /// `None` while the executor has not told it (fixed window).
    pub(crate) free_edge: Option<SeqNum>,
    /// The window that last report allowed (`free_edge` less
    /// `seq_from_tap` then): once the guest used half of it, the next
    /// settled `Send`s ask for a fresh one.
    pub(crate) free_reported: u32,
    /// The right edge of the window last advertised to the guest: later
    /// windows never end before it (RFC 9293 §3.8.6.2.2), unless the
    /// kernel refused bytes.
    pub(crate) wnd_edge: SeqNum,
    /// `Send`s not yet completed.
    pub(crate) sends_inflight: u16,
    /// Duplicate ACKs in a row.
    pub(crate) dup_acks: u8,
    /// Retransmissions without progress.
    pub(crate) retries: u8,
    /// Retransmission deadline, while data or a SYN/FIN is unacknowledged.
    pub(crate) rto_at: Option<Instant>,
    /// When the handshake or the first FIN started.
    pub(crate) since: Instant,
    /// Last segment from the guest or data from the socket (of a spliced
    /// connection: the last progress check that found bytes moved).
    pub(crate) last_activity: Instant,
    /// Of a spliced connection: bytes moved both ways at the last check.
    pub(crate) splice_moved: u64,
    /// Bytes the guest acknowledged that are still in the socket (removed
    /// by one `Discard` per call, see `Tcp::flush_discards`).
    pub(crate) discard_due: u32,
}

/// Initial retransmission timeout (RFC 6298 §2.1).
pub(crate) const RTO_INIT: Duration = Duration::from_secs(1);
/// Retransmissions without progress before the connection is reset.
pub(crate) const MAX_RETRIES: u8 = 8;
/// Time for a handshake to complete.
pub(crate) const SYN_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a connection to close once one side sent FIN.
pub(crate) const FIN_TIMEOUT: Duration = Duration::from_secs(60);
/// An established connection without any traffic is reset after this.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(7200);
/// How often the translator asks the executor about a spliced
/// connection's progress (its idle and half-closed timeouts are counted
/// from these checks, so they hold to within this much).
pub(crate) const SPLICE_CHECK: Duration = Duration::from_secs(30);

impl Conn {
    /// A connection in `state` with every counter at its start.
    pub(crate) fn new(key: TcpKey, sock: SockId, state: State, isn: SeqNum, now: Instant) -> Self {
        Conn {
            key,
            sock,
            splice: None,
            state,
            flags: ConnFlags::empty(),
            isn_to_tap: isn,
            seq_to_tap: isn,
            seq_ack_from_tap: isn,
            seq_max: isn,
            wnd_from_tap: 0,
            ws_from_tap: 0,
            ws_to_tap: 0,
            mss: 536,
            isn_from_tap: SeqNum(0),
            seq_from_tap: SeqNum(0),
            seq_queued: SeqNum(0),
            fin_seq: SeqNum(0),
            free_edge: None,
            free_reported: 0,
            wnd_edge: SeqNum(0),
            sends_inflight: 0,
            dup_acks: 0,
            retries: 0,
            rto_at: None,
            since: now,
            last_activity: now,
            splice_moved: 0,
            discard_due: 0,
        }
    }

    /// Bytes (and a FIN) sent to the guest and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> u32 {
        self.seq_to_tap.distance(self.seq_ack_from_tap)
    }

    /// Data bytes in flight (without our FIN).
    pub(crate) fn data_in_flight(&self) -> u32 {
        let fin = u32::from(self.flags.contains(ConnFlags::FIN_SENT))
            & u32::from(!self.flags.contains(ConnFlags::FIN_ACKED));
        self.in_flight().saturating_sub(fin)
    }

    /// The retransmission timeout after `retries` tries: doubling, at most
    /// a minute (RFC 6298 §5.5).
    pub(crate) fn rto(&self) -> Duration {
        RTO_INIT
            .saturating_mul(1 << self.retries.min(6))
            .min(Duration::from_secs(60))
    }

    /// The state deadline: handshake, closing or idle.
    pub(crate) fn state_deadline(&self) -> Instant {
        if self.flags.contains(ConnFlags::SPLICED) {
            // The kernel runs both connections; the executor reports the
            // end, and progress checks (`rto_at`) the idle time.
            return Instant::MAX;
        }
        match self.state {
            State::Connecting | State::SynAckSent | State::SynSent => self.since + SYN_TIMEOUT,
            State::Established => {
                if self
                    .flags
                    .intersects(ConnFlags::GUEST_FIN | ConnFlags::FIN_SENT)
                {
                    self.since + FIN_TIMEOUT
                } else {
                    self.last_activity + IDLE_TIMEOUT
                }
            }
        }
    }

    /// The earliest deadline of this connection.
    pub(crate) fn deadline(&self) -> Instant {
        let s = self.state_deadline();
        match self.rto_at {
            Some(r) => r.min(s),
            None => s,
        }
    }

    /// Whether both directions are closed and our FIN acknowledged.
    pub(crate) fn is_done(&self) -> bool {
        self.flags
            .contains(ConnFlags::GUEST_FIN | ConnFlags::FIN_SENT | ConnFlags::FIN_ACKED)
    }
}
