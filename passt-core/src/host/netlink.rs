//! rtnetlink messages: bounds-checked parsing of what the kernel sends back to
//! a dump request, and emission of the requests.
//!
//! # Theory of operation
//!
//! Netlink (RFC 3549 §2.2, netlink(7)) carries a stream of messages in each
//! datagram; every message starts with a 16-byte [`NlMsgHeader`] whose length
//! covers the header and payload, and the next message starts at the next
//! 4-byte boundary (`NLMSG_ALIGN`). rtnetlink (RFC 3549 §2.3, rtnetlink(7))
//! puts a fixed family header after it ([`RtMsgHeader`] for routes,
//! [`IfAddrMsgHeader`] for addresses, [`IfInfoMsgHeader`] for links) followed
//! by type-length-value attributes ([`RtAttrHeader`], again 4-byte aligned).
//! A dump reply is *multi-part*: messages flagged `NLM_F_MULTI`, spread over as
//! many datagrams as needed, closed by an `NLMSG_DONE` message; a failure is an
//! `NLMSG_ERROR` message carrying a negative errno.
//!
//! Unlike the wire formats in [`crate::wire`], netlink is in the host's byte
//! order: the zerocopy headers here use `native_endian` integers.
//!
//! # Limits
//!
//! Every length field is checked against the bytes present before it is used:
//! a message or attribute shorter than its header is [`WireError::BadLength`],
//! one that claims more bytes than there are is [`WireError::Truncated`], an
//! address attribute of the wrong size for its family is
//! [`WireError::BadLength`]. Iteration over messages and attributes consumes
//! at least 4 bytes per step, so every loop is bounded by the input length;
//! multipath next-hop lists are walked at most [`MAX_NEXTHOPS`] entries deep.
//! Unknown attributes are skipped; unknown address families are
//! [`WireError::Unsupported`].
//!
//! [`NlMsgRepr`] and [`RtAttrRepr`] keep the payload bytes they frame, so
//! parsing then emitting them gives back the input (with zero padding).

