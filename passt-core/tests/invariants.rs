//! Property-style invariants of the TCP translator, each over hundreds of
//! deterministic pseudo-random conversations on the fake host.
//!
//! The translator keeps no stream data of its own: the host kernel's socket
//! buffers are the only buffers (`passt_core::tcp`). That is safe only if
//! four things always hold, and these tests check them after every call
//! into the translator, whatever the guest and the host do:
//!
//! 1. **Nothing beyond the guest's window.** Every data segment to the
//!    guest ends at or before SND.UNA + SND.WND (RFC 9293 §3.8.6): the
//!    highest ACK the translator was given plus the window of the last
//!    segment that acknowledged that much or more, scaled by the guest's
//!    shift (RFC 7323 §2.3; a SYN's window is never scaled, §2.2), in
//!    sequence-number arithmetic.
//! 2. **Nothing leaves a host socket before the guest has it.** The bytes
//!    removed from the socket (`SockOp::Discard`) never exceed what the
//!    guest acknowledged, and once the operations of the call that
//!    delivered an ACK have run they are exactly that: the peer's data is
//!    in the guest or still in the kernel, never lost, and never left
//!    behind once acknowledged.
//! 3. **Nothing acknowledged to the guest before the host took it.** The
//!    ACK number of every segment to the guest covers at most the bytes
//!    the executor reported written by `Send` completions (plus the
//!    guest's FIN once `shutdown(SHUT_WR)` was asked for), and what was
//!    written is the guest's stream, in order, each byte once.
//! 4. **The host's stream arrives intact.** Each read (`SockOp::Peek`,
//!    from `skip` past the bytes already removed) becomes segments at the
//!    matching sequence numbers, every byte the guest gets (retransmissions
//!    included) is the peer's byte at that offset, and in the end the guest
//!    has reassembled all of it, followed by our FIN.
//!
//! A scenario is drawn from a seeded xorshift generator: IPv4 or IPv6, MTU
//! 1500 or 65520, a connection opened by the guest or accepted on a
//! forwarded port, the guest's MSS, window scale (none, 0 to 14) and
//! receive buffer (down to nothing, which is a zero window), sequence
//! numbers near the wrap. During a chaotic phase the guest's application
//! reads at its own pace, its ACKs come in pieces, late, twice or not at
//! all, segments both ways are lost, the host socket completes reads with
//! fewer bytes than asked and refuses part of writes, and time jumps past
//! retransmission timeouts; then a calm phase lets the conversation finish,
//! both FINs exchanged and the socket closed. ACKs to the guest may be
//! delayed by a timer: the tests only look at what *was* sent, and time
//! always moves a little between rounds.
//!
//! A failure names the seed, the round and the last events of the
//! conversation; `INVARIANTS_SEED=<seed>` runs that one scenario alone
//! (`INVARIANTS_TRACE=1` prints every event as it happens).

use core::net::{IpAddr, Ipv6Addr};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use passt_core::addr::SockAddrAny;
use passt_core::config::ports::FwdSpec;
use passt_core::testing::build::{
    parse_tcp, tcp4, tcp6, test_config, test_ip6, TcpOut, TcpSeg, GUEST4, GUEST6, REMOTE4,
};
use passt_core::testing::Harness;
use passt_core::wire::tcp::{TcpFlags, TcpOptionsWriter};
use passt_core::{Completion, Done, Errno, Ready, SockFlags, SockId, SockOp, TcpInfo};

/// A remote IPv6 host.
const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
/// Scenarios per invariant.
const RUNS: u64 = 220;
/// Rounds of the chaotic phase, at most.
const CHAOS_ROUNDS: u32 = 600;
/// Rounds the calm phase may take to finish the conversation.
const CALM_ROUNDS: u32 = 4000;

// ---------------------------------------------------------------------------
// The tests: one per invariant, each over its own run of seeds.
// ---------------------------------------------------------------------------

/// Invariant 1: no data segment ends past SND.UNA + SND.WND.
#[test]
fn no_segment_goes_beyond_the_guests_window() {
    let Some(cov) = run_many(Check::Window, 0x5eed_0001) else {
        return;
    };
    assert!(
        cov.data_segments > 10_000,
        "too few segments checked: {cov:?}"
    );
    assert!(cov.zero_windows > 0 && cov.scaled > 0, "{cov:?}");
}

/// Invariant 2: the bytes discarded from the socket never exceed, and
/// after each call's operations equal, the bytes the guest acknowledged.
#[test]
fn nothing_leaves_the_socket_before_the_guest_acknowledged_it() {
    let Some(cov) = run_many(Check::Discard, 0x5eed_0002) else {
        return;
    };
    assert!(cov.discards > 1000, "too few discards checked: {cov:?}");
    assert!(cov.late_or_dup_acks > 0 && cov.ack_pieces > 0, "{cov:?}");
}

/// Invariant 3: no ACK to the guest covers bytes the host socket has not
/// taken.
#[test]
fn nothing_is_acknowledged_before_the_host_socket_took_it() {
    let Some(cov) = run_many(Check::Ack, 0x5eed_0003) else {
        return;
    };
    assert!(cov.acks_checked > 10_000, "too few ACKs checked: {cov:?}");
    assert!(cov.short_sends > 0 && cov.refused_sends > 0, "{cov:?}");
}

/// Invariant 4: the guest gets the host's stream, byte for byte, at the
/// sequence numbers of the offsets it was read from.
#[test]
fn the_guest_gets_the_hosts_stream_at_the_offsets_it_was_read_from() {
    let Some(cov) = run_many(Check::Integrity, 0x5eed_0004) else {
        return;
    };
    assert!(cov.bytes_to_guest > 5_000_000, "too little data: {cov:?}");
    assert!(cov.short_peeks > 0 && cov.retransmits > 0, "{cov:?}");
}

/// Run [`RUNS`] scenarios from `base`, asserting `check`; what they
/// exercised, summed. With `INVARIANTS_SEED`, only that scenario, and
/// `None`: one scenario exercises what it exercises.
fn run_many(check: Check, base: u64) -> Option<Coverage> {
    if let Ok(s) = std::env::var("INVARIANTS_SEED") {
        let mut run = Run::new(check, parse_seed(&s));
        run.play();
        eprintln!("{:?}", run.cov);
        return None;
    }
    let mut cov = Coverage::default();
    for i in 0..RUNS {
        let mut run = Run::new(check, base.wrapping_mul(1_000_003) ^ i);
        run.play();
        cov.add(&run);
    }
    // Both families, both MTUs, both directions of opening.
    assert!(cov.v4 > 0 && cov.v6 > 0 && cov.mtu1500 > 0 && cov.mtu65520 > 0);
    assert!(cov.inbound > 0 && cov.outbound > 0 && cov.rto_jumps > 0);
    assert!(
        cov.finished * 10 >= cov.runs * 9,
        "most scenarios should finish: {cov:?}"
    );
    Some(cov)
}

fn parse_seed(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("INVARIANTS_SEED in hex"),
        None => s.parse().expect("INVARIANTS_SEED"),
    }
}

/// The invariant a run asserts (the others are observed only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Window,
    Discard,
    Ack,
    Integrity,
}

/// What the scenarios exercised, so that a test cannot pass by checking
/// nothing.
#[derive(Clone, Copy, Debug, Default)]
struct Coverage {
    runs: u64,
    finished: u64,
    v4: u64,
    v6: u64,
    mtu1500: u64,
    mtu65520: u64,
    inbound: u64,
    outbound: u64,
    scaled: u64,
    data_segments: u64,
    bytes_to_guest: u64,
    acks_checked: u64,
    discards: u64,
    zero_windows: u64,
    late_or_dup_acks: u64,
    ack_pieces: u64,
    short_peeks: u64,
    short_sends: u64,
    refused_sends: u64,
    rto_jumps: u64,
    retransmits: u64,
}

