//! UDP, DNS forwarding and ICMP echo through pasta end to end, on the
//! simulated host of doc/TESTING.md:
//!
//! ```text
//! remote netns  203.0.113.1/24, 2001:db8:2::1/64; servers on 198.51.100.1,
//!               2001:db8:3::1 (socat UDP echo) and 198.51.100.53,
//!               2001:db8:3::53 (dnsmasq)
//!   | veth
//! host netns    203.0.113.2/24, 2001:db8:2::2/64, default routes via the
//!               remote; resolv.conf names the remote dnsmasq; pasta runs here
//!   | tap (pasta -f -d --config-net, named after the host's veth0)
//! guest netns   the host's addresses and routes, as pasta copies them
//! ```
//!
//! Clients and echo servers on the guest and host side are threads of the
//! test process that entered a namespace with `setns(CLONE_NEWNET)`; the
//! remote echo server is socat. Every datagram's content is checked; bursts
//! of large datagrams must arrive whole, none lost. Ports 5200-5299 and
//! 8200-8299.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::support::{can_run, clients, require, run, stdout, wait_for, Guest, HostKind};

/// The remote resolver's addresses, first in the host's resolv.conf.
const DNS4: &str = "198.51.100.53";
const DNS6: &str = "2001:db8:3::53";
/// The guest-side addresses pasta maps to them (`--dns-forward`).
const FWD4: &str = "169.254.1.1";
const FWD6: &str = "2001:db8:5::53";

/// The simulated host with pasta serving a guest namespace, and the
/// servers the test started on the remote side (killed by PID on drop).
struct Topo {
    g: Guest<'static>,
    servers: Vec<Child>,
}

fn ip(args: &[&str]) {
    let o = run("ip", args);
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Topo {
    fn new(tag: &str, pasta_args: &[&str]) -> Topo {
        Topo::with_resolv(
            tag,
            pasta_args,
            &format!("nameserver {DNS4}\nnameserver {DNS6}\nsearch example.com\n"),
        )
    }

    /// As [`Topo::new`], with `resolv` as the host's resolv.conf.
    fn with_resolv(tag: &str, pasta_args: &[&str], resolv: &str) -> Topo {
        require(&[
            ("socat", "socat"),
            ("dnsmasq", "dnsmasq-base"),
            ("ping", "iputils-ping"),
        ]);
        let mut g = Guest::on_own(&format!("udp{tag}"), HostKind::Full);
        let r = g.host().remote().expect("a remote side").to_owned();
        let h = g.host().name.clone();
        for a in ["198.51.100.1/32", DNS4, "2001:db8:3::1/128", DNS6] {
            ip(&["-n", &r, "addr", "add", a, "dev", "lo"]);
        }
        // The host's resolvers (the remote dnsmasq for --dns-forward).
        std::fs::write(format!("/etc/netns/{h}/resolv.conf"), resolv).expect("host resolv.conf");
        // pasta opens ping sockets in the host namespace.
        let o = run(
            "ip",
            &[
                "netns",
                "exec",
                &h,
                "sysctl",
                "-qw",
                "net.ipv4.ping_group_range=0 2147483647",
            ],
        );
        assert!(o.status.success(), "ping_group_range: {o:?}");
        g.prepare(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        g.prepare(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
        // The PID file is pasta's sign that its forwarded ports are open
        // (the namespace looks configured before that: a `-u` datagram
        // sent at once would meet a closed port).
        let pid = g.dir.join("pasta.pid");
        let pid = pid.to_str().expect("utf-8 path").to_owned();
        let mut args = vec!["--config-net", "-P", &pid];
        args.extend_from_slice(pasta_args);
        g.start_pasta(&args);
        let written = wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&pid)
                .ok()
                .filter(|s| s.ends_with('\n'))
        });
        assert!(written.is_some(), "no PID file from pasta:\n{}", g.log());
        let name = g.name.clone();
        let ready = wait_for(Duration::from_secs(10), || {
            let a = stdout(&run("ip", &["-n", &name, "-o", "addr", "show"]));
            let r6 = stdout(&run("ip", &["-n", &name, "-6", "route", "show", "default"]));
            (a.contains("203.0.113.2/")
                && a.contains("2001:db8:2::2/")
                && !a.contains("tentative")
                && r6.contains("default"))
            .then_some(())
        });
        assert!(ready.is_some(), "guest not configured:\n{}", g.log());
        Topo {
            g,
            servers: Vec::new(),
        }
    }

    fn ns(&self, n: &str) -> String {
        match n {
            "r" => self.g.host().remote().expect("remote").to_owned(),
            "h" => self.g.host().name.clone(),
            _ => self.g.name.clone(),
        }
    }

    /// Run `f` on a thread inside namespace `n` ("r", "h" or "g").
    fn spawn<T: Send + 'static>(
        &self,
        n: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        crate::support::spawn_in(&self.ns(n), f)
    }

    /// Run `f` inside namespace `n` and wait for it.
    fn within<T: Send + 'static>(&self, n: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(n, f).join().expect("namespace thread")
    }

    /// Start a long-running command in namespace `n`, killed on drop.
    fn server(&mut self, n: &str, args: &[&str]) {
        let c = Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        self.servers.push(c);
    }

    /// A socat UDP echo server on the remote side: each datagram is sent
    /// back to its sender from the address it was sent to.
    fn remote_echo(&mut self, addr: &str, port: u16) {
        let (kind, addr) = if addr.contains(':') {
            ("UDP6-RECVFROM", format!("[{addr}]"))
        } else {
            ("UDP4-RECVFROM", addr.to_owned())
        };
        let spec = format!("{kind}:{port},bind={addr},fork,reuseaddr");
        self.server("r", &["socat", "-b", "65536", &spec, "PIPE"]);
    }

    /// Run a command in namespace `n`.
    fn exec(&self, n: &str, args: &[&str]) -> std::process::Output {
        let ns = self.ns(n);
        let mut all = vec!["netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A seeded byte pattern (xorshift).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Send `data` from `s` to `to` until the echo comes back (UDP may lose
/// the first datagrams while neighbours resolve); returns the echo's
/// sender.
fn round_trip(s: &UdpSocket, to: SocketAddr, data: &[u8]) -> SocketAddr {
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0u8; 70_000];
    // Generous: the suite's other tests load the machine meanwhile.
    for _ in 0..20 {
        s.send_to(data, to)
            .unwrap_or_else(|e| panic!("send {} bytes to {to}: {e}", data.len()));
        loop {
            match s.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if buf[..n] == *data {
                        return from;
                    }
                    // An echo of an earlier retry with other content.
                    assert!(n != data.len() || from != to, "echo from {to} differs");
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("recv from {to}: {e}"),
            }
        }
    }
    panic!("no echo of {} bytes from {to}", data.len());
}

