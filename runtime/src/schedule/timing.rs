//! When an instance runs next.
//!
//! The first run is immediate. The second comes after a phase between half an interval and a
//! whole one, derived from the instance ID, so instances scheduled together (a node's pods at
//! agent start) spread over the interval; from then on runs keep a fixed cadence. A run that
//! overran skips the slots it missed rather than firing them back to back.

use std::time::Duration;

use tokio::time::Instant;

use sha2::{Digest, Sha256};

/// The next run of an instance whose first run started at `first`, after a run that ended at `now`.
/// Never panics: a time too far ahead to represent is capped at [`FAR_FUTURE`] from `now`.
pub fn next_run(id: &str, first: Instant, interval: Duration, now: Instant) -> Instant {
    let interval = interval.max(Duration::from_millis(1));
    let far = later(now, FAR_FUTURE);
    let mut next = first.checked_add(phase(id, interval)).unwrap_or(far);
    if next <= now {
        let behind = now.duration_since(next).as_nanos() / interval.as_nanos();
        let skip = u32::try_from(behind + 1).ok().and_then(|slots| interval.checked_mul(slots));
        next = skip.and_then(|skip| next.checked_add(skip)).unwrap_or(far);
    }
    next.min(far)
}

/// No instance waits longer than this for its next run (intervals are bounded far below it).
pub const FAR_FUTURE: Duration = Duration::from_secs(7 * 24 * 3600);

/// `at + by`, or the latest representable time near it when that overflows.
pub fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).or_else(|| at.checked_add(Duration::from_secs(3600))).unwrap_or(at)
}

/// A stable offset in [interval/2, interval) from the ID.
fn phase(id: &str, interval: Duration) -> Duration {
    let digest = Sha256::digest(id.as_bytes());
    let fraction = f64::from(u16::from_be_bytes([digest[0], digest[1]])) / 65_536.0;
    interval.mul_f64(0.5 + fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(15);

    #[test]
    fn second_run_is_spread_within_the_interval() {
        let first = Instant::now();
        let offsets: Vec<Duration> = (0..50)
            .map(|i| next_run(&format!("nginx:{i}"), first, INTERVAL, first + Duration::from_millis(5)) - first)
            .collect();
        assert!(offsets.iter().all(|o| *o >= INTERVAL / 2 && *o < INTERVAL), "{offsets:?}");
        let distinct: std::collections::BTreeSet<_> = offsets.iter().map(|o| o.as_millis()).collect();
        assert!(distinct.len() > 40, "instances do not fire together");
    }

    #[test]
    fn later_runs_keep_the_cadence_and_skip_missed_slots() {
        let first = Instant::now();
        let second = next_run("x", first, INTERVAL, first);
        let third = next_run("x", first, INTERVAL, second + Duration::from_millis(3));
        assert_eq!(third - second, INTERVAL);
        // A run that took three intervals resumes on the cadence, once.
        let late = next_run("x", first, INTERVAL, third + INTERVAL * 3 + Duration::from_millis(1));
        assert_eq!(late - second, INTERVAL * 5);
    }

    #[test]
    fn absurd_intervals_and_times_never_panic() {
        let now = Instant::now();
        for interval in [Duration::ZERO, Duration::from_nanos(1), Duration::from_secs(u64::MAX / 4), Duration::MAX] {
            let next = next_run("x", now, interval, now);
            assert!(next > now && next <= now + FAR_FUTURE, "{interval:?}");
            let much_later = next_run("x", now, interval, later(now, Duration::from_secs(1 << 40)));
            assert!(much_later >= now, "{interval:?}");
        }
        assert_eq!(later(now, Duration::MAX), later(now, Duration::from_secs(3600)));
    }
}
