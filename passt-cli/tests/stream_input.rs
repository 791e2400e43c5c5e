//! Bad and awkward input on passt's UNIX stream socket, against the real
//! daemon with the test as the guest: many records in one write, records
//! trickled byte by byte or with their length prefix split, lengths the
//! stream cannot carry, garbage and clients gone mid-record, and a guest
//! that reads slowly while passt's writes toward it come out short. Every
//! answer is checked byte by byte; the daemon must keep serving.

use core::net::Ipv4Addr;
use std::io::{ErrorKind, Read};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use passt_core::config::DEFAULT_OUR_MAC;
use passt_core::testing::build::{arp_request, GUEST_MAC};
use passt_core::wire::arp::{ArpOp, ArpRepr};
use passt_core::wire::dhcp::DhcpMessageType;
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::stream::MAX_FRAME_LEN;
use passt_core::wire::udp::UdpRepr;
use passt_core::wire::{checksum, ip_proto};

use crate::stream::{args, arp_exchange, dhcp, dhcp_reply, GUEST, GW};
use crate::support::{wait_for, Passt};

/// A frame with its 4-byte big-endian length prefix.
fn record(frame: &[u8]) -> Vec<u8> {
    let mut r = (frame.len() as u32).to_be_bytes().to_vec();
    r.extend_from_slice(frame);
    r
}

/// The `i`-th address asked for by ARP in a burst (never the guest's own,
/// which passt does not answer).
fn asked(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 100 + i as u8)
}

/// Check that `f` is passt's ARP reply to the guest's request for `tpa`.
fn check_arp_reply(f: &[u8], tpa: Ipv4Addr) {
    let (eth, body) = EthernetRepr::parse(f).expect("Ethernet header");
    assert_eq!(eth.ethertype, ethertype::ARP, "{f:02x?}");
    assert_eq!((eth.src, eth.dst), (DEFAULT_OUR_MAC, GUEST_MAC));
    let arp = ArpRepr::parse(body).expect("ARP body");
    assert_eq!(arp.op, ArpOp::Reply);
    assert_eq!((arp.sha, arp.spa), (DEFAULT_OUR_MAC, tpa));
    assert_eq!((arp.tha, arp.tpa), (GUEST_MAC, GUEST));
}

/// Wait until passt's log contains `needle`; the log.
fn log_with(p: &Passt, needle: &str) -> String {
    wait_for(Duration::from_secs(3), || {
        let l = p.log();
        l.contains(needle).then_some(l)
    })
    .unwrap_or_else(|| panic!("no {needle:?} in passt's log:\n{}", p.log()))
}

#[test]
fn fifty_arp_requests_and_ten_dhcp_discovers_in_one_write_are_all_answered() {
    let p = Passt::start("burst", &args(&[]));
    let mut link = p.connect();
    // 50 ARP requests, a DHCP discover after every fifth: one write of
    // 60 records.
    let mut all = Vec::new();
    let mut expect = Vec::new();
    for i in 0..50 {
        all.extend(record(&arp_request(GUEST_MAC, GUEST, asked(i))));
        expect.push(Err(asked(i)));
        if i % 5 == 4 {
            let xid = 0x5eed_0000 + i as u32;
            all.extend(record(&dhcp(DhcpMessageType::Discover, xid, None)));
            expect.push(Ok(xid));
        }
    }
    link.send_raw(&all);
    // The answers come in the order of the requests.
    for (n, want) in expect.iter().enumerate() {
        let f = link
            .recv()
            .unwrap_or_else(|| panic!("answer {n}:\n{}", p.log()));
        match *want {
            Err(tpa) => check_arp_reply(&f, tpa),
            Ok(xid) => {
                let (kind, yiaddr, router, ..) = dhcp_reply(&f, xid);
                assert_eq!(kind, DhcpMessageType::Offer);
                assert_eq!(yiaddr, GUEST);
                assert_eq!(router, GW.octets());
            }
        }
    }
    // Nothing more: no answer twice.
    link.0
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(link.recv().is_none(), "an extra frame");
}

