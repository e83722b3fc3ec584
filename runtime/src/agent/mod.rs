//! The agent: discover -> resolve -> schedule -> run -> aggregate -> send, wired together.
//!
//! The pod listener sends full snapshots and the config store (if any) its templates; on either,
//! everything is planned from scratch ([`plan`]) and handed to the scheduler, which keeps what
//! is unchanged (same ID) running with its rate state. What discovery found wrong is kept for
//! the status API, per pod and container.

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
use crate::pod::Pod;
use crate::resolve::{DiscoveryContext, Problem, Severity, UnresolvedConfig};
use crate::schedule::{Desired, Scheduler, Sink};
use crate::status::{self, ConfigCheck, EntityErrors, ListenerStatus, Status};
use crate::store::EtcdStore;

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
    pods: Vec<Pod>,
    store: StoreState,
    desired: Vec<Desired>,
    unresolved: Vec<UnresolvedConfig>,
    problems: Vec<Problem>,
}

/// The config store's templates as last read; an error keeps the last good ones.
#[derive(Default, Clone, PartialEq)]
struct StoreState {
    templates: Vec<FileConfig>,
    problems: Vec<Problem>,
    error: Option<String>,
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

    /// Runs the listener and the config store (if any) and the scheduler until `shutdown` completes.
    pub async fn run(
        self: Arc<Self>,
        listener: Option<Listener>,
        store: Option<EtcdStore>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let (tx, mut pods) = mpsc::channel(16);
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
        let (store_tx, mut store_rx) = mpsc::channel(4);
        if let Some(store) = store {
            tracing::info!(url = %store.url, "reading check templates from etcd");
            tokio::spawn(poll_store(store, store_tx));
        }
        let scheduler = tokio::spawn(self.scheduler.clone().run(std::future::pending()));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                Some(event) = pods.recv() => self.apply(event),
                Some(state) = store_rx.recv() => self.apply_store(state),
                _ = &mut shutdown => break,
            }
        }
        // Dropping the receivers stops the listener and the store poller.
        drop((pods, store_rx));
        scheduler.abort();
        tracing::info!("stopped");
    }

    /// Applies one listener event: a snapshot replaces the plan; an error is shown and the last
    /// snapshot stays in force.
    fn apply(&self, event: PodEvent) {
        match event {
            PodEvent::Snapshot(pods) => {
                let mut discovery = self.discovery.lock().unwrap();
                discovery.listener.last_error = None;
                discovery.listener.pods = pods.len();
                discovery.pods = pods;
                self.replan(&mut discovery);
                self.ready.store(true, Ordering::Release);
            }
            PodEvent::Error(error) => {
                let mut discovery = self.discovery.lock().unwrap();
                tracing::warn!(listener = %discovery.listener.name, "{error}");
                discovery.listener.last_error = Some(error);
            }
        }
    }

    fn apply_store(&self, state: StoreState) {
        let mut discovery = self.discovery.lock().unwrap();
        if let Some(error) = &state.error {
            tracing::warn!("{error}");
            discovery.store.error = state.error;
            return;
        }
        discovery.store = state;
        self.replan(&mut discovery);
    }

    /// Plans from the last pods, conf.d and the store's templates, and hands it to the scheduler.
    fn replan(&self, discovery: &mut Discovery) {
        let checks = crate::exec::available_checks(self.registry.dir());
        let known = |name: &str| checks.iter().any(|c| c == name);
        let templates: Vec<FileConfig> =
            self.files.iter().filter(|f| !f.ad_identifiers.is_empty()).chain(&discovery.store.templates).cloned().collect();
        let ctx = DiscoveryContext {
            node_name: &self.config.node_name,
            env_allowlist: &self.config.env_allowlist,
            known_checks: &known,
            file_templates: &templates,
        };
        let plan = plan::plan(&discovery.pods, &self.files, &ctx);
        // Logged once when they appear; the status API shows them for as long as they last.
        for problem in plan.problems.iter().filter(|p| !discovery.problems.contains(p)) {
            match problem.severity {
                Severity::Error => tracing::warn!(entity = %problem.entity, "{}", problem.message),
                Severity::Warning => tracing::info!(entity = %problem.entity, "{}", problem.message),
            }
        }
        self.scheduler.reconcile(plan.desired.clone());
        discovery.desired = plan.desired;
        discovery.unresolved = plan.unresolved;
        discovery.problems = plan.problems;
    }

    /// Ready once the first snapshot is applied: from then on the agent checks what it should.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// `GET /status`.
    pub fn status(&self) -> Status {
        let discovery = self.discovery.lock().unwrap();
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(error) = &discovery.listener.last_error {
            errors.entry(format!("listener {}", discovery.listener.name)).or_default().push(error.clone());
        }
        if let Some(error) = &discovery.store.error {
            errors.entry("config store".to_string()).or_default().push(error.clone());
        }
        for problem in self.file_problems.iter().chain(&discovery.store.problems).chain(&discovery.problems) {
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

/// Reads the store every `poll`; sends its state when it changed (errors included, once each).
async fn poll_store(store: EtcdStore, tx: mpsc::Sender<StoreState>) {
    let mut last: Option<StoreState> = None;
    loop {
        let state = match store.fetch().await {
            Ok((templates, problems)) => StoreState { templates, problems, error: None },
            Err(error) => StoreState { error: Some(error.to_string()), ..StoreState::default() },
        };
        if last.as_ref() != Some(&state) {
            if tx.send(state.clone()).await.is_err() {
                return;
            }
            last = Some(state);
        }
        tokio::select! {
            _ = tokio::time::sleep(store.poll) => {}
            _ = tx.closed() => return,
        }
    }
}
