//! UDP through the Translator on the fake host: flows both ways, address
//! mapping, DNS forwarding, timeouts, port unreachable, bad input, floods.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use passt_core::addr::SockAddrAny;
use passt_core::buf::{RxSpan, TxSlots};
use passt_core::config::ports::FwdSpec;
use passt_core::config::Config;
use passt_core::testing::build::{
    test_config, test_ip6, udp4, udp6, GUEST4, GUEST6, GUEST_MAC, GW4, GW6, REMOTE4,
};
use passt_core::testing::Harness;
use passt_core::wire::checksum::{pseudo_header_v4, pseudo_header_v6};
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::icmp::IcmpRepr;
use passt_core::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use passt_core::wire::ip_proto;
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::ipv6::Ipv6Repr;
use passt_core::wire::udp::UdpRepr;
use passt_core::{
    Completion, Done, DropReason, Errno, Event, HostError, Proto, Ready, SockFlags, SockId, SockOp,
    SockSpec,
};

const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

fn sa(a: impl Into<core::net::IpAddr>, port: u16) -> SockAddrAny {
    SockAddrAny::new(a.into(), port)
}

fn ok(h: &mut Harness, id: SockId, done: Done) {
    h.complete(Completion { id, res: Ok(done) });
}

fn err(h: &mut Harness, id: SockId, e: Errno) {
    h.complete(Completion { id, res: Err(e) });
}

/// The Open of a new flow; checks nothing.
#[track_caller]
fn expect_open(h: &mut Harness) -> (SockId, SockSpec) {
    match h.expect_op() {
        SockOp::Open { id, spec } => (id, spec),
        op => panic!("expected Open, got {op:?}"),
    }
}

#[track_caller]
fn expect_send(h: &mut Harness) -> (SockId, RxSpan) {
    match h.expect_op() {
        SockOp::Send { id, payload } => (id, payload),
        op => panic!("expected Send, got {op:?}"),
    }
}

#[track_caller]
fn expect_recv(h: &mut Harness, sock: SockId) -> TxSlots {
    match h.expect_op() {
        SockOp::Recv { id, into } if id == sock => into,
        op => panic!("expected Recv on {sock:?}, got {op:?}"),
    }
}

/// A UDP frame to the guest, decoded with its checksum verified:
/// (source, destination, payload).
#[track_caller]
fn udp_frame(f: &[u8]) -> (SockAddrAny, SockAddrAny, Vec<u8>) {
    let (eth, l3) = EthernetRepr::parse(f).unwrap();
    assert_eq!(eth.dst, GUEST_MAC);
    match eth.ethertype {
        ethertype::IPV4 => {
            let (ip, l4) = Ipv4Repr::parse(l3, true).unwrap();
            assert_eq!(ip.protocol, ip_proto::UDP);
            let p = pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
            let u = UdpRepr::parse(l4, Some(p), false).unwrap();
            assert_ne!(u.checksum, 0);
            (
                sa(ip.src, u.src_port),
                sa(ip.dst, u.dst_port),
                u.payload.to_vec(),
            )
        }
        ethertype::IPV6 => {
            let (ip, l4) = Ipv6Repr::parse(l3).unwrap();
            let p = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::UDP, l4.len() as u32);
            let u = UdpRepr::parse(l4, Some(p), true).unwrap();
            (
                sa(ip.src, u.src_port),
                sa(ip.dst, u.dst_port),
                u.payload.to_vec(),
            )
        }
        t => panic!("ethertype {t:#x}"),
    }
}

fn dual_config() -> Config {
    Config {
        ip6: Some(test_ip6()),
        ..test_config()
    }
}

/// Open a flow from GUEST4:40000 to `dst` and complete its Open and Send.
fn open4(h: &mut Harness, dst: SocketV4) -> SockId {
    h.guest(&udp4(GUEST4, 40000, dst.0, dst.1, b"x"));
    let (id, _) = expect_open(h);
    let _ = expect_send(h);
    ok(h, id, Done::Opened);
    ok(h, id, Done::Bytes(1));
    id
}

type SocketV4 = (Ipv4Addr, u16);

#[test]
fn guest_datagrams_open_a_flow_on_the_same_port_and_replies_come_back() {
    let mut h = Harness::new(test_config());
    let frame = udp4(GUEST4, 40000, REMOTE4, 5000, b"hello");
    h.guest(&frame);
    let (id, spec) = expect_open(&mut h);
    assert_eq!(spec.proto, Proto::Udp);
    assert!(!spec.ipv6);
    assert_eq!(spec.bind, Some(sa(Ipv4Addr::UNSPECIFIED, 40000)));
    assert_eq!(spec.peer, Some(sa(REMOTE4, 5000)));
    assert_eq!(spec.flags, SockFlags::REUSEADDR | SockFlags::BIND_FALLBACK);
    let (sid, span) = expect_send(&mut h);
    assert_eq!(sid, id);
    // The payload is named where it lies in the guest's frame.
    assert_eq!(
        span,
        RxSpan {
            frame: 0,
            offset: 42,
            len: 5
        }
    );
    assert_eq!(&frame[42..47], b"hello");
    ok(&mut h, id, Done::Opened);
    ok(&mut h, id, Done::Bytes(5));

    // The same conversation reuses the flow.
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5000, b"again"));
    assert_eq!(expect_send(&mut h).0, id);
    ok(&mut h, id, Done::Bytes(5));
    h.expect_no_op();
    // Another destination port is another flow, from the same guest port.
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5001, b"other"));
    let (id2, spec2) = expect_open(&mut h);
    assert_ne!(id2, id);
    assert_eq!(spec2.bind, Some(sa(Ipv4Addr::UNSPECIFIED, 40000)));
    let _ = expect_send(&mut h);

    // Replies: two datagrams in one receive, each in its own frame.
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    assert_eq!(into.payload_offset, 42);
    assert_eq!(into.payload_len, 65520 - 28);
    h.recv(
        id,
        into,
        &[(sa(REMOTE4, 5000), b"world"), (sa(REMOTE4, 5000), b"")],
    );
    let (src, dst, payload) = udp_frame(&h.expect_frame());
    assert_eq!((src, dst), (sa(REMOTE4, 5000), sa(GUEST4, 40000)));
    assert_eq!(payload, b"world");
    let (_, _, payload) = udp_frame(&h.expect_frame());
    assert_eq!(payload, b"");
    h.expect_no_frame();
    // Nothing more to read: the receive ends without a frame.
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    h.recv(id, into, &[]);
    h.expect_no_frame();

    let s = &h.t.stats().udp;
    assert_eq!((s.flows_opened, s.to_host, s.to_guest), (2, 3, 2));
    assert_eq!(h.t.stats().frames_out, 2);
}

#[test]
fn ipv6_flows_both_ways() {
    let mut h = Harness::new(dual_config());
    h.guest(&udp6(GUEST6, 50000, REMOTE6, 4242, b"six"));
    let (id, spec) = expect_open(&mut h);
    assert!(spec.ipv6);
    assert_eq!(spec.bind, Some(sa(Ipv6Addr::UNSPECIFIED, 50000)));
    assert_eq!(spec.peer, Some(sa(REMOTE6, 4242)));
    assert!(spec.flags.contains(SockFlags::V6ONLY));
    let (_, span) = expect_send(&mut h);
    assert_eq!((span.offset, span.len), (62, 3));
    ok(&mut h, id, Done::Opened);
    ok(&mut h, id, Done::Bytes(3));
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    assert_eq!(into.payload_offset, 62);
    h.recv(id, into, &[(sa(REMOTE6, 4242), b"reply")]);
    let (src, dst, payload) = udp_frame(&h.expect_frame());
    assert_eq!((src, dst), (sa(REMOTE6, 4242), sa(GUEST6, 50000)));
    assert_eq!(payload, b"reply");
}

