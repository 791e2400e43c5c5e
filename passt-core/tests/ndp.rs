//! Neighbour discovery and router advertisements through the Translator:
//! real solicitations captured from a Linux kernel, `ndisc6` and `rdisc6`
//! (`tests/vectors/ipv6.pcap`, `vlan.pcap`) go in, re-addressed where the
//! test needs it; the advertisements that come out are checked field by
//! field, checksums verified.

use core::net::Ipv6Addr;
use std::time::Duration;

use passt_core::addr::MacAddr;
use passt_core::config::{Config, Ip6Config, Services, DEFAULT_OUR_MAC};
use passt_core::testing::build::{test_config, GUEST_MAC};
use passt_core::testing::pcap::read_pcap;
use passt_core::testing::Harness;
use passt_core::time::Instant;
use passt_core::wire::ethernet::{ethertype, EthernetRepr, VlanTag};
use passt_core::wire::icmpv6::{fill_checksum, pseudo_header, Icmpv6Packet, Icmpv6Repr};
use passt_core::wire::ip_proto;
use passt_core::wire::ipv6::Ipv6Repr;
use passt_core::wire::ndp::{option_kind, NdpOption, NdpRepr};
use passt_core::{DropReason, Event};

const OUR: MacAddr = DEFAULT_OUR_MAC;
/// Host A and host B of the captures.
const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
const INFINITY: u32 = u32::MAX;

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Harness time `s` seconds after its epoch (it starts at 1 s).
fn at(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000)
}

/// `test_config()` with IPv6: the guest at 2001:db8::10/64, us at fe80::1
/// (also its gateway), one resolver and the search list radvd sent in the
/// capture.
fn config6() -> Config {
    Config {
        ip6: Some(Ip6Config {
            addr: ip("2001:db8::10"),
            prefix_len: 64,
            gateway: ip("fe80::1"),
            our_link_local: ip("fe80::1"),
            map_host_loopback: None,
            map_guest_addr: None,
            dns: vec![ip("2001:db8::53")],
            dns_forward: None,
            dns_host: None,
        }),
        search: vec!["example.org".into(), "test.example".into()],
        ..test_config()
    }
}

fn with_ip6(f: impl FnOnce(&mut Ip6Config)) -> Config {
    let mut c = config6();
    f(c.ip6.as_mut().unwrap());
    c
}

fn vector(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    read_pcap(&bytes)
        .unwrap()
        .into_iter()
        .map(|f| f.data)
        .collect()
}

/// Frame `i` of ipv6.pcap (see its README for the list).
fn cap(i: usize) -> Vec<u8> {
    vector("ipv6.pcap").swap_remove(i)
}

/// Offset of the IPv6 header in `f`.
fn l3(f: &[u8]) -> usize {
    EthernetRepr::parse(f).unwrap().0.buffer_len()
}

/// Edit a captured frame (Ethernet, IPv6 without extension headers, NDP),
/// then fix its payload length and ICMPv6 checksum.
fn rewrite(mut f: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut f);
    let at = l3(&f);
    let plen = (f.len() - at - 40) as u16;
    f[at + 4..at + 6].copy_from_slice(&plen.to_be_bytes());
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[at + 8..at + 24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[at + 24..at + 40]).unwrap());
    let msg = &mut f[at + 40..];
    let len = msg.len();
    fill_checksum(msg, pseudo_header(&src, &dst, len)).unwrap();
    f
}

fn set_src(f: &mut [u8], a: &str) {
    let at = l3(f);
    f[at + 8..at + 24].copy_from_slice(&ip(a).octets());
}

fn set_dst(f: &mut [u8], a: &str) {
    let at = l3(f);
    f[at + 24..at + 40].copy_from_slice(&ip(a).octets());
}

/// The target of a neighbour solicitation or advertisement.
fn set_target(f: &mut [u8], a: &str) {
    let at = l3(f) + 48;
    f[at..at + 16].copy_from_slice(&ip(a).octets());
}

