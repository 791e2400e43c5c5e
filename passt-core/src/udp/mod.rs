//! UDP: guest datagrams to host sockets and back (RFC 768), forwarded UDP
//! ports, DNS forwarding, and ICMP port unreachable for refused datagrams.
//!
//! # Model
//!
//! A *flow* is one conversation as the guest sees it: its address and port
//! and the remote address and port, the key of a keyed hash index
//! ([`crate::flow::index::FlowIndex`]). Its two sides ([`FlowSide`]) are the
//! guest's tap (`endpoint` the guest, `ours` the remote as the guest sees
//! it) and the host (`endpoint` where datagrams go, `ours` our bound
//! address).
//!
//! - **From the guest**: the first datagram of a conversation opens a host
//!   socket bound to the guest's source port ([`SockFlags::REUSEADDR`], so
//!   that several flows from one guest port can coexist) and connected to
//!   the destination; if that port is taken or privileged the driver binds
//!   an ephemeral one instead ([`SockFlags::BIND_FALLBACK`]). Every datagram
//!   is a [`SockOp::Send`] naming its payload in the guest's frame; nothing
//!   is copied here. Replies arrive on the connected socket only.
//! - **Forwarded ports** (`-u`, [`crate::config::Forwarding::udp_in`]): one
//!   listening socket per port and family (opened lazily through
//!   [`crate::Translator::poll_op`]). A datagram from host sender `S`
//!   becomes a frame to the guest's address (the one it was seen using,
//!   of the sender's scope, see `seen.rs`) and the rule's target port,
//!   from `S` as mapped below, and creates a flow keyed by both ends, so
//!   that the guest's replies go back to `S` with a [`SockOp::SendTo`] on
//!   the listening socket. A reply from another of the guest's addresses
//!   (an unbound socket answering with the kernel's preferred source, such
//!   as a SLAAC address beside the assigned one) finds that flow too.
//!   The rules may change at run time
//!   ([`crate::Translator::begin_forward_change`], `udp/change.rs`): a
//!   listener both rule sets share stays and takes the new target; one
//!   whose rule goes closes, or, while flows still use its socket,
//!   *retires*: it takes no new senders and closes with its last flow.
//! - **To the guest**: readiness of a flow's or listener's socket reserves
//!   up to [`RECV_BATCH`] tx slots with room for the headers and queues one
//!   [`SockOp::Recv`]; the driver reads each datagram straight into a
//!   slot's payload area and reports its length and sender
//!   ([`crate::Done::Datagram`]); the headers are then written in front of
//!   it ([`crate::wire::frame::udp4`], [`crate::wire::frame::udp6`]) and the
//!   slot published.
//!
//! # `-U`: namespace ports to the host's loopback (pasta)
//!
//! With [`crate::config::Forwarding::udp_out`] (pasta's `-U`), datagrams
//! never become frames. For each forwarded port `P` (target `T`), a socket
//! is opened *inside the namespace* ([`SockFlags::IN_NS`], made by the
//! driver in the namespace) on its loopback, `127.0.0.1:P` and `[::1]:P` (IPv6 may
//! be off there: that socket's `Open` fails, counted in
//! [`UdpStats::listen_failed`], and the other family still works):
//! statically at start-up for port lists (opened lazily through
//! [`crate::Translator::poll_op`], as `-u`'s), or by
//! [`crate::Translator::set_auto_out_port`] for `-U auto`.
//!
//! A datagram from namespace sender `S` on such a socket is sent on from a
//! host socket of its own per sender, connected to the same family's
//! loopback at `T` (in the driver's namespace, the host's): a flow of the
//! same table, keyed by `S` and the namespace socket's address (apart from
//! the guest's keys), both sides [`Pif::Splice`] / [`Pif::Host`]. A reply
//! on that host socket goes back to `S` with a send on the namespace
//! socket. So `-U` flows share the table's capacity, LRU eviction and
//! [`IDLE_TIMEOUT`] with every other flow, and closing a port
//! (`set_auto_out_port(.., false)`) ends its flows as well. A refused
//! datagram (`ECONNREFUSED`: nothing listens on `T`) is counted
//! ([`UdpStats::out_refused`]) and dropped; no ICMP goes back into the
//! namespace.
//!
//! The bytes move through the executor, not through frames: readiness of
//! such a socket queues a [`SockOp::RecvHeld`], which reads up to
//! [`RECV_BATCH`] datagrams into the executor's own held buffer (allocated
//! once) and completes with each one's length and sender like a
//! [`SockOp::Recv`]; for each, the flow is found (or made: its `Open` is
//! queued first) and a [`SockOp::SendHeld`] names the held datagram by
//! index and the socket (and, toward the namespace, the destination `S`)
//! to send it on. The operations run in queue order within the same drain,
//! before any other receive can replace the held datagrams (readiness of
//! another `-U` socket while one is in flight waits for the next wake-up:
//! the sockets are level-triggered), so nothing is
//! copied here, no tx slot is taken (a busy tap never blocks `-U`), and
//! nothing allocates. Sending held datagrams instead of pending tx slots
//! keeps the operation self-contained: a `SendHeld` whose socket has gone
//! meanwhile (its `Open` failed) simply completes stale, with no tx slots
//! to give back.
//!
//! # Addresses (`flow::fwd`; passt(1): `--map-host-loopback`, `--map-guest-addr`,
//! `--dns-forward`, `--dns-host`)
//!
//! Toward the host: the `map_host_loopback` address (the gateway by
//! default) becomes the host's loopback (127.0.0.1, ::1), `map_guest_addr`
//! the guest's assigned address on the host, and port 53 of `dns_forward`
//! the host's resolver (`dns_host`); replies come back from the address the
//! guest used, since the flow remembers it. Toward the guest, a sender on
//! the host's loopback appears as `map_host_loopback`, and one using the
//! host's (= the guest's) own address as `map_guest_addr`, else
//! `map_host_loopback`; without such an address the datagram is dropped.
//!
//! # Limits
//!
//! The table holds `min(Limits::max_flows, MAX_FLOWS)` flows. When it is
//! full (or no socket slot is left), the least recently active flow is
//! evicted if it has been idle for [`EVICT_MIN_IDLE`]; otherwise the new
//! datagram is dropped ([`DropReason::FlowTableFull`]). A flood of
//! datagrams to thousands of ports therefore costs at most a table of
//! sockets, and pushes out idle flows before active ones.
//!
//! Host datagrams longer than the guest's MTU allows are dropped and
//! counted ([`DropReason::TooBig`], [`UdpStats::too_big`]). A router would
//! fragment an IPv4 datagram (RFC 791 §2.3) or answer with ICMP
//! "fragmentation needed" / "packet too big" to the sender (RFC 1191 §4,
//! RFC 8201 §4); the datagram already left the sender's stack as far as
//! the host socket is concerned, an unprivileged socket cannot send ICMP
//! back, and we do not fragment: dropping is what the sender sees from any
//! link that cannot carry the datagram. Guest datagrams are bounded by the
//! guest's own MTU.
//!
//! # Errors
//!
//! An ICMP port unreachable from the destination is recorded on the
//! connected socket and reported as `ECONNREFUSED` by its next send or
//! receive; it becomes an ICMP destination unreachable (port) or ICMPv6
//! destination unreachable (port, RFC 4443 §3.1) to the guest, quoting the
//! IP and UDP headers of the guest's last datagram as rebuilt from the
//! flow (the payload is gone). At most [`ICMP_BURST`] such messages are
//! sent at once and one per [`ICMP_INTERVAL`] afterwards (RFC 1812
//! §4.3.2.8, RFC 4443 §2.4(f)).
//!
//! With [`crate::Translator::set_host_errors`] (an executor that reads
//! error queues), a guest flow's socket is opened with
//! [`SockFlags::RECVERR`]: every ICMP error the host gets for its
//! datagrams, from the destination or from a router on the way (time
//! exceeded, unreachable with its code, fragmentation needed / packet too
//! big), waits in the socket's error queue and makes it report an error;
//! a [`SockOp::RecvErr`] reads it, and the guest gets the same error
//! (`icmp::host_error_frame`): from the router as the guest sees
//! its address (`to_guest`, the remote's address if the destination
//! itself answered), quoting the IP and UDP headers of the datagram as
//! the guest sent it, rebuilt from the flow, and as much of its payload as
//! the router quoted, within 576 bytes in all for IPv4 (RFC 1812
//! §4.3.2.3) and 1280 for IPv6 (RFC 4443 §3). Port unreachable then comes
//! this way too (the `ECONNREFUSED` of a send or receive is only counted).
//! The guest's TTL / hop limit goes to the socket ([`SockOp::SetTtl`],
//! when it differs from the socket's last one), so that traceroute's
//! probes expire where the guest meant them to.
//!
//! Malformed guest datagrams never reach this module (the dispatcher drops
//! truncated headers, lengths that disagree with the IP length and bad
//! checksums); datagrams from or to port 0 are dropped as
//! [`DropReason::Malformed`], to broadcast or multicast destinations as
//! [`DropReason::Unsupported`].
//!
//! # Timeouts
//!
//! A flow ends after [`IDLE_TIMEOUT`] (30 s) without a datagram in either
//! direction, and after [`REPLIED_TIMEOUT`] (120 s) once a datagram came
//! back from the side it was opened toward (the host for a guest's flow,
//! the guest for a forwarded port's, the host's loopback for a `-U` one)
//! and it carried a third datagram, either way: as the original's, seen
//! from outside (a lone request and its answer, such as a DNS lookup, and
//! a one-way stream both end after 30 s; request, request, answer or
//! request, answer, request live 120 s). A conversation survives pauses,
//! one-off exchanges do not hold a socket for long. Flows sit in two least-recently-used
//! orders, one per timeout, so that in each the front expires first:
//! expiry and eviction look at the two fronts only.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use crate::addr::{InAny, SockAddrAny};
use crate::buf::{TxRing, TxStorage};
use crate::change::Progress;
use crate::config::ports::FwdMode;
use crate::config::Config;
use crate::contract::cx::Cx;
use crate::contract::slots::{Module, Owner, SockSlots};
use crate::contract::transport::Transport;
use crate::contract::{
    Completion, Done, DropReason, Errno, Proto, Ready, SockFlags, SockId, SockOp, SockSpec,
};
use crate::dgram::errors::{host_error_frame, icmp4_frame, Quote};
use crate::dgram::recv::RecvBatch;
use crate::dgram::{
    close_orphan, close_sock, is_unicast, DgramFlow, DgramModule, Flows, Receives, DEFAULT_TTL,
    ETH_LEN,
};
use crate::flow::index::FlowKey;
use crate::flow::siphash::SipHasher13;
use crate::flow::{fwd, FlowId, FlowSide, Pif};
use crate::ingress::Datagram;
use crate::time::Instant;
use crate::wire::ethernet::EthernetRepr;
use crate::wire::icmp::{error_excerpt, IcmpRepr};
use crate::wire::icmpv6::{unreach_code, Icmpv6Repr};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::{frame, ip_proto, WireError};

