//! DHCPv4 messages: the BOOTP header, options, and the Domain Search list.
//!
//! # Layout
//!
//! A DHCP message (RFC 2131 §2) is a fixed 236-byte BOOTP header (RFC 951,
//! [`DhcpHeader`]), the magic cookie 99.130.83.99 (RFC 2131 §3, RFC 2132 §2)
//! and a variable options area of code/length/value triples: code 0 is a
//! one-byte pad, code 255 ends the list, everything else carries a one-byte
//! length (RFC 2132 §2). The last option must be `end` (RFC 2131 §4.1);
//! padding may follow it.
//!
//! # Overload and long options
//!
//! Option Overload (52, RFC 2132 §9.3) lets a sender continue its options in
//! the `file` field (value 1), `sname` (value 2) or both (3), each area
//! starting at its first byte and closed by its own `end` option (RFC 2131
//! §4.1). Options are read in the order: options area, `file`, `sname`. An
//! option longer than 255 bytes is sent as consecutive instances of the same
//! code whose values are concatenated in that order (RFC 3396 §5-§7);
//! [`DhcpRepr::concat_option`] reassembles them into a caller buffer and
//! [`DhcpBuilder::push`] splits them when writing.
//!
//! # Parsing
//!
//! [`DhcpRepr::parse`] checks the header length, the cookie, every option
//! area named by the overload option, and the lengths of the fixed-size
//! options it has accessors for (message type, addresses, lease time,
//! maximum message size), so that those accessors need no error path. The
//! representation keeps the raw options area (up to the end of the input,
//! padding included), so emitting it gives back the parsed bytes exactly.
//!
//! # Building
//!
//! [`DhcpBuilder`] writes a new message into a caller buffer: header fields
//! are set on its `header`, options are appended in order, and
//! [`DhcpBuilder::finish`] closes the list and pads the message to the
//! 300-byte BOOTP minimum (RFC 951 vend field, RFC 1542 §3.1.1), which some
//! clients expect. It never overloads `file` or `sname`.
//!
//! # Domain search
//!
//! The Domain Search option (119, RFC 3397) holds DNS names in the wire
//! format of RFC 1035 §3.1, compressed with the pointers of RFC 1035 §4.1.4
//! whose offsets count from the start of the (concatenated) option value.
//! [`encode_search_list`] compresses each name against the suffixes already
//! written; [`DnsNameList`] decodes names into caller buffers, accepting only
//! pointers that move strictly backwards, so that no loop can be followed.
//!
//! # Limits
//!
//! Every walk over options is bounded by the bytes present: each step
//! consumes at least one byte. A name may take at most [`MAX_NAME_POINTERS`]
//! compression pointers, and at most 255 bytes in wire form.

use core::net::Ipv4Addr;

use zerocopy::byteorder::network_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Result, WireError};
use crate::addr::MacAddr;

/// The magic cookie that opens the options area (RFC 2131 §3, RFC 2132 §2).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Length of the fixed BOOTP header (RFC 951, RFC 2131 §2).
pub const HEADER_LEN: usize = 236;
/// Offset of the options area: the header plus the magic cookie.
pub const OPTIONS_OFFSET: usize = HEADER_LEN + MAGIC_COOKIE.len();
/// Minimum BOOTP message length a builder pads to (RFC 951's 64-byte vend
/// field, RFC 1542 §3.1.1): some stock clients drop shorter replies.
pub const MIN_BOOTP_LEN: usize = 300;
/// `op` of a message from a client (RFC 951).
pub const BOOTREQUEST: u8 = 1;
/// `op` of a message from a server (RFC 951).
pub const BOOTREPLY: u8 = 2;
/// `htype` for Ethernet (RFC 1700 "ARP hardware types").
pub const HTYPE_ETHERNET: u8 = 1;
/// The BROADCAST bit of `flags`: the client cannot receive unicast before it
/// is configured (RFC 2131 §2, §4.1).
pub const FLAG_BROADCAST: u16 = 0x8000;
/// Most compression pointers followed while decoding one name.
pub const MAX_NAME_POINTERS: usize = 64;
/// Longest DNS name in wire form, length bytes and root label included
/// (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// DHCP option codes (RFC 2132 and later registrations).
pub mod opt {
    /// Pad: one byte, no length (RFC 2132 §3.1).
    pub const PAD: u8 = 0;
    /// Subnet mask (RFC 2132 §3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Routers (RFC 2132 §3.5).
    pub const ROUTER: u8 = 3;
    /// Domain name servers (RFC 2132 §3.8).
    pub const DNS_SERVERS: u8 = 6;
    /// Host name (RFC 2132 §3.14).
    pub const HOSTNAME: u8 = 12;
    /// Domain name (RFC 2132 §3.17).
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU (RFC 2132 §5.1).
    pub const INTERFACE_MTU: u8 = 26;
    /// Broadcast address (RFC 2132 §5.3).
    pub const BROADCAST_ADDR: u8 = 28;
    /// Requested IP address (RFC 2132 §9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// IP address lease time (RFC 2132 §9.2).
    pub const LEASE_TIME: u8 = 51;
    /// Option overload (RFC 2132 §9.3).
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type (RFC 2132 §9.6).
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier (RFC 2132 §9.7).
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list (RFC 2132 §9.8).
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Message, an error text (RFC 2132 §9.9).
    pub const MESSAGE: u8 = 56;
    /// Maximum DHCP message size (RFC 2132 §9.10).
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) time (RFC 2132 §9.11).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time (RFC 2132 §9.12).
    pub const REBINDING_TIME: u8 = 59;
    /// Vendor class identifier (RFC 2132 §9.13).
    pub const VENDOR_CLASS_ID: u8 = 60;
    /// Client identifier (RFC 2132 §9.14).
    pub const CLIENT_ID: u8 = 61;
    /// Rapid commit (RFC 4039 §4).
    pub const RAPID_COMMIT: u8 = 80;
    /// Client FQDN (RFC 4702 §2).
    pub const CLIENT_FQDN: u8 = 81;
    /// Domain search list (RFC 3397 §2).
    pub const DOMAIN_SEARCH: u8 = 119;
    /// Classless static routes (RFC 3442).
    pub const CLASSLESS_STATIC_ROUTE: u8 = 121;
    /// End of the option list (RFC 2132 §3.2).
    pub const END: u8 = 255;
}

/// The fixed BOOTP part of a DHCP message as it sits in a datagram
/// (RFC 951, RFC 2131 §2, figure 1). The magic cookie follows it.
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct DhcpHeader {
    /// Message op code: [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub op: u8,
    /// Hardware address type ([`HTYPE_ETHERNET`]).
    pub htype: u8,
    /// Hardware address length (6 for Ethernet, at most 16).
    pub hlen: u8,
    /// Relay hops, zero from clients.
    pub hops: u8,
    /// Transaction ID chosen by the client.
    pub xid: U32,
    /// Seconds since the client began acquisition or renewal.
    pub secs: U16,
    /// Flags; only [`FLAG_BROADCAST`] is defined.
    pub flags: U16,
    /// Client IP address, when it is bound, renewing or rebinding.
    pub ciaddr: [u8; 4],
    /// "Your" (client) IP address offered or assigned by the server.
    pub yiaddr: [u8; 4],
    /// Address of the next server in bootstrap.
    pub siaddr: [u8; 4],
    /// Relay agent address.
    pub giaddr: [u8; 4],
    /// Client hardware address, `hlen` bytes used.
    pub chaddr: [u8; 16],
    /// Server host name, or options when overloaded.
    pub sname: [u8; 64],
    /// Boot file name, or options when overloaded.
    pub file: [u8; 128],
}

impl DhcpHeader {
    /// The header of a reply to `request`: `op` BOOTREPLY and the fields a
    /// server copies from the request (`htype`, `hlen`, `xid`, `flags`,
    /// `giaddr`, `chaddr`), everything else zero (RFC 2131 §4.3.1, table 3).
    pub fn reply_to(request: &DhcpHeader) -> DhcpHeader {
        let mut reply = DhcpHeader::new_zeroed();
        reply.op = BOOTREPLY;
        reply.htype = request.htype;
        reply.hlen = request.hlen;
        reply.xid = request.xid;
        reply.flags = request.flags;
        reply.giaddr = request.giaddr;
        reply.chaddr = request.chaddr;
        reply
    }

