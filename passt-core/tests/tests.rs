//! Integration tests of passt-core through its public API only.

mod alloc;
mod captures;
mod control;
mod conversation;
mod descriptors;
mod dhcp;
mod dhcpv6;
#[cfg(feature = "host")]
mod exec;
mod forward_change;
#[cfg(feature = "host")]
mod host;
mod icmp;
mod invariants;
mod layers;
#[cfg(feature = "host")]
mod manpage;
mod ndp;
#[cfg(feature = "host")]
mod options;
mod seeds;
mod tcp;
mod udp;
