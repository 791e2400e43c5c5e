//! Port forwarding through pasta end to end, on the simulated host of
//! doc/TESTING.md (pasta in the "host" namespace, the guest namespace behind
//! its tap): `-t`/`-u` with remapped ports, `-T`/`-U` from the namespace to
//! servers on the host's loopback, `-t auto` picking up a listener started
//! after pasta, `-T auto`/`-U auto` picking up (and dropping) a host
//! listener started after pasta, and a taken port named at start-up.
//! Every transfer's content is compared. Ports 5300-5399.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{can_run, run, spawn_in, stderr, stdout, wait_for, Guest, HostKind, PASTA};

/// Start pasta with `--config-net` and `args`; wait for the guest's
/// addresses.
pub(crate) fn topo(tag: &str, args: &[&str]) -> Guest<'static> {
    let mut g = Guest::on_own(&format!("fwd{tag}"), HostKind::Full);
    g.prepare(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    g.prepare(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    let mut all = vec!["--config-net"];
    all.extend_from_slice(args);
    g.start_pasta_capturing(&all, false);
    let name = g.name.clone();
    let ready = wait_for(Duration::from_secs(10), || {
        let a = stdout(&run("ip", &["-n", &name, "-o", "addr", "show"]));
        (a.contains("203.0.113.2/") && !a.contains("tentative")).then_some(())
    });
    assert!(ready.is_some(), "guest not configured:\n{}", g.log());
    // pasta opens its sockets inside the namespace after configuring its
    // addresses: wait for those of `-T`/`-U` port lists as well.
    for pair in args.windows(2) {
        let ss = match pair[0] {
            "-T" => "-t",
            "-U" => "-u",
            _ => continue,
        };
        for item in pair[1].split(',') {
            let port = item.split(':').next().unwrap_or_default();
            if port.parse::<u16>().is_err() {
                continue;
            }
            wait_ns_bound(&g, ss, &format!("127.0.0.1:{port}"));
        }
    }
    g
}

/// A seeded byte pattern.
pub(crate) fn pattern(seed: u64, len: usize) -> Vec<u8> {
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

/// Echo server: each connection is read to end of file, written back and
/// closed.
fn echo_server(l: TcpListener, conns: usize) {
    for _ in 0..conns {
        let (mut s, _) = l.accept().expect("accept");
        let mut v = Vec::new();
        s.read_to_end(&mut v).expect("server read");
        s.write_all(&v).expect("server write");
    }
}

/// UDP echo of `n` datagrams.
fn udp_echo(s: UdpSocket, n: usize) {
    let mut buf = vec![0u8; 65536];
    for _ in 0..n {
        let (k, from) = s.recv_from(&mut buf).expect("udp recv");
        s.send_to(&buf[..k], from).expect("udp send");
    }
}

/// Send `data` to `to`, read the echo, compare.
fn echo_once(to: SocketAddr, data: &[u8]) -> Result<(), String> {
    let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5))
        .map_err(|e| format!("connect {to}: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut c2 = c.try_clone().unwrap();
    let d = data.to_vec();
    let w = thread::spawn(move || {
        c2.write_all(&d).expect("client write");
        c2.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back)
        .map_err(|e| format!("read {to}: {e}"))?;
    w.join().unwrap();
    if back == data {
        Ok(())
    } else {
        Err(format!(
            "{to}: echo of {} bytes differs ({} back)",
            data.len(),
            back.len()
        ))
    }
}

/// Datagrams to `to` come back unchanged.
fn udp_roundtrip(to: SocketAddr, n: usize) -> Result<(), String> {
    let local: SocketAddr = if to.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
    .parse()
    .unwrap();
    let s = UdpSocket::bind(local).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 65536];
    for i in 0..n {
        let d = pattern(i as u64 + 100, 1000 + i * 7);
        s.send_to(&d, to).map_err(|e| format!("send {to}: {e}"))?;
        let (k, _) = s
            .recv_from(&mut buf)
            .map_err(|e| format!("recv from {to}: {e}"))?;
        if buf[..k] != d[..] {
            return Err(format!("{to}: datagram {i} differs"));
        }
    }
    Ok(())
}

/// Echo servers of the host on `l`, `l6` (one connection each) and `u` (`n`
/// datagrams); from namespace `ns`, `data` to `127.0.0.1:tcp`, its first
/// `len6` bytes to `[::1]:tcp` and `n` datagrams to `127.0.0.1:udp`, each
/// echo compared.
fn echo_from_namespace(
    ns: &str,
    (l, l6, u): (TcpListener, TcpListener, UdpSocket),
    (tcp, udp): (u16, u16),
    data: Vec<u8>,
    len6: usize,
    n: usize,
) -> Result<(), String> {
    let srv = thread::spawn(move || echo_server(l, 1));
    let srv6 = thread::spawn(move || echo_server(l6, 1));
    let usrv = thread::spawn(move || udp_echo(u, n));
    let r = spawn_in(ns, move || {
        echo_once(SocketAddr::from(([127, 0, 0, 1], tcp)), &data)?;
        echo_once(
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, tcp)),
            &data[..len6],
        )?;
        udp_roundtrip(SocketAddr::from(([127, 0, 0, 1], udp)), n)
    })
    .join()
    .unwrap();
    if r.is_ok() {
        srv.join().unwrap();
        srv6.join().unwrap();
        usrv.join().unwrap();
    }
    r
}

