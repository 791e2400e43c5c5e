//! TCP through pasta end to end, on the simulated host of doc/TESTING.md:
//!
//! ```text
//! remote netns  203.0.113.1/24, 2001:db8:2::1/64; servers on 198.51.100.1 and 2001:db8:3::1
//!   | veth
//! host netns    203.0.113.2/24, 2001:db8:2::2/64, default routes via the remote; pasta runs here
//!   | tap (pasta -f -d --config-net, named after the host's veth0)
//! guest netns   the host's addresses and routes, as pasta copies them
//! ```
//!
//! Clients and servers are threads of the test process that entered a
//! namespace with `setns(CLONE_NEWNET)`. Every transfer's content is checked
//! (a hash of a seeded pattern compared on the far side, or the echo compared
//! byte for byte). Ports 5100-5199 and 8100-8199.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{can_run, run, stdout, wait_for, Guest, HostKind};

/// A simulated host (doc/TESTING.md's, with servers on the remote side) with
/// pasta serving a guest namespace.
pub(crate) struct Topo {
    pub(crate) g: Guest<'static>,
    /// Unique prefix for scratch files.
    pub(crate) p: String,
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
    pub(crate) fn new(tag: &str, pasta_args: &[&str]) -> Topo {
        Topo::capturing(tag, pasta_args, false)
    }

    /// As [`Topo::new`]; with `capture`, pasta writes a pcap file of its
    /// tap traffic (`pasta.pcap` in the guest's scratch directory).
    pub(crate) fn capturing(tag: &str, pasta_args: &[&str], capture: bool) -> Topo {
        Topo::wrapped(tag, &[], pasta_args, capture)
    }

    /// As [`Topo::capturing`], pasta run by `wrap` (see
    /// [`Guest::start_pasta_wrapped`]).
    pub(crate) fn wrapped(tag: &str, wrap: &[&str], pasta_args: &[&str], capture: bool) -> Topo {
        raise_nofile();
        let mut g = Guest::on_own(&format!("tcp{tag}"), HostKind::Full);
        let r = g.host().remote().expect("a remote side").to_owned();
        // The servers' addresses, routed by the host via the remote side.
        ip(&["-n", &r, "addr", "add", "198.51.100.1/32", "dev", "lo"]);
        ip(&["-n", &r, "addr", "add", "2001:db8:3::1/128", "dev", "lo"]);
        g.prepare(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        g.prepare(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
        let mut args = vec!["--config-net"];
        args.extend_from_slice(pasta_args);
        g.start_pasta_wrapped(wrap, &args, capture);
        // The guest has the host's addresses (IPv6 past any DAD) and
        // routes.
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
        let p = g.name.clone();
        Topo { g, p }
    }

    fn ns(&self, n: &str) -> String {
        match n {
            "r" => self.g.host().remote().expect("remote").to_owned(),
            "h" => self.g.host().name.clone(),
            _ => self.g.name.clone(),
        }
    }

    /// Run `f` on a thread inside namespace `n` ("r", "h" or "g").
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        n: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        crate::support::spawn_in(&self.ns(n), f)
    }
}

/// Let this process (and pasta, its child) have enough descriptors for a
/// thousand connections on each side.
fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    let want = 65536u64.min(l.maximum.unwrap_or(65536));
    if l.current.is_some_and(|c| c < want) {
        l.current = Some(want);
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// Check that socat is there (the half-close check uses it).
pub(crate) fn ensure_socat() {
    crate::support::require(&[("socat", "socat")]);
}

/// A seeded byte pattern (xorshift), so each side can produce and check it.
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

/// FNV-1a over a stream, with its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digest(pub(crate) u64, pub(crate) u64);

pub(crate) fn digest_reader(r: &mut impl Read) -> Digest {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = r.read(&mut buf).expect("read");
        if k == 0 {
            return Digest(h, n);
        }
        for b in &buf[..k] {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        n += k as u64;
    }
}

pub(crate) fn digest(b: &[u8]) -> Digest {
    digest_reader(&mut &b[..])
}

/// Echo server: for each connection read to end of file, then write it all
/// back and close (a half-close both ways).
pub(crate) fn echo_server(l: TcpListener, conns: usize) {
    let mut hs = Vec::new();
    for _ in 0..conns {
        let (mut s, _) = l.accept().expect("accept");
        hs.push(thread::spawn(move || {
            let mut v = Vec::new();
            s.read_to_end(&mut v).expect("server read");
            s.write_all(&v).expect("server write");
        }));
    }
    for h in hs {
        h.join().expect("server thread");
    }
}

pub(crate) fn connect(to: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&to, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn bulk_both_ways(t: &Topo, remote: &'static str, port: u16) {
    bulk_both_ways_len(t, remote, port, 50 << 20);
}

/// `len` bytes namespace -> `remote:port`, then `len` bytes
/// `remote:port+1` -> namespace, each checked by digest.
fn bulk_both_ways_len(t: &Topo, remote: &'static str, port: u16, len: usize) {
    // Namespace -> remote: the server reports what it got.
    let l = t.spawn("r", move || {
        TcpListener::bind(format!("{remote}:{port}")).expect("bind")
    });
    let l = l.join().unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let d = digest_reader(&mut s);
        (d, s)
    });
    let data = pattern(u64::from(port), len);
    let want = digest(&data);
    let to: SocketAddr = format!("{remote}:{port}").parse().unwrap();
    let start = Instant::now();
    t.spawn("g", move || {
        let mut c = connect(to);
        c.write_all(&data).expect("send");
        c.shutdown(Shutdown::Write).unwrap();
    })
    .join()
    .unwrap();
    let (got, _) = srv.join().unwrap();
    assert_eq!(got, want, "namespace -> {remote}: content differs");
    eprintln!("{len} bytes namespace -> {remote}: {:?}", start.elapsed());

    // Remote -> namespace.
    let l = t
        .spawn("r", move || {
            TcpListener::bind(format!("{remote}:{}", port + 1)).expect("bind")
        })
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&pattern(7, len)).unwrap();
    });
    let to: SocketAddr = format!("{remote}:{}", port + 1).parse().unwrap();
    let start = Instant::now();
    let got = t
        .spawn("g", move || digest_reader(&mut connect(to)))
        .join()
        .unwrap();
    srv.join().unwrap();
    assert_eq!(
        got,
        digest(&pattern(7, len)),
        "{remote} -> namespace: content differs"
    );
    eprintln!("{len} bytes {remote} -> namespace: {:?}", start.elapsed());
}

