//! Whole frames built in place: Ethernet, then IPv4 or IPv6, then UDP or
//! ICMPv6, around a payload that a closure writes straight into its final
//! position in the tx slot. Lengths and checksums are filled in afterwards,
//! so nothing is copied and nothing is allocated.
//!
//! Used by the local services (DHCP, DHCPv6, NDP) and by datagram
//! translation. The Ethernet header's addresses and VLAN tags come from the
//! caller; its EtherType is set to match the IP version built.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::ethernet::{ethertype, EthernetRepr};
use super::ipv4::Ipv4Repr;
use super::ipv6::Ipv6Repr;
use super::{checksum, ip_proto, Result, WireError};

/// Length of a UDP header.
const UDP_LEN: usize = 8;

/// An Ethernet + IPv4 + UDP frame with the payload written by `payload`,
/// which gets the space after the headers and returns the bytes it wrote.
///
/// The IPv4 header has DF set, identification 0 and the given TTL; the UDP
/// checksum is computed (RFC 768) and a zero result sent as 0xffff.
///
/// # Errors
/// [`WireError::BufferTooSmall`] if the headers do not fit, whatever
/// `payload` returns, and [`WireError::BadLength`] if the datagram would
/// exceed 65535 bytes.
#[allow(clippy::too_many_arguments)]
pub fn udp4(
    buf: &mut [u8],
    eth: &EthernetRepr,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    ttl: u8,
    payload: impl FnOnce(&mut [u8]) -> Result<usize>,
) -> Result<usize> {
    let eth = &EthernetRepr {
        ethertype: ethertype::IPV4,
        ..*eth
    };
    let el = eth.buffer_len();
    let ip = Ipv4Repr::new(src, dst, ip_proto::UDP, ttl);
    let il = ip.buffer_len();
    let at = el + il + UDP_LEN;
    let space = buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
    let room = space.len();
    let plen = payload(space)?;
    if plen > room {
        return Err(WireError::BadLength);
    }
    let udp_len = u16::try_from(UDP_LEN + plen).map_err(|_| WireError::BadLength)?;
    if usize::from(udp_len) + il > 65535 {
        return Err(WireError::BadLength);
    }
    eth.emit(buf)?;
    let l4 = buf
        .get_mut(el + il..at + plen)
        .ok_or(WireError::BufferTooSmall)?;
    let pseudo = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, udp_len);
    write_udp(l4, sport, dport, udp_len, pseudo);
    ip.emit_with_checksum(
        buf.get_mut(el..).ok_or(WireError::BufferTooSmall)?,
        usize::from(udp_len),
    )?;
    Ok(at + plen)
}

/// An Ethernet + IPv6 + UDP frame; see [`udp4`]. The UDP checksum is
/// mandatory over IPv6 (RFC 8200 §8.1).
///
/// # Errors
/// As for [`udp4`].
#[allow(clippy::too_many_arguments)]
pub fn udp6(
    buf: &mut [u8],
    eth: &EthernetRepr,
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    hop_limit: u8,
    payload: impl FnOnce(&mut [u8]) -> Result<usize>,
) -> Result<usize> {
    let eth = &EthernetRepr {
        ethertype: ethertype::IPV6,
        ..*eth
    };
    let el = eth.buffer_len();
    let ip = Ipv6Repr::new(src, dst, ip_proto::UDP, hop_limit);
    let il = ip.buffer_len();
    let at = el + il + UDP_LEN;
    let space = buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
    let room = space.len();
    let plen = payload(space)?;
    if plen > room {
        return Err(WireError::BadLength);
    }
    let udp_len = u16::try_from(UDP_LEN + plen).map_err(|_| WireError::BadLength)?;
    eth.emit(buf)?;
    let l4 = buf
        .get_mut(el + il..at + plen)
        .ok_or(WireError::BufferTooSmall)?;
    let pseudo = checksum::pseudo_header_v6(&src, &dst, ip_proto::UDP, u32::from(udp_len));
    write_udp(l4, sport, dport, udp_len, pseudo);
    ip.emit_with_len(
        buf.get_mut(el..).ok_or(WireError::BufferTooSmall)?,
        usize::from(udp_len),
    )?;
    Ok(at + plen)
}

