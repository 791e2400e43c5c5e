//! ICMPv6 messages (RFC 4443): echo, the four error messages, Neighbor
//! Discovery (handed to [`crate::wire::ndp`]) and anything else kept opaque.
//!
//! # Model
//!
//! An ICMPv6 message is a type, a code, a checksum and a message body
//! (RFC 4443 §2.1). All messages we know carry at least four more octets
//! after the checksum, so [`Icmpv6Header`] covers eight octets and a
//! message shorter than that is [`WireError::Truncated`]. The message length
//! is the IPv6 payload length minus extension headers: the caller passes
//! exactly the message.
//!
//! The checksum is mandatory in IPv6 and covers the pseudo-header of RFC
//! 8200 §8.1 (RFC 4443 §2.3). Parsers take the pseudo-header partial sum
//! (see [`pseudo_header`]) as `Option<u32>`: `Some` verifies, `None` skips
//! the check (for a message whose checksum is known good, or under fuzzing).
//!
//! [`Icmpv6Repr`] is the parsed form, borrowing from the input. Variants
//! without a code field (echo, Packet Too Big, NDP) are chosen only when the
//! code is 0, the only value RFC 4443 §4 and RFC 4861 §4 define; any other
//! code leaves the message as [`Icmpv6Repr::Other`]. Together with unused and
//! reserved fields kept as found, this makes parse-then-emit reproduce the
//! input exactly; [`Icmpv6Packet`] also keeps the checksum as found.
//!
//! # Error messages and their size
//!
//! An error message carries "as much of invoking packet as possible without
//! the ICMPv6 packet exceeding the minimum IPv6 MTU" (RFC 4443 §2.4(c)):
//! 1280 octets in all, so at most [`MAX_ERROR_ORIGINAL`] octets of the
//! original packet behind a 40-octet IPv6 header without extension headers.
//! Emitting a variant directly sends the excerpt as given (so that a parsed
//! message is reproduced exactly); the constructors
//! [`Icmpv6Repr::dst_unreachable`], [`Icmpv6Repr::packet_too_big`],
//! [`Icmpv6Repr::time_exceeded`] and [`Icmpv6Repr::param_problem`] truncate
//! it with [`truncate_original`]. Not answering errors with errors, and rate
//! limiting (RFC 4443 §2.4(e), (f)), are the caller's duty.

use core::net::Ipv6Addr;

use zerocopy::byteorder::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::wire::checksum;
use crate::wire::ndp::NdpRepr;
use crate::wire::{ip_proto, Result, WireError};

/// ICMPv6 message types (IANA "ICMPv6 Parameters").
pub mod msg_type {
    /// Destination Unreachable (RFC 4443 §3.1).
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet Too Big (RFC 4443 §3.2).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time Exceeded (RFC 4443 §3.3).
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem (RFC 4443 §3.4).
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo Request (RFC 4443 §4.1).
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply (RFC 4443 §4.2).
    pub const ECHO_REPLY: u8 = 129;
    /// Multicast Listener Query (RFC 2710 §3, RFC 9777 §5.1).
    pub const MLD_QUERY: u8 = 130;
    /// Multicast Listener Report, version 1 (RFC 2710 §3).
    pub const MLD_REPORT: u8 = 131;
    /// Multicast Listener Done (RFC 2710 §3).
    pub const MLD_DONE: u8 = 132;
    /// Router Solicitation (RFC 4861 §4.1).
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router Advertisement (RFC 4861 §4.2).
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor Solicitation (RFC 4861 §4.3).
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement (RFC 4861 §4.4).
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect (RFC 4861 §4.5).
    pub const REDIRECT: u8 = 137;
    /// Multicast Listener Report, version 2 (RFC 9777 §5.2).
    pub const MLD2_REPORT: u8 = 143;
}

/// Destination Unreachable codes (RFC 4443 §3.1).
pub mod unreach_code {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication with destination administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDR_UNREACHABLE: u8 = 3;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 4;
    /// Source address failed ingress/egress policy.
    pub const SOURCE_POLICY: u8 = 5;
    /// Reject route to destination.
    pub const REJECT_ROUTE: u8 = 6;
}

