//! Ingress: one guest frame, parsed once, checksums verified once, becomes
//! one [`Item`] that names the module it is for (a local service, or a
//! transport), with its headers already parsed and its payload located in
//! the rx batch (so that operations can name it by [`RxSpan`]).
//!
//! [`classify`] is the only place that parses a frame; the handlers take
//! what it returns. It drops what no module takes, with the reason: an
//! unknown EtherType, a disabled family or protocol, a fragment, source
//! routing, a bad checksum.

use crate::addr::InAny;
use crate::buf::{Offload, OffloadFlags, RxBatch, RxSpan};
use crate::config::{Config, Services};
use crate::contract::DropReason;
use crate::wire::arp::ArpRepr;
use crate::wire::checksum::{pseudo_header_v4, pseudo_header_v6};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmp::IcmpRepr;
use crate::wire::icmpv6::Icmpv6Repr;
use crate::wire::ip_proto;
use crate::wire::ipv4::{option_kind as ipv4_opt, Ipv4Repr};
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::ndp::{validate as ndp_validate, NdpRepr};
use crate::wire::tcp::TcpRepr;
use crate::wire::udp::UdpRepr;

/// DHCP's server port (RFC 2131 §4.1).
const DHCP_SERVER_PORT: u16 = 67;
/// DHCPv6's server and relay port (RFC 8415 §7.2).
const DHCPV6_SERVER_PORT: u16 = 547;

/// A guest TCP segment with its addresses.
pub(crate) struct Segment<'a> {
    /// The guest's address.
    pub(crate) src: InAny,
    /// The destination as the guest addressed it.
    pub(crate) dst: InAny,
    /// The parsed header.
    pub(crate) seg: TcpRepr<'a>,
    /// The segment's data.
    pub(crate) payload: &'a [u8],
    /// Where `payload` lies in the batch (`None` if it could not be named).
    pub(crate) span: Option<RxSpan>,
}

/// A guest UDP datagram.
pub(crate) struct Datagram<'a> {
    /// The guest's address.
    pub(crate) src: InAny,
    /// The destination as the guest addressed it.
    pub(crate) dst: InAny,
    /// The parsed header, its payload included.
    pub(crate) udp: UdpRepr<'a>,
    /// Where the payload lies in the batch.
    pub(crate) span: RxSpan,
    /// The guest's IPv4 TTL or IPv6 hop limit, carried to the host socket.
    pub(crate) ttl: u8,
}

/// A guest ICMP or ICMPv6 echo request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EchoRequest {
    /// The guest's address.
    pub(crate) src: InAny,
    /// The destination as the guest addressed it.
    pub(crate) dst: InAny,
    /// The echo identifier.
    pub(crate) ident: u16,
    /// Where the whole ICMP message lies in the batch (it is sent as is).
    pub(crate) span: RxSpan,
    /// The guest's IPv4 TTL or IPv6 hop limit.
    pub(crate) ttl: u8,
}

/// What a guest frame is, and for whom.
pub(crate) enum Item<'a> {
    /// An ARP message ([`crate::l2::arp`]).
    Arp(ArpRepr),
    /// A message to the DHCP server ([`crate::l2::dhcp`]).
    Dhcp(Ipv4Repr<'a>, UdpRepr<'a>),
    /// A message to the DHCPv6 server ([`crate::l2::dhcpv6`]).
    Dhcpv6(Ipv6Repr<'a>, UdpRepr<'a>),
    /// A valid neighbour discovery message ([`crate::l2::ndp`]).
    Ndp(Ipv6Repr<'a>, NdpRepr<'a>),
    /// NDP with the service off: nothing to do.
    Ignored,
    /// An ICMPv6 echo request: ours to answer if it is to our link-local
    /// address ([`crate::l2::echo`]), else an echo flow's.
    Echo6(Ipv6Repr<'a>, Icmpv6Repr<'a>, EchoRequest),
    /// A TCP segment ([`crate::tcp`]).
    Tcp(Segment<'a>),
    /// A UDP datagram ([`crate::udp`]).
    Udp(Datagram<'a>),
    /// An ICMP echo request ([`crate::icmp`]).
    Echo(EchoRequest),
}

/// A classified frame: its Ethernet header, the IP source it carries (for
/// the addresses seen; IPv4 as v4-mapped, and an IPv6 frame never carries
/// a v4-mapped one), and the item, or why it was dropped.
pub(crate) struct Classified<'a> {
    /// The Ethernet header.
    pub(crate) eth: EthernetRepr,
    /// The IP source address, once the IP header parsed.
    pub(crate) src: Option<InAny>,
    /// What the frame is, or why it is dropped.
    pub(crate) item: Result<Item<'a>, DropReason>,
}

