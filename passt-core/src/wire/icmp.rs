//! ICMP for IPv4 (RFC 792), with the next-hop MTU of RFC 1191.
//!
//! # Theory of operation
//!
//! Every message starts with an 8-byte [`IcmpHeader`]: type, code, a
//! checksum over the whole message (no pseudo-header, RFC 792), and four
//! bytes whose meaning depends on the type. [`IcmpRepr`] names the messages
//! a translator handles: echo request and reply (the identifier and
//! sequence number in those four bytes, the data echoed back), destination
//! unreachable (with the next-hop MTU of "fragmentation needed", RFC 1191
//! §4), time exceeded and parameter problem, whose data is an excerpt of
//! the datagram that caused them. Anything else is kept as
//! [`IcmpRepr::Other`] with its raw fields.
//!
//! A message is sorted into a named variant only when the fields that the
//! variant does not hold are zero (e.g. the unused half of a destination
//! unreachable, which RFC 4884 may use as a length), so that emitting a
//! parsed message reproduces it exactly. [`IcmpRepr::parse`] also returns
//! the checksum as found for [`IcmpRepr::emit_exact`]; [`IcmpRepr::emit`]
//! computes a fresh one for messages we build.
//!
//! # Limits
//!
//! Error messages we build quote at most [`MAX_ORIGINAL_LEN`] bytes of the
//! offending datagram, keeping the whole IPv4 packet within 576 bytes
//! (RFC 1812 §4.3.2.3); [`error_excerpt`] cuts a datagram to that.

use zerocopy::byteorder::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::wire::checksum;
use crate::wire::{Result, WireError};

/// Length of the ICMP header (type, code, checksum, four more bytes).
pub const HEADER_LEN: usize = 8;

/// Most bytes of an offending datagram that an error message we build
/// quotes: 576 minus a 20-byte IPv4 header and the 8-byte ICMP header
/// (RFC 1812 §4.3.2.3).
pub const MAX_ORIGINAL_LEN: usize = 576 - 20 - HEADER_LEN;

