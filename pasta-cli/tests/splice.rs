//! pasta's loopback fast path end to end: a connection from the host's
//! loopback to a `-t` port is spliced, between two kernel sockets and
//! without frames, to the namespace's own address (a server bound only to
//! the namespace's loopback is not reached), or with `--host-lo-to-ns-lo`
//! to the namespace's loopback; with `--no-splice` it goes through the tap
//! as any other. A connection from the namespace's loopback to a `-T` port
//! is spliced the other way, to the host's loopback: bulk both ways (IPv4
//! and IPv6), half-close, resets, many at once. On the simulated host of
//! tests/tcp.rs; most servers listen on a loopback only (`127.0.0.1`,
//! `::1`), which only the splice path reaches. Every transfer's content is
//! checked; the pcap of the tap shows no frame of a spliced connection.
//! Ports 8150-8169.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use crate::support::{can_run, run, stdout, wait_for};
use crate::tcp::{connect, digest, digest_reader, echo_server, ensure_socat, pattern, Topo};
use std::os::fd::AsFd;

/// Both ways at once: the server (in the namespace `srv`, "g" or "h")
/// sends its own pattern while it reads the client's (in the other one);
/// each side checks what it got by digest.
fn bulk_both_ways(t: &Topo, srv: &str, listen: &'static str, to: &'static str, len: usize) {
    let cli = if srv == "g" { "h" } else { "g" };
    let l = t
        .spawn(srv, move || TcpListener::bind(listen).expect("bind"))
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut w = s.try_clone().unwrap();
        let h = thread::spawn(move || {
            w.write_all(&pattern(2, len)).expect("server write");
            w.shutdown(Shutdown::Write).unwrap();
        });
        let d = digest_reader(&mut s);
        h.join().unwrap();
        d
    });
    let got = t
        .spawn(cli, move || {
            let c = connect(to.parse::<SocketAddr>().unwrap());
            let mut w = c.try_clone().unwrap();
            let h = thread::spawn(move || {
                w.write_all(&pattern(1, len)).expect("client write");
                w.shutdown(Shutdown::Write).unwrap();
            });
            let d = digest_reader(&mut &c);
            h.join().unwrap();
            d
        })
        .join()
        .unwrap();
    assert_eq!(got, digest(&pattern(2, len)), "server -> client via {to}");
    assert_eq!(
        srv.join().unwrap(),
        digest(&pattern(1, len)),
        "client -> server via {to}"
    );
}

/// Frames of the tap's pcap with a TCP port in `ports` (tcpdump filter).
fn frames(t: &Topo, filter: &str) -> usize {
    let pcap = t.g.dir.join("pasta.pcap");
    let o = run(
        "tcpdump",
        &["-nn", "-r", pcap.to_str().unwrap(), "--", filter],
    );
    assert!(o.status.success(), "tcpdump: {o:?}");
    stdout(&o).lines().count()
}