impl Coverage {
    fn add(&mut self, r: &Run) {
        let c = &r.cov;
        self.runs += 1;
        self.finished += u64::from(r.closed);
        self.v4 += u64::from(!r.p.ipv6);
        self.v6 += u64::from(r.p.ipv6);
        self.mtu1500 += u64::from(r.p.mtu == 1500);
        self.mtu65520 += u64::from(r.p.mtu == 65520);
        self.inbound += u64::from(r.p.inbound);
        self.outbound += u64::from(!r.p.inbound);
        self.scaled += u64::from(r.g_shift() > 0);
        self.data_segments += c.data_segments;
        self.bytes_to_guest += c.bytes_to_guest;
        self.acks_checked += c.acks_checked;
        self.discards += c.discards;
        self.zero_windows += c.zero_windows;
        self.late_or_dup_acks += c.late_or_dup_acks;
        self.ack_pieces += c.ack_pieces;
        self.short_peeks += c.short_peeks;
        self.short_sends += c.short_sends;
        self.refused_sends += c.refused_sends;
        self.rto_jumps += c.rto_jumps;
        self.retransmits += r.h.t.tcp_stats().retransmits;
    }
}

// ---------------------------------------------------------------------------
// Scenario parameters.
// ---------------------------------------------------------------------------

/// xorshift64 (Marsaglia 2003): deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `0..n` (0 for `n == 0`).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One scenario's shape, drawn once from its seed. Probabilities are per
/// mille, per event.
#[derive(Clone, Debug)]
struct Params {
    ipv6: bool,
    mtu: u16,
    /// Accepted on a forwarded port (we send the SYN), else opened by the
    /// guest.
    inbound: bool,
    guest_mss: u16,
    /// The guest's window scale option, if any.
    guest_ws: Option<u8>,
    /// The guest's receive buffer: its window when its application has
    /// read everything.
    guest_buf: u64,
    guest_isn: u32,
    /// Bytes the host's peer sends, and the guest sends.
    host_len: usize,
    guest_len: usize,
    /// Rounds the guest waits for an ACK before it retransmits.
    guest_rto: u32,
    lose_to_guest: u32,
    lose_from_guest: u32,
    dup_from_guest: u32,
    late_from_guest: u32,
    ack_piece: u32,
    app_stall: u32,
    short_peek: u32,
    short_send: u32,
    refuse_send: u32,
    rto_jump: u32,
    chaos_rounds: u32,
}

impl Params {
    fn draw(rng: &mut Rng) -> Self {
        let ipv6 = rng.chance(500);
        let mtu = if rng.chance(500) { 1500 } else { 65520 };
        let guest_ws = match rng.below(8) {
            0 | 1 => None,
            2 => Some(0),
            3 => Some(14),
            _ => Some(rng.range(1, 13) as u8),
        };
        let guest_buf = match rng.below(10) {
            0 => rng.range(0, 600),
            1 | 2 => rng.range(1000, 8000),
            3 | 4 => 65535,
            5 | 6 => rng.range(20_000, 300_000),
            _ => rng.range(300_000, 3 << 20),
        };
        let guest_isn = if rng.chance(300) {
            // Right below the wrap: sequence arithmetic must hold across it.
            0u32.wrapping_sub(rng.range(1, 50_000) as u32)
        } else {
            rng.next() as u32
        };
        let big = mtu == 65520 && rng.chance(500);
        let host_len = match rng.below(10) {
            0 => 0,
            1 => rng.range(1, 3000) as usize,
            _ if big => rng.range(200_000, 1_500_000) as usize,
            _ => rng.range(10_000, 200_000) as usize,
        };
        let guest_len = match rng.below(6) {
            0 => 0,
            1 => rng.range(1, 2000) as usize,
            _ => rng.range(5_000, 120_000) as usize,
        };
        let level = rng.below(4) as u32; // 0: gentle .. 3: rough
        Params {
            ipv6,
            mtu,
            inbound: rng.chance(300),
            guest_mss: rng.pick(&[536, 1000, 1220, 1460, 8960, 65000]),
            guest_ws,
            guest_buf,
            guest_isn,
            host_len,
            guest_len,
            guest_rto: rng.range(4, 30) as u32,
            lose_to_guest: level * rng.range(0, 40) as u32,
            lose_from_guest: level * rng.range(0, 40) as u32,
            dup_from_guest: rng.range(0, 120) as u32,
            late_from_guest: level * rng.range(0, 50) as u32,
            ack_piece: rng.range(0, 500) as u32,
            app_stall: rng.pick(&[0, 100, 400, 800]),
            short_peek: rng.range(0, 300) as u32,
            short_send: rng.range(0, 200) as u32,
            refuse_send: rng.range(0, 100) as u32,
            rto_jump: rng.pick(&[0, 5, 20, 50]),
            chaos_rounds: rng.range(50, u64::from(CHAOS_ROUNDS)) as u32,
        }
    }
}

// ---------------------------------------------------------------------------
// The scenario driver: a guest, a host socket and the executor between.
// ---------------------------------------------------------------------------

/// Per-run counters (see [`Coverage`]).
#[derive(Clone, Copy, Debug, Default)]
struct RunCov {
    data_segments: u64,
    bytes_to_guest: u64,
    acks_checked: u64,
    discards: u64,
    zero_windows: u64,
    late_or_dup_acks: u64,
    ack_pieces: u64,
    short_peeks: u64,
    short_sends: u64,
    refused_sends: u64,
    rto_jumps: u64,
}

/// One conversation. Offsets count bytes of a stream from its first byte
/// (a FIN is the byte after the last); `our_*` is the translator's stream
/// to the guest, `g_*` the guest's own stream to the translator.
struct Run {
    check: Check,
    seed: u64,
    p: Params,
    rng: Rng,
    h: Harness,
    round: u32,
    calm: bool,
    trace: VecDeque<String>,
    trace_live: bool,
    cov: RunCov,

    // Addresses as the guest sees them.
    guest: IpAddr,
    remote: IpAddr,
    gport: u16,
    rport: u16,

    // The executor.
    /// Operations not yet run, each with the call ("drain") it came from.
    ops: VecDeque<(u64, SockOp)>,
    drain: u64,
    sock: Option<SockId>,
    listener: Option<SockId>,

    // The host socket.
    host_data: Vec<u8>,
    /// Bytes of `host_data` the peer has sent so far (in the kernel).
    host_avail: usize,
    /// The peer closed, after all of `host_data`.
    host_eof: bool,
    /// Bytes removed from the receive queue by `Discard`s.
    removed: u64,
    /// The send buffer takes writes; after a refusal it does not until
    /// writability is reported.
    writable: bool,
    /// The drain whose later `Send`s are refused (the executor contract).
    refused_drain: Option<u64>,
    /// What the socket took from `Send`s (`Done::Bytes`/`Sent`).
    host_took: Vec<u8>,
    /// `Shutdown { write: true }` was asked for.
    shutdown: bool,
    closed: bool,
    /// A read came back short while more was queued: another readable
    /// edge follows, as more data arriving would give.
    readable_due: bool,
    /// While a read's completion is handled: the offset it read from and
    /// the bytes it gave, and how far its segments have got.
    peek_run: Option<(u64, u64, u64)>,