#[test]
fn gateway_is_host_loopback_and_dns_forward_reaches_the_host_resolver() {
    let fwd4 = Ipv4Addr::new(192, 0, 2, 53);
    let host_dns4 = Ipv4Addr::new(203, 0, 113, 53);
    let host_dns6: Ipv6Addr = "2001:db8:3::53".parse().unwrap();
    let fwd6: Ipv6Addr = "2001:db8::53".parse().unwrap();
    let mut c = dual_config();
    let ip4 = c.ip4.as_mut().unwrap();
    ip4.dns_forward = Some(fwd4);
    ip4.dns_host = Some(host_dns4);
    ip4.map_guest_addr = Some(Ipv4Addr::new(192, 0, 2, 99));
    let ip6 = c.ip6.as_mut().unwrap();
    ip6.dns_forward = Some(fwd6);
    ip6.dns_host = Some(host_dns6);
    let mut h = Harness::new(c);

    let peer_of = |h: &mut Harness, frame: Vec<u8>| {
        h.guest(&frame);
        let (id, spec) = expect_open(h);
        let _ = expect_send(h);
        ok(h, id, Done::Opened);
        (id, spec.peer.unwrap())
    };
    let (_, p) = peer_of(&mut h, udp4(GUEST4, 1000, GW4, 7, b"echo"));
    assert_eq!(p, sa(Ipv4Addr::LOCALHOST, 7));
    let (_, p) = peer_of(
        &mut h,
        udp4(GUEST4, 1000, Ipv4Addr::new(192, 0, 2, 99), 7, b"me"),
    );
    assert_eq!(p, sa(GUEST4, 7));
    let (dns, p) = peer_of(&mut h, udp4(GUEST4, 1001, fwd4, 53, b"query"));
    assert_eq!(p, sa(host_dns4, 53));
    // Only DNS is redirected.
    let (_, p) = peer_of(&mut h, udp4(GUEST4, 1001, fwd4, 54, b"not dns"));
    assert_eq!(p, sa(fwd4, 54));
    let (dns6, p) = peer_of(&mut h, udp6(GUEST6, 1002, fwd6, 53, b"query6"));
    assert_eq!(p, sa(host_dns6, 53));
    let (_, p) = peer_of(&mut h, udp6(GUEST6, 1003, GW6, 9, b"gw"));
    assert_eq!(p, sa(Ipv6Addr::LOCALHOST, 9));

    // The resolver's answers come back from the dns_forward address.
    h.ready(dns, Ready::READABLE);
    let into = expect_recv(&mut h, dns);
    h.recv(dns, into, &[(sa(host_dns4, 53), b"answer")]);
    let (src, dst, payload) = udp_frame(&h.expect_frame());
    assert_eq!(
        (src, dst, payload.as_slice()),
        (sa(fwd4, 53), sa(GUEST4, 1001), &b"answer"[..])
    );
    h.ready(dns6, Ready::READABLE);
    let into = expect_recv(&mut h, dns6);
    h.recv(dns6, into, &[(sa(host_dns6, 53), b"answer6")]);
    let (src, dst, _) = udp_frame(&h.expect_frame());
    assert_eq!((src, dst), (sa(fwd6, 53), sa(GUEST6, 1002)));
}

#[test]
fn idle_flows_expire_after_30_seconds_unanswered_and_120_once_answered() {
    let mut h = Harness::new(test_config());
    let start = h.now();
    let id = open4(&mut h, (REMOTE4, 5000));
    // No reply yet: 30 s of silence end it, and more guest datagrams only
    // push that back by 30 s each.
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(30)));
    h.advance(Duration::from_secs(20));
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5000, b"again"));
    let _ = expect_send(&mut h);
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(50)));
    // A one-way flow beside it, opened later, expires on its own clock.
    h.advance(Duration::from_secs(10));
    let other = open4(&mut h, (REMOTE4, 5001));
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(50)));
    // The reply (at 40 s): 120 s from now, from then on.
    h.advance(Duration::from_secs(10));
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    h.recv(id, into, &[(sa(REMOTE4, 5000), b"r")]);
    let _ = h.expect_frame();
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(60)));
    h.advance(Duration::from_secs(19));
    h.expect_no_op();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.expect_op(), SockOp::Close { id: other });
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(160)));
    // The guest's datagrams keep the answered flow for 120 s too.
    h.advance(Duration::from_secs(50));
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5000, b"late"));
    let _ = expect_send(&mut h);
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(230)));
    h.advance(Duration::from_secs(119));
    h.expect_no_op();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.expect_op(), SockOp::Close { id });
    assert_eq!(h.t.stats().udp.flows_expired, 2);
    assert_eq!(h.t.poll_timeout(), None);
    // Late readiness for the closed socket is stale.
    h.ready(id, Ready::READABLE);
    h.expect_no_op();
    assert_eq!(h.t.stats().dropped(DropReason::StaleSocket), 1);
    // A new datagram opens a new flow.
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5000, b"x"));
    assert!(matches!(h.expect_op(), SockOp::Open { .. }));
}

#[test]
fn a_lone_request_and_its_answer_end_after_30_seconds_a_third_datagram_gives_120() {
    let mut h = Harness::new(test_config());
    let start = h.now();
    // A DNS-like exchange: one request, one answer, 30 s after the answer.
    let id = open4(&mut h, (REMOTE4, 53));
    h.advance(Duration::from_secs(5));
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    h.recv(id, into, &[(sa(REMOTE4, 53), b"a")]);
    let _ = h.expect_frame();
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(35)));
    // A third datagram (the guest's): 120 s.
    h.advance(Duration::from_secs(10));
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 53, b"q2"));
    let _ = expect_send(&mut h);
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(135)));
    // Three datagrams one way and no answer: 30 s.
    let one_way = open4(&mut h, (REMOTE4, 54));
    for _ in 0..2 {
        h.guest(&udp4(GUEST4, 40000, REMOTE4, 54, b"x"));
        let _ = expect_send(&mut h);
    }
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(45)));
    h.advance(Duration::from_secs(30));
    assert_eq!(h.expect_op(), SockOp::Close { id: one_way });
    h.advance(Duration::from_secs(89));
    h.expect_no_op();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.expect_op(), SockOp::Close { id });
}

#[test]
fn refused_datagrams_become_port_unreachable_rate_limited() {
    let mut h = Harness::new(test_config());
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 9, b"anyone?"));
    let (id, _) = expect_open(&mut h);
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Opened);
    ok(&mut h, id, Done::Bytes(7));
    // The ICMP error shows up as a socket error, read as ECONNREFUSED.
    h.ready(id, Ready::ERROR);
    let _ = expect_recv(&mut h, id);
    err(&mut h, id, Errno::ECONNREFUSED);
    let f = h.expect_frame();
    let (eth, l3) = EthernetRepr::parse(&f).unwrap();
    assert_eq!(eth.dst, GUEST_MAC);
    let (ip, l4) = Ipv4Repr::parse(l3, true).unwrap();
    assert_eq!(
        (ip.src, ip.dst, ip.protocol),
        (REMOTE4, GUEST4, ip_proto::ICMP)
    );
    let (msg, _) = IcmpRepr::parse(l4, true).unwrap();
    let IcmpRepr::DestUnreachable {
        code: 3, original, ..
    } = msg
    else {
        panic!("{msg:?}");
    };
    // The quote: the guest's IP header and UDP header, rebuilt.
    assert_eq!(original.len(), 28);
    assert_eq!(original[9], ip_proto::UDP);
    assert_eq!(&original[2..4], &35u16.to_be_bytes());
    assert_eq!(&original[12..16], &GUEST4.octets());
    assert_eq!(&original[16..20], &REMOTE4.octets());
    assert_eq!(passt_core::wire::checksum::checksum(&original[..20]), 0);
    assert_eq!(&original[20..24], &[0x9c, 0x40, 0, 9]);
    assert_eq!(&original[24..26], &15u16.to_be_bytes());
    assert_eq!(h.t.stats().udp.port_unreachable, 1);

    // A send refused the same way; then a burst is cut by the rate limit.
    for _ in 0..20 {
        h.guest(&udp4(GUEST4, 40000, REMOTE4, 9, b"again"));
        let _ = expect_send(&mut h);
        err(&mut h, id, Errno::ECONNREFUSED);
    }
    assert_eq!(h.to_guest.len(), 9, "burst of 10 in all");
    h.to_guest.clear();
    assert_eq!(h.t.stats().udp.icmp_rate_limited, 11);
    h.advance(Duration::from_millis(250));
    for _ in 0..5 {
        h.guest(&udp4(GUEST4, 40000, REMOTE4, 9, b"later"));
        let _ = expect_send(&mut h);
        err(&mut h, id, Errno::ECONNREFUSED);
    }
    assert_eq!(h.to_guest.len(), 2, "one per 100 ms");
    // Other errors are only counted.
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 9, b"x"));
    let _ = expect_send(&mut h);
    err(&mut h, id, Errno::ENETUNREACH);
    assert_eq!(h.t.stats().udp.send_errors, 1);
}

