//! DHCPv6 messages and options (RFC 8415, RFC 3646).
//!
//! # Layout
//!
//! A client/server message (RFC 8415 §8) is a one-byte message type, a
//! three-byte transaction ID ([`Dhcpv6Header`]) and options up to the end of
//! the datagram. Each option is a 16-bit code, a 16-bit length and the value
//! (RFC 8415 §21.1); some options (IA_NA, IAADDR, IA_TA, IA_PD, IAPREFIX)
//! carry more options after their fixed fields. There is no end marker: the
//! UDP length bounds the message.
//!
//! # Relays
//!
//! Relay-forward and relay-reply messages (RFC 8415 §9) have a different
//! header. We answer guests on a directly attached link and are never
//! behind a relay agent, so [`Dhcpv6Repr::parse`] refuses them as
//! `Unsupported`.
//!
//! # Parsing
//!
//! [`Dhcpv6Repr::parse`] walks every option, and recursively the options
//! nested in IA_NA, IA_TA, IAADDR, IA_PD and IAPREFIX, and checks the
//! lengths of the options it has accessors for, so that those accessors
//! need no error path. The representation keeps the raw options, so
//! emitting it gives back the parsed bytes exactly. Walks are bounded by
//! the bytes present (every option takes at least four), by
//! [`MAX_OPTIONS`] options in all and by [`MAX_DEPTH`] levels of nesting.
//!
//! # Building
//!
//! [`Dhcpv6Builder`] writes a reply into a caller buffer, appending options
//! in order; container options are opened with `begin` and closed with
//! `end`, which back-fills their length, so that nested options are written
//! in place without a scratch buffer.
//!
//! # Domain names
//!
//! The Domain Search List option (24, RFC 3646 §4) holds DNS names in wire
//! form without compression (RFC 8415 §10); it is decoded with
//! [`DnsNameList::uncompressed`] and written by [`encode_domain_list`].

use core::net::Ipv6Addr;

use zerocopy::byteorder::network_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub use super::dhcp::DnsNameList;
use super::dns;
use super::{Result, WireError};
use crate::addr::MacAddr;

/// Length of the client/server message header (RFC 8415 §8).
pub const HEADER_LEN: usize = 4;
/// Length of an option's code and length fields (RFC 8415 §21.1).
pub const OPTION_HEADER_LEN: usize = 4;
/// Most options walked in one message, nested ones included.
pub const MAX_OPTIONS: usize = 512;
/// Deepest nesting of options accepted: options inside IAADDR inside IA_NA
/// are at depth 2, top-level options at 0.
pub const MAX_DEPTH: usize = 4;
/// Shortest DUID: a type code and one byte of identifier (RFC 8415 §11.1).
pub const MIN_DUID_LEN: usize = 3;
/// Longest DUID: a type code and 128 bytes (RFC 8415 §11.1).
pub const MAX_DUID_LEN: usize = 130;
/// DUID type of a link-layer address DUID, DUID-LL (RFC 8415 §11.4).
pub const DUID_LL: u16 = 3;
/// Hardware type of Ethernet in a DUID (IANA "ARP hardware types").
pub const DUID_HW_ETHERNET: u16 = 1;
/// Length of a DUID-LL built from a MAC address.
pub const DUID_LL_LEN: usize = 10;

/// DHCPv6 option codes (RFC 8415 §21, RFC 3646).
pub mod opt {
    /// Client identifier, a DUID (RFC 8415 §21.2).
    pub const CLIENTID: u16 = 1;
    /// Server identifier, a DUID (RFC 8415 §21.3).
    pub const SERVERID: u16 = 2;
    /// Identity association for non-temporary addresses (RFC 8415 §21.4).
    pub const IA_NA: u16 = 3;
    /// Identity association for temporary addresses (RFC 8415 §21.5).
    pub const IA_TA: u16 = 4;
    /// IA address (RFC 8415 §21.6).
    pub const IAADDR: u16 = 5;
    /// Option request (RFC 8415 §21.7).
    pub const ORO: u16 = 6;
    /// Server preference (RFC 8415 §21.8).
    pub const PREFERENCE: u16 = 7;
    /// Elapsed time, in hundredths of a second (RFC 8415 §21.9).
    pub const ELAPSED_TIME: u16 = 8;
    /// Relay message (RFC 8415 §21.10).
    pub const RELAY_MSG: u16 = 9;
    /// Authentication (RFC 8415 §21.11).
    pub const AUTH: u16 = 11;
    /// Server unicast (RFC 8415 §21.12).
    pub const UNICAST: u16 = 12;
    /// Status code (RFC 8415 §21.13).
    pub const STATUS_CODE: u16 = 13;
    /// Rapid commit (RFC 8415 §21.14).
    pub const RAPID_COMMIT: u16 = 14;
    /// User class (RFC 8415 §21.15).
    pub const USER_CLASS: u16 = 15;
    /// Vendor class (RFC 8415 §21.16).
    pub const VENDOR_CLASS: u16 = 16;
    /// Vendor-specific information (RFC 8415 §21.17).
    pub const VENDOR_OPTS: u16 = 17;
    /// Interface-ID (RFC 8415 §21.18).
    pub const INTERFACE_ID: u16 = 18;
    /// Reconfigure message (RFC 8415 §21.19).
    pub const RECONF_MSG: u16 = 19;
    /// Reconfigure accept (RFC 8415 §21.20).
    pub const RECONF_ACCEPT: u16 = 20;
    /// Recursive DNS servers (RFC 3646 §3).
    pub const DNS_SERVERS: u16 = 23;
    /// Domain search list (RFC 3646 §4).
    pub const DOMAIN_LIST: u16 = 24;
    /// Identity association for prefix delegation (RFC 8415 §21.21).
    pub const IA_PD: u16 = 25;
    /// IA prefix (RFC 8415 §21.22).
    pub const IAPREFIX: u16 = 26;
    /// Information refresh time (RFC 8415 §21.23).
    pub const INFORMATION_REFRESH_TIME: u16 = 32;
    /// Client FQDN (RFC 4704).
    pub const CLIENT_FQDN: u16 = 39;
    /// SOL_MAX_RT (RFC 8415 §21.24).
    pub const SOL_MAX_RT: u16 = 82;
    /// INF_MAX_RT (RFC 8415 §21.25).
    pub const INF_MAX_RT: u16 = 83;
}

/// Status codes (RFC 8415 §21.13).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Failure, reason unspecified.
    pub const UNSPEC_FAIL: u16 = 1;
    /// The server has no addresses available for the IA.
    pub const NO_ADDRS_AVAIL: u16 = 2;
    /// Client record (binding) unavailable.
    pub const NO_BINDING: u16 = 3;
    /// The prefix is not appropriate for the link.
    pub const NOT_ON_LINK: u16 = 4;
    /// The client should use the multicast address.
    pub const USE_MULTICAST: u16 = 5;
    /// No prefixes available for delegation.
    pub const NO_PREFIX_AVAIL: u16 = 6;
}

