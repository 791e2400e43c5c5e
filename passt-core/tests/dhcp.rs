//! The DHCPv4 server through the translator, fed the real client messages of
//! `vectors/dhcp.pcap` (busybox udhcpc and ISC dhclient, both with the MAC
//! address 02:00:00:00:00:0b), as captured or edited with the codec's
//! builder. Every reply is decoded layer by layer (checksums verified) and
//! asserted field by field (RFC 2131 §4.1, §4.3, table 3).

use core::net::Ipv4Addr;

use passt_core::addr::MacAddr;
use passt_core::config::{Config, Services, DEFAULT_OUR_MAC};
use passt_core::testing::build::{test_config, GUEST4, GW4};
use passt_core::testing::pcap::read_pcap;
use passt_core::testing::Harness;
use passt_core::wire::dhcp::{
    opt, DhcpBuilder, DhcpHeader, DhcpMessageType, DhcpRepr, DnsNameList, BOOTREPLY,
    FLAG_BROADCAST, HEADER_LEN, HTYPE_ETHERNET, MAGIC_COOKIE, OPTIONS_OFFSET,
};
use passt_core::wire::ethernet::{ethertype, EthernetRepr, VlanTag};
use passt_core::wire::ipv4::Ipv4Repr;
use passt_core::wire::udp::UdpRepr;
use passt_core::wire::{checksum, frame, ip_proto};
use passt_core::{DropReason, Event};

/// The client's MAC address in the captures.
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
/// The address dnsmasq leased in the captures (and the clients request).
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 104);
/// Frame numbers in dhcp.pcap (see vectors/README.md).
const UDHCPC_DISCOVER: usize = 0;
const DNSMASQ_OFFER_UDHCPC: usize = 1;
const UDHCPC_REQUEST: usize = 2;
const UDHCPC_RELEASE: usize = 4;
const DHCLIENT_DISCOVER: usize = 5;
const DNSMASQ_OFFER_DHCLIENT: usize = 6;
const DHCLIENT_REQUEST: usize = 7;
const DNSMASQ_ACK_DHCLIENT: usize = 8;
const DHCLIENT_RELEASE: usize = 9;
/// Transaction IDs of the captured exchanges.
const UDHCPC_XID: u32 = 0xedf0_6f73;
const DHCLIENT_XID: u32 = 0x91ef_f123;
const INFINITE: [u8; 4] = [0xff; 4];

fn frames() -> Vec<Vec<u8>> {
    read_pcap(include_bytes!("vectors/dhcp.pcap"))
        .unwrap()
        .into_iter()
        .map(|f| f.data)
        .collect()
}

/// The headers of a frame and the offset of its UDP payload.
fn layers(frame: &[u8]) -> (EthernetRepr, Ipv4Repr<'_>, UdpRepr<'_>) {
    let (eth, payload) = EthernetRepr::parse(frame).unwrap();
    assert_eq!(eth.ethertype, ethertype::IPV4);
    let (ip, l4) = Ipv4Repr::parse(payload, true).expect("IPv4 header checksum");
    assert_eq!(ip.protocol, ip_proto::UDP);
    let pseudo = checksum::pseudo_header_v4(ip.src, ip.dst, ip_proto::UDP, l4.len() as u16);
    let udp = UdpRepr::parse(l4, Some(pseudo), false).expect("UDP checksum");
    (eth, ip, udp)
}

/// The DHCP message of a captured frame.
fn dhcp_of(frame: &[u8]) -> &[u8] {
    layers(frame).2.payload
}

/// A reply to the guest, decoded.
struct Reply {
    frame: Vec<u8>,
    eth: EthernetRepr,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    ttl: u8,
    dont_fragment: bool,
    /// IPv4 total length.
    ip_len: usize,
    sport: u16,
    dport: u16,
    udp_checksum: u16,
    at: usize,
}

impl Reply {
    fn new(frame: Vec<u8>) -> Reply {
        let (eth, ip, udp) = layers(&frame);
        let (ip_src, ip_dst, ttl, dont_fragment) = (ip.src, ip.dst, ip.ttl, ip.dont_fragment);
        let (sport, dport, udp_checksum) = (udp.src_port, udp.dst_port, udp.checksum);
        let ip_len = ip.header_len() + 8 + udp.payload.len();
        let at = frame.len() - udp.payload.len();
        Reply {
            eth,
            ip_src,
            ip_dst,
            ttl,
            dont_fragment,
            ip_len,
            sport,
            dport,
            udp_checksum,
            at,
            frame,
        }
    }

    fn dhcp(&self) -> DhcpRepr<'_> {
        DhcpRepr::parse(&self.frame[self.at..]).expect("our reply parses")
    }

    fn dhcp_len(&self) -> usize {
        self.frame.len() - self.at
    }
}

fn expect_reply(h: &mut Harness) -> Reply {
    let r = Reply::new(h.expect_frame());
    h.expect_no_frame();
    r
}

/// Option codes in order, every instance.
fn codes(d: &DhcpRepr<'_>) -> Vec<u8> {
    d.options().map(|o| o.code).collect()
}

fn octets(addrs: &[Ipv4Addr]) -> Vec<u8> {
    addrs.iter().flat_map(|a| a.octets()).collect()
}