/// A frame to the guest, decoded and checked: an IPv6 packet without
/// extension headers or trailing bytes, hop limit 255, carrying an NDP
/// message with code 0 and a checksum that verifies (RFC 4443 §2.3).
fn decode(f: &[u8]) -> (EthernetRepr, Ipv6Repr<'_>, NdpRepr<'_>) {
    let (eth, payload) = EthernetRepr::parse(f).unwrap();
    assert_eq!(eth.ethertype, ethertype::IPV6);
    assert_eq!(eth.src, OUR);
    let (ip, l4) = Ipv6Repr::parse(payload).unwrap();
    assert_eq!(ip.next_header, ip_proto::ICMPV6);
    assert_eq!(ip.ext_headers, &[] as &[u8]);
    assert_eq!(usize::from(ip.payload_len), l4.len());
    assert_eq!(payload.len(), 40 + l4.len(), "no trailing bytes");
    assert_eq!((ip.traffic_class, ip.flow_label), (0, 0));
    assert_eq!(ip.hop_limit, 255, "RFC 4861 §6.1.2, §7.1.2");
    assert_eq!(l4[1], 0, "code 0");
    let pseudo = pseudo_header(&ip.src, &ip.dst, l4.len());
    let pkt = Icmpv6Packet::parse(l4, Some(pseudo)).expect("checksum verifies");
    let mut zeroed = l4.to_vec();
    fill_checksum(&mut zeroed, pseudo).unwrap();
    assert_eq!(zeroed, l4, "checksum recomputed independently");
    let Icmpv6Repr::Ndp(ndp) = pkt.repr else {
        panic!("not NDP: {:?}", pkt.repr);
    };
    (eth, ip, ndp)
}

/// A neighbour advertisement for `target` from us to `dst`: flags R, S, O
/// and our MAC as the only option.
#[track_caller]
fn check_na(f: &[u8], eth_dst: MacAddr, target: &str, dst: &str) {
    let (eth, ip6, ndp) = decode(f);
    assert_eq!(eth.dst, eth_dst);
    assert_eq!(ip6.src, ip(target), "sent from the address it advertises");
    assert_eq!(ip6.dst, ip(dst));
    let NdpRepr::NeighborAdvert {
        router,
        solicited,
        override_,
        reserved,
        target: t,
        options,
    } = ndp
    else {
        panic!("{ndp:?}");
    };
    assert_eq!(
        (router, solicited, override_, reserved),
        (true, true, true, 0)
    );
    assert_eq!(t, ip(target));
    assert_eq!(
        options.iter().collect::<Vec<_>>(),
        [NdpOption::TargetLinkAddr(OUR)]
    );
    assert_eq!(f.len(), eth.buffer_len() + 40 + 32);
}

/// A router advertisement with its options decoded, in order.
#[derive(Debug, PartialEq)]
struct Ra {
    cur_hop_limit: u8,
    managed: bool,
    other: bool,
    more_flags: u8,
    router_lifetime: u16,
    reachable_time: u32,
    retrans_timer: u32,
    options: Vec<Opt>,
}

/// An owned [`NdpOption`].
#[derive(Debug, PartialEq)]
enum Opt {
    Slla(MacAddr),
    Mtu(u32),
    Prefix {
        len: u8,
        on_link: bool,
        autonomous: bool,
        valid: u32,
        preferred: u32,
        prefix: Ipv6Addr,
    },
    Rdnss(u32, Vec<Ipv6Addr>),
    Dnssl(u32, Vec<String>),
}

