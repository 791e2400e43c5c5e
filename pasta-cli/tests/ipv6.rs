//! IPv6 in the namespace: SLAAC from router advertisements and neighbour
//! resolution of the gateway (need `passt_core::l2::ndp`), and a DHCPv6
//! lease for ISC `dhclient -6` (needs `passt_core::l2::dhcpv6`); the
//! tap's link-local address usable (not tentative) as soon as
//! `pasta --config-net` returns, in join and spawn mode.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    can_run, key_values, kill, spawn_in, stderr, stdout, wait_for, Guest, HostKind, SimHost,
    OUR_MAC, PASTA,
};

const GUEST_MAC: &str = "02:00:00:00:00:42";

/// Start pasta with IPv6 on a namespace whose interfaces skip duplicate
/// address detection, so that the kernel solicits routers at once.
fn guest6(tag: &str) -> Guest<'static> {
    let mut g = Guest::new(tag);
    g.prepare(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    g.prepare(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    g.start_pasta(&[
        "--ns-mac-addr",
        GUEST_MAC,
        "-a",
        "2001:db8::2",
        "-g",
        "fe80::1",
        "-D",
        "2001:db8::53",
        "-S",
        "example.com",
        "--dhcp-dns",
        "--dhcp-search",
    ]);
    g
}

#[test]
fn slaac_address_default_route_and_gateway_neighbour() {
    if !can_run("slaac_address_default_route_and_gateway_neighbour") {
        return;
    }
    let g = guest6("slaac");
    // Modified EUI-64 of 02:00:00:00:00:42 in the advertised 2001:db8::/64
    // (RFC 4862 §5.5.3, RFC 4291 appendix A).
    let addr = wait_for(Duration::from_secs(10), || {
        let a = stdout(&g.exec(&[
            "ip", "-6", "-o", "addr", "show", "dev", "tap0", "scope", "global",
        ]));
        a.contains("2001:db8::ff:fe00:42/64").then_some(a)
    });
    assert!(addr.is_some(), "no SLAAC address\n{}", g.log());
    let route = stdout(&g.exec(&["ip", "-6", "route", "show", "default"]));
    assert!(route.contains("via fe80::1 dev tap0"), "{route}");
    // Neighbour solicitation for the gateway, answered with our MAC.
    let _ = g.exec(&[
        "busybox",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "1",
        "fe80::1%tap0",
    ]);
    let neigh = stdout(&g.exec(&["ip", "-6", "neigh", "show", "fe80::1", "dev", "tap0"]));
    assert!(
        neigh.contains(&format!("lladdr {OUR_MAC}")),
        "{neigh}\n{}",
        g.log()
    );
}

/// The dhclient script: keep the environment of the bound lease.
const DHCLIENT_SCRIPT: &str = r#"#!/bin/sh
case "$reason" in
BOUND6|REBOOT6) env > "$0.lease.tmp" && mv "$0.lease.tmp" "$0.lease" ;;
esac
exit 0
"#;

#[test]
fn dhclient6_gets_the_configured_lease() {
    if !can_run("dhclient6_gets_the_configured_lease") {
        return;
    }
    let g = guest6("dhcp6");
    let script = g.script("dhclient.sh", DHCLIENT_SCRIPT);
    let lease_file = g.dir.join("dhclient.leases");
    let pid_file = g.dir.join("dhclient.pid");
    let mut client = g.spawn(&[
        "dhclient",
        "-6",
        "-1",
        "-d",
        "-sf",
        script.to_str().expect("utf-8 path"),
        "-lf",
        lease_file.to_str().expect("utf-8 path"),
        "-pf",
        pid_file.to_str().expect("utf-8 path"),
        "tap0",
    ]);
    let lease = wait_for(Duration::from_secs(15), || {
        fs::read_to_string(script.with_extension("sh.lease")).ok()
    });
    let _ = client.kill();
    let _ = client.wait();
    let lease = key_values(&lease.unwrap_or_else(|| panic!("dhclient got no lease\n{}", g.log())));
    assert_eq!(lease["new_ip6_address"], "2001:db8::2");
    assert_eq!(lease["new_dhcp6_name_servers"], "2001:db8::53");
    assert!(
        lease["new_dhcp6_domain_search"].contains("example.com"),
        "{lease:?}"
    );
}

