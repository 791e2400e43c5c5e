//! Neighbor Discovery for IPv6: messages and options (RFC 4861), Route
//! Information (RFC 4191 §2.3) and the DNS options RDNSS and DNSSL (RFC 8106).
//!
//! # Model
//!
//! NDP messages are ICMPv6 messages of types 133 to 137 (RFC 4861 §4). This
//! module knows their fixed parts and their options; the ICMPv6 header and
//! its checksum are handled by [`crate::wire::icmpv6`], which hands a whole
//! message here when the type is an NDP one and the code is 0 (a non-zero
//! code makes the message invalid for NDP, RFC 4861 §6.1.1 and §7.1.1, so it
//! is left as [`Icmpv6Repr::Other`] instead).
//!
//! A parsed message is an [`NdpRepr`] borrowing from the input. Reserved
//! fields are kept as found and options are kept as their raw bytes
//! ([`NdpOptions`]), so emitting a parsed message gives back the input bytes
//! exactly. Options are validated once when the message is parsed and then
//! decoded on demand by [`NdpOptions::iter`] into [`NdpOption`] values.
//!
//! # Options (RFC 4861 §4.6)
//!
//! Each option is a type octet, a length octet in units of 8 octets, and
//! data. A length of 0 is [`WireError::Malformed`] (RFC 4861 §4.6: "Nodes
//! MUST silently discard an ND packet that contains an option with length
//! zero"); an option header cut short, or a length running past the end of
//! the message, is [`WireError::Truncated`]. Known options whose length does
//! not fit their format are [`WireError::Malformed`]: link-layer addresses of
//! other than 1 unit (Ethernet, RFC 2464 §8), Prefix Information of other
//! than 4 (RFC 4861 §4.6.2), MTU of other than 1 (§4.6.4), Route Information
//! outside 1..=3 or too short for its prefix length (RFC 4191 §2.3), RDNSS
//! shorter than 3 or even (RFC 8106 §5.1), DNSSL shorter than 2, holding a
//! compressed or over-long name, or padded with anything but zeros (RFC 8106
//! §5.2). Every loop over options or labels consumes at least one octet per
//! step, so it is bounded by the input length.
//!
//! # Building messages
//!
//! [`NdpWriter`] writes the fixed part of a message into a caller buffer,
//! lets options be appended through an [`NdpOptionWriter`], and finally
//! computes the ICMPv6 checksum over the pseudo-header (RFC 4443 §2.3). It
//! never allocates; a short buffer is [`WireError::BufferTooSmall`].
//!
//! # Validity checks
//!
//! Parsing checks the structure of a message (ICMP length, option lengths).
//! The remaining checks of RFC 4861 §6.1 and §7.1, which depend on the IPv6
//! header (hop limit 255, source and destination addresses), are done by
//! [`validate`], which services call before acting on a message.

use core::fmt;
use core::net::Ipv6Addr;

use zerocopy::byteorder::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::addr::MacAddr;
use crate::wire::dns;
use crate::wire::icmpv6::{self, msg_type, Icmpv6Repr};
use crate::wire::{Result, WireError};

/// NDP option types (IANA "IPv6 Neighbor Discovery Option Formats").
pub mod option_kind {
    /// Source Link-Layer Address (RFC 4861 §4.6.1).
    pub const SOURCE_LINK_ADDR: u8 = 1;
    /// Target Link-Layer Address (RFC 4861 §4.6.1).
    pub const TARGET_LINK_ADDR: u8 = 2;
    /// Prefix Information (RFC 4861 §4.6.2).
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected Header (RFC 4861 §4.6.3).
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU (RFC 4861 §4.6.4).
    pub const MTU: u8 = 5;
    /// Nonce (RFC 3971 §5.3.2), sent by Linux in DAD probes.
    pub const NONCE: u8 = 14;
    /// Route Information (RFC 4191 §2.3).
    pub const ROUTE_INFO: u8 = 24;
    /// Recursive DNS Server (RFC 8106 §5.1).
    pub const RDNSS: u8 = 25;
    /// DNS Search List (RFC 8106 §5.2).
    pub const DNSSL: u8 = 31;
}

/// The hop limit every NDP message must arrive with (RFC 4861 §6.1.1,
/// §7.1.1, §8.1): proof that it was not forwarded by a router.
pub const NDP_HOP_LIMIT: u8 = 255;

/// Longest domain name in wire form, length octets and the final zero
/// included (RFC 1035 §2.3.4).
pub const MAX_DNS_NAME_LEN: usize = 255;

/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_DNS_LABEL_LEN: usize = 63;

/// Router Advertisement M flag: addresses available via DHCPv6 (RFC 4861 §4.2).
const RA_MANAGED: u8 = 0x80;
/// Router Advertisement O flag: other configuration via DHCPv6 (RFC 4861 §4.2).
const RA_OTHER: u8 = 0x40;
/// Neighbor Advertisement R flag (RFC 4861 §4.4).
const NA_ROUTER: u32 = 0x8000_0000;
/// Neighbor Advertisement S flag (RFC 4861 §4.4).
const NA_SOLICITED: u32 = 0x4000_0000;
/// Neighbor Advertisement O flag (RFC 4861 §4.4).
const NA_OVERRIDE: u32 = 0x2000_0000;
/// Prefix Information L flag (RFC 4861 §4.6.2).
const PI_ON_LINK: u8 = 0x80;
/// Prefix Information A flag (RFC 4861 §4.6.2).
const PI_AUTONOMOUS: u8 = 0x40;

/// Router Solicitation as it sits in a message (RFC 4861 §4.1).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RouterSolicitHeader {
    /// ICMPv6 type, 133.
    pub icmp_type: u8,
    /// ICMPv6 code, 0.
    pub code: u8,
    /// ICMPv6 checksum.
    pub checksum: U16,
    /// Reserved, zero when sent.
    pub reserved: U32,
}

/// Router Advertisement fixed part as it sits in a message (RFC 4861 §4.2).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RouterAdvertHeader {
    /// ICMPv6 type, 134.
    pub icmp_type: u8,
    /// ICMPv6 code, 0.
    pub code: u8,
    /// ICMPv6 checksum.
    pub checksum: U16,
    /// Hop limit hosts should use, 0 for unspecified.
    pub cur_hop_limit: u8,
    /// M (0x80), O (0x40), H (0x20), Prf (0x18, RFC 4191 §2.2), P (0x04).
    pub flags: u8,
    /// Lifetime as default router, seconds; 0: not a default router.
    pub router_lifetime: U16,
    /// Reachable time, milliseconds; 0 for unspecified.
    pub reachable_time: U32,
    /// Retransmission timer, milliseconds; 0 for unspecified.
    pub retrans_timer: U32,
}

/// Neighbor Solicitation or Advertisement fixed part as it sits in a message
/// (RFC 4861 §4.3, §4.4).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct NeighborHeader {
    /// ICMPv6 type, 135 or 136.
    pub icmp_type: u8,
    /// ICMPv6 code, 0.
    pub code: u8,
    /// ICMPv6 checksum.
    pub checksum: U16,
    /// Reserved (NS); R, S, O flags in the top bits and reserved (NA).
    pub flags: U32,
    /// Target address.
    pub target: [u8; 16],
}

/// Redirect fixed part as it sits in a message (RFC 4861 §4.5).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RedirectHeader {
    /// ICMPv6 type, 137.
    pub icmp_type: u8,
    /// ICMPv6 code, 0.
    pub code: u8,
    /// ICMPv6 checksum.
    pub checksum: U16,
    /// Reserved, zero when sent.
    pub reserved: U32,
    /// Better first hop for the destination.
    pub target: [u8; 16],
    /// Destination that is redirected.
    pub destination: [u8; 16],
}

/// Type and length common to every NDP option (RFC 4861 §4.6).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct NdpOptionHeader {
    /// Option type, see [`option_kind`].
    pub kind: u8,
    /// Length of the whole option in units of 8 octets; never 0.
    pub len: u8,
}

/// Prefix Information option (RFC 4861 §4.6.2).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct PrefixInfoOption {
    /// 3.
    pub kind: u8,
    /// 4.
    pub len: u8,
    /// Number of leading bits of `prefix` that are valid.
    pub prefix_len: u8,
    /// L (0x80), A (0x40), reserved bits.
    pub flags: u8,
    /// Valid lifetime, seconds; all ones is infinity.
    pub valid_lifetime: U32,
    /// Preferred lifetime, seconds; all ones is infinity.
    pub preferred_lifetime: U32,
    /// Reserved, zero when sent.
    pub reserved2: U32,
    /// The prefix, bits past `prefix_len` zero.
    pub prefix: [u8; 16],
}

/// MTU option (RFC 4861 §4.6.4).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct MtuOption {
    /// 5.
    pub kind: u8,
    /// 1.
    pub len: u8,
    /// Reserved, zero when sent.
    pub reserved: U16,
    /// Recommended link MTU.
    pub mtu: U32,
}

