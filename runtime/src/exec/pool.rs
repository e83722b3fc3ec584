//! Live instances pooled per (tenant, check, init_config), and checks loaded once by name.
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
//! after [`IDLE_EVICTION`], and one whose memory grew past [`KEEP_MEMORY_BYTES`] is dropped after
//! its run instead of being kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ExecError;
use super::engine::{CheckEngine, LoadedCheck};
use super::instance::LiveInstance;
use crate::policy::CheckPolicy;

/// An idle instance unused for this long is dropped, its slot and memory freed.
pub const IDLE_EVICTION: Duration = Duration::from_secs(300);
/// An instance whose linear memory grew past this is not kept after its run.
pub const KEEP_MEMORY_BYTES: usize = 16 << 20;
/// How often idle instances of every pool are looked at for [`IDLE_EVICTION`].
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Checks loaded from one checks.d, each compiled (or read from the cache) on first use.
pub struct CheckRegistry {
    engine: Arc<CheckEngine>,
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LoadedCheck>>>,
    pools: Mutex<HashMap<PoolKey, Arc<InstancePool>>>,
    slots: Arc<Slots>,
    last_sweep: Mutex<Instant>,
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
            loaded: Mutex::default(),
            pools: Mutex::default(),
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

    fn load(&self, name: &str) -> Result<Arc<LoadedCheck>, ExecError> {
        if let Some(loaded) = self.loaded.lock().get(name) {
            return Ok(loaded.clone());
        }
        // Compiling takes a while; other checks may load meanwhile (at worst twice, harmlessly).
        let loaded = Arc::new(self.engine.load(&self.dir, name)?);
        self.loaded.lock().insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The policy `name` runs under: its loaded one, else built from its manifest now.
    pub fn policy(&self, name: &str) -> Result<Arc<CheckPolicy>, ExecError> {
        if let Some(loaded) = self.loaded.lock().get(name) {
            return Ok(loaded.policy.clone());
        }
        let manifest =
            crate::policy::manifest::load(&self.dir, name).map_err(|message| ExecError::Policy { check: name.to_string(), message })?;
        Ok(Arc::new(self.engine.policy(name, manifest)?))
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
        let pool = Arc::new(InstancePool {
            loaded: self.load(check)?,
            tenant: Arc::from(tenant),
            init_config: key.init_config.clone(),
            idle: Mutex::default(),
        });
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

    /// Returns an instance after a run; a poisoned one, or one that grew large, is dropped.
    pub fn give_back(&self, pool: &InstancePool, lease: Lease) {
        if lease.live.is_usable() && lease.live.memory_bytes() <= KEEP_MEMORY_BYTES {
            pool.idle.lock().push(Idle { lease, since: Instant::now() });
        }
    }

    /// A slot for a new instance of `tenant`, evicting an idle instance when needed.
    fn free_slot(&self, tenant: &Arc<str>) -> Result<Slot, ExecError> {
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
struct Slot {
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
