//! The data path allocates nothing: a counting global allocator stays still
//! while the translator takes frames and answers them, and while the socket
//! executor sends and receives batches of datagrams on loopback sockets
//! (`sendmmsg`, UDP GSO, `recvmmsg` and `recvfrom`: the executor with and
//! without the calls of passt-sys it makes for the drivers).

use passt_core::addr::SockAddrAny;
use passt_core::buf::{FrameDesc, RxBatch, TxRing};
use passt_core::testing::build::{
    arp_request, icmp4_echo, test_config, udp4, GUEST4, GUEST_MAC, GW4, REMOTE4,
};
use passt_core::testing::pcap::read_pcap;
use passt_core::time::Instant;
use passt_core::wire::ethernet::EthernetRepr;
use passt_core::wire::frame;
use passt_core::{Completion, Done, Ready, SockId, SockOp, Translator};

/// Counts allocations made by the current thread (tests run in parallel).
#[global_allocator]
static GLOBAL: passt_sys::count_alloc::PerThread = passt_sys::count_alloc::PerThread;

fn allocs() -> u64 {
    passt_sys::count_alloc::thread_allocs()
}

#[test]
fn steady_traffic_allocates_nothing() {
    // Everything allocated up front: translator, ring, arena, descriptors.
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let frames = [
        arp_request(GUEST_MAC, GUEST4, GW4),
        arp_request(GUEST_MAC, GUEST4, REMOTE4),
        udp4(GUEST4, 40000, REMOTE4, 53, b"a Send on its UDP flow"),
        vec![0u8; 7], // truncated: counted drop with an event
    ];
    let mut arena = Vec::new();
    let mut descs = Vec::new();
    for f in &frames {
        descs.push(FrameDesc::new(arena.len() as u32, f.len() as u32));
        arena.extend_from_slice(f);
    }
    let mut replies = 0usize;

    let before = allocs();
    for round in 0..10_000u64 {
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let now = Instant::from_nanos(round * 1000);
        t.handle_tap(now, &rx, &mut tx);
        while t.poll_op().is_some() {}
        replies += tx.len();
        tx.clear();
        while t.poll_event().is_some() {}
        t.handle_timeout(now, &mut tx);
    }
    let after = allocs();

    assert_eq!(replies, 20_000, "two ARP replies per round");
    assert_eq!(t.stats().frames_in, 40_000);
    assert_eq!(after - before, 0, "allocations on the data path");
}

