//! Readiness: poll `exec -- true` until the guest answers or a deadline
//! passes. Time is injected through [`Clock`] so tests never sleep.

use std::time::{Duration, Instant};

/// The passing of time, as readiness polling sees it.
pub trait Clock {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// How readiness was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub probes: u32,
    pub waited: Duration,
}

/// The first pause between probes; it doubles up to [`CAP`].
pub const FIRST_INTERVAL: Duration = Duration::from_millis(10);
pub const CAP: Duration = Duration::from_millis(250);
/// The least time a single probe is given, even near the deadline.
pub const MIN_PROBE_LIMIT: Duration = Duration::from_secs(2);

/// After how many failed probes readiness also asks `status` (and then
/// every that many again), so a VM that died fails fast.
pub const STATUS_EVERY: u32 = 4;

/// Whether to check `status` after the `n`-th failed probe (0-based).
pub fn checks_status_after(n: u32) -> bool {
    (n + 1).is_multiple_of(STATUS_EVERY)
}

/// The pause after the `n`-th failed probe (0-based).
pub fn interval(n: u32) -> Duration {
    FIRST_INTERVAL
        .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_double_up_to_the_cap() {
        let got: Vec<u64> = (0..7).map(|n| interval(n).as_millis() as u64).collect();
        assert_eq!(got, [10, 20, 40, 80, 160, 250, 250]);
        assert_eq!(interval(100), CAP);
    }
}
