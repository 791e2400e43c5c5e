//! Options of the host side end to end, each shown by what a peer sees: `-o`
//! (the remote server sees the given source address, TCP and UDP, IPv4 and
//! IPv6), `--outbound-if4` (sockets bound to the interface: the connection
//! leaves through it, from its address, where `-i` alone only picks the
//! template), `--freebind` (a `-t` port on an address the host does not
//! have yet starts, and serves once the address appears), and, with
//! `--config-net`, `-g` and the deprecated `--no-copy-routes` and
//! `--no-copy-addrs` (what is copied into the namespace) and `-m 0` (no MTU
//! set on the tap); a port spec's target address (where a forwarded
//! connection lands); a server that speaks first (its banner reaches the
//! guest before the guest sends anything). On the simulated host of
//! tests/tcp.rs; ports 8170-8179.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::thread;
use std::time::Duration;

use crate::support::{can_run, run, stdout, wait_for, Guest, HostKind};
use crate::tcp::{connect, Topo};

fn ip(args: &[&str]) {
    let o = run("ip", args);
    assert!(o.status.success(), "ip {args:?}: {o:?}");
}

/// The source address a server in the remote namespace on `listen` sees
/// for a TCP connection from the guest to `to` (and tells the guest, which
/// checks it got the same).
fn tcp_source_seen(t: &Topo, listen: &'static str, to: &'static str) -> String {
    let l = t
        .spawn("r", move || TcpListener::bind(listen).expect(listen))
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let (mut s, peer) = l.accept().expect("accept");
        // The client speaks first: data from the server before the guest
        // has completed its handshake is another test's subject.
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).expect("hello");
        assert_eq!(&hello, b"hello");
        let ip = peer.ip().to_string();
        s.write_all(ip.as_bytes()).unwrap();
        ip
    });
    let told = t
        .spawn("g", move || {
            let mut c = connect(to.parse::<SocketAddr>().unwrap());
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"hello").unwrap();
            let mut s = String::new();
            c.read_to_string(&mut s).map(|_| s)
        })
        .join()
        .unwrap();
    let told = told.unwrap_or_else(|e| {
        let r = t.g.host().remote().unwrap_or_default().to_owned();
        let ss = stdout(&run("ip", &["netns", "exec", &r, "ss", "-tan"]));
        let h = stdout(&run(
            "ip",
            &["netns", "exec", &t.g.host().name, "ss", "-tanp"],
        ));
        let g = stdout(&run("ip", &["netns", "exec", &t.g.name, "ss", "-tani"]));
        eprintln!("guest:\n{g}");
        let pcap = t.g.dir.join("pasta.pcap");
        let d = stdout(&run(
            "tcpdump",
            &["-nn", "-r", pcap.to_str().unwrap(), "tcp"],
        ));
        panic!("{to}: {e}\nremote:\n{ss}\nhost:\n{h}\n{}\n{d}", t.g.log())
    });
    let seen = srv.join().unwrap();
    assert_eq!(told, seen, "the guest was told another source");
    seen
}