mod change;

/// What a UDP socket is, as its owner token's tag says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UdpSock {
    /// The socket of flow slot `n`.
    Flow(u32),
    /// Listening socket `n` of a forwarded port.
    Listener(u32),
}

impl UdpSock {
    /// The tag bit of listeners.
    const LISTENER: u32 = 1 << 31;

    /// The owner token for the socket slots.
    pub(crate) fn owner(self) -> Owner {
        // Flow slots (at most `MAX_FLOWS`) and listener indices (bounded by
        // the table reserved at setup) stay far below the tag bit.
        debug_assert!(
            matches!(self, UdpSock::Flow(n) | UdpSock::Listener(n) if n & Self::LISTENER == 0)
        );
        let tag = match self {
            UdpSock::Flow(n) => n & !Self::LISTENER,
            UdpSock::Listener(n) => n | Self::LISTENER,
        };
        Owner::new(Module::Udp, tag)
    }

    /// The socket a tag of [`UdpSock::owner`] names.
    pub(crate) fn of(tag: u32) -> Self {
        if tag & Self::LISTENER != 0 {
            UdpSock::Listener(tag & !Self::LISTENER)
        } else {
            UdpSock::Flow(tag)
        }
    }
}

/// A flow that has seen no reply ends after this long without a datagram
/// (the original's 30 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A flow that has seen a reply ends after this long without a datagram
/// (the original's 120 s).
pub const REPLIED_TIMEOUT: Duration = Duration::from_secs(120);
pub use crate::dgram::EVICT_MIN_IDLE;
/// Most UDP flows, whatever [`crate::config::Limits::max_flows`] allows.
pub const MAX_FLOWS: u32 = 16 * 1024;
/// Most datagrams one [`SockOp::Recv`] reads (one `recvmmsg` with the
/// executor: as many as its `RECV_MAX`).
pub const RECV_BATCH: u32 = 64;
/// ICMP errors sent at once before the rate limit applies.
pub const ICMP_BURST: u32 = 10;
/// One more ICMP error allowed per this interval.
pub const ICMP_INTERVAL: Duration = Duration::from_millis(100);
/// TTL / hop limit of frames we build for the guest.
const TTL: u8 = 64;
/// UDP header length.
const UDP_LEN: usize = 8;

/// UDP counters, in [`crate::Stats::udp`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Flows opened by a guest datagram.
    pub flows_opened: u64,
    /// Flows created by a datagram to a forwarded port.
    pub flows_inbound: u64,
    /// Flows ended by [`IDLE_TIMEOUT`] or [`REPLIED_TIMEOUT`].
    pub flows_expired: u64,
    /// Flows evicted for a new one.
    pub flows_evicted: u64,
    /// Sockets the host could not open (the flow is dropped).
    pub open_failed: u64,
    /// Listening sockets of forwarded ports opened.
    pub listeners: u64,
    /// Listening sockets that could not be opened.
    pub listen_failed: u64,
    /// Datagrams from the guest handed to a socket.
    pub to_host: u64,
    /// Datagrams from the host framed to the guest.
    pub to_guest: u64,
    /// Sends that failed on the host.
    pub send_errors: u64,
    /// Host datagrams dropped for exceeding the guest's MTU.
    pub too_big: u64,
    /// ICMP port unreachable messages sent to the guest.
    pub port_unreachable: u64,
    /// ICMP errors suppressed by the rate limit.
    pub icmp_rate_limited: u64,
    /// ICMP errors from the host's error queue sent on to the guest.
    pub host_errors: u64,
    /// `-U` flows opened for a new namespace sender.
    pub out_flows: u64,
    /// `-U` datagrams sent on from the namespace to the host.
    pub out_to_host: u64,
    /// `-U` replies sent back into the namespace.
    pub out_to_ns: u64,
    /// `-U` datagrams refused on the host (`ECONNREFUSED`: nothing bound
    /// to the target port), dropped.
    pub out_refused: u64,
}

