//! One client connection of the configuration socket: a byte stream cut
//! into messages, version negotiation, each request turned into
//! [`Translator`] calls and a reply (`doc/control.md`).

use crate::change::{ChangeError, ChangeOutcome};
use crate::config::ports::{FwdMode, FwdSpec};
use crate::contract::{ChangeId, Proto};
use crate::Translator;

use super::wire::{
    encode_error, encode_ok, encode_rules, parse_header, parse_request, ChangeKind, Request, Specs,
    WireError,
};
use super::{code, HEADER_LEN, MAX_REQUEST_BODY, VERSION};

/// Output left unwritten past which no further request is taken.
pub const OUTPUT_HIGH: usize = 64 * 1024;

/// A client's session: bytes in ([`Session::input`]), bytes out
/// ([`Session::output`]), sans-IO.
///
/// Requests are taken in order, one at a time: a change's reply waits
/// until the translator reports how it ended, and the requests after it
/// wait in the input buffer meanwhile. [`Session::input`] and
/// [`Session::run`] may begin a change, which queues operations: the
/// driver drains [`Translator::poll_op`] after them as after any input,
/// then calls [`Session::run`] (the change may have ended by then),
/// again while it returns `true`; and it calls [`Session::run`] after
/// every drain of [`Translator::poll_op`] for other inputs too (the
/// completions of a change's `Open`s end it). It writes the output
/// whenever there is some. After a fatal error (a header that
/// cannot be followed: bad magic, version or length) the session replies,
/// takes nothing more and [`Session::is_closed`] says so: the driver
/// closes the connection once the output is written.
///
/// The input buffer holds at most one request ([`HEADER_LEN`] +
/// [`MAX_REQUEST_BODY`] bytes); [`Session::input`] takes only what fits,
/// and no request is taken while [`OUTPUT_HIGH`] bytes of replies wait
/// to be written, so a client that sends ahead without reading is slowed
/// down, not buffered without bound (the driver calls [`Session::run`]
/// after writing output, too).
#[derive(Debug)]
pub struct Session {
    input: Vec<u8>,
    output: Vec<u8>,
    /// The version agreed in the hello.
    version: Option<u8>,
    /// The change whose reply is due.
    waiting: Option<ChangeId>,
    /// The host's ephemeral port range, removed from `all` specs.
    ephemeral: Option<(u16, u16)>,
    closed: bool,
}

impl Session {
    /// A new connection's session. `ephemeral` is the host's ephemeral
    /// port range (`/proc/sys/net/ipv4/ip_local_port_range`, read by the
    /// driver), removed from `all` as at start-up.
    pub fn new(ephemeral: Option<(u16, u16)>) -> Self {
        Session {
            input: Vec::new(),
            output: Vec::new(),
            version: None,
            waiting: None,
            ephemeral,
            closed: false,
        }
    }

    /// Take bytes read from the connection, as many as fit the input
    /// buffer (the caller keeps the rest for later), and handle every
    /// whole request among them. Returns how many were taken.
    pub fn input(&mut self, t: &mut Translator, bytes: &[u8]) -> usize {
        if self.closed {
            return bytes.len();
        }
        let room = (HEADER_LEN + MAX_REQUEST_BODY as usize).saturating_sub(self.input.len());
        let n = bytes.len().min(room);
        self.input
            .extend_from_slice(bytes.get(..n).unwrap_or_default());
        self.step(t);
        n
    }

    /// Reply to a change that ended and go on with the requests waiting.
    /// Returns whether anything happened (a reply written, a change
    /// begun): then the driver drains [`Translator::poll_op`] and calls
    /// this again, until it returns `false`.
    pub fn run(&mut self, t: &mut Translator) -> bool {
        let before = (self.output.len(), self.waiting);
        self.step(t);
        (self.output.len(), self.waiting) != before
    }

    fn step(&mut self, t: &mut Translator) {
        if let Some(id) = self.waiting {
            if t.forward_change().is_some_and(|(c, _)| c == id) {
                return;
            }
            self.waiting = None;
            match t.forward_change_outcome().filter(|o| o.id() == id) {
                Some(ChangeOutcome::Done { id, .. }) => encode_ok(&mut self.output, id.0),
                Some(ChangeOutcome::Failed { port, errno, .. }) => encode_error(
                    &mut self.output,
                    code::LISTEN_FAILED,
                    port,
                    errno.0,
                    &format!("port {port}: listener failed with errno {}", errno.0),
                ),
                // Ended without a trace (cannot happen: the outcome is
                // kept until the next change, which waits for this one).
                None => encode_error(&mut self.output, code::BUSY, 0, 0, "change lost"),
            }
        }
        // A client that sends without reading waits for its replies to
        // be written: the output holds at most this plus one reply.
        while !self.closed && self.waiting.is_none() && self.output.len() < OUTPUT_HIGH {
            let total = match parse_header(&self.input) {
                Ok(None) => return,
                Ok(Some(h)) if h.len > MAX_REQUEST_BODY => {
                    self.fatal(WireError::TooLong(h.len));
                    return;
                }
                Ok(Some(h)) => h.total(),
                Err(e) => {
                    self.fatal(e);
                    return;
                }
            };
            if self.input.len() < total {
                return;
            }
            let input = core::mem::take(&mut self.input);
            if let Some(m) = input.get(..total) {
                self.request(t, m);
            }
            self.input = input;
            self.input.drain(..total.min(self.input.len()));
        }
    }

