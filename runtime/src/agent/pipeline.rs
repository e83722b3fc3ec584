//! What a run is for the agent: `exec` runs the instance, `aggregate` turns its submissions
//! into series, `send` gets them through its queue. The scheduler sees only [`Runner`]; none of
//! these steps holds a lock of the scheduler, and the aggregator's lock is held for one flush.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::aggregate::Aggregator;
use crate::exec::{CheckRegistry, RunRequest};
use crate::schedule::{Job, RunSummary, Runner};
use crate::send::{Batch, Outbox};

pub struct Pipeline {
    registry: Arc<CheckRegistry>,
    /// Rate and counter state of every instance, kept across runs.
    aggregator: Mutex<Aggregator>,
    outbox: Outbox,
}

impl Pipeline {
    pub fn new(registry: Arc<CheckRegistry>, outbox: Outbox) -> Self {
        Pipeline { registry, aggregator: Mutex::default(), outbox }
    }
}

impl Runner for Pipeline {
    fn run(&self, job: Job) -> BoxFuture<'_, RunSummary> {
        Box::pin(async move {
            let config = &job.config;
            let request = RunRequest {
                // Instances of one namespace may share live instances; no other may.
                tenant: &config.source.namespace,
                check: &config.check,
                init_config: &job.init_config,
                instance_id: &config.id,
                instance: &job.instance,
                reach: &config.reach,
            };
            let mut execution = self.registry.run_once(request).await;
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
        let in_use: HashSet<(&str, &str, &str)> = scheduled
            .iter()
            .map(|job| (job.config.source.namespace.as_str(), job.config.check.as_str(), &*job.init_config))
            .collect();
        self.registry.retain_pools(|tenant, check, init| in_use.contains(&(tenant, check, init)));
    }
}