    /// The transaction ID.
    pub fn xid(&self) -> u32 {
        self.xid.get()
    }

    /// Whether the client asked for broadcast replies (RFC 2131 §4.1).
    pub fn broadcast(&self) -> bool {
        self.flags.get() & FLAG_BROADCAST != 0
    }

    /// The client IP address (`ciaddr`).
    pub fn ciaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ciaddr)
    }

    /// The assigned client address (`yiaddr`).
    pub fn yiaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.yiaddr)
    }

    /// The next server address (`siaddr`).
    pub fn siaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.siaddr)
    }

    /// The relay agent address (`giaddr`).
    pub fn giaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.giaddr)
    }

    /// The client MAC address, if the hardware type is Ethernet with a
    /// 6-byte address.
    pub fn client_mac(&self) -> Option<MacAddr> {
        if self.htype != HTYPE_ETHERNET || self.hlen != 6 {
            return None;
        }
        let mut mac = [0; 6];
        mac.copy_from_slice(self.chaddr.get(..6)?);
        Some(MacAddr(mac))
    }

    /// Set an Ethernet client hardware address (`htype`, `hlen`, `chaddr`).
    pub fn set_client_mac(&mut self, mac: MacAddr) {
        self.htype = HTYPE_ETHERNET;
        self.hlen = 6;
        self.chaddr = [0; 16];
        self.chaddr[..6].copy_from_slice(&mac.0);
    }
}

/// DHCP message type, the value of option 53 (RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhcpMessageType {
    /// DHCPDISCOVER (1).
    Discover,
    /// DHCPOFFER (2).
    Offer,
    /// DHCPREQUEST (3).
    Request,
    /// DHCPDECLINE (4).
    Decline,
    /// DHCPACK (5).
    Ack,
    /// DHCPNAK (6).
    Nak,
    /// DHCPRELEASE (7).
    Release,
    /// DHCPINFORM (8).
    Inform,
    /// Any other value (later RFCs define leasequery and others).
    Unknown(u8),
}

impl From<u8> for DhcpMessageType {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            other => Self::Unknown(other),
        }
    }
}

impl From<DhcpMessageType> for u8 {
    fn from(value: DhcpMessageType) -> Self {
        match value {
            DhcpMessageType::Discover => 1,
            DhcpMessageType::Offer => 2,
            DhcpMessageType::Request => 3,
            DhcpMessageType::Decline => 4,
            DhcpMessageType::Ack => 5,
            DhcpMessageType::Nak => 6,
            DhcpMessageType::Release => 7,
            DhcpMessageType::Inform => 8,
            DhcpMessageType::Unknown(other) => other,
        }
    }
}

/// One option instance: its code and value (RFC 2132 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    /// Option code, never 0 (pad) or 255 (end).
    pub code: u8,
    /// Option value, at most 255 bytes.
    pub data: &'a [u8],
}

/// Iterator over the options of one area (the options field, or `file` or
/// `sname` when overloaded), from untrusted bytes.
///
/// Pads are skipped and `end` stops the walk. Yields
/// `Err(WireError::Malformed)` for a code without its length byte or a length
/// past the end of the area, and `Err(WireError::Truncated)` if the bytes run
/// out before `end`; it yields nothing after an error. Every step consumes at
/// least one byte, so the walk is bounded by the area length.
#[derive(Debug, Clone)]
pub struct DhcpOptionIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> DhcpOptionIter<'a> {
    /// Walk the options in `area`.
    pub fn new(area: &'a [u8]) -> Self {
        Self {
            rest: area,
            done: false,
        }
    }

    fn fail(&mut self, err: WireError) -> Option<Result<DhcpOption<'a>>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for DhcpOptionIter<'a> {
    type Item = Result<DhcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // Skip pads; each iteration consumes one byte.
        let (code, after_code) = loop {
            let Some((&code, tail)) = self.rest.split_first() else {
                return self.fail(WireError::Truncated);
            };
            if code != opt::PAD {
                break (code, tail);
            }
            self.rest = tail;
        };
        if code == opt::END {
            self.done = true;
            return None;
        }
        let Some((&len, after_len)) = after_code.split_first() else {
            return self.fail(WireError::Malformed);
        };
        let Some((data, rest)) = after_len.split_at_checked(usize::from(len)) else {
            return self.fail(WireError::Malformed);
        };
        self.rest = rest;
        Some(Ok(DhcpOption { code, data }))
    }
}

/// Iterator over every option of a parsed message, across the overloaded
/// areas in order (options field, `file`, `sname`; RFC 3396 §7).
///
/// Built from an already validated [`DhcpRepr`], so it yields options
/// directly; it stops at the first malformed option if ever given one.
#[derive(Debug, Clone)]
pub struct DhcpOptions<'a> {
    /// Overloaded areas still to walk (empty when not in use).
    more: [&'a [u8]; 2],
    inner: DhcpOptionIter<'a>,
}

impl<'a> Iterator for DhcpOptions<'a> {
    type Item = DhcpOption<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // At most two refills, one per overloaded area.
        for _ in 0..=self.more.len() {
            match self.inner.next() {
                Some(Ok(option)) => return Some(option),
                Some(Err(_)) => return None,
                None => {
                    let area = self.more.iter_mut().find(|a| !a.is_empty())?;
                    self.inner = DhcpOptionIter::new(core::mem::take(area));
                }
            }
        }
        None
    }
}

/// A parsed DHCP message, borrowing the header and the raw options area.
///
/// Only [`DhcpRepr::parse`] builds one, so the options it walks are known to
/// be well formed.
#[derive(Debug, Clone, Copy)]
pub struct DhcpRepr<'a> {
    header: &'a DhcpHeader,
    options: &'a [u8],
    overload: u8,
}

/// Validate every option of one area.
fn check_area(area: &[u8], missing_end: WireError) -> Result<()> {
    for option in DhcpOptionIter::new(area) {
        option.map_err(|e| {
            if e == WireError::Truncated {
                missing_end
            } else {
                e
            }
        })?;
    }
    Ok(())
}