#[test]
fn records_trickled_byte_by_byte_or_with_a_split_prefix_are_answered() {
    let p = Passt::start("trickle", &args(&[]));
    let mut link = p.connect();

    // One ARP request and one DHCP discover, a byte per write.
    let arp = record(&arp_request(GUEST_MAC, GUEST, asked(1)));
    for b in &arp {
        link.send_raw(&[*b]);
        std::thread::sleep(Duration::from_millis(2));
    }
    check_arp_reply(&link.recv().expect("ARP reply"), asked(1));
    let disc = record(&dhcp(DhcpMessageType::Discover, 0x7e57, None));
    for b in &disc {
        link.send_raw(&[*b]);
        std::thread::sleep(Duration::from_micros(500));
    }
    let f = link.recv().expect("DHCP offer");
    assert_eq!(dhcp_reply(&f, 0x7e57).0, DhcpMessageType::Offer);

    // Three records in three writes, each write ending inside the next
    // record's length prefix (after 1, 2 and 3 of its 4 bytes).
    let recs: Vec<Vec<u8>> = (2..6)
        .map(|i| record(&arp_request(GUEST_MAC, GUEST, asked(i))))
        .collect();
    let stream: Vec<u8> = recs.concat();
    let l = recs[0].len();
    let cuts = [0, l + 1, 2 * l + 2, 3 * l + 3, stream.len()];
    for w in cuts.windows(2) {
        link.send_raw(&stream[w[0]..w[1]]);
        std::thread::sleep(Duration::from_millis(40));
    }
    for i in 2..6 {
        check_arp_reply(&link.recv().expect("ARP reply"), asked(i));
    }
    // A prefix alone, then its frame much later.
    let arp = record(&arp_request(GUEST_MAC, GUEST, asked(7)));
    link.send_raw(&arp[..4]);
    std::thread::sleep(Duration::from_millis(200));
    link.send_raw(&arp[4..]);
    check_arp_reply(&link.recv().expect("ARP reply"), asked(7));
}

#[test]
fn short_records_are_skipped_and_too_long_ones_reset_with_a_log_line() {
    let mut p = Passt::start("lengths", &args(&[]));
    let mut link = p.connect();
    // Length 0, 10 and 13 (one short of an Ethernet header): skipped and
    // logged; the records after them are read in step.
    let mut s = vec![0, 0, 0, 0];
    s.extend(record(&[0xee; 10]));
    s.extend(record(&[0xee; 13]));
    s.extend(record(&arp_request(GUEST_MAC, GUEST, asked(1))));
    link.send_raw(&s);
    check_arp_reply(&link.recv().expect("ARP reply"), asked(1));
    let log = log_with(&p, "shorter than");
    assert_eq!(
        log.matches("skipped a record from the guest").count(),
        3,
        "{log}"
    );

    // The largest length the stream carries: read (and dropped as a
    // frame), the stream stays in step.
    let mut big = record(&vec![0xab; MAX_FRAME_LEN]);
    big.extend(record(&arp_request(GUEST_MAC, GUEST, asked(2))));
    link.send_raw(&big);
    check_arp_reply(&link.recv().expect("ARP reply"), asked(2));

    // One more: passt cannot follow the stream, resets it and says why.
    let mut bad = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
    bad.extend(record(&arp_request(GUEST_MAC, GUEST, asked(3))));
    link.send_raw(&bad);
    assert!(link.closed_by_peer(), "{}", p.log());
    let log = log_with(&p, "guest connection reset");
    assert!(
        log.contains(&format!("frame length {} exceeds", MAX_FRAME_LEN + 1)),
        "{log}"
    );
    assert!(p.running());

    // The next client is served.
    let mut link = p.connect();
    arp_exchange(&mut link);
    // Length u32::MAX too.
    link.send_raw(&[0xff; 4]);
    assert!(link.closed_by_peer(), "{}", p.log());
    log_with(&p, &format!("frame length {} exceeds", u32::MAX));
    let mut link = p.connect();
    arp_exchange(&mut link);
}