#[test]
fn dhcp_exchanges_allocate_nothing() {
    // The real udhcpc and dhclient DISCOVER and REQUEST for 192.0.2.104,
    // a RELEASE (no reply) and a REQUEST for another address (NAK), with a
    // search list so that every option is written.
    let mut config = test_config();
    config.ip4.as_mut().unwrap().addr = core::net::Ipv4Addr::new(192, 0, 2, 104);
    config.search = vec!["example.org".into(), "test.example".into()];
    let mut t = Translator::new(config, Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let captured = read_pcap(include_bytes!("vectors/dhcp.pcap")).unwrap();
    // udhcpc's REQUEST asking for 192.0.2.105 instead (option 50), rebuilt
    // with its lengths and checksums before counting starts.
    let request = &captured[2].data;
    let mut dhcp = request[14 + 20 + 8..].to_vec();
    let opt50 = 240 + 3 + 2;
    assert_eq!(dhcp[opt50 - 2..opt50 + 4], [50, 4, 192, 0, 2, 104]);
    dhcp[opt50 + 3] = 105;
    let eth = EthernetRepr::parse(request).unwrap().0;
    let mut nak = vec![0u8; 1000];
    let any = core::net::Ipv4Addr::UNSPECIFIED;
    let bcast = core::net::Ipv4Addr::BROADCAST;
    let n = frame::udp4(&mut nak, &eth, any, 68, bcast, 67, 64, |p| {
        p[..dhcp.len()].copy_from_slice(&dhcp);
        Ok(dhcp.len())
    })
    .unwrap();
    nak.truncate(n);
    let mut arena = Vec::new();
    let mut descs = Vec::new();
    for f in [
        &captured[0].data,
        &captured[2].data,
        &captured[4].data,
        &captured[5].data,
        &captured[7].data,
        &nak,
    ] {
        descs.push(FrameDesc::new(arena.len() as u32, f.len() as u32));
        arena.extend_from_slice(f);
    }
    let mut replies = 0usize;

    let before = allocs();
    for round in 0..2_000u64 {
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let now = Instant::from_nanos(round * 1000);
        t.handle_tap(now, &rx, &mut tx);
        while t.poll_op().is_some() {}
        replies += tx.len();
        tx.clear();
        while t.poll_event().is_some() {}
    }
    let after = allocs();

    assert_eq!(replies, 10_000, "five replies per round");
    assert_eq!(t.stats().dhcp_replies, 10_000);
    assert_eq!(t.stats().drops.iter().sum::<u64>(), 0);
    assert_eq!(after - before, 0, "allocations on the DHCP path");
}

/// Run every queued operation as a driver would: opens and sends succeed,
/// a receive gets one datagram (`reply`) and ends.
fn run_ops(t: &mut Translator, tx: &mut TxRing, now: Instant, reply: &[u8], from: SockAddrAny) {
    while let Some(op) = t.poll_op() {
        let (id, res): (SockId, _) = match op {
            SockOp::Open { id, .. } => (id, Ok(Done::Opened)),
            SockOp::Send { id, payload } => (id, Ok(Done::Bytes(payload.len))),
            SockOp::Recv { id, into } => {
                let area = tx.payload_areas(into).next().unwrap();
                area[..reply.len()].copy_from_slice(reply);
                let len = reply.len() as u32;
                let res = Ok(Done::Datagram { len, from });
                t.handle_completion(now, Completion { id, res }, tx);
                (id, Ok(Done::Datagrams { count: 1 }))
            }
            op => panic!("{op:?}"),
        };
        t.handle_completion(now, Completion { id, res }, tx);
    }
}

#[test]
fn udp_and_echo_flows_allocate_nothing() {
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let frames = [
        udp4(GUEST4, 40000, REMOTE4, 5000, b"datagram to a flow"),
        icmp4_echo(GUEST4, REMOTE4, 7, 1, b"ping"),
    ];
    let mut arena = Vec::new();
    let mut descs = Vec::new();
    for f in &frames {
        descs.push(FrameDesc::new(arena.len() as u32, f.len() as u32));
        arena.extend_from_slice(f);
    }
    let rx = RxBatch::new(&arena, &descs).unwrap();
    // Set-up round: the flows and their sockets (ids 0 and 1).
    t.handle_tap(Instant::ZERO, &rx, &mut tx);
    let from = SockAddrAny::new(REMOTE4, 5000);
    run_ops(&mut t, &mut tx, Instant::ZERO, b"", from);
    let (udp, echo) = (SockId::from_parts(0, 1), SockId::from_parts(1, 1));
    let reply = [0u8, 0, 0, 0, 0, 99, 0, 1, b'p', b'i', b'n', b'g'];
    tx.clear();

    let before = allocs();
    for round in 1..5_000u64 {
        let now = Instant::from_nanos(round * 1_000_000);
        t.handle_tap(now, &rx, &mut tx);
        run_ops(&mut t, &mut tx, now, b"", from);
        t.handle_ready(now, udp, Ready::READABLE, &mut tx);
        run_ops(&mut t, &mut tx, now, b"reply from the host", from);
        t.handle_ready(now, echo, Ready::READABLE, &mut tx);
        run_ops(&mut t, &mut tx, now, &reply, SockAddrAny::new(REMOTE4, 0));
        assert_eq!(tx.len(), 2, "round {round}");
        tx.clear();
        while t.poll_event().is_some() {}
        t.handle_timeout(now, &mut tx);
    }
    let after = allocs();

    let s = t.stats();
    assert_eq!((s.udp.to_guest, s.icmp.replies), (4_999, 4_999));
    assert_eq!(s.drops.iter().sum::<u64>(), 0);
    assert_eq!(after - before, 0, "allocations on the UDP and echo paths");
}

#[test]
fn steady_tcp_data_allocates_nothing() {
    use passt_core::testing::build::{parse_tcp, tcp4};
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let now = Instant::from_nanos(1000);
    let one = |f: &[u8]| (f.to_vec(), vec![FrameDesc::new(0, f.len() as u32)]);
    // Handshake, with allocation allowed.
    let (a, d) = one(&tcp4(GUEST4, 40000, REMOTE4, 80).syn().seq(100).build());
    t.handle_tap(now, &RxBatch::new(&a, &d).unwrap(), &mut tx);
    let Some(SockOp::Open { id, .. }) = t.poll_op() else {
        panic!("no Open")
    };
    t.handle_completion(
        now,
        Completion {
            id,
            res: Ok(Done::Opened),
        },
        &mut tx,
    );
    t.handle_ready(now, id, Ready::WRITABLE, &mut tx);
    let s = parse_tcp(tx.front().unwrap().frame).seq + 1;
    tx.clear();
    const ROUNDS: u32 = 2000;
    // Every guest segment of the run, built before counting: data (64
    // bytes) acknowledging everything the host sent so far.
    let mut frames = Vec::new();
    for r in 0..=ROUNDS {
        frames.push(
            tcp4(GUEST4, 40000, REMOTE4, 80)
                .seq(101 + r * 64)
                .ack(s + r * 100)
                .payload(&[r as u8; 64])
                .build(),
        );
    }
    let mut arenas = Vec::new();
    for f in &frames {
        arenas.push(one(f));
    }
    let mut sent = 0u64;
    let mut got = 0u64;
    let run_ops = |t: &mut Translator, tx: &mut TxRing, sent: &mut u64| {
        while let Some(op) = t.poll_op() {
            let res = match op {
                SockOp::Send { payload, .. } => Some(Ok(Done::Bytes(payload.len))),
                SockOp::Peek { into, .. } => {
                    let mut n = 0u32;
                    for area in tx.payload_areas(into) {
                        let k = area.len().min(100 - n as usize);
                        area[..k].fill(b'h');
                        n += k as u32;
                    }
                    *sent += u64::from(n);
                    Some(Ok(Done::Bytes(n)))
                }
                _ => None,
            };
            if let Some(res) = res {
                t.handle_completion(now, Completion { id, res }, tx);
            }
        }
    };
    let before = allocs();
    for (a, d) in arenas.iter().take(ROUNDS as usize) {
        let rx = RxBatch::new(a, d).unwrap();
        t.handle_tap(now, &rx, &mut tx);
        run_ops(&mut t, &mut tx, &mut sent);
        t.handle_ready(now, id, Ready::READABLE, &mut tx);
        run_ops(&mut t, &mut tx, &mut sent);
        got += tx.len() as u64;
        tx.clear();
    }
    let after = allocs();
    assert_eq!(after - before, 0, "allocations on the TCP data path");
    assert!(sent >= u64::from(ROUNDS) * 100);
    assert!(
        got >= u64::from(ROUNDS) * 2,
        "a data segment and an ACK per round"
    );
}

#[cfg(feature = "host")]
#[test]
fn executor_peek_send_and_query_allocate_nothing() {
    use std::io::{Read, Write};

    // Loopback only: a listener of this test and one executor socket.
    let mut tx = TxRing::new(64, 2048, 4);
    let (mut exec, id, mut peer) = crate::exec::connected_executor(&mut tx);
    let payload = b"one guest segment".to_vec();
    let descs = [FrameDesc::new(0, payload.len() as u32)];
    let chunk: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let mut back = vec![0u8; payload.len()];

    let before = allocs();
    for _ in 0..500 {
        peer.write_all(&chunk).unwrap();
        // The host's bytes, peeked into two payload areas and dropped.
        let mut got = 0usize;
        while got < chunk.len() {
            let into = tx.reserve_slots(2, 64, 1500).unwrap();
            let c = exec.run(SockOp::Peek { id, skip: 0, into }, &RxBatch::EMPTY, &mut tx);
            let n = match c.map(|c| c.res) {
                Some(Ok(Done::Bytes(n))) => n as usize,
                Some(Err(e)) if e == passt_core::Errno::EAGAIN => 0,
                other => panic!("{other:?}"),
            };
            let mut seen = 0usize;
            for area in tx.payload_areas(into) {
                let k = area.len().min(n - seen);
                assert_eq!(area[..k], chunk[got + seen..got + seen + k]);
                seen += k;
            }
            tx.cancel_pending();
            let d = SockOp::Discard { id, len: n as u32 };
            assert!(exec.run(d, &RxBatch::EMPTY, &mut tx).is_none());
            got += n;
        }
        // A guest segment written, and the free space asked for.
        let rx = RxBatch::new(&payload, &descs).unwrap();
        let span = passt_core::buf::RxSpan {
            frame: 0,
            offset: 0,
            len: payload.len() as u32,
        };
        let sent = exec.run(SockOp::Send { id, payload: span }, &rx, &mut tx);
        assert!(matches!(
            sent.map(|c| c.res),
            Some(Ok(Done::Bytes(17) | Done::Sent { bytes: 17, .. }))
        ));
        let _ = exec.run(SockOp::Query { id }, &rx, &mut tx);
        peer.read_exact(&mut back).unwrap();
        assert_eq!(back, payload);
    }
    let after = allocs();
    assert_eq!(after - before, 0, "allocations in the executor");
}

/// Room for eight epoll events, and a 5 s wait: the executor tests' loops.
#[cfg(feature = "host")]
fn epoll_wait_args() -> ([rustix::event::epoll::Event; 8], rustix::time::Timespec) {
    use rustix::event::epoll;
    let empty = epoll::Event {
        flags: epoll::EventFlags::empty(),
        data: epoll::EventData::new_u64(0),
    };
    let timeout = rustix::time::Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    ([empty; 8], timeout)
}

/// Datagrams of one guest flow in a batch of frames, in [`executor_udp_rounds`].
#[cfg(feature = "host")]
const FLOW_BATCH: usize = 8;

/// Steady UDP traffic through the [`SockExec`](passt_core::host::exec::SockExec)
/// on real loopback sockets: each round the guest sends [`FLOW_BATCH`]
/// datagrams to the host's loopback (through `map_host_loopback`, one
/// `sendmmsg` or segmented send), a host socket reads and answers each, and
/// the answers come back through epoll, `Recv` and the translator as frames
/// to the guest. `calls` are the executor's calls beyond rustix's. Returns the
/// allocations counted over the last `rounds - warm_up` rounds.
#[cfg(feature = "host")]
fn executor_udp_rounds(calls: passt_core::host::exec::Calls, warm_up: u64, rounds: u64) -> u64 {
    use passt_core::host::exec::{id_of, SockExec};
    use passt_core::testing::build::{GUEST4, GW4};
    use rustix::event::epoll;
    use std::net::UdpSocket;

    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let port = server.local_addr().unwrap().port();
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(256, 2048, 4);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let max = t.config().limits.max_sockets;
    let mut exec = SockExec::with_calls(max, ep.try_clone().unwrap(), calls);
    // Every payload and frame built before counting: the guest's
    // datagrams (equal lengths, so a segmenting executor sends them as
    // one) and the host's answers (long enough that no frame is padded).
    let ask: Vec<[u8; 24]> = (0..FLOW_BATCH as u8)
        .map(|k| b"guest datagram #.......!".map(|c| if c == b'#' { b'a' + k } else { c }))
        .collect();
    let answer: Vec<[u8; 26]> = (0..FLOW_BATCH as u8)
        .map(|k| b"host answers datagram #..!".map(|c| if c == b'#' { b'a' + k } else { c }))
        .collect();
    let mut arena = Vec::new();
    let mut descs = Vec::new();
    for a in &ask {
        let f = udp4(GUEST4, 40000, GW4, port, a);
        descs.push(FrameDesc::new(arena.len() as u32, f.len() as u32));
        arena.extend_from_slice(&f);
    }
    let (mut events, timeout) = epoll_wait_args();
    let mut buf = [0u8; 64];
    let mut before = allocs();

    for round in 0..rounds {
        if round == warm_up {
            before = allocs();
        }
        let now = Instant::from_nanos((round + 1) * 1_000_000);
        let rx = RxBatch::new(&arena, &descs).unwrap();
        t.handle_tap(now, &rx, &mut tx);
        exec.run_ops(&mut t, now, &rx, &mut tx);
        assert_eq!(exec.errors, 0);
        // The host side: every datagram, in order, answered in turn.
        for (a, b) in ask.iter().zip(&answer) {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], a, "round {round}");
            assert_eq!(from.ip(), std::net::Ipv4Addr::LOCALHOST);
            server.send_to(b, from).unwrap();
        }
        // The answers, as frames from GW4:port to GUEST4:40000.
        let mut got = 0;
        while got < FLOW_BATCH {
            let n = epoll::wait(&ep, &mut events[..], Some(&timeout)).unwrap();
            assert!(n > 0, "round {round}: no answer within 5 s");
            for ev in &events[..n] {
                let (flags, data) = (ev.flags, ev.data);
                let id = id_of(data.u64()).unwrap();
                exec.ready(&mut t, now, id, flags, &mut tx);
            }
            exec.run_ops(&mut t, now, &RxBatch::EMPTY, &mut tx);
            for f in tx.iter() {
                let f = f.frame;
                let want = answer.get(got).unwrap();
                assert_eq!(f.len(), 14 + 20 + 8 + want.len(), "round {round}");
                assert_eq!(&f[26..30], &GW4.octets());
                assert_eq!(&f[30..34], &GUEST4.octets());
                assert_eq!(&f[34..38], &[(port >> 8) as u8, port as u8, 0x9c, 0x40]);
                assert_eq!(&f[42..], want, "round {round}");
                got += 1;
            }
            tx.clear();
            while t.poll_event().is_some() {}
        }
        t.handle_timeout(now, &mut tx);
        assert_eq!(tx.len(), 0);
    }
    let after = allocs();
    let s = t.stats();
    let n = rounds * FLOW_BATCH as u64;
    assert_eq!((s.udp.to_guest, s.drops.iter().sum::<u64>()), (n, 0));
    after - before
}

