//! Frame builders for tests: state only what differs from a typical frame.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::MacAddr;
use crate::config::{Config, Ip4Config, Ip6Config, Mode};
use crate::wire::arp::{ArpOp, ArpRepr};
use crate::wire::ethernet::{ethertype, EthernetRepr};

/// The guest's MAC address in test networks.
pub const GUEST_MAC: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
/// The guest's IPv4 address in test networks.
pub const GUEST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The gateway of test networks.
pub const GW4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// A remote IPv4 host.
pub const REMOTE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// A dual-purpose test configuration: IPv4 192.0.2.10/24 via 192.0.2.1.
pub fn test_config() -> Config {
    Config {
        mode: Mode::Passt,
        ip4: Some(Ip4Config {
            addr: GUEST4,
            prefix_len: 24,
            gateway: GW4,
            map_host_loopback: Some(GW4),
            map_guest_addr: None,
            dns: vec![GW4],
            dns_forward: None,
            dns_host: None,
        }),
        ..Config::default()
    }
}

/// The guest's IPv6 address in test networks.
pub const GUEST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// Our link-local address, the guest's IPv6 router, in test networks.
pub const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// IPv6 for test networks: 2001:db8::10/64 via fe80::1, resolver
/// 2001:db8::53.
pub fn test_ip6() -> Ip6Config {
    Ip6Config {
        addr: GUEST6,
        prefix_len: 64,
        gateway: GW6,
        our_link_local: GW6,
        map_host_loopback: Some(GW6),
        map_guest_addr: None,
        dns: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53)],
        dns_forward: None,
        dns_host: None,
    }
}

/// An Ethernet frame: header then payload.
pub fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let e = EthernetRepr::new(dst, src, ethertype);
    let mut f = vec![0u8; e.buffer_len()];
    e.emit(&mut f).expect("sized above");
    f.extend_from_slice(payload);
    f
}

/// A broadcast ARP request from `sha`/`spa` asking for `tpa`.
pub fn arp_request(sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let a = ArpRepr {
        op: ArpOp::Request,
        sha,
        spa,
        tha: MacAddr::ZERO,
        tpa,
    };
    let mut body = [0u8; 28];
    a.emit(&mut body).expect("28 bytes");
    eth(MacAddr::BROADCAST, sha, ethertype::ARP, &body)
}

/// Bytes as lowercase hex, for failure messages.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A UDP datagram over IPv4 from the guest to us, in an Ethernet frame.
pub fn udp4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    use crate::wire::{checksum, ip_proto, ipv4::Ipv4Repr, udp::UdpRepr};
    let udp = UdpRepr {
        src_port: sport,
        dst_port: dport,
        checksum: 0,
        payload,
    };
    let l4_len = udp.buffer_len();
    let mut l4 = vec![0u8; l4_len];
    let pseudo = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, l4_len as u16);
    udp.emit_with_checksum(&mut l4, pseudo)
        .expect("sized above");
    let ip = Ipv4Repr::new(src, dst, ip_proto::UDP, 64);
    let mut pkt = vec![0u8; ip.buffer_len() + l4_len];
    let hl = ip
        .emit_with_checksum(&mut pkt, l4_len)
        .expect("sized above");
    pkt[hl..].copy_from_slice(&l4);
    eth(
        crate::config::DEFAULT_OUR_MAC,
        GUEST_MAC,
        ethertype::IPV4,
        &pkt,
    )
}

/// A UDP datagram over IPv6 from the guest, in an Ethernet frame.
pub fn udp6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8 + payload.len()];
    let e = EthernetRepr::new(crate::config::DEFAULT_OUR_MAC, GUEST_MAC, ethertype::IPV6);
    let n = crate::wire::frame::udp6(&mut f, &e, src, sport, dst, dport, 64, |p| {
        p[..payload.len()].copy_from_slice(payload);
        Ok(payload.len())
    })
    .expect("sized above");
    f.truncate(n);
    f
}

