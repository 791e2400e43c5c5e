//! The configuration socket's messages (`doc/control.md`): the header,
//! requests and replies, parsed from hostile bytes without a panic or an
//! allocation (every length bounded, every field checked, nothing
//! trailing), and encoded.

use core::fmt::Write as _;

use crate::config::ports::{FwdMode, FwdSpec};
use crate::contract::Proto;

use super::{
    code, msg, HEADER_LEN, MAGIC, MAX_REPLY_BODY, MAX_REQUEST_BODY, MAX_SPECS, MAX_SPEC_LEN,
    MAX_TEXT_LEN, VERSION,
};

/// Why bytes are not a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header, or than its length says.
    #[error("truncated message")]
    Truncated,
    /// Not [`MAGIC`].
    #[error("bad magic")]
    BadMagic,
    /// A header version other than [`VERSION`].
    #[error("unsupported version {0}")]
    BadVersion(u8),
    /// A body longer than allowed.
    #[error("body of {0} bytes is too long")]
    TooLong(u32),
    /// A message type not expected here.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// A protocol other than TCP (6) and UDP (17).
    #[error("unknown protocol {0}")]
    BadProto(u8),
    /// A field out of range, or bytes left over.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

impl WireError {
    /// The error code a reply names it by ([`super::code`]).
    pub fn code(&self) -> u16 {
        match self {
            WireError::Truncated | WireError::Malformed(_) => code::MALFORMED,
            WireError::BadMagic => code::BAD_MAGIC,
            WireError::BadVersion(_) => code::BAD_VERSION,
            WireError::TooLong(_) => code::TOO_LONG,
            WireError::UnknownType(_) => code::UNKNOWN_TYPE,
            WireError::BadProto(_) => code::BAD_PROTO,
        }
    }

    /// Whether the stream cannot be followed past it (the header itself
    /// is wrong): the session replies and closes.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WireError::BadMagic | WireError::BadVersion(_) | WireError::TooLong(_)
        )
    }
}

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message type ([`super::msg`]).
    pub kind: u8,
    /// The body length.
    pub len: u32,
}

impl Header {
    /// Length of the whole message.
    pub fn total(&self) -> usize {
        HEADER_LEN + self.len as usize
    }
}

/// Parse the header at the start of `buf`; `Ok(None)` while fewer than
/// [`HEADER_LEN`] bytes are there. The body length is not checked against
/// a limit here (requests and replies have their own).
///
/// # Errors
/// [`WireError::BadMagic`], [`WireError::BadVersion`], or
/// [`WireError::Malformed`] for reserved bytes that are not zero.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, WireError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        // A prefix that cannot become the magic fails at once.
        let n = buf.len().min(MAGIC.len());
        if buf.get(..n) != MAGIC.get(..n) {
            return Err(WireError::BadMagic);
        }
        return Ok(None);
    };
    let mut r = Reader(h);
    if r.bytes(4)? != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(WireError::BadVersion(version));
    }
    let kind = r.u8()?;
    if r.u16()? != 0 {
        return Err(WireError::Malformed("reserved bytes not zero"));
    }
    let len = r.u32()?;
    Ok(Some(Header { kind, len }))
}

/// Which change a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Add the specs to the rules in force ([`FwdSpec::add`]).
    Add,
    /// Remove the specs' ports from the rules in force ([`FwdSpec::remove`]).
    Delete,
    /// Replace the rules in force by the specs (none: forward nothing).
    Replace,
}

impl ChangeKind {
    fn msg(self) -> u8 {
        match self {
            ChangeKind::Add => msg::ADD,
            ChangeKind::Delete => msg::DELETE,
            ChangeKind::Replace => msg::REPLACE,
        }
    }
}