/// The same for a UDP datagram from the guest to `to`, answered with the
/// sender's address.
fn udp_source_seen(t: &Topo, listen: &'static str, to: &'static str) -> String {
    let s = t
        .spawn("r", move || UdpSocket::bind(listen).expect(listen))
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"who am i");
        let ip = from.ip().to_string();
        s.send_to(ip.as_bytes(), from).unwrap();
        ip
    });
    let told = t
        .spawn("g", move || {
            let c = UdpSocket::bind("0.0.0.0:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.send_to(b"who am i", to).unwrap();
            let mut buf = [0u8; 64];
            let n = c.recv(&mut buf).expect("udp answer");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .join()
        .unwrap();
    let seen = srv.join().unwrap();
    assert_eq!(told, seen);
    seen
}

#[test]
fn outbound_address_is_the_source_the_remote_server_sees() {
    if !can_run("outbound_address_is_the_source_the_remote_server_sees") {
        return;
    }
    let t = Topo::capturing("o", &["-o", "203.0.113.77", "-o", "2001:db8:2::77"], true);
    // The host gets the addresses now: the namespace did not copy them.
    let h = t.g.host().name.clone();
    ip(&["-n", &h, "addr", "add", "203.0.113.77/24", "dev", "veth0"]);
    ip(&[
        "-n",
        &h,
        "addr",
        "add",
        "2001:db8:2::77/64",
        "dev",
        "veth0",
        "nodad",
    ]);
    let a = tcp_source_seen(&t, "198.51.100.1:8170", "198.51.100.1:8170");
    assert_eq!(a, "203.0.113.77");
    let a = udp_source_seen(&t, "198.51.100.1:8171", "198.51.100.1:8171");
    assert_eq!(a, "203.0.113.77");
    let a = tcp_source_seen(&t, "[2001:db8:3::1]:8172", "[2001:db8:3::1]:8172");
    assert_eq!(a, "2001:db8:2::77");
    drop(t);

    // Without -o: the host's own address.
    let t = Topo::new("O", &[]);
    let a = tcp_source_seen(&t, "[2001:db8:3::1]:8172", "[2001:db8:3::1]:8172");
    assert_eq!(a, "2001:db8:2::2");
    let a = tcp_source_seen(&t, "198.51.100.1:8170", "198.51.100.1:8170");
    assert_eq!(a, "203.0.113.2");
}

/// A host with a second way out: `veth2` (192.0.2.2/24) to the remote
/// side's `veth3` (192.0.2.1/24), a default route through it of a higher
/// metric than the host's own, and pasta started with `args`.
fn second_way_out(tag: &str, args: &[&str]) -> Topo {
    let mut g = Guest::on_own(&format!("ob{tag}"), HostKind::Full);
    let h = g.host().name.clone();
    let r = g.host().remote().expect("a remote side").to_owned();
    ip(&["-n", &r, "addr", "add", "198.51.100.1/32", "dev", "lo"]);
    ip(&[
        "link", "add", "veth2", "netns", &h, "type", "veth", "peer", "name", "veth3", "netns", &r,
    ]);
    ip(&["-n", &h, "addr", "add", "192.0.2.2/24", "dev", "veth2"]);
    ip(&["-n", &h, "link", "set", "veth2", "up"]);
    ip(&["-n", &r, "addr", "add", "192.0.2.1/24", "dev", "veth3"]);
    ip(&["-n", &r, "link", "set", "veth3", "up"]);
    ip(&[
        "-n",
        &h,
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
        "dev",
        "veth2",
        "metric",
        "1000",
    ]);
    // The tap is named after the template, veth2.
    let mut all = vec!["--config-net", "-4", "-I", "veth2"];
    all.extend_from_slice(args);
    g.start_pasta_capturing(&all, false);
    let name = g.name.clone();
    let ready = wait_for(Duration::from_secs(10), || {
        let a = stdout(&run("ip", &["-n", &name, "-o", "addr", "show"]));
        a.contains("192.0.2.2/").then_some(())
    });
    assert!(ready.is_some(), "guest not configured:\n{}", g.log());
    let p = g.name.clone();
    Topo { g, p }
}

#[test]
fn outbound_if4_binds_the_sockets_to_the_interface() {
    if !can_run("outbound_if4_binds_the_sockets_to_the_interface") {
        return;
    }
    // -i veth2: the namespace is configured from veth2 (192.0.2.2) but the
    // host routes its traffic by the main table: out of veth0.
    let t = second_way_out("i", &["-i", "veth2"]);
    assert_eq!(
        tcp_source_seen(&t, "198.51.100.1:8173", "198.51.100.1:8173"),
        "203.0.113.2"
    );
    drop(t);
    // --outbound-if4 veth2: the same template, and the socket is bound to
    // veth2 (SO_BINDTODEVICE): it leaves there, from veth2's address, by
    // the route of that interface.
    let t = second_way_out("o", &["--outbound-if4", "veth2"]);
    assert_eq!(
        tcp_source_seen(&t, "198.51.100.1:8173", "198.51.100.1:8173"),
        "192.0.2.2"
    );
    assert_eq!(
        udp_source_seen(&t, "198.51.100.1:8174", "198.51.100.1:8174"),
        "192.0.2.2"
    );
}

#[test]
fn freebind_lets_a_port_listen_on_an_address_the_host_lacks() {
    if !can_run("freebind_lets_a_port_listen_on_an_address_the_host_lacks") {
        return;
    }
    // Without --freebind pasta refuses to start, naming the port.
    let probe = Guest::on_own("fB", HostKind::Full);
    let o = probe
        .host()
        .command(&[
            crate::support::PASTA,
            "-f",
            "--config-net",
            "-t",
            "192.0.2.200/8175",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("port 8175 cannot be bound on the host (192.0.2.200:8175)"),
        "{err}"
    );
    drop(probe);

    let t = Topo::new("fb", &["--freebind", "-t", "192.0.2.200/8175"]);
    // pasta listens there (its listeners open just after the namespace is
    // configured).
    let h = t.g.host().name.clone();
    let listening = wait_for(Duration::from_secs(10), || {
        let ss = stdout(&run("ip", &["netns", "exec", &h, "ss", "-tln"]));
        ss.contains("192.0.2.200:8175").then_some(())
    });
    assert!(listening.is_some(), "no listener:\n{}", t.g.log());
    let l = t
        .spawn("g", || TcpListener::bind("0.0.0.0:8175").unwrap())
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"bound before the address existed").unwrap();
    });
    // The address appears on the host after pasta started listening.
    ip(&["-n", &h, "addr", "add", "192.0.2.200/32", "dev", "lo"]);
    let got = t
        .spawn("h", || {
            let mut c = connect("192.0.2.200:8175".parse().unwrap());
            let mut s = String::new();
            c.read_to_string(&mut s).unwrap();
            s
        })
        .join()
        .unwrap();
    assert_eq!(got, "bound before the address existed");
    srv.join().unwrap();
}

