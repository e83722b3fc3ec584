//! Running checks in wasmtime: the only module that knows wasmtime.
//!
//! - `bindings`: the one `bindgen!` of `wit/check.wit`.
//! - [`engine`]: engine configuration (pooling, epochs, memory limits), linking, loading checks.
//! - `exports`: a check's exports, found and type-checked at load (`validate` optional).
//! - [`cache`]: compiled artifacts on disk, keyed by content and engine.
//! - [`instance`]: a live check instance and its deadline-bounded calls.
//! - [`store`]: per-store state (current call, limits, WASI context).
//! - `host`: one file per WIT interface.
//! - [`pool`]: checks loaded by name, and reloaded when their files change; live instances
//!   pooled per (tenant, check, init_config) in a bounded number of slots.
//! - [`run`]: one run of one instance on a pooled instance (the agent's and `adrt check`'s).
//! - [`validate`]: a config checked by its check's `validate` export, without running it.
//! - [`policy`]: enforcing a check's policy on its imports; refusals counted and logged.
//! - [`interfaces`]: this host's addresses (the egress rule of the agent's own ports).
//! - [`services`]: what all stores share (policy, HTTP clients, agent settings, state).
//! - [`submission`]: what a run submits (samples, service checks, events), for `aggregate`.

pub mod bindings;
pub mod cache;
pub mod engine;
mod exports;
pub mod host;
pub mod instance;
pub mod interfaces;
pub mod policy;
pub mod pool;
pub mod run;
pub mod services;
pub mod store;
pub mod submission;
pub mod validate;

use std::path::PathBuf;

pub use crate::policy::manifest::available_checks;
pub use engine::{CheckEngine, EngineSettings, LoadedCheck};
pub use instance::{LiveInstance, RunError, RunOutcome};
pub use pool::{CheckRegistry, InstancePool, Lease, LoadState, Reload};
pub use run::{Execution, RunRequest};
pub use services::{AgentSettings, HostServices, PolicyInputs};
pub use submission::{Event, MetricKind, Sample, ServiceCheck, Status, Submissions};
pub use validate::ConfigVerdict;

/// Why a check could not be loaded or started. None of these stop the agent: the check
/// concerned is reported as failing and the others go on.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no check named {name:?} in {}{}", dir.display(), available_list(available))]
    NotFound { name: String, dir: PathBuf, available: Vec<String> },
    #[error("{} is not a valid adrt check component: {what}{source:#}", path.display())]
    Invalid {
        path: PathBuf,
        /// What was being done, ending in `: `, or empty.
        what: &'static str,
        source: wasmtime::Error,
    },
    #[error("check {check}: init failed: {error}")]
    Init {
        check: String,
        #[source]
        error: RunError,
    },
    /// The check's `validate` trapped, ran out of time or memory, or failed other than by
    /// refusing the config; `message` is scrubbed of secret values and bounded.
    #[error("check {check}: validate failed: {message}")]
    Validate { check: String, message: String },
    /// No live instance could be had for the run (see `pool`): this run fails, others go on.
    #[error("no instance slot: {0}")]
    NoSlot(String),
    /// The check's manifest, or the operator's settings of it, cannot be used.
    #[error("check {check}: {message}")]
    Policy { check: String, message: String },
    #[error("wasmtime engine: {what}{source:#}")]
    Engine {
        /// What was being done, ending in `: `, or empty.
        what: &'static str,
        source: wasmtime::Error,
    },
}

fn available_list(available: &[String]) -> String {
    if available.is_empty() { String::new() } else { format!(" (available: {})", available.join(", ")) }
}
