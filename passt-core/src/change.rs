//! Run-time forwarding changes: the vocabulary of
//! [`crate::Translator::begin_forward_change`] ([`ChangeError`],
//! [`ChangeOutcome`]) and the bounded bookkeeping `tcp` and `udp` share
//! while a change is in flight (the walk over the new rules, the set of
//! listeners both rule sets share, the count of `Open`s outstanding).
//!
//! # How a change runs
//!
//! 1. **Begin.** One pass over the listener table marks every listener
//!    the new rules want with the same binding (port, family, address):
//!    those are *kept* and never closed or reopened. Their ports and
//!    families go into a `PortFamSet` (one bit per port and family,
//!    allocated once in `Translator::new`).
//! 2. **Open.** A `Cursor` walks the new rules' ports and families;
//!    each one not kept gets a listener entry marked *pending* and an
//!    `Open`, handed out one at a time through `Translator::poll_op`, so
//!    that any number of ports fits the operation queue. Pending listeners
//!    take no connections or datagrams yet (they are level-triggered: what
//!    waits is reported again after the swap).
//! 3. **Swap or roll back.** When the walk is over and every `Open`
//!    completed (`Progress`): if all succeeded, pending listeners are in
//!    force, the listeners of the old rules that were not kept are closed
//!    (lazily through `poll_op` as well), the new spec replaces the old one
//!    in the configuration, and `Event::ForwardChanged` is reported. If
//!    one failed, the pending listeners are closed and nothing else
//!    changes (`Event::ForwardChangeFailed`, with the first failing port
//!    and its errno). With `all` (as at start-up) a port that cannot be
//!    bound is skipped, not a failure.
//!
//! Established flows are never touched: a TCP connection owns its own
//! socket, and a UDP listener that still carries flows when its rule goes
//! is *retired* (it takes no new senders) and closed when its last flow
//! ends.
//!
//! Nothing here allocates after `Translator::new`: listener entries are
//! reused or pushed into room reserved from
//! [`crate::config::Limits::change_listeners`], as `auto` forwarding
//! reserves its own (`Tcp::new`, `Udp::new`: capacity taken up front,
//! written only when used); `tests/alloc.rs` holds it with a counting
//! allocator. Handing `Open`s and `Close`s out one at a time through
//! `poll_op` follows the start-up listeners of `-u` (`Udp::next_listener_op`);
//! leaving a pending listener's readiness for later relies on listeners
//! being level-triggered in the executor (`host::exec`, "Listening sockets
//! are level-triggered").

use crate::config::ports::{FwdRule, FwdSpec};
use crate::contract::{ChangeId, Errno, Proto};

/// Why [`crate::Translator::begin_forward_change`] refused a change (nothing
/// was done).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// Another change is in flight: one at a time.
    #[error("forwarding change {} is still in flight", .0 .0)]
    Busy(ChangeId),
    /// Only TCP and UDP forward ports.
    #[error("no port forwarding for {0:?}")]
    Protocol(Proto),
    /// `auto` forwarding (in force or asked for) is driven by the port
    /// scan, not by changes.
    #[error("'auto' forwarding cannot be changed at run time")]
    Auto,
    /// Rules this translator cannot honour, as the command line would
    /// refuse them: the protocol is turned off (`--no-tcp`, `--no-udp`),
    /// a listening address of a family turned off, or a listening
    /// interface (`ADDR%IFACE/PORT`: no listener is bound to a device, and
    /// listening on every interface instead would expose more than asked).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The listeners of the start-up rules are still being opened: drain
    /// [`crate::Translator::poll_op`] first.
    #[error("start-up listeners are still being opened")]
    Starting,
}

/// How the last run-time forwarding change ended, as its
/// [`crate::Event`] reported it ([`crate::Translator::forward_change_outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// In force.
    Done {
        /// The change.
        id: ChangeId,
        /// Its protocol.
        proto: Proto,
    },
    /// Rolled back: a listener could not be opened.
    Failed {
        /// The change.
        id: ChangeId,
        /// Its protocol.
        proto: Proto,
        /// The first port whose listener failed.
        port: u16,
        /// Its error.
        errno: Errno,
    },
}

