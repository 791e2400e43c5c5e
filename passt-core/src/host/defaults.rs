//! Guest-side defaults from the host's configuration, as the original passt
//! derives them.
//!
//! # The rules (passt(1): `-a`, `-n`, `-g`, `-D`, `--map-host-loopback`,
//! `--no-map-gw`, `--dns-forward`, `--dns-host`, NOTES "Local mode")
//!
//! Command-line values ([`GuestOverrides`]) always win; what they leave open
//! comes from the host:
//!
//! - **IPv4, template mode** (a template interface with an address): the
//!   guest gets the host's address and prefix length ([`super::HostIp4::primary`];
//!   `-a` without a prefix takes its classful one, `-n` overrides the
//!   prefix), and the host's default gateway. Without a gateway (the
//!   interface was chosen for another route) the gateway is `0.0.0.0`, no
//!   address stands for the host's loopback, and [`GuestDefaults::no_dhcp`] is
//!   set: the original implies `--no-dhcp` and `--no-map-gw` then.
//! - **IPv4, local mode** (no template, or one without address): address
//!   169.254.2.1/16, gateway 169.254.2.2.
//! - **IPv6, template mode** (a template with a global or unique-local
//!   address and a link-local one, or a link-local gateway): the guest gets
//!   the host's global address with prefix length 64 (the original always
//!   advertises /64 for SLAAC, whatever the host's prefix), the host's
//!   gateway as router, and `our_link_local` is the gateway if it is
//!   link-local, else the host interface's own link-local address. Without a
//!   host gateway the router is `our_link_local` itself, and nothing stands
//!   for the host's loopback.
//! - **IPv6, local mode**: no address (`::`; the original learns the guest's
//!   from its first link-local packet), router and `our_link_local` fe80::1.
//! - **`map_host_loopback`** is the gateway, unless `--no-map-gw` or
//!   `--map-host-loopback none` (or another address with
//!   `--map-host-loopback`).
//! - **DNS** (unless `-D` names servers of that family, which are passed
//!   unchanged, or `-D none`): the host's resolv.conf nameservers of the
//!   family, in order. The first becomes the *host resolver*
//!   ([`GuestDefaults::dns_host4`], also in [`Ip4Config::dns_host`] and
//!   [`Ip6Config::dns_host`], unless `--dns-host`) that forwarded
//!   queries go to. A nameserver the guest cannot reach as such, a loopback
//!   address (127.0.0.53, ::1) or the address that already stands for the
//!   host's loopback (a gateway that is also the resolver), is replaced by
//!   the `--dns-forward` address if one was given, else by the
//!   `map_host_loopback` address, which then *becomes* the `--dns-forward`
//!   address: DNS queries to it go to the host resolver instead of the
//!   host's loopback. Without either, such a nameserver is dropped. At most
//!   [`super::resolv::MAX_NAMESERVERS`] per family; duplicates are merged.
//! - **Search list**: `-S` if given, else resolv.conf's.
//!
//! Where this departs from the original (which reads the same rules from
//! its code in a fixed order): command-line addresses survive local mode
//! (the original overwrites them), and `-n` without `-a` is honoured.

use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::resolv::{ResolvConf, MAX_NAMESERVERS};
use super::{HostIp4, HostIp6, HostNet, Selection};
use crate::config::{Ip4Config, Ip6Config};

/// IPv4 address of the guest in local mode.
pub const LOCAL_ADDR4: Ipv4Addr = Ipv4Addr::new(169, 254, 2, 1);
/// IPv4 gateway in local mode.
pub const LOCAL_GATEWAY4: Ipv4Addr = Ipv4Addr::new(169, 254, 2, 2);
/// IPv4 prefix length in local mode.
pub const LOCAL_PREFIX_LEN4: u8 = 16;
/// IPv6 router and our link-local address in local mode.
pub const LOCAL_GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// The IPv6 prefix length advertised to the guest.
pub const PREFIX_LEN6: u8 = 64;

