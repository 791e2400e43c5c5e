//! The shared parts of the drivers' event loops (feature `host`). Each
//! driver's loop is its own (passt reads qemu's stream socket, pasta a tap
//! device, and each has its own descriptors to watch), but every wake-up
//! goes through the same steps, which are here, as is their setting up
//! ([`setup`]: the descriptor limit raised, the epoll instance, the socket
//! executor registering in it; [`add`] for the driver's own descriptors):
//!
//! 1. the deadline of the wait: the translator's, the executor's (muted
//!    listeners), the buffers' trim and the driver's own
//!    ([`deadline`]);
//! 2. `epoll_wait` until then on `CLOCK_MONOTONIC` ([`wait`], [`timespec`]);
//! 3. the driver's events, each followed by the executor's operations;
//! 4. the due timers: the translator's ([`translator_timers`], after which
//!    the driver flushes its frames) and the executor's
//!    ([`executor_timers`]);
//! 5. idle trimming ([`Trim`]): when no frame has moved for [`TRIM_AFTER`]
//!    after a burst, the driver gives its buffers' pages back to the kernel
//!    (`passt_sys::release_pages`);
//! 6. the translator's events into the log ([`log_events`]).
//!
//! [`capture`] records a frame in the `--pcap` file, as both do for every
//! frame in and out.
//!
//! Syscalls: `getrlimit`, `setrlimit(RLIMIT_NOFILE)`, `epoll_create1`,
//! `fcntl(F_DUPFD_CLOEXEC)`, `epoll_ctl`, `epoll_wait`,
//! `clock_gettime(CLOCK_MONOTONIC)`, and those of the executor and of the
//! capture file.

use core::time::Duration;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{epoll, Timespec};
use rustix::io::Errno;

use super::clock::now;
use super::error::Error;
use super::exec::{self, SockExec};
use super::pcap::Pcap;
use crate::buf::{RxBatch, TxRing, TxStorage};
use crate::time::Instant;
use crate::{Event, Translator};

/// Idle time after which the frame buffers' pages are given back.
pub const TRIM_AFTER: Duration = Duration::from_secs(1);

/// Set up a driver's loop around `t`: the soft descriptor limit raised to
/// the hard one ([`super::limits::raise_nofile_limit`]), an epoll
/// instance, and the socket executor for `t`'s configuration registering
/// its sockets there ([`exec::executor`]), with ICMP errors of UDP and
/// echo flows passed on to the guest (traceroute) where it reads them.
///
/// # Errors
/// If the epoll instance cannot be made or duplicated.
pub fn setup(t: &mut Translator) -> Result<(OwnedFd, SockExec), Error> {
    match super::limits::raise_nofile_limit() {
        Ok((old, new)) if old != new => {
            crate::debug!("file descriptor limit raised from {old} to {new}");
        }
        Ok((_, n)) => crate::debug!("file descriptor limit: {n}"),
        Err(e) => crate::warning!("raising the file descriptor limit: {e}"),
    }
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)
        .map_err(|e| Error::sys("creating epoll instance", e))?;
    let ep2 = ep
        .try_clone()
        .map_err(|e| Error::io("duplicating epoll descriptor", &e))?;
    let exec = exec::executor(t.config(), ep2);
    t.set_host_errors(exec.has_errqueue());
    Ok((ep, exec))
}

/// Watch the driver's descriptor `fd` (`what` it is, for the error) in
/// `epoll` for `flags` under `token`.
///
/// # Errors
/// The kernel's refusal.
pub fn add(
    epoll: &OwnedFd,
    fd: impl AsFd,
    token: u64,
    flags: epoll::EventFlags,
    what: &str,
) -> Result<(), Error> {
    epoll::add(epoll, fd, epoll::EventData::new_u64(token), flags)
        .map_err(|e| Error::sys(format!("adding {what} to epoll"), e))
}

/// Idle trimming of the frame buffers: busy while frames move; due
/// [`TRIM_AFTER`] after the last wake-up that moved any.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trim {
    busy: bool,
    at: Option<Instant>,
}

impl Trim {
    /// Frames moved (if `moved`) in this wake-up.
    pub fn moved(&mut self, moved: bool) {
        self.busy |= moved;
    }

    /// When the buffers are to be trimmed, for the wait's deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.at
    }

    /// At the end of a wake-up: whether to trim now (idle since the
    /// deadline); a busy wake-up moves the deadline instead.
    pub fn due(&mut self, now: Instant) -> bool {
        if core::mem::take(&mut self.busy) {
            self.at = Some(now + TRIM_AFTER);
            false
        } else if self.at.is_some_and(|at| at <= now) {
            self.at = None;
            true
        } else {
            false
        }
    }
}

/// The earliest of the translator's and the executor's deadlines, the
/// trim's, and the driver's own `extra` one; now, without a sleep, while
/// work waits for ring room ([`Translator::wants_retry`]).
pub fn deadline(
    t: &Translator,
    exec: &SockExec,
    trim: &Trim,
    extra: Option<Instant>,
) -> Option<Instant> {
    if t.wants_retry() {
        return Some(now());
    }
    Instant::min_deadline(
        Instant::min_deadline(t.poll_timeout(), exec.poll_timeout()),
        Instant::min_deadline(extra, trim.deadline()),
    )
}