/// A router advertisement to all nodes from fe80::1, decoded.
#[track_caller]
fn expect_ra(h: &mut Harness) -> Ra {
    let f = h.expect_frame();
    let (eth, ip6, ndp) = decode(&f);
    assert_eq!(eth.dst, ALL_NODES_MAC);
    assert_eq!(ip6.src, ip("fe80::1"));
    assert_eq!(ip6.dst, ip("ff02::1"));
    let NdpRepr::RouterAdvert {
        cur_hop_limit,
        managed,
        other,
        more_flags,
        router_lifetime,
        reachable_time,
        retrans_timer,
        options,
    } = ndp
    else {
        panic!("{ndp:?}");
    };
    let options = options
        .iter()
        .map(|o| match o {
            NdpOption::SourceLinkAddr(m) => Opt::Slla(m),
            NdpOption::Mtu(m) => Opt::Mtu(m),
            NdpOption::PrefixInfo {
                prefix_len,
                on_link,
                autonomous,
                valid_lifetime,
                preferred_lifetime,
                prefix,
            } => Opt::Prefix {
                len: prefix_len,
                on_link,
                autonomous,
                valid: valid_lifetime,
                preferred: preferred_lifetime,
                prefix,
            },
            NdpOption::Rdnss {
                lifetime,
                addresses,
            } => Opt::Rdnss(lifetime, addresses.collect()),
            NdpOption::Dnssl { lifetime, domains } => {
                Opt::Dnssl(lifetime, domains.map(|d| d.to_string()).collect())
            }
            other => panic!("unexpected option {other:?}"),
        })
        .collect();
    Ra {
        cur_hop_limit,
        managed,
        other,
        more_flags,
        router_lifetime,
        reachable_time,
        retrans_timer,
        options,
    }
}

/// What [`config6`] advertises.
fn default_ra() -> Ra {
    Ra {
        cur_hop_limit: 255,
        managed: true,
        other: true,
        more_flags: 0,
        router_lifetime: 65535,
        reachable_time: 0,
        retrans_timer: 0,
        options: vec![
            Opt::Slla(OUR),
            Opt::Mtu(65520),
            Opt::Prefix {
                len: 64,
                on_link: true,
                autonomous: true,
                valid: INFINITY,
                preferred: INFINITY,
                prefix: ip("2001:db8::"),
            },
            Opt::Rdnss(INFINITY, vec![ip("2001:db8::53")]),
            Opt::Dnssl(INFINITY, vec!["example.org".into(), "test.example".into()]),
        ],
    }
}

/// The advertisement [`config6`] gets when the guest solicits one.
fn solicited_ra(config: Config) -> Ra {
    let mut h = Harness::new(config);
    h.guest(&cap(10));
    let ra = expect_ra(&mut h);
    h.expect_no_frame();
    assert_eq!(h.t.stats().ndp_replies, 1);
    ra
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn neighbour_solicitation_for_the_gateway_is_answered_with_our_mac() {
    let mut h = Harness::new(config6());
    // ndisc6 from fe80::ff:fe00:a with a source link-layer address option,
    // asking for the guest's gateway fe80::1.
    let ns = rewrite(cap(22), |f| {
        f[..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 1]);
        set_dst(f, "ff02::1:ff00:1");
        set_target(f, "fe80::1");
    });
    h.guest(&ns);
    let na = h.expect_frame();
    h.expect_no_frame();
    check_na(&na, MAC_A, "fe80::1", "fe80::ff:fe00:a");
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.frames_in, s.frames_out), (1, 1, 1));
    // The solicitation's source is the guest's link-local address, seen
    // for the first time.
    assert_eq!(
        h.take_events(),
        vec![
            Event::GuestMac(MAC_A),
            Event::GuestAddr6("fe80::ff:fe00:a".parse().unwrap())
        ]
    );
}

