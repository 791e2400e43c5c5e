//! End-to-end tests of the `pasta` binary: network namespaces made by the
//! tests, pasta's tap device in them, and the namespaces' own tools (busybox
//! `udhcpc`, `arping`, `ping`, ISC `dhclient`, `rdisc6`, the kernel's SLAAC,
//! `ip`) talking to the translator's local services.
//!
//! These need root (network namespaces, `/dev/net/tun`); without it each
//! test says so on stderr and passes. The tests install nothing: a missing
//! tool fails the test that needs it, naming its package
//! (`scripts/test-all.sh` installs them all: busybox, iproute2,
//! isc-dhcp-client, ndisc6, tcpdump, util-linux, socat, dnsmasq-base,
//! iputils-ping). pasta runs inside a simulated host (doc/TESTING.md): a "host"
//! namespace with 203.0.113.2/24 and 2001:db8:2::2/64, routed through a
//! "remote" namespace; traffic never leaves the namespaces the tests create.

mod cli;
mod conf;
mod fwd;
mod host;
mod ipv4;
mod ipv6;
mod join;
mod logging;
mod outbound;
mod sandbox;
mod spawn;
mod splice;
mod support;
mod tcp;
mod traceroute;
mod udp;