/// The names of the (concatenated) Domain Search option.
fn search_names(d: &DhcpRepr<'_>) -> Vec<String> {
    let mut value = [0u8; 4096];
    let n = d.concat_option(opt::DOMAIN_SEARCH, &mut value).unwrap();
    let mut list = DnsNameList::compressed(&value[..n]);
    let mut names = Vec::new();
    let mut buf = [0u8; 253];
    while let Some(len) = list.next_name(&mut buf).unwrap() {
        names.push(String::from_utf8(buf[..len].to_vec()).unwrap());
    }
    names
}

/// Rebuild a DHCP message: header edited by `f`, options copied in order
/// with those named in `set` replaced (or removed with `None`), and the
/// ones of `set` not present appended.
fn edit(dhcp: &[u8], f: impl FnOnce(&mut DhcpHeader), set: &[(u8, Option<&[u8]>)]) -> Vec<u8> {
    let repr = DhcpRepr::parse(dhcp).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut b = DhcpBuilder::new(&mut buf).unwrap();
    b.header = *repr.header();
    f(&mut b.header);
    let mut done = Vec::new();
    for o in repr.options() {
        match set.iter().find(|(code, _)| *code == o.code) {
            Some((code, value)) => {
                if !done.contains(code) {
                    if let Some(v) = value {
                        b.push(*code, v).unwrap();
                    }
                    done.push(*code);
                }
            }
            None => b.push(o.code, o.data).unwrap(),
        }
    }
    for (code, value) in set {
        if let (false, Some(v)) = (done.contains(code), value) {
            b.push(*code, v).unwrap();
        }
    }
    let n = b.finish().unwrap();
    buf.truncate(n);
    buf
}

/// `orig` with its UDP payload replaced by `dhcp` (same Ethernet header,
/// addresses, ports and TTL; lengths and checksums recomputed).
fn reframe(orig: &[u8], dhcp: &[u8]) -> Vec<u8> {
    let (eth, ip, udp) = layers(orig);
    reframe_with(&eth, ip.src, ip.dst, udp.src_port, dhcp)
}

fn reframe_with(
    eth: &EthernetRepr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dhcp: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 2000];
    let n = frame::udp4(&mut buf, eth, src, sport, dst, 67, 64, |p| {
        p[..dhcp.len()].copy_from_slice(dhcp);
        Ok(dhcp.len())
    })
    .unwrap();
    buf.truncate(n);
    buf
}

/// `orig` with its DHCP message edited as [`edit`] does.
fn edited(orig: &[u8], f: impl FnOnce(&mut DhcpHeader), set: &[(u8, Option<&[u8]>)]) -> Vec<u8> {
    reframe(orig, &edit(dhcp_of(orig), f, set))
}

fn config_with(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = test_config();
    f(&mut c);
    c
}

fn leased_config() -> Config {
    config_with(|c| c.ip4.as_mut().unwrap().addr = LEASED)
}

fn total_drops(h: &Harness) -> u64 {
    h.t.stats().drops.iter().sum()
}