/// Time Exceeded codes (RFC 4443 §3.3).
pub mod time_exceeded_code {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// Parameter Problem codes (RFC 4443 §3.4).
pub mod param_problem_code {
    /// Erroneous header field encountered.
    pub const ERRONEOUS_FIELD: u8 = 0;
    /// Unrecognized Next Header type encountered.
    pub const UNKNOWN_NEXT_HEADER: u8 = 1;
    /// Unrecognized IPv6 option encountered.
    pub const UNKNOWN_OPTION: u8 = 2;
}

/// The IPv6 minimum link MTU (RFC 8200 §5), which bounds error messages.
pub const MIN_MTU: usize = 1280;

/// Most octets of the invoking packet an error message may carry: the
/// minimum MTU less a 40-octet IPv6 header and the 8-octet ICMPv6 header
/// (RFC 4443 §2.4(c)).
pub const MAX_ERROR_ORIGINAL: usize = MIN_MTU - 40 - size_of::<Icmpv6Header>();

/// ICMPv6 header as it sits in a message: type, code, checksum and the
/// first four octets of the body (RFC 4443 §2.1).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct Icmpv6Header {
    /// Message type, see [`msg_type`].
    pub icmp_type: u8,
    /// Message code.
    pub code: u8,
    /// Checksum over the pseudo-header and the message (RFC 4443 §2.3).
    pub checksum: U16,
    /// Type-specific: identifier and sequence number, MTU, pointer, unused.
    pub rest: [u8; 4],
}

/// A parsed ICMPv6 message, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Echo Request (RFC 4443 §4.1), code 0.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data, returned in the reply.
        data: &'a [u8],
    },
    /// Echo Reply (RFC 4443 §4.2), code 0.
    EchoReply {
        /// Identifier, from the request.
        ident: u16,
        /// Sequence number, from the request.
        seq: u16,
        /// Data, from the request.
        data: &'a [u8],
    },
    /// Destination Unreachable (RFC 4443 §3.1).
    DstUnreachable {
        /// Reason, see [`unreach_code`].
        code: u8,
        /// Unused field, as found (zero when sent).
        unused: u32,
        /// Excerpt of the invoking packet, IPv6 header first.
        original: &'a [u8],
    },
    /// Packet Too Big (RFC 4443 §3.2), code 0.
    PacketTooBig {
        /// MTU of the next-hop link.
        mtu: u32,
        /// Excerpt of the invoking packet, IPv6 header first.
        original: &'a [u8],
    },
    /// Time Exceeded (RFC 4443 §3.3).
    TimeExceeded {
        /// Reason, see [`time_exceeded_code`].
        code: u8,
        /// Unused field, as found (zero when sent).
        unused: u32,
        /// Excerpt of the invoking packet, IPv6 header first.
        original: &'a [u8],
    },
    /// Parameter Problem (RFC 4443 §3.4).
    ParamProblem {
        /// Reason, see [`param_problem_code`].
        code: u8,
        /// Offset of the error in the invoking packet.
        pointer: u32,
        /// Excerpt of the invoking packet, IPv6 header first.
        original: &'a [u8],
    },
    /// A Neighbor Discovery message, types 133 to 137 with code 0
    /// (RFC 4861 §4).
    Ndp(NdpRepr<'a>),
    /// Any other message (MLD, unknown types, known types with a code we do
    /// not model), kept opaque.
    Other {
        /// Message type.
        icmp_type: u8,
        /// Message code.
        code: u8,
        /// The four octets after the checksum.
        rest: [u8; 4],
        /// Everything after them.
        data: &'a [u8],
    },
}

/// Partial sum of the IPv6 pseudo-header for an ICMPv6 message of `len`
/// octets from `src` to `dst` (RFC 8200 §8.1, RFC 4443 §2.3).
pub fn pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize) -> u32 {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, len)
}