#[cfg(feature = "host")]
#[test]
fn executor_udp_batches_allocate_nothing() {
    // sendmmsg for the guest's datagrams, recvfrom for the host's.
    let n = executor_udp_rounds(passt_core::host::exec::Calls::empty(), 10, 110);
    assert_eq!(n, 0, "allocations on the executor's datagram path");
}

#[cfg(feature = "host")]
#[test]
fn executor_udp_batches_with_recvmmsg_allocate_nothing() {
    // sendmmsg for the guest's datagrams, one recvmmsg for the host's.
    let n = executor_udp_rounds(passt_core::host::exec::Calls::RECVMMSG, 10, 110);
    assert_eq!(n, 0, "allocations on the executor's recvmmsg path");
}

#[cfg(feature = "host")]
#[test]
fn executor_udp_segmented_batches_allocate_nothing() {
    // The guest's equal-sized datagrams as one segmented send where the
    // kernel has UDP GSO (else sendmmsg, after the executor stops asking);
    // one recvmmsg for the host's answers.
    let n = executor_udp_rounds(
        passt_core::host::exec::Calls::RECVMMSG | passt_core::host::exec::Calls::UDP_SEGMENT,
        10,
        110,
    );
    assert_eq!(n, 0, "allocations on the executor's segmented path");
}

