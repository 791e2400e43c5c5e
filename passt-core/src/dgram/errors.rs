//! Host ICMP errors to the guest, shared by UDP and echo flows: the
//! offending datagram rebuilt as the guest sent it and quoted in the same
//! ICMP or ICMPv6 error, from the router that sent it (see [`crate::udp`],
//! "Errors"), and the IPv4 ICMP frame builder UDP's port unreachable uses
//! too.

use crate::addr::{InAny, SockAddrAny};
use crate::buf::{TxRing, TxStorage};
use crate::contract::cx::Cx;
use crate::contract::{DropReason, HostError};
use crate::dgram::recv::RecvBatch;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::icmp::{icmp_type, HEADER_LEN};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{checksum, frame, ip_proto, Result as WireResult, WireError};

/// TTL / hop limit of the errors we build.
const TTL: u8 = 64;

/// An Ethernet + IPv4 + ICMP frame: `body` writes the whole message after
/// the headers (type, code, rest, data) and returns its length; the ICMP
/// checksum (RFC 792, no pseudo-header) and the IPv4 header follow.
///
/// # Errors
/// [`WireError::BufferTooSmall`] if the headers do not fit, what `body`
/// returns, [`WireError::BadLength`] for a message shorter than its header
/// or longer than the space or an IPv4 datagram.
pub(crate) fn icmp4_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    body: impl FnOnce(&mut [u8]) -> WireResult<usize>,
) -> WireResult<usize> {
    let eth = EthernetRepr {
        ethertype: ethertype::IPV4,
        ..*eth
    };
    let el = eth.buffer_len();
    let ip = Ipv4Repr::new(src, dst, ip_proto::ICMP, TTL);
    let at = el + ip.buffer_len();
    let space = buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
    let room = space.len();
    let len = body(space)?;
    if !(HEADER_LEN..=65535 - 20).contains(&len) || len > room {
        return Err(WireError::BadLength);
    }
    let msg = buf.get_mut(at..at + len).ok_or(WireError::BufferTooSmall)?;
    msg[2..4].fill(0);
    let c = checksum::checksum(msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    eth.emit(buf)?;
    ip.emit_with_checksum(buf.get_mut(el..).ok_or(WireError::BufferTooSmall)?, len)?;
    Ok(at + len)
}

/// The offending datagram of a host error as the guest sent it: what
/// [`host_error_frame`] rebuilds the quote from.
pub(crate) struct Quote {
    /// The guest's end (port 0 for echo).
    pub(crate) guest: SockAddrAny,
    /// The remote end as the guest addressed it.
    pub(crate) remote: SockAddrAny,
    /// The remote's address on the host (an offender equal to it is the
    /// destination itself, shown as `remote`).
    pub(crate) host_remote: InAny,
    /// The guest's TTL / hop limit.
    pub(crate) ttl: u8,
    /// UDP: the datagram's UDP length (header included); the UDP header
    /// is rebuilt in front of the quoted payload.
    pub(crate) udp_len: Option<u16>,
    /// Echo: the guest's identifier, put back in the quoted request.
    pub(crate) echo_ident: Option<u16>,
}

/// Most bytes of the offending datagram an IPv4 error quotes: as many as
/// fit a 576-byte datagram with the outer IP and ICMP headers (RFC 1812
/// §4.3.2.3; RFC 792 asks for the IP header and 8 bytes at least).
pub(crate) const QUOTE_MAX4: usize = 576 - 20 - 8;
/// The same for ICMPv6: the error must not exceed the minimum IPv6 MTU,
/// 1280 bytes (RFC 4443 §3).
pub(crate) const QUOTE_MAX6: usize = 1280 - 40 - 8;

/// Turn host error `e` for the datagram `q` describes, whose quoted bytes
/// the [`crate::SockOp::RecvErr`] of `b` wrote, into the same ICMP or ICMPv6
/// error to the guest, and publish it: from the offender as the guest
/// sees it (the remote's address when the destination itself answered),
/// with the offending datagram rebuilt in front of the quoted bytes
/// (RFC 792: type 3 destination unreachable with its code and, for code
/// 4, the next-hop MTU of RFC 1191 §4; type 11 time exceeded. RFC 4443
/// §3.1-3.3: destination unreachable, packet too big with its MTU, time
/// exceeded). Errors of other types, of the other family, or from an
/// offender the guest has no address for are dropped. Whether a frame
/// was published.
pub(crate) fn host_error_frame<S: TxStorage>(
    cx: &mut Cx<'_>,
    b: &mut RecvBatch,
    q: &Quote,
    e: &HostError,
    tx: &mut TxRing<S>,
) -> bool {
    let ipv6 = !q.guest.addr.is_v4();
    // ICMP 3 and 11; ICMPv6 1 (unreachable), 2 (too big), 3 (time exceeded).
    let known = matches!(
        (ipv6, e.icmp6, e.icmp_type),
        (
            false,
            false,
            icmp_type::DEST_UNREACHABLE | icmp_type::TIME_EXCEEDED
        ) | (true, true, 1..=3)
    );
    let offender = if e.offender == q.host_remote {
        Some(q.remote.addr)
    } else {
        crate::flow::fwd::host_to_guest(cx.config, e.offender)
    };
    let (true, Some(offender)) = (known, offender) else {
        b.skip();
        cx.count_drop(DropReason::Unsupported);
        return false;
    };
    let len = e.len as usize;
    let l4_hdr = if q.udp_len.is_some() { 8 } else { 0 };
    if q.echo_ident.is_some() && len < HEADER_LEN {
        b.skip();
        cx.count_drop(DropReason::Truncated);
        return false;
    }
    let eth = EthernetRepr::new(cx.guest_mac(), cx.config.our_mac, 0);
    let Some(buf) = b.place(tx, len) else {
        cx.count_drop(DropReason::TooBig);
        return false;
    };
    let proto = match (q.udp_len.is_some(), ipv6) {
        (true, _) => ip_proto::UDP,
        (false, false) => ip_proto::ICMP,
        (false, true) => ip_proto::ICMPV6,
    };
    // The offending datagram's transport length: UDP's as sent, echo's
    // as quoted.
    let l4_len = q.udp_len.map_or(len, usize::from);
    let (typ, code, info) = (e.icmp_type, e.code, e.info);
    let body = |m: &mut [u8], ip_len: usize| -> WireResult<usize> {
        let total = HEADER_LEN + ip_len + l4_hdr + len;
        let m = m.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        m[0] = typ;
        m[1] = code;
        m[4..8].fill(0);
        match (ipv6, typ, code) {
            // Next-hop MTU (RFC 1191 §4).
            (false, icmp_type::DEST_UNREACHABLE, 4) => {
                let mtu = u16::try_from(info).unwrap_or(u16::MAX);
                m[6..8].copy_from_slice(&mtu.to_be_bytes());
            }
            // Packet too big: the MTU (RFC 4443 §3.2).
            (true, 2, _) => m[4..8].copy_from_slice(&info.to_be_bytes()),
            _ => {}
        }
        let quote = &mut m[HEADER_LEN..];
        let hl = if ipv6 {
            let ip =
                crate::wire::ipv6::Ipv6Repr::new(q.guest.addr.0, q.remote.addr.0, proto, q.ttl);
            ip.emit_with_len(quote, l4_len)?
        } else {
            let (g, r) = (
                q.guest.addr.v4().ok_or(WireError::Unsupported)?,
                q.remote.addr.v4().ok_or(WireError::Unsupported)?,
            );
            Ipv4Repr::new(g, r, proto, q.ttl).emit_with_checksum(quote, l4_len)?
        };
        let l4 = quote.get_mut(hl..).ok_or(WireError::BufferTooSmall)?;
        if let Some(udp_len) = q.udp_len {
            l4[0..2].copy_from_slice(&q.guest.port.to_be_bytes());
            l4[2..4].copy_from_slice(&q.remote.port.to_be_bytes());
            l4[4..6].copy_from_slice(&udp_len.to_be_bytes());
            l4[6..8].fill(0);
        }
        if let Some(ident) = q.echo_ident {
            // The request as the guest sent it: its identifier back, the
            // checksum adjusted for it (RFC 1624 eqn. 3).
            let old = u16::from_be_bytes([l4[4], l4[5]]);
            let sum = u16::from_be_bytes([l4[2], l4[3]]);
            let mut acc = u32::from(!sum) + u32::from(!old) + u32::from(ident);
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            l4[2..4].copy_from_slice(&(!(acc as u16)).to_be_bytes());
            l4[4..6].copy_from_slice(&ident.to_be_bytes());
        }
        Ok(total)
    };
    let built = match (offender.v4(), q.guest.addr.v4()) {
        (Some(o), Some(g)) if !ipv6 => icmp4_frame(buf, &eth, o, g, |m| body(m, 20)),
        (None, None) if ipv6 => {
            frame::icmpv6(buf, &eth, offender.0, q.guest.addr.0, TTL, |m| body(m, 40))
        }
        _ => Err(WireError::Unsupported),
    };
    match built {
        Ok(n) if b.commit(tx, n) => true,
        _ => {
            cx.count_drop(DropReason::Unsupported);
            false
        }
    }
}
