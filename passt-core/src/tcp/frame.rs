//! TCP segments to the guest, built in place in tx slots: Ethernet, IPv4 or
//! IPv6, TCP header (RFC 9293 §3.1), payload already in position.
//!
//! Data segments carry no options; SYN and SYN-ACK carry MSS and window scale
//! (RFC 9293 §3.7.1, RFC 7323 §2). Lengths and checksums are computed over
//! the bytes in the slot, so the payload a socket read put there is never
//! copied. For a guest whose device takes offloads, data segments may be
//! super-frames with a partial checksum instead ([`write_data`]).

use crate::addr::{InAny, MacAddr};
use crate::buf::{GsoType, Offload, OffloadFlags};
use crate::wire::checksum;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::ip_proto;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::tcp::{fill_checksum, SeqNum, TcpFlags, TcpRepr, HEADER_LEN};

use super::TcpKey;

/// Ethernet header length (untagged).
pub(crate) const ETH_LEN: usize = 14;
/// TTL / hop limit of segments we send.
const TTL: u8 = 64;

/// Length of the headers in front of the payload of a segment without TCP
/// options.
pub(crate) fn hdr_len(ipv6: bool) -> usize {
    ETH_LEN + if ipv6 { 40 } else { 20 } + HEADER_LEN
}

/// The fields of one segment to the guest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seg<'o> {
    pub(crate) seq: SeqNum,
    pub(crate) ack: SeqNum,
    pub(crate) flags: TcpFlags,
    pub(crate) window: u16,
    pub(crate) options: &'o [u8],
}

/// Write Ethernet, IP and TCP headers for `seg` from the remote side of `key`
/// to the guest into `buf`, whose bytes after the headers already hold
/// `payload_len` bytes of payload (`options` must be empty then). Returns
/// the frame length, or `None` if it does not fit.
pub(crate) fn write(
    buf: &mut [u8],
    macs: (MacAddr, MacAddr),
    key: &TcpKey,
    seg: &Seg<'_>,
    payload_len: usize,
) -> Option<usize> {
    write_data(buf, macs, key, seg, payload_len, None).map(|(len, _)| len)
}

/// As [`write()`], for a guest whose device takes offloads
/// (`Config::guest_gso`) when `gso_mss` is given: the TCP checksum field
/// holds only the pseudo-header sum (not complemented) and the returned
/// [`Offload`] says `NEEDS_CSUM` from the TCP header on (virtio 1.2
/// §5.1.6.2), so the checksum over the payload is never computed here; a
/// payload longer than `gso_mss` makes a super-frame (`GsoType::TcpV4` or
/// `TcpV6`) for the device to cut into `gso_mss`-byte segments, each with
/// this frame's headers (sequence numbers advanced, PSH and FIN only on the
/// last). Without `gso_mss`, the checksum is complete and the offload
/// default. Returns the frame length and its offload.
pub(crate) fn write_data(
    buf: &mut [u8],
    macs: (MacAddr, MacAddr),
    key: &TcpKey,
    seg: &Seg<'_>,
    payload_len: usize,
    gso_mss: Option<u16>,
) -> Option<(usize, Offload)> {
    let (dst_mac, src_mac) = macs;
    let ipv6 = !key.guest.addr.is_v4();
    let eth = EthernetRepr::new(
        dst_mac,
        src_mac,
        if ipv6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        },
    );
    eth.emit(buf).ok()?;
    let tcp = TcpRepr {
        src_port: key.remote.port,
        dst_port: key.guest.port,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        urgent: 0,
        checksum: 0,
        options: seg.options,
    };
    let l4_len = tcp.buffer_len().checked_add(payload_len)?;
    let ip_at = ETH_LEN;
    let (l4_at, pseudo) = match (key.remote.addr.v4(), key.guest.addr.v4()) {
        (Some(src), Some(dst)) => {
            let ip = Ipv4Repr::new(src, dst, ip_proto::TCP, TTL);
            let n = ip.emit_with_checksum(buf.get_mut(ip_at..)?, l4_len).ok()?;
            let pseudo =
                checksum::pseudo_header_v4(src, dst, ip_proto::TCP, u16::try_from(l4_len).ok()?);
            (ip_at + n, pseudo)
        }
        (None, None) => {
            let (src, dst) = (key.remote.addr.0, key.guest.addr.0);
            let ip = Ipv6Repr::new(src, dst, ip_proto::TCP, TTL);
            let n = ip.emit_with_len(buf.get_mut(ip_at..)?, l4_len).ok()?;
            let pseudo = checksum::pseudo_header_v6(&src, &dst, ip_proto::TCP, l4_len as u32);
            (ip_at + n, pseudo)
        }
        _ => return None,
    };
    let seg_bytes = buf.get_mut(l4_at..l4_at.checked_add(l4_len)?)?;
    let hl = tcp.emit(seg_bytes).ok()?;
    let Some(mss) = gso_mss else {
        fill_checksum(seg_bytes, pseudo).ok()?;
        return Some((l4_at + l4_len, Offload::default()));
    };
    // The folded, uncomplemented pseudo-header sum: what the device adds
    // the segment's bytes to (virtio 1.2 §5.1.6.2).
    let partial = !checksum::finish(pseudo);
    seg_bytes
        .get_mut(CSUM_OFFSET..CSUM_OFFSET + 2)?
        .copy_from_slice(&partial.to_be_bytes());
    let gso = if payload_len > usize::from(mss) {
        if ipv6 {
            GsoType::TcpV6
        } else {
            GsoType::TcpV4
        }
    } else {
        GsoType::None
    };
    let offload = Offload {
        flags: OffloadFlags::NEEDS_CSUM,
        gso,
        hdr_len: u16::try_from(l4_at + hl).ok()?,
        gso_size: if gso == GsoType::None { 0 } else { mss },
        csum_start: u16::try_from(l4_at).ok()?,
        csum_offset: CSUM_OFFSET as u16,
    };
    Some((l4_at + l4_len, offload))
}

/// Offset of the checksum field in the TCP header (RFC 9293 §3.1).
const CSUM_OFFSET: usize = 16;

/// Whether an address can be the far end of a guest connection: unicast,
/// not unspecified.
pub(crate) fn is_unicast(a: &InAny) -> bool {
    match a.v4() {
        Some(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        None => !(a.0.is_unspecified() || a.0.is_multicast()),
    }
}
