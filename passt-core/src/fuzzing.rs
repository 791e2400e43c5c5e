//! Bodies of the cargo-fuzz targets, kept in the crate so that a stable
//! `cargo test` replays the checked-in seeds through exactly the same code.
//!
//! Each function takes arbitrary bytes and panics only when an invariant is
//! broken (a parser accepting bytes it cannot re-emit identically, the
//! translator emitting a frame that does not parse, a counter going wrong).

use std::time::Duration;

use crate::buf::{FrameDesc, RxBatch, TxRing};
use crate::testing::build::test_config;
use crate::time::Instant;
use crate::wire::ethernet::EthernetRepr;
use crate::{Completion, Done, Errno, Ready, SockId, Translator};

/// A byte reader that yields zeroes once the input is exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self
            .0
            .split_first()
            .map(|(b, r)| (*b, r))
            .unwrap_or((0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The translator fed a script of frames, readiness, completions and time
/// steps decoded from `data`.
///
/// Invariants: no panic; every frame sent to the guest parses as Ethernet and
/// comes from our MAC address; counters add up.
pub fn translator(data: &[u8]) {
    let mut config = test_config();
    config.limits.op_queue = 64;
    config.limits.event_queue = 64;
    config.limits.max_sockets = 64;
    let our_mac = config.our_mac;
    let mut now = Instant::from_nanos(1);
    let Ok(mut t) = Translator::new(config, now) else {
        return;
    };
    let mut tx = TxRing::new(16, crate::buf::MAX_FRAME_LEN, 0);
    let mut input = Input(data);
    let mut frames_seen = 0u64;
    let mut steps = 0;
    while !input.is_empty() && steps < 256 {
        steps += 1;
        match input.u8() % 5 {
            0 | 1 => {
                // A batch of up to four frames.
                let count = usize::from(input.u8() % 4) + 1;
                let mut arena = Vec::new();
                let mut descs = Vec::new();
                for _ in 0..count {
                    let len = usize::from(input.u16()) % 2048;
                    let bytes = input.bytes(len);
                    descs.push(FrameDesc::new(arena.len() as u32, bytes.len() as u32));
                    arena.extend_from_slice(bytes);
                }
                let rx = RxBatch::new(&arena, &descs).expect("built in bounds");
                t.handle_tap(now, &rx, &mut tx);
                frames_seen += count as u64;
            }
            2 => {
                let id = SockId::from_parts(input.u32() % 80, input.u32() % 4);
                let ready = Ready::from_bits_truncate(input.u8());
                t.handle_ready(now, id, ready, &mut tx);
            }
            3 => {
                let id = SockId::from_parts(input.u32() % 80, input.u32() % 4);
                let res = match input.u8() % 3 {
                    0 => Ok(Done::Opened),
                    1 => Ok(Done::Bytes(input.u32())),
                    _ => Err(Errno(i32::from(input.u8()))),
                };
                t.handle_completion(now, Completion { id, res }, &mut tx);
            }
            _ => {
                now = now + Duration::from_millis(u64::from(input.u32()));
                t.handle_timeout(now, &mut tx);
            }
        }
        while t.poll_op().is_some() {}
        while t.poll_event().is_some() {}
        for v in tx.iter() {
            let (eth, _) = EthernetRepr::parse(v.frame).expect("our frames parse");
            assert_eq!(eth.src, our_mac, "frames to the guest come from our MAC");
        }
        tx.clear();
        if let Some(at) = t.poll_timeout() {
            assert!(at >= Instant::from_nanos(1));
        }
    }
    assert_eq!(t.stats().frames_in, frames_seen);
}

/// Every wire parser fed `data` as a frame (filled in as parsers land).
pub fn frame(data: &[u8]) {
    let _ = EthernetRepr::parse(data);
}

/// The port-forwarding spec parser fed `data`; see
/// [`crate::config::ports::fuzz_parse`] for the invariants.
pub fn port_spec(data: &[u8]) {
    crate::config::ports::fuzz_parse(data);
}