    // The guest, receiving.
    guest_data: Vec<u8>,
    guest_isn: u32,
    our_isn: Option<u32>,
    our_mss: u16,
    /// Our window scale shift toward the guest, if scaling is in use.
    our_ws: Option<u8>,
    /// Window scaling in use (both sides sent the option).
    ws_ok: bool,
    /// In-order bytes the guest has of our stream.
    rcv_nxt: u64,
    got: Vec<u8>,
    ooo: BTreeMap<u64, Vec<u8>>,
    our_fin_at: Option<u64>,
    fin_rcvd: bool,
    app_read: u64,
    /// Right edge of the guest's window as advertised (offset).
    g_edge: u64,
    /// Highest ACK the guest sent (offset of our stream).
    g_last_ack: u64,
    g_established: bool,

    // The guest, sending.
    snd_una: u64,
    snd_nxt: u64,
    /// Right edge of our window to the guest, in its stream's offsets.
    our_edge: u64,
    g_fin_sent: bool,
    g_fin_acked: bool,
    g_stall: u32,
    g_dups: u32,
    last_ack_in: Option<(u64, u64)>,

    // Guest frames on their way to the translator.
    outbox: Vec<Vec<u8>>,
    late: Vec<(u32, Vec<u8>)>,
    sent_log: VecDeque<Vec<u8>>,

    // The translator's view, from what was delivered to it (RFC 9293
    // §3.10.7.4 SND.UNA / SND.WND), in offsets of our stream.
    m_una: Option<u64>,
    m_wnd: u64,
    /// Highest ACK delivered (offset).
    m_acked: u64,
    reset: bool,
}

impl Run {
    fn new(check: Check, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let p = Params::draw(&mut rng);
        let host_data: Vec<u8> = (0..p.host_len).map(|_| rng.next() as u8).collect();
        let guest_data: Vec<u8> = (0..p.guest_len).map(|_| rng.next() as u8).collect();
        let mut cfg = test_config();
        cfg.mtu = p.mtu;
        if p.ipv6 {
            cfg.ip6 = Some(test_ip6());
        }
        if p.inbound {
            cfg.fwd.tcp_in = FwdSpec::parse("8080").expect("a port");
        }
        let (guest, remote, rport) = if p.ipv6 {
            (IpAddr::V6(GUEST6), IpAddr::V6(REMOTE6), 443)
        } else {
            (IpAddr::V4(GUEST4), IpAddr::V4(REMOTE4), 80)
        };
        let guest_isn = p.guest_isn;
        Run {
            check,
            seed,
            rng,
            h: Harness::new(cfg),
            round: 0,
            calm: false,
            trace: VecDeque::new(),
            trace_live: std::env::var("INVARIANTS_TRACE").is_ok(),
            cov: RunCov::default(),
            guest,
            remote,
            gport: 40000 + (seed % 20000) as u16,
            rport,
            ops: VecDeque::new(),
            drain: 0,
            sock: None,
            listener: None,
            host_data,
            host_avail: 0,
            host_eof: false,
            removed: 0,
            writable: true,
            refused_drain: None,
            host_took: Vec::new(),
            shutdown: false,
            closed: false,
            readable_due: false,
            peek_run: None,
            guest_data,
            guest_isn,
            our_isn: None,
            our_mss: 536,
            our_ws: None,
            ws_ok: false,
            rcv_nxt: 0,
            got: Vec::new(),
            ooo: BTreeMap::new(),
            our_fin_at: None,
            fin_rcvd: false,
            app_read: 0,
            g_edge: 0,
            g_last_ack: 0,
            g_established: false,
            snd_una: 0,
            snd_nxt: 0,
            our_edge: 0,
            g_fin_sent: false,
            g_fin_acked: false,
            g_stall: 0,
            g_dups: 0,
            last_ack_in: None,
            outbox: Vec::new(),
            late: Vec::new(),
            sent_log: VecDeque::new(),
            m_una: None,
            m_wnd: 0,
            m_acked: 0,
            reset: false,
            p,
        }
    }

    /// The whole conversation: open, chaos, calm until closed.
    fn play(&mut self) {
        self.open();
        while !self.finished() {
            self.round += 1;
            if self.round > self.p.chaos_rounds && !self.calm {
                self.calm = true;
                self.note(format!("round {}: calm from now on", self.round));
            }
            if self.round > self.p.chaos_rounds + CALM_ROUNDS {
                if matches!(self.check, Check::Discard | Check::Integrity) {
                    self.fail("the conversation did not finish");
                }
                return;
            }
            self.round_trip();
        }
        if self.reset {
            // The connection was reset: what it delivered still had to be
            // right (checked as it went), but it cannot finish.
            if matches!(self.check, Check::Discard | Check::Integrity) {
                self.fail("the connection was reset");
            }
            return;
        }
        self.final_checks();
    }

    /// Reset, or closed: the translator closes the socket once both FINs
    /// were exchanged and the guest acknowledged ours.
    fn finished(&self) -> bool {
        self.reset || self.closed
    }

    /// One round: the guest speaks, the host's peer acts, time passes.
    fn round_trip(&mut self) {
        let before = (self.rcv_nxt, self.host_took.len(), self.removed);
        self.guest_turn();
        self.deliver();
        self.host_turn();
        let stuck = (self.rcv_nxt, self.host_took.len(), self.removed) == before;
        let jump = if self.calm {
            stuck && self.round % 8 == 0
        } else {
            // Past retransmission timeouts, but not so often that the
            // closing timeout (60 s after the first FIN) ends the run.
            self.rng.chance(self.p.rto_jump) && self.h.now().as_nanos() < 40_000_000_000
        };
        let d = if jump {
            self.cov.rto_jumps += 1;
            Duration::from_millis(self.rng.range(1100, 2500))
        } else {
            Duration::from_millis(self.rng.range(1, 12))
        };
        self.advance(d);
        self.check_discards_settled();
    }

    // -- Setup ------------------------------------------------------------

    /// Bring the connection up: the guest's SYN (or an accepted connection
    /// and our SYN), until the guest is established.
    fn open(&mut self) {
        self.settle();
        self.serve();
        if self.p.inbound {
            let lid = self.listener.unwrap_or_else(|| self.fail("no listener"));
            self.call(|h| h.ready(lid, Ready::READABLE));
        } else {
            let window = self.p.guest_buf.min(0xffff) as u16;
            self.g_edge = u64::from(window);
            let syn = self
                .gseg()
                .flags(TcpFlags::SYN)
                .seq(self.guest_isn)
                .window(window)
                .options(self.syn_options().as_slice())
                .build();
            self.deliver_batch(vec![syn]);
        }
        for _ in 0..50 {
            if self.g_established && !self.outbox.is_empty() {
                break;
            }
            self.deliver();
            self.advance(Duration::from_millis(2));
        }
        if !self.g_established {
            self.fail("the handshake did not complete");
        }
    }

    fn syn_options(&self) -> Vec<u8> {
        TcpOptionsWriter::syn(self.p.guest_mss, self.p.guest_ws, false, None)
            .as_bytes()
            .to_vec()
    }

    // -- Calls into the translator ------------------------------------------

    /// A call into the translator, then everything it produced recorded
    /// (and checked).
    fn call(&mut self, f: impl FnOnce(&mut Harness)) {
        f(&mut self.h);
        self.settle();
    }