/// Datagram sizes: tiny to near the guest's MTU (65520) and IPv4's limit.
const SIZES: [usize; 8] = [1, 2, 100, 1472, 1473, 9000, 32768, 65000];

#[test]
fn udp_namespace_to_remote_echo_both_families() {
    if !can_run("udp_namespace_to_remote_echo_both_families") {
        return;
    }
    let mut t = Topo::new("a", &[]);
    t.remote_echo("198.51.100.1", 5200);
    t.remote_echo("2001:db8:3::1", 5200);
    thread::sleep(Duration::from_millis(300));
    for (bind, to) in [
        ("0.0.0.0:0", "198.51.100.1:5200"),
        ("[::]:0", "[2001:db8:3::1]:5200"),
    ] {
        let to: SocketAddr = to.parse().unwrap();
        t.within("g", move || {
            let s = UdpSocket::bind(bind).unwrap();
            for (i, n) in SIZES.iter().enumerate() {
                let from = round_trip(&s, to, &pattern(i as u64 + 1, *n));
                assert_eq!(from, to, "echo of {n} bytes came from elsewhere");
            }
            // Several datagrams in flight at once, all echoed.
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut want: Vec<Vec<u8>> = (0..32).map(|i| pattern(100 + i, 500)).collect();
            for d in &want {
                s.send_to(d, to).unwrap();
            }
            let mut buf = [0u8; 2048];
            let mut got = Vec::new();
            while got.len() < want.len() {
                match s.recv_from(&mut buf) {
                    Ok((k, _)) => got.push(buf[..k].to_vec()),
                    Err(_) => break,
                }
            }
            got.sort();
            want.sort();
            got.dedup();
            assert!(
                got.len() >= 30 && got.iter().all(|d| want.contains(d)),
                "burst to {to}: {} of 32 echoed, or content differs",
                got.len()
            );
        });
    }
    // socat as the namespace's client too: one line there and back.
    for to in ["UDP4:198.51.100.1:5200", "UDP6:[2001:db8:3::1]:5200"] {
        let o = t.exec(
            "g",
            &[
                "sh",
                "-c",
                &format!("echo hello-through-pasta | socat -t 2 - {to}"),
            ],
        );
        assert_eq!(
            stdout(&o).trim(),
            "hello-through-pasta",
            "socat via {to}: {o:?}\n{}",
            t.g.log()
        );
    }
}