/// `--map-host-loopback` for one family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoopbackMap<A> {
    /// Not given: the gateway, unless `--no-map-gw`.
    #[default]
    Default,
    /// `none`.
    Off,
    /// This address.
    To(A),
}

/// `-D/--dns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DnsChoice {
    /// Not given: from resolv.conf.
    #[default]
    FromHost,
    /// `-D none`.
    None,
    /// These addresses, passed unchanged; a family without any still reads
    /// resolv.conf.
    Given(Vec<IpAddr>),
}

/// What the command line fixed; `None`/`Default` leave it to the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestOverrides {
    /// `-4`: IPv6 off.
    pub ipv4_only: bool,
    /// `-6`: IPv4 off.
    pub ipv6_only: bool,
    /// `-a` with an IPv4 address.
    pub addr4: Option<Ipv4Addr>,
    /// `-n`, or the prefix of an IPv4 `-a`.
    pub prefix_len4: Option<u8>,
    /// `-g` with an IPv4 address.
    pub gateway4: Option<Ipv4Addr>,
    /// `-a` with an IPv6 address.
    pub addr6: Option<Ipv6Addr>,
    /// `-g` with an IPv6 address.
    pub gateway6: Option<Ipv6Addr>,
    /// `--map-host-loopback` for IPv4.
    pub map_host_loopback4: LoopbackMap<Ipv4Addr>,
    /// `--map-host-loopback` for IPv6.
    pub map_host_loopback6: LoopbackMap<Ipv6Addr>,
    /// `--no-map-gw`.
    pub no_map_gw: bool,
    /// `--map-guest-addr` for IPv4 (passed through).
    pub map_guest_addr4: Option<Ipv4Addr>,
    /// `--map-guest-addr` for IPv6 (passed through).
    pub map_guest_addr6: Option<Ipv6Addr>,
    /// `-D`.
    pub dns: DnsChoice,
    /// `--dns-forward` for IPv4.
    pub dns_forward4: Option<Ipv4Addr>,
    /// `--dns-forward` for IPv6.
    pub dns_forward6: Option<Ipv6Addr>,
    /// `--dns-host` for IPv4.
    pub dns_host4: Option<Ipv4Addr>,
    /// `--dns-host` for IPv6.
    pub dns_host6: Option<Ipv6Addr>,
    /// `-S`: `Some(vec![])` for `-S none`.
    pub search: Option<Vec<String>>,
}

/// The guest's network configuration derived from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestDefaults {
    /// IPv4, `None` only with `-6`.
    pub ip4: Option<Ip4Config>,
    /// IPv6, `None` only with `-4`.
    pub ip6: Option<Ip6Config>,
    /// The host resolver DNS queries to [`Ip4Config::dns_forward`] go to.
    pub dns_host4: Option<Ipv4Addr>,
    /// The host resolver DNS queries to [`Ip6Config::dns_forward`] go to.
    pub dns_host6: Option<Ipv6Addr>,
    /// Its scope from resolv.conf (`fe80::1%eth0`), needed to reach a
    /// link-local resolver.
    pub dns_host6_scope: Option<String>,
    /// DNS search list.
    pub search: Vec<String>,
    /// IPv4 template interface name (`None` in local mode).
    pub template_if4: Option<String>,
    /// IPv6 template interface name (`None` in local mode).
    pub template_if6: Option<String>,
    /// IPv4 has no gateway: the DHCP server must stay off.
    pub no_dhcp: bool,
    /// One line on IPv4 for the log: what was chosen, or why it is off.
    pub summary4: String,
    /// One line on IPv6 for the log.
    pub summary6: String,
}

