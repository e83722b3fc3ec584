//! The data of one live check instance's wasmtime store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::LoadedCheck;
use super::host::files::RootDirs;
use super::host::wasi_log::LogStream;
use super::policy::LimitExceeded;
use super::services::HostServices;
use super::submission::Submissions;
use crate::policy::{CheckPolicy, Reach};

/// Per-store state: which check this is, what it runs under, and the current call.
pub struct StoreState {
    pub(crate) check: Arc<str>,
    pub(crate) services: Arc<HostServices>,
    pub(crate) policy: Arc<CheckPolicy>,
    pub(crate) roots: Arc<RootDirs>,
    pub(crate) call: Call,
    pub(crate) memory: MemoryLimit,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl StoreState {
    pub fn new(loaded: &LoadedCheck, services: Arc<HostServices>) -> Self {
        let check = loaded.name.clone();
        // No preopened directories, no environment, no network: a WASI check reaches the host
        // only through adrt's own imports. Its stdout and stderr go to the agent's log.
        let wasi = WasiCtx::builder()
            .stdout(LogStream::stdout(check.clone(), services.scrubber.clone()))
            .stderr(LogStream::stderr(check.clone(), services.scrubber.clone()))
            .build();
        StoreState {
            call: Call::idle(),
            memory: MemoryLimit { limit: loaded.policy.limits.memory_bytes(), exceeded: None, grown_to: 0 },
            check,
            services,
            policy: loaded.policy.clone(),
            roots: loaded.roots.clone(),
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The guest call in progress (`init`, `run` or `validate`) and what it submitted.
pub struct Call {
    /// The check instance being run; empty during `init` and `validate`.
    pub instance_id: String,
    /// Whose instance it is: what its HTTP requests may reach.
    pub reach: Reach,
    /// Imports called so far, against `host_calls_per_run`.
    pub host_calls: u32,
    /// Lines logged so far, against `log_lines_per_run`.
    pub log_lines: u32,
    /// The limit this call went over: the call fails with it whatever the check returns.
    pub exceeded: Option<LimitExceeded>,
    pub deadline: Instant,
    pub submissions: Submissions,
    /// The message of a guest panic, reported by the SDK's panic hook before it aborts.
    pub panic: Option<String>,
    /// What the check logged at warn level: the run is reported as WARNING with these.
    pub warnings: Vec<String>,
}

impl Call {
    pub fn idle() -> Self {
        Call {
            instance_id: String::new(),
            reach: Reach::Operator,
            host_calls: 0,
            log_lines: 0,
            exceeded: None,
            deadline: Instant::now(),
            submissions: Submissions::default(),
            panic: None,
            warnings: Vec::new(),
        }
    }

    pub fn start(instance_id: &str, reach: &Reach, deadline: Instant) -> Self {
        Call { instance_id: instance_id.to_string(), reach: reach.clone(), deadline, ..Call::idle() }
    }

    /// Records that `name` (whose value is `limit`) was exceeded; returns the message.
    pub fn exceed(&mut self, name: &'static str, limit: u32) -> String {
        let exceeded = LimitExceeded { name, limit: limit.into() };
        let message = exceeded.to_string();
        self.exceeded.get_or_insert(exceeded);
        message
    }

    /// What is left of the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Caps a component instance's linear memory, remembering a refusal for the error message.
pub struct MemoryLimit {
    pub limit: usize,
    pub exceeded: Option<usize>,
    /// The largest linear memory granted so far (memories never shrink).
    pub grown_to: usize,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = Some(desired);
            wasmtime::bail!("memory limit of {} MiB exceeded (asked for {} MiB)", self.limit >> 20, desired >> 20);
        }
        self.grown_to = self.grown_to.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