/// Parse frame `i` of `rx` once and say what it is. `Err` only when the
/// Ethernet header itself is unusable (too short, a multicast or zero
/// source MAC); anything later is in [`Classified::item`], with the
/// header and the IP source the translator still learns from.
pub(crate) fn classify<'a>(
    config: &Config,
    rx: &RxBatch<'a>,
    i: usize,
    frame: &'a [u8],
    offload: Offload,
) -> Result<Classified<'a>, DropReason> {
    let (eth, payload) = EthernetRepr::parse(frame)?;
    if eth.src.is_multicast() || eth.src.is_zero() {
        return Err(DropReason::BadSourceMac);
    }
    // A partial checksum (to be completed by offload) or one the guest's
    // device already checked is not verified again.
    let verify = !offload
        .flags
        .intersects(OffloadFlags::NEEDS_CSUM | OffloadFlags::DATA_VALID);
    let mut src = None;
    let item = match eth.ethertype {
        ethertype::ARP if config.ip4.is_none() => Err(DropReason::FamilyDisabled),
        ethertype::ARP => ArpRepr::parse(payload)
            .map(Item::Arp)
            .map_err(DropReason::from),
        ethertype::IPV4 if config.ip4.is_none() => Err(DropReason::FamilyDisabled),
        ethertype::IPV4 => ipv4(config, rx, i, payload, verify, &mut src),
        ethertype::IPV6 if config.ip6.is_none() => Err(DropReason::FamilyDisabled),
        ethertype::IPV6 => ipv6(config, rx, i, payload, verify, &mut src),
        _ => Err(DropReason::Unsupported),
    };
    Ok(Classified { eth, src, item })
}

/// Whether `service` is on; `ProtocolDisabled` if not.
fn enabled(config: &Config, service: Services) -> Result<(), DropReason> {
    if config.services.contains(service) {
        Ok(())
    } else {
        Err(DropReason::ProtocolDisabled)
    }
}

/// Where `sub` (a part of frame `i`) lies in the batch.
fn span(rx: &RxBatch<'_>, i: usize, sub: &[u8]) -> Result<RxSpan, DropReason> {
    rx.span_of(i, sub).ok_or(DropReason::Malformed)
}

/// An IPv4 packet.
fn ipv4<'a>(
    config: &Config,
    rx: &RxBatch<'a>,
    i: usize,
    payload: &'a [u8],
    verify: bool,
    src: &mut Option<InAny>,
) -> Result<Item<'a>, DropReason> {
    // RFC 1122 §3.2.1.2: a datagram with a bad header checksum is silently
    // discarded.
    let (ip, l4) = Ipv4Repr::parse(payload, true)?;
    *src = Some(ip.src.into());
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    // Source routing (RFC 791 §3.1 LSRR/SSRR): the pseudo-header would need
    // the final destination, and we don't route.
    if ip
        .options_iter()
        .any(|o| matches!(o.kind, ipv4_opt::LSRR | ipv4_opt::SSRR))
    {
        return Err(DropReason::Unsupported);
    }
    let pseudo = pseudo_header_v4(ip.src, ip.dst, ip.protocol, l4.len() as u16);
    let (s, d) = (InAny::from(ip.src), InAny::from(ip.dst));
    match ip.protocol {
        ip_proto::UDP => {
            let udp = UdpRepr::parse(l4, verify.then_some(pseudo), false)?;
            if udp.dst_port == DHCP_SERVER_PORT && config.services.contains(Services::DHCP) {
                return Ok(Item::Dhcp(ip, udp));
            }
            enabled(config, Services::UDP)?;
            datagram(rx, i, s, d, udp, ip.ttl)
        }
        ip_proto::TCP => segment(config, rx, i, s, d, l4, verify.then_some(pseudo)),
        ip_proto::ICMP => {
            enabled(config, Services::ICMP)?;
            match IcmpRepr::parse(l4, verify)? {
                (IcmpRepr::EchoRequest { ident, .. }, _) => Ok(Item::Echo(EchoRequest {
                    src: s,
                    dst: d,
                    ident,
                    span: span(rx, i, l4)?,
                    ttl: ip.ttl,
                })),
                _ => Err(DropReason::Unsupported),
            }
        }
        _ => Err(DropReason::Unsupported),
    }
}