/// Derive the guest's configuration from the host's (see the module docs).
///
/// `resolv` is `None` when resolv.conf could not be read: no resolvers, no
/// search list.
pub fn guest_defaults(
    host: &HostNet,
    resolv: Option<&ResolvConf>,
    ov: &GuestOverrides,
) -> GuestDefaults {
    let empty = ResolvConf::default();
    let rc = resolv.unwrap_or(&empty);
    let v4 = (!ov.ipv6_only).then(|| ip4(host.ip4.as_ref(), rc, ov));
    let v6 = (!ov.ipv4_only).then(|| ip6(host.ip6.as_ref(), rc, ov));
    let search = match &ov.search {
        Some(s) => s.clone(),
        None => rc.search.clone(),
    };
    let (ip4, dns_host4, template_if4, no_dhcp, summary4) = match v4 {
        Some(f) => (Some(f.cfg), f.dns_host, f.template, f.no_dhcp, f.summary),
        None => (None, None, None, false, "IPv4: disabled (-6)".to_owned()),
    };
    let (ip6, dns_host6, dns_host6_scope, template_if6, summary6) = match v6 {
        Some(f) => (Some(f.cfg), f.dns_host, f.scope, f.template, f.summary),
        None => (None, None, None, None, "IPv6: disabled (-4)".to_owned()),
    };
    GuestDefaults {
        ip4,
        ip6,
        dns_host4,
        dns_host6,
        dns_host6_scope,
        search,
        template_if4,
        template_if6,
        no_dhcp,
        summary4,
        summary6,
    }
}

struct Family4 {
    cfg: Ip4Config,
    dns_host: Option<Ipv4Addr>,
    template: Option<String>,
    no_dhcp: bool,
    summary: String,
}

struct Family6 {
    cfg: Ip6Config,
    dns_host: Option<Ipv6Addr>,
    scope: Option<String>,
    template: Option<String>,
    summary: String,
}

/// The prefix length of an address's class (RFC 791 §3.2; RFC 950), as
/// `-a` without a prefix takes it.
pub fn classful_prefix_len(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 32,
    }
}

fn describe_template(name: &str, selection: Selection, metric: Option<u32>) -> String {
    match (selection, metric) {
        (Selection::Named, _) => format!("template {name} (as named)"),
        (Selection::DefaultRoute, Some(m)) => {
            format!("template {name} (default route, metric {m})")
        }
        (Selection::DefaultRoute, None) => format!("template {name} (default route)"),
        (Selection::AnyRoute, _) => {
            format!("template {name} (no default route; first interface with a route)")
        }
    }
}

