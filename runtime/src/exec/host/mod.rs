//! The host side of each WIT interface, one file per interface.
//!
//! Every import first passes [`StoreState::allow`] (the run's host-call limit); I/O is bounded
//! by what is left of the call's deadline and checked against the check's policy.

pub mod agent;
pub mod clocks;
pub mod files;
pub mod filesystems;
pub mod http;
pub mod http_client;
pub mod http_tls;
pub mod log;
pub mod state;
pub mod submit;
pub mod types;
pub mod wasi_log;

use super::policy::Import;
use super::store::StoreState;

impl StoreState {
    /// Counts an import against the run's `host_calls_per_run`; `Err` once over it.
    pub(crate) fn allow(&mut self, import: Import<'_>) -> Result<(), String> {
        if let Some(observer) = &self.services.observer {
            observer.observe(&self.check, import);
        }
        self.call.host_calls += 1;
        let limit = self.policy.limits.host_calls_per_run;
        if self.call.host_calls > limit {
            return Err(self.call.exceed("host_calls_per_run", limit));
        }
        Ok(())
    }

    /// Records a refusal of the policy for this call's instance: counted, logged once in a while.
    pub(crate) fn denied(&self, rule: &'static str, message: &str) {
        self.services.record_denial(rule, &self.check, &self.call.instance_id, message);
    }
}
