//! UDP datagrams (RFC 768; IPv6 checksum rules from RFC 8200 §8.1).
//!
//! # Theory of operation
//!
//! A datagram is an 8-byte [`UdpHeader`] and a payload. The IP layer has
//! already cut the packet to its own length field (dropping any Ethernet
//! padding), so the UDP length field must equal the bytes handed over; a
//! disagreement either way is [`WireError::BadLength`]. The checksum covers
//! a pseudo-header that the caller supplies as a partial sum, keeping this
//! module family-agnostic; a checksum of zero means "not computed" over
//! IPv4 (RFC 768) and is forbidden over IPv6 (RFC 8200 §8.1).
//!
//! [`UdpRepr`] keeps the checksum as found and borrows the payload, so
//! [`UdpRepr::emit`] gives back the parsed datagram byte for byte, while
//! [`UdpRepr::emit_with_checksum`] builds a new one, computing the length
//! and the checksum (a computed zero is sent as 0xffff, RFC 768).
//!
//! # Limits
//!
//! A payload longer than 65527 bytes cannot be described by the 16-bit
//! length field and is refused on emission (IPv6 jumbograms, RFC 2675, are
//! not supported).

use zerocopy::byteorder::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::wire::checksum;
use crate::wire::{Result, WireError};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// UDP header as it sits in a frame (RFC 768).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct UdpHeader {
    /// Source port (0 if unused).
    pub src_port: U16,
    /// Destination port.
    pub dst_port: U16,
    /// Length of header and payload in bytes.
    pub len: U16,
    /// Checksum over pseudo-header, header and payload; 0 for none (IPv4).
    pub checksum: U16,
}

