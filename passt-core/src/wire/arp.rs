//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! Only the one combination that exists on our link is parsed: hardware type
//! Ethernet (1), protocol type IPv4 (0x0800), address lengths 6 and 4. Anything
//! else is [`WireError::Unsupported`]. The 28-byte body is fixed, so parsing
//! and emitting are exact inverses; Ethernet padding after it is ignored.

use core::net::Ipv4Addr;

use zerocopy::byteorder::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Result, WireError};
use crate::addr::MacAddr;

/// ARP operation codes (RFC 826; IANA "ARP operation codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    /// 1: who has `tpa`? tell `spa`.
    Request,
    /// 2: `spa` is at `sha`.
    Reply,
    /// Any other operation (RARP, InARP...), kept for exact re-emission.
    Other(u16),
}

impl ArpOp {
    fn from_u16(v: u16) -> Self {
        match v {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            v => ArpOp::Other(v),
        }
    }

    fn to_u16(self) -> u16 {
        match self {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
            ArpOp::Other(v) => v,
        }
    }
}

/// The ARP body for Ethernet and IPv4, as it sits in a frame.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct ArpHeader {
    /// Hardware type: 1 for Ethernet.
    pub htype: U16,
    /// Protocol type: 0x0800 for IPv4.
    pub ptype: U16,
    /// Hardware address length: 6.
    pub hlen: u8,
    /// Protocol address length: 4.
    pub plen: u8,
    /// Operation.
    pub op: U16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: [u8; 4],
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: [u8; 4],
}

/// Length of the ARP body for Ethernet and IPv4.
pub const ARP_LEN: usize = core::mem::size_of::<ArpHeader>();

/// A parsed ARP message for Ethernet and IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address (zero in requests as a rule).
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl ArpRepr {
    /// Parse the ARP body at the start of `payload` (trailing padding ignored).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than 28 bytes,
    /// [`WireError::Unsupported`] for other hardware or protocol types or
    /// address lengths.
    pub fn parse(payload: &[u8]) -> Result<ArpRepr> {
        let (h, _padding) =
            ArpHeader::ref_from_prefix(payload).map_err(|_| WireError::Truncated)?;
        if h.htype.get() != 1 || h.ptype.get() != 0x0800 || h.hlen != 6 || h.plen != 4 {
            return Err(WireError::Unsupported);
        }
        Ok(ArpRepr {
            op: ArpOp::from_u16(h.op.get()),
            sha: MacAddr(h.sha),
            spa: Ipv4Addr::from(h.spa),
            tha: MacAddr(h.tha),
            tpa: Ipv4Addr::from(h.tpa),
        })
    }

    /// Whether this announces the sender's own address (gratuitous ARP:
    /// sender and target protocol addresses equal), as RFC 5227 §3 uses it.
    pub fn is_gratuitous(&self) -> bool {
        self.spa == self.tpa
    }

    /// Whether this is an ARP probe (RFC 5227 §2.1.1): a request with an
    /// all-zero sender protocol address.
    pub fn is_probe(&self) -> bool {
        self.op == ArpOp::Request && self.spa.is_unspecified()
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        ARP_LEN
    }

    /// Write the 28-byte body into `buf`.
    ///
    /// # Errors
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than 28 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let h = ArpHeader {
            htype: U16::new(1),
            ptype: U16::new(0x0800),
            hlen: 6,
            plen: 4,
            op: U16::new(self.op.to_u16()),
            sha: self.sha.0,
            spa: self.spa.octets(),
            tha: self.tha.0,
            tpa: self.tpa.octets(),
        };
        h.write_to_prefix(buf)
            .map_err(|_| WireError::BufferTooSmall)?;
        Ok(ARP_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{ethertype, EthernetRepr};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Captured with tcpdump -xx on a veth between two test namespaces.
    const REQUEST: &str = "ffffffffffff 020000000001 0806 0001 0800 06 04 0001
        020000000001 c0000201 000000000000 c0000202";
    const REPLY: &str = "020000000001 020000000002 0806 0001 0800 06 04 0002
        020000000002 c0000202 020000000001 c0000201";
    // arping -U: gratuitous request, padded by the kernel to 60 bytes.
    const GRATUITOUS: &str = "ffffffffffff 020000000001 0806 0001 0800 06 04 0001
        020000000001 c0000201 ffffffffffff c0000201 000000000000000000000000000000000000";

    fn body(frame: &[u8]) -> &[u8] {
        let (e, payload) = EthernetRepr::parse(frame).unwrap();
        assert_eq!(e.ethertype, ethertype::ARP);
        payload
    }

    #[test]
    fn captured_messages_round_trip() {
        for (fixture, op) in [
            (REQUEST, ArpOp::Request),
            (REPLY, ArpOp::Reply),
            (GRATUITOUS, ArpOp::Request),
        ] {
            let f = hex(fixture);
            let p = body(&f);
            let a = ArpRepr::parse(p).unwrap();
            assert_eq!(a.op, op);
            let mut out = [0u8; ARP_LEN];
            assert_eq!(a.emit(&mut out), Ok(ARP_LEN));
            assert_eq!(&out[..], &p[..ARP_LEN]);
        }
        let a = ArpRepr::parse(body(&hex(REQUEST))).unwrap();
        assert_eq!(a.sha, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(a.spa, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(a.tpa, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(a.tha, MacAddr::ZERO);
        assert!(!a.is_gratuitous() && !a.is_probe());
        assert!(ArpRepr::parse(body(&hex(GRATUITOUS)))
            .unwrap()
            .is_gratuitous());
    }

    #[test]
    fn malformed_messages() {
        let f = hex(REQUEST);
        let p = body(&f);
        for cut in 0..ARP_LEN {
            assert_eq!(ArpRepr::parse(&p[..cut]), Err(WireError::Truncated));
        }
        for (at, val) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut m = p.to_vec();
            m[at] = val;
            assert_eq!(ArpRepr::parse(&m), Err(WireError::Unsupported), "byte {at}");
        }
        let mut m = p.to_vec();
        m[7] = 8; // InARP request: parsed, kept as Other for exact re-emission.
        assert_eq!(ArpRepr::parse(&m).unwrap().op, ArpOp::Other(8));
        let mut short = [0u8; 27];
        assert_eq!(
            ArpRepr::parse(&m).unwrap().emit(&mut short),
            Err(WireError::BufferTooSmall)
        );
    }
}
