//! ICMP and ICMPv6 echo through the Translator on the fake host.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use passt_core::addr::SockAddrAny;
use passt_core::config::Config;
use passt_core::testing::build::{
    icmp4_echo, icmp6_echo, test_config, test_ip6, GUEST4, GUEST6, GUEST_MAC, GW4, GW6, REMOTE4,
};
use passt_core::testing::Harness;
use passt_core::wire::checksum::pseudo_header_v6;
use passt_core::wire::ethernet::EthernetRepr;
use passt_core::wire::icmp::IcmpRepr;
use passt_core::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use passt_core::wire::ip_proto;
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::ipv6::Ipv6Repr;
use passt_core::{
    Completion, Done, DropReason, Errno, Event, Proto, Ready, SockId, SockOp, SockSpec,
};

const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

fn dual() -> Config {
    Config {
        ip6: Some(test_ip6()),
        ..test_config()
    }
}

fn complete(h: &mut Harness, id: SockId, res: Result<Done, Errno>) {
    h.complete(Completion { id, res });
}

/// The Open and the Send of a new echo flow.
#[track_caller]
fn expect_flow(h: &mut Harness) -> (SockId, SockSpec, u32) {
    let (id, spec) = match h.expect_op() {
        SockOp::Open { id, spec } => (id, spec),
        op => panic!("{op:?}"),
    };
    match h.expect_op() {
        SockOp::Send { id: sid, payload } => {
            assert_eq!(sid, id);
            (id, spec, payload.len)
        }
        op => panic!("{op:?}"),
    }
}

/// What the kernel hands back on a ping socket: an echo reply with its own
/// identifier and a checksum we do not trust.
fn kernel_reply(v6: bool, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![if v6 { 129 } else { 0 }, 0, 0xde, 0xad];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    m
}

#[test]
fn echo4_to_a_remote_host_and_back_with_the_guests_identifier() {
    let mut h = Harness::new(test_config());
    h.guest(&icmp4_echo(GUEST4, REMOTE4, 0x1234, 1, b"ping data"));
    let (id, spec, len) = expect_flow(&mut h);
    assert_eq!(spec.proto, Proto::Icmp);
    assert!(!spec.ipv6);
    assert_eq!(spec.bind, None);
    assert_eq!(spec.peer, Some(SockAddrAny::new(REMOTE4, 0)));
    // The whole ICMP message goes to the socket; the kernel sets its id.
    assert_eq!(len, 8 + 9);
    complete(&mut h, id, Ok(Done::Opened));
    complete(&mut h, id, Ok(Done::Bytes(17)));
    // Same identifier, next sequence number: same flow.
    h.guest(&icmp4_echo(GUEST4, REMOTE4, 0x1234, 2, b"ping data"));
    assert!(matches!(h.expect_op(), SockOp::Send { id: s, .. } if s == id));

    h.ready(id, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { id: s, into } if s == id => into,
        op => panic!("{op:?}"),
    };
    assert_eq!(into.payload_offset, 14 + 20);
    let r1 = kernel_reply(false, 0x4242, 1, b"ping data");
    let r2 = kernel_reply(false, 0x4242, 2, b"ping data");
    let from = SockAddrAny::new(REMOTE4, 0);
    h.recv(id, into, &[(from, &r1), (from, &r2)]);
    for seq in 1..=2 {
        let f = h.expect_frame();
        let (eth, l3) = EthernetRepr::parse(&f).unwrap();
        assert_eq!(eth.dst, GUEST_MAC);
        let (ip, l4) = Ipv4Repr::parse(l3, true).unwrap();
        assert_eq!(
            (ip.src, ip.dst, ip.protocol),
            (REMOTE4, GUEST4, ip_proto::ICMP)
        );
        let (msg, _) = IcmpRepr::parse(l4, true).expect("checksum verifies");
        assert_eq!(
            msg,
            IcmpRepr::EchoReply {
                ident: 0x1234,
                seq,
                data: b"ping data"
            }
        );
    }
    h.expect_no_frame();
    let s = &h.t.stats().icmp;
    assert_eq!((s.flows_opened, s.requests, s.replies), (1, 2, 2));
}

