//! The event loop: qemu's stream socket on one side, the [`Translator`] on
//! the other, one clock and one timer.
//!
//! # Connections
//! One epoll instance watches the listening socket (if any) and the guest's
//! connection, level-triggered. One guest at a time: a connection that
//! arrives while one is served is accepted and closed at once (qrap's probe
//! and a second qemu see end-of-file). When the guest disconnects, passt
//! waits for the next one, or exits with `-1/--one-off` (implied by `-F`).
//! The translator lives on across guests.
//!
//! A client that reconnects at once may be seen on the listener before its
//! old connection's hang-up is: before refusing a connection, passt polls
//! the guest's (zero timeout) and, if that one has ended, takes in what it
//! still holds and hangs it up first, so the new one is served. Events of
//! the old connection still in the same `epoll_wait` batch are then
//! skipped (the token is the same).
//!
//! With `-c`, the configuration socket ([`ConfSocket`]) and its clients
//! are in the epoll set too (tokens from
//! [`passt_core::host::conf::TOKEN_CONF`]), with or without a guest; its
//! sessions run at the end of every wake-up, and the socket file is removed
//! at exit.
//!
//! # Descriptors
//! [`prepare`] raises the soft `RLIMIT_NOFILE` to the hard limit
//! ([`passt_core::host::limits::raise_nofile_limit`]). When descriptors run
//! out all the same, the guest's new connections to the host are reset and
//! its datagrams dropped and counted (the translator), and listeners must
//! not spin: a level-triggered listener whose `accept` fails with `EMFILE`
//! would be ready again at once. passt keeps one spare descriptor (a
//! duplicate of the listener) to give up for such an `accept`, so that a
//! guest can still connect (or a second client is still refused) when the
//! guest's flows hold every descriptor; if there is none to give, the
//! listener is muted (`epoll_ctl(MOD)` with no events) until the guest
//! hangs up or [`UNMUTE_AFTER`] has passed. The executor does the same for
//! forwarded ports' listeners ([`SockExec::poll_timeout`] is one more
//! deadline), and the log is rate-limited ([`passt_core::host::log`]).
//!
//! # Reading
//! Each wake-up reads the socket into the receive buffer of a
//! [`StreamDecoder`] (256 KiB plus one record of the largest size), up to
//! [`READS_PER_WAKEUP`] `recv` calls, stopping at `EAGAIN` or at a read
//! shorter than the room it had (the socket is drained). After each read,
//! complete frames are taken out in batches of up to [`BATCH`] descriptors
//! into an [`RxBatch`] over the same buffer (no copy), handed to
//! [`Translator::handle_tap`], and the translator's socket operations run
//! ([`SockExec::run_ops`]) before the buffer is read into again. What the
//! translator answers (mostly ACKs) collects in the ring over all reads of
//! a wake-up and is written once at its end (earlier only if the ring is
//! half full), so one read does not cost one write. A record with a
//! length of 0 or shorter than an Ethernet header is skipped; one longer
//! than the largest frame resets the connection. Both are logged, and the
//! decoder counts them.
//!
//! # Writing
//! Frames for the guest are built in a [`TxRing`] with [`LEN_PREFIX`] bytes
//! of headroom; a flush writes every frame's length into its headroom and
//! sends up to [`IOVECS`] records per `sendmsg` (`MSG_NOSIGNAL`), each
//! record one contiguous slice of the ring. If the socket is full, the rest
//! stays in the ring (a record cut by a short write continues where it
//! stopped), the connection is watched for `EPOLLOUT` instead of
//! `EPOLLIN`, and reading resumes once the ring is empty: the guest is
//! slowed down rather than frames lost.
//!
//! # Host sockets
//! [`SockExec`] runs the translator's socket operations on host sockets,
//! registered in the same epoll instance under the token `SockId + 1`
//! (above the two tokens of the listener and the guest); their readiness
//! goes to [`Translator::handle_ready`]. The listening sockets of forwarded
//! ports are opened by [`prepare`], before privileges are dropped.
//!
//! # Time
//! `epoll_wait` sleeps until the translator's next deadline
//! ([`Translator::poll_timeout`]) on `CLOCK_MONOTONIC`; due deadlines go to
//! [`Translator::handle_timeout`]. Frames made while no guest is connected
//! are dropped.
//!
//! # Memory
//! The tx ring has slots of 64 KiB, but costs only what is written: it
//! holds at most [`TX_BUDGET`] bytes of frames at once (a socket read gets
//! fewer slots beyond that), is flushed once half of that is queued, and
//! starts again from its first slot once empty. A guest that reads slowly
//! keeps it from emptying, and a ring goes round all its slots then: it has
//! only as many as the budget holds frames of the MTU ([`tx_slots`]: 128
//! at 65520, [`TX_SLOTS`] for small frames, which write one page a slot). When
//! no frame has moved for [`TRIM_AFTER`](driver::TRIM_AFTER) after a burst, its pages go back
//! to the kernel ([`passt_sys::release_pages`]).
//!
//! The guest's connection gets send and receive buffers as large as
//! `net.core.wmem_max`/`rmem_max` allow ([`GUEST_SOCKET_BUFFER`]), so that
//! a flush of many large frames is one `sendmsg`, not one per few frames.
//!
//! Syscalls: `epoll_create1`, `epoll_ctl`, `epoll_wait`,
//! `clock_gettime(CLOCK_MONOTONIC)`, `accept4`, `recvfrom`, `sendmsg`,
//! `close`, `open(O_PATH)` of the socket's directory, `unlinkat` (at exit), `fcntl(F_DUPFD_CLOEXEC)`, `poll`,
//! `getrlimit`, `setrlimit(RLIMIT_NOFILE)`,
//! `setsockopt(SO_SNDBUF, SO_RCVBUF)`, and the socket calls of
//! [`passt_core::host::exec`] (some through [`passt_sys`]).

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use passt_core::buf::{FrameDesc, RxBatch, TxRing, MAX_FRAME_LEN};
use passt_core::host::clock::now;
use passt_core::host::conf::ConfSocket;
use passt_core::host::driver::{self, Trim};
use passt_core::host::exec::{id_of, ready_of, SockExec, UNMUTE_AFTER};
use passt_core::time::Instant;
use passt_core::wire::stream::{self, StreamDecoder, LEN_PREFIX};
use passt_core::Translator;
use rustix::event::{epoll, Timespec};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};