/// ICMP message types (RFC 792).
pub mod icmp_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812
/// §5.2.7.1).
pub mod unreachable_code {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU
    /// (RFC 1191 §4).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time exceeded codes (RFC 792).
pub mod time_exceeded_code {
    /// Time to live exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// The ICMP header as it sits in a packet (RFC 792).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct IcmpHeader {
    /// Message type.
    pub icmp_type: u8,
    /// Message code.
    pub code: u8,
    /// Checksum over the whole ICMP message.
    pub checksum: U16,
    /// Type-dependent: identifier and sequence number, next-hop MTU,
    /// pointer, or unused.
    pub rest: U32,
}

/// A parsed ICMPv4 message, borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    /// Echo request (type 8, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (type 0, code 0).
    EchoReply {
        /// Identifier from the request.
        ident: u16,
        /// Sequence number from the request.
        seq: u16,
        /// Data from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3), bytes 4..6 zero.
    DestUnreachable {
        /// Reason, see [`unreachable_code`].
        code: u8,
        /// Next-hop MTU for "fragmentation needed" (RFC 1191 §4); as found
        /// (normally 0) for other codes.
        next_hop_mtu: u16,
        /// Excerpt of the datagram that could not be delivered: its IP
        /// header and at least 8 bytes of payload.
        original: &'a [u8],
    },
    /// Time exceeded (type 11), bytes 4..8 zero.
    TimeExceeded {
        /// Reason, see [`time_exceeded_code`].
        code: u8,
        /// Excerpt of the discarded datagram.
        original: &'a [u8],
    },
    /// Parameter problem (type 12, code 0), bytes 5..8 zero.
    ParamProblem {
        /// Offset of the offending byte in the original datagram.
        pointer: u8,
        /// Excerpt of the discarded datagram.
        original: &'a [u8],
    },
    /// Any other message, or one of the above with fields we do not hold.
    Other {
        /// Message type.
        icmp_type: u8,
        /// Message code.
        code: u8,
        /// Bytes 4..8 of the header.
        rest: u32,
        /// Everything after the header.
        data: &'a [u8],
    },
}

/// Cut an offending IPv4 datagram to what an error message we build quotes
/// (at most [`MAX_ORIGINAL_LEN`] bytes).
pub fn error_excerpt(datagram: &[u8]) -> &[u8] {
    datagram.get(..MAX_ORIGINAL_LEN).unwrap_or(datagram)
}

impl<'a> IcmpRepr<'a> {
    /// Parse an ICMPv4 message (the whole IPv4 payload), verifying its
    /// checksum if `verify`. Returns the message and the checksum as found.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] below 8 bytes; [`WireError::BadChecksum`]
    /// if `verify` and the checksum does not verify.
    pub fn parse(message: &'a [u8], verify: bool) -> Result<(IcmpRepr<'a>, u16)> {
        let (hdr, data) = IcmpHeader::ref_from_prefix(message).map_err(|_| WireError::Truncated)?;
        if verify && !checksum::verify(0, message) {
            return Err(WireError::BadChecksum);
        }
        let rest = hdr.rest.get();
        let hi = (rest >> 16) as u16;
        let lo = rest as u16;
        let code = hdr.code;
        let repr = match (hdr.icmp_type, code) {
            (icmp_type::ECHO_REQUEST, 0) => IcmpRepr::EchoRequest {
                ident: hi,
                seq: lo,
                data,
            },
            (icmp_type::ECHO_REPLY, 0) => IcmpRepr::EchoReply {
                ident: hi,
                seq: lo,
                data,
            },
            (icmp_type::DEST_UNREACHABLE, _) if hi == 0 => IcmpRepr::DestUnreachable {
                code,
                next_hop_mtu: lo,
                original: data,
            },
            (icmp_type::TIME_EXCEEDED, _) if rest == 0 => IcmpRepr::TimeExceeded {
                code,
                original: data,
            },
            (icmp_type::PARAM_PROBLEM, 0) if rest & 0x00ff_ffff == 0 => IcmpRepr::ParamProblem {
                pointer: (rest >> 24) as u8,
                original: data,
            },
            (icmp_type, code) => IcmpRepr::Other {
                icmp_type,
                code,
                rest,
                data,
            },
        };
        Ok((repr, hdr.checksum.get()))
    }

    /// The echo reply answering this message, if it is an echo request
    /// (RFC 792: same identifier, sequence number and data).
    pub fn echo_reply(&self) -> Option<IcmpRepr<'a>> {
        match *self {
            IcmpRepr::EchoRequest { ident, seq, data } => {
                Some(IcmpRepr::EchoReply { ident, seq, data })
            }
            _ => None,
        }
    }

    /// A port unreachable error quoting `original` (the offending IPv4
    /// datagram, cut by the caller, e.g. with [`error_excerpt`]).
    pub fn port_unreachable(original: &'a [u8]) -> IcmpRepr<'a> {
        IcmpRepr::DestUnreachable {
            code: unreachable_code::PORT,
            next_hop_mtu: 0,
            original,
        }
    }

    /// A "fragmentation needed and DF set" error announcing `mtu`
    /// (RFC 1191 §4), quoting `original`.
    pub fn frag_needed(mtu: u16, original: &'a [u8]) -> IcmpRepr<'a> {
        IcmpRepr::DestUnreachable {
            code: unreachable_code::FRAG_NEEDED,
            next_hop_mtu: mtu,
            original,
        }
    }

    /// The message type.
    pub fn icmp_type(&self) -> u8 {
        match self {
            IcmpRepr::EchoRequest { .. } => icmp_type::ECHO_REQUEST,
            IcmpRepr::EchoReply { .. } => icmp_type::ECHO_REPLY,
            IcmpRepr::DestUnreachable { .. } => icmp_type::DEST_UNREACHABLE,
            IcmpRepr::TimeExceeded { .. } => icmp_type::TIME_EXCEEDED,
            IcmpRepr::ParamProblem { .. } => icmp_type::PARAM_PROBLEM,
            IcmpRepr::Other { icmp_type, .. } => *icmp_type,
        }
    }

    /// The message code.
    pub fn code(&self) -> u8 {
        match self {
            IcmpRepr::EchoRequest { .. }
            | IcmpRepr::EchoReply { .. }
            | IcmpRepr::ParamProblem { .. } => 0,
            IcmpRepr::DestUnreachable { code, .. }
            | IcmpRepr::TimeExceeded { code, .. }
            | IcmpRepr::Other { code, .. } => *code,
        }
    }

    /// Header bytes 4..8 as a big-endian number.
    pub fn rest(&self) -> u32 {
        match *self {
            IcmpRepr::EchoRequest { ident, seq, .. } | IcmpRepr::EchoReply { ident, seq, .. } => {
                (u32::from(ident) << 16) | u32::from(seq)
            }
            IcmpRepr::DestUnreachable { next_hop_mtu, .. } => u32::from(next_hop_mtu),
            IcmpRepr::TimeExceeded { .. } => 0,
            IcmpRepr::ParamProblem { pointer, .. } => u32::from(pointer) << 24,
            IcmpRepr::Other { rest, .. } => rest,
        }
    }

    /// What follows the header: echo data or the original datagram.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            IcmpRepr::EchoRequest { data, .. }
            | IcmpRepr::EchoReply { data, .. }
            | IcmpRepr::Other { data, .. } => data,
            IcmpRepr::DestUnreachable { original, .. }
            | IcmpRepr::TimeExceeded { original, .. }
            | IcmpRepr::ParamProblem { original, .. } => original,
        }
    }

