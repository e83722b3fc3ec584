//! Live instances pooled per (tenant, check, init_config), and checks loaded by name — once, and
//! again when their files in checks.d change.
//!
//! A pooled instance may serve any check instance of its check within one tenant (the pod's
//! namespace; the agent's own conf.d is a tenant too), as the WIT contract allows: memory is per
//! check, not per instance, and a run costs a call, not an instantiation. Tenants never share a
//! live instance, so nothing one team's instance left in memory is read by another team's.
//!
//! Every live instance holds one of the engine's slots (the memory budget divided by the memory
//! limit). A run that needs a new instance when no slot is free evicts the least recently used
//! idle instance — its own tenant's when that tenant already holds its fair share (the slots
//! divided by the tenants holding any). When nothing can be evicted that run fails with
//! [`ExecError::NoSlot`] while every other instance keeps its slot. Idle instances are dropped
//! after [`IDLE_EVICTION`], and one whose memory grew by more than [`KEEP_MEMORY_BYTES`] since it
//! started is dropped after its run instead of being kept (what it started with is what the
//! component needs: a Python check's interpreter is 15 MiB of it, and is kept like a Rust check).
//!
//! Hot reload ([`CheckRegistry::reload_changed`], called by the agent's watch of checks.d): a
//! check whose `.wasm` or `.toml` changed is loaded in full — compiled, linked against the
//! `adrt:check` world, its manifest read and fitted to the slots — and only then swapped in as a
//! new generation. The pools of the check go with the old generation, so each instance's next
//! run starts (and `init`s) a live instance of the new one; a run in progress ends on the old one,
//! whose instance is then dropped rather than given back. A change that does not load leaves the
//! previous generation running and is kept as the check's load error until a later change loads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ExecError;
use super::engine::{CheckEngine, LoadedCheck};
use super::instance::LiveInstance;
use crate::policy::CheckPolicy;
use crate::policy::manifest::available_checks;

/// An idle instance unused for this long is dropped, its slot and memory freed.
pub const IDLE_EVICTION: Duration = Duration::from_secs(300);
/// An instance whose linear memory grew by more than this since it started is not kept after its run.
pub const KEEP_MEMORY_BYTES: usize = 16 << 20;
/// How often idle instances of every pool are looked at for [`IDLE_EVICTION`].
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Checks loaded from one checks.d, each compiled (or read from the cache) on first use, and
/// again when its files change (see the module docs).
pub struct CheckRegistry {
    engine: Arc<CheckEngine>,
    dir: PathBuf,
    /// By check name. Lock before `pools`.
    checks: Mutex<HashMap<String, CheckEntry>>,
    pools: Mutex<HashMap<PoolKey, Arc<InstancePool>>>,
    /// The next generation a loaded version gets; a pool serves one generation.
    next_generation: AtomicU64,
    slots: Arc<Slots>,
    last_sweep: Mutex<Instant>,
}

/// What the registry knows of one check.
#[derive(Default)]
struct CheckEntry {
    /// The version new instances start from, once loaded.
    current: Option<Current>,
    /// The check's files as last looked at (loaded, failed or noted); `None`: no `.wasm` then.
    files: Option<CheckFiles>,
    /// Why the files as they are now did not load, while they stay so.
    load_error: Option<String>,
}

#[derive(Clone)]
struct Current {
    check: Arc<LoadedCheck>,
    generation: u64,
}