/// The header of a client/server message (RFC 8415 §8).
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct Dhcpv6Header {
    /// Message type ([`Dhcpv6MsgType`]).
    pub msg_type: u8,
    /// Transaction ID, 24 bits in network byte order.
    pub xid: [u8; 3],
}

impl Dhcpv6Header {
    /// A header for `msg_type` with transaction ID `xid` (low 24 bits).
    pub fn new(msg_type: Dhcpv6MsgType, xid: u32) -> Self {
        let [_, a, b, c] = xid.to_be_bytes();
        Self {
            msg_type: msg_type.into(),
            xid: [a, b, c],
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> Dhcpv6MsgType {
        Dhcpv6MsgType::from(self.msg_type)
    }

    /// The transaction ID.
    pub fn xid(&self) -> u32 {
        let [a, b, c] = self.xid;
        u32::from_be_bytes([0, a, b, c])
    }
}

/// DHCPv6 message types (RFC 8415 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dhcpv6MsgType {
    /// SOLICIT (1).
    Solicit,
    /// ADVERTISE (2).
    Advertise,
    /// REQUEST (3).
    Request,
    /// CONFIRM (4).
    Confirm,
    /// RENEW (5).
    Renew,
    /// REBIND (6).
    Rebind,
    /// REPLY (7).
    Reply,
    /// RELEASE (8).
    Release,
    /// DECLINE (9).
    Decline,
    /// RECONFIGURE (10).
    Reconfigure,
    /// INFORMATION-REQUEST (11).
    InformationRequest,
    /// RELAY-FORW (12).
    RelayForw,
    /// RELAY-REPL (13).
    RelayRepl,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for Dhcpv6MsgType {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Solicit,
            2 => Self::Advertise,
            3 => Self::Request,
            4 => Self::Confirm,
            5 => Self::Renew,
            6 => Self::Rebind,
            7 => Self::Reply,
            8 => Self::Release,
            9 => Self::Decline,
            10 => Self::Reconfigure,
            11 => Self::InformationRequest,
            12 => Self::RelayForw,
            13 => Self::RelayRepl,
            other => Self::Unknown(other),
        }
    }
}

impl From<Dhcpv6MsgType> for u8 {
    fn from(value: Dhcpv6MsgType) -> Self {
        match value {
            Dhcpv6MsgType::Solicit => 1,
            Dhcpv6MsgType::Advertise => 2,
            Dhcpv6MsgType::Request => 3,
            Dhcpv6MsgType::Confirm => 4,
            Dhcpv6MsgType::Renew => 5,
            Dhcpv6MsgType::Rebind => 6,
            Dhcpv6MsgType::Reply => 7,
            Dhcpv6MsgType::Release => 8,
            Dhcpv6MsgType::Decline => 9,
            Dhcpv6MsgType::Reconfigure => 10,
            Dhcpv6MsgType::InformationRequest => 11,
            Dhcpv6MsgType::RelayForw => 12,
            Dhcpv6MsgType::RelayRepl => 13,
            Dhcpv6MsgType::Unknown(other) => other,
        }
    }
}

/// One option: its code and value (RFC 8415 §21.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dhcpv6Option<'a> {
    /// Option code.
    pub code: u16,
    /// Option value.
    pub data: &'a [u8],
}

/// Iterator over a sequence of options from untrusted bytes (a message's
/// options, or the options nested in an IA_NA or IAADDR).
///
/// Yields `Err(WireError::Malformed)` for an option header cut short or a
/// length past the end, and nothing after an error. Each option consumes
/// at least four bytes, so the walk is bounded by the input length.
#[derive(Debug, Clone)]
pub struct Dhcpv6Options<'a> {
    rest: &'a [u8],
}

impl<'a> Dhcpv6Options<'a> {
    /// Walk the options in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }
}

impl<'a> Iterator for Dhcpv6Options<'a> {
    type Item = Result<Dhcpv6Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = core::mem::take(&mut self.rest);
        let Some(([c0, c1, l0, l1], after)) = rest.split_first_chunk::<OPTION_HEADER_LEN>() else {
            return Some(Err(WireError::Malformed));
        };
        let code = u16::from_be_bytes([*c0, *c1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let Some((data, after)) = after.split_at_checked(len) else {
            return Some(Err(WireError::Malformed));
        };
        self.rest = after;
        Some(Ok(Dhcpv6Option { code, data }))
    }
}

/// The options of already validated bytes: stops quietly at the first
/// malformed option, which validation has excluded.
fn valid_options(data: &[u8]) -> impl Iterator<Item = Dhcpv6Option<'_>> + Clone {
    Dhcpv6Options::new(data).map_while(|o| o.ok())
}

/// First instance of `code` among validated options.
fn find_option(data: &[u8], code: u16) -> Option<&[u8]> {
    valid_options(data).find(|o| o.code == code).map(|o| o.data)
}

/// Fixed fields of an IA_NA option (RFC 8415 §21.4).
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct IaNaHeader {
    /// Identity association ID, chosen by the client.
    pub iaid: U32,
    /// Seconds until the client contacts the server to renew (T1).
    pub t1: U32,
    /// Seconds until the client contacts any server to rebind (T2).
    pub t2: U32,
}

/// Fixed fields of an IAADDR option (RFC 8415 §21.6).
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct IaAddrHeader {
    /// The IPv6 address.
    pub addr: [u8; 16],
    /// Preferred lifetime, seconds.
    pub preferred: U32,
    /// Valid lifetime, seconds.
    pub valid: U32,
}

/// A parsed IA_NA option (RFC 8415 §21.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaNaRepr<'a> {
    /// Identity association ID.
    pub iaid: u32,
    /// Renewal time T1, seconds.
    pub t1: u32,
    /// Rebinding time T2, seconds.
    pub t2: u32,
    /// The raw options nested after the fixed fields.
    pub options: &'a [u8],
}

impl<'a> IaNaRepr<'a> {
    /// Parse the value of an IA_NA option, checking its nested options.
    ///
    /// # Errors
    ///
    /// `Malformed` if shorter than its 12 fixed bytes or a nested option is
    /// malformed; `TooMany` past the option or nesting limits.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut budget = MAX_OPTIONS;
        check_option(opt::IA_NA, data, 1, &mut budget)?;
        Self::parse_unchecked(data).ok_or(WireError::Malformed)
    }

    fn parse_unchecked(data: &'a [u8]) -> Option<Self> {
        let (head, options) = IaNaHeader::ref_from_prefix(data).ok()?;
        Some(Self {
            iaid: head.iaid.get(),
            t1: head.t1.get(),
            t2: head.t2.get(),
            options,
        })
    }

    /// The nested options; stops at a malformed one (parse rejects those).
    pub fn options(&self) -> impl Iterator<Item = Dhcpv6Option<'a>> + Clone {
        valid_options(self.options)
    }

    /// The IAADDR options inside, in order.
    pub fn addresses(&self) -> impl Iterator<Item = IaAddrRepr<'a>> + Clone {
        self.options()
            .filter(|o| o.code == opt::IAADDR)
            .filter_map(|o| IaAddrRepr::parse_unchecked(o.data))
    }

    /// The status code inside, if any.
    pub fn status_code(&self) -> Option<StatusCodeRepr<'a>> {
        find_option(self.options, opt::STATUS_CODE).and_then(StatusCodeRepr::parse_unchecked)
    }
}