/// The payload of a TCP/IPv4 frame to the guest (no IP options).
#[cfg(feature = "host")]
fn tcp4_payload(frame: &[u8]) -> &[u8] {
    let doff = usize::from(frame[14 + 20 + 12] >> 4) * 4;
    &frame[14 + 20 + doff..]
}

#[cfg(feature = "host")]
#[test]
fn executor_tcp_data_allocates_nothing() {
    use passt_core::host::exec::{id_of, SockExec};
    use passt_core::testing::build::{parse_tcp, tcp4, GUEST4, GW4};
    use rustix::event::epoll;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    // Steady TCP data both ways through the executor on a loopback
    // connection: each round the host writes 100 bytes, which reach the
    // guest through epoll and `Peek`, and the guest acknowledges them with
    // 64 bytes of its own, written to the host's socket by a `Send`.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(256, 2048, 4);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let max = t.config().limits.max_sockets;
    let mut exec = SockExec::with_calls(
        max,
        ep.try_clone().unwrap(),
        passt_core::host::exec::Calls::empty(),
    );
    let (mut events, timeout) = epoll_wait_args();
    let now = Instant::from_nanos(1_000_000);
    let mut wake = |t: &mut Translator, exec: &mut SockExec, tx: &mut TxRing| {
        let n = epoll::wait(&ep, &mut events[..], Some(&timeout)).unwrap();
        assert!(n > 0, "no readiness within 5 s");
        for ev in &events[..n] {
            let (flags, data) = (ev.flags, ev.data);
            exec.ready(t, now, id_of(data.u64()).unwrap(), flags, tx);
        }
        exec.run_ops(t, now, &RxBatch::EMPTY, tx);
    };
    let one = |f: &[u8]| (f.to_vec(), vec![FrameDesc::new(0, f.len() as u32)]);

    // Handshake, allocations allowed: SYN, the connect, SYN-ACK, ACK.
    let (a, d) = one(&tcp4(GUEST4, 40000, GW4, port).syn().seq(100).build());
    let rx = RxBatch::new(&a, &d).unwrap();
    t.handle_tap(now, &rx, &mut tx);
    exec.run_ops(&mut t, now, &rx, &mut tx);
    let (mut server, _) = listener.accept().unwrap();
    while tx.is_empty() {
        wake(&mut t, &mut exec, &mut tx);
    }
    let synack = parse_tcp(tx.front().unwrap().frame);
    assert_eq!((synack.sport, synack.dport, synack.ack), (port, 40000, 101));
    let s = synack.seq + 1;
    tx.clear();
    let (a, d) = one(&tcp4(GUEST4, 40000, GW4, port).seq(101).ack(s).build());
    let rx = RxBatch::new(&a, &d).unwrap();
    t.handle_tap(now, &rx, &mut tx);
    exec.run_ops(&mut t, now, &rx, &mut tx);
    tx.clear();

    const ROUNDS: u32 = 120;
    const WARM_UP: u32 = 20;
    // The guest's segments, built before counting: 64 bytes of data each,
    // acknowledging the host's 100 bytes of the same round.
    let guest: Vec<_> = (0..ROUNDS)
        .map(|r| {
            one(&tcp4(GUEST4, 40000, GW4, port)
                .seq(101 + r * 64)
                .ack(s + (r + 1) * 100)
                .payload(&[r as u8; 64])
                .build())
        })
        .collect();
    let mut before = allocs();
    for (r, (a, d)) in (0..ROUNDS).zip(&guest) {
        if r == WARM_UP {
            before = allocs();
        }
        let byte = 0x80 | r as u8;
        server.write_all(&[byte; 100]).unwrap();
        let mut got = 0;
        while got < 100 {
            wake(&mut t, &mut exec, &mut tx);
            for f in tx.iter() {
                let p = tcp4_payload(f.frame);
                assert!(p.iter().all(|&b| b == byte), "round {r}");
                got += p.len();
            }
            tx.clear();
        }
        assert_eq!(got, 100, "round {r}");
        let rx = RxBatch::new(a, d).unwrap();
        t.handle_tap(now, &rx, &mut tx);
        exec.run_ops(&mut t, now, &rx, &mut tx);
        tx.clear();
        let mut buf = [0u8; 64];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [r as u8; 64], "round {r}");
        while t.poll_event().is_some() {}
    }
    let after = allocs();
    assert_eq!(exec.errors, 0);
    assert_eq!(t.stats().drops.iter().sum::<u64>(), 0);
    assert_eq!(after - before, 0, "allocations on the executor's TCP path");
}

