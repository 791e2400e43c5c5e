//! Messages to the system log, for a daemon that has no standard error
//! left and no log file: one datagram per message on the `/dev/log`
//! socket, as syslog(3) sends them (RFC 3164 style: `<PRI>`, facility
//! `daemon`, then `ident[pid]: message`; no timestamp, which the
//! receiver adds).
//!
//! The socket is connected at start, before the sandbox empties the
//! filesystem, and kept; without `/dev/log` there is none and messages go
//! to standard error only. `PASST_SYSLOG_SOCKET` names another socket
//! instead of `/dev/log` (for tests: they cannot replace the machine's).
//!
//! Syscalls: `socket(AF_UNIX, SOCK_DGRAM)`, `connect`, `ioctl(FIONBIO)` at
//! start; `sendto` per message.

use core::fmt::Write;
use std::os::unix::net::UnixDatagram;

use super::limits::LogLine;

/// Longest message sent (RFC 3164 §4.1 keeps packets to 1024 bytes).
const MAX_LEN: usize = 1024;

/// `LOG_DAEMON`, the facility of both programs.
const FACILITY_DAEMON: u8 = 3;

/// Severities (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// `LOG_ERR`.
    Error = 3,
    /// `LOG_WARNING`.
    Warning = 4,
    /// `LOG_INFO`.
    Info = 6,
    /// `LOG_DEBUG`.
    Debug = 7,
}

/// A connected system-log socket.
#[derive(Debug)]
pub struct Syslog {
    sock: UnixDatagram,
    ident: &'static str,
    pid: u32,
}

impl Syslog {
    /// Connect to `/dev/log` (or `PASST_SYSLOG_SOCKET`); `None` if there is
    /// no such socket.
    pub fn connect(ident: &'static str) -> Option<Syslog> {
        let path = std::env::var_os("PASST_SYSLOG_SOCKET").unwrap_or_else(|| "/dev/log".into());
        let sock = UnixDatagram::unbound().ok()?;
        sock.connect(&path).ok()?;
        // A busy log daemon drops our messages rather than stalling us.
        sock.set_nonblocking(true).ok()?;
        Some(Syslog {
            sock,
            ident,
            pid: std::process::id(),
        })
    }

    /// The PID messages carry (after a fork: the child's).
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// The datagram for `msg` at `severity`, cut to `MAX_LEN` (1024) bytes
    /// (built in fixed storage: no allocation).
    pub fn line(&self, severity: Severity, msg: core::fmt::Arguments<'_>) -> LogLine<MAX_LEN> {
        let pri = FACILITY_DAEMON * 8 + severity as u8;
        let mut l = LogLine::new();
        let _ = write!(l, "<{pri}>{}[{}]: {msg}", self.ident, self.pid);
        l
    }

    /// Send `msg`; failures (no reader, full queue) are ignored.
    pub fn send(&self, severity: Severity, msg: core::fmt::Arguments<'_>) {
        let _ = self.sock.send(self.line(severity, msg).as_str().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_priority_ident_and_pid_and_are_cut() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let s = Syslog {
            sock: a,
            ident: "pasta",
            pid: 42,
        };
        s.send(Severity::Error, format_args!("no route"));
        let mut buf = [0u8; 2048];
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<27>pasta[42]: no route");
        assert_eq!(
            s.line(Severity::Info, format_args!("x")).as_str(),
            "<30>pasta[42]: x"
        );
        let long = "y".repeat(2000);
        let cut = s.line(Severity::Debug, format_args!("{long}"));
        assert_eq!(cut.as_str().len(), MAX_LEN);
    }
}
