//! Spliced connections (pasta's loopback fast path): two sockets whose
//! bytes the executor moves inside the kernel, with no frames to the guest.
//!
//! With `config.fwd.splice` (pasta without `--no-splice`), a connection
//! accepted on a `-t` listener from the host's loopback (`127.0.0.1`,
//! `::1`) is not translated into frames. The handler opens a second socket
//! inside the namespace ([`SockOp::Open`] with [`SockFlags::IN_NS`]),
//! connected at the forwarded port to the namespace's own address of that
//! family (the one the guest was seen using, else the configured one), so
//! the kernel routes it over the namespace's loopback interface but a
//! service bound only to the namespace's `127.0.0.1` or `::1` is not
//! reached: as the original since 2024. With
//! `config.fwd.host_lo_to_ns_lo` (`--host-lo-to-ns-lo`) it connects to
//! the namespace's loopback address instead. With no usable address of
//! that family (none configured or seen, or only a link-local one) the
//! accepted connection is closed. When it
//! connects (writability) it hands both sockets to the executor
//! ([`SockOp::Splice`]), which moves the bytes inside the kernel
//! (`crate::host::splice`) and owns their readiness until it reports the
//! end (one completion: [`Done::Spliced`] or the error); then both sockets
//! are closed. A refused connect is handed to the executor all the same:
//! its splice ends at once with the error and resets the accepted
//! connection (a failed `Open` just closes it).
//!
//! The other direction, `-T` (`config.fwd.tcp_out`), is always spliced:
//! its listeners are opened inside the namespace (`Open` with
//! [`SockFlags::IN_NS`], `LISTEN`, bound to the namespace's loopback unless
//! the rule names an address), statically at start-up or by
//! [`crate::Translator::set_auto_out_port`] for `-T auto`; a connection
//! they accept gets its second socket connected to the same family's
//! loopback at the target port in the driver's own namespace (the host's).
//!
//! The connection is a flow of the same table (both sides
//! [`crate::flow::Pif::Splice`]; `Conn::splice` names the second socket),
//! so the table's capacity and the socket slots limit it like any other,
//! and the handshake timeout bounds its connect. It has no index key (no
//! guest segment can reach it). Once spliced, the kernel runs both
//! connections and the executor sees their traffic, so the translator
//! checks on it every `conn::SPLICE_CHECK` (30 s) with a
//! [`SockOp::Query`], answered with [`Done::Splicing`] (bytes moved so
//! far, whether one direction ended). With no bytes moved for the idle
//! timeout (2 h), or for the closing timeout (60 s) once one direction
//! ended (counted from when that was first seen), it closes both sockets,
//! and the executor resets both connections (counted in
//! [`TcpStats::splice_timeouts`](super::TcpStats::splice_timeouts)).
//! `Tcp::new_spliced` is the entry for both directions (`in_ns` says where
//! the second socket connects).

use crate::addr::SockAddrAny;
use crate::contract::cx::Cx;
use crate::contract::{Done, Errno, Proto, Ready, SockFlags, SockId, SockOp, SockSpec};
use crate::flow::FlowId;
use crate::wire::tcp::SeqNum;

use super::conn::{Conn, ConnFlags, State, FIN_TIMEOUT, IDLE_TIMEOUT, SPLICE_CHECK};
use super::{Owner, Tcp, TcpKey, TCP_SOCK};

impl Tcp {
    /// Whether a flow is a spliced connection.
    pub(super) fn is_splice(&self, fid: FlowId) -> bool {
        self.flows.get(fid).is_some_and(|c| c.splice.is_some())
    }

