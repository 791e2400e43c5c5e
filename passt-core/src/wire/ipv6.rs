//! IPv6 header and extension-header chain parsing and emission (RFC 8200).
//!
//! # Parsing
//!
//! [`Ipv6Repr::parse`] reads the fixed 40-byte [`Ipv6Header`] in place
//! (RFC 8200 §3) and checks that the version is 6
//! ([`WireError::Unsupported`]) and that the payload length fits in the
//! bytes present ([`WireError::Truncated`]); bytes past the payload length
//! (link-layer padding) are ignored. A zero payload length with a Hop-by-Hop
//! header announces a jumbogram (RFC 2675), which we do not handle
//! ([`WireError::Unsupported`]).
//!
//! It then walks the extension-header chain (RFC 8200 §4) inside the
//! payload:
//!
//! - Hop-by-Hop Options (0), Routing (43), Destination Options (60) and
//!   Mobility (135, RFC 6275 §6.1) have a length in 8-octet units, not
//!   counting the first 8 octets;
//! - Fragment (44) is a fixed 8 octets (RFC 8200 §4.5);
//! - Authentication Header (51) has a length in 4-octet units minus 2
//!   (RFC 4302 §2.2), and must cover its 12-octet fixed part;
//! - No Next Header (59) ends the walk with an empty payload (RFC 8200
//!   §4.7); Encapsulating Security Payload (50) ends it too, with the ESP
//!   header as payload and 50 as the upper-layer protocol, since what
//!   follows is encrypted; any other value is the upper-layer protocol.
//!
//! At most [`MAX_EXT_HEADERS`] headers are walked ([`WireError::TooMany`]).
//! A header running past the payload length is [`WireError::BadLength`].
//! Hop-by-Hop must come first (RFC 8200 §4.1, [`WireError::Malformed`]).
//! The options of Hop-by-Hop and Destination Options headers (RFC 8200
//! §4.2) are checked: Pad1 is one byte, every other option is type, length
//! and data ending inside its header ([`WireError::Malformed`]); their
//! action bits are not acted upon here ([`Ipv6Option::action`] exposes
//! them). Routing, Mobility and AH contents are not interpreted.
//!
//! The whole chain is kept as raw bytes in [`Ipv6Repr::ext_headers`], so
//! that [`Ipv6Repr::emit`] reproduces it exactly; [`Ipv6ExtHeaders`] and
//! [`Ipv6Options`] walk it again for callers that need a header or option.
//!
//! # Fragments
//!
//! A Fragment header fills [`Ipv6Repr::fragment`]. An atomic fragment
//! (offset 0 and M clear, RFC 8200 §4.5, RFC 6946) is reported there too,
//! but [`Ipv6Repr::is_fragment`] is false for it: it holds a whole packet
//! and is processed like one, with the walk continuing past the Fragment
//! header. For a first fragment (offset 0, M set) the walk also continues,
//! since RFC 8200 §4.5 (and RFC 7112) require the whole chain in it. For a
//! later fragment (offset non-zero) the walk stops at the Fragment header:
//! the upper-layer protocol is its Next Header field and the payload is the
//! fragment data. Nothing here reassembles: the caller refuses fragments
//! (counting them as [`WireError::Fragment`]). A second Fragment header is
//! [`WireError::Unsupported`].
//!
//! # Emission
//!
//! [`Ipv6Repr::emit`] writes the fixed header and the raw chain as held.
//! New packets, without extension headers, start from [`Ipv6Repr::new`] and
//! are written with [`Ipv6Repr::emit_with_len`], which fills in the payload
//! length.

use core::net::Ipv6Addr;

use zerocopy::byteorder::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::ip_proto;
use super::{Result, WireError};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Most extension headers walked in one packet.
pub const MAX_EXT_HEADERS: usize = 8;

/// Largest flow label (20 bits).
const FLOW_LABEL_MAX: u32 = 0x000f_ffff;

/// Length of a Fragment header (RFC 8200 §4.5).
const FRAGMENT_HEADER_LEN: usize = 8;

/// Length of the fixed part of an Authentication Header (RFC 4302 §2).
const AH_MIN_LEN: usize = 12;

/// Option types for Hop-by-Hop and Destination Options headers (IANA
/// "Destination Options and Hop-by-Hop Options").
pub mod option_type {
    /// Pad1 (RFC 8200 §4.2): a single zero byte.
    pub const PAD1: u8 = 0x00;
    /// PadN (RFC 8200 §4.2): type, length, zeroes.
    pub const PADN: u8 = 0x01;
    /// Router Alert (RFC 2711).
    pub const ROUTER_ALERT: u8 = 0x05;
    /// Jumbo Payload (RFC 2675).
    pub const JUMBO: u8 = 0xc2;
}

/// The fixed IPv6 header as it sits in a frame (RFC 8200 §3).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct Ipv6Header {
    /// Version (4 bits), Traffic Class (8 bits), Flow Label (20 bits).
    pub ver_tc_flow: U32,
    /// Length of everything after this header, extension headers included.
    pub payload_len: U16,
    /// Type of the first header after this one.
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

impl Ipv6Header {
    /// The version field (6 for IPv6).
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow.get() >> 28) as u8
    }

    /// Traffic Class: DSCP and ECN (RFC 2474 §3, RFC 3168 §5).
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow.get() >> 20) as u8
    }

    /// Flow Label (RFC 6437).
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow.get() & FLOW_LABEL_MAX
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst)
    }
}

/// The fields of a Fragment header (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6FragInfo {
    /// Fragment offset in 8-octet units (13 bits).
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more_fragments: bool,
    /// Identification.
    pub ident: u32,
}

