//! IPv4 in the namespace: ARP (works today) and a DHCP lease for busybox
//! `udhcpc` (needs the DHCP server, `passt_core::l2::dhcp`).

use std::time::Duration;

use crate::support::{can_run, key_values, run, stdout, wait_for, Guest, OUR_MAC};

#[test]
fn tap_comes_up_with_its_mac_and_arp_is_answered() {
    if !can_run("tap_comes_up_with_its_mac_and_arp_is_answered") {
        return;
    }
    let mut g = Guest::new("arp");
    g.start_pasta(&[
        "-I",
        "guest0",
        "--ns-mac-addr",
        "02:00:00:00:00:42",
        "-a",
        "192.0.2.2/24",
        "-g",
        "192.0.2.1",
    ]);
    let link = g.link();
    assert!(link.contains("link/ether 02:00:00:00:00:42"), "{link}");
    let lo = stdout(&run("ip", &["-n", &g.name, "-o", "link", "show", "lo"]));
    assert!(lo.contains(",UP"), "{lo}");
    // Without --config-net, pasta configures no addresses itself.
    let addrs = stdout(&g.exec(&["ip", "-4", "-o", "addr", "show", "dev", "guest0"]));
    assert_eq!(addrs.trim(), "");

    g.prepare(&["ip", "addr", "add", "192.0.2.2/24", "dev", "guest0"]);
    let o = g.exec(&[
        "busybox",
        "arping",
        "-c",
        "1",
        "-w",
        "3",
        "-I",
        "guest0",
        "192.0.2.1",
    ]);
    let out = stdout(&o);
    assert!(
        o.status.success() && out.contains(&format!("[{OUR_MAC}]")),
        "arping: {o:?}\n{}",
        g.log()
    );
    // The kernel's own resolution: the echo itself is not answered yet (no
    // ICMP sockets), but the neighbour entry is made.
    let _ = g.exec(&["busybox", "ping", "-c", "1", "-W", "1", "192.0.2.1"]);
    let neigh = stdout(&g.exec(&["ip", "neigh", "show", "192.0.2.1", "dev", "guest0"]));
    assert!(neigh.contains(&format!("lladdr {OUR_MAC}")), "{neigh}");
    assert!(g.pasta_running(), "{}", g.log());
}

#[test]
fn deleted_tap_ends_pasta_with_status_1() {
    if !can_run("deleted_tap_ends_pasta_with_status_1") {
        return;
    }
    let mut g = Guest::new("gone");
    // The fatal error's message, on the way out.
    g.allow_allocations(1, "the message of the error that ends pasta");
    g.start_pasta(&["-a", "192.0.2.2/24", "-g", "192.0.2.1"]);
    let o = g.exec(&["ip", "link", "del", "tap0"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(g.wait_pasta(Duration::from_secs(5)), Some(1), "{}", g.log());
    assert!(g.log().contains("tap device tap0 went away"), "{}", g.log());
}

/// The udhcpc script: print the lease's variables when bound.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
[ "$1" = bound ] || exit 0
printf 'ip=%s\nsubnet=%s\nrouter=%s\ndns=%s\ndomain=%s\nsearch=%s\nmtu=%s\nserverid=%s\nlease=%s\n' \
    "$ip" "$subnet" "$router" "$dns" "$domain" "$search" "$mtu" "$serverid" "$lease"
"#;

#[test]
fn udhcpc_gets_the_configured_lease() {
    if !can_run("udhcpc_gets_the_configured_lease") {
        return;
    }
    let mut g = Guest::new("dhcp4");
    g.start_pasta(&[
        "-a",
        "192.0.2.2",
        "-n",
        "255.255.255.0",
        "-g",
        "192.0.2.1",
        "-D",
        "192.0.2.53",
        "-D",
        "192.0.2.54",
        "-S",
        "example.com",
        "-S",
        "example.org",
        "--dhcp-dns",
        "--dhcp-search",
        "-m",
        "1400",
    ]);
    let script = g.script("udhcpc.sh", UDHCPC_SCRIPT);
    let script = script.to_str().expect("utf-8 path");
    let o = g.exec(&[
        "busybox", "udhcpc", "-i", &g.ifname, "-f", "-n", "-q", "-t", "4", "-T", "1", "-s", script,
        "-O", "mtu", "-O", "search", "-O", "domain", "-O", "dns", "-O", "router", "-O", "subnet",
    ]);
    let lease = key_values(&stdout(&o));
    assert!(
        o.status.success() && lease.contains_key("ip"),
        "udhcpc got no lease: {o:?}\n{}",
        g.log()
    );
    assert_eq!(lease["ip"], "192.0.2.2");
    assert_eq!(lease["subnet"], "255.255.255.0");
    assert_eq!(lease["router"], "192.0.2.1");
    assert_eq!(lease["dns"], "192.0.2.53 192.0.2.54");
    assert_eq!(lease["search"], "example.com example.org");
    assert_eq!(lease["mtu"], "1400");
}

/// The dhclient script: keep the environment of the bound lease.
const DHCLIENT_SCRIPT: &str = r#"#!/bin/sh
case "$reason" in
BOUND|REBOOT) env > "$0.lease.tmp" && mv "$0.lease.tmp" "$0.lease" ;;
esac
exit 0
"#;

#[test]
fn dhclient_gets_the_configured_lease() {
    if !can_run("dhclient_gets_the_configured_lease") {
        return;
    }
    let mut g = Guest::new("dhcl4");
    g.start_pasta(&[
        "-a",
        "192.0.2.7/25",
        "-g",
        "192.0.2.1",
        "-D",
        "192.0.2.53",
        "-S",
        "example.net",
        "--dhcp-dns",
        "--dhcp-search",
        "-m",
        "9000",
    ]);
    let script = g.script("dhclient.sh", DHCLIENT_SCRIPT);
    let lease_file = g.dir.join("dhclient.leases");
    let pid_file = g.dir.join("dhclient.pid");
    let mut client = g.spawn(&[
        "dhclient",
        "-4",
        "-1",
        "-d",
        "-sf",
        script.to_str().expect("utf-8 path"),
        "-lf",
        lease_file.to_str().expect("utf-8 path"),
        "-pf",
        pid_file.to_str().expect("utf-8 path"),
        &g.ifname,
    ]);
    let lease = wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(script.with_extension("sh.lease")).ok()
    });
    let _ = client.kill();
    let _ = client.wait();
    let lease = key_values(&lease.unwrap_or_else(|| panic!("dhclient got no lease\n{}", g.log())));
    assert_eq!(lease["new_ip_address"], "192.0.2.7");
    assert_eq!(lease["new_subnet_mask"], "255.255.255.128");
    assert_eq!(lease["new_routers"], "192.0.2.1");
    assert_eq!(lease["new_domain_name_servers"], "192.0.2.53");
    assert_eq!(lease["new_domain_search"], "example.net.");
    assert_eq!(lease["new_interface_mtu"], "9000");
    assert_eq!(lease["new_dhcp_server_identifier"], "192.0.2.1");
}
