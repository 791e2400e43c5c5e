//! Every frame of the real captures in `tests/vectors/` through every
//! parser: each layer that parses must emit back exactly the bytes it was
//! given, checksums of the captures must verify, and each file must reach the
//! depth its README promises. The translator then takes every frame.

use std::collections::BTreeMap;

use passt_core::buf::{FrameDesc, RxBatch, TxRing};
use passt_core::testing::build::test_config;
use passt_core::testing::pcap::read_pcap;
use passt_core::time::Instant;
use passt_core::wire::arp::ArpRepr;
use passt_core::wire::checksum::{pseudo_header_v4, pseudo_header_v6};
use passt_core::wire::dhcp::DhcpRepr;
use passt_core::wire::dhcpv6::Dhcpv6Repr;
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::icmp::IcmpRepr;
use passt_core::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::ipv6::Ipv6Repr;
use passt_core::wire::tcp::TcpRepr;
use passt_core::wire::udp::UdpRepr;
use passt_core::wire::{ip_proto, WireError};
use passt_core::Translator;

fn vector(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    read_pcap(&bytes)
        .unwrap()
        .into_iter()
        .map(|f| f.data)
        .collect()
}

#[track_caller]
fn same(layer: &str, input: &[u8], emitted: Result<usize, WireError>, out: &[u8]) {
    let n = emitted.unwrap_or_else(|e| panic!("{layer}: cannot re-emit: {e}"));
    assert_eq!(
        &out[..n],
        &input[..n],
        "{layer}: parse then emit changed the bytes"
    );
}

/// Dissect one frame, verifying checksums and round trips; returns the
/// deepest layer reached.
fn dissect(f: &[u8]) -> &'static str {
    let mut out = vec![0u8; 70_000];
    let (eth, payload) = EthernetRepr::parse(f).expect("ethernet");
    same("ethernet", f, eth.emit(&mut out), &out);
    match eth.ethertype {
        ethertype::ARP => {
            let arp = ArpRepr::parse(payload).expect("arp");
            same("arp", payload, arp.emit(&mut out), &out);
            "arp"
        }
        ethertype::IPV4 => {
            let (ip, l4) =
                Ipv4Repr::parse(payload, true).expect("ipv4 with a good header checksum");
            same("ipv4", payload, ip.emit(&mut out, l4.len()), &out);
            if ip.is_fragment() {
                return "ipv4-fragment";
            }
            let pseudo = pseudo_header_v4(ip.src, ip.dst, ip.protocol, l4.len() as u16);
            match ip.protocol {
                ip_proto::TCP => {
                    let (tcp, _) =
                        TcpRepr::parse(l4, Some(pseudo)).expect("tcp, checksum verified");
                    same("tcp", l4, tcp.emit(&mut out), &out);
                    "tcp"
                }
                ip_proto::UDP => {
                    let udp =
                        UdpRepr::parse(l4, Some(pseudo), false).expect("udp, checksum verified");
                    same("udp", l4, udp.emit(&mut out), &out);
                    if matches!(udp.dst_port, 67 | 68) {
                        let d = DhcpRepr::parse(udp.payload).expect("dhcp");
                        same("dhcp", udp.payload, d.emit(&mut out), &out);
                        assert!(d.message_type().is_some());
                        return "dhcp";
                    }
                    "udp"
                }
                ip_proto::ICMP => {
                    let (icmp, csum) = IcmpRepr::parse(l4, true).expect("icmp, checksum verified");
                    same("icmp", l4, icmp.emit_exact(&mut out, csum), &out);
                    "icmp"
                }
                p => panic!("unexpected IPv4 protocol {p}"),
            }
        }
        ethertype::IPV6 => {
            let (ip, l4) = Ipv6Repr::parse(payload).expect("ipv6");
            same("ipv6", payload, ip.emit(&mut out), &out);
            if ip.is_fragment() {
                return "ipv6-fragment";
            }
            let pseudo = pseudo_header_v6(&ip.src, &ip.dst, ip.upper_protocol, l4.len() as u32);
            match ip.upper_protocol {
                ip_proto::TCP => {
                    let (tcp, _) =
                        TcpRepr::parse(l4, Some(pseudo)).expect("tcp6, checksum verified");
                    same("tcp", l4, tcp.emit(&mut out), &out);
                    "tcp"
                }
                ip_proto::UDP => {
                    let udp =
                        UdpRepr::parse(l4, Some(pseudo), true).expect("udp6, checksum verified");
                    same("udp", l4, udp.emit(&mut out), &out);
                    if matches!(udp.dst_port, 546 | 547) {
                        let d = Dhcpv6Repr::parse(udp.payload).expect("dhcpv6");
                        same("dhcpv6", udp.payload, d.emit(&mut out), &out);
                        return "dhcpv6";
                    }
                    "udp"
                }
                ip_proto::ICMPV6 => {
                    let pkt =
                        Icmpv6Packet::parse(l4, Some(pseudo)).expect("icmpv6, checksum verified");
                    same("icmpv6", l4, pkt.emit(&mut out), &out);
                    match pkt.repr {
                        Icmpv6Repr::Ndp(_) => "ndp",
                        _ => "icmpv6",
                    }
                }
                p => panic!("unexpected IPv6 upper protocol {p}"),
            }
        }
        t => panic!("unexpected ethertype {t:#06x}"),
    }
}