/// Common head of the RDNSS and DNSSL options (RFC 8106 §5.1, §5.2) and of
/// Route Information (RFC 4191 §2.3, where `reserved` holds the prefix
/// length and flags).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct LifetimeOptionHeader {
    /// 24, 25 or 31.
    pub kind: u8,
    /// Length in units of 8 octets.
    pub len: u8,
    /// Reserved (RDNSS, DNSSL); prefix length and flags (Route Information).
    pub reserved: U16,
    /// Lifetime, seconds; all ones is infinity, 0 withdraws.
    pub lifetime: U32,
}

/// A parsed NDP message (RFC 4861 §4), borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpRepr<'a> {
    /// Router Solicitation (RFC 4861 §4.1).
    RouterSolicit {
        /// Reserved field, as found.
        reserved: u32,
        /// Options.
        options: NdpOptions<'a>,
    },
    /// Router Advertisement (RFC 4861 §4.2).
    RouterAdvert {
        /// Hop limit hosts should use, 0 for unspecified.
        cur_hop_limit: u8,
        /// M flag: addresses are available via DHCPv6.
        managed: bool,
        /// O flag: other configuration is available via DHCPv6.
        other: bool,
        /// The remaining flag bits (mask 0x3f) as found: H (0x20), router
        /// preference (0x18, RFC 4191 §2.2: 01 high, 00 medium, 11 low),
        /// P (0x04) and reserved bits.
        more_flags: u8,
        /// Lifetime as default router, seconds.
        router_lifetime: u16,
        /// Reachable time, milliseconds.
        reachable_time: u32,
        /// Retransmission timer, milliseconds.
        retrans_timer: u32,
        /// Options.
        options: NdpOptions<'a>,
    },
    /// Neighbor Solicitation (RFC 4861 §4.3).
    NeighborSolicit {
        /// Reserved field, as found.
        reserved: u32,
        /// Address whose link-layer address is asked for.
        target: Ipv6Addr,
        /// Options.
        options: NdpOptions<'a>,
    },
    /// Neighbor Advertisement (RFC 4861 §4.4).
    NeighborAdvert {
        /// R flag: the sender is a router.
        router: bool,
        /// S flag: sent in response to a solicitation.
        solicited: bool,
        /// O flag: override an existing cache entry.
        override_: bool,
        /// The 29 reserved bits (mask 0x1fff_ffff), as found.
        reserved: u32,
        /// Address being advertised.
        target: Ipv6Addr,
        /// Options.
        options: NdpOptions<'a>,
    },
    /// Redirect (RFC 4861 §4.5).
    Redirect {
        /// Reserved field, as found.
        reserved: u32,
        /// Better first hop.
        target: Ipv6Addr,
        /// Destination redirected.
        destination: Ipv6Addr,
        /// Options.
        options: NdpOptions<'a>,
    },
}

impl<'a> NdpRepr<'a> {
    /// Parse a whole ICMPv6 message that must be an NDP message, verifying
    /// its checksum when `pseudo` (the pseudo-header partial sum, see
    /// [`icmpv6::pseudo_header`]) is given.
    ///
    /// # Errors
    ///
    /// Those of [`Icmpv6Repr::parse`], and [`WireError::Unsupported`] if the
    /// message is not an NDP message with code 0.
    pub fn parse(msg: &'a [u8], pseudo: Option<u32>) -> Result<Self> {
        match Icmpv6Repr::parse(msg, pseudo)? {
            Icmpv6Repr::Ndp(repr) => Ok(repr),
            _ => Err(WireError::Unsupported),
        }
    }

    /// Parse the NDP message `msg` (ICMPv6 header included) of type
    /// `icmp_type`; checksum and code are the caller's business.
    pub(crate) fn parse_message(icmp_type: u8, msg: &'a [u8]) -> Result<Self> {
        match icmp_type {
            msg_type::ROUTER_SOLICIT => {
                let (hdr, rest) = RouterSolicitHeader::ref_from_prefix(msg).map_err(truncated)?;
                Ok(NdpRepr::RouterSolicit {
                    reserved: hdr.reserved.get(),
                    options: NdpOptions::parse(rest)?,
                })
            }
            msg_type::ROUTER_ADVERT => {
                let (hdr, rest) = RouterAdvertHeader::ref_from_prefix(msg).map_err(truncated)?;
                Ok(NdpRepr::RouterAdvert {
                    cur_hop_limit: hdr.cur_hop_limit,
                    managed: hdr.flags & RA_MANAGED != 0,
                    other: hdr.flags & RA_OTHER != 0,
                    more_flags: hdr.flags & !(RA_MANAGED | RA_OTHER),
                    router_lifetime: hdr.router_lifetime.get(),
                    reachable_time: hdr.reachable_time.get(),
                    retrans_timer: hdr.retrans_timer.get(),
                    options: NdpOptions::parse(rest)?,
                })
            }
            msg_type::NEIGHBOR_SOLICIT => {
                let (hdr, rest) = NeighborHeader::ref_from_prefix(msg).map_err(truncated)?;
                Ok(NdpRepr::NeighborSolicit {
                    reserved: hdr.flags.get(),
                    target: Ipv6Addr::from(hdr.target),
                    options: NdpOptions::parse(rest)?,
                })
            }
            msg_type::NEIGHBOR_ADVERT => {
                let (hdr, rest) = NeighborHeader::ref_from_prefix(msg).map_err(truncated)?;
                let flags = hdr.flags.get();
                Ok(NdpRepr::NeighborAdvert {
                    router: flags & NA_ROUTER != 0,
                    solicited: flags & NA_SOLICITED != 0,
                    override_: flags & NA_OVERRIDE != 0,
                    reserved: flags & !(NA_ROUTER | NA_SOLICITED | NA_OVERRIDE),
                    target: Ipv6Addr::from(hdr.target),
                    options: NdpOptions::parse(rest)?,
                })
            }
            msg_type::REDIRECT => {
                let (hdr, rest) = RedirectHeader::ref_from_prefix(msg).map_err(truncated)?;
                Ok(NdpRepr::Redirect {
                    reserved: hdr.reserved.get(),
                    target: Ipv6Addr::from(hdr.target),
                    destination: Ipv6Addr::from(hdr.destination),
                    options: NdpOptions::parse(rest)?,
                })
            }
            _ => Err(WireError::Unsupported),
        }
    }

    /// ICMPv6 type of this message.
    pub fn icmp_type(&self) -> u8 {
        match self {
            NdpRepr::RouterSolicit { .. } => msg_type::ROUTER_SOLICIT,
            NdpRepr::RouterAdvert { .. } => msg_type::ROUTER_ADVERT,
            NdpRepr::NeighborSolicit { .. } => msg_type::NEIGHBOR_SOLICIT,
            NdpRepr::NeighborAdvert { .. } => msg_type::NEIGHBOR_ADVERT,
            NdpRepr::Redirect { .. } => msg_type::REDIRECT,
        }
    }