use core::mem::size_of;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zerocopy::byteorder::native_endian::{I32, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::addr::MacAddr;
use crate::wire::{Result, WireError};

/// Netlink message types: the control messages (netlink(7)) and the
/// rtnetlink ones used here (rtnetlink(7), `linux/rtnetlink.h`).
pub mod msg_type {
    /// Nothing; to be skipped.
    pub const NOOP: u16 = 1;
    /// An error, or an acknowledgement when its errno is 0.
    pub const ERROR: u16 = 2;
    /// End of a multi-part reply.
    pub const DONE: u16 = 3;
    /// Data lost.
    pub const OVERRUN: u16 = 4;
    /// A link (interface), in a reply to [`GETLINK`].
    pub const NEWLINK: u16 = 16;
    /// Ask for links.
    pub const GETLINK: u16 = 18;
    /// An interface address, in a reply to [`GETADDR`].
    pub const NEWADDR: u16 = 20;
    /// Ask for interface addresses.
    pub const GETADDR: u16 = 22;
    /// A route, in a reply to [`GETROUTE`].
    pub const NEWROUTE: u16 = 24;
    /// Ask for routes.
    pub const GETROUTE: u16 = 26;
}

/// `nlmsg_flags` bits (netlink(7)).
pub mod flags {
    /// A request.
    pub const REQUEST: u16 = 0x01;
    /// Part of a multi-part reply, closed by `NLMSG_DONE`.
    pub const MULTI: u16 = 0x02;
    /// Ask for an acknowledgement.
    pub const ACK: u16 = 0x04;
    /// The dump was interrupted by a change: its content is inconsistent.
    pub const DUMP_INTR: u16 = 0x10;
    /// Return the whole table (`NLM_F_ROOT | NLM_F_MATCH`).
    pub const DUMP: u16 = 0x300;
}

/// Address families as the kernel numbers them (`linux/socket.h`).
pub mod family {
    /// Any family.
    pub const UNSPEC: u8 = 0;
    /// IPv4.
    pub const INET: u8 = 2;
    /// IPv6.
    pub const INET6: u8 = 10;
}

/// Route attribute types (`enum rtattr_type_t`, rtnetlink(7)).
pub mod rta {
    /// Destination prefix.
    pub const DST: u16 = 1;
    /// Output interface index (u32).
    pub const OIF: u16 = 4;
    /// Gateway address.
    pub const GATEWAY: u16 = 5;
    /// Route priority, the "metric" (u32).
    pub const PRIORITY: u16 = 6;
    /// Next hops of a multipath route (a list of `rtnexthop`).
    pub const MULTIPATH: u16 = 9;
    /// Routing table id (u32), beyond the 8 bits of `rtm_table`.
    pub const TABLE: u16 = 15;
}

/// Interface address attribute types (`linux/if_addr.h`).
pub mod ifa {
    /// The address (the peer's, on point-to-point links).
    pub const ADDRESS: u16 = 1;
    /// The local address.
    pub const LOCAL: u16 = 2;
    /// 32-bit flags, superseding `ifa_flags`.
    pub const FLAGS: u16 = 8;
    /// `IFA_F_DADFAILED`: duplicate address detection failed.
    pub const F_DADFAILED: u32 = 0x08;
    /// `IFA_F_DEPRECATED`: preferred lifetime over.
    pub const F_DEPRECATED: u32 = 0x20;
    /// `IFA_F_TENTATIVE`: duplicate address detection still running.
    pub const F_TENTATIVE: u32 = 0x40;
}

/// Link attribute types and flags (`linux/if_link.h`, `linux/if.h`).
pub mod ifla {
    /// Hardware address.
    pub const ADDRESS: u16 = 1;
    /// Interface name, NUL-terminated.
    pub const IFNAME: u16 = 3;
    /// MTU (u32).
    pub const MTU: u16 = 4;
    /// `IFF_UP`.
    pub const F_UP: u32 = 0x1;
    /// `IFF_LOOPBACK`.
    pub const F_LOOPBACK: u32 = 0x8;
}

/// Route table, type and scope values (`linux/rtnetlink.h`).
pub mod rt {
    /// `RT_TABLE_MAIN`.
    pub const TABLE_MAIN: u32 = 254;
    /// `RTN_UNICAST`: a gateway or direct route.
    pub const TYPE_UNICAST: u8 = 1;
    /// `RT_SCOPE_UNIVERSE`: global.
    pub const SCOPE_UNIVERSE: u8 = 0;
    /// `RT_SCOPE_LINK`: valid on this link only.
    pub const SCOPE_LINK: u8 = 253;
    /// `RT_SCOPE_HOST`: this host only.
    pub const SCOPE_HOST: u8 = 254;
}

/// Attribute types carry two flag bits (`NLA_F_NESTED`,
/// `NLA_F_NET_BYTEORDER`) above the type proper.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Most next hops of a multipath route looked at.
pub const MAX_NEXTHOPS: usize = 256;

/// Round up to the 4-byte netlink alignment (`NLMSG_ALIGN`, `RTA_ALIGN`).
const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// `struct nlmsghdr` (netlink(7)).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct NlMsgHeader {
    /// Length of the message, header included, padding excluded.
    pub len: U32,
    /// Message type.
    pub msg_type: U16,
    /// Flags.
    pub flags: U16,
    /// Sequence number, echoed in replies.
    pub seq: U32,
    /// Port id of the sender (0 for the kernel).
    pub pid: U32,
}

/// Length of [`NlMsgHeader`].
pub const NLMSG_HDR_LEN: usize = size_of::<NlMsgHeader>();

/// `struct rtattr` (rtnetlink(7)).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RtAttrHeader {
    /// Length of the attribute, header included, padding excluded.
    pub len: U16,
    /// Attribute type.
    pub attr_type: U16,
}

/// `struct rtmsg`: the fixed part of a route message.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RtMsgHeader {
    /// Address family.
    pub family: u8,
    /// Destination prefix length.
    pub dst_len: u8,
    /// Source prefix length.
    pub src_len: u8,
    /// Type of service.
    pub tos: u8,
    /// Routing table (low 8 bits; see [`rta::TABLE`]).
    pub table: u8,
    /// Who installed the route.
    pub protocol: u8,
    /// Scope.
    pub scope: u8,
    /// Route type.
    pub rtm_type: u8,
    /// Flags.
    pub flags: U32,
}

