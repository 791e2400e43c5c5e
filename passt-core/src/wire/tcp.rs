//! TCP segments: the fixed header, options, sequence arithmetic.
//!
//! # Theory of operation
//!
//! A segment is a 20-byte fixed header (RFC 9293 §3.1), up to 40 bytes of
//! options, and the payload. [`TcpHeader`] is the fixed part read in place;
//! [`TcpRepr::parse`] checks the data offset against the bytes present,
//! verifies the checksum against a pseudo-header partial sum the IP layer
//! supplies (so this module serves IPv4 and IPv6 alike), walks the options
//! once to reject malformed ones, and returns the header fields with the raw
//! option bytes and the payload, all borrowed from the input.
//!
//! Options are kept as the raw bytes found, so emitting a parsed segment
//! reproduces it exactly; [`TcpOptions`] iterates them as [`TcpOption`]
//! values, and the accessors on [`TcpRepr`] pick out the ones a translator
//! needs: MSS (RFC 9293 §3.7.1), window scale and timestamps (RFC 7323),
//! SACK-permitted and SACK blocks (RFC 2018). Segments we build get their
//! options from a [`TcpOptionsWriter`] and their checksum from
//! [`TcpRepr::emit_segment`] or [`fill_checksum`].
//!
//! Sequence numbers live in a 32-bit circle; [`SeqNum`] keeps them apart
//! from other integers and compares them modulo 2^32 (RFC 9293 §3.4,
//! RFC 1982 serial number arithmetic).
//!
//! # Limits
//!
//! The option walk is bounded by the option bytes (at most 40): each step
//! consumes at least one byte. An option with a length of 0 or 1, a length
//! past the end of the options, or a wrong length for a kind we know makes
//! the whole segment [`WireError::Malformed`]; RFC 9293 §3.1 (MUST-7) lets
//! a receiver treat an illegal option length as an error. Unknown kinds are
//! skipped by their length. Bytes after End of Option List are padding and
//! are not looked at.

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

use zerocopy::byteorder::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::wire::checksum;
use crate::wire::{Result, WireError};

/// Length of the fixed TCP header, without options.
pub const HEADER_LEN: usize = 20;

/// Maximum length of the options (data offset 15 means 60 header bytes).
pub const MAX_OPTIONS_LEN: usize = 40;

/// Option kinds (IANA "TCP Option Kind Numbers").
pub mod option_kind {
    /// End of Option List (RFC 9293 §3.2).
    pub const END_OF_LIST: u8 = 0;
    /// No-Operation (RFC 9293 §3.2).
    pub const NOP: u8 = 1;
    /// Maximum Segment Size (RFC 9293 §3.2).
    pub const MSS: u8 = 2;
    /// Window Scale (RFC 7323 §2.2).
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK-Permitted (RFC 2018 §2).
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK (RFC 2018 §3).
    pub const SACK: u8 = 5;
    /// Timestamps (RFC 7323 §3.2).
    pub const TIMESTAMPS: u8 = 8;
}

/// The fixed TCP header as it sits in a segment (RFC 9293 §3.1).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: U16,
    /// Destination port.
    pub dst_port: U16,
    /// Sequence number of the first data octet (or the ISN on a SYN).
    pub seq: U32,
    /// Next sequence number the sender expects, if ACK is set.
    pub ack: U32,
    /// Data offset (high 4 bits, in 32-bit words) and the flags above bit 7
    /// (reserved bits and AE, formerly NS) in the low 4 bits.
    pub offset_flags_hi: u8,
    /// The eight flags CWR ECE URG ACK PSH RST SYN FIN.
    pub flags_lo: u8,
    /// Receive window, before window scaling.
    pub window: U16,
    /// Checksum over pseudo-header, header and payload.
    pub checksum: U16,
    /// Urgent pointer, meaningful if URG is set.
    pub urgent: U16,
}

impl TcpHeader {
    /// Header length in bytes from the data offset field (may be below 20
    /// on a malformed segment).
    pub fn header_len(&self) -> usize {
        usize::from(self.offset_flags_hi >> 4) * 4
    }

    /// All twelve flag bits, reserved ones included.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_retain(u16::from_be_bytes([
            self.offset_flags_hi & 0x0f,
            self.flags_lo,
        ]))
    }
}

bitflags::bitflags! {
    /// The control bits (RFC 9293 §3.1, RFC 3168 §6.1 for ECE/CWR).
    ///
    /// Holds all 12 bits after the data offset, so reserved bits set by a
    /// peer survive a parse-emit round trip.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TcpFlags: u16 {
        /// No more data from sender.
        const FIN = 0x001;
        /// Synchronize sequence numbers.
        const SYN = 0x002;
        /// Reset the connection.
        const RST = 0x004;
        /// Push function.
        const PSH = 0x008;
        /// Acknowledgment field is significant.
        const ACK = 0x010;
        /// Urgent pointer field is significant.
        const URG = 0x020;
        /// ECN-Echo (RFC 3168).
        const ECE = 0x040;
        /// Congestion Window Reduced (RFC 3168).
        const CWR = 0x080;
        /// AE, formerly NS (historic RFC 3540; Accurate ECN).
        const AE = 0x100;
        /// The three reserved bits (RFC 9293 §3.1), kept as found.
        const RESERVED = 0xe00;
    }
}