    /// The options of this message.
    pub fn options(&self) -> NdpOptions<'a> {
        match *self {
            NdpRepr::RouterSolicit { options, .. }
            | NdpRepr::RouterAdvert { options, .. }
            | NdpRepr::NeighborSolicit { options, .. }
            | NdpRepr::NeighborAdvert { options, .. }
            | NdpRepr::Redirect { options, .. } => options,
        }
    }

    /// Length of the fixed part, ICMPv6 header included.
    fn fixed_len(&self) -> usize {
        match self {
            NdpRepr::RouterSolicit { .. } => size_of::<RouterSolicitHeader>(),
            NdpRepr::RouterAdvert { .. } => size_of::<RouterAdvertHeader>(),
            NdpRepr::NeighborSolicit { .. } | NdpRepr::NeighborAdvert { .. } => {
                size_of::<NeighborHeader>()
            }
            NdpRepr::Redirect { .. } => size_of::<RedirectHeader>(),
        }
    }

    /// Length of the whole message, ICMPv6 header included.
    pub fn buffer_len(&self) -> usize {
        self.fixed_len() + self.options().as_bytes().len()
    }

    /// Emit the whole message into `buf` with `checksum` written as given;
    /// returns the length written.
    pub(crate) fn emit_message(&self, buf: &mut [u8], checksum: u16) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (fixed, opts) = out.split_at_mut(self.fixed_len());
        let checksum = U16::new(checksum);
        let written = match *self {
            NdpRepr::RouterSolicit { reserved, .. } => RouterSolicitHeader {
                icmp_type: msg_type::ROUTER_SOLICIT,
                code: 0,
                checksum,
                reserved: U32::new(reserved),
            }
            .write_to(fixed)
            .is_ok(),
            NdpRepr::RouterAdvert {
                cur_hop_limit,
                managed,
                other,
                more_flags,
                router_lifetime,
                reachable_time,
                retrans_timer,
                ..
            } => {
                let mut flags = more_flags & !(RA_MANAGED | RA_OTHER);
                if managed {
                    flags |= RA_MANAGED;
                }
                if other {
                    flags |= RA_OTHER;
                }
                RouterAdvertHeader {
                    icmp_type: msg_type::ROUTER_ADVERT,
                    code: 0,
                    checksum,
                    cur_hop_limit,
                    flags,
                    router_lifetime: U16::new(router_lifetime),
                    reachable_time: U32::new(reachable_time),
                    retrans_timer: U32::new(retrans_timer),
                }
                .write_to(fixed)
                .is_ok()
            }
            NdpRepr::NeighborSolicit {
                reserved, target, ..
            } => NeighborHeader {
                icmp_type: msg_type::NEIGHBOR_SOLICIT,
                code: 0,
                checksum,
                flags: U32::new(reserved),
                target: target.octets(),
            }
            .write_to(fixed)
            .is_ok(),
            NdpRepr::NeighborAdvert {
                router,
                solicited,
                override_,
                reserved,
                target,
                ..
            } => {
                let mut flags = reserved & !(NA_ROUTER | NA_SOLICITED | NA_OVERRIDE);
                if router {
                    flags |= NA_ROUTER;
                }
                if solicited {
                    flags |= NA_SOLICITED;
                }
                if override_ {
                    flags |= NA_OVERRIDE;
                }
                NeighborHeader {
                    icmp_type: msg_type::NEIGHBOR_ADVERT,
                    code: 0,
                    checksum,
                    flags: U32::new(flags),
                    target: target.octets(),
                }
                .write_to(fixed)
                .is_ok()
            }
            NdpRepr::Redirect {
                reserved,
                target,
                destination,
                ..
            } => RedirectHeader {
                icmp_type: msg_type::REDIRECT,
                code: 0,
                checksum,
                reserved: U32::new(reserved),
                target: target.octets(),
                destination: destination.octets(),
            }
            .write_to(fixed)
            .is_ok(),
        };
        if !written {
            return Err(WireError::BufferTooSmall);
        }
        opts.copy_from_slice(self.options().as_bytes());
        Ok(len)
    }

    /// Emit the message with a freshly computed checksum; `pseudo` is the
    /// pseudo-header partial sum for [`Self::buffer_len`] octets.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], pseudo: u32) -> Result<usize> {
        Icmpv6Repr::Ndp(*self).emit(buf, pseudo)
    }
}

/// The options of an NDP message: validated raw bytes, emitted as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdpOptions<'a> {
    bytes: &'a [u8],
}

/// Map any zerocopy cast error to [`WireError::Truncated`].
fn truncated<E>(_: E) -> WireError {
    WireError::Truncated
}

/// Map any zerocopy cast error to [`WireError::Malformed`].
fn malformed<E>(_: E) -> WireError {
    WireError::Malformed
}

/// Split the option at the start of `bytes` from the rest.
fn split_option(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    let (hdr, _) = NdpOptionHeader::ref_from_prefix(bytes).map_err(|_| WireError::Truncated)?;
    if hdr.len == 0 {
        return Err(WireError::Malformed);
    }
    bytes
        .split_at_checked(usize::from(hdr.len) * 8)
        .ok_or(WireError::Truncated)
}

impl<'a> NdpOptions<'a> {
    /// No options.
    pub const EMPTY: NdpOptions<'static> = NdpOptions { bytes: &[] };

    /// Validate the option area of an NDP message (RFC 4861 §4.6).
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] if an option header is cut short or an
    /// option runs past the end; [`WireError::Malformed`] for a zero length
    /// or a known option whose content does not fit its format (see the
    /// module documentation).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut rest = bytes;
        // Each step consumes at least 8 octets.
        while !rest.is_empty() {
            let (opt, tail) = split_option(rest)?;
            NdpOption::decode(opt)?;
            rest = tail;
        }
        Ok(NdpOptions { bytes })
    }

    /// The raw option bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Iterate over the decoded options, in order.
    pub fn iter(&self) -> NdpOptionIter<'a> {
        NdpOptionIter { rest: self.bytes }
    }

    /// The first Source Link-Layer Address option, if any.
    pub fn source_link_addr(&self) -> Option<MacAddr> {
        self.iter().find_map(|o| match o {
            NdpOption::SourceLinkAddr(mac) => Some(mac),
            _ => None,
        })
    }

    /// The first Target Link-Layer Address option, if any.
    pub fn target_link_addr(&self) -> Option<MacAddr> {
        self.iter().find_map(|o| match o {
            NdpOption::TargetLinkAddr(mac) => Some(mac),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for NdpOptions<'a> {
    type Item = NdpOption<'a>;
    type IntoIter = NdpOptionIter<'a>;

    fn into_iter(self) -> NdpOptionIter<'a> {
        self.iter()
    }
}

/// Iterator over the options of validated [`NdpOptions`].
#[derive(Debug, Clone)]
pub struct NdpOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdpOptionIter<'a> {
    type Item = NdpOption<'a>;

    fn next(&mut self) -> Option<NdpOption<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // Options were validated on parse; should that ever not hold, stop.
        match split_option(self.rest).and_then(|(opt, tail)| Ok((NdpOption::decode(opt)?, tail))) {
            Ok((opt, tail)) => {
                self.rest = tail;
                Some(opt)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// One decoded NDP option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdpOption<'a> {
    /// Source Link-Layer Address (RFC 4861 §4.6.1), Ethernet.
    SourceLinkAddr(MacAddr),
    /// Target Link-Layer Address (RFC 4861 §4.6.1), Ethernet.
    TargetLinkAddr(MacAddr),
    /// Prefix Information (RFC 4861 §4.6.2).
    PrefixInfo {
        /// Number of valid leading bits of `prefix`.
        prefix_len: u8,
        /// L flag: the prefix is on-link.
        on_link: bool,
        /// A flag: usable for stateless address autoconfiguration.
        autonomous: bool,
        /// Valid lifetime, seconds; all ones is infinity.
        valid_lifetime: u32,
        /// Preferred lifetime, seconds; all ones is infinity.
        preferred_lifetime: u32,
        /// The prefix.
        prefix: Ipv6Addr,
    },
    /// Redirected Header (RFC 4861 §4.6.3): as much of the redirected packet
    /// (IPv6 header first) as fits, after the 6 reserved octets.
    RedirectedHeader(&'a [u8]),
    /// MTU (RFC 4861 §4.6.4).
    Mtu(u32),
    /// Route Information (RFC 4191 §2.3).
    RouteInfo {
        /// Number of valid leading bits of `prefix`, at most 128.
        prefix_len: u8,
        /// Route preference, 2 bits: 1 high, 0 medium, 3 low, 2 reserved.
        preference: u8,
        /// Route lifetime, seconds; all ones is infinity.
        lifetime: u32,
        /// The prefix, padded with zeros.
        prefix: Ipv6Addr,
    },
    /// Recursive DNS Server (RFC 8106 §5.1).
    Rdnss {
        /// Lifetime, seconds; all ones is infinity, 0 withdraws.
        lifetime: u32,
        /// The servers, at least one.
        addresses: Ipv6Addrs<'a>,
    },
    /// DNS Search List (RFC 8106 §5.2).
    Dnssl {
        /// Lifetime, seconds; all ones is infinity, 0 withdraws.
        lifetime: u32,
        /// The domain names.
        domains: DnsNames<'a>,
    },
    /// Any other option: its type and the bytes after type and length.
    Unknown {
        /// Option type.
        kind: u8,
        /// Option data (length minus 2 octets).
        data: &'a [u8],
    },
}

impl<'a> NdpOption<'a> {
    /// Decode one whole option (header included) whose length octet is
    /// non-zero and matches `opt.len()`.
    fn decode(opt: &'a [u8]) -> Result<Self> {
        let (hdr, _) = NdpOptionHeader::ref_from_prefix(opt).map_err(|_| WireError::Truncated)?;
        let (kind, units) = (hdr.kind, hdr.len);
        let tail = |from: usize| opt.get(from..).ok_or(WireError::Malformed);
        match kind {
            option_kind::SOURCE_LINK_ADDR | option_kind::TARGET_LINK_ADDR => {
                let mac = match (units, opt.get(2..8)) {
                    (1, Some(&[a, b, c, d, e, f])) => MacAddr([a, b, c, d, e, f]),
                    _ => return Err(WireError::Malformed),
                };
                Ok(if kind == option_kind::SOURCE_LINK_ADDR {
                    NdpOption::SourceLinkAddr(mac)
                } else {
                    NdpOption::TargetLinkAddr(mac)
                })
            }
            option_kind::PREFIX_INFO => {
                let pi = PrefixInfoOption::ref_from_bytes(opt).map_err(malformed)?;
                if pi.prefix_len > 128 {
                    return Err(WireError::Malformed);
                }
                Ok(NdpOption::PrefixInfo {
                    prefix_len: pi.prefix_len,
                    on_link: pi.flags & PI_ON_LINK != 0,
                    autonomous: pi.flags & PI_AUTONOMOUS != 0,
                    valid_lifetime: pi.valid_lifetime.get(),
                    preferred_lifetime: pi.preferred_lifetime.get(),
                    prefix: Ipv6Addr::from(pi.prefix),
                })
            }
            option_kind::REDIRECTED_HEADER => Ok(NdpOption::RedirectedHeader(tail(8)?)),
            option_kind::MTU => {
                let mtu = MtuOption::ref_from_bytes(opt).map_err(malformed)?;
                Ok(NdpOption::Mtu(mtu.mtu.get()))
            }
            option_kind::ROUTE_INFO => {
                let (hdr, prefix) =
                    LifetimeOptionHeader::ref_from_prefix(opt).map_err(malformed)?;
                let [prefix_len, flags] = hdr.reserved.get().to_be_bytes();
                let fits = match units {
                    1 => prefix_len == 0,
                    2 => prefix_len <= 64,
                    3 => prefix_len <= 128,
                    _ => false,
                };
                if !fits {
                    return Err(WireError::Malformed);
                }
                let mut octets = [0u8; 16];
                if let Some(dst) = octets.get_mut(..prefix.len()) {
                    dst.copy_from_slice(prefix);
                }
                Ok(NdpOption::RouteInfo {
                    prefix_len,
                    preference: (flags >> 3) & 0x3,
                    lifetime: hdr.lifetime.get(),
                    prefix: Ipv6Addr::from(octets),
                })
            }
            option_kind::RDNSS => {
                if units < 3 || units % 2 == 0 {
                    return Err(WireError::Malformed);
                }
                let (hdr, addrs) = LifetimeOptionHeader::ref_from_prefix(opt).map_err(malformed)?;
                Ok(NdpOption::Rdnss {
                    lifetime: hdr.lifetime.get(),
                    addresses: Ipv6Addrs { bytes: addrs },
                })
            }
            option_kind::DNSSL => {
                if units < 2 {
                    return Err(WireError::Malformed);
                }
                let (hdr, names) = LifetimeOptionHeader::ref_from_prefix(opt).map_err(malformed)?;
                Ok(NdpOption::Dnssl {
                    lifetime: hdr.lifetime.get(),
                    domains: DnsNames::parse(names)?,
                })
            }
            _ => Ok(NdpOption::Unknown {
                kind,
                data: tail(2)?,
            }),
        }
    }
}

/// The addresses of an RDNSS option: a multiple of 16 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Addrs<'a> {
    bytes: &'a [u8],
}

impl Ipv6Addrs<'_> {
    /// How many addresses remain.
    pub fn count_remaining(&self) -> usize {
        self.bytes.len() / 16
    }
}

impl Iterator for Ipv6Addrs<'_> {
    type Item = Ipv6Addr;

    fn next(&mut self) -> Option<Ipv6Addr> {
        let (head, rest) = self.bytes.split_first_chunk::<16>()?;
        self.bytes = rest;
        Some(Ipv6Addr::from(*head))
    }
}

