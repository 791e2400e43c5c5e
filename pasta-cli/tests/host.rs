//! The guest's stock clients get the host's own configuration (issue 3's
//! end-to-end acceptance): pasta runs inside the simulated host of
//! doc/TESTING.md, with no address options, and busybox udhcpc, ISC dhclient
//! (-4 and -6), the kernel's SLAAC and rdisc6 receive the host's address,
//! prefix, gateway, resolvers and search list. Loopback resolvers of the
//! host's resolv.conf (127.0.0.53, ::1) reach the guest as the address that
//! stands for the host (the gateway), as the original maps them.
//!
//! Then every option that changes what a client receives is run once, in a
//! table, asserting the field it changes; and hosts without IPv6 or without
//! any route still give a working guest, with one log line per family.

use std::time::Duration;

use crate::support::clients::{dhclient, field, rdisc6, udhcpc};
use crate::support::{can_run, must, run, stdout, wait_for, Guest, HostKind, SimHost};

/// The guest's MAC, so that its SLAAC address is known.
const GUEST_MAC: &str = "02:00:00:00:00:42";
/// Its modified EUI-64 interface identifier (RFC 4291 appendix A).
const GUEST_IID: &str = "ff:fe00:42";

/// Options of every run: the guest MAC, and resolvers and search list in
/// DHCP, DHCPv6 and RA (pasta leaves them out by default).
const BASE: &[&str] = &["--ns-mac-addr", GUEST_MAC, "--dhcp-dns", "--dhcp-search"];