#[test]
fn ipv6_port_unreachable() {
    let mut h = Harness::new(dual_config());
    h.guest(&udp6(GUEST6, 50000, REMOTE6, 9, b"hi"));
    let (id, _) = expect_open(&mut h);
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Opened);
    err(&mut h, id, Errno::ECONNREFUSED);
    let f = h.expect_frame();
    let (ip, l4) = Ipv6Repr::parse(&f[14..]).unwrap();
    assert_eq!((ip.src, ip.dst), (REMOTE6, GUEST6));
    let p = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::ICMPV6, l4.len() as u32);
    let msg = Icmpv6Packet::parse(l4, Some(p)).unwrap().repr;
    let Icmpv6Repr::DstUnreachable {
        code: 4, original, ..
    } = msg
    else {
        panic!("{msg:?}");
    };
    assert_eq!(original.len(), 48);
    assert_eq!(&original[8..24], &GUEST6.octets());
    assert_eq!(&original[24..40], &REMOTE6.octets());
    assert_eq!(&original[40..44], &[0xc3, 0x50, 0, 9]);
}

#[test]
fn forwarded_port_delivers_host_datagrams_and_replies_reach_the_sender() {
    let mut c = test_config();
    c.fwd.udp_in = FwdSpec::parse("5353:53").unwrap();
    // Nothing came from the guest yet: its MAC is known from the start, as
    // in pasta.
    c.guest_mac = Some(GUEST_MAC);
    let mut h = Harness::new(c);
    // The listening socket is asked for as soon as ops are polled (the
    // harness drains them on creation).
    let op = h.host.ops.pop_front().expect("listener open");
    let SockOp::Open { id: lid, spec } = op else {
        panic!("{op:?}");
    };
    assert_eq!(spec.bind, Some(sa(Ipv4Addr::UNSPECIFIED, 5353)));
    assert_eq!(spec.peer, None);
    assert!(h.host.ops.is_empty());
    assert!(h.t.poll_op().is_none());
    ok(&mut h, lid, Done::Opened);
    assert_eq!(h.t.stats().udp.listeners, 1);

    let sender = sa(Ipv4Addr::new(203, 0, 113, 9), 40001);
    let local = sa(Ipv4Addr::LOCALHOST, 40002);
    h.ready(lid, Ready::READABLE);
    let into = expect_recv(&mut h, lid);
    h.recv(lid, into, &[(sender, b"query"), (local, b"from loopback")]);
    let (src, dst, payload) = udp_frame(&h.expect_frame());
    assert_eq!(
        (src, dst, payload.as_slice()),
        (sender, sa(GUEST4, 53), &b"query"[..])
    );
    let (src, dst, _) = udp_frame(&h.expect_frame());
    assert_eq!((src, dst), (sa(GW4, 40002), sa(GUEST4, 53)));
    assert_eq!(h.t.stats().udp.flows_inbound, 2);

    // The guest answers: back to each original sender, on the listener.
    h.guest(&udp4(
        GUEST4,
        53,
        Ipv4Addr::new(203, 0, 113, 9),
        40001,
        b"answer",
    ));
    match h.expect_op() {
        SockOp::SendTo { id, dst, payload } => {
            assert_eq!((id, dst, payload.len), (lid, sender, 6));
        }
        op => panic!("{op:?}"),
    }
    h.guest(&udp4(GUEST4, 53, GW4, 40002, b"answer"));
    match h.expect_op() {
        SockOp::SendTo { id, dst, .. } => assert_eq!((id, dst), (lid, local)),
        op => panic!("{op:?}"),
    }
    // A reply from another of the guest's addresses (the kernel's preferred
    // source of an unbound socket) still answers the forwarded flow.
    let [a, b, c3, d] = GUEST4.octets();
    let other = Ipv4Addr::new(a, b, c3, d.wrapping_add(1));
    h.guest(&udp4(other, 53, GW4, 40002, b"again"));
    match h.expect_op() {
        SockOp::SendTo { id, dst, .. } => assert_eq!((id, dst), (lid, local)),
        op => panic!("{op:?}"),
    }
    assert_eq!(h.t.stats().udp.flows_opened, 0);
    h.expect_no_op();
    // The guest answered both. The remote sender's flow is a lone request
    // and its answer: 30 s of silence end it; the loopback one carried a
    // third datagram ("again"): 120 s.
    assert_eq!(h.t.poll_timeout(), Some(h.now() + Duration::from_secs(30)));
    // Expiry ends the flows but never closes the listener.
    h.advance(Duration::from_secs(30));
    assert_eq!(h.t.stats().udp.flows_expired, 1);
    h.advance(Duration::from_secs(89));
    assert_eq!(h.t.stats().udp.flows_expired, 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.t.stats().udp.flows_expired, 2);
    h.expect_no_op();
    h.ready(lid, Ready::READABLE);
    let _ = expect_recv(&mut h, lid);
}

#[test]
fn oversized_host_datagrams_are_dropped_and_the_rest_delivered() {
    let mut c = test_config();
    c.mtu = 1500;
    let mut h = Harness::new(c);
    let id = open4(&mut h, (REMOTE4, 5000));
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    assert_eq!(into.payload_len, 1472);
    let big = vec![7u8; 1473];
    let fits = vec![8u8; 1472];
    h.recv(
        id,
        into,
        &[
            (sa(REMOTE4, 5000), &big),
            (sa(REMOTE4, 5000), &fits),
            (sa(REMOTE4, 5000), b"end"),
        ],
    );
    let f = h.expect_frame();
    assert_eq!(f.len(), 14 + 1500);
    assert_eq!(udp_frame(&f).2, fits);
    assert_eq!(udp_frame(&h.expect_frame()).2, b"end");
    h.expect_no_frame();
    assert_eq!(h.t.stats().udp.too_big, 1);
    assert_eq!(h.t.stats().dropped(DropReason::TooBig), 1);
    // The driver hears of it, with the reason, for its debug log.
    let drops: Vec<Event> = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::HostDropped { .. }))
        .collect();
    assert_eq!(
        drops,
        vec![Event::HostDropped {
            reason: DropReason::TooBig
        }]
    );
}

#[test]
fn bad_datagrams_are_counted_drops() {
    let mut h = Harness::new(test_config());
    // Port 0 either way.
    h.guest(&udp4(GUEST4, 0, REMOTE4, 53, b"x"));
    h.guest(&udp4(GUEST4, 1000, REMOTE4, 0, b"x"));
    assert_eq!(h.t.stats().dropped(DropReason::Malformed), 2);
    // Broadcast and multicast destinations.
    h.guest(&udp4(GUEST4, 1000, Ipv4Addr::BROADCAST, 53, b"x"));
    h.guest(&udp4(GUEST4, 1000, Ipv4Addr::new(192, 0, 2, 255), 53, b"x"));
    h.guest(&udp4(
        GUEST4,
        1000,
        Ipv4Addr::new(224, 0, 0, 251),
        5353,
        b"x",
    ));
    assert_eq!(h.t.stats().dropped(DropReason::Unsupported), 3);
    // A UDP length that disagrees with the IP length.
    let mut f = udp4(GUEST4, 1000, REMOTE4, 53, b"abcd");
    f[38..40].copy_from_slice(&11u16.to_be_bytes());
    h.guest(&f);
    assert_eq!(h.t.stats().dropped(DropReason::BadLength), 1);
    // A UDP header cut short: 4 bytes of IP payload.
    let ip = Ipv4Repr::new(GUEST4, REMOTE4, ip_proto::UDP, 64);
    let mut pkt = vec![0u8; 24];
    ip.emit_with_checksum(&mut pkt, 4).unwrap();
    pkt[20..24].copy_from_slice(&[0x03, 0xe8, 0, 53]);
    let mut f = udp4(GUEST4, 1, REMOTE4, 1, b"")[..14].to_vec();
    f.extend_from_slice(&pkt);
    h.guest(&f);
    assert_eq!(h.t.stats().dropped(DropReason::Truncated), 1);
    h.expect_no_op();
    h.expect_no_frame();
    assert_eq!(h.t.stats().udp.flows_opened, 0);
}