/// `-U` on real loopback sockets through the executor, with namespace
/// sockets ([`NsSockets`](passt_core::host::exec::NsSockets)) made in our own namespace: each round two
/// senders write to the forwarded port, an echo server on the target
/// answers, and the answers come back to each sender; after the first
/// round (the flows' sockets), nothing allocates. `mmsg`: with
/// `recvmmsg`.
#[cfg(feature = "host")]
fn executor_udp_out_rounds(mmsg: bool) -> u64 {
    use passt_core::config::ports::FwdSpec;
    use passt_core::host::exec::{id_of, SockExec};
    use rustix::event::epoll;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    use std::net::UdpSocket;

    const ROUNDS: u64 = 110;
    const WARM_UP: u64 = 10;
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let target = server.local_addr().unwrap().port();
    // The forwarded port: one that was free a moment ago.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = test_config();
    c.fwd.udp_out = FwdSpec::parse(&format!("{port}:{target}")).unwrap();
    let mut t = Translator::new(c, Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let max = t.config().limits.max_sockets;
    let calls = if mmsg {
        passt_core::host::exec::Calls::RECVMMSG
    } else {
        passt_core::host::exec::Calls::empty()
    };
    let mut exec = SockExec::with_calls(max, ep.try_clone().unwrap(), calls);
    exec.set_ns_sockets(Box::new(|proto, ipv6| {
        assert_eq!(proto, passt_core::Proto::Udp);
        let fam = if ipv6 {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        rustix::net::socket_with(
            fam,
            SocketType::DGRAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
    }));
    let now = Instant::from_nanos(1_000_000);
    exec.run_ops(&mut t, now, &RxBatch::EMPTY, &mut tx);
    assert!(t.udp_out_listening(port));
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let senders: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let asks: Vec<Vec<u8>> = (0..2u8)
        .map(|k| vec![b'a' + k; 1000 + k as usize])
        .collect();
    let (mut events, timeout) = epoll_wait_args();
    // One wake-up of a driver's loop.
    let mut pump = |t: &mut Translator, exec: &mut SockExec, tx: &mut TxRing| {
        let n = epoll::wait(&ep, &mut events[..], Some(&timeout)).unwrap();
        assert!(
            n > 0,
            "nothing within 5 s: {:?} {:?}",
            t.stats().udp,
            t.stats().drops
        );
        for ev in &events[..n] {
            let (flags, data) = (ev.flags, ev.data);
            exec.ready(t, now, id_of(data.u64()).unwrap(), flags, tx);
        }
        exec.run_ops(t, now, &RxBatch::EMPTY, tx);
        assert!(tx.is_empty(), "no frames for -U");
        while t.poll_event().is_some() {}
    };
    server.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut before = allocs();
    for round in 0..ROUNDS {
        if round == WARM_UP {
            before = allocs();
        }
        for (s, a) in senders.iter().zip(&asks) {
            s.send_to(a, to).unwrap();
        }
        // Both reach the target, from a loopback socket each; echoed.
        // Each echo goes back to its own sender, from the forwarded port
        // (possibly while the other datagram is still on its way).
        let (mut echoed, mut back) = (0, 0);
        loop {
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                assert!(from.ip().is_loopback(), "round {round}");
                assert!(asks.iter().any(|a| a[..] == buf[..n]), "round {round}");
                server.send_to(&buf[..n], from).unwrap();
                echoed += 1;
            }
            for (s, a) in senders.iter().zip(&asks) {
                while let Ok((k, from)) = s.recv_from(&mut buf) {
                    assert_eq!(from, to, "round {round}");
                    assert_eq!(&buf[..k], &a[..], "round {round}");
                    back += 1;
                }
            }
            if back == 2 {
                break;
            }
            pump(&mut t, &mut exec, &mut tx);
        }
        assert_eq!((echoed, back), (2, 2), "round {round}");
    }
    let after = allocs();
    let s = t.stats();
    assert_eq!(s.udp.out_flows, 2);
    assert_eq!(
        (s.udp.out_to_host, s.udp.out_to_ns),
        (2 * ROUNDS, 2 * ROUNDS)
    );
    assert_eq!((s.frames_out, s.drops.iter().sum::<u64>()), (0, 0));
    after - before
}

#[cfg(feature = "host")]
#[test]
fn executor_udp_out_relay_allocates_nothing() {
    assert_eq!(executor_udp_out_rounds(false), 0, "with recvfrom");
    assert_eq!(executor_udp_out_rounds(true), 0, "with recvmmsg");
}

#[test]
fn forwarding_changes_allocate_nothing() {
    use passt_core::config::ports::FwdSpec;
    use passt_core::config::CHANGE_LISTENERS_ANY;
    use passt_core::{Errno, Proto};

    let mut config = test_config();
    config.fwd.tcp_in = FwdSpec::parse("8080").unwrap();
    config.fwd.udp_in = FwdSpec::parse("5000").unwrap();
    config.limits.change_listeners = CHANGE_LISTENERS_ANY;
    let mut t = Translator::new(config, Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let now = Instant::ZERO;
    // Every operation completed: Opens as given by `fail`, the rest Ok.
    let run = |t: &mut Translator, tx: &mut TxRing, fail: Option<u16>| {
        let mut ops = 0u32;
        while let Some(op) = t.poll_op() {
            ops += 1;
            if let SockOp::Open { id, spec } = op {
                let res = match spec.bind {
                    Some(b) if Some(b.port) == fail => Err(Errno::EADDRINUSE),
                    _ => Ok(Done::Opened),
                };
                t.handle_completion(now, Completion { id, res }, tx);
            }
        }
        while t.poll_event().is_some() {}
        ops
    };
    run(&mut t, &mut tx, None);
    // The specs are the caller's, parsed before (the control session
    // parses them): moved in, dropped when replaced.
    let specs = [
        ("8080,9000-9999", None),
        ("10000-30000", Some(20000)),
        ("8080", None),
        ("all", None),
        ("none", None),
    ];
    let mut parsed: Vec<(Proto, FwdSpec, Option<u16>)> = Vec::new();
    for _ in 0..3 {
        for (s, fail) in specs {
            for proto in [Proto::Tcp, Proto::Udp] {
                parsed.push((proto, FwdSpec::parse(s).unwrap(), fail));
            }
        }
    }
    parsed.reverse();
    let mut total = 0u32;

    let before = allocs();
    while let Some((proto, spec, fail)) = parsed.pop() {
        t.begin_forward_change(proto, spec).unwrap();
        total += run(&mut t, &mut tx, fail);
        assert!(t.forward_change().is_none());
    }
    let after = allocs();

    assert!(total > 100_000, "{total} operations");
    assert_eq!(after - before, 0, "allocations on the change path");
}