/// A checked list of specs (or rules) in a message: each one UTF-8, of
/// 1 to [`MAX_SPEC_LEN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Specs<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> Specs<'a> {
    /// Check `count` length-prefixed strings at the start of `r`.
    fn parse(r: &mut Reader<'a>, count: usize) -> Result<Self, WireError> {
        let start = r.0;
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            if len == 0 || len > MAX_SPEC_LEN {
                return Err(WireError::Malformed("spec length out of range"));
            }
            core::str::from_utf8(r.bytes(len)?)
                .map_err(|_| WireError::Malformed("spec not UTF-8"))?;
        }
        let used = start.len() - r.0.len();
        Ok(Specs {
            count,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each one, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader(self.bytes);
        (0..self.count).map_while(move |_| {
            let len = usize::from(r.u16().ok()?);
            core::str::from_utf8(r.bytes(len).ok()?).ok()
        })
    }
}

/// A request, borrowing its text from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// The versions the client speaks, `min..=max`; the first request.
    Hello {
        /// Lowest.
        min: u8,
        /// Highest.
        max: u8,
    },
    /// The rules in force.
    List {
        /// Of this protocol.
        proto: Proto,
    },
    /// Add, delete or replace rules.
    Change {
        /// Which.
        kind: ChangeKind,
        /// Of this protocol.
        proto: Proto,
        /// In `-t`/`-u` syntax, one option argument each.
        specs: Specs<'a>,
    },
    /// Forward nothing.
    Clear {
        /// Of this protocol.
        proto: Proto,
    },
}

/// A reply, borrowing its text from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// Done: the version chosen (after a hello) or the change's id.
    Ok(u32),
    /// Refused or failed.
    Error {
        /// What ([`super::code`]).
        code: u16,
        /// The port concerned, or 0.
        port: u16,
        /// The host's error number, or 0.
        errno: i32,
        /// For humans.
        text: &'a str,
    },
    /// The rules in force.
    Rules {
        /// Their protocol.
        proto: Proto,
        /// The spec's mode.
        mode: FwdMode,
        /// Each rule, in `-t`/`-u` syntax (each one a valid spec).
        rules: Specs<'a>,
    },
}

/// Parse one whole request message (header and body, nothing more).
///
/// # Errors
/// The [`WireError`] of the first thing wrong.
pub fn parse_request(m: &[u8]) -> Result<Request<'_>, WireError> {
    let (h, mut r) = whole(m, MAX_REQUEST_BODY)?;
    let req = match h.kind {
        msg::HELLO => {
            let (min, max) = (r.u8()?, r.u8()?);
            if min == 0 || min > max {
                return Err(WireError::Malformed("bad version range"));
            }
            Request::Hello { min, max }
        }
        msg::LIST => Request::List {
            proto: proto(&mut r)?,
        },
        msg::CLEAR => Request::Clear {
            proto: proto(&mut r)?,
        },
        msg::ADD | msg::DELETE | msg::REPLACE => {
            let kind = match h.kind {
                msg::ADD => ChangeKind::Add,
                msg::DELETE => ChangeKind::Delete,
                _ => ChangeKind::Replace,
            };
            let proto = proto(&mut r)?;
            let count = usize::from(r.u8()?);
            let least = usize::from(kind != ChangeKind::Replace);
            if count < least || count > MAX_SPECS {
                return Err(WireError::Malformed("spec count out of range"));
            }
            Request::Change {
                kind,
                proto,
                specs: Specs::parse(&mut r, count)?,
            }
        }
        other => return Err(WireError::UnknownType(other)),
    };
    r.end()?;
    Ok(req)
}