/// A flow as the guest sees it: both ends, IPv4 v4-mapped. For a `-U`
/// flow (`out`), the namespace sender (`guest`) and the namespace socket's
/// address it wrote to (`remote`): a key space of its own, whatever
/// addresses a guest frame claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UdpKey {
    guest: SockAddrAny,
    remote: SockAddrAny,
    out: bool,
}

impl FlowKey for UdpKey {
    fn hash_into(&self, h: &mut SipHasher13) {
        h.write(&self.guest.addr.0.octets());
        h.write(&self.guest.port.to_be_bytes());
        h.write(&self.remote.addr.0.octets());
        h.write(&self.remote.port.to_be_bytes());
        h.write(&[u8::from(self.out)]);
    }
}

/// One UDP conversation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UdpFlow {
    /// The guest's side: `endpoint` the guest, `ours` the remote as the
    /// guest addresses it.
    tap: FlowSide,
    /// The host's side: `endpoint` where datagrams go, `ours` our bound
    /// address (port 0: chosen by the host).
    host: FlowSide,
    /// The socket carrying it: the flow's own, or a listener's.
    sock: SockId,
    /// Whether `sock` is a forwarded port's listening socket (shared, sent
    /// to with `SendTo`, not closed with the flow).
    listener: bool,
    /// The `Open` of `sock` has not completed yet.
    opening: bool,
    /// A `-U` flow: the index of the namespace socket its sender wrote to
    /// (`tap` is then the namespace side: `endpoint` the sender, `ours`
    /// that socket's address; `sock` is the flow's own host socket).
    out: Option<u32>,
    /// Last datagram in either direction.
    last: Instant,
    /// A datagram came back from the side the flow was opened toward.
    replied: bool,
    /// Datagrams seen so far, both ways (counting stops at 3).
    datagrams: u8,
    /// [`REPLIED_TIMEOUT`] applies, not [`IDLE_TIMEOUT`]: a reply was seen
    /// and the flow carried more than a lone request and its answer.
    long: bool,
    /// The flow was opened by a datagram from the host side (a forwarded
    /// port's sender): a reply is then one from the guest.
    from_host: bool,
    /// Payload length of the guest's last datagram, quoted in ICMP errors.
    last_len: u16,
    /// The TTL / hop limit the socket sends with (the kernel's default
    /// until the guest's differs).
    ttl: u8,
}

impl DgramFlow for UdpFlow {
    fn sock(&self) -> SockId {
        self.sock
    }
    fn last(&self) -> Instant {
        self.last
    }
    fn timeout(&self) -> Duration {
        if self.long {
            REPLIED_TIMEOUT
        } else {
            IDLE_TIMEOUT
        }
    }
    fn order(&self) -> usize {
        usize::from(self.long)
    }
    fn opened(&self) -> bool {
        !self.opening
    }
}

impl UdpFlow {
    fn key(&self) -> UdpKey {
        UdpKey {
            guest: self.tap.endpoint,
            remote: self.tap.ours,
            out: self.out.is_some(),
        }
    }
}

/// A forwarded port's listening socket.
#[derive(Clone, Copy, Debug)]
struct Listener {
    /// Where it is bound on the host (inside the namespace for `out`).
    bind: SockAddrAny,
    /// The guest's port datagrams go to (the host's loopback port for
    /// `out`).
    target: u16,
    /// The rule's target address (`-u 0.0.0.0/5000:192.0.2.5`): where in
    /// the guest datagrams go instead of the guest's own address.
    to_addr: Option<InAny>,
    /// Its socket, once asked for.
    sock: Option<SockId>,
    /// The `Open` has not completed yet.
    opening: bool,
    /// A `-U` socket: inside the namespace, on its loopback; what it
    /// receives goes to the host's loopback (see the module docs).
    out: bool,
    /// Opened for the forwarding change in flight, not in force yet: its
    /// datagrams wait (level-triggered) until the swap (`crate::change`).
    pending: bool,
    /// In force, and the rules of the change in flight want it too.
    keep: bool,
    /// Its rule was removed while flows went through it: it takes no new
    /// senders, and closes when the last of its flows ends.
    retired: bool,
    /// Removed: its `Close` waits to be handed out
    /// ([`Udp::next_close_op`]).
    closing: bool,
    /// Flows through it (forwarded ports' flows use its socket).
    flows: u32,
}

/// UDP flows and forwarded ports.
pub(crate) struct Udp {
    /// The flows, in two least-recently-used orders: `[0]` flows without
    /// a reply yet, `[1]` replied ones (each sorted by expiry, see the
    /// module docs).
    flows: Flows<UdpFlow, UdpKey, 2>,
    listeners: Vec<Listener>,
    next_listener: usize,
    /// The receive and the error-queue read in flight.
    rx: Receives,
    /// Counters, composed into [`crate::Stats::udp`].
    pub(crate) stats: UdpStats,
    /// The socket of the [`SockOp::RecvHeld`] in flight, and how many of
    /// its datagrams were reported so far (the next one's index).
    held: Option<(SockId, u32)>,
    icmp_tokens: u32,
    icmp_refill: Instant,
    /// This module's part of the forwarding change in flight.
    pub(crate) change: Progress,
    /// Listeners marked `closing`, and where the next search for one
    /// starts.
    to_close: u32,
    close_from: usize,
    /// Where the next search for a free listener entry starts, during a
    /// change.
    free_from: usize,
}

impl Udp {
    /// The addresses a `-u` rule with listening address `addr` binds: one
    /// per enabled family (every address of it), or the rule's own.
    fn in_fams(config: &Config, addr: Option<core::net::IpAddr>) -> [Option<InAny>; 2] {
        match addr {
            None => [
                config.ip4.as_ref().map(|_| InAny::UNSPECIFIED4),
                config.ip6.as_ref().map(|_| InAny::UNSPECIFIED6),
            ],
            Some(a) => {
                let a = InAny::from(a);
                let on = if a.is_v4() {
                    config.ip4.is_some()
                } else {
                    config.ip6.is_some()
                };
                [on.then_some(a), None]
            }
        }
    }

