//! Configuration shared by both frontends: validated once, immutable after.
//!
//! The CLIs (`passt`, `pasta`) fill a [`Config`] from the command line and from
//! what they read of the host (addresses, routes, resolvers); the
//! [`crate::Translator`] checks it once in `new()` and never changes it. All
//! allocation happens here, at start-up: [`Limits`] sizes every table and
//! ring so that the data path never allocates.
//!
//! Port-forwarding specs (`-t`, `-u`, `-T`, `-U`) live in [`ports`].

pub mod ports;

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::MacAddr;

/// Which frontend drives the translator; a few defaults differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A virtual machine on qemu's stream socket (`passt`).
    #[default]
    Passt,
    /// A network namespace through a tap device (`pasta`).
    Pasta,
}

/// The MAC address passt uses toward the guest by default: locally
/// administered, unicast, easy to spot in captures.
pub const DEFAULT_OUR_MAC: MacAddr = MacAddr([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);

/// Default MTU of the guest interface: 65520 (the largest multiple of 8 that
/// fits an IPv4 total length with room for the Ethernet header).
pub const DEFAULT_MTU: u16 = 65520;

/// IPv4 as the guest sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip4Config {
    /// The guest's address (by default the host's own).
    pub addr: Ipv4Addr,
    /// Prefix length of the guest's subnet.
    pub prefix_len: u8,
    /// The guest's default gateway: answered by us, and mapped to the host
    /// unless [`Ip4Config::map_host_loopback`] is `None`.
    pub gateway: Ipv4Addr,
    /// Guest-side address that stands for the host's loopback
    /// (`--map-host-loopback`; the gateway by default, `None` with `--no-map-gw`).
    pub map_host_loopback: Option<Ipv4Addr>,
    /// Guest-side address that stands for the host's own address
    /// (`--map-guest-addr`).
    pub map_guest_addr: Option<Ipv4Addr>,
    /// DNS servers offered to the guest (DHCP option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Address the guest may send DNS queries to, forwarded to the host's
    /// resolver (`--dns-forward`).
    pub dns_forward: Option<Ipv4Addr>,
    /// The host's resolver that queries to [`Ip4Config::dns_forward`] go
    /// to (`--dns-host`; by default the first IPv4 nameserver of the host's
    /// resolv.conf). Without it, port 53 of `dns_forward` is not
    /// redirected.
    pub dns_host: Option<Ipv4Addr>,
}

/// IPv6 as the guest sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip6Config {
    /// The guest's global address (by default the host's own), handed out by
    /// DHCPv6; its /64 is advertised for SLAAC.
    pub addr: Ipv6Addr,
    /// Prefix length of the guest's subnet (64 for SLAAC).
    pub prefix_len: u8,
    /// The guest's default router (a link-local address as a rule).
    pub gateway: Ipv6Addr,
    /// Our own link-local address, the source of router advertisements.
    pub our_link_local: Ipv6Addr,
    /// Guest-side address that stands for the host's loopback.
    pub map_host_loopback: Option<Ipv6Addr>,
    /// Guest-side address that stands for the host's own address.
    pub map_guest_addr: Option<Ipv6Addr>,
    /// DNS servers offered to the guest (RDNSS, DHCPv6 option 23).
    pub dns: Vec<Ipv6Addr>,
    /// Address the guest may send DNS queries to, forwarded to the host's
    /// resolver.
    pub dns_forward: Option<Ipv6Addr>,
    /// The host's resolver that queries to [`Ip6Config::dns_forward`] go
    /// to (`--dns-host`; by default the first IPv6 nameserver of the host's
    /// resolv.conf).
    pub dns_host: Option<Ipv6Addr>,
}