#[test]
fn garbage_frames_and_a_client_gone_mid_record_leave_the_daemon_serving() {
    let mut p = Passt::start("garbage", &args(&[]));
    let mut link = p.connect();
    // Records of valid lengths holding garbage (a simple generator, not
    // random: the run is the same every time), some with EtherTypes passt
    // parses further.
    let mut x: u32 = 0x1234_5678;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut s = Vec::new();
    for i in 0..40 {
        let len = 14 + (next() % 1500) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let et = [ethertype::IPV4, ethertype::ARP, ethertype::IPV6, 0x1234][i % 4];
        f[12..14].copy_from_slice(&et.to_be_bytes());
        if i % 2 == 0 {
            f[14] = 0x45; // looks like IPv4 without options
        }
        s.extend(record(&f));
    }
    s.extend(record(&arp_request(GUEST_MAC, GUEST, asked(9))));
    link.send_raw(&s);
    // Garbage gets no answer; the request after it does.
    let f = link.recv_type(ethertype::ARP).expect("ARP reply");
    check_arp_reply(&f, asked(9));

    // Length 1000, 300 bytes of it, then the client goes away.
    let mut cut = 1000u32.to_be_bytes().to_vec();
    cut.extend((0..300).map(|_| next() as u8));
    link.send_raw(&cut);
    std::thread::sleep(Duration::from_millis(50));
    drop(link);
    let log = log_with(&p, "unfinished frame");
    assert!(
        log.contains("dropped 304 bytes of an unfinished frame"),
        "{log}"
    );
    assert!(p.running(), "{log}");

    // The next client starts from a clean stream.
    let mut link = p.connect();
    arp_exchange(&mut link);
    check_arp_reply(
        &{
            link.send(&arp_request(GUEST_MAC, GUEST, asked(10)));
            link.recv().expect("ARP reply")
        },
        asked(10),
    );
}

/// Reads at most `chunk` bytes per call, pausing now and then: a guest
/// that takes its time.
struct SlowReader<'a> {
    inner: &'a mut std::os::unix::net::UnixStream,
    chunk: usize,
    /// Pause 1 ms after this many reads.
    every: usize,
    calls: usize,
}

impl Read for SlowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls % self.every == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

/// Issue 16's footprint: passt writes little memory at start (anonymous
/// memory, the binary's own pages left out: a debug build's are larger),
/// with one thread, and stays so once 4 MiB of large records went to the
/// guest.
#[test]
fn passt_is_small_at_start_and_after_a_stream_of_large_records() {
    const START_KB: u64 = 4096;
    let status_kb = |pid: u32, field: &str| {
        passt_sys::proc_status(pid, field).unwrap_or_else(|| panic!("no {field} of {pid}"))
    };
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = Passt::start("small", &args(&["-u", &port.to_string()]));
    let pid = p.pid().unwrap();
    let mut link = p.connect();
    arp_exchange(&mut link);
    let start = status_kb(pid, "RssAnon");
    assert!(start <= START_KB, "{start} kB of anonymous memory at start");
    assert_eq!(status_kb(pid, "Threads"), 1);
    // 4 MiB of large datagrams to the guest, each read as it comes.
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = vec![0u8; DATAGRAM_RECORD];
    for seq in 0..70 {
        tx.send_to(&payload(seq), ("127.0.0.1", port)).unwrap();
        let mut len = [0u8; 4];
        link.0.read_exact(&mut len).expect("a record");
        let len = u32::from_be_bytes(len) as usize;
        assert_eq!(len + 4, DATAGRAM_RECORD);
        link.0.read_exact(&mut buf[..len]).unwrap();
        assert!(buf[42..len] == payload(seq)[..], "datagram {seq}");
    }
    // Each record went out as it came: the ring never held more than one.
    let after = status_kb(pid, "RssAnon");
    assert!(
        after <= START_KB,
        "{after} kB of anonymous memory after 4 MiB"
    );
}

/// Datagrams sent to passt's forwarded UDP port in the slow-guest test:
/// more than passt's send buffer can hold (`net.core.wmem_max`, doubled by
/// the kernel: passt asks for as much as it may), by [`BEYOND_SOCKET`].
fn slow_guest_datagrams() -> u32 {
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(212_992);
    (2 * wmem_max).div_ceil(DATAGRAM_RECORD) as u32 + BEYOND_SOCKET
}