#[test]
fn neighbour_solicitation_for_a_remote_address_is_answered() {
    let mut h = Harness::new(config6());
    // The kernel's multicast solicitation from 2001:db8::1 for 2001:db8::2.
    h.guest(&cap(16));
    let na = h.expect_frame();
    check_na(&na, MAC_A, "2001:db8::2", "2001:db8::1");
    // Byte for byte, it is the kernel's own answer (frame 17) but from our
    // MAC and with the Router flag set.
    let expect = rewrite(cap(17), |f| {
        f[6..12].copy_from_slice(&OUR.0);
        f[58] |= 0x80;
        f[80..86].copy_from_slice(&OUR.0);
    });
    assert_eq!(na, expect);

    // A unicast solicitation from a link-local source for an address beyond
    // the guest's prefix.
    let ns = rewrite(cap(39), |f| {
        f[..6].copy_from_slice(&OUR.0);
        set_target(f, "2001:db8:5::9");
    });
    h.guest(&ns);
    check_na(&h.expect_frame(), MAC_B, "2001:db8:5::9", "fe80::ff:fe00:b");

    // The source link-layer address option wins over the frame's source...
    let ns = rewrite(cap(39), |f| {
        f[80..86].copy_from_slice(&[2, 0, 0, 0, 0, 0x0c])
    });
    h.guest(&ns);
    check_na(
        &h.expect_frame(),
        MacAddr([2, 0, 0, 0, 0, 0x0c]),
        "2001:db8::1",
        "fe80::ff:fe00:b",
    );
    // ...and without one, the answer goes to the frame's source.
    let ns = rewrite(cap(39), |f| f.truncate(78));
    h.guest(&ns);
    check_na(&h.expect_frame(), MAC_B, "2001:db8::1", "fe80::ff:fe00:b");
    h.expect_no_frame();
    assert_eq!(h.t.stats().ndp_replies, 4);
}

#[test]
fn neighbour_solicitation_keeps_vlan_tags() {
    let mut h = Harness::new(config6());
    // vlan.pcap frame 6: the solicitation of ipv6.pcap frame 16, VID 10.
    let ns = vector("vlan.pcap").swap_remove(6);
    h.guest(&ns);
    let na = h.expect_frame();
    let (eth, _, _) = decode(&na);
    assert_eq!(
        eth.tags(),
        &[VlanTag {
            tpid: ethertype::VLAN,
            tci: 10
        }]
    );
    check_na(&na, MAC_A, "2001:db8::2", "2001:db8::1");
}

#[test]
fn duplicate_address_detection_is_never_answered() {
    let mut h = Harness::new(config6());
    // Kernel probes for link-local, global and SLAAC addresses...
    for i in [1, 5, 6, 13] {
        h.guest(&cap(i));
    }
    // ...and probes for addresses we would answer for otherwise.
    for target in ["fe80::1", "2001:db8::1", "2001:db8:5::9"] {
        h.guest(&rewrite(cap(6), |f| set_target(f, target)));
    }
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.frames_in, s.frames_out), (0, 7, 0));
    assert_eq!(s.drops.iter().sum::<u64>(), 0);
}

#[test]
fn solicitations_for_the_guests_own_address_are_ignored() {
    let mut h = Harness::new(config6());
    // For its configured address, from its link-local address, multicast
    // or unicast.
    let own = rewrite(cap(39), |f| {
        f[..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 0x10]);
        set_dst(f, "ff02::1:ff00:10");
        set_target(f, "2001:db8::10");
    });
    h.guest(&own);
    h.guest(&rewrite(cap(39), |f| {
        set_dst(f, "2001:db8::10");
        set_target(f, "2001:db8::10");
    }));
    // For the address it sends from (whatever it is).
    h.guest(&rewrite(cap(39), |f| set_target(f, "fe80::ff:fe00:b")));
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.frames_in), (0, 3));
    assert_eq!(s.drops.iter().sum::<u64>(), 0);
}

#[test]
fn router_solicitation_gets_a_router_advertisement() {
    let mut h = Harness::new(config6());
    // The kernel's solicitation, with a source link-layer address option.
    let rs = cap(10);
    h.guest(&rs);
    let f = h.expect_frame();
    h.expect_no_frame();

    // Byte for byte, checksum computed here.
    let mut expect = hex("333300000001 9a559a559a55 86dd
         60000000 0080 3a ff
         fe800000000000000000000000000001 ff020000000000000000000000000001
         8600 0000 ffc0 ffff 00000000 00000000
         0101 9a559a559a55
         0501 0000 0000fff0
         0304 40c0 ffffffff ffffffff 00000000 20010db8000000000000000000000000
         1903 0000 ffffffff 20010db8000000000000000000000053
         1f05 0000 ffffffff 076578616d706c65036f726700 0474657374076578616d706c6500 0000000000");
    let len = expect.len() - 54;
    fill_checksum(
        &mut expect[54..],
        pseudo_header(&ip("fe80::1"), &ip("ff02::1"), len),
    )
    .unwrap();
    assert_eq!(f, expect);

    h.to_guest.push_front(f);
    assert_eq!(expect_ra(&mut h), default_ra());
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.ra_sent, s.frames_out), (1, 0, 1));

    // rdisc6's solicitation (no options), once the rate limit allows.
    h.advance(secs(3));
    h.guest(&cap(14));
    assert_eq!(expect_ra(&mut h), default_ra());
    assert_eq!(h.t.stats().ndp_replies, 2);
}

