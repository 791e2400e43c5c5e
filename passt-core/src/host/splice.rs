//! The splice engine: moves a spliced connection's bytes between two
//! kernel stream sockets with `splice(2)`, through one pipe per direction,
//! never through our memory (pasta's loopback fast path, see
//! [`crate::tcp`] and [`crate::SockOp::Splice`]).
//!
//! # Model
//!
//! A splice joins socket `a` (the accepted one) and socket `b` (the one
//! connected for it). Each direction has a non-blocking pipe (`pipe2(2)`
//! with `O_NONBLOCK | O_CLOEXEC`, grown to [`PIPE_SIZE`] with
//! `F_SETPIPE_SZ` where the per-user pipe budget allows) and a count of
//! the bytes sitting in it. Pumping a direction alternates
//! `splice(src → pipe)` (at most the room left in the pipe) and
//! `splice(pipe → dst)`, both `SPLICE_F_MOVE | SPLICE_F_NONBLOCK`, until
//! neither moves anything. Both sockets stay in the driver's epoll set,
//! edge-triggered (as the executor registers every connected socket); a
//! readiness pumps only what it concerns (`Wake`): readability (or end
//! of file) of a socket the direction from it, writability the direction
//! toward it. So a direction that stopped because its pipe was full (the
//! destination would not take more: backpressure, we read no further from
//! the source) resumes on the destination's writability edge, one that
//! stopped on an empty source on the source's readability edge, and the
//! idle direction of a one-way transfer costs no call per wake-up.
//!
//! # Closing
//!
//! End of file from a source (a `splice` returning 0), once the pipe has
//! drained, is passed on as `shutdown(SHUT_WR)` of the destination; the
//! other direction keeps going (half-close). When both directions are
//! shut, the splice ends with [`Done::Spliced`]. Any other error of a
//! `splice` (a reset, `EPIPE` from a destination that closed) sets
//! `SO_LINGER` to zero on both sockets, so that their `close` sends a reset
//! each way, and ends the splice with that error. The translator then
//! closes both sockets. An error or hang-up readiness also reads
//! `SO_ERROR` of both sockets: a reset of a socket that no direction reads
//! or writes at the moment (its own direction ended, nothing queued for
//! it) is found there. `Splice::progress` answers the translator's
//! progress checks (idle timeouts), and `abort` is the reset of a splice
//! the translator gives up.
//!
//! Syscalls: `pipe2`, `fcntl(F_SETPIPE_SZ, F_GETPIPE_SZ)`, `splice`,
//! `shutdown`, `setsockopt(SO_LINGER)`, `getsockopt(SO_ERROR)`.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno as RErrno;
use rustix::net;
use rustix::pipe::{self, PipeFlags, SpliceFlags};

use crate::{Done, Errno, SockId};

/// Pipe capacity asked for, per direction.
pub const PIPE_SIZE: usize = 512 << 10;

/// One direction: its pipe and what sits in it.
#[derive(Debug)]
struct Dir {
    r: OwnedFd,
    w: OwnedFd,
    /// Bytes in the pipe.
    pending: usize,
    /// The pipe's capacity.
    cap: usize,
    /// The source reached end of file.
    eof: bool,
    /// The destination was shut for writing.
    shut: bool,
    /// Bytes delivered to the destination.
    moved: u64,
}

impl Dir {
    fn new() -> Result<Dir, RErrno> {
        let (r, w) = pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // Past the per-user budget the kernel refuses: keep the default.
        let _ = pipe::fcntl_setpipe_size(&w, PIPE_SIZE);
        let cap = pipe::fcntl_getpipe_size(&w).unwrap_or(4096).max(4096);
        Ok(Dir {
            r,
            w,
            pending: 0,
            cap,
            eof: false,
            shut: false,
            moved: 0,
        })
    }

    fn done(&self) -> bool {
        self.shut
    }