/// A TCP sequence (or acknowledgment) number: arithmetic wraps modulo 2^32
/// and comparisons are modular (RFC 9293 §3.4, RFC 1982).
///
/// Deliberately not `PartialOrd`: modular order is not transitive. Two
/// numbers exactly 2^31 apart are incomparable (RFC 1982 §3.2 leaves the
/// case undefined): neither comes before the other, and `max`/`min` then
/// return `self`. TCP windows are below 2^30 (RFC 7323 §2.3), so the case
/// never arises between numbers of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance `self - other` in sequence space.
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Bytes from `earlier` forward to `self` (wrapping; meaningful when
    /// `earlier` is not after `self`).
    pub fn distance(self, earlier: SeqNum) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Whether `self` comes strictly before `other`: `other` lies 1 to
    /// 2^31 - 1 ahead (RFC 1982 §3.2).
    pub fn lt(self, other: SeqNum) -> bool {
        (1..1u32 << 31).contains(&other.0.wrapping_sub(self.0))
    }

    /// Whether `self` comes before or is `other`.
    pub fn le(self, other: SeqNum) -> bool {
        self == other || self.lt(other)
    }

    /// Whether `self` comes strictly after `other`.
    pub fn gt(self, other: SeqNum) -> bool {
        other.lt(self)
    }

    /// Whether `self` comes after or is `other`.
    pub fn ge(self, other: SeqNum) -> bool {
        self == other || other.lt(self)
    }

    /// The later of the two in sequence space.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.lt(other) {
            other
        } else {
            self
        }
    }

    /// The earlier of the two in sequence space.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.gt(other) {
            other
        } else {
            self
        }
    }

    /// Whether `self` lies in `[start, start + len)` (RFC 9293 §3.10.7.4
    /// acceptability tests).
    pub fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.distance(start) < len
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl SubAssign<u32> for SeqNum {
    fn sub_assign(&mut self, rhs: u32) {
        *self = *self - rhs;
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The blocks of a SACK option (RFC 2018 §3): 1 to 4 `(left, right)` edges,
/// `left` the first sequence number of a block, `right` the one after it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a> {
    /// The option data: a non-zero multiple of 8 bytes.
    raw: &'a [u8],
}

impl<'a> SackBlocks<'a> {
    /// Wrap option data; `None` unless its length is a non-zero multiple
    /// of 8.
    pub fn new(raw: &'a [u8]) -> Option<Self> {
        (!raw.is_empty() && raw.len() % 8 == 0).then_some(SackBlocks { raw })
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.raw.len() / 8
    }

    /// Always false: a SACK option holds at least one block.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The option data as found.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The blocks in the order the sender put them.
    pub fn iter(&self) -> SackIter<'a> {
        SackIter {
            chunks: self.raw.chunks_exact(8),
        }
    }
}

impl fmt::Debug for SackBlocks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(l, r)| l.0..r.0))
            .finish()
    }
}

impl<'a> IntoIterator for SackBlocks<'a> {
    type Item = (SeqNum, SeqNum);
    type IntoIter = SackIter<'a>;
    fn into_iter(self) -> SackIter<'a> {
        self.iter()
    }
}

/// Iterator over the `(left, right)` edges of [`SackBlocks`].
#[derive(Clone, Debug)]
pub struct SackIter<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for SackIter<'_> {
    type Item = (SeqNum, SeqNum);
    fn next(&mut self) -> Option<(SeqNum, SeqNum)> {
        let c = self.chunks.next()?;
        let (l, r) = <[[u8; 4]; 2]>::read_from_bytes(c).ok()?.into();
        Some((SeqNum(u32::from_be_bytes(l)), SeqNum(u32::from_be_bytes(r))))
    }
}