fn depths(name: &str) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for (i, f) in vector(name).iter().enumerate() {
        let d = std::panic::catch_unwind(|| dissect(f))
            .unwrap_or_else(|_| panic!("{name} frame {i} failed (see the message above)"));
        *m.entry(d).or_default() += 1;
    }
    m
}

#[track_caller]
fn expect(name: &str, want: &[(&str, usize)]) {
    let got = depths(name);
    let want: BTreeMap<&str, usize> = want.iter().copied().collect();
    assert_eq!(got, want, "{name}: layers reached");
}

#[test]
fn arp_and_vlan_captures_round_trip() {
    expect("arp.pcap", &[("arp", 10)]);
    expect(
        "vlan.pcap",
        &[("arp", 4), ("icmp", 2), ("ndp", 2), ("icmpv6", 2)],
    );
    expect("qinq.pcap", &[("arp", 2), ("icmp", 2)]);
}

#[test]
fn ipv4_captures_round_trip() {
    // 4 echo, 2 record route, 2 timestamp, 6 fragments, a UDP datagram and
    // the port unreachable quoting it (see the vectors' README).
    expect(
        "ipv4.pcap",
        &[("icmp", 9), ("ipv4-fragment", 6), ("udp", 1)],
    );
}

#[test]
fn transport_captures_round_trip() {
    expect("tcp4.pcap", &[("tcp", 18)]);
    expect("tcp6.pcap", &[("tcp", 18)]);
    let udp = depths("udp.pcap");
    assert_eq!(udp.get("udp"), Some(&12), "{udp:?}");
}

#[test]
fn ipv6_captures_round_trip() {
    let got = depths("ipv6.pcap");
    assert_eq!(got.values().sum::<usize>(), 41);
    assert!(got["ndp"] >= 8, "{got:?}");
    assert!(got["ipv6-fragment"] >= 2, "{got:?}");
    assert!(got["icmpv6"] >= 5, "{got:?}");
}

#[test]
fn dhcp_captures_round_trip() {
    expect("dhcp.pcap", &[("dhcp", 10)]);
    expect("dhcpv6.pcap", &[("dhcpv6", 8)]);
}

#[test]
fn translator_takes_every_captured_frame() {
    let files = [
        "arp.pcap",
        "vlan.pcap",
        "qinq.pcap",
        "ipv4.pcap",
        "tcp4.pcap",
        "tcp6.pcap",
        "udp.pcap",
        "ipv6.pcap",
        "dhcp.pcap",
        "dhcpv6.pcap",
    ];
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 0);
    let mut total = 0;
    for name in files {
        for f in vector(name) {
            let desc = [FrameDesc::new(0, f.len() as u32)];
            t.handle_tap(Instant::ZERO, &RxBatch::new(&f, &desc).unwrap(), &mut tx);
            while t.poll_op().is_some() {}
            while t.poll_event().is_some() {}
            for v in tx.iter() {
                EthernetRepr::parse(v.frame).expect("our replies parse");
            }
            tx.clear();
            total += 1;
        }
    }
    assert_eq!(t.stats().frames_in, total);
    assert_eq!(total, 10 + 10 + 4 + 16 + 18 + 18 + 12 + 41 + 10 + 8);
}
