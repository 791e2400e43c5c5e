//! IPv4 header parsing and emission (RFC 791 §3.1, RFC 1122 §3.2.1).
//!
//! # Parsing
//!
//! [`Ipv4Repr::parse`] reads the fixed 20-byte [`Ipv4Header`] in place and
//! checks, in this order (RFC 1122 §3.2.1.1–§3.2.1.2):
//!
//! 1. at least 20 bytes are present ([`WireError::Truncated`]);
//! 2. the version is 4 ([`WireError::Unsupported`]);
//! 3. the Internet Header Length (IHL) is at least 5 words
//!    ([`WireError::Malformed`]) and the header it announces is present
//!    ([`WireError::Truncated`]);
//! 4. the total length covers at least the header ([`WireError::BadLength`])
//!    and no more than the bytes present ([`WireError::Truncated`]); bytes
//!    past the total length (Ethernet padding of short frames) are ignored;
//! 5. optionally, the header checksum ([`WireError::BadChecksum`]);
//! 6. the options (RFC 791 §3.1, "Options"): End of Option List and No
//!    Operation are single bytes, every other option is type, length (at
//!    least 2) and data, and must end inside the options area
//!    ([`WireError::Malformed`]). The walk stops at End of Option List; it
//!    advances at least one byte per step, so it is bounded by the 40 bytes
//!    an options area can hold.
//!
//! Options are kept as raw bytes in [`Ipv4Repr::options`]; [`Ipv4Options`]
//! walks them. Their contents (Record Route pointers, timestamps, source
//! routes) are not interpreted.
//!
//! # Fragments
//!
//! Fragments are parsed like any other datagram, with their fields exposed so
//! that captures round-trip, and recognised by [`Ipv4Repr::is_fragment`]
//! (More Fragments set or a non-zero offset, RFC 791 §3.2 "Fragmentation and
//! Reassembly"). Nothing here reassembles: the caller refuses fragments
//! (counting them as [`WireError::Fragment`]). A datagram with only Don't
//! Fragment set, or none of the flags, is not a fragment.
//!
//! # Emission
//!
//! [`Ipv4Repr::emit`] writes the header and options exactly as held,
//! including the checksum as found, so that parse-then-emit reproduces the
//! input. New datagrams start from [`Ipv4Repr::new`] and are written with
//! [`Ipv4Repr::emit_with_checksum`], which computes the header checksum.
//! [`fill_checksum`] recomputes the checksum of a header already in a buffer
//! (a template whose addresses or lengths were patched).

use core::net::Ipv4Addr;

use zerocopy::byteorder::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::checksum;
use super::{Result, WireError};

/// Length of the fixed IPv4 header, without options.
pub const HEADER_LEN: usize = 20;

/// Largest IPv4 header: IHL 15, i.e. 40 bytes of options (RFC 791 §3.1).
pub const MAX_HEADER_LEN: usize = 60;

/// Largest options area (RFC 791 §3.1).
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// Flag bit (in the flags/fragment-offset word): reserved, must be zero.
const FLAG_RESERVED: u16 = 0x8000;
/// Flag bit: Don't Fragment.
const FLAG_DF: u16 = 0x4000;
/// Flag bit: More Fragments.
const FLAG_MF: u16 = 0x2000;
/// Mask of the 13-bit fragment offset.
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// Option kinds (IANA "IP Option Numbers", full type octet).
pub mod option_kind {
    /// End of Option List (RFC 791): single byte, ends the options.
    pub const EOL: u8 = 0;
    /// No Operation (RFC 791): single byte, padding between options.
    pub const NOP: u8 = 1;
    /// Record Route (RFC 791).
    pub const RR: u8 = 7;
    /// Internet Timestamp (RFC 791).
    pub const TS: u8 = 68;
    /// Loose Source and Record Route (RFC 791).
    pub const LSRR: u8 = 131;
    /// Strict Source and Record Route (RFC 791).
    pub const SSRR: u8 = 137;
    /// Router Alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
}