bitflags::bitflags! {
    /// Local L2 services the translator answers itself; all on by default.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Services: u32 {
        /// ARP replies (never turned off by an option; a guest needs them).
        const ARP = 1 << 0;
        /// DHCPv4 server (`--no-dhcp` turns it off).
        const DHCP = 1 << 1;
        /// Neighbour discovery replies (`--no-ndp`).
        const NDP = 1 << 2;
        /// Router advertisements (`--no-ra`).
        const RA = 1 << 3;
        /// DHCPv6 server (`--no-dhcpv6`).
        const DHCPV6 = 1 << 4;
        /// DNS servers in DHCP/DHCPv6/RA (`--no-dhcp-dns`).
        const DHCP_DNS = 1 << 5;
        /// Search list in DHCP/DHCPv6/RA (`--no-dhcp-search`).
        const DHCP_SEARCH = 1 << 6;
        /// TCP translation (`--no-tcp` turns it off).
        const TCP = 1 << 7;
        /// UDP translation (`--no-udp`).
        const UDP = 1 << 8;
        /// ICMP and ICMPv6 echo translation (`--no-icmp`).
        const ICMP = 1 << 9;
    }
}

impl Default for Services {
    fn default() -> Self {
        Services::all()
    }
}

/// Port forwarding in all four directions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// TCP from the host into the guest (`-t`).
    pub tcp_in: ports::FwdSpec,
    /// UDP from the host into the guest (`-u`).
    pub udp_in: ports::FwdSpec,
    /// TCP from the namespace to the host (`-T`, pasta only): listeners
    /// inside the namespace whose connections are spliced to the host's
    /// loopback, whatever `splice` says (see [`crate::tcp`]).
    pub tcp_out: ports::FwdSpec,
    /// UDP from the namespace to the host (`-U`, pasta only): sockets
    /// inside the namespace whose datagrams go, per sender, to the host's
    /// loopback and whose replies come back, without frames (see
    /// [`crate::udp`]).
    pub udp_out: ports::FwdSpec,
    /// Splice forwarded TCP connections from the loopback straight to the
    /// loopback of the other side, without frames (pasta, unless
    /// `--no-splice`; see [`crate::tcp`]).
    pub splice: bool,
    /// Deliver a spliced connection from the host's loopback to the
    /// namespace's loopback (`--host-lo-to-ns-lo`). Off by default: it goes
    /// to the namespace's own address, still over its loopback interface,
    /// so that a service bound only to the namespace's `127.0.0.1` or `::1`
    /// stays private to it.
    pub host_lo_to_ns_lo: bool,
}

/// How host sockets toward the outside are made (the socket executor applies it: `host::exec`):
/// `-o/--outbound`, `--outbound-if4`, `--outbound-if6`, `--freebind`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbound {
    /// Source address of IPv4 outbound sockets (`-o`).
    pub addr4: Option<std::net::Ipv4Addr>,
    /// Source address of IPv6 outbound sockets (`-o`).
    pub addr6: Option<std::net::Ipv6Addr>,
    /// Interface IPv4 outbound sockets are bound to (`--outbound-if4`).
    pub ifname4: Option<String>,
    /// Interface IPv6 outbound sockets are bound to (`--outbound-if6`).
    pub ifname6: Option<String>,
    /// `IP_FREEBIND`/`IPV6_FREEBIND` on every socket bound to an address
    /// (`--freebind`).
    pub freebind: bool,
}

/// The default [`Limits::max_flows`]: TCP connections at once (as the
/// original's `FLOW_MAX`).
pub const MAX_FLOWS_DEFAULT: u32 = 128 * 1024;

/// The default [`Limits::max_sockets`].
pub const MAX_SOCKETS_DEFAULT: u32 = 128 * 1024;

/// A [`Limits::change_listeners`] that fits any run-time forwarding
/// change: the listeners of the rules in force (at most one per port and
/// family, 2 x 65535) and those of the new rules opened beside them before
/// the swap (as many again).
pub const CHANGE_LISTENERS_ANY: u32 = 4 * 65536;

