//! pasta's loopback fast path end to end: a connection from the host's
//! loopback to a `-t` port is spliced to the namespace's loopback, between
//! two kernel sockets, without frames; with `--no-splice` it goes through
//! the tap as any other. On the simulated host of tests/tcp.rs; the
//! namespace's servers listen on its loopback only (`127.0.0.1`, `::1`),
//! which only the splice path reaches. Every transfer's content is
//! checked; the pcap of the tap shows no frame of a spliced connection.
//! Ports 8150-8159.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use crate::support::{can_run, run, stdout, wait_for};
use crate::tcp::{connect, digest, digest_reader, echo_server, ensure_socat, pattern, Topo};

/// Both ways at once: the namespace's server sends its own pattern while it
/// reads the client's; each side checks what it got by digest.
fn bulk_both_ways(t: &Topo, listen: &'static str, to: &'static str, len: usize) {
    let l = t
        .spawn("g", move || TcpListener::bind(listen).expect("bind"))
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
        .spawn("h", move || {
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
    assert_eq!(got, digest(&pattern(2, len)), "namespace -> host via {to}");
    assert_eq!(
        srv.join().unwrap(),
        digest(&pattern(1, len)),
        "host -> namespace via {to}"
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
/// ends the receiver's copy (half-close), and the files are equal.
fn socat_one_way(t: &Topo, port: u16, ns_sends: bool) {
    let dir = &t.g.dir;
    let src = dir.join(format!("in{port}"));
    let dst = dir.join(format!("out{port}"));
    std::fs::write(&src, pattern(u64::from(port), 5 << 20)).unwrap();
    let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let listen = format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr");
    let conn = format!("TCP:127.0.0.1:{port}");
    let open_src = format!("OPEN:{src}");
    let create_dst = format!("CREATE:{dst}");
    let (ns_args, host_args) = if ns_sends {
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
    let mut server = t.g.spawn(&ns_args);
    let listening = wait_for(Duration::from_secs(5), || {
        let ss = stdout(&t.g.exec(&["ss", "-Htln"]));
        ss.contains(&format!("127.0.0.1:{port}")).then_some(())
    });
    assert!(listening.is_some(), "socat did not listen on {port}");
    let o =
        t.g.host()
            .command(&host_args)
            .stdin(Stdio::null())
            .output()
            .expect("socat on the host");
    assert!(o.status.success(), "host socat: {o:?}");
    let done = wait_for(Duration::from_secs(20), || server.try_wait().ok().flatten());
    assert!(
        done.is_some_and(|s| s.success()),
        "namespace socat: {done:?}"
    );
    let o = run("cmp", &[src, dst]);
    assert!(o.status.success(), "cmp {src} {dst}: {o:?}");
}

#[test]
fn splice_loopback_bulk_half_close_and_short_connections_without_frames() {
    if !can_run("splice_loopback_bulk_half_close_and_short_connections_without_frames") {
        return;
    }
    ensure_socat();
    let t = Topo::capturing("sp", &["-t", "8150-8153"], true);
    // The listeners exist once pasta ran its start-up operations.
    thread::sleep(Duration::from_millis(300));
    bulk_both_ways(&t, "127.0.0.1:8150", "127.0.0.1:8150", 20 << 20);
    bulk_both_ways(&t, "[::1]:8151", "[::1]:8151", 20 << 20);
    socat_one_way(&t, 8152, false);
    socat_one_way(&t, 8153, true);

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

#[test]
fn splice_disabled_goes_through_the_tap() {
    if !can_run("splice_disabled_goes_through_the_tap") {
        return;
    }
    let t = Topo::capturing("ns", &["-t", "8155", "--no-splice"], true);
    thread::sleep(Duration::from_millis(300));
    // Through the tap the namespace sees the connection arrive at its own
    // address, so its server listens on every address.
    bulk_both_ways(&t, "0.0.0.0:8155", "127.0.0.1:8155", 2 << 20);
    let n = frames(&t, "tcp port 8155");
    assert!(n > 100, "only {n} frames of port 8155 in the pcap");
}