    /// Take the operations and frames the last call produced: operations
    /// queue for the executor, frames are checked and go to the guest.
    fn settle(&mut self) {
        if !self.h.host.ops.is_empty() {
            self.drain += 1;
            while let Some(op) = self.h.host.ops.pop_front() {
                if matches!(op, SockOp::Shutdown { write: true, .. }) {
                    self.shutdown_asked();
                }
                self.ops.push_back((self.drain, op));
            }
        }
        let frames: Vec<Vec<u8>> = self.h.to_guest.drain(..).collect();
        self.h.to_guest_offload.clear();
        for f in frames {
            self.frame_to_guest(&f);
        }
        if let Some((at, n, next)) = self.peek_run.take() {
            // Every segment of the read was checked in place; none past it.
            if next > at + n {
                self.fail(&format!("a read of {n} at {at} became segments to {next}"));
            }
        }
    }

    /// Run queued operations in order, as a driver does, until none is
    /// left (completions may queue more).
    fn serve(&mut self) {
        let mut n = 0u32;
        while let Some((drain, op)) = self.ops.pop_front() {
            n += 1;
            if n > 100_000 {
                self.fail("operations do not end");
            }
            self.run_op(drain, op);
        }
    }

    /// Move the clock by `d`, one deadline at a time, running the
    /// operations each timeout queues before the next (as a driver's
    /// loop does).
    fn advance(&mut self, d: Duration) {
        let end = self.h.now() + d;
        for _ in 0..10_000 {
            let now = self.h.now();
            match self.h.t.poll_timeout().filter(|t| *t <= end) {
                Some(t) => {
                    let dt = t.saturating_since(now);
                    self.call(|h| h.advance(dt));
                }
                None => {
                    let dt = end.saturating_since(now);
                    self.call(|h| h.advance(dt));
                    self.serve();
                    return;
                }
            }
            self.serve();
            self.deliver_now();
        }
        self.fail("deadlines do not move forward");
    }

    // -- The executor and the host socket ----------------------------------

    fn run_op(&mut self, drain: u64, op: SockOp) {
        if self.closed && !matches!(op, SockOp::Accept { .. } | SockOp::Open { .. }) {
            self.fail(&format!("{op:?} after Close"));
        }
        match op {
            SockOp::Open { id, spec } if spec.flags.contains(SockFlags::LISTEN) => {
                if spec.ipv6 == self.p.ipv6 {
                    self.listener = Some(id);
                }
                self.call(|h| h.complete(ok(id, Done::Opened)));
            }
            SockOp::Open { id, spec } => {
                let want = SockAddrAny::new(self.remote, self.rport);
                if self.sock.is_some() || spec.peer != Some(want) {
                    self.fail(&format!("unexpected {op:?}"));
                }
                self.sock = Some(id);
                self.call(|h| h.complete(ok(id, Done::Opened)));
                // The connect ends; the server may have spoken already.
                self.peer_sends(true);
                let r = if self.host_avail > 0 {
                    Ready::WRITABLE | Ready::READABLE
                } else {
                    Ready::WRITABLE
                };
                self.call(|h| h.ready(id, r));
            }
            SockOp::Accept { id, .. } => {
                if self.sock.is_some() {
                    self.call(|h| h.complete(err(id, Errno::EAGAIN)));
                    return;
                }
                self.sock = Some(id);
                let peer = SockAddrAny::new(self.remote, 6000);
                let local = SockAddrAny::new(self.guest, 8080);
                self.call(|h| h.complete(ok(id, Done::Accepted { peer, local })));
                self.peer_sends(true);
                if self.host_avail > 0 {
                    self.call(|h| h.ready(id, Ready::READABLE | Ready::WRITABLE));
                }
            }
            SockOp::Send { id, payload } => self.op_send(drain, id, payload),
            SockOp::Peek { id, skip, into } => self.op_peek(id, skip, into),
            SockOp::Discard { id, len } => self.op_discard(id, len),
            SockOp::Query { id } => {
                let free = self.free_space();
                let info = self.rng.chance(200).then(|| TcpInfo {
                    snd_mss: self.rng.range(500, 65000) as u32,
                    snd_cwnd: self.rng.range(1, 100) as u32,
                    snd_wnd: self
                        .rng
                        .chance(500)
                        .then(|| self.rng.range(0, 1 << 20) as u32),
                    notsent: self.rng.below(1 << 20) as u32,
                    rtt_us: self.rng.range(0, 100_000) as u32,
                });
                self.call(|h| h.complete(ok(id, Done::Space { free, info })));
            }
            SockOp::Shutdown { write: true, .. } => {}
            SockOp::Close { id } => {
                self.expect_sock(id);
                self.note(format!("Close after {} removed", self.removed));
                self.closed = true;
            }
            op => self.fail(&format!("unexpected {op:?}")),
        }
    }

    fn expect_sock(&self, id: SockId) {
        if self.sock != Some(id) {
            self.fail(&format!(
                "operation for socket {id:?}, ours is {:?}",
                self.sock
            ));
        }
    }

    /// Free send-buffer space to report: sometimes none (a full buffer,
    /// after which writability will be reported).
    fn free_space(&mut self) -> u32 {
        if self.calm {
            return 1 << 20;
        }
        let free = match self.rng.below(10) {
            0 => 0,
            1 => self.rng.range(1, 3000) as u32,
            2..=4 => self.rng.range(3000, 100_000) as u32,
            _ => self.rng.range(100_000, 4 << 20) as u32,
        };
        if free < 3000 {
            self.writable = false;
        }
        free
    }

    /// A write of guest payload: all of it, part of it (then nothing more
    /// of this drain), or nothing (`EAGAIN`).
    fn op_send(&mut self, drain: u64, id: SockId, payload: passt_core::buf::RxSpan) {
        self.expect_sock(id);
        let bytes = self.h.last_span(payload);
        let len = bytes.len();
        let blocked = !self.writable || self.refused_drain == Some(drain);
        let n = if blocked {
            0
        } else if !self.calm && self.rng.chance(self.p.refuse_send) {
            self.cov.refused_sends += 1;
            0
        } else if !self.calm && len > 1 && self.rng.chance(self.p.short_send) {
            self.cov.short_sends += 1;
            self.rng.range(1, len as u64 - 1) as usize
        } else {
            len
        };
        if n < len {
            self.writable = false;
            self.refused_drain = Some(drain);
        }
        // Invariant 3's other half: the socket gets the guest's stream in
        // order, each byte once.
        let at = self.host_took.len();
        if at + n > self.guest_data.len() || bytes[..n] != self.guest_data[at..at + n] {
            if self.check == Check::Ack {
                self.fail(&format!(
                    "Send of {len} bytes is not the guest's stream at offset {at}"
                ));
            }
            return;
        }
        self.host_took.extend_from_slice(&bytes[..n]);
        self.note(format!(
            "Send {len}: took {n} (total {})",
            self.host_took.len()
        ));
        let res = if n == 0 {
            Err(Errno::EAGAIN)
        } else if self.rng.chance(300) {
            let free = self.free_space();
            Ok(Done::Sent {
                bytes: n as u32,
                free,
            })
        } else {
            Ok(Done::Bytes(n as u32))
        };
        self.call(|h| h.complete(Completion { id, res }));
    }