/// Parse one whole reply message (header and body, nothing more).
///
/// # Errors
/// The [`WireError`] of the first thing wrong.
pub fn parse_reply(m: &[u8]) -> Result<Reply<'_>, WireError> {
    let (h, mut r) = whole(m, MAX_REPLY_BODY)?;
    let reply = match h.kind {
        msg::OK => Reply::Ok(r.u32()?),
        msg::ERROR => {
            let code = r.u16()?;
            let port = r.u16()?;
            let errno = r.u32()? as i32;
            let len = usize::from(r.u16()?);
            if len > MAX_TEXT_LEN {
                return Err(WireError::Malformed("error text too long"));
            }
            let text = core::str::from_utf8(r.bytes(len)?)
                .map_err(|_| WireError::Malformed("error text not UTF-8"))?;
            Reply::Error {
                code,
                port,
                errno,
                text,
            }
        }
        msg::RULES => {
            let proto = proto(&mut r)?;
            let mode = match r.u8()? {
                0 => FwdMode::None,
                1 => FwdMode::All,
                2 => FwdMode::Auto,
                3 => FwdMode::Ports,
                _ => return Err(WireError::Malformed("unknown mode")),
            };
            let count = r.u32()? as usize;
            // Each rule takes at least three bytes: bound the walk first.
            if count > r.0.len() / 3 {
                return Err(WireError::Malformed("rule count beyond the body"));
            }
            Reply::Rules {
                proto,
                mode,
                rules: Specs::parse(&mut r, count)?,
            }
        }
        other => return Err(WireError::UnknownType(other)),
    };
    r.end()?;
    Ok(reply)
}

/// The header of a whole message of at most `max` body bytes, and a
/// reader over its body.
fn whole(m: &[u8], max: u32) -> Result<(Header, Reader<'_>), WireError> {
    let h = parse_header(m)?.ok_or(WireError::Truncated)?;
    if h.len > max {
        return Err(WireError::TooLong(h.len));
    }
    let body = m.get(HEADER_LEN..).unwrap_or_default();
    if body.len() < h.len as usize {
        return Err(WireError::Truncated);
    }
    if body.len() > h.len as usize {
        return Err(WireError::Malformed("bytes after the message"));
    }
    Ok((h, Reader(body)))
}

fn proto(r: &mut Reader<'_>) -> Result<Proto, WireError> {
    match r.u8()? {
        6 => Ok(Proto::Tcp),
        17 => Ok(Proto::Udp),
        p => Err(WireError::BadProto(p)),
    }
}

fn proto_byte(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        // Not a forwarding protocol: the receiver refuses it.
        Proto::Icmp => 1,
    }
}

/// Big-endian reads that fail instead of running past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Malformed("field past the end of the body"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed("trailing bytes in the body"))
        }
    }
}