/// A `Duration` as an epoll timeout.
pub fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Wait on `epoll` until `deadline` (forever without one) for events into
/// `events` (cleared first; its capacity is how many one wait takes). A
/// signal ends the wait early, without events.
///
/// # Errors
/// An `epoll_wait` failure other than `EINTR`.
pub fn wait(
    epoll: &OwnedFd,
    events: &mut Vec<epoll::Event>,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let timeout = deadline.map(|at| timespec(at.saturating_since(now())));
    events.clear();
    match epoll::wait(
        epoll,
        rustix::buffer::spare_capacity(events),
        timeout.as_ref(),
    ) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(Error::sys("waiting for events", e)),
    }
}

/// The translator's timers, if due at `now`, and the operations they
/// queued. Whether they ran (the driver then writes out the frames they
/// made).
pub fn translator_timers<S: TxStorage>(
    t: &mut Translator,
    exec: &mut SockExec,
    now: Instant,
    tx: &mut TxRing<S>,
) -> bool {
    if !t.poll_timeout().is_some_and(|at| at <= now) {
        return false;
    }
    t.handle_timeout(now, tx);
    exec.run_ops(t, now, &RxBatch::EMPTY, tx);
    true
}

/// What waited for room in the tx ring, once the driver has written the
/// ring out ([`Translator::wants_retry`]), and the operations it gave:
/// whether there was any (the ring is to be written out again).
pub fn retry<S: TxStorage>(
    t: &mut Translator,
    exec: &mut SockExec,
    now: Instant,
    tx: &mut TxRing<S>,
) -> bool {
    if !t.wants_retry() {
        return false;
    }
    t.handle_retry(now, tx);
    exec.run_ops(t, now, &RxBatch::EMPTY, tx);
    true
}

/// The executor's timer, if due at `now`: its muted listeners listen
/// again.
pub fn executor_timers<S: TxStorage>(
    t: &mut Translator,
    exec: &mut SockExec,
    now: Instant,
    tx: &mut TxRing<S>,
) {
    if exec.poll_timeout().is_some_and(|at| at <= now) {
        exec.run_ops(t, now, &RxBatch::EMPTY, tx);
    }
}

/// Record `frame` in the capture file, if there is one; a failure is a
/// debug message (the capture is a diagnostic: it never stops the
/// traffic).
pub fn capture(pcap: &mut Option<Pcap>, frame: &[u8]) {
    if let Some(p) = pcap {
        if let Err(e) = p.frame(frame) {
            crate::debug!("capture: {}", passt_sys::io_error_text(&e));
        }
    }
}

/// The translator's events into the log, at the program's levels: passt
/// tells the guest's addresses as information and drops per frame as
/// trace messages, pasta all of it as debug messages.
pub fn log_events(t: &mut Translator) {
    let pasta = super::log::pasta();
    while let Some(e) = t.poll_event() {
        match e {
            Event::GuestMac(mac) => crate::debug!("guest MAC address {mac}"),
            Event::GuestAddr4(a) if pasta => crate::debug!("guest IPv4 address {a}"),
            Event::GuestAddr6(a) if pasta => crate::debug!("guest IPv6 address {a}"),
            Event::GuestAddr4(a) => crate::info!("guest IPv4 address {a}"),
            Event::GuestAddr6(a) => crate::info!("guest IPv6 address {a}"),
            Event::Dropped { reason, len } if pasta => {
                crate::debug!("dropped frame of {len} bytes from guest: {reason:?}")
            }
            Event::Dropped { reason, len } => {
                crate::trace!("dropped frame of {len} bytes from guest: {reason:?}")
            }
            Event::HostDropped { reason } if pasta => {
                crate::debug!("dropped from a host socket: {reason:?}")
            }
            Event::HostDropped { reason } => {
                crate::trace!("dropped from a host socket: {reason:?}")
            }
            Event::ForwardChanged { id, proto } => {
                crate::info!("forwarding change {} ({proto:?}) in force", id.0)
            }
            Event::ForwardChangeFailed {
                id,
                proto,
                port,
                errno,
            } => crate::info!(
                "forwarding change {} ({proto:?}) failed: port {port}: errno {}",
                id.0,
                errno.0
            ),
            other => crate::debug!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_follows_the_last_busy_wake_up() {
        let mut trim = Trim::default();
        let t0 = Instant::from_nanos(1_000_000_000);
        assert!(!trim.due(t0));
        assert_eq!(trim.deadline(), None);
        trim.moved(true);
        assert!(!trim.due(t0));
        assert_eq!(trim.deadline(), Some(t0 + TRIM_AFTER));
        assert!(!trim.due(t0 + Duration::from_millis(500)));
        assert!(trim.due(t0 + TRIM_AFTER));
        assert_eq!(trim.deadline(), None);
        assert!(!trim.due(t0 + TRIM_AFTER * 2));
        assert_eq!(timespec(Duration::from_millis(1500)).tv_nsec, 500_000_000);
    }
}
