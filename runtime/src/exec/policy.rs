//! Enforcing a check's [`CheckPolicy`](crate::policy::CheckPolicy) on its host calls: every
//! import passes [`StoreState::allow`](super::store::StoreState) (the per-run host-call limit,
//! and an optional observer); egress and files decide in their own host files with the rules of
//! [`crate::policy`]. A refusal goes to [`Denials`]: counted by rule, logged once per instance and
//! rule in a while, and returned to the check as its import's `denied` error.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// What a check asked the host to do.
#[derive(Debug, Clone, Copy)]
pub enum Import<'a> {
    Submit,
    Log,
    Http { method: &'a str, url: &'a str },
    ReadFile { path: &'a str },
    ListDir { path: &'a str },
    FilesystemUsage { path: &'a str },
    Clock,
    Agent,
    State,
}

/// Sees every import a check makes, before the host acts on it (the benchmarks record the
/// network check's reads with one).
pub trait Observer: Send + Sync {
    fn observe(&self, check: &str, import: Import<'_>);
}

/// A limit of the run that was exceeded: the run fails with it.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitExceeded {
    pub name: &'static str,
    pub limit: u64,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "limits.{} of {} exceeded; the run was stopped", self.name, self.limit)
    }
}

/// The same refusal of the same instance is logged again only after this long.
const LOG_AGAIN_AFTER: Duration = Duration::from_secs(600);
/// Instances whose last logged refusal is remembered, at most.
const MAX_REMEMBERED: usize = 10_000;

/// Refusals of every check: counts by rule (the `adrt.policy.denied` metric) and a rate-limited
/// log.
#[derive(Default)]
pub struct Denials {
    counts: Mutex<BTreeMap<&'static str, u64>>,
    logged: Mutex<HashMap<(String, &'static str), Instant>>,
}

impl Denials {
    /// Counts a refusal of `rule` to `instance` (or to a pod, for the namespace rule) of `check`
    /// and logs it unless it was logged lately.
    pub fn record(&self, rule: &'static str, check: &str, instance: &str, message: &str) {
        *self.counts.lock().entry(rule).or_default() += 1;
        let now = Instant::now();
        let mut logged = self.logged.lock();
        let key = (instance.to_string(), rule);
        if logged.get(&key).is_some_and(|at| now.duration_since(*at) < LOG_AGAIN_AFTER) {
            return;
        }
        if logged.len() >= MAX_REMEMBERED {
            logged.retain(|_, at| now.duration_since(*at) < LOG_AGAIN_AFTER);
            if logged.len() >= MAX_REMEMBERED {
                logged.clear();
            }
        }
        logged.insert(key, now);
        drop(logged);
        tracing::warn!(check, instance, rule, "policy refused: {}", crate::text::printable(message));
    }

    /// Counts a refusal decided and shown elsewhere (the namespace rule, in `configcheck`).
    pub fn count(&self, rule: &'static str) {
        *self.counts.lock().entry(rule).or_default() += 1;
    }

    /// Refusals so far, by rule.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_every_time_by_rule() {
        let denials = Denials::default();
        for _ in 0..3 {
            denials.record("link-local", "nginx", "nginx:abc", "http://169.254.169.254/: refused");
        }
        denials.record("not-target", "nginx", "nginx:abc", "http://10.0.0.9/: refused");
        assert_eq!(denials.counts(), BTreeMap::from([("link-local", 3), ("not-target", 1)]));
        assert_eq!(denials.logged.lock().len(), 2, "one log entry per instance and rule");
    }
}
