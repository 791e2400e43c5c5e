//! # passt-core: user-mode networking as a sans-IO translator
//!
//! A guest (a virtual machine, or a network namespace behind a tap device)
//! sends Ethernet frames; the host offers Layer-4 sockets. `passt-core`
//! translates between the two without a TCP/IP stack of its own: a guest TCP
//! connection becomes a host TCP socket, a UDP flow a UDP socket, an ICMP
//! echo an unprivileged "ping" socket, and the host kernel does the rest.
//! What only makes sense on the guest's link (ARP, DHCP, NDP, DHCPv6, and
//! echo requests to our own link-local address) is answered here, by
//! [`l2`].
//!
//! The crate does no I/O. It never makes a syscall, reads a clock, holds a
//! file descriptor or blocks: a *driver* (the `passt` and `pasta` binaries,
//! or a VMM embedding the crate) does all of that and talks to the
//! [`Translator`] in values.
//!
//! ## The model
//!
//! ```text
//!          frames (RxBatch)                     socket ops (SockOp)
//!  guest ------------------> +-------------+ ----------------------> driver
//!        <------------------ | Translator  | <---------------------- (host
//!          frames (TxRing)   +-------------+   completions, readiness  sockets)
//!                                   ^  |          (Completion, Ready)
//!                        now (Instant) |  next deadline (poll_timeout)
//!                                      v  events, counters (Event, Stats)
//! ```
//!
//! Inputs enter through `handle_*` calls, each carrying the driver's `now`:
//! [`Translator::handle_tap`] (a batch of guest frames),
//! [`Translator::handle_ready`] (a socket became readable or writable),
//! [`Translator::handle_completion`] (the result of an operation) and
//! [`Translator::handle_timeout`]. Outputs leave through `poll_*` calls:
//! [`Translator::poll_op`] (socket work), [`Translator::poll_event`] (logs),
//! [`Translator::poll_timeout`] (the next deadline); frames for the guest are
//! written into the caller's [`buf::TxRing`] during the `handle_*` call.
//!
//! ## The driver contract
//!
//! After any `handle_*` call the driver drains `poll_op()`, runs each
//! operation and feeds its result back with `handle_completion` (draining
//! again), all **before** it refills the rx arena of the last batch (an
//! operation may name guest payload in it by [`buf::RxSpan`]) or writes out
//! the tx ring (an operation may fill slots of it). Then it writes out the
//! committed tx frames in order, drains `poll_event()`, and sleeps until
//! readiness or `poll_timeout()`, unless `wants_retry()` says work waits
//! for room in the ring: then it calls `handle_retry` at once. In code:
//!
//! ```text
//! loop {
//!     wait for tap or socket readiness, at most until t.poll_timeout()
//!         (not at all if t.wants_retry());
//!     let now = clock.now();
//!     t.handle_tap(now, &rx, &mut tx)          // or handle_ready / _timeout / _retry
//!     while let Some(op) = t.poll_op() {        // run every operation
//!         let res = host.run(op, &rx, &mut tx);
//!         if let Some(done) = res { t.handle_completion(now, done, &mut tx) }
//!     }
//!     tap.write_all(tx.iter()); tx.clear();     // one writev for the lot
//!     while let Some(e) = t.poll_event() { log(e) }
//! }
//! ```
//!
//! Sockets are named by [`SockId`]s the translator allocates: a slot index
//! for the driver's descriptor table and a generation, so that a late event
//! for a closed socket is recognised and dropped.
//!
//! ## Memory
//!
//! Everything is sized once, from [`config::Limits`], in [`Translator::new`];
//! after that no call allocates. Guest frames stay in the driver's memory
//! ([`buf::RxBatch`] checks the descriptors once), frames for the guest are
//! built in place in the slots of a preallocated [`buf::TxRing`], and host
//! payload is read by the driver straight into those slots. Queues are
//! fixed-capacity: a full one is a counted [`DropReason`], never growth.
//!
//! ## Planned for, in the API today
//!
//! - **Offloads.** Every received and sent frame carries a [`buf::Offload`]
//!   record mirroring the virtio-net header (partial checksum, GSO type and
//!   segment size), so a tap opened with `IFF_VNET_HDR` can hand in and take
//!   back 64 KiB super-frames; [`buf::TxRing`] slots have headroom for the
//!   header. pasta uses it: guest TCP super-frames are taken as single
//!   segments, and with [`config::Config::guest_gso`] TCP data to the guest
//!   leaves as super-frames with partial checksums.
//! - **Frames in someone else's memory.** An [`buf::RxBatch`] borrows any
//!   byte slice (vhost-user descriptors mapped from guest memory, a VMM's
//!   buffers); a [`buf::TxRing`] is generic over its storage
//!   ([`buf::TxStorage`]), so it can be laid over guest memory too.
//! - **Several translators in one process.** There is no global state; each
//!   [`Translator`] owns its tables and is `Send`.
//! - **A multi-threaded driver.** Flows will be partitioned by a hash of their
//!   addresses: a driver can run one translator per thread, steer guest
//!   frames by that hash (as RSS does) and give each translator a disjoint
//!   range of socket slots; nothing is shared on the hot path.
//!
//! ## Errors
//!
//! Malformed input is never a panic. Wire parsers return a [`wire::WireError`];
//! the translator turns it into a counted [`DropReason`] and an
//! [`Event::Dropped`], and goes on with the next frame. Host failures come back
//! as [`Errno`] in completions. Only start-up can fail with an error type of
//! its own ([`config::ConfigError`]).
//!
//! ## Modules
//!
//! From the bottom up; each layer imports only from the layers below it
//! (no import loops: `tests/layers.rs` checks the source).
//!
//! | layer | module | part |
//! |---|---|---|
//! | values | [`addr`], [`time`] | MAC addresses, one address type for both IP families; the driver-supplied clock |
//! | wire | [`wire`] | stateless parse/emit of every header: Ethernet, ARP, IPv4, IPv6, TCP, UDP, ICMP, ICMPv6, NDP, DHCP, DHCPv6; checksums; qemu's length-prefixed stream framing |
//! | memory | [`buf`], `lazy`, `queue` | received-frame batches, the tx ring, offload metadata; tables reserved but written on first use; fixed-capacity FIFOs |
//! | configuration | [`config`], `seen` | configuration, limits, port-forwarding specs; the guest's source addresses as seen (where inbound flows go) |
//! | contract | [`contract`] | the driver contract ([`SockOp`], [`Completion`], [`Ready`], [`Event`], [`DropReason`]...), the socket slots with their owner tokens, the one context handlers get |
//! | changes | [`change`] | run-time forwarding changes: their errors and outcomes, the bookkeeping `tcp` and `udp` share while one is in flight |
//! | flows | [`flow`], `dgram`, [`batch`] | the flow table, its keyed index and the forwarding policy (`flow::fwd`); datagram flows shared by UDP and echo; coalescing datagram sends |
//! | ingress | `ingress` | a guest frame parsed once into the item its module takes |
//! | services and transports | [`l2`], [`tcp`], [`udp`], [`icmp`] | ARP, DHCP, NDP, DHCPv6 and echo to our link-local address answered locally; TCP onto host stream sockets (segments, windows, timers, listeners, splicing); UDP flows, forwarded ports, DNS forwarding; ICMP echo through ping sockets |
//! | dispatch | `translator` | the [`Translator`]: every input to the module that owns it, [`Stats`] composed of each module's counters |
//! | configuration socket | [`control`] | the versioned wire format of run-time forwarding changes (`doc/control.md`) and the session turning a client's requests into translator calls |
//! | test doubles | `testing`, `fuzzing` | (features `testing`, `fuzzing`) fake host, fake clock, frame builders, pcap files; fuzz entry points |
//! | host side | `host` | (feature `host`) the drivers' host side, which nothing above imports: the host's network configuration (rtnetlink, `/etc/resolv.conf`, guest defaults), the socket executor, and the layer both binaries share (`host::options`: the command line, GNU `getopt_long` syntax; `host::log`, `host::daemon`, `host::error`, `host::clock`, `host::syslog`, `host::setup`, `host::driver`) |
//!
//! ## Embedding in a VMM
//!
//! A virtual machine monitor written in Rust can run the translator in its
//! own process instead of starting `passt`: the `passt` binary uses nothing
//! that is not public here, and `examples/embed.rs` is the same loop in a
//! page (`cargo run -p passt-core --example embed`). What the VMM does:
//!
//! 1. **Configure once.** Fill a [`config::Config`] (addresses, gateway,
//!    resolvers; with feature `host`, `host::read_host_net`,
//!    `host::resolv::ResolvConf` and `host::defaults::guest_defaults` derive
//!    them from the host as passt does) and put random bytes in
//!    [`config::Config::secret`]. [`Translator::new`] checks it and
//!    allocates everything; keep one translator per guest NIC.
//! 2. **Own the memory.** Guest frames are described by [`buf::FrameDesc`]s
//!    over any byte slice (a virtqueue buffer mapped from guest memory, a
//!    receive buffer) and checked once by [`buf::RxBatch::new`]. Frames for
//!    the guest are built in a [`buf::TxRing`], over a boxed slice or over
//!    storage of the VMM's ([`buf::TxStorage`]); its headroom is where a
//!    virtio-net header (or the 4-byte length of qemu's stream format,
//!    [`wire::stream`]) goes, in front of each frame, so that one
//!    `writev` or one descriptor chain carries it.
//! 3. **Run the loop**, on the VMM's clock (monotonic, as a
//!    [`time::Instant`]): guest frames to [`Translator::handle_tap`], socket
//!    readiness to [`Translator::handle_ready`], expired
//!    [`Translator::poll_timeout`] to [`Translator::handle_timeout`]; after
//!    each, drain [`Translator::poll_op`], run every [`SockOp`] on host
//!    sockets and return results with [`Translator::handle_completion`],
//!    before reusing the rx memory or handing tx frames to the guest (the
//!    driver contract above). Then deliver the committed tx frames in order
//!    and [`buf::TxRing::consume`] them, and drain
//!    [`Translator::poll_event`] into the VMM's log.
//! 4. **Offloads.** With a virtio-net device, pass the guest's
//!    `virtio_net_hdr` as [`buf::Offload`] on each [`buf::FrameDesc`]
//!    (clearing `DATA_VALID`: a guest may not claim it) and write
//!    [`buf::TxView::offload`] back into the headroom of each frame; set
//!    [`config::Config::guest_gso`] if the device negotiated TSO and
//!    checksum offload towards the guest, so TCP data goes out as
//!    super-frames.
//!
//! Nothing is global: several translators (one per NIC, or per thread with
//! frames steered by flow hash) live side by side, and each is `Send`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod addr;
pub mod batch;
pub mod buf;
pub mod change;
pub mod config;
pub mod contract;
pub mod control;
mod dgram;
pub mod flow;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "host")]
pub mod host;
pub mod icmp;
mod ingress;
pub mod l2;
mod lazy;
mod queue;
mod seen;
pub mod tcp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
mod translator;
pub mod udp;
pub mod wire;

pub use contract::{
    ChangeId, Completion, Done, DropReason, Errno, Event, HostError, Proto, Ready, SockFlags,
    SockId, SockOp, SockSpec, TcpInfo,
};
pub use translator::{Stats, Translator};