#[test]
fn router_advertisement_carries_resolver_and_search_list() {
    if !can_run("router_advertisement_carries_resolver_and_search_list") {
        return;
    }
    let g = guest6("rdisc");
    // rdisc6 solicits and prints the advertisement it gets (RFC 8106 options).
    let o = g.exec(&["rdisc6", "-1", "-w", "2000", "-r", "3", "tap0"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{o:?}\n{}", g.log());
    let field = |name: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    assert_eq!(field("Prefix"), ["2001:db8::/64"], "{out}");
    assert_eq!(field("Recursive DNS server"), ["2001:db8::53"], "{out}");
    assert_eq!(field("DNS search list"), ["example.com"], "{out}");
    assert_eq!(field("MTU"), ["65520 bytes (valid)"], "{out}");
    assert!(out.contains("from fe80::1"), "{out}");
}

/// The tap's link-local address in `ip -6 -o addr` output, if any.
fn link_local(addrs: &str) -> Option<std::net::Ipv6Addr> {
    addrs
        .split_whitespace()
        .filter_map(|w| w.split('/').next()?.parse::<std::net::Ipv6Addr>().ok())
        .find(|a| a.segments()[0] & 0xffc0 == 0xfe80)
}

/// What must hold right after `pasta --config-net` returned: no tentative
/// address on the tap (`ip -6 addr`), a link-local one.
fn check_usable(addrs: &str, log: &str) -> std::net::Ipv6Addr {
    assert!(!addrs.contains("tentative"), "{addrs}\n{log}");
    assert!(addrs.contains("2001:db8:2::2/"), "{addrs}\n{log}");
    link_local(addrs).unwrap_or_else(|| panic!("no link-local address: {addrs}\n{log}"))
}

#[test]
fn link_local_address_is_usable_as_soon_as_pasta_returns() {
    if !can_run("link_local_address_is_usable_as_soon_as_pasta_returns") {
        return;
    }
    // Fresh namespaces, duplicate address detection left on as the
    // kernel's defaults have it (default.accept_dad=1).
    let host = SimHost::new("dad", HostKind::Full);
    // Join mode: pasta configures the namespace and goes to the background.
    let guest = Guest::on(&host, "dad-j");
    let pid_file = guest.dir.join("pasta.pid");
    let mut all = vec![PASTA, "--config-net", "-I", "tap9", "--netns", &guest.name];
    all.extend_from_slice(&["-P", pid_file.to_str().unwrap()]);
    let o = host.command(&all).stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let pid: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let addrs = stdout(&guest.exec(&["ip", "-6", "-o", "addr", "show", "dev", "tap9"]));
    let ll = check_usable(&addrs, &stderr(&o));
    // A DHCPv6 client's socket binds to the link-local address at once
    // (ISC dhclient's "Can't bind to dhcp address" otherwise).
    let bound = spawn_in(&guest.name, move || {
        let index = if_index("tap9");
        std::net::UdpSocket::bind(std::net::SocketAddrV6::new(ll, 546, 0, index))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .join()
    .unwrap();
    assert_eq!(bound, Ok(()), "bind [{ll}%tap9]:546\n{addrs}");
    // A router solicitation goes out from it at once (the first send
    // failed with EADDRNOTAVAIL while the address was tentative). With
    // --config-net pasta advertises no router, as the original: no answer.
    let rs = guest.exec(&["rdisc6", "-1", "-w", "1000", "-r", "2", "tap9"]);
    let text = format!("{}{}", stdout(&rs), stderr(&rs));
    assert!(!text.contains("Cannot"), "rdisc6: {text}\n{addrs}");
    assert!(text.contains("Soliciting"), "rdisc6: {text}\n{addrs}");
    assert!(!text.contains("2001:db8:2::/64"), "an RA came: {text}");
    kill(pid);
    // Spawn mode: the command runs as soon as the namespace is set up.
    let script = "ip -6 -o addr show dev tap9; \
                  rdisc6 -1 -w 1000 -r 5 tap9 2>&1 | grep -q 'Cannot' && echo RS-FAILED || echo RS-SENT";
    let o = host
        .command(&[
            PASTA,
            "--config-net",
            "-I",
            "tap9",
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    check_usable(&out, &stderr(&o));
    assert!(out.contains("RS-SENT"), "{out}\n{}", stderr(&o));
}

/// The index of interface `name` in the calling thread's namespace
/// (`ip -o link`'s first field; 0 if absent).
fn if_index(name: &str) -> u32 {
    let o = std::process::Command::new("ip")
        .args(["-o", "link", "show", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