/// `ip -4 route` and `ip -4 -o addr` of a namespace pasta configured with
/// `args`, an extra host address (192.0.2.77/24) in place; and pasta's log.
fn configured(tag: &str, args: &[&str]) -> (String, String, String, String) {
    let mut g = Guest::on_own(&format!("cp{tag}"), HostKind::Full);
    let h = g.host().name.clone();
    ip(&["-n", &h, "addr", "add", "192.0.2.77/24", "dev", "veth0"]);
    let mut all = vec!["--config-net"];
    all.extend_from_slice(args);
    g.start_pasta_capturing(&all, false);
    let name = g.name.clone();
    let routes = wait_for(Duration::from_secs(10), || {
        let r = stdout(&run("ip", &["-n", &name, "-4", "route"]));
        r.contains("default").then_some(r)
    })
    .unwrap_or_else(|| panic!("no default route:\n{}", g.log()));
    let addrs = stdout(&run("ip", &["-n", &name, "-4", "-o", "addr"]));
    let link = g.link();
    (routes, addrs, link, g.log())
}

#[test]
fn gateway_and_no_copy_options_limit_what_config_net_copies() {
    if !can_run("gateway_and_no_copy_options_limit_what_config_net_copies") {
        return;
    }
    // By default: the host's route to 198.51.100.0/24 and its second
    // address are copied, and the MTU set.
    let (routes, addrs, link, _) = configured("d", &[]);
    assert!(
        routes.contains("198.51.100.0/24 via 203.0.113.1"),
        "{routes}"
    );
    assert!(addrs.contains("192.0.2.77/24"), "{addrs}");
    assert!(link.contains("mtu 65520"), "{link}");

    // -g (as the original): no host route of that family, only the default
    // route through the given gateway; the addresses are still copied.
    // -m 0: no MTU set, the tap keeps the kernel's 1500.
    let (routes, addrs, link, _) = configured("g", &["-g", "203.0.113.1", "-m", "0"]);
    assert!(routes.contains("default via 203.0.113.1"), "{routes}");
    assert!(!routes.contains("198.51.100.0/24"), "{routes}");
    assert!(addrs.contains("192.0.2.77/24"), "{addrs}");
    assert!(link.contains("mtu 1500"), "{link}");

    // The deprecated options: each does what it says, with a warning.
    let (routes, addrs, _, log) = configured("n", &["--no-copy-routes", "--no-copy-addrs"]);
    assert!(routes.contains("default via 203.0.113.1"), "{routes}");
    assert!(!routes.contains("198.51.100.0/24"), "{routes}");
    assert!(addrs.contains("203.0.113.2/24"), "{addrs}");
    assert!(!addrs.contains("192.0.2.77"), "{addrs}");
    for w in [
        "--no-copy-routes is deprecated and will be dropped soon",
        "--no-copy-addrs is deprecated and will be dropped soon",
    ] {
        assert!(log.contains(w), "no {w:?} in:\n{log}");
    }
}

