//! Test doubles: a fake host, a fake clock and frame builders, so that whole
//! conversations with the [`Translator`] run without a kernel.
//!
//! Available in this crate's tests and, with the `testing` feature, to other
//! crates (the CLIs' tests, fuzz targets, benches). Unlike the rest of the
//! crate this module allocates freely and panics on unexpected behaviour:
//! that is how a test fails.

pub mod build;
pub mod pcap;

use std::collections::VecDeque;
use std::time::Duration;

use crate::addr::SockAddrAny;
use crate::batch::SendBatch;
use crate::buf::{FrameDesc, Offload, RxBatch, TxRing, TxSlots};
use crate::config::Config;
use crate::time::Instant;
use crate::{Completion, Done, Errno, Event, Ready, SockId, SockOp, Translator};

/// A socket layer that runs nothing: it records every operation the
/// translator asks for, and the test decides what each one gave.
#[derive(Debug, Default)]
pub struct FakeHost {
    /// Operations not yet inspected by the test, oldest first.
    pub ops: VecDeque<SockOp>,
}

impl FakeHost {
    /// Take the run of datagram sends at the front of [`FakeHost::ops`],
    /// gathered as a driver gathers them for one `sendmmsg`
    /// ([`crate::batch`]); the operation that ended the run stays at the
    /// front. `None` (nothing taken) if the front operation is not a send.
    pub fn take_send_batch(&mut self) -> Option<SendBatch> {
        let first = self.ops.pop_front()?;
        let mut batch = SendBatch::new();
        let left = batch.gather(first, || self.ops.pop_front());
        if let Some(op) = left {
            self.ops.push_front(op);
        }
        (!batch.is_empty()).then_some(batch)
    }
}

/// A translator with a fake guest, a [`FakeHost`] and a clock that moves only
/// when told.
pub struct Harness {
    /// The translator under test.
    pub t: Translator,
    /// Operations it asked for.
    pub host: FakeHost,
    /// Frames it sent to the guest, oldest first.
    pub to_guest: VecDeque<Vec<u8>>,
    /// The offload metadata of each frame in `to_guest`, in step with it
    /// as long as frames are taken with [`Harness::expect_frame`] or
    /// [`Harness::expect_frame_offload`] (clear both together).
    pub to_guest_offload: VecDeque<Offload>,
    /// Events it reported, oldest first.
    pub events: VecDeque<Event>,
    tx: TxRing,
    now: Instant,
    last_batch: Vec<Vec<u8>>,
    held: Vec<Vec<u8>>,
}

impl Harness {
    /// A translator over `config`, its clock at one second past the epoch.
    ///
    /// # Panics
    /// If the configuration is invalid.
    pub fn new(config: Config) -> Self {
        let now = Instant::from_nanos(1_000_000_000);
        let mut h = Harness {
            t: Translator::new(config, now).expect("valid test configuration"),
            host: FakeHost::default(),
            to_guest: VecDeque::new(),
            to_guest_offload: VecDeque::new(),
            events: VecDeque::new(),
            tx: TxRing::new(256, crate::buf::MAX_FRAME_LEN, 4),
            now,
            last_batch: Vec::new(),
            held: Vec::new(),
        };
        // Operations queued by `new` (listening sockets).
        h.settle();
        h
    }

    /// The bytes an [`crate::buf::RxSpan`] names in the last guest batch
    /// (what a `Send` would write).
    ///
    /// # Panics
    /// If the span does not fit the batch.
    pub fn last_span(&self, s: crate::buf::RxSpan) -> Vec<u8> {
        let f = &self.last_batch[s.frame as usize];
        f[s.offset as usize..(s.offset + s.len) as usize].to_vec()
    }

    /// Report readiness of a socket while the tx ring has no free slot
    /// (filled with frames nobody reads): what the translator cannot build
    /// for lack of room waits ([`Translator::wants_retry`]). The filler is
    /// dropped, not delivered.
    pub fn ready_with_ring_full(&mut self, id: SockId, ready: Ready) {
        while self.tx.push_with(|b| {
            b.get_mut(..14)?.fill(0);
            Some(14)
        }) {}
        self.t.handle_ready(self.now, id, ready, &mut self.tx);
        self.tx.clear();
        self.settle();
    }

    /// Let the translator retry what waited for room in the ring
    /// ([`Translator::handle_retry`]).
    pub fn retry(&mut self) {
        self.t.handle_retry(self.now, &mut self.tx);
        self.settle();
    }

    /// Report readiness of a socket.
    pub fn ready(&mut self, id: SockId, ready: Ready) {
        self.t.handle_ready(self.now, id, ready, &mut self.tx);
        self.settle();
    }