impl Ipv6FragInfo {
    /// Whether this is part of a fragmented packet, i.e. not an atomic
    /// fragment (RFC 6946): offset non-zero or M set.
    pub fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more_fragments
    }
}

/// A parsed IPv6 header and extension-header chain, borrowing the chain
/// from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic Class: DSCP and ECN.
    pub traffic_class: u8,
    /// Flow Label (20 bits).
    pub flow_label: u32,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Payload length as found, extension headers included (written as is
    /// by [`Ipv6Repr::emit`]).
    pub payload_len: u16,
    /// Next Header of the fixed header: the first extension header, or the
    /// upper-layer protocol if there is none.
    pub next_header: u8,
    /// Raw bytes of the extension-header chain that was walked.
    pub ext_headers: &'a [u8],
    /// The protocol of the payload returned by [`Ipv6Repr::parse`]: the
    /// final Next Header (ESP for encrypted payloads, No Next Header for
    /// none; for a non-first fragment, the Fragment header's Next Header).
    pub upper_protocol: u8,
    /// The Fragment header's fields, if there is one (atomic fragments
    /// included).
    pub fragment: Option<Ipv6FragInfo>,
}

impl<'a> Ipv6Repr<'a> {
    /// A header for a new packet without extension headers: Traffic Class
    /// and Flow Label 0; the payload length is filled in by
    /// [`Ipv6Repr::emit_with_len`].
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8, hop_limit: u8) -> Self {
        Ipv6Repr {
            src,
            dst,
            traffic_class: 0,
            flow_label: 0,
            hop_limit,
            payload_len: 0,
            next_header: protocol,
            ext_headers: &[],
            upper_protocol: protocol,
            fragment: None,
        }
    }

    /// Parse an IPv6 packet into its header, extension chain and
    /// upper-layer payload (see the module documentation for the walk).
    ///
    /// The payload ends at the payload length; trailing bytes are ignored.
    /// Fragments parse successfully: see [`Ipv6Repr::is_fragment`].
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if the header or the payload length runs
    /// past the bytes present; [`WireError::Unsupported`] for a version
    /// other than 6, a jumbogram or a second Fragment header;
    /// [`WireError::BadLength`] for an extension header running past the
    /// payload length; [`WireError::Malformed`] for a Hop-by-Hop header
    /// that is not first, a malformed option or a too-short AH;
    /// [`WireError::TooMany`] for more than [`MAX_EXT_HEADERS`] extension
    /// headers.
    pub fn parse(packet: &'a [u8]) -> Result<(Ipv6Repr<'a>, &'a [u8])> {
        let (hdr, rest) = Ipv6Header::ref_from_prefix(packet).map_err(|_| WireError::Truncated)?;
        if hdr.version() != 6 {
            return Err(WireError::Unsupported);
        }
        let payload_len = hdr.payload_len.get();
        if payload_len == 0 && hdr.next_header == ip_proto::HOPOPTS {
            return Err(WireError::Unsupported);
        }
        let body = rest
            .get(..usize::from(payload_len))
            .ok_or(WireError::Truncated)?;

        let mut next = hdr.next_header;
        let mut offset = 0;
        let mut count = 0;
        let mut fragment: Option<Ipv6FragInfo> = None;
        // Each iteration either ends the walk or counts one more header.
        let payload: &[u8] = loop {
            let rest = body.get(offset..).ok_or(WireError::BadLength)?;
            if next == ip_proto::NONE {
                break &[];
            }
            if !is_ext_header(next) {
                break rest;
            }
            if count == MAX_EXT_HEADERS {
                return Err(WireError::TooMany);
            }
            if next == ip_proto::HOPOPTS && count != 0 {
                return Err(WireError::Malformed);
            }
            let len = ext_header_len(next, rest).ok_or(WireError::BadLength)?;
            let ext = rest.get(..len).ok_or(WireError::BadLength)?;
            let ext_next = *ext.first().ok_or(WireError::BadLength)?;
            match next {
                ip_proto::HOPOPTS | ip_proto::DSTOPTS => {
                    validate_options(ext.get(2..).ok_or(WireError::BadLength)?)?;
                }
                ip_proto::AH if len < AH_MIN_LEN => return Err(WireError::Malformed),
                ip_proto::FRAGMENT => {
                    if fragment.is_some() {
                        return Err(WireError::Unsupported);
                    }
                    let info = frag_info(ext).ok_or(WireError::BadLength)?;
                    fragment = Some(info);
                    if info.offset != 0 {
                        // Fragment data, not headers, follows.
                        offset += len;
                        next = ext_next;
                        break body.get(offset..).ok_or(WireError::BadLength)?;
                    }
                }
                _ => {}
            }
            count += 1;
            offset += len;
            next = ext_next;
        };
        let ext_headers = body.get(..offset).ok_or(WireError::BadLength)?;
        let repr = Ipv6Repr {
            src: hdr.src_addr(),
            dst: hdr.dst_addr(),
            traffic_class: hdr.traffic_class(),
            flow_label: hdr.flow_label(),
            hop_limit: hdr.hop_limit,
            payload_len,
            next_header: hdr.next_header,
            ext_headers,
            upper_protocol: next,
            fragment,
        };
        Ok((repr, payload))
    }

    /// Whether this packet is a fragment: a Fragment header with a non-zero
    /// offset or M set. Atomic fragments are not. Callers refuse fragments.
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some_and(|f| f.is_fragment())
    }

    /// Offset of the upper-layer payload from the start of the packet: the
    /// fixed header plus the extension chain.
    pub fn upper_offset(&self) -> usize {
        HEADER_LEN + self.ext_headers.len()
    }

    /// Header length in bytes, extension chain included (same as
    /// [`Ipv6Repr::upper_offset`]).
    pub fn header_len(&self) -> usize {
        self.upper_offset()
    }

    /// Bytes [`Ipv6Repr::emit`] writes: the header and extension chain.
    pub fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Walk the extension headers held in [`Ipv6Repr::ext_headers`].
    pub fn ext_header_iter(&self) -> Ipv6ExtHeaders<'a> {
        Ipv6ExtHeaders::new(self.next_header, self.ext_headers)
    }

    /// Write the fixed header, with the payload length as held, and the
    /// extension chain. Returns the bytes written.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] if the flow label exceeds 20 bits;
    /// [`WireError::BufferTooSmall`] if `buf` cannot hold the header and
    /// chain.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.emit_inner(buf, self.payload_len)
    }

    /// Write the header and extension chain for an upper-layer payload of
    /// `upper_len` bytes, computing the payload length: the path for new
    /// packets. Returns the bytes written.
    ///
    /// # Errors
    ///
    /// [`WireError::BadLength`] if the payload length would exceed 65535
    /// (we send no jumbograms); otherwise as [`Ipv6Repr::emit`].
    pub fn emit_with_len(&self, buf: &mut [u8], upper_len: usize) -> Result<usize> {
        let payload_len = self
            .ext_headers
            .len()
            .checked_add(upper_len)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(WireError::BadLength)?;
        self.emit_inner(buf, payload_len)
    }

    fn emit_inner(&self, buf: &mut [u8], payload_len: u16) -> Result<usize> {
        if self.flow_label > FLOW_LABEL_MAX {
            return Err(WireError::Malformed);
        }
        let len = self.header_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (fixed, chain) = out.split_at_mut(HEADER_LEN);
        let hdr = Ipv6Header {
            ver_tc_flow: U32::new(
                (6 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label,
            ),
            payload_len: U16::new(payload_len),
            next_header: self.next_header,
            hop_limit: self.hop_limit,
            src: self.src.octets(),
            dst: self.dst.octets(),
        };
        hdr.write_to(fixed).map_err(|_| WireError::BufferTooSmall)?;
        chain.copy_from_slice(self.ext_headers);
        Ok(len)
    }
}

