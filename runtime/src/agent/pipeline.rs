//! What a run is for the agent: `secrets` puts the values of the config's Secret handles in
//! the copy for this run, `exec` runs the instance, `aggregate` turns its submissions into
//! series, `send` gets them through its queue. The scheduler sees only [`Runner`]; none of
//! these steps holds a lock of the scheduler, and the aggregator's lock is held for one flush.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::aggregate::Aggregator;
use crate::exec::{CheckRegistry, Execution, RunRequest};
use crate::schedule::{Job, RunSummary, Runner};
use crate::secrets::{Author, SecretResolver};
use crate::send::{Batch, Outbox};
use crate::text::bounded;

pub struct Pipeline {
    registry: Arc<CheckRegistry>,
    secrets: Arc<SecretResolver>,
    /// Rate and counter state of every instance, kept across runs.
    aggregator: Mutex<Aggregator>,
    outbox: Outbox,
    /// init_configs as configured → with their Secrets' values, which name their live
    /// instances' pools, so that `retain` keeps those pools.
    resolved_init_configs: Mutex<HashMap<Arc<str>, String>>,
}

impl Pipeline {
    pub fn new(registry: Arc<CheckRegistry>, secrets: Arc<SecretResolver>, outbox: Outbox) -> Self {
        Pipeline { registry, secrets, aggregator: Mutex::default(), outbox, resolved_init_configs: Mutex::default() }
    }
}

impl Runner for Pipeline {
    fn run(&self, job: Job) -> BoxFuture<'_, RunSummary> {
        Box::pin(async move {
            let config = &job.config;
            let mut execution = match self.secrets.resolve(Author::of(config), &job.init_config, &job.instance).await {
                Ok(resolved) => {
                    if resolved.init_config != *job.init_config {
                        self.resolved_init_configs.lock().insert(job.init_config.clone(), resolved.init_config.to_string());
                    }
                    let request = RunRequest {
                        // Instances of one namespace may share live instances; no other may.
                        tenant: &config.source.namespace,
                        check: &config.check,
                        init_config: &resolved.init_config,
                        instance_id: &config.id,
                        instance: &resolved.instance,
                        reach: &config.reach,
                    };
                    self.registry.run_once(request).await
                }
                Err(error) => Execution::failed(bounded(error.to_string())),
            };
            let submissions = std::mem::take(&mut execution.submissions);
            let flushed = self.aggregator.lock().flush(&config.id, &job.tags, Instant::now(), submissions);
            let summary = RunSummary {
                error: execution.error,
                warnings: execution.warnings,
                duration: execution.duration,
                version: execution.version,
                metrics: flushed.series.len(),
                events: flushed.events.len(),
                service_checks: flushed.service_checks.len(),
            };
            self.outbox.offer(Batch { config: job.config.clone(), flushed, at: SystemTime::now() });
            summary
        })
    }

    fn forget(&self, id: &str) {
        self.aggregator.lock().forget(id);
        self.outbox.forget(id);
        self.registry.engine().services().forget_instance(id);
    }

    fn retain(&self, scheduled: &[Job]) {
        let mut resolved = self.resolved_init_configs.lock();
        resolved.retain(|configured, _| scheduled.iter().any(|job| job.init_config == *configured));
        let in_use: HashSet<(&str, &str, &str)> = scheduled
            .iter()
            .map(|job| {
                let init = resolved.get(&job.init_config).map_or(&*job.init_config, String::as_str);
                (job.config.source.namespace.as_str(), job.config.check.as_str(), init)
            })
            .collect();
        self.registry.retain_pools(|tenant, check, init| in_use.contains(&(tenant, check, init)));
    }
}
