//! The policy hook every import passes before the host acts on it.
//!
//! [`AllowAndCount`] allows everything and counts calls per import; enforcement (egress and
//! file allowlists) plugs in here without touching the host functions.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a check asked the host to do.
#[derive(Debug, Clone, Copy)]
pub enum Import<'a> {
    Submit,
    Log,
    Http { method: &'a str, url: &'a str },
    ReadFile { path: &'a str },
    ListDir { path: &'a str },
    Clock,
    Agent,
    State,
}

impl Import<'_> {
    fn index(&self) -> usize {
        match self {
            Import::Submit => 0,
            Import::Log => 1,
            Import::Http { .. } => 2,
            Import::ReadFile { .. } => 3,
            Import::ListDir { .. } => 4,
            Import::Clock => 5,
            Import::Agent => 6,
            Import::State => 7,
        }
    }
}

/// Decides whether `check` may perform `import`; `Err` carries the reason shown to the check.
pub trait Policy: Send + Sync {
    fn check(&self, check: &str, import: Import<'_>) -> Result<(), String>;
}

/// Allows every import and counts them.
#[derive(Debug, Default)]
pub struct AllowAndCount {
    counts: [AtomicU64; 8],
}

impl AllowAndCount {
    /// Calls so far: submit, log, http, read-file, list-dir, clock, agent, state.
    pub fn counts(&self) -> [u64; 8] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }
}

impl Policy for AllowAndCount {
    fn check(&self, _check: &str, import: Import<'_>) -> Result<(), String> {
        self.counts[import.index()].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