fn ip4(host: Option<&HostIp4>, rc: &ResolvConf, ov: &GuestOverrides) -> Family4 {
    let template = host.and_then(|h| {
        let (addr, prefix_len) = match (ov.addr4, h.primary()) {
            (Some(a), _) => (a, ov.prefix_len4.unwrap_or(classful_prefix_len(a))),
            (None, Some(p)) => (p.addr, ov.prefix_len4.unwrap_or(p.prefix_len)),
            (None, None) => return None,
        };
        let gateway = ov.gateway4.or(h.gateway);
        Some((h, addr, prefix_len, gateway))
    });
    let mut summary = String::from("IPv4: ");
    let (addr, prefix_len, gateway, template_name) = match template {
        Some((h, addr, prefix_len, gateway)) => {
            summary.push_str(&describe_template(&h.link.name, h.selection, h.metric));
            (addr, prefix_len, gateway, Some(h.link.name.clone()))
        }
        None => {
            match host {
                Some(h) => {
                    let _ = write!(
                        summary,
                        "template {} has no address, local mode",
                        h.link.name
                    );
                }
                None => summary.push_str("no host interface with a route, local mode"),
            }
            let addr = ov.addr4.unwrap_or(LOCAL_ADDR4);
            let prefix_len = match (ov.prefix_len4, ov.addr4) {
                (Some(p), _) => p,
                (None, Some(a)) => classful_prefix_len(a),
                (None, None) => LOCAL_PREFIX_LEN4,
            };
            let gateway = Some(ov.gateway4.unwrap_or(LOCAL_GATEWAY4));
            (addr, prefix_len, gateway, None)
        }
    };
    let _ = write!(summary, ": address {addr}/{prefix_len}");
    match gateway {
        Some(g) => {
            let _ = write!(summary, ", gateway {g}");
        }
        None => summary.push_str(", no gateway (DHCP off)"),
    }
    let map_host_loopback = match ov.map_host_loopback4 {
        LoopbackMap::Off => None,
        LoopbackMap::To(a) => Some(a),
        LoopbackMap::Default if ov.no_map_gw => None,
        LoopbackMap::Default => gateway,
    };
    match map_host_loopback {
        Some(m) => {
            let _ = write!(summary, ", host loopback as {m}");
        }
        None => summary.push_str(", host loopback not mapped"),
    }

    let mut dns_forward = ov.dns_forward4;
    let mut dns_host = ov.dns_host4;
    let given: Vec<Ipv4Addr> = match &ov.dns {
        DnsChoice::Given(list) => list
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut dns: Vec<Ipv4Addr> = Vec::new();
    if ov.dns == DnsChoice::None {
        // No DNS at all.
    } else if !given.is_empty() {
        for a in given {
            push_unique(&mut dns, a);
        }
    } else {
        for ns in rc.nameservers4() {
            if dns_host.is_none() {
                dns_host = Some(ns);
            }
            let unreachable = ns.is_loopback() || Some(ns) == map_host_loopback;
            let advertised = if !unreachable {
                ns
            } else if let Some(f) = dns_forward {
                f
            } else if let Some(m) = map_host_loopback {
                dns_forward = Some(m);
                m
            } else {
                continue;
            };
            push_unique(&mut dns, advertised);
        }
    }
    describe_dns(&mut summary, &dns, dns_forward, dns_host.map(IpAddr::V4));

    Family4 {
        no_dhcp: gateway.is_none(),
        cfg: Ip4Config {
            addr,
            prefix_len,
            gateway: gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
            map_host_loopback,
            map_guest_addr: ov.map_guest_addr4,
            dns,
            dns_forward,
            dns_host,
        },
        dns_host,
        template: template_name,
        summary,
    }
}

fn is_link_local6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn ip6(host: Option<&HostIp6>, rc: &ResolvConf, ov: &GuestOverrides) -> Family6 {
    let template = host.and_then(|h| {
        let addr = ov.addr6.or(h.primary().map(|p| p.addr))?;
        let gateway = ov.gateway6.or(h.gateway);
        let our_ll = match gateway {
            Some(g) if is_link_local6(&g) => g,
            _ => h.primary_link_local()?.addr,
        };
        Some((h, addr, gateway, our_ll))
    });
    let mut summary = String::from("IPv6: ");
    let (addr, gateway, our_link_local, template_name) = match template {
        Some((h, addr, gateway, our_ll)) => {
            summary.push_str(&describe_template(&h.link.name, h.selection, h.metric));
            (addr, gateway, our_ll, Some(h.link.name.clone()))
        }
        None => {
            match host {
                Some(h) if h.primary().is_none() && ov.addr6.is_none() => {
                    let _ = write!(
                        summary,
                        "template {} has no global address, local mode",
                        h.link.name
                    );
                }
                Some(h) => {
                    let _ = write!(
                        summary,
                        "template {} has no link-local address, local mode",
                        h.link.name
                    );
                }
                None => summary.push_str("no host interface with a route, local mode"),
            }
            let gateway = ov.gateway6.unwrap_or(LOCAL_GATEWAY6);
            let our_ll = if is_link_local6(&gateway) {
                gateway
            } else {
                LOCAL_GATEWAY6
            };
            let addr = ov.addr6.unwrap_or(Ipv6Addr::UNSPECIFIED);
            (addr, Some(gateway), our_ll, None)
        }
    };
    if addr.is_unspecified() {
        summary.push_str(": no address (learnt from the guest)");
    } else {
        let _ = write!(summary, ": address {addr}/{PREFIX_LEN6}");
    }
    match gateway {
        Some(g) => {
            let _ = write!(summary, ", router {g}");
        }
        None => {
            let _ = write!(summary, ", no host gateway, router {our_link_local}");
        }
    }
    let _ = write!(summary, ", our link-local {our_link_local}");
    let map_host_loopback = match ov.map_host_loopback6 {
        LoopbackMap::Off => None,
        LoopbackMap::To(a) => Some(a),
        LoopbackMap::Default if ov.no_map_gw => None,
        LoopbackMap::Default => gateway,
    };
    match map_host_loopback {
        Some(m) => {
            let _ = write!(summary, ", host loopback as {m}");
        }
        None => summary.push_str(", host loopback not mapped"),
    }

    let mut dns_forward = ov.dns_forward6;
    let mut dns_host = ov.dns_host6;
    let mut scope = None;
    let given: Vec<Ipv6Addr> = match &ov.dns {
        DnsChoice::Given(list) => list
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut dns: Vec<Ipv6Addr> = Vec::new();
    if ov.dns == DnsChoice::None {
        // No DNS at all.
    } else if !given.is_empty() {
        for a in given {
            push_unique(&mut dns, a);
        }
    } else {
        for (ns, ns_scope) in rc.nameservers6() {
            if dns_host.is_none() {
                dns_host = Some(ns);
                scope = ns_scope.map(str::to_owned);
            }
            let unreachable = ns.is_loopback() || Some(ns) == map_host_loopback;
            let advertised = if !unreachable {
                ns
            } else if let Some(f) = dns_forward {
                f
            } else if let Some(m) = map_host_loopback {
                dns_forward = Some(m);
                m
            } else {
                continue;
            };
            push_unique(&mut dns, advertised);
        }
    }
    describe_dns(&mut summary, &dns, dns_forward, dns_host.map(IpAddr::V6));

    Family6 {
        cfg: Ip6Config {
            addr,
            prefix_len: PREFIX_LEN6,
            gateway: gateway.unwrap_or(our_link_local),
            our_link_local,
            map_host_loopback,
            map_guest_addr: ov.map_guest_addr6,
            dns,
            dns_forward,
            dns_host,
        },
        dns_host,
        scope,
        template: template_name,
        summary,
    }
}

fn push_unique<A: PartialEq>(list: &mut Vec<A>, a: A) {
    if list.len() < MAX_NAMESERVERS && !list.contains(&a) {
        list.push(a);
    }
}

fn describe_dns<A: core::fmt::Display>(
    summary: &mut String,
    dns: &[A],
    forward: Option<A>,
    host: Option<IpAddr>,
) {
    if dns.is_empty() {
        summary.push_str(", no DNS server");
    } else {
        summary.push_str(", DNS");
        for (i, d) in dns.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(summary, "{sep}{d}");
        }
    }
    if let Some(f) = forward {
        match host {
            Some(h) => {
                let _ = write!(summary, " (queries to {f} go to host resolver {h})");
            }
            None => {
                let _ = write!(summary, " (queries to {f} forwarded, no host resolver)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HostAddr, HostLink};
    use super::*;
    use crate::addr::MacAddr;

    fn link() -> HostLink {
        HostLink {
            index: 2,
            name: "eth0".into(),
            mtu: 1500,
            mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            up: true,
            loopback: false,
        }
    }

    fn host4(gateway: Option<Ipv4Addr>) -> HostIp4 {
        HostIp4 {
            link: link(),
            selection: Selection::DefaultRoute,
            gateway,
            metric: Some(100),
            addrs: vec![
                HostAddr {
                    addr: Ipv4Addr::new(198, 51, 100, 2),
                    prefix_len: 16,
                },
                HostAddr {
                    addr: Ipv4Addr::new(192, 0, 2, 2),
                    prefix_len: 24,
                },
            ],
        }
    }

    fn host6(gateway: Option<Ipv6Addr>) -> HostIp6 {
        HostIp6 {
            link: link(),
            selection: Selection::DefaultRoute,
            gateway,
            metric: Some(1024),
            addrs: vec![HostAddr {
                addr: "2001:db8::2".parse().unwrap(),
                prefix_len: 64,
            }],
            link_local: vec![HostAddr {
                addr: "fe80::2".parse().unwrap(),
                prefix_len: 64,
            }],
        }
    }

    fn net() -> HostNet {
        HostNet {
            ip4: Some(host4(Some(Ipv4Addr::new(192, 0, 2, 1)))),
            ip6: Some(host6(Some("fe80::1".parse().unwrap()))),
        }
    }

    const GW4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn template_mode_copies_the_host() {
        let rc = ResolvConf::parse(
            b"nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.com\n",
        );
        let d = guest_defaults(&net(), Some(&rc), &GuestOverrides::default());
        assert_eq!(
            d.ip4,
            Some(Ip4Config {
                addr: Ipv4Addr::new(192, 0, 2, 2),
                prefix_len: 24,
                gateway: GW4,
                map_host_loopback: Some(GW4),
                map_guest_addr: None,
                dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
                dns_forward: None,
                dns_host: Some(Ipv4Addr::new(192, 0, 2, 53)),
            })
        );
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        assert_eq!(
            d.ip6,
            Some(Ip6Config {
                addr: "2001:db8::2".parse().unwrap(),
                prefix_len: 64,
                gateway: ll,
                our_link_local: ll,
                map_host_loopback: Some(ll),
                map_guest_addr: None,
                dns: vec!["2001:db8::53".parse().unwrap()],
                dns_forward: None,
                dns_host: Some("2001:db8::53".parse().unwrap()),
            })
        );
        assert_eq!(d.dns_host4, Some(Ipv4Addr::new(192, 0, 2, 53)));
        assert_eq!(d.dns_host6, Some("2001:db8::53".parse().unwrap()));
        assert_eq!(d.search, ["example.com"]);
        assert_eq!(d.template_if4.as_deref(), Some("eth0"));
        assert!(!d.no_dhcp);
        assert_eq!(
            d.summary4,
            "IPv4: template eth0 (default route, metric 100): address 192.0.2.2/24, \
             gateway 192.0.2.1, host loopback as 192.0.2.1, DNS 192.0.2.53"
        );
        assert_eq!(
            d.summary6,
            "IPv6: template eth0 (default route, metric 1024): address 2001:db8::2/64, \
             router fe80::1, our link-local fe80::1, host loopback as fe80::1, DNS 2001:db8::53"
        );
    }

    #[test]
    fn loopback_resolvers_become_the_gateway_and_are_forwarded() {
        let rc =
            ResolvConf::parse(b"nameserver 127.0.0.53\nnameserver ::1\nnameserver 127.0.0.1\n");
        let d = guest_defaults(&net(), Some(&rc), &GuestOverrides::default());
        let ip4 = d.ip4.unwrap();
        assert_eq!(ip4.dns, [GW4]);
        assert_eq!(ip4.dns_forward, Some(GW4));
        assert_eq!(d.dns_host4, Some(Ipv4Addr::new(127, 0, 0, 53)));
        let ip6 = d.ip6.unwrap();
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        assert_eq!(ip6.dns, [ll]);
        assert_eq!(ip6.dns_forward, Some(ll));
        assert_eq!(d.dns_host6, Some(Ipv6Addr::LOCALHOST));
        assert!(
            d.summary4
                .ends_with("DNS 192.0.2.1 (queries to 192.0.2.1 go to host resolver 127.0.0.53)"),
            "{}",
            d.summary4
        );
    }

    #[test]
    fn a_gateway_that_is_the_resolver_is_forwarded_too() {
        let rc = ResolvConf::parse(b"nameserver 192.0.2.1\nnameserver 192.0.2.53\n");
        let d = guest_defaults(&net(), Some(&rc), &GuestOverrides::default());
        let ip4 = d.ip4.unwrap();
        assert_eq!(ip4.dns, [GW4, Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(ip4.dns_forward, Some(GW4));
        assert_eq!(d.dns_host4, Some(GW4));
    }

    #[test]
    fn loopback_resolvers_with_dns_forward_or_without_mapping() {
        let rc = ResolvConf::parse(b"nameserver 127.0.0.53\nnameserver 192.0.2.53\n");
        let fwd = Ipv4Addr::new(192, 0, 2, 250);
        let ov = GuestOverrides {
            no_map_gw: true,
            dns_forward4: Some(fwd),
            ..Default::default()
        };
        let d = guest_defaults(&net(), Some(&rc), &ov);
        let ip4 = d.ip4.unwrap();
        assert_eq!(ip4.map_host_loopback, None);
        assert_eq!(ip4.dns, [fwd, Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(ip4.dns_forward, Some(fwd));
        assert_eq!(d.dns_host4, Some(Ipv4Addr::new(127, 0, 0, 53)));
        // Neither a mapping nor --dns-forward: the loopback resolver is
        // unreachable and dropped, but stays the host resolver.
        let ov = GuestOverrides {
            no_map_gw: true,
            ..Default::default()
        };
        let d = guest_defaults(&net(), Some(&rc), &ov);
        let ip4 = d.ip4.unwrap();
        assert_eq!(ip4.dns, [Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(ip4.dns_forward, None);
        assert_eq!(d.dns_host4, Some(Ipv4Addr::new(127, 0, 0, 53)));
    }

    #[test]
    fn explicit_dns_is_not_remapped_and_none_is_none() {
        let rc = ResolvConf::parse(b"nameserver 127.0.0.53\nnameserver ::1\n");
        let ov = GuestOverrides {
            dns: DnsChoice::Given(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            ..Default::default()
        };
        let d = guest_defaults(&net(), Some(&rc), &ov);
        assert_eq!(d.ip4.as_ref().unwrap().dns, [Ipv4Addr::LOCALHOST]);
        assert_eq!(d.ip4.unwrap().dns_forward, None);
        assert_eq!(d.dns_host4, None);
        // IPv6 was not given: still from resolv.conf.
        assert_eq!(d.ip6.unwrap().dns, ["fe80::1".parse::<Ipv6Addr>().unwrap()]);
        let ov = GuestOverrides {
            dns: DnsChoice::None,
            search: Some(vec![]),
            ..Default::default()
        };
        let d = guest_defaults(&net(), Some(&rc), &ov);
        assert!(d.ip4.unwrap().dns.is_empty());
        assert!(d.ip6.unwrap().dns.is_empty());
        assert!(d.search.is_empty());
    }

    #[test]
    fn local_mode_without_host_interfaces() {
        let rc = ResolvConf::parse(b"nameserver 127.0.0.53\n");
        let d = guest_defaults(&HostNet::default(), Some(&rc), &GuestOverrides::default());
        assert_eq!(
            d.ip4,
            Some(Ip4Config {
                addr: LOCAL_ADDR4,
                prefix_len: 16,
                gateway: LOCAL_GATEWAY4,
                map_host_loopback: Some(LOCAL_GATEWAY4),
                map_guest_addr: None,
                dns: vec![LOCAL_GATEWAY4],
                dns_forward: Some(LOCAL_GATEWAY4),
                dns_host: Some(Ipv4Addr::new(127, 0, 0, 53)),
            })
        );
        assert_eq!(
            d.ip6,
            Some(Ip6Config {
                addr: Ipv6Addr::UNSPECIFIED,
                prefix_len: 64,
                gateway: LOCAL_GATEWAY6,
                our_link_local: LOCAL_GATEWAY6,
                map_host_loopback: Some(LOCAL_GATEWAY6),
                map_guest_addr: None,
                dns: vec![],
                dns_forward: None,
                dns_host: None,
            })
        );
        assert_eq!(d.template_if4, None);
        assert_eq!(
            d.summary4,
            "IPv4: no host interface with a route, local mode: address 169.254.2.1/16, \
             gateway 169.254.2.2, host loopback as 169.254.2.2, DNS 169.254.2.2 \
             (queries to 169.254.2.2 go to host resolver 127.0.0.53)"
        );
        assert_eq!(
            d.summary6,
            "IPv6: no host interface with a route, local mode: no address (learnt from the guest), \
             router fe80::1, our link-local fe80::1, host loopback as fe80::1, no DNS server"
        );
    }

    #[test]
    fn interface_without_gateway_or_addresses() {
        let mut h = net();
        h.ip4 = Some(host4(None));
        let mut v6 = host6(None);
        v6.addrs.clear();
        h.ip6 = Some(v6);
        let d = guest_defaults(&h, None, &GuestOverrides::default());
        let ip4 = d.ip4.unwrap();
        assert_eq!(ip4.gateway, Ipv4Addr::UNSPECIFIED);
        assert_eq!(ip4.map_host_loopback, None);
        assert!(d.no_dhcp);
        assert!(
            d.summary4.contains("no gateway (DHCP off)"),
            "{}",
            d.summary4
        );
        let ip6 = d.ip6.unwrap();
        assert_eq!(ip6.addr, Ipv6Addr::UNSPECIFIED);
        assert_eq!(ip6.our_link_local, LOCAL_GATEWAY6);
        assert!(d
            .summary6
            .starts_with("IPv6: template eth0 has no global address, local mode"));
        // A global gateway and a global address: our link-local is the
        // host's own, the router the gateway.
        let mut v6 = host6(Some("2001:db8::1".parse().unwrap()));
        v6.selection = Selection::AnyRoute;
        h.ip6 = Some(v6);
        let d = guest_defaults(&h, None, &GuestOverrides::default());
        let ip6 = d.ip6.unwrap();
        assert_eq!(ip6.gateway, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip6.our_link_local, "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert!(d.summary6.contains("first interface with a route"));
        // No gateway at all: the router is our link-local address.
        h.ip6 = Some(host6(None));
        let ip6 = guest_defaults(&h, None, &GuestOverrides::default())
            .ip6
            .unwrap();
        assert_eq!(ip6.gateway, ip6.our_link_local);
        assert_eq!(ip6.map_host_loopback, None);
    }

    #[test]
    fn overrides_win() {
        let ov = GuestOverrides {
            addr4: Some(Ipv4Addr::new(10, 1, 2, 3)),
            gateway4: Some(Ipv4Addr::new(10, 1, 2, 1)),
            addr6: Some("2001:db8:1::5".parse().unwrap()),
            gateway6: Some("fe80::99".parse().unwrap()),
            map_host_loopback4: LoopbackMap::To(Ipv4Addr::new(10, 1, 2, 254)),
            map_host_loopback6: LoopbackMap::Off,
            map_guest_addr4: Some(Ipv4Addr::new(10, 1, 2, 253)),
            ..Default::default()
        };
        let d = guest_defaults(&net(), None, &ov);
        let ip4 = d.ip4.unwrap();
        assert_eq!(ip4.addr, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(ip4.prefix_len, 8, "classful");
        assert_eq!(ip4.gateway, Ipv4Addr::new(10, 1, 2, 1));
        assert_eq!(ip4.map_host_loopback, Some(Ipv4Addr::new(10, 1, 2, 254)));
        assert_eq!(ip4.map_guest_addr, Some(Ipv4Addr::new(10, 1, 2, 253)));
        let ip6 = d.ip6.unwrap();
        assert_eq!(ip6.addr, "2001:db8:1::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip6.our_link_local, "fe80::99".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip6.map_host_loopback, None);
        // -n alone, and families switched off.
        let ov = GuestOverrides {
            prefix_len4: Some(20),
            ipv4_only: true,
            ..Default::default()
        };
        let d = guest_defaults(&net(), None, &ov);
        assert_eq!(d.ip4.unwrap().prefix_len, 20);
        assert_eq!(d.ip6, None);
        assert_eq!(d.summary6, "IPv6: disabled (-4)");
        let ov = GuestOverrides {
            ipv6_only: true,
            ..Default::default()
        };
        assert_eq!(
            guest_defaults(&net(), None, &ov).summary4,
            "IPv4: disabled (-6)"
        );
    }

    #[test]
    fn classful_prefixes() {
        assert_eq!(classful_prefix_len(Ipv4Addr::new(10, 0, 0, 1)), 8);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(172, 16, 0, 1)), 16);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(192, 0, 2, 1)), 24);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(224, 0, 0, 1)), 32);
    }
}