/// What every reply shares: Ethernet source, IPv4 source, TTL, ports,
/// BOOTREPLY with the request's xid, hardware address and flags, nothing in
/// `secs`, `siaddr`, `giaddr`, `sname`, `file` (RFC 2131 table 3).
#[track_caller]
fn assert_reply_basics(r: &Reply, server: Ipv4Addr, xid: u32, flags: u16) {
    assert_eq!(r.eth.src, DEFAULT_OUR_MAC);
    assert_eq!(r.eth.ethertype, ethertype::IPV4);
    assert!(r.eth.tags().is_empty());
    assert_eq!(r.ip_src, server);
    assert_eq!(r.ttl, 255);
    assert!(r.dont_fragment);
    assert_eq!((r.sport, r.dport), (67, 68));
    assert_ne!(r.udp_checksum, 0);
    let raw = &r.frame[r.at..];
    assert_eq!(&raw[HEADER_LEN..OPTIONS_OFFSET], &MAGIC_COOKIE);
    let d = r.dhcp();
    let hdr = d.header();
    assert_eq!(hdr.op, BOOTREPLY);
    assert_eq!((hdr.htype, hdr.hlen, hdr.hops), (HTYPE_ETHERNET, 6, 0));
    assert_eq!(hdr.xid(), xid);
    assert_eq!(hdr.secs.get(), 0);
    assert_eq!(hdr.flags.get(), flags);
    assert_eq!(hdr.siaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(hdr.giaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(hdr.client_mac(), Some(CLIENT_MAC));
    assert_eq!(hdr.chaddr[6..], [0; 10]);
    assert_eq!(hdr.sname, [0; 64]);
    assert_eq!(hdr.file, [0; 128]);
    assert_eq!(d.overload(), 0);
}

// ---------------------------------------------------------------------------
// The captured exchanges.

#[test]
fn udhcpc_discover_gets_an_offer_of_the_configured_address() {
    let f = frames();
    let mut h = Harness::new(test_config());
    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);

    // No broadcast flag: unicast to yiaddr at chaddr (RFC 2131 §4.1).
    assert_eq!(r.eth.dst, CLIENT_MAC);
    assert_eq!(r.ip_dst, GUEST4);
    assert_reply_basics(&r, GW4, UDHCPC_XID, 0);
    let d = r.dhcp();
    assert_eq!(d.header().yiaddr(), GUEST4);
    assert_eq!(d.header().ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6]);
    assert_eq!(d.message_type(), Some(DhcpMessageType::Offer));
    assert_eq!(d.server_id(), Some(GW4));
    assert_eq!(d.lease_time(), Some(0xffff_ffff));
    assert_eq!(d.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
    assert_eq!(d.option(opt::ROUTER), Some(&GW4.octets()[..]));
    assert_eq!(d.option(opt::DNS_SERVERS), Some(&GW4.octets()[..]));
    assert_eq!(
        d.option(opt::INTERFACE_MTU),
        Some(&65520u16.to_be_bytes()[..])
    );
    // Infinite lease: no T1/T2; empty search list: no option 119.
    for absent in [58, 59, 119, 121, 80, 56] {
        assert_eq!(d.option(absent), None, "option {absent}");
    }
    // Short options padded to the 300-byte BOOTP minimum.
    assert_eq!(r.dhcp_len(), 300);
    assert_eq!(r.ip_len, 328);

    let s = h.t.stats();
    assert_eq!((s.dhcp_replies, s.frames_in, s.frames_out), (1, 1, 1));
    assert_eq!(total_drops(&h), 0);
    assert_eq!(h.take_events(), vec![Event::GuestMac(CLIENT_MAC)]);
}

#[test]
fn udhcpc_request_for_the_configured_address_gets_an_ack() {
    let f = frames();
    // Address override: the one udhcpc asks for (option 50 = 192.0.2.104,
    // server identifier 192.0.2.1 = our gateway).
    let mut h = Harness::new(leased_config());
    h.guest(&f[UDHCPC_DISCOVER]);
    let offer = expect_reply(&mut h);
    assert_eq!(offer.dhcp().header().yiaddr(), LEASED);
    assert_eq!(offer.ip_dst, LEASED);

    h.guest(&f[UDHCPC_REQUEST]);
    let r = expect_reply(&mut h);
    assert_eq!(r.eth.dst, CLIENT_MAC);
    assert_eq!(r.ip_dst, LEASED);
    assert_reply_basics(&r, GW4, UDHCPC_XID, 0);
    let d = r.dhcp();
    assert_eq!(d.header().yiaddr(), LEASED);
    assert_eq!(d.header().ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6]);
    assert_eq!(d.message_type(), Some(DhcpMessageType::Ack));
    assert_eq!(d.server_id(), Some(GW4));
    assert_eq!(d.option(opt::LEASE_TIME), Some(&INFINITE[..]));
    assert_eq!(d.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
    assert_eq!(d.option(opt::ROUTER), Some(&GW4.octets()[..]));
    assert_eq!(d.option(opt::DNS_SERVERS), Some(&GW4.octets()[..]));
    assert_eq!(d.option(opt::INTERFACE_MTU), Some(&[0xff, 0xf0][..]));
    // udhcpc accepts 576 bytes (option 57).
    assert!(r.ip_len <= 576);
    assert_eq!(h.t.stats().dhcp_replies, 2);
}

#[test]
fn dhclient_exchange_matches_dnsmasq_options_for_the_same_network() {
    let f = frames();
    // The network dnsmasq served in the capture: 192.0.2.104/24 via
    // 192.0.2.1, DNS .53 and .54, search example.org and test.example, and
    // the MTU 1500 it reported.
    let dns = [Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)];
    let search = ["example.org", "test.example"];
    let config = config_with(|c| {
        let ip4 = c.ip4.as_mut().unwrap();
        ip4.addr = LEASED;
        ip4.dns = dns.to_vec();
        c.search = search.iter().map(|s| s.to_string()).collect();
        c.mtu = 1500;
    });
    let mut h = Harness::new(config);
    for (request, theirs, kind) in [
        (
            DHCLIENT_DISCOVER,
            DNSMASQ_OFFER_DHCLIENT,
            DhcpMessageType::Offer,
        ),
        (DHCLIENT_REQUEST, DNSMASQ_ACK_DHCLIENT, DhcpMessageType::Ack),
    ] {
        h.guest(&f[request]);
        let r = expect_reply(&mut h);
        assert_eq!(r.eth.dst, CLIENT_MAC);
        assert_eq!(r.ip_dst, LEASED);
        assert_reply_basics(&r, GW4, DHCLIENT_XID, 0);
        let d = r.dhcp();
        assert_eq!(d.header().yiaddr(), LEASED);
        assert_eq!(d.message_type(), Some(kind));
        assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6, 119]);
        assert_eq!(d.lease_time(), Some(0xffff_ffff));
        // Same bytes as dnsmasq's reply for every option describing the
        // network (its lease is finite, ours is not).
        let dnsmasq = DhcpRepr::parse(dhcp_of(&f[theirs])).unwrap();
        for code in [54, 1, 3, 6, 26, 119] {
            assert_eq!(d.option(code), dnsmasq.option(code), "option {code}");
        }
        assert_eq!(d.option(opt::DNS_SERVERS), Some(&octets(&dns)[..]));
        assert_eq!(
            d.option(opt::INTERFACE_MTU),
            Some(&1500u16.to_be_bytes()[..])
        );
        assert_eq!(search_names(&d), search);
        // No option 57 from dhclient: 576 bytes at most (RFC 2131 §2).
        assert!(r.ip_len <= 576);
    }
}