#[test]
fn fwd_tcp_and_udp_remapped_host_to_namespace() {
    if !can_run("fwd_tcp_and_udp_remapped_host_to_namespace") {
        return;
    }
    let g = topo(
        "a",
        &[
            "-t",
            "5301:5302",
            "-u",
            "5303:5304",
            "-T",
            "none",
            "-U",
            "none",
        ],
    );
    let l = spawn_in(&g.name, || TcpListener::bind("0.0.0.0:5302").unwrap())
        .join()
        .unwrap();
    let u = spawn_in(&g.name, || UdpSocket::bind("0.0.0.0:5304").unwrap())
        .join()
        .unwrap();
    let srv = thread::spawn(move || echo_server(l, 1));
    let usrv = thread::spawn(move || udp_echo(u, 5));
    thread::sleep(Duration::from_millis(300));
    let data = pattern(1, 8 << 20);
    let r = spawn_in(&g.host().name, move || {
        echo_once("127.0.0.1:5301".parse().unwrap(), &data)?;
        udp_roundtrip("127.0.0.1:5303".parse().unwrap(), 5)
    })
    .join()
    .unwrap();
    assert!(r.is_ok(), "{r:?}\n{}", g.log());
    srv.join().unwrap();
    usrv.join().unwrap();
}

#[test]
fn fwd_tcp_and_udp_namespace_to_host_loopback() {
    if !can_run("fwd_tcp_and_udp_namespace_to_host_loopback") {
        return;
    }
    let g = topo(
        "b",
        &[
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "5311:5312",
            "-U",
            "5313:5314",
        ],
    );
    let h = g.host().name.clone();
    let l = spawn_in(&h, || TcpListener::bind("127.0.0.1:5312").unwrap())
        .join()
        .unwrap();
    let l6 = spawn_in(&h, || TcpListener::bind("[::1]:5312").unwrap())
        .join()
        .unwrap();
    let u = spawn_in(&h, || UdpSocket::bind("127.0.0.1:5314").unwrap())
        .join()
        .unwrap();
    let data = pattern(2, 8 << 20);
    let r = echo_from_namespace(&g.name, (l, l6, u), (5311, 5313), data, 100_000, 5);
    assert!(r.is_ok(), "{r:?}\n{}", g.log());
}

#[test]
fn fwd_tcp_auto_picks_up_a_later_listener() {
    if !can_run("fwd_tcp_auto_picks_up_a_later_listener") {
        return;
    }
    let g = topo("c", &["-t", "auto", "-T", "none"]);
    thread::sleep(Duration::from_millis(500));
    let l = spawn_in(&g.name, || TcpListener::bind("0.0.0.0:5321").unwrap())
        .join()
        .unwrap();
    let started = Instant::now();
    let srv = thread::spawn(move || echo_server(l, 1));
    let h = g.host().name.clone();
    let ok = wait_for(Duration::from_secs(2), || {
        let h = h.clone();
        spawn_in(&h, || {
            TcpListener::bind("127.0.0.1:5321").is_err().then_some(())
        })
        .join()
        .unwrap()
    });
    let took = started.elapsed();
    assert!(
        ok.is_some(),
        "host port 5321 not forwarded after 2 s\n{}",
        g.log()
    );
    eprintln!("-t auto: forwarded {took:?} after the listener started");
    let data = pattern(3, 1 << 20);
    let r = spawn_in(&h, move || {
        echo_once("127.0.0.1:5321".parse().unwrap(), &data)
    })
    .join()
    .unwrap();
    assert!(r.is_ok(), "{r:?}\n{}", g.log());
    srv.join().unwrap();
}

#[test]
fn fwd_taken_host_port_is_named() {
    if !can_run("fwd_taken_host_port_is_named") {
        return;
    }
    let g = Guest::on_own("fwdd", HostKind::Full);
    let h = g.host().name.clone();
    let _taken = spawn_in(&h, || TcpListener::bind("0.0.0.0:5331").unwrap())
        .join()
        .unwrap();
    let o = g
        .host()
        .command(&[PASTA, "--netns", &g.name, "-f", "-t", "5331"])
        .output()
        .expect("run pasta");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("port 5331") && err.contains("in use"), "{err}");
    assert!(
        !g.link().contains(&g.ifname) || g.link().is_empty(),
        "tap left behind"
    );
}

