//! The [`Translator`]: frames, readiness, completions and time in; frames,
//! socket operations, events and the next deadline out.
//!
//! See the crate documentation for the model and the driver contract (its
//! vocabulary is [`crate::contract`]). This file holds the [`Translator`],
//! the dispatch of each input to the module that owns it, and the
//! [`Stats`] composed of every module's counters.

use crate::addr::MacAddr;
use crate::buf::{Offload, RxBatch, TxRing, TxStorage};
use crate::change::{ChangeError, ChangeOutcome, Cursor, PortFamSet, Progress};
use crate::config::ports::{FwdMode, FwdSpec};
use crate::config::{Config, ConfigError, Services};
use crate::contract::cx::Shared;
use crate::contract::slots::Module;
use crate::contract::transport::Transport;
use crate::contract::{ChangeId, Completion, DropReason, Event, Proto, Ready, SockId, SockOp};
use crate::ingress::{classify, Classified, Item};
use crate::l2::{self, echo, Outcome};
use crate::tcp;
use crate::time::Instant;

/// Counters, always on, read with [`Translator::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received from the guest.
    pub frames_in: u64,
    /// Frames queued to the guest.
    pub frames_out: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// DHCP messages answered.
    pub dhcp_replies: u64,
    /// NDP messages answered (neighbour and router advertisements sent in
    /// reply to solicitations).
    pub ndp_replies: u64,
    /// Unsolicited router advertisements sent.
    pub ra_sent: u64,
    /// DHCPv6 messages answered.
    pub dhcpv6_replies: u64,
    /// ICMPv6 echo requests to our own link-local address answered
    /// ([`crate::l2::echo`]).
    pub echo_replies: u64,
    /// Frames dropped, by [`DropReason`] (index with `reason as usize`).
    pub drops: [u64; DropReason::COUNT],
    /// Events that did not fit the event queue.
    pub events_lost: u64,
    /// UDP flows and datagrams.
    pub udp: crate::udp::UdpStats,
    /// ICMP and ICMPv6 echo.
    pub icmp: crate::icmp::IcmpStats,
}

impl Stats {
    /// The counter for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

/// The dispatcher's own counters (the rest of [`Stats`] is kept by the
/// modules that count it).
#[derive(Clone, Debug, Default)]
struct Counters {
    frames_in: u64,
    frames_out: u64,
    arp_replies: u64,
    dhcp_replies: u64,
    ndp_replies: u64,
    ra_sent: u64,
    dhcpv6_replies: u64,
    echo_replies: u64,
}

/// The translator between a guest's Layer-2 link and host Layer-4 sockets.
///
/// # Contract
/// After any `handle_*` call, the driver drains [`Translator::poll_op`] and
/// runs every operation (feeding results back through
/// [`Translator::handle_completion`], whose own operations are drained the
/// same way) **before** it reuses the rx arena of the last batch or writes out
/// the tx ring. It writes out committed tx frames in order, drains
/// [`Translator::poll_event`] when convenient, and calls
/// [`Translator::handle_timeout`] once [`Translator::poll_timeout`] has passed.
///
/// No call blocks, reads a clock, or makes a syscall; after `new`, no call
/// allocates.
pub struct Translator {
    config: Config,
    now: Instant,
    /// The guest's MAC and addresses, socket slots, operations, reports.
    shared: Shared,
    /// The dispatcher's own counters.
    counters: Counters,
    dhcp: l2::dhcp::Dhcp,
    ndp: l2::ndp::Ndp,
    dhcpv6: l2::dhcpv6::Dhcpv6,
    udp: crate::udp::Udp,
    icmp: crate::icmp::Icmp,
    tcp: tcp::Tcp,
    /// The run-time forwarding change in flight (`crate::change`).
    change: Option<Change>,
    /// The listeners the change in flight keeps, by port and family.
    kept: PortFamSet,
    /// The id of the last change begun.
    last_change: u32,
    /// How the last finished change ended.
    change_outcome: Option<ChangeOutcome>,
}

/// A run-time forwarding change in flight.
struct Change {
    id: ChangeId,
    proto: Proto,
    /// The rules that replace those in force on success.
    spec: FwdSpec,
    /// The walk over their ports.
    cursor: Cursor,
    /// Whether the walk is over (every `Open` handed out, or a failure).
    walked: bool,
}

impl Translator {
    /// Check `config` and allocate every table and queue it sizes.
    ///
    /// # Errors
    /// The [`ConfigError`] that makes the configuration unusable.
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut t = Translator {
            now,
            shared: Shared::new(&config),
            counters: Counters::default(),
            dhcp: l2::dhcp::Dhcp::new(&config),
            ndp: l2::ndp::Ndp::new(&config, now),
            dhcpv6: l2::dhcpv6::Dhcpv6::new(&config),
            udp: crate::udp::Udp::new(&config),
            icmp: crate::icmp::Icmp::new(&config),
            tcp: tcp::Tcp::new(&config),
            change: None,
            kept: PortFamSet::new(),
            last_change: 0,
            change_outcome: None,
            config,
        };
        // Listening sockets of forwarded ports: the driver drains these
        // `Open`s before its first wait.
        t.tcp.open_listeners(&mut t.shared.cx(&t.config, t.now));
        Ok(t)
    }