#[test]
fn request_for_another_address_gets_a_broadcast_nak() {
    let f = frames();
    for (request, xid) in [
        (UDHCPC_REQUEST, UDHCPC_XID),
        (DHCLIENT_REQUEST, DHCLIENT_XID),
    ] {
        // test_config() hands out 192.0.2.10; the clients ask for .104 from
        // server 192.0.2.1, which is us.
        let mut h = Harness::new(test_config());
        h.guest(&f[request]);
        let r = expect_reply(&mut h);
        assert_eq!(r.eth.dst, MacAddr::BROADCAST);
        assert_eq!(r.ip_dst, Ipv4Addr::BROADCAST);
        assert_reply_basics(&r, GW4, xid, 0);
        let d = r.dhcp();
        // RFC 2131 table 3: no yiaddr, no ciaddr, no lease, no parameters.
        assert_eq!(d.header().yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(d.header().ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(codes(&d), [53, 54, 56]);
        assert_eq!(d.message_type(), Some(DhcpMessageType::Nak));
        assert_eq!(d.server_id(), Some(GW4));
        assert_eq!(
            d.option(opt::MESSAGE),
            Some(&b"requested address not available"[..])
        );
        assert_eq!(h.t.stats().dhcp_replies, 1);
    }
}

#[test]
fn request_for_another_server_is_ignored() {
    let f = frames();
    let other = Ipv4Addr::new(192, 0, 2, 2);
    for request in [UDHCPC_REQUEST, DHCLIENT_REQUEST] {
        let mut h = Harness::new(leased_config());
        let frame = edited(&f[request], |_| {}, &[(54, Some(&other.octets()))]);
        h.guest(&frame);
        h.expect_no_frame();
        assert_eq!(h.t.stats().dhcp_replies, 0);
        assert_eq!(total_drops(&h), 0);
    }
}

#[test]
fn release_and_decline_get_no_reply() {
    let f = frames();
    let mut h = Harness::new(leased_config());
    let decline = edited(&f[UDHCPC_REQUEST], |_| {}, &[(53, Some(&[4]))]);
    for frame in [&f[UDHCPC_RELEASE], &f[DHCLIENT_RELEASE], &decline] {
        h.guest(frame);
        h.expect_no_frame();
    }
    let s = h.t.stats();
    assert_eq!((s.frames_in, s.frames_out, s.dhcp_replies), (3, 0, 0));
    assert_eq!(total_drops(&h), 0);
}

#[test]
fn server_and_unknown_message_types_are_ignored() {
    let f = frames();
    let mut h = Harness::new(test_config());
    for kind in [2u8, 5, 6, 9, 18, 200] {
        h.guest(&edited(&f[UDHCPC_DISCOVER], |_| {}, &[(53, Some(&[kind]))]));
        h.expect_no_frame();
    }
    assert_eq!(total_drops(&h), 0);
    assert_eq!(h.t.stats().dhcp_replies, 0);
}

#[test]
fn relayed_message_is_ignored() {
    let f = frames();
    let mut h = Harness::new(test_config());
    h.guest(&edited(
        &f[UDHCPC_DISCOVER],
        |hdr| hdr.giaddr = [192, 0, 2, 200],
        &[],
    ));
    h.expect_no_frame();
    assert_eq!(total_drops(&h), 0);
}

// ---------------------------------------------------------------------------
// Request states (RFC 2131 §4.3.2) and DHCPINFORM.

#[test]
fn renewing_request_names_its_address_in_ciaddr() {
    let f = frames();
    let renew = |ciaddr: Ipv4Addr| {
        // RENEWING: no server identifier, no requested address, ciaddr set,
        // unicast from the client's address.
        let dhcp = edit(
            dhcp_of(&f[UDHCPC_REQUEST]),
            |h| h.ciaddr = ciaddr.octets(),
            &[(50, None), (54, None)],
        );
        let (eth, _, _) = layers(&f[UDHCPC_REQUEST]);
        reframe_with(&eth, ciaddr, GW4, 68, &dhcp)
    };
    let mut h = Harness::new(test_config());
    h.guest(&renew(GUEST4));
    let r = expect_reply(&mut h);
    assert_eq!(r.eth.dst, CLIENT_MAC);
    assert_eq!(r.ip_dst, GUEST4);
    assert_reply_basics(&r, GW4, UDHCPC_XID, 0);
    let d = r.dhcp();
    assert_eq!(d.message_type(), Some(DhcpMessageType::Ack));
    assert_eq!(d.header().ciaddr(), GUEST4);
    assert_eq!(d.header().yiaddr(), GUEST4);
    assert_eq!(d.lease_time(), Some(0xffff_ffff));

    // Renewing another address: NAK, broadcast even though ciaddr is set.
    h.guest(&renew(LEASED));
    let r = expect_reply(&mut h);
    assert_eq!(
        (r.eth.dst, r.ip_dst),
        (MacAddr::BROADCAST, Ipv4Addr::BROADCAST)
    );
    let d = r.dhcp();
    assert_eq!(d.message_type(), Some(DhcpMessageType::Nak));
    assert_eq!(d.header().ciaddr(), Ipv4Addr::UNSPECIFIED);
}

#[test]
fn init_reboot_request_is_checked_against_the_configured_address() {
    let f = frames();
    // INIT-REBOOT: requested address, no server identifier.
    let reboot = |addr: Ipv4Addr| {
        edited(
            &f[DHCLIENT_REQUEST],
            |_| {},
            &[(54, None), (50, Some(&addr.octets()))],
        )
    };
    let mut h = Harness::new(test_config());
    h.guest(&reboot(GUEST4));
    let r = expect_reply(&mut h);
    assert_eq!((r.eth.dst, r.ip_dst), (CLIENT_MAC, GUEST4));
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Ack));
    assert_eq!(r.dhcp().header().yiaddr(), GUEST4);

    h.guest(&reboot(LEASED));
    let r = expect_reply(&mut h);
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Nak));
    assert_eq!(r.ip_dst, Ipv4Addr::BROADCAST);

    // A request naming no address at all is acknowledged.
    h.guest(&edited(
        &f[DHCLIENT_REQUEST],
        |_| {},
        &[(54, None), (50, None)],
    ));
    let r = expect_reply(&mut h);
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Ack));
    assert_eq!(r.ip_dst, GUEST4);
}