/// One TCP option (RFC 9293 §3.2, RFC 7323, RFC 2018).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of Option List (kind 0); what follows is padding.
    EndOfList,
    /// No-Operation (kind 1), used for alignment.
    Nop,
    /// Maximum Segment Size the sender can receive (kind 2).
    Mss(u16),
    /// Window scale shift count (kind 3), as found (may exceed 14).
    WindowScale(u8),
    /// SACK may be used on this connection (kind 4).
    SackPermitted,
    /// Selective acknowledgment blocks (kind 5).
    Sack(SackBlocks<'a>),
    /// Timestamps (kind 8).
    Timestamps {
        /// The sender's timestamp clock value.
        tsval: u32,
        /// The echoed timestamp, valid if ACK is set.
        tsecr: u32,
    },
    /// A kind we do not interpret, with its data (after kind and length).
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

/// Iterator over raw option bytes, yielding [`TcpOption`]s.
///
/// Stops after End of Option List or at the end of the bytes. A malformed
/// option yields one `Err(WireError::Malformed)`, then the iterator ends.
#[derive(Clone, Debug)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterate over `raw` option bytes (the header after byte 20).
    pub fn new(raw: &'a [u8]) -> Self {
        TcpOptions { rest: raw }
    }

    /// Parse one option at the front of `self.rest`, advancing past it.
    fn step(&mut self) -> Result<TcpOption<'a>> {
        let (&kind, after_kind) = self.rest.split_first().ok_or(WireError::Truncated)?;
        match kind {
            option_kind::END_OF_LIST => {
                self.rest = &[];
                return Ok(TcpOption::EndOfList);
            }
            option_kind::NOP => {
                self.rest = after_kind;
                return Ok(TcpOption::Nop);
            }
            _ => {}
        }
        let (&len, _) = after_kind.split_first().ok_or(WireError::Malformed)?;
        let len = usize::from(len);
        if len < 2 {
            return Err(WireError::Malformed);
        }
        let (opt, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(WireError::Malformed)?;
        let data = opt.get(2..).ok_or(WireError::Malformed)?;
        let parsed = match kind {
            option_kind::MSS => TcpOption::Mss(u16::from_be_bytes(
                <[u8; 2]>::try_from(data).map_err(|_| WireError::Malformed)?,
            )),
            option_kind::WINDOW_SCALE => match data {
                [shift] => TcpOption::WindowScale(*shift),
                _ => return Err(WireError::Malformed),
            },
            option_kind::SACK_PERMITTED => {
                if !data.is_empty() {
                    return Err(WireError::Malformed);
                }
                TcpOption::SackPermitted
            }
            option_kind::SACK => {
                TcpOption::Sack(SackBlocks::new(data).ok_or(WireError::Malformed)?)
            }
            option_kind::TIMESTAMPS => {
                let ts = <[[u8; 4]; 2]>::read_from_bytes(data).map_err(|_| WireError::Malformed)?;
                TcpOption::Timestamps {
                    tsval: u32::from_be_bytes(ts[0]),
                    tsecr: u32::from_be_bytes(ts[1]),
                }
            }
            _ => TcpOption::Unknown { kind, data },
        };
        self.rest = rest;
        Ok(parsed)
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;
    fn next(&mut self) -> Option<Result<TcpOption<'a>>> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

/// A parsed TCP header, borrowing its options from the segment.
///
/// Fields hold the values as found, so [`TcpRepr::emit`] reproduces the
/// header exactly; [`TcpRepr::emit_segment`] instead computes the checksum
/// for a segment we build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful if ACK is set; kept as found).
    pub ack: SeqNum,
    /// Control bits, reserved bits included.
    pub flags: TcpFlags,
    /// Receive window, not scaled.
    pub window: u16,
    /// Urgent pointer, kept as found.
    pub urgent: u16,
    /// Checksum as found (ignored by [`TcpRepr::emit_segment`]).
    pub checksum: u16,
    /// Raw option bytes including padding: a multiple of 4, at most 40.
    pub options: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parse a TCP segment (header, options and payload), verifying the
    /// checksum if `pseudo` is the pseudo-header partial sum for it
    /// ([`checksum::pseudo_header_v4`] or [`checksum::pseudo_header_v6`]
    /// with length `segment.len()`). Returns the header and the payload.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if the segment is shorter than 20 bytes or
    /// than its data offset; [`WireError::Malformed`] for a data offset
    /// below 5 or a malformed option (see the module notes);
    /// [`WireError::BadChecksum`] if the checksum does not verify.
    pub fn parse(segment: &'a [u8], pseudo: Option<u32>) -> Result<(TcpRepr<'a>, &'a [u8])> {
        let (hdr, _) = TcpHeader::ref_from_prefix(segment).map_err(|_| WireError::Truncated)?;
        let hlen = hdr.header_len();
        if hlen < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let (head, payload) = segment.split_at_checked(hlen).ok_or(WireError::Truncated)?;
        if let Some(p) = pseudo {
            if !checksum::verify(p, segment) {
                return Err(WireError::BadChecksum);
            }
        }
        let options = head.get(HEADER_LEN..).ok_or(WireError::Truncated)?;
        for opt in TcpOptions::new(options) {
            opt?;
        }
        let repr = TcpRepr {
            src_port: hdr.src_port.get(),
            dst_port: hdr.dst_port.get(),
            seq: SeqNum(hdr.seq.get()),
            ack: SeqNum(hdr.ack.get()),
            flags: hdr.flags(),
            window: hdr.window.get(),
            urgent: hdr.urgent.get(),
            checksum: hdr.checksum.get(),
            options,
        };
        Ok((repr, payload))
    }

    /// Iterate over the options.
    pub fn option_iter(&self) -> TcpOptions<'a> {
        TcpOptions::new(self.options)
    }

    /// The first well-formed option `pick` selects.
    fn find<T>(&self, pick: impl Fn(TcpOption<'a>) -> Option<T>) -> Option<T> {
        self.option_iter().map_while(|o| o.ok()).find_map(pick)
    }

    /// The MSS option value, if present (RFC 9293 §3.7.1).
    pub fn mss(&self) -> Option<u16> {
        self.find(|o| match o {
            TcpOption::Mss(m) => Some(m),
            _ => None,
        })
    }

    /// The window scale shift, if present, limited to 14 as RFC 7323 §2.3
    /// requires of a receiver.
    pub fn window_scale(&self) -> Option<u8> {
        self.find(|o| match o {
            TcpOption::WindowScale(s) => Some(s.min(14)),
            _ => None,
        })
    }

    /// Whether the SACK-permitted option is present (RFC 2018 §2).
    pub fn sack_permitted(&self) -> bool {
        self.find(|o| matches!(o, TcpOption::SackPermitted).then_some(()))
            .is_some()
    }

    /// The SACK blocks, if present (RFC 2018 §3).
    pub fn sack(&self) -> Option<SackBlocks<'a>> {
        self.find(|o| match o {
            TcpOption::Sack(b) => Some(b),
            _ => None,
        })
    }

    /// The `(tsval, tsecr)` timestamps, if present (RFC 7323 §3.2).
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        self.find(|o| match o {
            TcpOption::Timestamps { tsval, tsecr } => Some((tsval, tsecr)),
            _ => None,
        })
    }

    /// Sequence space the segment occupies with `payload_len` bytes of
    /// payload: SYN and FIN count one each (RFC 9293 §3.4).
    pub fn seq_len(&self, payload_len: usize) -> u32 {
        let ctl = u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN));
        u32::try_from(payload_len)
            .unwrap_or(u32::MAX)
            .saturating_add(ctl)
    }

    /// Header length in bytes, options included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Write the header and options with every field as held, checksum
    /// included. Returns the header length; the payload is the caller's.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] if the options are longer than 40 bytes or
    /// not a multiple of 4; [`WireError::BufferTooSmall`] if `buf` is
    /// shorter than [`TcpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.emit_with(buf, self.checksum)
    }

    /// Write header, options and `payload` into `buf` and compute the
    /// checksum, ignoring `self.checksum`. `pseudo` is the pseudo-header
    /// partial sum for an L4 length of `buffer_len() + payload.len()`.
    /// Returns the segment length.
    ///
    /// # Errors
    ///
    /// As [`TcpRepr::emit`], with `buf` needing room for the payload too.
    pub fn emit_segment(&self, buf: &mut [u8], payload: &[u8], pseudo: u32) -> Result<usize> {
        let hlen = self.buffer_len();
        let total = hlen
            .checked_add(payload.len())
            .ok_or(WireError::BufferTooSmall)?;
        let seg = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        self.emit_with(seg, 0)?;
        seg.get_mut(hlen..)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(payload);
        fill_checksum(seg, pseudo)?;
        Ok(total)
    }

    /// Write the header with the given checksum value.
    fn emit_with(&self, buf: &mut [u8], csum: u16) -> Result<usize> {
        let olen = self.options.len();
        if olen > MAX_OPTIONS_LEN || olen % 4 != 0 {
            return Err(WireError::Malformed);
        }
        let hlen = HEADER_LEN + olen;
        let out = buf.get_mut(..hlen).ok_or(WireError::BufferTooSmall)?;
        let (hdr, opts) = TcpHeader::mut_from_prefix(out).map_err(|_| WireError::BufferTooSmall)?;
        let [flags_hi, flags_lo] = (self.flags.bits() & 0x0fff).to_be_bytes();
        *hdr = TcpHeader {
            src_port: U16::new(self.src_port),
            dst_port: U16::new(self.dst_port),
            seq: U32::new(self.seq.0),
            ack: U32::new(self.ack.0),
            // hlen / 4 <= 15 fits the 4-bit field.
            offset_flags_hi: (((hlen / 4) as u8) << 4) | flags_hi,
            flags_lo,
            window: U16::new(self.window),
            checksum: U16::new(csum),
            urgent: U16::new(self.urgent),
        };
        opts.copy_from_slice(self.options);
        Ok(hlen)
    }
}

