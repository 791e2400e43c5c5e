//! The event loop: the tap device on one side, the [`Translator`] on the
//! other, one clock and one timer. Start-up is in [`crate::setup`].
//!
//! # The loop
//! One epoll instance watches the non-blocking tap descriptor
//! (level-triggered); its timeout is the translator's next deadline
//! ([`Translator::poll_timeout`]) on the driver's clock, `CLOCK_MONOTONIC` as
//! nanoseconds in a [`passt_core::time::Instant`]. On each wake-up:
//!
//! 1. read up to [`BATCH`] frames, one `read(2)` each, packed into the rx
//!    arena, and describe them in an [`RxBatch`]; with virtio-net headers
//!    ([`Tap::vnet`]) each read lands the header just in front of the
//!    frame, and the header becomes the frame's offload metadata (a TCP
//!    super-frame of up to 64 KiB needs a slot of [`MAX_FRAME_LEN`] free
//!    whatever the MTU, so a batch of super-frames ends when the arena has
//!    less room than that);
//! 2. [`Translator::handle_tap`], then [`SockExec::run_ops`] runs every
//!    socket operation on host sockets (registered in the same epoll
//!    instance, token `SockId + 1`) and feeds completions back; socket
//!    readiness goes to [`Translator::handle_ready`] the same way;
//! 3. write each committed frame of the [`TxRing`] with one `write(2)` (a tap
//!    takes one frame per write), its virtio-net header written into the
//!    slot's headroom first, then clear the ring;
//! 4. if the deadline has passed, [`Translator::handle_timeout`], and steps
//!    2–3 again;
//! 5. drain [`Translator::poll_event`] to the debug log.
//!
//! Besides the tap, the epoll set holds the [`Watch`]es that end pasta (the
//! spawned command or the target process exiting, the namespace file
//! deleted), under tokens from [`TOKEN_WATCH`] up; when one says so, the
//! process exits with the status it gives.
//!
//! With `-c`, the configuration socket ([`ConfSocket`]) and its clients
//! are in the epoll set too (tokens from
//! [`passt_core::host::conf::TOKEN_CONF`]); its sessions run at the end of
//! every wake-up, after the wake-up's operations (a change's reply waits
//! for its listeners), and the socket file is removed at exit.
//!
//! With a [`Forwarder`] (`auto`), its scan is one more deadline: when
//! due, [`Forwarder::tick`] tells the translator which `auto` ports to
//! open or close (`-T auto` and `-U auto` included), and those operations
//! run at once. Socket readiness goes through [`SockExec::ready`], which keeps
//! the sockets of spliced connections (pasta's loopback fast path: `-t`
//! from the host's loopback, and every `-T` connection) for its splice
//! engine and hands the rest to the translator. Sockets inside the
//! namespace (the namespace side of `-t` splices, the `-T` listeners, the
//! `-U` sockets) are made on the [`NsThread`] ([`Driver::set_ns_thread`]).
//! `-U` datagrams move between those sockets and host sockets through the
//! executor's held buffer, as flows of the translator's UDP table (see
//! `passt_core::udp`): no thread besides the loop and the [`NsThread`].
//!
//! The listening sockets of forwarded ports (`-t`, `-u`, and `-T`, `-U`
//! inside the namespace) are the translator's first operations:
//! [`Driver::open_listeners`] runs them before privileges are dropped.
//!
//! Level-triggered readiness means a batch that stopped at [`BATCH`] frames
//! is simply continued on the next wake-up, after timers had their turn.
//!
//! # Memory
//! The rx arena and the tx ring are sized for the largest frames (the
//! ring: [`TX_SLOTS`] slots of 64 KiB), but cost only what is written: the
//! ring holds at most [`TX_BUDGET`] bytes of frames at once (a socket read
//! gets fewer slots beyond that), is flushed once half of that is
//! queued, and starts again from its first slot once empty. After a burst,
//! when no frame has moved for [`TRIM_AFTER`](driver::TRIM_AFTER), both buffers' pages go back
//! to the kernel ([`passt_sys::release_pages`]), so that an idle pasta is
//! as small as a fresh one.
//!
//! # Descriptors
//! [`Driver::new`] raises the soft `RLIMIT_NOFILE` to the hard limit
//! ([`passt_core::host::limits::raise_nofile_limit`]; a spawned command,
//! forked before, keeps the limits pasta was given). When descriptors run
//! out all the same, a guest's connection is reset and a datagram dropped
//! and counted (the translator's part), and a forwarded port's listener
//! that cannot accept is muted until a socket is closed, or for
//! [`passt_core::host::exec::UNMUTE_AFTER`] ([`SockExec::poll_timeout`] is
//! one more deadline of the loop): no spin, and errors are rate-limited in
//! the log ([`passt_core::host::log`]).
//!
//! # Errors
//! Losing the tap (`EBADFD`: the device was deleted) or any unexpected
//! `epoll`/`read` failure ends the process with a message and status 1. A
//! frame the kernel refuses on write (link down: `EIO`; no buffer space) is
//! dropped and logged.
//!
//! Syscalls: `epoll_create1`, `epoll_ctl`, `epoll_wait`,
//! `clock_gettime(CLOCK_MONOTONIC)`, `read`, `write`, `fcntl(F_DUPFD_CLOEXEC)`,
//! `getrlimit`, `setrlimit(RLIMIT_NOFILE)`,
//! and the socket calls of [`passt_core::host::exec`] (some through
//! [`passt_sys`]).

