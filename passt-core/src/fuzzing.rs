//! Bodies of the cargo-fuzz targets, kept in the crate so that a stable
//! `cargo test` replays the checked-in seeds through exactly the same code.
//!
//! Each function takes arbitrary bytes and panics only when an invariant is
//! broken (a parser accepting bytes it cannot re-emit identically, the
//! translator emitting a frame that does not parse, a counter going wrong).

use std::time::Duration;

use crate::buf::{FrameDesc, GsoType, OffloadFlags, RxBatch, TxRing};
use crate::testing::build::test_config;
use crate::time::Instant;
use crate::wire::arp::ArpRepr;
use crate::wire::dhcp::{DhcpRepr, DnsNameList};
use crate::wire::dhcpv6::Dhcpv6Repr;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmp::IcmpRepr;
use crate::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use crate::wire::ip_proto;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::ndp::NdpOption;
use crate::wire::tcp::TcpRepr;
use crate::wire::udp::UdpRepr;
use crate::{Completion, Done, Errno, Ready, SockId, TcpInfo, Translator};

/// A byte reader that yields zeroes once the input is exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self
            .0
            .split_first()
            .map(|(b, r)| (*b, r))
            .unwrap_or((0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A socket address the translator may have met: the guest's, the
/// gateway's, a remote one or a loopback one, of either family.
fn addr(input: &mut Input<'_>) -> crate::addr::SockAddrAny {
    use crate::testing::build::{GUEST4, GUEST6, GW4, REMOTE4};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip: IpAddr = match input.u8() % 6 {
        0 => GUEST4.into(),
        1 => GW4.into(),
        2 => REMOTE4.into(),
        3 => Ipv4Addr::LOCALHOST.into(),
        4 => GUEST6.into(),
        _ => Ipv6Addr::LOCALHOST.into(),
    };
    crate::addr::SockAddrAny::new(ip, input.u16())
}

/// The translator fed a script of frames, readiness, completions and time
/// steps decoded from `data`.
///
/// Invariants: no panic; every frame sent to the guest parses as Ethernet and
/// comes from our MAC address; counters add up.
pub fn translator(data: &[u8]) {
    let mut config = test_config();
    config.ip6 = Some(crate::testing::build::test_ip6());
    config.limits.op_queue = 64;
    config.limits.event_queue = 64;
    config.limits.max_sockets = 64;
    // Small tables: allocating 128k flow slots per run would dominate.
    config.limits.max_flows = 64;
    let mut input = Input(data);
    // A guest that takes offloads (pasta's tap with TSO): super-frames out.
    config.guest_gso = input.u8() & 1 == 1;
    let our_mac = config.our_mac;
    let mut now = Instant::from_nanos(1);
    let Ok(mut t) = Translator::new(config, now) else {
        return;
    };
    let mut tx = TxRing::new(16, crate::buf::MAX_FRAME_LEN, 0);
    let mut frames_seen = 0u64;
    let mut steps = 0;
    while !input.is_empty() && steps < 256 {
        steps += 1;
        match input.u8() % 5 {
            0 | 1 => {
                // A batch of up to four frames.
                let count = usize::from(input.u8() % 4) + 1;
                let mut arena = Vec::new();
                let mut descs = Vec::new();
                for _ in 0..count {
                    let meta = input.u8();
                    let raw = input.u16();
                    // Bit 5: a super-frame, padded with zeroes up to a
                    // length of up to 64 KiB; otherwise up to 2 KiB.
                    let (len, pad) = if meta & 0x20 != 0 {
                        (usize::from(raw) + 14, true)
                    } else {
                        (usize::from(raw) % 2048, false)
                    };
                    let bytes = input.bytes(len);
                    let start = arena.len();
                    arena.extend_from_slice(bytes);
                    if pad {
                        arena.resize(start + len, 0);
                    }
                    let mut desc = FrameDesc::new(start as u32, (arena.len() - start) as u32);
                    // Bit 0 marks the checksums as already verified, so that
                    // random bytes reach every service; the rest is the
                    // offload metadata a tap may hand over, as hostile as
                    // the frame.
                    let mut flags = OffloadFlags::empty();
                    if meta & 1 != 0 {
                        flags |= OffloadFlags::DATA_VALID;
                    }
                    if meta & 2 != 0 {
                        flags |= OffloadFlags::NEEDS_CSUM;
                        desc.offload.csum_start = input.u16();
                        desc.offload.csum_offset = input.u16();
                    }
                    desc.offload.flags = flags;
                    desc.offload.gso = match (meta >> 2) & 3 {
                        0 => GsoType::None,
                        1 => GsoType::TcpV4,
                        2 => GsoType::TcpV6,
                        _ => GsoType::UdpL4,
                    };
                    if desc.offload.gso != GsoType::None {
                        desc.offload.hdr_len = input.u16();
                        desc.offload.gso_size = input.u16();
                    }
                    descs.push(desc);
                }
                let rx = RxBatch::new(&arena, &descs).expect("built in bounds");
                t.handle_tap(now, &rx, &mut tx);
                frames_seen += count as u64;
            }
            2 => {
                let id = SockId::from_parts(input.u32() % 80, input.u32() % 4);
                let ready = Ready::from_bits_truncate(input.u8());
                t.handle_ready(now, id, ready, &mut tx);
            }
            3 => {
                let id = SockId::from_parts(input.u32() % 80, input.u32() % 4);
                let res = match input.u8() % 11 {
                    0 => Ok(Done::Opened),
                    1 => Ok(Done::Bytes(input.u32())),
                    2 => Ok(Done::Sent {
                        bytes: input.u32(),
                        free: input.u32(),
                    }),
                    3 => Ok(Done::Space {
                        free: input.u32(),
                        info: (input.u8() & 1 == 1).then(|| TcpInfo {
                            snd_mss: input.u32(),
                            snd_cwnd: input.u32(),
                            snd_wnd: (input.u8() & 1 == 1).then(|| input.u32()),
                            notsent: input.u32(),
                            rtt_us: input.u32(),
                        }),
                    }),
                    4 => Ok(Done::Accepted {
                        peer: addr(&mut input),
                        local: addr(&mut input),
                    }),
                    5 => Ok(Done::Datagram {
                        len: input.u32() % 70_000,
                        from: addr(&mut input),
                    }),
                    6 => Ok(Done::Datagrams {
                        count: input.u32() % 70,
                    }),
                    7 => Ok(Done::Splicing {
                        moved: u64::from(input.u32()),
                        half_closed: input.u8() & 1 == 1,
                    }),
                    8 => Ok(Done::Spliced {
                        to_peer: u64::from(input.u32()),
                        from_peer: u64::from(input.u32()),
                    }),
                    _ => Err(Errno(i32::from(input.u8()))),
                };
                t.handle_completion(now, Completion { id, res }, &mut tx);
            }
            _ if t.wants_retry() => t.handle_retry(now, &mut tx),
            _ => {
                now = now + Duration::from_millis(u64::from(input.u32()));
                t.handle_timeout(now, &mut tx);
            }
        }
        while t.poll_op().is_some() {}
        while t.poll_event().is_some() {}
        for v in tx.iter() {
            let (eth, _) = EthernetRepr::parse(v.frame).expect("our frames parse");
            assert_eq!(eth.src, our_mac, "frames to the guest come from our MAC");
        }
        tx.clear();
        if let Some(at) = t.poll_timeout() {
            assert!(at >= Instant::from_nanos(1));
        }
    }
    assert_eq!(t.stats().frames_in, frames_seen);
}

/// Assert that re-emitting a parsed header gave back the input bytes.
#[track_caller]
fn same(layer: &str, input: &[u8], emitted: Result<usize, crate::wire::WireError>, out: &[u8]) {
    let n = emitted.unwrap_or_else(|e| panic!("{layer}: parsed but could not be emitted: {e}"));
    let Some(head) = input.get(..n) else {
        panic!(
            "{layer}: emitted {n} bytes from a {}-byte input",
            input.len()
        )
    };
    assert_eq!(
        &out[..n],
        head,
        "{layer}: parse then emit changed the bytes"
    );
}

/// Every wire parser fed `data`: the first byte picks a parser to call on the
/// rest directly, or (0 and anything unassigned) a whole Ethernet frame is
/// dissected layer by layer. Wherever a parser accepts its input, emitting
/// the result must give back exactly the input bytes. Checksums are not
/// verified, so that the fuzzer reaches every layer.
pub fn frame(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut out = vec![0u8; 70_000];
    match sel {
        1 => l4(ip_proto::TCP, false, rest, &mut out),
        2 => l4(ip_proto::UDP, false, rest, &mut out),
        3 => l4(ip_proto::UDP, true, rest, &mut out),
        4 => l4(ip_proto::ICMP, false, rest, &mut out),
        5 => l4(ip_proto::ICMPV6, true, rest, &mut out),
        6 => ipv4(rest, &mut out),
        7 => ipv6(rest, &mut out),
        8 => udp_payload(67, false, rest, &mut out),
        9 => udp_payload(547, true, rest, &mut out),
        _ => ethernet(rest, &mut out),
    }
}

fn ethernet(f: &[u8], out: &mut [u8]) {
    let Ok((eth, payload)) = EthernetRepr::parse(f) else {
        return;
    };
    same("ethernet", f, eth.emit(out), out);
    match eth.ethertype {
        ethertype::ARP => {
            if let Ok(arp) = ArpRepr::parse(payload) {
                same("arp", payload, arp.emit(out), out);
            }
        }
        ethertype::IPV4 => ipv4(payload, out),
        ethertype::IPV6 => ipv6(payload, out),
        _ => {}
    }
}

fn ipv4(p: &[u8], out: &mut [u8]) {
    let Ok((ip, l4_bytes)) = Ipv4Repr::parse(p, false) else {
        return;
    };
    same("ipv4", p, ip.emit(out, l4_bytes.len()), out);
    if !ip.is_fragment() {
        l4(ip.protocol, false, l4_bytes, out);
    }
}

fn ipv6(p: &[u8], out: &mut [u8]) {
    let Ok((ip, l4_bytes)) = Ipv6Repr::parse(p) else {
        return;
    };
    same("ipv6", p, ip.emit(out), out);
    if !ip.is_fragment() {
        l4(ip.upper_protocol, true, l4_bytes, out);
    }
}

fn l4(proto: u8, v6: bool, p: &[u8], out: &mut [u8]) {
    match proto {
        ip_proto::TCP => {
            if let Ok((tcp, _payload)) = TcpRepr::parse(p, None) {
                same("tcp", p, tcp.emit(out), out);
                let _ = (
                    tcp.mss(),
                    tcp.window_scale(),
                    tcp.sack_permitted(),
                    tcp.timestamps(),
                );
                if let Some(sack) = tcp.sack() {
                    for (l, r) in sack.iter() {
                        let _ = l.lt(r);
                    }
                }
            }
        }
        ip_proto::UDP => {
            if let Ok(udp) = UdpRepr::parse(p, None, v6) {
                same("udp", p, udp.emit(out), out);
                udp_payload(udp.dst_port, v6, udp.payload, out);
            }
        }
        ip_proto::ICMP => {
            if let Ok((icmp, csum)) = IcmpRepr::parse(p, false) {
                same("icmp", p, icmp.emit_exact(out, csum), out);
            }
        }
        ip_proto::ICMPV6 => {
            if let Ok(pkt) = Icmpv6Packet::parse(p, None) {
                same("icmpv6", p, pkt.emit(out), out);
                if let Icmpv6Repr::Ndp(ndp) = &pkt.repr {
                    for opt in ndp.options() {
                        if let NdpOption::Dnssl { domains, .. } = opt {
                            for d in domains {
                                let _ = d.labels().count();
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// DHCP (ports 67/68) and DHCPv6 (546/547) payloads.
fn udp_payload(port: u16, v6: bool, p: &[u8], out: &mut [u8]) {
    match (port, v6) {
        (67 | 68, false) => {
            if let Ok(d) = DhcpRepr::parse(p) {
                same("dhcp", p, d.emit(out), out);
                let _ = (
                    d.message_type(),
                    d.requested_ip(),
                    d.server_id(),
                    d.client_id(),
                );
                let _ = d.concat_option(crate::wire::dhcp::opt::DOMAIN_SEARCH, out);
                if let Some(search) = d.option(crate::wire::dhcp::opt::DOMAIN_SEARCH) {
                    let _ = DnsNameList::compressed(search).validate();
                }
            }
        }
        (546 | 547, true) => {
            if let Ok(d) = Dhcpv6Repr::parse(p) {
                same("dhcpv6", p, d.emit(out), out);
                for ia in d.ia_nas() {
                    let _ = ia.addresses().count();
                }
                let _ = (
                    d.oro().count(),
                    d.dns_servers().count(),
                    d.domain_list().map(|l| l.validate()),
                );
            }
        }
        _ => {}
    }
}

/// The port-forwarding spec parser fed `data`; see
/// [`crate::config::ports::fuzz_parse`] for the invariants.
pub fn port_spec(data: &[u8]) {
    crate::config::ports::fuzz_parse(data);
}

/// qemu's stream framing ([`crate::wire::stream`]) fed `data`: the first
/// byte picks how reads are cut (fixed sizes, or sizes taken from the
/// input), the rest is the byte stream.
///
/// Invariants: no panic; the incremental decoder yields exactly the
/// records, skips and stop that a whole-stream reading of the same bytes
/// gives, wherever the reads are cut; every frame lies inside the bytes
/// received; after a stop nothing more comes out.
pub fn stream(data: &[u8]) {
    use crate::wire::stream::{StreamDecoder, StreamError, MAX_FRAME_LEN, MIN_BUFFER};

    #[derive(Debug, PartialEq, Eq)]
    enum Out<'a> {
        Frame(&'a [u8]),
        Skip(StreamError),
    }
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };

    // Whole-stream reading: the reference.
    let mut want: Vec<Out<'_>> = Vec::new();
    let mut rest = stream;
    let mut want_pending = 0;
    while let Some((hdr, body)) = rest.split_at_checked(4) {
        let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        if len as usize > MAX_FRAME_LEN {
            want.push(Out::Skip(StreamError::TooLong { len }));
            rest = &[];
            break;
        }
        let Some((frame, next)) = body.split_at_checked(len as usize) else {
            break;
        };
        want.push(match len {
            0 => Out::Skip(StreamError::Empty),
            1..=13 => Out::Skip(StreamError::Runt { len }),
            _ => Out::Frame(frame),
        });
        rest = next;
    }
    if !want
        .last()
        .is_some_and(|o| matches!(o, Out::Skip(e) if e.is_fatal()))
    {
        want_pending = rest.len();
    }

    // Incremental reading, reads cut by `mode`.
    let mut d = StreamDecoder::with_capacity(MIN_BUFFER + usize::from(mode & 0x0f) * 1000);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut skips: Vec<(usize, StreamError)> = Vec::new();
    let mut sizes = stream.iter().cycle();
    let mut at = 0;
    while at < stream.len() && !d.is_stopped() {
        let want_n = match mode >> 4 {
            0 => 1,
            1 => 7,
            2 => 4096,
            3 => usize::from(*sizes.next().unwrap_or(&1)).max(1),
            _ => usize::from(*sizes.next().unwrap_or(&1)).max(1) * 64,
        };
        let room = d.read_buf();
        assert!(!room.is_empty(), "no room to read with a record unfinished");
        let n = want_n.min(room.len()).min(stream.len() - at);
        room[..n].copy_from_slice(&stream[at..at + n]);
        d.commit_read(n);
        at += n;
        while let Some(r) = d.next_frame() {
            match r {
                Ok(desc) => {
                    let (o, l) = (desc.offset as usize, desc.len as usize);
                    assert!((14..=MAX_FRAME_LEN).contains(&l));
                    let f = d.data().get(o..o + l).expect("frame inside the buffer");
                    got.push(f.to_vec());
                }
                Err(e) => skips.push((got.len() + skips.len(), e)),
            }
        }
    }
    assert!(d.next_frame().is_none());

    // Interleave frames and skips back into one sequence and compare.
    let mut frames = got.iter();
    let mut skip_iter = skips.iter().peekable();
    let mut seq: Vec<Out<'_>> = Vec::new();
    for i in 0..got.len() + skips.len() {
        if skip_iter.peek().is_some_and(|(at, _)| *at == i) {
            let (_, e) = skip_iter.next().expect("peeked");
            seq.push(Out::Skip(*e));
        } else if let Some(f) = frames.next() {
            seq.push(Out::Frame(f));
        }
    }
    assert_eq!(seq, want);
    if !d.is_stopped() {
        assert_eq!(d.pending(), want_pending);
    }
    let stats = *d.stats();
    d.reset();
    assert!(d.next_frame().is_none());
    assert_eq!(d.stats().frames, stats.frames);
}

/// The configuration socket ([`crate::control`]) fed `data`: first the
/// parsers alone, then a session over a translator forwarding TCP port
/// 8080, after a valid hello. The first byte picks how the stream is cut
/// into reads and which listener `Open`s fail.
///
/// Invariants: no panic; a request that parses encodes back to exactly
/// its bytes, and so does an ok or error reply; every byte the session
/// writes is a sequence of valid replies; a session takes at most one
/// request's worth of input at once; no change stays in flight once its
/// operations completed.
pub fn control(data: &[u8]) {
    use crate::config::ports::FwdSpec;
    use crate::control::{
        encode_change, encode_error, encode_hello, encode_ok, encode_proto_only, msg, parse_header,
        parse_reply, parse_request, Reply, Request, Session, HEADER_LEN, MAX_REQUEST_BODY,
    };
    use crate::SockOp;

    let mut again = Vec::new();
    if let Ok(req) = parse_request(data) {
        match req {
            Request::Hello { min, max } => encode_hello(&mut again, min, max),
            Request::List { proto } => encode_proto_only(&mut again, msg::LIST, proto),
            Request::Clear { proto } => encode_proto_only(&mut again, msg::CLEAR, proto),
            Request::Change { kind, proto, specs } => {
                let specs: Vec<&str> = specs.iter().collect();
                encode_change(&mut again, kind, proto, &specs).expect("parsed specs encode");
            }
        }
        assert_eq!(again, data, "request re-encoded differently");
    }
    again.clear();
    match parse_reply(data) {
        Ok(Reply::Ok(v)) => encode_ok(&mut again, v),
        Ok(Reply::Error {
            code,
            port,
            errno,
            text,
        }) => encode_error(&mut again, code, port, errno, text),
        Ok(Reply::Rules { rules, .. }) => {
            assert_eq!(rules.iter().count(), rules.len());
            again.extend_from_slice(data);
        }
        Err(_) => again.extend_from_slice(data),
    }
    assert_eq!(again, data, "reply re-encoded differently");

    let (ctl, stream) = data.split_first().unwrap_or((&0, &[]));
    let mut config = test_config();
    config.fwd.tcp_in = FwdSpec::parse("8080").expect("valid spec");
    config.limits.max_flows = 64;
    config.limits.max_sockets = 1024;
    config.limits.op_queue = 64;
    config.limits.event_queue = 64;
    config.limits.change_listeners = 512;
    let now = Instant::from_nanos(1);
    let Ok(mut t) = Translator::new(config, now) else {
        return;
    };
    let mut tx = TxRing::new(4, crate::buf::MAX_FRAME_LEN, 0);
    let fail_mask = u16::from(*ctl >> 4);
    let mut drain = |t: &mut Translator| {
        while let Some(op) = t.poll_op() {
            if let SockOp::Open { id, spec } = op {
                let port = spec.bind.map_or(0, |b| b.port);
                let res = if fail_mask != 0 && port % 16 == fail_mask {
                    Err(Errno::EADDRINUSE)
                } else {
                    Ok(Done::Opened)
                };
                t.handle_completion(now, Completion { id, res }, &mut tx);
            }
        }
        while t.poll_event().is_some() {}
    };
    drain(&mut t);
    let mut s = Session::new(Some((32768, 60999)));
    let mut hello = Vec::new();
    encode_hello(&mut hello, 1, 1);
    assert_eq!(s.input(&mut t, &hello), hello.len());
    let chunk = usize::from(*ctl & 0x0f) * 7 + 1;
    let mut rest = stream;
    while !rest.is_empty() && !s.is_closed() {
        let n = rest.len().min(chunk);
        let taken = s.input(&mut t, &rest[..n]);
        assert!(taken <= HEADER_LEN + MAX_REQUEST_BODY as usize);
        drain(&mut t);
        let mut rounds = 0u32;
        while s.run(&mut t) {
            drain(&mut t);
            rounds += 1;
            assert!(rounds <= MAX_REQUEST_BODY, "the session never settles");
        }
        assert!(
            t.forward_change().is_none(),
            "a change outlived its operations"
        );
        assert!(!s.is_waiting());
        rest = &rest[taken.max(1).min(rest.len())..];
    }
    let mut out = s.output();
    while !out.is_empty() {
        let h = parse_header(out)
            .expect("valid reply header")
            .expect("whole reply");
        let (m, r) = out.split_at(h.total());
        assert!(parse_reply(m).is_ok(), "invalid reply {m:?}");
        out = r;
    }
}
