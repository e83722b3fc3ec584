//! The agent: discover -> resolve -> schedule -> run -> aggregate -> send, wired together.
//!
//! The pod listener sends full snapshots and the config store (if any) its templates; on either,
//! everything is planned from scratch ([`plan`]) and handed to the scheduler, which keeps what
//! is unchanged (same ID) running with its rate state. What discovery found wrong is kept for
//! the status API, per pod and container. A change of checks.d ([`checks_watch`]) replans too.

pub mod checks_watch;
pub mod listener;
pub mod origins;
pub mod pipeline;
pub mod plan;
pub mod telemetry;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::confd;
use crate::config::Config;
use crate::discover::{Listener, PodEvent};
use crate::dogstatsd::DogStatsd;
use crate::exec::{CheckRegistry, Reload};
use crate::pod::Pod;
use crate::model::{CheckTemplate, Problem, Severity};
use crate::resolve::{DiscoveryContext, UnresolvedConfig};
use crate::schedule::{Desired, Scheduler};
use crate::secrets::{SecretResolver, keys};
use crate::send::datadog::Forwarder;
use crate::send::{self, Outbox, Sink};
use crate::status::{self, CheckStatus, ConfigCheck, EntityErrors, ListenerStatus, Status};
use crate::store::EtcdStore;
use crate::text::{bounded, printable};
use crate::watchdog::{BEAT_EVERY, Heartbeat, Watchdog, panic_message};

pub struct Agent {
    config: Config,
    registry: Arc<CheckRegistry>,
    scheduler: Arc<Scheduler>,
    /// Where runs leave their results for the sink.
    outbox: Outbox,
    /// The Datadog forwarder behind the sink, if any, for the status.
    forwarder: OnceLock<Arc<Forwarder>>,
    /// Applications' metrics, when a DogStatsD listener is configured.
    dogstatsd: Option<Arc<DogStatsd>>,
    /// conf.d: static configs and `ad_identifiers` templates, read at start.
    files: Vec<CheckTemplate>,
    file_problems: Vec<Problem>,
    discovery: Mutex<Discovery>,
    /// Why checks.d is not watched for changes, if it is not.
    checks_watch_error: OnceLock<String>,
    /// The first snapshot (or the decision to run without pods) has been applied.
    ready: AtomicBool,
    /// Beats while the discovery loop turns; with the scheduler's, what `/live` watches.
    discovery_beat: Arc<Heartbeat>,
    watchdog: Watchdog,
}

/// What the last snapshot gave, for the status API.
#[derive(Default)]
struct Discovery {
    listener: ListenerStatus,
    pods: Vec<Pod>,
    /// What was wrong with the pods themselves (oversized annotations), found on arrival.
    pod_problems: Vec<Problem>,
    store: StoreTemplates,
    desired: Vec<Desired>,
    unresolved: Vec<UnresolvedConfig>,
    problems: Vec<Problem>,
}

/// The config store's templates as last read; an error keeps the last good ones.
#[derive(Default, Clone, PartialEq)]
struct StoreTemplates {
    templates: Vec<CheckTemplate>,
    problems: Vec<Problem>,
    error: Option<String>,
}

impl Agent {
    /// Starts the delivery task of `sink`: call it within the tokio runtime.
    pub fn new(config: Config, registry: Arc<CheckRegistry>, sink: Arc<dyn Sink>) -> Arc<Agent> {
        let (files, file_problems) = match &config.conf_dir {
            Some(dir) => confd::load_dir(dir),
            None => Default::default(),
        };
        let scrubber = registry.engine().services().scrubber.clone();
        // Before anything quotes them: a conf.d `password:` is masked wherever it would show.
        for file in &files {
            keys::learn(&file.init_config, &scrubber);
            file.instances.iter().for_each(|instance| keys::learn(instance, &scrubber));
        }
        for problem in &file_problems {
            tracing::warn!(entity = %printable(&problem.entity.to_string()), "{}", printable(&scrubber.scrub(&problem.message)));
        }
        let outbox = send::start(sink, config.delivery_queue, config.flush_interval);
        let secrets = Arc::new(SecretResolver::new(&config.kubernetes_secrets, config.api_server.clone(), scrubber));
        let runner = Arc::new(pipeline::Pipeline::new(registry.clone(), secrets, outbox.clone()));
        let scheduler = Scheduler::new(runner, config.check_interval, config.workers);
        let dogstatsd = (config.dogstatsd.udp_addr.is_some() || config.dogstatsd.socket.is_some())
            .then(|| Arc::new(DogStatsd::start(&config.dogstatsd, &config.procfs_path)));
        let discovery_beat = Heartbeat::new("discovery");
        let watchdog = Watchdog::new(config.watchdog, vec![scheduler.heartbeat(), discovery_beat.clone()]);
        Arc::new(Agent {
            config,
            registry,
            scheduler,
            outbox,
            forwarder: OnceLock::new(),
            dogstatsd,
            files,
            file_problems,
            discovery: Mutex::default(),
            checks_watch_error: OnceLock::new(),
            ready: AtomicBool::new(false),
            discovery_beat,
            watchdog,
        })
    }