/// The domain names of a DNSSL option (RFC 8106 §5.2): uncompressed DNS
/// wire names (RFC 1035 §3.1), one after the other, then zero padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsNames<'a> {
    bytes: &'a [u8],
}

/// Length of the wire name at the start of `bytes` (final zero included),
/// or `None` if `bytes` starts with padding (a zero octet) or is empty.
fn wire_name_len(bytes: &[u8]) -> Result<Option<usize>> {
    if matches!(bytes.first(), None | Some(0)) {
        return Ok(None);
    }
    let mut pos = 0usize;
    // `pos` grows by at least one per step and is capped at 255.
    loop {
        let label = *bytes.get(pos).ok_or(WireError::Malformed)?;
        pos += 1;
        if label == 0 {
            return Ok(Some(pos));
        }
        // 0xc0: compression pointer (RFC 1035 §4.1.4), not allowed here;
        // 0x40, 0x80: extended label types, or labels over 63 octets.
        if label & 0xc0 != 0 {
            return Err(WireError::Malformed);
        }
        pos += usize::from(label);
        if pos >= MAX_DNS_NAME_LEN {
            return Err(WireError::Malformed);
        }
    }
}

impl<'a> DnsNames<'a> {
    /// Validate the name area of a DNSSL option.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] for a compression pointer or extended label
    /// type, a name longer than 255 octets, a name running past the end,
    /// or padding that is not all zeros.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut rest = bytes;
        while let Some(len) = wire_name_len(rest)? {
            rest = rest.get(len..).ok_or(WireError::Malformed)?;
        }
        if rest.iter().any(|&b| b != 0) {
            return Err(WireError::Malformed);
        }
        Ok(DnsNames { bytes })
    }

    /// The raw name area, padding included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> Iterator for DnsNames<'a> {
    type Item = DnsName<'a>;

    fn next(&mut self) -> Option<DnsName<'a>> {
        let len = wire_name_len(self.bytes).ok().flatten();
        match len.and_then(|len| self.bytes.split_at_checked(len)) {
            Some((name, rest)) => {
                self.bytes = rest;
                Some(DnsName { wire: name })
            }
            None => {
                self.bytes = &[];
                None
            }
        }
    }
}

/// One uncompressed domain name in DNS wire form (RFC 1035 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsName<'a> {
    wire: &'a [u8],
}

impl<'a> DnsName<'a> {
    /// The wire form: length-prefixed labels and the final zero.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.wire
    }

    /// The labels, in order, without length octets.
    pub fn labels(&self) -> DnsLabels<'a> {
        DnsLabels { rest: self.wire }
    }
}

impl fmt::Display for DnsName<'_> {
    /// Dotted form without the final dot; octets that are not printable
    /// ASCII, and dots inside labels, are written as `\DDD` (RFC 1035 §5.1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", char::from(b))?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        Ok(())
    }
}