    /// Start a spliced connection for the accepted socket `sock` (peer
    /// `peer`): open a socket connected to `dst`, inside the namespace if
    /// `in_ns` (`-t` from the host's loopback), else in the driver's own
    /// (`-T` from the namespace's loopback); when it connects, hand both to
    /// the executor ([`SockOp::Splice`]). The flow takes a table entry (so
    /// a full table refuses it) but no index key: no guest segment can
    /// reach it. Returns whether it started; if not, the caller closes
    /// `sock`.
    pub(crate) fn new_spliced(
        &mut self,
        cx: &mut Cx<'_>,
        sock: SockId,
        peer: SockAddrAny,
        dst: SockAddrAny,
        in_ns: bool,
    ) -> bool {
        let Some(v) = self.flows.vacant() else {
            return false;
        };
        let fid = v.id();
        let Some(other) = cx.socks.alloc_owned(TCP_SOCK) else {
            return false;
        };
        let mut spec = SockSpec::new(Proto::Tcp, !dst.addr.is_v4());
        spec.peer = Some(dst);
        if in_ns {
            spec.flags |= SockFlags::IN_NS;
        }
        if !cx.try_op(SockOp::Open { id: other, spec }) {
            cx.socks.release(other);
            return false;
        }
        let key = TcpKey {
            guest: dst,
            remote: peer,
        };
        let mut c = Conn::new(key, sock, State::Connecting, SeqNum(0), cx.now);
        c.splice = Some(other);
        let at = c.deadline();
        v.insert(c);
        self.set_owner(sock, Owner::Conn(sock, fid));
        self.set_owner(other, Owner::Conn(other, fid));
        self.arm(at);
        self.stats.opened += 1;
        self.stats.spliced += 1;
        true
    }

    /// Readiness of either socket of a spliced connection still connecting
    /// (once spliced, the executor keeps it).
    pub(super) fn splice_ready(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        sock: SockId,
        ready: Ready,
    ) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        if c.flags.contains(ConnFlags::SPLICED) {
            return;
        }
        if Some(sock) != c.splice {
            // The accepted side: its data and end of file wait for the
            // splice, which reads whatever is queued when it starts; an
            // error there (the peer gave up) ends it all.
            if ready.contains(Ready::ERROR) {
                self.splice_close(cx, fid);
            }
            return;
        }
        // A refused or failed connect is handed over too: the splice ends
        // at once with its error and resets the accepted connection, so the
        // peer sees a reset rather than an orderly end of file.
        let failed = ready.contains(Ready::ERROR)
            || (ready.contains(Ready::HANGUP) && !ready.contains(Ready::WRITABLE));
        if failed || ready.contains(Ready::WRITABLE) {
            let (id, peer) = (c.sock, sock);
            if cx.try_op(SockOp::Splice { id, peer }) {
                c.flags |= ConnFlags::SPLICED;
                c.state = State::Established;
                c.since = cx.now;
                c.last_activity = cx.now;
                c.rto_at = Some(cx.now + SPLICE_CHECK);
                let at = c.deadline();
                self.arm(at);
            } else {
                self.splice_close(cx, fid);
            }
        }
    }

    /// A completion for a spliced connection: the `Open` of its second
    /// socket, or the end of the splice.
    pub(super) fn splice_completion(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        sock: SockId,
        res: Result<Done, Errno>,
    ) {
        let Some(c) = self.flows.get_mut(fid) else {
            return;
        };
        match res {
            Ok(Done::Opened) if Some(sock) == c.splice => {}
            Ok(Done::Splicing { moved, half_closed }) => {
                c.flags.remove(ConnFlags::QUERY_OUT);
                if moved != c.splice_moved {
                    c.splice_moved = moved;
                    c.last_activity = cx.now;
                }
                if half_closed && !c.flags.contains(ConnFlags::SPLICE_HALF) {
                    // The end of file just passed on counts as activity.
                    c.flags |= ConnFlags::SPLICE_HALF;
                    c.last_activity = cx.now;
                }
                let limit = if c.flags.contains(ConnFlags::SPLICE_HALF) {
                    FIN_TIMEOUT
                } else {
                    IDLE_TIMEOUT
                };
                if c.last_activity + limit <= cx.now {
                    // The executor resets both connections on `Close`.
                    self.stats.splice_timeouts += 1;
                    self.splice_close(cx, fid);
                }
            }
            Ok(Done::Spliced { .. }) => self.splice_close(cx, fid),
            Err(_) => {
                if c.flags.contains(ConnFlags::SPLICED) {
                    self.stats.splice_errors += 1;
                }
                self.splice_close(cx, fid);
            }
            Ok(_) => {}
        }
    }

    /// Remove a spliced connection and close both its sockets.
    pub(super) fn splice_close(&mut self, cx: &mut Cx<'_>, fid: FlowId) {
        let Some(c) = self.flows.remove(fid) else {
            return;
        };
        for s in [Some(c.sock), c.splice].into_iter().flatten() {
            self.set_owner(s, Owner::Free);
            cx.try_op(SockOp::Close { id: s });
            cx.socks.release(s);
        }
        self.stats.closed += 1;
    }
}