use core::convert::Infallible;
use std::os::fd::OwnedFd;

use passt_core::buf::{FrameDesc, RxBatch, TxRing, MAX_FRAME_LEN};
pub(crate) use passt_core::host::clock::now;
use passt_core::host::conf::ConfSocket;
use passt_core::host::driver::{self, Trim};
use passt_core::host::exec::{id_of, SockExec};
use passt_core::Translator;
use rustix::event::epoll;
use rustix::io::Errno;

use crate::fwd::Forwarder;
use crate::netns::NsThread;
use crate::tap::{emit_vnet_hdr, parse_vnet_hdr, Tap, VNET_HDR_LEN};
use crate::watch::Watch;
use crate::{debug, Error};
use passt_core::host::pcap::Pcap;

/// Most frames read from the tap per wake-up.
pub(crate) const BATCH: usize = 64;

/// Rx arena size: room for a batch of ordinary frames or a dozen TCP
/// super-frames, and always for one frame of the largest size with its
/// virtio-net header.
const ARENA_LEN: usize = 1024 * 1024 + MAX_FRAME_LEN + 16;

/// Where in each 16-byte-aligned arena slot a read starts with a
/// virtio-net header: the frame then starts aligned.
const VNET_AT: usize = 16 - VNET_HDR_LEN;

/// Frames the translator may queue for the namespace between two flushes.
const TX_SLOTS: usize = 256;

/// epoll token of the tap descriptor.
const TOKEN_TAP: u64 = 0;

/// epoll token of the first [`Watch`] (the others follow): far above any
/// token of the tap or of sockets.
const TOKEN_WATCH: u64 = 1 << 62;

/// Events collected per `epoll_wait`.
const EPOLL_EVENTS: usize = 256;

/// Most bytes of frames the tx ring holds at once (128 frames of 64 KiB).
const TX_BUDGET: usize = 8 << 20;