/// `struct ifaddrmsg`: the fixed part of an address message.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct IfAddrMsgHeader {
    /// Address family.
    pub family: u8,
    /// Prefix length.
    pub prefix_len: u8,
    /// Flags (low 8 bits; see [`ifa::FLAGS`]).
    pub flags: u8,
    /// Scope.
    pub scope: u8,
    /// Interface index.
    pub index: U32,
}

/// `struct ifinfomsg`: the fixed part of a link message.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct IfInfoMsgHeader {
    /// Address family (`AF_UNSPEC`).
    pub family: u8,
    /// Padding.
    pub pad: u8,
    /// Device type (`ARPHRD_*`).
    pub dev_type: U16,
    /// Interface index.
    pub index: I32,
    /// Device flags (`IFF_*`).
    pub flags: U32,
    /// Change mask.
    pub change: U32,
}

/// `struct rtnexthop`: one next hop inside [`rta::MULTIPATH`].
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RtNextHopHeader {
    /// Length of this next hop, attributes included.
    pub len: U16,
    /// Flags.
    pub flags: u8,
    /// Weight minus one.
    pub hops: u8,
    /// Output interface index.
    pub ifindex: I32,
}

/// One netlink message, framing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsgRepr<'a> {
    /// Message type ([`msg_type`]).
    pub msg_type: u16,
    /// Flags ([`flags`]).
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Sender's port id.
    pub pid: u32,
    /// Everything after the header, up to the message length.
    pub payload: &'a [u8],
}

impl<'a> NlMsgRepr<'a> {
    /// Parse the first message of `bytes`; return it and what follows its
    /// padding (padding missing at the very end is accepted).
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the header or the length it gives does not
    /// fit; [`WireError::BadLength`] if the length is shorter than the header.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8])> {
        let (hdr, _) = NlMsgHeader::ref_from_prefix(bytes).map_err(|_| WireError::Truncated)?;
        let len = usize::try_from(hdr.len.get()).map_err(|_| WireError::BadLength)?;
        if len < NLMSG_HDR_LEN {
            return Err(WireError::BadLength);
        }
        let msg = bytes.get(..len).ok_or(WireError::Truncated)?;
        let payload = msg.get(NLMSG_HDR_LEN..).ok_or(WireError::Truncated)?;
        let rest = bytes.get(align4(len)..).unwrap_or(&[]);
        let repr = NlMsgRepr {
            msg_type: hdr.msg_type.get(),
            flags: hdr.flags.get(),
            seq: hdr.seq.get(),
            pid: hdr.pid.get(),
            payload,
        };
        Ok((repr, rest))
    }

    /// Bytes [`NlMsgRepr::emit`] writes: header, payload, padding.
    pub fn buffer_len(&self) -> usize {
        align4(NLMSG_HDR_LEN + self.payload.len())
    }

    /// Write the message with zero padding; return [`NlMsgRepr::buffer_len`].
    ///
    /// # Errors
    /// [`WireError::BufferTooSmall`]; [`WireError::BadLength`] if the payload
    /// does not fit the 32-bit length field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.buffer_len();
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        let len = NLMSG_HDR_LEN + self.payload.len();
        let hdr = NlMsgHeader {
            len: U32::new(u32::try_from(len).map_err(|_| WireError::BadLength)?),
            msg_type: U16::new(self.msg_type),
            flags: U16::new(self.flags),
            seq: U32::new(self.seq),
            pid: U32::new(self.pid),
        };
        let (head, tail) = out.split_at_mut(NLMSG_HDR_LEN);
        head.copy_from_slice(hdr.as_bytes());
        let (body, pad) = tail.split_at_mut(self.payload.len());
        body.copy_from_slice(self.payload);
        pad.fill(0);
        Ok(total)
    }
}

/// The messages of one datagram, in order. After an error it yields nothing
/// more.
#[derive(Clone, Debug)]
pub struct NlMsgIter<'a> {
    rest: &'a [u8],
}