/// The fixed part of an IPv4 header as it sits in a frame (RFC 791 §3.1).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct Ipv4Header {
    /// Version (high nibble) and Internet Header Length in 32-bit words
    /// (low nibble).
    pub version_ihl: u8,
    /// Type of Service byte: DSCP (high six bits) and ECN (low two bits),
    /// RFC 2474 §3 and RFC 3168 §5.
    pub tos: u8,
    /// Total length of the datagram, header included, in bytes.
    pub total_len: U16,
    /// Identification, for reassembly.
    pub ident: U16,
    /// Flags (reserved, DF, MF) and 13-bit fragment offset in 8-byte units.
    pub flags_frag: U16,
    /// Time to Live.
    pub ttl: u8,
    /// Protocol of the payload (see [`super::ip_proto`]).
    pub protocol: u8,
    /// Header checksum (RFC 791 §3.1, RFC 1071).
    pub checksum: U16,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
}

impl Ipv4Header {
    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.version_ihl >> 4
    }

    /// Header length in bytes as announced by the IHL field (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.version_ihl & 0x0f) * 4
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst)
    }
}

/// A parsed IPv4 header, borrowing its options from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload (see [`super::ip_proto`]).
    pub protocol: u8,
    /// Time to Live.
    pub ttl: u8,
    /// Type of Service byte: DSCP and ECN (RFC 2474 §3, RFC 3168 §5).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// The reserved flag bit, which senders must leave clear (RFC 791
    /// §3.1); kept so that parse-then-emit reproduces the input.
    pub reserved_flag: bool,
    /// Don't Fragment.
    pub dont_fragment: bool,
    /// More Fragments.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub frag_offset: u16,
    /// Raw options, padding included; the length is a multiple of 4 and at
    /// most [`MAX_OPTIONS_LEN`].
    pub options: &'a [u8],
    /// Header checksum as found (parsing) or to be written (by
    /// [`Ipv4Repr::emit`]).
    pub checksum: u16,
}

