//! Readiness: the schedule of `exec -- true` probes after `start` (pure,
//! [`Backoff`]) and the passing of time ([`Clock`], injected so tests never
//! sleep). The polling loop itself is `Client::wait_ready`; this module
//! runs nothing.

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

/// The pause between probes while the guest is expected to come up.
pub const FAST_PAUSE: Duration = Duration::from_millis(5);
/// How long probes stay [`FAST_PAUSE`] apart: smolvm boots a guest in
/// about 250 ms, so most launches are ready well within this window and
/// are seen less than one probe round-trip plus 10 ms after they are.
pub const FAST_WINDOW: Duration = Duration::from_secs(1);
/// After the fast window the pause starts here and doubles per failed
/// probe up to [`CAP`].
pub const FIRST_INTERVAL: Duration = Duration::from_millis(10);
pub const CAP: Duration = Duration::from_millis(250);
/// The least time a single probe is given, even near the deadline.
pub const MIN_PROBE_LIMIT: Duration = Duration::from_secs(2);
/// How often readiness also asks `status`, so a VM that died fails fast.
pub const STATUS_PERIOD: Duration = Duration::from_millis(500);

/// What to do after a failed probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// Ask `status` before probing again.
    pub check_status: bool,
    pub sleep: Duration,
}

/// The probe schedule of one wait: pure, driven by the time waited so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backoff {
    /// Failed probes after the fast window.
    slow: u32,
    /// When `status` was last asked (from the start of the wait).
    status_at: Duration,
}

impl Backoff {
    /// The pause after a probe that failed `waited` into the wait.
    pub fn after_failure(&mut self, waited: Duration) -> Pause {
        let check_status = waited >= self.status_at + STATUS_PERIOD;
        if check_status {
            self.status_at = waited;
        }
        let sleep = if waited < FAST_WINDOW {
            FAST_PAUSE
        } else {
            let doubling = 1u32.checked_shl(self.slow.min(16)).unwrap_or(u32::MAX);
            self.slow = self.slow.saturating_add(1);
            FIRST_INTERVAL.saturating_mul(doubling).min(CAP)
        };
        Pause {
            check_status,
            sleep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The pauses and status checks of a wait where each probe takes
    /// `probe` and fails, until `until`.
    fn schedule(probe: Duration, until: Duration) -> Vec<(u64, Pause)> {
        let mut b = Backoff::default();
        let mut t = Duration::ZERO;
        let mut out = Vec::new();
        while t < until {
            t += probe;
            let p = b.after_failure(t);
            out.push((t.as_millis() as u64, p));
            t += p.sleep;
        }
        out
    }

    #[test]
    fn probes_stay_close_in_the_boot_window_then_back_off_to_the_cap() {
        let s = schedule(ms(20), ms(3000));
        let (fast, slow): (Vec<_>, Vec<_>) = s.iter().partition(|(t, _)| *t < 1000);
        assert!(fast.iter().all(|(_, p)| p.sleep == FAST_PAUSE));
        let slow: Vec<u64> = slow
            .iter()
            .map(|(_, p)| p.sleep.as_millis() as u64)
            .collect();
        assert_eq!(slow[..6], [10, 20, 40, 80, 160, 250]);
        assert!(slow[6..].iter().all(|d| *d == 250), "{slow:?}");
    }

    #[test]
    fn status_is_asked_every_period_whatever_the_probe_rate() {
        for probe in [ms(1), ms(20), ms(300)] {
            let s = schedule(probe, ms(5000));
            let checks: Vec<u64> = s
                .iter()
                .filter(|(_, p)| p.check_status)
                .map(|(t, _)| *t)
                .collect();
            assert!(!checks.is_empty());
            assert!(checks[0] >= 500 && checks[0] < 500 + probe.as_millis() as u64 + 250);
            for w in checks.windows(2) {
                assert!(w[1] - w[0] >= 500, "{probe:?}: {checks:?}");
                assert!(
                    w[1] - w[0] <= 500 + 250 + probe.as_millis() as u64 * 2,
                    "{checks:?}"
                );
            }
        }
    }
}