/// An IPv6 packet.
fn ipv6<'a>(
    config: &Config,
    rx: &RxBatch<'a>,
    i: usize,
    payload: &'a [u8],
    verify: bool,
    src: &mut Option<InAny>,
) -> Result<Item<'a>, DropReason> {
    let (ip, l4) = Ipv6Repr::parse(payload)?;
    // IPv4-mapped addresses are for a host's own API, never on the wire
    // (RFC 4291 §2.5.5.2; RFC 4038 §4.2): one would make an IPv6 packet
    // look like an IPv4 one to every module.
    if ip.src.to_ipv4_mapped().is_some() || ip.dst.to_ipv4_mapped().is_some() {
        return Err(DropReason::Malformed);
    }
    *src = Some(ip.src.into());
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    // A Routing header with segments left (RFC 8200 §4.4) names another
    // final destination for the pseudo-header (§8.1).
    let routed = ip
        .ext_header_iter()
        .any(|h| h.kind == ip_proto::ROUTING && h.bytes.get(3).is_some_and(|&left| left > 0));
    if routed {
        return Err(DropReason::Unsupported);
    }
    let pseudo = pseudo_header_v6(&ip.src, &ip.dst, ip.upper_protocol, l4.len() as u32);
    let (s, d) = (InAny::from(ip.src), InAny::from(ip.dst));
    match ip.upper_protocol {
        ip_proto::UDP => {
            let udp = UdpRepr::parse(l4, verify.then_some(pseudo), true)?;
            if udp.dst_port == DHCPV6_SERVER_PORT && config.services.contains(Services::DHCPV6) {
                return Ok(Item::Dhcpv6(ip, udp));
            }
            enabled(config, Services::UDP)?;
            datagram(rx, i, s, d, udp, ip.hop_limit)
        }
        ip_proto::ICMPV6 => {
            let msg = Icmpv6Repr::parse(l4, verify.then_some(pseudo))?;
            if let Icmpv6Repr::Ndp(ndp) = msg {
                if !config.services.contains(Services::NDP) {
                    return Ok(Item::Ignored);
                }
                // RFC 4861 §6.1.1, §7.1.1: invalid messages are silently
                // discarded.
                ndp_validate(&ndp, ip.hop_limit, &ip.src, &ip.dst)?;
                return Ok(Item::Ndp(ip, ndp));
            }
            enabled(config, Services::ICMP)?;
            match msg {
                Icmpv6Repr::EchoRequest { ident, .. } => {
                    let req = EchoRequest {
                        src: s,
                        dst: d,
                        ident,
                        span: span(rx, i, l4)?,
                        ttl: ip.hop_limit,
                    };
                    Ok(Item::Echo6(ip, msg, req))
                }
                _ => Err(DropReason::Unsupported),
            }
        }
        ip_proto::TCP => segment(config, rx, i, s, d, l4, verify.then_some(pseudo)),
        _ => Err(DropReason::Unsupported),
    }
}

/// A UDP datagram item.
fn datagram<'a>(
    rx: &RxBatch<'a>,
    i: usize,
    src: InAny,
    dst: InAny,
    udp: UdpRepr<'a>,
    ttl: u8,
) -> Result<Item<'a>, DropReason> {
    let span = span(rx, i, udp.payload)?;
    Ok(Item::Udp(Datagram {
        src,
        dst,
        udp,
        span,
        ttl,
    }))
}