    /// Tables sized from `config.limits`; one listener per forwarded port
    /// and enabled family (none for `auto`, whose ports the driver reports).
    pub(crate) fn new(config: &Config) -> Self {
        let cap = config.limits.max_flows.min(MAX_FLOWS);
        // `auto` forwards only the ports the driver finds bound on the
        // other side (pasta scans them): no static listeners, but room for
        // one per port and family of each `auto` direction, reserved now
        // (never written until used) so that a scan opening ports never
        // allocates (entries are reused by address and port).
        let auto = [config.fwd.udp_in.mode(), config.fwd.udp_out.mode()]
            .iter()
            .filter(|&&m| m == FwdMode::Auto)
            .count();
        let mut listeners = Vec::new();
        let rules = match config.fwd.udp_in.mode() {
            FwdMode::Ports | FwdMode::All => config.fwd.udp_in.rules(),
            FwdMode::Auto | FwdMode::None => &[],
        };
        for rule in rules {
            let fams = Self::in_fams(config, rule.addr);
            for port in rule.first..=rule.last {
                let Some(target) = rule.target(port) else {
                    continue;
                };
                for addr in fams.into_iter().flatten() {
                    listeners.push(Listener {
                        bind: SockAddrAny { addr, port },
                        target,
                        to_addr: rule.to_addr.map(InAny::from),
                        sock: None,
                        opening: false,
                        out: false,
                        pending: false,
                        keep: false,
                        retired: false,
                        closing: false,
                        flows: 0,
                    });
                }
            }
        }
        // `-U`: the namespace's loopback, both families (IPv6 may be off
        // there; that socket then fails alone).
        let out_rules = match config.fwd.udp_out.mode() {
            FwdMode::Ports | FwdMode::All => config.fwd.udp_out.rules(),
            FwdMode::Auto | FwdMode::None => &[],
        };
        for rule in out_rules {
            for port in rule.first..=rule.last {
                let Some(target) = rule.target(port) else {
                    continue;
                };
                for addr in out_addrs(rule.addr).into_iter().flatten() {
                    listeners.push(Listener {
                        bind: SockAddrAny { addr, port },
                        target,
                        to_addr: None,
                        sock: None,
                        opening: false,
                        out: true,
                        pending: false,
                        keep: false,
                        retired: false,
                        closing: false,
                        flows: 0,
                    });
                }
            }
        }
        listeners.reserve_exact(auto * 2 * (1 << 16) + config.limits.change_listeners as usize);
        Udp {
            flows: Flows::new(cap, config.secret),
            listeners,
            stats: UdpStats::default(),
            next_listener: 0,
            rx: Receives::default(),
            held: None,
            icmp_tokens: ICMP_BURST,
            icmp_refill: Instant::ZERO,
            change: Progress::default(),
            to_close: 0,
            close_from: 0,
            free_from: 0,
        }
    }

    /// The `Open` of the next forwarded port's listening socket, if any is
    /// left to open and a socket slot is free.
    pub(crate) fn next_listener_op(&mut self, socks: &mut SockSlots) -> Option<SockOp> {
        // Entries `auto` forwarding added were opened as they were added.
        while self
            .listeners
            .get(self.next_listener)
            .is_some_and(|l| l.sock.is_some())
        {
            self.next_listener += 1;
        }
        let n = self.next_listener;
        let op = Self::listener_op(socks, &mut self.listeners, n)?;
        self.next_listener += 1;
        Some(op)
    }

    /// `auto` forwarding (`-u auto`): open (`on`) or close the listening
    /// sockets of forwarded `port` (each enabled family the rule allows),
    /// pushing the operations to `ops`. Flows that went through a closed
    /// listener stay until they expire; their replies then fail to send.
    pub(crate) fn set_auto_port(
        &mut self,
        config: &Config,
        socks: &mut SockSlots,
        ops: &mut crate::queue::FixedQueue<SockOp>,
        port: u16,
        on: bool,
    ) -> bool {
        let Some((target, rule)) = config.fwd.udp_in.lookup(port) else {
            return false;
        };
        let mut queued = false;
        if !on {
            for l in self.listeners.iter_mut() {
                if l.bind.port != port || l.out {
                    continue;
                }
                if let Some(id) = l.sock.take() {
                    l.opening = false;
                    socks.release(id);
                    queued |= ops.push(SockOp::Close { id }).is_ok();
                }
            }
            return queued;
        }
        let fams: [Option<InAny>; 2] = match rule.addr {
            None => [
                config.ip4.as_ref().map(|_| InAny::UNSPECIFIED4),
                config.ip6.as_ref().map(|_| InAny::UNSPECIFIED6),
            ],
            Some(a) => {
                let a = InAny::from(a);
                let fam_on = if a.is_v4() {
                    config.ip4.is_some()
                } else {
                    config.ip6.is_some()
                };
                [fam_on.then_some(a), None]
            }
        };
        let to_addr = rule.to_addr.map(InAny::from);
        for addr in fams.into_iter().flatten() {
            let bind = SockAddrAny { addr, port };
            queued |= self.open_auto_listener(socks, ops, bind, (target, to_addr), false);
        }
        queued
    }

    /// Open the listener bound to `bind` (on the namespace's side with
    /// `out`) for `auto` forwarding, to the target port and address
    /// `to`, reusing its entry if it had one; nothing if it is open
    /// already. Whether an `Open` was queued.
    fn open_auto_listener(
        &mut self,
        socks: &mut SockSlots,
        ops: &mut crate::queue::FixedQueue<SockOp>,
        bind: SockAddrAny,
        to: (u16, Option<InAny>),
        out: bool,
    ) -> bool {
        let (target, to_addr) = to;
        let found = self
            .listeners
            .iter()
            .position(|l| l.bind == bind && l.out == out);
        let n = match found {
            Some(n) if self.listeners.get(n).is_some_and(|l| l.sock.is_some()) => return false,
            Some(n) => {
                if let Some(l) = self.listeners.get_mut(n) {
                    l.target = target;
                    l.to_addr = to_addr;
                }
                n
            }
            None => {
                self.listeners.push(Listener {
                    bind,
                    target,
                    to_addr,
                    sock: None,
                    opening: false,
                    out,
                    pending: false,
                    keep: false,
                    retired: false,
                    closing: false,
                    flows: 0,
                });
                self.listeners.len() - 1
            }
        };
        let Some(op) = Self::listener_op(socks, &mut self.listeners, n) else {
            return false;
        };
        if let Err(op) = ops.push(op) {
            if let (SockOp::Open { id, .. }, Some(l)) = (op, self.listeners.get_mut(n)) {
                socks.release(id);
                l.sock = None;
                l.opening = false;
            }
            return false;
        }
        true
    }

    /// `-U auto`: open (`on`) the namespace sockets of forwarded `port`
    /// (both families of the namespace's loopback), or close them and end
    /// the flows that came through them. Nothing for a port
    /// `config.fwd.udp_out` does not forward or that is already in the
    /// state asked for. Returns whether operations were queued.
    pub(crate) fn set_auto_out_port(&mut self, cx: &mut Cx<'_>, port: u16, on: bool) -> bool {
        let Some((target, rule)) = cx.config.fwd.udp_out.lookup(port) else {
            return false;
        };
        let addr = rule.addr;
        let mut queued = false;
        if on {
            for a in out_addrs(addr).into_iter().flatten() {
                let bind = SockAddrAny { addr: a, port };
                queued |= self.open_auto_listener(cx.socks, cx.ops, bind, (target, None), true);
            }
            return queued;
        }
        for l in self.listeners.iter_mut() {
            if l.bind.port != port || !l.out {
                continue;
            }
            if let Some(id) = l.sock.take() {
                l.opening = false;
                if self.held.is_some_and(|(h, _)| h == id) {
                    self.held = None;
                }
                cx.socks.release(id);
                queued |= cx.ops.push(SockOp::Close { id }).is_ok();
            }
        }
        // Their flows end with them.
        for i in 0..self.flows.table.capacity() {
            let Some(fid) = self.flows.table.id_at(i) else {
                continue;
            };
            let Some(f) = self.flows.table.get(fid) else {
                continue;
            };
            let through = f.out.and_then(|n| self.listeners.get(n as usize));
            if through.is_some_and(|l| l.bind.port == port) {
                let opened = !f.opening;
                self.end_flow(cx, fid, opened);
                queued = true;
            }
        }
        queued
    }