/// Capacities fixed at start-up. Every table and queue is allocated once with
/// these sizes; running out is a counted drop or backpressure, never growth.
///
/// Tables are reserved for their capacity but written only as far as they
/// are used: a table for 128 Ki flows costs about a megabyte (its index)
/// until flows come, then a few hundred bytes per flow at the high-water
/// mark (see the `Footprint` section of the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Flow table capacity: TCP connections at once
    /// ([`MAX_FLOWS_DEFAULT`]); the UDP and ICMP echo tables hold at most
    /// this too, and at most their own maximum (`udp::MAX_FLOWS`,
    /// `icmp::MAX_FLOWS`). When the TCP table is full, a guest's SYN is
    /// answered with RST and a host connection to a forwarded port is
    /// closed, and the connections there are stay untouched; a full UDP or
    /// echo table makes room by ending its least recently active flow if
    /// that one has been idle for `udp::EVICT_MIN_IDLE`, else drops the
    /// datagram (counted as `FlowTableFull`).
    pub max_flows: u32,
    /// Host sockets the translator may have open at once.
    pub max_sockets: u32,
    /// Socket operations queued between two drains of `poll_op`.
    pub op_queue: u32,
    /// Events queued between two drains of `poll_event`; more are counted
    /// as lost.
    pub event_queue: u32,
    /// Listening sockets a run-time forwarding change
    /// ([`crate::Translator::begin_forward_change`]) may add, per
    /// protocol, to the room the start-up rules take: reserved in
    /// [`crate::Translator::new`] and written only when used, so that a
    /// change never allocates. A change that needs more fails as a
    /// listener that could not be opened (`ENOBUFS`). 0 (the default) for
    /// a driver without a configuration socket; [`CHANGE_LISTENERS_ANY`]
    /// fits any change.
    pub change_listeners: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: MAX_FLOWS_DEFAULT,
            max_sockets: MAX_SOCKETS_DEFAULT,
            op_queue: 4096,
            event_queue: 1024,
            change_listeners: 0,
        }
    }
}

/// Everything the translator needs to know, fixed at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Which frontend this is.
    pub mode: Mode,
    /// The MAC address we use as the source of frames to the guest
    /// (`-M/--mac-addr`).
    pub our_mac: MacAddr,
    /// The guest's MAC address if known in advance (pasta creates the tap
    /// with it); otherwise learned from the guest's first frame.
    pub guest_mac: Option<MacAddr>,
    /// MTU of the guest's link (`-m/--mtu`).
    pub mtu: u16,
    /// Whether [`Config::mtu`] is handed to the guest: DHCP option 26,
    /// the RA's MTU option, and pasta's `--config-net` setting it on the
    /// tap. Off with `-m 0` ("no MTU assignment"): `mtu` stays the default
    /// and only bounds what the translator builds.
    pub assign_mtu: bool,
    /// IPv4, or `None` for an IPv6-only guest (`-6`).
    pub ip4: Option<Ip4Config>,
    /// IPv6, or `None` for an IPv4-only guest (`-4`).
    pub ip6: Option<Ip6Config>,
    /// DNS search list (`-S/--search`), offered by DHCP, DHCPv6 and RA.
    pub search: Vec<String>,
    /// Which local services answer.
    pub services: Services,
    /// Port forwarding.
    pub fwd: Forwarding,
    /// Table and queue sizes.
    pub limits: Limits,
    /// The guest's device takes virtio-net offloads (pasta's tap opened
    /// with `IFF_VNET_HDR`): TCP data to the guest goes out as super-frames
    /// of up to 64 KiB ([`crate::buf::GsoType::TcpV4`], `TcpV6`) cut into
    /// MSS-sized segments by the guest's kernel, each with a partial
    /// checksum (`NEEDS_CSUM`, virtio 1.2 §5.1.6.2) that the device
    /// completes. Off by default: passt's stream socket carries no
    /// virtio-net header, so every frame there is plain and checksummed.
    pub guest_gso: bool,
    /// Secret key of the flow index hash, random per process (the driver
    /// reads it from the kernel's random source), so that a guest cannot
    /// predict collisions.
    pub secret: [u8; 16],
    /// Source address, interface and `--freebind` of host sockets.
    pub outbound: Outbound,
    /// Host name offered by DHCP (option 12) to the guest (`-H`).
    pub hostname: Option<String>,
    /// Fully qualified name offered by DHCP (option 81) and DHCPv6
    /// (option 39) to the guest (`--fqdn`).
    pub fqdn: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Passt,
            our_mac: DEFAULT_OUR_MAC,
            guest_mac: None,
            mtu: DEFAULT_MTU,
            assign_mtu: true,
            ip4: None,
            ip6: None,
            search: Vec::new(),
            services: Services::default(),
            fwd: Forwarding::default(),
            limits: Limits::default(),
            guest_gso: false,
            secret: [0; 16],
            outbound: Outbound::default(),
            hostname: None,
            fqdn: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// MTU outside what IPv4 (68) or IPv6 (1280) needs, or above 65520.
    #[error("MTU {mtu} out of range: {min}..=65520 for the enabled address families")]
    Mtu {
        /// The MTU asked for.
        mtu: u16,
        /// The smallest allowed for the enabled families.
        min: u16,
    },
    /// Neither IPv4 nor IPv6 is configured.
    #[error("no address family enabled: need IPv4, IPv6 or both")]
    NoFamily,
    /// A prefix length beyond the family's address width.
    #[error("prefix length /{0} out of range")]
    PrefixLen(u8),
    /// The guest's own MAC address is not a unicast one.
    #[error("MAC address {0} is not a unicast address")]
    MacNotUnicast(MacAddr),
    /// A capacity of zero, or one too large to index.
    #[error("limit {name} = {value} out of range")]
    Limit {
        /// Which limit.
        name: &'static str,
        /// The value given.
        value: u32,
    },
    /// A search domain that does not fit DNS names (labels up to 63
    /// bytes, names up to 253).
    #[error("invalid search domain {0:?}")]
    SearchDomain(String),
}