/// A parsed IAADDR option (RFC 8415 §21.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaAddrRepr<'a> {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
    /// Valid lifetime, seconds.
    pub valid: u32,
    /// The raw options nested after the fixed fields.
    pub options: &'a [u8],
}

impl<'a> IaAddrRepr<'a> {
    /// Parse the value of an IAADDR option, checking its nested options.
    ///
    /// # Errors
    ///
    /// `Malformed` if shorter than its 24 fixed bytes or a nested option is
    /// malformed; `TooMany` past the option or nesting limits.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut budget = MAX_OPTIONS;
        check_option(opt::IAADDR, data, 1, &mut budget)?;
        Self::parse_unchecked(data).ok_or(WireError::Malformed)
    }

    fn parse_unchecked(data: &'a [u8]) -> Option<Self> {
        let (head, options) = IaAddrHeader::ref_from_prefix(data).ok()?;
        Some(Self {
            addr: Ipv6Addr::from(head.addr),
            preferred: head.preferred.get(),
            valid: head.valid.get(),
            options,
        })
    }

    /// The nested options; stops at a malformed one (parse rejects those).
    pub fn options(&self) -> impl Iterator<Item = Dhcpv6Option<'a>> + Clone {
        valid_options(self.options)
    }

    /// The status code inside, if any.
    pub fn status_code(&self) -> Option<StatusCodeRepr<'a>> {
        find_option(self.options, opt::STATUS_CODE).and_then(StatusCodeRepr::parse_unchecked)
    }
}

/// A parsed Status Code option (RFC 8415 §21.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCodeRepr<'a> {
    /// The status ([`status`] constants).
    pub code: u16,
    /// The message, UTF-8 text for humans (not checked).
    pub message: &'a [u8],
}

impl<'a> StatusCodeRepr<'a> {
    /// Parse the value of a Status Code option.
    ///
    /// # Errors
    ///
    /// `Malformed` if shorter than the two-byte code.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        Self::parse_unchecked(data).ok_or(WireError::Malformed)
    }

    fn parse_unchecked(data: &'a [u8]) -> Option<Self> {
        let (code, message) = data.split_first_chunk::<2>()?;
        Some(Self {
            code: u16::from_be_bytes(*code),
            message,
        })
    }
}

/// Check every option in `data`, `depth` levels deep, spending `budget`.
fn check_options(data: &[u8], depth: usize, budget: &mut usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooMany);
    }
    for option in Dhcpv6Options::new(data) {
        let option = option?;
        *budget = budget.checked_sub(1).ok_or(WireError::TooMany)?;
        check_option(option.code, option.data, depth, budget)?;
    }
    Ok(())
}

/// Check the value of one option we know, and the options nested in it.
fn check_option(code: u16, data: &[u8], depth: usize, budget: &mut usize) -> Result<()> {
    let nested = |fixed: usize, budget: &mut usize| {
        let rest = data.get(fixed..).ok_or(WireError::Malformed)?;
        check_options(rest, depth + 1, budget)
    };
    let ok = match code {
        opt::CLIENTID | opt::SERVERID => (MIN_DUID_LEN..=MAX_DUID_LEN).contains(&data.len()),
        opt::IA_NA | opt::IA_PD => return nested(12, budget),
        opt::IA_TA => return nested(4, budget),
        opt::IAADDR => return nested(24, budget),
        opt::IAPREFIX => return nested(25, budget),
        opt::ORO => data.len() % 2 == 0,
        opt::PREFERENCE => data.len() == 1,
        opt::ELAPSED_TIME => data.len() == 2,
        opt::STATUS_CODE => data.len() >= 2,
        opt::RAPID_COMMIT => data.is_empty(),
        opt::DNS_SERVERS => data.len() % 16 == 0,
        opt::DOMAIN_LIST => return DnsNameList::uncompressed(data).validate().map(drop),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(WireError::Malformed)
    }
}

/// A parsed client/server DHCPv6 message, borrowing the header and the raw
/// options.
///
/// Only [`Dhcpv6Repr::parse`] builds one, so its options are known to be
/// well formed.
#[derive(Debug, Clone, Copy)]
pub struct Dhcpv6Repr<'a> {
    header: &'a Dhcpv6Header,
    options: &'a [u8],
}