/// Datagrams of the slow-guest test beyond what passt's socket takes: they
/// wait in passt's tx ring, whose byte budget (8 MiB, about 130 such
/// frames) holds them all, so none is lost.
const BEYOND_SOCKET: u32 = 64;
/// Their size.
const DATAGRAM_LEN: usize = 60_000;

/// Datagram `seq`'s payload: its number, then bytes that depend on it.
fn payload(seq: u32) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((4..DATAGRAM_LEN).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8));
    p
}

/// Bytes waiting in the receive queues of the IPv4 UDP sockets bound to
/// `port`, from `/proc/net/udp` (`None` if there is none).
fn udp_rx_queue(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let suffix = format!(":{port:04X}");
    let mut found = None;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() > 4 && cols[1].ends_with(&suffix) {
            let rx = cols[4].split(':').nth(1)?;
            *found.get_or_insert(0) += u64::from_str_radix(rx, 16).ok()?;
        }
    }
    found
}

#[test]
fn a_slow_guest_reads_every_record_whole_and_in_order_after_short_writes() {
    // A free port on loopback for `-u` (the host side sends to it).
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_s = port.to_string();
    let mut p = Passt::start("slow", &args(&["-u", &port_s]));
    let mut link = p.connect();
    let datagrams = slow_guest_datagrams();
    // The guest's small receive buffer (AF_UNIX stream sockets charge
    // queued data to the sender's buffer, so this is the sender's limit
    // that matters, but a guest may ask).
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&link.0, 4096);
    // passt learns the guest's MAC address.
    arp_exchange(&mut link);

    assert!(udp_rx_queue(port).is_some(), "-u {port} bound nothing");
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    for seq in 0..datagrams {
        tx.send_to(&payload(seq), ("127.0.0.1", port)).unwrap();
        // Paced so that passt's host socket (of the default size, one or
        // two such datagrams) never overflows, even on a loaded machine:
        // the next one goes when passt has read this one.
        let deadline = Instant::now() + Duration::from_secs(2);
        while udp_rx_queue(port).is_some_and(|q| q > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    // The guest has not read yet: passt's writes stopped at a full socket,
    // with less queued than was sent.
    std::thread::sleep(Duration::from_millis(200));
    let queued = rustix::io::ioctl_fionread(&link.0).unwrap() as usize;
    let total = datagrams as usize * DATAGRAM_RECORD;
    assert!(queued < total, "{queued} of {total} bytes queued");

    // Requests the guest sends meanwhile wait until passt has written
    // what it holds; their answers come after it, in order.
    let mut reqs = Vec::new();
    for i in 0..20 {
        reqs.extend(record(&arp_request(GUEST_MAC, GUEST, asked(i))));
    }
    link.send_raw(&reqs);

    let mut r = SlowReader {
        inner: &mut link.0,
        chunk: 1500,
        every: 64,
        calls: 0,
    };
    let mut got = 0u32;
    let mut last: Option<u32> = None;
    let mut arps = 0;
    while got < datagrams || arps < 20 {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("reading: {e}"),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 42 {
            let mut f = vec![0u8; len];
            r.read_exact(&mut f).expect("the rest of a record");
            check_arp_reply(&f, asked(arps));
            arps += 1;
            continue;
        }
        assert_eq!(
            len,
            14 + 20 + 8 + DATAGRAM_LEN,
            "record {got}: a cut record"
        );
        let mut f = vec![0u8; len];
        r.read_exact(&mut f).expect("the rest of a record");
        let (eth, l3) = EthernetRepr::parse(&f).unwrap();
        assert_eq!((eth.src, eth.dst), (DEFAULT_OUR_MAC, GUEST_MAC));
        assert_eq!(eth.ethertype, ethertype::IPV4);
        let (ip, l4) = Ipv4Repr::parse(l3, true).expect("IPv4 header checksum");
        assert_eq!((ip.src, ip.dst, ip.protocol), (GW, GUEST, ip_proto::UDP));
        let pseudo = checksum::pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
        let udp = UdpRepr::parse(l4, Some(pseudo), false).expect("UDP checksum");
        assert_eq!(udp.dst_port, port);
        let seq = u32::from_be_bytes(udp.payload[..4].try_into().unwrap());
        assert!(last.map_or(true, |l| seq > l), "{seq} after {last:?}");
        assert!(udp.payload == payload(seq), "datagram {seq}: payload");
        last = Some(seq);
        got += 1;
    }
    eprintln!(
        "slow guest: {got} of {datagrams} datagrams, {arps} ARP replies, \
         {queued} bytes queued before reading, {:?}",
        started.elapsed()
    );
    assert_eq!((got, arps), (datagrams, 20), "{}", p.log());
    // And the guest is still served.
    arp_exchange(&mut link);
    assert!(p.running());
}

/// Record length of one of the slow-guest test's datagrams.
const DATAGRAM_RECORD: usize = 4 + 14 + 20 + 8 + DATAGRAM_LEN;

/// Send datagrams `seqs` to passt's forwarded `port`, each once passt has
/// read the one before.
fn send_paced(port: u16, seqs: core::ops::Range<u32>) {
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in seqs {
        tx.send_to(&payload(seq), ("127.0.0.1", port)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while udp_rx_queue(port).is_some_and(|q| q > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// A free UDP port on loopback (for `-u`).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_guest_that_stops_sending_while_passt_waits_to_write_costs_no_cpu() {
    let port = free_udp_port();
    let port_s = port.to_string();
    let mut p = Passt::start("halfclose", &args(&["-u", &port_s]));
    let mut link = p.connect();
    arp_exchange(&mut link);
    // More than passt's send buffer: passt waits for room to write.
    send_paced(port, 0..200);
    std::thread::sleep(Duration::from_millis(200));
    let queued = rustix::io::ioctl_fionread(&link.0).unwrap() as usize;
    assert!(queued < 200 * DATAGRAM_RECORD, "{queued} bytes queued");

    // The guest shuts down its sending side but still reads: passt has
    // nothing to do until there is room, and must not spin meanwhile.
    link.0.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = p.cpu_ticks().expect("passt's CPU time");
    std::thread::sleep(Duration::from_secs(1));
    let t1 = p.cpu_ticks().expect("passt's CPU time");
    assert!(t1 - t0 < 30, "passt used {} ticks in 1 s", t1 - t0);

    // Everything passt held still arrives, whole and in order.
    let mut seq = 0;
    while let Some(f) = link.recv() {
        let (_, l3) = EthernetRepr::parse(&f).unwrap();
        let (_, l4) = Ipv4Repr::parse(l3, true).unwrap();
        let udp = UdpRepr::parse(l4, None, false).unwrap();
        assert!(udp.payload == payload(seq), "datagram {seq}");
        seq += 1;
        if seq == 200 {
            break;
        }
    }
    assert_eq!(seq, 200, "{}", p.log());
    drop(link);
    log_with(&p, "guest disconnected");
    let mut link = p.connect();
    arp_exchange(&mut link);
    assert!(p.running());
}

#[test]
fn a_guest_gone_in_the_middle_of_a_record_to_it_leaves_the_next_one_a_clean_stream() {
    let port = free_udp_port();
    let port_s = port.to_string();
    let mut p = Passt::start("gonemid", &args(&["-u", &port_s]));
    let mut link = p.connect();
    arp_exchange(&mut link);
    send_paced(port, 0..200);
    std::thread::sleep(Duration::from_millis(200));
    // Read one record and a half, then go away with passt's ring full.
    assert!(link.recv().is_some());
    let mut half = vec![0u8; DATAGRAM_RECORD / 2];
    link.0.read_exact(&mut half).unwrap();
    drop(link);
    // Seen as a failed write or as the end of the connection, depending
    // on which the kernel reports first.
    let gone = wait_for(Duration::from_secs(3), || {
        let l = p.log();
        (l.contains("guest connection reset") || l.contains("guest disconnected")).then_some(())
    });
    assert!(gone.is_some(), "{}", p.log());

    // The next guest starts from the beginning of a record: its ARP
    // reply first, then new datagrams, whole.
    let mut link = p.connect();
    arp_exchange(&mut link);
    send_paced(port, 1000..1010);
    for seq in 1000..1010 {
        let f = link.recv().expect("datagram");
        let (_, l3) = EthernetRepr::parse(&f).unwrap();
        let (ip, l4) = Ipv4Repr::parse(l3, true).unwrap();
        assert_eq!(ip.dst, GUEST);
        let pseudo = checksum::pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
        let udp = UdpRepr::parse(l4, Some(pseudo), false).expect("UDP checksum");
        assert!(udp.payload == payload(seq), "datagram {seq}");
    }
    assert!(p.running());
}

#[test]
fn megabytes_of_largest_records_between_requests_keep_the_stream_in_step() {
    let p = Passt::start("bulk", &args(&[]));
    let mut link = p.connect();
    // 100 times: a record of the largest length (a frame nobody answers)
    // and an ARP request, some of the big ones cut in odd places by the
    // writes; 6.5 MB that passt's 256 KiB buffer takes in many reads, with
    // unfinished records moved to its front.
    let mut s = Vec::new();
    for i in 0..100 {
        let mut big = vec![(i as u8).wrapping_mul(7); MAX_FRAME_LEN];
        big[..6].copy_from_slice(&DEFAULT_OUR_MAC.0);
        big[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental
        s.extend(record(&big));
        s.extend(record(&arp_request(GUEST_MAC, GUEST, asked(i))));
    }
    let mut w = link.0.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        for chunk in s.chunks(99_991) {
            w.write_all(chunk).unwrap();
        }
    });
    for i in 0..100 {
        let f = link
            .recv()
            .unwrap_or_else(|| panic!("ARP reply {i}:\n{}", p.log()));
        check_arp_reply(&f, asked(i));
    }
    writer.join().unwrap();
    assert!(!p.log().contains("reset"), "{}", p.log());
}

/// The `i`-th address of a long ARP burst (198.18.0.0/15, never the
/// guest's).
fn asked_wide(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_0000 + i)
}

#[test]
fn requests_read_while_the_guest_drains_slowly_are_all_answered_in_order() {
    const REQUESTS: u32 = 40_000;
    let port = free_udp_port();
    let port_s = port.to_string();
    let mut p = Passt::start("drain", &args(&["-u", &port_s]));
    let mut link = p.connect();
    arp_exchange(&mut link);
    // passt's send buffer full, the rest of 200 datagrams in its ring.
    send_paced(port, 0..200);
    std::thread::sleep(Duration::from_millis(200));
    // A long burst of requests behind it, from a thread (passt reads them
    // as room appears toward the guest).
    let mut s = Vec::new();
    for i in 0..REQUESTS {
        s.extend(record(&arp_request(GUEST_MAC, GUEST, asked_wide(i))));
    }
    // A guest with a large send buffer: each of passt's reads may take
    // as much as its receive buffer holds.
    rustix::net::sockopt::set_socket_send_buffer_size(&link.0, 4 << 20).unwrap();
    let mut w = link.0.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all(&s).unwrap();
    });
    // The guest drains slowly: passt resumes reading only once it has
    // written what it held, then answers behind the datagrams.
    let mut r = SlowReader {
        inner: &mut link.0,
        chunk: 1000,
        every: 64,
        calls: 0,
    };
    let (mut udp, mut arp) = (0u32, 0u32);
    while udp < 200 || arp < REQUESTS {
        let mut len = [0u8; 4];
        if r.read_exact(&mut len).is_err() {
            break;
        }
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        r.read_exact(&mut f).expect("the rest of a record");
        if f.len() == 42 {
            check_arp_reply(&f, asked_wide(arp));
            arp += 1;
        } else {
            assert_eq!(f.len() + 4, DATAGRAM_RECORD, "a cut record");
            let (_, l3) = EthernetRepr::parse(&f).unwrap();
            let (_, l4) = Ipv4Repr::parse(l3, true).unwrap();
            let d = UdpRepr::parse(l4, None, false).unwrap();
            assert!(d.payload == payload(udp), "datagram {udp}");
            udp += 1;
        }
    }
    assert_eq!((udp, arp), (200, REQUESTS), "{}", p.log());
    writer.join().unwrap();
    assert!(!p.log().contains("reset"), "{}", p.log());
    assert!(p.running());
}