#[test]
fn advertisement_options_are_encoded_as_radvd_encodes_them() {
    // The configuration radvd had in the capture (frame 12).
    let config = Config {
        mtu: 1500,
        ..with_ip6(|ip6| {
            ip6.addr = ip("2001:db8:1::ff:fe00:b");
            ip6.dns = vec![ip("2001:db8::53"), ip("2001:db8::54")];
        })
    };
    let mut h = Harness::new(config);
    h.guest(&cap(10));
    let ours = h.expect_frame();
    let radvd = cap(12);
    /// Options by type, with their lifetimes zeroed.
    fn options(f: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut rest = &f[54 + 16..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = usize::from(rest[1]) * 8;
            let mut opt = rest[..len].to_vec();
            match opt[0] {
                option_kind::PREFIX_INFO => opt[4..12].fill(0),
                option_kind::RDNSS | option_kind::DNSSL => opt[4..8].fill(0),
                _ => {}
            }
            out.push((opt[0], opt));
            rest = &rest[len..];
        }
        out.sort();
        out
    }
    let mut expect = options(&radvd);
    // radvd's MAC is host A's.
    for (kind, opt) in &mut expect {
        if *kind == option_kind::SOURCE_LINK_ADDR {
            opt[2..].copy_from_slice(&OUR.0);
        }
    }
    assert_eq!(options(&ours), expect);
    assert_eq!(ours.len(), radvd.len());
}

#[test]
fn periodic_advertisements_follow_rfc_4861_timing() {
    let config = Config {
        guest_mac: Some(GUEST_MAC),
        ..config6()
    };
    let run = || {
        let mut h = Harness::new(config.clone());
        let mut instants = Vec::new();
        for _ in 0..8 {
            let next = h.t.poll_timeout().expect("a timer is always set");
            assert!(next >= h.now());
            // Nothing before the instant, one advertisement at it.
            let wait = next.saturating_since(h.now());
            if let Some(before) = wait.checked_sub(Duration::from_nanos(1)) {
                h.advance(before);
                h.expect_no_frame();
            }
            h.advance(next.saturating_since(h.now()));
            assert_eq!(expect_ra(&mut h), default_ra());
            h.expect_no_frame();
            instants.push(next);
        }
        assert_eq!(h.t.stats().ra_sent, 8);
        assert_eq!(h.t.stats().ndp_replies, 0);
        instants
    };
    let instants = run();
    // The guest is known from the start (pasta): the first three at once
    // and 16 seconds apart (RFC 4861 §6.2.4).
    assert_eq!(instants[..3], [at(1), at(17), at(33)]);
    // Then 200 to 600 seconds apart, jittered.
    let gaps: Vec<Duration> = instants
        .windows(2)
        .skip(2)
        .map(|w| w[1].saturating_since(w[0]))
        .collect();
    for g in &gaps {
        assert!((secs(200)..=secs(600)).contains(g), "{gaps:?}");
    }
    assert!(gaps.windows(2).any(|w| w[0] != w[1]), "{gaps:?}");
    // Deterministic: the same configuration gives the same instants.
    assert_eq!(run(), instants);
}