/// An ICMP echo request over IPv4 from the guest, in an Ethernet frame.
pub fn icmp4_echo(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    use crate::wire::{icmp::IcmpRepr, ip_proto, ipv4::Ipv4Repr};
    let msg = IcmpRepr::EchoRequest { ident, seq, data };
    let mut l4 = vec![0u8; msg.buffer_len()];
    msg.emit(&mut l4).expect("sized above");
    let ip = Ipv4Repr::new(src, dst, ip_proto::ICMP, 64);
    let mut pkt = vec![0u8; ip.buffer_len() + l4.len()];
    let hl = ip
        .emit_with_checksum(&mut pkt, l4.len())
        .expect("sized above");
    pkt[hl..].copy_from_slice(&l4);
    eth(
        crate::config::DEFAULT_OUR_MAC,
        GUEST_MAC,
        ethertype::IPV4,
        &pkt,
    )
}

/// An ICMPv6 echo request from the guest, in an Ethernet frame.
pub fn icmp6_echo(src: Ipv6Addr, dst: Ipv6Addr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    use crate::wire::icmpv6::Icmpv6Repr;
    let msg = Icmpv6Repr::EchoRequest { ident, seq, data };
    let mut f = vec![0u8; 14 + 40 + msg.buffer_len()];
    let e = EthernetRepr::new(crate::config::DEFAULT_OUR_MAC, GUEST_MAC, ethertype::IPV6);
    let n = crate::wire::frame::icmpv6(&mut f, &e, src, dst, 64, |m| msg.emit(m, 0))
        .expect("sized above");
    f.truncate(n);
    f
}

/// A TCP segment from the guest, built field by field: state what differs.
#[derive(Clone, Debug)]
pub struct TcpSeg {
    /// Source address (the guest's).
    pub src: core::net::IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: core::net::IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: crate::wire::tcp::TcpFlags,
    /// Window field as sent.
    pub window: u16,
    /// Raw option bytes (a multiple of 4).
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// An IPv4 TCP segment from `src:sport` to `dst:dport` with ACK set, window
/// 65535, no options, no payload.
pub fn tcp4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> TcpSeg {
    TcpSeg {
        src: src.into(),
        sport,
        dst: dst.into(),
        dport,
        seq: 0,
        ack: 0,
        flags: crate::wire::tcp::TcpFlags::ACK,
        window: 65535,
        options: Vec::new(),
        payload: Vec::new(),
    }
}

/// As [`tcp4`], over IPv6.
pub fn tcp6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16) -> TcpSeg {
    TcpSeg {
        src: src.into(),
        dst: dst.into(),
        ..tcp4(Ipv4Addr::UNSPECIFIED, sport, Ipv4Addr::UNSPECIFIED, dport)
    }
}

