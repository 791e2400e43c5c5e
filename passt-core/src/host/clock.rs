//! The drivers' clock (feature `host`): `CLOCK_MONOTONIC`, as the
//! [`crate::Translator`]'s [`Instant`]s.
//!
//! Syscalls: `clock_gettime(CLOCK_MONOTONIC)`.

use rustix::time::{clock_gettime, ClockId};

use crate::time::Instant;

/// Now on `CLOCK_MONOTONIC`, in nanoseconds.
pub fn now() -> Instant {
    let ts = clock_gettime(ClockId::Monotonic);
    let nanos = (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64);
    Instant::from_nanos(nanos)
}
