//! Shared helpers for the benchmark binaries in `benches/`.
//!
//! Benchmarks are not tests: they report figures, they don't assert on them.
//! Run with `cargo bench -p benches`.

use std::time::{Duration, Instant};

/// Run `f` repeatedly for about `budget`, in rounds of `batch` calls, and
/// return the median time per call over the rounds, in nanoseconds.
pub fn median_per_call(budget: Duration, batch: u32, mut f: impl FnMut()) -> f64 {
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(batch));
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Print one result line: name, time per call, and a rate.
pub fn report(name: &str, ns_per_call: f64, unit: &str, units_per_call: f64) {
    let rate = units_per_call / (ns_per_call * 1e-9);
    println!(
        "{name:<44} {ns_per_call:>10.1} ns/call {:>14.3e} {unit}/s",
        rate
    );
}