impl<'a> Ipv4Repr<'a> {
    /// A header for a new datagram: no options, TOS 0, identification 0,
    /// Don't Fragment set (we never fragment what we send; RFC 6864 §4.1
    /// lets atomic datagrams carry any identification), checksum 0 until
    /// [`Ipv4Repr::emit_with_checksum`] computes it.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, ttl: u8) -> Self {
        Ipv4Repr {
            src,
            dst,
            protocol,
            ttl,
            tos: 0,
            ident: 0,
            reserved_flag: false,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
            options: &[],
            checksum: 0,
        }
    }

    /// Parse an IPv4 datagram into its header and payload.
    ///
    /// The payload ends at the total length; trailing bytes (link-layer
    /// padding) are ignored. With `verify_checksum`, the header checksum
    /// must verify. Fragments parse successfully: see
    /// [`Ipv4Repr::is_fragment`].
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if the header or the announced total length
    /// runs past the bytes present, [`WireError::Unsupported`] if the version
    /// is not 4, [`WireError::Malformed`] for an IHL below 5 or a malformed
    /// option, [`WireError::BadLength`] if the total length is shorter than
    /// the header, [`WireError::BadChecksum`] if verification fails.
    pub fn parse(packet: &'a [u8], verify_checksum: bool) -> Result<(Ipv4Repr<'a>, &'a [u8])> {
        let (hdr, _) = Ipv4Header::ref_from_prefix(packet).map_err(|_| WireError::Truncated)?;
        if hdr.version() != 4 {
            return Err(WireError::Unsupported);
        }
        let header_len = hdr.header_len();
        if header_len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let header = packet.get(..header_len).ok_or(WireError::Truncated)?;
        let total_len = usize::from(hdr.total_len.get());
        if total_len < header_len {
            return Err(WireError::BadLength);
        }
        let payload = packet
            .get(header_len..total_len)
            .ok_or(WireError::Truncated)?;
        if verify_checksum && !checksum::verify(0, header) {
            return Err(WireError::BadChecksum);
        }
        let options = header.get(HEADER_LEN..).ok_or(WireError::Truncated)?;
        validate_options(options)?;
        let flags_frag = hdr.flags_frag.get();
        let repr = Ipv4Repr {
            src: hdr.src_addr(),
            dst: hdr.dst_addr(),
            protocol: hdr.protocol,
            ttl: hdr.ttl,
            tos: hdr.tos,
            ident: hdr.ident.get(),
            reserved_flag: flags_frag & FLAG_RESERVED != 0,
            dont_fragment: flags_frag & FLAG_DF != 0,
            more_fragments: flags_frag & FLAG_MF != 0,
            frag_offset: flags_frag & FRAG_OFFSET_MASK,
            options,
            checksum: hdr.checksum.get(),
        };
        Ok((repr, payload))
    }

    /// Whether this datagram is a fragment: More Fragments set or a
    /// non-zero fragment offset (RFC 791 §3.2). Callers refuse fragments.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Bytes [`Ipv4Repr::emit`] writes: the header with its options.
    pub fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// The options, padding (NOP, EOL) skipped.
    pub fn options_iter(&self) -> Ipv4Options<'a> {
        Ipv4Options::new(self.options)
    }

    /// Write the header and options, with the checksum as held, for a
    /// payload of `payload_len` bytes (which sets the total length).
    /// Returns the header length.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] if the options are not a multiple of 4 bytes
    /// or exceed [`MAX_OPTIONS_LEN`], or the fragment offset exceeds 13
    /// bits; [`WireError::BadLength`] if the total length would exceed
    /// 65535; [`WireError::BufferTooSmall`] if `buf` cannot hold the header.
    pub fn emit(&self, buf: &mut [u8], payload_len: usize) -> Result<usize> {
        self.emit_inner(buf, payload_len, self.checksum)
    }

    /// Like [`Ipv4Repr::emit`], but compute the header checksum instead of
    /// writing the one held: the path for new datagrams.
    ///
    /// # Errors
    ///
    /// As [`Ipv4Repr::emit`].
    pub fn emit_with_checksum(&self, buf: &mut [u8], payload_len: usize) -> Result<usize> {
        let len = self.emit_inner(buf, payload_len, 0)?;
        let header = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let csum = checksum::checksum(header);
        let field = header.get_mut(10..12).ok_or(WireError::BufferTooSmall)?;
        field.copy_from_slice(&csum.to_be_bytes());
        Ok(len)
    }

    fn emit_inner(&self, buf: &mut [u8], payload_len: usize, csum: u16) -> Result<usize> {
        let opt_len = self.options.len();
        if opt_len % 4 != 0 || opt_len > MAX_OPTIONS_LEN || self.frag_offset > FRAG_OFFSET_MASK {
            return Err(WireError::Malformed);
        }
        let header_len = HEADER_LEN + opt_len;
        let total_len = header_len
            .checked_add(payload_len)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(WireError::BadLength)?;
        let out = buf.get_mut(..header_len).ok_or(WireError::BufferTooSmall)?;
        let (fixed, opts) = out.split_at_mut(HEADER_LEN);
        let mut flags_frag = self.frag_offset;
        if self.reserved_flag {
            flags_frag |= FLAG_RESERVED;
        }
        if self.dont_fragment {
            flags_frag |= FLAG_DF;
        }
        if self.more_fragments {
            flags_frag |= FLAG_MF;
        }
        let hdr = Ipv4Header {
            // header_len <= 60, so the word count fits the nibble.
            version_ihl: 0x40 | (header_len / 4) as u8,
            tos: self.tos,
            total_len: U16::new(total_len),
            ident: U16::new(self.ident),
            flags_frag: U16::new(flags_frag),
            ttl: self.ttl,
            protocol: self.protocol,
            checksum: U16::new(csum),
            src: self.src.octets(),
            dst: self.dst.octets(),
        };
        hdr.write_to(fixed).map_err(|_| WireError::BufferTooSmall)?;
        opts.copy_from_slice(self.options);
        Ok(header_len)
    }
}