#[test]
fn echo_to_the_gateway_goes_to_host_loopback_both_families() {
    let mut h = Harness::new(dual());
    h.guest(&icmp4_echo(GUEST4, GW4, 7, 1, b""));
    let (_, spec, _) = expect_flow(&mut h);
    assert_eq!(spec.peer, Some(SockAddrAny::new(Ipv4Addr::LOCALHOST, 0)));
    h.guest(&icmp6_echo(GUEST6, GW6, 7, 1, b"six"));
    let (id6, spec, len) = expect_flow(&mut h);
    assert!(spec.ipv6);
    assert_eq!(spec.peer, Some(SockAddrAny::new(Ipv6Addr::LOCALHOST, 0)));
    assert_eq!(len, 11);
    complete(&mut h, id6, Ok(Done::Opened));
    h.ready(id6, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { into, .. } => into,
        op => panic!("{op:?}"),
    };
    assert_eq!(into.payload_offset, 14 + 40);
    let r = kernel_reply(true, 99, 1, b"six");
    h.recv(id6, into, &[(SockAddrAny::new(Ipv6Addr::LOCALHOST, 0), &r)]);
    let f = h.expect_frame();
    let (ip, l4) = Ipv6Repr::parse(&f[14..]).unwrap();
    assert_eq!((ip.src, ip.dst), (GW6, GUEST6));
    let p = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::ICMPV6, l4.len() as u32);
    let msg = Icmpv6Packet::parse(l4, Some(p)).expect("checksum").repr;
    assert_eq!(
        msg,
        Icmpv6Repr::EchoReply {
            ident: 7,
            seq: 1,
            data: b"six"
        }
    );
}

#[test]
fn echo6_to_a_remote_host() {
    let mut h = Harness::new(dual());
    h.guest(&icmp6_echo(GUEST6, REMOTE6, 0xbeef, 5, b"abc"));
    let (id, spec, _) = expect_flow(&mut h);
    assert_eq!(spec.peer, Some(SockAddrAny::new(REMOTE6, 0)));
    complete(&mut h, id, Ok(Done::Opened));
    h.ready(id, Ready::READABLE);
    let into = match h.expect_op() {
        SockOp::Recv { into, .. } => into,
        op => panic!("{op:?}"),
    };
    let r = kernel_reply(true, 1, 5, b"abc");
    // Something that is not an echo reply is dropped, the reply delivered.
    let junk = [1u8, 4, 0, 0, 0, 0, 0, 0];
    let from = SockAddrAny::new(REMOTE6, 0);
    h.recv(id, into, &[(from, &junk), (from, &r)]);
    let f = h.expect_frame();
    let (_, l4) = Ipv6Repr::parse(&f[14..]).unwrap();
    assert_eq!(&l4[4..8], &[0xbe, 0xef, 0, 5]);
    h.expect_no_frame();
    assert_eq!(h.t.stats().dropped(DropReason::Unsupported), 1);
}

#[test]
fn ping_sockets_refused_warn_once_and_drop_requests() {
    let mut h = Harness::new(test_config());
    h.guest(&icmp4_echo(GUEST4, REMOTE4, 1, 1, b""));
    let (id, _, _) = expect_flow(&mut h);
    complete(&mut h, id, Err(Errno::EACCES));
    complete(&mut h, id, Err(Errno::EBADF));
    assert_eq!(
        h.take_events(),
        vec![
            Event::GuestMac(GUEST_MAC),
            Event::GuestAddr4(GUEST4),
            Event::PingDenied { ipv6: false }
        ]
    );
    h.guest(&icmp4_echo(GUEST4, REMOTE4, 1, 2, b""));
    h.expect_no_op();
    assert!(h
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::PingDenied { .. })));
    assert_eq!(h.t.stats().icmp.denied, 1);
}