impl<'a> DhcpRepr<'a> {
    /// Parse a DHCP message (the UDP payload).
    ///
    /// # Errors
    ///
    /// `Truncated` if shorter than header and cookie, or if the options end
    /// before the `end` option; `Malformed` for a wrong magic cookie, `hlen`
    /// above 16, an option length past the end of its area, an overload
    /// value other than 1-3, an overloaded area without `end`, or a
    /// fixed-size option (50, 51, 52, 53, 54, 57) whose concatenated value
    /// has the wrong length.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (header, rest) =
            DhcpHeader::ref_from_prefix(bytes).map_err(|_| WireError::Truncated)?;
        let (cookie, options) = rest
            .split_at_checked(MAGIC_COOKIE.len())
            .ok_or(WireError::Truncated)?;
        if cookie != MAGIC_COOKIE {
            return Err(WireError::Malformed);
        }
        if usize::from(header.hlen) > header.chaddr.len() {
            return Err(WireError::Malformed);
        }
        check_area(options, WireError::Truncated)?;
        let mut repr = Self {
            header,
            options,
            overload: 0,
        };
        // Overload is only meaningful in the options field itself.
        if let Some(data) = DhcpOptionIter::new(options)
            .filter_map(|o| o.ok())
            .find(|o| o.code == opt::OVERLOAD)
            .map(|o| o.data)
        {
            match data {
                [value @ 1..=3] => repr.overload = *value,
                _ => return Err(WireError::Malformed),
            }
        }
        if repr.overload & 1 != 0 {
            check_area(&header.file, WireError::Malformed)?;
        }
        if repr.overload & 2 != 0 {
            check_area(&header.sname, WireError::Malformed)?;
        }
        repr.fixed::<1>(opt::MESSAGE_TYPE)?;
        repr.fixed::<4>(opt::REQUESTED_IP)?;
        repr.fixed::<4>(opt::LEASE_TIME)?;
        repr.fixed::<4>(opt::SERVER_ID)?;
        repr.fixed::<2>(opt::MAX_MESSAGE_SIZE)?;
        Ok(repr)
    }

    /// The BOOTP header.
    pub fn header(&self) -> &'a DhcpHeader {
        self.header
    }

    /// The raw options area after the magic cookie, up to the end of the
    /// message (padding after `end` included).
    pub fn options_area(&self) -> &'a [u8] {
        self.options
    }

    /// The option overload value (RFC 2132 §9.3): 0 if absent, 1 if `file`
    /// holds options, 2 for `sname`, 3 for both.
    pub fn overload(&self) -> u8 {
        self.overload
    }

    /// Every option instance in order, across overloaded areas.
    pub fn options(&self) -> DhcpOptions<'a> {
        let file: &'a [u8] = if self.overload & 1 != 0 {
            &self.header.file
        } else {
            &[]
        };
        let sname: &'a [u8] = if self.overload & 2 != 0 {
            &self.header.sname
        } else {
            &[]
        };
        DhcpOptions {
            more: [file, sname],
            inner: DhcpOptionIter::new(self.options),
        }
    }

    /// The value of the first instance of option `code`.
    ///
    /// An option longer than 255 bytes is split across instances (RFC 3396);
    /// use [`DhcpRepr::concat_option`] to get all of it.
    pub fn option(&self, code: u8) -> Option<&'a [u8]> {
        self.options().find(|o| o.code == code).map(|o| o.data)
    }

    /// Concatenate the values of every instance of `code`, in order across
    /// overloaded areas, into `out` (RFC 3396 §7). Returns the total length,
    /// 0 if the option is absent.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` if `out` cannot hold the concatenation.
    pub fn concat_option(&self, code: u8, out: &mut [u8]) -> Result<usize> {
        Ok(self.concat_inner(code, out)?.unwrap_or(0))
    }

    fn concat_inner(&self, code: u8, out: &mut [u8]) -> Result<Option<usize>> {
        let mut total = None;
        for option in self.options().filter(|o| o.code == code) {
            let start = total.unwrap_or(0);
            let end = start + option.data.len();
            out.get_mut(start..end)
                .ok_or(WireError::BufferTooSmall)?
                .copy_from_slice(option.data);
            total = Some(end);
        }
        Ok(total)
    }

    /// The value of a fixed-size option, concatenated; `Malformed` if its
    /// length is not `N`.
    fn fixed<const N: usize>(&self, code: u8) -> Result<Option<[u8; N]>> {
        let mut value = [0; N];
        match self.concat_inner(code, &mut value) {
            Ok(None) => Ok(None),
            Ok(Some(len)) if len == N => Ok(Some(value)),
            _ => Err(WireError::Malformed),
        }
    }

    /// DHCP message type (option 53); `None` for a plain BOOTP message.
    pub fn message_type(&self) -> Option<DhcpMessageType> {
        let [value] = self.fixed::<1>(opt::MESSAGE_TYPE).ok().flatten()?;
        Some(DhcpMessageType::from(value))
    }

    /// Requested IP address (option 50, RFC 2132 §9.1).
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.fixed::<4>(opt::REQUESTED_IP)
            .ok()
            .flatten()
            .map(Ipv4Addr::from)
    }

    /// Server identifier (option 54, RFC 2132 §9.7).
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.fixed::<4>(opt::SERVER_ID)
            .ok()
            .flatten()
            .map(Ipv4Addr::from)
    }

    /// Requested or granted lease time in seconds (option 51, RFC 2132 §9.2).
    pub fn lease_time(&self) -> Option<u32> {
        self.fixed::<4>(opt::LEASE_TIME)
            .ok()
            .flatten()
            .map(u32::from_be_bytes)
    }

    /// Maximum DHCP message size the client accepts (option 57, RFC 2132
    /// §9.10).
    pub fn max_message_size(&self) -> Option<u16> {
        self.fixed::<2>(opt::MAX_MESSAGE_SIZE)
            .ok()
            .flatten()
            .map(u16::from_be_bytes)
    }

    /// Parameter request list (option 55, RFC 2132 §9.8): option codes, in
    /// the client's order of preference (first instance only).
    pub fn parameter_request_list(&self) -> Option<&'a [u8]> {
        self.option(opt::PARAMETER_REQUEST_LIST)
    }

    /// Whether the parameter request list asks for option `code`.
    pub fn requests(&self, code: u8) -> bool {
        self.options()
            .filter(|o| o.code == opt::PARAMETER_REQUEST_LIST)
            .any(|o| o.data.contains(&code))
    }

    /// Client identifier (option 61, RFC 2132 §9.14), raw: a type byte then
    /// the identifier (first instance only).
    pub fn client_id(&self) -> Option<&'a [u8]> {
        self.option(opt::CLIENT_ID)
    }

    /// Host name (option 12, RFC 2132 §3.14), raw bytes (first instance
    /// only).
    pub fn hostname(&self) -> Option<&'a [u8]> {
        self.option(opt::HOSTNAME)
    }

    /// Whether the client offers Rapid Commit (option 80, RFC 4039 §4).
    pub fn rapid_commit(&self) -> bool {
        self.options().any(|o| o.code == opt::RAPID_COMMIT)
    }

    /// Bytes [`DhcpRepr::emit`] writes: exactly the parsed message.
    pub fn buffer_len(&self) -> usize {
        OPTIONS_OFFSET + self.options.len()
    }

    /// Write the message back: header, cookie and the options area as
    /// parsed. Returns the length written.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` if `buf` is shorter than [`DhcpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(self.header.as_bytes());
        let (cookie, options) = rest.split_at_mut(MAGIC_COOKIE.len());
        cookie.copy_from_slice(&MAGIC_COOKIE);
        options.copy_from_slice(self.options);
        Ok(len)
    }
}