impl<'a> NlMsgIter<'a> {
    /// Iterate over the messages in `datagram`.
    pub fn new(datagram: &'a [u8]) -> Self {
        NlMsgIter { rest: datagram }
    }
}

impl<'a> Iterator for NlMsgIter<'a> {
    type Item = Result<NlMsgRepr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match NlMsgRepr::parse(self.rest) {
            Ok((msg, rest)) => {
                self.rest = rest;
                Some(Ok(msg))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// The payload of an `NLMSG_ERROR` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlErrRepr {
    /// 0 for an acknowledgement, otherwise a negative errno.
    pub error: i32,
    /// Type of the request it answers.
    pub req_type: u16,
    /// Sequence number of the request it answers.
    pub req_seq: u32,
}

impl NlErrRepr {
    /// Parse the payload of an `NLMSG_ERROR` message: an `int` and (at least
    /// the header of) the request it answers.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if shorter than 4 + 16 bytes.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let (error, rest) = I32::read_from_prefix(payload).map_err(|_| WireError::Truncated)?;
        let (req, _) = NlMsgHeader::ref_from_prefix(rest).map_err(|_| WireError::Truncated)?;
        Ok(NlErrRepr {
            error: error.get(),
            req_type: req.msg_type.get(),
            req_seq: req.seq.get(),
        })
    }
}

/// The status in an `NLMSG_DONE` payload: 0, or a negative errno when the
/// dump failed part-way. An empty payload (old kernels) is 0.
///
/// # Errors
/// [`WireError::Truncated`] for 1 to 3 bytes.
pub fn parse_done(payload: &[u8]) -> Result<i32> {
    if payload.is_empty() {
        return Ok(0);
    }
    let (status, _) = I32::read_from_prefix(payload).map_err(|_| WireError::Truncated)?;
    Ok(status.get())
}

/// One attribute, framing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtAttrRepr<'a> {
    /// Attribute type, flag bits included.
    pub attr_type: u16,
    /// The value.
    pub data: &'a [u8],
}

impl<'a> RtAttrRepr<'a> {
    /// Parse the first attribute of `bytes`; return it and what follows its
    /// padding.
    ///
    /// # Errors
    /// [`WireError::Truncated`] or [`WireError::BadLength`] as for messages.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8])> {
        let (hdr, _) = RtAttrHeader::ref_from_prefix(bytes).map_err(|_| WireError::Truncated)?;
        let len = usize::from(hdr.len.get());
        if len < size_of::<RtAttrHeader>() {
            return Err(WireError::BadLength);
        }
        let attr = bytes.get(..len).ok_or(WireError::Truncated)?;
        let data = attr
            .get(size_of::<RtAttrHeader>()..)
            .ok_or(WireError::Truncated)?;
        let rest = bytes.get(align4(len)..).unwrap_or(&[]);
        Ok((
            RtAttrRepr {
                attr_type: hdr.attr_type.get(),
                data,
            },
            rest,
        ))
    }

    /// The type without the nested/byte-order flag bits.
    pub fn kind(&self) -> u16 {
        self.attr_type & NLA_TYPE_MASK
    }

    /// Bytes [`RtAttrRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        align4(size_of::<RtAttrHeader>() + self.data.len())
    }

    /// Write the attribute with zero padding; return its padded length.
    ///
    /// # Errors
    /// [`WireError::BufferTooSmall`]; [`WireError::BadLength`] if the data
    /// does not fit the 16-bit length field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.buffer_len();
        let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
        let len = size_of::<RtAttrHeader>() + self.data.len();
        let hdr = RtAttrHeader {
            len: U16::new(u16::try_from(len).map_err(|_| WireError::BadLength)?),
            attr_type: U16::new(self.attr_type),
        };
        let (head, tail) = out.split_at_mut(size_of::<RtAttrHeader>());
        head.copy_from_slice(hdr.as_bytes());
        let (body, pad) = tail.split_at_mut(self.data.len());
        body.copy_from_slice(self.data);
        pad.fill(0);
        Ok(total)
    }

    fn u32(&self) -> Result<u32> {
        let v = U32::read_from_bytes(self.data).map_err(|_| WireError::BadLength)?;
        Ok(v.get())
    }

    fn ip(&self, family: u8) -> Result<IpAddr> {
        ip_from(family, self.data)
    }
}