#[test]
fn advertising_starts_when_the_guest_shows_up() {
    let mut h = Harness::new(config6());
    // Nobody on the link yet: no timer.
    assert_eq!(h.t.poll_timeout(), None);
    h.advance(secs(100));
    h.expect_no_frame();
    // The guest's first duplicate address detection probe, at 101 s.
    h.guest(&cap(6));
    h.expect_no_frame();
    assert_eq!(h.t.poll_timeout(), Some(at(101)));
    h.advance(Duration::ZERO);
    assert_eq!(expect_ra(&mut h), default_ra());
    assert_eq!(h.t.poll_timeout(), Some(at(117)));
    // Its router solicitation a second later waits for the rate limit.
    h.advance(secs(1));
    h.guest(&cap(10));
    h.expect_no_frame();
    assert_eq!(h.t.poll_timeout(), Some(at(104)));
    h.advance(secs(2));
    assert_eq!(expect_ra(&mut h), default_ra());
    // The answer restarts the timer: the third initial advertisement.
    assert_eq!(h.t.poll_timeout(), Some(at(120)));
    let s = h.t.stats();
    assert_eq!((s.ra_sent, s.ndp_replies), (2, 0));
}

#[test]
fn solicited_advertisements_are_rate_limited_not_dropped() {
    let mut h = Harness::new(config6());
    h.guest(&cap(10)); // at 1 s: answered at once
    assert_eq!(expect_ra(&mut h), default_ra());
    assert_eq!(h.t.poll_timeout(), Some(at(17)));
    h.advance(secs(1));
    h.guest(&cap(14)); // at 2 s: too soon (RFC 4861 §6.2.6)
    h.expect_no_frame();
    assert_eq!(h.t.poll_timeout(), Some(at(4)));
    h.advance(Duration::from_millis(1500));
    h.guest(&cap(10)); // at 3.5 s: shares the pending answer
    h.expect_no_frame();
    assert_eq!(h.t.poll_timeout(), Some(at(4)));
    h.advance(Duration::from_millis(500) - Duration::from_nanos(1));
    h.expect_no_frame();
    h.advance(Duration::from_nanos(1)); // at 4 s, one answer for both
    assert_eq!(expect_ra(&mut h), default_ra());
    h.expect_no_frame();
    assert_eq!(h.t.poll_timeout(), Some(at(20)));
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.ra_sent), (1, 1));

    // 3 seconds later: answered at once. That is the third advertisement,
    // so the periodic interval is a long one now.
    h.advance(secs(3));
    h.guest(&cap(14));
    assert_eq!(expect_ra(&mut h), default_ra());
    let next = h.t.poll_timeout().unwrap().saturating_since(at(7));
    assert!((secs(200)..=secs(600)).contains(&next), "{next:?}");
    assert_eq!(h.t.stats().ndp_replies, 2);

    // And again the limit, then the advertisement at 10 s.
    h.advance(secs(2));
    h.guest(&cap(10));
    h.expect_no_frame();
    assert_eq!(h.t.poll_timeout(), Some(at(10)));
    h.advance(secs(1));
    assert_eq!(expect_ra(&mut h), default_ra());
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.ra_sent), (2, 2));
}

