//! The agent: discover -> resolve -> schedule -> run -> aggregate -> send, wired together.
//!
//! The pod listener sends full snapshots; each one is planned from scratch ([`plan`]) and handed
//! to the scheduler, which keeps what is unchanged (same ID) running with its rate state. What
//! discovery found wrong is kept for the status API, per pod and container.

pub mod listener;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::confd::{self, FileConfig};
use crate::config::Config;
use crate::discover::{Listener, PodEvent};
use crate::exec::CheckRegistry;
use crate::resolve::{DiscoveryContext, Problem, Severity, UnresolvedConfig};
use crate::schedule::{Desired, Scheduler, Sink};
use crate::status::{self, ConfigCheck, EntityErrors, ListenerStatus, Status};

pub struct Agent {
    config: Config,
    registry: Arc<CheckRegistry>,
    scheduler: Arc<Scheduler>,
    /// conf.d: static configs and `ad_identifiers` templates, read at start.
    files: Vec<FileConfig>,
    file_problems: Vec<Problem>,
    discovery: Mutex<Discovery>,
    /// The first snapshot (or the decision to run without pods) has been applied.
    ready: AtomicBool,
}

/// What the last snapshot gave, for the status API.
#[derive(Default)]
struct Discovery {
    listener: ListenerStatus,
    desired: Vec<Desired>,
    unresolved: Vec<UnresolvedConfig>,
    problems: Vec<Problem>,
}

impl Agent {
    pub fn new(config: Config, registry: Arc<CheckRegistry>, sink: Arc<dyn Sink>) -> Arc<Agent> {
        let (files, file_problems) = match &config.conf_dir {
            Some(dir) => confd::load_dir(dir),
            None => Default::default(),
        };
        for problem in &file_problems {
            tracing::warn!(entity = %problem.entity, "{}", problem.message);
        }
        let scheduler = Scheduler::new(registry.clone(), config.check_interval, config.workers, sink);
        Arc::new(Agent {
            config,
            registry,
            scheduler,
            files,
            file_problems,
            discovery: Mutex::default(),
            ready: AtomicBool::new(false),
        })
    }

    /// Runs the listener (if any) and the scheduler until `shutdown` completes.
    pub async fn run(self: Arc<Self>, listener: Option<Listener>, shutdown: impl std::future::Future<Output = ()>) {
        let (tx, mut rx) = mpsc::channel(16);
        let name = listener.as_ref().map_or("none", Listener::name);
        self.discovery.lock().unwrap().listener.name = name.to_string();
        match listener {
            Some(listener) => {
                tracing::info!(listener = name, "discovering pods");
                tokio::spawn(listener.run(tx));
            }
            None => {
                drop(tx);
                self.apply(PodEvent::Snapshot(Vec::new()));
            }
        }
        let scheduler = tokio::spawn(self.scheduler.clone().run(std::future::pending()));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => self.apply(event),
                    None => std::future::pending::<()>().await, // no listener: wait for shutdown
                },
                _ = &mut shutdown => break,
            }
        }
        // Dropping the receiver stops the listener; in-flight runs end with their tasks.
        drop(rx);
        scheduler.abort();
        tracing::info!("stopped");
    }

    /// Applies one listener event: a snapshot replaces the plan; an error is shown and the last
    /// snapshot stays in force.
    pub fn apply(&self, event: PodEvent) {
        match event {
            PodEvent::Snapshot(pods) => {
                let checks = crate::exec::available_checks(self.registry.dir());
                let known = |name: &str| checks.iter().any(|c| c == name);
                let templates: Vec<FileConfig> = self.files.iter().filter(|f| !f.ad_identifiers.is_empty()).cloned().collect();
                let ctx = DiscoveryContext {
                    node_name: &self.config.node_name,
                    env_allowlist: &self.config.env_allowlist,
                    known_checks: &known,
                    file_templates: &templates,
                };
                let plan = plan::plan(&pods, &self.files, &ctx);
                for problem in &plan.problems {
                    match problem.severity {
                        Severity::Error => tracing::warn!(entity = %problem.entity, "{}", problem.message),
                        Severity::Warning => tracing::info!(entity = %problem.entity, "{}", problem.message),
                    }
                }
                self.scheduler.reconcile(plan.desired.clone());
                let mut discovery = self.discovery.lock().unwrap();
                discovery.listener.last_error = None;
                discovery.listener.pods = pods.len();
                discovery.desired = plan.desired;
                discovery.unresolved = plan.unresolved;
                discovery.problems = plan.problems;
                self.ready.store(true, Ordering::Release);
            }
            PodEvent::Error(error) => {
                tracing::warn!(listener = %self.discovery.lock().unwrap().listener.name, "{error}");
                self.discovery.lock().unwrap().listener.last_error = Some(error);
            }
        }
    }

    /// Ready once the first snapshot is applied: from then on the agent checks what it should.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }

    /// `GET /status`.
    pub fn status(&self) -> Status {
        let discovery = self.discovery.lock().unwrap();
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(error) = &discovery.listener.last_error {
            errors.entry(format!("listener {}", discovery.listener.name)).or_default().push(error.clone());
        }
        for problem in self.file_problems.iter().chain(&discovery.problems) {
            let text = match problem.severity {
                Severity::Error => problem.message.clone(),
                Severity::Warning => format!("warning: {}", problem.message),
            };
            errors.entry(problem.entity.clone()).or_default().push(text);
        }
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: self.config.hostname.clone(),
            listener: discovery.listener.clone(),
            checks: self.scheduler.status(),
            autodiscovery_errors: errors.into_iter().map(|(entity, errors)| EntityErrors { entity, errors }).collect(),
        }
    }

    /// `GET /configcheck`.
    pub fn configcheck(&self) -> ConfigCheck {
        let discovery = self.discovery.lock().unwrap();
        let source = |s: &crate::resolve::Source| status::Source {
            namespace: s.namespace.clone(),
            pod: s.pod.clone(),
            container: s.container.clone(),
        };
        ConfigCheck {
            resolved: discovery
                .desired
                .iter()
                .map(|d| status::ResolvedEntry {
                    check: d.config.check.clone(),
                    provider: d.config.provider.clone(),
                    source: source(&d.config.source),
                    id: d.config.id.clone(),
                    init_config: d.config.init_config.clone(),
                    instance: d.config.instance.clone(),
                    tags: d.config.tags.clone(),
                    paused: d.paused,
                })
                .collect(),
            unresolved: discovery
                .unresolved
                .iter()
                .map(|u| status::UnresolvedEntry {
                    check: u.check.clone(),
                    provider: u.provider.clone(),
                    source: source(&u.source),
                    instance: u.instance.clone(),
                    reason: u.reason.clone(),
                })
                .collect(),
        }
    }
}