    /// Whether a `-U` socket of `port` is open (or being opened) in either
    /// family.
    pub(crate) fn out_listening(&self, port: u16) -> bool {
        self.listeners
            .iter()
            .any(|l| l.out && l.bind.port == port && l.sock.is_some())
    }

    /// The `Open` of listener `n`, with a socket slot allocated for it.
    fn listener_op(socks: &mut SockSlots, listeners: &mut [Listener], n: usize) -> Option<SockOp> {
        let l = listeners.get_mut(n)?;
        let id = socks.alloc_owned(UdpSock::Listener(n as u32).owner())?;
        l.sock = Some(id);
        l.opening = true;
        let ipv6 = !l.bind.addr.is_v4();
        let mut flags = SockFlags::REUSEADDR;
        if ipv6 {
            flags |= SockFlags::V6ONLY;
        }
        if l.out {
            flags |= SockFlags::IN_NS;
        }
        Some(SockOp::Open {
            id,
            spec: SockSpec {
                proto: Proto::Udp,
                ipv6,
                bind: Some(l.bind),
                peer: None,
                flags,
            },
        })
    }

    /// A forwarded flow that a guest datagram from `key` answers although
    /// it comes from another of the guest's addresses than the one the
    /// flow's datagrams went to (an unbound socket's reply takes the
    /// kernel's preferred source, e.g. a SLAAC address beside the assigned
    /// one): same ports and remote, delivered to the assigned address or
    /// to one the guest was seen using before ([`crate::seen`]).
    fn reply_from_other(&self, cx: &Cx<'_>, key: UdpKey) -> Option<FlowId> {
        cx.seen
            .others(cx.config, key.guest.addr)
            .into_iter()
            .flatten()
            .find_map(|addr| {
                let fid = self.flows.index.get(&UdpKey {
                    guest: SockAddrAny::new(addr, key.guest.port),
                    remote: key.remote,
                    out: false,
                })?;
                self.flows
                    .table
                    .get(fid)
                    .filter(|f| f.listener)
                    .map(|_| fid)
            })
    }