    /// Every flush interval, the agent's own metrics to the sinks, like a check's.
    async fn send_telemetry(self: Arc<Self>) {
        let mut telemetry = telemetry::Telemetry::new();
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let batch = telemetry.batch(&self.status());
            self.outbox.offer(batch);
        }
    }

    /// Shows `forwarder` in the status (`adrt info`'s Forwarder section).
    pub fn report_forwarder(&self, forwarder: Arc<Forwarder>) {
        let _ = self.forwarder.set(forwarder);
    }

    /// What `/live` asks.
    pub fn watchdog(&self) -> &Watchdog {
        &self.watchdog
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
        self.discovery.lock().listener.name = name.to_string();
        // A listener that ends (it never returns but by panicking) leaves discovery dead: its
        // heartbeat stops so that `/live` fails and the kubelet restarts the agent.
        let mut listening = listener.is_some();
        let mut discovery_alive = true;
        match listener {
            Some(listener) => {
                tracing::info!(listener = name, "discovering pods");
                tokio::spawn(supervised(listener, tx));
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
        let (reloaded_tx, mut reloaded) = mpsc::channel(4);
        if let Err(error) = checks_watch::start(self.registry.clone(), reloaded_tx) {
            tracing::warn!("{error}");
            let _ = self.checks_watch_error.set(error.to_string());
        }
        let scheduler = tokio::spawn(self.scheduler.clone().run(std::future::pending()));
        tokio::spawn(self.clone().send_telemetry());
        if let Some(dogstatsd) = &self.dogstatsd {
            tokio::spawn(dogstatsd.clone().flush_every(self.outbox.clone(), self.config.flush_interval));
        }
        tokio::pin!(shutdown);
        let mut beat = tokio::time::interval(BEAT_EVERY);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = pods.recv(), if listening => match event {
                    Some(event) => self.guarded("applying a pod snapshot", || self.apply(event)),
                    None => {
                        (listening, discovery_alive) = (false, false);
                        let message = format!("the {name} listener stopped; /live fails so that the agent is restarted");
                        tracing::error!("{message}");
                        self.discovery.lock().listener.last_error = Some(message);
                    }
                },
                Some(state) = store_rx.recv() => self.guarded("applying the config store's templates", || self.apply_store(state)),
                Some(reloads) = reloaded.recv() => self.guarded("applying a change of checks.d", || self.apply_reloads(&reloads)),
                _ = beat.tick(), if discovery_alive => self.discovery_beat.beat(),
                _ = &mut shutdown => break,
            }
        }
        // Dropping the receivers stops the listener, the store poller and the watch of checks.d.
        drop((pods, store_rx, reloaded));
        scheduler.abort();
        // What applications sent since the last flush, and every batch queued, reach the sinks.
        if let Some(dogstatsd) = &self.dogstatsd {
            dogstatsd.flush(&self.outbox, true).await;
        }
        self.outbox.flush().await;
        tracing::info!("stopped");
    }

    /// Runs `step` of the discovery loop; a panic in it is reported (log and `adrt info`) and
    /// the last plan stays in force, rather than ending the loop.
    fn guarded(&self, what: &str, step: impl FnOnce()) {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(step)) {
            let message = format!("internal error {what}: {}; the last plan stays in force", panic_message(&*panic));
            tracing::error!("{message}");
            self.discovery.lock().listener.last_error = Some(message);
        }
    }

    /// Applies one listener event: a snapshot replaces the plan; an error is shown and the last
    /// snapshot stays in force.
    fn apply(&self, event: PodEvent) {
        match event {
            PodEvent::Snapshot(mut pods) => {
                let pod_problems = plan::drop_oversized_annotations(&mut pods);
                let mut discovery = self.discovery.lock();
                discovery.listener.last_error = None;
                discovery.listener.pods = pods.len();
                discovery.pods = pods;
                discovery.pod_problems = pod_problems;
                self.replan(&mut discovery);
                if let Some(dogstatsd) = &self.dogstatsd {
                    let cardinality = self.config.dogstatsd.cardinality;
                    dogstatsd.set_origins(Arc::new(origins::index(&discovery.pods, &self.config.tagging, cardinality)));
                }
                self.ready.store(true, Ordering::Release);
            }
            PodEvent::Error(error) => {
                // Parse errors may quote what a pod or the pods file holds.
                let error = bounded(error);
                let mut discovery = self.discovery.lock();
                tracing::warn!(listener = %discovery.listener.name, "{}", printable(&error));
                discovery.listener.last_error = Some(error);
            }
        }
    }

    fn apply_store(&self, state: StoreTemplates) {
        let mut discovery = self.discovery.lock();
        if let Some(error) = state.error {
            let error = bounded(error);
            tracing::warn!("{}", printable(&error));
            discovery.store.error = Some(error);
            return;
        }
        discovery.store = state;
        self.replan(&mut discovery);
    }

    /// Replans after checks.d changed: configs waiting for a new check are scheduled, a removed
    /// check's instances unscheduled ("no check component"), a manifest's new rules applied. A
    /// change that did not load changes nothing. Before the first snapshot there is no plan yet:
    /// the first one sees the checks as they are.
    fn apply_reloads(&self, reloads: &[Reload]) {
        let loaded_or_removed = reloads.iter().any(|reload| !matches!(reload, Reload::Failed { .. }));
        if loaded_or_removed && self.is_ready() {
            self.replan(&mut self.discovery.lock());
        }
    }

    /// Plans from the last pods, conf.d and the store's templates, and hands it to the scheduler.
    fn replan(&self, discovery: &mut Discovery) {
        let checks = crate::exec::available_checks(self.registry.dir());
        let known = |name: &str| checks.iter().any(|c| c == name);
        let policies: BTreeMap<&str, Result<_, String>> =
            checks.iter().map(|name| (name.as_str(), self.registry.policy(name).map_err(|e| e.to_string()))).collect();
        let policy_of = |check: &str| policies.get(check).cloned();
        let templates: Vec<CheckTemplate> =
            self.files.iter().filter(|f| !f.ad_identifiers.is_empty()).chain(&discovery.store.templates).cloned().collect();
        let ctx = DiscoveryContext {
            node_name: &self.config.node_name,
            env_allowlist: &self.config.env_allowlist,
            stage: crate::resolve::Stage::Live,
            known_checks: &known,
            policy_of: &policy_of,
            file_templates: &templates,
            limits: crate::resolve::Limits {
                min_interval: self.config.min_interval,
                max_instances_per_pod: self.config.max_instances_per_pod,
                max_instances_per_namespace: self.config.max_instances_per_namespace,
            },
            tagging: &self.config.tagging,
            prometheus_scrape: self.config.prometheus_scrape.as_ref(),
        };
        let mut plan = plan::plan(&discovery.pods, &self.files, &ctx);
        plan.problems.splice(0..0, discovery.pod_problems.iter().cloned());
        let services = self.registry.engine().services();
        // What a new config holds that must never show, known before it runs or is shown.
        for desired in plan.desired.iter().filter(|d| !discovery.desired.iter().any(|old| old.config.id == d.config.id)) {
            let config = &desired.config;
            keys::learn(&config.init_config, &services.scrubber);
            keys::learn(&config.instance, &services.scrubber);
            config.provenance.env_values.iter().for_each(|value| services.scrubber.add(value));
        }
        // Logged once when they appear; the status API shows them for as long as they last.
        for problem in plan.problems.iter().filter(|p| !discovery.problems.contains(p)) {
            if problem.message.contains(crate::policy::NAMESPACE_RULE) {
                services.denials.count(crate::policy::NAMESPACE_RULE_NAME);
            }
            let message = services.scrubber.scrub(&problem.message);
            match problem.severity {
                Severity::Error => tracing::warn!(entity = %printable(&problem.entity.to_string()), "{}", printable(&message)),
                Severity::Warning => tracing::info!(entity = %printable(&problem.entity.to_string()), "{}", printable(&message)),
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
        let discovery = self.discovery.lock();
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(error) = &discovery.listener.last_error {
            errors.entry(format!("listener {}", discovery.listener.name)).or_default().push(error.clone());
        }
        if let Some(error) = &discovery.store.error {
            errors.entry("config store".to_string()).or_default().push(error.clone());
        }
        if let Some(error) = self.checks_watch_error.get() {
            errors.entry(format!("checks.d {}", self.registry.dir().display())).or_default().push(error.clone());
        }
        let scrubber = &self.registry.engine().services().scrubber;
        for problem in self.file_problems.iter().chain(&discovery.store.problems).chain(&discovery.problems) {
            let message = scrubber.scrub(&problem.message);
            let text = match problem.severity {
                Severity::Error => message.into_owned(),
                Severity::Warning => format!("warning: {message}"),
            };
            errors.entry(problem.entity.to_string()).or_default().push(text);
        }
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: self.config.hostname.clone(),
            listener: discovery.listener.clone(),
            checks: self.checks_status(),
            autodiscovery_errors: errors.into_iter().map(|(entity, errors)| EntityErrors { entity, errors }).collect(),
            delivery: self.outbox.status(),
            forwarder: self.forwarder.get().map(|f| f.status()),
            dogstatsd: self.dogstatsd.as_ref().map(|d| d.status()),
            policy_denied: self.registry.engine().services().denials.counts().into_iter().map(|(rule, n)| (rule.to_string(), n)).collect(),
        }
    }

    /// The scheduled checks with their instances, each with where its running version came from
    /// and its load error; a check with a load error and no instance too. Sorted by name.
    fn checks_status(&self) -> Vec<CheckStatus> {
        let mut checks = self.scheduler.status();
        let mut states = self.registry.load_states();
        for check in &mut checks {
            if let Some(state) = states.remove(&check.name) {
                // The loaded version's own, once known: instances report theirs only after a run.
                check.version = state.version.or(check.version.take());
                check.path = state.path.map(|p| p.display().to_string());
                check.manifest = state.manifest.map(|p| p.display().to_string());
                check.load_error = state.load_error;
            }
        }
        for (name, state) in states.into_iter().filter(|(_, state)| state.load_error.is_some()) {
            checks.push(CheckStatus {
                name,
                version: state.version,
                instances: Vec::new(),
                path: state.path.map(|p| p.display().to_string()),
                manifest: state.manifest.map(|p| p.display().to_string()),
                load_error: state.load_error,
            });
        }
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        checks
    }

    /// `GET /configcheck`: every config with its secrets masked (see [`keys::mask`]).
    pub fn configcheck(&self) -> ConfigCheck {
        let discovery = self.discovery.lock();
        let scrubber = &self.registry.engine().services().scrubber;
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
                    init_config: keys::mask(&d.config.init_config, scrubber),
                    instance: keys::mask(&d.config.instance, scrubber),
                    // What the instance's results carry; a config whose options are invalid is never
                    // scheduled, so its container's tags are all there is to show.
                    tags: d
                        .config
                        .options()
                        .map(|options| options.tags().to_vec())
                        .unwrap_or_else(|_| d.config.tags.clone())
                        .iter()
                        .map(|tag| scrubber.scrub(tag).into_owned())
                        .collect(),
                    paused: d.paused,
                    reach: match &d.config.reach {
                        crate::policy::Reach::Operator => status::Reach::Operator,
                        crate::policy::Reach::Pod { ips, ports } => status::Reach::Pod { ips: ips.clone(), ports: ports.clone() },
                    },
                })
                .collect(),
            unresolved: discovery
                .unresolved
                .iter()
                .map(|u| status::UnresolvedEntry {
                    check: u.check.clone(),
                    provider: u.provider.clone(),
                    source: source(&u.source),
                    instance: keys::mask(&u.instance, scrubber),
                    reason: scrubber.scrub(&u.reason).into_owned(),
                })
                .collect(),
        }
    }
}

/// Runs the listener; a panic in it is reported as the listener's error before its sender
/// goes, which ends discovery (see `Agent::run`).
async fn supervised(listener: Listener, tx: mpsc::Sender<PodEvent>) {
    use futures::FutureExt as _;
    let name = listener.name();
    if let Err(panic) = AssertUnwindSafe(listener.run(tx.clone())).catch_unwind().await {
        let message = format!("internal error: the {name} listener panicked: {}", panic_message(&*panic));
        tracing::error!("{message}");
        let _ = tx.send(PodEvent::Error(message)).await;
    }
}

/// Reads the store every `poll`; sends its state when it changed (errors included, once each).
async fn poll_store(store: EtcdStore, tx: mpsc::Sender<StoreTemplates>) {
    let mut last: Option<StoreTemplates> = None;
    loop {
        let state = match store.fetch().await {
            Ok((templates, problems)) => StoreTemplates { templates, problems, error: None },
            Err(error) => StoreTemplates { error: Some(error.to_string()), ..StoreTemplates::default() },
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