#[test]
fn echo_flows_expire_after_a_minute() {
    let mut h = Harness::new(test_config());
    h.guest(&icmp4_echo(GUEST4, REMOTE4, 1, 1, b""));
    let (id, _, _) = expect_flow(&mut h);
    complete(&mut h, id, Ok(Done::Opened));
    h.advance(Duration::from_secs(59));
    h.expect_no_op();
    h.advance(Duration::from_secs(2));
    assert_eq!(h.expect_op(), SockOp::Close { id });
    assert_eq!(h.t.stats().icmp.flows_expired, 1);
}

#[test]
fn bogus_icmp_is_counted_and_dropped() {
    let mut h = Harness::new(test_config());
    // Four bytes of ICMP.
    let mut f = icmp4_echo(GUEST4, REMOTE4, 1, 1, b"");
    f.truncate(14 + 20 + 4);
    f[16..18].copy_from_slice(&24u16.to_be_bytes());
    f[24..26].fill(0);
    let c = passt_core::wire::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    h.guest(&f);
    assert_eq!(h.t.stats().dropped(DropReason::Truncated), 1);
    // A bad ICMP checksum.
    let mut f = icmp4_echo(GUEST4, REMOTE4, 1, 1, b"data");
    let last = f.len() - 1;
    f[last] ^= 1;
    h.guest(&f);
    assert_eq!(h.t.stats().dropped(DropReason::BadChecksum), 1);
    // An echo reply from the guest, and an echo to a broadcast address.
    let mut f = icmp4_echo(GUEST4, REMOTE4, 1, 1, b"");
    f[34] = 0;
    f[36..38].fill(0);
    let c = passt_core::wire::checksum::checksum(&f[34..]);
    f[36..38].copy_from_slice(&c.to_be_bytes());
    h.guest(&f);
    h.guest(&icmp4_echo(GUEST4, Ipv4Addr::BROADCAST, 1, 1, b""));
    assert_eq!(h.t.stats().dropped(DropReason::Unsupported), 2);
    h.expect_no_op();
}

/// IPv6 where our link-local address (fe80::1, the guest's router) stands
/// for nothing on the host: `--no-map-gw`, or a global host gateway (then
/// the mapped address is that gateway's, not ours).
fn ours_unmapped() -> Config {
    let mut c = dual();
    let ip6 = c.ip6.as_mut().unwrap();
    ip6.map_host_loopback = Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    c
}

#[test]
fn echo6_to_our_link_local_is_answered_here_with_the_requests_fields() {
    let mut h = Harness::new(ours_unmapped());
    h.guest(&icmp6_echo(GUEST6, GW6, 0x4321, 7, b"echo to the router"));
    // No ping socket: answered locally.
    h.expect_no_op();
    let f = h.expect_frame();
    h.expect_no_frame();
    let mut want = Vec::new();
    // Ethernet: to the guest, from us.
    want.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    want.extend_from_slice(&[0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55, 0x86, 0xdd]);
    // IPv6: payload 26 octets, ICMPv6, hop limit 64, fe80::1 -> 2001:db8::10.
    want.extend_from_slice(&[0x60, 0, 0, 0, 0, 26, 58, 64]);
    want.extend_from_slice(&GW6.octets());
    want.extend_from_slice(&GUEST6.octets());
    // Echo Reply, code 0, checksum (computed independently over the
    // pseudo-header), identifier and sequence number of the request.
    want.extend_from_slice(&[129, 0, 0x8a, 0xf1, 0x43, 0x21, 0, 7]);
    want.extend_from_slice(b"echo to the router");
    assert_eq!(f, want);
    // And the checksum verifies with our own parser.
    let (ip, l4) = Ipv6Repr::parse(&f[14..]).unwrap();
    let p = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::ICMPV6, l4.len() as u32);
    assert!(Icmpv6Packet::parse(l4, Some(p)).is_ok());
    let s = h.t.stats();
    assert_eq!(
        (s.echo_replies, s.icmp.requests, s.icmp.flows_opened),
        (1, 0, 0)
    );
    // Empty data, and the highest identifier and sequence number.
    h.guest(&icmp6_echo(GUEST6, GW6, 0xffff, 0xffff, b""));
    let f = h.expect_frame();
    assert_eq!(f.len(), 14 + 40 + 8);
    assert_eq!(&f[18..20], &[0, 8]);
    let (ip, l4) = Ipv6Repr::parse(&f[14..]).unwrap();
    let p = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::ICMPV6, 8);
    assert_eq!(
        Icmpv6Packet::parse(l4, Some(p)).expect("checksum").repr,
        Icmpv6Repr::EchoReply {
            ident: 0xffff,
            seq: 0xffff,
            data: b""
        }
    );
    h.expect_no_op();
    assert_eq!(h.t.stats().echo_replies, 2);
}