    /// `auto` port forwarding (`-t auto`, `-u auto`): the driver found
    /// `port` bound (`on`) or no longer bound on the guest's side, and asks
    /// for the host's listening sockets of that forwarded port to be opened
    /// or closed. The translator queues the listeners' [`SockOp::Open`]s (a
    /// failure completes as for static forwards, counted in
    /// [`tcp::TcpStats::listen_failed`] / [`crate::udp::UdpStats`]) or
    /// their [`SockOp::Close`]s; the driver runs them like any operation.
    ///
    /// Nothing happens while a forwarding change is in flight
    /// ([`Translator::begin_forward_change`]; it is refused in `auto` mode).
    ///
    /// Only ports the spec forwards count (`config.fwd.tcp_in` /
    /// `udp_in`, whichever mode); a port already in the state asked for,
    /// or a protocol other than TCP and UDP, is ignored. Returns whether
    /// operations were queued.
    ///
    /// For forwarding from the guest's side to the host see
    /// [`Translator::set_auto_out_port`] (`-T`, `-U`).
    pub fn set_auto_port(&mut self, proto: Proto, port: u16, on: bool) -> bool {
        // `auto` and run-time changes exclude each other; a change in
        // flight has listeners of its own being opened: leave them be.
        if self.forward_change().is_some() {
            return false;
        }
        match proto {
            Proto::Tcp => {
                let mut cx = self.shared.cx(&self.config, self.now);
                self.tcp.set_auto_port(&mut cx, port, on, false)
            }
            Proto::Udp => self.udp.set_auto_port(
                &self.config,
                &mut self.shared.socks,
                &mut self.shared.ops,
                port,
                on,
            ),
            _ => false,
        }
    }