    /// A new flow from the guest, with its socket being opened.
    fn open_flow<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        key: UdpKey,
        tx: &mut TxRing<S>,
    ) -> Result<FlowId, DropReason> {
        let (next, sock) = self.reserve(cx, tx)?;
        let peer = fwd::guest_to_host(cx.config, key.remote);
        let ipv6 = !peer.addr.is_v4();
        let bind = SockAddrAny {
            addr: if ipv6 {
                InAny::UNSPECIFIED6
            } else {
                InAny::UNSPECIFIED4
            },
            port: key.guest.port,
        };
        let mut flags = SockFlags::REUSEADDR | SockFlags::BIND_FALLBACK;
        if ipv6 {
            flags |= SockFlags::V6ONLY;
        }
        if self.rx.host_errors {
            flags |= SockFlags::RECVERR;
        }
        let open = SockOp::Open {
            id: sock,
            spec: SockSpec {
                proto: Proto::Udp,
                ipv6,
                bind: Some(bind),
                peer: Some(peer),
                flags,
            },
        };
        if let Err(e) = cx.op(open) {
            cx.socks.release(sock);
            return Err(e);
        }
        let flow = UdpFlow {
            tap: FlowSide {
                pif: Pif::Tap,
                endpoint: key.guest,
                ours: key.remote,
            },
            host: FlowSide {
                pif: Pif::Host,
                endpoint: peer,
                ours: SockAddrAny { port: 0, ..bind },
            },
            sock,
            listener: false,
            opening: true,
            out: None,
            last: cx.now,
            replied: false,
            datagrams: 0,
            long: false,
            from_host: false,
            last_len: 0,
            ttl: DEFAULT_TTL,
        };
        let fid = self.insert(flow);
        debug_assert_eq!(fid, next);
        self.stats.flows_opened += 1;
        Ok(fid)
    }

    /// Publish a flow in the table, the index and the LRU order.
    fn insert(&mut self, flow: UdpFlow) -> FlowId {
        let key = flow.key();
        let fid = match self.flows.table.insert(flow) {
            Ok(fid) => fid,
            // Callers made room first; nothing to publish otherwise.
            Err(_) => {
                return FlowId {
                    index: u32::MAX,
                    gen: 0,
                }
            }
        };
        let indexed = self.flows.index.insert(key, fid);
        debug_assert!(indexed, "index and table have the same capacity");
        self.flows.lru[0].touch(fid.index());
        fid
    }

    /// [`DgramModule::close_flow`] without tx slots to give back: for `-U` flows, which
    /// never take any, and where no receive into the tx ring can be in
    /// flight on the flow's socket.
    fn end_flow(&mut self, cx: &mut Cx<'_>, fid: FlowId, opened: bool) {
        self.flows.unlink(fid);
        let Some(flow) = self.flows.table.remove(fid) else {
            return;
        };
        self.flows.index.remove(&flow.key());
        if flow.listener {
            self.listener_flow_ended(cx, flow.sock);
            return;
        }
        if self.held.is_some_and(|(h, _)| h == flow.sock) {
            self.held = None;
        }
        close_sock(cx, flow.sock, opened);
    }

    /// Queue a [`SockOp::Recv`] of datagrams on `id` into tx slots.
    fn start_recv<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        ipv6: bool,
        tx: &mut TxRing<S>,
    ) {
        let ip_len = if ipv6 { 40 } else { 20 };
        let max = usize::from(cx.config.mtu).saturating_sub(ip_len + UDP_LEN);
        self.rx
            .start(cx, id, RECV_BATCH, ETH_LEN + ip_len + UDP_LEN, max, tx);
    }

    /// Datagram `index` of the [`SockOp::RecvHeld`] in flight on a `-U`
    /// socket (from `from`): send it on, to the host through the sender's
    /// flow, or back into the namespace to the flow's sender.
    fn held_datagram<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        owner: UdpSock,
        index: u32,
        from: SockAddrAny,
        tx: &mut TxRing<S>,
    ) {
        let sent = match owner {
            UdpSock::Listener(n) => self.out_to_host(cx, n, index, from, tx),
            UdpSock::Flow(n) => self.out_to_ns(cx, n, index),
        };
        match sent {
            Ok(true) => self.stats.out_to_host += 1,
            Ok(false) => self.stats.out_to_ns += 1,
            Err(reason) => cx.count_drop(reason),
        }
    }

    /// A datagram from namespace sender `from` on `-U` socket `n`: to the
    /// host's loopback through the sender's flow, made if new (its `Open`
    /// queued before the send). `Ok(true)` once queued.
    fn out_to_host<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        n: u32,
        index: u32,
        from: SockAddrAny,
        tx: &mut TxRing<S>,
    ) -> Result<bool, DropReason> {
        let l = *self
            .listeners
            .get(n as usize)
            .filter(|l| l.out)
            .ok_or(DropReason::StaleSocket)?;
        if l.sock.is_none() {
            return Err(DropReason::StaleSocket);
        }
        if from.port == 0 {
            return Err(DropReason::Malformed);
        }
        let key = UdpKey {
            guest: from,
            remote: l.bind,
            out: true,
        };
        let fid = match self.flows.index.get(&key) {
            Some(fid) => fid,
            None => self.open_out_flow(cx, n, l, key, tx)?,
        };
        let id = self
            .flows
            .table
            .get(fid)
            .ok_or(DropReason::StaleSocket)?
            .sock;
        self.relay_held(cx, fid, id, None, index, false)?;
        Ok(true)
    }

    /// Send held datagram `index` on `id` (to `dst`, for an unconnected
    /// socket) for `-U` flow `fid`, which it keeps alive (`from_host`: a
    /// reply from the host's loopback).
    fn relay_held(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        id: SockId,
        dst: Option<SockAddrAny>,
        index: u32,
        from_host: bool,
    ) -> Result<(), DropReason> {
        if !self.activity(fid, cx.now, from_host) {
            return Err(DropReason::StaleSocket);
        }
        cx.op(SockOp::SendHeld { id, dst, index })
    }

    /// A new `-U` flow for the namespace sender of `key`, through socket
    /// `n` (`l`): a host socket connected to the same family's loopback at
    /// the port's target, being opened.
    fn open_out_flow<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        n: u32,
        l: Listener,
        key: UdpKey,
        tx: &mut TxRing<S>,
    ) -> Result<FlowId, DropReason> {
        let (next, sock) = self.reserve(cx, tx)?;
        let ipv6 = !l.bind.addr.is_v4();
        let (lo, any) = if ipv6 {
            (InAny::from(Ipv6Addr::LOCALHOST), InAny::UNSPECIFIED6)
        } else {
            (InAny::from(Ipv4Addr::LOCALHOST), InAny::UNSPECIFIED4)
        };
        let peer = SockAddrAny {
            addr: lo,
            port: l.target,
        };
        let mut spec = SockSpec::new(Proto::Udp, ipv6);
        spec.peer = Some(peer);
        if let Err(e) = cx.op(SockOp::Open { id: sock, spec }) {
            cx.socks.release(sock);
            return Err(e);
        }
        let fid = self.insert(UdpFlow {
            tap: FlowSide {
                pif: Pif::Splice,
                endpoint: key.guest,
                ours: key.remote,
            },
            host: FlowSide {
                pif: Pif::Host,
                endpoint: peer,
                ours: SockAddrAny { addr: any, port: 0 },
            },
            sock,
            listener: false,
            opening: true,
            out: Some(n),
            last: cx.now,
            replied: false,
            datagrams: 0,
            long: false,
            from_host: false,
            last_len: 0,
            ttl: DEFAULT_TTL,
        });
        debug_assert_eq!(fid, next);
        self.stats.out_flows += 1;
        Ok(fid)
    }

    /// A reply on the host socket of `-U` flow slot `n`: back into the
    /// namespace to the flow's sender, on the socket it wrote to.
    /// `Ok(false)` once queued.
    fn out_to_ns(&mut self, cx: &mut Cx<'_>, n: u32, index: u32) -> Result<bool, DropReason> {
        let (sock, _) = self.held.ok_or(DropReason::StaleSocket)?;
        let fid = self.flows.flow_of(n, sock).ok_or(DropReason::StaleSocket)?;
        let flow = self
            .flows
            .table
            .get_mut(fid)
            .ok_or(DropReason::StaleSocket)?;
        let l = flow
            .out
            .and_then(|l| self.listeners.get(l as usize))
            .filter(|l| l.out && l.bind == flow.tap.ours)
            .ok_or(DropReason::StaleSocket)?;
        let ns = l.sock.ok_or(DropReason::StaleSocket)?;
        let dst = Some(flow.tap.endpoint);
        self.relay_held(cx, fid, ns, dst, index, true)?;
        Ok(false)
    }

    /// One datagram of the receive in flight: frame it for the guest.
    fn datagram<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        owner: UdpSock,
        b: &mut RecvBatch,
        len: usize,
        from: SockAddrAny,
        tx: &mut TxRing<S>,
    ) {
        let fid = match owner {
            UdpSock::Flow(n) => self.flows.flow_of(n, b.sock).ok_or(DropReason::StaleSocket),
            UdpSock::Listener(n) => self.inbound(cx, n, from, tx),
        };
        let fid = match fid {
            Ok(fid) if len <= b.payload_len() => fid,
            Ok(_) => {
                b.skip();
                cx.count_drop(DropReason::TooBig);
                self.stats.too_big += 1;
                return;
            }
            Err(reason) => {
                b.skip();
                cx.count_drop(reason);
                return;
            }
        };
        let Some(flow) = self.flows.table.get_mut(fid) else {
            b.skip();
            return;
        };
        let (src, dst) = (flow.tap.ours, flow.tap.endpoint);
        let eth = EthernetRepr::new(cx.guest_mac(), cx.config.our_mac, 0);
        let Some(buf) = b.place(tx, len) else {
            cx.count_drop(DropReason::TooBig);
            return;
        };
        let built = match (src.addr.v4(), dst.addr.v4()) {
            (Some(s), Some(d)) => {
                frame::udp4(buf, &eth, s, src.port, d, dst.port, TTL, |_| Ok(len))
            }
            (None, None) => frame::udp6(
                buf,
                &eth,
                src.addr.0,
                src.port,
                dst.addr.0,
                dst.port,
                TTL,
                |_| Ok(len),
            ),
            _ => Err(WireError::Unsupported),
        };
        match built {
            Ok(n) if b.commit(tx, n) => {
                self.activity(fid, cx.now, true);
                self.stats.to_guest += 1;
            }
            _ => cx.count_drop(DropReason::Unsupported),
        }
    }

    /// The flow for a datagram from `from` to listener `n`, created if new.
    fn inbound<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        n: u32,
        from: SockAddrAny,
        tx: &mut TxRing<S>,
    ) -> Result<FlowId, DropReason> {
        let l = *self
            .listeners
            .get(n as usize)
            .ok_or(DropReason::StaleSocket)?;
        let sock = l.sock.ok_or(DropReason::StaleSocket)?;
        let remote = fwd::host_to_guest(cx.config, from.addr).ok_or(DropReason::Unsupported)?;
        // The rule's target address, else where the guest is
        // ([`crate::seen`]): a SLAAC guest's address is not the configured
        // one, and a link-local peer needs its link-local address.
        let guest = l
            .to_addr
            .or_else(|| cx.seen.dst_for(cx.config, remote))
            .ok_or(DropReason::Unsupported)?;
        let key = UdpKey {
            guest: SockAddrAny::new(guest, l.target),
            remote: SockAddrAny::new(remote, from.port),
            out: false,
        };
        if let Some(fid) = self.flows.index.get(&key) {
            return Ok(fid);
        }
        if l.retired {
            // Its rule is gone: only the flows it had go on.
            return Err(DropReason::StaleSocket);
        }
        if self.flows.table.is_full() && !self.evict(cx, tx) {
            return Err(DropReason::FlowTableFull);
        }
        if let Some(l) = self.listeners.get_mut(n as usize) {
            l.flows += 1;
        }
        let fid = self.insert(UdpFlow {
            tap: FlowSide {
                pif: Pif::Tap,
                endpoint: key.guest,
                ours: key.remote,
            },
            host: FlowSide {
                pif: Pif::Host,
                endpoint: from,
                ours: l.bind,
            },
            sock,
            listener: true,
            opening: false,
            out: None,
            last: cx.now,
            replied: false,
            datagrams: 0,
            long: false,
            from_host: true,
            last_len: 0,
            ttl: DEFAULT_TTL,
        });
        self.stats.flows_inbound += 1;
        Ok(fid)
    }

    /// Whether the rate limit lets one more ICMP error go to the guest now
    /// (a token is left; the caller takes it when it sends), counting the
    /// one suppressed otherwise.
    fn icmp_allowed(&mut self, cx: &mut Cx<'_>) -> bool {
        let since = cx.now.saturating_since(self.icmp_refill);
        let refill = (since.as_nanos() / ICMP_INTERVAL.as_nanos()).min(u128::from(ICMP_BURST));
        if refill > 0 {
            self.icmp_tokens = (self.icmp_tokens + refill as u32).min(ICMP_BURST);
            self.icmp_refill = cx.now;
        }
        if self.icmp_tokens == 0 {
            self.stats.icmp_rate_limited += 1;
            return false;
        }
        true
    }

    /// Tell the guest that the destination of flow `fid` refused it
    /// (RFC 792 type 3 code 3; RFC 4443 §3.1 code 4), rate-limited.
    fn port_unreachable<S: TxStorage>(&mut self, cx: &mut Cx<'_>, fid: FlowId, tx: &mut TxRing<S>) {
        if self.flows.table.get(fid).is_none() || !self.icmp_allowed(cx) {
            return;
        }
        let Some(flow) = self.flows.table.get(fid) else {
            return;
        };
        let (guest, remote) = (flow.tap.endpoint, flow.tap.ours);
        let eth = EthernetRepr::new(cx.guest_mac(), cx.config.our_mac, 0);
        let udp_len = UDP_LEN + usize::from(flow.last_len);
        let mut quote = [0u8; 48];
        let sent = match (guest.addr.v4(), remote.addr.v4()) {
            (Some(g), Some(r)) => {
                let ip = Ipv4Repr::new(g, r, ip_proto::UDP, TTL);
                let Ok(hl) = ip.emit_with_checksum(&mut quote, udp_len) else {
                    return;
                };
                let Some(q) = write_udp_header(&mut quote, hl, guest.port, remote.port, udp_len)
                else {
                    return;
                };
                let msg = IcmpRepr::port_unreachable(error_excerpt(q));
                tx.push_with(|buf| icmp4_frame(buf, &eth, r, g, |m| msg.emit(m)).ok())
            }
            (None, None) => {
                let ip = Ipv6Repr::new(guest.addr.0, remote.addr.0, ip_proto::UDP, TTL);
                let Ok(hl) = ip.emit_with_len(&mut quote, udp_len) else {
                    return;
                };
                let Some(q) = write_udp_header(&mut quote, hl, guest.port, remote.port, udp_len)
                else {
                    return;
                };
                let msg = Icmpv6Repr::dst_unreachable(unreach_code::PORT_UNREACHABLE, q);
                tx.push_with(|buf| {
                    frame::icmpv6(buf, &eth, remote.addr.0, guest.addr.0, TTL, |m| {
                        msg.emit(m, 0)
                    })
                    .ok()
                })
            }
            _ => false,
        };
        if sent {
            self.icmp_tokens -= 1;
            self.stats.port_unreachable += 1;
        } else {
            cx.count_drop(DropReason::TxFull);
        }
    }

    /// A datagram of flow `fid` at `now`, from the host side or not: it
    /// becomes the most recently active of its order, and moves to the
    /// long order once a reply was seen among at least three datagrams
    /// (see the module docs). Whether the flow exists.
    fn activity(&mut self, fid: FlowId, now: Instant, from_host: bool) -> bool {
        let Some(flow) = self.flows.table.get_mut(fid) else {
            return false;
        };
        flow.last = now;
        flow.datagrams = flow.datagrams.saturating_add(1).min(3);
        flow.replied |= from_host != flow.from_host;
        if !flow.long && flow.replied && flow.datagrams >= 3 {
            flow.long = true;
            self.flows.lru[0].remove(fid.index());
        }
        self.flows.lru[usize::from(flow.long)].touch(fid.index());
        true
    }
}