/// A guest of `host` whose interfaces skip duplicate address detection (so
/// the kernel solicits routers at once), with pasta started with `BASE` and
/// `extra`.
fn guest<'a>(host: &'a SimHost, tag: &str, extra: &[&str]) -> Guest<'a> {
    let mut g = Guest::on(host, tag);
    g.prepare(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    g.prepare(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    let mut args = if extra.first() == NO_BASE.first() {
        BASE[..2].to_vec()
    } else {
        BASE.to_vec()
    };
    args.extend(extra.iter().filter(|a| **a != NO_BASE[0]));
    g.start_pasta(&args);
    g
}

/// The host's own IPv4 address as `ip` shows it: `203.0.113.2/24`.
fn host_addr4(host: &SimHost) -> String {
    let out = host.ip(&["-4", "-o", "addr", "show", "dev", "veth0"]);
    let word = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_default();
    word.to_owned()
}

#[test]
fn udhcpc_gets_the_hosts_address_gateway_resolvers_and_search_list() {
    if !can_run("udhcpc_gets_the_hosts_address_gateway_resolvers_and_search_list") {
        return;
    }
    let host = SimHost::new("h-udhcpc", HostKind::Full);
    assert_eq!(host_addr4(&host), "203.0.113.2/24");
    let g = guest(&host, "h-udhcpc", &[]);
    let lease = udhcpc(&g, 4).unwrap_or_else(|| panic!("no lease\n{}", g.log()));
    assert_eq!(lease["ip"], "203.0.113.2");
    assert_eq!(lease["subnet"], "255.255.255.0");
    assert_eq!(lease["router"], "203.0.113.1");
    // 127.0.0.53 becomes the gateway, which stands for the host.
    assert_eq!(lease["dns"], "203.0.113.1 198.51.100.53");
    assert_eq!(lease["search"], "example.com example.org");
    assert_eq!(lease["serverid"], "203.0.113.1");
    let log = g.log();
    assert!(
        log.contains("IPv4: template veth0 (default route, metric 0): address 203.0.113.2/24, gateway 203.0.113.1"),
        "{log}"
    );
}

#[test]
fn dhclient_gets_the_hosts_address_gateway_resolvers_and_search_list() {
    if !can_run("dhclient_gets_the_hosts_address_gateway_resolvers_and_search_list") {
        return;
    }
    let host = SimHost::new("h-dhcl4", HostKind::Full);
    let g = guest(&host, "h-dhcl4", &[]);
    let lease = dhclient(&g, "-4", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no lease\n{}", g.log()));
    assert_eq!(lease["new_ip_address"], "203.0.113.2");
    assert_eq!(lease["new_subnet_mask"], "255.255.255.0");
    assert_eq!(lease["new_routers"], "203.0.113.1");
    assert_eq!(
        lease["new_domain_name_servers"],
        "203.0.113.1 198.51.100.53"
    );
    assert_eq!(lease["new_domain_search"], "example.com. example.org.");
}

#[test]
fn slaac_and_rdisc6_get_the_hosts_prefix_and_resolvers() {
    if !can_run("slaac_and_rdisc6_get_the_hosts_prefix_and_resolvers") {
        return;
    }
    let host = SimHost::new("h-slaac", HostKind::Full);
    let g = guest(&host, "h-slaac", &[]);
    // The kernel's SLAAC address in the host's /64.
    let want = format!("2001:db8:2::{GUEST_IID}/64");
    let addr = wait_for(Duration::from_secs(10), || {
        let a = stdout(&g.exec(&[
            "ip", "-6", "-o", "addr", "show", "dev", "veth0", "scope", "global",
        ]));
        a.contains(&want).then_some(a)
    });
    assert!(addr.is_some(), "no SLAAC address {want}\n{}", g.log());
    // Router advertisements come from the host interface's own link-local
    // address (its IPv6 gateway is not link-local).
    let host_ll = host.ip(&["-6", "-o", "addr", "show", "dev", "veth0", "scope", "link"]);
    let host_ll = host_ll
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_default()
        .to_owned();
    assert!(host_ll.starts_with("fe80::"), "{host_ll}");
    let route = stdout(&g.exec(&["ip", "-6", "route", "show", "default"]));
    assert!(
        route.contains(&format!("via {host_ll} dev veth0")),
        "{route}"
    );
    let ra = rdisc6(&g, 5).unwrap_or_else(|| panic!("no RA\n{}", g.log()));
    assert_eq!(field(&ra, "Prefix"), ["2001:db8:2::/64"], "{ra:?}");
    // ::1 becomes the IPv6 gateway, which stands for the host.
    assert_eq!(
        field(&ra, "Recursive DNS server"),
        ["2001:db8:2::1"],
        "{ra:?}"
    );
    assert_eq!(
        field(&ra, "DNS search list"),
        ["example.com example.org"],
        "{ra:?}"
    );
    assert_eq!(field(&ra, "from"), [host_ll.as_str()], "{ra:?}");
}

#[test]
fn dhclient6_gets_the_hosts_address_and_resolvers() {
    if !can_run("dhclient6_gets_the_hosts_address_and_resolvers") {
        return;
    }
    let host = SimHost::new("h-dhcl6", HostKind::Full);
    let g = guest(&host, "h-dhcl6", &[]);
    let lease = dhclient(&g, "-6", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no lease\n{}", g.log()));
    assert_eq!(lease["new_ip6_address"], "2001:db8:2::2");
    assert_eq!(lease["new_dhcp6_name_servers"], "2001:db8:2::1");
    assert!(
        lease["new_dhcp6_domain_search"].contains("example.com. example.org."),
        "{lease:?}"
    );
}

/// Which client an override case runs, and what it checks.
#[derive(Clone, Copy)]
enum Check {
    /// udhcpc's lease has `field` = `value`.
    Dhcp(&'static str, &'static str),
    /// udhcpc gets no lease.
    NoDhcp,
    /// rdisc6's report has `field` = `value` (`""`: no such field).
    Ra(&'static str, &'static str),
    /// No router advertisement: the kernel configures no default route
    /// from one (it solicits routers as the link comes up).
    NoRa,
    /// dhclient -6's lease has `field` = `value`.
    Dhcp6(&'static str, &'static str),
    /// dhclient -6 gets no lease.
    NoDhcp6,
    /// The gateway's neighbour entry after a lease has this MAC.
    GatewayMac(&'static str),
}

/// Marks a case run without `BASE`'s `--dhcp-dns --dhcp-search`.
const NO_BASE: &[&str] = &["--no-base"];

/// One pasta run per case: the options, and the field they change.
const OVERRIDES: &[(&[&str], Check)] = &[
    (&["-a", "203.0.113.77"], Check::Dhcp("ip", "203.0.113.77")),
    (&["-n", "16"], Check::Dhcp("subnet", "255.255.0.0")),
    (
        &["-n", "255.255.255.128"],
        Check::Dhcp("subnet", "255.255.255.128"),
    ),
    (
        &["-g", "203.0.113.254"],
        Check::Dhcp("router", "203.0.113.254"),
    ),
    (&["-m", "1400"], Check::Dhcp("mtu", "1400")),
    (&["-m", "1400"], Check::Ra("MTU", "1400 bytes (valid)")),
    (&["-D", "192.0.2.53"], Check::Dhcp("dns", "192.0.2.53")),
    (
        &["-D", "2001:db8::53"],
        Check::Ra("Recursive DNS server", "2001:db8::53"),
    ),
    (&["-D", "none"], Check::Dhcp("dns", "")),
    (&["-S", "example.net"], Check::Dhcp("search", "example.net")),
    (
        &["-S", "example.net"],
        Check::Ra("DNS search list", "example.net"),
    ),
    (&["-S", "none"], Check::Dhcp("search", "")),
    // pasta's defaults: neither resolvers nor search list (BASE asks for
    // them with --dhcp-dns and --dhcp-search; --no-dhcp-dns and
    // --no-dhcp-search are passt's).
    (NO_BASE, Check::Dhcp("dns", "")),
    (NO_BASE, Check::Ra("Recursive DNS server", "")),
    (NO_BASE, Check::Dhcp6("new_dhcp6_name_servers", "")),
    (NO_BASE, Check::Dhcp("search", "")),
    (NO_BASE, Check::Ra("DNS search list", "")),
    (
        &["--no-base", "--dhcp-dns"],
        Check::Dhcp("dns", "203.0.113.1 198.51.100.53"),
    ),
    (
        &["--no-base", "--dhcp-search"],
        Check::Dhcp("search", "example.com example.org"),
    ),
    // The host's loopback resolver is offered as the mapped address...
    (
        &["--map-host-loopback", "203.0.113.9"],
        Check::Dhcp("dns", "203.0.113.9 198.51.100.53"),
    ),
    // ...or as the --dns-forward address...
    (
        &["--dns-forward", "203.0.113.53"],
        Check::Dhcp("dns", "203.0.113.53 198.51.100.53"),
    ),
    // ...and not at all without a mapping.
    (&["--no-map-gw"], Check::Dhcp("dns", "198.51.100.53")),
    (&["--no-map-gw"], Check::Ra("Recursive DNS server", "")),
    (&["--no-dhcp"], Check::NoDhcp),
    (&["-6"], Check::NoDhcp),
    (&["--no-ndp"], Check::NoRa),
    (&["--no-ra"], Check::NoRa),
    (&["-4"], Check::NoRa),
    (&["--no-dhcpv6"], Check::NoDhcp6),
    (&["--no-dhcpv6"], Check::Ra("Stateful address conf.", "No")),
    (
        &["-a", "2001:db8:2::77"],
        Check::Dhcp6("new_ip6_address", "2001:db8:2::77"),
    ),
    (
        &["-a", "2001:db8:9::2"],
        Check::Ra("Prefix", "2001:db8:9::/64"),
    ),
    (&["-g", "fe80::99"], Check::Ra("from", "fe80::99")),
    (
        &["-M", "02:00:00:00:00:99"],
        Check::Ra("Source link-layer address", "02:00:00:00:00:99"),
    ),
    (
        &["-M", "02:00:00:00:00:99"],
        Check::GatewayMac("02:00:00:00:00:99"),
    ),
    // The host's second uplink (veth2, default route of a higher metric)
    // as the template instead of the default route's; the tap keeps its
    // name with -I.
    (
        &["-i", "veth2", "-I", "veth0"],
        Check::Dhcp("ip", "192.0.2.9"),
    ),
    (
        &["--outbound-if4", "veth2", "-I", "veth0"],
        Check::Dhcp("router", "192.0.2.1"),
    ),
    (
        &["--outbound-if4", "veth2", "-I", "veth0"],
        Check::Ra("Prefix", "2001:db8:2::/64"),
    ),
];

/// Deletes a namespace when dropped.
struct DelNetns(String);

impl Drop for DelNetns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// Run the override cases whose index `i` has `i % parts == part`.
fn overrides(part: usize, parts: usize) {
    let host = SimHost::new(&format!("ovr{part}"), HostKind::Full);
    // A second uplink, veth2, to a namespace of its own.
    let uplink = format!("{}-u", host.name);
    let _ = run("ip", &["netns", "del", &uplink]);
    must("ip", &["netns", "add", &uplink]);
    let _cleanup = DelNetns(uplink.clone());
    must(
        "ip",
        &[
            "link", "add", "veth2", "netns", &host.name, "type", "veth", "peer", "name", "veth3",
            "netns", &uplink,
        ],
    );
    must("ip", &["-n", &uplink, "link", "set", "veth3", "up"]);
    let h = &host.name;
    must("ip", &["-n", h, "link", "set", "veth2", "up"]);
    must(
        "ip",
        &["-n", h, "addr", "add", "192.0.2.9/24", "dev", "veth2"],
    );
    must(
        "ip",
        &[
            "-n",
            h,
            "route",
            "add",
            "default",
            "via",
            "192.0.2.1",
            "metric",
            "100",
        ],
    );
    let mut failures = Vec::new();
    for (i, (args, check)) in OVERRIDES.iter().enumerate() {
        if i % parts != part {
            continue;
        }
        let g = guest(&host, &format!("ovr{i}"), args);
        let failure = match *check {
            Check::Dhcp(name, want) => match udhcpc(&g, 4) {
                Some(lease) if lease.get(name).map(String::as_str) == Some(want) => None,
                got => Some(format!("{name} = {want:?} wanted, lease {got:?}")),
            },
            Check::NoDhcp => udhcpc(&g, 2).map(|l| format!("lease {l:?} wanted none")),
            Check::Ra(name, want) => match rdisc6(&g, 5) {
                Some(ra) => {
                    let got = field(&ra, name);
                    let ok = if want.is_empty() {
                        got.is_empty()
                    } else {
                        got.iter().any(|v| v.trim() == want)
                    };
                    (!ok).then(|| format!("{name} = {want:?} wanted, RA {ra:?}"))
                }
                None => Some("no RA".into()),
            },
            Check::NoRa => wait_for(Duration::from_secs(3), || {
                let r = stdout(&g.exec(&["ip", "-6", "route", "show", "default"]));
                r.contains("proto ra").then_some(r)
            })
            .map(|r| format!("route from an RA {r:?}, wanted none")),
            Check::Dhcp6(name, want) => match dhclient(&g, "-6", Duration::from_secs(10)) {
                Some(l) if l.get(name).map_or("", String::as_str) == want => None,
                got => Some(format!("{name} = {want:?} wanted, lease {got:?}")),
            },
            Check::NoDhcp6 => dhclient(&g, "-6", Duration::from_secs(4))
                .map(|l| format!("lease {l:?} wanted none")),
            Check::GatewayMac(mac) => {
                let _ = g.exec(&["ip", "addr", "add", "203.0.113.2/24", "dev", "veth0"]);
                let _ = g.exec(&["busybox", "ping", "-c", "1", "-W", "1", "203.0.113.1"]);
                let neigh = stdout(&g.exec(&["ip", "neigh", "show", "203.0.113.1"]));
                (!neigh.contains(&format!("lladdr {mac}")))
                    .then(|| format!("gateway neighbour {neigh:?}"))
            }
        };
        if let Some(f) = failure {
            failures.push(format!("{args:?}: {f}\n{}", g.log()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn each_override_changes_what_the_client_receives_0() {
    if can_run("each_override_changes_what_the_client_receives_0") {
        overrides(0, 3);
    }
}

#[test]
fn each_override_changes_what_the_client_receives_1() {
    if can_run("each_override_changes_what_the_client_receives_1") {
        overrides(1, 3);
    }
}

#[test]
fn each_override_changes_what_the_client_receives_2() {
    if can_run("each_override_changes_what_the_client_receives_2") {
        overrides(2, 3);
    }
}

#[test]
fn a_host_without_ipv6_gives_ipv4_and_ipv6_local_mode() {
    if !can_run("a_host_without_ipv6_gives_ipv4_and_ipv6_local_mode") {
        return;
    }
    let host = SimHost::new("h-no6", HostKind::NoIpv6);
    let g = guest(&host, "h-no6", &[]);
    let lease = udhcpc(&g, 4).unwrap_or_else(|| panic!("no lease\n{}", g.log()));
    assert_eq!(lease["ip"], "203.0.113.2");
    assert_eq!(lease["router"], "203.0.113.1");
    // IPv6 in local mode: advertisements from fe80::1, a default route.
    let ra = rdisc6(&g, 5).unwrap_or_else(|| panic!("no RA\n{}", g.log()));
    assert_eq!(field(&ra, "from"), ["fe80::1"], "{ra:?}");
    let route = stdout(&g.exec(&["ip", "-6", "route", "show", "default"]));
    assert!(route.contains("via fe80::1 dev veth0"), "{route}");
    let log = g.log();
    let families: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("pasta: IPv4: ") || l.starts_with("pasta: IPv6: "))
        .collect();
    assert_eq!(families.len(), 2, "{log}");
    assert!(families[0].contains("template veth0"), "{log}");
    assert!(
        families[1].starts_with("pasta: IPv6: no host interface with a route, local mode"),
        "{log}"
    );
}

#[test]
fn a_host_without_routes_gives_local_mode() {
    if !can_run("a_host_without_routes_gives_local_mode") {
        return;
    }
    let host = SimHost::new("h-noroute", HostKind::NoRoutes);
    let mut g = guest(&host, "h-noroute", &[]);
    assert_eq!(g.ifname, "tap0");
    let lease = udhcpc(&g, 4).unwrap_or_else(|| panic!("no lease\n{}", g.log()));
    assert_eq!(lease["ip"], "169.254.2.1");
    assert_eq!(lease["subnet"], "255.255.0.0");
    assert_eq!(lease["router"], "169.254.2.2");
    let ra = rdisc6(&g, 5).unwrap_or_else(|| panic!("no RA\n{}", g.log()));
    assert_eq!(field(&ra, "from"), ["fe80::1"], "{ra:?}");
    // ARP for the local-mode gateway is answered.
    g.prepare(&["ip", "addr", "add", "169.254.2.1/16", "dev", "tap0"]);
    let o = g.exec(&[
        "busybox",
        "arping",
        "-c",
        "1",
        "-w",
        "3",
        "-I",
        "tap0",
        "169.254.2.2",
    ]);
    assert!(o.status.success(), "{o:?}\n{}", g.log());
    let log = g.log();
    for family in ["IPv4", "IPv6"] {
        let line = format!("pasta: {family}: no host interface with a route, local mode");
        assert_eq!(
            log.lines().filter(|l| l.starts_with(&line)).count(),
            1,
            "{log}"
        );
    }
    assert!(g.pasta_running(), "{log}");
}