impl<'a> Dhcpv6Repr<'a> {
    /// Parse a DHCPv6 message (the UDP payload).
    ///
    /// # Errors
    ///
    /// `Truncated` if shorter than the 4-byte header; `Unsupported` for
    /// relay messages (see the module documentation); `Malformed` for an
    /// option length past the end of the message or of its container, a
    /// truncated IA_NA or IAADDR, or a bad length of a client or server ID,
    /// ORO, preference, elapsed time, status code, rapid commit or DNS
    /// servers option, or a bad name in the domain list; `TooMany` past
    /// [`MAX_OPTIONS`] or [`MAX_DEPTH`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (header, options) =
            Dhcpv6Header::ref_from_prefix(bytes).map_err(|_| WireError::Truncated)?;
        if matches!(
            header.msg_type(),
            Dhcpv6MsgType::RelayForw | Dhcpv6MsgType::RelayRepl
        ) {
            return Err(WireError::Unsupported);
        }
        let mut budget = MAX_OPTIONS;
        check_options(options, 0, &mut budget)?;
        Ok(Self { header, options })
    }

    /// The message header.
    pub fn header(&self) -> &'a Dhcpv6Header {
        self.header
    }

    /// The message type.
    pub fn msg_type(&self) -> Dhcpv6MsgType {
        self.header.msg_type()
    }

    /// The transaction ID (24 bits).
    pub fn xid(&self) -> u32 {
        self.header.xid()
    }

    /// The raw options after the header.
    pub fn options_bytes(&self) -> &'a [u8] {
        self.options
    }

    /// The top-level options, in order.
    pub fn options(&self) -> impl Iterator<Item = Dhcpv6Option<'a>> + Clone {
        valid_options(self.options)
    }

    /// The value of the first top-level option `code`.
    pub fn option(&self, code: u16) -> Option<&'a [u8]> {
        find_option(self.options, code)
    }

    /// The client DUID, raw (option 1, RFC 8415 §21.2).
    pub fn client_id(&self) -> Option<&'a [u8]> {
        self.option(opt::CLIENTID)
    }

    /// The server DUID, raw (option 2, RFC 8415 §21.3).
    pub fn server_id(&self) -> Option<&'a [u8]> {
        self.option(opt::SERVERID)
    }

    /// Every IA_NA option, in order (option 3, RFC 8415 §21.4).
    pub fn ia_nas(&self) -> impl Iterator<Item = IaNaRepr<'a>> + Clone {
        self.options()
            .filter(|o| o.code == opt::IA_NA)
            .filter_map(|o| IaNaRepr::parse_unchecked(o.data))
    }

    /// The first IA_NA option.
    pub fn ia_na(&self) -> Option<IaNaRepr<'a>> {
        self.ia_nas().next()
    }

    /// The option codes the client requests (option 6, RFC 8415 §21.7);
    /// empty without an ORO.
    pub fn oro(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        let data = self.option(opt::ORO).unwrap_or(&[]);
        data.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    /// Whether the ORO asks for option `code`.
    pub fn requests(&self, code: u16) -> bool {
        self.oro().any(|c| c == code)
    }

    /// Elapsed time in hundredths of a second (option 8, RFC 8415 §21.9).
    pub fn elapsed_time(&self) -> Option<u16> {
        let data = self.option(opt::ELAPSED_TIME)?;
        Some(u16::from_be_bytes(*data.first_chunk::<2>()?))
    }

    /// Whether the message carries Rapid Commit (option 14, RFC 8415
    /// §21.14).
    pub fn rapid_commit(&self) -> bool {
        self.option(opt::RAPID_COMMIT).is_some()
    }

    /// The top-level status code (option 13, RFC 8415 §21.13).
    pub fn status_code(&self) -> Option<StatusCodeRepr<'a>> {
        self.option(opt::STATUS_CODE)
            .and_then(StatusCodeRepr::parse_unchecked)
    }

    /// The recursive DNS servers (option 23, RFC 3646 §3); empty without
    /// the option.
    pub fn dns_servers(&self) -> impl Iterator<Item = Ipv6Addr> + Clone + 'a {
        let data = self.option(opt::DNS_SERVERS).unwrap_or(&[]);
        data.chunks_exact(16)
            .filter_map(|c| <[u8; 16]>::try_from(c).ok())
            .map(Ipv6Addr::from)
    }

    /// The domain search list (option 24, RFC 3646 §4), uncompressed names.
    pub fn domain_list(&self) -> Option<DnsNameList<'a>> {
        self.option(opt::DOMAIN_LIST).map(DnsNameList::uncompressed)
    }

    /// Bytes [`Dhcpv6Repr::emit`] writes: exactly the parsed message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Write the message back as parsed. Returns the length written.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` if `buf` is shorter than [`Dhcpv6Repr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let (head, options) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(self.header.as_bytes());
        options.copy_from_slice(self.options);
        Ok(len)
    }
}

/// A DUID-LL for an Ethernet MAC address (RFC 8415 §11.4).
pub fn duid_ll(mac: MacAddr) -> [u8; DUID_LL_LEN] {
    let mut duid = [0; DUID_LL_LEN];
    duid[..2].copy_from_slice(&DUID_LL.to_be_bytes());
    duid[2..4].copy_from_slice(&DUID_HW_ETHERNET.to_be_bytes());
    duid[4..].copy_from_slice(&mac.0);
    duid
}

/// Encode a domain search list (option 24 value, RFC 3646 §4) into `out`:
/// each name uncompressed in DNS wire form (RFC 8415 §10). Returns the
/// length written.
///
/// # Errors
///
/// `Malformed` for an empty label, a label over 63 bytes or a name over 255
/// bytes; `BufferTooSmall` if `out` is too short.
pub fn encode_domain_list(domains: &[&str], out: &mut [u8]) -> Result<usize> {
    domains.iter().try_fold(0, |at, name| {
        Ok(at + dns::encode_name(name, out.get_mut(at..).ok_or(WireError::BufferTooSmall)?)?)
    })
}

/// Writes a new DHCPv6 message (a reply) into a caller buffer, without
/// allocating.
///
/// Options are appended in order. A container option (IA_NA, IAADDR) is
/// opened with [`Dhcpv6Builder::begin`] or its typed variants, filled with
/// further options, and closed with [`Dhcpv6Builder::end`], which writes
/// its length. A failed push leaves the message as it was.
#[derive(Debug)]
pub struct Dhcpv6Builder<'b> {
    buf: &'b mut [u8],
    len: usize,
    open: [usize; MAX_DEPTH],
    depth: usize,
}