/// The attributes in a byte range, in order. After an error it yields
/// nothing more.
#[derive(Clone, Debug)]
pub struct RtAttrIter<'a> {
    rest: &'a [u8],
}

impl<'a> RtAttrIter<'a> {
    /// Iterate over the attributes in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        RtAttrIter { rest: bytes }
    }
}

impl<'a> Iterator for RtAttrIter<'a> {
    type Item = Result<RtAttrRepr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RtAttrRepr::parse(self.rest) {
            Ok((attr, rest)) => {
                self.rest = rest;
                Some(Ok(attr))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// An address of `family` from exactly 4 or 16 bytes.
fn ip_from(family: u8, data: &[u8]) -> Result<IpAddr> {
    match family {
        family::INET => {
            let o: [u8; 4] = data.try_into().map_err(|_| WireError::BadLength)?;
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        family::INET6 => {
            let o: [u8; 16] = data.try_into().map_err(|_| WireError::BadLength)?;
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => Err(WireError::Unsupported),
    }
}

/// One next hop of a multipath route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Output interface index.
    pub ifindex: u32,
    /// Weight (`rtnh_hops + 1`).
    pub weight: u16,
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
}

/// A route (`RTM_NEWROUTE`), reduced to what choosing an outbound interface
/// and gateway needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRepr {
    /// Address family ([`family::INET`] or [`family::INET6`]).
    pub family: u8,
    /// Destination prefix length: 0 for a default route.
    pub dst_len: u8,
    /// Routing table, from [`rta::TABLE`] if present.
    pub table: u32,
    /// Scope.
    pub scope: u8,
    /// Route type ([`rt::TYPE_UNICAST`]...).
    pub route_type: u8,
    /// Destination prefix, absent for a default route.
    pub dst: Option<IpAddr>,
    /// Gateway ([`rta::GATEWAY`]).
    pub gateway: Option<IpAddr>,
    /// Output interface ([`rta::OIF`]).
    pub oif: Option<u32>,
    /// Metric ([`rta::PRIORITY`], 0 if absent as the kernel does).
    pub priority: u32,
    /// For a multipath route: the first next hop of the highest weight.
    pub nexthop: Option<NextHop>,
}

impl RouteRepr {
    /// Parse the payload of an `RTM_NEWROUTE` message.
    ///
    /// # Errors
    /// [`WireError::Truncated`] / [`WireError::BadLength`] on framing errors
    /// or attributes of the wrong size; [`WireError::Unsupported`] for a
    /// family other than IPv4 and IPv6; [`WireError::Malformed`] for a
    /// destination prefix length beyond the address width.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let (hdr, attrs) =
            RtMsgHeader::ref_from_prefix(payload).map_err(|_| WireError::Truncated)?;
        let width = match hdr.family {
            family::INET => 32,
            family::INET6 => 128,
            _ => return Err(WireError::Unsupported),
        };
        if hdr.dst_len > width {
            return Err(WireError::Malformed);
        }
        let mut r = RouteRepr {
            family: hdr.family,
            dst_len: hdr.dst_len,
            table: u32::from(hdr.table),
            scope: hdr.scope,
            route_type: hdr.rtm_type,
            dst: None,
            gateway: None,
            oif: None,
            priority: 0,
            nexthop: None,
        };
        for attr in RtAttrIter::new(attrs) {
            let attr = attr?;
            match attr.kind() {
                rta::DST => r.dst = Some(attr.ip(hdr.family)?),
                rta::GATEWAY => r.gateway = Some(attr.ip(hdr.family)?),
                rta::OIF => r.oif = Some(attr.u32()?),
                rta::PRIORITY => r.priority = attr.u32()?,
                rta::TABLE => r.table = attr.u32()?,
                rta::MULTIPATH => r.nexthop = best_nexthop(hdr.family, attr.data)?,
                _ => {}
            }
        }
        Ok(r)
    }

    /// The interface and gateway packets take: the multipath choice if any,
    /// else [`RouteRepr::oif`] and [`RouteRepr::gateway`].
    pub fn via(&self) -> (Option<u32>, Option<IpAddr>) {
        match self.nexthop {
            Some(nh) => (Some(nh.ifindex), nh.gateway),
            None => (self.oif, self.gateway),
        }
    }
}

/// The first next hop of the highest weight in a multipath list (as the
/// original passt documents for `-g`).
fn best_nexthop(fam: u8, mut list: &[u8]) -> Result<Option<NextHop>> {
    let mut best: Option<NextHop> = None;
    for _ in 0..MAX_NEXTHOPS {
        if list.is_empty() {
            break;
        }
        let (hdr, _) = RtNextHopHeader::ref_from_prefix(list).map_err(|_| WireError::Truncated)?;
        let len = usize::from(hdr.len.get());
        if len < size_of::<RtNextHopHeader>() {
            return Err(WireError::BadLength);
        }
        let this = list.get(..len).ok_or(WireError::Truncated)?;
        let attrs = this.get(size_of::<RtNextHopHeader>()..).unwrap_or(&[]);
        let mut gateway = None;
        for attr in RtAttrIter::new(attrs) {
            let attr = attr?;
            if attr.kind() == rta::GATEWAY {
                gateway = Some(attr.ip(fam)?);
            }
        }
        let hop = NextHop {
            ifindex: u32::try_from(hdr.ifindex.get()).map_err(|_| WireError::Malformed)?,
            weight: u16::from(hdr.hops) + 1,
            gateway,
        };
        if best.map_or(true, |b| hop.weight > b.weight) {
            best = Some(hop);
        }
        list = list.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(best)
}

/// An interface address (`RTM_NEWADDR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRepr {
    /// Address family ([`family::INET`] or [`family::INET6`]).
    pub family: u8,
    /// Prefix length.
    pub prefix_len: u8,
    /// Flags: [`ifa::FLAGS`] if present, else `ifa_flags`.
    pub flags: u32,
    /// Scope ([`rt::SCOPE_UNIVERSE`], [`rt::SCOPE_LINK`]...).
    pub scope: u8,
    /// Interface index.
    pub index: u32,
    /// [`ifa::ADDRESS`].
    pub address: Option<IpAddr>,
    /// [`ifa::LOCAL`].
    pub local: Option<IpAddr>,
}

impl AddrRepr {
    /// Parse the payload of an `RTM_NEWADDR` message.
    ///
    /// # Errors
    /// As [`RouteRepr::parse`]; a prefix length beyond the address width is
    /// [`WireError::Malformed`].
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let (hdr, attrs) =
            IfAddrMsgHeader::ref_from_prefix(payload).map_err(|_| WireError::Truncated)?;
        let width = match hdr.family {
            family::INET => 32,
            family::INET6 => 128,
            _ => return Err(WireError::Unsupported),
        };
        if hdr.prefix_len > width {
            return Err(WireError::Malformed);
        }
        let mut a = AddrRepr {
            family: hdr.family,
            prefix_len: hdr.prefix_len,
            flags: u32::from(hdr.flags),
            scope: hdr.scope,
            index: hdr.index.get(),
            address: None,
            local: None,
        };
        for attr in RtAttrIter::new(attrs) {
            let attr = attr?;
            match attr.kind() {
                ifa::ADDRESS => a.address = Some(attr.ip(hdr.family)?),
                ifa::LOCAL => a.local = Some(attr.ip(hdr.family)?),
                ifa::FLAGS => a.flags = attr.u32()?,
                _ => {}
            }
        }
        Ok(a)
    }

    /// This host's own address: [`ifa::LOCAL`] when present (it differs from
    /// [`ifa::ADDRESS`] only on point-to-point links, where the latter is the
    /// peer), else [`ifa::ADDRESS`] (rtnetlink(7)).
    pub fn own(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }
}

/// A link (`RTM_NEWLINK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkRepr<'a> {
    /// Interface index.
    pub index: u32,
    /// Device type (`ARPHRD_*`).
    pub dev_type: u16,
    /// Device flags (`IFF_*`).
    pub flags: u32,
    /// Name.
    pub name: Option<&'a str>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address, any length.
    pub hw_addr: Option<&'a [u8]>,
}