/// Compute and write the checksum of the whole message `msg`, given the
/// pseudo-header partial sum `pseudo` (RFC 4443 §2.3).
///
/// # Errors
///
/// [`WireError::Truncated`] if `msg` is too short for a checksum field.
pub fn fill_checksum(msg: &mut [u8], pseudo: u32) -> Result<()> {
    let field = msg.get_mut(2..4).ok_or(WireError::Truncated)?;
    field.fill(0);
    let csum = checksum::finish(checksum::sum(pseudo, msg));
    msg.get_mut(2..4)
        .ok_or(WireError::Truncated)?
        .copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

/// The part of an invoking packet an error message may carry:
/// its first [`MAX_ERROR_ORIGINAL`] octets (RFC 4443 §2.4(c)).
pub fn truncate_original(original: &[u8]) -> &[u8] {
    original.get(..MAX_ERROR_ORIGINAL).unwrap_or(original)
}

impl<'a> Icmpv6Repr<'a> {
    /// Parse the ICMPv6 message `msg`, verifying its checksum if `pseudo`
    /// (the pseudo-header partial sum for `msg.len()` octets) is given.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if `msg` is shorter than 8 octets or than
    /// the fixed part of an NDP message; [`WireError::BadChecksum`];
    /// the option errors of [`NdpRepr`] for NDP messages.
    pub fn parse(msg: &'a [u8], pseudo: Option<u32>) -> Result<Self> {
        Icmpv6Packet::parse(msg, pseudo).map(|p| p.repr)
    }

    /// Message type.
    pub fn icmp_type(&self) -> u8 {
        match self {
            Icmpv6Repr::EchoRequest { .. } => msg_type::ECHO_REQUEST,
            Icmpv6Repr::EchoReply { .. } => msg_type::ECHO_REPLY,
            Icmpv6Repr::DstUnreachable { .. } => msg_type::DST_UNREACHABLE,
            Icmpv6Repr::PacketTooBig { .. } => msg_type::PACKET_TOO_BIG,
            Icmpv6Repr::TimeExceeded { .. } => msg_type::TIME_EXCEEDED,
            Icmpv6Repr::ParamProblem { .. } => msg_type::PARAM_PROBLEM,
            Icmpv6Repr::Ndp(ndp) => ndp.icmp_type(),
            Icmpv6Repr::Other { icmp_type, .. } => *icmp_type,
        }
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        match *self {
            Icmpv6Repr::DstUnreachable { code, .. }
            | Icmpv6Repr::TimeExceeded { code, .. }
            | Icmpv6Repr::ParamProblem { code, .. }
            | Icmpv6Repr::Other { code, .. } => code,
            _ => 0,
        }
    }

    /// Whether this is an error message: type below 128 (RFC 4443 §2.1).
    pub fn is_error(&self) -> bool {
        self.icmp_type() < 128
    }

    /// The Echo Reply answering this Echo Request, same identifier,
    /// sequence number and data (RFC 4443 §4.2); `None` for anything else.
    pub fn echo_reply(&self) -> Option<Icmpv6Repr<'a>> {
        match *self {
            Icmpv6Repr::EchoRequest { ident, seq, data } => {
                Some(Icmpv6Repr::EchoReply { ident, seq, data })
            }
            _ => None,
        }
    }

    /// Destination Unreachable with `code` for the invoking packet
    /// `original`, truncated by [`truncate_original`].
    pub fn dst_unreachable(code: u8, original: &'a [u8]) -> Self {
        Icmpv6Repr::DstUnreachable {
            code,
            unused: 0,
            original: truncate_original(original),
        }
    }

    /// Packet Too Big advertising `mtu` for the invoking packet `original`,
    /// truncated by [`truncate_original`].
    pub fn packet_too_big(mtu: u32, original: &'a [u8]) -> Self {
        Icmpv6Repr::PacketTooBig {
            mtu,
            original: truncate_original(original),
        }
    }

    /// Time Exceeded with `code` for the invoking packet `original`,
    /// truncated by [`truncate_original`].
    pub fn time_exceeded(code: u8, original: &'a [u8]) -> Self {
        Icmpv6Repr::TimeExceeded {
            code,
            unused: 0,
            original: truncate_original(original),
        }
    }

    /// Parameter Problem with `code` pointing at octet `pointer` of the
    /// invoking packet `original`, truncated by [`truncate_original`].
    pub fn param_problem(code: u8, pointer: u32, original: &'a [u8]) -> Self {
        Icmpv6Repr::ParamProblem {
            code,
            pointer,
            original: truncate_original(original),
        }
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        let body = match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::Other { data, .. } => data.len(),
            Icmpv6Repr::DstUnreachable { original, .. }
            | Icmpv6Repr::PacketTooBig { original, .. }
            | Icmpv6Repr::TimeExceeded { original, .. }
            | Icmpv6Repr::ParamProblem { original, .. } => original.len(),
            Icmpv6Repr::Ndp(ndp) => return ndp.buffer_len(),
        };
        size_of::<Icmpv6Header>() + body
    }

    /// Emit the message into `buf` with `checksum` written as given;
    /// returns the length written.
    fn emit_with_checksum(&self, buf: &mut [u8], checksum: u16) -> Result<usize> {
        let (rest, body): ([u8; 4], &[u8]) = match *self {
            Icmpv6Repr::EchoRequest { ident, seq, data }
            | Icmpv6Repr::EchoReply { ident, seq, data } => {
                let [a, b] = ident.to_be_bytes();
                let [c, d] = seq.to_be_bytes();
                ([a, b, c, d], data)
            }
            Icmpv6Repr::DstUnreachable {
                unused, original, ..
            }
            | Icmpv6Repr::TimeExceeded {
                unused, original, ..
            } => (unused.to_be_bytes(), original),
            Icmpv6Repr::PacketTooBig { mtu, original } => (mtu.to_be_bytes(), original),
            Icmpv6Repr::ParamProblem {
                pointer, original, ..
            } => (pointer.to_be_bytes(), original),
            Icmpv6Repr::Ndp(ndp) => return ndp.emit_message(buf, checksum),
            Icmpv6Repr::Other { rest, data, .. } => (rest, data),
        };
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (hdr, tail) = out.split_at_mut(size_of::<Icmpv6Header>());
        Icmpv6Header {
            icmp_type: self.icmp_type(),
            code: self.code(),
            checksum: U16::new(checksum),
            rest,
        }
        .write_to(hdr)
        .map_err(|_| WireError::BufferTooSmall)?;
        tail.copy_from_slice(body);
        Ok(len)
    }

    /// Emit the message into `buf` with a freshly computed checksum;
    /// `pseudo` is the pseudo-header partial sum for [`Self::buffer_len`]
    /// octets (see [`pseudo_header`]). Returns the length written.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], pseudo: u32) -> Result<usize> {
        let len = self.emit_with_checksum(buf, 0)?;
        fill_checksum(buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?, pseudo)?;
        Ok(len)
    }
}