/// The event loop's state: everything is allocated here, once.
pub(crate) struct Driver {
    t: Translator,
    tap: Tap,
    epoll: OwnedFd,
    /// Host sockets and the work of every socket operation.
    exec: SockExec,
    arena: Box<[u8]>,
    descs: Box<[FrameDesc]>,
    tx: TxRing,
    pcap: Option<Pcap>,
    /// Frames for the namespace the kernel refused.
    tx_dropped: u64,
    /// The tap's frames carry a virtio-net header ([`Tap::vnet`]).
    vnet: bool,
    /// Frames from the tap dropped for their virtio-net header (a
    /// segmentation type we do not handle).
    rx_bad_vnet: u64,
    /// What ends pasta besides errors.
    watches: Vec<Box<dyn Watch>>,
    /// The `auto` scans ([`crate::fwd`]).
    fwd: Option<Forwarder>,
    /// When the frame buffers are given back, if frames moved since.
    trim: Trim,
    /// Room for what one `epoll_wait` reports.
    events: Vec<epoll::Event>,
    /// The configuration socket (`-c`), if offered.
    conf: Option<ConfSocket>,
}

impl Driver {
    /// Set up the loop around `t` and `tap`.
    ///
    /// # Errors
    /// If the epoll instance cannot be made.
    pub(crate) fn new(mut t: Translator, tap: Tap, pcap: Option<Pcap>) -> Result<Driver, Error> {
        let vnet = tap.vnet();
        let (ep, exec) = driver::setup(&mut t)?;
        driver::add(&ep, &tap, TOKEN_TAP, epoll::EventFlags::IN, "tap")?;
        Ok(Driver {
            t,
            tap,
            epoll: ep,
            exec,
            arena: vec![0u8; ARENA_LEN].into_boxed_slice(),
            descs: vec![FrameDesc::default(); BATCH].into_boxed_slice(),
            tx: {
                let mut tx =
                    TxRing::new(TX_SLOTS, MAX_FRAME_LEN, if vnet { VNET_HDR_LEN } else { 0 });
                tx.set_budget(TX_BUDGET);
                tx
            },
            vnet,
            rx_bad_vnet: 0,
            pcap,
            tx_dropped: 0,
            watches: Vec::new(),
            fwd: None,
            trim: Trim::default(),
            events: Vec::with_capacity(EPOLL_EVENTS),
            conf: None,
        })
    }

    /// Make the sockets of `Open`s with `SockFlags::IN_NS` (the namespace
    /// side of spliced connections, the `-T` listeners, the `-U` sockets)
    /// on `ns`, the thread that stays in the namespace: non-blocking,
    /// close-on-exec, stream or datagram; the executor binds them
    /// (`SO_REUSEADDR`, `IPV6_V6ONLY` for IPv6, the namespace's loopback)
    /// and registers them. Called before [`Driver::open_listeners`].
    pub(crate) fn set_ns_thread(&mut self, ns: NsThread) {
        self.exec.set_ns_sockets(Box::new(ns));
    }

    /// Also wait on `w`; the process exits when it says so.
    ///
    /// # Errors
    /// If its descriptor cannot be added to the epoll set.
    pub(crate) fn add_watch(&mut self, w: Box<dyn Watch>) -> Result<(), Error> {
        let token = TOKEN_WATCH + self.watches.len() as u64;
        epoll::add(
            &self.epoll,
            w.fd(),
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN,
        )
        .map_err(|e| Error::sys("adding a watch to epoll", e))?;
        self.watches.push(w);
        Ok(())
    }

    /// Serve the configuration socket `c` from the loop.
    ///
    /// # Errors
    /// If it cannot be added to the epoll set.
    pub(crate) fn set_conf(&mut self, c: ConfSocket) -> Result<(), Error> {
        c.register(&self.epoll)?;
        self.conf = Some(c);
        Ok(())
    }

    /// Run `f`'s scans from the loop (`auto` forwarding).
    pub(crate) fn set_forwarder(&mut self, f: Forwarder) {
        self.fwd = Some(f);
    }

    /// The translator (for start-up checks).
    pub(crate) fn translator(&self) -> &Translator {
        &self.t
    }

    /// A watch fired: exit if it says so.
    fn watch_ready(&mut self, token: u64) {
        let i = (token - TOKEN_WATCH) as usize;
        if let Some(code) = self.watches.get_mut(i).and_then(|w| w.ready()) {
            driver::log_events(&mut self.t);
            if let Some(c) = &self.conf {
                c.remove();
            }
            std::process::exit(code);
        }
    }

