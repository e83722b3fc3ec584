//! What a run is for the agent: `secrets` puts the values of the config's Secret handles in
//! the copy for this run, `exec` runs the instance, `aggregate` turns its submissions into
//! series, `send` gets them through its queue. The scheduler sees only [`Runner`]; none of
//! these steps holds a lock of the scheduler, and the aggregator's lock is held for one flush.
//!
//! An instance keeps its rate and counter state across a reload of its check, unless the new
//! version's major number differs from the one it last ran: what the counters mean may have
//! changed, so their first run on it starts them afresh.

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
    /// Rate and counter state of every instance, kept across runs, and the check version each
    /// instance last ran.
    kept: Mutex<Kept>,
    outbox: Outbox,
    /// init_configs as configured → with their Secrets' values, which name their live
    /// instances' pools, so that `retain` keeps those pools.
    resolved_init_configs: Mutex<HashMap<Arc<str>, String>>,
}

#[derive(Default)]
struct Kept {
    aggregator: Aggregator,
    versions: HashMap<String, String>,
}

impl Kept {
    /// Notes that `id` ran `version`; forgets its counters when the major version changed.
    fn note_version(&mut self, id: &str, version: &str) {
        match self.versions.get(id) {
            Some(last) if last == version => {}
            last => {
                if last.is_some_and(|last| major(last) != major(version)) {
                    tracing::info!(instance = %id, from = %last.map(String::as_str).unwrap_or_default(), to = %version, "new major version: rates and counters start afresh");
                    self.aggregator.forget(id);
                }
                self.versions.insert(id.to_string(), version.to_string());
            }
        }
    }
}

/// The major number of a semantic version (`v` prefix allowed); the whole text if it has none.
fn major(version: &str) -> &str {
    let version = version.trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    version.split(['.', '-', '+']).next().unwrap_or(version)
}

impl Pipeline {
    pub fn new(registry: Arc<CheckRegistry>, secrets: Arc<SecretResolver>, outbox: Outbox) -> Self {
        Pipeline { registry, secrets, kept: Mutex::default(), outbox, resolved_init_configs: Mutex::default() }
    }
}

impl Runner for Pipeline {
    fn run(&self, job: Job) -> BoxFuture<'_, RunSummary> {
        Box::pin(async move {
            let config = &job.config;
            if !config.provenance.place.is_empty() {
                self.registry.engine().services().describe_instance(&config.id, &config.provenance);
            }
            let options = match &job.options {
                Ok(options) => options.clone(),
                // `resolve` schedules no such instance; one made elsewhere fails each run the same way.
                Err(reason) => return RunSummary { error: Some(format!("invalid instance: {reason}")), ..RunSummary::default() },
            };
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
            let flushed = {
                let mut kept = self.kept.lock();
                if let Some(version) = &execution.version {
                    kept.note_version(&config.id, version);
                }
                kept.aggregator.flush(&config.id, &options, Instant::now(), submissions)
            };
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
        let mut kept = self.kept.lock();
        kept.aggregator.forget(id);
        kept.versions.remove(id);
        drop(kept);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use crate::exec::{MetricKind, Sample, Submissions};

    fn rate(value: f64) -> Submissions {
        let sample = Sample { name: "requests".into(), kind: MetricKind::Rate, value, tags: Vec::new(), hostname: None, device: None };
        Submissions { samples: vec![sample], ..Submissions::default() }
    }

    /// Runs `version` of an instance that submits the counter `value` (1 s after the last run),
    /// and says whether the aggregator emitted a rate.
    fn run(kept: &mut Kept, at: Instant, version: &str, value: f64) -> bool {
        kept.note_version("web:1", version);
        !kept.aggregator.flush("web:1", &Default::default(), at, rate(value)).series.is_empty()
    }

    #[test]
    fn rates_survive_a_minor_upgrade_and_restart_on_a_major_one() {
        let mut kept = Kept::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(!run(&mut kept, at(0), "1.2.0", 10.0), "a rate's first run emits nothing");
        assert!(run(&mut kept, at(1), "1.2.0", 20.0));
        assert!(run(&mut kept, at(2), "1.3.0", 30.0), "a minor upgrade keeps the counter");
        assert!(!run(&mut kept, at(3), "2.0.0", 40.0), "a major upgrade starts it afresh");
        assert!(run(&mut kept, at(4), "2.0.1", 50.0));
    }

    #[test]
    fn the_major_number_of_a_version() {
        assert_eq!(major("1.2.3"), "1");
        assert_eq!(major("v10.0.0-rc.1"), "10");
        assert_eq!(major("2+build"), "2");
        assert_eq!(major("nightly"), "nightly");
    }
}