/// A UDP echo server on a thread in the guest: answers `count` datagrams
/// (or stops after 10 s of silence).
fn guest_echo(t: &Topo, bind: &'static str, count: usize) -> thread::JoinHandle<usize> {
    let s = t.within("g", move || UdpSocket::bind(bind).expect("bind in guest"));
    thread::spawn(move || {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 70_000];
        let mut n = 0;
        while n < count {
            let Ok((k, from)) = s.recv_from(&mut buf) else {
                break;
            };
            s.send_to(&buf[..k], from).expect("guest echo send");
            n += 1;
        }
        n
    })
}

#[test]
fn udp_forwarded_ports_reach_the_namespace() {
    if !can_run("udp_forwarded_ports_reach_the_namespace") {
        return;
    }
    // 8200 as is, host 8201 to namespace 8202.
    let t = Topo::new("b", &["-u", "8200", "-u", "8201:8202"]);
    // Dual-stack sockets: IPv4 senders appear as mapped addresses.
    let _e = guest_echo(&t, "[::]:8200", usize::MAX);
    let _m = guest_echo(&t, "[::]:8202", usize::MAX);
    thread::sleep(Duration::from_millis(300));
    let cases = [
        ("h", "127.0.0.1:8200", "0.0.0.0:0"),
        ("h", "[::1]:8200", "[::]:0"),
        ("h", "127.0.0.1:8201", "0.0.0.0:0"),
        ("h", "[::1]:8201", "[::]:0"),
        ("r", "203.0.113.2:8200", "0.0.0.0:0"),
        ("r", "[2001:db8:2::2]:8201", "[::]:0"),
        ("r", "203.0.113.2:8201", "0.0.0.0:0"),
    ];
    for (i, (ns, to, bind)) in cases.into_iter().enumerate() {
        let to: SocketAddr = to.parse().unwrap();
        t.within(ns, move || {
            let s = UdpSocket::bind(bind).unwrap();
            for (j, n) in [1usize, 1000, 1472, 9000, 60000].iter().enumerate() {
                let from = round_trip(&s, to, &pattern((i * 10 + j) as u64, *n));
                assert_eq!(from, to, "reply to {ns} came from {from}, not {to}");
            }
        });
    }
    // socat from the host and from the remote side, content checked.
    for (ns, to) in [
        ("h", "UDP4:127.0.0.1:8201"),
        ("r", "UDP6:[2001:db8:2::2]:8200"),
    ] {
        let o = t.exec(
            ns,
            &[
                "sh",
                "-c",
                &format!("echo forwarded-{ns} | socat -t 2 - {to}"),
            ],
        );
        assert_eq!(
            stdout(&o).trim(),
            format!("forwarded-{ns}"),
            "socat {ns} -> {to}: {o:?}\n{}",
            t.g.log()
        );
    }
}

