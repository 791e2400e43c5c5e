//! Listening sockets for the forwarded ports (`-t`, and `-T` inside the
//! namespace), opened at start-up, by `auto` forwarding or by a run-time
//! forwarding change of `-t` (`crate::change`), and what they accept: a
//! spliced connection, or a SYN to the guest.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::addr::{InAny, SockAddrAny};
use crate::change::{Cursor, PortFamSet, Progress};
use crate::config::ports::{FwdMode, FwdSpec};
use crate::config::Config;
use crate::contract::cx::Cx;
use crate::contract::slots::SockSlots;
use crate::contract::{Done, Errno, Proto, SockFlags, SockId, SockOp, SockSpec};

use super::conn::{Conn, ConnFlags, State};
use super::{Listener, Owner, Tcp, TcpKey, TCP_SOCK};

impl Tcp {
    /// Queue `Open`s of the listening sockets for every forwarded port, in
    /// each enabled family (`IPV6_V6ONLY` on the IPv6 ones): the host's
    /// (`-t`), then the namespace's (`-T`). Called once.
    pub(crate) fn open_listeners(&mut self, cx: &mut Cx<'_>) {
        let mut wanted: Vec<(bool, Option<IpAddr>, u16, bool)> = Vec::new();
        for out in [false, true] {
            let spec = if out {
                &cx.config.fwd.tcp_out
            } else {
                &cx.config.fwd.tcp_in
            };
            if matches!(spec.mode(), FwdMode::None | FwdMode::Auto) {
                continue;
            }
            for r in spec.rules() {
                for port in r.first..=r.last {
                    for ipv6 in [false, true] {
                        if Self::family_on(cx.config, r.addr, ipv6, out) {
                            wanted.push((ipv6, r.addr, port, out));
                        }
                    }
                }
            }
        }
        for (ipv6, addr, port, out) in wanted {
            self.open_listener(cx, ipv6, addr, port, out);
        }
    }

    /// Whether a forward with listening address `addr` has a listener in
    /// the family `ipv6`: not for an address of the other family; on the
    /// host's side (`-t`) only in families the guest has, while the
    /// namespace's loopback (`-T`) has both (IPv6 may be off there: that
    /// listener then fails, counted in
    /// [`TcpStats::listen_failed`](super::TcpStats::listen_failed)).
    fn family_on(config: &Config, addr: Option<IpAddr>, ipv6: bool, out: bool) -> bool {
        if ipv6 {
            (out || config.ip6.is_some()) && !matches!(addr, Some(IpAddr::V4(_)))
        } else {
            (out || config.ip4.is_some()) && !matches!(addr, Some(IpAddr::V6(_)))
        }
    }

    /// `auto` forwarding (`-t auto`, or `-T auto` with `out`): open (`on`)
    /// or close the listening sockets of forwarded `port`, in each enabled
    /// family the rule allows. Does nothing for a port the spec does not
    /// forward or that is already in the state asked for. Returns whether
    /// operations were queued.
    pub(crate) fn set_auto_port(
        &mut self,
        cx: &mut Cx<'_>,
        port: u16,
        on: bool,
        out: bool,
    ) -> bool {
        let spec = if out {
            &cx.config.fwd.tcp_out
        } else {
            &cx.config.fwd.tcp_in
        };
        let Some((_, rule)) = spec.lookup(port) else {
            return false;
        };
        let addr = rule.addr;
        let mut queued = false;
        if on {
            for ipv6 in [false, true] {
                let have = self
                    .listeners
                    .iter()
                    .any(|l| l.open && l.port == port && l.ipv6 == ipv6 && l.out == out);
                if Self::family_on(cx.config, addr, ipv6, out) && !have {
                    queued |= self.open_listener(cx, ipv6, addr, port, out);
                }
            }
            return queued;
        }
        for i in 0..self.listeners.len() {
            let Some(l) = self.listeners.get_mut(i) else {
                break;
            };
            if !l.open || l.port != port || l.out != out {
                continue;
            }
            l.open = false;
            let id = l.sock;
            self.set_owner(id, Owner::Free);
            cx.socks.release(id);
            queued |= cx.try_op(SockOp::Close { id });
        }
        queued
    }

    /// Whether a `-T` listener of `port` is open (or being opened).
    pub(crate) fn out_listening(&self, port: u16) -> bool {
        self.listeners
            .iter()
            .any(|l| l.open && l.out && l.port == port)
    }

