//! Traceroute through pasta: the guest's TTL / hop limit reaches the
//! host's socket, and the ICMP errors routers send back reach the guest
//! from the router's address. A router namespace sits between the
//! simulated host and the destination:
//!
//! ```text
//! far netns     192.0.2.2/24, 2001:db8:4::2/64, default routes via the remote
//!   | veth
//! remote netns  the router: 203.0.113.1, 2001:db8:2::1 toward the host,
//!               192.0.2.1, 2001:db8:4::1 toward far; forwarding on
//!   | veth
//! host netns    203.0.113.2, 2001:db8:2::2, default routes via the remote;
//!               pasta runs here
//!   | tap
//! guest netns   busybox traceroute / traceroute6, ping -t
//! ```
//!
//! Hop 1 must be the router (time exceeded), the last hop the destination
//! (port unreachable), and a probe the guest sends with TTL 7 must leave
//! the host with TTL 7 (tcpdump on the host's veth).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{can_run, must, run, stdout, wait_for, Guest, HostKind};

/// The destination behind the router.
const FAR4: &str = "192.0.2.2";
const FAR6: &str = "2001:db8:4::2";

/// Add the far namespace behind the simulated host's remote one; returns
/// its name (deleted by the caller).
fn add_far(g: &Guest<'_>) -> String {
    let remote = g.host().remote().expect("remote namespace").to_owned();
    let far = format!("{}-far", g.name);
    let _ = run("ip", &["netns", "del", &far]);
    must("ip", &["netns", "add", &far]);
    must(
        "ip",
        &[
            "link", "add", "veth2", "netns", &remote, "type", "veth", "peer", "name", "veth3",
            "netns", &far,
        ],
    );
    for (ns, cmds) in [
        (
            remote.as_str(),
            vec![
                vec!["link", "set", "veth2", "up"],
                vec!["addr", "add", "192.0.2.1/24", "dev", "veth2"],
                vec!["addr", "add", "2001:db8:4::1/64", "dev", "veth2", "nodad"],
            ],
        ),
        (
            far.as_str(),
            vec![
                vec!["link", "set", "lo", "up"],
                vec!["link", "set", "veth3", "up"],
                vec!["addr", "add", "192.0.2.2/24", "dev", "veth3"],
                vec!["addr", "add", "2001:db8:4::2/64", "dev", "veth3", "nodad"],
                vec!["route", "add", "default", "via", "192.0.2.1"],
                vec!["-6", "route", "add", "default", "via", "2001:db8:4::1"],
            ],
        ),
    ] {
        for c in cmds {
            let mut all = vec!["-n", ns];
            all.extend_from_slice(&c);
            must("ip", &all);
        }
    }
    for (ns, keys) in [
        (
            remote.as_str(),
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv6.icmp.ratelimit=0",
            ][..],
        ),
        (
            far.as_str(),
            &["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"][..],
        ),
    ] {
        for k in keys {
            must("ip", &["netns", "exec", ns, "sysctl", "-qw", k]);
        }
    }
    far
}

/// The hops busybox traceroute printed: the address of each line.
fn hops(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.next()?.parse::<u32>().ok()?;
            Some(w.next()?.to_owned())
        })
        .collect()
}

#[test]
fn traceroute_shows_the_router_then_the_destination_and_the_host_sends_the_guests_ttl() {
    if !can_run("traceroute_shows_the_router_then_the_destination") {
        return;
    }
    let mut g = Guest::on_own("trrt", HostKind::Full);
    let far = add_far(&g);
    // Ping sockets for everyone on the host (echo flows need them).
    let o = g
        .host()
        .command(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"])
        .output()
        .expect("sysctl");
    assert!(o.status.success(), "ping_group_range: {o:?}");
    g.start_pasta(&["--config-net"]);
    // Neighbours and the guest's IPv6 route settle first.
    let _ = wait_for(Duration::from_secs(10), || {
        g.exec(&["ping", "-c", "1", "-W", "1", FAR6])
            .status
            .success()
            .then_some(())
    });

    // UDP probes, IPv4 and IPv6: hop 1 is the router, hop 2 the destination.
    for (cmd, dst, router) in [
        ("traceroute", FAR4, "203.0.113.1"),
        ("traceroute6", FAR6, "2001:db8:2::1"),
    ] {
        let o = g.exec(&["busybox", cmd, "-n", "-q", "1", "-w", "2", "-m", "4", dst]);
        let out = stdout(&o);
        assert_eq!(hops(&out), [router, dst], "{cmd}: {o:?}\n{}", g.log());
    }

    // ICMP echo with TTL 1: time exceeded from the router, quoting the
    // guest's own request (ping matches it by identifier and sequence).
    for (dst, router) in [(FAR4, "203.0.113.1"), (FAR6, "2001:db8:2::1")] {
        let o = g.exec(&["ping", "-n", "-c", "1", "-W", "2", "-t", "1", dst]);
        let out = stdout(&o);
        assert!(
            out.contains(&format!("From {router} icmp_seq=1 Time to live exceeded"))
                || out.contains(&format!("From {router} icmp_seq=1 Time exceeded")),
            "ping -t 1 {dst}: {o:?}"
        );
    }

    // The host sends with the guest's TTL: a datagram sent with TTL 7 is
    // seen with TTL 7 on the host's veth.
    let mut dump = g
        .host()
        .command(&[
            "tcpdump", "-n", "-v", "-l", "-i", "veth0", "-c", "1", "udp", "and", "dst", "port",
            "5999",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(800));
    let send = "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 7); \
                [s.sendto(b'ttl', ('192.0.2.2', 5999)) for _ in range(3)]";
    let py = Command::new("ip")
        .args(["netns", "exec", &g.name, "python3", "-c", send])
        .output()
        .expect("python3");
    assert!(py.status.success(), "{py:?}");
    let out = wait_for(Duration::from_secs(5), || {
        dump.try_wait().ok().flatten().map(|_| ())
    });
    if out.is_none() {
        let _ = dump.kill();
    }
    let o = dump.wait_with_output().expect("tcpdump output");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("ttl 7,"), "tcpdump: {text}");
    let _ = run("ip", &["netns", "del", &far]);
}
