//! The configuration socket's protocol, sans-IO: forwarding rules listed
//! and changed at run time by a client (`doc/control.md` is the
//! specification).
//!
//! A driver listens on a Unix stream socket (`-c/--conf-path`), checks who
//! connects (the socket file's permissions, and the peer's credentials,
//! `SO_PEERCRED`: authorisation is the driver's), and gives each
//! connection a [`Session`]: bytes read go to [`Session::input`], bytes
//! in [`Session::output`] are written back. A session turns each request
//! into [`crate::Translator`] calls ([`crate::Translator::forward_rules`],
//! [`crate::Translator::begin_forward_change`]) and a reply; a change's
//! reply waits until the translator reports its end, so the driver calls
//! [`Session::run`] after every drain of [`crate::Translator::poll_op`].
//!
//! | file | part |
//! |---|---|
//! | `wire.rs` | the message format: [`Header`], [`Request`], [`Reply`], their parsers (hostile bytes in, never a panic or an allocation) and encoders |
//! | `session.rs` | [`Session`]: framing of a byte stream, version negotiation, requests to translator calls |
//!
//! # Format, in short
//!
//! Every message is a 12-byte [`Header`] (magic `PCTL`, version, type,
//! two reserved zero bytes, body length, big-endian) and a body of at most
//! [`MAX_REQUEST_BODY`] bytes for requests, [`MAX_REPLY_BODY`] for
//! replies. Requests: hello (version negotiation, first), list, add,
//! delete, clear, replace; replies: ok, error (code, port, errno, text),
//! rules (in `-t`/`-u` syntax, [`crate::config::ports`]).

mod session;
mod wire;

pub use session::{Session, OUTPUT_HIGH};
pub use wire::{
    encode_change, encode_error, encode_hello, encode_list, encode_ok, encode_proto_only,
    encode_rules, parse_header, parse_reply, parse_request, ChangeKind, Header, Reply, Request,
    Specs, WireError,
};

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"PCTL";
/// The protocol version this crate speaks (the only one so far).
pub const VERSION: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 12;
/// Longest request body.
pub const MAX_REQUEST_BODY: u32 = 64 * 1024;
/// Longest reply body: a `rules` reply of every port as a rule of its own
/// with the longest prefix and target fits.
pub const MAX_REPLY_BODY: u32 = 16 * 1024 * 1024;
/// Most specs in one add, delete or replace request.
pub const MAX_SPECS: usize = 32;
/// Longest spec, in bytes.
pub const MAX_SPEC_LEN: usize = 1024;
/// Longest error text, in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// Message types.
pub mod msg {
    /// Request: version negotiation.
    pub const HELLO: u8 = 0x01;
    /// Request: the rules in force of one protocol.
    pub const LIST: u8 = 0x02;
    /// Request: add specs to the rules in force.
    pub const ADD: u8 = 0x03;
    /// Request: remove the ports of specs from the rules in force.
    pub const DELETE: u8 = 0x04;
    /// Request: forward nothing of one protocol.
    pub const CLEAR: u8 = 0x05;
    /// Request: replace the rules in force by specs.
    pub const REPLACE: u8 = 0x06;
    /// Reply: done (with a value: the version, or the change id).
    pub const OK: u8 = 0x81;
    /// Reply: refused or failed.
    pub const ERROR: u8 = 0x82;
    /// Reply: the rules in force.
    pub const RULES: u8 = 0x83;
}

/// Error codes of an error reply.
pub mod code {
    /// The message does not start with [`super::MAGIC`] (fatal: the
    /// session closes).
    pub const BAD_MAGIC: u16 = 1;
    /// A version not spoken: in a header (fatal), or no common one in a
    /// hello.
    pub const BAD_VERSION: u16 = 2;
    /// A field out of range, a length that disagrees, trailing bytes,
    /// text that is not UTF-8.
    pub const MALFORMED: u16 = 3;
    /// A body longer than [`super::MAX_REQUEST_BODY`] (fatal).
    pub const TOO_LONG: u16 = 4;
    /// A message type that is not a request.
    pub const UNKNOWN_TYPE: u16 = 5;
    /// A protocol other than TCP (6) and UDP (17).
    pub const BAD_PROTO: u16 = 6;
    /// A request before the hello.
    pub const NO_HELLO: u16 = 7;
    /// A spec that does not parse, or does not combine with the rules in
    /// force (the text says why, as `-t` would).
    pub const BAD_SPEC: u16 = 8;
    /// Delete: a port not forwarded with that prefix (in the port field).
    pub const NOT_FORWARDED: u16 = 9;
    /// Another change is in flight (from this client or another): retry.
    pub const BUSY: u16 = 10;
    /// A change the translator does not make at run time (`auto`).
    pub const REFUSED: u16 = 11;
    /// A listener of the change could not be opened: port and errno
    /// fields; the rules in force did not change.
    pub const LISTEN_FAILED: u16 = 12;
}
