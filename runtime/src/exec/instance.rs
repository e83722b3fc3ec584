//! A live check instance: one component instance in its own store, called with a deadline.
//!
//! Whatever the guest does — loop, hoard memory, panic, wait on a peer that never answers —
//! ends as a [`RunError`] of that run. After a trap the instance is poisoned (wasmtime forbids
//! re-entering it); the caller replaces it with a fresh one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::ExecError;
use super::bindings::adrt::check::types::{CheckError, CheckInfo};
use super::engine::{CheckEngine, EPOCH_TICK, LoadedCheck};
use super::exports::Exports;
use super::store::{Call, StoreState};
use super::submission::Submissions;
use crate::policy::Reach;

/// Extra time given to the async call after the epoch deadline, so the epoch trap (which
/// names the cause) normally wins over the outer timeout.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Why a run (or `init`) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The check rejected its configuration.
    #[error("configuration error: {0}")]
    Config(String),
    /// The check reported a failure (target down, unexpected response, ...).
    #[error("{0}")]
    Failed(String),
    #[error("deadline of {} ms exceeded (limits.time_seconds); the check was stopped", .0.as_millis())]
    Deadline(Duration),
    #[error("{0}")]
    Memory(String),
    /// A per-run limit of the check's policy was exceeded.
    #[error("{0}")]
    Limit(super::policy::LimitExceeded),
    #[error("check panicked: {0}")]
    Panic(String),
    #[error("check trapped: {0}")]
    Trap(String),
    /// The instance cannot be used after an earlier trap.
    #[error("instance is poisoned by an earlier trap")]
    Poisoned,
}

/// The result of one run: what was submitted (also on failure) and how it ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub submissions: Submissions,
    pub error: Option<RunError>,
    /// What the check logged at warn level.
    pub warnings: Vec<String>,
    pub duration: Duration,
}

pub struct LiveInstance {
    store: Store<StoreState>,
    exports: Exports,
    info: CheckInfo,
    timeout: Duration,
    poisoned: bool,
    /// Linear memory once started and `init`ed: what the component needs to live (a Python
    /// check's interpreter snapshot is 15 MiB of it).
    started_memory: usize,
}

impl LiveInstance {
    /// Instantiates the check and calls its `init` with the init_config JSON.
    pub async fn start(engine: &CheckEngine, loaded: &LoadedCheck, init_config: &str) -> Result<Self, ExecError> {
        let mut store = sandbox(engine, loaded);
        let timeout = loaded.policy.limits.time();
        let name = loaded.name.to_string();

        arm(&mut store, "", &Reach::Operator, timeout);
        let started = tokio::time::timeout(timeout + DEADLINE_GRACE, async {
            let instance = loaded.pre.instantiate_async(&mut store).await?;
            let exports = Exports::of(&instance, &mut store, &loaded.exports)?;
            let info = exports.info(&mut store).await?;
            let init = exports.init(&mut store, init_config).await?;
            wasmtime::Result::Ok((exports, info, init))
        })
        .await;
        let (exports, info, init) = match started {
            Ok(Ok(started)) => started,
            Ok(Err(trap)) => return Err(ExecError::Init { check: name, error: classify(&store, &trap, timeout) }),
            Err(_) => return Err(ExecError::Init { check: name, error: RunError::Deadline(timeout) }),
        };
        let _ = loaded.version.set(info.version.clone());
        match init {
            Ok(()) => {
                let started_memory = store.data().memory.grown_to;
                Ok(LiveInstance { store, exports, info, timeout, poisoned: false, started_memory })
            }
            Err(error) => Err(ExecError::Init { check: name, error: from_check_error(error) }),
        }
    }

    /// The name and version the check reports.
    pub fn info(&self) -> &CheckInfo {
        &self.info
    }

    /// The largest linear memory the instance was granted.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().memory.grown_to
    }

    /// How much the linear memory grew since the instance started.
    pub fn memory_growth(&self) -> usize {
        self.memory_bytes().saturating_sub(self.started_memory)
    }

    /// False after a trap: the caller must start a new instance.
    pub fn is_usable(&self) -> bool {
        !self.poisoned
    }

    /// Runs one check instance: its ID, its resolved instance JSON, and whose it is.
    pub async fn run(&mut self, instance_id: &str, instance: &str, reach: &Reach) -> RunOutcome {
        let started = Instant::now();
        if self.poisoned {
            return RunOutcome {
                submissions: Submissions::default(),
                error: Some(RunError::Poisoned),
                warnings: Vec::new(),
                duration: Duration::ZERO,
            };
        }
        arm(&mut self.store, instance_id, reach, self.timeout);
        let result = tokio::time::timeout(
            self.timeout + DEADLINE_GRACE,
            self.exports.run(&mut self.store, instance_id, instance),
        )
        .await;
        let error = match result {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => Some(from_check_error(error)),
            Ok(Err(trap)) => {
                self.poisoned = true;
                Some(classify(&self.store, &trap, self.timeout))
            }
            Err(_) => {
                self.poisoned = true;
                Some(RunError::Deadline(self.timeout))
            }
        };
        let call = std::mem::replace(&mut self.store.data_mut().call, Call::idle());
        // Over a limit the run fails with it, whatever the check made of the refusal.
        let error = match &call.exceeded {
            Some(exceeded) => Some(RunError::Limit(exceeded.clone())),
            None => error,
        };
        RunOutcome { submissions: call.submissions, error, warnings: call.warnings, duration: started.elapsed() }
    }
}