/// Iterator over the labels of a [`DnsName`].
#[derive(Debug, Clone)]
pub struct DnsLabels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DnsLabels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.rest.split_first()?;
        let label = rest.get(..usize::from(len)).filter(|_| len != 0);
        match label {
            Some(label) => {
                self.rest = rest.get(label.len()..).unwrap_or(&[]);
                Some(label)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Appends NDP options to a caller buffer, each padded to a multiple of 8
/// octets with zeros (RFC 4861 §4.6). A failed append writes nothing.
#[derive(Debug)]
pub struct NdpOptionWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> NdpOptionWriter<'b> {
    /// Start writing options at the beginning of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        NdpOptionWriter { buf, pos: 0 }
    }

    /// Octets written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// What was written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Zeroed room for an option of `units` × 8 octets with its type and
    /// length filled in; commit it with `self.pos += units * 8`.
    fn room(&mut self, kind: u8, units: usize) -> Result<&mut [u8]> {
        let len_octet = u8::try_from(units)
            .ok()
            .filter(|&u| u != 0)
            .ok_or(WireError::Malformed)?;
        let end = self.pos + units * 8;
        let opt = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall)?;
        opt.fill(0);
        if let [k, l, ..] = opt {
            *k = kind;
            *l = len_octet;
        }
        Ok(opt)
    }

    /// Append an option of type `kind` carrying `data` (what follows the
    /// type and length octets), zero-padded to a multiple of 8 octets.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`]; [`WireError::Malformed`] if the option
    /// would be longer than 255 units of 8 octets.
    pub fn raw(&mut self, kind: u8, data: &[u8]) -> Result<()> {
        let units = (2 + data.len()).div_ceil(8);
        let opt = self.room(kind, units)?;
        if let Some(dst) = opt.get_mut(2..2 + data.len()) {
            dst.copy_from_slice(data);
        }
        self.pos += units * 8;
        Ok(())
    }

    /// Append a Source Link-Layer Address option (RFC 4861 §4.6.1).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`].
    pub fn source_link_addr(&mut self, mac: MacAddr) -> Result<()> {
        self.raw(option_kind::SOURCE_LINK_ADDR, &mac.0)
    }

    /// Append a Target Link-Layer Address option (RFC 4861 §4.6.1).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`].
    pub fn target_link_addr(&mut self, mac: MacAddr) -> Result<()> {
        self.raw(option_kind::TARGET_LINK_ADDR, &mac.0)
    }

    /// Append an MTU option (RFC 4861 §4.6.4).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`].
    pub fn mtu(&mut self, mtu: u32) -> Result<()> {
        let opt = MtuOption {
            kind: option_kind::MTU,
            len: 1,
            reserved: U16::ZERO,
            mtu: U32::new(mtu),
        };
        self.raw(option_kind::MTU, opt.as_bytes().get(2..).unwrap_or(&[]))
    }

    /// Append a Prefix Information option (RFC 4861 §4.6.2); the bits of
    /// `prefix` past `prefix_len` are cleared, as the RFC requires.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] if `prefix_len` exceeds 128;
    /// [`WireError::BufferTooSmall`].
    pub fn prefix_info(
        &mut self,
        prefix: Ipv6Addr,
        prefix_len: u8,
        on_link: bool,
        autonomous: bool,
        valid_lifetime: u32,
        preferred_lifetime: u32,
    ) -> Result<()> {
        if prefix_len > 128 {
            return Err(WireError::Malformed);
        }
        let mask = u128::MAX
            .checked_shl(128 - u32::from(prefix_len))
            .unwrap_or(0);
        let mut flags = 0;
        if on_link {
            flags |= PI_ON_LINK;
        }
        if autonomous {
            flags |= PI_AUTONOMOUS;
        }
        let opt = PrefixInfoOption {
            kind: option_kind::PREFIX_INFO,
            len: 4,
            prefix_len,
            flags,
            valid_lifetime: U32::new(valid_lifetime),
            preferred_lifetime: U32::new(preferred_lifetime),
            reserved2: U32::ZERO,
            prefix: (u128::from(prefix) & mask).to_be_bytes(),
        };
        self.raw(
            option_kind::PREFIX_INFO,
            opt.as_bytes().get(2..).unwrap_or(&[]),
        )
    }

    /// Append a Recursive DNS Server option (RFC 8106 §5.1).
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] if `servers` is empty or has more than 127
    /// entries; [`WireError::BufferTooSmall`].
    pub fn rdnss(&mut self, lifetime: u32, servers: &[Ipv6Addr]) -> Result<()> {
        if servers.is_empty() {
            return Err(WireError::Malformed);
        }
        let units = 1 + 2 * servers.len();
        let opt = self.room(option_kind::RDNSS, units)?;
        let (hdr, addrs) = opt.split_at_mut(size_of::<LifetimeOptionHeader>());
        write_lifetime(hdr, lifetime);
        for (dst, addr) in addrs.chunks_exact_mut(16).zip(servers) {
            dst.copy_from_slice(&addr.octets());
        }
        self.pos += units * 8;
        Ok(())
    }

    /// Append a DNS Search List option (RFC 8106 §5.2): the names in
    /// uncompressed wire form, zero-padded to a multiple of 8 octets.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] if `domains` is empty, a name is invalid
    /// (see [`dns::name_len`]) or the option would exceed 2040 octets;
    /// [`WireError::BufferTooSmall`].
    pub fn dnssl(&mut self, lifetime: u32, domains: &[&str]) -> Result<()> {
        if domains.is_empty() {
            return Err(WireError::Malformed);
        }
        let mut names_len = 0;
        for name in domains {
            names_len += dns::name_len(name)?;
        }
        let units = (8 + names_len).div_ceil(8);
        let opt = self.room(option_kind::DNSSL, units)?;
        let (hdr, mut names) = opt.split_at_mut(size_of::<LifetimeOptionHeader>());
        write_lifetime(hdr, lifetime);
        for name in domains {
            let n = dns::encode_name(name, names)?;
            names = names.get_mut(n..).ok_or(WireError::BufferTooSmall)?;
        }
        self.pos += units * 8;
        Ok(())
    }
}

/// Set the lifetime of the RDNSS or DNSSL option head `hdr` (type and
/// length already written).
fn write_lifetime(hdr: &mut [u8], lifetime: u32) {
    if let Ok((h, _)) = LifetimeOptionHeader::mut_from_prefix(hdr) {
        h.lifetime = U32::new(lifetime);
    }
}

/// The fields of a Router Advertisement to build (RFC 4861 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterAdvertSpec {
    /// Hop limit hosts should use, 0 for unspecified.
    pub cur_hop_limit: u8,
    /// M flag: addresses are available via DHCPv6.
    pub managed: bool,
    /// O flag: other configuration is available via DHCPv6.
    pub other: bool,
    /// Lifetime as default router, seconds (at most 9000, RFC 4861 §6.2.1).
    pub router_lifetime: u16,
    /// Reachable time, milliseconds; 0 for unspecified.
    pub reachable_time: u32,
    /// Retransmission timer, milliseconds; 0 for unspecified.
    pub retrans_timer: u32,
}

/// Builds an NDP message in a caller buffer: the fixed part first, then
/// options through [`Self::options`], then [`Self::finish`] computes the
/// checksum.
///
/// ```
/// # use core::net::Ipv6Addr;
/// # use passt_core::addr::MacAddr;
/// # use passt_core::wire::ndp::NdpWriter;
/// let ours: Ipv6Addr = "fe80::1".parse().unwrap();
/// let guest: Ipv6Addr = "fe80::2".parse().unwrap();
/// let mut buf = [0u8; 64];
/// let mut w = NdpWriter::neighbor_advert(&mut buf, true, true, true, ours).unwrap();
/// w.options().target_link_addr(MacAddr([2, 0, 0, 0, 0, 1])).unwrap();
/// let len = w.finish(&ours, &guest).unwrap();
/// assert_eq!(len, 32);
/// ```
#[derive(Debug)]
pub struct NdpWriter<'b> {
    opts: NdpOptionWriter<'b>,
}

impl<'b> NdpWriter<'b> {
    /// Start with `fixed` emitted (its options too; more can be appended).
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`].
    pub fn new(buf: &'b mut [u8], fixed: &NdpRepr<'_>) -> Result<Self> {
        let pos = fixed.emit_message(buf, 0)?;
        Ok(NdpWriter {
            opts: NdpOptionWriter { buf, pos },
        })
    }

    /// Start a Router Advertisement (RFC 4861 §4.2); reserved bits are zero.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`].
    pub fn router_advert(buf: &'b mut [u8], spec: &RouterAdvertSpec) -> Result<Self> {
        let ra = NdpRepr::RouterAdvert {
            cur_hop_limit: spec.cur_hop_limit,
            managed: spec.managed,
            other: spec.other,
            more_flags: 0,
            router_lifetime: spec.router_lifetime,
            reachable_time: spec.reachable_time,
            retrans_timer: spec.retrans_timer,
            options: NdpOptions::EMPTY,
        };
        Self::new(buf, &ra)
    }

    /// Start a Neighbor Advertisement (RFC 4861 §4.4) for `target`.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`].
    pub fn neighbor_advert(
        buf: &'b mut [u8],
        router: bool,
        solicited: bool,
        override_: bool,
        target: Ipv6Addr,
    ) -> Result<Self> {
        let na = NdpRepr::NeighborAdvert {
            router,
            solicited,
            override_,
            reserved: 0,
            target,
            options: NdpOptions::EMPTY,
        };
        Self::new(buf, &na)
    }

    /// The option writer, positioned after what was written so far.
    pub fn options(&mut self) -> &mut NdpOptionWriter<'b> {
        &mut self.opts
    }

    /// Fill in the ICMPv6 checksum for a message from `src` to `dst`
    /// (RFC 4443 §2.3); returns the message length.
    ///
    /// # Errors
    ///
    /// [`WireError::BufferTooSmall`] (cannot happen once started).
    pub fn finish(self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<usize> {
        let len = self.opts.pos;
        let msg = self
            .opts
            .buf
            .get_mut(..len)
            .ok_or(WireError::BufferTooSmall)?;
        icmpv6::fill_checksum(msg, icmpv6::pseudo_header(src, dst, len))?;
        Ok(len)
    }
}

/// The solicited-node multicast address of `addr`, ff02::1:ffXX:XXXX
/// (RFC 4291 §2.7.1).
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Whether `addr` is a solicited-node multicast address (RFC 4291 §2.7.1).
pub fn is_solicited_node(addr: &Ipv6Addr) -> bool {
    solicited_node(addr) == *addr
}