/// Compute and store the checksum of a complete segment (header at the
/// front, checksum field ignored), given the pseudo-header partial sum for
/// `segment.len()` bytes. For segments whose payload is already in place.
///
/// # Errors
///
/// [`WireError::Truncated`] if `segment` is shorter than a TCP header.
pub fn fill_checksum(segment: &mut [u8], pseudo: u32) -> Result<()> {
    let (hdr, _) = TcpHeader::mut_from_prefix(segment).map_err(|_| WireError::Truncated)?;
    hdr.checksum = U16::new(0);
    let c = checksum::finish(checksum::sum(pseudo, segment));
    let (hdr, _) = TcpHeader::mut_from_prefix(segment).map_err(|_| WireError::Truncated)?;
    hdr.checksum = U16::new(c);
    Ok(())
}

/// Builds option bytes for segments we send, into a fixed 40-byte buffer.
///
/// Each method appends one option; [`TcpOptionsWriter::as_bytes`] returns
/// them padded with zeros (End of Option List, RFC 9293 §3.1) to a multiple
/// of 4, ready for [`TcpRepr::options`].
#[derive(Clone, Copy, Debug)]
pub struct TcpOptionsWriter {
    buf: [u8; MAX_OPTIONS_LEN],
    len: usize,
}

impl Default for TcpOptionsWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpOptionsWriter {
    /// An empty option list.
    pub const fn new() -> Self {
        TcpOptionsWriter {
            buf: [0; MAX_OPTIONS_LEN],
            len: 0,
        }
    }

    /// The options for a SYN or SYN-ACK in the layout Linux uses, every
    /// multi-byte field 4-byte aligned: MSS; SACK-permitted and timestamps
    /// (NOP-padded when only one of them is wanted); NOP and window scale.
    /// At most 20 bytes, so it always fits.
    pub fn syn(
        mss: u16,
        window_scale: Option<u8>,
        sack_permitted: bool,
        timestamps: Option<(u32, u32)>,
    ) -> Self {
        let mut w = Self::new();
        // 4 + 12 + 4 = 20 bytes at most: none of these pushes can fail.
        let _ = w.mss(mss);
        match (sack_permitted, timestamps) {
            (true, Some((tsval, tsecr))) => {
                let _ = w.sack_permitted();
                let _ = w.timestamps(tsval, tsecr);
            }
            (false, Some((tsval, tsecr))) => {
                let _ = w.nop();
                let _ = w.nop();
                let _ = w.timestamps(tsval, tsecr);
            }
            (true, None) => {
                let _ = w.nop();
                let _ = w.nop();
                let _ = w.sack_permitted();
            }
            (false, None) => {}
        }
        if let Some(shift) = window_scale {
            let _ = w.nop();
            let _ = w.window_scale(shift);
        }
        w
    }