/// Append a message of type `kind` whose body `body` writes.
fn message(out: &mut Vec<u8>, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, kind, 0, 0, 0, 0, 0, 0]);
    body(out);
    let len = (out.len() - start - HEADER_LEN) as u32;
    if let Some(l) = out.get_mut(start + 8..start + 12) {
        l.copy_from_slice(&len.to_be_bytes());
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append a hello request for versions `min..=max`.
pub fn encode_hello(out: &mut Vec<u8>, min: u8, max: u8) {
    message(out, msg::HELLO, |b| b.extend_from_slice(&[min, max]));
}

/// Append a list request.
pub fn encode_list(out: &mut Vec<u8>, proto: Proto) {
    encode_proto_only(out, msg::LIST, proto);
}

/// Append a request whose body is a protocol alone ([`msg::LIST`],
/// [`msg::CLEAR`]).
pub fn encode_proto_only(out: &mut Vec<u8>, kind: u8, proto: Proto) {
    message(out, kind, |b| b.push(proto_byte(proto)));
}

/// Append an add, delete or replace request.
///
/// # Errors
/// [`WireError::Malformed`] for more than [`MAX_SPECS`] specs (none for
/// add and delete) or a spec empty or longer than [`MAX_SPEC_LEN`];
/// nothing is appended then.
pub fn encode_change(
    out: &mut Vec<u8>,
    kind: ChangeKind,
    proto: Proto,
    specs: &[&str],
) -> Result<(), WireError> {
    let least = usize::from(kind != ChangeKind::Replace);
    if specs.len() < least || specs.len() > MAX_SPECS {
        return Err(WireError::Malformed("spec count out of range"));
    }
    if specs.iter().any(|s| s.is_empty() || s.len() > MAX_SPEC_LEN) {
        return Err(WireError::Malformed("spec length out of range"));
    }
    message(out, kind.msg(), |b| {
        b.push(proto_byte(proto));
        b.push(specs.len() as u8);
        for s in specs {
            put_str(b, s);
        }
    });
    Ok(())
}

/// Append an ok reply carrying `value`.
pub fn encode_ok(out: &mut Vec<u8>, value: u32) {
    message(out, msg::OK, |b| b.extend_from_slice(&value.to_be_bytes()));
}

/// Append an error reply; `text` is cut to [`MAX_TEXT_LEN`] bytes (at a
/// character boundary).
pub fn encode_error(out: &mut Vec<u8>, code: u16, port: u16, errno: i32, text: &str) {
    let mut end = text.len().min(MAX_TEXT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = text.get(..end).unwrap_or_default();
    message(out, msg::ERROR, |b| {
        b.extend_from_slice(&code.to_be_bytes());
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&errno.to_be_bytes());
        put_str(b, text);
    });
}

/// Append a rules reply listing `spec`, one rule per entry in spec syntax.
pub fn encode_rules(out: &mut Vec<u8>, proto: Proto, spec: &FwdSpec) {
    message(out, msg::RULES, |b| {
        b.push(proto_byte(proto));
        b.push(match spec.mode() {
            FwdMode::None => 0,
            FwdMode::All => 1,
            FwdMode::Auto => 2,
            FwdMode::Ports => 3,
        });
        b.extend_from_slice(&(spec.rules().len() as u32).to_be_bytes());
        let mut text = String::new();
        for r in spec.rules() {
            text.clear();
            let _ = write!(text, "{r}");
            put_str(b, &text);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        message(&mut m, kind, |b| b.extend_from_slice(body));
        m
    }

    #[test]
    fn requests_round_trip() {
        let mut m = Vec::new();
        encode_hello(&mut m, 1, 3);
        assert_eq!(parse_request(&m), Ok(Request::Hello { min: 1, max: 3 }));
        m.clear();
        encode_list(&mut m, Proto::Udp);
        assert_eq!(parse_request(&m), Ok(Request::List { proto: Proto::Udp }));
        m.clear();
        encode_change(
            &mut m,
            ChangeKind::Add,
            Proto::Tcp,
            &["22", "[::1]/80:8080"],
        )
        .unwrap();
        let Ok(Request::Change { kind, proto, specs }) = parse_request(&m) else {
            panic!("{:?}", parse_request(&m));
        };
        assert_eq!((kind, proto), (ChangeKind::Add, Proto::Tcp));
        assert_eq!(specs.iter().collect::<Vec<_>>(), ["22", "[::1]/80:8080"]);
        m.clear();
        encode_change(&mut m, ChangeKind::Replace, Proto::Udp, &[]).unwrap();
        assert!(matches!(
            parse_request(&m),
            Ok(Request::Change { specs, .. }) if specs.is_empty()
        ));
        assert!(encode_change(&mut m, ChangeKind::Add, Proto::Tcp, &[]).is_err());
        assert!(encode_change(&mut m, ChangeKind::Add, Proto::Tcp, &[""]).is_err());
    }

    #[test]
    fn replies_round_trip() {
        let mut m = Vec::new();
        encode_ok(&mut m, 7);
        assert_eq!(parse_reply(&m), Ok(Reply::Ok(7)));
        m.clear();
        let long = "é".repeat(300);
        encode_error(&mut m, code::LISTEN_FAILED, 8080, 98, &long);
        let Ok(Reply::Error {
            code,
            port,
            errno,
            text,
        }) = parse_reply(&m)
        else {
            panic!();
        };
        assert_eq!((code, port, errno), (code::LISTEN_FAILED, 8080, 98));
        assert!(text.len() <= MAX_TEXT_LEN && text.chars().all(|c| c == 'é'));
        m.clear();
        let spec = FwdSpec::parse("192.0.2.1/22,80-90:8080").unwrap();
        encode_rules(&mut m, Proto::Tcp, &spec);
        let Ok(Reply::Rules { proto, mode, rules }) = parse_reply(&m) else {
            panic!();
        };
        assert_eq!((proto, mode), (Proto::Tcp, FwdMode::Ports));
        let rules: Vec<_> = rules.iter().collect();
        assert_eq!(rules, ["192.0.2.1/22", "192.0.2.1/80-90:8080-8090"]);
        // Each rule is a spec of its own: together they are the same.
        let mut again = FwdSpec::default();
        for r in rules {
            again.add(r).unwrap();
        }
        assert_eq!(again, spec);
    }

    #[test]
    fn hostile_headers_and_bodies_are_refused() {
        // Truncated: too short for a header, or for its body.
        assert_eq!(parse_header(b"PCT"), Ok(None));
        assert_eq!(parse_header(b"PX"), Err(WireError::BadMagic));
        assert_eq!(parse_request(b"PCTL\x01\x02"), Err(WireError::Truncated));
        let m = req(msg::LIST, &[6]);
        assert_eq!(parse_request(&m[..m.len() - 1]), Err(WireError::Truncated));
        // Bad magic, bad version, reserved bytes.
        let mut bad = m.clone();
        bad[0] = b'X';
        assert_eq!(parse_request(&bad), Err(WireError::BadMagic));
        let mut bad = m.clone();
        bad[4] = 2;
        assert_eq!(parse_request(&bad), Err(WireError::BadVersion(2)));
        assert!(WireError::BadVersion(2).is_fatal());
        let mut bad = m.clone();
        bad[7] = 1;
        assert!(matches!(parse_request(&bad), Err(WireError::Malformed(_))));
        // An oversize length is refused before anything is read or kept.
        let mut bad = m.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_request(&bad), Err(WireError::TooLong(u32::MAX)));
        bad[8..12].copy_from_slice(&(MAX_REQUEST_BODY + 1).to_be_bytes());
        assert!(matches!(parse_request(&bad), Err(WireError::TooLong(_))));
        // Bytes after the message, or after the fields.
        let mut bad = m.clone();
        bad.push(0);
        assert!(matches!(parse_request(&bad), Err(WireError::Malformed(_))));
        assert!(matches!(
            parse_request(&req(msg::LIST, &[6, 0])),
            Err(WireError::Malformed(_))
        ));
        // Fields out of range.
        assert_eq!(
            parse_request(&req(msg::LIST, &[1])),
            Err(WireError::BadProto(1))
        );
        assert_eq!(
            parse_request(&req(0x42, &[])),
            Err(WireError::UnknownType(0x42))
        );
        assert_eq!(
            parse_request(&req(msg::OK, &[0, 0, 0, 1])),
            Err(WireError::UnknownType(msg::OK))
        );
        for hello in [[0u8, 1], [3, 2]] {
            assert!(matches!(
                parse_request(&req(msg::HELLO, &hello)),
                Err(WireError::Malformed(_))
            ));
        }
        // Spec counts and lengths: none, too many, empty, too long, a
        // length beyond the body, not UTF-8.
        let bodies: &[&[u8]] = &[
            &[6, 0],
            &[6, 33],
            &[6, 1, 0, 0],
            &[6, 1, 0x04, 0x01],
            &[6, 1, 0, 5, b'2', b'2'],
            &[6, 1, 0, 2, 0xff, 0xfe],
            &[6, 2, 0, 2, b'2', b'2'],
        ];
        for body in bodies {
            assert!(
                matches!(
                    parse_request(&req(msg::ADD, body)),
                    Err(WireError::Malformed(_))
                ),
                "{body:?}"
            );
        }
        // A rules reply whose count promises more than its body holds.
        let mut m = Vec::new();
        message(&mut m, msg::RULES, |b| {
            b.extend_from_slice(&[6, 3]);
            b.extend_from_slice(&u32::MAX.to_be_bytes());
        });
        assert!(matches!(parse_reply(&m), Err(WireError::Malformed(_))));
    }
}