impl ChangeOutcome {
    /// The change it reports.
    pub fn id(&self) -> ChangeId {
        match *self {
            ChangeOutcome::Done { id, .. } | ChangeOutcome::Failed { id, .. } => id,
        }
    }
}

/// One bit per port and family: the listeners a change keeps.
pub(crate) struct PortFamSet(Box<[u64]>);

impl PortFamSet {
    /// All clear; 16 KiB.
    pub(crate) fn new() -> Self {
        PortFamSet(vec![0; 2 * 65536 / 64].into_boxed_slice())
    }

    fn at(port: u16, ipv6: bool) -> (usize, u64) {
        let bit = usize::from(port) + if ipv6 { 65536 } else { 0 };
        (bit / 64, 1u64 << (bit % 64))
    }

    /// Set the bit of `port` in family `ipv6`.
    pub(crate) fn set(&mut self, port: u16, ipv6: bool) {
        let (w, m) = Self::at(port, ipv6);
        if let Some(w) = self.0.get_mut(w) {
            *w |= m;
        }
    }

    /// Whether the bit of `port` in family `ipv6` is set.
    pub(crate) fn get(&self, port: u16, ipv6: bool) -> bool {
        let (w, m) = Self::at(port, ipv6);
        self.0.get(w).is_some_and(|w| w & m != 0)
    }

    /// Clear every bit.
    pub(crate) fn clear(&mut self) {
        self.0.fill(0);
    }
}

/// A walk over every port of a spec's rules, two families each: rule
/// index, port, family index (0 and 1; what a family index means is the
/// protocol's).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    rule: usize,
    port: u32,
    fam: u8,
}

impl Cursor {
    /// The next (rule, port, family index), or `None` at the end.
    pub(crate) fn next<'s>(&mut self, spec: &'s FwdSpec) -> Option<(&'s FwdRule, u16, u8)> {
        loop {
            let r = spec.rules().get(self.rule)?;
            let port = self.port.max(u32::from(r.first));
            if port > u32::from(r.last) {
                self.rule += 1;
                self.port = 0;
                self.fam = 0;
                continue;
            }
            let fam = self.fam;
            if fam >= 2 {
                self.port = port + 1;
                self.fam = 0;
                continue;
            }
            self.port = port;
            self.fam = fam + 1;
            return Some((r, u16::try_from(port).ok()?, fam));
        }
    }
}

/// A protocol module's part of the change in flight: its `Open`s not yet
/// completed, and the first failure.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    /// `Open`s handed out and not completed.
    pub(crate) opening: u32,
    /// The first listener that failed: its port and error.
    pub(crate) failed: Option<(u16, Errno)>,
    /// Failures are skipped (`all`), not fatal.
    pub(crate) tolerant: bool,
}

impl Progress {
    /// An `Open` of the change completed with `res` for `port`.
    pub(crate) fn opened(&mut self, port: u16, res: Result<(), Errno>) {
        self.opening = self.opening.saturating_sub(1);
        if let Err(e) = res {
            self.fail(port, e);
        }
    }

    /// A listener of the change could not be opened (or even asked for).
    pub(crate) fn fail(&mut self, port: u16, e: Errno) {
        if !self.tolerant && self.failed.is_none() {
            self.failed = Some((port, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_walks_every_port_and_family() {
        let spec = FwdSpec::parse("22,80-81").unwrap();
        let mut c = Cursor::default();
        let mut got = Vec::new();
        while let Some((_, port, fam)) = c.next(&spec) {
            got.push((port, fam));
        }
        assert_eq!(got, [(22, 0), (22, 1), (80, 0), (80, 1), (81, 0), (81, 1)]);
        assert!(c.next(&spec).is_none());
        let top = FwdSpec::parse("65535").unwrap();
        let mut c = Cursor::default();
        assert_eq!(c.next(&top).map(|(_, p, f)| (p, f)), Some((65535, 0)));
        assert_eq!(c.next(&top).map(|(_, p, f)| (p, f)), Some((65535, 1)));
        assert!(c.next(&top).is_none());
    }

    #[test]
    fn port_set_bits_are_per_family() {
        let mut s = PortFamSet::new();
        s.set(65535, true);
        s.set(0, false);
        assert!(s.get(65535, true) && !s.get(65535, false) && s.get(0, false));
        s.clear();
        assert!(!s.get(65535, true));
    }
}