    /// A read without dequeuing, `skip` bytes past the head of the queue.
    fn op_peek(&mut self, id: SockId, skip: u32, into: passt_core::buf::TxSlots) {
        self.expect_sock(id);
        let at = self.removed + u64::from(skip);
        let avail = self.host_avail as u64;
        if at > avail {
            self.fail(&format!(
                "Peek skips {skip} past {} removed: the socket holds {avail} in all",
                self.removed
            ));
        }
        let asked = u64::from(into.count) * u64::from(into.payload_len);
        if at == avail {
            if self.host_eof {
                self.note(format!("Peek at {at}: end of file"));
                self.call(|h| h.complete_peek(id, into, b""));
            } else {
                self.note(format!("Peek at {at}: EAGAIN"));
                self.call(|h| h.complete(err(id, Errno::EAGAIN)));
            }
            return;
        }
        let mut give = (avail - at).min(asked);
        if !self.calm && give > 1 && self.rng.chance(self.p.short_peek) {
            give = self.rng.range(1, give - 1);
            self.cov.short_peeks += 1;
            self.readable_due = true;
        }
        self.note(format!(
            "Peek at {at} (skip {skip}), asked {asked}, gave {give}"
        ));
        let data = self.host_data[at as usize..(at + give) as usize].to_vec();
        self.peek_run = Some((at, give, at));
        self.call(|h| h.complete_peek(id, into, &data));
    }

    /// Bytes leave the socket: invariant 2.
    fn op_discard(&mut self, id: SockId, len: u32) {
        self.expect_sock(id);
        self.cov.discards += 1;
        self.removed += u64::from(len);
        self.note(format!("Discard {len} (total {})", self.removed));
        if self.removed > self.host_avail as u64 {
            self.fail("Discard of bytes the socket never had");
        }
        if self.check == Check::Discard && self.removed > self.m_acked {
            self.fail(&format!(
                "{} bytes removed from the socket, the guest acknowledged {}",
                self.removed, self.m_acked
            ));
        }
    }

    /// Once the operations of a call ran (after each batch of guest
    /// segments, and after each round): all that the guest acknowledged
    /// has left the socket (invariant 2).
    fn check_discards_settled(&mut self) {
        if self.check != Check::Discard || self.reset {
            return;
        }
        let want = self.m_acked.min(self.host_data.len() as u64);
        if self.removed != want {
            self.fail(&format!(
                "the guest acknowledged {want} bytes, {} left the socket",
                self.removed
            ));
        }
    }

    /// `shutdown(SHUT_WR)` asked for: only after every byte before the
    /// guest's FIN was written.
    fn shutdown_asked(&mut self) {
        self.note("Shutdown(write)".into());
        if self.check == Check::Ack && self.host_took.len() != self.guest_data.len() {
            self.fail(&format!(
                "shutdown after {} of the guest's {} bytes",
                self.host_took.len(),
                self.guest_data.len()
            ));
        }
        self.shutdown = true;
    }

    /// The host's peer: more data (a readable edge), end of file, room in
    /// the send buffer again.
    fn host_turn(&mut self) {
        let Some(id) = self.sock else { return };
        if self.closed {
            return;
        }
        let mut r = Ready::empty();
        if self.peer_sends(false) {
            r |= Ready::READABLE;
        }
        if self.host_eof && self.rng.chance(100) {
            r |= Ready::READABLE | Ready::HANGUP;
        }
        if self.readable_due {
            self.readable_due = false;
            r |= Ready::READABLE;
        }
        if !self.writable && (self.calm || self.rng.chance(300)) {
            self.writable = true;
            r |= Ready::WRITABLE;
        } else if self.rng.chance(50) {
            r |= Ready::WRITABLE;
        }
        if !r.is_empty() {
            if self.host_eof {
                r |= Ready::HANGUP;
            }
            self.note(format!("ready {r:?}"));
            self.call(|h| h.ready(id, r));
            self.serve();
        }
    }

    /// The peer sends some more (or closes); true if anything happened.
    fn peer_sends(&mut self, first: bool) -> bool {
        let left = self.host_data.len() - self.host_avail;
        if left == 0 {
            if !self.host_eof && (self.calm || self.rng.chance(100)) {
                self.host_eof = true;
                self.note("peer closes".into());
                return true;
            }
            return false;
        }
        let p = if first { 300 } else { 400 };
        if !self.calm && !self.rng.chance(p) {
            return false;
        }
        let most = if self.calm { left } else { left.min(200_000) };
        let n = self.rng.range(1, most as u64) as usize;
        self.host_avail += n;
        self.note(format!("peer sends {n} (total {})", self.host_avail));
        true
    }

    // -- Frames to the guest: the checks, then the guest ------------------

    /// One frame from the translator: invariants 1, 3 and 4 on what it is,
    /// then (unless lost) the guest takes it.
    fn frame_to_guest(&mut self, f: &[u8]) {
        if !is_tcp(f) {
            return;
        }
        let o = parse_tcp(f);
        if (o.dst, o.dport) != (self.guest, self.gport) && self.our_isn.is_some() {
            self.fail(&format!("segment to someone else: {o:?}"));
        }
        self.note(format!(
            "-> guest {} seq {} ack {} win {} len {}",
            flags(o.flags),
            self.our_rel(o.seq),
            o.ack.wrapping_sub(self.guest_isn.wrapping_add(1)) as i32,
            o.window,
            o.payload.len()
        ));
        self.check_ack(&o);
        if o.flags.contains(TcpFlags::SYN) {
            self.our_syn(&o);
            return;
        }
        if o.flags.contains(TcpFlags::RST) {
            // Once both FINs were exchanged and ours acknowledged, the
            // translator closes (the `Close` may still be queued): an RST
            // then answers a late segment for no connection (RFC 9293
            // §3.10.7.1), it does not end this one.
            let done = self.shutdown && self.m_acked > self.host_data.len() as u64;
            if !self.closed && !done {
                self.note("reset".into());
                self.reset = true;
            }
            return;
        }
        if !o.payload.is_empty() {
            self.check_window(&o);
            self.check_data(&o);
        }
        if self.closed || (!self.calm && self.rng.chance(self.p.lose_to_guest)) {
            return;
        }
        self.guest_rx(&o);
    }

    /// Offset of a sequence number of our stream (may be -1: our SYN).
    fn our_rel(&self, seq: u32) -> i64 {
        match self.our_isn {
            Some(isn) => i64::from(seq.wrapping_sub(isn.wrapping_add(1)) as i32),
            None => 0,
        }
    }

    /// Invariant 3: the ACK number covers only what the host socket took.
    fn check_ack(&mut self, o: &TcpOut) {
        if !o.flags.contains(TcpFlags::ACK) {
            return;
        }
        self.cov.acks_checked += 1;
        let acked = i64::from(o.ack.wrapping_sub(self.guest_isn.wrapping_add(1)) as i32);
        let took = self.host_took.len() as i64 + i64::from(self.shutdown);
        if self.check == Check::Ack && acked > took {
            self.fail(&format!(
                "ACK to the guest covers {acked} bytes, the socket took {} (shutdown: {})",
                self.host_took.len(),
                self.shutdown
            ));
        }
    }

    /// Invariant 1: the segment ends within SND.UNA + SND.WND.
    fn check_window(&mut self, o: &TcpOut) {
        self.cov.data_segments += 1;
        if self.check != Check::Window {
            return;
        }
        let Some(una) = self.m_una else {
            self.fail("data before the guest acknowledged our SYN");
        };
        let Some(isn) = self.our_isn else {
            self.fail("data before our SYN");
        };
        // In sequence space: (seq + len) - (SND.UNA + SND.WND) <= 0.
        let end = o.seq.wrapping_add(o.payload.len() as u32);
        let edge = isn
            .wrapping_add(1)
            .wrapping_add(una as u32)
            .wrapping_add(self.m_wnd as u32);
        if (end.wrapping_sub(edge) as i32) > 0 {
            self.fail(&format!(
                "segment [{}, {}) beyond the guest's window: SND.UNA {una} + SND.WND {}",
                self.our_rel(o.seq),
                self.our_rel(end),
                self.m_wnd
            ));
        }
    }