/// Whether `addr` is link-local unicast, fe80::/10 (RFC 4291 §2.5.6).
fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// The checks of RFC 4861 §6.1.1, §6.1.2, §7.1.1, §7.1.2 and §8.1 that
/// depend on the IPv6 header: `hop_limit`, `src` and `dst` are from the
/// packet that carried `repr`. A service silently drops a message failing
/// them.
///
/// Already guaranteed by a successful parse: ICMP code 0 (other codes are
/// not parsed as NDP), ICMP length of at least the fixed part, and option
/// lengths greater than zero. Checked here:
///
/// - every message: hop limit 255;
/// - Router Solicitation: no Source Link-Layer Address option if `src` is
///   unspecified;
/// - Router Advertisement and Redirect: `src` link-local;
/// - Neighbor Solicitation: target not multicast; if `src` is unspecified
///   (duplicate address detection), `dst` is a solicited-node multicast
///   address and there is no Source Link-Layer Address option;
/// - Neighbor Advertisement: target not multicast; if `dst` is multicast,
///   the Solicited flag is clear;
/// - Redirect: destination not multicast; target link-local or equal to
///   the destination.
///
/// Not checked: the IP Authentication Header cases, which we never see.
///
/// # Errors
///
/// [`WireError::Malformed`] if any check fails.
pub fn validate(repr: &NdpRepr<'_>, hop_limit: u8, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<()> {
    let ok = hop_limit == NDP_HOP_LIMIT
        && match *repr {
            NdpRepr::RouterSolicit { options, .. } => {
                !src.is_unspecified() || options.source_link_addr().is_none()
            }
            NdpRepr::RouterAdvert { .. } => is_link_local(src),
            NdpRepr::NeighborSolicit {
                target, options, ..
            } => {
                !target.is_multicast()
                    && (!src.is_unspecified()
                        || (is_solicited_node(dst) && options.source_link_addr().is_none()))
            }
            NdpRepr::NeighborAdvert {
                target, solicited, ..
            } => !target.is_multicast() && (!solicited || !dst.is_multicast()),
            NdpRepr::Redirect {
                target,
                destination,
                ..
            } => {
                is_link_local(src)
                    && !destination.is_multicast()
                    && (is_link_local(&target) || target == destination)
            }
        };
    if ok {
        Ok(())
    } else {
        Err(WireError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmpv6::{pseudo_header, Icmpv6Packet};

    // Fixtures captured with tcpdump between network namespaces joined by
    // veth pairs: Linux 6.x neighbour discovery, DAD and router
    // solicitation, radvd 2.19 advertisements, rdisc6/ndisc6 probes, and a
    // redirect from a forwarding namespace. Only the ICMPv6 message is kept;
    // the addresses for the pseudo-header are noted.

    /// Duplicate address detection probe for 2001:db8::2, with a nonce option (:: -> ff02::1:ff00:2, hop limit 255).
    const DAD_NS: &str = "\
            870005390000000020010db80000000000000000000000020e013365e438220b";

    /// Router solicitation with a source link-layer address (fe80::4811:a2ff:fe5c:78b6 -> ff02::2, hop limit 255).
    const RS: &str = "\
            8500b4e50000000001014a11a25c78b6";

    /// Router solicitation without options, from `rdisc6` (fe80::4811:a2ff:fe5c:78b6 -> ff02::2, hop limit 255).
    const RS_BARE: &str = "\
            85001b1300000000";

    /// Neighbor solicitation for 2001:db8::2 before the first ping (2001:db8::1 -> ff02::1:ff00:2, hop limit 255).
    const NS: &str = "\
            8700b9030000000020010db800000000000000000000000201014a11a25c78b6";

    /// The neighbor advertisement answering it (a router: forwarding is on) (2001:db8::2 -> 2001:db8::1, hop limit 255).
    const NA: &str = "\
            8800470de000000020010db80000000000000000000000020201462057412804";

    /// Solicited neighbor advertisement without options, answering a unicast probe (2001:db8::1 -> fe80::4420:57ff:fe41:2804, hop limit 255).
    const NA_BARE: &str = "\
            88001b524000000020010db8000000000000000000000001";

    /// Router advertisement from radvd: prefix, route, RDNSS, DNSSL, MTU, source link-layer address (fe80::4420:57ff:fe41:2804 -> ff02::1, hop limit 255).
    const RA: &str = "\
            86009a494040000c00007530000003e8030440c000015180000038400000000020010db8000100000000000000000000\
            180330080000070820010db8000700000000000000000000190500000000025820010db8000000000000000000000053\
            20010db80000000000000000000000541f05000000000258076578616d706c6503636f6d000474657374076578616d70\
            6c65036f7267000005010000000005780101462057412804";

    /// Redirect for 2001:db8:5::9 to a link-local next hop (fe80::4420:57ff:fe41:2804 -> 2001:db8::1, hop limit 255).
    const REDIRECT: &str = "\
            8900dbd000000000fe800000000000004811a2fffe5c78b620010db800050000000000000000000902014a11a25c78b6\
            040e000000000000600a180300403a4020010db800000000000000000000000120010db8000500000000000000000009\
            8000104f1f5f0001644e026b00000000cbc8030000000000101112131415161718191a1b1c1d1e1f2021222324252627\
            28292a2b2c2d2e2f3031323334353637";

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

    const GUEST_LL: &str = "fe80::4811:a2ff:fe5c:78b6";
    const ROUTER_LL: &str = "fe80::4420:57ff:fe41:2804";
    const GUEST_MAC: MacAddr = MacAddr([0x4a, 0x11, 0xa2, 0x5c, 0x78, 0xb6]);
    const ROUTER_MAC: MacAddr = MacAddr([0x46, 0x20, 0x57, 0x41, 0x28, 0x04]);

    /// Every fixture with the source and destination of its IPv6 header.
    const ALL: &[(&str, &str, &str)] = &[
        (DAD_NS, "::", "ff02::1:ff00:2"),
        (RS, GUEST_LL, "ff02::2"),
        (RS_BARE, GUEST_LL, "ff02::2"),
        (NS, "2001:db8::1", "ff02::1:ff00:2"),
        (NA, "2001:db8::2", "2001:db8::1"),
        (NA_BARE, "2001:db8::1", ROUTER_LL),
        (RA, ROUTER_LL, "ff02::1"),
        (REDIRECT, ROUTER_LL, "2001:db8::1"),
    ];

    /// Parse a fixture, checking its checksum and the RFC 4861 checks.
    fn parse<'a>(msg: &'a [u8], src: &str, dst: &str) -> NdpRepr<'a> {
        let (src, dst) = (ip(src), ip(dst));
        let repr = NdpRepr::parse(msg, Some(pseudo_header(&src, &dst, msg.len()))).unwrap();
        assert_eq!(validate(&repr, 255, &src, &dst), Ok(()));
        repr
    }

    fn options<'a>(repr: &NdpRepr<'a>) -> Vec<NdpOption<'a>> {
        repr.options().iter().collect()
    }

    #[test]
    fn every_fixture_round_trips_exactly() {
        for &(h, src, dst) in ALL {
            let msg = hex(h);
            let p = pseudo_header(&ip(src), &ip(dst), msg.len());
            let pkt = Icmpv6Packet::parse(&msg, Some(p)).unwrap();
            let mut out = vec![0u8; msg.len()];
            assert_eq!(pkt.emit(&mut out), Ok(msg.len()));
            assert_eq!(out, msg);
            let repr = parse(&msg, src, dst);
            assert_eq!(repr.buffer_len(), msg.len());
            assert_eq!(repr.icmp_type(), msg[0]);
            out.fill(0);
            assert_eq!(repr.emit(&mut out, p), Ok(msg.len()));
            assert_eq!(out, msg);
            assert_eq!(
                repr.emit(&mut out[..msg.len() - 1], p),
                Err(WireError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn duplicate_address_detection_probe() {
        let msg = hex(DAD_NS);
        let repr = parse(&msg, "::", "ff02::1:ff00:2");
        let NdpRepr::NeighborSolicit {
            reserved,
            target,
            options,
        } = repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!((reserved, target), (0, ip("2001:db8::2")));
        assert_eq!(solicited_node(&target), ip("ff02::1:ff00:2"));
        assert_eq!(
            options.iter().collect::<Vec<_>>(),
            [NdpOption::Unknown {
                kind: option_kind::NONCE,
                data: &[0x33, 0x65, 0xe4, 0x38, 0x22, 0x0b],
            }]
        );
        assert_eq!(options.source_link_addr(), None);
        // A DAD probe must go to the solicited-node group of its target.
        assert_eq!(
            validate(&repr, 255, &ip("::"), &ip("ff02::1")),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn router_solicitations() {
        let msg = hex(RS);
        let repr = parse(&msg, GUEST_LL, "ff02::2");
        assert!(matches!(repr, NdpRepr::RouterSolicit { reserved: 0, .. }));
        assert_eq!(options(&repr), [NdpOption::SourceLinkAddr(GUEST_MAC)]);
        assert_eq!(repr.options().source_link_addr(), Some(GUEST_MAC));
        // From the unspecified address it may not carry a link-layer address.
        assert_eq!(
            validate(&repr, 255, &ip("::"), &ip("ff02::2")),
            Err(WireError::Malformed)
        );

        let msg = hex(RS_BARE);
        let repr = parse(&msg, GUEST_LL, "ff02::2");
        assert!(repr.options().is_empty());
        assert_eq!(validate(&repr, 255, &ip("::"), &ip("ff02::2")), Ok(()));
    }

    #[test]
    fn neighbor_solicitation_and_advertisement() {
        let msg = hex(NS);
        let repr = parse(&msg, "2001:db8::1", "ff02::1:ff00:2");
        assert!(
            matches!(repr, NdpRepr::NeighborSolicit { reserved: 0, target, .. }
            if target == ip("2001:db8::2"))
        );
        assert_eq!(options(&repr), [NdpOption::SourceLinkAddr(GUEST_MAC)]);

        // Rebuilt through the writer from its parts.
        let mut buf = [0u8; 64];
        let ns = NdpRepr::NeighborSolicit {
            reserved: 0,
            target: ip("2001:db8::2"),
            options: NdpOptions::EMPTY,
        };
        let mut w = NdpWriter::new(&mut buf, &ns).unwrap();
        w.options().source_link_addr(GUEST_MAC).unwrap();
        let n = w.finish(&ip("2001:db8::1"), &ip("ff02::1:ff00:2")).unwrap();
        assert_eq!(&buf[..n], &msg[..]);

        let msg = hex(NA);
        let repr = parse(&msg, "2001:db8::2", "2001:db8::1");
        assert_eq!(
            repr,
            NdpRepr::NeighborAdvert {
                router: true,
                solicited: true,
                override_: true,
                reserved: 0,
                target: ip("2001:db8::2"),
                options: NdpOptions::parse(&msg[24..]).unwrap(),
            }
        );
        assert_eq!(repr.options().target_link_addr(), Some(ROUTER_MAC));
        let mut w =
            NdpWriter::neighbor_advert(&mut buf, true, true, true, ip("2001:db8::2")).unwrap();
        w.options().target_link_addr(ROUTER_MAC).unwrap();
        let n = w.finish(&ip("2001:db8::2"), &ip("2001:db8::1")).unwrap();
        assert_eq!(&buf[..n], &msg[..]);
        // Solicited advertisements are never multicast.
        assert_eq!(
            validate(&repr, 255, &ip("2001:db8::2"), &ip("ff02::1")),
            Err(WireError::Malformed)
        );

        let msg = hex(NA_BARE);
        let repr = parse(&msg, "2001:db8::1", ROUTER_LL);
        assert!(matches!(
            repr,
            NdpRepr::NeighborAdvert {
                router: false,
                solicited: true,
                override_: false,
                ..
            }
        ));
        let n = NdpWriter::neighbor_advert(&mut buf, false, true, false, ip("2001:db8::1"))
            .unwrap()
            .finish(&ip("2001:db8::1"), &ip(ROUTER_LL))
            .unwrap();
        assert_eq!(&buf[..n], &msg[..]);
    }

    #[test]
    fn router_advertisement_options() {
        let msg = hex(RA);
        let repr = parse(&msg, ROUTER_LL, "ff02::1");
        let NdpRepr::RouterAdvert {
            cur_hop_limit,
            managed,
            other,
            more_flags,
            router_lifetime,
            reachable_time,
            retrans_timer,
            options,
        } = repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!(
            (cur_hop_limit, managed, other, more_flags),
            (64, false, true, 0)
        );
        assert_eq!(
            (router_lifetime, reachable_time, retrans_timer),
            (12, 30000, 1000)
        );
        let opts: Vec<_> = options.iter().collect();
        assert_eq!(opts.len(), 6);
        assert_eq!(
            opts[0],
            NdpOption::PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: ip("2001:db8:1::"),
            }
        );
        assert_eq!(
            opts[1],
            NdpOption::RouteInfo {
                prefix_len: 48,
                preference: 1,
                lifetime: 1800,
                prefix: ip("2001:db8:7::"),
            }
        );
        let NdpOption::Rdnss {
            lifetime,
            addresses,
        } = opts[2].clone()
        else {
            panic!("{:?}", opts[2]);
        };
        assert_eq!(lifetime, 600);
        assert_eq!(addresses.count_remaining(), 2);
        assert_eq!(
            addresses.collect::<Vec<_>>(),
            [ip("2001:db8::53"), ip("2001:db8::54")]
        );
        let NdpOption::Dnssl { lifetime, domains } = opts[3].clone() else {
            panic!("{:?}", opts[3]);
        };
        assert_eq!(lifetime, 600);
        assert_eq!(domains.as_bytes().len(), 32);
        let names: Vec<_> = domains.clone().map(|d| d.to_string()).collect();
        assert_eq!(names, ["example.com", "test.example.org"]);
        let first = domains.clone().next().unwrap();
        assert_eq!(
            first.labels().collect::<Vec<_>>(),
            [&b"example"[..], b"com"]
        );
        assert_eq!(first.as_bytes(), b"\x07example\x03com\x00");
        assert_eq!(opts[4], NdpOption::Mtu(1400));
        assert_eq!(opts[5], NdpOption::SourceLinkAddr(ROUTER_MAC));

        // Not from a link-local address, or forwarded: invalid.
        let src = ip(ROUTER_LL);
        let all = ip("ff02::1");
        assert_eq!(validate(&repr, 255, &src, &all), Ok(()));
        assert_eq!(validate(&repr, 64, &src, &all), Err(WireError::Malformed));
        assert_eq!(
            validate(&repr, 255, &ip("2001:db8::2"), &all),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn router_advertisement_built_like_radvd() {
        let msg = hex(RA);
        let spec = RouterAdvertSpec {
            cur_hop_limit: 64,
            managed: false,
            other: true,
            router_lifetime: 12,
            reachable_time: 30000,
            retrans_timer: 1000,
        };
        let mut buf = [0u8; 256];
        let mut w = NdpWriter::router_advert(&mut buf, &spec).unwrap();
        let o = w.options();
        // The /64 is given with host bits set: they are cleared.
        o.prefix_info(ip("2001:db8:1::1234"), 64, true, true, 86400, 14400)
            .unwrap();
        let route = [
            48, 0x08, 0, 0, 0x07, 0x08, 0x20, 0x01, 0x0d, 0xb8, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        o.raw(option_kind::ROUTE_INFO, &route).unwrap();
        o.rdnss(600, &[ip("2001:db8::53"), ip("2001:db8::54")])
            .unwrap();
        o.dnssl(600, &["example.com", "test.example.org."]).unwrap();
        o.mtu(1400).unwrap();
        o.source_link_addr(ROUTER_MAC).unwrap();
        assert_eq!(o.len(), msg.len());
        assert_eq!(o.written()[..2], msg[..2]);
        assert_eq!(o.written()[4..], msg[4..]);
        let n = w.finish(&ip(ROUTER_LL), &ip("ff02::1")).unwrap();
        assert_eq!(&buf[..n], &msg[..]);
    }

    #[test]
    fn redirect() {
        let msg = hex(REDIRECT);
        let repr = parse(&msg, ROUTER_LL, "2001:db8::1");
        let NdpRepr::Redirect {
            reserved,
            target,
            destination,
            options,
        } = repr
        else {
            panic!("{repr:?}");
        };
        assert_eq!(reserved, 0);
        assert_eq!(target, ip(GUEST_LL));
        assert_eq!(destination, ip("2001:db8:5::9"));
        let opts: Vec<_> = options.iter().collect();
        assert_eq!(opts[0], NdpOption::TargetLinkAddr(GUEST_MAC));
        let NdpOption::RedirectedHeader(data) = opts[1] else {
            panic!("{:?}", opts[1]);
        };
        // The redirected echo request, cut to the option's 104 octets.
        assert_eq!(data.len(), 104);
        assert_eq!(data[0] >> 4, 6);
        assert_eq!(&data[24..40], &destination.octets());
        assert_eq!(data[40], crate::wire::icmpv6::msg_type::ECHO_REQUEST);
        assert_eq!(opts.len(), 2);
        // A redirect to a global target other than the destination is invalid.
        let mut m = msg.clone();
        m[8..24].copy_from_slice(&ip("2001:db8::77").octets());
        let bad = NdpRepr::parse(&m, None).unwrap();
        assert_eq!(
            validate(&bad, 255, &ip(ROUTER_LL), &ip("2001:db8::1")),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn malformed_options() {
        let ra = hex(RA);
        let cases: &[(usize, u8, WireError)] = &[
            (17, 0, WireError::Malformed),     // prefix information, length 0
            (17, 3, WireError::Malformed),     // prefix information, length 3
            (18, 129, WireError::Malformed),   // prefix length 129
            (49, 1, WireError::Malformed),     // route information /48 in 1 unit
            (50, 129, WireError::Malformed),   // route prefix length 129
            (73, 1, WireError::Malformed),     // RDNSS length 1
            (73, 2, WireError::Malformed),     // RDNSS length 2 (< 3)
            (73, 4, WireError::Malformed),     // RDNSS length 4 (even)
            (113, 1, WireError::Malformed),    // DNSSL length 1
            (120, 0xc0, WireError::Malformed), // compression pointer
            (120, 0x40, WireError::Malformed), // extended label type
            (133, 0x3f, WireError::Malformed), // label past the end
            (151, 1, WireError::Malformed),    // non-zero padding
            (153, 2, WireError::Malformed),    // MTU length 2
            (161, 0, WireError::Malformed),    // link-layer address, length 0
        ];
        for &(at, value, err) in cases {
            let mut m = ra.clone();
            m[at] = value;
            assert_eq!(NdpRepr::parse(&m, None), Err(err), "octet {at} = {value}");
        }
        // A target link-layer address option of 2 units (not Ethernet).
        let mut m = hex(REDIRECT);
        m[41] = 2;
        assert_eq!(NdpRepr::parse(&m, None), Err(WireError::Malformed));
        // The last option running past the end.
        let mut m = ra[..160].to_vec();
        m.extend_from_slice(&[1, 2, 0x46, 0x20, 0x57, 0x41, 0x28, 0x04]);
        assert_eq!(NdpRepr::parse(&m, None), Err(WireError::Truncated));
        // A stray octet after the options.
        let mut m = ra.clone();
        m.push(1);
        assert_eq!(NdpRepr::parse(&m, None), Err(WireError::Truncated));
        // Zero padding is not an option: length 0.
        let mut m = ra.clone();
        m.extend_from_slice(&[0; 8]);
        assert_eq!(NdpRepr::parse(&m, None), Err(WireError::Malformed));
        // Unknown options with length 0 too (the DAD nonce here).
        let mut m = hex(DAD_NS);
        m[25] = 0;
        assert_eq!(NdpRepr::parse(&m, None), Err(WireError::Malformed));
        // Names of 255 octets in wire form are the longest allowed.
        let dnssl = |last_label: usize| {
            let mut opt = vec![option_kind::DNSSL, 0, 0, 0, 0, 0, 0, 0];
            for len in [63, 63, 63, last_label] {
                opt.push(len as u8);
                opt.resize(opt.len() + len, b'a');
            }
            opt.push(0);
            opt.resize(opt.len().div_ceil(8) * 8, 0);
            opt[1] = (opt.len() / 8) as u8;
            opt
        };
        let opt = dnssl(61);
        let parsed = NdpOptions::parse(&opt).unwrap();
        let Some(NdpOption::Dnssl { domains, .. }) = parsed.iter().next() else {
            panic!();
        };
        assert_eq!(
            domains.map(|d| d.as_bytes().len()).collect::<Vec<_>>(),
            [255]
        );
        assert_eq!(NdpOptions::parse(&dnssl(62)), Err(WireError::Malformed));
        assert_eq!(NdpOptions::parse(&dnssl(63)), Err(WireError::Malformed));
    }

    #[test]
    fn every_truncation_is_rejected() {
        for &(h, src, dst) in ALL {
            let msg = hex(h);
            let full = NdpRepr::parse(&msg, None).unwrap();
            let fixed = msg.len() - full.options().as_bytes().len();
            let mut bounds = vec![fixed];
            let mut at = fixed;
            for _ in full.options().iter() {
                at += usize::from(msg[at + 1]) * 8;
                bounds.push(at);
            }
            for len in 0..msg.len() {
                let cut = &msg[..len];
                let p = pseudo_header(&ip(src), &ip(dst), len);
                let res = NdpRepr::parse(cut, Some(p));
                assert!(res.is_err(), "{len}: {res:?}");
                // Without the checksum, only cuts between options parse.
                match NdpRepr::parse(cut, None) {
                    Ok(r) => {
                        assert!(bounds.contains(&len), "{len}");
                        assert!(r.options().iter().count() < full.options().iter().count());
                    }
                    Err(e) => {
                        assert!(!bounds.contains(&len), "{len}");
                        assert_eq!(e, WireError::Truncated, "{len}");
                    }
                }
            }
        }
    }

    #[test]
    fn any_flipped_bit_fails_the_checksum() {
        for &(h, src, dst) in ALL {
            let msg = hex(h);
            let p = pseudo_header(&ip(src), &ip(dst), msg.len());
            for bit in 0..msg.len() * 8 {
                let mut m = msg.clone();
                m[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(NdpRepr::parse(&m, Some(p)), Err(WireError::BadChecksum));
            }
        }
    }

    #[test]
    fn random_mutations_never_panic_and_round_trip() {
        // xorshift32: deterministic, seed in the failure message.
        let mut x: u32 = 0x9e37_79b9;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for round in 0..20_000 {
            let (h, _, _) = ALL[rnd() as usize % ALL.len()];
            let mut m = hex(h);
            for _ in 0..1 + rnd() % 4 {
                let at = rnd() as usize % m.len();
                m[at] = rnd() as u8;
            }
            m.truncate(m.len() - rnd() as usize % 4);
            let Ok(pkt) = Icmpv6Packet::parse(&m, None) else {
                continue;
            };
            let mut out = vec![0u8; m.len()];
            assert_eq!(pkt.emit(&mut out), Ok(m.len()), "round {round}");
            assert_eq!(out, m, "round {round}");
            if let crate::wire::icmpv6::Icmpv6Repr::Ndp(ndp) = pkt.repr {
                for opt in ndp.options() {
                    if let NdpOption::Dnssl { domains, .. } = opt {
                        for name in domains {
                            let _ = name.to_string();
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn non_ndp_messages_are_unsupported_here() {
        let echo = hex("8000b76e1ce90001");
        assert_eq!(NdpRepr::parse(&echo, None), Err(WireError::Unsupported));
    }

    #[test]
    fn dns_name_encoding() {
        let mut out = [0xffu8; 300];
        assert_eq!(dns::encode_name("example.com", &mut out), Ok(13));
        assert_eq!(&out[..13], b"\x07example\x03com\x00");
        assert_eq!(dns::encode_name("example.com.", &mut out), Ok(13));
        let label63 = "a".repeat(63);
        assert_eq!(dns::name_len(&label63), Ok(65));
        assert_eq!(dns::name_len(&"a".repeat(64)), Err(WireError::Malformed));
        for bad in ["", ".", "a..b", ".a", "a.b.."] {
            assert_eq!(dns::name_len(bad), Err(WireError::Malformed), "{bad:?}");
        }
        // 3 × 64 + 62 octets + final zero = 255: the longest name.
        let longest = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(dns::name_len(&longest), Ok(255));
        assert_eq!(dns::encode_name(&longest, &mut out), Ok(255));
        let too_long = format!("{longest}b");
        assert_eq!(dns::name_len(&too_long), Err(WireError::Malformed));
        assert_eq!(
            dns::encode_name("example.com", &mut out[..12]),
            Err(WireError::BufferTooSmall)
        );
        // Octets that are not printable are escaped when displayed.
        let names = DnsNames::parse(b"\x03a.b\x02c\x00\x00\x00\x00").unwrap();
        let shown: Vec<_> = names.map(|n| n.to_string()).collect();
        assert_eq!(shown, ["a\\046b.c\\000"]);
    }

    #[test]
    fn option_writer_limits() {
        let mut buf = [0u8; 16];
        let mut w = NdpOptionWriter::new(&mut buf);
        assert!(w.is_empty());
        assert_eq!(w.rdnss(600, &[]), Err(WireError::Malformed));
        assert_eq!(w.dnssl(600, &[]), Err(WireError::Malformed));
        assert_eq!(w.dnssl(600, &["a..b"]), Err(WireError::Malformed));
        assert_eq!(
            w.prefix_info(Ipv6Addr::UNSPECIFIED, 129, true, true, 1, 1),
            Err(WireError::Malformed)
        );
        // Too big for 16 octets: nothing is written.
        assert_eq!(
            w.rdnss(600, &[ip("2001:db8::53")]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(w.len(), 0);
        w.mtu(1500).unwrap();
        assert_eq!(w.source_link_addr(ROUTER_MAC), Ok(()));
        assert_eq!(w.mtu(1500), Err(WireError::BufferTooSmall));
        assert_eq!(w.written(), hex("05010000000005dc0101462057412804"));
        // An option can hold at most 255 units.
        let mut big = vec![0u8; 4096];
        let mut w = NdpOptionWriter::new(&mut big);
        let servers = [ip("2001:db8::53"); 128];
        assert_eq!(w.rdnss(1, &servers), Err(WireError::Malformed));
        assert_eq!(w.rdnss(1, &servers[..127]), Ok(()));
        assert_eq!(w.len(), 255 * 8);
        assert_eq!(w.raw(99, &[0; 2039]), Err(WireError::Malformed));
        // A written option list parses back.
        let written = w.written().to_vec();
        let opts = NdpOptions::parse(&written).unwrap();
        let Some(NdpOption::Rdnss { addresses, .. }) = opts.iter().next() else {
            panic!();
        };
        assert_eq!(addresses.count(), 127);
    }

    #[test]
    fn solicited_node_addresses() {
        assert_eq!(
            solicited_node(&ip("fe80::4811:a2ff:fe5c:78b6")),
            ip("ff02::1:ff5c:78b6")
        );
        assert!(is_solicited_node(&ip("ff02::1:ff00:2")));
        assert!(!is_solicited_node(&ip("ff02::1")));
        // A neighbor solicitation for a multicast target is invalid.
        let ns = NdpRepr::NeighborSolicit {
            reserved: 0,
            target: ip("ff02::1"),
            options: NdpOptions::EMPTY,
        };
        assert_eq!(
            validate(&ns, 255, &ip("2001:db8::1"), &ip("ff02::1:ff00:1")),
            Err(WireError::Malformed)
        );
    }
}