/// Longest interface name, without its NUL (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;

impl<'a> LinkRepr<'a> {
    /// Parse the payload of an `RTM_NEWLINK` message.
    ///
    /// # Errors
    /// Framing errors as for [`RouteRepr::parse`]; an index that is not
    /// positive, or a name that is empty, longer than [`IFNAME_MAX`], not
    /// NUL-terminated or not UTF-8, is [`WireError::Malformed`].
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let (hdr, attrs) =
            IfInfoMsgHeader::ref_from_prefix(payload).map_err(|_| WireError::Truncated)?;
        let index = u32::try_from(hdr.index.get()).map_err(|_| WireError::Malformed)?;
        if index == 0 {
            return Err(WireError::Malformed);
        }
        let mut l = LinkRepr {
            index,
            dev_type: hdr.dev_type.get(),
            flags: hdr.flags.get(),
            name: None,
            mtu: None,
            hw_addr: None,
        };
        for attr in RtAttrIter::new(attrs) {
            let attr = attr?;
            match attr.kind() {
                ifla::IFNAME => l.name = Some(ifname(attr.data)?),
                ifla::MTU => l.mtu = Some(attr.u32()?),
                ifla::ADDRESS => l.hw_addr = Some(attr.data),
                _ => {}
            }
        }
        Ok(l)
    }

    /// The hardware address as a MAC address, if it has 6 bytes.
    pub fn mac(&self) -> Option<MacAddr> {
        let b: [u8; 6] = self.hw_addr?.try_into().ok()?;
        Some(MacAddr(b))
    }
}