    /// Append raw bytes.
    fn push(&mut self, bytes: &[u8]) -> Result<&mut Self> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(WireError::BufferTooSmall)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(self)
    }

    /// Append a No-Operation.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if the 40 bytes are used up (here and
    /// in every other appending method).
    pub fn nop(&mut self) -> Result<&mut Self> {
        self.push(&[option_kind::NOP])
    }

    /// Append an MSS option (RFC 9293 §3.2).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if it does not fit.
    pub fn mss(&mut self, mss: u16) -> Result<&mut Self> {
        let [hi, lo] = mss.to_be_bytes();
        self.push(&[option_kind::MSS, 4, hi, lo])
    }

    /// Append a window scale option (RFC 7323 §2.2).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if it does not fit.
    pub fn window_scale(&mut self, shift: u8) -> Result<&mut Self> {
        self.push(&[option_kind::WINDOW_SCALE, 3, shift])
    }

    /// Append a SACK-permitted option (RFC 2018 §2).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if it does not fit.
    pub fn sack_permitted(&mut self) -> Result<&mut Self> {
        self.push(&[option_kind::SACK_PERMITTED, 2])
    }

    /// Append a timestamps option (RFC 7323 §3.2).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if it does not fit.
    pub fn timestamps(&mut self, tsval: u32, tsecr: u32) -> Result<&mut Self> {
        let mut o = [0u8; 10];
        o[0] = option_kind::TIMESTAMPS;
        o[1] = 10;
        o[2..6].copy_from_slice(&tsval.to_be_bytes());
        o[6..10].copy_from_slice(&tsecr.to_be_bytes());
        self.push(&o)
    }

    /// Append a SACK option with `blocks` as `(left, right)` edges
    /// (RFC 2018 §3).
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] for no blocks or more than 4;
    /// [`WireError::BufferTooSmall`] if it does not fit.
    pub fn sack(&mut self, blocks: &[(SeqNum, SeqNum)]) -> Result<&mut Self> {
        if blocks.is_empty() || blocks.len() > 4 {
            return Err(WireError::Malformed);
        }
        let len = 2 + 8 * blocks.len();
        if self.len + len > MAX_OPTIONS_LEN {
            return Err(WireError::BufferTooSmall);
        }
        // len <= 34 fits a byte.
        self.push(&[option_kind::SACK, len as u8])?;
        for (l, r) in blocks {
            self.push(&l.0.to_be_bytes())?;
            self.push(&r.0.to_be_bytes())?;
        }
        Ok(self)
    }

    /// The options written so far, zero-padded to a multiple of 4 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let padded = self.len.div_ceil(4) * 4;
        self.buf.get(..padded).unwrap_or(&self.buf)
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

    // Captured with tcpdump on a veth between namespaces: 192.0.2.1 (and
    // 2001:db8:1::1) behind a router from 198.51.100.2 (2001:db8:2::2),
    // with a 1280-byte MTU on the far link. L4 bytes only.
    const A4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

    /// 192.0.2.1:43796 -> 198.51.100.2:8080 SYN: mss 1460, sackOK,
    /// TS val 4018288232 ecr 0, nop, wscale 10.
    const SYN: &str =
        "ab141f9021c8106f00000000a002faf03e0e0000020405b40402080aef823668000000000103030a";
    /// The SYN-ACK: mss 1240, sackOK, TS, nop, wscale 10.
    const SYN_ACK: &str =
        "1f90ab144912ae3821c81070a012fe3c0bc60000020404d80402080af0744807ef8236680103030a";
    /// PSH|ACK with "hello\n", nop nop TS.
    const DATA: &str =
        "ab141f9021c810704912ae398018003ff3cc00000101080aef823668f074480768656c6c6f0a";
    /// FIN|ACK.
    const FIN: &str = "ab141f9021c810764912ae3f8011003f37a900000101080aef823669f0744807";
    /// RST|ACK from closed port 9 (198.51.100.2 -> 192.0.2.1), no options.
    const RST: &str = "0009ac4000000000fb1dfe9f501400001d920000";
    /// IPv6 SYN 2001:db8:1::1:39202 -> 2001:db8:2::2:8080, mss 1440.
    const SYN6: &str =
        "99221f90367db7cd00000000a002fd20966b0000020405a00402080a826c2fa3000000000103030a";
    /// IPv6 data "hello\n".
    const DATA6: &str =
        "99221f90367db7ceb05da9c880180040b0df00000101080a826c2fa30afb680c68656c6c6f0a";
    /// ACK with one SACK block (the router dropped data segments).
    const SACK1: &str =
        "ce061f9112b74739ff0bf9b2b010004bce1e00000101080aacf139660eec3d680101050aff0bfe7eff0c167a";
    /// ACK with two SACK blocks {13509:14737}{4913:12281} (relative).
    const SACK2: &str = "ce061f9112b74739ff0bf9b2d010004b663800000101080aacf139660eec3d6801010512ff0c2012ff0c24deff0bfe7eff0c1b46";

    fn p4(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> u32 {
        checksum::pseudo_header_v4(src, dst, ip_proto::TCP, seg.len() as u16)
    }

    fn p6(src: Ipv6Addr, dst: Ipv6Addr, seg: &[u8]) -> u32 {
        checksum::pseudo_header_v6(&src, &dst, ip_proto::TCP, seg.len() as u32)
    }

    /// Every fixture with its pseudo-header sum.
    fn fixtures() -> Vec<(Vec<u8>, u32)> {
        let mut v = Vec::new();
        for f in [SYN, DATA, FIN, SACK1, SACK2] {
            let b = hex(f);
            let p = p4(A4, B4, &b);
            v.push((b, p));
        }
        for f in [SYN_ACK, RST] {
            let b = hex(f);
            let p = p4(B4, A4, &b);
            v.push((b, p));
        }
        for f in [SYN6, DATA6] {
            let b = hex(f);
            let p = p6(A6, B6, &b);
            v.push((b, p));
        }
        v
    }

    fn roundtrip(seg: &[u8], repr: &TcpRepr<'_>, payload: &[u8]) {
        let mut out = vec![0u8; repr.buffer_len() + payload.len()];
        let n = repr.emit(&mut out).unwrap();
        out[n..].copy_from_slice(payload);
        assert_eq!(out, seg);
    }

    #[test]
    fn syn_fields() {
        let seg = hex(SYN);
        let (r, payload) = TcpRepr::parse(&seg, Some(p4(A4, B4, &seg))).unwrap();
        assert_eq!((r.src_port, r.dst_port), (43796, 8080));
        assert_eq!(r.seq, SeqNum(566_759_535));
        assert_eq!(r.ack, SeqNum(0));
        assert_eq!(r.flags, TcpFlags::SYN);
        assert_eq!(r.window, 64240);
        assert_eq!(r.checksum, 0x3e0e);
        assert_eq!(r.urgent, 0);
        assert_eq!(r.options.len(), 20);
        assert_eq!(r.mss(), Some(1460));
        assert_eq!(r.window_scale(), Some(10));
        assert!(r.sack_permitted());
        assert_eq!(r.timestamps(), Some((4_018_288_232, 0)));
        assert_eq!(r.sack(), None);
        assert_eq!(r.seq_len(payload.len()), 1);
        assert!(payload.is_empty());
        let opts: Vec<_> = r.option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            [
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: 4_018_288_232,
                    tsecr: 0
                },
                TcpOption::Nop,
                TcpOption::WindowScale(10),
            ]
        );
        roundtrip(&seg, &r, payload);
    }

    #[test]
    fn syn_ack_fields_and_rebuild() {
        let seg = hex(SYN_ACK);
        let pseudo = p4(B4, A4, &seg);
        let (r, payload) = TcpRepr::parse(&seg, Some(pseudo)).unwrap();
        assert_eq!(r.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(r.seq, SeqNum(1_225_961_016));
        assert_eq!(r.ack, SeqNum(566_759_536));
        assert_eq!(r.window, 65084);
        assert_eq!(r.mss(), Some(1240));
        assert_eq!(r.window_scale(), Some(10));
        assert!(r.sack_permitted());
        assert_eq!(r.timestamps(), Some((4_034_152_455, 4_018_288_232)));
        roundtrip(&seg, &r, payload);

        // Build the same SYN-ACK from scratch: options writer + checksum.
        let opts =
            TcpOptionsWriter::syn(1240, Some(10), true, Some((4_034_152_455, 4_018_288_232)));
        assert_eq!(opts.as_bytes(), r.options);
        let built = TcpRepr {
            checksum: 0,
            options: opts.as_bytes(),
            ..r
        };
        let mut out = [0u8; 64];
        let n = built.emit_segment(&mut out, &[], pseudo).unwrap();
        assert_eq!(&out[..n], &seg[..]);
    }

    #[test]
    fn data_segments() {
        let seg = hex(DATA);
        let (r, payload) = TcpRepr::parse(&seg, Some(p4(A4, B4, &seg))).unwrap();
        assert_eq!(r.flags, TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(r.seq, SeqNum(566_759_536));
        assert_eq!(r.ack, SeqNum(1_225_961_017));
        assert_eq!(r.window, 63);
        assert_eq!(payload, b"hello\n");
        assert_eq!(r.timestamps(), Some((4_018_288_232, 4_034_152_455)));
        assert_eq!(r.mss(), None);
        assert_eq!(r.window_scale(), None);
        assert!(!r.sack_permitted());
        assert_eq!(r.seq_len(payload.len()), 6);
        roundtrip(&seg, &r, payload);

        // Rebuilding with emit_segment gives the captured checksum.
        let mut out = [0u8; 64];
        let n = TcpRepr { checksum: 0, ..r }
            .emit_segment(&mut out, payload, p4(A4, B4, &seg))
            .unwrap();
        assert_eq!(&out[..n], &seg[..]);

        let seg6 = hex(DATA6);
        let pseudo6 = p6(A6, B6, &seg6);
        let (r6, payload6) = TcpRepr::parse(&seg6, Some(pseudo6)).unwrap();
        assert_eq!((r6.src_port, r6.dst_port), (39202, 8080));
        assert_eq!(payload6, b"hello\n");
        roundtrip(&seg6, &r6, payload6);
        // Payload already in place: fill_checksum on a zeroed field.
        let mut copy = seg6.clone();
        copy[16] = 0;
        copy[17] = 0;
        fill_checksum(&mut copy, pseudo6).unwrap();
        assert_eq!(copy, seg6);
        // Wrong family's pseudo-header fails.
        assert_eq!(
            TcpRepr::parse(&seg6, Some(p4(A4, B4, &seg6))),
            Err(WireError::BadChecksum)
        );
    }

    #[test]
    fn fin_rst_syn6() {
        let seg = hex(FIN);
        let (r, payload) = TcpRepr::parse(&seg, Some(p4(A4, B4, &seg))).unwrap();
        assert_eq!(r.flags, TcpFlags::FIN | TcpFlags::ACK);
        assert_eq!(r.seq, SeqNum(566_759_542));
        assert_eq!(r.seq_len(payload.len()), 1);
        roundtrip(&seg, &r, payload);

        let seg = hex(RST);
        let (r, payload) = TcpRepr::parse(&seg, Some(p4(B4, A4, &seg))).unwrap();
        assert_eq!(r.flags, TcpFlags::RST | TcpFlags::ACK);
        assert_eq!((r.src_port, r.dst_port), (9, 44096));
        assert_eq!(r.seq, SeqNum(0));
        assert_eq!(r.ack, SeqNum(4_213_046_943));
        assert_eq!(r.window, 0);
        assert!(r.options.is_empty());
        assert_eq!(r.option_iter().count(), 0);
        roundtrip(&seg, &r, payload);

        let seg = hex(SYN6);
        let (r, payload) = TcpRepr::parse(&seg, Some(p6(A6, B6, &seg))).unwrap();
        assert_eq!(r.flags, TcpFlags::SYN);
        assert_eq!(r.mss(), Some(1440));
        assert_eq!(r.window_scale(), Some(10));
        roundtrip(&seg, &r, payload);
    }

    #[test]
    fn sack_blocks_from_capture() {
        let seg = hex(SACK1);
        let (r, _) = TcpRepr::parse(&seg, Some(p4(A4, B4, &seg))).unwrap();
        let blocks: Vec<_> = r.sack().unwrap().iter().collect();
        assert_eq!(blocks, [(SeqNum(0xff0b_fe7e), SeqNum(0xff0c_167a))]);
        assert_eq!(r.ack, SeqNum(0xff0b_f9b2));

        let seg = hex(SACK2);
        let (r, payload) = TcpRepr::parse(&seg, Some(p4(A4, B4, &seg))).unwrap();
        let sack = r.sack().unwrap();
        assert_eq!(sack.len(), 2);
        assert!(!sack.is_empty());
        let blocks: Vec<_> = sack.into_iter().collect();
        assert_eq!(
            blocks,
            [
                (SeqNum(0xff0c_2012), SeqNum(0xff0c_24de)),
                (SeqNum(0xff0b_fe7e), SeqNum(0xff0c_1b46)),
            ]
        );
        // Relative to the ISN (ack 1 == 0xff0b_eb4e), the tcpdump view.
        let isn = SeqNum(0xff0b_eb4d);
        assert_eq!(blocks[0].0.distance(isn), 13509);
        assert_eq!(blocks[1].1.distance(isn), 12281);
        assert_eq!(r.timestamps(), Some((0xacf1_3966, 0x0eec_3d68)));
        roundtrip(&seg, &r, payload);

        // Write the same options back with the writer.
        let mut w = TcpOptionsWriter::new();
        w.nop().unwrap().nop().unwrap();
        w.timestamps(0xacf1_3966, 0x0eec_3d68).unwrap();
        w.nop().unwrap().nop().unwrap().sack(&blocks).unwrap();
        assert_eq!(w.as_bytes(), r.options);
    }

    #[test]
    fn checksum_detects_every_flipped_bit() {
        for (seg, pseudo) in fixtures() {
            assert!(TcpRepr::parse(&seg, Some(pseudo)).is_ok());
            for i in 0..seg.len() * 8 {
                let mut bad = seg.clone();
                bad[i / 8] ^= 1 << (i % 8);
                let r = TcpRepr::parse(&bad, Some(pseudo));
                if i / 8 == 12 && i % 8 >= 4 {
                    // The data offset: structure is checked first.
                    assert!(r.is_err(), "bit {i}");
                } else {
                    assert_eq!(r, Err(WireError::BadChecksum), "bit {i}");
                }
                // Without verification only structural errors remain.
                if let Err(e) = TcpRepr::parse(&bad, None) {
                    assert_ne!(e, WireError::BadChecksum);
                }
            }
        }
    }

    #[test]
    fn every_truncation_rejected() {
        for (seg, pseudo) in fixtures() {
            let (r, payload) = TcpRepr::parse(&seg, None).unwrap();
            let hlen = r.buffer_len();
            for len in 0..seg.len() {
                let cut = &seg[..len];
                let res = TcpRepr::parse(cut, None);
                if len < hlen {
                    assert_eq!(res, Err(WireError::Truncated), "len {len}");
                } else {
                    // Only the payload is short: checksum catches it.
                    assert_eq!(res.unwrap().1.len(), len - hlen);
                }
                let res = TcpRepr::parse(cut, Some(pseudo));
                assert!(res.is_err(), "len {len} of {} verified", seg.len());
            }
            assert_eq!(payload.len(), seg.len() - hlen);
        }
    }

    #[test]
    fn data_offset_errors() {
        let seg = hex(SYN);
        for doff in 0..5u8 {
            let mut bad = seg.clone();
            bad[12] = doff << 4;
            assert_eq!(TcpRepr::parse(&bad, None), Err(WireError::Malformed));
        }
        // Offset 11 (44 bytes) on a 40-byte segment.
        let mut bad = seg.clone();
        bad[12] = 11 << 4;
        assert_eq!(TcpRepr::parse(&bad, None), Err(WireError::Truncated));
        bad[12] = 15 << 4;
        assert_eq!(TcpRepr::parse(&bad, None), Err(WireError::Truncated));
    }

    #[test]
    fn malformed_options() {
        let seg = hex(SYN);
        // Options at 20..40: 02 04 05b4 | 04 02 | 08 0a ... | 01 | 03 03 0a
        let cases: &[(usize, u8)] = &[
            (21, 0),  // MSS length 0
            (21, 1),  // MSS length 1
            (21, 3),  // MSS wrong length
            (21, 30), // MSS past the end
            (25, 3),  // SACK-permitted wrong length
            (27, 9),  // timestamps wrong length
            (38, 2),  // window scale wrong length
            (38, 4),  // window scale past the end
        ];
        for &(at, val) in cases {
            let mut bad = seg.clone();
            bad[at] = val;
            assert_eq!(
                TcpRepr::parse(&bad, None),
                Err(WireError::Malformed),
                "byte {at} = {val}"
            );
        }
        // Kind with no room for a length byte (last option byte).
        let mut bad = seg.clone();
        bad[36..40].copy_from_slice(&[1, 1, 1, 3]);
        assert_eq!(TcpRepr::parse(&bad, None), Err(WireError::Malformed));
        // SACK whose data is not a multiple of 8 (SACK2 block length 18 -> 17).
        let mut bad = hex(SACK2);
        bad[35] = 17;
        assert_eq!(TcpRepr::parse(&bad, None), Err(WireError::Malformed));
        // The iterator reports one error then stops.
        let mut it = TcpOptions::new(&[2, 0, 1, 1]);
        assert_eq!(it.next(), Some(Err(WireError::Malformed)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn unknown_options_eol_and_reserved_bits() {
        let seg = hex(SYN);
        // Replace SACK-permitted + timestamps (12 bytes at 24..36) with an
        // unknown kind 0xfd of length 6, NOP, EOL and padding.
        let mut opts = seg.clone();
        opts[24..36].copy_from_slice(&[0xfd, 6, 0xaa, 0xbb, 0xcc, 0xdd, 1, 0, 9, 9, 9, 9]);
        let (r, _) = TcpRepr::parse(&opts, None).unwrap();
        let parsed: Vec<_> = r.option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            parsed,
            [
                TcpOption::Mss(1460),
                TcpOption::Unknown {
                    kind: 0xfd,
                    data: &[0xaa, 0xbb, 0xcc, 0xdd]
                },
                TcpOption::Nop,
                TcpOption::EndOfList,
            ]
        );
        // Garbage after EOL is padding: window scale is not seen.
        assert_eq!(r.window_scale(), None);
        roundtrip(&opts, &r, &[]);

        // Reserved bits and AE survive a round trip; window scale > 14 is
        // clamped by the accessor but kept in the option.
        let mut odd = seg.clone();
        odd[12] |= 0x0f;
        odd[13] |= 0xc0;
        odd[39] = 20;
        let (r, _) = TcpRepr::parse(&odd, None).unwrap();
        assert!(r
            .flags
            .contains(TcpFlags::AE | TcpFlags::RESERVED | TcpFlags::ECE | TcpFlags::CWR));
        assert_eq!(r.window_scale(), Some(14));
        assert!(r.option_iter().any(|o| o == Ok(TcpOption::WindowScale(20))));
        roundtrip(&odd, &r, &[]);
    }

    #[test]
    fn emit_errors() {
        let seg = hex(SYN);
        let (r, _) = TcpRepr::parse(&seg, None).unwrap();
        for len in 0..r.buffer_len() {
            let mut out = vec![0u8; len];
            assert_eq!(r.emit(&mut out), Err(WireError::BufferTooSmall));
            assert_eq!(
                r.emit_segment(&mut out, &[], 0),
                Err(WireError::BufferTooSmall)
            );
        }
        let mut out = [0u8; 64];
        assert_eq!(
            r.emit_segment(&mut out[..40], b"x", 0),
            Err(WireError::BufferTooSmall)
        );
        let bad = TcpRepr {
            options: &[1, 1, 1],
            ..r
        };
        assert_eq!(bad.emit(&mut out), Err(WireError::Malformed));
        let long = [1u8; 44];
        let bad = TcpRepr {
            options: &long,
            ..r
        };
        assert_eq!(bad.emit(&mut out), Err(WireError::Malformed));
        assert_eq!(fill_checksum(&mut out[..19], 0), Err(WireError::Truncated));
    }

    #[test]
    fn options_writer() {
        // Each SYN layout parses back to what was asked, 4-byte aligned.
        for ws in [None, Some(7)] {
            for sp in [false, true] {
                for ts in [None, Some((1, 2))] {
                    let w = TcpOptionsWriter::syn(1460, ws, sp, ts);
                    let b = w.as_bytes();
                    assert_eq!(b.len() % 4, 0);
                    let r = TcpRepr {
                        src_port: 1,
                        dst_port: 2,
                        seq: SeqNum(0),
                        ack: SeqNum(0),
                        flags: TcpFlags::SYN,
                        window: 0,
                        urgent: 0,
                        checksum: 0,
                        options: b,
                    };
                    assert_eq!(r.mss(), Some(1460));
                    assert_eq!(r.window_scale(), ws);
                    assert_eq!(r.sack_permitted(), sp);
                    assert_eq!(r.timestamps(), ts);
                    let mut out = [0u8; 60];
                    let n = r.emit_segment(&mut out, &[], 0x1234).unwrap();
                    let (back, _) = TcpRepr::parse(&out[..n], Some(0x1234)).unwrap();
                    assert_eq!(back.options, b);
                }
            }
        }
        // Padding with EOL zeros.
        let mut w = TcpOptionsWriter::new();
        w.window_scale(3).unwrap();
        assert_eq!(w.as_bytes(), [3, 3, 3, 0]);
        // Full buffer.
        let mut w = TcpOptionsWriter::default();
        for _ in 0..10 {
            w.mss(1).unwrap();
        }
        assert_eq!(w.nop().err(), Some(WireError::BufferTooSmall));
        assert_eq!(w.as_bytes().len(), 40);
        let mut w = TcpOptionsWriter::new();
        w.timestamps(1, 2).unwrap();
        let b = [(SeqNum(1), SeqNum(2)); 4];
        assert_eq!(w.sack(&b).err(), Some(WireError::BufferTooSmall));
        assert_eq!(w.sack(&[]).err(), Some(WireError::Malformed));
        assert_eq!(
            w.sack(&[(SeqNum(1), SeqNum(2)); 5]).err(),
            Some(WireError::Malformed)
        );
        w.sack(&b[..3]).unwrap();
        assert_eq!(w.as_bytes().len(), 36);
    }

    #[test]
    fn seqnum_wraps() {
        let a = SeqNum(u32::MAX - 9);
        let b = a + 20;
        assert_eq!(b, SeqNum(10));
        assert_eq!(b - 20, a);
        assert_eq!(b.distance(a), 20);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert!(a.lt(b) && a.le(b) && !a.gt(b) && !a.ge(b));
        assert!(b.gt(a) && b.ge(a) && !b.lt(a) && !b.le(a));
        assert!(a.le(a) && a.ge(a) && !a.lt(a) && !a.gt(a));
        assert_eq!(a.max(b), b);
        assert_eq!(b.max(a), b);
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
        let mut c = a;
        c += 10;
        assert_eq!(c, SeqNum(0));
        c -= 1;
        assert_eq!(c, SeqNum(u32::MAX));
        assert!(SeqNum(5).in_window(a, 20));
        assert!(a.in_window(a, 1));
        assert!(!b.in_window(a, 20));
        assert!(!SeqNum(u32::MAX - 10).in_window(a, 20));
        assert!(!a.in_window(a, 0));
        // Just under half the circle apart is still ordered; 2^31 apart
        // is the RFC 1982 undefined case: incomparable both ways.
        let far = SeqNum(0) + (1 << 31) - 1;
        assert!(SeqNum(0).lt(far) && far.gt(SeqNum(0)));
        assert!(!far.lt(SeqNum(0)) && !SeqNum(0).gt(far));
        let half = SeqNum(1 << 31);
        for (x, y) in [
            (SeqNum(0), half),
            (half, SeqNum(0)),
            (SeqNum(7), SeqNum(7) + (1 << 31)),
        ] {
            assert!(!x.lt(y) && !x.gt(y) && !x.le(y) && !x.ge(y), "{x} vs {y}");
            assert_eq!(x.max(y), x);
            assert_eq!(x.min(y), x);
        }
        assert_eq!(format!("{}", SeqNum(42)), "42");
    }
}