impl<'b> Dhcpv6Builder<'b> {
    /// Start a message of type `msg_type` with transaction ID `xid` (low 24
    /// bits) in `buf`.
    ///
    /// # Errors
    ///
    /// `BufferTooSmall` if `buf` cannot hold the header.
    pub fn new(buf: &'b mut [u8], msg_type: Dhcpv6MsgType, xid: u32) -> Result<Self> {
        let head = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        head.copy_from_slice(Dhcpv6Header::new(msg_type, xid).as_bytes());
        Ok(Self {
            buf,
            len: HEADER_LEN,
            open: [0; MAX_DEPTH],
            depth: 0,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no option has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Append option `code` whose value `encode` writes into the space it is
    /// given, returning its length.
    ///
    /// # Errors
    ///
    /// Any error of `encode`; `BufferTooSmall` if it does not fit;
    /// `BadLength` if the value exceeds 65535 bytes.
    pub fn push_with(
        &mut self,
        code: u16,
        encode: impl FnOnce(&mut [u8]) -> Result<usize>,
    ) -> Result<()> {
        let start = self.len;
        let value = self
            .buf
            .get_mut(start + OPTION_HEADER_LEN..)
            .ok_or(WireError::BufferTooSmall)?;
        let n = encode(value)?;
        if n > value.len() {
            return Err(WireError::BufferTooSmall);
        }
        let n16 = u16::try_from(n).map_err(|_| WireError::BadLength)?;
        let head = self
            .buf
            .get_mut(start..start + OPTION_HEADER_LEN)
            .ok_or(WireError::BufferTooSmall)?;
        head[..2].copy_from_slice(&code.to_be_bytes());
        head[2..].copy_from_slice(&n16.to_be_bytes());
        self.len = start + OPTION_HEADER_LEN + n;
        Ok(())
    }

    /// Append option `code` with value `data`.
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push(&mut self, code: u16, data: &[u8]) -> Result<()> {
        self.push_with(code, |out| {
            out.get_mut(..data.len())
                .ok_or(WireError::BufferTooSmall)?
                .copy_from_slice(data);
            Ok(data.len())
        })
    }

    /// Open container option `code`: its fixed fields and nested options
    /// follow, until [`Dhcpv6Builder::end`].
    ///
    /// # Errors
    ///
    /// `TooMany` past [`MAX_DEPTH`] open options; `BufferTooSmall` if the
    /// option header does not fit.
    pub fn begin(&mut self, code: u16) -> Result<()> {
        let slot = self.open.get_mut(self.depth).ok_or(WireError::TooMany)?;
        let head = self.buf.get_mut(self.len..self.len + OPTION_HEADER_LEN);
        let head = head.ok_or(WireError::BufferTooSmall)?;
        head[..2].copy_from_slice(&code.to_be_bytes());
        head[2..].fill(0);
        *slot = self.len;
        self.depth += 1;
        self.len += OPTION_HEADER_LEN;
        Ok(())
    }

    /// Close the innermost open option, back-filling its length.
    ///
    /// # Errors
    ///
    /// `Malformed` if no option is open; `BadLength` if its value exceeds
    /// 65535 bytes.
    pub fn end(&mut self) -> Result<()> {
        let depth = self.depth.checked_sub(1).ok_or(WireError::Malformed)?;
        let start = *self.open.get(depth).ok_or(WireError::Malformed)?;
        let n = self.len - start - OPTION_HEADER_LEN;
        let n16 = u16::try_from(n).map_err(|_| WireError::BadLength)?;
        let len_field = self
            .buf
            .get_mut(start + 2..start + 4)
            .ok_or(WireError::BufferTooSmall)?;
        len_field.copy_from_slice(&n16.to_be_bytes());
        self.depth = depth;
        Ok(())
    }

    /// Append raw bytes inside the open option (its fixed fields).
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.buf.get_mut(self.len..self.len + bytes.len());
        out.ok_or(WireError::BufferTooSmall)?.copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    /// Open an option with fixed fields, undoing everything on failure.
    fn begin_fixed(&mut self, code: u16, fixed: &[u8]) -> Result<()> {
        let (len, depth) = (self.len, self.depth);
        let result = self.begin(code).and_then(|()| self.put(fixed));
        if result.is_err() {
            (self.len, self.depth) = (len, depth);
        }
        result
    }

    /// Open an IA_NA option (RFC 8415 §21.4); close it with
    /// [`Dhcpv6Builder::end`].
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::begin`].
    pub fn begin_ia_na(&mut self, iaid: u32, t1: u32, t2: u32) -> Result<()> {
        let head = IaNaHeader {
            iaid: iaid.into(),
            t1: t1.into(),
            t2: t2.into(),
        };
        self.begin_fixed(opt::IA_NA, head.as_bytes())
    }

    /// Open an IAADDR option (RFC 8415 §21.6), normally inside an IA_NA;
    /// close it with [`Dhcpv6Builder::end`].
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::begin`].
    pub fn begin_ia_addr(&mut self, addr: Ipv6Addr, preferred: u32, valid: u32) -> Result<()> {
        let head = IaAddrHeader {
            addr: addr.octets(),
            preferred: preferred.into(),
            valid: valid.into(),
        };
        self.begin_fixed(opt::IAADDR, head.as_bytes())
    }

    /// Append a Status Code option (RFC 8415 §21.13).
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push_status_code(&mut self, code: u16, message: &str) -> Result<()> {
        self.push_with(opt::STATUS_CODE, |out| {
            let len = 2 + message.len();
            let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
            let (head, text) = out.split_at_mut(2);
            head.copy_from_slice(&code.to_be_bytes());
            text.copy_from_slice(message.as_bytes());
            Ok(len)
        })
    }

    /// Append the server identifier as a DUID-LL of `mac` (RFC 8415 §21.3,
    /// §11.4).
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push_server_id_ll(&mut self, mac: MacAddr) -> Result<()> {
        self.push(opt::SERVERID, &duid_ll(mac))
    }

    /// Append the client identifier, echoing the client's DUID (RFC 8415
    /// §21.2).
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push_client_id(&mut self, duid: &[u8]) -> Result<()> {
        self.push(opt::CLIENTID, duid)
    }

    /// Append an empty Rapid Commit option (RFC 8415 §21.14).
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push_rapid_commit(&mut self) -> Result<()> {
        self.push(opt::RAPID_COMMIT, &[])
    }

    /// Append a server Preference option (RFC 8415 §21.8).
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push_preference(&mut self, preference: u8) -> Result<()> {
        self.push(opt::PREFERENCE, &[preference])
    }

    /// Append the recursive DNS servers option (RFC 3646 §3).
    ///
    /// # Errors
    ///
    /// As [`Dhcpv6Builder::push_with`].
    pub fn push_dns_servers(&mut self, servers: &[Ipv6Addr]) -> Result<()> {
        self.push_with(opt::DNS_SERVERS, |out| {
            let len = servers.len() * 16;
            let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
            for (slot, addr) in out.chunks_exact_mut(16).zip(servers) {
                slot.copy_from_slice(&addr.octets());
            }
            Ok(len)
        })
    }

    /// Append the domain search list option, names uncompressed (RFC 3646
    /// §4, RFC 8415 §10).
    ///
    /// # Errors
    ///
    /// As [`encode_domain_list`] and [`Dhcpv6Builder::push_with`].
    pub fn push_domain_list(&mut self, domains: &[&str]) -> Result<()> {
        self.push_with(opt::DOMAIN_LIST, |out| encode_domain_list(domains, out))
    }

    /// Finish the message, returning its length.
    ///
    /// # Errors
    ///
    /// `Malformed` if an option opened with `begin` is still open.
    pub fn finish(self) -> Result<usize> {
        if self.depth != 0 {
            return Err(WireError::Malformed);
        }
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on a veth pair between two namespaces: ISC dhclient 4.4
    // (`-6`, `-6 -S`, and `-6` with `send dhcp6.rapid-commit`) against
    // dnsmasq 2.90 serving 2001:db8:1::100-1ff with DNS servers
    // 2001:db8:1::53 and ::54 and search list "example.com sub.example.com".
    const SOLICIT: &str = concat!(
        "010fef350001000e0001000132950b0c02000000000200060008001700180027001f0008000200000003000c00000002",
        "00000e1000001518",
    );
    const ADVERTISE: &str = concat!(
        "020fef350001000e0001000132950b0c0200000000020002000e0001000132950af50200000000010003002800000002",
        "00005460000093a80005001820010db80001000000000000000001280000a8c00000a8c0000d00090000737563636573",
        "7300070001000018001e076578616d706c6503636f6d0003737562076578616d706c6503636f6d000017002020010db8",
        "00010000000000000000005320010db8000100000000000000000054",
    );
    const REQUEST: &str = concat!(
        "03c1bede0001000e0001000132950b0c0200000000020002000e0001000132950af50200000000010006000800170018",
        "0027001f000800020000000300280000000200000e10000015180005001820010db80001000000000000000001280000",
        "1c2000001d4c",
    );
    const REPLY: &str = concat!(
        "07c1bede0001000e0001000132950b0c0200000000020002000e0001000132950af50200000000010003002800000002",
        "00000e100000189c0005001820010db800010000000000000000012800001c2000001d4c000d00090000737563636573",
        "730018001e076578616d706c6503636f6d0003737562076578616d706c6503636f6d000017002020010db80001000000",
        "0000000000005320010db8000100000000000000000054",
    );
    const INFORMATION_REQUEST: &str =
        "0b7b23c60001000a0003000102000000000200060008001700180027001f000800020000";
    const INFORMATION_REPLY: &str = concat!(
        "077b23c60001000a000300010200000000020002000e0001000132950af50200000000010018001e076578616d706c65",
        "03636f6d0003737562076578616d706c6503636f6d000017002020010db800010000000000000000005320010db80001",
        "00000000000000000054002000040000a8c0",
    );
    const RAPID_SOLICIT: &str = concat!(
        "017d03980001000e0001000132950b160200000000020006000400170018000800020000000e00000003000c00000002",
        "00000e1000001518",
    );
    const RAPID_REPLY: &str = concat!(
        "077d03980001000e0001000132950b160200000000020002000e0001000132950af5020000000001000e000000030028",
        "0000000200005460000093a80005001820010db80001000000000000000001320000a8c00000a8c0000d000900007375",
        "636365737300070001000018001e076578616d706c6503636f6d0003737562076578616d706c6503636f6d0000170020",
        "20010db800010000000000000000005320010db8000100000000000000000054",
    );

    const FIXTURES: [&str; 8] = [
        SOLICIT,
        ADVERTISE,
        REQUEST,
        REPLY,
        INFORMATION_REQUEST,
        INFORMATION_REPLY,
        RAPID_SOLICIT,
        RAPID_REPLY,
    ];

    /// dhclient's DUID-LLT: type 1, hardware 1, time 0x32950b0c, its MAC.
    const CLIENT_DUID: [u8; 14] = [0, 1, 0, 1, 0x32, 0x95, 0x0b, 0x0c, 2, 0, 0, 0, 0, 2];
    /// dnsmasq's DUID-LLT.
    const SERVER_DUID: [u8; 14] = [0, 1, 0, 1, 0x32, 0x95, 0x0a, 0xf5, 2, 0, 0, 0, 0, 1];
    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn addr(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, last)
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

    /// Offsets of the top-level option boundaries, the end included.
    fn boundaries(msg: &[u8]) -> Vec<usize> {
        let mut pos = HEADER_LEN;
        let mut out = vec![pos];
        while pos < msg.len() {
            pos +=
                OPTION_HEADER_LEN + usize::from(u16::from_be_bytes([msg[pos + 2], msg[pos + 3]]));
            out.push(pos);
        }
        out
    }

    /// Offset of the first top-level option `code`.
    fn find(msg: &[u8], code: u16) -> usize {
        let b = boundaries(msg);
        *b.iter()
            .find(|&&p| u16::from_be_bytes([msg[p], msg[p + 1]]) == code)
            .unwrap()
    }

    #[test]
    fn captured_messages_reemit_exactly() {
        for fixture in FIXTURES {
            let msg = hex(fixture);
            let repr = Dhcpv6Repr::parse(&msg).unwrap();
            assert_eq!(repr.buffer_len(), msg.len());
            let mut out = vec![0; msg.len()];
            assert_eq!(repr.emit(&mut out), Ok(msg.len()));
            assert_eq!(out, msg);
            assert_eq!(
                repr.emit(&mut out[..msg.len() - 1]),
                Err(WireError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn solicit_fields() {
        let msg = hex(SOLICIT);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Solicit);
        assert_eq!(repr.xid(), 0x0f_ef35);
        assert_eq!(repr.client_id(), Some(&CLIENT_DUID[..]));
        assert_eq!(repr.server_id(), None);
        assert_eq!(repr.oro().collect::<Vec<_>>(), [23, 24, 39, 31]);
        assert!(repr.requests(opt::DNS_SERVERS));
        assert!(!repr.requests(opt::INFORMATION_REFRESH_TIME));
        assert_eq!(repr.elapsed_time(), Some(0));
        assert!(!repr.rapid_commit());
        let ia = repr.ia_na().unwrap();
        assert_eq!((ia.iaid, ia.t1, ia.t2), (2, 3600, 5400));
        assert_eq!(ia.addresses().count(), 0);
        assert_eq!(repr.ia_nas().count(), 1);
        let codes: Vec<u16> = repr.options().map(|o| o.code).collect();
        assert_eq!(codes, [1, 6, 8, 3]);
    }

    #[test]
    fn advertise_fields() {
        let msg = hex(ADVERTISE);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Advertise);
        assert_eq!(repr.xid(), 0x0f_ef35);
        assert_eq!(repr.client_id(), Some(&CLIENT_DUID[..]));
        assert_eq!(repr.server_id(), Some(&SERVER_DUID[..]));
        let ia = repr.ia_na().unwrap();
        assert_eq!((ia.iaid, ia.t1, ia.t2), (2, 21600, 37800));
        let addrs: Vec<_> = ia.addresses().collect();
        assert_eq!(addrs.len(), 1);
        assert_eq!(
            (addrs[0].addr, addrs[0].preferred, addrs[0].valid),
            (addr(0x128), 43200, 43200)
        );
        assert_eq!(addrs[0].options().count(), 0);
        assert_eq!(ia.status_code(), None);
        let status = repr.status_code().unwrap();
        assert_eq!(
            (status.code, status.message),
            (status::SUCCESS, &b"success"[..])
        );
        assert_eq!(repr.option(opt::PREFERENCE), Some(&[0][..]));
        assert_eq!(
            repr.dns_servers().collect::<Vec<_>>(),
            [addr(0x53), addr(0x54)]
        );
        assert_eq!(
            names(repr.domain_list().unwrap()),
            ["example.com", "sub.example.com"]
        );
    }

    #[test]
    fn request_and_reply_fields() {
        let msg = hex(REQUEST);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Request);
        assert_eq!(repr.xid(), 0xc1_bede);
        assert_eq!(repr.server_id(), Some(&SERVER_DUID[..]));
        let ia = repr.ia_na().unwrap();
        assert_eq!((ia.iaid, ia.t1, ia.t2), (2, 3600, 5400));
        let a = ia.addresses().next().unwrap();
        assert_eq!((a.addr, a.preferred, a.valid), (addr(0x128), 7200, 7500));

        let msg = hex(REPLY);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Reply);
        assert_eq!(repr.xid(), 0xc1_bede);
        let ia = repr.ia_na().unwrap();
        assert_eq!((ia.t1, ia.t2), (3600, 6300));
        assert_eq!(repr.status_code().map(|s| s.code), Some(status::SUCCESS));
        assert_eq!(repr.option(opt::PREFERENCE), None);
    }

    #[test]
    fn information_request_and_rapid_commit_fields() {
        let msg = hex(INFORMATION_REQUEST);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::InformationRequest);
        assert_eq!(repr.xid(), 0x7b_23c6);
        // dhclient -S identifies itself with a DUID-LL.
        assert_eq!(repr.client_id(), Some(&duid_ll(CLIENT_MAC)[..]));
        assert_eq!(repr.ia_na(), None);

        let msg = hex(INFORMATION_REPLY);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Reply);
        assert_eq!(
            repr.option(opt::INFORMATION_REFRESH_TIME),
            Some(&43200u32.to_be_bytes()[..])
        );
        assert_eq!(repr.dns_servers().count(), 2);

        let msg = hex(RAPID_SOLICIT);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert!(repr.rapid_commit());
        assert_eq!(repr.oro().collect::<Vec<_>>(), [23, 24]);
        let msg = hex(RAPID_REPLY);
        let repr = Dhcpv6Repr::parse(&msg).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Reply);
        assert!(repr.rapid_commit());
        assert_eq!(
            repr.ia_na().unwrap().addresses().next().unwrap().addr,
            addr(0x132)
        );
    }