    /// Move what can move from `src` to `dst`. A short (or refused) write
    /// to `dst` means its buffer is full (the kernel then raises its
    /// writability edge when room frees up): from there on only the pipe
    /// is filled, without asking `dst` again. A short read proves nothing
    /// (the pipe may have run out of slots), so reading goes on until
    /// `EAGAIN`.
    fn pump(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Result<(), RErrno> {
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        let mut dst_full = false;
        loop {
            let mut progress = false;
            if !self.eof && self.pending < self.cap {
                match pipe::splice(src, None, &self.w, None, self.cap - self.pending, flags) {
                    Ok(0) => {
                        self.eof = true;
                        progress = true;
                    }
                    Ok(n) => {
                        self.pending += n;
                        progress = true;
                    }
                    Err(RErrno::AGAIN) => {}
                    Err(RErrno::INTR) => progress = true,
                    Err(e) => return Err(e),
                }
            }
            if self.pending > 0 && !dst_full {
                match pipe::splice(&self.r, None, dst, None, self.pending, flags) {
                    Ok(n) => {
                        self.pending -= n.min(self.pending);
                        self.moved += n as u64;
                        progress |= n > 0;
                        dst_full = self.pending > 0;
                    }
                    Err(RErrno::AGAIN) => dst_full = true,
                    Err(RErrno::INTR) => progress = true,
                    Err(e) => return Err(e),
                }
            }
            if self.eof && self.pending == 0 && !self.shut {
                self.shut = true;
                match net::shutdown(dst, net::Shutdown::Write) {
                    Ok(()) | Err(RErrno::NOTCONN) => {}
                    Err(e) => return Err(e),
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }
}

/// Which directions a readiness asks to pump, from the epoll flags of one
/// socket of the splice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wake {
    /// Pump from `a` to `b`.
    pub(crate) a_to_b: bool,
    /// Pump from `b` to `a`.
    pub(crate) b_to_a: bool,
    /// Check both sockets for a pending error (`SO_ERROR`).
    pub(crate) check: bool,
}

impl Wake {
    /// Pump both ways (the start of a splice).
    pub(crate) const BOTH: Wake = Wake {
        a_to_b: true,
        b_to_a: true,
        check: false,
    };

    /// What readiness `flags` of socket `a` (else `b`) asks for: data or
    /// end of file to read pumps from it, room to write pumps toward it,
    /// an error or a hang-up both ways with an error check.
    pub(crate) fn of(flags: rustix::event::epoll::EventFlags, is_a: bool) -> Wake {
        use rustix::event::epoll::EventFlags as F;
        let bad = flags.intersects(F::ERR | F::HUP);
        let from = bad || flags.intersects(F::IN | F::RDHUP);
        let to = bad || flags.contains(F::OUT);
        let (a_to_b, b_to_a) = if is_a { (from, to) } else { (to, from) };
        Wake {
            a_to_b,
            b_to_a,
            check: bad,
        }
    }
}

/// One spliced connection.
#[derive(Debug)]
pub(crate) struct Splice {
    /// The socket the translator knows the splice by.
    pub(crate) a: SockId,
    /// The other socket.
    pub(crate) b: SockId,
    a_to_b: Dir,
    b_to_a: Dir,
}

impl Splice {
    /// Make the pipes for a splice between `a` and `b`.
    pub(crate) fn new(a: SockId, b: SockId) -> Result<Splice, RErrno> {
        Ok(Splice {
            a,
            b,
            a_to_b: Dir::new()?,
            b_to_a: Dir::new()?,
        })
    }

    /// Pump the directions `wake` asks for. `Some` once the splice is
    /// over: its result, for the completion of [`crate::SockOp::Splice`].
    pub(crate) fn pump(
        &mut self,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
        wake: Wake,
    ) -> Option<Result<Done, Errno>> {
        let mut r = Ok(());
        if wake.a_to_b {
            r = self.a_to_b.pump(a, b);
        }
        if wake.b_to_a && r.is_ok() {
            r = self.b_to_a.pump(b, a);
        }
        if wake.check && r.is_ok() {
            // A reset on a socket that no direction reads or writes now
            // (its source already ended, nothing queued for it) is only
            // seen here.
            for fd in [a, b] {
                if let Ok(Err(e)) = net::sockopt::socket_error(fd) {
                    r = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = r {
            abort(a, b);
            return Some(Err(Errno(e.raw_os_error())));
        }
        if self.a_to_b.done() && self.b_to_a.done() {
            return Some(Ok(Done::Spliced {
                to_peer: self.a_to_b.moved,
                from_peer: self.b_to_a.moved,
            }));
        }
        None
    }

    /// Progress so far, for [`Done::Splicing`].
    pub(crate) fn progress(&self) -> Done {
        Done::Splicing {
            moved: self.a_to_b.moved + self.b_to_a.moved,
            half_closed: self.a_to_b.shut || self.b_to_a.shut,
        }
    }
}

/// Make the `close` of both sockets send a reset each way (`SO_LINGER` of
/// zero): the splice ended in an error, or was given up.
pub(crate) fn abort(a: BorrowedFd<'_>, b: BorrowedFd<'_>) {
    let _ = net::sockopt::set_socket_linger(a, Some(core::time::Duration::ZERO));
    let _ = net::sockopt::set_socket_linger(b, Some(core::time::Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::os::fd::{AsFd, OwnedFd};

    /// A connected pair of loopback TCP sockets: (ours, theirs).
    fn pair() -> (OwnedFd, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        (OwnedFd::from(s), c)
    }

    #[test]
    fn bytes_cross_both_ways_and_end_of_file_is_passed_on() {
        let (a, mut ca) = pair();
        let (b, mut cb) = pair();
        let mut sp = Splice::new(SockId::from_u64(1), SockId::from_u64(2)).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let writer = {
            let d = data.clone();
            let mut ca2 = ca.try_clone().unwrap();
            std::thread::spawn(move || {
                ca2.write_all(&d).unwrap();
                ca2.shutdown(Shutdown::Write).unwrap();
            })
        };
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            cb.read_to_end(&mut got).unwrap();
            cb.write_all(b"reply").unwrap();
            cb.shutdown(Shutdown::Write).unwrap();
            got
        });
        let mut res = None;
        for _ in 0..100_000 {
            res = sp.pump(a.as_fd(), b.as_fd(), Wake::BOTH);
            if res.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got, data);
        let mut back = Vec::new();
        ca.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"reply");
        assert_eq!(
            res,
            Some(Ok(Done::Spliced {
                to_peer: data.len() as u64,
                from_peer: 5
            }))
        );
    }

    #[test]
    fn a_reset_ends_the_splice_with_the_error() {
        let (a, ca) = pair();
        let (b, _cb) = pair();
        let mut sp = Splice::new(SockId::from_u64(1), SockId::from_u64(2)).unwrap();
        net::sockopt::set_socket_linger(&ca, Some(core::time::Duration::ZERO)).unwrap();
        drop(ca);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let res = sp.pump(a.as_fd(), b.as_fd(), Wake::BOTH);
        assert_eq!(res, Some(Err(Errno::ECONNRESET)));
    }

    #[test]
    fn progress_counts_bytes_both_ways_and_a_half_close() {
        let (a, mut ca) = pair();
        let (b, mut cb) = pair();
        let mut sp = Splice::new(SockId::from_u64(1), SockId::from_u64(2)).unwrap();
        ca.write_all(b"0123456789").unwrap();
        ca.shutdown(Shutdown::Write).unwrap();
        cb.write_all(b"abc").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(sp.pump(a.as_fd(), b.as_fd(), Wake::BOTH), None);
        assert_eq!(
            sp.progress(),
            Done::Splicing {
                moved: 13,
                half_closed: true
            }
        );
        let mut got = Vec::new();
        cb.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"0123456789");
        let mut back = [0u8; 3];
        ca.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"abc");
    }

    #[test]
    fn readiness_pumps_only_the_directions_it_concerns() {
        use rustix::event::epoll::EventFlags as F;
        let w = |ab, ba, check| Wake {
            a_to_b: ab,
            b_to_a: ba,
            check,
        };
        assert_eq!(Wake::of(F::IN, true), w(true, false, false));
        assert_eq!(Wake::of(F::IN, false), w(false, true, false));
        assert_eq!(Wake::of(F::OUT, true), w(false, true, false));
        assert_eq!(Wake::of(F::OUT | F::RDHUP, false), w(true, true, false));
        assert_eq!(Wake::of(F::ERR, false), w(true, true, true));
        assert_eq!(Wake::of(F::HUP, true), w(true, true, true));
    }

    #[test]
    fn a_reset_after_end_of_file_is_found_by_the_error_check() {
        let (a, ca) = pair();
        let (b, _cb) = pair();
        let mut sp = Splice::new(SockId::from_u64(1), SockId::from_u64(2)).unwrap();
        ca.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(sp.pump(a.as_fd(), b.as_fd(), Wake::BOTH), None);
        // Nothing reads from `a` (ended) or writes to it (nothing queued):
        // only the error check sees its reset.
        net::sockopt::set_socket_linger(&ca, Some(core::time::Duration::ZERO)).unwrap();
        drop(ca);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let wake = Wake {
            check: false,
            ..Wake::BOTH
        };
        assert_eq!(sp.pump(a.as_fd(), b.as_fd(), wake), None);
        let flags = rustix::event::epoll::EventFlags::ERR | rustix::event::epoll::EventFlags::HUP;
        // A reset in CLOSE_WAIT is reported as EPIPE (RFC 9293 §3.10.7.4
        // leaves the error to the implementation).
        let res = sp.pump(a.as_fd(), b.as_fd(), Wake::of(flags, true));
        assert!(
            matches!(res, Some(Err(Errno::EPIPE | Errno::ECONNRESET))),
            "{res:?}"
        );
    }

    #[test]
    fn abort_resets_both_connections_on_close() {
        let (a, mut ca) = pair();
        let (b, mut cb) = pair();
        abort(a.as_fd(), b.as_fd());
        drop((a, b));
        let mut buf = [0u8; 4];
        for c in [&mut ca, &mut cb] {
            let e = c.read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        }
    }
}
