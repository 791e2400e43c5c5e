//! End-to-end tests of the `pasta` binary: a network namespace made by the
//! test, pasta's tap device in it, and the namespace's own tools (busybox
//! `udhcpc`, `arping`, `ping`, ISC `dhclient`, the kernel's SLAAC) talking to
//! the translator's local services.
//!
//! These need root (network namespaces, `/dev/net/tun`); without it each
//! test says so on stderr and passes. Missing tools are installed with
//! `apt-get` (packages: busybox, iproute2, isc-dhcp-client). Traffic never
//! leaves the namespaces the tests create: addresses are from 192.0.2.0/24
//! and 2001:db8::/32, and nothing is routed to the host.

mod cli;
mod ipv4;
mod ipv6;
mod support;
mod tcp;