/// Writes a new DHCP message into a caller buffer, without allocating.
///
/// Set the BOOTP fields on [`DhcpBuilder::header`], append options with the
/// `push` methods, then call [`DhcpBuilder::finish`]. The buffer length is
/// the limit: give a shorter slice to honour a client's maximum message
/// size. A failed push leaves the message as it was.
#[derive(Debug)]
pub struct DhcpBuilder<'b> {
    /// The BOOTP header, written out by [`DhcpBuilder::finish`].
    pub header: DhcpHeader,
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> DhcpBuilder<'b> {
    /// Start a message in `buf` with an all-zero header.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` if `buf` cannot hold the header and cookie.
    pub fn new(buf: &'b mut [u8]) -> Result<Self> {
        if buf.len() < OPTIONS_OFFSET {
            return Err(WireError::BufferTooSmall);
        }
        Ok(Self {
            header: DhcpHeader::new_zeroed(),
            buf,
            len: OPTIONS_OFFSET,
        })
    }

    /// Bytes written so far, header and cookie included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no option has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.len == OPTIONS_OFFSET
    }

    /// Append option `code` with value `data`, split into consecutive
    /// instances of at most 255 bytes when longer (RFC 3396 §6).
    ///
    /// # Errors
    ///
    /// `Malformed` for code 0 (pad) or 255 (end); `BufferTooSmall` if it
    /// does not fit.
    pub fn push(&mut self, code: u8, data: &[u8]) -> Result<()> {
        if code == opt::PAD || code == opt::END {
            return Err(WireError::Malformed);
        }
        let instances = data.len().div_ceil(255).max(1);
        let end = self.len + data.len() + 2 * instances;
        let out = self
            .buf
            .get_mut(self.len..end)
            .ok_or(WireError::BufferTooSmall)?;
        let mut chunks = data.chunks(255);
        for slot in out.chunks_mut(257) {
            let chunk = chunks.next().unwrap_or(&[]);
            let (head, value) = slot.split_at_mut(2);
            head.copy_from_slice(&[code, chunk.len() as u8]);
            value.copy_from_slice(chunk);
        }
        self.len = end;
        Ok(())
    }

    /// Append option `code` whose value `encode` writes into the space it is
    /// given, returning its length; the value is then split into instances
    /// of at most 255 bytes in place (RFC 3396 §6). This lets long values
    /// such as [`encode_search_list`] output go in without a scratch buffer.
    ///
    /// # Errors
    ///
    /// `Malformed` for code 0 or 255, any error of `encode`, and
    /// `BufferTooSmall` if the value and its option headers do not fit.
    pub fn push_with(
        &mut self,
        code: u8,
        encode: impl FnOnce(&mut [u8]) -> Result<usize>,
    ) -> Result<()> {
        if code == opt::PAD || code == opt::END {
            return Err(WireError::Malformed);
        }
        let start = self.len;
        let space = self.buf.get_mut(start..).ok_or(WireError::BufferTooSmall)?;
        let n = encode(space)?;
        let instances = n.div_ceil(255).max(1);
        let end = start + n + 2 * instances;
        if end > self.buf.len() {
            return Err(WireError::BufferTooSmall);
        }
        // Move chunks back to front, so that no chunk overwrites one that
        // still has to move: chunk i goes from start + 255 i to
        // start + 257 i + 2, its header right before it.
        for i in (0..instances).rev() {
            let src = start + 255 * i;
            let chunk_len = n.saturating_sub(255 * i).min(255);
            let dst = start + 257 * i + 2;
            if dst + chunk_len > self.buf.len() {
                return Err(WireError::BufferTooSmall);
            }
            self.buf.copy_within(src..src + chunk_len, dst);
            let head = self
                .buf
                .get_mut(dst - 2..dst)
                .ok_or(WireError::BufferTooSmall)?;
            head.copy_from_slice(&[code, chunk_len as u8]);
        }
        self.len = end;
        Ok(())
    }

    /// Append a one-byte option.
    ///
    /// # Errors
    ///
    /// As [`DhcpBuilder::push`].
    pub fn push_u8(&mut self, code: u8, value: u8) -> Result<()> {
        self.push(code, &[value])
    }

    /// Append a 16-bit option, in network byte order.
    ///
    /// # Errors
    ///
    /// As [`DhcpBuilder::push`].
    pub fn push_u16(&mut self, code: u8, value: u16) -> Result<()> {
        self.push(code, &value.to_be_bytes())
    }

    /// Append a 32-bit option (a time in seconds), in network byte order.
    ///
    /// # Errors
    ///
    /// As [`DhcpBuilder::push`].
    pub fn push_u32(&mut self, code: u8, value: u32) -> Result<()> {
        self.push(code, &value.to_be_bytes())
    }

    /// Append the message type option (53).
    ///
    /// # Errors
    ///
    /// As [`DhcpBuilder::push`].
    pub fn push_message_type(&mut self, kind: DhcpMessageType) -> Result<()> {
        self.push_u8(opt::MESSAGE_TYPE, kind.into())
    }

    /// Append an option holding a list of IPv4 addresses (routers, DNS
    /// servers, a subnet mask or server identifier with one entry).
    ///
    /// # Errors
    ///
    /// As [`DhcpBuilder::push_with`].
    pub fn push_ipv4s(&mut self, code: u8, addrs: &[Ipv4Addr]) -> Result<()> {
        self.push_with(code, |out| {
            let len = addrs.len() * 4;
            let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
            for (slot, addr) in out.chunks_exact_mut(4).zip(addrs) {
                slot.copy_from_slice(&addr.octets());
            }
            Ok(len)
        })
    }

    /// Append the Domain Search option (119) for `domains`, compressed
    /// (RFC 3397).
    ///
    /// # Errors
    ///
    /// As [`encode_search_list`] and [`DhcpBuilder::push_with`].
    pub fn push_search_list(&mut self, domains: &[&str]) -> Result<()> {
        self.push_with(opt::DOMAIN_SEARCH, |out| encode_search_list(domains, out))
    }

    /// Write the header and cookie, close the options with `end` and pad
    /// with zeros to [`MIN_BOOTP_LEN`]. Returns the message length.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` if `end` and the padding do not fit.
    pub fn finish(self) -> Result<usize> {
        let end = (self.len + 1).max(MIN_BOOTP_LEN);
        let out = self.buf.get_mut(..end).ok_or(WireError::BufferTooSmall)?;
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(self.header.as_bytes());
        let (cookie, rest) = rest.split_at_mut(MAGIC_COOKIE.len());
        cookie.copy_from_slice(&MAGIC_COOKIE);
        let (_, tail) = rest
            .split_at_mut_checked(self.len - OPTIONS_OFFSET)
            .ok_or(WireError::BufferTooSmall)?;
        let (end_option, pad) = tail.split_first_mut().ok_or(WireError::BufferTooSmall)?;
        *end_option = opt::END;
        pad.fill(0);
        Ok(end)
    }
}

/// Iterate over the labels of a textual domain name, checking each.
///
/// A trailing dot is accepted; `""` and `"."` are the root. Returns
/// `Malformed` for an empty label, a label over 63 bytes or a name over 255
/// bytes in wire form (RFC 1035 §2.3.4).
fn name_labels(name: &str) -> Result<core::str::Split<'_, char>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut wire_len = 1;
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(WireError::Malformed);
            }
            wire_len += 1 + label.len();
        }
    }
    if wire_len > MAX_NAME_LEN {
        return Err(WireError::Malformed);
    }
    // An empty name splits into one empty label, which callers skip.
    Ok(name.split('.'))
}

/// Write `labels` (non-empty ones) as length-prefixed labels at `out[at..]`.
fn write_labels<'n>(
    labels: impl Iterator<Item = &'n str>,
    out: &mut [u8],
    mut at: usize,
) -> Result<usize> {
    for label in labels.filter(|l| !l.is_empty()) {
        let end = at + 1 + label.len();
        let slot = out.get_mut(at..end).ok_or(WireError::BufferTooSmall)?;
        let (len, value) = slot.split_at_mut(1);
        len.copy_from_slice(&[label.len() as u8]);
        value.copy_from_slice(label.as_bytes());
        at = end;
    }
    Ok(at)
}

/// Whether the (possibly compressed) name at `pos` in `data` equals exactly
/// the labels of `suffix`. `data` is our own output, but reads stay checked.
fn name_at_equals(data: &[u8], mut pos: usize, suffix: &str) -> bool {
    let mut labels = suffix.split('.').filter(|l| !l.is_empty());
    for _ in 0..MAX_NAME_LEN {
        let Some(&len) = data.get(pos) else {
            return false;
        };
        if len & 0xc0 == 0xc0 {
            let Some(&low) = data.get(pos + 1) else {
                return false;
            };
            pos = usize::from(len & 0x3f) << 8 | usize::from(low);
            continue;
        }
        if len == 0 {
            return labels.next().is_none();
        }
        let Some(label) = data.get(pos + 1..pos + 1 + usize::from(len)) else {
            return false;
        };
        if labels.next().map(str::as_bytes) != Some(label) {
            return false;
        }
        pos += 1 + usize::from(len);
    }
    false
}

/// Offset of a name already in `data` equal to `suffix`, if any can be
/// reached by a compression pointer (offset below 0x4000).
fn find_suffix(data: &[u8], suffix: &str) -> Option<usize> {
    let mut pos = 0;
    // Walk every label start of every name written; each step advances.
    while let Some(&len) = data.get(pos) {
        match len {
            0 => pos += 1,
            l if l & 0xc0 == 0xc0 => pos += 2,
            l => {
                if pos < 0x4000 && name_at_equals(data, pos, suffix) {
                    return Some(pos);
                }
                pos += 1 + usize::from(l);
            }
        }
    }
    None
}

/// Encode a Domain Search list (option 119 value, RFC 3397 §2) into `out`,
/// compressing each name against the suffixes of the names before it with
/// RFC 1035 §4.1.4 pointers. Returns the length written.
///
/// Names are given in text form (`"eng.apple.com"`, a trailing dot allowed)
/// and compared byte for byte. Offsets count from the start of `out`, which
/// must be the start of the option value.
///
/// # Errors
///
/// `Malformed` for an empty label, a label over 63 bytes or a name over 255
/// bytes; `BufferTooSmall` if `out` is too short.
pub fn encode_search_list(domains: &[&str], out: &mut [u8]) -> Result<usize> {
    let mut len = 0;
    for domain in domains {
        let labels = name_labels(domain)?;
        let name = domain.strip_suffix('.').unwrap_or(domain);
        // Longest suffix first: the whole name, then after each dot.
        let mut found = None;
        let starts = core::iter::once(0).chain(name.match_indices('.').map(|(i, _)| i + 1));
        for start in starts.filter(|_| !name.is_empty()) {
            let written = out.get(..len).ok_or(WireError::BufferTooSmall)?;
            if let Some(pos) = name.get(start..).and_then(|s| find_suffix(written, s)) {
                found = Some((start, pos));
                break;
            }
        }
        match found {
            Some((start, pos)) => {
                let prefix = name.get(..start).unwrap_or("");
                len = write_labels(prefix.split('.'), out, len)?;
                let ptr = out.get_mut(len..len + 2).ok_or(WireError::BufferTooSmall)?;
                ptr.copy_from_slice(&(0xc000 | pos as u16).to_be_bytes());
                len += 2;
            }
            None => {
                len = write_labels(labels, out, len)?;
                *out.get_mut(len).ok_or(WireError::BufferTooSmall)? = 0;
                len += 1;
            }
        }
    }
    Ok(len)
}