/// Wait for passt's next UDP frame to the guest and check that it carries
/// datagram `seq` from the forwarded `port`, whole.
fn expect_datagram(link: &mut crate::support::Link, port: u16, seq: u32) {
    for _ in 0..8 {
        let f = link.recv().unwrap_or_else(|| panic!("no datagram {seq}"));
        let (eth, l3) = EthernetRepr::parse(&f).unwrap();
        if eth.ethertype != ethertype::IPV4 {
            continue;
        }
        let (ip, l4) = Ipv4Repr::parse(l3, true).expect("IPv4 header checksum");
        assert_eq!((ip.src, ip.dst, ip.protocol), (GW, GUEST, ip_proto::UDP));
        let pseudo = checksum::pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
        let udp = UdpRepr::parse(l4, Some(pseudo), false).expect("UDP checksum");
        assert_eq!(udp.dst_port, port);
        assert!(udp.payload == payload(seq), "datagram {seq}: payload");
        return;
    }
    panic!("no UDP frame among the next 8");
}

#[test]
fn twenty_lying_or_vanishing_clients_in_a_row_leave_the_next_one_served_each_time() {
    let port = free_udp_port();
    let port_s = port.to_string();
    let mut p = Passt::start("liars", &args(&["-u", &port_s]));
    for round in 0..20u32 {
        let mut bad = p.connect();
        match round % 5 {
            // Longer than any frame: passt resets the stream.
            0 => {
                let mut b = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
                b.extend(record(&arp_request(GUEST_MAC, GUEST, asked(1))));
                bad.send_raw(&b);
            }
            // Length 0, then gone.
            1 => bad.send_raw(&[0, 0, 0, 0]),
            // Shorter than an Ethernet header, then gone.
            2 => bad.send_raw(&record(&[0xee; 10])),
            // Gone in the middle of a record.
            3 => {
                let mut b = 1000u32.to_be_bytes().to_vec();
                b.extend([0x5a; 300]);
                bad.send_raw(&b);
            }
            // Connected and gone at once.
            _ => {}
        }
        drop(bad);
        // Reconnect at once: passt may not have seen the hang-up yet, and
        // must serve this one all the same.
        let mut link = p.connect();
        arp_exchange(&mut link);
        // The same forwarded flow on every good connection, intact.
        send_paced(port, round..round + 1);
        expect_datagram(&mut link, port, round);
        drop(link);
        assert!(p.running(), "round {round}:\n{}", p.log());
    }
    let log = p.log();
    assert!(!log.contains("refusing"), "{log}");
    assert!(log.contains("exceeds"), "{log}");
    assert!(log.contains("unfinished frame"), "{log}");
}

/// Whether `hay` holds `needle` anywhere.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn twenty_seven_quick_reconnects_are_all_served() {
    let mut p = Passt::start("storm", &args(&[]));
    // Connect, send a frame, close, and reconnect at once: each request
    // is read (it is in passt's capture), so each connection was served
    // and none refused while the one before was still being hung up.
    for i in 0..27 {
        let mut link = p.connect();
        link.send(&arp_request(GUEST_MAC, GUEST, asked(i)));
    }
    // The last one, answered.
    let mut link = p.connect();
    arp_exchange(&mut link);
    let pcap = std::fs::read(p.dir.0.join("passt.pcap")).expect("capture");
    let missing: Vec<usize> = (0..27)
        .filter(|&i| !contains(&pcap, &arp_request(GUEST_MAC, GUEST, asked(i))))
        .collect();
    assert!(
        missing.is_empty(),
        "requests not read: {missing:?}\n{}",
        p.log()
    );
    assert!(p.running());
    let log = p.log();
    assert!(!log.contains("refusing"), "{log}");
}
