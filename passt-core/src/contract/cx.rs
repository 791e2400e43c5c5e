//! The one context every handler gets ([`Cx`]): the configuration, the
//! time of the input, the guest's MAC and source addresses, the socket
//! slots, the operation queue and the reports (events and drop counters).
//! Not the translator's counters: each module keeps its own, and
//! [`crate::Stats`] is composed of them.
//!
//! The translator owns the shared parts in one [`Shared`] and lends them
//! with [`Shared::cx`], disjointly from the module it calls.

use crate::addr::MacAddr;
use crate::config::Config;
use crate::contract::event::{DropReason, Event};
use crate::contract::slots::SockSlots;
use crate::contract::sock::SockOp;
use crate::queue::FixedQueue;
use crate::seen::GuestAddrs;
use crate::time::Instant;

/// Events for the driver and the drop counters, shared by every handler.
pub(crate) struct Reports {
    events: FixedQueue<Event>,
    /// Events that did not fit the queue.
    pub(crate) events_lost: u64,
    /// Inputs dropped, by [`DropReason`].
    pub(crate) drops: [u64; DropReason::COUNT],
}

impl Reports {
    /// Room for `events` queued events.
    pub(crate) fn new(events: usize) -> Self {
        Reports {
            events: FixedQueue::new(events),
            events_lost: 0,
            drops: [0; DropReason::COUNT],
        }
    }

    /// Report an event (counted as lost if the queue is full).
    pub(crate) fn event(&mut self, e: Event) {
        if self.events.push(e).is_err() {
            self.events_lost += 1;
        }
    }

    /// Count a drop without an event.
    pub(crate) fn count(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// The next event for the driver.
    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.events.pop()
    }
}

/// What the translator shares with every handler, apart from the
/// configuration.
pub(crate) struct Shared {
    /// The guest's MAC address, once known.
    pub(crate) guest_mac: Option<MacAddr>,
    /// The guest's source addresses as seen (where inbound flows go).
    pub(crate) seen: GuestAddrs,
    /// Every socket the translator opened.
    pub(crate) socks: SockSlots,
    /// Operations for the driver.
    pub(crate) ops: FixedQueue<SockOp>,
    /// Events and drop counters.
    pub(crate) reports: Reports,
}

impl Shared {
    /// Tables and queues sized by `config`'s limits.
    pub(crate) fn new(config: &Config) -> Self {
        let l = config.limits;
        Shared {
            guest_mac: config.guest_mac,
            seen: GuestAddrs::default(),
            socks: SockSlots::new(l.max_sockets),
            ops: FixedQueue::new(l.op_queue as usize),
            reports: Reports::new(l.event_queue as usize),
        }
    }

    /// The context for one handler call at `now`.
    pub(crate) fn cx<'a>(&'a mut self, config: &'a Config, now: Instant) -> Cx<'a> {
        Cx {
            config,
            now,
            guest_mac: self.guest_mac,
            seen: &self.seen,
            socks: &mut self.socks,
            ops: &mut self.ops,
            reports: &mut self.reports,
        }
    }
}

/// What a handler gets besides its own state, for one call.
pub(crate) struct Cx<'a> {
    /// The configuration in force.
    pub(crate) config: &'a Config,
    /// The time of the input being handled.
    pub(crate) now: Instant,
    /// The guest's MAC address, once known.
    pub(crate) guest_mac: Option<MacAddr>,
    /// The guest's source addresses as seen (where inbound flows go).
    pub(crate) seen: &'a GuestAddrs,
    /// The socket slots.
    pub(crate) socks: &'a mut SockSlots,
    /// Operations for the driver.
    pub(crate) ops: &'a mut FixedQueue<SockOp>,
    /// Events and drop counters.
    pub(crate) reports: &'a mut Reports,
}

impl Cx<'_> {
    /// Queue an operation.
    pub(crate) fn op(&mut self, op: SockOp) -> Result<(), DropReason> {
        self.ops.push(op).map_err(|_| DropReason::OpQueueFull)
    }

    /// Queue an operation; whether it fit.
    pub(crate) fn try_op(&mut self, op: SockOp) -> bool {
        self.ops.push(op).is_ok()
    }

    /// Report an event (counted as lost if the queue is full).
    pub(crate) fn event(&mut self, e: Event) {
        self.reports.event(e);
    }

    /// Count a drop of something other than a guest frame (host
    /// datagrams), and report it ([`Event::HostDropped`]).
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.reports.count(reason);
        self.event(Event::HostDropped { reason });
    }

    /// Where frames to the guest go: its MAC once known, else broadcast.
    pub(crate) fn guest_mac(&self) -> MacAddr {
        self.guest_mac.unwrap_or(MacAddr::BROADCAST)
    }

    /// The Ethernet addresses of a frame to the guest: (destination,
    /// source).
    pub(crate) fn macs(&self) -> (MacAddr, MacAddr) {
        (self.guest_mac(), self.config.our_mac)
    }
}

/// Test support: the shared parts for a configuration, to build a [`Cx`]
/// from in unit tests of one handler.
#[cfg(test)]
pub(crate) fn shared_for_test(config: &Config) -> Shared {
    Shared::new(config)
}