    /// Invariant 4: the payload is the peer's stream at the segment's
    /// offset; a read's segments follow its offset.
    fn check_data(&mut self, o: &TcpOut) {
        let off = self.our_rel(o.seq);
        let len = o.payload.len();
        self.cov.bytes_to_guest += len as u64;
        if self.check != Check::Integrity {
            return;
        }
        if off < 0 || off as usize + len > self.host_avail {
            self.fail(&format!(
                "segment [{off}, +{len}) outside the {} bytes the peer sent",
                self.host_avail
            ));
        }
        let off = off as u64;
        if o.payload[..] != self.host_data[off as usize..off as usize + len] {
            self.fail(&format!(
                "segment at {off} (+{len}) is not the peer's bytes there"
            ));
        }
        if let Some((at, n, next)) = self.peek_run.as_mut() {
            if off != *next {
                let (at, n, next) = (*at, *n, *next);
                self.fail(&format!(
                    "read of {n} at offset {at}: segment at {off}, expected {next}"
                ));
            }
            *next += len as u64;
        } else {
            self.fail("data segment without a read");
        }
    }

    /// Our SYN (inbound) or SYN-ACK (outbound).
    fn our_syn(&mut self, o: &TcpOut) {
        if self.our_isn.is_some_and(|i| i != o.seq) {
            self.fail("our SYN's sequence number changed");
        }
        self.our_isn = Some(o.seq);
        self.our_mss = o.mss.unwrap_or(536);
        if self.p.inbound {
            if o.flags.contains(TcpFlags::ACK) {
                self.fail("SYN-ACK from us on an accepted connection");
            }
            (self.guest, self.gport) = (o.dst, o.dport);
            (self.remote, self.rport) = (o.src, o.sport);
            self.ws_ok = o.ws.is_some() && self.p.guest_ws.is_some();
            self.our_ws = o.ws.filter(|_| self.ws_ok);
            // The guest answers with its SYN-ACK, unscaled window.
            let window = self.p.guest_buf.min(0xffff) as u16;
            self.g_edge = self.g_edge.max(u64::from(window));
            let f = self
                .gseg()
                .flags(TcpFlags::SYN | TcpFlags::ACK)
                .seq(self.guest_isn)
                .ack(o.seq.wrapping_add(1))
                .window(window)
                .options(self.syn_options().as_slice())
                .build();
            self.outbox.push(f);
        } else {
            if o.ack != self.guest_isn.wrapping_add(1) {
                self.fail("SYN-ACK does not acknowledge the guest's SYN");
            }
            if o.ws.is_some() != self.p.guest_ws.is_some() {
                self.fail("window scaling in our SYN-ACK without the guest's");
            }
            self.ws_ok = o.ws.is_some();
            self.our_ws = o.ws;
            // Our window in a SYN-ACK is not scaled (RFC 7323 §2.2).
            self.our_edge = u64::from(o.window);
            let f = self.ack_frame(0);
            self.outbox.push(f);
        }
        self.g_established = true;
    }

    /// The guest takes a segment: data into its reassembly, our FIN, and
    /// the ACK for its own stream.
    fn guest_rx(&mut self, o: &TcpOut) {
        let off = self.our_rel(o.seq);
        let len = o.payload.len() as u64;
        let old = self.rcv_nxt;
        if len > 0 && off >= 0 {
            let off = off as u64;
            if off + len > self.rcv_nxt {
                let e = self.ooo.entry(off).or_default();
                if e.len() < o.payload.len() {
                    *e = o.payload.clone();
                }
            }
            self.reassemble();
        }
        if o.flags.contains(TcpFlags::FIN) && off >= 0 {
            let at = off as u64 + len;
            if self.check == Check::Integrity
                && (at != self.host_data.len() as u64 || !self.host_eof)
            {
                self.fail(&format!(
                    "FIN at {at} (peer sent {}, eof {})",
                    self.host_avail, self.host_eof
                ));
            }
            self.our_fin_at = Some(at);
        }
        if !self.fin_rcvd && self.our_fin_at == Some(self.rcv_nxt) {
            self.fin_rcvd = true;
        }
        if len > 0 {
            if self.rcv_nxt > old && !self.calm && self.rng.chance(self.p.ack_piece) {
                // An ACK of this segment alone, before the next arrives.
                self.cov.ack_pieces += 1;
                let a = self.ack_off();
                let f = self.ack_frame(a);
                self.outbox.push(f);
            } else if self.rcv_nxt == old {
                // Old or out of order: a duplicate ACK at once.
                let a = self.ack_off();
                let f = self.ack_frame(a);
                self.outbox.push(f);
            }
        }
        // ACK of the guest's stream, and our window.
        if o.flags.contains(TcpFlags::ACK) {
            let a = i64::from(o.ack.wrapping_sub(self.guest_isn.wrapping_add(1)) as i32);
            if a < 0 || a as u64 > self.guest_data.len() as u64 + 1 {
                self.fail(&format!("ACK of the guest's stream at {a}"));
            }
            let a = a as u64;
            let shift = if self.ws_ok {
                self.our_ws.unwrap_or(0)
            } else {
                0
            };
            let wnd = u64::from(o.window) << shift;
            if a > self.snd_una {
                self.snd_una = a;
                self.g_stall = 0;
                self.g_dups = 0;
                self.snd_nxt = self.snd_nxt.max(a.min(self.guest_data.len() as u64));
                if a == self.guest_data.len() as u64 + 1 {
                    self.g_fin_acked = true;
                }
            } else if a == self.snd_una
                && o.payload.is_empty()
                && self.last_ack_in == Some((a, wnd))
                && self.snd_nxt > self.snd_una
            {
                self.g_dups += 1;
                if self.g_dups == 3 {
                    // Fast retransmit (RFC 5681 §3.2).
                    self.snd_nxt = self.snd_una;
                }
            }
            if a >= self.snd_una {
                self.our_edge = a + wnd;
            }
            self.last_ack_in = Some((a, wnd));
        }
    }

    fn reassemble(&mut self) {
        while let Some((&k, _)) = self.ooo.first_key_value() {
            if k > self.rcv_nxt {
                break;
            }
            let v = self.ooo.remove(&k).expect("first key");
            let end = k + v.len() as u64;
            if end > self.rcv_nxt {
                self.got
                    .extend_from_slice(&v[(self.rcv_nxt - k) as usize..]);
                self.rcv_nxt = end;
            }
        }
    }

    // -- The guest ----------------------------------------------------------

    /// Offset the guest acknowledges: what it has in order, and our FIN.
    fn ack_off(&self) -> u64 {
        self.rcv_nxt + u64::from(self.fin_rcvd)
    }

    /// The guest's window scale shift, when scaling is in use.
    fn g_shift(&self) -> u8 {
        if self.ws_ok {
            self.p.guest_ws.unwrap_or(0).min(14)
        } else {
            0
        }
    }

    /// The guest's receive buffer; once calm, at least enough for a
    /// non-zero scaled window (its application enlarged it), so that the
    /// conversation can finish.
    fn buf(&self) -> u64 {
        if self.calm {
            self.p.guest_buf.max(65535).max(2 << self.g_shift())
        } else {
            self.p.guest_buf
        }
    }

    /// The guest's window field for an ACK of `ack`: its free buffer, but
    /// never an edge before one already advertised (RFC 9293 §3.8.6, RFC
    /// 1122 §4.2.2.16: a receiver should not shrink its window).
    fn guest_window(&mut self, ack: u64) -> u16 {
        let shift = self.g_shift();
        let buffered = self.rcv_nxt - self.app_read;
        let free = self.buf().saturating_sub(buffered);
        let keep = self.g_edge.saturating_sub(ack);
        let unit = (1u64 << shift) - 1;
        let field = (free >> shift).max((keep + unit) >> shift).min(0xffff);
        self.g_edge = self.g_edge.max(ack + (field << shift));
        if field == 0 {
            self.cov.zero_windows += 1;
        }
        field as u16
    }