    /// Complete a `Peek` into `into` with `data` (at most what fits the
    /// slots), as a socket read would: the bytes land in the payload areas
    /// of the pending slots, in order.
    pub fn complete_peek(&mut self, id: SockId, into: TxSlots, data: &[u8]) {
        let mut rest = data;
        let mut n = 0usize;
        for area in self.tx.payload_areas(into) {
            let k = area.len().min(rest.len());
            area[..k].copy_from_slice(&rest[..k]);
            rest = &rest[k..];
            n += k;
        }
        self.complete(Completion {
            id,
            res: Ok(Done::Bytes(n as u32)),
        });
    }

    /// The fake clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Deliver frames from the guest as one batch.
    pub fn guest_batch(&mut self, frames: &[&[u8]]) {
        let with: Vec<(&[u8], Offload)> = frames.iter().map(|f| (*f, Offload::default())).collect();
        self.guest_batch_offload(&with);
    }

    /// Deliver one frame from the guest with offload metadata, as a device
    /// with a virtio-net header hands it in (e.g. a TSO super-frame).
    pub fn guest_offload(&mut self, frame: &[u8], offload: Offload) {
        self.guest_batch_offload(&[(frame, offload)]);
    }

    /// Deliver frames with their offload metadata as one batch.
    pub fn guest_batch_offload(&mut self, frames: &[(&[u8], Offload)]) {
        let mut arena = Vec::new();
        let mut descs = Vec::new();
        for (f, offload) in frames {
            let mut d = FrameDesc::new(arena.len() as u32, f.len() as u32);
            d.offload = *offload;
            descs.push(d);
            arena.extend_from_slice(f);
        }
        self.last_batch = frames.iter().map(|(f, _)| f.to_vec()).collect();
        let rx = RxBatch::new(&arena, &descs).expect("descriptors built above");
        self.t.handle_tap(self.now, &rx, &mut self.tx);
        self.settle();
    }

    /// Deliver one frame from the guest.
    pub fn guest(&mut self, frame: &[u8]) {
        self.guest_batch(&[frame]);
    }

    /// Feed the result of an operation back.
    pub fn complete(&mut self, done: Completion) {
        self.t.handle_completion(self.now, done, &mut self.tx);
        self.settle();
    }

    /// Run a [`SockOp::RecvErr`] as a driver would: `quoted` (what the
    /// router quoted after the transport header; for a ping socket, from
    /// the ICMP header on) is written into the slot's payload area (cut
    /// to fit) and `e` completed with its `len` set to the bytes written.
    pub fn recv_err(&mut self, id: SockId, into: TxSlots, quoted: &[u8], e: crate::HostError) {
        let mut n = 0;
        if let Some(area) = self.tx.payload_areas(into).next() {
            n = quoted.len().min(area.len());
            area[..n].copy_from_slice(&quoted[..n]);
        }
        let res = Ok(Done::HostError(crate::HostError { len: n as u32, ..e }));
        self.t
            .handle_completion(self.now, Completion { id, res }, &mut self.tx);
        self.settle();
    }

    /// Run a [`SockOp::Recv`] as a driver would: each datagram is written
    /// into the payload area of the next slot of `into` (cut to fit, its
    /// full length reported) and completed with [`Done::Datagram`]; then
    /// the operation ends with [`Done::Datagrams`], or `EAGAIN` if there
    /// was nothing to read.
    pub fn recv(&mut self, id: SockId, into: TxSlots, datagrams: &[(SockAddrAny, &[u8])]) {
        for (area, (_, d)) in self.tx.payload_areas(into).zip(datagrams) {
            let n = d.len().min(area.len());
            area[..n].copy_from_slice(&d[..n]);
        }
        for (from, d) in datagrams.iter().take(into.count as usize) {
            let res = Ok(Done::Datagram {
                len: d.len() as u32,
                from: *from,
            });
            self.t
                .handle_completion(self.now, Completion { id, res }, &mut self.tx);
        }
        let res = match datagrams.len().min(into.count as usize) {
            0 => Err(Errno::EAGAIN),
            n => Ok(Done::Datagrams { count: n as u32 }),
        };
        self.t
            .handle_completion(self.now, Completion { id, res }, &mut self.tx);
        self.settle();
    }

    /// Run a [`SockOp::RecvHeld`] as a driver would: `datagrams` become
    /// the held ones (replacing the last receive's), each completed with
    /// [`Done::Datagram`], then the operation ends with
    /// [`Done::Datagrams`], or `EAGAIN` if there was nothing to read.
    /// [`Harness::held`] gives their bytes back by index, for checking
    /// what a [`SockOp::SendHeld`] sends.
    pub fn recv_held(&mut self, id: SockId, datagrams: &[(SockAddrAny, &[u8])]) {
        self.held = datagrams.iter().map(|(_, d)| d.to_vec()).collect();
        for (from, d) in datagrams {
            let res = Ok(Done::Datagram {
                len: d.len() as u32,
                from: *from,
            });
            self.t
                .handle_completion(self.now, Completion { id, res }, &mut self.tx);
        }
        let res = match datagrams.len() {
            0 => Err(Errno::EAGAIN),
            n => Ok(Done::Datagrams { count: n as u32 }),
        };
        self.t
            .handle_completion(self.now, Completion { id, res }, &mut self.tx);
        self.settle();
    }

