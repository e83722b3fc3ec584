//! One run of one check instance on a pooled live instance: what the agent's runner and
//! `adrt check` both call, so the two cannot run a check differently.

use std::iter::once;
use std::sync::Arc;
use std::time::Duration;

use super::instance::RunOutcome;
use super::pool::CheckRegistry;
use super::submission::Submissions;
use crate::policy::Reach;
use crate::secrets::Scrubber;
use crate::text::bounded;

/// Warnings of one run (or one validation) kept, at most.
pub(crate) const MAX_WARNINGS: usize = 20;

/// Which instance to run, and as whom.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    /// Whose instances this run may share (the pod's namespace; `""` for conf.d and `adrt check`).
    pub tenant: &'a str,
    pub check: &'a str,
    /// JSON text.
    pub init_config: &'a str,
    pub instance_id: &'a str,
    /// JSON text.
    pub instance: &'a str,
    /// Whose instance it is: what its requests may reach.
    pub reach: &'a Reach,
}

/// What one run gave: its submissions (also on failure) and how it ended. Messages are scrubbed
/// of secret values and bounded: a check's messages may quote what a pod wrote (a URL, a page).
#[derive(Debug, Default)]
pub struct Execution {
    pub submissions: Submissions,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub duration: Duration,
    /// The check's version, once an instance of it started.
    pub version: Option<String>,
}

impl Execution {
    pub fn failed(error: String) -> Self {
        Execution { error: Some(error), ..Execution::default() }
    }

    /// Masks known secret values in everything the run gave back: a check may echo what it was
    /// handed (its instance, a URL with a password) in an error, a warning, a service check's
    /// message, an event or a tag.
    fn scrub(&mut self, scrubber: &Scrubber) {
        if !scrubber.is_active() {
            return;
        }
        let Submissions { samples, service_checks, events } = &mut self.submissions;
        let texts = self.error.iter_mut().chain(self.warnings.iter_mut());
        let samples = samples.iter_mut().flat_map(|s| once(&mut s.name).chain(&mut s.tags).chain(&mut s.hostname).chain(&mut s.device));
        let service_checks =
            service_checks.iter_mut().flat_map(|c| once(&mut c.name).chain(&mut c.tags).chain(&mut c.hostname).chain(&mut c.message));
        let events = events.iter_mut().flat_map(|e| {
            [&mut e.title, &mut e.text].into_iter().chain(&mut e.tags).chain(&mut e.aggregation_key).chain(&mut e.source_type_name)
        });
        for text in texts.chain(samples).chain(service_checks).chain(events) {
            scrubber.scrub_string(text);
        }
    }
}

impl CheckRegistry {
    /// One run on a pooled live instance of the request's tenant. Loading, init and slot
    /// failures are that run's error. What it gives back is scrubbed of secret values.
    pub async fn run_once(self: &Arc<Self>, request: RunRequest<'_>) -> Execution {
        let mut execution = self.run_unscrubbed(request).await;
        let services = self.engine().services();
        // Scrubbed whole, then cut: a cut through a value would leave a piece of it.
        execution.scrub(&services.scrubber);
        // The warnings were located as they were logged.
        services.note_warnings(request.instance_id, &execution.warnings);
        execution.error = execution.error.map(|error| bounded(services.locate(request.instance_id, &error).into_owned()));
        execution.warnings = execution.warnings.into_iter().take(MAX_WARNINGS).map(bounded).collect();
        execution
    }

    async fn run_unscrubbed(self: &Arc<Self>, request: RunRequest<'_>) -> Execution {
        let RunRequest { tenant, check, init_config, instance_id, instance, reach } = request;
        let pool = match self.loaded_pool(tenant, check, init_config) {
            Some(pool) => pool,
            // First use: compiling (or reading the cache) blocks, so not on the runtime thread.
            None => {
                let registry = self.clone();
                let (tenant, check, init_config) = (tenant.to_string(), check.to_string(), init_config.to_string());
                match tokio::task::spawn_blocking(move || registry.pool(&tenant, &check, &init_config)).await {
                    Ok(Ok(pool)) => pool,
                    Ok(Err(error)) => return Execution::failed(error.to_string()),
                    Err(join) => return Execution::failed(format!("loading the check: {join}")),
                }
            }
        };
        let mut live = match self.take(&pool).await {
            Ok(live) => live,
            Err(error) => return Execution::failed(error.to_string()),
        };
        let version = Some(live.info().version.clone());
        let RunOutcome { submissions, error, warnings, duration } = live.run(instance_id, instance, reach).await;
        self.give_back(&pool, live);
        Execution { submissions, error: error.map(|e| e.to_string()), warnings, duration, version }
    }
}