    /// Queue the `Open` of one listening socket; reuses the entry of a
    /// closed listener of the same port, family and side. A `-T` (`out`)
    /// listener is made inside the namespace ([`SockFlags::IN_NS`]) on its
    /// loopback unless the rule names an address. Returns whether queued.
    fn open_listener(
        &mut self,
        cx: &mut Cx<'_>,
        ipv6: bool,
        addr: Option<IpAddr>,
        port: u16,
        out: bool,
    ) -> bool {
        let idx = self
            .listeners
            .iter()
            .position(|l| !l.open && !l.closing && l.port == port && l.ipv6 == ipv6 && l.out == out)
            .unwrap_or(self.listeners.len());
        let owner = TCP_SOCK;
        let Some(sock) = cx.socks.alloc_owned(owner) else {
            self.stats.listen_failed += 1;
            return false;
        };
        let bind = Self::bind_addr(addr, ipv6, out);
        if !cx.try_op(SockOp::Open {
            id: sock,
            spec: Self::listen_spec(bind, port, ipv6, out),
        }) {
            cx.socks.release(sock);
            self.stats.listen_failed += 1;
            return false;
        }
        let l = Listener {
            sock,
            accepting: false,
            port,
            ipv6,
            open: true,
            out,
            bind,
            pending: false,
            keep: false,
            closing: false,
        };
        match self.listeners.get_mut(idx) {
            Some(slot) => *slot = l,
            None => self.listeners.push(l),
        }
        self.set_owner(sock, Owner::Listener(sock, idx as u32));
        true
    }

    /// The address a listener of a rule with listening address `addr`
    /// binds in family `ipv6`: the rule's, else every address (`-t`) or
    /// the namespace's loopback (`-T`).
    fn bind_addr(addr: Option<IpAddr>, ipv6: bool, out: bool) -> InAny {
        match addr {
            Some(a) => InAny::from(a),
            None if out && ipv6 => Ipv6Addr::LOCALHOST.into(),
            None if out => Ipv4Addr::LOCALHOST.into(),
            None if ipv6 => InAny::UNSPECIFIED6,
            None => InAny::UNSPECIFIED4,
        }
    }

    /// The socket of a listener.
    fn listen_spec(bind: InAny, port: u16, ipv6: bool, out: bool) -> SockSpec {
        let mut s = SockSpec::new(Proto::Tcp, ipv6);
        s.bind = Some(SockAddrAny { addr: bind, port });
        s.flags = SockFlags::LISTEN | SockFlags::REUSEADDR;
        if ipv6 {
            s.flags |= SockFlags::V6ONLY;
        }
        if out {
            s.flags |= SockFlags::IN_NS;
        }
        s
    }

    /// A forwarding change of `-t` to `spec` begins (`crate::change`):
    /// mark the listeners in force that `spec` wants with the same binding
    /// as kept, and note their ports and families in `kept`. One pass over
    /// the table.
    pub(crate) fn change_begin(&mut self, config: &Config, spec: &FwdSpec, kept: &mut PortFamSet) {
        kept.clear();
        self.change = Progress {
            tolerant: spec.mode() == FwdMode::All,
            ..Progress::default()
        };
        self.free_from = 0;
        for l in self.listeners.iter_mut() {
            l.keep = false;
            if !l.open || l.out || l.pending || l.closing {
                continue;
            }
            let Some((_, r)) = spec.lookup(l.port) else {
                continue;
            };
            if Self::family_on(config, r.addr, l.ipv6, false)
                && Self::bind_addr(r.addr, l.ipv6, false) == l.bind
            {
                l.keep = true;
                kept.set(l.port, l.ipv6);
            }
        }
    }

