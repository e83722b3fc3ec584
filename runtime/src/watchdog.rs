//! Liveness from progress: the loops the agent cannot work without (the scheduler's timer loop,
//! the discovery loop) beat a [`Heartbeat`]; `/live` fails when one of them has been silent for
//! the watchdog period, so the kubelet restarts an agent that still answers but no longer works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a healthy loop beats at the least; the watchdog period must be well above it.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// The last sign of progress of one loop.
#[derive(Debug)]
pub struct Heartbeat {
    name: &'static str,
    base: Instant,
    /// Milliseconds from `base` to the last beat.
    last: AtomicU64,
}

impl Heartbeat {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Heartbeat { name, base: Instant::now(), last: AtomicU64::new(0) })
    }

    pub fn beat(&self) {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// How long since the last beat (since creation when it never beat).
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// The heartbeats `/live` watches.
#[derive(Debug, Clone)]
pub struct Watchdog {
    beats: Vec<Arc<Heartbeat>>,
    period: Duration,
}

impl Watchdog {
    pub fn new(period: Duration, beats: Vec<Arc<Heartbeat>>) -> Self {
        Watchdog { beats, period }
    }

    /// `Err` names the first loop silent for longer than the period.
    pub fn check(&self) -> Result<(), String> {
        match self.beats.iter().find(|b| b.silent_for() > self.period) {
            Some(stalled) => Err(format!(
                "the {} loop has made no progress for {} s (watchdog {} s)",
                stalled.name,
                stalled.silent_for().as_secs(),
                self.period.as_secs()
            )),
            None => Ok(()),
        }
    }
}

/// The message of a caught panic's payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_loop_fails_the_watchdog_and_a_beat_revives_it() {
        let scheduler = Heartbeat::new("scheduler");
        let discovery = Heartbeat::new("discovery");
        let watchdog = Watchdog::new(Duration::from_millis(50), vec![scheduler.clone(), discovery.clone()]);
        scheduler.beat();
        discovery.beat();
        assert_eq!(watchdog.check(), Ok(()));
        std::thread::sleep(Duration::from_millis(120));
        discovery.beat();
        let error = watchdog.check().unwrap_err();
        assert!(error.starts_with("the scheduler loop has made no progress"), "{error}");
        scheduler.beat();
        assert_eq!(watchdog.check(), Ok(()));
    }
}