    /// A segment from the guest of our connection, with nothing set.
    fn gseg(&self) -> TcpSeg {
        match (self.guest, self.remote) {
            (IpAddr::V4(g), IpAddr::V4(r)) => tcp4(g, self.gport, r, self.rport),
            (IpAddr::V6(g), IpAddr::V6(r)) => tcp6(g, self.gport, r, self.rport),
            _ => unreachable!("one family"),
        }
    }

    /// The guest's sequence number at offset `off` of its stream.
    fn gseq(&self, off: u64) -> u32 {
        self.guest_isn.wrapping_add(1).wrapping_add(off as u32)
    }

    /// A segment from the guest at `off` of its stream acknowledging `ack`
    /// of ours, with its window.
    fn gseg_at(&mut self, off: u64, ack: u64) -> TcpSeg {
        let isn = self.our_isn.unwrap_or_else(|| self.fail("no ISN yet"));
        let window = self.guest_window(ack);
        self.g_last_ack = self.g_last_ack.max(ack);
        self.gseg()
            .seq(self.gseq(off))
            .ack(isn.wrapping_add(1).wrapping_add(ack as u32))
            .window(window)
    }

    /// A pure ACK of `ack`.
    fn ack_frame(&mut self, ack: u64) -> Vec<u8> {
        let nxt = self.snd_nxt + u64::from(self.g_fin_sent);
        self.gseg_at(nxt, ack).build()
    }

    /// The guest's turn: its application reads, it sends data within our
    /// window, its FIN, probes, ACKs (maybe in pieces, maybe twice), and
    /// retransmits what stays unacknowledged.
    fn guest_turn(&mut self) {
        if !self.g_established || self.closed || self.reset {
            return;
        }
        let calm = self.calm;
        if calm || !self.rng.chance(self.p.app_stall) {
            let buffered = self.rcv_nxt - self.app_read;
            let n = if calm || self.rng.chance(500) {
                buffered
            } else {
                self.rng.below(buffered + 1)
            };
            self.app_read += n;
        }
        let glen = self.guest_data.len() as u64;
        let mut sent_data = false;
        for _ in 0..self.rng.range(1, 6) {
            let room = self.our_edge.saturating_sub(self.snd_nxt);
            if self.snd_nxt >= glen || room == 0 {
                break;
            }
            let mut len = room.min(u64::from(self.our_mss)).min(glen - self.snd_nxt);
            if !calm && self.rng.chance(300) {
                len = self.rng.range(1, len);
            }
            let off = self.snd_nxt;
            let ack = self.ack_off();
            let data = self.guest_data[off as usize..(off + len) as usize].to_vec();
            let f = self.gseg_at(off, ack).payload(&data).build();
            self.outbox.push(f);
            self.snd_nxt += len;
            sent_data = true;
        }
        if self.snd_nxt == glen && !self.g_fin_sent && !self.g_fin_acked && self.snd_una == glen {
            let ack = self.ack_off();
            let f = self
                .gseg_at(glen, ack)
                .flags(TcpFlags::FIN | TcpFlags::ACK)
                .build();
            self.outbox.push(f);
            self.g_fin_sent = true;
            sent_data = true;
        }
        if self.snd_nxt < glen && self.our_edge <= self.snd_nxt && self.round % 4 == 0 {
            // Zero-window probe: one byte before what we acknowledged.
            let ack = self.ack_off();
            let una = self.snd_una;
            let f = self.gseg_at(una, ack);
            let f = f.seq(self.gseq(una).wrapping_sub(1)).build();
            self.outbox.push(f);
        }
        // ACK what arrived, or a window update.
        let ack = self.ack_off();
        let shift = self.g_shift();
        let free = self.buf().saturating_sub(self.rcv_nxt - self.app_read);
        let opens = ack + ((free >> shift).min(0xffff) << shift) > self.g_edge;
        if !sent_data && (ack > self.g_last_ack || opens) {
            if !calm && ack > self.g_last_ack + 1 && self.rng.chance(self.p.ack_piece) {
                // In pieces: part of it first.
                self.cov.ack_pieces += 1;
                let part = self.rng.range(self.g_last_ack + 1, ack - 1);
                let f = self.ack_frame(part);
                self.outbox.push(f);
            }
            let f = self.ack_frame(ack);
            self.outbox.push(f);
        } else if !calm && self.rng.chance(self.p.dup_from_guest / 2) {
            let f = self.ack_frame(ack);
            self.outbox.push(f);
        }
        // Retransmission after rounds without progress.
        if self.snd_una < self.snd_nxt || (self.g_fin_sent && !self.g_fin_acked) {
            self.g_stall += 1;
            if self.g_stall > self.p.guest_rto {
                self.snd_nxt = self.snd_una.min(glen);
                self.g_fin_sent = false;
                self.g_stall = 0;
            }
        } else {
            self.g_stall = 0;
        }
    }

    /// Deliver the guest's frames (and late ones now due): lost, late,
    /// duplicated or reordered while not calm, in one or more batches.
    fn deliver(&mut self) {
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let round = self.round;
        let (due, wait): (Vec<_>, Vec<_>) = self
            .late
            .drain(..)
            .partition(|(at, _)| *at <= round || self.calm);
        self.late = wait;
        for (_, f) in due {
            self.cov.late_or_dup_acks += 1;
            frames.push(f);
        }
        let fresh: Vec<Vec<u8>> = self.outbox.drain(..).collect();
        for f in fresh {
            if self.calm {
                frames.push(f);
                continue;
            }
            if self.rng.chance(self.p.lose_from_guest) {
                continue;
            }
            if self.rng.chance(self.p.late_from_guest) {
                let at = round + self.rng.range(1, 6) as u32;
                self.late.push((at, f));
                continue;
            }
            if self.rng.chance(self.p.dup_from_guest) {
                self.cov.late_or_dup_acks += 1;
                frames.push(f.clone());
            }
            frames.push(f);
        }
        if !self.calm && self.rng.chance(20) {
            // An old frame again, much later.
            if let Some(f) = self.sent_log.get(self.rng.below(16) as usize) {
                self.cov.late_or_dup_acks += 1;
                frames.push(f.clone());
            }
        }
        if !self.calm && frames.len() > 1 && self.rng.chance(100) {
            let i = self.rng.below(frames.len() as u64) as usize;
            let j = self.rng.below(frames.len() as u64) as usize;
            frames.swap(i, j);
        }
        while !frames.is_empty() {
            let n = if self.calm {
                frames.len()
            } else {
                self.rng.range(1, frames.len() as u64) as usize
            };
            let rest = frames.split_off(n);
            self.deliver_batch(frames);
            frames = rest;
        }
    }

    /// Deliver what the guest has queued during a timeout (its answers to
    /// probes and retransmissions), without loss.
    fn deliver_now(&mut self) {
        if !self.outbox.is_empty() && self.calm {
            let frames: Vec<Vec<u8>> = self.outbox.drain(..).collect();
            self.deliver_batch(frames);
        }
    }