/// A parsed UDP datagram, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Checksum as found (ignored by [`UdpRepr::emit_with_checksum`]).
    pub checksum: u16,
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parse a whole datagram, `datagram` being exactly the IP payload.
    ///
    /// `pseudo` is the pseudo-header partial sum for `datagram.len()`
    /// bytes ([`checksum::pseudo_header_v4`] or
    /// [`checksum::pseudo_header_v6`]), or `None` to skip verification.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] below 8 bytes; [`WireError::BadLength`] if
    /// the length field is below 8 or differs from `datagram.len()`;
    /// [`WireError::Malformed`] for a zero checksum over IPv6 (checked
    /// even without `pseudo`); [`WireError::BadChecksum`] if a non-zero
    /// checksum does not verify.
    pub fn parse(datagram: &'a [u8], pseudo: Option<u32>, is_ipv6: bool) -> Result<UdpRepr<'a>> {
        let (hdr, payload) =
            UdpHeader::ref_from_prefix(datagram).map_err(|_| WireError::Truncated)?;
        let len = usize::from(hdr.len.get());
        if len < HEADER_LEN || len != datagram.len() {
            return Err(WireError::BadLength);
        }
        let csum = hdr.checksum.get();
        if csum == 0 {
            if is_ipv6 {
                return Err(WireError::Malformed);
            }
        } else if let Some(p) = pseudo {
            if !checksum::verify(p, datagram) {
                return Err(WireError::BadChecksum);
            }
        }
        Ok(UdpRepr {
            src_port: hdr.src_port.get(),
            dst_port: hdr.dst_port.get(),
            checksum: csum,
            payload,
        })
    }

    /// Length of the datagram: header and payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Write header (checksum as held) and payload. Returns the length.
    ///
    /// # Errors
    ///
    /// [`WireError::BadLength`] if the payload is too long for the length
    /// field; [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`UdpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.emit_raw(buf, self.checksum)
    }

    /// Write header and payload and compute the checksum, `pseudo` being
    /// the pseudo-header partial sum for [`UdpRepr::buffer_len`] bytes. A
    /// computed zero is written as 0xffff (RFC 768). Returns the length.
    ///
    /// # Errors
    ///
    /// As [`UdpRepr::emit`].
    pub fn emit_with_checksum(&self, buf: &mut [u8], pseudo: u32) -> Result<usize> {
        let n = self.emit_raw(buf, 0)?;
        let dgram = buf.get_mut(..n).ok_or(WireError::BufferTooSmall)?;
        let c = match checksum::finish(checksum::sum(pseudo, dgram)) {
            0 => 0xffff,
            c => c,
        };
        let (hdr, _) = UdpHeader::mut_from_prefix(dgram).map_err(|_| WireError::BufferTooSmall)?;
        hdr.checksum = U16::new(c);
        Ok(n)
    }

    /// Write everything with the given checksum field.
    fn emit_raw(&self, buf: &mut [u8], csum: u16) -> Result<usize> {
        let total = self.buffer_len();
        let len = u16::try_from(total).map_err(|_| WireError::BadLength)?;
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        let (hdr, body) = UdpHeader::mut_from_prefix(out).map_err(|_| WireError::BufferTooSmall)?;
        *hdr = UdpHeader {
            src_port: U16::new(self.src_port),
            dst_port: U16::new(self.dst_port),
            len: U16::new(len),
            checksum: U16::new(csum),
        };
        body.copy_from_slice(self.payload);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    use crate::wire::ip_proto;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Captured with tcpdump between namespaces (python3 sockets).
    const A4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

    /// 192.0.2.1:60157 -> 198.51.100.2:5353 "ping4".
    const V4_REQ: &str = "eafd14e9000d00e570696e6734";
    /// The reply "PING4".
    const V4_REP: &str = "14e9eafd000d412550494e4734";
    /// 2001:db8:1::1:53003 -> 2001:db8:2::2:5353 "ping6".
    const V6_REQ: &str = "cf0b14e9000dab9670696e6736";
    /// The reply "PING6".
    const V6_REP: &str = "14e9cf0b000debd650494e4736";
    /// 192.0.2.1:40787 -> 198.51.100.2:5354 "nocsum", sent with SO_NO_CHECK.
    const V4_NOCSUM: &str = "9f5314ea000e00006e6f6373756d";

    fn p4(src: Ipv4Addr, dst: Ipv4Addr, d: &[u8]) -> u32 {
        checksum::pseudo_header_v4(src, dst, ip_proto::UDP, d.len() as u16)
    }

    fn p6(src: Ipv6Addr, dst: Ipv6Addr, d: &[u8]) -> u32 {
        checksum::pseudo_header_v6(&src, &dst, ip_proto::UDP, d.len() as u32)
    }

    /// (bytes, pseudo, is_ipv6) for every fixture.
    fn fixtures() -> Vec<(Vec<u8>, u32, bool)> {
        let mut v = Vec::new();
        for (f, fwd) in [(V4_REQ, true), (V4_REP, false), (V4_NOCSUM, true)] {
            let b = hex(f);
            let p = if fwd { p4(A4, B4, &b) } else { p4(B4, A4, &b) };
            v.push((b, p, false));
        }
        for (f, fwd) in [(V6_REQ, true), (V6_REP, false)] {
            let b = hex(f);
            let p = if fwd { p6(A6, B6, &b) } else { p6(B6, A6, &b) };
            v.push((b, p, true));
        }
        v
    }

    fn roundtrip(d: &[u8], r: &UdpRepr<'_>) {
        let mut out = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut out), Ok(d.len()));
        assert_eq!(out, d);
    }

    #[test]
    fn ipv4_fields_and_rebuild() {
        let d = hex(V4_REQ);
        let r = UdpRepr::parse(&d, Some(p4(A4, B4, &d)), false).unwrap();
        assert_eq!((r.src_port, r.dst_port), (60157, 5353));
        assert_eq!(r.checksum, 0x00e5);
        assert_eq!(r.payload, b"ping4");
        roundtrip(&d, &r);

        let d = hex(V4_REP);
        let pseudo = p4(B4, A4, &d);
        let r = UdpRepr::parse(&d, Some(pseudo), false).unwrap();
        assert_eq!((r.src_port, r.dst_port), (5353, 60157));
        assert_eq!(r.payload, b"PING4");
        roundtrip(&d, &r);
        let built = UdpRepr {
            src_port: 5353,
            dst_port: 60157,
            checksum: 0,
            payload: b"PING4",
        };
        let mut out = [0u8; 32];
        let n = built.emit_with_checksum(&mut out, pseudo).unwrap();
        assert_eq!(&out[..n], &d[..]);
    }

    #[test]
    fn ipv6_fields_and_rebuild() {
        let d = hex(V6_REQ);
        let pseudo = p6(A6, B6, &d);
        let r = UdpRepr::parse(&d, Some(pseudo), true).unwrap();
        assert_eq!((r.src_port, r.dst_port), (53003, 5353));
        assert_eq!(r.checksum, 0xab96);
        assert_eq!(r.payload, b"ping6");
        roundtrip(&d, &r);
        let mut out = [0u8; 32];
        let n = UdpRepr { checksum: 0, ..r }
            .emit_with_checksum(&mut out, pseudo)
            .unwrap();
        assert_eq!(&out[..n], &d[..]);

        let d = hex(V6_REP);
        let r = UdpRepr::parse(&d, Some(p6(B6, A6, &d)), true).unwrap();
        assert_eq!(r.payload, b"PING6");
        roundtrip(&d, &r);
        // The IPv4 pseudo-header does not verify an IPv6 datagram.
        assert_eq!(
            UdpRepr::parse(&d, Some(p4(B4, A4, &d)), true),
            Err(WireError::BadChecksum)
        );
    }

    #[test]
    fn zero_checksum() {
        let d = hex(V4_NOCSUM);
        // Over IPv4, "no checksum": accepted even with a pseudo-header.
        let r = UdpRepr::parse(&d, Some(p4(A4, B4, &d)), false).unwrap();
        assert_eq!(r.checksum, 0);
        assert_eq!((r.src_port, r.dst_port), (40787, 5354));
        assert_eq!(r.payload, b"nocsum");
        roundtrip(&d, &r);
        // Over IPv6 forbidden, verified or not.
        assert_eq!(
            UdpRepr::parse(&d, Some(p6(A6, B6, &d)), true),
            Err(WireError::Malformed)
        );
        assert_eq!(UdpRepr::parse(&d, None, true), Err(WireError::Malformed));
        // Rebuilding it computes a real checksum.
        let mut out = [0u8; 32];
        let n = r.emit_with_checksum(&mut out, p4(A4, B4, &d)).unwrap();
        let again = UdpRepr::parse(&out[..n], Some(p4(A4, B4, &d)), false).unwrap();
        assert_ne!(again.checksum, 0);
        assert_eq!(again.payload, b"nocsum");
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // With a zero payload word the checksum is c = !S; a payload word
        // of c makes the sum S + !S = 0xffff, whose checksum is zero.
        let base = UdpRepr {
            src_port: 1,
            dst_port: 2,
            checksum: 0,
            payload: &[0, 0],
        };
        let mut out = [0u8; 10];
        base.emit_with_checksum(&mut out, 0).unwrap();
        let c = u16::from_be_bytes([out[6], out[7]]);
        let payload = c.to_be_bytes();
        let r = UdpRepr {
            payload: &payload,
            ..base
        };
        r.emit_with_checksum(&mut out, 0).unwrap();
        assert_eq!(&out[6..8], &[0xff, 0xff]);
        assert!(checksum::verify(0, &out));
        assert!(UdpRepr::parse(&out, Some(0), false).is_ok());
    }

    #[test]
    fn checksum_detects_every_flipped_bit() {
        for (d, pseudo, v6) in fixtures() {
            assert!(UdpRepr::parse(&d, Some(pseudo), v6).is_ok());
            let csum_zero = d[6] == 0 && d[7] == 0;
            for i in 0..d.len() * 8 {
                let mut bad = d.clone();
                bad[i / 8] ^= 1 << (i % 8);
                let r = UdpRepr::parse(&bad, Some(pseudo), v6);
                if i / 8 == 4 || i / 8 == 5 {
                    assert_eq!(r, Err(WireError::BadLength), "bit {i}");
                } else if csum_zero && i / 8 != 6 && i / 8 != 7 {
                    // No checksum: the flip goes unnoticed.
                    assert!(r.is_ok(), "bit {i}");
                } else {
                    assert_eq!(r, Err(WireError::BadChecksum), "bit {i}");
                }
            }
        }
    }

    #[test]
    fn every_truncation_rejected() {
        for (d, pseudo, v6) in fixtures() {
            for len in 0..d.len() {
                let want = if len < HEADER_LEN {
                    WireError::Truncated
                } else {
                    WireError::BadLength
                };
                assert_eq!(UdpRepr::parse(&d[..len], Some(pseudo), v6), Err(want));
                assert_eq!(UdpRepr::parse(&d[..len], None, v6), Err(want));
            }
        }
    }

    #[test]
    fn length_field_errors() {
        let d = hex(V4_REQ);
        for len in [0u16, 1, 7, 12, 14, 0xffff] {
            let mut bad = d.clone();
            bad[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(UdpRepr::parse(&bad, None, false), Err(WireError::BadLength));
        }
        // Trailing bytes past the length field (padding the IP layer
        // should have cut) are refused too.
        let mut long = d.clone();
        long.push(0);
        assert_eq!(
            UdpRepr::parse(&long, None, false),
            Err(WireError::BadLength)
        );
        // Length 8 with no payload is fine.
        let empty = [0, 1, 0, 2, 0, 8, 0, 0];
        let r = UdpRepr::parse(&empty, None, false).unwrap();
        assert!(r.payload.is_empty());
        roundtrip(&empty, &r);
    }

    #[test]
    fn emit_errors() {
        let d = hex(V4_REQ);
        let r = UdpRepr::parse(&d, None, false).unwrap();
        for len in 0..d.len() {
            let mut out = vec![0u8; len];
            assert_eq!(r.emit(&mut out), Err(WireError::BufferTooSmall));
            assert_eq!(
                r.emit_with_checksum(&mut out, 0),
                Err(WireError::BufferTooSmall)
            );
        }
        let big = vec![0u8; 65528];
        let r = UdpRepr { payload: &big, ..r };
        let mut out = vec![0u8; 70000];
        assert_eq!(r.emit(&mut out), Err(WireError::BadLength));
        let r = UdpRepr {
            payload: &big[..65527],
            ..r
        };
        assert_eq!(r.emit(&mut out), Ok(65535));
    }
}