#[test]
fn flood_is_bounded_by_the_table_and_evicts_idle_flows_first() {
    let mut c = test_config();
    c.limits.max_flows = 64;
    let mut h = Harness::new(c);
    let old = open4(&mut h, (REMOTE4, 1));
    h.advance(Duration::from_secs(5));
    let mut opened = Vec::new();
    for port in 1000..1200u16 {
        h.guest(&udp4(GUEST4, 40000, REMOTE4, port, b"flood"));
        while let Some(op) = h.host.ops.pop_front() {
            match op {
                SockOp::Open { id, .. } => opened.push(id),
                SockOp::Close { id } => assert_eq!(id, old, "only the idle flow goes"),
                SockOp::Send { .. } => {}
                op => panic!("{op:?}"),
            }
        }
    }
    assert_eq!(opened.len(), 64);
    let s = &h.t.stats();
    assert_eq!(s.udp.flows_evicted, 1);
    assert_eq!(s.dropped(DropReason::FlowTableFull), 200 - 64);
    // Once the flood's flows have been idle, new flows push them out in
    // the order they came.
    h.advance(Duration::from_secs(2));
    h.guest(&udp4(GUEST4, 40001, REMOTE4, 7, b"legit"));
    assert_eq!(h.expect_op(), SockOp::Close { id: opened[0] });
    assert!(matches!(h.expect_op(), SockOp::Open { .. }));
}

#[test]
fn failed_opens_end_the_flow_and_the_next_datagram_retries() {
    let mut h = Harness::new(test_config());
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5000, b"x"));
    let (id, _) = expect_open(&mut h);
    let _ = expect_send(&mut h);
    err(&mut h, id, Errno::EMFILE);
    // The queued send fails too; its socket is gone.
    err(&mut h, id, Errno::EBADF);
    assert_eq!(h.t.stats().udp.open_failed, 1);
    assert_eq!(h.t.stats().dropped(DropReason::StaleSocket), 1);
    assert_eq!(h.t.poll_timeout(), None);
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 5000, b"x"));
    let (id2, _) = expect_open(&mut h);
    assert_ne!(id2, id);
}

#[test]
fn guest_mac_is_the_destination_and_our_mac_the_source() {
    let mut h = Harness::new(test_config());
    let id = open4(&mut h, (REMOTE4, 5000));
    h.ready(id, Ready::READABLE);
    let into = expect_recv(&mut h, id);
    h.recv(id, into, &[(sa(REMOTE4, 5000), b"m")]);
    let f = h.expect_frame();
    let (eth, _) = EthernetRepr::parse(&f).unwrap();
    assert_eq!((eth.dst, eth.src), (GUEST_MAC, h.t.config().our_mac));
}

#[test]
fn consecutive_datagrams_of_a_flow_form_one_send_batch() {
    let mut h = Harness::new(test_config());
    let a = open4(&mut h, (REMOTE4, 5000));
    h.expect_no_op();
    let frames = [
        udp4(GUEST4, 40000, REMOTE4, 5000, b"one"),
        udp4(GUEST4, 40000, REMOTE4, 5000, b"two"),
        udp4(GUEST4, 40000, REMOTE4, 5000, b"three"),
        // Another flow ends the run...
        udp4(GUEST4, 40000, REMOTE4, 5001, b"elsewhere"),
        // ...and the first flow's next datagram starts a new one.
        udp4(GUEST4, 40000, REMOTE4, 5000, b"four"),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    h.guest_batch(&refs);

    let b = h.host.take_send_batch().expect("a run of sends");
    assert_eq!(b.id(), Some(a));
    let got: Vec<(Option<SockAddrAny>, u32, Vec<u8>)> = b
        .msgs()
        .iter()
        .map(|m| (m.dst, m.payload.frame, h.last_span(m.payload)))
        .collect();
    assert_eq!(
        got,
        [
            (None, 0, b"one".to_vec()),
            (None, 1, b"two".to_vec()),
            (None, 2, b"three".to_vec()),
        ]
    );
    // The new flow's Open is no send: nothing taken, it stays in front.
    assert!(h.host.take_send_batch().is_none());
    let (b_id, spec) = expect_open(&mut h);
    assert_eq!(spec.peer, Some(sa(REMOTE4, 5001)));
    let b2 = h.host.take_send_batch().unwrap();
    assert_eq!(b2.id(), Some(b_id));
    assert_eq!(b2.len(), 1);
    assert_eq!(h.last_span(b2.msgs()[0].payload), b"elsewhere");
    let b3 = h.host.take_send_batch().unwrap();
    assert_eq!(b3.id(), Some(a));
    assert_eq!(b3.len(), 1);
    assert_eq!(h.last_span(b3.msgs()[0].payload), b"four");
    h.expect_no_op();
    // One completion per datagram, in order, as for separate sends.
    for _ in 0..3 {
        ok(&mut h, a, Done::Bytes(3));
    }
    assert_eq!(h.t.stats().udp.to_host, 6);
    assert_eq!(h.t.stats().udp.send_errors, 0);
}

#[test]
fn batched_receive_from_mixed_senders_maps_each_to_its_flow_and_replies_batch_back() {
    let mut c = test_config();
    c.fwd.udp_in = FwdSpec::parse("5353:53").unwrap();
    c.guest_mac = Some(GUEST_MAC);
    let mut h = Harness::new(c);
    let SockOp::Open { id: lid, .. } = h.expect_op() else {
        panic!("listener open expected");
    };
    ok(&mut h, lid, Done::Opened);

    let s1 = sa(Ipv4Addr::new(203, 0, 113, 9), 40001);
    let s2 = sa(Ipv4Addr::new(198, 51, 100, 7), 40002);
    let lo = sa(Ipv4Addr::LOCALHOST, 40003);
    h.ready(lid, Ready::READABLE);
    let into = expect_recv(&mut h, lid);
    h.recv(
        lid,
        into,
        &[(s1, b"q1"), (s2, b"q2-longer"), (s1, b"q3"), (lo, b"q4")],
    );
    // Each datagram framed from its own sender (loopback seen as the
    // gateway), to the guest's port 53, checksums verified by `udp_frame`.
    let mut frames = Vec::new();
    while let Some(f) = h.to_guest.pop_front() {
        frames.push(f);
    }
    assert_eq!(frames.len(), 4);
    let decoded: Vec<(SockAddrAny, SockAddrAny, Vec<u8>)> =
        frames.iter().map(|f| udp_frame(f)).collect();
    let g53 = sa(GUEST4, 53);
    assert_eq!(
        decoded,
        [
            (s1, g53, b"q1".to_vec()),
            (s2, g53, b"q2-longer".to_vec()),
            (s1, g53, b"q3".to_vec()),
            (sa(GW4, 40003), g53, b"q4".to_vec()),
        ]
    );
    // Bytes of the first frame: IPv4 total length 30, UDP length 10, and
    // the UDP checksum as computed here over the pseudo-header (RFC 768).
    let f = &frames[0];
    assert_eq!(f.len(), 14 + 20 + 8 + 2);
    assert_eq!(&f[16..18], &30u16.to_be_bytes());
    assert_eq!(&f[26..30], &[203, 0, 113, 9]);
    assert_eq!(&f[30..34], &GUEST4.octets());
    assert_eq!(&f[34..38], &[0x9c, 0x41, 0, 53]);
    assert_eq!(&f[38..40], &10u16.to_be_bytes());
    assert_eq!(&f[42..44], b"q1");
    // Pseudo-header, then the UDP header with a zero checksum and the payload.
    let mut summed = Vec::new();
    summed.extend_from_slice(&[203, 0, 113, 9]);
    summed.extend_from_slice(&GUEST4.octets());
    summed.extend_from_slice(&[0, 17, 0, 10]);
    summed.extend_from_slice(&[0x9c, 0x41, 0, 53, 0, 10, 0, 0]);
    summed.extend_from_slice(b"q1");
    let mut sum: u32 = summed
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let csum = !(sum as u16);
    assert_eq!(&f[40..42], &csum.to_be_bytes());
    assert_eq!(h.t.stats().udp.flows_inbound, 3);

    // The guest answers all three senders in one batch: one run of SendTos
    // on the listener, each to its own sender, in order.
    let replies = [
        udp4(GUEST4, 53, Ipv4Addr::new(203, 0, 113, 9), 40001, b"a1"),
        udp4(GUEST4, 53, Ipv4Addr::new(198, 51, 100, 7), 40002, b"a2"),
        udp4(GUEST4, 53, GW4, 40003, b"a4"),
        udp4(GUEST4, 53, Ipv4Addr::new(203, 0, 113, 9), 40001, b"a3"),
    ];
    let refs: Vec<&[u8]> = replies.iter().map(Vec::as_slice).collect();
    h.guest_batch(&refs);
    let b = h.host.take_send_batch().expect("a run of SendTos");
    assert_eq!(b.id(), Some(lid));
    let got: Vec<(Option<SockAddrAny>, Vec<u8>)> = b
        .msgs()
        .iter()
        .map(|m| (m.dst, h.last_span(m.payload)))
        .collect();
    assert_eq!(
        got,
        [
            (Some(s1), b"a1".to_vec()),
            (Some(s2), b"a2".to_vec()),
            (Some(lo), b"a4".to_vec()),
            (Some(s1), b"a3".to_vec()),
        ]
    );
    h.expect_no_op();
    assert_eq!(h.t.stats().udp.flows_inbound, 3);
}

// -------------------------------------------------------------------------
// `-U`: namespace ports to the host's loopback, without frames
// -------------------------------------------------------------------------

/// Check the `Open` of a `-U` socket: UDP, made inside the namespace,
/// `SO_REUSEADDR` (and `IPV6_V6ONLY` for IPv6), bound to that family's
/// loopback, not connected.
#[track_caller]
fn check_out_socket(spec: &SockSpec, port: u16) {
    assert_eq!(spec.proto, Proto::Udp, "{spec:?}");
    assert!(
        spec.flags.contains(SockFlags::IN_NS | SockFlags::REUSEADDR),
        "{spec:?}"
    );
    assert_eq!(
        spec.flags.contains(SockFlags::V6ONLY),
        spec.ipv6,
        "{spec:?}"
    );
    assert!(!spec.flags.contains(SockFlags::LISTEN), "{spec:?}");
    assert_eq!(spec.peer, None);
    let lo = if spec.ipv6 {
        sa(Ipv6Addr::LOCALHOST, port)
    } else {
        sa(Ipv4Addr::LOCALHOST, port)
    };
    assert_eq!(spec.bind, Some(lo));
}

/// Move what the translator queued outside a `handle_*` call to the
/// harness's recorder.
fn drain(h: &mut Harness) {
    while let Some(op) = h.t.poll_op() {
        h.host.ops.push_back(op);
    }
}

/// A harness with `-U spec` (and `max_flows` flows); the `-U` sockets
/// asked for at start-up, each checked for `port` and opened, IPv4 first.
fn udp_out_harness(spec: &str, port: u16, max_flows: u32) -> (Harness, Vec<SockId>) {
    let mut c = test_config();
    c.fwd.udp_out = FwdSpec::parse(spec).unwrap();
    c.limits.max_flows = max_flows;
    let mut h = Harness::new(c);
    let mut socks = Vec::new();
    while let Some(op) = h.host.ops.pop_front() {
        let SockOp::Open { id, spec } = op else {
            panic!("{op:?}");
        };
        check_out_socket(&spec, port);
        socks.push((spec.ipv6, id));
        ok(&mut h, id, Done::Opened);
    }
    socks.sort_by_key(|(v6, _)| *v6);
    (h, socks.into_iter().map(|(_, id)| id).collect())
}

/// The next operation sends held datagram `index` on `id` (to `dst`).
#[track_caller]
fn expect_send_held(h: &mut Harness, id: SockId, dst: Option<SockAddrAny>, index: u32) {
    assert_eq!(h.expect_op(), SockOp::SendHeld { id, dst, index });
}

/// A host socket for a new `-U` sender: opened in our own namespace,
/// connected to the loopback of `v6`'s family at `target`, nothing bound.
#[track_caller]
fn expect_out_flow_open(h: &mut Harness, v6: bool, target: u16) -> SockId {
    let SockOp::Open { id, spec } = h.expect_op() else {
        panic!("expected the Open of a -U flow");
    };
    assert_eq!(spec.proto, Proto::Udp);
    assert_eq!(spec.ipv6, v6);
    assert!(!spec.flags.contains(SockFlags::IN_NS), "{spec:?}");
    assert_eq!(spec.bind, None);
    let lo = if v6 {
        sa(Ipv6Addr::LOCALHOST, target)
    } else {
        sa(Ipv4Addr::LOCALHOST, target)
    };
    assert_eq!(spec.peer, Some(lo));
    id
}

/// A byte pattern of `len` bytes, different for each `seed`.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn udp_out_opens_namespace_sockets_on_both_loopbacks() {
    let (mut h, socks) = udp_out_harness("5400:5500", 5400, 64);
    assert_eq!(socks.len(), 2, "one socket per family");
    assert_eq!(h.t.stats().udp.listeners, 2);
    assert!(h.t.udp_out_listening(5400));
    assert!(!h.t.udp_out_listening(5500));
    assert!(!h.t.tcp_out_listening(5400));
    h.expect_no_op();
    h.expect_no_frame();

    // IPv6 off in the namespace: that socket fails alone, IPv4 works.
    let mut c = test_config();
    c.fwd.udp_out = FwdSpec::parse("5401").unwrap();
    let mut h = Harness::new(c);
    let mut failed = 0;
    while let Some(op) = h.host.ops.pop_front() {
        let SockOp::Open { id, spec } = op else {
            panic!("{op:?}");
        };
        check_out_socket(&spec, 5401);
        if spec.ipv6 {
            err(&mut h, id, Errno(97)); // EAFNOSUPPORT
            failed += 1;
        } else {
            ok(&mut h, id, Done::Opened);
        }
    }
    assert_eq!(failed, 1);
    assert_eq!(h.t.stats().udp.listen_failed, 1);
    assert_eq!(h.t.stats().udp.listeners, 1);
    assert!(h.t.udp_out_listening(5401));
}

