//! Time as the driver supplies it.
//!
//! `passt-core` never reads a clock: every `handle_*` call carries the driver's
//! reading as an [`Instant`], and the translator answers with the next deadline
//! it cares about ([`crate::Translator::poll_timeout`]). Tests and fuzzers move
//! time by hand, so every timeout path is deterministic.

use core::time::Duration;

/// Monotonic time as the driver read it: nanoseconds since an arbitrary epoch
/// chosen by the driver (typically `CLOCK_MONOTONIC`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant: "never" for deadlines.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the driver's epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the driver's epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }

    /// How long from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The earlier of two optional deadlines.
    pub fn min_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_nanos(5);
        assert_eq!(t + Duration::from_nanos(7), Instant::from_nanos(12));
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t.saturating_since(Instant::from_nanos(9)), Duration::ZERO);
        assert_eq!(
            Instant::from_nanos(9).saturating_since(t),
            Duration::from_nanos(4)
        );
        assert_eq!(Instant::min_deadline(Some(t), None), Some(t));
        assert_eq!(
            Instant::min_deadline(Some(t), Some(Instant::ZERO)),
            Some(Instant::ZERO)
        );
    }
}
