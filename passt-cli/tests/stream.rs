//! passt on its socket with the test as the guest: ARP and DHCP answered
//! through the length-prefixed stream; bad records skipped or the
//! connection reset while the daemon keeps serving; one guest at a time;
//! `-1`; daemon mode, PID file, capabilities, default socket names.

use core::net::Ipv4Addr;
use std::time::Duration;

use passt_core::addr::MacAddr;
use passt_core::config::DEFAULT_OUR_MAC;
use passt_core::testing::build::{arp_request, udp4, GUEST_MAC};
use passt_core::wire::arp::{ArpOp, ArpRepr};
use passt_core::wire::dhcp::{
    opt, DhcpBuilder, DhcpMessageType, DhcpRepr, BOOTREQUEST, HTYPE_ETHERNET,
};
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::udp::UdpRepr;
use passt_core::wire::{checksum, ip_proto};

use crate::support::{run, wait_for, Link, Passt, Scratch, PASST};

pub(crate) const GUEST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub(crate) const GW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

/// The addresses every test gives passt, so that the host's do not matter.
const ADDRS: [&str; 9] = [
    "-4",
    "-a",
    "192.0.2.10/24",
    "-g",
    "192.0.2.1",
    "-D",
    "192.0.2.53",
    "-S",
    "example.com",
];

pub(crate) fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = ADDRS.to_vec();
    v.extend_from_slice(extra);
    v
}

/// Ask for the gateway's MAC address and check the answer.
pub(crate) fn arp_exchange(link: &mut Link) {
    link.send(&arp_request(GUEST_MAC, GUEST, GW));
    let f = link.recv_type(ethertype::ARP).expect("ARP reply");
    let (eth, body) = EthernetRepr::parse(&f).unwrap();
    assert_eq!((eth.src, eth.dst), (DEFAULT_OUR_MAC, GUEST_MAC));
    let arp = ArpRepr::parse(body).unwrap();
    assert_eq!(arp.op, ArpOp::Reply);
    assert_eq!((arp.sha, arp.spa), (DEFAULT_OUR_MAC, GW));
    assert_eq!((arp.tha, arp.tpa), (GUEST_MAC, GUEST));
}

/// A DHCP message from the guest (0.0.0.0:68 to 255.255.255.255:67).
pub(crate) fn dhcp(kind: DhcpMessageType, xid: u32, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut buf = vec![0u8; 576];
    let mut b = DhcpBuilder::new(&mut buf).unwrap();
    b.header.op = BOOTREQUEST;
    b.header.htype = HTYPE_ETHERNET;
    b.header.hlen = 6;
    b.header.xid.set(xid);
    b.header.set_client_mac(GUEST_MAC);
    b.push_message_type(kind).unwrap();
    if let Some(a) = requested {
        b.push(opt::REQUESTED_IP, &a.octets()).unwrap();
        b.push(opt::SERVER_ID, &GW.octets()).unwrap();
    }
    b.push(opt::PARAMETER_REQUEST_LIST, &[1, 3, 6, 15, 119])
        .unwrap();
    let n = b.finish().unwrap();
    let mut f = udp4(
        Ipv4Addr::UNSPECIFIED,
        68,
        Ipv4Addr::BROADCAST,
        67,
        &buf[..n],
    );
    f[..6].copy_from_slice(&MacAddr::BROADCAST.0);
    f
}

/// The DHCP reply in a frame, with checksums verified: (type, yiaddr,
/// router, DNS, search list present).
pub(crate) fn dhcp_reply(
    f: &[u8],
    xid: u32,
) -> (DhcpMessageType, Ipv4Addr, Vec<u8>, Vec<u8>, bool) {
    let (eth, payload) = EthernetRepr::parse(f).unwrap();
    assert_eq!(eth.src, DEFAULT_OUR_MAC);
    let (ip, l4) = Ipv4Repr::parse(payload, true).expect("IPv4 header checksum");
    assert_eq!(ip.protocol, ip_proto::UDP);
    assert_eq!(ip.src, GW);
    let pseudo = checksum::pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
    let udp = UdpRepr::parse(l4, Some(pseudo), false).expect("UDP checksum");
    assert_eq!((udp.src_port, udp.dst_port), (67, 68));
    let d = DhcpRepr::parse(udp.payload).unwrap();
    assert_eq!(d.header().xid(), xid);
    (
        d.message_type().expect("message type"),
        d.header().yiaddr(),
        d.option(opt::ROUTER).unwrap_or_default().to_vec(),
        d.option(opt::DNS_SERVERS).unwrap_or_default().to_vec(),
        d.option(opt::DOMAIN_SEARCH).is_some(),
    )
}