    /// Open the listening sockets of forwarded ports: the operations the
    /// translator queues at start-up. Called before privileges are dropped
    /// (ports below 1024).
    ///
    /// # Errors
    /// If frames queued meanwhile cannot be written to the tap.
    pub(crate) fn open_listeners(&mut self) -> Result<(), Error> {
        self.exec
            .run_ops(&mut self.t, now(), &RxBatch::EMPTY, &mut self.tx);
        driver::log_events(&mut self.t);
        self.flush()
    }

    /// Run until a fatal error, or until a watch ends the process.
    ///
    /// # Errors
    /// The fatal error, for `main` to print.
    pub(crate) fn run(&mut self) -> Result<Infallible, Error> {
        let r = self.serve();
        if let Some(c) = &self.conf {
            c.remove();
        }
        r
    }

    /// The loop of [`Driver::run`].
    fn serve(&mut self) -> Result<Infallible, Error> {
        // Allocated with the driver, at setup.
        let mut events = core::mem::take(&mut self.events);
        loop {
            let scans = self.fwd.as_ref().and_then(Forwarder::deadline);
            let deadline = driver::deadline(&self.t, &self.exec, &self.trim, scans);
            driver::wait(&self.epoll, &mut events, deadline)?;
            for ev in events.iter().copied() {
                let token = ev.data.u64();
                if token == TOKEN_TAP {
                    self.tap_input(ev.flags)?;
                } else if (TOKEN_WATCH..TOKEN_WATCH + self.watches.len() as u64).contains(&token) {
                    self.watch_ready(token);
                } else if ConfSocket::owns(token) {
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
                } else if let Some(id) = id_of(token) {
                    let now = now();
                    self.exec
                        .ready(&mut self.t, now, id, ev.flags, &mut self.tx);
                    self.exec
                        .run_ops(&mut self.t, now, &RxBatch::EMPTY, &mut self.tx);
                    if self.tx.len() >= TX_SLOTS / 2 || self.tx.bytes() >= TX_BUDGET / 2 {
                        self.flush()?;
                    }
                }
            }
            self.flush()?;
            let now = now();
            if driver::translator_timers(&mut self.t, &mut self.exec, now, &mut self.tx) {
                self.flush()?;
            }
            if driver::retry(&mut self.t, &mut self.exec, now, &mut self.tx) {
                self.flush()?;
            }
            driver::executor_timers(&mut self.t, &mut self.exec, now, &mut self.tx);
            if let Some(f) = &mut self.fwd {
                if f.tick(now, &mut self.t) {
                    self.exec
                        .run_ops(&mut self.t, now, &RxBatch::EMPTY, &mut self.tx);
                    self.flush()?;
                }
            }
            if let Some(c) = &mut self.conf {
                c.run(&self.epoll, &mut self.t, &mut self.exec, &mut self.tx);
                self.flush()?;
            }
            if self.trim.due(now) {
                self.trim();
            }
            driver::log_events(&mut self.t);
        }
    }

    /// Give the pages of the frame buffers back to the kernel (idle after
    /// a burst: their contents no longer matter).
    fn trim(&mut self) {
        passt_sys::release_pages(&mut self.arena);
        if let Some(ring) = self.tx.idle_storage() {
            passt_sys::release_pages(ring);
        }
    }

