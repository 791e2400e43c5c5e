//! Guest transport packets as the dispatcher hands them to the transports:
//! addresses, protocol, the transport bytes and where they lie in the rx
//! batch (so that operations can name guest payload by [`RxSpan`]).

use crate::addr::InAny;
use crate::buf::RxSpan;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::ipv6::Ipv6Repr;

/// A transport packet from the guest, as the dispatcher hands it on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct L4Packet<'a> {
    /// Source address (IPv4 v4-mapped).
    pub(crate) src: InAny,
    /// Destination address.
    pub(crate) dst: InAny,
    /// Transport protocol ([`ip_proto`]).
    pub(crate) protocol: u8,
    /// The transport header and payload.
    pub(crate) l4: &'a [u8],
    /// Where `l4` lies in the batch, for operations naming guest payload.
    pub(crate) span: RxSpan,
    /// Whether checksums the dispatcher did not check must be verified.
    pub(crate) verify: bool,
    /// The guest's IPv4 TTL or IPv6 hop limit, carried to the host socket.
    pub(crate) ttl: u8,
}

impl L4Packet<'_> {
    /// The span of `sub`, a sub-slice of [`L4Packet::l4`].
    pub(crate) fn span_of(&self, sub: &[u8]) -> Option<RxSpan> {
        let off = (sub.as_ptr() as usize).checked_sub(self.l4.as_ptr() as usize)?;
        if off.checked_add(sub.len())? > self.l4.len() {
            return None;
        }
        Some(RxSpan {
            frame: self.span.frame,
            offset: self.span.offset.checked_add(u32::try_from(off).ok()?)?,
            len: u32::try_from(sub.len()).ok()?,
        })
    }
}

/// The span of `l4` within frame `i` (`l4` being a sub-slice of `frame`).
fn l4_span(i: usize, frame: &[u8], l4: &[u8]) -> RxSpan {
    let off = (l4.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize);
    RxSpan {
        frame: i as u32,
        offset: off as u32,
        len: l4.len() as u32,
    }
}

/// An IPv4 transport packet for the dispatcher.
pub(crate) fn l4_packet4<'a>(
    ip: &Ipv4Repr<'_>,
    i: usize,
    frame: &[u8],
    l4: &'a [u8],
    verify: bool,
) -> L4Packet<'a> {
    L4Packet {
        src: ip.src.into(),
        dst: ip.dst.into(),
        protocol: ip.protocol,
        l4,
        span: l4_span(i, frame, l4),
        verify,
        ttl: ip.ttl,
    }
}

/// An IPv6 transport packet for the dispatcher.
pub(crate) fn l4_packet6<'a>(
    ip: &Ipv6Repr<'_>,
    i: usize,
    frame: &[u8],
    l4: &'a [u8],
    verify: bool,
) -> L4Packet<'a> {
    L4Packet {
        src: ip.src.into(),
        dst: ip.dst.into(),
        protocol: ip.upper_protocol,
        l4,
        span: l4_span(i, frame, l4),
        verify,
        ttl: ip.hop_limit,
    }
}