#[test]
fn malformed_messages_are_counted_and_the_next_good_one_served() {
    let mut h = Harness::new(config6());
    // Forwarded, hence not from the link: hop limit 254 (RFC 4861 §6.1.1).
    let mut rs = cap(10);
    rs[21] = 254;
    let mut ns = cap(16);
    ns[21] = 64;
    // A source link-layer address option of length 0 (RFC 4861 §4.6), and
    // one running past the end of the message.
    let zero_len = rewrite(cap(16), |f| f[79] = 0);
    let past_end = rewrite(cap(16), |f| f[79] = 2);
    // From :: with a source link-layer address (RFC 4861 §6.1.1).
    let unspecified = rewrite(cap(10), |f| set_src(f, "::"));
    // A multicast target (RFC 4861 §7.1.1).
    let multicast = rewrite(cap(16), |f| set_target(f, "ff02::1"));
    let frames = [&rs, &ns, &zero_len, &past_end, &unspecified, &multicast];
    for f in frames {
        h.guest(f);
    }
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.dropped(DropReason::Malformed), 5);
    assert_eq!(s.dropped(DropReason::Truncated), 1);
    let drops: Vec<_> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Dropped { reason, len } => Some((reason, len)),
            _ => None,
        })
        .collect();
    assert_eq!(
        drops,
        [
            (DropReason::Malformed, 70),
            (DropReason::Malformed, 86),
            (DropReason::Malformed, 86),
            (DropReason::Truncated, 86),
            (DropReason::Malformed, 70),
            (DropReason::Malformed, 86),
        ]
    );
    // A non-zero code is no NDP message at all (RFC 4861 §7.1.1).
    h.guest(&rewrite(cap(16), |f| f[55] = 1));
    h.expect_no_frame();
    // The next good ones are served.
    h.guest(&cap(16));
    check_na(&h.expect_frame(), MAC_A, "2001:db8::2", "2001:db8::1");
    h.guest(&cap(10));
    assert_eq!(expect_ra(&mut h), default_ra());
    assert_eq!(h.t.stats().ndp_replies, 2);
}

#[test]
fn mtu_override() {
    let mut ra = solicited_ra(Config {
        mtu: 1400,
        ..config6()
    });
    assert_eq!(ra.options.remove(1), Opt::Mtu(1400));
    let mut expect = default_ra();
    expect.options.remove(1);
    assert_eq!(ra, expect);
}

/// `-m 0`: the advertisement carries no MTU option, the rest unchanged.
#[test]
fn no_mtu_option_with_mtu_zero() {
    let ra = solicited_ra(Config {
        assign_mtu: false,
        ..config6()
    });
    assert!(!ra.options.iter().any(|o| matches!(o, Opt::Mtu(_))));
    let mut expect = default_ra();
    expect.options.remove(1);
    assert_eq!(ra, expect);
}

#[test]
fn dns_server_override() {
    let servers = vec![ip("2001:db8::53"), ip("2001:db8::54"), ip("2001:db8:1::35")];
    let ra = solicited_ra(with_ip6(|ip6| ip6.dns = servers.clone()));
    let mut expect = default_ra();
    expect.options[3] = Opt::Rdnss(INFINITY, servers);
    assert_eq!(ra, expect);
    // No servers: no RDNSS option.
    let ra = solicited_ra(with_ip6(|ip6| ip6.dns.clear()));
    let mut expect = default_ra();
    expect.options.remove(3);
    assert_eq!(ra, expect);
}

#[test]
fn search_list_override() {
    let ra = solicited_ra(Config {
        search: vec!["a.example".into(), "b.c.example.".into()],
        ..config6()
    });
    let mut expect = default_ra();
    expect.options[4] = Opt::Dnssl(INFINITY, vec!["a.example".into(), "b.c.example".into()]);
    assert_eq!(ra, expect);
    let ra = solicited_ra(Config {
        search: vec![],
        ..config6()
    });
    let mut expect = default_ra();
    expect.options.remove(4);
    assert_eq!(ra, expect);
}

#[test]
fn no_dhcpv6_clears_the_m_and_o_flags() {
    let ra = solicited_ra(Config {
        services: Services::all() - Services::DHCPV6,
        ..config6()
    });
    let expect = Ra {
        managed: false,
        other: false,
        ..default_ra()
    };
    assert_eq!(ra, expect);
}

#[test]
fn no_dhcp_dns_drops_rdnss() {
    let ra = solicited_ra(Config {
        services: Services::all() - Services::DHCP_DNS,
        ..config6()
    });
    let mut expect = default_ra();
    expect.options.remove(3);
    assert_eq!(ra, expect);
}

#[test]
fn no_dhcp_search_drops_dnssl() {
    let ra = solicited_ra(Config {
        services: Services::all() - Services::DHCP_SEARCH,
        ..config6()
    });
    let mut expect = default_ra();
    expect.options.remove(4);
    assert_eq!(ra, expect);
}