    #[test]
    fn truncations_rejected_except_at_option_boundaries() {
        // DHCPv6 has no end marker: a cut between top-level options is a
        // shorter valid message; any other cut leaves a length past the end.
        for fixture in FIXTURES {
            let msg = hex(fixture);
            let bounds = boundaries(&msg);
            for n in 0..msg.len() {
                let result = Dhcpv6Repr::parse(&msg[..n]);
                if n < HEADER_LEN {
                    assert_eq!(result.err(), Some(WireError::Truncated));
                } else if bounds.contains(&n) {
                    let mut out = vec![0; n];
                    assert_eq!(result.unwrap().emit(&mut out), Ok(n));
                    assert_eq!(out, msg[..n]);
                } else {
                    assert_eq!(result.err(), Some(WireError::Malformed), "len {n}");
                }
            }
        }
    }

    #[test]
    fn malformed_variants() {
        let parse = |fixture: &str, f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = hex(fixture);
            f(&mut m);
            Dhcpv6Repr::parse(&m).err()
        };
        let set_len = |m: &mut Vec<u8>, at: usize, len: u16| {
            m[at + 2..at + 4].copy_from_slice(&len.to_be_bytes())
        };
        // Relay messages are refused.
        assert_eq!(parse(SOLICIT, &|m| m[0] = 12), Some(WireError::Unsupported));
        assert_eq!(parse(REPLY, &|m| m[0] = 13), Some(WireError::Unsupported));
        // Last option's length past the end of the message.
        assert_eq!(
            parse(SOLICIT, &|m| set_len(m, find(m, opt::IA_NA), 13)),
            Some(WireError::Malformed)
        );
        // IA_NA shorter than its fixed fields.
        assert_eq!(
            parse(SOLICIT, &|m| set_len(m, find(m, opt::IA_NA), 8)),
            Some(WireError::Malformed)
        );
        // IA_NA cut inside its IAADDR: the nested length runs past it.
        let truncated_ia = |m: &mut Vec<u8>| {
            let at = find(m, opt::IA_NA);
            set_len(m, at, 40 - 4);
            m.drain(at + 4 + 36..at + 4 + 40);
        };
        assert_eq!(parse(REQUEST, &truncated_ia), Some(WireError::Malformed));
        // IAADDR shorter than its fixed fields (and IA_NA shrunk to match).
        let short_addr = |m: &mut Vec<u8>| {
            let at = find(m, opt::IA_NA);
            set_len(m, at, 40 - 4);
            set_len(m, at + 16, 24 - 4);
            m.drain(at + 4 + 36..at + 4 + 40);
        };
        assert_eq!(parse(REQUEST, &short_addr), Some(WireError::Malformed));
        // DNS servers not a multiple of 16 bytes.
        let short_dns = |m: &mut Vec<u8>| {
            set_len(m, find(m, opt::DNS_SERVERS), 31);
            m.pop();
        };
        assert_eq!(parse(ADVERTISE, &short_dns), Some(WireError::Malformed));
        // A compression pointer in the domain list.
        let pointer = |m: &mut Vec<u8>| {
            let at = find(m, opt::DOMAIN_LIST) + 4 + 13;
            m[at..at + 2].copy_from_slice(&[0xc0, 0x04]);
        };
        assert_eq!(parse(ADVERTISE, &pointer), Some(WireError::Malformed));
        // A domain list name without its terminator.
        let unterminated = |m: &mut Vec<u8>| {
            let at = find(m, opt::DOMAIN_LIST);
            set_len(m, at, 29);
            m.remove(at + 4 + 29);
        };
        assert_eq!(parse(ADVERTISE, &unterminated), Some(WireError::Malformed));
        // Elapsed time, status code, client ID, rapid commit with bad lengths.
        let bad: [(u16, &[u8]); 6] = [
            (opt::ELAPSED_TIME, &[0, 0, 0]),
            (opt::STATUS_CODE, &[0]),
            (opt::CLIENTID, &[0, 3]),
            (opt::SERVERID, &[0; 131]),
            (opt::RAPID_COMMIT, &[0]),
            (opt::ORO, &[0, 23, 0]),
        ];
        for (code, value) in bad {
            let mut m = hex(INFORMATION_REQUEST);
            m.extend_from_slice(&code.to_be_bytes());
            m.extend_from_slice(&(value.len() as u16).to_be_bytes());
            m.extend_from_slice(value);
            assert_eq!(
                Dhcpv6Repr::parse(&m).err(),
                Some(WireError::Malformed),
                "option {code}"
            );
        }
    }

    #[test]
    fn nesting_and_option_count_are_bounded() {
        // IA_NA inside IA_NA, `levels` deep.
        let nest = |levels: usize| {
            let mut inner: Vec<u8> = Vec::new();
            for _ in 0..levels {
                let mut outer = Vec::new();
                outer.extend_from_slice(&opt::IA_NA.to_be_bytes());
                outer.extend_from_slice(&((12 + inner.len()) as u16).to_be_bytes());
                outer.extend_from_slice(&[0; 12]);
                outer.extend_from_slice(&inner);
                inner = outer;
            }
            let mut m = vec![7, 0, 0, 1];
            m.extend_from_slice(&inner);
            m
        };
        assert!(Dhcpv6Repr::parse(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(
            Dhcpv6Repr::parse(&nest(MAX_DEPTH + 1)).err(),
            Some(WireError::TooMany)
        );
        let mut m = vec![7, 0, 0, 1];
        for _ in 0..MAX_OPTIONS {
            m.extend_from_slice(&[0, 99, 0, 0]);
        }
        assert!(Dhcpv6Repr::parse(&m).is_ok());
        m.extend_from_slice(&[0, 99, 0, 0]);
        assert_eq!(Dhcpv6Repr::parse(&m).err(), Some(WireError::TooMany));
    }

    #[test]
    fn builder_reproduces_dnsmasq_advertise() {
        let solicit_bytes = hex(SOLICIT);
        let solicit = Dhcpv6Repr::parse(&solicit_bytes).unwrap();
        let mut buf = [0; 512];
        let mut b = Dhcpv6Builder::new(&mut buf, Dhcpv6MsgType::Advertise, solicit.xid()).unwrap();
        assert!(b.is_empty());
        b.push_client_id(solicit.client_id().unwrap()).unwrap();
        b.push(opt::SERVERID, &SERVER_DUID).unwrap();
        b.begin_ia_na(solicit.ia_na().unwrap().iaid, 21600, 37800)
            .unwrap();
        b.begin_ia_addr(addr(0x128), 43200, 43200).unwrap();
        b.end().unwrap();
        b.end().unwrap();
        b.push_status_code(status::SUCCESS, "success").unwrap();
        b.push_preference(0).unwrap();
        b.push_domain_list(&["example.com", "sub.example.com."])
            .unwrap();
        b.push_dns_servers(&[addr(0x53), addr(0x54)]).unwrap();
        let n = b.finish().unwrap();
        assert_eq!(buf[..n], hex(ADVERTISE)[..]);
    }

    #[test]
    fn builder_reply_parses_back() {
        let mut buf = [0; 256];
        let mut b = Dhcpv6Builder::new(&mut buf, Dhcpv6MsgType::Reply, 0x12_3456).unwrap();
        b.push_server_id_ll(MacAddr([2, 0, 0, 0, 0, 1])).unwrap();
        b.push_rapid_commit().unwrap();
        b.begin_ia_na(7, 0, 0).unwrap();
        b.begin_ia_addr(addr(0x200), 3600, 7200).unwrap();
        b.push_status_code(status::SUCCESS, "").unwrap();
        b.end().unwrap();
        b.push_status_code(status::NO_ADDRS_AVAIL, "none").unwrap();
        b.end().unwrap();
        b.push_dns_servers(&[]).unwrap();
        let n = b.finish().unwrap();

        let repr = Dhcpv6Repr::parse(&buf[..n]).unwrap();
        assert_eq!(repr.msg_type(), Dhcpv6MsgType::Reply);
        assert_eq!(repr.xid(), 0x12_3456);
        assert_eq!(repr.server_id(), Some(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1][..]));
        assert!(repr.rapid_commit());
        let ia = repr.ia_na().unwrap();
        assert_eq!((ia.iaid, ia.t1, ia.t2), (7, 0, 0));
        let status = ia.status_code().unwrap();
        assert_eq!(
            (status.code, status.message),
            (status::NO_ADDRS_AVAIL, &b"none"[..])
        );
        let a = ia.addresses().next().unwrap();
        assert_eq!((a.addr, a.preferred, a.valid), (addr(0x200), 3600, 7200));
        assert_eq!(
            a.status_code(),
            Some(StatusCodeRepr {
                code: 0,
                message: b""
            })
        );
        assert_eq!(repr.option(opt::DNS_SERVERS), Some(&[][..]));
        assert_eq!(repr.dns_servers().count(), 0);
        // Lengths were back-filled: 12 + (4 + 24 + 6) + (4 + 6).
        assert_eq!(
            IaNaRepr::parse(repr.option(opt::IA_NA).unwrap()).unwrap(),
            ia
        );
        assert_eq!(repr.option(opt::IA_NA).unwrap().len(), 56);
        assert_eq!(IaAddrRepr::parse(ia.options().next().unwrap().data), Ok(a));
    }

    #[test]
    fn builder_misuse_and_short_buffers() {
        let mut small = [0; 3];
        assert_eq!(
            Dhcpv6Builder::new(&mut small, Dhcpv6MsgType::Reply, 1).err(),
            Some(WireError::BufferTooSmall)
        );
        let mut buf = [0; 40];
        let mut b = Dhcpv6Builder::new(&mut buf, Dhcpv6MsgType::Reply, 1).unwrap();
        assert_eq!(b.end(), Err(WireError::Malformed));
        // 4 + 4 + 12 + 4 + 24 > 40: the IAADDR does not fit and is undone.
        b.begin_ia_na(1, 2, 3).unwrap();
        assert_eq!(
            b.begin_ia_addr(addr(1), 1, 1),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(b.len(), HEADER_LEN + 16);
        assert_eq!(
            b.push(opt::CLIENTID, &[0; 17]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(b.push_domain_list(&["a..b"]), Err(WireError::Malformed));
        assert_eq!(b.len(), HEADER_LEN + 16);
        for _ in 1..MAX_DEPTH {
            b.begin(opt::IA_TA).unwrap();
        }
        assert_eq!(b.begin(opt::IA_TA), Err(WireError::TooMany));
        assert_eq!(b.finish(), Err(WireError::Malformed));
        // An option value over 65535 bytes.
        let mut big = vec![0; 70000];
        let mut b = Dhcpv6Builder::new(&mut big, Dhcpv6MsgType::Reply, 1).unwrap();
        assert_eq!(
            b.push(opt::VENDOR_OPTS, &[0; 65536]),
            Err(WireError::BadLength)
        );
        b.begin(opt::IA_NA).unwrap();
        b.push(opt::VENDOR_OPTS, &[0; 65532]).unwrap();
        assert_eq!(b.end(), Err(WireError::BadLength));
    }

    #[test]
    fn domain_list_encoding() {
        let mut out = [0; 64];
        let n = encode_domain_list(&["example.com", "sub.example.com"], &mut out).unwrap();
        assert_eq!(
            &out[..n],
            b"\x07example\x03com\x00\x03sub\x07example\x03com\x00"
        );
        assert_eq!(
            encode_domain_list(&["example.com"], &mut out[..12]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(
            encode_domain_list(&[&"x".repeat(64)], &mut out),
            Err(WireError::Malformed)
        );
        assert_eq!(encode_domain_list(&[], &mut out), Ok(0));
    }

    #[test]
    fn message_type_and_header() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Dhcpv6MsgType::from(value)), value);
        }
        assert_eq!(Dhcpv6MsgType::from(11), Dhcpv6MsgType::InformationRequest);
        let h = Dhcpv6Header::new(Dhcpv6MsgType::Reply, 0xff12_3456);
        assert_eq!(h.as_bytes(), [7, 0x12, 0x34, 0x56]);
        assert_eq!(h.xid(), 0x12_3456);
        assert_eq!(duid_ll(CLIENT_MAC), [0, 3, 0, 1, 2, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn option_iter_on_raw_bytes() {
        let items: Vec<_> = Dhcpv6Options::new(&[0, 14, 0, 0, 0, 8, 0, 2, 1]).collect();
        assert_eq!(
            items,
            [
                Ok(Dhcpv6Option {
                    code: 14,
                    data: &[]
                }),
                Err(WireError::Malformed)
            ]
        );
        let items: Vec<_> = Dhcpv6Options::new(&[0, 14, 0]).collect();
        assert_eq!(items, [Err(WireError::Malformed)]);
        assert_eq!(StatusCodeRepr::parse(&[0]), Err(WireError::Malformed));
        assert_eq!(IaNaRepr::parse(&[0; 11]), Err(WireError::Malformed));
        assert_eq!(IaAddrRepr::parse(&[0; 23]), Err(WireError::Malformed));
    }
}