#[test]
fn udp_out_sends_each_sender_through_its_own_host_socket_and_replies_come_back() {
    let (mut h, socks) = udp_out_harness("5400:5500", 5400, 64);
    let (ns4, ns6) = (socks[0], socks[1]);
    let s1 = sa(Ipv4Addr::LOCALHOST, 40001);
    let s2 = sa(Ipv4Addr::LOCALHOST, 40002);
    let big = pattern(7, 60_000);
    let mid = pattern(9, 1400);

    // Three datagrams, two senders: two flows, each datagram sent on its
    // sender's socket, named by its place in the receive.
    h.ready(ns4, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns4 });
    h.recv_held(ns4, &[(s1, b"1"), (s2, &big), (s1, &mid)]);
    let f1 = expect_out_flow_open(&mut h, false, 5500);
    expect_send_held(&mut h, f1, None, 0);
    let f2 = expect_out_flow_open(&mut h, false, 5500);
    expect_send_held(&mut h, f2, None, 1);
    expect_send_held(&mut h, f1, None, 2);
    h.expect_no_op();
    assert_ne!(f1, f2);
    // What those indices send: the bytes each sender wrote, unchanged.
    assert_eq!(h.held(0), b"1");
    assert_eq!(h.held(1), &big[..]);
    assert_eq!(h.held(2), &mid[..]);
    ok(&mut h, f1, Done::Opened);
    ok(&mut h, f1, Done::Bytes(1));
    ok(&mut h, f2, Done::Opened);
    ok(&mut h, f2, Done::Bytes(60_000));
    ok(&mut h, f1, Done::Bytes(1400));
    h.expect_no_op();
    assert_eq!(h.t.stats().udp.out_flows, 2);
    assert_eq!(h.t.stats().udp.out_to_host, 3);

    // The same sender again: its flow, no new socket.
    h.ready(ns4, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns4 });
    h.recv_held(ns4, &[(s2, b"again")]);
    expect_send_held(&mut h, f2, None, 0);
    ok(&mut h, f2, Done::Bytes(5));
    h.expect_no_op();

    // Replies on each host socket go back to their own sender, through
    // the namespace socket it wrote to.
    let target = sa(Ipv4Addr::LOCALHOST, 5500);
    h.ready(f2, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: f2 });
    h.recv_held(f2, &[(target, &big), (target, b"r2")]);
    for index in 0..2 {
        expect_send_held(&mut h, ns4, Some(s2), index);
    }
    assert_eq!(h.held(0), &big[..]);
    assert_eq!(h.held(1), b"r2");
    h.ready(f1, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: f1 });
    h.recv_held(f1, &[(target, b"r1")]);
    expect_send_held(&mut h, ns4, Some(s1), 0);
    assert_eq!(h.held(0), b"r1");
    ok(&mut h, ns4, Done::Bytes(2));
    h.expect_no_op();
    assert_eq!(h.t.stats().udp.out_to_ns, 3);

    // IPv6: a flow of its own family, replies through the IPv6 socket.
    let s6 = sa(Ipv6Addr::LOCALHOST, 40003);
    h.ready(ns6, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns6 });
    h.recv_held(ns6, &[(s6, &mid)]);
    let f6 = expect_out_flow_open(&mut h, true, 5500);
    expect_send_held(&mut h, f6, None, 0);
    ok(&mut h, f6, Done::Opened);
    h.ready(f6, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: f6 });
    h.recv_held(f6, &[(sa(Ipv6Addr::LOCALHOST, 5500), b"r6")]);
    expect_send_held(&mut h, ns6, Some(s6), 0);
    h.expect_no_op();

    // Nothing of this is a frame, and no tx slot was ever asked for.
    h.expect_no_frame();
    assert_eq!(h.t.stats().frames_out, 0);
    assert_eq!(h.t.stats().udp.to_guest, 0);
    assert_eq!(
        h.t.stats().udp.flows_opened + h.t.stats().udp.flows_inbound,
        0
    );
}