/// Recompute the checksum of the IPv4 header at the start of `header` (the
/// header length is taken from its IHL field), for templates whose fields
/// were patched in place.
///
/// # Errors
///
/// [`WireError::Truncated`] if `header` is shorter than the header its IHL
/// announces, [`WireError::Malformed`] if the IHL is below 5.
pub fn fill_checksum(header: &mut [u8]) -> Result<()> {
    let first = *header.first().ok_or(WireError::Truncated)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < HEADER_LEN {
        return Err(WireError::Malformed);
    }
    let header = header.get_mut(..header_len).ok_or(WireError::Truncated)?;
    let (start, rest) = header.split_at_mut(10);
    let (field, end) = rest.split_at_mut(2);
    let sum = checksum::sum(checksum::sum(0, start), end);
    field.copy_from_slice(&checksum::finish(sum).to_be_bytes());
    Ok(())
}

/// Check the syntax of an options area (RFC 791 §3.1): EOL and NOP are one
/// byte, any other option has a length of at least 2 that ends inside the
/// area. Bytes after an EOL are padding and not examined.
///
/// # Errors
///
/// [`WireError::Malformed`] for an option without room for its length byte,
/// with a length below 2, or running past the area.
pub fn validate_options(options: &[u8]) -> Result<()> {
    let mut rest = options;
    // Each step consumes at least one byte: bounded by options.len().
    while let Some((&kind, tail)) = rest.split_first() {
        match kind {
            option_kind::EOL => return Ok(()),
            option_kind::NOP => rest = tail,
            _ => {
                let (_, after) = split_option(rest).ok_or(WireError::Malformed)?;
                rest = after;
            }
        }
    }
    Ok(())
}

/// Split a type-length-value option off the front of `bytes`: returns the
/// option (kind, data) and the remaining bytes, or `None` if malformed.
fn split_option(bytes: &[u8]) -> Option<(Ipv4Option<'_>, &[u8])> {
    let (&kind, tail) = bytes.split_first()?;
    let len = usize::from(*tail.first()?);
    if len < 2 {
        return None;
    }
    let (opt, after) = bytes.split_at_checked(len)?;
    Some((
        Ipv4Option {
            kind,
            data: opt.get(2..)?,
        },
        after,
    ))
}

/// One IPv4 option (RFC 791 §3.1), borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// The option-type octet (copied flag, class and number), see
    /// [`option_kind`].
    pub kind: u8,
    /// The option data, after the type and length octets.
    pub data: &'a [u8],
}

/// Iterator over the options of an options area, skipping NOP padding and
/// stopping at End of Option List. It stops (and stays stopped) at the
/// first malformed option; [`validate_options`] tells whether there is one.
#[derive(Debug, Clone)]
pub struct Ipv4Options<'a> {
    rest: &'a [u8],
}

impl<'a> Ipv4Options<'a> {
    /// Walk the options area `options` (the bytes after the fixed header).
    pub fn new(options: &'a [u8]) -> Self {
        Ipv4Options { rest: options }
    }
}

impl<'a> Iterator for Ipv4Options<'a> {
    type Item = Ipv4Option<'a>;

