//! Layer-2 services answered locally, never touching a host socket.
//!
//! The guest's link has exactly two stations: the guest and us. Everything
//! the guest wants to reach (its gateway, every remote address) lives
//! "behind" our MAC address, so the address-resolution and configuration
//! protocols of the link are answered here: ARP ([`arp`]), and in later
//! steps DHCP, NDP with router advertisements, and DHCPv6.

pub mod arp;