/// Calls `validate` with an init_config and an instance (JSON texts) on a fresh instance of
/// `loaded` of its own, under the check's limits, with no `init` before: the check's verdict, or
/// how the call failed (a trap, the deadline, a limit). The component must export `validate`
/// ([`LoadedCheck::has_validate`]).
///
/// The call has no instance to reach: any request it makes reaches only what the check's grants
/// name, never a target.
pub(crate) async fn validate_config(
    engine: &CheckEngine,
    loaded: &LoadedCheck,
    init_config: &str,
    instance: &str,
) -> Result<Result<Vec<String>, CheckError>, RunError> {
    let mut store = sandbox(engine, loaded);
    let timeout = loaded.policy.limits.time();
    arm(&mut store, "", &Reach::Pod { ips: Vec::new(), ports: Vec::new() }, timeout);
    let called = tokio::time::timeout(timeout + DEADLINE_GRACE, async {
        let component = loaded.pre.instantiate_async(&mut store).await?;
        let exports = Exports::of(&component, &mut store, &loaded.exports)?;
        exports.validate(&mut store, init_config, instance).await
    })
    .await;
    let verdict = match called {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(trap)) => return Err(classify(&store, &trap, timeout)),
        Err(_) => return Err(RunError::Deadline(timeout)),
    };
    // Over a limit the call fails with it, whatever the check made of the refusal.
    match &store.data().call.exceeded {
        Some(exceeded) => Err(RunError::Limit(exceeded.clone())),
        None => Ok(verdict),
    }
}

/// A store for one instance of `loaded`: its memory limit, and its deadline checked every epoch
/// tick.
fn sandbox(engine: &CheckEngine, loaded: &LoadedCheck) -> Store<StoreState> {
    let state = StoreState::new(loaded, Arc::clone(engine.services()));
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|state| &mut state.memory);
    // Guest code yields to the runtime every epoch tick, so a check spinning in a loop shares
    // its thread with the other checks and the status server until its deadline traps it.
    // Two ticks of grace let a check return the error of a host call cut at the deadline.
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().call.deadline + EPOCH_TICK * 2 {
            Err(wasmtime::Trap::Interrupt.into())
        } else {
            Ok(wasmtime::UpdateDeadline::Yield(1))
        }
    });
    store
}

/// Starts a call: its deadline, checked by host calls and, every epoch tick, for guest code.
fn arm(store: &mut Store<StoreState>, instance_id: &str, reach: &Reach, timeout: Duration) {
    let state = store.data_mut();
    state.call = Call::start(instance_id, reach, Instant::now() + timeout);
    state.memory.exceeded = None;
    store.set_epoch_deadline(1);
}

fn from_check_error(error: CheckError) -> RunError {
    match error {
        CheckError::Config(message) => RunError::Config(message),
        CheckError::Run(message) => RunError::Failed(message),
    }
}

/// Names the cause of a trap: memory limit, panic, deadline, or the trap itself.
fn classify(store: &Store<StoreState>, trap: &wasmtime::Error, timeout: Duration) -> RunError {
    let state = store.data();
    if state.memory.exceeded.is_some() {
        return RunError::Memory(format!(
            "memory limit of {} MiB exceeded (limits.memory_mib); the check was stopped",
            state.memory.limit >> 20
        ));
    }
    if let Some(exceeded) = &state.call.exceeded {
        return RunError::Limit(exceeded.clone());
    }
    if let Some(message) = &state.call.panic {
        return RunError::Panic(message.clone());
    }
    if trap.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return RunError::Deadline(timeout);
    }
    let causes: Vec<String> = trap.chain().map(|c| c.to_string()).filter(|c| !c.contains("wasm backtrace")).collect();
    RunError::Trap(if causes.is_empty() { trap.to_string() } else { causes.join(": ") })
}