/// A NUL-terminated interface name.
fn ifname(data: &[u8]) -> Result<&str> {
    let nul = data
        .iter()
        .position(|&b| b == 0)
        .ok_or(WireError::Malformed)?;
    let name = data.get(..nul).ok_or(WireError::Malformed)?;
    if name.is_empty() || name.len() > IFNAME_MAX {
        return Err(WireError::Malformed);
    }
    core::str::from_utf8(name).map_err(|_| WireError::Malformed)
}

/// Write a dump request for `msg_type` ([`msg_type::GETLINK`],
/// [`msg_type::GETADDR`] or [`msg_type::GETROUTE`]) of `fam` into `buf`:
/// the header flagged `NLM_F_REQUEST | NLM_F_DUMP`, then the zeroed family
/// header of the matching message (`ifinfomsg`, `ifaddrmsg`, `rtmsg`) with
/// only its family set. Return the length.
///
/// # Errors
/// [`WireError::BufferTooSmall`]; [`WireError::Unsupported`] for another
/// message type.
pub fn emit_dump_request(msg_type: u16, fam: u8, seq: u32, buf: &mut [u8]) -> Result<usize> {
    let mut body = [0u8; size_of::<IfInfoMsgHeader>()];
    let body_len = match msg_type {
        msg_type::GETLINK => size_of::<IfInfoMsgHeader>(),
        msg_type::GETADDR => size_of::<IfAddrMsgHeader>(),
        msg_type::GETROUTE => size_of::<RtMsgHeader>(),
        _ => return Err(WireError::Unsupported),
    };
    // The family is the first byte of all three headers.
    body[0] = fam;
    let payload = body.get(..body_len).ok_or(WireError::BufferTooSmall)?;
    NlMsgRepr {
        msg_type,
        flags: flags::REQUEST | flags::DUMP,
        seq,
        pid: 0,
        payload,
    }
    .emit(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn dump_requests_have_the_family_header_of_their_type() {
        let mut buf = [0xaa; 64];
        let n = emit_dump_request(msg_type::GETROUTE, family::INET6, 7, &mut buf).unwrap();
        assert_eq!(n, 28);
        let (msg, rest) = NlMsgRepr::parse(&buf[..n]).unwrap();
        assert!(rest.is_empty());
        assert_eq!(msg.msg_type, msg_type::GETROUTE);
        assert_eq!(msg.flags, flags::REQUEST | flags::DUMP);
        assert_eq!(msg.seq, 7);
        assert_eq!(msg.payload, &[10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            emit_dump_request(msg_type::GETADDR, family::INET, 1, &mut buf),
            Ok(24)
        );
        assert_eq!(
            emit_dump_request(msg_type::GETLINK, family::UNSPEC, 1, &mut buf),
            Ok(32)
        );
        assert_eq!(
            emit_dump_request(msg_type::GETLINK, 0, 1, &mut buf[..31]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(
            emit_dump_request(msg_type::NEWLINK, 0, 1, &mut buf),
            Err(WireError::Unsupported)
        );
    }

    #[test]
    fn message_lengths_are_checked() {
        // A 16-byte NLMSG_DONE-like header claiming 15 bytes, then 20.
        let mut m = unhex("10000000 0300 0200 01000000 00000000");
        assert!(NlMsgRepr::parse(&m).is_ok());
        m[0] = 15;
        assert_eq!(NlMsgRepr::parse(&m), Err(WireError::BadLength));
        m[0] = 20;
        assert_eq!(NlMsgRepr::parse(&m), Err(WireError::Truncated));
        m[0] = 0xff;
        m[3] = 0xff;
        assert_eq!(NlMsgRepr::parse(&m), Err(WireError::Truncated));
        let mut it = NlMsgIter::new(&m);
        assert_eq!(it.next(), Some(Err(WireError::Truncated)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn attribute_lengths_are_checked() {
        let a = unhex("0800 0400 02000000 0500 0300 41000000");
        let attrs: Vec<_> = RtAttrIter::new(&a).collect::<Result<_>>().unwrap();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].u32(), Ok(2));
        assert_eq!(attrs[1].data, b"A");
        let mut out = [0xff; 16];
        assert_eq!(attrs[0].emit(&mut out), Ok(8));
        assert_eq!(attrs[1].emit(&mut out[8..]), Ok(8));
        assert_eq!(&out[..], &a[..]);
        let mut bad = a.clone();
        bad[0] = 3;
        assert_eq!(RtAttrRepr::parse(&bad), Err(WireError::BadLength));
        bad[0] = 9;
        assert_eq!(RtAttrRepr::parse(&bad[..8]), Err(WireError::Truncated));
        // A 3-byte tail is not an attribute.
        assert_eq!(
            RtAttrIter::new(&a[..3]).next(),
            Some(Err(WireError::Truncated))
        );
    }

    #[test]
    fn error_and_done_payloads() {
        let e = unhex("feffffff 1c000000 1a00 0103 2a000000 00000000");
        assert_eq!(
            NlErrRepr::parse(&e),
            Ok(NlErrRepr {
                error: -2,
                req_type: msg_type::GETROUTE,
                req_seq: 42
            })
        );
        for n in 0..e.len() {
            assert_eq!(NlErrRepr::parse(&e[..n]), Err(WireError::Truncated));
        }
        assert_eq!(parse_done(&[]), Ok(0));
        assert_eq!(parse_done(&[0xf9, 0xff, 0xff, 0xff]), Ok(-7));
        assert_eq!(parse_done(&[0, 0]), Err(WireError::Truncated));
    }

    #[test]
    fn multipath_picks_the_first_of_the_highest_weight() {
        // rtmsg AF_INET default, then RTA_MULTIPATH with three hops:
        // weight 1 via 192.0.2.1 on 2, weight 3 via 192.0.2.2 on 3,
        // weight 3 via 192.0.2.3 on 4.
        let p = unhex(
            "02000000fe030001 00000000
             3400 0900
               1000 00 00 02000000 0800 0500 c0000201
               1000 00 02 03000000 0800 0500 c0000202
               1000 00 02 04000000 0800 0500 c0000203",
        );
        let r = RouteRepr::parse(&p).unwrap();
        assert_eq!(
            r.nexthop,
            Some(NextHop {
                ifindex: 3,
                weight: 3,
                gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))
            })
        );
        assert_eq!(
            r.via(),
            (Some(3), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))))
        );
        // Truncated and short next hops.
        let mut bad = p.clone();
        bad[16] = 7;
        assert_eq!(RouteRepr::parse(&bad), Err(WireError::BadLength));
        bad[16] = 0x40;
        assert_eq!(RouteRepr::parse(&bad), Err(WireError::Truncated));
    }
}