impl TcpSeg {
    /// A SYN (no ACK) with MSS 1460 and window scale 7.
    pub fn syn(mut self) -> Self {
        self.flags = crate::wire::tcp::TcpFlags::SYN;
        self.options = crate::wire::tcp::TcpOptionsWriter::syn(1460, Some(7), false, None)
            .as_bytes()
            .to_vec();
        self
    }
    /// Set the sequence number.
    pub fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }
    /// Set the acknowledgment number (and the ACK flag).
    pub fn ack(mut self, ack: u32) -> Self {
        self.ack = ack;
        self.flags |= crate::wire::tcp::TcpFlags::ACK;
        self
    }
    /// Set the flags exactly.
    pub fn flags(mut self, f: crate::wire::tcp::TcpFlags) -> Self {
        self.flags = f;
        self
    }
    /// Set the window field.
    pub fn window(mut self, w: u16) -> Self {
        self.window = w;
        self
    }
    /// Set the payload.
    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }
    /// Set the options.
    pub fn options(mut self, o: &[u8]) -> Self {
        self.options = o.to_vec();
        self
    }
    /// The Ethernet frame.
    pub fn build(&self) -> Vec<u8> {
        use crate::wire::tcp::{SeqNum, TcpRepr};
        use crate::wire::{checksum, ip_proto, ipv4::Ipv4Repr, ipv6::Ipv6Repr};
        let tcp = TcpRepr {
            src_port: self.sport,
            dst_port: self.dport,
            seq: SeqNum(self.seq),
            ack: SeqNum(self.ack),
            flags: self.flags,
            window: self.window,
            urgent: 0,
            checksum: 0,
            options: &self.options,
        };
        let l4_len = tcp.buffer_len() + self.payload.len();
        let mut l4 = vec![0u8; l4_len];
        match (self.src, self.dst) {
            (core::net::IpAddr::V4(s), core::net::IpAddr::V4(d)) => {
                let pseudo = checksum::pseudo_header_v4(s, d, ip_proto::TCP, l4_len as u16);
                tcp.emit_segment(&mut l4, &self.payload, pseudo)
                    .expect("sized");
                let ip = Ipv4Repr::new(s, d, ip_proto::TCP, 64);
                let mut pkt = vec![0u8; ip.buffer_len() + l4_len];
                let hl = ip.emit_with_checksum(&mut pkt, l4_len).expect("sized");
                pkt[hl..].copy_from_slice(&l4);
                eth(
                    crate::config::DEFAULT_OUR_MAC,
                    GUEST_MAC,
                    ethertype::IPV4,
                    &pkt,
                )
            }
            (core::net::IpAddr::V6(s), core::net::IpAddr::V6(d)) => {
                let pseudo = checksum::pseudo_header_v6(&s, &d, ip_proto::TCP, l4_len as u32);
                tcp.emit_segment(&mut l4, &self.payload, pseudo)
                    .expect("sized");
                let ip = Ipv6Repr::new(s, d, ip_proto::TCP, 64);
                let mut pkt = vec![0u8; ip.buffer_len() + l4_len];
                let hl = ip.emit_with_len(&mut pkt, l4_len).expect("sized");
                pkt[hl..].copy_from_slice(&l4);
                eth(
                    crate::config::DEFAULT_OUR_MAC,
                    GUEST_MAC,
                    ethertype::IPV6,
                    &pkt,
                )
            }
            _ => panic!("mixed address families"),
        }
    }
}

/// A TCP segment to the guest, decoded for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpOut {
    /// Source address.
    pub src: core::net::IpAddr,
    /// Destination address.
    pub dst: core::net::IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: crate::wire::tcp::TcpFlags,
    /// Window field.
    pub window: u16,
    /// MSS option, if any.
    pub mss: Option<u16>,
    /// Window scale option, if any.
    pub ws: Option<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Decode a frame to the guest as a TCP segment, verifying the IP and TCP
/// checksums.
///
/// # Panics
/// If it is not a well-formed TCP segment.
pub fn parse_tcp(frame: &[u8]) -> TcpOut {
    use crate::wire::tcp::TcpRepr;
    use crate::wire::{checksum, ip_proto, ipv4::Ipv4Repr, ipv6::Ipv6Repr};
    let (e, rest) = EthernetRepr::parse(frame).expect("ethernet");
    let (src, dst, l4, pseudo): (core::net::IpAddr, core::net::IpAddr, &[u8], u32) = match e
        .ethertype
    {
        ethertype::IPV4 => {
            let (ip, l4) = Ipv4Repr::parse(rest, true).expect("ipv4");
            assert_eq!(ip.protocol, ip_proto::TCP);
            let p = checksum::pseudo_header_v4(ip.src, ip.dst, ip_proto::TCP, l4.len() as u16);
            (ip.src.into(), ip.dst.into(), l4, p)
        }
        ethertype::IPV6 => {
            let (ip, l4) = Ipv6Repr::parse(rest).expect("ipv6");
            assert_eq!(ip.upper_protocol, ip_proto::TCP);
            let p = checksum::pseudo_header_v6(&ip.src, &ip.dst, ip_proto::TCP, l4.len() as u32);
            (ip.src.into(), ip.dst.into(), l4, p)
        }
        t => panic!("not IP: ethertype {t:#06x}"),
    };
    let (t, payload) = TcpRepr::parse(l4, Some(pseudo)).expect("tcp with a good checksum");
    TcpOut {
        src,
        dst,
        sport: t.src_port,
        dport: t.dst_port,
        seq: t.seq.0,
        ack: t.ack.0,
        flags: t.flags,
        window: t.window,
        mss: t.mss(),
        ws: t.window_scale(),
        payload: payload.to_vec(),
    }
}