#[test]
fn tcp_bulk_and_small_transfers_both_families() {
    if !can_run("tcp_bulk_and_small_transfers_both_families") {
        return;
    }
    let t = Topo::new("a", &[]);
    bulk_both_ways(&t, "198.51.100.1", 5100);
    bulk_both_ways(&t, "[2001:db8:3::1]", 5102);
    // Small transfers, echoed: 1 byte to 100 KiB, both families.
    for (remote, port) in [("198.51.100.1", 5110u16), ("[2001:db8:3::1]", 5111)] {
        let sizes = [1usize, 2, 100, 1460, 1461, 65535, 65536, 100_000];
        let l = t
            .spawn("r", move || {
                TcpListener::bind(format!("{remote}:{port}")).unwrap()
            })
            .join()
            .unwrap();
        let srv = thread::spawn(move || echo_server(l, sizes.len()));
        let to: SocketAddr = format!("{remote}:{port}").parse().unwrap();
        t.spawn("g", move || {
            for (i, n) in sizes.iter().enumerate() {
                let data = pattern(i as u64, *n);
                let mut c = connect(to);
                c.write_all(&data).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut back = Vec::new();
                c.read_to_end(&mut back).unwrap();
                assert!(back == data, "echo of {n} bytes via {remote} differs");
            }
        })
        .join()
        .unwrap();
        srv.join().unwrap();
    }
    ensure_socat();
    // Half-close with socat -u: the sender shuts down its write side and
    // the data still arrives whole.
    let dir = std::env::temp_dir().join(format!("{}-socat", t.p));
    let _ = std::fs::create_dir_all(&dir);
    let src = dir.join("src");
    let dst = dir.join("dst");
    std::fs::write(&src, pattern(99, 3 << 20)).unwrap();
    let mut srv = Command::new("ip")
        .args(["netns", "exec", &t.ns("r"), "socat", "-u"])
        .arg("TCP-LISTEN:5120,bind=198.51.100.1,reuseaddr")
        .arg(format!("OPEN:{},creat,trunc", dst.display()))
        .spawn()
        .expect("socat (scripts/test-all.sh installs it)");
    thread::sleep(Duration::from_millis(300));
    let o = run(
        "ip",
        &[
            "netns",
            "exec",
            &t.ns("g"),
            "socat",
            "-u",
            &format!("OPEN:{}", src.display()),
            "TCP:198.51.100.1:5120",
        ],
    );
    assert!(o.status.success(), "socat client failed");
    assert!(srv.wait().unwrap().success(), "socat server failed");
    assert!(
        std::fs::read(&src).unwrap() == std::fs::read(&dst).unwrap(),
        "socat -u copy differs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ethernet frames of a classic pcap file (draft-ietf-opsawg-pcap §4, §5),
/// each checked: captured length equals the original, and the IP header's
/// length accounts for the whole frame. Returns (source address, frame
/// length) of every IPv4 or IPv6 frame.
fn pcap_ip_frames(bytes: &[u8]) -> Vec<(std::net::IpAddr, usize)> {
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
    assert_eq!(u32_at(bytes, 0), 0xa1b2_c3d4, "pcap magic");
    assert_eq!(u32_at(bytes, 20), 1, "link type Ethernet");
    let mut out = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let (cap, orig) = (
            u32_at(bytes, at + 8) as usize,
            u32_at(bytes, at + 12) as usize,
        );
        assert_eq!(cap, orig, "frame at {at} cut short in the capture");
        let f = &bytes[at + 16..at + 16 + cap];
        at += 16 + cap;
        match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 => {
                let tot = usize::from(u16::from_be_bytes([f[16], f[17]]));
                assert!(
                    tot + 14 == f.len() || (f.len() == 60 && tot < 46),
                    "IPv4 length {tot} in a frame of {}",
                    f.len()
                );
                let src: [u8; 4] = f[26..30].try_into().unwrap();
                out.push((std::net::IpAddr::from(src), f.len()));
            }
            0x86dd => {
                let pl = usize::from(u16::from_be_bytes([f[18], f[19]]));
                assert_eq!(pl + 54, f.len(), "IPv6 payload length");
                let src: [u8; 16] = f[22..38].try_into().unwrap();
                out.push((std::net::IpAddr::from(src), f.len()));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn tcp_bulk_at_mtu_1500_uses_offloads_both_families() {
    if !can_run("tcp_bulk_at_mtu_1500_uses_offloads_both_families") {
        return;
    }
    // 50 MiB each way and family through a 1500-byte link: TCP
    // super-frames both ways (virtio-net offloads on the tap).
    {
        let t = Topo::new("m", &["--mtu", "1500"]);
        let mtu = stdout(&t.g.exec(&["cat", "/sys/class/net/veth0/mtu"]));
        assert_eq!(mtu.trim(), "1500", "namespace link MTU");
        bulk_both_ways(&t, "198.51.100.1", 5130);
        bulk_both_ways(&t, "[2001:db8:3::1]", 5132);
    }
    // A capture of smaller transfers: frames longer than the MTU in both
    // directions, each whole and with consistent IP lengths, no vnet
    // header in front.
    let t = Topo::capturing("mp", &["--mtu", "1500"], true);
    bulk_both_ways_len(&t, "198.51.100.1", 5134, 4 << 20);
    bulk_both_ways_len(&t, "[2001:db8:3::1]", 5136, 4 << 20);
    let pcap = std::fs::read(t.g.dir.join("pasta.pcap")).expect("capture file");
    let frames = pcap_ip_frames(&pcap);
    // The namespace's IPv6 source may be a SLAAC address: "from the
    // namespace" is anything of the family not from the remote server.
    for remote in ["198.51.100.1", "2001:db8:3::1"] {
        let r: std::net::IpAddr = remote.parse().unwrap();
        let big = |from_remote: bool| {
            frames
                .iter()
                .filter(|(s, _)| s.is_ipv6() == r.is_ipv6() && (*s == r) == from_remote)
                .filter(|(_, l)| *l > 1514)
                .count()
        };
        assert!(big(true) > 0, "no super-frame from {remote} in the capture");
        assert!(big(false) > 0, "no super-frame to {remote} in the capture");
    }
}

/// A field of `/proc/PID/status` (kB, or a count).
fn status_kb(pid: u32, field: &str) -> u64 {
    passt_sys::proc_status(pid, field).unwrap_or_else(|| panic!("no {field} of {pid}"))
}

/// Issue 16's footprint, as anonymous memory (what a process writes; the
/// binary's own pages are left out, a debug build's being larger): little
/// at start, back to that after a burst once the frame buffers are given
/// back, and a few hundred bytes per connection with a thousand idle
/// ones. One thread besides the loop (the namespace's).
#[test]
fn footprint_at_start_after_a_burst_and_with_a_thousand_idle_connections() {
    if !can_run("footprint_at_start_after_a_burst_and_with_a_thousand_idle_connections") {
        return;
    }
    const START_KB: u64 = 4096;
    let t = Topo::new("fp", &[]);
    let pid = t.g.pasta_pid().expect("pasta's PID");
    let start = status_kb(pid, "RssAnon");
    assert!(start <= START_KB, "{start} kB of anonymous memory at start");
    assert_eq!(status_kb(pid, "Threads"), 2);
    // A burst both ways writes the frame buffers...
    bulk_both_ways_len(&t, "198.51.100.1", 5140, 32 << 20);
    let peak = status_kb(pid, "VmHWM");
    // ...which go back to the kernel a second after it.
    let idle = wait_for(Duration::from_secs(5), || {
        let now = status_kb(pid, "RssAnon");
        (now <= START_KB).then_some(now)
    });
    assert!(
        idle.is_some(),
        "{} kB of anonymous memory after a burst (peak VmHWM {peak} kB)",
        status_kb(pid, "RssAnon")
    );
    const N: usize = 1000;
    let l = t
        .spawn("r", || TcpListener::bind("198.51.100.1:5142").unwrap())
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        let held: Vec<TcpStream> = (0..N).map(|_| l.accept().unwrap().0).collect();
        held
    });
    let to: SocketAddr = "198.51.100.1:5142".parse().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let client = t.spawn("g", move || {
        let mut cs: Vec<TcpStream> = (0..N).map(|_| connect(to)).collect();
        // Each carries a byte, so that every flow is established.
        for c in &mut cs {
            c.write_all(b"x").unwrap();
        }
        up_tx.send(()).unwrap();
        let _ = done_rx.recv();
        drop(cs);
    });
    up_rx.recv().unwrap();
    let mut held = srv.join().unwrap();
    for s in &mut held {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
    }
    thread::sleep(Duration::from_millis(1500));
    let with = status_kb(pid, "RssAnon");
    eprintln!("pasta: {start} kB at start, peak {peak} kB, {with} kB with {N} idle connections");
    assert!(
        with <= START_KB + 2048,
        "{with} kB of anonymous memory with {N} idle connections"
    );
    done_tx.send(()).unwrap();
    client.join().unwrap();
}

#[test]
fn tcp_thousand_concurrent_and_five_thousand_in_a_row() {
    if !can_run("tcp_thousand_concurrent_and_five_thousand_in_a_row") {
        return;
    }
    let t = Topo::new("b", &[]);
    const N: usize = 1000;
    let l = t
        .spawn("r", || TcpListener::bind("198.51.100.1:5130").unwrap())
        .join()
        .unwrap();
    let srv = thread::spawn(move || echo_server(l, N));
    let to: SocketAddr = "198.51.100.1:5130".parse().unwrap();
    let start = Instant::now();
    t.spawn("g", move || {
        // All open at once, then each moves its own data.
        let mut cs: Vec<TcpStream> = (0..N).map(|_| connect(to)).collect();
        for (i, c) in cs.iter_mut().enumerate() {
            c.write_all(&pattern(i as u64, 4096 + i)).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        }
        for (i, c) in cs.iter_mut().enumerate() {
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            assert!(
                back == pattern(i as u64, 4096 + i),
                "connection {i} differs"
            );
        }
    })
    .join()
    .unwrap();
    srv.join().unwrap();
    eprintln!("{N} concurrent connections: {:?}", start.elapsed());

    const M: usize = 5000;
    let l = t
        .spawn("r", || TcpListener::bind("198.51.100.1:5131").unwrap())
        .join()
        .unwrap();
    let srv = thread::spawn(move || {
        for _ in 0..M {
            let (mut s, _) = l.accept().unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            s.write_all(&v).unwrap();
        }
    });
    let to: SocketAddr = "198.51.100.1:5131".parse().unwrap();
    let start = Instant::now();
    t.spawn("g", move || {
        for i in 0..M {
            let msg = format!("short connection {i}");
            let mut c = connect(to);
            c.write_all(msg.as_bytes()).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut back = String::new();
            c.read_to_string(&mut back).unwrap();
            assert_eq!(back, msg);
        }
    })
    .join()
    .unwrap();
    srv.join().unwrap();
    eprintln!("{M} short connections in a row: {:?}", start.elapsed());
}

#[test]
fn tcp_forwarded_ports_reach_the_namespace() {
    if !can_run("tcp_forwarded_ports_reach_the_namespace") {
        return;
    }
    // Through the tap: spliced connections from the host's loopback are
    // tests/splice.rs's.
    let t = Topo::new("c", &["-t", "8100", "--no-splice"]);
    let l4 = t
        .spawn("g", || TcpListener::bind("0.0.0.0:8100").unwrap())
        .join()
        .unwrap();
    let l6 = t
        .spawn("g", || TcpListener::bind("[2001:db8:2::2]:8100").unwrap())
        .join()
        .unwrap();
    let s4 = thread::spawn(move || echo_server(l4, 3));
    let s6 = thread::spawn(move || echo_server(l6, 1));
    // The listeners exist once pasta ran its start-up operations.
    thread::sleep(Duration::from_millis(300));
    for (i, to) in [
        "127.0.0.1:8100",
        "203.0.113.2:8100",
        "[::1]:8100",
        "203.0.113.2:8100",
    ]
    .into_iter()
    .enumerate()
    {
        let to: SocketAddr = to.parse().unwrap();
        let len = if i == 3 { 20 << 20 } else { 100_000 };
        let from_remote = i == 3;
        let ns = if from_remote { "r" } else { "h" };
        let got = t
            .spawn(ns, move || {
                let data = pattern(i as u64, len);
                let mut c = connect(to);
                let w = {
                    let mut c2 = c.try_clone().unwrap();
                    let d = data.clone();
                    thread::spawn(move || {
                        c2.write_all(&d).unwrap();
                        c2.shutdown(Shutdown::Write).unwrap();
                    })
                };
                let mut back = Vec::new();
                c.read_to_end(&mut back).unwrap();
                w.join().unwrap();
                back == data
            })
            .join()
            .unwrap();
        assert!(got, "forwarded connection to {to} from {ns}: echo differs");
    }
    s4.join().unwrap();
    s6.join().unwrap();
}

/// Echo each connection's bytes back as they come, until end of file;
/// connections until the listener's thread is left.
fn streaming_echo_server(l: TcpListener) {
    for s in l.incoming() {
        let Ok(mut s) = s else { return };
        thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Send `data` on `c` and read the echo back, from a second thread so that
/// neither side waits on the other.
fn echo_through(c: &mut TcpStream, data: &[u8]) -> bool {
    let mut w = c.try_clone().unwrap();
    let d = data.to_vec();
    let writer = thread::spawn(move || w.write_all(&d).is_ok());
    let mut back = vec![0u8; data.len()];
    let read = c.read_exact(&mut back).is_ok();
    writer.join().unwrap() && read && back == data
}

/// CPU time pasta used so far, in clock ticks (utime + stime).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with the last ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    f.get(11..13)
        .map_or(0, |v| v.iter().filter_map(|x| x.parse::<u64>().ok()).sum())
}

#[test]
fn tcp_out_of_descriptors_refuses_then_recovers() {
    if !can_run("tcp_out_of_descriptors_refuses_then_recovers") {
        return;
    }
    // pasta with 64 descriptors: its own (tap, epoll, netlink, the two
    // listeners of -t 8140, ...) and a few dozen connections.
    let mut t = Topo::wrapped("e", &["prlimit", "--nofile=64:64"], &["-t", "8140"], false);
    let pid = t.g.pasta_pid().expect("pasta running");
    let l = t
        .spawn("r", || TcpListener::bind("198.51.100.1:5140").unwrap())
        .join()
        .unwrap();
    thread::spawn(move || streaming_echo_server(l));
    let lg = t
        .spawn("g", || TcpListener::bind("0.0.0.0:8140").unwrap())
        .join()
        .unwrap();
    thread::spawn(move || streaming_echo_server(lg));
    let to: SocketAddr = "198.51.100.1:5140".parse().unwrap();

    // Guest -> remote until pasta has no descriptor left for a socket.
    let (mut open, refused_at) = t
        .spawn("g", move || {
            let mut open = Vec::new();
            for i in 0..200u64 {
                let start = Instant::now();
                let why = match TcpStream::connect_timeout(&to, Duration::from_secs(8)) {
                    Ok(mut c) => {
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        if echo_through(&mut c, &pattern(i, 100)) {
                            open.push((i, c));
                            continue;
                        }
                        "no echo".to_owned()
                    }
                    Err(e) => format!("{:?}", e.kind()),
                };
                let took = start.elapsed();
                eprintln!("refused at connection {i}: {why} after {took:?}");
                assert_eq!(why, "ConnectionRefused", "refusal is a reset");
                assert!(took < Duration::from_secs(2), "refusal took {took:?}");
                return (open, i);
            }
            panic!("200 connections and none refused with 64 descriptors");
        })
        .join()
        .unwrap();
    assert!(refused_at > 4, "refused at connection {refused_at}");

    // Every established connection still carries data, intact.
    let mut open = t
        .spawn("g", move || {
            for (i, c) in open.iter_mut() {
                let data = pattern(*i + 1000, 200_000);
                assert!(echo_through(c, &data), "connection {i} after the refusal");
            }
            open
        })
        .join()
        .unwrap();

    // A connection to the forwarded port waits in pasta's backlog (the
    // kernel completed its handshake) without pasta spinning on it.
    let inbound = t.spawn("r", || {
        let mut c = connect("203.0.113.2:8140".parse().unwrap());
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        echo_through(&mut c, &pattern(77, 30_000))
    });
    thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    assert!(spent < 30, "pasta used {spent} ticks in 1 s while starved");
    assert!(
        !inbound.is_finished(),
        "inbound connection served while starved"
    );

    // Half of the guest's connections closed: the waiting inbound one is
    // accepted and echoes, and new outbound ones work again.
    let keep = open.split_off(open.len() / 2);
    let closed = open.len();
    drop(open);
    assert!(
        inbound.join().unwrap(),
        "inbound echo after descriptors freed"
    );
    let made = t
        .spawn("g", move || {
            let first = wait_for(
                Duration::from_secs(10),
                || match TcpStream::connect_timeout(&to, Duration::from_secs(8)) {
                    Ok(mut c) => {
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        echo_through(&mut c, b"after the close").then_some(c)
                    }
                    Err(_) => {
                        thread::sleep(Duration::from_millis(100));
                        None
                    }
                },
            );
            let mut again = vec![first.expect("no new connection within 10 s of closing some")];
            for k in 1..closed / 2 {
                let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(8))
                    .expect("connection after descriptors freed up");
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let data = pattern(5000 + k as u64, 50_000);
                assert!(echo_through(&mut c, &data), "new connection {k}");
                again.push(c);
            }
            // The ones kept open through all of this too.
            let mut keep = keep;
            for (i, c) in keep.iter_mut() {
                let data = pattern(*i + 9000, 10_000);
                assert!(echo_through(c, &data), "kept connection {i}");
            }
            again.len()
        })
        .join()
        .unwrap();
    assert!(made > 1, "{made} new connections");
    assert!(t.g.pasta_running(), "pasta exited:\n{}", t.g.log());
}

/// A TCP SYN from `src:sport` to `dst:dport` as a raw IPv4 packet (the
/// kernel fills in the IP checksum, length and identification).
fn syn4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let tcp = &mut p[20..];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    // RFC 9293 §3.1: the checksum covers a pseudo-header and the segment.
    let mut sum: u32 = 6 + 20;
    for w in src.chunks(2).chain(dst.chunks(2)).chain(tcp.chunks(2)) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    tcp[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// Write 64 KiB chunks `pattern(k, 64 KiB)`, k = 0, 1, ..., until `stop`
/// (and at least `min` of them); returns how many.
fn write_chunks(s: &mut TcpStream, stop: &std::sync::atomic::AtomicBool, min: u64) -> u64 {
    let mut k = 0;
    while k < min || !stop.load(std::sync::atomic::Ordering::Relaxed) {
        s.write_all(&pattern(k, 1 << 16)).expect("stream write");
        k += 1;
    }
    s.shutdown(Shutdown::Write).unwrap();
    k
}

/// Read what [`write_chunks`] wrote, checking every chunk and counting
/// them in `seen`; returns how many.
fn read_chunks(s: &mut TcpStream, seen: &std::sync::atomic::AtomicU64) -> u64 {
    let mut buf = vec![0u8; 1 << 16];
    let mut k = 0;
    loop {
        let mut got = 0;
        while got < buf.len() {
            match s.read(&mut buf[got..]).expect("stream read") {
                0 => {
                    assert_eq!(got, 0, "stream ended inside chunk {k}");
                    return k;
                }
                n => got += n,
            }
        }
        assert!(buf == pattern(k, 1 << 16), "chunk {k} differs");
        k += 1;
        seen.store(k, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Issue 5's load case through pasta: 100 000 SYNs from the namespace to as
/// many ports of the remote (raw IPv4 packets; the remote refuses each)
/// while an established stream runs each way. Both streams arrive intact,
/// pasta keeps running, and new connections work afterwards.
#[test]
fn tcp_syn_flood_leaves_established_streams_running() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    if !can_run("tcp_syn_flood_leaves_established_streams_running") {
        return;
    }
    const SYNS: u32 = 100_000;
    let mut t = Topo::new("f", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (up_seen, down_seen) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (lu, ld, le) = t
        .spawn("r", || {
            (
                TcpListener::bind("198.51.100.1:5150").unwrap(),
                TcpListener::bind("198.51.100.1:5151").unwrap(),
                TcpListener::bind("198.51.100.1:5152").unwrap(),
            )
        })
        .join()
        .unwrap();
    thread::spawn(move || streaming_echo_server(le));
    // Upstream: the guest writes until told to stop, the remote checks.
    let seen = up_seen.clone();
    let up_rx = thread::spawn(move || read_chunks(&mut lu.accept().unwrap().0, &seen));
    let st = stop.clone();
    let up_tx = t.spawn("g", move || {
        write_chunks(&mut connect("198.51.100.1:5150".parse().unwrap()), &st, 0)
    });
    // Downstream: the remote writes, the guest checks.
    let st = stop.clone();
    let down_tx = thread::spawn(move || write_chunks(&mut ld.accept().unwrap().0, &st, 0));
    let seen = down_seen.clone();
    let down_rx = t.spawn("g", move || {
        read_chunks(&mut connect("198.51.100.1:5151".parse().unwrap()), &seen)
    });
    // Both streams established and moving before the flood starts.
    let moving = wait_for(Duration::from_secs(10), || {
        (up_seen.load(Ordering::Relaxed) >= 8 && down_seen.load(Ordering::Relaxed) >= 8)
            .then_some(())
    });
    assert!(moving.is_some(), "streams not moving:\n{}", t.g.log());

    let before = (
        up_seen.load(Ordering::Relaxed),
        down_seen.load(Ordering::Relaxed),
    );
    let start = Instant::now();
    let sent = t
        .spawn("g", || {
            use rustix::net::{ipproto, sendto, socket, AddressFamily, SendFlags, SocketType};
            let fd = socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::RAW))
                .expect("raw socket");
            let to = SocketAddr::from(([198, 51, 100, 1], 0));
            let mut sent = 0u32;
            for n in 0..SYNS {
                // Unique 4-tuples, none of them the streams'.
                let (sport, dport) = (1024 + (n % 60_000) as u16, 10_000 + (n / 60_000) as u16);
                let p = syn4([203, 0, 113, 2], [198, 51, 100, 1], sport, dport, n);
                // A full tap queue drops or refuses some: a flood all the same.
                if sendto(&fd, &p, SendFlags::empty(), &to).is_ok() {
                    sent += 1;
                }
                if n % 2000 == 1999 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            sent
        })
        .join()
        .unwrap();
    let took = start.elapsed();
    let during = (
        up_seen.load(Ordering::Relaxed),
        down_seen.load(Ordering::Relaxed),
    );
    // The streams run on after the flood, then end.
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (up_sent, up_got) = (up_tx.join().unwrap(), up_rx.join().unwrap());
    let (down_sent, down_got) = (down_tx.join().unwrap(), down_rx.join().unwrap());
    eprintln!(
        "{sent} SYNs in {took:?}; 64 KiB chunks before/after the flood/at the end: \
         up {}/{}/{up_got}, down {}/{}/{down_got}",
        before.0, during.0, before.1, during.1
    );
    assert!(sent > SYNS * 9 / 10, "only {sent} SYNs sent");
    assert_eq!(up_got, up_sent, "upstream chunks");
    assert_eq!(down_got, down_sent, "downstream chunks");
    assert!(
        up_got > during.0 && down_got > during.1,
        "streams stalled after the flood"
    );
    // New connections work once the flood is over (its flows and
    // descriptors freed as the remote's resets come back).
    let ok = t
        .spawn("g", || {
            wait_for(Duration::from_secs(10), || {
                let to: SocketAddr = "198.51.100.1:5152".parse().unwrap();
                let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(3)).ok()?;
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                echo_through(&mut c, &pattern(99, 1 << 20)).then_some(())
            })
        })
        .join()
        .unwrap();
    assert!(
        ok.is_some(),
        "no connection after the flood:\n{}",
        t.g.log()
    );
    assert!(t.g.pasta_running(), "pasta exited:\n{}", t.g.log());
}

/// How one of many concurrent attempts ended.
#[derive(Debug)]
enum Attempt {
    /// Connected and echoed its pattern, intact; kept open.
    Echoed(TcpStream),
    /// Refused by a reset (connect, or the first read or write).
    Refused,
}

#[test]
fn tcp_two_hundred_concurrent_with_64_descriptors_refuse_cleanly_then_recover() {
    if !can_run("tcp_two_hundred_concurrent_with_64_descriptors_refuse_cleanly_then_recover") {
        return;
    }
    // Soft and hard limit 64: raising the soft one to the hard one gains
    // nothing, so about 40 sockets are left for connections.
    let t = Topo::wrapped("fl", &["prlimit", "--nofile=64:64"], &[], false);
    let l = t
        .spawn("r", || TcpListener::bind("198.51.100.1:5150").unwrap())
        .join()
        .unwrap();
    thread::spawn(move || streaming_echo_server(l));
    let to: SocketAddr = "198.51.100.1:5150".parse().unwrap();

    // 200 at once, all attempts overlapping: each waits for the others
    // before it sends, and keeps its connection open.
    const N: usize = 200;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(N));
    let start = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let b = barrier.clone();
            t.spawn("g", move || {
                let c = TcpStream::connect_timeout(&to, Duration::from_secs(10));
                b.wait();
                let mut c = match c {
                    Ok(c) => c,
                    Err(e) => {
                        assert!(
                            matches!(
                                e.kind(),
                                std::io::ErrorKind::ConnectionRefused
                                    | std::io::ErrorKind::ConnectionReset
                            ),
                            "connection {i}: {e}"
                        );
                        return Attempt::Refused;
                    }
                };
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                c.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                let data = pattern(i as u64, 5000 + i);
                let mut back = vec![0u8; data.len()];
                match c.write_all(&data).and_then(|()| c.read_exact(&mut back)) {
                    Ok(()) => {
                        assert!(back == data, "connection {i}: echo differs");
                        Attempt::Echoed(c)
                    }
                    Err(e) => {
                        // Accepted by the guest's kernel before pasta
                        // could open its socket: reset, never a hang.
                        assert!(
                            matches!(
                                e.kind(),
                                std::io::ErrorKind::ConnectionReset
                                    | std::io::ErrorKind::ConnectionRefused
                                    | std::io::ErrorKind::BrokenPipe
                            ),
                            "connection {i}: {e}"
                        );
                        Attempt::Refused
                    }
                }
            })
        })
        .collect();
    let results: Vec<Attempt> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let took = start.elapsed();
    let mut open: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for r in results {
        match r {
            Attempt::Echoed(c) => open.push(c),
            Attempt::Refused => refused += 1,
        }
    }
    eprintln!(
        "{N} concurrent with 64 descriptors: {} echoed, {refused} refused, {took:?}",
        open.len()
    );
    assert!(open.len() > 4, "{} connections carried data", open.len());
    assert!(refused > 0, "no connection refused with 64 descriptors");
    assert!(took < Duration::from_secs(40), "attempts took {took:?}");

    // The open ones still carry data, intact.
    let mut open = t
        .spawn("g", move || {
            for (i, c) in open.iter_mut().enumerate() {
                let data = pattern(i as u64 + 7000, 20_000);
                assert!(echo_through(c, &data), "open connection {i}");
            }
            open
        })
        .join()
        .unwrap();

    // Closed: new connections work again, as many as were open before.
    let before = open.len();
    open.clear();
    let made = t
        .spawn("g", move || {
            let mut again = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while again.len() < before && Instant::now() < deadline {
                match TcpStream::connect_timeout(&to, Duration::from_secs(8)) {
                    Ok(mut c) => {
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        let data = pattern(again.len() as u64 + 8000, 10_000);
                        if echo_through(&mut c, &data) {
                            again.push(c);
                        }
                    }
                    // pasta closes the old sockets as their FINs complete.
                    Err(_) => thread::sleep(Duration::from_millis(100)),
                }
            }
            again.len()
        })
        .join()
        .unwrap();
    assert_eq!(
        made,
        before,
        "new connections after closing:\n{}",
        t.g.log()
    );

    // A few lines about the descriptors, not one per refusal.
    let log = t.g.log();
    let fd_lines = log
        .lines()
        .filter(|l| l.contains("Too many open files") || l.contains("EMFILE"))
        .count();
    assert!(fd_lines <= 10, "{fd_lines} lines about descriptors:\n{log}");
}