/// A `-t` rule's target address (`0.0.0.0/8176:192.0.2.5`, the 2026
/// syntax): a connection reaches that address in the namespace, not the
/// namespace's own, through the tap (from the remote side) and spliced
/// (from the host's loopback) alike.
#[test]
fn target_address_of_a_port_spec_is_where_connections_land() {
    if !can_run("target_address_of_a_port_spec_is_where_connections_land") {
        return;
    }
    let t = Topo::new("ta", &["-t", "0.0.0.0/8176:192.0.2.5"]);
    t.g.prepare(&["ip", "addr", "add", "192.0.2.5/32", "dev", "lo"]);
    let h = t.g.host().name.clone();
    let listening = wait_for(Duration::from_secs(10), || {
        let ss = stdout(&run("ip", &["netns", "exec", &h, "ss", "-tln"]));
        ss.contains("0.0.0.0:8176").then_some(())
    });
    assert!(listening.is_some(), "no listener:\n{}", t.g.log());
    let mut servers = Vec::new();
    for (addr, name) in [("192.0.2.5:8176", "target"), ("203.0.113.2:8176", "own")] {
        let l = t
            .spawn("g", move || TcpListener::bind(addr).expect(addr))
            .join()
            .unwrap();
        servers.push(thread::spawn(move || {
            for _ in 0..2 {
                let Ok((mut s, _)) = l.accept() else { return };
                let _ = s.write_all(name.as_bytes());
            }
        }));
    }
    let read_from = |ns: &'static str, to: &'static str| {
        t.spawn(ns, move || {
            let mut c = connect(to.parse::<SocketAddr>().unwrap());
            let mut s = String::new();
            c.read_to_string(&mut s).unwrap();
            s
        })
        .join()
        .unwrap()
    };
    // From the remote side, to the host's address: through the tap.
    assert_eq!(read_from("r", "203.0.113.2:8176"), "target");
    // From the host's loopback: spliced.
    assert_eq!(read_from("h", "127.0.0.1:8176"), "target");
    drop(servers);
}

/// A server that speaks first (a banner right after `accept`, as SMTP, FTP
/// or SSH do): the guest reads the banner, byte for byte, before it sends
/// anything or closes its side; then its answer reaches the server.
fn banner_reaches_the_guest(t: &Topo, listen: &'static str) {
    const BANNER: &[u8] = b"220 banner.example ESMTP ready\r\n";
    let l = t
        .spawn("r", move || TcpListener::bind(listen).expect(listen))
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.write_all(BANNER).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut quit = [0u8; 6];
        s.read_exact(&mut quit).map(|_| quit)
    });
    let got = t
        .spawn("g", move || {
            let mut c = connect(listen.parse::<SocketAddr>().unwrap());
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut b = vec![0u8; BANNER.len()];
            let r = c.read_exact(&mut b).map(|_| b);
            c.write_all(b"QUIT\r\n").unwrap();
            r
        })
        .join()
        .unwrap();
    let got = got.unwrap_or_else(|e| panic!("{listen}: no banner: {e}\n{}", t.g.log()));
    assert_eq!(got, BANNER, "{listen}");
    assert_eq!(&srv.join().unwrap().expect("QUIT"), b"QUIT\r\n");
}

#[test]
fn server_that_speaks_first_reaches_the_guest() {
    if !can_run("server_that_speaks_first_reaches_the_guest") {
        return;
    }
    let t = Topo::new("sf", &[]);
    for _ in 0..10 {
        banner_reaches_the_guest(&t, "198.51.100.1:8177");
        banner_reaches_the_guest(&t, "[2001:db8:3::1]:8178");
    }
}
