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
//! edge-triggered (as the executor registers every connected socket); any
//! readiness of either pumps both directions, so a direction that stopped
//! because its pipe was full (the destination would not take more:
//! backpressure, we read no further from the source) resumes on the
//! destination's writability edge, and one that stopped on an empty source
//! resumes on the source's readability edge.
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
//! closes both sockets.
//!
//! Syscalls: `pipe2`, `fcntl(F_SETPIPE_SZ, F_GETPIPE_SZ)`, `splice`,
//! `shutdown`, `setsockopt(SO_LINGER)`.

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

    /// Move what can move from `src` to `dst`.
    fn pump(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Result<(), RErrno> {
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
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
            if self.pending > 0 {
                match pipe::splice(&self.r, None, dst, None, self.pending, flags) {
                    Ok(n) => {
                        self.pending -= n.min(self.pending);
                        self.moved += n as u64;
                        progress |= n > 0;
                    }
                    Err(RErrno::AGAIN) => {}
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

    /// Pump both directions. `Some` once the splice is over: its result,
    /// for the completion of [`crate::SockOp::Splice`].
    pub(crate) fn pump(
        &mut self,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
    ) -> Option<Result<Done, Errno>> {
        let r = self.a_to_b.pump(a, b).and_then(|()| self.b_to_a.pump(b, a));
        if let Err(e) = r {
            // Reset both ways on close.
            let _ = net::sockopt::set_socket_linger(a, Some(core::time::Duration::ZERO));
            let _ = net::sockopt::set_socket_linger(b, Some(core::time::Duration::ZERO));
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
            res = sp.pump(a.as_fd(), b.as_fd());
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
        let res = sp.pump(a.as_fd(), b.as_fd());
        assert_eq!(res, Some(Err(Errno::ECONNRESET)));
    }
}