/// `socat -u` one way through the spliced port: the sender's end of file
/// ends the receiver's copy (half-close), and the files are equal. The
/// server listens in the namespace (`-t`), or on the host with `out`
/// (`-T`); `server_sends` says which way the bytes go.
fn socat_one_way(t: &Topo, port: u16, server_sends: bool, out: bool) {
    let dir = &t.g.dir;
    let src = dir.join(format!("in{port}"));
    let dst = dir.join(format!("out{port}"));
    std::fs::write(&src, pattern(u64::from(port), 5 << 20)).unwrap();
    let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let listen = format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr");
    let conn = format!("TCP:127.0.0.1:{port}");
    let open_src = format!("OPEN:{src}");
    let create_dst = format!("CREATE:{dst}");
    let (srv_args, cli_args) = if server_sends {
        (
            ["socat", "-u", &open_src, &listen],
            ["socat", "-u", &conn, &create_dst],
        )
    } else {
        (
            ["socat", "-u", &listen, &create_dst],
            ["socat", "-u", &open_src, &conn],
        )
    };
    let on_host = |args: &[&str]| {
        let mut c = t.g.host().command(args);
        c.stdin(Stdio::null());
        c
    };
    let mut server = if out {
        on_host(&srv_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat on the host")
    } else {
        t.g.spawn(&srv_args)
    };
    let listening = wait_for(Duration::from_secs(5), || {
        let o = if out {
            on_host(&["ss", "-Htln"]).output().expect("ss")
        } else {
            t.g.exec(&["ss", "-Htln"])
        };
        stdout(&o)
            .contains(&format!("127.0.0.1:{port}"))
            .then_some(())
    });
    assert!(listening.is_some(), "socat did not listen on {port}");
    let o = if out {
        t.g.exec(&cli_args)
    } else {
        on_host(&cli_args).output().expect("socat on the host")
    };
    assert!(o.status.success(), "client socat: {o:?}");
    let done = wait_for(Duration::from_secs(20), || server.try_wait().ok().flatten());
    assert!(done.is_some_and(|s| s.success()), "server socat: {done:?}");
    let o = run("cmp", &[src, dst]);
    assert!(o.status.success(), "cmp {src} {dst}: {o:?}");
}

#[test]
fn splice_loopback_bulk_half_close_and_short_connections_without_frames() {
    if !can_run("splice_loopback_bulk_half_close_and_short_connections_without_frames") {
        return;
    }
    ensure_socat();
    let t = Topo::capturing("sp", &["-t", "8150-8153", "--host-lo-to-ns-lo"], true);
    // The listeners exist once pasta ran its start-up operations.
    thread::sleep(Duration::from_millis(300));
    bulk_both_ways(&t, "g", "127.0.0.1:8150", "127.0.0.1:8150", 20 << 20);
    bulk_both_ways(&t, "g", "[::1]:8151", "[::1]:8151", 20 << 20);
    socat_one_way(&t, 8152, false, false);
    socat_one_way(&t, 8153, true, false);

    // Many short connections in a row, each echoed and compared.
    const N: usize = 500;
    let l = t
        .spawn("g", || TcpListener::bind("127.0.0.1:8150").unwrap())
        .join()
        .unwrap();
    let srv = thread::spawn(move || echo_server(l, N));
    let ok = t
        .spawn("h", || {
            (0..N).all(|i| {
                let data = pattern(i as u64 + 100, 1000 + i);
                let mut c = connect("127.0.0.1:8150".parse().unwrap());
                c.write_all(&data).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut back = Vec::new();
                c.read_to_end(&mut back).unwrap();
                back == data
            })
        })
        .join()
        .unwrap();
    assert!(ok, "a short spliced connection's echo differs");
    srv.join().unwrap();

    // Not one frame of any of these went through the tap.
    let n = frames(&t, "tcp portrange 8150-8153");
    assert_eq!(n, 0, "spliced connections left frames in the pcap");
    let log = t.g.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// Serve one connection per listener: write its name, then close.
fn greeters(t: &Topo, names: &[(&'static str, &'static str)]) -> Vec<thread::JoinHandle<()>> {
    names
        .iter()
        .map(|&(addr, name)| {
            let l = t
                .spawn("g", move || TcpListener::bind(addr).expect(addr))
                .join()
                .unwrap();
            l.set_nonblocking(false).unwrap();
            thread::spawn(move || {
                if let Ok((mut s, _)) = l.accept() {
                    let _ = s.write_all(name.as_bytes());
                }
            })
        })
        .collect()
}

/// What a connection from the host to `to` reads before end of file.
fn greeting(t: &Topo, to: &'static str) -> String {
    t.spawn("h", move || {
        let mut c = connect(to.parse().unwrap());
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    })
    .join()
    .unwrap()
}

/// A connection from the host's loopback lands on the namespace's own
/// address by default (the original's behaviour since 2024): a server the
/// namespace binds to its loopback only stays private, one on its address
/// is reached, still spliced (no frame on the tap). `--host-lo-to-ns-lo`
/// delivers it to the namespace's loopback instead.
#[test]
fn host_loopback_lands_on_the_namespace_address_unless_host_lo_to_ns_lo() {
    if !can_run("host_loopback_lands_on_the_namespace_address_unless_host_lo_to_ns_lo") {
        return;
    }
    let servers = [
        ("127.0.0.1:8156", "ns loopback v4"),
        ("203.0.113.2:8156", "ns address v4"),
        ("[::1]:8157", "ns loopback v6"),
        ("[2001:db8:2::2]:8157", "ns address v6"),
    ];
    let t = Topo::capturing("lo", &["-t", "8156-8157"], true);
    thread::sleep(Duration::from_millis(300));
    let hs = greeters(&t, &servers);
    assert_eq!(greeting(&t, "127.0.0.1:8156"), "ns address v4");
    assert_eq!(greeting(&t, "[::1]:8157"), "ns address v6");
    assert_eq!(frames(&t, "tcp portrange 8156-8157"), 0, "not spliced");
    // The loopback servers saw nothing: end them with a connection from
    // the namespace itself.
    for (addr, name) in [servers[0], servers[2]] {
        let got = t
            .spawn("g", move || {
                let mut c = connect(addr.parse().unwrap());
                let mut s = String::new();
                c.read_to_string(&mut s).unwrap();
                s
            })
            .join()
            .unwrap();
        assert_eq!(got, name, "{addr} was reached from the host");
    }
    hs.into_iter().for_each(|h| h.join().unwrap());
    drop(t);

    let t = Topo::capturing("lO", &["-t", "8156-8157", "--host-lo-to-ns-lo"], true);
    thread::sleep(Duration::from_millis(300));
    let _hs = greeters(&t, &servers);
    assert_eq!(greeting(&t, "127.0.0.1:8156"), "ns loopback v4");
    assert_eq!(greeting(&t, "[::1]:8157"), "ns loopback v6");
    assert_eq!(frames(&t, "tcp portrange 8156-8157"), 0, "not spliced");
}

#[test]
fn splice_disabled_goes_through_the_tap() {
    if !can_run("splice_disabled_goes_through_the_tap") {
        return;
    }
    let t = Topo::capturing("ns", &["-t", "8155", "--no-splice"], true);
    thread::sleep(Duration::from_millis(300));
    // Through the tap the namespace sees the connection arrive at its own
    // address, so its server listens on every address.
    bulk_both_ways(&t, "g", "0.0.0.0:8155", "127.0.0.1:8155", 2 << 20);
    let n = frames(&t, "tcp port 8155");
    // With the tap's offloads, 64 KiB super-frames carry the data: 2 MiB
    // each way is at least 32 data frames per direction.
    assert!(n > 64, "only {n} frames of port 8155 in the pcap");
}

/// A reset on either side of a `-T` connection reaches the other side as a
/// reset (not as an orderly end of file), and so does a refused connect
/// to the host.
fn resets_cross(t: &Topo, port: u16) {
    let listen = format!("127.0.0.1:{port}");
    let to: SocketAddr = listen.parse().unwrap();
    let l = t
        .spawn("h", move || TcpListener::bind(listen).expect("bind"))
        .join()
        .unwrap();
    let reset = |s: &std::net::TcpStream| {
        rustix::net::sockopt::set_socket_linger(s.as_fd(), Some(Duration::ZERO)).unwrap();
    };
    // The host's server resets: the namespace's client sees it.
    let l2 = l.try_clone().unwrap();
    let srv = thread::spawn(move || {
        let (s, _) = l2.accept().expect("accept");
        thread::sleep(Duration::from_millis(200));
        reset(&s);
    });
    let got = t
        .spawn("g", move || {
            let mut c = connect(to);
            c.write_all(b"hello").unwrap();
            let mut buf = [0u8; 16];
            c.read(&mut buf).map_err(|e| e.kind())
        })
        .join()
        .unwrap();
    srv.join().unwrap();
    assert_eq!(
        got,
        Err(std::io::ErrorKind::ConnectionReset),
        "server reset"
    );
    // The namespace's client resets: the host's server sees it.
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).map_err(|e| e.kind()).map(|_| v)
    });
    t.spawn("g", move || {
        let mut c = connect(to);
        c.write_all(b"bye").unwrap();
        thread::sleep(Duration::from_millis(200));
        reset(&c);
    })
    .join()
    .unwrap();
    let got = srv.join().unwrap();
    assert_eq!(
        got,
        Err(std::io::ErrorKind::ConnectionReset),
        "client reset"
    );
    // Nothing listens on the host any more (the listener went with the
    // server thread): the refused connect reaches the client as a reset.
    let got = t
        .spawn("g", move || {
            // The reset may come so soon after the handshake that the
            // non-blocking connect already reports it.
            let mut c =
                TcpStream::connect_timeout(&to, Duration::from_secs(10)).map_err(|e| e.kind())?;
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut buf = [0u8; 16];
            c.read(&mut buf).map_err(|e| e.kind())
        })
        .join()
        .unwrap();
    assert_eq!(got, Err(std::io::ErrorKind::ConnectionReset), "refused");
}

