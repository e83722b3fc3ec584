//! The data of one live check instance's wasmtime store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::host::wasi_log::LogStream;
use super::services::HostServices;
use super::submission::Submissions;

/// Per-store state: which check this is, the current call, and its limits.
pub struct StoreState {
    pub(crate) check: Arc<str>,
    pub(crate) services: Arc<HostServices>,
    pub(crate) call: Call,
    pub(crate) memory: MemoryLimit,
    /// Bytes of one HTTP response body, at most.
    pub(crate) response_limit: usize,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl StoreState {
    pub fn new(check: Arc<str>, services: Arc<HostServices>, memory_limit: usize, response_limit: usize) -> Self {
        // No preopened directories, no environment, no network: a WASI check reaches the host
        // only through adrt's own imports. Its stdout and stderr go to the agent's log.
        let wasi = WasiCtx::builder()
            .stdout(LogStream::stdout(check.clone(), services.scrubber.clone()))
            .stderr(LogStream::stderr(check.clone(), services.scrubber.clone()))
            .build();
        StoreState {
            call: Call::idle(),
            memory: MemoryLimit { limit: memory_limit, exceeded: None, grown_to: 0 },
            response_limit,
            check,
            services,
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

/// The guest call in progress (`init` or `run`) and what it submitted.
pub struct Call {
    /// The check instance being run; empty during `init`.
    pub instance_id: String,
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
            deadline: Instant::now(),
            submissions: Submissions::default(),
            panic: None,
            warnings: Vec::new(),
        }
    }

    pub fn start(instance_id: &str, deadline: Instant) -> Self {
        Call { instance_id: instance_id.to_string(), deadline, ..Call::idle() }
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