    /// The `Open` of the next listener the change to `spec` adds, its
    /// entry marked pending; `None` once the walk is over. A listener that
    /// cannot even be asked for (no socket slot, no room in the table) is
    /// the change's failure.
    pub(crate) fn change_next_open(
        &mut self,
        config: &Config,
        spec: &FwdSpec,
        cursor: &mut Cursor,
        kept: &PortFamSet,
        socks: &mut SockSlots,
    ) -> Option<SockOp> {
        while self.change.failed.is_none() {
            let (r, port, fam) = cursor.next(spec)?;
            let ipv6 = fam == 1;
            if !Self::family_on(config, r.addr, ipv6, false) || kept.get(port, ipv6) {
                continue;
            }
            // A free entry (never one whose `Close` or `Accept` is still
            // to come), else room reserved at start-up.
            let free = self
                .listeners
                .get(self.free_from..)
                .and_then(|rest| {
                    rest.iter()
                        .position(|l| !l.open && !l.closing && !l.accepting && !l.pending)
                })
                .map(|i| i + self.free_from);
            let idx = match free {
                Some(i) => i,
                None if self.listeners.len() < self.listeners.capacity() => self.listeners.len(),
                None => {
                    self.stats.listen_failed += 1;
                    self.change.fail(port, Errno::ENOBUFS);
                    continue;
                }
            };
            let Some(sock) = socks.alloc_owned(TCP_SOCK) else {
                self.stats.listen_failed += 1;
                self.change.fail(port, Errno::EMFILE);
                continue;
            };
            self.free_from = idx + 1;
            let bind = Self::bind_addr(r.addr, ipv6, false);
            let l = Listener {
                sock,
                accepting: false,
                port,
                ipv6,
                open: true,
                out: false,
                bind,
                pending: true,
                keep: false,
                closing: false,
            };
            match self.listeners.get_mut(idx) {
                Some(slot) => *slot = l,
                None => self.listeners.push(l),
            }
            self.set_owner(sock, Owner::Listener(sock, idx as u32));
            self.change.opening += 1;
            return Some(SockOp::Open {
                id: sock,
                spec: Self::listen_spec(bind, port, ipv6, false),
            });
        }
        None
    }

    /// The change succeeded: its listeners are in force, and those of the
    /// old rules it did not keep are to be closed. (The caller swaps the
    /// spec.)
    pub(crate) fn change_commit(&mut self) {
        for l in self.listeners.iter_mut() {
            if l.out {
                continue;
            }
            if l.pending {
                l.pending = false;
            } else if l.open && !l.keep && !l.closing {
                l.open = false;
                l.closing = true;
                self.to_close += 1;
            }
            l.keep = false;
        }
        self.close_from = 0;
        self.release_closing();
    }

    /// The change failed: close the listeners opened for it.
    pub(crate) fn change_abort(&mut self) {
        for l in self.listeners.iter_mut() {
            if l.pending && l.open {
                l.open = false;
                l.closing = true;
                self.to_close += 1;
            }
            l.pending = false;
            l.keep = false;
        }
        self.close_from = 0;
        self.release_closing();
    }

    /// Listeners just marked `closing` take nothing more: their sockets
    /// leave this handler (their slots stay taken until the `Close`).
    fn release_closing(&mut self) {
        for i in 0..self.listeners.len() {
            let Some(l) = self.listeners.get(i).copied() else {
                break;
            };
            if l.closing {
                self.set_owner(l.sock, Owner::Free);
            }
        }
    }

    /// The `Close` of the next listener a change removed, if any.
    pub(crate) fn next_close_op(&mut self, socks: &mut SockSlots) -> Option<SockOp> {
        if self.to_close == 0 {
            return None;
        }
        while let Some(l) = self.listeners.get_mut(self.close_from) {
            self.close_from += 1;
            if l.closing {
                l.closing = false;
                self.to_close -= 1;
                socks.release(l.sock);
                return Some(SockOp::Close { id: l.sock });
            }
        }
        self.to_close = 0;
        None
    }

    /// Issue the next `Accept` of listener `idx`, if none is outstanding.
    pub(super) fn accept_next(&mut self, cx: &mut Cx<'_>, idx: u32) {
        let Some(l) = self.listeners.get(idx as usize).copied() else {
            return;
        };
        if l.accepting || !l.open || l.pending {
            return;
        }
        let Some(id) = cx.socks.alloc_owned(TCP_SOCK) else {
            return;
        };
        if !cx.try_op(SockOp::Accept {
            listener: l.sock,
            id,
        }) {
            cx.socks.release(id);
            return;
        }
        if let Some(l) = self.listeners.get_mut(idx as usize) {
            l.accepting = true;
        }
        self.set_owner(id, Owner::Accepting(id, idx));
    }