    /// Replace the inbound forwarding rules of `proto` (`-t` for TCP, `-u`
    /// for UDP) by `spec`, atomically (see `crate::change` for the steps):
    ///
    /// - listeners for the bindings `spec` adds are opened first, as
    ///   [`SockOp::Open`]s handed out by [`Translator::poll_op`] like those
    ///   of start-up; listeners both rule sets share stay as they are;
    /// - once every one of them opened, the swap: the listeners `spec` no
    ///   longer has are closed ([`SockOp::Close`] through `poll_op`), new
    ///   connections and datagrams follow `spec` (its target ports and
    ///   addresses), and [`Event::ForwardChanged`] reports the change;
    /// - if one failed (`EADDRINUSE`, `EACCES`, no socket slot or table
    ///   room), the listeners opened for it are closed, the rules and
    ///   listeners in force stay, and [`Event::ForwardChangeFailed`] names
    ///   the port and the error. With `all` a port that cannot be bound
    ///   is skipped, as at start-up.
    ///
    /// Either way established flows go on: a TCP connection has its own
    /// socket, and a UDP listener still carrying flows when its rule goes
    /// stays open for them (taking no new senders) until the last ends.
    /// The outcome is also kept for [`Translator::forward_change_outcome`]
    /// (the event may be lost to a full event queue). For `all`, the
    /// caller removes the ephemeral range first
    /// ([`FwdSpec::exclude_ephemeral`]), as at start-up.
    ///
    /// Nothing allocates: entries are reused or taken from the room
    /// [`crate::config::Limits::change_listeners`] reserved.
    ///
    /// # Errors
    /// [`ChangeError::Busy`] while another change is in flight (one at a
    /// time), [`ChangeError::Protocol`] for ICMP, [`ChangeError::Auto`]
    /// if `auto` forwarding is in force or asked for,
    /// [`ChangeError::Unsupported`] for rules the command line would
    /// refuse (protocol or address family turned off, a listening
    /// interface), [`ChangeError::Starting`] while start-up listeners are
    /// still to be handed out. Nothing was done then.
    pub fn begin_forward_change(
        &mut self,
        proto: Proto,
        spec: FwdSpec,
    ) -> Result<ChangeId, ChangeError> {
        if let Some(c) = &self.change {
            return Err(ChangeError::Busy(c.id));
        }
        let current = self
            .forward_rules(proto)
            .ok_or(ChangeError::Protocol(proto))?;
        if current.mode() == FwdMode::Auto || spec.mode() == FwdMode::Auto {
            return Err(ChangeError::Auto);
        }
        let service = match proto {
            Proto::Tcp => Services::TCP,
            _ => Services::UDP,
        };
        if !self.config.services.contains(service) && spec.mode() != FwdMode::None {
            return Err(ChangeError::Unsupported("the protocol is turned off"));
        }
        for r in spec.rules() {
            if r.ifname.is_some() {
                return Err(ChangeError::Unsupported(
                    "listening interfaces are not supported",
                ));
            }
            let family_off = match r.addr {
                Some(core::net::IpAddr::V4(_)) => self.config.ip4.is_none(),
                Some(core::net::IpAddr::V6(_)) => self.config.ip6.is_none(),
                None => false,
            };
            if family_off {
                return Err(ChangeError::Unsupported(
                    "a listening address of a family turned off",
                ));
            }
        }
        match proto {
            Proto::Tcp => self.tcp.change_begin(&self.config, &spec, &mut self.kept),
            _ => {
                if !self.udp.startup_done() {
                    return Err(ChangeError::Starting);
                }
                self.udp.change_begin(&self.config, &spec, &mut self.kept);
            }
        }
        self.last_change = self.last_change.wrapping_add(1).max(1);
        let id = ChangeId(self.last_change);
        self.change = Some(Change {
            id,
            proto,
            spec,
            cursor: Cursor::default(),
            walked: false,
        });
        Ok(id)
    }

    /// The inbound forwarding rules in force for `proto` (`-t` for TCP,
    /// `-u` for UDP; `None` for ICMP): what start-up configured, or the
    /// last change that succeeded.
    pub fn forward_rules(&self, proto: Proto) -> Option<&FwdSpec> {
        match proto {
            Proto::Tcp => Some(&self.config.fwd.tcp_in),
            Proto::Udp => Some(&self.config.fwd.udp_in),
            Proto::Icmp => None,
        }
    }

    /// The forwarding change in flight, if any.
    pub fn forward_change(&self) -> Option<(ChangeId, Proto)> {
        self.change.as_ref().map(|c| (c.id, c.proto))
    }

    /// How the last finished forwarding change ended.
    pub fn forward_change_outcome(&self) -> Option<ChangeOutcome> {
        self.change_outcome
    }