#[test]
fn arp_and_dhcp_are_answered_through_the_socket() {
    let p = Passt::start("arpdhcp", &args(&[]));
    let mut link = p.connect();
    arp_exchange(&mut link);

    link.send(&dhcp(DhcpMessageType::Discover, 0x1234_5678, None));
    let f = link.recv_type(ethertype::IPV4).expect("DHCP offer");
    let (kind, yiaddr, router, dns, search) = dhcp_reply(&f, 0x1234_5678);
    assert_eq!(kind, DhcpMessageType::Offer);
    assert_eq!(yiaddr, GUEST);
    assert_eq!(router, GW.octets());
    assert_eq!(dns, DNS.octets());
    assert!(search);

    link.send(&dhcp(DhcpMessageType::Request, 0x1234_5679, Some(GUEST)));
    let f = link.recv_type(ethertype::IPV4).expect("DHCP ack");
    let (kind, yiaddr, ..) = dhcp_reply(&f, 0x1234_5679);
    assert_eq!(kind, DhcpMessageType::Ack);
    assert_eq!(yiaddr, GUEST);

    // Both directions are in the capture file: 3 frames in, 3 out (a frame
    // to the guest is recorded once written, maybe after we read it).
    let frames = wait_for(Duration::from_secs(3), || {
        let pcap = std::fs::read(p.dir.0.join("passt.pcap")).ok()?;
        let frames = passt_core::testing::pcap::read_pcap(&pcap).ok()?;
        (frames.len() == 6).then_some(frames)
    })
    .expect("6 frames in the capture");
    assert_eq!(frames[0].data, arp_request(GUEST_MAC, GUEST, GW));
}

#[test]
fn bad_records_are_skipped_or_reset_and_the_daemon_keeps_serving() {
    let mut p = Passt::start("bad", &args(&[]));
    let arp = arp_request(GUEST_MAC, GUEST, GW);

    // Zero length and a runt: skipped, the stream goes on.
    let mut link = p.connect();
    link.send_raw(&[0, 0, 0, 0]);
    link.send(&arp[..5]);
    arp_exchange(&mut link);

    // A frame split across writes, at awkward places, and two in one write.
    let mut rec = (arp.len() as u32).to_be_bytes().to_vec();
    rec.extend_from_slice(&arp);
    for cut in [1, 3, 4, 5, 20] {
        link.send_raw(&rec[..cut]);
        std::thread::sleep(Duration::from_millis(30));
        link.send_raw(&rec[cut..]);
        assert!(link.recv_type(ethertype::ARP).is_some(), "cut at {cut}");
    }
    let mut two = rec.clone();
    two.extend_from_slice(&rec);
    link.send_raw(&two);
    assert!(link.recv_type(ethertype::ARP).is_some());
    assert!(link.recv_type(ethertype::ARP).is_some());

    // Garbage: its first four bytes are a length no frame has; passt
    // resets the connection.
    link.send_raw(b"this is not a frame stream at all");
    assert!(link.closed_by_peer(), "{}", p.log());
    assert!(p.log().contains("exceeds"), "{}", p.log());

    // The next guest is served; it disconnects in the middle of a record.
    let mut link = p.connect();
    arp_exchange(&mut link);
    link.send_raw(&rec[..30]);
    drop(link);

    let mut link = p.connect();
    arp_exchange(&mut link);
    drop(link);
    assert!(p.running(), "{}", p.log());
    let log = wait_for(Duration::from_secs(3), || {
        let l = p.log();
        l.contains("unfinished frame").then_some(l)
    });
    assert!(log.is_some(), "{}", p.log());
}

#[test]
fn a_second_client_is_refused_and_one_off_exits_after_the_guest() {
    let mut p = Passt::start("oneoff", &args(&["-1"]));
    let mut first = p.connect();
    arp_exchange(&mut first);
    let mut second = p.connect();
    assert!(second.closed_by_peer(), "{}", p.log());
    // The first guest is still served.
    arp_exchange(&mut first);
    assert!(p.running());
    drop(first);
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(0), "{}", p.log());
    assert!(
        p.log().contains("refusing the new connection"),
        "{}",
        p.log()
    );
}

#[test]
fn without_one_off_the_next_guest_is_awaited() {
    let mut p = Passt::start("next", &args(&[]));
    for _ in 0..3 {
        let mut link = p.connect();
        arp_exchange(&mut link);
    }
    assert!(p.running(), "{}", p.log());
}

