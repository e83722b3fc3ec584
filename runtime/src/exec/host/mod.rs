//! The host side of each WIT interface, one file per interface.
//!
//! Every import first passes the [`super::policy::Policy`] hook; I/O is bounded by what is left
//! of the call's deadline.

pub mod agent;
pub mod clocks;
pub mod files;
pub mod http;
pub mod log;
pub mod state;
pub mod submit;
pub mod types;
pub mod wasi_log;

use super::policy::Import;
use super::store::StoreState;

impl StoreState {
    /// Runs the policy hook for an import of this store's check.
    pub(crate) fn allow(&self, import: Import<'_>) -> Result<(), String> {
        self.services.policy.check(&self.check, import)
    }
}
