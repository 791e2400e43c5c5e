//! Layer-2 services answered locally, never touching a host socket.
//!
//! The guest's link has exactly two stations: the guest and us. Everything
//! the guest wants to reach (its gateway, every remote address) lives
//! "behind" our MAC address, so the address-resolution and configuration
//! protocols of the link are answered here: ARP ([`arp`]), DHCP ([`dhcp`]),
//! neighbour discovery with router advertisements ([`ndp`]), DHCPv6
//! ([`dhcpv6`]) and echo requests to our own link-local address ([`echo`]). Each service takes one parsed message, writes at most a
//! bounded number of replies into the tx ring, and reports an [`Outcome`].
//! Each takes the handlers' common context (`contract::cx::Cx`), of which it
//! reads the configuration and the time.

pub mod arp;
pub mod dhcp;
pub mod dhcpv6;
pub mod echo;
pub mod ndp;

use crate::contract::DropReason;

/// What a service did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A reply (or several) was queued to the guest.
    Replied,
    /// Nothing to answer: a valid message that needs no reply, or a service
    /// turned off.
    Ignored,
    /// The message was dropped, for this reason (malformed content, a full
    /// tx ring...).
    Dropped(DropReason),
}