    /// The next `Open` of the change in flight; at the end of the walk,
    /// the swap or roll-back if nothing is outstanding.
    fn next_change_op(&mut self) -> Option<SockOp> {
        let c = self.change.as_mut()?;
        if !c.walked {
            let op = match c.proto {
                Proto::Tcp => self.tcp.change_next_open(
                    &self.config,
                    &c.spec,
                    &mut c.cursor,
                    &self.kept,
                    &mut self.shared.socks,
                ),
                _ => self.udp.change_next_open(
                    &self.config,
                    &c.spec,
                    &mut c.cursor,
                    &self.kept,
                    &mut self.shared.socks,
                ),
            };
            if op.is_some() {
                return op;
            }
            c.walked = true;
        }
        self.settle_change();
        None
    }

    /// Swap or roll back the change in flight once its walk is over and
    /// none of its `Open`s is outstanding.
    fn settle_change(&mut self) {
        let Some(c) = self.change.as_ref() else {
            return;
        };
        let progress: Progress = match c.proto {
            Proto::Tcp => self.tcp.change,
            _ => self.udp.change,
        };
        if !c.walked || progress.opening > 0 {
            return;
        }
        let Some(c) = self.change.take() else {
            return;
        };
        let outcome = if let Some((port, errno)) = progress.failed {
            match c.proto {
                Proto::Tcp => self.tcp.change_abort(),
                _ => self.udp.change_abort(),
            }
            ChangeOutcome::Failed {
                id: c.id,
                proto: c.proto,
                port,
                errno,
            }
        } else {
            let slot = match c.proto {
                Proto::Tcp => {
                    self.tcp.change_commit();
                    &mut self.config.fwd.tcp_in
                }
                _ => {
                    self.udp.change_commit(&c.spec);
                    &mut self.config.fwd.udp_in
                }
            };
            // The old rules are dropped (freed, nothing allocated).
            *slot = c.spec;
            ChangeOutcome::Done {
                id: c.id,
                proto: c.proto,
            }
        };
        self.change_outcome = Some(outcome);
        self.event(match outcome {
            ChangeOutcome::Done { id, proto } => Event::ForwardChanged { id, proto },
            ChangeOutcome::Failed {
                id,
                proto,
                port,
                errno,
            } => Event::ForwardChangeFailed {
                id,
                proto,
                port,
                errno,
            },
        });
    }

    /// Say whether the driver's executor reads sockets' error queues
    /// ([`SockOp::RecvErr`], [`crate::SockFlags::RECVERR`]). When it does, UDP
    /// and echo flows pass the ICMP errors the host receives on to the
    /// guest (time exceeded, unreachable, packet too big: traceroute), see
    /// [`crate::udp`]; without, only port unreachable comes back, from the
    /// `ECONNREFUSED` of a connected UDP socket. Set it before traffic.
    pub fn set_host_errors(&mut self, on: bool) {
        self.udp.set_host_errors(on);
        self.icmp.set_host_errors(on);
    }

    /// `auto` forwarding from the guest's side to the host (`-T auto`,
    /// `-U auto`): the driver found the target of forwarded `port` bound on
    /// the host (`on`) or no longer bound, and asks for the namespace's
    /// sockets of `port` to be opened or closed. They are made inside the
    /// namespace ([`crate::SockFlags::IN_NS`]) on its loopback, one per family
    /// (IPv6 may fail there: one family is enough). For TCP, what they
    /// accept is spliced to the host's loopback (see [`crate::tcp`]); for
    /// UDP, each sender's datagrams go to the host's loopback from a host
    /// socket of its own, and the replies back (see [`crate::udp`]);
    /// closing a UDP port also ends its flows. Otherwise as
    /// [`Translator::set_auto_port`]: only ports `config.fwd.tcp_out` /
    /// `udp_out` forward count, a failure is counted in
    /// [`tcp::TcpStats::listen_failed`] / [`crate::udp::UdpStats`]; `false`
    /// for other protocols. Returns whether operations were queued.
    pub fn set_auto_out_port(&mut self, proto: Proto, port: u16, on: bool) -> bool {
        match proto {
            Proto::Tcp => {
                let mut cx = self.shared.cx(&self.config, self.now);
                self.tcp.set_auto_port(&mut cx, port, on, true)
            }
            Proto::Udp => {
                self.udp
                    .set_auto_out_port(&mut self.shared.cx(&self.config, self.now), port, on)
            }
            _ => false,
        }
    }