use crate::Error;
use crate::{debug, info, trace, warning};
use passt_core::host::pcap::Pcap;
use passt_sys::ErrnoText;

/// Most frames handed to the translator in one batch.
pub(crate) const BATCH: usize = 128;

/// Receive buffer beyond the one largest record it must hold.
const RX_BUFFER: usize = 256 * 1024;

/// `recv` calls per wake-up before timers and other events get a turn.
pub(crate) const READS_PER_WAKEUP: usize = 16;

/// Most frames the translator may queue for the guest between flushes.
const TX_SLOTS: usize = 512;

/// Fewest slots of the tx ring.
const TX_SLOTS_MIN: usize = 128;

/// Slots of the tx ring for frames of `mtu`: as many as [`TX_BUDGET`]
/// holds, between [`TX_SLOTS_MIN`] and [`TX_SLOTS`] (see "Memory").
fn tx_slots(mtu: u16) -> usize {
    let frame = usize::from(mtu) + 14;
    (TX_BUDGET / frame).clamp(TX_SLOTS_MIN, TX_SLOTS)
}

/// Most bytes of frames the tx ring holds at once (128 frames of 64 KiB);
/// see "Memory" in the module docs.
const TX_BUDGET: usize = 8 << 20;

/// Records per `sendmsg`.
pub(crate) const IOVECS: usize = 128;

/// `SO_SNDBUF` and `SO_RCVBUF` asked for on the guest's connection.
const GUEST_SOCKET_BUFFER: usize = 1 << 30;

/// epoll token of the listening socket.
const TOKEN_LISTENER: u64 = 0;
/// epoll token of the guest's connection.
const TOKEN_GUEST: u64 = 1;

/// Events collected per `epoll_wait`.
const EPOLL_EVENTS: usize = 256;

/// Rounds of reads ([`READS_PER_WAKEUP`] each) spent taking in what an
/// ended guest connection still holds before a new one is served.
const REAP_ROUNDS: usize = 64;