/// Decoder for a list of DNS names in wire form: the Domain Search option
/// (RFC 3397, compressed) or the DHCPv6 Domain Search List (RFC 3646 §4,
/// RFC 8415 §10, uncompressed).
///
/// Each call to [`DnsNameList::next_name`] writes one name in dotted text
/// form (no trailing dot; the root is empty) into a caller buffer. Label
/// bytes are copied as they are. Pointers are accepted only in compressed
/// lists and only to an offset before the start of the labels being read,
/// so every jump moves strictly backwards and no loop exists; jumps per name
/// are limited to [`MAX_NAME_POINTERS`] as well.
#[derive(Debug, Clone)]
pub struct DnsNameList<'a> {
    data: &'a [u8],
    pos: usize,
    compressed: bool,
}

impl<'a> DnsNameList<'a> {
    /// Names that may use compression pointers (RFC 3397 §2); offsets count
    /// from the start of `data`, the concatenated option value.
    pub fn compressed(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            compressed: true,
        }
    }

    /// Names without compression (RFC 8415 §10): a pointer is `Malformed`.
    pub fn uncompressed(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            compressed: false,
        }
    }

    /// Decode the next name into `out` in dotted form; `Ok(None)` after the
    /// last one. Returns the text length.
    ///
    /// # Errors
    ///
    /// `Malformed` for a label or pointer past the end, a reserved label
    /// type, a pointer that does not go backwards (or any pointer in an
    /// uncompressed list), too many pointers, or a name over 255 bytes;
    /// `BufferTooSmall` if `out` is too short (a 253-byte buffer always
    /// suffices). The list is not usable after an error.
    pub fn next_name(&mut self, out: &mut [u8]) -> Result<Option<usize>> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let result = self.decode(out);
        if result.is_err() {
            self.pos = self.data.len();
        }
        result.map(Some)
    }

    /// Check every remaining name, returning how many there are.
    ///
    /// # Errors
    ///
    /// As [`DnsNameList::next_name`], except `BufferTooSmall`.
    pub fn validate(mut self) -> Result<usize> {
        let mut scratch = [0; MAX_NAME_LEN];
        let mut count = 0;
        while self.next_name(&mut scratch)?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    fn decode(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut cur = self.pos;
        // Pointers must target an offset before this: the start of the
        // labels being read. It only decreases.
        let mut limit = self.pos;
        let mut next = None;
        let mut jumps = 0;
        let mut wire_len = 1;
        let mut text_len = 0;
        loop {
            let &len = self.data.get(cur).ok_or(WireError::Malformed)?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    self.pos = next.unwrap_or(cur + 1);
                    return Ok(text_len);
                }
                0x00 => {
                    let label_end = cur + 1 + usize::from(len);
                    let label = self
                        .data
                        .get(cur + 1..label_end)
                        .ok_or(WireError::Malformed)?;
                    wire_len += 1 + label.len();
                    if wire_len > MAX_NAME_LEN {
                        return Err(WireError::Malformed);
                    }
                    let dot = usize::from(text_len > 0);
                    let slot = out.get_mut(text_len..text_len + dot + label.len());
                    let slot = slot.ok_or(WireError::BufferTooSmall)?;
                    let (sep, text) = slot.split_at_mut(dot);
                    sep.fill(b'.');
                    text.copy_from_slice(label);
                    text_len += dot + label.len();
                    cur = label_end;
                }
                0xc0 if self.compressed => {
                    let &low = self.data.get(cur + 1).ok_or(WireError::Malformed)?;
                    let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                    jumps += 1;
                    if target >= limit || jumps > MAX_NAME_POINTERS {
                        return Err(WireError::Malformed);
                    }
                    next.get_or_insert(cur + 2);
                    limit = target;
                    cur = target;
                }
                _ => return Err(WireError::Malformed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on a veth pair between two namespaces: dnsmasq 2.90 serving
    // 192.0.2.50-100 with domain search "eng.apple.com marketing.apple.com",
    // busybox udhcpc 1.35.0 and ISC dhclient 4.4 as clients (UDP payloads).
    const UDHCPC_DISCOVER: &str = concat!(
        "0101060078ea746b00000000000000000000000000000000000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501013902024037080103060c0f1c2a770c066775657374313c0c756468637020312e33352e303d0701020000000002",
        "ff0000000000000000000000",
    );
    const DNSMASQ_OFFER: &str = concat!(
        "0201060078ea746b0000000000000000c0000260c0000201000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501023604c000020133040000a8c03a04000054603b04000093a80104ffffff001c04c00002ff0304c00002010f0b65",
        "78616d706c652e6f72670604c0000235771b03656e67056170706c6503636f6d00096d61726b6574696e67c004ff",
    );
    const UDHCPC_REQUEST: &str = concat!(
        "0101060078ea746b00030000000000000000000000000000000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501033204c00002603604c00002013902024037080103060c0f1c2a770c066775657374313c0c756468637020312e33",
        "352e303d0701020000000002ff",
    );
    const DNSMASQ_ACK: &str = concat!(
        "0201060078ea746b0003000000000000c0000260c0000201000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501053604c000020133040000a8c03a04000054603b04000093a80104ffffff001c04c00002ff0304c00002010c0667",
        "75657374310f0b6578616d706c652e6f72670604c0000235771b03656e67056170706c6503636f6d00096d61726b6574",
        "696e67c004ff",
    );
    const DHCLIENT_DISCOVER: &str = concat!(
        "010106009112752f00000000000000000000000000000000000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501010c02766d370d011c02030f06770c2c2f1a792aff00000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
    );
    const DHCLIENT_REQUEST: &str = concat!(
        "010106009112752f00000000000000000000000000000000000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501033604c00002013204c00002600c02766d370d011c02030f06770c2c2f1a792aff00000000000000000000000000",
        "000000000000000000000000",
    );
    const DNSMASQ_ACK_DHCLIENT: &str = concat!(
        "020106009112752f0000000000000000c0000260c0000201000000000200000000020000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363",
        "3501053604c000020133040000a8c03a04000054603b04000093a80104ffffff001c04c00002ff0304c00002010c0276",
        "6d0f0b6578616d706c652e6f72670604c0000235771b03656e67056170706c6503636f6d00096d61726b6574696e67c0",
        "04ff",
    );

    const FIXTURES: [&str; 7] = [
        UDHCPC_DISCOVER,
        DNSMASQ_OFFER,
        UDHCPC_REQUEST,
        DNSMASQ_ACK,
        DHCLIENT_DISCOVER,
        DHCLIENT_REQUEST,
        DNSMASQ_ACK_DHCLIENT,
    ];

    /// RFC 3397 §2's example: "eng.apple.com." then "marketing.apple.com.",
    /// the second pointing at "apple.com" (offset 4). dnsmasq sends the same.
    const RFC3397_EXAMPLE: &[u8] = b"\x03eng\x05apple\x03com\x00\x09marketing\xc0\x04";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Offsets where an option (or pad) starts in the options field, up
    /// to the `end` option; the last one is just past `end`.
    fn option_starts(msg: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut pos = OPTIONS_OFFSET;
        loop {
            starts.push(pos);
            match msg[pos] {
                0 => pos += 1,
                255 => {
                    starts.push(pos + 1);
                    return starts;
                }
                _ => pos += 2 + usize::from(msg[pos + 1]),
            }
        }
    }

    /// Offset just past the `end` option of the options field.
    fn end_of_options(msg: &[u8]) -> usize {
        *option_starts(msg).last().unwrap()
    }

    fn names(list: DnsNameList<'_>) -> Vec<String> {
        let mut list = list;
        let mut out = Vec::new();
        let mut buf = [0; 253];
        while let Some(n) = list.next_name(&mut buf).unwrap() {
            out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        out
    }

    fn roundtrip(msg: &[u8]) {
        let repr = DhcpRepr::parse(msg).unwrap();
        assert_eq!(repr.buffer_len(), msg.len());
        let mut out = vec![0; msg.len()];
        assert_eq!(repr.emit(&mut out), Ok(msg.len()));
        assert_eq!(out, msg);
        assert_eq!(
            repr.emit(&mut out[..msg.len() - 1]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn captured_messages_reemit_exactly() {
        for fixture in FIXTURES {
            roundtrip(&hex(fixture));
        }
    }

    #[test]
    fn udhcpc_discover_fields() {
        let msg = hex(UDHCPC_DISCOVER);
        let repr = DhcpRepr::parse(&msg).unwrap();
        let hdr = repr.header();
        assert_eq!(hdr.op, BOOTREQUEST);
        assert_eq!(hdr.xid(), 0x78ea_746b);
        assert!(!hdr.broadcast());
        assert_eq!(hdr.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(hdr.client_mac(), Some(MacAddr([2, 0, 0, 0, 0, 2])));
        assert_eq!(repr.overload(), 0);
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Discover));
        assert_eq!(repr.max_message_size(), Some(576));
        assert_eq!(
            repr.parameter_request_list(),
            Some(&[1, 3, 6, 12, 15, 28, 42, 119][..])
        );
        assert!(repr.requests(opt::DOMAIN_SEARCH));
        assert!(!repr.requests(opt::CLASSLESS_STATIC_ROUTE));
        assert_eq!(repr.hostname(), Some(&b"guest1"[..]));
        assert_eq!(
            repr.option(opt::VENDOR_CLASS_ID),
            Some(&b"udhcp 1.35.0"[..])
        );
        assert_eq!(repr.client_id(), Some(&[1, 2, 0, 0, 0, 0, 2][..]));
        assert_eq!(repr.requested_ip(), None);
        assert_eq!(repr.server_id(), None);
        assert!(!repr.rapid_commit());
        let codes: Vec<u8> = repr.options().map(|o| o.code).collect();
        assert_eq!(codes, [53, 57, 55, 12, 60, 61]);
    }

    #[test]
    fn udhcpc_request_and_dnsmasq_ack_fields() {
        let msg = hex(UDHCPC_REQUEST);
        let repr = DhcpRepr::parse(&msg).unwrap();
        assert_eq!(repr.header().secs.get(), 3);
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Request));
        assert_eq!(repr.requested_ip(), Some(Ipv4Addr::new(192, 0, 2, 96)));
        assert_eq!(repr.server_id(), Some(Ipv4Addr::new(192, 0, 2, 1)));

        let msg = hex(DNSMASQ_ACK);
        let repr = DhcpRepr::parse(&msg).unwrap();
        let hdr = repr.header();
        assert_eq!(hdr.op, BOOTREPLY);
        assert_eq!(hdr.xid(), 0x78ea_746b);
        assert_eq!(hdr.yiaddr(), Ipv4Addr::new(192, 0, 2, 96));
        assert_eq!(hdr.siaddr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(hdr.giaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Ack));
        assert_eq!(repr.lease_time(), Some(43200));
        assert_eq!(
            repr.option(opt::RENEWAL_TIME),
            Some(&21600u32.to_be_bytes()[..])
        );
        assert_eq!(repr.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
        assert_eq!(repr.hostname(), Some(&b"guest1"[..]));
        assert_eq!(repr.option(opt::DOMAIN_NAME), Some(&b"example.org"[..]));
        assert_eq!(repr.option(opt::DNS_SERVERS), Some(&[192, 0, 2, 53][..]));
    }

    #[test]
    fn dhclient_messages_fields() {
        let msg = hex(DHCLIENT_DISCOVER);
        let repr = DhcpRepr::parse(&msg).unwrap();
        assert_eq!(msg.len(), MIN_BOOTP_LEN);
        assert_eq!(repr.header().xid(), 0x9112_752f);
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Discover));
        assert_eq!(repr.hostname(), Some(&b"vm"[..]));
        assert_eq!(
            repr.parameter_request_list(),
            Some(&[1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42][..])
        );
        assert_eq!(repr.client_id(), None);
        assert_eq!(repr.max_message_size(), None);

        let msg = hex(DHCLIENT_REQUEST);
        let repr = DhcpRepr::parse(&msg).unwrap();
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Request));
        assert_eq!(repr.requested_ip(), Some(Ipv4Addr::new(192, 0, 2, 96)));
        assert_eq!(repr.server_id(), Some(Ipv4Addr::new(192, 0, 2, 1)));

        let msg = hex(DNSMASQ_ACK_DHCLIENT);
        let repr = DhcpRepr::parse(&msg).unwrap();
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Ack));
        assert_eq!(repr.hostname(), Some(&b"vm"[..]));
    }

    #[test]
    fn dnsmasq_offer_search_list_is_rfc3397_example() {
        let msg = hex(DNSMASQ_OFFER);
        let repr = DhcpRepr::parse(&msg).unwrap();
        assert_eq!(repr.message_type(), Some(DhcpMessageType::Offer));
        assert_eq!(repr.option(opt::DOMAIN_SEARCH), Some(RFC3397_EXAMPLE));
        let mut value = [0; 64];
        let n = repr.concat_option(opt::DOMAIN_SEARCH, &mut value).unwrap();
        assert_eq!(&value[..n], RFC3397_EXAMPLE);
        assert_eq!(
            names(DnsNameList::compressed(&value[..n])),
            ["eng.apple.com", "marketing.apple.com"]
        );
        assert_eq!(
            repr.concat_option(opt::DOMAIN_SEARCH, &mut value[..26]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(repr.concat_option(opt::HOSTNAME, &mut value), Ok(0));
    }

    #[test]
    fn encode_search_list_matches_rfc3397_example() {
        let mut out = [0; 64];
        let n = encode_search_list(&["eng.apple.com.", "marketing.apple.com"], &mut out).unwrap();
        assert_eq!(&out[..n], RFC3397_EXAMPLE);
        assert_eq!(
            encode_search_list(&["eng.apple.com", "marketing.apple.com"], &mut out[..26]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn encode_search_list_compression_cases() {
        let mut out = [0; 128];
        // A repeated name is a bare pointer; a sibling shares the parent.
        let domains = [
            "example.com",
            "example.com",
            "a.b.example.com",
            "c.b.example.com",
            "org",
        ];
        let n = encode_search_list(&domains, &mut out).unwrap();
        let expected: &[u8] =
            b"\x07example\x03com\x00\xc0\x00\x01a\x01b\xc0\x00\x01c\xc0\x11\x03org\x00";
        assert_eq!(&out[..n], expected);
        assert_eq!(names(DnsNameList::compressed(&out[..n])), domains);
        // The root is a lone zero byte.
        assert_eq!(encode_search_list(&["."], &mut out), Ok(1));
        assert_eq!(out[0], 0);
    }

    #[test]
    fn encode_search_list_rejects_bad_names() {
        let mut out = [0; 512];
        let long_label = "a".repeat(64);
        assert_eq!(
            encode_search_list(&[&long_label], &mut out),
            Err(WireError::Malformed)
        );
        assert_eq!(
            encode_search_list(&["a..b"], &mut out),
            Err(WireError::Malformed)
        );
        // 4 labels of 63 bytes: 4 * 64 + 1 = 257 bytes in wire form.
        let label = "a".repeat(63);
        let long_name = [label.as_str(); 4].join(".");
        assert_eq!(
            encode_search_list(&[&long_name], &mut out),
            Err(WireError::Malformed)
        );
        // 3 labels of 63 and one of 61 make exactly 255.
        let max_name = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        let n = encode_search_list(&[&max_name], &mut out).unwrap();
        assert_eq!(n, 255);
        assert_eq!(names(DnsNameList::compressed(&out[..n])), [max_name]);
    }

    #[test]
    fn search_list_decoder_rejects_malformed() {
        let mut buf = [0; 253];
        let cases: [&[u8]; 8] = [
            // Pointer to itself.
            b"\xc0\x00",
            // Label then a pointer back to that same name's start: a loop.
            b"\x01a\xc0\x00",
            // Forward pointer.
            b"\x00\xc0\x04\x01a\x00",
            // Two names pointing at each other.
            b"\x01a\xc0\x04\x01b\xc0\x00",
            // Label past the end.
            b"\x05ab",
            // Missing terminator.
            b"\x01a",
            // Reserved label types 01 and 10.
            b"\x41a\x00",
            b"\x81a\x00",
        ];
        for case in cases {
            let mut list = DnsNameList::compressed(case);
            let result = loop {
                match list.next_name(&mut buf) {
                    Ok(Some(_)) => continue,
                    other => break other,
                }
            };
            assert_eq!(result, Err(WireError::Malformed), "{case:x?}");
            assert_eq!(list.next_name(&mut buf), Ok(None));
        }
        // A pointer truncated after its first byte.
        let mut list = DnsNameList::compressed(&RFC3397_EXAMPLE[..RFC3397_EXAMPLE.len() - 1]);
        assert!(list.next_name(&mut buf).unwrap().is_some());
        assert_eq!(list.next_name(&mut buf), Err(WireError::Malformed));
        // Pointers are refused in uncompressed lists.
        assert_eq!(
            DnsNameList::uncompressed(RFC3397_EXAMPLE).validate(),
            Err(WireError::Malformed)
        );
        // Over 255 bytes through pointers: each name adds a 63-byte label
        // to the previous one.
        let mut data = Vec::new();
        let mut prev: Option<u16> = None;
        for _ in 0..5 {
            let start = data.len();
            data.push(63);
            data.extend_from_slice(&[b'x'; 63]);
            match prev {
                None => data.push(0),
                Some(p) => data.extend_from_slice(&(0xc000u16 | p).to_be_bytes()),
            }
            prev = Some(start as u16);
        }
        let mut list = DnsNameList::compressed(&data);
        for _ in 0..3 {
            assert!(list.next_name(&mut buf).unwrap().is_some());
        }
        assert_eq!(list.next_name(&mut buf), Err(WireError::Malformed));
        // Too small an output buffer.
        let mut list = DnsNameList::compressed(RFC3397_EXAMPLE);
        assert_eq!(
            list.next_name(&mut buf[..12]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(DnsNameList::compressed(RFC3397_EXAMPLE).validate(), Ok(2));
    }

    #[test]
    fn every_truncation_before_end_is_rejected() {
        for fixture in FIXTURES {
            let msg = hex(fixture);
            let starts = option_starts(&msg);
            let end = end_of_options(&msg);
            for n in 0..msg.len() {
                match DhcpRepr::parse(&msg[..n]) {
                    Err(e) => {
                        assert!(n < end, "len {n} of {}", msg.len());
                        // Cut in the header or cleanly between options:
                        // Truncated; inside an option: Malformed.
                        let clean = n < OPTIONS_OFFSET || starts.contains(&n);
                        let expected = if clean {
                            WireError::Truncated
                        } else {
                            WireError::Malformed
                        };
                        assert_eq!(e, expected, "len {n}");
                    }
                    // Only trailing padding after `end` may go.
                    Ok(repr) => {
                        assert!(n >= end, "len {n} accepted, end at {end}");
                        let mut out = vec![0; n];
                        assert_eq!(repr.emit(&mut out), Ok(n));
                        assert_eq!(out, msg[..n]);
                    }
                }
            }
        }
        // Cut in the header or right before `end`: Truncated.
        let msg = hex(UDHCPC_REQUEST);
        assert_eq!(
            DhcpRepr::parse(&msg[..HEADER_LEN + 2]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            DhcpRepr::parse(&msg[..msg.len() - 1]).err(),
            Some(WireError::Truncated)
        );
        // Cut inside the client-id value: its length runs past the end.
        assert_eq!(
            DhcpRepr::parse(&msg[..msg.len() - 3]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn malformed_variants() {
        let msg = hex(UDHCPC_DISCOVER);
        let at = |code: u8| {
            let mut pos = OPTIONS_OFFSET;
            while msg[pos] != code {
                pos += 2 + usize::from(msg[pos + 1]);
            }
            pos
        };
        let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = msg.clone();
            f(&mut m);
            DhcpRepr::parse(&m).err()
        };
        // Wrong or missing magic cookie.
        assert_eq!(
            mutate(&|m| m[HEADER_LEN + 3] = 0x64),
            Some(WireError::Malformed)
        );
        assert_eq!(
            mutate(&|m| m[HEADER_LEN..OPTIONS_OFFSET].fill(0)),
            Some(WireError::Malformed)
        );
        // Client-id length running past the end of the message.
        assert_eq!(mutate(&|m| m[at(61) + 1] = 200), Some(WireError::Malformed));
        // `end` replaced by a pad: the options never end.
        let end = end_of_options(&msg);
        assert_eq!(mutate(&|m| m[end - 1] = 0), Some(WireError::Truncated));
        // Message type with two bytes (taking the next option's code).
        assert_eq!(mutate(&|m| m[at(53) + 1] = 2), Some(WireError::Malformed));
        // Max message size with one byte.
        assert_eq!(mutate(&|m| m[at(57) + 1] = 1), Some(WireError::Malformed));
        // Hardware address longer than chaddr.
        assert_eq!(mutate(&|m| m[2] = 17), Some(WireError::Malformed));
        // Overload into `file` (vendor-class turned into option 52 with a
        // one-byte value): `file` is all zeros, so it has no `end`.
        let overload = |value: u8| {
            move |m: &mut Vec<u8>| {
                let pos = at(60);
                m[pos..pos + 3].copy_from_slice(&[52, 1, value]);
                m[pos + 3] = 0;
                m[pos + 4..pos + 14].fill(0);
            }
        };
        assert_eq!(mutate(&overload(1)), Some(WireError::Malformed));
        assert_eq!(mutate(&overload(0)), Some(WireError::Malformed));
        assert_eq!(mutate(&overload(4)), Some(WireError::Malformed));
        // With a well-formed `file` area it parses.
        let mut m = msg.clone();
        overload(1)(&mut m);
        m[108] = opt::END;
        assert_eq!(DhcpRepr::parse(&m).unwrap().overload(), 1);
    }

    #[test]
    fn overload_and_long_options_concatenate_in_order() {
        // Client-id split into three instances: options field, then `file`,
        // then `sname` (RFC 3396 §7), under overload 3.
        let mut b = [0; 600];
        let mut builder = DhcpBuilder::new(&mut b).unwrap();
        builder.header.op = BOOTREQUEST;
        builder.push_message_type(DhcpMessageType::Request).unwrap();
        builder.push(opt::CLIENT_ID, b"ab").unwrap();
        builder.push_u8(opt::OVERLOAD, 3).unwrap();
        builder.header.file[..6].copy_from_slice(&[61, 2, b'c', b'd', 0, 255]);
        builder.header.sname[..5].copy_from_slice(&[12, 1, b'h', 61, 1]);
        builder.header.sname[5..7].copy_from_slice(&[b'e', 255]);
        let n = builder.finish().unwrap();
        let repr = DhcpRepr::parse(&b[..n]).unwrap();
        assert_eq!(repr.overload(), 3);
        let codes: Vec<u8> = repr.options().map(|o| o.code).collect();
        assert_eq!(codes, [53, 61, 52, 61, 12, 61]);
        let mut id = [0; 8];
        assert_eq!(repr.concat_option(opt::CLIENT_ID, &mut id), Ok(5));
        assert_eq!(&id[..5], b"abcde");
        assert_eq!(repr.client_id(), Some(&b"ab"[..]));
        assert_eq!(repr.hostname(), Some(&b"h"[..]));
        // A fixed-size option split across areas is reassembled too.
        builder = DhcpBuilder::new(&mut b).unwrap();
        builder.push(opt::SERVER_ID, &[192, 0]).unwrap();
        builder.push_u8(opt::OVERLOAD, 1).unwrap();
        builder.header.file[..5].copy_from_slice(&[54, 2, 2, 1, 255]);
        let n = builder.finish().unwrap();
        let repr = DhcpRepr::parse(&b[..n]).unwrap();
        assert_eq!(repr.server_id(), Some(Ipv4Addr::new(192, 0, 2, 1)));
    }

    #[test]
    fn builder_offer_parses_back() {
        let discover_bytes = hex(UDHCPC_DISCOVER);
        let discover = DhcpRepr::parse(&discover_bytes).unwrap();
        let mut buf = [0; 576];
        let mut builder = DhcpBuilder::new(&mut buf).unwrap();
        builder.header = DhcpHeader::reply_to(discover.header());
        builder.header.yiaddr = [192, 0, 2, 96];
        assert!(builder.is_empty());
        builder.push_message_type(DhcpMessageType::Offer).unwrap();
        builder
            .push_ipv4s(opt::SERVER_ID, &[Ipv4Addr::new(192, 0, 2, 1)])
            .unwrap();
        builder.push_u32(opt::LEASE_TIME, 3600).unwrap();
        builder
            .push_ipv4s(opt::SUBNET_MASK, &[Ipv4Addr::new(255, 255, 255, 0)])
            .unwrap();
        let dns = [Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)];
        builder.push_ipv4s(opt::DNS_SERVERS, &dns).unwrap();
        builder.push_u16(opt::INTERFACE_MTU, 65520).unwrap();
        builder
            .push_search_list(&["eng.apple.com", "marketing.apple.com"])
            .unwrap();
        assert_eq!(builder.len(), OPTIONS_OFFSET + 3 + 6 + 6 + 6 + 10 + 4 + 29);
        let n = builder.finish().unwrap();
        assert_eq!(n, OPTIONS_OFFSET + 64 + 1);

        let offer = DhcpRepr::parse(&buf[..n]).unwrap();
        let hdr = offer.header();
        assert_eq!(hdr.op, BOOTREPLY);
        assert_eq!(hdr.xid(), 0x78ea_746b);
        assert_eq!(hdr.client_mac(), Some(MacAddr([2, 0, 0, 0, 0, 2])));
        assert_eq!(hdr.yiaddr(), Ipv4Addr::new(192, 0, 2, 96));
        assert_eq!(hdr.secs.get(), 0);
        assert_eq!(offer.message_type(), Some(DhcpMessageType::Offer));
        assert_eq!(offer.server_id(), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(offer.lease_time(), Some(3600));
        assert_eq!(
            offer.option(opt::DNS_SERVERS),
            Some(&[192, 0, 2, 53, 192, 0, 2, 54][..])
        );
        assert_eq!(offer.option(opt::INTERFACE_MTU), Some(&[0xff, 0xf0][..]));
        assert_eq!(offer.option(opt::DOMAIN_SEARCH), Some(RFC3397_EXAMPLE));
        // `end` then zero padding.
        let end = end_of_options(&buf[..n]);
        assert_eq!(buf[end - 1], opt::END);
        assert!(buf[end..n].iter().all(|&b| b == 0));
        roundtrip(&buf[..n]);
    }

    #[test]
    fn builder_splits_long_options() {
        let mut buf = [0; 2000];
        let mut builder = DhcpBuilder::new(&mut buf).unwrap();
        let long: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        builder.push(opt::VENDOR_CLASS_ID, &long).unwrap();
        builder.push(opt::HOSTNAME, b"").unwrap();
        // A long search list goes through push_with and is split in place.
        let domains: Vec<String> = (0..40)
            .map(|i| format!("host{i:02}.zone{i:02}.example"))
            .collect();
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        builder.push_search_list(&domains).unwrap();
        let n = builder.finish().unwrap();
        let repr = DhcpRepr::parse(&buf[..n]).unwrap();
        let sizes: Vec<(u8, usize)> = repr.options().map(|o| (o.code, o.data.len())).collect();
        let mut encoded = [0; 1024];
        let search_len = encode_search_list(&domains, &mut encoded).unwrap();
        // The first name in full, then two labels and a pointer to "example".
        assert_eq!(search_len, 23 + 39 * 16);
        let mut expected = vec![(60, 255), (60, 255), (60, 90), (12, 0)];
        expected.extend([(119, 255), (119, 255), (119, search_len - 510)]);
        assert_eq!(sizes, expected);
        let mut out = [0; 1024];
        assert_eq!(repr.concat_option(opt::VENDOR_CLASS_ID, &mut out), Ok(600));
        assert_eq!(out[..600], long[..]);
        let n = repr.concat_option(opt::DOMAIN_SEARCH, &mut out).unwrap();
        assert_eq!(out[..n], encoded[..search_len]);
        assert_eq!(names(DnsNameList::compressed(&out[..n])), domains);
        // Exactly 255 bytes stay in one instance.
        let mut builder = DhcpBuilder::new(&mut buf).unwrap();
        builder.push(opt::VENDOR_CLASS_ID, &long[..255]).unwrap();
        assert_eq!(builder.len(), OPTIONS_OFFSET + 257);
    }

    #[test]
    fn builder_refuses_what_does_not_fit() {
        let mut small = [0; OPTIONS_OFFSET - 1];
        assert_eq!(
            DhcpBuilder::new(&mut small).err(),
            Some(WireError::BufferTooSmall)
        );
        let mut buf = [0; 320];
        let mut builder = DhcpBuilder::new(&mut buf).unwrap();
        assert_eq!(builder.push(opt::PAD, &[]), Err(WireError::Malformed));
        assert_eq!(builder.push(opt::END, &[]), Err(WireError::Malformed));
        assert_eq!(
            builder.push(opt::HOSTNAME, &[b'x'; 79]),
            Err(WireError::BufferTooSmall)
        );
        let (a, b) = ("a".repeat(60), "b".repeat(60));
        assert_eq!(
            builder.push_search_list(&[&a, &b]),
            Err(WireError::BufferTooSmall)
        );
        assert!(builder.is_empty());
        builder.push(opt::HOSTNAME, &[b'x'; 78]).unwrap();
        assert_eq!(builder.len(), 320);
        // No room left for `end`.
        assert_eq!(builder.finish(), Err(WireError::BufferTooSmall));
        // An empty message is `end` then padding up to 300 bytes.
        let mut buf = [0xaa; 400];
        assert_eq!(
            DhcpBuilder::new(&mut buf).unwrap().finish(),
            Ok(MIN_BOOTP_LEN)
        );
        assert_eq!(buf[..4], [0; 4]);
        assert_eq!(buf[HEADER_LEN..OPTIONS_OFFSET], MAGIC_COOKIE);
        assert_eq!(buf[OPTIONS_OFFSET], opt::END);
        assert!(buf[OPTIONS_OFFSET + 1..MIN_BOOTP_LEN]
            .iter()
            .all(|&b| b == 0));
        assert_eq!(buf[MIN_BOOTP_LEN], 0xaa);
        // The minimum length needs room too.
        let mut buf = [0; MIN_BOOTP_LEN - 1];
        assert_eq!(
            DhcpBuilder::new(&mut buf).unwrap().finish(),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn message_type_round_trips() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(DhcpMessageType::from(value)), value);
        }
        assert_eq!(DhcpMessageType::from(8), DhcpMessageType::Inform);
        assert_eq!(DhcpMessageType::from(9), DhcpMessageType::Unknown(9));
    }

    #[test]
    fn option_iter_on_raw_areas() {
        let items: Vec<_> = DhcpOptionIter::new(&[0, 0, 1, 1, 7, 255, 9]).collect();
        assert_eq!(
            items,
            [Ok(DhcpOption {
                code: 1,
                data: &[7]
            })]
        );
        let items: Vec<_> = DhcpOptionIter::new(&[3, 1, 7, 4]).collect();
        assert_eq!(
            items,
            [
                Ok(DhcpOption {
                    code: 3,
                    data: &[7]
                }),
                Err(WireError::Malformed)
            ]
        );
        let items: Vec<_> = DhcpOptionIter::new(&[3, 1]).collect();
        assert_eq!(items, [Err(WireError::Malformed)]);
        let items: Vec<_> = DhcpOptionIter::new(&[0]).collect();
        assert_eq!(items, [Err(WireError::Truncated)]);
    }
}