impl Config {
    /// Check the configuration as a whole.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ip4.is_none() && self.ip6.is_none() {
            return Err(ConfigError::NoFamily);
        }
        // RFC 791 §3.2 (every host handles 68-byte datagrams) and RFC 8200
        // §5 (1280) minimums, as the original's range for -m.
        let min = if self.ip6.is_some() { 1280 } else { 68 };
        if self.mtu < min || self.mtu > DEFAULT_MTU {
            return Err(ConfigError::Mtu { mtu: self.mtu, min });
        }
        if let Some(ip4) = &self.ip4 {
            if ip4.prefix_len > 32 {
                return Err(ConfigError::PrefixLen(ip4.prefix_len));
            }
        }
        if let Some(ip6) = &self.ip6 {
            if ip6.prefix_len > 128 {
                return Err(ConfigError::PrefixLen(ip6.prefix_len));
            }
        }
        for mac in [Some(self.our_mac), self.guest_mac].into_iter().flatten() {
            if mac.is_multicast() || mac.is_zero() {
                return Err(ConfigError::MacNotUnicast(mac));
            }
        }
        let l = &self.limits;
        for (name, value, max) in [
            ("max_flows", l.max_flows, 1 << 24),
            ("max_sockets", l.max_sockets, 1 << 24),
            ("op_queue", l.op_queue, 1 << 20),
            ("event_queue", l.event_queue, 1 << 20),
        ] {
            if value == 0 || value > max {
                return Err(ConfigError::Limit { name, value });
            }
        }
        for d in &self.search {
            let d = d.strip_suffix('.').unwrap_or(d);
            let bad_label = d.split('.').any(|l| l.is_empty() || l.len() > 63);
            if d.is_empty() || d.len() > 253 || bad_label {
                return Err(ConfigError::SearchDomain(d.to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> Ip4Config {
        Ip4Config {
            addr: Ipv4Addr::new(192, 0, 2, 10),
            prefix_len: 24,
            gateway: Ipv4Addr::new(192, 0, 2, 1),
            map_host_loopback: Some(Ipv4Addr::new(192, 0, 2, 1)),
            map_guest_addr: None,
            dns: vec![],
            dns_forward: None,
            dns_host: None,
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = Config::default();
        assert_eq!(c.validate(), Err(ConfigError::NoFamily));
        c.ip4 = Some(v4());
        assert_eq!(c.validate(), Ok(()));
        c.mtu = 67;
        assert_eq!(c.validate(), Err(ConfigError::Mtu { mtu: 67, min: 68 }));
        c.mtu = 1500;
        c.guest_mac = Some(MacAddr::BROADCAST);
        assert_eq!(
            c.validate(),
            Err(ConfigError::MacNotUnicast(MacAddr::BROADCAST))
        );
        c.guest_mac = None;
        c.search = vec!["example.com".into(), "a..b".into()];
        assert_eq!(c.validate(), Err(ConfigError::SearchDomain("a..b".into())));
        c.search.clear();
        c.limits.max_flows = 0;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Limit {
                name: "max_flows",
                ..
            })
        ));
    }
}