#[test]
fn splice_tcp_out_bulk_half_close_resets_and_many_connections_without_frames() {
    if !can_run("splice_tcp_out_bulk_half_close_resets_and_many_connections_without_frames") {
        return;
    }
    ensure_socat();
    let t = Topo::capturing("sT", &["-t", "none", "-T", "8160-8165"], true);
    // The namespace's listeners exist once pasta ran its start-up
    // operations, a little after the namespace is configured.
    let up = wait_for(Duration::from_secs(5), || {
        let ss = stdout(&t.g.exec(&["ss", "-Htln"]));
        (ss.contains("127.0.0.1:8165") && ss.contains("[::1]:8165")).then_some(())
    });
    assert!(up.is_some(), "no -T listeners:\n{}", t.g.log());
    bulk_both_ways(&t, "h", "127.0.0.1:8160", "127.0.0.1:8160", 20 << 20);
    bulk_both_ways(&t, "h", "[::1]:8161", "[::1]:8161", 20 << 20);
    socat_one_way(&t, 8162, false, true);
    socat_one_way(&t, 8163, true, true);
    resets_cross(&t, 8164);

    // Many at once, both families, each echoed and compared.
    const N: usize = 200;
    let ls = t
        .spawn("h", || {
            (
                TcpListener::bind("127.0.0.1:8165").unwrap(),
                TcpListener::bind("[::1]:8165").unwrap(),
            )
        })
        .join()
        .unwrap();
    let srv4 = thread::spawn(move || echo_server(ls.0, N / 2));
    let srv6 = thread::spawn(move || echo_server(ls.1, N / 2));
    let bad = t
        .spawn("g", || {
            thread::scope(|sc| {
                let hs: Vec<_> = (0..N)
                    .map(|i| {
                        sc.spawn(move || {
                            let to = if i % 2 == 0 {
                                "127.0.0.1:8165"
                            } else {
                                "[::1]:8165"
                            };
                            let data = pattern(i as u64 + 300, 20_000 + i * 37);
                            let mut c = connect(to.parse().unwrap());
                            c.write_all(&data).unwrap();
                            c.shutdown(Shutdown::Write).unwrap();
                            let mut back = Vec::new();
                            c.read_to_end(&mut back).unwrap();
                            back == data
                        })
                    })
                    .collect();
                hs.into_iter()
                    .enumerate()
                    .filter_map(|(i, h)| (!h.join().unwrap()).then_some(i))
                    .collect::<Vec<_>>()
            })
        })
        .join()
        .unwrap();
    assert!(bad.is_empty(), "echo differs on connections {bad:?}");
    srv4.join().unwrap();
    srv6.join().unwrap();

    let n = frames(&t, "tcp portrange 8160-8165");
    assert_eq!(n, 0, "spliced connections left frames in the pcap");
    let log = t.g.log();
    assert!(!log.contains("panicked"), "{log}");
}
