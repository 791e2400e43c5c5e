//! The data path allocates nothing: a counting global allocator stays still
//! while the translator takes frames and answers them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use passt_core::buf::{FrameDesc, RxBatch, TxRing};
use passt_core::testing::build::{arp_request, test_config, udp4, GUEST4, GUEST_MAC, GW4, REMOTE4};
use passt_core::time::Instant;
use passt_core::Translator;

/// Counts allocations made by the current thread (tests run in parallel).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator unchanged; the counter is
// a const-initialised thread-local that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[test]
fn steady_traffic_allocates_nothing() {
    // Everything allocated up front: translator, ring, arena, descriptors.
    let mut t = Translator::new(test_config(), Instant::ZERO).unwrap();
    let mut tx = TxRing::new(64, 2048, 4);
    let frames = [
        arp_request(GUEST_MAC, GUEST4, GW4),
        arp_request(GUEST_MAC, GUEST4, REMOTE4),
        udp4(GUEST4, 40000, REMOTE4, 53, b"no handler yet: counted drop"),
        vec![0u8; 7], // truncated: counted drop with an event
    ];
    let mut arena = Vec::new();
    let mut descs = Vec::new();
    for f in &frames {
        descs.push(FrameDesc::new(arena.len() as u32, f.len() as u32));
        arena.extend_from_slice(f);
    }
    let mut replies = 0usize;

    let before = allocs();
    for round in 0..10_000u64 {
        let rx = RxBatch::new(&arena, &descs).unwrap();
        let now = Instant::from_nanos(round * 1000);
        t.handle_tap(now, &rx, &mut tx);
        while t.poll_op().is_some() {}
        replies += tx.len();
        tx.clear();
        while t.poll_event().is_some() {}
        t.handle_timeout(now, &mut tx);
    }
    let after = allocs();

    assert_eq!(replies, 20_000, "two ARP replies per round");
    assert_eq!(t.stats().frames_in, 40_000);
    assert_eq!(after - before, 0, "allocations on the data path");
}