#[test]
fn udp_out_flows_expire_after_30_idle_seconds_or_120_once_answered_and_refusals_are_only_counted() {
    let (mut h, socks) = udp_out_harness("5400:5500", 5400, 64);
    let ns4 = socks[0];
    let s1 = sa(Ipv4Addr::LOCALHOST, 40001);
    let s2 = sa(Ipv4Addr::LOCALHOST, 40002);
    let start = h.now();
    h.ready(ns4, Ready::READABLE);
    let _ = h.expect_op();
    h.recv_held(ns4, &[(s1, b"a"), (s2, b"b")]);
    let f1 = expect_out_flow_open(&mut h, false, 5500);
    let _ = h.expect_op();
    let f2 = expect_out_flow_open(&mut h, false, 5500);
    let _ = h.expect_op();
    for f in [f1, f2] {
        ok(&mut h, f, Done::Opened);
    }
    // Nothing listens on the target: the send (or a later receive) says
    // so; counted, no ICMP, nothing toward the namespace, flow kept.
    err(&mut h, f1, Errno::ECONNREFUSED);
    ok(&mut h, f2, Done::Bytes(1));
    h.ready(f1, Ready::ERROR);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: f1 });
    err(&mut h, f1, Errno::ECONNREFUSED);
    assert_eq!(h.t.stats().udp.out_refused, 2);
    assert_eq!(h.t.stats().udp.port_unreachable, 0);
    h.expect_no_op();
    h.expect_no_frame();

    // f2's target replies 20 s later, and its sender sends again at 25 s:
    // it lives 120 s on; f1, unanswered, goes at 30 s.
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(30)));
    h.advance(Duration::from_secs(20));
    h.ready(f2, Ready::READABLE);
    let _ = h.expect_op();
    h.recv_held(f2, &[(sa(Ipv4Addr::LOCALHOST, 5500), b"late")]);
    assert!(matches!(h.expect_op(), SockOp::SendHeld { .. }));
    // A lone request and its answer: still 30 s.
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(30)));
    h.advance(Duration::from_secs(5));
    h.ready(ns4, Ready::READABLE);
    let _ = h.expect_op();
    h.recv_held(ns4, &[(s2, b"more")]);
    assert!(matches!(h.expect_op(), SockOp::SendHeld { .. }));
    h.advance(Duration::from_secs(4));
    h.expect_no_op();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.expect_op(), SockOp::Close { id: f1 });
    h.expect_no_op();
    assert_eq!(h.t.poll_timeout(), Some(start + Duration::from_secs(145)));
    h.advance(Duration::from_secs(114));
    h.expect_no_op();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.expect_op(), SockOp::Close { id: f2 });
    h.expect_no_op();
    assert_eq!(h.t.stats().udp.flows_expired, 2);
    assert_eq!(h.t.poll_timeout(), None);
    // The namespace socket stays; the sender comes back with a new flow.
    h.ready(ns4, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns4 });
    h.recv_held(ns4, &[(s1, b"back")]);
    let f3 = expect_out_flow_open(&mut h, false, 5500);
    assert_ne!(f3, f1);
    h.expect_no_frame();
}

#[test]
fn udp_out_flows_are_bounded_by_the_table_and_evict_idle_ones() {
    let (mut h, socks) = udp_out_harness("5400:5500", 5400, 4);
    let ns4 = socks[0];
    let senders: Vec<SockAddrAny> = (0..6).map(|i| sa(Ipv4Addr::LOCALHOST, 41000 + i)).collect();
    let datagrams: Vec<(SockAddrAny, &[u8])> = senders.iter().map(|s| (*s, &b"x"[..])).collect();
    h.ready(ns4, Ready::READABLE);
    let _ = h.expect_op();
    h.recv_held(ns4, &datagrams);
    let mut flows = Vec::new();
    while let Some(op) = h.host.ops.pop_front() {
        match op {
            SockOp::Open { id, .. } => flows.push(id),
            SockOp::SendHeld { id, index, .. } => {
                assert_eq!(Some(&id), flows.last());
                assert_eq!(index as usize, flows.len() - 1);
            }
            op => panic!("{op:?}"),
        }
    }
    assert_eq!(flows.len(), 4, "as many flows as the table holds");
    assert_eq!(h.t.stats().dropped(DropReason::FlowTableFull), 2);
    for f in &flows {
        ok(&mut h, *f, Done::Opened);
    }
    // Once they have been idle, a new sender pushes out the oldest.
    h.advance(Duration::from_secs(2));
    h.ready(ns4, Ready::READABLE);
    let _ = h.expect_op();
    h.recv_held(ns4, &[(senders[5], b"y")]);
    assert_eq!(h.expect_op(), SockOp::Close { id: flows[0] });
    let _ = expect_out_flow_open(&mut h, false, 5500);
    assert!(matches!(h.expect_op(), SockOp::SendHeld { index: 0, .. }));
    assert_eq!(h.t.stats().udp.flows_evicted, 1);
    h.expect_no_frame();
}

#[test]
fn udp_out_auto_opens_and_closing_ends_sockets_and_flows() {
    let (mut h, socks) = udp_out_harness("auto", 0, 64);
    assert!(socks.is_empty(), "no static sockets for auto");
    assert!(h.t.set_auto_out_port(Proto::Udp, 5410, true));
    drain(&mut h);
    let mut ns = Vec::new();
    while let Some(op) = h.host.ops.pop_front() {
        let SockOp::Open { id, spec } = op else {
            panic!("{op:?}");
        };
        check_out_socket(&spec, 5410);
        ns.push((spec.ipv6, id));
        ok(&mut h, id, Done::Opened);
    }
    ns.sort_by_key(|(v6, _)| *v6);
    let ns: Vec<SockId> = ns.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ns.len(), 2);
    assert!(h.t.udp_out_listening(5410));
    // Already open: nothing; the inward direction and TCP leave it alone.
    assert!(!h.t.set_auto_out_port(Proto::Udp, 5410, true));
    assert!(!h.t.set_auto_port(Proto::Udp, 5410, false));
    assert!(!h.t.tcp_out_listening(5410));
    h.expect_no_op();

    // A flow through each family.
    let mut flows = Vec::new();
    for (sock, from, v6) in [
        (ns[0], sa(Ipv4Addr::LOCALHOST, 40100), false),
        (ns[1], sa(Ipv6Addr::LOCALHOST, 40100), true),
    ] {
        h.ready(sock, Ready::READABLE);
        assert_eq!(h.expect_op(), SockOp::RecvHeld { id: sock });
        h.recv_held(sock, &[(from, b"hello")]);
        let f = expect_out_flow_open(&mut h, v6, 5410);
        assert!(matches!(h.expect_op(), SockOp::SendHeld { id, .. } if id == f));
        ok(&mut h, f, Done::Opened);
        flows.push(f);
    }

    // Closed: both sockets and both flows, nothing else.
    assert!(h.t.set_auto_out_port(Proto::Udp, 5410, false));
    drain(&mut h);
    let mut closed = Vec::new();
    while let Some(op) = h.host.ops.pop_front() {
        let SockOp::Close { id } = op else {
            panic!("{op:?}");
        };
        closed.push(id);
    }
    closed.sort_by_key(|id| id.slot());
    let mut want: Vec<SockId> = ns.iter().chain(&flows).copied().collect();
    want.sort_by_key(|id| id.slot());
    assert_eq!(closed, want);
    assert!(!h.t.udp_out_listening(5410));
    assert_eq!(h.t.poll_timeout(), None, "no flow left");
    assert!(!h.t.set_auto_out_port(Proto::Udp, 5410, false));
    // Late readiness of a closed socket is stale.
    h.ready(ns[0], Ready::READABLE);
    h.expect_no_op();

    // Open again; both fail (taken in the namespace): not listening, and
    // asking again retries.
    assert!(h.t.set_auto_out_port(Proto::Udp, 5410, true));
    drain(&mut h);
    let ids: Vec<SockId> = (0..2).map(|_| h.expect_open_id()).collect();
    for id in ids {
        err(&mut h, id, Errno::EADDRINUSE);
    }
    assert!(!h.t.udp_out_listening(5410));
    assert!(h.t.set_auto_out_port(Proto::Udp, 5410, true));
    h.expect_no_frame();
}