/// A `-u` rule's target address (`0.0.0.0/8210:192.0.2.6`, the 2026
/// syntax): datagrams reach that address in the namespace, not the
/// namespace's own, from the remote side and from the host's loopback,
/// and the replies come back from the address the sender used.
#[test]
fn udp_target_address_of_a_port_spec_is_where_datagrams_land() {
    if !can_run("udp_target_address_of_a_port_spec_is_where_datagrams_land") {
        return;
    }
    let t = Topo::new("ua", &["-u", "0.0.0.0/8210:192.0.2.6"]);
    t.g.prepare(&["ip", "addr", "add", "192.0.2.6/32", "dev", "lo"]);
    // Each server answers with its own name and the datagram.
    for (addr, name) in [("192.0.2.6:8210", "target"), ("203.0.113.2:8210", "own")] {
        let s = t.within("g", move || UdpSocket::bind(addr).expect(addr));
        thread::spawn(move || {
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let mut buf = [0u8; 2048];
            while let Ok((k, from)) = s.recv_from(&mut buf) {
                let mut out = name.as_bytes().to_vec();
                out.push(b':');
                out.extend_from_slice(&buf[..k]);
                let _ = s.send_to(&out, from);
            }
        });
    }
    for (ns, to) in [("r", "203.0.113.2:8210"), ("h", "127.0.0.1:8210")] {
        let to: SocketAddr = to.parse().unwrap();
        let got = t.within(ns, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 2048];
            for _ in 0..20 {
                s.send_to(b"hello-8210", to).unwrap();
                if let Ok((k, from)) = s.recv_from(&mut buf) {
                    return Some((buf[..k].to_vec(), from));
                }
            }
            None
        });
        let (data, from) = got.unwrap_or_else(|| panic!("no reply via {ns}:\n{}", t.g.log()));
        assert_eq!(data, b"target:hello-8210", "via {ns}");
        assert_eq!(from, to, "reply via {ns} came from {from}");
    }
}

/// A DNS query for `name` of `qtype` (1 = A, 28 = AAAA).
fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// The answers' RDATA of a DNS response to a query of `qlen` bytes (no
/// compression in the question assumed; answers use a name pointer or a
/// full name).
fn dns_answers(resp: &[u8], id: u16, qlen: usize) -> Vec<Vec<u8>> {
    assert!(resp.len() >= qlen, "short DNS response");
    assert_eq!(u16::from_be_bytes([resp[0], resp[1]]), id, "DNS id");
    assert_eq!(resp[3] & 0x0f, 0, "DNS rcode");
    let an = u16::from_be_bytes([resp[6], resp[7]]);
    let mut at = qlen;
    let mut out = Vec::new();
    for _ in 0..an {
        // Name: pointer or labels.
        loop {
            let b = resp[at];
            if b & 0xc0 == 0xc0 {
                at += 2;
                break;
            }
            at += 1 + usize::from(b);
            if b == 0 {
                break;
            }
        }
        let rdlen = usize::from(u16::from_be_bytes([resp[at + 8], resp[at + 9]]));
        at += 10;
        out.push(resp[at..at + rdlen].to_vec());
        at += rdlen;
    }
    out
}

/// Start dnsmasq on the remote side, answering for `test.example`.
fn dnsmasq(t: &mut Topo) {
    let pid = t.g.dir.join("dnsmasq.pid");
    let pid = pid.to_str().unwrap().to_owned();
    t.server(
        "r",
        &[
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--user=root",
            &format!("--pid-file={pid}"),
            &format!("--listen-address={DNS4}"),
            &format!("--listen-address={DNS6}"),
            "--address=/test.example/192.0.2.99",
            "--address=/test.example/2001:db8:99::99",
        ],
    );
    thread::sleep(Duration::from_millis(500));
}

/// Resolve `test.example` (A and AAAA) through both forward addresses from
/// the guest; the answers come from the forward addresses and carry
/// dnsmasq's entries.
fn resolve_through_forward(t: &Topo) {
    let v6: std::net::Ipv6Addr = "2001:db8:99::99".parse().unwrap();
    for (i, (fwd, qtype, want)) in [
        (FWD4, 1u16, vec![192u8, 0, 2, 99]),
        (FWD4, 28, v6.octets().to_vec()),
        (FWD6, 28, v6.octets().to_vec()),
        (FWD6, 1, vec![192u8, 0, 2, 99]),
    ]
    .into_iter()
    .enumerate()
    {
        let (to, bind) = if fwd.contains(':') {
            (format!("[{fwd}]:53"), "[::]:0")
        } else {
            (format!("{fwd}:53"), "0.0.0.0:0")
        };
        let to: SocketAddr = to.parse().unwrap();
        let id = 0x4200 + i as u16;
        let q = dns_query(id, "test.example", qtype);
        let qlen = q.len();
        let (from, resp) = t.within("g", move || {
            let s = UdpSocket::bind(bind).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = [0u8; 1500];
            for _ in 0..5 {
                s.send_to(&q, to).unwrap();
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    return (from, buf[..n].to_vec());
                }
            }
            panic!("no DNS answer from {to}");
        });
        assert_eq!(from, to, "the answer must come from the forward address");
        let answers = dns_answers(&resp, id, qlen);
        assert_eq!(answers, vec![want], "answer of type {qtype} via {fwd}");
    }
}

