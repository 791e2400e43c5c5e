//! Run-time forwarding changes of `-u` (`crate::change`): which listeners
//! the new rules keep, the `Open`s of those they add, the swap (targets
//! of kept listeners follow the new rules; removed ones close, or retire
//! while flows still use their socket) and the roll-back.

use crate::addr::{InAny, SockAddrAny};
use crate::change::{Cursor, PortFamSet, Progress};
use crate::config::ports::{FwdMode, FwdSpec};
use crate::config::Config;
use crate::contract::cx::Cx;
use crate::contract::slots::{Module, SockSlots};
use crate::contract::{Errno, SockId, SockOp};

use super::{Listener, Udp, UdpSock};

impl Udp {
    /// Whether the listeners of the start-up rules were all handed out.
    pub(crate) fn startup_done(&self) -> bool {
        self.listeners
            .get(self.next_listener..)
            .map_or(true, |rest| rest.iter().all(|l| l.sock.is_some()))
    }

    /// A change of `-u` to `spec` begins: mark the listeners in force (or
    /// retired) that `spec` wants with the same binding as kept, noting
    /// their ports and families in `kept`.
    pub(crate) fn change_begin(&mut self, config: &Config, spec: &FwdSpec, kept: &mut PortFamSet) {
        kept.clear();
        self.change = Progress {
            tolerant: spec.mode() == FwdMode::All,
            ..Progress::default()
        };
        self.free_from = 0;
        for l in self.listeners.iter_mut() {
            l.keep = false;
            if l.sock.is_none() || l.out || l.pending || l.closing {
                continue;
            }
            let Some((_, r)) = spec.lookup(l.bind.port) else {
                continue;
            };
            if Self::in_fams(config, r.addr).contains(&Some(l.bind.addr)) {
                l.keep = true;
                kept.set(l.bind.port, !l.bind.addr.is_v4());
            }
        }
    }

    /// The `Open` of the next listener the change to `spec` adds, marked
    /// pending; `None` once the walk is over (or the change failed).
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
            let Some(addr) = Self::in_fams(config, r.addr)
                .get(usize::from(fam))
                .copied()
                .flatten()
            else {
                continue;
            };
            if kept.get(port, !addr.is_v4()) {
                continue;
            }
            let Some(target) = r.target(port) else {
                continue;
            };
            let free = self
                .listeners
                .get(self.free_from..)
                .and_then(|rest| {
                    rest.iter()
                        .position(|l| l.sock.is_none() && !l.closing && !l.pending)
                })
                .map(|i| i + self.free_from);
            let n = match free {
                Some(i) => i,
                None if self.listeners.len() < self.listeners.capacity() => self.listeners.len(),
                None => {
                    self.stats.listen_failed += 1;
                    self.change.fail(port, Errno::ENOBUFS);
                    continue;
                }
            };
            let l = Listener {
                bind: SockAddrAny { addr, port },
                target,
                to_addr: r.to_addr.map(InAny::from),
                sock: None,
                opening: false,
                out: false,
                pending: true,
                keep: false,
                retired: false,
                closing: false,
                flows: 0,
            };
            match self.listeners.get_mut(n) {
                Some(slot) => *slot = l,
                None => self.listeners.push(l),
            }
            // The start-up walk never comes back over change entries.
            self.next_listener = self.next_listener.max(n + 1);
            self.free_from = n + 1;
            let Some(op) = Self::listener_op(socks, &mut self.listeners, n) else {
                if let Some(l) = self.listeners.get_mut(n) {
                    l.pending = false;
                }
                self.stats.listen_failed += 1;
                self.change.fail(port, Errno::EMFILE);
                continue;
            };
            self.change.opening += 1;
            return Some(op);
        }
        None
    }

    /// The change to `spec` succeeded: its listeners are in force, kept
    /// ones take the new rules' targets, and the others of the old rules
    /// close, or retire while flows use them. (The caller swaps the spec.)
    pub(crate) fn change_commit(&mut self, spec: &FwdSpec) {
        for l in self.listeners.iter_mut() {
            if l.out {
                continue;
            }
            if l.pending {
                l.pending = false;
            } else if l.sock.is_some() && !l.closing {
                if l.keep {
                    if let Some((target, r)) = spec.lookup(l.bind.port) {
                        l.target = target;
                        l.to_addr = r.to_addr.map(InAny::from);
                    }
                    l.retired = false;
                } else if l.flows == 0 {
                    l.retired = false;
                    l.closing = true;
                    self.to_close += 1;
                } else {
                    l.retired = true;
                }
            }
            l.keep = false;
        }
        self.close_from = 0;
    }

    /// The change failed: close the listeners opened for it.
    pub(crate) fn change_abort(&mut self) {
        for l in self.listeners.iter_mut() {
            if l.pending && l.sock.is_some() {
                l.closing = true;
                self.to_close += 1;
            }
            l.pending = false;
            l.keep = false;
        }
        self.close_from = 0;
    }

    /// The `Close` of the next listener a change removed, if any.
    pub(crate) fn next_close_op(&mut self, socks: &mut SockSlots) -> Option<SockOp> {
        if self.to_close == 0 {
            return None;
        }
        while let Some(l) = self.listeners.get_mut(self.close_from) {
            self.close_from += 1;
            if !l.closing {
                continue;
            }
            l.closing = false;
            l.opening = false;
            self.to_close -= 1;
            if let Some(id) = l.sock.take() {
                socks.release(id);
                return Some(SockOp::Close { id });
            }
        }
        self.to_close = 0;
        None
    }

    /// A flow through listener socket `sock` ended: the last one of a
    /// retired listener closes it.
    pub(super) fn listener_flow_ended(&mut self, cx: &mut Cx<'_>, sock: SockId) {
        let Some(owner) = cx.socks.owner(sock).filter(|o| o.module == Module::Udp) else {
            return;
        };
        let UdpSock::Listener(n) = UdpSock::of(owner.tag) else {
            return;
        };
        let Some(l) = self.listeners.get_mut(n as usize) else {
            return;
        };
        l.flows = l.flows.saturating_sub(1);
        if l.retired && l.flows == 0 {
            l.retired = false;
            l.closing = true;
            self.to_close += 1;
            self.close_from = self.close_from.min(n as usize);
        }
    }
}