    /// Bytes to write to the connection.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// `n` bytes of the output were written.
    pub fn consume(&mut self, n: usize) {
        self.output.drain(..n.min(self.output.len()));
    }

    /// Whether the session ended on a fatal error: close the connection
    /// once the output is written.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a change's reply is due (requests wait meanwhile).
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    fn fatal(&mut self, e: WireError) {
        self.error(e.code(), 0, &e.to_string());
        self.closed = true;
        self.input.clear();
    }

    fn error(&mut self, code: u16, port: u16, text: &str) {
        encode_error(&mut self.output, code, port, 0, text);
    }

    /// Handle one whole request message.
    fn request(&mut self, t: &mut Translator, m: &[u8]) {
        let req = match parse_request(m) {
            Ok(r) => r,
            Err(e) if e.is_fatal() => return self.fatal(e),
            Err(e) => return self.error(e.code(), 0, &e.to_string()),
        };
        if let Request::Hello { min, max } = req {
            if (min..=max).contains(&VERSION) {
                self.version = Some(VERSION);
                encode_ok(&mut self.output, u32::from(VERSION));
            } else {
                self.error(
                    code::BAD_VERSION,
                    0,
                    &format!("versions {min}-{max} asked, {VERSION} spoken"),
                );
            }
            return;
        }
        if self.version.is_none() {
            return self.error(code::NO_HELLO, 0, "hello first");
        }
        let (proto, spec) = match req {
            Request::Hello { .. } => return,
            Request::List { proto } => {
                if let Some(spec) = t.forward_rules(proto) {
                    encode_rules(&mut self.output, proto, spec);
                }
                return;
            }
            Request::Clear { proto } => (proto, Ok(FwdSpec::default())),
            Request::Change { kind, proto, specs } => {
                (proto, self.new_rules(t, kind, proto, specs))
            }
        };
        let spec = match spec {
            Ok(s) => s,
            Err((code, port, text)) => return self.error(code, port, &text),
        };
        match t.begin_forward_change(proto, spec) {
            Ok(id) => {
                self.waiting = Some(id);
                // Nothing to open: the swap comes with the next drain.
            }
            Err(e) => {
                let c = match e {
                    ChangeError::Busy(_) | ChangeError::Starting => code::BUSY,
                    ChangeError::Protocol(_) => code::BAD_PROTO,
                    _ => code::REFUSED,
                };
                self.error(c, 0, &e.to_string());
            }
        }
    }

    /// The rules a change request asks for, from those in force.
    fn new_rules(
        &self,
        t: &Translator,
        kind: ChangeKind,
        proto: Proto,
        specs: Specs<'_>,
    ) -> Result<FwdSpec, (u16, u16, String)> {
        let bad = |e: &dyn core::fmt::Display| (code::BAD_SPEC, 0, e.to_string());
        let current =
            t.forward_rules(proto)
                .ok_or((code::BAD_PROTO, 0, String::from("no forwarding")))?;
        let mut given = FwdSpec::default();
        for s in specs.iter() {
            given.add(s).map_err(|e| bad(&e))?;
        }
        let mut spec = match kind {
            ChangeKind::Replace => given,
            ChangeKind::Add => {
                let mut spec = current.clone();
                for s in specs.iter() {
                    spec.add(s).map_err(|e| bad(&e))?;
                }
                spec
            }
            ChangeKind::Delete => {
                if given.mode() != FwdMode::Ports {
                    return Err(bad(&"delete takes port lists"));
                }
                let mut spec = current.clone();
                spec.remove(&given).map_err(|port| {
                    (
                        code::NOT_FORWARDED,
                        port,
                        format!("port {port} is not forwarded so"),
                    )
                })?;
                spec
            }
        };
        if let Some((first, last)) = self.ephemeral {
            spec.exclude_ephemeral(first, last);
        }
        Ok(spec)
    }
}
