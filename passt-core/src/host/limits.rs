//! Process limits both frontends share (feature `host`): the soft
//! `RLIMIT_NOFILE` raised to the hard one at start, and a per-call-site
//! rate limit for their log messages.
//!
//! # Descriptors
//!
//! Every flow costs a socket (a TCP connection to the host, a UDP flow's
//! socket, a ping socket), so the soft limit of 1024 most sessions start
//! with runs out at about a thousand flows while the hard limit (often
//! 524288) would allow far more. [`raise_nofile_limit`] lifts the soft
//! limit to the hard one, as any server that counts its descriptors may
//! (setrlimit(2): an unprivileged process may raise its soft limit up to
//! the hard one). The frontends call it after forking any child (pasta's
//! spawned command keeps the limits it was given), and what happens when
//! even the hard limit is reached is the translator's and the executor's
//! business (see [`super::exec`], "Out of descriptors").
//!
//! # Log rate
//!
//! A failure that repeats with every wake-up of the loop (a peer that
//! reconnects in a loop, descriptors that ran out) must not write a line
//! each time: [`RateLimit`] lets [`LOG_BURST`] messages of one call site
//! through per second of the caller's clock and counts the rest; the first
//! message let through after suppressed ones carries their number.
//!
//! # Log lines
//!
//! A message is formatted into a [`LogLine`], fixed storage on the stack,
//! so that logging never allocates once the frontends run; what does not
//! fit is cut at a character boundary.
//!
//! Syscalls: `getrlimit`, `setrlimit` (`RLIMIT_NOFILE`).

use std::sync::Mutex;

use rustix::io::Errno;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The soft limit tried when the hard one is unlimited (`RLIM_INFINITY`
/// cannot be a descriptor limit: Linux bounds it by `fs.nr_open`, whose
/// default this is).
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit. Returns the soft limit
/// before and after (equal if it already was the hard one).
///
/// # Errors
/// What `setrlimit` returned (the soft limit is then unchanged).
pub fn raise_nofile_limit() -> Result<(u64, u64), Errno> {
    let lim = getrlimit(Resource::Nofile);
    let old = lim.current.unwrap_or(u64::MAX);
    let want = lim.maximum.unwrap_or(NR_OPEN_DEFAULT);
    if old >= want {
        return Ok((old, old));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: lim.maximum,
        },
    )?;
    Ok((old, want))
}

/// Messages of one call site let through per second.
pub const LOG_BURST: u32 = 5;

/// A rate limit for one log call site: [`LOG_BURST`] per second, the rest
/// counted. `const`, so that a macro can keep one in a `static`.
#[derive(Debug)]
pub struct RateLimit {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// The second (of the caller's clock) the count is for.
    second: u64,
    /// Messages let through in it.
    count: u32,
    /// Messages held back since the last one let through.
    suppressed: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimit {
    /// A limit with nothing counted yet.
    pub const fn new() -> Self {
        RateLimit {
            state: Mutex::new(Window {
                second: 0,
                count: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a message at `now_secs` (seconds of a monotonic clock) may be
    /// written: `Some(n)` with the number held back before it, `None` if it
    /// is held back (and counted).
    pub fn admit(&self, now_secs: u64) -> Option<u64> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if w.second != now_secs {
            w.second = now_secs;
            w.count = 0;
        }
        if w.count >= LOG_BURST {
            w.suppressed += 1;
            return None;
        }
        w.count += 1;
        Some(core::mem::take(&mut w.suppressed))
    }
}

/// A line of text formatted into fixed storage of `N` bytes (see the
/// module docs): writes past the end are cut at a character boundary and
/// never fail, and nothing allocates.
#[derive(Clone)]
pub struct LogLine<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for LogLine<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LogLine<N> {
    /// An empty line.
    pub const fn new() -> Self {
        LogLine {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters of `&str`s are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    /// Empty the line.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// End the line with a newline, in place of its last character if it
    /// is full.
    pub fn end_line(&mut self) {
        if N == 0 {
            return;
        }
        if self.len == N {
            let mut cut = N - 1;
            while !self.is_boundary(cut) {
                cut -= 1;
            }
            self.len = cut;
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
    }

    fn is_boundary(&self, at: usize) -> bool {
        // A boundary: not a UTF-8 continuation byte.
        at == 0 || at >= self.len || (self.buf[at] & 0xc0) != 0x80
    }
}

impl<const N: usize> core::fmt::Write for LogLine<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = N - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl<const N: usize> core::fmt::Debug for LogLine<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_second_passes_and_the_rest_is_counted() {
        let r = RateLimit::new();
        for _ in 0..LOG_BURST {
            assert_eq!(r.admit(7), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(r.admit(7), None);
        }
        // The next second: the first message tells how many were held.
        assert_eq!(r.admit(8), Some(1000));
        assert_eq!(r.admit(8), Some(0));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (old, new) = raise_nofile_limit().unwrap();
        assert!(new >= old);
        let lim = getrlimit(Resource::Nofile);
        assert_eq!(lim.current, Some(new));
    }

    #[test]
    fn log_lines_are_cut_at_character_boundaries() {
        use core::fmt::Write;
        let mut l = LogLine::<8>::new();
        write!(l, "ab{}", 12).unwrap();
        assert_eq!(l.as_str(), "ab12");
        // "é" is two bytes: the one that does not fit is left out whole.
        write!(l, "xyzé!").unwrap();
        assert_eq!(l.as_str(), "ab12xyz");
        l.end_line();
        assert_eq!(l.as_str(), "ab12xyz\n");
        l.clear();
        write!(l, "1234567é").unwrap();
        l.end_line();
        assert_eq!(l.as_str(), "1234567\n");
        let mut l = LogLine::<8>::new();
        write!(l, "123456é").unwrap();
        assert_eq!(l.as_str(), "123456é");
        l.end_line();
        // The newline replaces the whole last character.
        assert_eq!(l.as_str(), "123456\n");
    }
}