/// Whether `kind` is an extension header the walk steps over.
fn is_ext_header(kind: u8) -> bool {
    matches!(
        kind,
        ip_proto::HOPOPTS
            | ip_proto::ROUTING
            | ip_proto::FRAGMENT
            | ip_proto::DSTOPTS
            | ip_proto::AH
            | ip_proto::MOBILITY
    )
}

/// Length of the extension header of type `kind` at the start of `bytes`,
/// from its length field; `None` if the length field is missing.
fn ext_header_len(kind: u8, bytes: &[u8]) -> Option<usize> {
    let len_field = usize::from(*bytes.get(1)?);
    Some(match kind {
        ip_proto::FRAGMENT => FRAGMENT_HEADER_LEN,
        ip_proto::AH => (len_field + 2) * 4,
        _ => (len_field + 1) * 8,
    })
}

/// Decode a Fragment header (RFC 8200 §4.5).
fn frag_info(ext: &[u8]) -> Option<Ipv6FragInfo> {
    let off_m = u16::from_be_bytes([*ext.get(2)?, *ext.get(3)?]);
    let id = ext.get(4..8)?;
    Some(Ipv6FragInfo {
        offset: off_m >> 3,
        more_fragments: off_m & 1 != 0,
        ident: u32::from_be_bytes([*id.first()?, *id.get(1)?, *id.get(2)?, *id.get(3)?]),
    })
}

/// Check the options area of a Hop-by-Hop or Destination Options header
/// (the bytes after Next Header and Hdr Ext Len, RFC 8200 §4.2): Pad1 is one
/// byte, every other option is type, length and data within the area.
///
/// # Errors
///
/// [`WireError::Malformed`] for an option without room for its length
/// byte or running past the area.
pub fn validate_options(area: &[u8]) -> Result<()> {
    let mut rest = area;
    // Each step consumes at least one byte: bounded by area.len().
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == option_type::PAD1 {
            rest = tail;
        } else {
            let (_, after) = split_option(rest).ok_or(WireError::Malformed)?;
            rest = after;
        }
    }
    Ok(())
}

/// Split a TLV option off the front of `bytes`: the option and the rest,
/// or `None` if malformed.
fn split_option(bytes: &[u8]) -> Option<(Ipv6Option<'_>, &[u8])> {
    let (&kind, tail) = bytes.split_first()?;
    let (&len, tail) = tail.split_first()?;
    let (data, after) = tail.split_at_checked(usize::from(len))?;
    Some((Ipv6Option { kind, data }, after))
}

/// One option of a Hop-by-Hop or Destination Options header (RFC 8200
/// §4.2), borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Option<'a> {
    /// Option type (see [`option_type`]).
    pub kind: u8,
    /// Option data, after the type and length bytes.
    pub data: &'a [u8],
}

impl Ipv6Option<'_> {
    /// The two high-order bits of the type: what a node that does not
    /// recognise the option must do (0 skip, 1 discard, 2 discard and send
    /// ICMP Parameter Problem, 3 the same unless the destination is
    /// multicast; RFC 8200 §4.2).
    pub fn action(&self) -> u8 {
        self.kind >> 6
    }
}

/// Iterator over the options of a Hop-by-Hop or Destination Options header,
/// skipping Pad1 and PadN. It stops (and stays stopped) at a malformed
/// option; [`validate_options`] tells whether there is one.
#[derive(Debug, Clone)]
pub struct Ipv6Options<'a> {
    rest: &'a [u8],
}