#[test]
fn udp_out_keeps_one_held_receive_at_a_time() {
    let (mut h, socks) = udp_out_harness("5400:5500", 5400, 64);
    let (ns4, ns6) = (socks[0], socks[1]);
    // Both namespace sockets ready in one wake-up, before the driver ran
    // anything: the second waits (it is level-triggered and reports
    // again), so the first receive's datagrams stay the held ones.
    h.ready(ns4, Ready::READABLE);
    h.ready(ns6, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns4 });
    h.expect_no_op();
    h.recv_held(ns4, &[(sa(Ipv4Addr::LOCALHOST, 40001), b"v4")]);
    let f = expect_out_flow_open(&mut h, false, 5500);
    expect_send_held(&mut h, f, None, 0);
    h.ready(ns6, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns6 });
    // Nothing was there after all: the next readiness reads again.
    h.recv_held(ns6, &[]);
    h.ready(ns6, Ready::READABLE);
    assert_eq!(h.expect_op(), SockOp::RecvHeld { id: ns6 });
    h.expect_no_frame();
}

/// A SLAAC guest's global address (prefix + modified EUI-64 of its MAC,
/// RFC 4291 Appendix A), not the configured `GUEST6`.
const SLAAC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
/// The same guest's link-local address.
const LL6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);

/// Forwarding UDP 5353 to the guest's 53 in both families, the listeners
/// open; the IPv6 one. With `speak`, the guest has sent from its SLAAC and
/// link-local addresses first.
fn slaac_harness(speak: bool) -> (Harness, SockId) {
    let mut c = dual_config();
    c.fwd.udp_in = FwdSpec::parse("5353:53").unwrap();
    c.guest_mac = Some(GUEST_MAC);
    let mut h = Harness::new(c);
    let mut v6 = None;
    while let Some(op) = h.host.ops.pop_front() {
        let SockOp::Open { id, spec } = op else {
            panic!("{op:?}");
        };
        ok(&mut h, id, Done::Opened);
        if spec.ipv6 {
            v6 = Some(id);
        }
    }
    if speak {
        // Resets matching no connection: no answer, no socket.
        for src in [LL6, SLAAC6] {
            h.guest(
                &passt_core::testing::build::tcp6(src, 1, REMOTE6, 2)
                    .flags(passt_core::wire::tcp::TcpFlags::RST)
                    .build(),
            );
        }
    }
    h.expect_no_op();
    h.expect_no_frame();
    (h, v6.expect("an IPv6 listener"))
}

#[test]
fn forwarded_ipv6_datagrams_go_to_the_address_a_slaac_guest_uses() {
    let (mut h, lid) = slaac_harness(true);
    let lo = sa(Ipv6Addr::LOCALHOST, 40002);
    let own = sa(GUEST6, 40003);
    let far = sa(REMOTE6, 40004);
    h.ready(lid, Ready::READABLE);
    let into = expect_recv(&mut h, lid);
    h.recv(lid, into, &[(lo, b"lo"), (own, b"own"), (far, b"far")]);
    // The host's loopback and own address stand for our link-local
    // gateway: to the guest's link-local address. Checksums are verified
    // by `udp_frame`.
    for (port, want) in [(40002, &b"lo"[..]), (40003, b"own")] {
        let (src, dst, payload) = udp_frame(&h.expect_frame());
        assert_eq!(
            (src, dst, payload.as_slice()),
            (sa(GW6, port), sa(LL6, 53), want)
        );
    }
    // A global sender: to the guest's global address as seen.
    let (src, dst, payload) = udp_frame(&h.expect_frame());
    assert_eq!(
        (src, dst, payload.as_slice()),
        (far, sa(SLAAC6, 53), &b"far"[..])
    );
    h.expect_no_frame();
    // Replies from those addresses reach each sender on the listener.
    for (from, to, sender) in [(LL6, GW6, lo), (SLAAC6, REMOTE6, far)] {
        h.guest(&udp6(from, 53, to, sender.port, b"re"));
        match h.expect_op() {
            SockOp::SendTo { id, dst, payload } => {
                assert_eq!((id, dst, payload.len), (lid, sender, 2));
            }
            op => panic!("{op:?}"),
        }
    }
    assert_eq!(h.t.stats().udp.flows_opened, 0);
    assert_eq!(h.t.stats().udp.flows_inbound, 3);
    h.expect_no_op();
}

#[test]
fn forwarded_ipv6_datagram_before_the_guest_spoke_goes_to_the_configured_address() {
    let (mut h, lid) = slaac_harness(false);
    h.ready(lid, Ready::READABLE);
    let into = expect_recv(&mut h, lid);
    h.recv(lid, into, &[(sa(Ipv6Addr::LOCALHOST, 40002), b"lo")]);
    let (src, dst, _) = udp_frame(&h.expect_frame());
    assert_eq!((src, dst), (sa(GW6, 40002), sa(GUEST6, 53)));
}

/// pasta's defaults for a host at 2001:db8:2::2 via 2001:db8:2::1: a burst
/// of 8 KiB datagrams to `-u 8210` from the host's own address becomes one
/// frame each, whole and in order (the translator loses none of them).
#[test]
fn burst_of_large_datagrams_from_the_hosts_own_address_all_become_frames() {
    let host6: Ipv6Addr = "2001:db8:2::2".parse().unwrap();
    let gw6: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
    let mut c = dual_config();
    c.mode = passt_core::config::Mode::Pasta;
    let ip6 = c.ip6.as_mut().unwrap();
    ip6.addr = host6;
    ip6.gateway = gw6;
    ip6.map_host_loopback = Some(gw6);
    c.fwd.udp_in = FwdSpec::parse("8210").unwrap();
    c.fwd.splice = true;
    c.guest_mac = Some(GUEST_MAC);
    let mut h = Harness::new(c);
    let mut v6 = None;
    while let Some(op) = h.host.ops.pop_front() {
        let SockOp::Open { id, spec } = op else {
            panic!("{op:?}");
        };
        ok(&mut h, id, Done::Opened);
        if spec.ipv6 {
            v6 = Some(id);
        }
    }
    let lid = v6.expect("an IPv6 listener");
    h.ready(lid, Ready::READABLE);
    let into = expect_recv(&mut h, lid);
    let data: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 8192]).collect();
    let from = sa(host6, 40002);
    let batch: Vec<(SockAddrAny, &[u8])> = data.iter().map(|d| (from, &d[..])).collect();
    h.recv(lid, into, &batch);
    for d in &data {
        let (src, dst, payload) = udp_frame(&h.expect_frame());
        assert_eq!((src, dst), (sa(gw6, 40002), sa(host6, 8210)));
        assert!(payload == *d);
    }
    h.expect_no_frame();
    assert_eq!(h.t.stats().udp.to_guest, 6);
}