    /// The bytes of held datagram `index` of the last
    /// [`Harness::recv_held`] (what a [`SockOp::SendHeld`] naming it sends).
    ///
    /// # Panics
    /// If there is no such datagram.
    #[track_caller]
    pub fn held(&self, index: u32) -> &[u8] {
        self.held
            .get(index as usize)
            .unwrap_or_else(|| panic!("no held datagram {index}"))
    }

    /// Move the clock forward, running timeouts that fall due on the way in
    /// order.
    ///
    /// # Panics
    /// If the translator keeps asking for a deadline that does not move
    /// (more than 100 000 timeouts in one call).
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            if self.t.wants_retry() {
                assert!(rounds < 100_000, "retries do not end");
                self.t.handle_retry(self.now, &mut self.tx);
                self.settle();
                continue;
            }
            let Some(at) = self.t.poll_timeout().filter(|at| *at <= end) else {
                break;
            };
            assert!(rounds < 100_000, "deadline {at:?} does not move forward");
            self.now = self.now.max(at);
            self.t.handle_timeout(self.now, &mut self.tx);
            self.settle();
        }
        self.now = end;
    }

    /// Drain everything the translator produced into the recorders.
    fn settle(&mut self) {
        while let Some(op) = self.t.poll_op() {
            self.host.ops.push_back(op);
        }
        for v in self.tx.iter() {
            self.to_guest.push_back(v.frame.to_vec());
            self.to_guest_offload.push_back(v.offload);
        }
        self.tx.clear();
        while let Some(e) = self.t.poll_event() {
            self.events.push_back(e);
        }
    }

    /// The next frame sent to the guest.
    ///
    /// # Panics
    /// If there is none.
    #[track_caller]
    pub fn expect_frame(&mut self) -> Vec<u8> {
        self.expect_frame_offload().0
    }

    /// The next frame sent to the guest, with its offload metadata.
    ///
    /// # Panics
    /// If there is none.
    #[track_caller]
    pub fn expect_frame_offload(&mut self) -> (Vec<u8>, Offload) {
        let f = self
            .to_guest
            .pop_front()
            .expect("expected a frame to the guest, got none");
        (f, self.to_guest_offload.pop_front().unwrap_or_default())
    }

    /// Assert that no frame went to the guest.
    ///
    /// # Panics
    /// If one did; the message shows it in hex.
    #[track_caller]
    pub fn expect_no_frame(&mut self) {
        if let Some(f) = self.to_guest.pop_front() {
            panic!("expected no frame to the guest, got {}", build::hex(&f));
        }
    }

    /// The next socket operation.
    ///
    /// # Panics
    /// If there is none.
    #[track_caller]
    pub fn expect_op(&mut self) -> SockOp {
        self.host
            .ops
            .pop_front()
            .expect("expected a socket operation, got none")
    }

    /// Take the next socket operation, which must be an `Open`: its socket.
    ///
    /// # Panics
    /// If there is none, or it is another operation.
    #[track_caller]
    pub fn expect_open_id(&mut self) -> SockId {
        match self.expect_op() {
            SockOp::Open { id, .. } => id,
            op => panic!("expected Open, got {op:?}"),
        }
    }

    /// Assert that no socket operation was asked for.
    ///
    /// # Panics
    /// If one was.
    #[track_caller]
    pub fn expect_no_op(&mut self) {
        if let Some(op) = self.host.ops.pop_front() {
            panic!("expected no socket operation, got {op:?}");
        }
    }

    /// Begin a run-time forwarding change
    /// ([`Translator::begin_forward_change`]) and drain what it hands out
    /// at once.
    ///
    /// # Errors
    /// As [`Translator::begin_forward_change`].
    pub fn forward_change(
        &mut self,
        proto: crate::Proto,
        spec: crate::config::ports::FwdSpec,
    ) -> Result<crate::ChangeId, crate::change::ChangeError> {
        let r = self.t.begin_forward_change(proto, spec);
        self.settle();
        r
    }

    /// Feed `bytes` from a configuration-socket client to its session
    /// ([`crate::control::Session::input`]), drain what the translator
    /// hands out, let the session go on ([`crate::control::Session::run`])
    /// and take what it wrote back.
    ///
    /// # Panics
    /// If the session does not take every byte.
    pub fn control(&mut self, s: &mut crate::control::Session, bytes: &[u8]) -> Vec<u8> {
        assert_eq!(s.input(&mut self.t, bytes), bytes.len(), "input not taken");
        self.settle();
        self.control_run(s)
    }

    /// Let a configuration-socket session go on after completions (a
    /// change's reply), and take what it wrote back.
    pub fn control_run(&mut self, s: &mut crate::control::Session) -> Vec<u8> {
        while s.run(&mut self.t) {
            self.settle();
        }
        self.settle();
        let out = s.output().to_vec();
        s.consume(out.len());
        out
    }

    /// Take the events reported so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }
}