    fn next(&mut self) -> Option<Ipv4Option<'a>> {
        // Each step consumes at least one byte: bounded by the area length.
        loop {
            let (&kind, tail) = self.rest.split_first()?;
            match kind {
                option_kind::EOL => {
                    self.rest = &[];
                    return None;
                }
                option_kind::NOP => self.rest = tail,
                _ => {
                    let Some((opt, after)) = split_option(self.rest) else {
                        self.rest = &[];
                        return None;
                    };
                    self.rest = after;
                    return Some(opt);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip_proto;

    /// Decode a hex fixture, ignoring whitespace.
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    // Frames captured with tcpdump on a veth pair between two namespaces
    // (192.0.2.1 <-> 192.0.2.2, MTU 1500).

    /// Echo request from `ping -R`: NOP + Record Route (40 option bytes), DF (124 bytes, Ethernet header stripped).
    const V4_RR_REQUEST: &str = "
        4f00007cd04a40004001f221c0000201c000020201072708c000020100000000000000000000000000000000
        00000000000000000000000000000000080084941f740001674e026b000000002a6a01000000000010111213
        1415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637
    ";

    /// Its echo reply: Record Route filled in, ended by EOL (124 bytes, Ethernet header stripped).
    const V4_RR_REPLY: &str = "
        4f00007c4baf000040018261c0000202c0000201072710c0000201c0000202c0000202000000000000000000
        0000000000000000000000000000000000008c941f740001674e026b000000002a6a01000000000010111213
        1415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637
    ";

    /// First fragment of a 3000-byte `ping` over MTU 1500 (MF, offset 0) (1500 bytes, Ethernet header stripped).
    const V4_FRAG_FIRST: &str = "
        450005dcd04b2000400100d2c0000201c000020208007ea61f750001674e026b000000000f7c010000000000
        101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b
        3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f6061626364656667
        68696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f90919293
        9495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf
        c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaeb
        ecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f1011121314151617
        18191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414243
        4445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f
        707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b
        9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7
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
        bcbdbebf
    ";

    /// Middle fragment (MF, offset 185 units = 1480 bytes) (1500 bytes, Ethernet header stripped).
    const V4_FRAG_MIDDLE: &str = "
        450005dcd04b20b940010019c0000201c0000202c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7
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
        a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacb
        cccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7
        f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223
        2425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f
        505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b
        7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7
        a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3
        d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff
        000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b
        2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657
        58595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283
        84858687
    ";

    /// Last fragment (offset 370 units = 2960 bytes, MF clear) (68 bytes, Ethernet header stripped).
    const V4_FRAG_LAST: &str = "
        45000044d04b0172400124f8c0000201c000020288898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f
        a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7
    ";

    /// TCP SYN to port 8080, DF, no IP options (60 bytes, Ethernet header stripped).
    const V4_TCP_SYN: &str = "
        4500003c8d6940004006294fc0000201c0000202ad641f905446a28900000000a002faf084320000020405b4
        0402080a6ea15ed1000000000103030a
    ";

    const ALL: [&str; 6] = [
        V4_RR_REQUEST,
        V4_RR_REPLY,
        V4_FRAG_FIRST,
        V4_FRAG_MIDDLE,
        V4_FRAG_LAST,
        V4_TCP_SYN,
    ];

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// Parse with checksum verification, then check that emitting the
    /// header (both as held and with a recomputed checksum) followed by the
    /// payload gives back the packet.
    fn round_trip(pkt: &[u8]) -> (Ipv4Repr<'_>, &[u8]) {
        let (repr, payload) = Ipv4Repr::parse(pkt, true).unwrap();
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf, payload.len()), Ok(repr.header_len()));
        buf.extend_from_slice(payload);
        assert_eq!(buf, pkt);
        let mut buf2 = vec![0u8; repr.buffer_len()];
        let n = repr.emit_with_checksum(&mut buf2, payload.len()).unwrap();
        assert_eq!(buf2[..n], pkt[..n]);
        (repr, payload)
    }

    #[test]
    fn record_route_request() {
        let pkt = hex(V4_RR_REQUEST);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!(repr.src, A);
        assert_eq!(repr.dst, B);
        assert_eq!(repr.protocol, ip_proto::ICMP);
        assert_eq!(repr.ttl, 64);
        assert_eq!(repr.tos, 0);
        assert_eq!(repr.ident, 0xd04a);
        assert!(repr.dont_fragment && !repr.more_fragments && !repr.reserved_flag);
        assert_eq!(repr.frag_offset, 0);
        assert!(!repr.is_fragment());
        assert_eq!(repr.checksum, 0xf221);
        assert_eq!(repr.header_len(), 60);
        assert_eq!(repr.options.len(), 40);
        assert_eq!(payload.len(), 64);
        assert_eq!(payload[0], 8, "ICMP echo request");
        let opts: Vec<_> = repr.options_iter().collect();
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].kind, option_kind::RR);
        // Length 39: pointer 8, then nine address slots, the first filled.
        assert_eq!(opts[0].data.len(), 37);
        assert_eq!(opts[0].data[0], 8);
        assert_eq!(opts[0].data[1..5], [192, 0, 2, 1]);
    }

    #[test]
    fn record_route_reply_ends_with_eol() {
        let pkt = hex(V4_RR_REPLY);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!((repr.src, repr.dst), (B, A));
        assert_eq!(repr.ident, 0x4baf);
        assert!(!repr.dont_fragment && !repr.is_fragment());
        assert_eq!(repr.options[0], option_kind::RR);
        assert_eq!(repr.options[39], option_kind::EOL);
        let opts: Vec<_> = repr.options_iter().collect();
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].data[0], 16, "pointer after three recorded hops");
        assert_eq!(opts[0].data[5..13], [192, 0, 2, 2, 192, 0, 2, 2]);
        assert_eq!(payload[0], 0, "ICMP echo reply");
    }

    #[test]
    fn fragments_are_parsed_and_recognised() {
        let first = hex(V4_FRAG_FIRST);
        let (repr, payload) = round_trip(&first);
        assert!(repr.more_fragments && !repr.dont_fragment);
        assert_eq!(repr.frag_offset, 0);
        assert_eq!(repr.ident, 0xd04b);
        assert!(repr.is_fragment());
        assert_eq!(payload.len(), 1480);
        assert_eq!(payload[0], 8, "first fragment starts with the ICMP header");

        let middle = hex(V4_FRAG_MIDDLE);
        let (repr, payload) = round_trip(&middle);
        assert!(repr.more_fragments);
        assert_eq!(repr.frag_offset, 185);
        assert!(repr.is_fragment());
        assert_eq!(payload.len(), 1480);

        let last = hex(V4_FRAG_LAST);
        let (repr, payload) = round_trip(&last);
        assert!(!repr.more_fragments);
        assert_eq!(repr.frag_offset, 370);
        assert_eq!(usize::from(repr.frag_offset) * 8, 2960);
        assert!(repr.is_fragment());
        assert_eq!(payload.len(), 48);
    }

    #[test]
    fn tcp_syn() {
        let pkt = hex(V4_TCP_SYN);
        let (repr, payload) = round_trip(&pkt);
        assert_eq!((repr.src, repr.dst), (A, B));
        assert_eq!(repr.protocol, ip_proto::TCP);
        assert_eq!(repr.ident, 36201);
        assert!(repr.dont_fragment && !repr.is_fragment());
        assert!(repr.options.is_empty());
        assert_eq!(repr.options_iter().count(), 0);
        assert_eq!(payload.len(), 40);
        assert_eq!(payload[2..4], 8080u16.to_be_bytes());
        assert_eq!(payload[13], 0x02, "SYN");
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let pkt = hex(V4_TCP_SYN);
        let mut padded = pkt.clone();
        padded.extend_from_slice(&[0; 6]);
        let (repr, payload) = Ipv4Repr::parse(&padded, true).unwrap();
        assert_eq!(payload, &pkt[20..]);
        assert_eq!(repr, Ipv4Repr::parse(&pkt, true).unwrap().0);
    }

    #[test]
    fn every_truncation_is_rejected() {
        for fixture in ALL {
            let pkt = hex(fixture);
            for n in 0..pkt.len() {
                assert_eq!(
                    Ipv4Repr::parse(&pkt[..n], true),
                    Err(WireError::Truncated),
                    "length {n}"
                );
                assert_eq!(Ipv4Repr::parse(&pkt[..n], false), Err(WireError::Truncated));
            }
        }
    }

    /// Apply `f` to a copy of `fixture`, refresh the header checksum, parse.
    fn mutated(fixture: &str, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let mut pkt = hex(fixture);
        f(&mut pkt);
        // Fix the checksum where the IHL still allows it, so that only the
        // intended defect remains.
        let _ = fill_checksum(&mut pkt);
        Ipv4Repr::parse(&pkt, true).map(|_| ())
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            mutated(V4_TCP_SYN, |p| p[0] = 0x65),
            Err(WireError::Unsupported)
        );
        assert_eq!(
            mutated(V4_TCP_SYN, |p| p[0] = 0x44),
            Err(WireError::Malformed)
        );
        assert_eq!(
            mutated(V4_TCP_SYN, |p| p[0] = 0x40),
            Err(WireError::Malformed)
        );
        // IHL 15 with total length 60: the header fits, so the TCP header
        // is read as options: type 0xad, length 0x64 runs past -> bad.
        assert_eq!(
            mutated(V4_TCP_SYN, |p| p[0] = 0x4f),
            Err(WireError::Malformed)
        );
        // Total length shorter than the header.
        assert_eq!(
            mutated(V4_TCP_SYN, |p| p[2..4]
                .copy_from_slice(&19u16.to_be_bytes())),
            Err(WireError::BadLength)
        );
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| p[2..4]
                .copy_from_slice(&59u16.to_be_bytes())),
            Err(WireError::BadLength)
        );
        // Header fits, total length exactly the header: empty payload.
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| p[2..4]
                .copy_from_slice(&60u16.to_be_bytes())),
            Ok(())
        );
        // Total length past the bytes present.
        assert_eq!(
            mutated(V4_TCP_SYN, |p| p[2..4]
                .copy_from_slice(&61u16.to_be_bytes())),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn reserved_flag_round_trips() {
        let mut pkt = hex(V4_TCP_SYN);
        pkt[6] |= 0x80;
        fill_checksum(&mut pkt).unwrap();
        let (repr, payload) = round_trip(&pkt);
        assert!(repr.reserved_flag && repr.dont_fragment && !repr.is_fragment());
        assert_eq!(payload.len(), 40);
        let (hdr, _) = Ipv4Header::ref_from_prefix(&pkt[..]).unwrap();
        assert_eq!((hdr.version(), hdr.header_len()), (4, 20));
        assert_eq!((hdr.src_addr(), hdr.dst_addr()), (A, B));
    }

    #[test]
    fn bad_checksum() {
        let mut pkt = hex(V4_RR_REQUEST);
        pkt[11] ^= 1;
        assert_eq!(Ipv4Repr::parse(&pkt, true), Err(WireError::BadChecksum));
        // Without verification it parses, and emit keeps the bad checksum.
        let (repr, payload) = Ipv4Repr::parse(&pkt, false).unwrap();
        assert_eq!(repr.checksum, 0xf220);
        let mut buf = [0u8; 60];
        repr.emit(&mut buf, payload.len()).unwrap();
        assert_eq!(buf[..], pkt[..60]);
        // A change covered by the checksum is caught too.
        let mut pkt = hex(V4_TCP_SYN);
        pkt[8] = 63;
        assert_eq!(Ipv4Repr::parse(&pkt, true), Err(WireError::BadChecksum));
    }

    #[test]
    fn malformed_options() {
        // Record Route (after one NOP) length 39 ends exactly at the end of
        // the area; 40 runs one byte past it.
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| p[22] = 40),
            Err(WireError::Malformed)
        );
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| p[22] = 255),
            Err(WireError::Malformed)
        );
        // Lengths 0 and 1 are impossible.
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| p[22] = 1),
            Err(WireError::Malformed)
        );
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| p[22] = 0),
            Err(WireError::Malformed)
        );
        // Shorten Record Route to 2 bytes, then NOPs, then an option type in
        // the last byte with no room for its length.
        assert_eq!(
            mutated(V4_RR_REQUEST, |p| {
                p[22] = 2;
                p[23..59].fill(option_kind::NOP);
                p[59] = option_kind::ROUTER_ALERT;
            }),
            Err(WireError::Malformed)
        );
        // The same area ending with EOL is valid, and garbage after EOL is
        // padding, not examined.
        assert_eq!(
            mutated(V4_RR_REPLY, |p| {
                p[21] = 2;
                p[22] = option_kind::EOL;
                p[23..60].fill(0xff);
            }),
            Ok(())
        );
    }

    #[test]
    fn options_iterator() {
        let area = [
            option_kind::NOP,
            option_kind::ROUTER_ALERT,
            4,
            0,
            0,
            option_kind::NOP,
            option_kind::TS,
            3,
            9,
            option_kind::EOL,
            0x55,
            0x55,
        ];
        assert_eq!(validate_options(&area), Ok(()));
        let opts: Vec<_> = Ipv4Options::new(&area).collect();
        assert_eq!(
            opts,
            [
                Ipv4Option {
                    kind: option_kind::ROUTER_ALERT,
                    data: &[0, 0]
                },
                Ipv4Option {
                    kind: option_kind::TS,
                    data: &[9]
                },
            ]
        );
        // Malformed: the iterator stops at the bad option and stays stopped.
        let bad = [option_kind::LSRR, 3, 1, option_kind::SSRR, 9, 0];
        assert_eq!(validate_options(&bad), Err(WireError::Malformed));
        let mut it = Ipv4Options::new(&bad);
        assert_eq!(it.next().map(|o| o.kind), Some(option_kind::LSRR));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn fill_checksum_restores_captured_value() {
        for fixture in ALL {
            let pkt = hex(fixture);
            let mut copy = pkt.clone();
            copy[10] = 0xab;
            copy[11] = 0xcd;
            fill_checksum(&mut copy).unwrap();
            assert_eq!(copy, pkt);
        }
        let pkt = hex(V4_RR_REQUEST);
        for n in 0..60 {
            let mut short = pkt[..n].to_vec();
            assert_eq!(fill_checksum(&mut short), Err(WireError::Truncated));
        }
        let mut bad_ihl = hex(V4_TCP_SYN);
        bad_ihl[0] = 0x43;
        assert_eq!(fill_checksum(&mut bad_ihl), Err(WireError::Malformed));
    }

    #[test]
    fn builder() {
        let mut repr = Ipv4Repr::new(A, B, ip_proto::UDP, 255);
        repr.ident = 0x1234;
        repr.tos = 0xb8;
        let mut buf = [0u8; 28];
        assert_eq!(repr.emit_with_checksum(&mut buf, 8), Ok(20));
        let expect_no_csum = [
            0x45, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0xff, 0x11, 0x00, 0x00, 192, 0, 2, 1,
            192, 0, 2, 2,
        ];
        assert_eq!(buf[..10], expect_no_csum[..10]);
        assert_eq!(buf[12..20], expect_no_csum[12..]);
        // Worked by hand: the ten words sum to 0x3_1b1c, folded 0x1b1f,
        // so the field is !0x1b1f = 0xe4e0.
        assert_eq!(buf[10..12], [0xe4, 0xe0]);
        assert!(checksum::verify(0, &buf[..20]));
        let (parsed, payload) = Ipv4Repr::parse(&buf, true).unwrap();
        assert_eq!(payload.len(), 8);
        assert_eq!(
            parsed,
            Ipv4Repr {
                checksum: parsed.checksum,
                ..repr
            }
        );
        assert!(!parsed.is_fragment());

        // With options (Router Alert, padded to 4 bytes already).
        let ra = [option_kind::ROUTER_ALERT, 4, 0, 0];
        let with_opts = Ipv4Repr {
            options: &ra,
            ..repr
        };
        let mut buf = [0u8; 24];
        assert_eq!(with_opts.emit_with_checksum(&mut buf, 0), Ok(24));
        assert_eq!(buf[0], 0x46);
        let (parsed, payload) = Ipv4Repr::parse(&buf, true).unwrap();
        assert!(payload.is_empty());
        assert_eq!(parsed.options, ra);

        // Every short buffer is refused.
        for n in 0..24 {
            let mut short = vec![0u8; n];
            assert_eq!(
                with_opts.emit_with_checksum(&mut short, 0),
                Err(WireError::BufferTooSmall)
            );
            assert_eq!(
                with_opts.emit(&mut short, 0),
                Err(WireError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn emit_rejects_impossible_headers() {
        let mut buf = [0u8; 64];
        let repr = Ipv4Repr::new(A, B, ip_proto::TCP, 64);
        assert_eq!(repr.emit(&mut buf, 65515), Ok(20));
        assert_eq!(repr.emit(&mut buf, 65516), Err(WireError::BadLength));
        assert_eq!(repr.emit(&mut buf, usize::MAX), Err(WireError::BadLength));
        let odd = Ipv4Repr {
            options: &[1, 1, 1],
            ..repr
        };
        assert_eq!(odd.emit(&mut buf, 0), Err(WireError::Malformed));
        let long = [1u8; 44];
        let too_long = Ipv4Repr {
            options: &long,
            ..repr
        };
        assert_eq!(too_long.emit(&mut buf, 0), Err(WireError::Malformed));
        let bad_offset = Ipv4Repr {
            frag_offset: 0x2000,
            ..repr
        };
        assert_eq!(bad_offset.emit(&mut buf, 0), Err(WireError::Malformed));
    }
}