/// A parsed ICMPv6 message with its checksum as found, for exact
/// re-emission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<'a> {
    /// Checksum field as found.
    pub checksum: u16,
    /// The message.
    pub repr: Icmpv6Repr<'a>,
}

impl<'a> Icmpv6Packet<'a> {
    /// Parse `msg` as [`Icmpv6Repr::parse`] does, keeping the checksum.
    ///
    /// # Errors
    ///
    /// Those of [`Icmpv6Repr::parse`].
    pub fn parse(msg: &'a [u8], pseudo: Option<u32>) -> Result<Self> {
        let (hdr, body) = Icmpv6Header::ref_from_prefix(msg).map_err(|_| WireError::Truncated)?;
        if let Some(pseudo) = pseudo {
            if !checksum::verify(pseudo, msg) {
                return Err(WireError::BadChecksum);
            }
        }
        let (icmp_type, code, rest) = (hdr.icmp_type, hdr.code, hdr.rest);
        let word = u32::from_be_bytes(rest);
        let repr = match (icmp_type, code) {
            (msg_type::DST_UNREACHABLE, _) => Icmpv6Repr::DstUnreachable {
                code,
                unused: word,
                original: body,
            },
            (msg_type::PACKET_TOO_BIG, 0) => Icmpv6Repr::PacketTooBig {
                mtu: word,
                original: body,
            },
            (msg_type::TIME_EXCEEDED, _) => Icmpv6Repr::TimeExceeded {
                code,
                unused: word,
                original: body,
            },
            (msg_type::PARAM_PROBLEM, _) => Icmpv6Repr::ParamProblem {
                code,
                pointer: word,
                original: body,
            },
            (msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY, 0) => {
                let [a, b, c, d] = rest;
                let (ident, seq) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
                if icmp_type == msg_type::ECHO_REQUEST {
                    Icmpv6Repr::EchoRequest {
                        ident,
                        seq,
                        data: body,
                    }
                } else {
                    Icmpv6Repr::EchoReply {
                        ident,
                        seq,
                        data: body,
                    }
                }
            }
            (msg_type::ROUTER_SOLICIT..=msg_type::REDIRECT, 0) => {
                Icmpv6Repr::Ndp(NdpRepr::parse_message(icmp_type, msg)?)
            }
            _ => Icmpv6Repr::Other {
                icmp_type,
                code,
                rest,
                data: body,
            },
        };
        Ok(Icmpv6Packet {
            checksum: hdr.checksum.get(),
            repr,
        })
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        self.repr.buffer_len()
    }