#[test]
fn inform_gets_an_ack_without_address_or_lease() {
    let f = frames();
    let inform = |flags: u16| {
        let dhcp = edit(
            dhcp_of(&f[UDHCPC_DISCOVER]),
            |h| {
                h.ciaddr = GUEST4.octets();
                h.flags.set(flags);
            },
            &[(53, Some(&[8]))],
        );
        let (eth, _, _) = layers(&f[UDHCPC_DISCOVER]);
        reframe_with(&eth, GUEST4, Ipv4Addr::BROADCAST, 68, &dhcp)
    };
    let mut h = Harness::new(test_config());
    // Unicast to ciaddr, also with the broadcast flag (RFC 2131 §4.1,
    // §4.3.5).
    for flags in [0, FLAG_BROADCAST] {
        h.guest(&inform(flags));
        let r = expect_reply(&mut h);
        assert_eq!(r.eth.dst, CLIENT_MAC);
        assert_eq!(r.ip_dst, GUEST4);
        assert_reply_basics(&r, GW4, UDHCPC_XID, flags);
        let d = r.dhcp();
        assert_eq!(d.message_type(), Some(DhcpMessageType::Ack));
        assert_eq!(d.header().yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(d.header().ciaddr(), GUEST4);
        assert_eq!(codes(&d), [53, 54, 1, 3, 26, 6]);
        assert_eq!(d.lease_time(), None);
        assert_eq!(d.server_id(), Some(GW4));
        assert_eq!(d.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
        assert_eq!(d.option(opt::ROUTER), Some(&GW4.octets()[..]));
        assert_eq!(d.option(opt::DNS_SERVERS), Some(&GW4.octets()[..]));
    }
    assert_eq!(h.t.stats().dhcp_replies, 2);
}

// ---------------------------------------------------------------------------
// Addressing.

#[test]
fn broadcast_flag_gets_broadcast_offer_and_ack() {
    let f = frames();
    let mut h = Harness::new(leased_config());
    for (request, kind) in [
        (UDHCPC_DISCOVER, DhcpMessageType::Offer),
        (UDHCPC_REQUEST, DhcpMessageType::Ack),
    ] {
        h.guest(&edited(
            &f[request],
            |hdr| hdr.flags.set(FLAG_BROADCAST),
            &[],
        ));
        let r = expect_reply(&mut h);
        assert_eq!(r.eth.dst, MacAddr::BROADCAST);
        assert_eq!(r.ip_dst, Ipv4Addr::BROADCAST);
        assert_reply_basics(&r, GW4, UDHCPC_XID, FLAG_BROADCAST);
        assert_eq!(r.dhcp().message_type(), Some(kind));
        assert_eq!(r.dhcp().header().yiaddr(), LEASED);
    }
}

#[test]
fn vlan_tags_of_the_request_are_kept() {
    let f = frames();
    let (mut eth, ip, udp) = layers(&f[UDHCPC_DISCOVER]);
    eth.tags[0] = VlanTag {
        tpid: ethertype::VLAN,
        tci: 10,
    };
    eth.tag_count = 1;
    let frame = reframe_with(&eth, ip.src, ip.dst, udp.src_port, udp.payload);
    let mut h = Harness::new(test_config());
    h.guest(&frame);
    let r = Reply::new(h.expect_frame());
    assert_eq!(r.eth.tags().len(), 1);
    assert_eq!(
        (r.eth.tags()[0].tpid, r.eth.tags()[0].vid()),
        (ethertype::VLAN, 10)
    );
    assert_eq!((r.eth.dst, r.eth.src), (CLIENT_MAC, DEFAULT_OUR_MAC));
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Offer));
}

// ---------------------------------------------------------------------------
// Malformed input.

/// Offsets of each option (code byte) in a DHCP message, and of `end`.
fn option_offsets(dhcp: &[u8]) -> (Vec<(u8, usize)>, usize) {
    let mut at = OPTIONS_OFFSET;
    let mut found = Vec::new();
    loop {
        match dhcp[at] {
            0 => at += 1,
            255 => return (found, at),
            code => {
                found.push((code, at));
                at += 2 + usize::from(dhcp[at + 1]);
            }
        }
    }
}