/// Where guests come from.
pub(crate) enum Source {
    /// A listening socket at a path (removed at exit).
    Listener(UnixListener, PathBuf),
    /// One connection handed over with `-F`.
    Connected(OwnedFd),
}

/// Why the guest's connection ends.
enum Hangup {
    /// The guest closed it.
    Closed,
    /// An error, or a stream we cannot follow.
    Reset(Reset),
}

/// Why the guest's connection was reset (no allocation: told when it
/// happens).
#[derive(Debug, Clone, Copy)]
enum Reset {
    /// The receive buffer holds no complete record and has no room left.
    RxFull,
    /// `recv` failed.
    Read(Errno),
    /// `sendmsg` failed.
    Write(Errno),
    /// `epoll_ctl` on the connection failed.
    Epoll(Errno),
    /// A record we cannot follow.
    BadFrame(stream::StreamError),
    /// The ring has no room for the length prefix (a bug).
    NoHeadroom,
    /// A batch the translator refused (a bug).
    BatchRefused,
}

impl core::fmt::Display for Reset {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Reset::RxFull => f.write_str("receive buffer full"),
            Reset::Read(e) => write!(f, "reading: {}", ErrnoText(*e)),
            Reset::Write(e) => write!(f, "writing: {}", ErrnoText(*e)),
            Reset::Epoll(e) => write!(f, "epoll: {}", ErrnoText(*e)),
            Reset::BadFrame(e) => write!(f, "bad frame from guest: {e}"),
            Reset::NoHeadroom => f.write_str("internal error: no headroom"),
            Reset::BatchRefused => f.write_str("internal error: batch refused"),
        }
    }
}

/// The event loop's state; everything is allocated here, once.
pub(crate) struct Driver {
    t: Translator,
    /// Host sockets and the work of every socket operation.
    exec: SockExec,
    listener: Option<(UnixListener, PathBuf)>,
    /// The listening socket's directory, held open, and its name there:
    /// once sandboxed no path resolves, so the socket is removed at the
    /// end through this (`unlinkat`).
    sock_dir: Option<(OwnedFd, PathBuf)>,
    guest: Option<OwnedFd>,
    one_off: bool,
    epoll: OwnedFd,
    dec: StreamDecoder,
    descs: Box<[FrameDesc]>,
    tx: TxRing,
    /// Bytes of the oldest tx record already written.
    tx_sent: usize,
    /// Reading paused until the tx ring drains.
    blocked: bool,
    pcap: Option<Pcap>,
    guests: u64,
    /// Changes whenever the guest connects or hangs up: events of an old
    /// connection in the same `epoll_wait` batch are skipped.
    epoch: u64,
    /// A descriptor kept to give up for an `accept` that found none.
    reserve: Option<OwnedFd>,
    /// Since when the listener is muted for want of descriptors.
    listener_muted: Option<Instant>,
    /// When the tx ring's pages are given back, if frames moved since.
    trim: Trim,
    /// Room for what one `epoll_wait` reports.
    events: Vec<epoll::Event>,
    /// The configuration socket (`-c`), if offered.
    conf: Option<ConfSocket>,
}

/// Set up the loop for guests from `source`, and open the listening
/// sockets of forwarded ports (the translator's first operations): called
/// while privileges last.
///
/// # Errors
/// An unexpected failure of epoll.
pub(crate) fn prepare(
    mut t: Translator,
    source: Source,
    one_off: bool,
    pcap: Option<Pcap>,
    conf: Option<ConfSocket>,
) -> Result<Driver, Error> {
    let (ep, mut exec) = driver::setup(&mut t)?;
    let mut tx = TxRing::new(tx_slots(t.config().mtu), MAX_FRAME_LEN, LEN_PREFIX);
    tx.set_budget(TX_BUDGET);
    exec.run_ops(&mut t, now(), &RxBatch::EMPTY, &mut tx);
    // No guest yet: whatever that made for one is dropped.
    tx.clear();
    let (listener, guest, one_off) = match source {
        Source::Listener(l, p) => {
            driver::add(&ep, &l, TOKEN_LISTENER, epoll::EventFlags::IN, "listener")?;
            (Some((l, p)), None, one_off)
        }
        Source::Connected(fd) => (None, Some(fd), true),
    };
    if let Some(c) = &conf {
        c.register(&ep)?;
    }
    let sock_dir = listener.as_ref().and_then(|(_, p)| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        Some((fd, PathBuf::from(p.file_name()?)))
    });
    let d = Driver {
        t,
        exec,
        listener,
        sock_dir,
        guest: None,
        one_off,
        epoll: ep,
        dec: StreamDecoder::with_capacity(RX_BUFFER + stream::MIN_BUFFER),
        descs: vec![FrameDesc::default(); BATCH].into_boxed_slice(),
        tx,
        tx_sent: 0,
        blocked: false,
        pcap,
        guests: 0,
        epoch: 0,
        reserve: None,
        listener_muted: None,
        trim: Trim::default(),
        events: Vec::with_capacity(EPOLL_EVENTS),
        conf,
    };
    let mut d = d;
    d.refill_reserve();
    if let Some(fd) = guest {
        d.connect(fd)?;
    }
    Ok(d)
}