    /// Emit the message with the stored checksum; returns the length written.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.repr.emit_with_checksum(buf, self.checksum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ndp::NdpOption;

    // Fixtures captured with tcpdump between network namespaces joined by
    // veth pairs (Linux 6.x kernel, iputils ping, Python sockets); only the
    // ICMPv6 message is kept, the addresses for the pseudo-header are noted.

    /// Echo request from `ping -p 0123456789abcdef` (2001:db8::1 -> 2001:db8::2, hop limit 64).
    const ECHO_REQUEST: &str = "\
            8000b76e1ce90001484e026b00000000e0410e00000000000123456789abcdef0123456789abcdef0123456789abcdef\
            0123456789abcdef0123456789abcdef";

    /// The echo reply to it (2001:db8::2 -> 2001:db8::1, hop limit 64).
    const ECHO_REPLY: &str = "\
            8100b66e1ce90001484e026b00000000e0410e00000000000123456789abcdef0123456789abcdef0123456789abcdef\
            0123456789abcdef0123456789abcdef";

    /// Port unreachable for a UDP datagram to port 9 (2001:db8::2 -> 2001:db8::1, hop limit 64).
    const PORT_UNREACHABLE: &str = "\
            0104d46c00000000600480c8001e114020010db800000000000000000000000120010db8000000000000000000000002\
            d8d60009001e5ba468656c6c6f20706f727420756e726561636861626c65";

    /// Packet too big from a router with a 1280-octet next hop (2001:db8::2 -> 2001:db8::1, hop limit 64).
    const PACKET_TOO_BIG: &str = "\
            02009a2900000500600f3d7e05803a4020010db800000000000000000000000120010db8000200000000000000000002\
            8000346f1d2900014a4e026b00000000145f010000000000101112131415161718191a1b1c1d1e1f2021222324252627\
            28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657\
            58595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384858687\
            88898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7\
            b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7\
            e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011121314151617\
            18191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647\
            48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677\
            78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7\
            a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7\
            d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0001020304050607\
            08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637\
            38393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f6061626364656667\
            68696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091929394959697\
            98999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7\
            c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7\
            f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627\
            28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657\
            58595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384858687\
            88898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7\
            b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7\
            e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011121314151617\
            18191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647\
            48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677\
            78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";

    /// Hop limit exceeded in transit, for `ping -t 1` (2001:db8::2 -> 2001:db8::1, hop limit 64).
    const TIME_EXCEEDED: &str = "\
            0300c98b00000000600f3d7e00403a0120010db800000000000000000000000120010db8000200000000000000000002\
            8000e5381f6a0001654e026b00000000f5dd030000000000101112131415161718191a1b1c1d1e1f2021222324252627\
            28292a2b2c2d2e2f3031323334353637";

    /// Unrecognized next header 253 (2001:db8::2 -> 2001:db8::1, hop limit 64).
    const PARAM_PROBLEM: &str = "\
            0401e34b0000000660072e9d0014fd4020010db800000000000000000000000120010db8000000000000000000000002\
            6578706572696d656e74616c207061796c6f6164";

    /// MLDv2 report joining ff05::db8:1, behind a hop-by-hop header (fe80::4420:57ff:fe41:2804 -> ff02::16, hop limit 1).
    const MLD2_REPORT: &str = "\
            8f009fe90000000104000000ff05000000000000000000000db80001";

    /// The whole IPv6 packet (header included) of the 1408-octet echo request that triggered PACKET_TOO_BIG (2001:db8::1 -> 2001:db8:2::2).
    const BIG_ECHO_PACKET: &str = "\
            600f3d7e05803a4020010db800000000000000000000000120010db80002000000000000000000028000346f1d290001\
            4a4e026b00000000145f010000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\
            303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\
            606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f\
            909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
            c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef\
            f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
            202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f\
            505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
            808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf\
            b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
            e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f\
            101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
            404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f\
            707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
            a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf\
            d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\
            000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\
            303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\
            606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f\
            909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
            c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef\
            f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
            202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f\
            505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
            808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf\
            b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
            e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f\
            101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
            404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f\
            7071727374757677";