    /// One batch of guest frames into the translator. The translator's
    /// view (SND.UNA, SND.WND, what was acknowledged) follows what it was
    /// given, in order (RFC 9293 §3.10.7.4).
    fn deliver_batch(&mut self, frames: Vec<Vec<u8>>) {
        for f in &frames {
            let s = parse_tcp(f);
            self.note(format!(
                "guest -> {} seq {} ack {} win {} len {}",
                flags(s.flags),
                s.seq.wrapping_sub(self.guest_isn.wrapping_add(1)) as i32,
                self.our_rel(s.ack),
                s.window,
                s.payload.len()
            ));
            self.translator_learns(&s);
            if !s.flags.contains(TcpFlags::SYN) {
                self.sent_log.push_front(f.clone());
                self.sent_log.truncate(64);
            }
        }
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        self.call(|h| h.guest_batch(&refs));
        self.serve();
        self.check_discards_settled();
    }

    /// The send window the translator must keep to, from a segment it is
    /// given: a SYN's window unscaled, and then only before the connection
    /// is synchronized (a later SYN is challenged and dropped, RFC 5961
    /// §4); an ACK at or past SND.UNA moves it and sets SND.WND from its
    /// window, scaled.
    fn translator_learns(&mut self, s: &TcpOut) {
        let syn = s.flags.contains(TcpFlags::SYN);
        if syn && self.m_una.is_some() {
            return;
        }
        if !s.flags.contains(TcpFlags::ACK) {
            if syn {
                self.m_wnd = u64::from(s.window);
            }
            return;
        }
        let a = self.our_rel(s.ack);
        if a < 0 {
            return;
        }
        let a = a as u64;
        if self.m_una.map_or(true, |u| a >= u) {
            self.m_una = Some(a);
            let shift = if syn { 0 } else { self.g_shift() };
            self.m_wnd = u64::from(s.window) << shift;
        }
        self.m_acked = self.m_acked.max(a);
    }

    // -- The end --------------------------------------------------------

    fn final_checks(&mut self) {
        if self.h.t.tcp_flows() != 0 {
            self.fail("the flow is still in the table after Close");
        }
        match self.check {
            Check::Discard => {
                if self.removed != self.host_data.len() as u64 {
                    self.fail(&format!(
                        "closed with {} of {} bytes removed",
                        self.removed,
                        self.host_data.len()
                    ));
                }
            }
            Check::Integrity => {
                if self.got != self.host_data {
                    self.fail(&format!(
                        "the guest reassembled {} bytes, not the peer's {}",
                        self.got.len(),
                        self.host_data.len()
                    ));
                }
            }
            Check::Ack => {
                if self.host_took != self.guest_data || !self.shutdown {
                    self.fail("the host did not get the guest's whole stream and FIN");
                }
            }
            Check::Window => {}
        }
    }

    // -- Diagnostics ----------------------------------------------------

    fn note(&mut self, s: String) {
        if self.trace_live {
            eprintln!("[{:#x} r{}] {s}", self.seed, self.round);
        }
        self.trace.push_back(format!("r{} {s}", self.round));
        if self.trace.len() > 80 {
            self.trace.pop_front();
        }
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let mut m = String::new();
        let _ = writeln!(
            m,
            "{:?}: {what}\n  seed {:#x} (INVARIANTS_SEED={:#x}), round {}{}",
            self.check,
            self.seed,
            self.seed,
            self.round,
            if self.calm { " (calm)" } else { "" }
        );
        let _ = writeln!(m, "  {:?}", self.p);
        let _ = writeln!(
            m,
            "  host: avail {} eof {} removed {} took {}/{} shutdown {}; guest: rcv {} acked {} \
             fin {}; translator was given SND.UNA {:?} SND.WND {} acked {}",
            self.host_avail,
            self.host_eof,
            self.removed,
            self.host_took.len(),
            self.guest_data.len(),
            self.shutdown,
            self.rcv_nxt,
            self.g_last_ack,
            self.fin_rcvd,
            self.m_una,
            self.m_wnd,
            self.m_acked
        );
        for t in &self.trace {
            let _ = writeln!(m, "    {t}");
        }
        panic!("{m}");
    }
}

fn ok(id: SockId, d: Done) -> Completion {
    Completion { id, res: Ok(d) }
}

fn err(id: SockId, e: Errno) -> Completion {
    Completion { id, res: Err(e) }
}

/// Whether a frame is IPv4 or IPv6 carrying TCP (the translator may send
/// the guest other things, e.g. router advertisements).
fn is_tcp(f: &[u8]) -> bool {
    match f.get(12..14) {
        Some([0x08, 0x00]) => f.get(23) == Some(&6),
        Some([0x86, 0xdd]) => f.get(20) == Some(&6),
        _ => false,
    }
}

/// Flags as letters, for the trace.
fn flags(f: TcpFlags) -> String {
    [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::ACK, '.'),
    ]
    .iter()
    .filter(|(b, _)| f.contains(*b))
    .map(|(_, c)| *c)
    .collect()
}

// ---------------------------------------------------------------------------
// Minimal reproductions of what the runs above found.
// ---------------------------------------------------------------------------

/// Invariant 2, reduced from the seeded runs: three duplicate ACKs rewind
/// `seq_to_tap` for a fast retransmit (RFC 5681 §3.2), and an ACK of the
/// data sent before the rewind, in the same batch (the first segment was
/// only overtaken), is then taken for acknowledging data never sent
/// (RFC 9293 §3.10.7.4, SEG.ACK > SND.NXT) and dropped. But a
/// retransmission does not move SND.NXT back (RFC 9293 §3.10.7.4 checks
/// against the highest sequence number sent, BSD's `snd_max`): the guest
/// has these bytes, and they stay in the socket, to be read and sent
/// again, until a later ACK.
#[test]
fn an_ack_after_a_fast_retransmit_releases_what_it_acknowledges() {
    let mut h = Harness::new(test_config());
    let isn = 1000u32;
    let g = || tcp4(GUEST4, 40500, REMOTE4, 80);
    let mss100 = TcpOptionsWriter::syn(100, Some(0), false, None);
    h.guest(&g().syn().seq(isn).options(mss100.as_bytes()).build());
    let id = h.expect_open_id();
    h.complete(ok(id, Done::Opened));
    h.ready(id, Ready::WRITABLE);
    let s = parse_tcp(&h.expect_frame()).seq.wrapping_add(1);
    h.guest(&g().seq(isn + 1).ack(s).window(300).build());
    let SockOp::Peek { .. } = h.expect_op() else {
        panic!("expected the first read")
    };
    h.complete(err(id, Errno::EAGAIN));
    // 300 bytes from the peer: three segments of the guest's MSS.
    h.ready(id, Ready::READABLE);
    let SockOp::Peek { skip: 0, into, .. } = h.expect_op() else {
        panic!("expected a read from the head")
    };
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    h.complete_peek(id, into, &data);
    for i in 0..3u32 {
        let d = parse_tcp(&h.expect_frame());
        assert_eq!(
            (d.seq, &d.payload[..]),
            (s + 100 * i, &data[100 * i as usize..][..100])
        );
    }
    h.expect_no_op();
    // The guest got the second and third segments first: two duplicate
    // ACKs, a third (say, for a duplicate), then the first segment and
    // the ACK of all 300 bytes; they reach us in one batch.
    let dup = g().seq(isn + 1).ack(s).window(300).build();
    let all = g().seq(isn + 1).ack(s + 300).window(300).build();
    h.guest_batch(&[&dup, &dup, &dup, &all]);
    let ops: Vec<SockOp> = h.host.ops.drain(..).collect();
    assert!(
        ops.contains(&SockOp::Discard { id, len: 300 }),
        "the guest acknowledged all 300 bytes, but they stay in the socket: {ops:?}"
    );
}
