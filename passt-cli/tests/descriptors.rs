//! passt out of descriptors: run with a soft and hard `RLIMIT_NOFILE` of 64
//! (`prlimit`) on the simulated host of doc/TESTING.md, the test as the guest,
//! whose UDP flows to the remote side take every descriptor passt has.
//! Then a guest's TCP SYN is answered with a reset, a second client is
//! refused (end of file) without passt spinning on its listener, the
//! guest is still served, a reconnect after it hangs up is served, and the
//! log says so in a few lines, not one per wake-up.

use core::net::Ipv4Addr;
use std::time::Duration;

use passt_core::testing::build::{parse_tcp, tcp4, udp4};
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::ip_proto;
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::tcp::TcpFlags;

use crate::stream::{args, arp_exchange, GUEST};
use crate::support::{can_run_as_root, on_path, Passt, Topology, REMOTE4};

/// Descriptors passt has open (`/proc/PID/fd`).
fn open_fds(p: &Passt) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", p.pid().expect("pid"))).map_or(0, Iterator::count)
}

#[test]
fn passt_out_of_descriptors_resets_syns_refuses_clients_without_spinning_and_serves_reconnects() {
    let test = "passt_out_of_descriptors_resets_syns_refuses_clients_without_spinning_and_serves_reconnects";
    if !can_run_as_root(test) {
        return;
    }
    if !on_path("prlimit") {
        eprintln!("{test}: skipped: no prlimit");
        return;
    }
    let topo = Topology::new("fds");
    let mut p = Passt::start_wrapped(
        Some(&topo.host),
        &["prlimit", "--nofile=64:64"],
        "fds",
        &args(&[]),
    );
    let remote: Ipv4Addr = REMOTE4.parse().unwrap();
    let mut link = p.connect();
    arp_exchange(&mut link);

    // UDP flows from 200 source ports: each wants a socket, until there
    // are none; the rest are dropped (and counted).
    for port in 20000..20200u16 {
        link.send(&udp4(GUEST, port, remote, 9, b"take a descriptor"));
    }
    arp_exchange(&mut link);
    let fds = open_fds(&p);
    assert!(fds >= 60, "passt has {fds} descriptors open");

    // A TCP SYN whose socket cannot be made: RST, at once.
    link.send(&tcp4(GUEST, 40000, remote, 5200).syn().seq(1000).build());
    let rst = (0..16)
        .find_map(|_| {
            let f = link.recv()?;
            let (eth, l3) = EthernetRepr::parse(&f).ok()?;
            if eth.ethertype != ethertype::IPV4 {
                return None;
            }
            let (ip, _) = Ipv4Repr::parse(l3, true).ok()?;
            (ip.protocol == ip_proto::TCP).then(|| parse_tcp(&f))
        })
        .unwrap_or_else(|| panic!("no answer to the SYN:\n{}", p.log()));
    assert!(rst.flags.contains(TcpFlags::RST), "{:?}", rst.flags);
    assert_eq!((rst.sport, rst.dport, rst.ack), (5200, 40000, 1001));

    // Second clients while the guest is connected: refused (end of file),
    // twenty in a row, and passt does not spin on its listener.
    let t0 = p.cpu_ticks().expect("CPU time");
    for _ in 0..20 {
        let mut second = p.connect();
        assert!(
            second.closed_by_peer(),
            "second client not refused:\n{}",
            p.log()
        );
    }
    // One left waiting in the backlog while passt has nothing to do.
    let waiting = p.connect();
    std::thread::sleep(Duration::from_secs(1));
    let spent = p.cpu_ticks().expect("CPU time") - t0;
    assert!(spent < 50, "passt used {spent} ticks refusing 20 clients");
    drop(waiting);
    // The guest is still served.
    arp_exchange(&mut link);

    // Gone and back at once, five times: each reconnect is served.
    for _ in 0..5 {
        drop(link);
        link = p.connect();
        arp_exchange(&mut link);
    }
    assert!(p.running(), "{}", p.log());

    // A few lines about descriptors, not one per attempt.
    let log = p.log();
    let fd_lines = log
        .lines()
        .filter(|l| l.contains("Too many open files") || l.contains("descriptor"))
        .count();
    assert!(fd_lines <= 12, "{fd_lines} lines about descriptors:\n{log}");
}
