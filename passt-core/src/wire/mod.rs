//! Wire formats: stateless parsing and emission of every header we handle.
//!
//! Each module knows one protocol and nothing about flows. Fixed headers are
//! `zerocopy` structs (`...Header`) read in place from untrusted bytes through
//! fallible constructors; variable parts (IP options, TCP options, DHCP and
//! NDP options) are parsed into `...Repr` values that borrow from the frame.
//! Emission writes every field into a caller-provided buffer and never
//! allocates. Parsing a well-formed packet and emitting the result gives back
//! the same bytes; truncated, inconsistent or oversized input is a
//! [`WireError`], never a panic, and every loop over options or extension
//! headers is bounded by the input length or an explicit limit.

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod dhcpv6;
pub mod dns;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod stream;
pub mod tcp;
pub mod udp;

/// Why bytes could not be parsed, or a header could not be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the header or a length field requires.
    #[error("truncated")]
    Truncated,
    /// A length field disagrees with another or with the bytes present.
    #[error("inconsistent length field")]
    BadLength,
    /// The checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// A version, type or code we do not implement (not an error on the
    /// sender's part, but nothing we can translate).
    #[error("unsupported")]
    Unsupported,
    /// A field holds a value the protocol forbids (a malformed option, a bad
    /// header length, a loop in a compressed name...).
    #[error("malformed")]
    Malformed,
    /// An IPv4 or IPv6 fragment: recognised and refused, never reassembled.
    #[error("fragmented packet")]
    Fragment,
    /// More options or extension headers than we are willing to walk.
    #[error("too many options or extension headers")]
    TooMany,
    /// The output buffer is too small for what is to be emitted.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Result of a parse or emit step.
pub type Result<T> = core::result::Result<T, WireError>;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
pub mod ip_proto {
    /// IPv6 Hop-by-Hop Options (RFC 8200 §4.3).
    pub const HOPOPTS: u8 = 0;
    /// ICMP for IPv4 (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// IPv6 Routing header (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment header (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// IPv6 No Next Header (RFC 8200 §4.7).
    pub const NONE: u8 = 59;
    /// IPv6 Destination Options (RFC 8200 §4.6).
    pub const DSTOPTS: u8 = 60;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
}