/// The same over TCP (RFC 1035 §4.2.2: a two-byte length before each
/// message): a connection from the guest to port 53 of each forward
/// address reaches the host's resolver (the remote dnsmasq), as UDP does.
fn resolve_over_tcp_through_forward(t: &Topo) {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let v6: std::net::Ipv6Addr = "2001:db8:99::99".parse().unwrap();
    for (i, (fwd, qtype, want)) in [
        (FWD4, 1u16, vec![192u8, 0, 2, 99]),
        (FWD6, 28, v6.octets().to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        let to: SocketAddr = if fwd.contains(':') {
            format!("[{fwd}]:53")
        } else {
            format!("{fwd}:53")
        }
        .parse()
        .unwrap();
        let id = 0x5300 + i as u16;
        let q = dns_query(id, "test.example", qtype);
        let qlen = q.len();
        let (peer, resp) = t.within("g", move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("TCP DNS to {to}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut msg = (q.len() as u16).to_be_bytes().to_vec();
            msg.extend_from_slice(&q);
            s.write_all(&msg).unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).expect("TCP DNS answer length");
            let mut resp = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut resp).expect("TCP DNS answer");
            (s.peer_addr().unwrap(), resp)
        });
        assert_eq!(peer, to, "the connection is to the forward address");
        let answers = dns_answers(&resp, id, qlen);
        assert_eq!(answers, vec![want], "TCP answer of type {qtype} via {fwd}");
    }
}