#[test]
fn echo6_to_our_link_local_keeps_vlan_tags_and_answers_link_local_sources() {
    let mut h = Harness::new(ours_unmapped());
    let guest_ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
    let plain = icmp6_echo(guest_ll, GW6, 1, 1, b"tagged");
    // An 802.1Q tag, VID 5, between the addresses and the EtherType.
    let mut f = plain[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    f.extend_from_slice(&plain[12..]);
    h.guest(&f);
    let r = h.expect_frame();
    assert_eq!(&r[12..18], &[0x81, 0x00, 0x00, 0x05, 0x86, 0xdd]);
    let (ip, l4) = Ipv6Repr::parse(&r[18..]).unwrap();
    assert_eq!((ip.src, ip.dst, ip.hop_limit), (GW6, guest_ll, 64));
    let p = pseudo_header_v6(&ip.src, &ip.dst, ip_proto::ICMPV6, l4.len() as u32);
    assert_eq!(
        Icmpv6Packet::parse(l4, Some(p)).expect("checksum").repr,
        Icmpv6Repr::EchoReply {
            ident: 1,
            seq: 1,
            data: b"tagged"
        }
    );
    h.expect_no_op();
}

#[test]
fn echo6_to_our_link_local_is_refused_without_icmp_or_from_nobody() {
    let mut c = ours_unmapped();
    c.services.remove(passt_core::config::Services::ICMP);
    let mut h = Harness::new(c);
    h.guest(&icmp6_echo(GUEST6, GW6, 1, 1, b""));
    h.expect_no_frame();
    h.expect_no_op();
    assert_eq!(h.t.stats().dropped(DropReason::ProtocolDisabled), 1);
    assert_eq!(h.t.stats().echo_replies, 0);
    // From the unspecified address: no one to answer.
    let mut h = Harness::new(ours_unmapped());
    h.guest(&icmp6_echo(Ipv6Addr::UNSPECIFIED, GW6, 1, 1, b""));
    h.expect_no_frame();
    h.expect_no_op();
    assert_eq!(h.t.stats().dropped(DropReason::Malformed), 1);
    // An echo reply to our address is not ours to answer: as before.
    let mut h = Harness::new(ours_unmapped());
    let mut f = icmp6_echo(GUEST6, GW6, 1, 1, b"");
    f[54] = 129;
    let p = pseudo_header_v6(&GUEST6, &GW6, ip_proto::ICMPV6, 8);
    passt_core::wire::icmpv6::fill_checksum(&mut f[54..], p).unwrap();
    h.guest(&f);
    h.expect_no_frame();
    assert_eq!(h.t.stats().dropped(DropReason::Unsupported), 1);
    assert_eq!(h.t.stats().echo_replies, 0);
}

#[test]
fn echo_to_a_gateway_standing_for_the_host_goes_to_the_host_not_answered_here() {
    // test_ip6: fe80::1 is our link-local address *and* the host's
    // loopback (local mode): the host answers, through a ping socket.
    let mut h = Harness::new(dual());
    h.guest(&icmp6_echo(GUEST6, GW6, 3, 1, b""));
    let (_, spec, _) = expect_flow(&mut h);
    assert_eq!(spec.peer, Some(SockAddrAny::new(Ipv6Addr::LOCALHOST, 0)));
    h.expect_no_frame();
    assert_eq!(h.t.stats().echo_replies, 0);
    // IPv4 echo to the gateway is never answered here: mapped, the host's
    // loopback; with --no-map-gw, the gateway itself.
    let mut c = ours_unmapped();
    c.ip4.as_mut().unwrap().map_host_loopback = None;
    let mut h = Harness::new(c);
    h.guest(&icmp4_echo(GUEST4, GW4, 3, 1, b""));
    let (_, spec, _) = expect_flow(&mut h);
    assert_eq!(spec.peer, Some(SockAddrAny::new(GW4, 0)));
    h.expect_no_frame();
    assert_eq!(h.t.stats().echo_replies, 0);
}

#[test]
fn echo_ttl_reaches_the_socket_and_time_exceeded_quotes_the_guests_request() {
    let mut h = Harness::new(test_config());
    h.t.set_host_errors(true);
    let mut req = icmp4_echo(GUEST4, REMOTE4, 0x1234, 7, b"ping data");
    req[22] = 3; // TTL 3, header checksum redone
    req[24..26].fill(0);
    let c = passt_core::wire::checksum::checksum(&req[14..34]);
    req[24..26].copy_from_slice(&c.to_be_bytes());
    h.guest(&req);
    let (id, spec) = match h.expect_op() {
        SockOp::Open { id, spec } => (id, spec),
        op => panic!("{op:?}"),
    };
    assert!(spec.flags.contains(passt_core::SockFlags::RECVERR));
    assert_eq!(
        h.expect_op(),
        SockOp::SetTtl {
            id,
            ipv6: false,
            ttl: 3
        }
    );
    assert!(matches!(h.expect_op(), SockOp::Send { .. }));
    complete(&mut h, id, Ok(Done::Opened));
    complete(&mut h, id, Ok(Done::Bytes(17)));
    // What the router quoted: the request as the host sent it, with the
    // ping socket's identifier (0x9999) and the checksum for it.
    let guest_msg = req[34..].to_vec();
    let mut sent = guest_msg.clone();
    sent[4..6].copy_from_slice(&0x9999u16.to_be_bytes());
    sent[2..4].fill(0);
    let c = passt_core::wire::checksum::checksum(&sent);
    sent[2..4].copy_from_slice(&c.to_be_bytes());
    h.ready(id, Ready::ERROR);
    let into = match h.expect_op() {
        SockOp::RecvErr { id: i, into } if i == id => into,
        op => panic!("{op:?}"),
    };
    let router = Ipv4Addr::new(203, 0, 113, 1);
    h.recv_err(
        id,
        into,
        &sent,
        passt_core::HostError {
            len: 0,
            icmp6: false,
            icmp_type: 11,
            code: 0,
            info: 0,
            offender: router.into(),
        },
    );
    let f = h.expect_frame();
    let (_, l3) = EthernetRepr::parse(&f).unwrap();
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
    assert_eq!(&icmp[..8], &[11, 0, icmp[2], icmp[3], 0, 0, 0, 0]);
    let (q, ql4) = Ipv4Repr::parse(&icmp[8..], true).unwrap();
    assert_eq!(
        (q.src, q.dst, q.protocol, q.ttl),
        (GUEST4, REMOTE4, ip_proto::ICMP, 3)
    );
    // The guest's own request, byte for byte (identifier and checksum).
    assert_eq!(ql4, &guest_msg[..]);
    assert_eq!(h.t.stats().icmp.host_errors, 1);
}