    /// Whether a namespace listener of `-T` port `port` is open (or being
    /// opened) in either family: `false` once all failed or were closed.
    pub fn tcp_out_listening(&self, port: u16) -> bool {
        self.tcp.out_listening(port)
    }

    /// Whether a namespace socket of `-U` port `port` is open (or being
    /// opened) in either family: `false` once all failed or were closed.
    pub fn udp_out_listening(&self, port: u16) -> bool {
        self.udp.out_listening(port)
    }

    /// Counters of the TCP handler.
    pub fn tcp_stats(&self) -> &tcp::TcpStats {
        &self.tcp.stats
    }

    /// TCP connections in the flow table.
    pub fn tcp_flows(&self) -> usize {
        self.tcp.len()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The guest's MAC address, once known.
    pub fn guest_mac(&self) -> Option<MacAddr> {
        self.shared.guest_mac
    }

    /// Counters: the dispatcher's, the local services', the drops by
    /// reason, and the UDP and echo modules' own.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            frames_in: c.frames_in,
            frames_out: c.frames_out,
            arp_replies: c.arp_replies,
            dhcp_replies: c.dhcp_replies,
            ndp_replies: c.ndp_replies,
            ra_sent: c.ra_sent,
            dhcpv6_replies: c.dhcpv6_replies,
            echo_replies: c.echo_replies,
            drops: self.shared.reports.drops,
            events_lost: self.shared.reports.events_lost,
            udp: self.udp.stats.clone(),
            icmp: self.icmp.stats.clone(),
        }
    }

    /// Take in a batch of frames from the guest.
    ///
    /// Local services (ARP, DHCP, NDP, DHCPv6) answer into `tx`;
    /// transport packets become socket operations. Work bound: one pass over
    /// the batch, a constant amount of work per frame.
    pub fn handle_tap<S: TxStorage>(&mut self, now: Instant, rx: &RxBatch<'_>, tx: &mut TxRing<S>) {
        self.now = now;
        let before = tx.len();
        for (i, frame, offload) in rx.iter() {
            self.counters.frames_in += 1;
            if let Err(reason) = self.tap_frame(rx, i, frame, offload, tx) {
                self.drop_frame(reason, frame.len());
            }
        }
        self.flush_l4(tx, before);
    }

    /// Let the transport handlers emit deferred segments and start reads,
    /// and count the frames of this input (all queued since `before`): the
    /// last thing of every `handle_*` call (see [`crate::tcp`]).
    fn flush_l4<S: TxStorage>(&mut self, tx: &mut TxRing<S>, before: usize) {
        self.tcp
            .flush(&mut self.shared.cx(&self.config, self.now), tx);
        // Every frame an input produced, counted once, here.
        self.counters.frames_out += tx.len().saturating_sub(before) as u64;
    }

    /// Classify one guest frame ([`crate::ingress`]) and hand it to the
    /// module that owns it.
    fn tap_frame<S: TxStorage>(
        &mut self,
        rx: &RxBatch<'_>,
        i: usize,
        frame: &[u8],
        offload: Offload,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason> {
        let Classified { eth, src, item } = classify(&self.config, rx, i, frame, offload)?;
        if self.shared.guest_mac != Some(eth.src) {
            self.shared.guest_mac = Some(eth.src);
            self.event(Event::GuestMac(eth.src));
        }
        if let Some(src) = src {
            if self.shared.seen.note(src) {
                // An IPv6 source is never v4-mapped (ingress drops those).
                self.event(match src.v4() {
                    Some(v4) => Event::GuestAddr4(v4),
                    None => Event::GuestAddr6(src.0),
                });
            }
        }
        let mut cx = self.shared.cx(&self.config, self.now);
        match item? {
            Item::Arp(arp) => {
                let outcome = l2::arp::handle(&cx, &eth, &arp, tx);
                l2_outcome(&mut self.counters.arp_replies, outcome)
            }
            Item::Dhcp(ip, udp) => {
                let outcome = self.dhcp.handle(&cx, &eth, &ip, &udp, tx);
                l2_outcome(&mut self.counters.dhcp_replies, outcome)
            }
            Item::Dhcpv6(ip, udp) => {
                let outcome = self.dhcpv6.handle(&cx, &eth, &ip, &udp, tx);
                l2_outcome(&mut self.counters.dhcpv6_replies, outcome)
            }
            Item::Ndp(ip, ndp) => {
                let outcome = self.ndp.handle(&cx, &eth, &ip, &ndp, tx);
                l2_outcome(&mut self.counters.ndp_replies, outcome)
            }
            Item::Ignored => Ok(()),
            // Ours to answer, or Ignored and forwarded.
            Item::Echo6(ip, msg, req) => match echo::handle(&cx, &eth, &ip, &msg, tx) {
                Outcome::Ignored => self.icmp.handle_tap(&mut cx, &req, tx),
                outcome => l2_outcome(&mut self.counters.echo_replies, outcome),
            },
            Item::Tcp(seg) => self.tcp.handle_tap(&mut cx, &seg, tx),
            Item::Udp(d) => self.udp.handle_tap(&mut cx, &d, tx),
            Item::Echo(req) => self.icmp.handle_tap(&mut cx, &req, tx),
        }
    }

    /// Take in readiness of a host socket.
    ///
    /// Readiness for a socket closed meanwhile is counted and ignored.
    pub fn handle_ready<S: TxStorage>(
        &mut self,
        now: Instant,
        id: SockId,
        ready: Ready,
        tx: &mut TxRing<S>,
    ) {
        self.now = now;
        let before = tx.len();
        let Some(owner) = self.shared.socks.owner(id) else {
            self.count_drop(DropReason::StaleSocket);
            self.flush_l4(tx, before);
            return;
        };
        let mut cx = self.shared.cx(&self.config, now);
        match owner.module {
            Module::Udp => self.udp.handle_ready(&mut cx, id, owner.tag, ready, tx),
            Module::Icmp => self.icmp.handle_ready(&mut cx, id, owner.tag, ready, tx),
            Module::Tcp => self.tcp.handle_ready(&mut cx, id, owner.tag, ready, tx),
            Module::None => {}
        }
        self.flush_l4(tx, before);
    }

    /// Take in the result of an operation from [`Translator::poll_op`].
    ///
    /// A completion for a socket closed meanwhile is counted and ignored.
    pub fn handle_completion<S: TxStorage>(
        &mut self,
        now: Instant,
        done: Completion,
        tx: &mut TxRing<S>,
    ) {
        self.now = now;
        let before = tx.len();
        let Some(owner) = self.shared.socks.owner(done.id) else {
            self.count_drop(DropReason::StaleSocket);
            // A TCP read for a connection closed meanwhile gives its
            // slots back (only TCP's own: another module's may be pending
            // by now).
            self.tcp.stale_completion(done.id, tx);
            self.flush_l4(tx, before);
            return;
        };
        let mut cx = self.shared.cx(&self.config, now);
        match owner.module {
            Module::Udp => self.udp.handle_completion(&mut cx, owner.tag, done, tx),
            Module::Icmp => self.icmp.handle_completion(&mut cx, owner.tag, done, tx),
            Module::Tcp => self.tcp.handle_completion(&mut cx, owner.tag, done, tx),
            Module::None => {}
        }
        // The last `Open` of a forwarding change decides it.
        self.settle_change();
        self.flush_l4(tx, before);
    }

    /// Let time pass: expire whatever deadline is due at `now`.
    pub fn handle_timeout<S: TxStorage>(&mut self, now: Instant, tx: &mut TxRing<S>) {
        self.now = now;
        let before = tx.len();
        let mut cx = self.shared.cx(&self.config, now);
        if self.ndp.poll_timeout().is_some_and(|at| at <= now) {
            self.ndp.handle_timeout(&cx, tx);
            self.counters.ra_sent += tx.len().saturating_sub(before) as u64;
        }
        self.udp.handle_timeout(&mut cx, tx);
        self.icmp.handle_timeout(&mut cx, tx);
        self.tcp.handle_timeout(&mut cx, tx);
        self.flush_l4(tx, before);
    }

    /// Whether work waits for room in the tx ring: frames that did not fit
    /// and reads that could not start. After writing the ring out (and
    /// running the operations), the driver calls
    /// [`Translator::handle_retry`]; it does not sleep while this holds.
    pub fn wants_retry(&self) -> bool {
        self.tcp.wants_retry()
    }

    /// Retry what waited for room in the tx ring ([`Translator::wants_retry`]),
    /// now that the driver has written it out.
    pub fn handle_retry<S: TxStorage>(&mut self, now: Instant, tx: &mut TxRing<S>) {
        self.now = now;
        let before = tx.len();
        self.flush_l4(tx, before);
    }

    /// The next queued socket operation.
    ///
    /// Right after [`Translator::new`] this already yields work: the
    /// listening sockets of forwarded TCP ports (`-t`, then `-T` inside
    /// the namespace, queued by `new`),
    /// then those of forwarded UDP ports (`-u`, then `-U` inside the
    /// namespace), opened lazily as the queue drains so that any number of
    /// ports fits the queue. A driver
    /// that drops privileges drains these first. The listeners of a
    /// forwarding change ([`Translator::begin_forward_change`]) are handed
    /// out the same way: the `Close`s of the last change's removed
    /// listeners, then the `Open`s of the change in flight.
    #[must_use = "queued operations must run before the next input"]
    pub fn poll_op(&mut self) -> Option<SockOp> {
        self.shared
            .ops
            .pop()
            .or_else(|| self.udp.next_listener_op(&mut self.shared.socks))
            .or_else(|| self.next_close_op())
            .or_else(|| self.next_change_op())
            // The swap just made may have closes to hand out.
            .or_else(|| self.next_close_op())
    }

    /// The `Close` of the next listener a forwarding change removed.
    fn next_close_op(&mut self) -> Option<SockOp> {
        self.tcp
            .next_close_op(&mut self.shared.socks)
            .or_else(|| self.udp.next_close_op(&mut self.shared.socks))
    }

    /// The next event for the driver's log.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.reports.pop()
    }

    /// The earliest deadline at which [`Translator::handle_timeout`] has work,
    /// if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = Instant::min_deadline(self.ndp.poll_timeout(), self.udp.poll_timeout());
        let t = Instant::min_deadline(t, self.icmp.poll_timeout());
        Instant::min_deadline(t, self.tcp.poll_timeout())
    }

    /// The time of the latest input.
    pub fn now(&self) -> Instant {
        self.now
    }

    fn event(&mut self, e: Event) {
        self.shared.reports.event(e);
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.shared.reports.count(reason);
    }

    fn drop_frame(&mut self, reason: DropReason, len: usize) {
        self.count_drop(reason);
        self.event(Event::Dropped {
            reason,
            len: len as u32,
        });
    }
}

/// Count what a local service did in `replies`.
fn l2_outcome(replies: &mut u64, outcome: Outcome) -> Result<(), DropReason> {
    match outcome {
        Outcome::Replied => {
            *replies += 1;
            Ok(())
        }
        Outcome::Ignored => Ok(()),
        Outcome::Dropped(reason) => Err(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_index_their_counters() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