    /// An `Accept` completed: splice the connection, or make it a SYN to
    /// the guest; then accept the next.
    pub(super) fn accepted(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        idx: u32,
        res: Result<Done, Errno>,
    ) {
        let mut out = None;
        if let Some(l) = self.listeners.get_mut(idx as usize) {
            l.accepting = false;
            out = l.out.then_some(l.ipv6);
        }
        self.set_owner(id, Owner::Free);
        let (peer, local) = match res {
            Ok(Done::Accepted { peer, local }) => (peer, local),
            _ => {
                // EAGAIN: nothing more to accept; other errors (EMFILE)
                // wait for the next readiness.
                cx.socks.release(id);
                return;
            }
        };
        let mut ok = false;
        if let Some(ipv6) = out {
            // `-T`: from the namespace to the same family's loopback on
            // the host, always spliced.
            if let Some((port, _)) = cx.config.fwd.tcp_out.lookup(local.port) {
                let addr = if ipv6 {
                    Ipv6Addr::LOCALHOST.into()
                } else {
                    Ipv4Addr::LOCALHOST.into()
                };
                let dst = SockAddrAny { addr, port };
                ok = self.new_spliced(cx, id, peer, dst, false);
            }
        }
        // A rule's target address (`-t 0.0.0.0/5000:192.0.2.5`) replaces
        // the guest's own as the destination, spliced or not.
        let target_addr = cx
            .config
            .fwd
            .tcp_in
            .lookup(local.port)
            .and_then(|(_, r)| r.to_addr)
            .filter(|_| out.is_none())
            .map(InAny::from);
        let splice_port = cx
            .config
            .fwd
            .tcp_in
            .lookup(local.port)
            .map(|(port, _)| port)
            .filter(|_| out.is_none() && cx.config.fwd.splice && peer.addr.is_loopback());
        if out.is_some() {
            // Done above.
        } else if let Some(port) = splice_port {
            let addr = if let Some(to) = target_addr {
                Some(to)
            } else if cx.config.fwd.host_lo_to_ns_lo {
                Some(if peer.addr.is_v4() {
                    Ipv4Addr::LOCALHOST.into()
                } else {
                    Ipv6Addr::LOCALHOST.into()
                })
            } else {
                // The namespace's own address (the loopback peer is not
                // link-local, so the global scope is picked); a
                // link-local one would need a scope: not spliced.
                cx.seen
                    .dst_for(cx.config, peer.addr)
                    .filter(|a| a.is_v4() || !crate::seen::is_link_local6(&a.0))
            };
            if let Some(addr) = addr {
                ok = self.new_spliced(cx, id, peer, SockAddrAny { addr, port }, true);
            }
        } else if let (Some(remote), Some((port, _))) = (
            crate::flow::fwd::host_to_guest_or_gateway(cx.config, peer.addr),
            cx.config.fwd.tcp_in.lookup(local.port),
        ) {
            // The rule's target address, else the address the guest uses,
            // of the peer's scope ([`crate::seen`]): a SLAAC guest's is not
            // the configured one.
            if let Some(g) = target_addr.or_else(|| cx.seen.dst_for(cx.config, remote)) {
                let key = TcpKey {
                    guest: SockAddrAny { addr: g, port },
                    remote: SockAddrAny {
                        addr: remote,
                        port: peer.port,
                    },
                };
                ok = self.new_inbound(cx, key, id);
            }
        }
        if !ok {
            self.stats.syn_refused += 1;
            cx.try_op(SockOp::Close { id });
            cx.socks.release(id);
        }
        // More may be waiting.
        self.accept_next(cx, idx);
    }

    /// A connection from the host for the guest: our SYN to it.
    fn new_inbound(&mut self, cx: &mut Cx<'_>, key: TcpKey, sock: SockId) -> bool {
        if self.index.get(&key).is_some() {
            return false;
        }
        let isn = self.isn(&key, cx.now);
        let mut c = Conn::new(key, sock, State::SynSent, isn, cx.now);
        c.seq_to_tap = isn + 1;
        c.rto_at = Some(cx.now + c.rto());
        let Some(v) = self.flows.vacant() else {
            return false;
        };
        let fid = v.id();
        if !self.index.insert(key, fid) {
            return false;
        }
        let at = c.deadline();
        v.insert(c);
        self.set_owner(sock, Owner::Conn(sock, fid));
        self.arm(at);
        self.stats.opened += 1;
        self.want_ctl(fid, ConnFlags::SYN_DUE);
        true
    }
}