/// An IPv4 frame with its TTL set to `ttl` and its header checksum redone.
fn with_ttl4(mut f: Vec<u8>, ttl: u8) -> Vec<u8> {
    f[22] = ttl;
    f[24..26].fill(0);
    let c = passt_core::wire::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// A host error as the executor reports it (`len` set by the harness).
fn host_error(icmp6: bool, icmp_type: u8, code: u8, info: u32, offender: IpAddr) -> HostError {
    HostError {
        len: 0,
        icmp6,
        icmp_type,
        code,
        info,
        offender: offender.into(),
    }
}

#[track_caller]
fn expect_recv_err(h: &mut Harness, sock: SockId) -> TxSlots {
    match h.expect_op() {
        SockOp::RecvErr { id, into } if id == sock => into,
        op => panic!("expected RecvErr on {sock:?}, got {op:?}"),
    }
}

#[test]
fn guest_ttl_reaches_the_socket_and_host_icmp_errors_come_back_from_the_router() {
    let mut h = Harness::new(test_config());
    h.t.set_host_errors(true);
    // A traceroute probe: TTL 1. The socket reports errors and sends with
    // TTL 1 before the datagram goes.
    h.guest(&with_ttl4(udp4(GUEST4, 40000, REMOTE4, 33434, b"probe"), 1));
    let (id, spec) = expect_open(&mut h);
    assert!(spec.flags.contains(SockFlags::RECVERR), "{spec:?}");
    assert_eq!(
        h.expect_op(),
        SockOp::SetTtl {
            id,
            ipv6: false,
            ttl: 1
        }
    );
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Opened);
    ok(&mut h, id, Done::Bytes(5));
    // Same TTL again: no new option; back to 64: set again.
    h.guest(&with_ttl4(udp4(GUEST4, 40000, REMOTE4, 33434, b"probe"), 1));
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Bytes(5));
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 33434, b"probe"));
    assert_eq!(
        h.expect_op(),
        SockOp::SetTtl {
            id,
            ipv6: false,
            ttl: 64
        }
    );
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Bytes(5));
    h.guest(&with_ttl4(udp4(GUEST4, 40000, REMOTE4, 33434, b"probe"), 1));
    let _ = h.expect_op();
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Bytes(5));

    // The router's time exceeded: the error queue is read first.
    let router = Ipv4Addr::new(203, 0, 113, 1);
    h.ready(id, Ready::ERROR | Ready::READABLE);
    let into = expect_recv_err(&mut h, id);
    h.recv_err(
        id,
        into,
        b"probe",
        host_error(false, 11, 0, 0, router.into()),
    );
    let f = h.expect_frame();
    let (eth, l3) = EthernetRepr::parse(&f).unwrap();
    assert_eq!(eth.dst, GUEST_MAC);
    let (ip, icmp) = Ipv4Repr::parse(l3, true).unwrap();
    assert_eq!(
        (ip.src, ip.dst, ip.protocol),
        (router, GUEST4, ip_proto::ICMP)
    );
    assert_eq!(
        passt_core::wire::checksum::checksum(icmp),
        0,
        "ICMP checksum"
    );
    // Time exceeded in transit, then the datagram as the guest sent it:
    // IP header (TTL 1, UDP, 20 + 8 + 5 bytes), UDP header, payload.
    assert_eq!(&icmp[..2], &[11, 0]);
    assert_eq!(&icmp[4..8], &[0, 0, 0, 0]);
    let quote = &icmp[8..];
    assert_eq!(quote.len(), 20 + 8 + 5);
    let (q, ql4) = Ipv4Repr::parse(quote, true).unwrap();
    assert_eq!(
        (q.src, q.dst, q.protocol, q.ttl),
        (GUEST4, REMOTE4, ip_proto::UDP, 1)
    );
    assert_eq!(
        ql4,
        &[0x9c, 0x40, 0x82, 0x9a, 0, 13, 0, 0, b'p', b'r', b'o', b'b', b'e']
    );
    assert_eq!(h.t.stats().udp.host_errors, 1);

    // The destination's port unreachable: from the remote as the guest
    // addressed it. The ECONNREFUSED a send reports meanwhile makes no
    // second error.
    err(&mut h, id, Errno::ECONNREFUSED);
    h.expect_no_frame();
    h.ready(id, Ready::ERROR);
    let into = expect_recv_err(&mut h, id);
    h.recv_err(
        id,
        into,
        b"probe",
        host_error(false, 3, 3, 0, REMOTE4.into()),
    );
    let f = h.expect_frame();
    let (_, l3) = EthernetRepr::parse(&f).unwrap();
    let (ip, icmp) = Ipv4Repr::parse(l3, true).unwrap();
    assert_eq!((ip.src, ip.dst), (REMOTE4, GUEST4));
    assert_eq!(&icmp[..2], &[3, 3]);
    assert_eq!(passt_core::wire::checksum::checksum(icmp), 0);

    // Fragmentation needed carries the next-hop MTU (RFC 1191 §4).
    h.ready(id, Ready::ERROR);
    let into = expect_recv_err(&mut h, id);
    h.recv_err(id, into, b"", host_error(false, 3, 4, 1400, router.into()));
    let f = h.expect_frame();
    let (_, l3) = EthernetRepr::parse(&f).unwrap();
    let (_, icmp) = Ipv4Repr::parse(l3, true).unwrap();
    assert_eq!(&icmp[..2], &[3, 4]);
    assert_eq!(&icmp[4..8], &[0, 0, 0x05, 0x78]);
    assert_eq!(icmp.len(), 8 + 20 + 8);

    // An empty error queue: the error is read as a receive (clearing it).
    h.ready(id, Ready::ERROR);
    let into = expect_recv_err(&mut h, id);
    err(&mut h, id, Errno::EAGAIN);
    let _ = into;
    let into = expect_recv(&mut h, id);
    h.recv(id, into, &[]);
    h.expect_no_frame();
    // An error of the wrong family, or from an address the guest cannot
    // see (unspecified), is dropped.
    h.ready(id, Ready::ERROR);
    let into = expect_recv_err(&mut h, id);
    h.recv_err(id, into, b"", host_error(true, 3, 0, 0, REMOTE6.into()));
    h.ready(id, Ready::ERROR);
    let into = expect_recv_err(&mut h, id);
    h.recv_err(
        id,
        into,
        b"",
        host_error(false, 11, 0, 0, Ipv4Addr::UNSPECIFIED.into()),
    );
    h.expect_no_frame();
}

#[test]
fn ipv6_hop_limit_and_packet_too_big_from_a_router() {
    let c = Config {
        ip6: Some(test_ip6()),
        ..test_config()
    };
    let mut h = Harness::new(c);
    h.t.set_host_errors(true);
    let mut probe = udp6(GUEST6, 40000, REMOTE6, 33434, b"big");
    probe[21] = 5; // hop limit (not covered by a checksum)
    h.guest(&probe);
    let (id, spec) = expect_open(&mut h);
    assert!(spec.flags.contains(SockFlags::RECVERR | SockFlags::V6ONLY));
    assert_eq!(
        h.expect_op(),
        SockOp::SetTtl {
            id,
            ipv6: true,
            ttl: 5
        }
    );
    let _ = expect_send(&mut h);
    ok(&mut h, id, Done::Opened);
    ok(&mut h, id, Done::Bytes(3));
    let router = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
    h.ready(id, Ready::ERROR);
    let into = expect_recv_err(&mut h, id);
    h.recv_err(
        id,
        into,
        b"big",
        host_error(true, 2, 0, 1280, router.into()),
    );
    let f = h.expect_frame();
    let (_, l3) = EthernetRepr::parse(&f).unwrap();
    let (ip, icmp) = Ipv6Repr::parse(l3).unwrap();
    assert_eq!((ip.src, ip.dst), (router, GUEST6));
    let pseudo = pseudo_header_v6(&router, &GUEST6, ip_proto::ICMPV6, icmp.len() as u32);
    let sum = passt_core::wire::checksum::finish(passt_core::wire::checksum::sum(pseudo, icmp));
    assert_eq!(sum, 0, "ICMPv6 checksum");
    // Packet too big, MTU 1280, then the datagram: IPv6 header (hop limit
    // 5, UDP, 11 bytes), UDP header, payload.
    assert_eq!(&icmp[..2], &[2, 0]);
    assert_eq!(&icmp[4..8], &[0, 0, 0x05, 0x00]);
    let quote = &icmp[8..];
    assert_eq!(quote.len(), 40 + 8 + 3);
    let (q, _) = Ipv6Repr::parse(quote).unwrap();
    assert_eq!((q.src, q.dst, q.hop_limit), (GUEST6, REMOTE6, 5));
    assert_eq!(
        &quote[40..],
        &[0x9c, 0x40, 0x82, 0x9a, 0, 11, 0, 0, b'b', b'i', b'g']
    );
}