impl Udp {
    /// Whether the executor reads sockets' error queues
    /// ([`crate::Translator::set_host_errors`]).
    pub(crate) fn set_host_errors(&mut self, on: bool) {
        self.rx.set_host_errors(on);
    }
}

impl Transport for Udp {
    type Input<'a> = Datagram<'a>;

    /// A datagram from the guest: find or open its flow, send the payload.
    fn handle_tap<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        pkt: &Datagram<'_>,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason> {
        let udp = &pkt.udp;
        if udp.src_port == 0 || udp.dst_port == 0 {
            return Err(DropReason::Malformed);
        }
        if !is_unicast(cx.config, pkt.dst) {
            return Err(DropReason::Unsupported);
        }
        if !is_unicast(cx.config, pkt.src) {
            return Err(DropReason::Malformed);
        }
        let key = UdpKey {
            guest: SockAddrAny::new(pkt.src, udp.src_port),
            remote: SockAddrAny::new(pkt.dst, udp.dst_port),
            out: false,
        };
        let fid = match self
            .flows
            .index
            .get(&key)
            .or_else(|| self.reply_from_other(cx, key))
        {
            Some(fid) => fid,
            None => self.open_flow(cx, key, tx)?,
        };
        let payload = pkt.span;
        self.activity(fid, cx.now, false);
        let flow = self
            .flows
            .table
            .get_mut(fid)
            .ok_or(DropReason::StaleSocket)?;
        flow.last_len = udp.payload.len() as u16;
        if !flow.listener && flow.ttl != pkt.ttl {
            flow.ttl = pkt.ttl;
            let (id, ipv6) = (flow.sock, !key.remote.addr.is_v4());
            cx.op(SockOp::SetTtl {
                id,
                ipv6,
                ttl: pkt.ttl,
            })?;
        }
        let op = if flow.listener {
            SockOp::SendTo {
                id: flow.sock,
                dst: flow.host.endpoint,
                payload,
            }
        } else {
            SockOp::Send {
                id: flow.sock,
                payload,
            }
        };
        cx.op(op)?;
        self.stats.to_host += 1;
        Ok(())
    }

    /// Readiness of a flow's or a listener's socket: read what is queued.
    fn handle_ready<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        tag: u32,
        ready: Ready,
        tx: &mut TxRing<S>,
    ) {
        let owner = UdpSock::of(tag);
        // Reads the driver never finished: give their slots back.
        self.rx.abandon(tx);
        let (ipv6, out) = match owner {
            UdpSock::Flow(n) => match self
                .flows
                .flow_of(n, id)
                .and_then(|f| self.flows.table.get(f))
            {
                Some(f) => (!f.tap.endpoint.addr.is_v4(), f.out.is_some()),
                None => return close_orphan(cx, id),
            },
            // A pending listener's datagrams wait for the swap.
            UdpSock::Listener(n) => match self.listeners.get(n as usize) {
                Some(l) if !l.pending => (!l.bind.addr.is_v4(), l.out),
                _ => return,
            },
        };
        if !ready.intersects(Ready::READABLE | Ready::ERROR | Ready::HANGUP) {
            return;
        }
        if out {
            // `-U`: into the executor's held buffer, no tx slots. One held
            // receive at a time: a second one would replace the datagrams
            // the first one's sends still name. The socket is
            // level-triggered, so it reports again after this drain.
            if self.held.is_some() {
                return;
            }
            match cx.op(SockOp::RecvHeld { id }) {
                Ok(()) => self.held = Some((id, 0)),
                Err(reason) => cx.count_drop(reason),
            }
            return;
        }
        if self.rx.host_errors && ready.contains(Ready::ERROR) && matches!(owner, UdpSock::Flow(_))
        {
            // The error queue first; datagrams on the next readiness (the
            // socket is level-triggered).
            self.rx.start_err(cx, id, ipv6, UDP_LEN, tx);
            return;
        }
        self.start_recv(cx, id, ipv6, tx);
    }

    /// The result of an operation on a flow's or a listener's socket.
    fn handle_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        tag: u32,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        let owner = UdpSock::of(tag);
        let id = done.id;
        if let Some((sock, index)) = self.held.filter(|(s, _)| *s == id) {
            match done.res {
                Ok(Done::Datagram { from, .. }) => {
                    self.held = Some((sock, index.wrapping_add(1)));
                    self.held_datagram(cx, owner, index, from, tx);
                    return;
                }
                Ok(Done::Datagrams { .. }) | Err(_) => {
                    self.held = None;
                    if done.res == Err(Errno::ECONNREFUSED) {
                        self.stats.out_refused += 1;
                    }
                    return;
                }
                Ok(_) => {}
            }
        }
        if let Some(mut b) = self.rx.err.filter(|b| b.sock == id) {
            self.rx.err = None;
            let fid = match owner {
                UdpSock::Flow(n) => self.flows.flow_of(n, id),
                _ => None,
            };
            let flow = fid.and_then(|f| self.flows.table.get(f)).copied();
            match (done.res, flow) {
                (Ok(Done::HostError(e)), Some(f)) if self.icmp_allowed(cx) => {
                    let q = Quote {
                        guest: f.tap.endpoint,
                        remote: f.tap.ours,
                        host_remote: f.host.endpoint.addr,
                        ttl: f.ttl,
                        udp_len: Some(UDP_LEN as u16 + f.last_len),
                        echo_ident: None,
                    };
                    if host_error_frame(cx, &mut b, &q, &e, tx) {
                        self.icmp_tokens -= 1;
                        self.stats.host_errors += 1;
                    }
                }
                // Nothing queued after all (or the executor cannot read
                // it): what made the socket report an error is read as
                // datagrams are, which clears it.
                (Err(_), Some(f)) => {
                    b.finish(tx);
                    self.start_recv(cx, id, !f.tap.endpoint.addr.is_v4(), tx);
                    return;
                }
                _ => {}
            }
            b.finish(tx);
            return;
        }
        if let Some(mut b) = self.rx.recv.filter(|b| b.sock == id) {
            match done.res {
                Ok(Done::Datagram { len, from }) => {
                    self.datagram(cx, owner, &mut b, len as usize, from, tx);
                    self.rx.recv = Some(b);
                    return;
                }
                Ok(Done::Datagrams { .. }) | Err(_) => {
                    b.finish(tx);
                    self.rx.recv = None;
                    if done.res == Err(Errno::ECONNREFUSED) && !self.rx.host_errors {
                        if let UdpSock::Flow(n) = owner {
                            if let Some(fid) = self.flows.flow_of(n, id) {
                                self.port_unreachable(cx, fid, tx);
                            }
                        }
                    }
                    return;
                }
                Ok(_) => {}
            }
        }
        match owner {
            UdpSock::Listener(n) => {
                let Some(l) = self.listeners.get_mut(n as usize) else {
                    return;
                };
                if l.opening {
                    l.opening = false;
                    if l.pending {
                        self.change.opened(l.bind.port, done.res.map(|_| ()));
                        l.pending = done.res.is_ok();
                    }
                    match done.res {
                        Ok(_) => self.stats.listeners += 1,
                        Err(_) => {
                            self.stats.listen_failed += 1;
                            l.sock = None;
                            cx.socks.release(id);
                        }
                    }
                } else if done.res.is_err() {
                    self.stats.send_errors += 1;
                }
            }
            UdpSock::Flow(n) => {
                let Some(fid) = self.flows.flow_of(n, id) else {
                    return close_orphan(cx, id);
                };
                let Some(flow) = self.flows.table.get_mut(fid) else {
                    return;
                };
                if flow.opening {
                    flow.opening = false;
                    if done.res.is_err() {
                        self.stats.open_failed += 1;
                        self.close_flow(cx, fid, false, tx);
                    }
                    return;
                }
                match done.res {
                    Ok(_) => {}
                    Err(Errno::ECONNREFUSED) if flow.out.is_some() => {
                        self.stats.out_refused += 1;
                    }
                    // With error queues, the queued error becomes the ICMP.
                    Err(Errno::ECONNREFUSED) if self.rx.host_errors => {}
                    Err(Errno::ECONNREFUSED) => self.port_unreachable(cx, fid, tx),
                    Err(_) => self.stats.send_errors += 1,
                }
            }
        }
    }

    /// End flows idle for their timeout ([`IDLE_TIMEOUT`] or
    /// [`REPLIED_TIMEOUT`]).
    fn handle_timeout<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>) {
        self.expire(cx, tx);
    }

    /// When the next flow expires: the earlier of the two orders' fronts.
    fn poll_timeout(&self) -> Option<Instant> {
        self.flows.poll_timeout()
    }
}