#[test]
fn malformed_messages_are_dropped_and_the_next_one_served() {
    let f = frames();
    let good = dhcp_of(&f[UDHCPC_DISCOVER]).to_vec();
    let (offsets, end) = option_offsets(&good);
    let at = |code: u8| offsets.iter().find(|(c, _)| *c == code).unwrap().1;
    let mutate = |m: &dyn Fn(&mut Vec<u8>)| {
        let mut d = good.clone();
        m(&mut d);
        reframe(&f[UDHCPC_DISCOVER], &d)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", mutate(&|d| d.clear())),
        ("header only", mutate(&|d| d.truncate(HEADER_LEN))),
        ("bad cookie", mutate(&|d| d[HEADER_LEN + 3] ^= 1)),
        ("no end option", mutate(&|d| d.truncate(end))),
        ("option past the end", mutate(&|d| d[at(61) + 1] = 250)),
        ("message type of 2 bytes", mutate(&|d| d[at(53) + 1] = 2)),
        ("max size of 1 byte", mutate(&|d| d[at(57) + 1] = 1)),
        ("hlen over 16", mutate(&|d| d[2] = 17)),
        ("BOOTREPLY", mutate(&|d| d[0] = BOOTREPLY)),
        ("not Ethernet", mutate(&|d| d[1] = 6)),
        ("hlen not 6", mutate(&|d| d[2] = 8)),
        (
            "overload into an empty file field",
            reframe(
                &f[UDHCPC_DISCOVER],
                &edit(&good, |_| {}, &[(52, Some(&[1]))]),
            ),
        ),
    ];
    let mut h = Harness::new(test_config());
    h.take_events();
    for (n, (what, frame)) in cases.iter().enumerate() {
        h.guest(frame);
        h.expect_no_frame();
        assert_eq!(
            h.t.stats().dropped(DropReason::Malformed),
            n as u64 + 1,
            "{what}"
        );
        let events = h.take_events();
        assert!(
            matches!(
                events.as_slice(),
                [Event::Dropped {
                    reason: DropReason::Malformed,
                    ..
                }] | [
                    Event::GuestMac(_),
                    Event::Dropped {
                        reason: DropReason::Malformed,
                        ..
                    }
                ]
            ),
            "{what}: {events:?}"
        );
    }
    assert_eq!(total_drops(&h), cases.len() as u64);
    assert_eq!(h.t.stats().dhcp_replies, 0);

    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);
    assert_reply_basics(&r, GW4, UDHCPC_XID, 0);
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Offer));
    assert_eq!(h.t.stats().dhcp_replies, 1);
}

#[test]
fn overloaded_and_split_options_are_read_through_the_codec() {
    let f = frames();
    // The requested address moves into `file` (overload 1, RFC 2132 §9.3);
    // the server identifier is split in two instances (RFC 3396).
    let request = |addr: Ipv4Addr| {
        let mut file = [0u8; 128];
        file[..2].copy_from_slice(&[50, 4]);
        file[2..6].copy_from_slice(&addr.octets());
        file[6..9].copy_from_slice(&[54, 2, 2]);
        file[9..11].copy_from_slice(&[1, 255]);
        edited(
            &f[UDHCPC_REQUEST],
            |h| h.file = file,
            &[(50, None), (54, Some(&[192, 0])), (52, Some(&[1]))],
        )
    };
    let mut h = Harness::new(leased_config());
    h.guest(&request(LEASED));
    let r = expect_reply(&mut h);
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Ack));
    assert_eq!(r.ip_dst, LEASED);
    // The reply never overloads: `file` is clean.
    assert_reply_basics(&r, GW4, UDHCPC_XID, 0);

    h.guest(&request(GUEST4));
    let r = expect_reply(&mut h);
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Nak));
}

// ---------------------------------------------------------------------------
// Other message shapes.

#[test]
fn rapid_commit_discover_gets_an_ack() {
    let f = frames();
    let mut h = Harness::new(test_config());
    h.guest(&edited(&f[DHCLIENT_DISCOVER], |_| {}, &[(80, Some(&[]))]));
    let r = expect_reply(&mut h);
    assert_eq!((r.eth.dst, r.ip_dst), (CLIENT_MAC, GUEST4));
    assert_reply_basics(&r, GW4, DHCLIENT_XID, 0);
    let d = r.dhcp();
    assert_eq!(d.message_type(), Some(DhcpMessageType::Ack));
    assert!(d.rapid_commit());
    assert_eq!(codes(&d), [53, 54, 51, 80, 1, 3, 26, 6]);
    assert_eq!(d.option(opt::RAPID_COMMIT), Some(&[][..]));
    assert_eq!(d.header().yiaddr(), GUEST4);
}

#[test]
fn bootp_request_gets_a_bootp_reply() {
    let f = frames();
    let mut h = Harness::new(test_config());
    h.guest(&edited(&f[UDHCPC_DISCOVER], |_| {}, &[(53, None)]));
    let r = expect_reply(&mut h);
    assert_eq!((r.eth.dst, r.ip_dst), (CLIENT_MAC, GUEST4));
    assert_reply_basics(&r, GW4, UDHCPC_XID, 0);
    let d = r.dhcp();
    assert_eq!(d.message_type(), None);
    assert_eq!(d.header().yiaddr(), GUEST4);
    assert_eq!(codes(&d), [1, 3, 26, 6]);
    assert_eq!(r.dhcp_len(), 300);
}

// ---------------------------------------------------------------------------
// Configuration overrides.

#[test]
fn prefix_length_sets_the_subnet_mask() {
    let f = frames();
    for (prefix, mask) in [
        (20, [255, 255, 240, 0]),
        (16, [255, 255, 0, 0]),
        (28, [255, 255, 255, 240]),
    ] {
        let mut h = Harness::new(config_with(|c| c.ip4.as_mut().unwrap().prefix_len = prefix));
        h.guest(&f[UDHCPC_DISCOVER]);
        let r = expect_reply(&mut h);
        let d = r.dhcp();
        assert_eq!(d.option(opt::SUBNET_MASK), Some(&mask[..]), "/{prefix}");
        assert_eq!(d.option(opt::CLASSLESS_STATIC_ROUTE), None);
        assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6]);
    }
}