/// A TCP segment item.
fn segment<'a>(
    config: &Config,
    rx: &RxBatch<'a>,
    i: usize,
    src: InAny,
    dst: InAny,
    l4: &'a [u8],
    pseudo: Option<u32>,
) -> Result<Item<'a>, DropReason> {
    enabled(config, Services::TCP)?;
    let (seg, payload) = TcpRepr::parse(l4, pseudo)?;
    Ok(Item::Tcp(Segment {
        src,
        dst,
        seg,
        payload,
        span: rx.span_of(i, payload),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::FrameDesc;
    use crate::testing::build::*;

    /// What `frame` classifies as under `config`: the item's name, or the
    /// drop reason.
    fn kind(config: &Config, frame: &[u8]) -> Result<&'static str, DropReason> {
        let descs = [FrameDesc {
            offset: 0,
            len: frame.len() as u32,
            offload: Offload::default(),
        }];
        let rx = RxBatch::new(frame, &descs).unwrap();
        let (_, f, off) = rx.iter().next().unwrap();
        let c = classify(config, &rx, 0, f, off)?;
        Ok(match c.item? {
            Item::Arp(_) => "arp",
            Item::Dhcp(..) => "dhcp",
            Item::Dhcpv6(..) => "dhcpv6",
            Item::Ndp(..) => "ndp",
            Item::Ignored => "ignored",
            Item::Echo6(..) => "echo6",
            Item::Tcp(_) => "tcp",
            Item::Udp(_) => "udp",
            Item::Echo(_) => "echo",
        })
    }

    fn config() -> Config {
        let mut c = test_config();
        c.ip6 = Some(test_ip6());
        c
    }

    #[test]
    fn each_frame_goes_to_its_module() {
        let c = config();
        let cases: [(&[u8], &str); 8] = [
            (&arp_request(GUEST_MAC, GUEST4, GW4), "arp"),
            (&udp4(GUEST4, 68, GW4, 67, b"x"), "dhcp"),
            (&udp6(GUEST6, 546, GW6, 547, b"x"), "dhcpv6"),
            (&udp4(GUEST4, 4000, REMOTE4, 53, b"q"), "udp"),
            (&udp6(GUEST6, 4000, GW6, 53, b"q"), "udp"),
            (&icmp4_echo(GUEST4, REMOTE4, 7, 1, b"p"), "echo"),
            (&icmp6_echo(GUEST6, GW6, 7, 1, b"p"), "echo6"),
            (&tcp4(GUEST4, 4000, REMOTE4, 80).syn().build(), "tcp"),
        ];
        for (frame, want) in cases {
            assert_eq!(kind(&c, frame), Ok(want), "{}", hex(frame));
        }
    }

    #[test]
    fn the_payload_span_is_located_once() {
        let c = config();
        let frame = udp4(GUEST4, 4000, REMOTE4, 53, b"query");
        let descs = [FrameDesc {
            offset: 0,
            len: frame.len() as u32,
            offload: Offload::default(),
        }];
        let rx = RxBatch::new(&frame, &descs).unwrap();
        let (_, f, off) = rx.iter().next().unwrap();
        let Ok(Item::Udp(d)) = classify(&c, &rx, 0, f, off).unwrap().item else {
            panic!("not a datagram");
        };
        // Ethernet 14 + IPv4 20 + UDP 8.
        assert_eq!((d.span.frame, d.span.offset, d.span.len), (0, 42, 5));
        assert_eq!((d.udp.src_port, d.udp.dst_port, d.ttl), (4000, 53, 64));
        assert_eq!(d.udp.payload, b"query");
    }

    #[test]
    fn what_no_module_takes_is_dropped_with_its_reason() {
        let mut c = config();
        let mut bad = udp4(GUEST4, 4000, REMOTE4, 53, b"q");
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(kind(&c, &bad), Err(DropReason::BadChecksum));
        let mut mcast_src = udp4(GUEST4, 4000, REMOTE4, 53, b"q");
        mcast_src[6] |= 1;
        assert_eq!(kind(&c, &mcast_src), Err(DropReason::BadSourceMac));
        c.services
            .remove(Services::UDP | Services::TCP | Services::ICMP);
        let udp = udp4(GUEST4, 4000, REMOTE4, 53, b"q");
        assert_eq!(kind(&c, &udp), Err(DropReason::ProtocolDisabled));
        let syn = tcp4(GUEST4, 4000, REMOTE4, 80).syn().build();
        assert_eq!(kind(&c, &syn), Err(DropReason::ProtocolDisabled));
        let ping = icmp6_echo(GUEST6, GW6, 7, 1, b"p");
        assert_eq!(kind(&c, &ping), Err(DropReason::ProtocolDisabled));
        // DHCP stays on with UDP off.
        assert_eq!(kind(&c, &udp4(GUEST4, 68, GW4, 67, b"x")), Ok("dhcp"));
        c.ip6 = None;
        assert_eq!(kind(&c, &ping), Err(DropReason::FamilyDisabled));
        let c = config();
        let mapped: std::net::Ipv6Addr = "::ffff:198.51.100.1".parse().unwrap();
        for (s, d) in [(GUEST6, mapped), (mapped, GW6)] {
            let f = udp6(s, 4000, d, 53, b"q");
            assert_eq!(kind(&c, &f), Err(DropReason::Malformed), "{s} -> {d}");
        }
        let other = eth(c.our_mac, GUEST_MAC, 0x88b5, b"local experimental");
        assert_eq!(kind(&c, &other), Err(DropReason::Unsupported));
    }
}