    /// Length of the whole message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Write the message with a freshly computed checksum. Returns its
    /// length.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`IcmpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.emit_exact(buf, 0)?;
        let msg = buf.get_mut(..n).ok_or(WireError::BufferTooSmall)?;
        let c = checksum::checksum(msg);
        let (hdr, _) = IcmpHeader::mut_from_prefix(msg).map_err(|_| WireError::BufferTooSmall)?;
        hdr.checksum = U16::new(c);
        Ok(n)
    }

    /// Write the message with `checksum` as its checksum field, e.g. the
    /// value [`IcmpRepr::parse`] found, to reproduce a message exactly.
    /// Returns its length.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`IcmpRepr::buffer_len`].
    pub fn emit_exact(&self, buf: &mut [u8], checksum: u16) -> Result<usize> {
        let total = self.buffer_len();
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        let (hdr, body) =
            IcmpHeader::mut_from_prefix(out).map_err(|_| WireError::BufferTooSmall)?;
        *hdr = IcmpHeader {
            icmp_type: self.icmp_type(),
            code: self.code(),
            checksum: U16::new(checksum),
            rest: U32::new(self.rest()),
        };
        body.copy_from_slice(self.data());
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Captured with tcpdump between namespaces: 192.0.2.1 behind a router
    // (192.0.2.254) from 198.51.100.2, far link MTU 1280. ICMP bytes only.

    /// `ping -s 24 -p 0102030405` echo request, id 9124 seq 1.
    const ECHO_REQ: &str = "08009c5723a40001764e026b00000000a63b0f00000000000203040501020304";
    /// Its echo reply.
    const ECHO_REP: &str = "0000a45723a40001764e026b00000000a63b0f00000000000203040501020304";
    /// Port unreachable for UDP 192.0.2.1:48605 -> 198.51.100.2:7 "closed".
    const PORT_UNREACH: &str =
        "0303e9530000000045000022c1a340003f118df0c0000201c6336402bddd0007000e1d72636c6f736564";
    /// Port unreachable quoting a UDP datagram sent without checksum.
    const PORT_UNREACH_NOCSUM: &str =
        "030301610000000045000022c12e40003f118e65c0000201c63364029f5314ea000e00006e6f6373756d";
    /// Fragmentation needed (mtu 1280) from the router for a 1328-byte DF
    /// echo request; quotes 548 bytes of it.
    const FRAG_NEEDED: &str = "\
        0304870f00000500450005300000400040014996c0000201c6336402080039d123d80001774e026b0000000032390b00\
        00000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b\
        3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b\
        6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b\
        9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacb\
        cccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafb\
        fcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b\
        2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b\
        5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b\
        8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babb\
        bcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaeb\
        ecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0001020304050607";

    fn fixtures() -> Vec<Vec<u8>> {
        [
            ECHO_REQ,
            ECHO_REP,
            PORT_UNREACH,
            PORT_UNREACH_NOCSUM,
            FRAG_NEEDED,
        ]
        .iter()
        .map(|f| hex(f))
        .collect()
    }

    fn roundtrip(msg: &[u8]) -> IcmpRepr<'_> {
        let (r, csum) = IcmpRepr::parse(msg, true).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit_exact(&mut out, csum), Ok(msg.len()));
        assert_eq!(out, msg);
        // A verified message re-emits identically with a fresh checksum.
        out.fill(0);
        assert_eq!(r.emit(&mut out), Ok(msg.len()));
        assert_eq!(out, msg);
        r
    }

    #[test]
    fn echo_request_and_reply() {
        let req = hex(ECHO_REQ);
        let r = roundtrip(&req);
        let IcmpRepr::EchoRequest { ident, seq, data } = r else {
            panic!("{r:?}")
        };
        assert_eq!((ident, seq), (9124, 1));
        assert_eq!(data.len(), 24);
        assert_eq!(&data[16..], [2, 3, 4, 5, 1, 2, 3, 4]);
        assert_eq!((r.icmp_type(), r.code(), r.rest()), (8, 0, 0x23a4_0001));

        let rep = hex(ECHO_REP);
        let parsed = roundtrip(&rep);
        assert_eq!(
            parsed,
            IcmpRepr::EchoReply {
                ident: 9124,
                seq: 1,
                data
            }
        );
        // Our builder answers the request with the captured reply.
        let built = r.echo_reply().unwrap();
        assert_eq!(built, parsed);
        let mut out = [0u8; 64];
        let n = built.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &rep[..]);
        assert_eq!(parsed.echo_reply(), None);
    }

    #[test]
    fn port_unreachable() {
        let msg = hex(PORT_UNREACH);
        let r = roundtrip(&msg);
        let IcmpRepr::DestUnreachable {
            code,
            next_hop_mtu,
            original,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(code, unreachable_code::PORT);
        assert_eq!(next_hop_mtu, 0);
        assert_eq!(original.len(), 34);
        assert_eq!(original[0], 0x45);
        assert_eq!(original[9], 17);
        assert_eq!(&original[28..], b"closed");
        // The builder with the same excerpt gives the same message.
        let built = IcmpRepr::port_unreachable(original);
        assert_eq!(built, r);
        let mut out = [0u8; 64];
        let n = built.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &msg[..]);

        let msg = hex(PORT_UNREACH_NOCSUM);
        let r = roundtrip(&msg);
        assert_eq!(r.code(), unreachable_code::PORT);
        assert_eq!(&r.data()[28..], b"nocsum");
    }

    #[test]
    fn frag_needed() {
        let msg = hex(FRAG_NEEDED);
        assert_eq!(msg.len(), 556);
        let r = roundtrip(&msg);
        let IcmpRepr::DestUnreachable {
            code,
            next_hop_mtu,
            original,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(code, unreachable_code::FRAG_NEEDED);
        assert_eq!(next_hop_mtu, 1280);
        assert_eq!(original.len(), MAX_ORIGINAL_LEN);
        // The quoted datagram claims 1328 bytes.
        assert_eq!(u16::from_be_bytes([original[2], original[3]]), 1328);
        // Rebuild from a longer "original": error_excerpt cuts it to size.
        let mut whole = original.to_vec();
        whole.extend_from_slice(&[0xaa; 780]);
        let excerpt = error_excerpt(&whole);
        assert_eq!(excerpt, original);
        assert_eq!(error_excerpt(&whole[..30]), &whole[..30]);
        let mut out = [0u8; 600];
        let n = IcmpRepr::frag_needed(1280, excerpt).emit(&mut out).unwrap();
        assert_eq!(&out[..n], &msg[..]);
    }

    #[test]
    fn other_types_and_nonzero_unused_fields() {
        let msg = hex(PORT_UNREACH);
        let cases: &[(usize, u8, u8)] = &[
            // (byte, value, expected type of an Other)
            (4, 1, 3),   // RFC 4884 length in a destination unreachable
            (0, 13, 13), // timestamp request
            (1, 1, 3),   // still DestUnreachable: code 1, host
        ];
        for &(at, val, ty) in cases {
            let mut m = msg.clone();
            m[at] = val;
            let (r, _) = IcmpRepr::parse(&m, false).unwrap();
            assert_eq!(r.icmp_type(), ty);
            let mut out = vec![0u8; r.buffer_len()];
            // Fresh checksum: re-parse verifies.
            r.emit(&mut out).unwrap();
            assert_eq!(IcmpRepr::parse(&out, true).unwrap().0, r);
            let csum = u16::from_be_bytes([m[2], m[3]]);
            r.emit_exact(&mut out, csum).unwrap();
            assert_eq!(out, m);
        }
        let mut m = msg.clone();
        m[4] = 1;
        assert!(matches!(
            IcmpRepr::parse(&m, false).unwrap().0,
            IcmpRepr::Other {
                rest: 0x0100_0000,
                icmp_type: 3,
                code: 3,
                ..
            }
        ));
        // Echo with a non-zero code is Other.
        let mut m = hex(ECHO_REQ);
        m[1] = 1;
        assert!(matches!(
            IcmpRepr::parse(&m, false).unwrap().0,
            IcmpRepr::Other {
                icmp_type: 8,
                code: 1,
                ..
            }
        ));
        // Time exceeded and parameter problem.
        let mut m = msg.clone();
        m[0] = icmp_type::TIME_EXCEEDED;
        m[1] = time_exceeded_code::TTL;
        let (r, _) = IcmpRepr::parse(&m, false).unwrap();
        assert_eq!(
            r,
            IcmpRepr::TimeExceeded {
                code: 0,
                original: &msg[8..]
            }
        );
        m[7] = 1;
        assert!(matches!(
            IcmpRepr::parse(&m, false).unwrap().0,
            IcmpRepr::Other { .. }
        ));
        let mut m = msg.clone();
        m[0] = icmp_type::PARAM_PROBLEM;
        m[1] = 0;
        m[4] = 9;
        let (r, csum) = IcmpRepr::parse(&m, false).unwrap();
        assert_eq!(
            r,
            IcmpRepr::ParamProblem {
                pointer: 9,
                original: &msg[8..]
            }
        );
        assert_eq!((r.icmp_type(), r.code(), r.rest()), (12, 0, 0x0900_0000));
        let mut out = vec![0u8; r.buffer_len()];
        r.emit_exact(&mut out, csum).unwrap();
        assert_eq!(out, m);
        m[5] = 1;
        assert!(matches!(
            IcmpRepr::parse(&m, false).unwrap().0,
            IcmpRepr::Other { .. }
        ));
    }

    #[test]
    fn checksum_detects_every_flipped_bit() {
        for msg in fixtures() {
            for i in 0..msg.len() * 8 {
                let mut bad = msg.clone();
                bad[i / 8] ^= 1 << (i % 8);
                assert_eq!(
                    IcmpRepr::parse(&bad, true),
                    Err(WireError::BadChecksum),
                    "bit {i}"
                );
                assert!(IcmpRepr::parse(&bad, false).is_ok());
            }
        }
    }

    #[test]
    fn every_truncation_rejected() {
        for msg in fixtures() {
            for len in 0..msg.len() {
                let want = if len < HEADER_LEN {
                    WireError::Truncated
                } else {
                    WireError::BadChecksum
                };
                assert_eq!(IcmpRepr::parse(&msg[..len], true), Err(want), "len {len}");
                if len < HEADER_LEN {
                    assert_eq!(IcmpRepr::parse(&msg[..len], false), Err(want));
                }
            }
        }
    }

    #[test]
    fn emit_errors() {
        let msg = hex(ECHO_REQ);
        let (r, csum) = IcmpRepr::parse(&msg, true).unwrap();
        for len in 0..msg.len() {
            let mut out = vec![0u8; len];
            assert_eq!(r.emit(&mut out), Err(WireError::BufferTooSmall));
            assert_eq!(r.emit_exact(&mut out, csum), Err(WireError::BufferTooSmall));
        }
    }
}