#[test]
fn gateway_outside_the_subnet_gets_a_classless_route() {
    let f = frames();
    // 192.0.2.10/30 is .8-.11: the gateway .1 is off-link, so a host route
    // to it and a default route through it (RFC 3442).
    let mut h = Harness::new(config_with(|c| c.ip4.as_mut().unwrap().prefix_len = 30));
    h.guest(&f[DHCLIENT_DISCOVER]);
    let r = expect_reply(&mut h);
    let d = r.dhcp();
    assert_eq!(d.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 252][..]));
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 121, 26, 6]);
    assert_eq!(
        d.option(opt::CLASSLESS_STATIC_ROUTE),
        Some(&[32, 192, 0, 2, 1, 0, 0, 0, 0, 0, 192, 0, 2, 1][..])
    );
    assert_eq!(d.option(opt::ROUTER), Some(&GW4.octets()[..]));
}

#[test]
fn gateway_is_router_server_identifier_and_source() {
    let f = frames();
    let gw = Ipv4Addr::new(192, 0, 2, 254);
    let config = config_with(|c| {
        let ip4 = c.ip4.as_mut().unwrap();
        ip4.addr = LEASED;
        ip4.gateway = gw;
        ip4.map_host_loopback = Some(gw);
    });
    let mut h = Harness::new(config);
    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);
    assert_reply_basics(&r, gw, UDHCPC_XID, 0);
    let d = r.dhcp();
    assert_eq!(d.server_id(), Some(gw));
    assert_eq!(d.option(opt::ROUTER), Some(&gw.octets()[..]));
    // The captured REQUEST names server 192.0.2.1: not us any more.
    h.guest(&f[UDHCPC_REQUEST]);
    h.expect_no_frame();
    // Naming the new gateway, it is ours.
    h.guest(&edited(
        &f[UDHCPC_REQUEST],
        |_| {},
        &[(54, Some(&gw.octets()))],
    ));
    let r = expect_reply(&mut h);
    assert_reply_basics(&r, gw, UDHCPC_XID, 0);
    assert_eq!(r.dhcp().message_type(), Some(DhcpMessageType::Ack));
}

#[test]
fn mtu_sets_option_26() {
    let f = frames();
    for mtu in [576u16, 1500, 9000, 65520] {
        let mut h = Harness::new(config_with(|c| c.mtu = mtu));
        h.guest(&f[DHCLIENT_DISCOVER]);
        let r = expect_reply(&mut h);
        assert_eq!(
            r.dhcp().option(opt::INTERFACE_MTU),
            Some(&mtu.to_be_bytes()[..])
        );
    }
}

#[test]
fn dns_list_sets_option_6() {
    let f = frames();
    let three = [
        Ipv4Addr::new(192, 0, 2, 53),
        Ipv4Addr::new(198, 51, 100, 53),
        Ipv4Addr::new(203, 0, 113, 53),
    ];
    let mut h = Harness::new(config_with(|c| {
        c.ip4.as_mut().unwrap().dns = three.to_vec()
    }));
    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);
    assert_eq!(r.dhcp().option(opt::DNS_SERVERS), Some(&octets(&three)[..]));

    let mut h = Harness::new(config_with(|c| c.ip4.as_mut().unwrap().dns.clear()));
    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);
    assert_eq!(codes(&r.dhcp()), [53, 54, 51, 1, 3, 26]);
}

#[test]
fn search_list_is_compressed_in_option_119() {
    let f = frames();
    let search = ["eng.apple.com", "marketing.apple.com"];
    let mut h = Harness::new(config_with(|c| {
        c.search = search.iter().map(|s| s.to_string()).collect();
    }));
    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);
    let d = r.dhcp();
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6, 119]);
    // The example of RFC 3397 §3, byte for byte.
    let mut rfc3397 = vec![3];
    rfc3397.extend_from_slice(b"eng");
    rfc3397.push(5);
    rfc3397.extend_from_slice(b"apple");
    rfc3397.push(3);
    rfc3397.extend_from_slice(b"com");
    rfc3397.extend_from_slice(&[0, 9]);
    rfc3397.extend_from_slice(b"marketing");
    rfc3397.extend_from_slice(&[0xc0, 0x04]);
    assert_eq!(d.option(opt::DOMAIN_SEARCH), Some(&rfc3397[..]));
    assert_eq!(search_names(&d), search);
}

#[test]
fn no_dhcp_dns_leaves_out_option_6_only() {
    let f = frames();
    let mut h = Harness::new(config_with(|c| {
        c.services.remove(Services::DHCP_DNS);
        c.search = vec!["example.org".into()];
    }));
    h.guest(&f[DHCLIENT_DISCOVER]);
    let r = expect_reply(&mut h);
    let d = r.dhcp();
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 119]);
    assert_eq!(search_names(&d), ["example.org"]);
}

#[test]
fn no_dhcp_search_leaves_out_option_119_only() {
    let f = frames();
    let mut h = Harness::new(config_with(|c| {
        c.services.remove(Services::DHCP_SEARCH);
        c.search = vec!["example.org".into()];
    }));
    h.guest(&f[DHCLIENT_DISCOVER]);
    let r = expect_reply(&mut h);
    let d = r.dhcp();
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6]);
    assert_eq!(d.option(opt::DNS_SERVERS), Some(&GW4.octets()[..]));
}