#[test]
fn daemon_mode_writes_the_pid_file_of_the_process_that_serves() {
    let dir = Scratch::new("daemon");
    let sock = dir.0.join("passt.socket");
    let pid_file = dir.0.join("passt.pid");
    let mut a = vec![
        "-s",
        sock.to_str().unwrap(),
        "-P",
        pid_file.to_str().unwrap(),
    ];
    a.extend(args(&["-q"]));
    let o = run(PASST, &a);
    assert!(o.status.success(), "{o:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive());
    let mut link = Link::connect(&sock);
    arp_exchange(&mut link);
    drop(link);
    // Kill the daemon (by its PID) and check it is gone.
    let _ = run("kill", &[&pid.to_string()]);
    assert!(wait_for(Duration::from_secs(5), || (!alive()).then_some(())).is_some());
}

#[test]
fn capabilities_help_and_version() {
    // No vhost-user back-end, so no capability JSON (the original prints
    // `{"type": "net"}` because it has one).
    let o = run(PASST, &["--print-capabilities"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no vhost-user back-end"),
        "{o:?}"
    );
    let o = run(PASST, &["--version"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("passt "));
    let o = run(PASST, &["--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--socket"));
    let o = run(PASST, &["--netns", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pasta mode only"),
        "{o:?}"
    );
}

#[test]
fn default_socket_name_is_the_first_free_one_and_printed_with_qemu_usage() {
    let dir = Scratch::new("default");
    let log_path = dir.0.join("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(PASST)
        .args(args(&["-f", "-1"]))
        .stdin(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let text = wait_for(Duration::from_secs(10), || {
        let t = std::fs::read_to_string(&log_path).unwrap_or_default();
        t.contains("You can now start qemu").then_some(t)
    });
    let Some(text) = text else {
        let _ = child.kill();
        panic!("{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    };
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("passt: UNIX domain socket bound at "))
        .expect("socket line")
        .to_owned();
    assert!(
        path.starts_with("/tmp/passt_") && path.ends_with(".socket"),
        "{path}"
    );
    assert!(
        text.contains(&format!("addr.type=unix,addr.path={path}")),
        "{text}"
    );
    let mut link = Link::connect(std::path::Path::new(&path));
    arp_exchange(&mut link);
    drop(link);
    let status = wait_for(Duration::from_secs(5), || child.try_wait().ok().flatten());
    let _ = child.kill();
    // passt ran as nobody and could not remove its root-owned socket.
    let _ = std::fs::remove_file(&path);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
}

#[test]
fn a_connected_descriptor_from_the_parent_is_served_once() {
    let dir = Scratch::new("fd");
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let log = std::fs::File::create(dir.0.join("log")).unwrap();
    // -F 0: the socket is passt's standard input.
    let mut child = std::process::Command::new(PASST)
        .args(args(&["-f", "-F", "0"]))
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .stderr(log)
        .spawn()
        .unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut link = Link(ours);
    arp_exchange(&mut link);
    drop(link);
    let status = wait_for(Duration::from_secs(5), || child.try_wait().ok().flatten());
    let _ = child.kill();
    let text = std::fs::read_to_string(dir.0.join("log")).unwrap_or_default();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    assert!(!text.contains("UNIX domain socket bound"), "{text}");
}

#[test]
fn a_background_passt_without_a_log_file_logs_to_syslog_with_its_pid() {
    // The machine's /dev/log cannot be replaced: a socket of the test's
    // own, named in PASST_SYSLOG_SOCKET.
    let dir = Scratch::new("syslog");
    let sock = dir.0.join("passt.socket");
    let pid_file = dir.0.join("passt.pid");
    let log_path = dir.0.join("log");
    let log = std::os::unix::net::UnixDatagram::bind(&log_path).unwrap();
    log.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut a = vec![
        "-s",
        sock.to_str().unwrap(),
        "-P",
        pid_file.to_str().unwrap(),
    ];
    a.extend(args(&[]));
    let o = std::process::Command::new(PASST)
        .args(&a)
        .env("PASST_SYSLOG_SOCKET", &log_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut link = Link::connect(&sock);
    arp_exchange(&mut link);
    let want = format!("<30>passt[{pid}]: guest connected");
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let _ = wait_for(Duration::from_secs(5), || {
        if let Ok(n) = log.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got.contains(&want).then_some(())
    });
    let _ = run("kill", &[&pid.to_string()]);
    assert!(got.contains(&want), "syslog got {got:?}, want {want:?}");
}

#[test]
fn trace_logs_a_line_per_frame_both_ways_rate_limited() {
    let p = Passt::start("trace", &args(&["--trace"]));
    let mut link = p.connect();
    // One ARP request (42 bytes) and its reply (42 bytes).
    arp_exchange(&mut link);
    let seen = |text: &str| {
        wait_for(Duration::from_secs(5), || {
            p.log().contains(text).then_some(())
        })
        .is_some()
    };
    assert!(seen("frame from guest, 42 bytes"), "{}", p.log());
    assert!(seen("frame to guest, 42 bytes"), "{}", p.log());
    // 200 more within a second: a few lines, the rest counted and said at
    // the next line let through.
    std::thread::sleep(Duration::from_millis(1100));
    let before = p.log().matches("frame from guest").count();
    for _ in 0..200 {
        link.send(&arp_request(GUEST_MAC, GUEST, GW));
    }
    for _ in 0..200 {
        let _ = link.recv_type(ethertype::ARP);
    }
    std::thread::sleep(Duration::from_millis(1100));
    arp_exchange(&mut link);
    assert!(seen("similar messages suppressed"), "{}", p.log());
    let lines = p.log().matches("frame from guest").count() - before;
    assert!((1..=20).contains(&lines), "{lines} lines for 201 frames");
}