/// Whether namespace `ns` has a TCP (`-t` to ss) or UDP (`-u`) socket
/// bound to `addr` (as `ss` prints it).
fn ns_bound(ns: &str, proto: &str, addr: &str) -> bool {
    let o = run("ip", &["netns", "exec", ns, "ss", "-Hln", proto]);
    stdout(&o).split_whitespace().any(|w| w == addr)
}

#[test]
fn fwd_tcp_and_udp_out_auto_follow_host_listeners() {
    if !can_run("fwd_tcp_and_udp_out_auto_follow_host_listeners") {
        return;
    }
    let g = topo(
        "e",
        &["-t", "none", "-u", "none", "-T", "auto", "-U", "auto"],
    );
    thread::sleep(Duration::from_millis(500));
    assert!(!ns_bound(&g.name, "-t", "127.0.0.1:5341"));
    assert!(!ns_bound(&g.name, "-u", "127.0.0.1:5342"));
    let h = g.host().name.clone();
    let (l, l6, u) = spawn_in(&h, || {
        (
            TcpListener::bind("127.0.0.1:5341").unwrap(),
            TcpListener::bind("[::1]:5341").unwrap(),
            UdpSocket::bind("127.0.0.1:5342").unwrap(),
        )
    })
    .join()
    .unwrap();
    let started = Instant::now();
    // Within the scan interval (1 s) and a margin: both families of the
    // namespace's loopback for TCP, IPv4 for UDP.
    let name = g.name.clone();
    let ok = wait_for(Duration::from_secs(3), || {
        (ns_bound(&name, "-t", "127.0.0.1:5341")
            && ns_bound(&name, "-t", "[::1]:5341")
            && ns_bound(&name, "-u", "127.0.0.1:5342"))
        .then_some(())
    });
    assert!(
        ok.is_some(),
        "-T/-U auto: not forwarded after 3 s\n{}",
        g.log()
    );
    eprintln!(
        "-T/-U auto: forwarded {:?} after the listeners started",
        started.elapsed()
    );
    let data = pattern(4, 4 << 20);
    let r = echo_from_namespace(&g.name, (l, l6, u), (5341, 5342), data, 300_000, 3);
    assert!(r.is_ok(), "{r:?}\n{}", g.log());
    // The host's TCP listeners are gone (the echo servers returned and
    // dropped them): so are the namespace's, at the next scan.
    let gone = wait_for(Duration::from_secs(3), || {
        (!ns_bound(&name, "-t", "127.0.0.1:5341") && !ns_bound(&name, "-t", "[::1]:5341"))
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "-T auto: namespace port still bound\n{}",
        g.log()
    );
    let refused = spawn_in(&g.name, || {
        TcpStream::connect("127.0.0.1:5341").map_err(|e| e.kind())
    })
    .join()
    .unwrap();
    assert_eq!(
        refused.err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "connect after the host's listener closed"
    );
}

/// A UDP echo on the host's `s` until `stop`: every datagram goes back to
/// its sender unchanged. Returns how many it echoed.
fn udp_echo_until(s: UdpSocket, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> usize {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok((k, from)) = s.recv_from(&mut buf) {
            s.send_to(&buf[..k], from).expect("udp echo send");
            n += 1;
        }
    }
    n
}

/// From a new socket on the namespace's loopback, send one datagram of
/// each size in `sizes` to `to`, `rounds` times, each waiting for its echo
/// and comparing it (bytes, and that it comes from `to`).
fn udp_sizes(to: SocketAddr, seed: u64, sizes: &[usize], rounds: usize) -> Result<usize, String> {
    let local: SocketAddr = if to.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
    .parse()
    .unwrap();
    let s = UdpSocket::bind(local).map_err(|e| format!("bind {local}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut done = 0;
    for r in 0..rounds {
        for (i, &len) in sizes.iter().enumerate() {
            let d = pattern(seed * 1000 + (r * sizes.len() + i) as u64, len);
            s.send_to(&d, to)
                .map_err(|e| format!("send {len} to {to}: {e}"))?;
            let (k, from) = s
                .recv_from(&mut buf)
                .map_err(|e| format!("{len} bytes to {to} (round {r}): no echo: {e}"))?;
            if from != to {
                return Err(format!("echo of {len} bytes from {from}, not {to}"));
            }
            if buf[..k] != d[..] {
                return Err(format!(
                    "{to}: echo of {len} bytes (round {r}) differs ({k} bytes back)"
                ));
            }
            done += 1;
        }
    }
    Ok(done)
}

#[test]
fn fwd_udp_out_sizes_from_concurrent_senders_both_families() {
    if !can_run("fwd_udp_out_sizes_from_concurrent_senders_both_families") {
        return;
    }
    let g = topo(
        "f",
        &["-t", "none", "-u", "none", "-T", "none", "-U", "5351:5352"],
    );
    let h = g.host().name.clone();
    let (u4, u6) = spawn_in(&h, || {
        (
            UdpSocket::bind("127.0.0.1:5352").unwrap(),
            UdpSocket::bind("[::1]:5352").unwrap(),
        )
    })
    .join()
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let servers: Vec<_> = [u4, u6]
        .into_iter()
        .map(|u| {
            let stop = stop.clone();
            thread::spawn(move || udp_echo_until(u, stop))
        })
        .collect();
    wait_ns_bound(&g, "-u", "127.0.0.1:5351");
    wait_ns_bound(&g, "-u", "[::1]:5351");
    const SIZES: [usize; 3] = [1, 1400, 60_000];
    const ROUNDS: usize = 10;
    // Two IPv4 senders at once, and one on IPv6, each its own pattern.
    let clients: Vec<_> = [
        ("127.0.0.1:5351", 1u64),
        ("127.0.0.1:5351", 2),
        ("[::1]:5351", 3),
    ]
    .into_iter()
    .map(|(to, seed)| {
        let to: SocketAddr = to.parse().unwrap();
        spawn_in(&g.name, move || udp_sizes(to, seed, &SIZES, ROUNDS))
    })
    .collect();
    let results: Vec<Result<usize, String>> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let echoed: usize = servers.into_iter().map(|s| s.join().unwrap()).sum();
    for r in &results {
        assert_eq!(r, &Ok(SIZES.len() * ROUNDS), "{results:?}\n{}", g.log());
    }
    assert_eq!(echoed, 3 * SIZES.len() * ROUNDS);
}

/// Wait until pasta's socket on `addr` (TCP: `ss` = "-t", UDP: "-u") is
/// bound in the namespace.
fn wait_ns_bound(g: &Guest<'_>, ss: &str, addr: &str) {
    let name = g.name.clone();
    let bound = wait_for(Duration::from_secs(3), || {
        ns_bound(&name, ss, addr).then_some(())
    });
    assert!(bound.is_some(), "{addr} ({ss}) not bound\n{}", g.log());
}

/// Threads of process `pid` (entries of `/proc/PID/task`).
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn fwd_udp_out_starts_no_thread_per_sender() {
    if !can_run("fwd_udp_out_starts_no_thread_per_sender") {
        return;
    }
    let g = topo(
        "g",
        &["-t", "none", "-u", "none", "-T", "none", "-U", "5361:5362"],
    );
    let pid = g.pasta_pid().expect("pasta running");
    let h = g.host().name.clone();
    let u = spawn_in(&h, || UdpSocket::bind("127.0.0.1:5362").unwrap())
        .join()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        thread::spawn(move || udp_echo_until(u, stop))
    };
    let to: SocketAddr = "127.0.0.1:5361".parse().unwrap();
    wait_ns_bound(&g, "-u", "127.0.0.1:5361");
    // One sender first, so that anything made once is there already.
    let first = spawn_in(&g.name, move || udp_sizes(to, 9, &[100], 1))
        .join()
        .unwrap();
    assert_eq!(first, Ok(1), "{}", g.log());
    let before = threads_of(pid);
    assert!(before > 0, "no /proc/{pid}/task");
    // Fifty more senders, each with a socket of its own, all kept open
    // (their flows alive) while the threads are counted again.
    let r = spawn_in(&g.name, move || {
        let mut socks = Vec::new();
        for i in 0..50u64 {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let d = pattern(500 + i, 64);
            s.send_to(&d, to).map_err(|e| e.to_string())?;
            let mut buf = [0u8; 128];
            let (k, _) = s
                .recv_from(&mut buf)
                .map_err(|e| format!("sender {i}: no echo: {e}"))?;
            if buf[..k] != d[..] {
                return Err(format!("sender {i}: echo differs"));
            }
            socks.push(s);
        }
        Ok(socks)
    })
    .join()
    .unwrap();
    let after = threads_of(pid);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let echoed = server.join().unwrap();
    let socks = r.unwrap_or_else(|e| panic!("{e}\n{}", g.log()));
    assert_eq!(socks.len(), 50);
    assert_eq!(echoed, 51);
    assert_eq!(
        after, before,
        "pasta's threads went from {before} to {after} over 50 senders"
    );
}
