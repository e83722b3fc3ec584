//! Live instances pooled per (check, init_config), and checks loaded once by name.
//!
//! A pooled instance may serve any check instance of its check (the WIT contract says so), so
//! memory is per check, not per instance, and a run costs a call, not an instantiation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::engine::{CheckEngine, LoadedCheck};
use super::instance::LiveInstance;
use super::ExecError;

/// Checks loaded from one checks.d, each compiled (or read from the cache) on first use.
pub struct CheckRegistry {
    engine: Arc<CheckEngine>,
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LoadedCheck>>>,
    pools: Mutex<HashMap<(String, String), Arc<InstancePool>>>,
}

impl CheckRegistry {
    pub fn new(engine: Arc<CheckEngine>, dir: PathBuf) -> Self {
        CheckRegistry { engine, dir, loaded: Mutex::default(), pools: Mutex::default() }
    }

    pub fn engine(&self) -> &Arc<CheckEngine> {
        &self.engine
    }

    /// The checks.d directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn load(&self, name: &str) -> Result<Arc<LoadedCheck>, ExecError> {
        if let Some(loaded) = self.loaded.lock().unwrap().get(name) {
            return Ok(loaded.clone());
        }
        // Compiling takes a while; other checks may load meanwhile (at worst twice, harmlessly).
        let loaded = Arc::new(self.engine.load(&self.dir, name)?);
        self.loaded.lock().unwrap().insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The pool of this check and init_config if it exists already (no loading).
    pub fn loaded_pool(&self, check: &str, init_config: &str) -> Option<Arc<InstancePool>> {
        self.pools.lock().unwrap().get(&(check.to_string(), init_config.to_string())).cloned()
    }

    /// The pool of live instances for this check and init_config (loads the check if needed).
    pub fn pool(&self, check: &str, init_config: &str) -> Result<Arc<InstancePool>, ExecError> {
        let key = (check.to_string(), init_config.to_string());
        if let Some(pool) = self.pools.lock().unwrap().get(&key) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(InstancePool { loaded: self.load(check)?, init_config: key.1.clone(), idle: Mutex::default() });
        Ok(self.pools.lock().unwrap().entry(key).or_insert(pool).clone())
    }

    /// Drops pools no scheduled instance uses any more, freeing their memory slots.
    pub fn retain_pools(&self, in_use: impl Fn(&str, &str) -> bool) {
        self.pools.lock().unwrap().retain(|(check, init), _| in_use(check, init));
    }
}

/// Idle live instances of one (check, init_config).
pub struct InstancePool {
    loaded: Arc<LoadedCheck>,
    init_config: String,
    idle: Mutex<Vec<LiveInstance>>,
}

impl InstancePool {
    /// An idle instance, or a new one (instantiated and `init`ed).
    pub async fn take(&self, engine: &CheckEngine) -> Result<LiveInstance, ExecError> {
        let idle = self.idle.lock().unwrap().pop();
        match idle {
            Some(instance) => Ok(instance),
            None => LiveInstance::start(engine, &self.loaded, &self.init_config).await,
        }
    }

    /// Returns an instance after a run; a poisoned one is dropped.
    pub fn give_back(&self, instance: LiveInstance) {
        if instance.is_usable() {
            self.idle.lock().unwrap().push(instance);
        }
    }
}
