//! The wasmtime engine of the agent: configuration, linking, and loading checks by name.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::ExecError;
use super::bindings::Check;
use super::cache::{ArtifactCache, Origin};
use super::exports::ExportIndices;
use super::services::HostServices;
use super::host::files::RootDirs;
use super::store::StoreState;
pub use crate::policy::manifest::available_checks;
use crate::policy::{CheckPolicy, Grants, Limits};

/// How often the epoch advances; a call's deadline is rounded up to this.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sizes and limits of the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Live component instances the pooling allocator reserves room for (the agent's instance
    /// slots): the memory budget divided by the slot memory.
    pub max_instances: u32,
    /// Linear memory each slot reserves: the largest memory limit of any check, so a check
    /// whose manifest asks more than this (a manifest dropped in later) cannot load.
    pub slot_memory: usize,
    /// The limits of checks whose manifest and operator settings set none.
    pub limits: Limits,
    /// Where compiled artifacts are kept; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl EngineSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        EngineSettings {
            max_instances: config.instance_slots(),
            slot_memory: (config.slot_memory_mib as usize) << 20,
            limits: config.limits,
            cache_dir: config.cache_dir.clone(),
        }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        let limits = Limits::default();
        EngineSettings { max_instances: 16, slot_memory: limits.memory_bytes(), limits, cache_dir: None }
    }
}

/// A check loaded from checks.d: compiled, linked and ready to instantiate cheaply.
pub struct LoadedCheck {
    pub name: Arc<str>,
    pub path: PathBuf,
    pub origin: Origin,
    /// What the check runs under: its manifest and the operator's settings.
    pub policy: Arc<CheckPolicy>,
    /// The version its `info` export returned, once an instance of it started.
    pub version: OnceLock<String>,
    pub(crate) roots: Arc<RootDirs>,
    pub(crate) pre: InstancePre<StoreState>,
    pub(crate) exports: ExportIndices,
}

impl LoadedCheck {
    /// Does the component export `validate` (adrt:check 0.1.1 on)?
    pub fn has_validate(&self) -> bool {
        self.exports.has_validate()
    }
}

/// The engine, its linker, and the services every store shares.
pub struct CheckEngine {
    pub(crate) engine: Engine,
    linker: Linker<StoreState>,
    cache: Option<ArtifactCache>,
    pub(crate) settings: EngineSettings,
    pub(crate) services: Arc<HostServices>,
}

impl CheckEngine {
    pub fn new(settings: EngineSettings, services: Arc<HostServices>) -> Result<Arc<Self>, ExecError> {
        let engine = Engine::new(&config(&settings)).map_err(|source| ExecError::Engine { what: "", source })?;
        let mut linker = Linker::new(&engine);
        Check::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state)
            .and_then(|_| wasmtime_wasi::p2::add_to_linker_async(&mut linker))
            .map_err(|source| ExecError::Engine { what: "linking the host: ", source })?;
        let cache = settings.cache_dir.clone().map(|dir| ArtifactCache::new(dir, &engine));
        let this = Arc::new(CheckEngine { engine, linker, cache, settings, services });
        spawn_epoch_ticker(Arc::downgrade(&this));
        Ok(this)
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    pub fn services(&self) -> &Arc<HostServices> {
        &self.services
    }

    /// Loads `<dir>/<name>.wasm` (from the artifact cache when warm, compiled otherwise) under
    /// the policy of its manifest `<dir>/<name>.toml`.
    pub fn load(&self, dir: &Path, name: &str) -> Result<LoadedCheck, ExecError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) || name.starts_with('.') {
            return Err(ExecError::NotFound { name: name.to_string(), dir: dir.to_path_buf(), available: Vec::new() });
        }
        let path = dir.join(format!("{name}.wasm"));
        let wasm = std::fs::read(&path).map_err(|_| ExecError::NotFound {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            available: available_checks(dir),
        })?;
        let manifest = crate::policy::manifest::load(dir, name).map_err(|message| ExecError::Policy { check: name.to_string(), message })?;
        self.load_bytes(name, &path, &wasm, manifest)
    }

    /// Loads a component from memory (`path` is only for messages) under `manifest`.
    pub fn load_bytes(&self, name: &str, path: &Path, wasm: &[u8], manifest: Option<(PathBuf, Grants)>) -> Result<LoadedCheck, ExecError> {
        let policy = self.policy(name, manifest)?;
        let invalid = |source| ExecError::Invalid { path: path.to_path_buf(), what: "", source };
        let (component, origin) = match &self.cache {
            Some(cache) => cache.load(&self.engine, name, wasm).map_err(invalid)?,
            None => (Component::new(&self.engine, wasm).map_err(invalid)?, Origin::Compiled),
        };
        let (pre, exports) = self
            .linker
            .instantiate_pre(&component)
            .and_then(|pre| ExportIndices::new(&pre).map(|exports| (pre, exports)))
            .map_err(|source| ExecError::Invalid { path: path.to_path_buf(), what: "does not fit adrt:check: ", source })?;
        let roots = Arc::new(RootDirs::new(&policy.files));
        Ok(LoadedCheck {
            name: Arc::from(name),
            path: path.to_path_buf(),
            origin,
            policy: Arc::new(policy),
            version: OnceLock::new(),
            roots,
            pre,
            exports,
        })
    }

    /// The policy of `name` under `manifest`, refused when its memory limit does not fit a slot.
    pub fn policy(&self, name: &str, manifest: Option<(PathBuf, Grants)>) -> Result<CheckPolicy, ExecError> {
        let failed = |message: String| ExecError::Policy { check: name.to_string(), message };
        let policy = self.services.policies.policy(name, manifest, &self.settings.limits).map_err(failed)?;
        if policy.limits.memory_bytes() > self.settings.slot_memory {
            return Err(failed(format!(
                "limits.memory_mib {} is over the {} MiB the engine's instance slots were sized for at start (the largest \
                 memory limit of the config and the manifests then); restart the agent to raise it",
                policy.limits.memory_mib,
                self.settings.slot_memory >> 20
            )));
        }
        Ok(policy)
    }
}

fn config(settings: &EngineSettings) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Small reservations: a check's memory is capped anyway, and many instances must fit.
    config.memory_reservation(settings.slot_memory as u64);
    config.memory_guard_size(64 << 10);
    config.memory_reservation_for_growth(0);
    config.max_wasm_stack(512 << 10);
    config.async_stack_size(1 << 20);
    let mut pool = PoolingAllocationConfig::default();
    let instances = settings.max_instances;
    // Core instances: as many per slot as one component may hold, so that every slot can hold a
    // componentize-py check (its interpreter, libc and adapters are a dozen core instances).
    pool.total_component_instances(instances)
        .total_core_instances(instances * 16)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
        .max_memory_size(settings.slot_memory)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .max_core_instances_per_component(16);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the epoch every [`EPOCH_TICK`] for as long as the engine lives.
fn spawn_epoch_ticker(engine: Weak<CheckEngine>) {
    std::thread::Builder::new()
        .name("adrt-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