    /// Read a batch of frames from the tap and hand them to the translator.
    fn tap_input(&mut self, flags: epoll::EventFlags) -> Result<(), Error> {
        let mut count = 0;
        let mut off = 0;
        let (skip, hdr_len) = if self.vnet {
            (VNET_AT, VNET_HDR_LEN)
        } else {
            (0, 0)
        };
        while count < BATCH {
            let Some(buf) = self
                .arena
                .get_mut(off + skip..off + skip + hdr_len + MAX_FRAME_LEN)
            else {
                break;
            };
            let n = match self.tap.read_frame(buf) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => return Err(tap_gone(&self.tap, "reading from", e)),
            };
            if n == 0 {
                // Not something a tap does; don't spin on it.
                break;
            }
            let Some(len) = n.checked_sub(hdr_len).filter(|&l| l > 0) else {
                self.rx_bad_vnet += 1;
                continue;
            };
            crate::trace!("frame from namespace, {len} bytes");
            let (hdr, frame) = buf.split_at(hdr_len);
            let offload = match <&[u8; VNET_HDR_LEN]>::try_from(hdr) {
                Ok(h) => match parse_vnet_hdr(h) {
                    Some(o) => o,
                    None => {
                        self.rx_bad_vnet += 1;
                        debug!(
                            "frame of {len} bytes from {} dropped: segmentation type {:#04x} \
                             not handled ({} so far)",
                            self.tap.name(),
                            h[1],
                            self.rx_bad_vnet
                        );
                        continue;
                    }
                },
                // No header on this tap.
                Err(_) => Default::default(),
            };
            driver::capture(&mut self.pcap, &frame[..len]);
            // Both fit in u32: the arena is far smaller than 4 GiB.
            let mut d = FrameDesc::new((off + skip + hdr_len) as u32, len as u32);
            d.offload = offload;
            self.descs[count] = d;
            count += 1;
            // Keep frames 16-byte aligned in the arena.
            off += (skip + hdr_len + len + 15) & !15;
        }
        if count == 0 {
            if flags.intersects(epoll::EventFlags::ERR | epoll::EventFlags::HUP) {
                return Err(Error::msg(format!(
                    "tap device {} reported an error or hang-up",
                    self.tap.name()
                )));
            }
            return Ok(());
        }
        self.trim.moved(true);
        let rx = RxBatch::new(&self.arena, &self.descs[..count])
            .map_err(|e| Error::msg(format!("internal error: rx batch refused: {e}")))?;
        let now = now();
        self.t.handle_tap(now, &rx, &mut self.tx);
        // Operations may name bytes in `rx`: they run before the arena is
        // read into again.
        self.exec.run_ops(&mut self.t, now, &rx, &mut self.tx);
        self.flush()
    }

    /// Write every committed frame to the tap, one `write(2)` each, behind
    /// its virtio-net header if the tap has them.
    fn flush(&mut self) -> Result<(), Error> {
        if self.vnet {
            self.tx.fill_headroom(|hr, _, offload| {
                if let Ok(h) = <&mut [u8; VNET_HDR_LEN]>::try_from(hr) {
                    emit_vnet_hdr(offload, h);
                }
            });
        }
        self.trim.moved(!self.tx.is_empty());
        for v in self.tx.iter() {
            crate::trace!("frame to namespace, {} bytes", v.frame.len());
            driver::capture(&mut self.pcap, v.frame);
            // The headroom is exactly the header (or empty).
            match self.tap.write_frame(v.with_headroom) {
                Ok(()) => {}
                // Link down, queue full, or a frame the device refuses: the
                // frame is lost, as on a real link.
                Err(
                    e @ (Errno::IO
                    | Errno::AGAIN
                    | Errno::NOBUFS
                    | Errno::NOMEM
                    | Errno::INVAL
                    | Errno::MSGSIZE),
                ) => {
                    self.tx_dropped += 1;
                    debug!(
                        "frame of {} bytes to {} dropped: {} ({} so far)",
                        v.frame.len(),
                        self.tap.name(),
                        passt_sys::ErrnoText(e),
                        self.tx_dropped
                    );
                }
                Err(e) => return Err(tap_gone(&self.tap, "writing to", e)),
            }
        }
        self.tx.clear();
        Ok(())
    }
}

/// The error for a failed tap read or write.
fn tap_gone(tap: &Tap, doing: &str, e: Errno) -> Error {
    if e == Errno::BADFD {
        Error::msg(format!("tap device {} went away", tap.name()))
    } else {
        Error::sys(format!("{doing} tap device {}", tap.name()), e)
    }
}