/// An Ethernet + IPv6 + ICMPv6 frame: `body` writes the whole ICMPv6
/// message (type, code, any checksum, rest) and returns its length; the
/// checksum is then computed over the pseudo-header (RFC 4443 §2.3).
///
/// # Errors
/// As for [`udp4`].
pub fn icmpv6(
    buf: &mut [u8],
    eth: &EthernetRepr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    body: impl FnOnce(&mut [u8]) -> Result<usize>,
) -> Result<usize> {
    let eth = &EthernetRepr {
        ethertype: ethertype::IPV6,
        ..*eth
    };
    let el = eth.buffer_len();
    let ip = Ipv6Repr::new(src, dst, ip_proto::ICMPV6, hop_limit);
    let at = el + ip.buffer_len();
    let space = buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
    let room = space.len();
    let len = body(space)?;
    if !(4..=65535).contains(&len) || len > room {
        return Err(WireError::BadLength);
    }
    eth.emit(buf)?;
    let msg = buf.get_mut(at..at + len).ok_or(WireError::BufferTooSmall)?;
    msg[2..4].fill(0);
    let pseudo = checksum::pseudo_header_v6(&src, &dst, ip_proto::ICMPV6, len as u32);
    let csum = checksum::finish(checksum::sum(pseudo, msg));
    msg[2..4].copy_from_slice(&csum.to_be_bytes());
    ip.emit_with_len(buf.get_mut(el..).ok_or(WireError::BufferTooSmall)?, len)?;
    Ok(at + len)
}

/// Fill a UDP header in front of the payload already in `l4`.
fn write_udp(l4: &mut [u8], sport: u16, dport: u16, len: u16, pseudo: u32) {
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&len.to_be_bytes());
    l4[6..8].fill(0);
    let c = match checksum::finish(checksum::sum(pseudo, l4)) {
        0 => 0xffff,
        c => c,
    };
    l4[6..8].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::MacAddr;
    use crate::wire::icmpv6::Icmpv6Packet;
    use crate::wire::udp::UdpRepr;

    fn eth(t: u16) -> EthernetRepr {
        EthernetRepr::new(MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]), t)
    }

    #[test]
    fn udp4_frames_parse_back_with_good_checksums() {
        let mut buf = [0u8; 200];
        let (s, d) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 10));
        let n = udp4(&mut buf, &eth(ethertype::IPV4), s, 67, d, 68, 64, |p| {
            p[..5].copy_from_slice(b"hello");
            Ok(5)
        })
        .unwrap();
        assert_eq!(n, 14 + 20 + 8 + 5);
        let (ip, l4) = Ipv4Repr::parse(&buf[14..n], true).unwrap();
        assert_eq!(
            (ip.src, ip.dst, ip.ttl, ip.protocol),
            (s, d, 64, ip_proto::UDP)
        );
        let pseudo = checksum::pseudo_header_v4(s, d, ip_proto::UDP, l4.len() as u16);
        let u = UdpRepr::parse(l4, Some(pseudo), false).unwrap();
        assert_eq!((u.src_port, u.dst_port, u.payload), (67, 68, &b"hello"[..]));
        assert_eq!(
            udp4(
                &mut buf[..40],
                &eth(ethertype::IPV4),
                s,
                1,
                d,
                2,
                64,
                |_| Ok(0)
            ),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn udp6_and_icmpv6_frames_parse_back() {
        let mut buf = [0u8; 200];
        let s: Ipv6Addr = "fe80::1".parse().unwrap();
        let d: Ipv6Addr = "ff02::1".parse().unwrap();
        let n = udp6(&mut buf, &eth(ethertype::IPV6), s, 547, d, 546, 255, |p| {
            p[..2].copy_from_slice(&[7, 1]);
            Ok(2)
        })
        .unwrap();
        let (ip, l4) = Ipv6Repr::parse(&buf[14..n]).unwrap();
        let pseudo = checksum::pseudo_header_v6(&ip.src, &ip.dst, ip_proto::UDP, l4.len() as u32);
        assert_eq!(
            UdpRepr::parse(l4, Some(pseudo), true).unwrap().payload,
            &[7, 1]
        );

        let n = icmpv6(&mut buf, &eth(ethertype::IPV6), s, d, 255, |m| {
            // Echo request, id 1, seq 2, no data; checksum left to us.
            m[..8].copy_from_slice(&[128, 0, 0xaa, 0xbb, 0, 1, 0, 2]);
            Ok(8)
        })
        .unwrap();
        let (ip, l4) = Ipv6Repr::parse(&buf[14..n]).unwrap();
        assert_eq!(ip.hop_limit, 255);
        let pseudo =
            checksum::pseudo_header_v6(&ip.src, &ip.dst, ip_proto::ICMPV6, l4.len() as u32);
        Icmpv6Packet::parse(l4, Some(pseudo)).expect("checksum verifies");
    }
}
