//! Micro-benchmarks of the data path: checksums and frames through the
//! translator on the fake host.

use std::hint::black_box;
use std::time::Duration;

use benches::{median_per_call, report};
use passt_core::buf::{FrameDesc, RxBatch, TxRing};
use passt_core::config::ports::FwdSpec;
use passt_core::testing::build::{arp_request, test_config, GUEST4, GUEST_MAC, GW4};
use passt_core::time::Instant;
use passt_core::wire::checksum;
use passt_core::Translator;

fn main() {
    let budget = Duration::from_millis(500);

    for len in [64usize, 1500, 65535] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let t = median_per_call(budget, 1000, || {
            black_box(checksum::checksum(black_box(&data)));
        });
        report(&format!("checksum {len} bytes"), t, "MB", len as f64 / 1e6);
    }

    let mut tr = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let frame = arp_request(GUEST_MAC, GUEST4, GW4);
    let mut arena = Vec::new();
    let mut descs = Vec::new();
    for _ in 0..32 {
        descs.push(FrameDesc::new(arena.len() as u32, frame.len() as u32));
        arena.extend_from_slice(&frame);
    }
    let t = median_per_call(budget, 100, || {
        let rx = RxBatch::new(&arena, &descs).unwrap();
        tr.handle_tap(Instant::ZERO, &rx, &mut tx);
        tx.clear();
        while tr.poll_event().is_some() {}
    });
    report(
        "translator: ARP request -> reply, batch 32",
        t,
        "frames",
        32.0,
    );

    let spec = FwdSpec::parse("22,80,443,1000-2000:11000-12000,~1500").unwrap();
    let mut port = 0u16;
    let t = median_per_call(budget, 10_000, || {
        port = port.wrapping_add(7);
        black_box(spec.lookup(black_box(port)));
    });
    report("port forwarding lookup", t, "lookups", 1.0);
}