/// The resolvers DHCP and DHCPv6 give the guest (with `--config-net`
/// pasta sends no router advertisement, as the original: no RDNSS).
fn offered_resolvers(t: &Topo) -> (String, Vec<String>) {
    let lease = clients::udhcpc(&t.g, 5).expect("DHCP lease");
    // Thirty seconds: dhclient -6 waits up to a second before soliciting
    // and retransmits slowly; a loaded machine took more than 15 s once.
    let lease6 = clients::dhclient(&t.g, "-6", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no DHCPv6 lease\n{}", t.g.log()));
    let dns6 = lease6
        .get("new_dhcp6_name_servers")
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    (lease["dns"].clone(), dns6)
}

#[test]
fn dns_forward_reaches_the_hosts_resolver() {
    if !can_run("dns_forward_reaches_the_hosts_resolver") {
        return;
    }
    // The host's resolvers are reachable from the guest as they are: the
    // guest is told about them unchanged, and the forward addresses map to
    // the first one of each family.
    let mut t = Topo::new(
        "c",
        &["--dhcp-dns", "--dns-forward", FWD4, "--dns-forward", FWD6],
    );
    dnsmasq(&mut t);
    resolve_through_forward(&t);
    resolve_over_tcp_through_forward(&t);
    let (dns4, dns6) = offered_resolvers(&t);
    assert_eq!(dns4, DNS4, "DHCP resolvers");
    assert_eq!(dns6, [DNS6], "DHCPv6 resolvers");
}

#[test]
fn dns_forward_stands_for_a_loopback_resolver() {
    if !can_run("dns_forward_stands_for_a_loopback_resolver") {
        return;
    }
    // A loopback resolver the guest cannot reach is offered as the forward
    // address; --dns-host sends the forwarded queries to the remote one.
    let mut t = Topo::with_resolv(
        "f",
        &[
            "--dhcp-dns",
            "--dns-forward",
            FWD4,
            "--dns-forward",
            FWD6,
            "--dns-host",
            DNS4,
            "--dns-host",
            DNS6,
        ],
        "nameserver 127.0.0.53\nnameserver ::1\n",
    );
    dnsmasq(&mut t);
    resolve_through_forward(&t);
    resolve_over_tcp_through_forward(&t);
    let (dns4, dns6) = offered_resolvers(&t);
    assert_eq!(dns4, FWD4, "DHCP resolvers");
    assert_eq!(dns6, [FWD6], "DHCPv6 resolvers");
}

/// `ping` (or `ping -6`) in the guest: `1 received` and the reply's source.
fn ping(t: &Topo, v6: bool, to: &str) {
    let mut args = vec!["ping", "-c", "1", "-W", "2", "-s", "200"];
    if v6 {
        args.push("-6");
    }
    args.push(to);
    let mut last = String::new();
    for _ in 0..3 {
        let o = t.exec("g", &args);
        last = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
        if last.contains("1 received") {
            assert!(
                last.contains(&format!("208 bytes from {to}:")),
                "reply to ping {to} from elsewhere: {last}"
            );
            return;
        }
    }
    panic!("ping {to}: {last}\n{}", t.g.log());
}

#[test]
fn ping_gateway_and_remote_both_families() {
    if !can_run("ping_gateway_and_remote_both_families") {
        return;
    }
    let t = Topo::new("d", &[]);
    // The gateway is the host's loopback; the others are remote.
    ping(&t, false, "203.0.113.1");
    ping(&t, false, "198.51.100.1");
    ping(&t, true, "2001:db8:2::1");
    ping(&t, true, "2001:db8:3::1");
}

#[test]
fn udp_closed_remote_port_is_refused() {
    if !can_run("udp_closed_remote_port_is_refused") {
        return;
    }
    let t = Topo::new("e", &[]);
    for (bind, to) in [
        ("0.0.0.0:0", "198.51.100.1:5250"),
        ("[::]:0", "[2001:db8:3::1]:5250"),
    ] {
        let to: SocketAddr = to.parse().unwrap();
        let err = t.within("g", move || {
            let s = UdpSocket::bind(bind).unwrap();
            s.connect(to).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let mut buf = [0u8; 64];
            let mut last = None;
            for _ in 0..5 {
                if let Err(e) = s.send(b"anyone there?") {
                    last = Some(e.kind());
                    if e.kind() == ErrorKind::ConnectionRefused {
                        break;
                    }
                    continue;
                }
                match s.recv(&mut buf) {
                    Err(e) => {
                        last = Some(e.kind());
                        if e.kind() == ErrorKind::ConnectionRefused {
                            break;
                        }
                    }
                    Ok(n) => panic!("{n} bytes from closed port {to}"),
                }
                // ICMP errors are rate limited: wait a little between tries.
                thread::sleep(Duration::from_millis(300));
            }
            last
        });
        assert_eq!(
            err,
            Some(ErrorKind::ConnectionRefused),
            "to {to}:\n{}",
            t.g.log()
        );
    }
}

/// Datagrams of a burst, and their size: 48 KiB in 8 KiB datagrams.
const BURST: usize = 6;
const BURST_LEN: usize = 8192;

/// Receive up to `count` datagrams on `s` (each within 5 s of the last);
/// what came, in order.
fn collect(s: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut got = Vec::new();
    while got.len() < count {
        match s.recv_from(&mut buf) {
            Ok((n, _)) => got.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    got
}

/// Send a burst of [`BURST`] datagrams of [`BURST_LEN`] bytes from a socket
/// bound to `bind` in namespace `from` to `to`, back to back, and receive
/// them on `rx` (bound in its namespace by the caller); every datagram
/// must arrive whole and in order. `round` seeds the content.
fn burst(t: &Topo, from: &str, bind: &'static str, to: &'static str, rx: UdpSocket, round: u64) {
    let to: SocketAddr = to.parse().unwrap();
    // One warm-up datagram first: neighbour resolution on the tap may
    // hold or drop the very first frames, which is not what this checks.
    t.within(from, move || {
        let s = UdpSocket::bind(bind).unwrap();
        s.send_to(b"warm-up", to).unwrap();
    });
    let first = collect(&rx, 1);
    assert_eq!(
        first,
        vec![b"warm-up".to_vec()],
        "warm-up {from} {bind} -> {to}\nhost sockets:\n{}\n{}",
        stdout(&t.exec("h", &["ss", "-uanp"])),
        t.g.log()
    );
    let r = thread::spawn(move || collect(&rx, BURST));
    t.within(from, move || {
        let s = UdpSocket::bind(bind).unwrap();
        for i in 0..BURST {
            let n = s
                .send_to(&pattern(round * 100 + i as u64, BURST_LEN), to)
                .unwrap();
            assert_eq!(n, BURST_LEN);
        }
    });
    let got = r.join().unwrap();
    let lens: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(
        lens,
        vec![BURST_LEN; BURST],
        "{from} {bind} -> {to}: {} of {} bytes arrived\n{}",
        lens.iter().sum::<usize>(),
        BURST * BURST_LEN,
        t.g.log()
    );
    for (i, d) in got.iter().enumerate() {
        assert!(
            *d == pattern(round * 100 + i as u64, BURST_LEN),
            "{from} {bind} -> {to}: datagram {i} differs"
        );
    }
}

#[test]
fn udp_bursts_of_large_datagrams_arrive_whole_both_ways_both_families() {
    if !can_run("udp_bursts_of_large_datagrams_arrive_whole_both_ways_both_families") {
        return;
    }
    // -u 8210 into the namespace; -U 8211 from the namespace's loopback to
    // the host's; 8212 on the host's loopback, reached from the namespace
    // through the gateway address (mapped to the host's loopback).
    let t = Topo::new("g", &["-u", "8210", "-U", "8211"]);
    let mut round = 0;
    // Host -> namespace, from the host's own addresses and its loopback.
    for (from, to, rx_bind) in [
        ("[2001:db8:2::2]:0", "[2001:db8:2::2]:8210", "[::]:8210"),
        ("203.0.113.2:0", "203.0.113.2:8210", "0.0.0.0:8210"),
        ("[::1]:0", "[::1]:8210", "[::]:8210"),
        ("127.0.0.1:0", "127.0.0.1:8210", "0.0.0.0:8210"),
    ] {
        round += 1;
        let rx = t.within("g", move || bind(rx_bind));
        burst(&t, "h", from, to, rx, round);
    }
    // Namespace -> host: through the tap to the gateway (the host's
    // loopback), and through -U from the namespace's loopback.
    for (from, to, rx_bind) in [
        ("[::]:0", "[2001:db8:2::1]:8212", "[::1]:8212"),
        ("0.0.0.0:0", "203.0.113.1:8212", "127.0.0.1:8212"),
        ("[::1]:0", "[::1]:8211", "[::1]:8211"),
        ("127.0.0.1:0", "127.0.0.1:8211", "127.0.0.1:8211"),
    ] {
        round += 1;
        let rx = t.within("h", move || bind(rx_bind));
        burst(&t, "g", from, to, rx, round);
    }
}

/// A UDP socket bound to `addr`.
fn bind(addr: &str) -> UdpSocket {
    UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

#[test]
fn a_foreground_pastas_pid_file_appears_only_once_its_forwarded_ports_are_bound() {
    if !can_run("a_foreground_pastas_pid_file_appears_only_once_its_forwarded_ports_are_bound") {
        return;
    }
    // The namespace is configured (tap up, addressed, routed) before the
    // listeners are made: what says they are there is the PID file. Seen
    // as a lost `-u` datagram, sent as soon as the namespace was ready.
    let mut g = Guest::on_own("udppid", HostKind::Full);
    let pid = g.dir.join("pasta.pid");
    let pid_s = pid.to_str().expect("utf-8 path").to_owned();
    g.start_pasta(&["--config-net", "-P", &pid_s, "-u", "8213", "-t", "8214"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let written = loop {
        if let Some(s) = std::fs::read_to_string(&pid)
            .ok()
            .filter(|s| s.ends_with('\n'))
        {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no PID file:\n{}",
            g.log()
        );
        thread::sleep(Duration::from_millis(1));
    };
    // At once: every listener is bound already, both families.
    let h = g.host().name.clone();
    let ss = stdout(&run("ip", &["netns", "exec", &h, "ss", "-Hlnut"]));
    for (proto, at) in [
        ("udp", "0.0.0.0:8213"),
        ("udp", "[::]:8213"),
        ("tcp", "0.0.0.0:8214"),
        ("tcp", "[::]:8214"),
    ] {
        assert!(
            ss.lines()
                .any(|l| l.starts_with(proto) && l.split_whitespace().any(|w| w == at)),
            "{proto} {at} not bound when the PID file appeared:\n{ss}\n{}",
            g.log()
        );
    }
    assert_eq!(
        written.trim().parse::<u32>().ok(),
        g.pasta_pid(),
        "PID file {written:?}"
    );
}