    fn hex(s: &str) -> Vec<u8> {
        assert!(s.len() % 2 == 0);
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// Every fixture with the source and destination of its IPv6 header.
    const ALL: &[(&str, &str, &str)] = &[
        (ECHO_REQUEST, "2001:db8::1", "2001:db8::2"),
        (ECHO_REPLY, "2001:db8::2", "2001:db8::1"),
        (PORT_UNREACHABLE, "2001:db8::2", "2001:db8::1"),
        (PACKET_TOO_BIG, "2001:db8::2", "2001:db8::1"),
        (TIME_EXCEEDED, "2001:db8::2", "2001:db8::1"),
        (PARAM_PROBLEM, "2001:db8::2", "2001:db8::1"),
        (MLD2_REPORT, "fe80::4420:57ff:fe41:2804", "ff02::16"),
    ];

    fn pseudo(src: &str, dst: &str, len: usize) -> u32 {
        pseudo_header(&ip(src), &ip(dst), len)
    }

    #[test]
    fn every_fixture_round_trips_exactly() {
        for &(h, src, dst) in ALL {
            let msg = hex(h);
            let p = pseudo(src, dst, msg.len());
            let pkt = Icmpv6Packet::parse(&msg, Some(p)).unwrap();
            assert_eq!(pkt.checksum, u16::from_be_bytes([msg[2], msg[3]]));
            assert_eq!(pkt.buffer_len(), msg.len());
            let mut out = vec![0u8; msg.len()];
            assert_eq!(pkt.emit(&mut out), Ok(msg.len()));
            assert_eq!(out, msg);
            // A fresh checksum over the right pseudo-header is the same one.
            let mut out2 = vec![0xaau8; msg.len() + 3];
            assert_eq!(pkt.repr.emit(&mut out2, p), Ok(msg.len()));
            assert_eq!(&out2[..msg.len()], &msg[..]);
            assert_eq!(&out2[msg.len()..], &[0xaa; 3]);
            // One octet short is refused.
            assert_eq!(
                pkt.emit(&mut out[..msg.len() - 1]),
                Err(WireError::BufferTooSmall)
            );
            assert_eq!(
                pkt.repr.emit(&mut out[..msg.len() - 1], p),
                Err(WireError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn echo_request_and_reply() {
        let req = hex(ECHO_REQUEST);
        let src = "2001:db8::1";
        let dst = "2001:db8::2";
        let repr = Icmpv6Repr::parse(&req, Some(pseudo(src, dst, req.len()))).unwrap();
        let Icmpv6Repr::EchoRequest { ident, seq, data } = repr else {
            panic!("{repr:?}");
        };
        assert_eq!((ident, seq, data.len()), (0x1ce9, 1, 56));
        // ping puts a 16-octet timestamp first, then repeats the pattern.
        for chunk in data[16..].chunks(8) {
            assert_eq!(chunk, [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        }
        assert_eq!(repr.icmp_type(), msg_type::ECHO_REQUEST);
        assert_eq!(repr.code(), 0);
        assert!(!repr.is_error());

        // The reply the kernel sent is exactly the one we build.
        let reply = repr.echo_reply().unwrap();
        let mut out = [0u8; 64];
        let n = reply.emit(&mut out, pseudo(dst, src, 64)).unwrap();
        assert_eq!(&out[..n], &hex(ECHO_REPLY)[..]);
        assert_eq!(reply.echo_reply(), None);
        let parsed = Icmpv6Repr::parse(&out[..n], Some(pseudo(dst, src, n))).unwrap();
        assert_eq!(parsed, reply);
    }

    #[test]
    fn port_unreachable_rebuilt_from_its_original() {
        let msg = hex(PORT_UNREACHABLE);
        let (src, dst) = (ip("2001:db8::2"), ip("2001:db8::1"));
        let repr = Icmpv6Repr::parse(&msg, Some(pseudo_header(&src, &dst, msg.len()))).unwrap();
        let Icmpv6Repr::DstUnreachable {
            code,
            unused,
            original,
        } = repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!((code, unused), (unreach_code::PORT_UNREACHABLE, 0));
        assert!(repr.is_error());
        // The invoking datagram: IPv6 header, UDP to port 9, our payload.
        assert_eq!(original[0] >> 4, 6);
        assert_eq!(original[6], ip_proto::UDP);
        assert_eq!(&original[24..40], &ip("2001:db8::2").octets());
        assert_eq!(u16::from_be_bytes([original[42], original[43]]), 9);
        assert_eq!(&original[48..], b"hello port unreachable");

        let built = Icmpv6Repr::dst_unreachable(unreach_code::PORT_UNREACHABLE, original);
        let mut out = [0u8; 128];
        let n = built
            .emit(&mut out, pseudo_header(&src, &dst, built.buffer_len()))
            .unwrap();
        assert_eq!(&out[..n], &msg[..]);
    }

    #[test]
    fn packet_too_big_is_truncated_to_the_minimum_mtu() {
        let msg = hex(PACKET_TOO_BIG);
        let (src, dst) = (ip("2001:db8::2"), ip("2001:db8::1"));
        assert_eq!(msg.len() + 40, MIN_MTU);
        let repr = Icmpv6Repr::parse(&msg, Some(pseudo_header(&src, &dst, msg.len()))).unwrap();
        let Icmpv6Repr::PacketTooBig { mtu, original } = repr else {
            panic!("{repr:?}");
        };
        assert_eq!(mtu, 1280);
        assert_eq!(original.len(), MAX_ERROR_ORIGINAL);

        // Rebuilding it from the whole invoking packet cuts at the same place.
        let invoking = hex(BIG_ECHO_PACKET);
        assert_eq!(invoking.len(), 1448);
        assert_eq!(&invoking[..MAX_ERROR_ORIGINAL], original);
        let built = Icmpv6Repr::packet_too_big(1280, &invoking);
        assert_eq!(built.buffer_len(), msg.len());
        let mut out = vec![0u8; 2000];
        let n = built
            .emit(&mut out, pseudo_header(&src, &dst, built.buffer_len()))
            .unwrap();
        assert_eq!(&out[..n], &msg[..]);
        assert_eq!(truncate_original(&invoking[..100]).len(), 100);
    }

    #[test]
    fn time_exceeded_and_param_problem() {
        let msg = hex(TIME_EXCEEDED);
        let p = pseudo("2001:db8::2", "2001:db8::1", msg.len());
        let repr = Icmpv6Repr::parse(&msg, Some(p)).unwrap();
        let Icmpv6Repr::TimeExceeded {
            code,
            unused,
            original,
        } = repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!((code, unused), (time_exceeded_code::HOP_LIMIT, 0));
        // The invoking echo request still had hop limit 1.
        assert_eq!((original[6], original[7]), (ip_proto::ICMPV6, 1));
        let built = Icmpv6Repr::time_exceeded(code, original);
        let mut out = [0u8; 200];
        let n = built.emit(&mut out, p).unwrap();
        assert_eq!(&out[..n], &msg[..]);

        let msg = hex(PARAM_PROBLEM);
        let p = pseudo("2001:db8::2", "2001:db8::1", msg.len());
        let repr = Icmpv6Repr::parse(&msg, Some(p)).unwrap();
        let Icmpv6Repr::ParamProblem {
            code,
            pointer,
            original,
        } = repr
        else {
            panic!("{repr:?}");
        };
        // Pointer 6: the Next Header field of the invoking IPv6 header.
        assert_eq!(
            (code, pointer),
            (param_problem_code::UNKNOWN_NEXT_HEADER, 6)
        );
        assert_eq!(original[6], 253);
        assert_eq!(&original[40..], b"experimental payload");
        let built = Icmpv6Repr::param_problem(code, pointer, original);
        let n = built.emit(&mut out, p).unwrap();
        assert_eq!(&out[..n], &msg[..]);
    }

    #[test]
    fn mld_report_is_kept_opaque() {
        let msg = hex(MLD2_REPORT);
        let p = pseudo("fe80::4420:57ff:fe41:2804", "ff02::16", msg.len());
        let repr = Icmpv6Repr::parse(&msg, Some(p)).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::Other {
                icmp_type: msg_type::MLD2_REPORT,
                code: 0,
                rest: [0, 0, 0, 1],
                data: &msg[8..],
            }
        );
        // One record: change to exclude mode, no sources, ff05::db8:1.
        assert_eq!(&msg[8..12], &[4, 0, 0, 0]);
        assert_eq!(&msg[12..], &ip("ff05::db8:1").octets());
    }

    #[test]
    fn codes_we_do_not_model_stay_opaque() {
        // An echo request with code 1 and a packet too big with code 2:
        // reproduced exactly as Other.
        for (ty, code) in [(msg_type::ECHO_REQUEST, 1), (msg_type::PACKET_TOO_BIG, 2)] {
            let mut msg = hex(ECHO_REQUEST);
            msg[0] = ty;
            msg[1] = code;
            let repr = Icmpv6Repr::parse(&msg, None).unwrap();
            assert!(matches!(repr, Icmpv6Repr::Other { icmp_type, code: c, .. }
                if icmp_type == ty && c == code));
            let pkt = Icmpv6Packet::parse(&msg, None).unwrap();
            let mut out = vec![0u8; msg.len()];
            pkt.emit(&mut out).unwrap();
            assert_eq!(out, msg);
        }
        // An NDP type with a non-zero code is not NDP (RFC 4861 §6.1.1).
        let mut msg = hex(PARAM_PROBLEM);
        msg[0] = msg_type::NEIGHBOR_SOLICIT;
        msg[1] = 3;
        let repr = Icmpv6Repr::parse(&msg, None).unwrap();
        assert!(matches!(
            repr,
            Icmpv6Repr::Other {
                icmp_type: 135,
                code: 3,
                ..
            }
        ));
    }

    #[test]
    fn any_flipped_bit_fails_the_checksum() {
        for &(h, src, dst) in ALL {
            let msg = hex(h);
            let p = pseudo(src, dst, msg.len());
            for bit in 0..msg.len() * 8 {
                let mut m = msg.clone();
                m[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(
                    Icmpv6Repr::parse(&m, Some(p)),
                    Err(WireError::BadChecksum),
                    "bit {bit}"
                );
            }
            // The wrong addresses fail too.
            let wrong = pseudo(dst, "2001:db8::99", msg.len());
            assert_eq!(
                Icmpv6Repr::parse(&msg, Some(wrong)),
                Err(WireError::BadChecksum)
            );
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        for &(h, src, dst) in ALL {
            let msg = hex(h);
            for len in 0..msg.len() {
                let cut = &msg[..len];
                let res = Icmpv6Repr::parse(cut, Some(pseudo(src, dst, len)));
                assert!(res.is_err(), "{len}: {res:?}");
                if len < size_of::<Icmpv6Header>() {
                    assert_eq!(res, Err(WireError::Truncated));
                    assert_eq!(Icmpv6Repr::parse(cut, None), Err(WireError::Truncated));
                }
            }
        }
    }

    #[test]
    fn fill_checksum_needs_a_checksum_field() {
        assert_eq!(fill_checksum(&mut [0x80, 0], 0), Err(WireError::Truncated));
        let mut m = hex(ECHO_REPLY);
        let p = pseudo("2001:db8::2", "2001:db8::1", m.len());
        m[2] = 0;
        m[3] = 0;
        fill_checksum(&mut m, p).unwrap();
        assert_eq!(m, hex(ECHO_REPLY));
    }

    #[test]
    fn ndp_messages_are_handed_to_ndp() {
        // Router solicitation with a source link-layer address option.
        let msg = hex("8500b4e50000000001014a11a25c78b6");
        let p = pseudo("fe80::4811:a2ff:fe5c:78b6", "ff02::2", msg.len());
        let repr = Icmpv6Repr::parse(&msg, Some(p)).unwrap();
        let Icmpv6Repr::Ndp(ndp) = repr else {
            panic!("{repr:?}");
        };
        assert_eq!(repr.icmp_type(), msg_type::ROUTER_SOLICIT);
        assert_eq!(
            ndp.options().iter().collect::<Vec<_>>(),
            [NdpOption::SourceLinkAddr(crate::addr::MacAddr([
                0x4a, 0x11, 0xa2, 0x5c, 0x78, 0xb6
            ]))]
        );
    }
}