/// Serve guests until `-1` says stop (or forever).
///
/// # Errors
/// An unexpected failure of epoll or of the listening socket.
pub(crate) fn run(mut d: Driver) -> Result<(), Error> {
    driver::log_events(&mut d.t);
    let r = d.run();
    if let Some((dir, name)) = &d.sock_dir {
        let _ = rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty());
    }
    if let Some(c) = &d.conf {
        c.remove();
    }
    r
}

impl Driver {
    fn run(&mut self) -> Result<(), Error> {
        // Allocated with the driver, at setup.
        let mut events = core::mem::take(&mut self.events);
        loop {
            let muted = self.listener_muted.map(|at| at + UNMUTE_AFTER);
            let deadline = driver::deadline(&self.t, &self.exec, &self.trim, muted);
            driver::wait(&self.epoll, &mut events, deadline)?;
            let epoch = self.epoch;
            for ev in events.iter().copied() {
                match ev.data.u64() {
                    TOKEN_LISTENER => {
                        if self.accept()? {
                            return Ok(());
                        }
                    }
                    // An event of a connection hung up since the wait.
                    TOKEN_GUEST if self.epoch != epoch => {}
                    TOKEN_GUEST => {
                        if let Err(h) = self.guest_event(ev.flags) {
                            if self.hang_up(h) {
                                return Ok(());
                            }
                        }
                    }
                    token if ConfSocket::owns(token) => {
                        if let Some(c) = &mut self.conf {
                            c.ready(
                                &self.epoll,
                                &mut self.t,
                                &mut self.exec,
                                token,
                                ev.flags,
                                &mut self.tx,
                            );
                        }
                    }
                    token => {
                        if let Some(id) = id_of(token) {
                            let now = now();
                            self.t
                                .handle_ready(now, id, ready_of(ev.flags), &mut self.tx);
                            self.exec
                                .run_ops(&mut self.t, now, &RxBatch::EMPTY, &mut self.tx);
                            if self.tx.len() >= self.tx.capacity() / 2
                                || self.tx.bytes() >= TX_BUDGET / 2
                            {
                                if let Err(h) = self.flush() {
                                    if self.hang_up(h) {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Err(h) = self.flush() {
                if self.hang_up(h) {
                    return Ok(());
                }
            }
            let now = now();
            if driver::translator_timers(&mut self.t, &mut self.exec, now, &mut self.tx) {
                if let Err(h) = self.flush() {
                    if self.hang_up(h) {
                        return Ok(());
                    }
                }
            }
            if driver::retry(&mut self.t, &mut self.exec, now, &mut self.tx) {
                if let Err(h) = self.flush() {
                    if self.hang_up(h) {
                        return Ok(());
                    }
                }
            }
            driver::executor_timers(&mut self.t, &mut self.exec, now, &mut self.tx);
            if self
                .listener_muted
                .is_some_and(|at| at + UNMUTE_AFTER <= now)
            {
                self.unmute_listener();
            }
            if let Some(c) = &mut self.conf {
                c.run(&self.epoll, &mut self.t, &mut self.exec, &mut self.tx);
                if let Err(h) = self.flush() {
                    if self.hang_up(h) {
                        return Ok(());
                    }
                }
            }
            if self.trim.due(now) {
                if let Some(ring) = self.tx.idle_storage() {
                    passt_sys::release_pages(ring);
                }
            }
            driver::log_events(&mut self.t);
        }
    }

    /// A connection on the listener: the guest, or one too many. Whether
    /// passt should exit (`-1`, and the guest turned out to be gone).
    fn accept(&mut self) -> Result<bool, Error> {
        if self.guest.is_some() {
            if let Some(exit) = self.reap_guest() {
                if exit {
                    return Ok(true);
                }
            }
        }
        let Some((l, _)) = &self.listener else {
            return Ok(false);
        };
        let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
        let fd = match rustix::net::accept_with(l, flags) {
            Ok(fd) => fd,
            Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => return Ok(false),
            // Out of descriptors: give up the spare one for this
            // connection; without it, the connection waits in the backlog
            // and the listener is muted (level-triggered, it would be ready
            // again at once).
            Err(e @ (Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) => {
                let spare = matches!(e, Errno::MFILE | Errno::NFILE) && self.reserve.is_some();
                self.reserve = None;
                match rustix::net::accept_with(l, flags) {
                    Ok(fd) if spare => {
                        warning!(
                            "accepting a connection: {}: used the spare descriptor",
                            ErrnoText(e)
                        );
                        fd
                    }
                    Ok(fd) => fd,
                    Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => {
                        self.refill_reserve();
                        return Ok(false);
                    }
                    Err(e) => {
                        warning!(
                            "accepting a connection: {}: not listening for a while",
                            ErrnoText(e)
                        );
                        self.mute_listener();
                        self.refill_reserve();
                        return Ok(false);
                    }
                }
            }
            Err(e) => return Err(Error::sys("accepting a connection", e)),
        };
        if self.guest.is_some() {
            info!("another guest is connected: refusing the new connection");
            drop(fd);
            self.refill_reserve();
            return Ok(false);
        }
        self.connect(fd)?;
        self.refill_reserve();
        Ok(false)
    }

    /// Before a new connection is refused: whether the guest's has ended
    /// without its hang-up being processed yet (the client reconnected at
    /// once). If so, what it still holds is taken in (bounded) and it is
    /// hung up: `Some` with whether passt should exit.
    fn reap_guest(&mut self) -> Option<bool> {
        use rustix::event::{PollFd, PollFlags};
        let fd = self.guest.as_ref()?;
        let mut pfd = [PollFd::new(fd, PollFlags::IN | PollFlags::RDHUP)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if rustix::event::poll(&mut pfd, Some(&zero)).ok()? == 0 {
            return None;
        }
        let rev = pfd[0].revents();
        let closed = rev.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL);
        if !closed && !rev.contains(PollFlags::RDHUP) {
            return None;
        }
        // The peer is done sending: its last frames, then its end of file.
        if !self.blocked {
            for _ in 0..REAP_ROUNDS {
                match self.read() {
                    Err(h) => return Some(self.hang_up(h)),
                    Ok(()) if self.blocked => break,
                    Ok(()) => {}
                }
            }
        }
        // Shut down for writing only, and still reading: still the guest.
        closed.then(|| self.hang_up(Hangup::Closed))
    }

    /// Keep a spare descriptor (if one is free) for an `accept` that finds
    /// none.
    fn refill_reserve(&mut self) {
        if self.reserve.is_some() {
            return;
        }
        if let Some((l, _)) = &self.listener {
            self.reserve = rustix::io::fcntl_dupfd_cloexec(l, 0).ok();
        }
    }

    /// Stop watching the listener for a while (out of descriptors).
    fn mute_listener(&mut self) {
        let Some((l, _)) = &self.listener else {
            return;
        };
        if self.listener_muted.is_none()
            && epoll::modify(
                &self.epoll,
                l,
                epoll::EventData::new_u64(TOKEN_LISTENER),
                epoll::EventFlags::empty(),
            )
            .is_ok()
        {
            self.listener_muted = Some(now());
        }
    }

    /// Watch the listener again.
    fn unmute_listener(&mut self) {
        self.refill_reserve();
        let Some((l, _)) = &self.listener else {
            return;
        };
        if self.listener_muted.take().is_some() {
            if let Err(e) = epoll::modify(
                &self.epoll,
                l,
                epoll::EventData::new_u64(TOKEN_LISTENER),
                epoll::EventFlags::IN,
            ) {
                warning!("listening again: {}", ErrnoText(e));
            }
        }
    }

    /// Start serving a guest connection.
    fn connect(&mut self, fd: OwnedFd) -> Result<(), Error> {
        // Large buffers both ways (the kernel caps them at
        // `net.core.[wr]mem_max`): with the default (about 200 KiB, three
        // 64 KiB frames) every flush ends in `EAGAIN` after a few frames.
        for set in [
            rustix::net::sockopt::set_socket_send_buffer_size,
            rustix::net::sockopt::set_socket_recv_buffer_size,
        ] {
            if let Err(e) = set(&fd, GUEST_SOCKET_BUFFER) {
                debug!("guest connection: setting a buffer size: {}", ErrnoText(e));
            }
        }
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        driver::add(&self.epoll, &fd, TOKEN_GUEST, flags, "guest connection")?;
        self.guests += 1;
        self.epoch += 1;
        info!("guest connected");
        self.dec.reset();
        self.tx.clear();
        self.tx_sent = 0;
        self.blocked = false;
        self.guest = Some(fd);
        Ok(())
    }

    /// Close the guest's connection; whether passt should exit.
    fn hang_up(&mut self, h: Hangup) -> bool {
        match h {
            Hangup::Closed => info!("guest disconnected"),
            Hangup::Reset(why) => warning!("guest connection reset: {why}"),
        }
        if self.dec.pending() > 0 {
            debug!(
                "dropped {} bytes of an unfinished frame from the guest",
                self.dec.pending()
            );
        }
        if let Some(fd) = self.guest.take() {
            let _ = epoll::delete(&self.epoll, &fd);
        }
        self.epoch += 1;
        // A descriptor is free again.
        self.unmute_listener();
        self.dec.reset();
        self.tx.clear();
        self.tx_sent = 0;
        self.blocked = false;
        let s = self.dec.stats();
        debug!(
            "stream so far: {} frames, {} bytes in; skipped {} empty, {} short, {} too long, {} unfinished",
            s.frames, s.bytes, s.empty, s.runts, s.too_long, s.truncated
        );
        if self.one_off {
            info!("client closed connection, exiting (one-off)");
            return true;
        }
        self.listener.is_none()
    }

    /// Readiness of the guest's connection.
    fn guest_event(&mut self, flags: epoll::EventFlags) -> Result<(), Hangup> {
        if flags.contains(epoll::EventFlags::OUT) {
            self.flush()?;
            if !self.blocked {
                // Frames may be waiting in the buffer since we paused.
                self.frames()?;
                self.flush()?;
            }
        }
        if flags.contains(epoll::EventFlags::IN) && !self.blocked {
            self.read()?;
        } else if flags.intersects(epoll::EventFlags::ERR | epoll::EventFlags::HUP) {
            return Err(Hangup::Closed);
        }
        Ok(())
    }

    /// Read what the guest sent and hand it to the translator.
    fn read(&mut self) -> Result<(), Hangup> {
        for _ in 0..READS_PER_WAKEUP {
            let Some(fd) = &self.guest else {
                return Ok(());
            };
            let buf = self.dec.read_buf();
            if buf.is_empty() {
                return Err(Hangup::Reset(Reset::RxFull));
            }
            let room = buf.len();
            // A stream socket's `recv` returns all that is queued up to the
            // room given: a shorter read drained it, and another would only
            // find `EAGAIN` (the socket is level-triggered, so what comes
            // later wakes the next `epoll_wait`).
            let drained = match rustix::net::recv(fd, buf, RecvFlags::DONTWAIT) {
                Ok((0, _)) => return Err(Hangup::Closed),
                Ok((n, _)) => {
                    self.dec.commit_read(n);
                    n < room
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Hangup::Reset(Reset::Read(e))),
            };
            self.frames()?;
            if self.blocked {
                // The guest is not reading: no more input until it does.
                break;
            }
            // Replies (mostly ACKs) collect over the reads of a wake-up
            // and go out in one write at its end, unless the ring fills.
            if self.tx.len() >= self.tx.capacity() / 2 || self.tx.bytes() >= TX_BUDGET / 2 {
                self.flush()?;
                if self.blocked {
                    break;
                }
            }
            if drained {
                break;
            }
        }
        Ok(())
    }

    /// Take complete frames out of the decoder, a batch at a time.
    fn frames(&mut self) -> Result<(), Hangup> {
        loop {
            let mut count = 0;
            while count < BATCH {
                match self.dec.next_frame() {
                    None => break,
                    Some(Ok(desc)) => {
                        self.descs[count] = desc;
                        count += 1;
                    }
                    Some(Err(e)) if e.is_fatal() => {
                        return Err(Hangup::Reset(Reset::BadFrame(e)));
                    }
                    Some(Err(e)) => debug!("skipped a record from the guest: {e}"),
                }
            }
            if count == 0 {
                return Ok(());
            }
            let Ok(rx) = RxBatch::new(self.dec.data(), &self.descs[..count]) else {
                return Err(Hangup::Reset(Reset::BatchRefused));
            };
            for (_, f, _) in rx.iter() {
                trace!("frame from guest, {} bytes", f.len());
                driver::capture(&mut self.pcap, f);
            }
            let now = now();
            self.t.handle_tap(now, &rx, &mut self.tx);
            // Operations may name bytes in `rx`: they run before the buffer
            // is read into again, and before the ring is written out.
            self.exec.run_ops(&mut self.t, now, &rx, &mut self.tx);
            if count < BATCH {
                return Ok(());
            }
            self.flush()?;
            if self.blocked {
                return Ok(());
            }
        }
    }

    /// Write out committed frames; pause reading if the socket is full.
    fn flush(&mut self) -> Result<(), Hangup> {
        let Some(fd) = &self.guest else {
            self.tx.clear();
            return Ok(());
        };
        if stream::fill_ring_prefixes(&mut self.tx).is_err() {
            return Err(Hangup::Reset(Reset::NoHeadroom));
        }
        self.trim.moved(!self.tx.is_empty());
        while !self.tx.is_empty() {
            let mut iov = [IoSlice::new(&[]); IOVECS];
            let mut n_iov = 0;
            for (i, v) in self.tx.iter().take(IOVECS).enumerate() {
                let rec = stream::framed(&v);
                let skip = if i == 0 { self.tx_sent } else { 0 };
                iov[i] = IoSlice::new(rec.get(skip..).unwrap_or_default());
                n_iov += 1;
            }
            let sent = match rustix::net::sendmsg(
                fd,
                &iov[..n_iov],
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    self.pause(true)?;
                    return Ok(());
                }
                Err(e) => return Err(Hangup::Reset(Reset::Write(e))),
            };
            let mut left = sent;
            let mut done = 0;
            for v in self.tx.iter() {
                let rest = stream::framed(&v).len() - self.tx_sent;
                if left < rest {
                    self.tx_sent += left;
                    break;
                }
                left -= rest;
                self.tx_sent = 0;
                done += 1;
                trace!("frame to guest, {} bytes", v.frame.len());
                driver::capture(&mut self.pcap, v.frame);
            }
            self.tx.consume(done);
        }
        self.pause(false)
    }

    /// Watch the connection for room to write (and stop reading), or the
    /// other way round.
    fn pause(&mut self, blocked: bool) -> Result<(), Hangup> {
        if blocked == self.blocked {
            return Ok(());
        }
        let Some(fd) = &self.guest else {
            return Ok(());
        };
        // Not `RDHUP` while blocked: a guest that shut down its sending
        // side but reads would make it ready all along (level-triggered)
        // and the loop would spin until there is room. Its end of stream
        // is seen by the next read; a closed connection still reports
        // `HUP`.
        let flags = if blocked {
            epoll::EventFlags::OUT
        } else {
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP
        };
        epoll::modify(
            &self.epoll,
            fd.as_fd(),
            epoll::EventData::new_u64(TOKEN_GUEST),
            flags,
        )
        .map_err(|e| Hangup::Reset(Reset::Epoll(e)))?;
        self.blocked = blocked;
        Ok(())
    }
}