/// Enough of a check's `.wasm` and `.toml` metadata to tell that either changed (written in
/// place, replaced by a rename, removed) without reading them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckFiles {
    wasm: FileStamp,
    manifest: Option<FileStamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileStamp {
    /// `None` when there is no such file (a symlink is followed).
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            device: meta.dev(),
            inode: meta.ino(),
            len: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

impl CheckFiles {
    /// The files of `name` in `dir` now; `None` when it has no `.wasm`.
    fn of(dir: &Path, name: &str) -> Option<CheckFiles> {
        let wasm = FileStamp::of(&dir.join(format!("{name}.wasm")))?;
        Some(CheckFiles { wasm, manifest: FileStamp::of(&dir.join(format!("{name}.toml"))) })
    }
}

/// What [`CheckRegistry::reload_changed`] did to one check whose files changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A check with no version loaded before (new, or not used yet) loaded: configs waiting for
    /// it can be scheduled.
    Added { check: String },
    /// Its component or manifest changed and loaded: instances move to it on their next run.
    Replaced { check: String },
    /// Its component is gone: its pools are dropped and its instances must be unscheduled.
    Removed { check: String },
    /// Its files changed but do not load; the previous version, if any, keeps running.
    Failed { check: String, error: String },
}

/// Where the running version of a check came from and how its last load went, for the status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadState {
    /// The component the running version was loaded from (`None` before its first load).
    pub path: Option<PathBuf>,
    /// Its manifest, if it had one.
    pub manifest: Option<PathBuf>,
    /// What its `info` export returned, once an instance of it started.
    pub version: Option<String>,
    /// Why its changed files did not load.
    pub load_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    tenant: String,
    check: String,
    init_config: String,
}

impl PoolKey {
    fn new(tenant: &str, check: &str, init_config: &str) -> Self {
        PoolKey { tenant: tenant.to_string(), check: check.to_string(), init_config: init_config.to_string() }
    }
}