impl DgramModule<2> for Udp {
    type Flow = UdpFlow;
    type Key = UdpKey;

    fn flows(&mut self) -> &mut Flows<UdpFlow, UdpKey, 2> {
        &mut self.flows
    }

    fn sock_owner(slot: u32) -> Owner {
        UdpSock::Flow(slot).owner()
    }

    /// End a flow; `opened` says whether its own socket exists on the host
    /// (a `Close` is due). Reads in flight on its socket give their tx
    /// slots back.
    fn close_flow<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        fid: FlowId,
        opened: bool,
        tx: &mut TxRing<S>,
    ) {
        if let Some(sock) = self
            .flows
            .table
            .get(fid)
            .filter(|f| !f.listener)
            .map(|f| f.sock)
        {
            self.rx.forget(sock, tx);
        }
        self.end_flow(cx, fid, opened);
    }

    fn count_evicted(&mut self) {
        self.stats.flows_evicted += 1;
    }

    fn count_expired(&mut self) {
        self.stats.flows_expired += 1;
    }
}

/// Write a UDP header (checksum 0) after the IP header of `quote` and
/// return the quoted bytes.
fn write_udp_header(
    quote: &mut [u8],
    at: usize,
    sport: u16,
    dport: u16,
    len: usize,
) -> Option<&[u8]> {
    let h = quote.get_mut(at..at + UDP_LEN)?;
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&(len.min(65535) as u16).to_be_bytes());
    h[6..8].fill(0);
    quote.get(..at + UDP_LEN)
}

/// The addresses of a `-U` rule's namespace sockets: the rule's own if it
/// names one, else the namespace's loopback in both families.
fn out_addrs(addr: Option<core::net::IpAddr>) -> [Option<InAny>; 2] {
    match addr {
        Some(a) => [Some(InAny::from(a)), None],
        None => [
            Some(InAny::from(Ipv4Addr::LOCALHOST)),
            Some(InAny::from(Ipv6Addr::LOCALHOST)),
        ],
    }
}