impl<'a> Ipv6Options<'a> {
    /// Walk an options area: the bytes of the header after its first two.
    pub fn new(area: &'a [u8]) -> Self {
        Ipv6Options { rest: area }
    }
}

impl<'a> Iterator for Ipv6Options<'a> {
    type Item = Ipv6Option<'a>;

    fn next(&mut self) -> Option<Ipv6Option<'a>> {
        // Each step consumes at least one byte: bounded by the area length.
        loop {
            let (&kind, tail) = self.rest.split_first()?;
            if kind == option_type::PAD1 {
                self.rest = tail;
                continue;
            }
            let Some((opt, after)) = split_option(self.rest) else {
                self.rest = &[];
                return None;
            };
            self.rest = after;
            if kind != option_type::PADN {
                return Some(opt);
            }
        }
    }
}

/// One extension header of a chain, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeader<'a> {
    /// Its type (the previous header's Next Header), see
    /// [`super::ip_proto`].
    pub kind: u8,
    /// The whole header, Next Header byte first.
    pub bytes: &'a [u8],
}

impl<'a> Ipv6ExtHeader<'a> {
    /// The type of the header that follows.
    pub fn next_header(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(ip_proto::NONE)
    }

    /// The options of a Hop-by-Hop or Destination Options header (nothing
    /// for other types).
    pub fn options(&self) -> Ipv6Options<'a> {
        let area = match self.kind {
            ip_proto::HOPOPTS | ip_proto::DSTOPTS => self.bytes.get(2..).unwrap_or(&[]),
            _ => &[],
        };
        Ipv6Options::new(area)
    }

    /// The Fragment header's fields, if this is one.
    pub fn fragment(&self) -> Option<Ipv6FragInfo> {
        if self.kind == ip_proto::FRAGMENT {
            frag_info(self.bytes)
        } else {
            None
        }
    }
}

/// Iterator over an extension-header chain such as
/// [`Ipv6Repr::ext_headers`]; it ends with the chain, at a type that is not
/// an extension header, or at a header running past the bytes.
#[derive(Debug, Clone)]
pub struct Ipv6ExtHeaders<'a> {
    next: u8,
    rest: &'a [u8],
}

impl<'a> Ipv6ExtHeaders<'a> {
    /// Walk `chain`, whose first header has type `first` (the fixed
    /// header's Next Header).
    pub fn new(first: u8, chain: &'a [u8]) -> Self {
        Ipv6ExtHeaders {
            next: first,
            rest: chain,
        }
    }
}

impl<'a> Iterator for Ipv6ExtHeaders<'a> {
    type Item = Ipv6ExtHeader<'a>;

    fn next(&mut self) -> Option<Ipv6ExtHeader<'a>> {
        // Every header is at least 8 bytes: bounded by the chain length.
        if !is_ext_header(self.next) {
            return None;
        }
        let split =
            ext_header_len(self.next, self.rest).and_then(|len| self.rest.split_at_checked(len));
        let Some((bytes, after)) = split else {
            self.rest = &[];
            self.next = ip_proto::NONE;
            return None;
        };
        let header = Ipv6ExtHeader {
            kind: self.next,
            bytes,
        };
        self.next = header.next_header();
        self.rest = after;
        Some(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode a hex fixture, ignoring whitespace.
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    // Frames captured with tcpdump on a veth pair between two namespaces
    // (2001:db8::1 <-> 2001:db8::2, MTU 1500). The extension headers of
    // V6_DSTOPTS, V6_HBH_DST_* and V6_ROUTING were requested from the
    // kernel with the IPV6_DSTOPTS, IPV6_HOPOPTS and IPV6_RTHDR socket
    // options on UDP sockets.

    /// MLDv2 report sent when the interface came up: Hop-by-Hop with Router Alert + PadN (96 bytes, Ethernet header stripped).
    const V6_MLD2: &str = "
        6000000000380001fe800000000000007cc0acfffea2f9b9ff0200000000000000000000000000163a000502
        000001008f0052740000000204000000ff0200000000000000000001ffa2f9b904000000ff02000000000000
        00000001ff000002
    ";

    /// ICMPv6 echo request with a flow label (104 bytes, Ethernet header stripped).
    const V6_ECHO: &str = "
        600b5ced00403a4020010db800000000000000000000000120010db80000000000000000000000028000f726
        20dd0001704e026b00000000d97e010000000000101112131415161718191a1b1c1d1e1f2021222324252627
        28292a2b2c2d2e2f3031323334353637
    ";

    /// First fragment of a 3000-byte `ping -6` (offset 0, M set) (1496 bytes, Ethernet header stripped).
    const V6_FRAG_FIRST: &str = "
        600b5ced05b02c4020010db800000000000000000000000120010db80000000000000000000000023a000001
        ead1c55b8000e5b620de0001704e026b00000000be92010000000000101112131415161718191a1b1c1d1e1f
        202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b
        4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677
        78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3
        a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf
        d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafb
        fcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627
        28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253
        5455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f
        808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaab
        acadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7
        d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203
        0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f
        303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b
        5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384858687
        88898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3
        b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf
        e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b
        0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637
        38393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263
        6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f
        909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babb
        bcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7
        e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213
        1415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
        404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b
        6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091929394959697
        98999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3
        c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef
        f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b
        1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647
        48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273
        7475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f
    ";

    /// Middle fragment (offset 181 units = 1448 bytes, M set) (1496 bytes, Ethernet header stripped).
    const V6_FRAG_MIDDLE: &str = "
        600b5ced05b02c4020010db800000000000000000000000120010db80000000000000000000000023a0005a9
        ead1c55ba0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7
        c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3
        f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
        202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b
        4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f7071727374757677
        78797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3
        a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf
        d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafb
        fcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627
        28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f50515253
        5455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f
        808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaab
        acadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7
        d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00010203
        0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f
        303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b
        5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384858687
        88898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3
        b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf
        e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b
        0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637
        38393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263
        6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f
        909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babb
        bcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7
        e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f10111213
        1415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
        404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b
        6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f9091929394959697
        98999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3
        c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef
        f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b
        1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647
    ";

    /// Last fragment (offset 362 units = 2896 bytes, M clear) (160 bytes, Ethernet header stripped).
    const V6_FRAG_LAST: &str = "
        600b5ced00782c4020010db800000000000000000000000120010db80000000000000000000000023a000b50
        ead1c55b48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f
        707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b
        9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7
    ";

    /// UDP with a Destination Options header (experimental option 0x1e + PadN) (68 bytes, Ethernet header stripped).
    const V6_DSTOPTS: &str = "
        600e8041001c3c4020010db800000000000000000000000120010db800000000000000000000000211001e02
        aabb0100914d270f001447966473746f7074732d74657374
    ";

    /// UDP via IPV6_HOPOPTS + IPV6_DSTOPTS, 2000 bytes: HBH, DstOpts, Fragment (first) (1496 bytes, Ethernet header stripped).
    const V6_HBH_DST_FRAG_FIRST: &str = "
        6009069705b0004020010db800000000000000000000000120010db80000000000000000000000023c001e02
        aabb01002c001e02ccdd01001100000138b61d73d0c9270f07d8065a78787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
    ";

    /// Second fragment of the same: HBH, DstOpts, Fragment (offset 179 units, M clear) (640 bytes, Ethernet header stripped).
    const V6_HBH_DST_FRAG_LAST: &str = "
        600906970258004020010db800000000000000000000000120010db80000000000000000000000023c001e02
        aabb01002c001e02ccdd01001100059838b61d73787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878
        787878787878787878787878787878787878787878787878
    ";

    /// UDP with a Segment Routing header (Routing type 4, two segments) (98 bytes, Ethernet header stripped).
    const V6_ROUTING: &str = "
        600b0b87003a2b4020010db800000000000000000000000120010db800000000000000000000000211040401
        0100000020010db800000000000000000000000320010db80000000000000000000000029e14270f0012aa50
        72746864722d74657374
    ";

    const ALL: [&str; 9] = [
        V6_MLD2,
        V6_ECHO,
        V6_FRAG_FIRST,
        V6_FRAG_MIDDLE,
        V6_FRAG_LAST,
        V6_DSTOPTS,
        V6_HBH_DST_FRAG_FIRST,
        V6_HBH_DST_FRAG_LAST,
        V6_ROUTING,
    ];

    fn a() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }

    fn b() -> Ipv6Addr {
        "2001:db8::2".parse().unwrap()
    }

    /// Parse, then check that emitting the header and chain followed by the
    /// payload gives back the packet.
    fn round_trip(pkt: &[u8]) -> (Ipv6Repr<'_>, &[u8]) {
        let (repr, payload) = Ipv6Repr::parse(pkt).unwrap();
        assert_eq!(repr.upper_offset() + payload.len(), pkt.len());
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf), Ok(repr.header_len()));
        buf.extend_from_slice(payload);
        assert_eq!(buf, pkt);
        let mut buf2 = vec![0u8; repr.buffer_len()];
        assert_eq!(
            repr.emit_with_len(&mut buf2, payload.len()),
            Ok(repr.header_len())
        );
        assert_eq!(buf2[..], pkt[..repr.header_len()]);
        (repr, payload)
    }

    #[test]
    fn mldv2_report_with_router_alert() {
        let pkt = hex(V6_MLD2);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(
            repr.src,
            "fe80::7cc0:acff:fea2:f9b9".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(repr.dst, "ff02::16".parse::<Ipv6Addr>().unwrap());
        assert_eq!(repr.hop_limit, 1);
        assert_eq!((repr.traffic_class, repr.flow_label), (0, 0));
        assert_eq!(repr.payload_len, 56);
        assert_eq!(repr.next_header, ip_proto::HOPOPTS);
        assert_eq!(repr.upper_protocol, ip_proto::ICMPV6);
        assert_eq!(repr.ext_headers, [0x3a, 0, 5, 2, 0, 0, 1, 0]);
        assert_eq!(repr.upper_offset(), 48);
        assert_eq!(repr.fragment, None);
        assert!(!repr.is_fragment());
        assert_eq!(payload.len(), 48);
        assert_eq!(payload[0], 143, "MLDv2 report");
        let exts: Vec<_> = repr.ext_header_iter().collect();
        assert_eq!(exts.len(), 1);
        assert_eq!(exts[0].kind, ip_proto::HOPOPTS);
        assert_eq!(exts[0].next_header(), ip_proto::ICMPV6);
        let opts: Vec<_> = exts[0].options().collect();
        assert_eq!(
            opts,
            [Ipv6Option {
                kind: option_type::ROUTER_ALERT,
                data: &[0, 0]
            }]
        );
        assert_eq!(opts[0].action(), 0);
    }

    #[test]
    fn echo_request_with_flow_label() {
        let pkt = hex(V6_ECHO);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!((repr.src, repr.dst), (a(), b()));
        assert_eq!(repr.flow_label, 0xb5ced);
        assert_eq!(repr.traffic_class, 0);
        assert_eq!(repr.hop_limit, 64);
        assert_eq!(repr.next_header, ip_proto::ICMPV6);
        assert_eq!(repr.upper_protocol, ip_proto::ICMPV6);
        assert!(repr.ext_headers.is_empty());
        assert_eq!(repr.ext_header_iter().count(), 0);
        assert_eq!(payload.len(), 64);
        assert_eq!(payload[0], 128, "echo request");
    }

    #[test]
    fn fragments() {
        let pkt = hex(V6_FRAG_FIRST);
        let (repr, payload) = round_trip(&pkt);
        let info = Ipv6FragInfo {
            offset: 0,
            more_fragments: true,
            ident: 0xead1_c55b,
        };
        assert_eq!(repr.fragment, Some(info));
        assert!(repr.is_fragment());
        assert_eq!(repr.next_header, ip_proto::FRAGMENT);
        // First fragment: the walk goes on to the ICMPv6 header.
        assert_eq!(repr.upper_protocol, ip_proto::ICMPV6);
        assert_eq!(payload.len(), 1448);
        assert_eq!(payload[0], 128);
        let exts: Vec<_> = repr.ext_header_iter().collect();
        assert_eq!(exts.len(), 1);
        assert_eq!(exts[0].fragment(), Some(info));

        let pkt = hex(V6_FRAG_MIDDLE);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(
            repr.fragment,
            Some(Ipv6FragInfo {
                offset: 181,
                more_fragments: true,
                ident: 0xead1_c55b
            })
        );
        assert!(repr.is_fragment());
        // Later fragment: the Fragment header's Next Header, fragment data.
        assert_eq!(repr.upper_protocol, ip_proto::ICMPV6);
        assert_eq!(payload.len(), 1448);

        let pkt = hex(V6_FRAG_LAST);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(
            repr.fragment,
            Some(Ipv6FragInfo {
                offset: 362,
                more_fragments: false,
                ident: 0xead1_c55b
            })
        );
        assert_eq!(usize::from(repr.fragment.unwrap().offset) * 8, 2896);
        assert!(repr.is_fragment());
        assert_eq!(payload.len(), 112);
    }

    #[test]
    fn destination_options() {
        let pkt = hex(V6_DSTOPTS);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(repr.next_header, ip_proto::DSTOPTS);
        assert_eq!(repr.upper_protocol, ip_proto::UDP);
        assert_eq!(repr.ext_headers.len(), 8);
        assert_eq!(payload.len(), 20);
        assert_eq!(payload[2..4], 9999u16.to_be_bytes());
        assert_eq!(&payload[8..], b"dstopts-test");
        let ext = repr.ext_header_iter().next().unwrap();
        let opts: Vec<_> = ext.options().collect();
        assert_eq!(
            opts,
            [Ipv6Option {
                kind: 0x1e,
                data: &[0xaa, 0xbb]
            }]
        );
    }

    #[test]
    fn hop_by_hop_destination_options_and_fragment() {
        let pkt = hex(V6_HBH_DST_FRAG_FIRST);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(repr.flow_label, 0x90697);
        assert_eq!(repr.next_header, ip_proto::HOPOPTS);
        assert_eq!(repr.upper_protocol, ip_proto::UDP);
        assert_eq!(repr.ext_headers.len(), 24);
        let kinds: Vec<_> = repr.ext_header_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [ip_proto::HOPOPTS, ip_proto::DSTOPTS, ip_proto::FRAGMENT]
        );
        let info = repr.fragment.unwrap();
        assert_eq!((info.offset, info.more_fragments), (0, true));
        assert!(repr.is_fragment());
        assert_eq!(payload.len(), 1432);
        assert_eq!(payload[4..6], 2008u16.to_be_bytes(), "UDP length");

        let pkt = hex(V6_HBH_DST_FRAG_LAST);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(repr.ext_headers.len(), 24);
        assert_eq!(
            repr.fragment,
            Some(Ipv6FragInfo {
                offset: 179,
                more_fragments: false,
                ident: info.ident
            })
        );
        assert_eq!(repr.upper_protocol, ip_proto::UDP);
        assert_eq!(payload.len(), 576);
        assert!(payload.iter().all(|&c| c == b'x'));
    }

    #[test]
    fn routing_header() {
        let pkt = hex(V6_ROUTING);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(repr.next_header, ip_proto::ROUTING);
        assert_eq!(repr.upper_protocol, ip_proto::UDP);
        assert_eq!(repr.ext_headers.len(), 40);
        let rt = repr.ext_header_iter().next().unwrap();
        assert_eq!(rt.kind, ip_proto::ROUTING);
        assert_eq!(rt.bytes[2], 4, "segment routing");
        assert_eq!(rt.bytes[3], 1, "segments left");
        assert_eq!(rt.options().count(), 0);
        assert_eq!(rt.fragment(), None);
        let seg0: Ipv6Addr = "2001:db8::3".parse().unwrap();
        assert_eq!(rt.bytes[8..24], seg0.octets());
        assert_eq!(payload.len(), 18);
        assert_eq!(&payload[8..], b"rthdr-test");
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let pkt = hex(V6_DSTOPTS);
        let mut padded = pkt.clone();
        padded.extend_from_slice(&[0xee; 7]);
        let (repr, payload) = Ipv6Repr::parse(&padded).unwrap();
        assert_eq!(payload, &pkt[48..]);
        assert_eq!(repr, Ipv6Repr::parse(&pkt).unwrap().0);
    }

    #[test]
    fn every_truncation_is_rejected() {
        for fixture in ALL {
            let pkt = hex(fixture);
            for n in 0..pkt.len() {
                assert_eq!(
                    Ipv6Repr::parse(&pkt[..n]),
                    Err(WireError::Truncated),
                    "length {n}"
                );
            }
        }
    }

    /// Parse a mutated copy of `fixture`.
    fn mutated(fixture: &str, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let mut pkt = hex(fixture);
        f(&mut pkt);
        Ipv6Repr::parse(&pkt).map(|_| ())
    }

    /// Set the payload length field.
    fn set_plen(p: &mut [u8], len: usize) {
        p[4..6].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    }

    #[test]
    fn malformed_fixed_header() {
        assert_eq!(
            mutated(V6_ECHO, |p| p[0] = 0x40),
            Err(WireError::Unsupported)
        );
        assert_eq!(
            mutated(V6_ECHO, |p| p[0] = 0x70),
            Err(WireError::Unsupported)
        );
        assert_eq!(
            mutated(V6_ECHO, |p| set_plen(p, 65)),
            Err(WireError::Truncated)
        );
        // A jumbogram's zero payload length with Hop-by-Hop.
        assert_eq!(
            mutated(V6_MLD2, |p| set_plen(p, 0)),
            Err(WireError::Unsupported)
        );
        // Zero payload length without Hop-by-Hop is just empty.
        let pkt = hex(V6_ECHO);
        let mut empty = pkt.clone();
        set_plen(&mut empty, 0);
        let (repr, payload) = Ipv6Repr::parse(&empty).unwrap();
        assert!(payload.is_empty());
        assert_eq!(repr.upper_protocol, ip_proto::ICMPV6);
    }

    #[test]
    fn malformed_chain() {
        // Destination Options header claiming 48 bytes of a 28-byte payload.
        assert_eq!(
            mutated(V6_DSTOPTS, |p| p[41] = 5),
            Err(WireError::BadLength)
        );
        // Payload cut inside the Destination Options header.
        for len in 0..8 {
            assert_eq!(
                mutated(V6_DSTOPTS, |p| set_plen(p, len)),
                Err(WireError::BadLength),
                "{len}"
            );
        }
        // ... and inside the Fragment header.
        for len in 0..8 {
            assert_eq!(
                mutated(V6_FRAG_LAST, |p| set_plen(p, len)),
                Err(WireError::BadLength),
                "{len}"
            );
        }
        // Payload ending right after the chain: empty upper-layer payload.
        assert_eq!(mutated(V6_DSTOPTS, |p| set_plen(p, 8)), Ok(()));
        // Hop-by-Hop after Destination Options.
        assert_eq!(
            mutated(V6_DSTOPTS, |p| p[40] = ip_proto::HOPOPTS),
            Err(WireError::Malformed)
        );
        // Hop-by-Hop after Hop-by-Hop.
        assert_eq!(
            mutated(V6_HBH_DST_FRAG_LAST, |p| p[40] = ip_proto::HOPOPTS),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn malformed_options() {
        // MLD Hop-by-Hop: 3a 00 | 05 02 00 00 | 01 00.
        // PadN of 1 runs past the header.
        assert_eq!(mutated(V6_MLD2, |p| p[47] = 1), Err(WireError::Malformed));
        // Router Alert of 5 runs past the header.
        assert_eq!(mutated(V6_MLD2, |p| p[43] = 5), Err(WireError::Malformed));
        // A type byte in the last position, no room for its length.
        assert_eq!(
            mutated(V6_MLD2, |p| {
                p[42..47].fill(option_type::PAD1);
                p[47] = option_type::ROUTER_ALERT;
            }),
            Err(WireError::Malformed)
        );
        // Pad1 all the way is fine.
        assert_eq!(mutated(V6_MLD2, |p| p[42..48].fill(0)), Ok(()));
        // Destination Options: 11 00 | 1e 02 aa bb | 01 00. Option length
        // 3 swallows the PadN type and leaves a Pad1; 4 ends exactly at the
        // end of the header; 5 runs past it.
        assert_eq!(mutated(V6_DSTOPTS, |p| p[43] = 3), Ok(()));
        assert_eq!(mutated(V6_DSTOPTS, |p| p[43] = 4), Ok(()));
        assert_eq!(
            mutated(V6_DSTOPTS, |p| p[43] = 5),
            Err(WireError::Malformed)
        );
        // In the second header of a chain too.
        assert_eq!(
            mutated(V6_HBH_DST_FRAG_LAST, |p| p[51] = 5),
            Err(WireError::Malformed)
        );
    }

    /// A packet from the V6_ECHO header with `chain` (first type `first`)
    /// and `upper` as payload.
    fn synth(first: u8, chain: &[u8], upper: &[u8]) -> Vec<u8> {
        let mut p = hex(V6_ECHO)[..40].to_vec();
        p[6] = first;
        set_plen(&mut p, chain.len() + upper.len());
        p.extend_from_slice(chain);
        p.extend_from_slice(upper);
        p
    }

    #[test]
    fn extension_header_limit() {
        let upper = [0xabu8; 4];
        for n in [1, MAX_EXT_HEADERS, MAX_EXT_HEADERS + 1] {
            let mut chain = Vec::new();
            for i in 0..n {
                let next = if i + 1 == n {
                    ip_proto::NONE
                } else {
                    ip_proto::DSTOPTS
                };
                chain.extend_from_slice(&[next, 0, option_type::PADN, 4, 0, 0, 0, 0]);
            }
            let p = synth(ip_proto::DSTOPTS, &chain, &upper);
            if n > MAX_EXT_HEADERS {
                assert_eq!(Ipv6Repr::parse(&p), Err(WireError::TooMany));
            } else {
                let (repr, payload) = Ipv6Repr::parse(&p).unwrap();
                assert_eq!(repr.ext_headers.len(), 8 * n);
                assert_eq!(repr.ext_header_iter().count(), n);
                // No Next Header: empty payload, trailing bytes ignored.
                assert_eq!(repr.upper_protocol, ip_proto::NONE);
                assert!(payload.is_empty());
                let mut buf = vec![0; repr.buffer_len()];
                repr.emit(&mut buf).unwrap();
                assert_eq!(buf, p[..p.len() - upper.len()]);
            }
        }
    }

    #[test]
    fn ah_esp_mobility() {
        // AH (length 1 -> 12 bytes), then Mobility (8 bytes), then ESP.
        let mut chain = vec![ip_proto::MOBILITY, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
        chain.extend_from_slice(&[ip_proto::ESP, 0, 0, 0, 0, 0, 0, 0]);
        let esp = [0, 0, 1, 0, 0, 0, 0, 1, 0xde, 0xad];
        let p = synth(ip_proto::AH, &chain, &esp);
        let (repr, payload) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(repr.ext_headers.len(), 20);
        assert_eq!(repr.upper_protocol, ip_proto::ESP);
        assert_eq!(payload, esp);
        let kinds: Vec<_> = repr.ext_header_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [ip_proto::AH, ip_proto::MOBILITY]);
        // AH shorter than its fixed part.
        let short_ah = [ip_proto::UDP, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Ipv6Repr::parse(&synth(ip_proto::AH, &short_ah, &[])),
            Err(WireError::Malformed)
        );
        // AH length past the payload.
        chain[1] = 4;
        assert_eq!(
            Ipv6Repr::parse(&synth(ip_proto::AH, &chain, &esp)),
            Err(WireError::BadLength)
        );
    }

    #[test]
    fn atomic_and_duplicate_fragment_headers() {
        let echo = hex(V6_ECHO);
        let icmp = &echo[40..];
        let atomic = [ip_proto::ICMPV6, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        let p = synth(ip_proto::FRAGMENT, &atomic, icmp);
        let (repr, payload) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(
            repr.fragment,
            Some(Ipv6FragInfo {
                offset: 0,
                more_fragments: false,
                ident: 0x1234_5678
            })
        );
        assert!(!repr.is_fragment());
        assert_eq!(repr.upper_protocol, ip_proto::ICMPV6);
        assert_eq!(payload, icmp);

        let mut twice = atomic.to_vec();
        twice[0] = ip_proto::FRAGMENT;
        twice.extend_from_slice(&atomic);
        assert_eq!(
            Ipv6Repr::parse(&synth(ip_proto::FRAGMENT, &twice, icmp)),
            Err(WireError::Unsupported)
        );
        // A later fragment stops the walk: its data is not read as a chain
        // (here, bytes that would be a too-short AH).
        let later = [ip_proto::AH, 0, 0x00, 0x08, 0, 0, 0, 1];
        let p = synth(ip_proto::FRAGMENT, &later, &[ip_proto::UDP, 0, 0, 0]);
        let (repr, payload) = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(repr.upper_protocol, ip_proto::AH);
        assert!(repr.is_fragment());
        assert_eq!(payload.len(), 4);
    }

    #[test]
    fn builder() {
        let mut repr = Ipv6Repr::new(a(), b(), ip_proto::TCP, 255);
        repr.traffic_class = 0xb8;
        repr.flow_label = 0x12345;
        let mut buf = [0u8; 60];
        assert_eq!(repr.emit_with_len(&mut buf, 20), Ok(40));
        assert_eq!(
            buf[..8],
            [0x6b, 0x81, 0x23, 0x45, 0, 20, ip_proto::TCP, 255]
        );
        assert_eq!(buf[8..24], a().octets());
        assert_eq!(buf[24..40], b().octets());
        let (parsed, payload) = Ipv6Repr::parse(&buf).unwrap();
        assert_eq!(payload.len(), 20);
        assert_eq!(
            parsed,
            Ipv6Repr {
                payload_len: 20,
                ..repr
            }
        );

        for n in 0..40 {
            let mut short = vec![0u8; n];
            assert_eq!(repr.emit(&mut short), Err(WireError::BufferTooSmall));
            assert_eq!(
                repr.emit_with_len(&mut short, 0),
                Err(WireError::BufferTooSmall)
            );
        }
        assert_eq!(repr.emit_with_len(&mut buf, 65535), Ok(40));
        assert_eq!(
            repr.emit_with_len(&mut buf, 65536),
            Err(WireError::BadLength)
        );
        let chain = [ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0];
        let with_chain = Ipv6Repr {
            next_header: ip_proto::DSTOPTS,
            ext_headers: &chain,
            ..repr
        };
        assert_eq!(with_chain.emit_with_len(&mut buf, 0), Ok(48));
        assert_eq!(buf[4..6], [0, 8]);
        assert_eq!(
            with_chain.emit_with_len(&mut buf, 65528),
            Err(WireError::BadLength)
        );
        let bad_flow = Ipv6Repr {
            flow_label: 0x10_0000,
            ..repr
        };
        assert_eq!(bad_flow.emit(&mut buf), Err(WireError::Malformed));
    }

    #[test]
    fn options_iterator() {
        let area = [
            option_type::PAD1,
            option_type::PADN,
            1,
            0,
            option_type::JUMBO,
            4,
            0,
            1,
            0,
            0,
            option_type::PAD1,
        ];
        assert_eq!(validate_options(&area), Ok(()));
        let opts: Vec<_> = Ipv6Options::new(&area).collect();
        assert_eq!(
            opts,
            [Ipv6Option {
                kind: option_type::JUMBO,
                data: &[0, 1, 0, 0]
            }]
        );
        assert_eq!(opts[0].action(), 3);
        let bad = [0x3e, 0, 0x3e, 2, 0];
        assert_eq!(validate_options(&bad), Err(WireError::Malformed));
        let mut it = Ipv6Options::new(&bad);
        assert_eq!(it.next().map(|o| o.data.len()), Some(0));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }
}