impl CheckRegistry {
    pub fn new(engine: Arc<CheckEngine>, dir: PathBuf) -> Self {
        let slots = Arc::new(Slots { total: engine.settings().max_instances.max(1) as usize, held: Mutex::default() });
        CheckRegistry {
            engine,
            dir,
            checks: Mutex::default(),
            pools: Mutex::default(),
            next_generation: AtomicU64::new(1),
            slots,
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    pub fn engine(&self) -> &Arc<CheckEngine> {
        &self.engine
    }

    /// The checks.d directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Live instances (idle or running), for tests and status.
    pub fn live_instances(&self) -> usize {
        self.slots.held.lock().values().sum()
    }

    /// The current version of `name`, loaded now if it never was.
    fn load(&self, name: &str) -> Result<Current, ExecError> {
        if let Some(current) = self.checks.lock().get(name).and_then(|entry| entry.current.clone()) {
            return Ok(current);
        }
        // Looked at before reading: a change while compiling is seen again by the next rescan.
        let files = CheckFiles::of(&self.dir, name);
        // Compiling takes a while; other checks may load meanwhile.
        let check = Arc::new(self.engine.load(&self.dir, name)?);
        let mut checks = self.checks.lock();
        let entry = checks.entry(name.to_string()).or_default();
        // Another first use, or a reload, may have come first: theirs stands.
        if let Some(current) = &entry.current {
            return Ok(current.clone());
        }
        let current = Current { check, generation: self.next_generation.fetch_add(1, Ordering::Relaxed) };
        *entry = CheckEntry { current: Some(current.clone()), files, load_error: None };
        Ok(current)
    }

    /// The policy `name` runs under: its loaded one, else built from its manifest now.
    pub fn policy(&self, name: &str) -> Result<Arc<CheckPolicy>, ExecError> {
        if let Some(current) = self.checks.lock().get(name).and_then(|entry| entry.current.as_ref()) {
            return Ok(current.check.policy.clone());
        }
        let manifest =
            crate::policy::manifest::load(&self.dir, name).map_err(|message| ExecError::Policy { check: name.to_string(), message })?;
        Ok(Arc::new(self.engine.policy(name, manifest)?))
    }

    /// Notes the files of checks.d as they are now: [`reload_changed`](Self::reload_changed)
    /// then reloads only what changes after (checks not loaded yet still load on first use).
    pub fn note_files(&self) {
        let mut checks = self.checks.lock();
        for name in available_checks(&self.dir) {
            let files = CheckFiles::of(&self.dir, &name);
            checks.entry(name).or_default().files = files;
        }
    }

    /// Reloads every check whose files changed since they were last looked at: a new or changed
    /// one is loaded in full and swapped in, a removed one dropped, one that does not load kept
    /// as it was (see the module docs). Blocks while compiling: call it off the async runtime.
    pub fn reload_changed(&self) -> Vec<Reload> {
        let mut names: BTreeSet<String> = available_checks(&self.dir).into_iter().collect();
        names.extend(self.checks.lock().keys().cloned());
        names.into_iter().filter_map(|name| self.reload_if_changed(name)).collect()
    }

    fn reload_if_changed(&self, check: String) -> Option<Reload> {
        let files = CheckFiles::of(&self.dir, &check);
        let seen = self.checks.lock().get(&check).and_then(|entry| entry.files.clone());
        if files == seen {
            return None;
        }
        if files.is_none() {
            self.checks.lock().remove(&check);
            self.drop_pools(&check);
            return Some(Reload::Removed { check });
        }
        let loaded = self.engine.load(&self.dir, &check);
        let mut checks = self.checks.lock();
        let entry = checks.entry(check.clone()).or_default();
        entry.files = files;
        match loaded {
            Ok(loaded) => {
                let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
                let previous = entry.current.replace(Current { check: Arc::new(loaded), generation });
                entry.load_error = None;
                drop(checks);
                self.drop_pools(&check);
                Some(if previous.is_none() { Reload::Added { check } } else { Reload::Replaced { check } })
            }
            Err(error) => {
                let error = error.to_string();
                entry.load_error = Some(error.clone());
                Some(Reload::Failed { check, error })
            }
        }
    }

    /// Drops the pools of `check` and their idle instances; leases out now are not taken back.
    fn drop_pools(&self, check: &str) {
        let mut gone = Vec::new();
        self.pools.lock().retain(|key, pool| {
            let keep = key.check != check;
            if !keep {
                gone.push(pool.clone());
            }
            keep
        });
        for pool in gone {
            pool.idle.lock().clear();
        }
    }

    /// The current version of `name`, loaded now if it never was (which blocks: call it off the
    /// async runtime's thread).
    pub fn loaded(&self, name: &str) -> Result<Arc<LoadedCheck>, ExecError> {
        self.load(name).map(|current| current.check)
    }

    /// Where each check known here was loaded from and how its last load went, by name.
    pub fn load_states(&self) -> BTreeMap<String, LoadState> {
        let checks = self.checks.lock();
        checks
            .iter()
            .filter(|(_, entry)| entry.current.is_some() || entry.load_error.is_some())
            .map(|(name, entry)| {
                let check = entry.current.as_ref().map(|current| &current.check);
                let state = LoadState {
                    path: check.map(|c| c.path.clone()),
                    manifest: check.and_then(|c| c.policy.manifest.clone()),
                    version: check.and_then(|c| c.version.get().cloned()),
                    load_error: entry.load_error.clone(),
                };
                (name.clone(), state)
            })
            .collect()
    }

    /// Is `pool` of the current generation of its check?
    fn is_current(&self, pool: &InstancePool) -> bool {
        let checks = self.checks.lock();
        let current = checks.get(&*pool.loaded.name).and_then(|entry| entry.current.as_ref());
        current.is_some_and(|current| current.generation == pool.generation)
    }

    /// The pool of this tenant, check and init_config if it exists already (no loading).
    pub fn loaded_pool(&self, tenant: &str, check: &str, init_config: &str) -> Option<Arc<InstancePool>> {
        self.pools.lock().get(&PoolKey::new(tenant, check, init_config)).cloned()
    }

    /// The pool of live instances for this tenant, check and init_config (loads the check if
    /// needed, which blocks: call it off the async runtime's thread).
    pub fn pool(&self, tenant: &str, check: &str, init_config: &str) -> Result<Arc<InstancePool>, ExecError> {
        let key = PoolKey::new(tenant, check, init_config);
        if let Some(pool) = self.pools.lock().get(&key) {
            return Ok(pool.clone());
        }
        let Current { check: loaded, generation } = self.load(check)?;
        let pool =
            Arc::new(InstancePool { loaded, generation, tenant: Arc::from(tenant), init_config: key.init_config.clone(), idle: Mutex::default() });
        // A reload between loading and here dropped the check's pools already: this one serves
        // the run that asked for it, once, and is not kept.
        let checks = self.checks.lock();
        let current = checks.get(check).and_then(|entry| entry.current.as_ref());
        if current.is_none_or(|current| current.generation != generation) {
            return Ok(pool);
        }
        Ok(self.pools.lock().entry(key).or_insert(pool).clone())
    }

    /// Drops pools no scheduled instance uses any more, freeing their slots and memory.
    pub fn retain_pools(&self, in_use: impl Fn(&str, &str, &str) -> bool) {
        self.pools.lock().retain(|key, _| in_use(&key.tenant, &key.check, &key.init_config));
    }

    /// An idle instance of `pool`, or a new one (instantiated and `init`ed) in a free slot.
    pub async fn take(&self, pool: &InstancePool) -> Result<Lease, ExecError> {
        self.sweep_idle();
        if let Some(idle) = pool.idle.lock().pop() {
            return Ok(idle.lease);
        }
        let slot = self.free_slot(&pool.tenant)?;
        let live = LiveInstance::start(&self.engine, &pool.loaded, &pool.init_config).await?;
        Ok(Lease { live, slot })
    }

    /// Returns an instance after a run; a poisoned one, one that grew large, or one of a version
    /// reloaded since, is dropped.
    pub fn give_back(&self, pool: &InstancePool, lease: Lease) {
        if lease.live.is_usable() && lease.live.memory_growth() <= KEEP_MEMORY_BYTES && self.is_current(pool) {
            pool.idle.lock().push(Idle { lease, since: Instant::now() });
        }
    }

    /// A slot for a new instance of `tenant`, evicting an idle instance when needed.
    pub(crate) fn free_slot(&self, tenant: &Arc<str>) -> Result<Slot, ExecError> {
        // Each round evicts another tenant's instance or ends; the bound only guards against
        // other threads taking each freed slot first, without end.
        for _ in 0..8 {
            match self.slots.try_acquire(tenant) {
                Ok(slot) => return Ok(slot),
                // The tenant's own least recently used idle instance hands its slot over.
                Err(Shortage::OverShare { share }) => {
                    return match self.evict_lru(|t| t == &**tenant) {
                        Some(evicted) => Ok(evicted.into_slot()),
                        None => Err(ExecError::NoSlot(format!(
                            "namespace {tenant:?} holds its fair share of instance slots ({share} of {}) and none of them is idle",
                            self.slots.total
                        ))),
                    };
                }
                Err(Shortage::Full { over_share }) => {
                    let evicted = self.evict_lru(|t| over_share.iter().any(|o| &**o == t)).or_else(|| self.evict_lru(|_| true));
                    let Some(evicted) = evicted else {
                        return Err(ExecError::NoSlot(format!("all {} instance slots are running checks", self.slots.total)));
                    };
                    drop(evicted);
                }
            }
        }
        Err(ExecError::NoSlot(format!("no instance slot could be freed (of {})", self.slots.total)))
    }

    /// Removes the least recently used idle instance whose tenant `wanted` accepts.
    fn evict_lru(&self, wanted: impl Fn(&str) -> bool) -> Option<Lease> {
        let pools = self.pools.lock();
        let mut oldest: Option<(&Arc<InstancePool>, Instant)> = None;
        for pool in pools.values().filter(|p| wanted(&p.tenant)) {
            if let Some(first) = pool.idle.lock().first()
                && oldest.is_none_or(|(_, since)| first.since < since)
            {
                oldest = Some((pool, first.since));
            }
        }
        let (pool, _) = oldest?;
        let mut idle = pool.idle.lock();
        (!idle.is_empty()).then(|| idle.remove(0).lease)
    }

    /// Drops instances idle for longer than [`IDLE_EVICTION`], at most every [`SWEEP_EVERY`].
    fn sweep_idle(&self) {
        {
            let mut last = self.last_sweep.lock();
            if last.elapsed() < SWEEP_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let pools: Vec<Arc<InstancePool>> = self.pools.lock().values().cloned().collect();
        for pool in pools {
            pool.idle.lock().retain(|idle| idle.since.elapsed() < IDLE_EVICTION);
        }
    }
}

/// Idle live instances of one (tenant, check, init_config), oldest first.
pub struct InstancePool {
    loaded: Arc<LoadedCheck>,
    /// The registry's generation of `loaded`: only a current one takes instances back.
    generation: u64,
    tenant: Arc<str>,
    init_config: String,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    lease: Lease,
    since: Instant,
}

/// A live instance and the slot it holds; dropping it frees both.
pub struct Lease {
    live: LiveInstance,
    slot: Slot,
}

impl Lease {
    /// Drops the instance but keeps its slot, for another instance of the same tenant.
    fn into_slot(self) -> Slot {
        self.slot
    }
}

impl std::ops::Deref for Lease {
    type Target = LiveInstance;
    fn deref(&self) -> &LiveInstance {
        &self.live
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut LiveInstance {
        &mut self.live
    }
}

/// The engine's instance slots and how many each tenant holds.
struct Slots {
    total: usize,
    held: Mutex<HashMap<Arc<str>, usize>>,
}

enum Shortage {
    /// Every slot is held; these tenants hold more than their share.
    Full { over_share: Vec<Arc<str>> },
    /// The tenant holds its share already.
    OverShare { share: usize },
}

impl Slots {
    fn try_acquire(self: &Arc<Self>, tenant: &Arc<str>) -> Result<Slot, Shortage> {
        let mut held = self.held.lock();
        let tenants = held.len() + usize::from(!held.contains_key(tenant));
        let share = (self.total / tenants).max(1);
        let mine = held.get(tenant).copied().unwrap_or(0);
        if mine >= share {
            return Err(Shortage::OverShare { share });
        }
        if held.values().sum::<usize>() >= self.total {
            let over_share = held.iter().filter(|(_, n)| **n > share).map(|(t, _)| t.clone()).collect();
            return Err(Shortage::Full { over_share });
        }
        *held.entry(tenant.clone()).or_default() += 1;
        Ok(Slot { slots: self.clone(), tenant: tenant.clone() })
    }
}

/// One held slot; released on drop.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    tenant: Arc<str>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock();
        if let Some(count) = held.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(total: usize) -> Arc<Slots> {
        Arc::new(Slots { total, held: Mutex::default() })
    }

    #[test]
    fn a_tenant_gets_at_most_its_fair_share_once_others_hold_slots() {
        let slots = slots(4);
        let (a, b): (Arc<str>, Arc<str>) = ("team-a".into(), "team-b".into());
        // Alone, a tenant may take every slot.
        let mut held_by_a: Vec<Slot> = (0..4).map(|_| slots.try_acquire(&a).ok().unwrap()).collect();
        // Another tenant finds them full, and learns who holds more than its share (2 of 4).
        match slots.try_acquire(&b) {
            Err(Shortage::Full { over_share }) => assert_eq!(over_share, vec![a.clone()]),
            _ => panic!("expected Full"),
        }
        held_by_a.truncate(2);
        let _b1 = slots.try_acquire(&b).ok().unwrap();
        let _b2 = slots.try_acquire(&b).ok().unwrap();
        // Now each holds its share: a third for b must come from b's own.
        assert!(matches!(slots.try_acquire(&b), Err(Shortage::OverShare { share: 2 })));
    }

    #[test]
    fn dropped_slots_are_released() {
        let slots = slots(1);
        let t: Arc<str> = "t".into();
        let slot = slots.try_acquire(&t).ok().unwrap();
        assert!(slots.try_acquire(&t).is_err());
        drop(slot);
        assert!(slots.held.lock().is_empty());
        assert!(slots.try_acquire(&t).is_ok());
    }
}
