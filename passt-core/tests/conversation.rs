//! Whole conversations with the Translator on the fake host.

use passt_core::addr::MacAddr;
use passt_core::testing::build::{arp_request, eth, test_config, GUEST4, GUEST_MAC, GW4, REMOTE4};
use passt_core::testing::Harness;
use passt_core::wire::arp::{ArpOp, ArpRepr};
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::{DropReason, Event};

#[test]
fn arp_request_for_gateway_gets_our_mac() {
    let mut h = Harness::new(test_config());
    let our = h.t.config().our_mac;
    h.guest(&arp_request(GUEST_MAC, GUEST4, GW4));

    let reply = h.expect_frame();
    h.expect_no_frame();
    h.expect_no_op();
    // Byte for byte: Ethernet to the guest from us, ARP reply "192.0.2.1 is-at us".
    let mut expect = Vec::new();
    expect.extend_from_slice(&GUEST_MAC.0);
    expect.extend_from_slice(&our.0);
    expect.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    expect.extend_from_slice(&our.0);
    expect.extend_from_slice(&GW4.octets());
    expect.extend_from_slice(&GUEST_MAC.0);
    expect.extend_from_slice(&GUEST4.octets());
    assert_eq!(reply, expect);

    let (e, body) = EthernetRepr::parse(&reply).unwrap();
    assert_eq!(e.ethertype, ethertype::ARP);
    let a = ArpRepr::parse(body).unwrap();
    assert_eq!(
        (a.op, a.sha, a.spa, a.tpa),
        (ArpOp::Reply, our, GW4, GUEST4)
    );

    assert_eq!(h.take_events(), vec![Event::GuestMac(GUEST_MAC)]);
    assert_eq!(h.t.guest_mac(), Some(GUEST_MAC));
    assert_eq!(h.t.stats().arp_replies, 1);
    assert_eq!(h.t.stats().frames_in, 1);
    assert_eq!(h.t.stats().frames_out, 1);
}

#[test]
fn every_remote_address_is_behind_us_but_the_guests_own_is_not() {
    let mut h = Harness::new(test_config());
    h.guest(&arp_request(GUEST_MAC, GUEST4, REMOTE4));
    let r = h.expect_frame();
    assert_eq!(ArpRepr::parse(&r[14..]).unwrap().spa, REMOTE4);
    // Duplicate address detection probe for the guest's own address.
    h.guest(&arp_request(GUEST_MAC, "0.0.0.0".parse().unwrap(), GUEST4));
    // Gratuitous announcement.
    h.guest(&arp_request(GUEST_MAC, GUEST4, GUEST4));
    h.expect_no_frame();
    assert_eq!(h.t.stats().arp_replies, 1);
}

#[test]
fn bad_frames_are_counted_and_dropped_and_the_next_one_served() {
    let mut h = Harness::new(test_config());
    let good = arp_request(GUEST_MAC, GUEST4, GW4);
    let mut bad_hw = good.clone();
    bad_hw[15] = 6; // hardware type 6 (IEEE 802)
    let multicast_src = arp_request(MacAddr([1, 0, 0x5e, 0, 0, 1]), GUEST4, GW4);
    let unknown = eth(MacAddr::BROADCAST, GUEST_MAC, 0x88cc, &[0; 30]); // LLDP
    h.guest_batch(&[
        &good[..10],
        &good[..30],
        &bad_hw,
        &multicast_src,
        &unknown,
        &good,
    ]);
    assert_eq!(h.expect_frame().len(), 42);
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.frames_in, 6);
    assert_eq!(s.dropped(DropReason::Truncated), 2);
    assert_eq!(s.dropped(DropReason::Unsupported), 2);
    assert_eq!(s.dropped(DropReason::BadSourceMac), 1);
    let drops: Vec<_> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Dropped { reason, len } => Some((reason, len)),
            _ => None,
        })
        .collect();
    assert_eq!(drops[0], (DropReason::Truncated, 10));
    assert_eq!(drops.len(), 5);
}

#[test]
fn arp_is_ignored_without_ipv4() {
    let mut cfg = test_config();
    cfg.ip6 = Some(passt_core::config::Ip6Config {
        addr: "2001:db8::10".parse().unwrap(),
        prefix_len: 64,
        gateway: "fe80::1".parse().unwrap(),
        our_link_local: "fe80::1".parse().unwrap(),
        map_host_loopback: None,
        map_guest_addr: None,
        dns: vec![],
        dns_forward: None,
        dns_host: None,
    });
    cfg.ip4 = None;
    let mut h = Harness::new(cfg);
    h.guest(&arp_request(GUEST_MAC, GUEST4, GW4));
    h.expect_no_frame();
    assert_eq!(h.t.stats().dropped(DropReason::FamilyDisabled), 1);
}

#[test]
fn ip_layer_refuses_fragments_and_bad_header_checksums() {
    use passt_core::testing::build::udp4;
    let mut h = Harness::new(test_config());
    let good = udp4(GUEST4, 40000, REMOTE4, 53, b"query");
    let mut frag = good.clone();
    frag[14 + 6] |= 0x20; // more fragments
    passt_core::wire::ipv4::fill_checksum(&mut frag[14..34]).unwrap();
    let mut bad_sum = good.clone();
    bad_sum[14 + 8] ^= 1; // TTL changed, checksum not updated
    let mut short = good.clone();
    short.truncate(14 + 20 + 4);
    h.guest_batch(&[&frag, &bad_sum, &short, &good]);
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.dropped(DropReason::Fragment), 1);
    assert_eq!(s.dropped(DropReason::BadChecksum), 1);
    assert_eq!(s.dropped(DropReason::Truncated), 1);
    // Only the well-formed datagram opens a UDP flow.
    assert_eq!(s.udp.flows_opened, 1);
    assert!(matches!(h.expect_op(), passt_core::SockOp::Open { .. }));
}

#[test]
fn disabled_protocols_are_counted_and_dropped() {
    use passt_core::config::Services;
    use passt_core::testing::build::udp4;
    let mut cfg = test_config();
    cfg.services
        .remove(Services::UDP | Services::TCP | Services::ICMP);
    let mut h = Harness::new(cfg);
    h.guest(&udp4(GUEST4, 40000, REMOTE4, 53, b"query"));
    h.expect_no_op();
    h.expect_no_frame();
    assert_eq!(h.t.stats().dropped(DropReason::ProtocolDisabled), 1);
    // ARP and DHCP still answer.
    h.guest(&arp_request(GUEST_MAC, GUEST4, GW4));
    assert_eq!(h.expect_frame().len(), 42);
}