#[test]
fn no_dhcp_means_no_reply_at_all() {
    let f = frames();
    let mut h = Harness::new(config_with(|c| c.services.remove(Services::DHCP)));
    for n in [
        UDHCPC_DISCOVER,
        UDHCPC_REQUEST,
        DHCLIENT_DISCOVER,
        DHCLIENT_REQUEST,
    ] {
        h.guest(&f[n]);
        h.expect_no_frame();
    }
    let s = h.t.stats();
    assert_eq!((s.frames_in, s.frames_out, s.dhcp_replies), (4, 0, 0));
    // Not a DHCP drop: the datagram went on to UDP, which does not
    // forward broadcasts.
    assert_eq!(s.dropped(DropReason::Malformed), 0);
    assert_eq!(s.dropped(DropReason::Unsupported), 4);
    h.expect_no_op();
}

// ---------------------------------------------------------------------------
// Message size.

/// Search names that share no suffix, 45 bytes each in wire form.
fn long_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{}.n{i:02}", "x".repeat(39)))
        .collect()
}

#[test]
fn search_list_loses_names_to_fit_576_bytes() {
    let f = frames();
    let names = long_names(8);
    let mut h = Harness::new(config_with(|c| c.search = names.clone()));
    // udhcpc says 576 (option 57); dhclient says nothing, which means 576.
    for request in [UDHCPC_DISCOVER, DHCLIENT_DISCOVER] {
        h.guest(&f[request]);
        let r = expect_reply(&mut h);
        assert!(r.ip_len <= 576, "{}", r.ip_len);
        let d = r.dhcp();
        // 548 - 240 bytes of options: 31 for 53, 54, 51, 1, 3, 26, 6 for
        // DNS, 1 for `end`: 270 left, room for five 45-byte names with
        // their option header, not six (270 + 4).
        assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6, 119]);
        assert_eq!(search_names(&d), names[..5]);
        assert_eq!(d.option(opt::DNS_SERVERS), Some(&GW4.octets()[..]));
    }
    // Option 57 below the minimum counts as 576.
    h.guest(&edited(
        &f[UDHCPC_DISCOVER],
        |_| {},
        &[(57, Some(&300u16.to_be_bytes()))],
    ));
    let r = expect_reply(&mut h);
    assert!(r.ip_len <= 576);
    assert_eq!(search_names(&r.dhcp()), names[..5]);
}

#[test]
fn larger_maximum_message_size_carries_the_whole_list() {
    let f = frames();
    let names = long_names(16);
    let mut h = Harness::new(config_with(|c| {
        c.search = names.clone();
        c.mtu = 1500;
    }));
    h.guest(&edited(
        &f[UDHCPC_DISCOVER],
        |_| {},
        &[(57, Some(&1500u16.to_be_bytes()))],
    ));
    let r = expect_reply(&mut h);
    assert!(r.ip_len > 576 && r.ip_len <= 1500, "{}", r.ip_len);
    let d = r.dhcp();
    // 720 bytes: three instances of option 119 (RFC 3396).
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 26, 6, 119, 119, 119]);
    assert_eq!(search_names(&d), names);

    // The link MTU caps what the client says it accepts.
    let mut h = Harness::new(config_with(|c| {
        c.search = names.clone();
        c.mtu = 1000;
    }));
    h.guest(&edited(
        &f[UDHCPC_DISCOVER],
        |_| {},
        &[(57, Some(&1500u16.to_be_bytes()))],
    ));
    let r = expect_reply(&mut h);
    assert!(r.ip_len <= 1000, "{}", r.ip_len);
    let got = search_names(&r.dhcp());
    assert!(!got.is_empty() && got.len() < names.len());
    assert_eq!(got, names[..got.len()]);
}

#[test]
fn captured_offer_from_dnsmasq_is_not_ours_to_answer() {
    // Server messages go to port 68: the translator never hands them to
    // the DHCP server.
    let f = frames();
    let mut h = Harness::new(test_config());
    h.guest(&f[DNSMASQ_OFFER_UDHCPC]);
    h.expect_no_frame();
    assert_eq!(h.t.stats().dhcp_replies, 0);
}

/// `-H` and `--fqdn`: host name (option 12, RFC 2132 §3.14) and client
/// FQDN (option 81, RFC 4702 §2: flags E only, RCODEs 255, the name in
/// wire format) after the MTU; `-m 0` (`assign_mtu` off): no option 26.
#[test]
fn hostname_fqdn_and_no_mtu_options() {
    let f = frames();
    let c = config_with(|c| {
        c.hostname = Some("vm1".into());
        c.fqdn = Some("vm1.example.org".into());
        c.assign_mtu = false;
    });
    let mut h = Harness::new(c);
    h.guest(&f[UDHCPC_DISCOVER]);
    let r = expect_reply(&mut h);
    let d = r.dhcp();
    assert_eq!(codes(&d), [53, 54, 51, 1, 3, 12, 81, 6]);
    assert_eq!(d.option(opt::HOSTNAME), Some(&b"vm1"[..]));
    assert_eq!(opt::CLIENT_FQDN, 81);
    assert_eq!(
        d.option(81),
        Some(&b"\x04\xff\xff\x03vm1\x07example\x03org\x00"[..])
    );
    assert_eq!(d.option(opt::INTERFACE_MTU), None);
    // The raw bytes of both options, in the reply as sent.
    let raw = &r.frame[r.at + OPTIONS_OFFSET..];
    let pos = |needle: &[u8]| raw.windows(needle.len()).position(|w| w == needle);
    assert!(pos(b"\x0c\x03vm1").is_some(), "option 12 bytes");
    assert!(
        pos(b"\x51\x14\x04\xff\xff\x03vm1\x07example\x03org\x00").is_some(),
        "option 81 bytes"
    );
}