#[test]
fn no_ra_answers_neighbours_but_never_advertises() {
    let mut h = Harness::new(Config {
        services: Services::all() - Services::RA,
        guest_mac: Some(GUEST_MAC),
        ..config6()
    });
    assert_eq!(h.t.poll_timeout(), None);
    h.guest(&cap(10));
    h.guest(&cap(6));
    h.expect_no_frame();
    h.advance(secs(3600));
    h.expect_no_frame();
    h.guest(&cap(16));
    check_na(&h.expect_frame(), MAC_A, "2001:db8::2", "2001:db8::1");
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.ra_sent), (1, 0));
    assert_eq!(s.drops.iter().sum::<u64>(), 0);
}

#[test]
fn no_ndp_answers_nothing() {
    let mut h = Harness::new(Config {
        services: Services::all() - Services::NDP,
        guest_mac: Some(GUEST_MAC),
        ..config6()
    });
    assert_eq!(h.t.poll_timeout(), None);
    for i in [6, 10, 14, 16, 22, 36, 39] {
        h.guest(&cap(i));
    }
    h.advance(secs(3600));
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!((s.ndp_replies, s.ra_sent, s.frames_out), (0, 0, 0));
    assert_eq!(s.drops.iter().sum::<u64>(), 0);
}

#[test]
fn ipv6_disabled_means_no_ndp_at_all() {
    let mut h = Harness::new(Config {
        guest_mac: Some(GUEST_MAC),
        ..test_config()
    });
    assert_eq!(h.t.poll_timeout(), None);
    h.guest(&cap(10));
    h.guest(&cap(16));
    h.advance(secs(3600));
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.dropped(DropReason::FamilyDisabled), 2);
    assert_eq!((s.ndp_replies, s.ra_sent), (0, 0));
}

#[test]
fn advertisement_fits_the_minimum_mtu_whatever_the_lists() {
    // 100 resolvers: as many as fit in 1280 octets, in order, and no room
    // left for the search list.
    let servers: Vec<Ipv6Addr> = (1..=100u16)
        .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x53, i))
        .collect();
    let config = Config {
        mtu: 1280,
        ..with_ip6(|ip6| ip6.dns = servers.clone())
    };
    let mut h = Harness::new(config);
    h.guest(&cap(10));
    let f = h.expect_frame();
    assert_eq!(f.len(), 14 + 1280);
    h.to_guest.push_front(f);
    let ra = expect_ra(&mut h);
    // 1240 octets of message: 64 before the RDNSS, 8 + 73 × 16 for it.
    assert_eq!(ra.options.len(), 4);
    assert_eq!(ra.options[3], Opt::Rdnss(INFINITY, servers[..73].to_vec()));

    // Long search domains: those that fit, in order.
    let long = |c: char| format!("{0}.{0}.{0}", c.to_string().repeat(63));
    let search: Vec<String> = "abcdefghij".chars().map(long).collect();
    let config = Config {
        mtu: 1280,
        search: search.clone(),
        ..config6()
    };
    let mut h = Harness::new(config);
    h.guest(&cap(10));
    let f = h.expect_frame();
    assert!(f.len() <= 14 + 1280);
    h.to_guest.push_front(f);
    let ra = expect_ra(&mut h);
    // 1240 - 64 - 24 (RDNSS) - 8 = 1144 octets for names of 193: 5 of them.
    assert_eq!(ra.options[4], Opt::Dnssl(INFINITY, search[..5].to_vec()));
}

#[test]
fn other_ndp_messages_from_the_guest_are_ignored() {
    let mut h = Harness::new(config6());
    // Neighbour advertisements (solicited, and without a target link-layer
    // address) and router advertisements from radvd, as if the guest sent
    // them.
    for i in [17, 23, 37, 40, 12, 38] {
        h.guest(&cap(i));
    }
    h.expect_no_frame();
    let s = h.t.stats();
    assert_eq!(s.ndp_replies, 0);
    assert_eq!(s.drops.iter().sum::<u64>(), 0);
}
