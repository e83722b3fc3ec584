//! The scheduler: which check instances should run, and running them on time.
//!
//! [`Scheduler::reconcile`] takes the desired set (every resolved config, paused or not) and
//! brings the running set to it: new instances run at once, gone ones stop, a changed config is
//! a new ID and so replaces the old one. [`Scheduler::run`] is the timer loop: it hands due
//! instances to a bounded pool of workers, never runs an instance twice at once, and spreads
//! later runs over the interval so that many instances do not fire together.

mod timing;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt as _;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};

use crate::aggregate::{Aggregator, Flushed};
use crate::exec::{CheckRegistry, RunOutcome};
use crate::resolve::ResolvedConfig;
use crate::status::{self, CheckStatus, InstanceStatus};
use crate::text::{bounded, printable};
use crate::watchdog::{BEAT_EVERY, Heartbeat, panic_message};

pub use timing::{FAR_FUTURE, later, next_run};

/// Warnings of one run kept for `adrt info`, at most.
const MAX_WARNINGS: usize = 20;

/// The longest interval an instance may ask for; `resolve` refuses longer ones.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// One wanted check instance.
#[derive(Debug, Clone)]
pub struct Desired {
    pub config: ResolvedConfig,
    /// The pod is not ready and the config does not tolerate that.
    pub paused: bool,
}

/// Where aggregated results go once a run is done.
pub trait Sink: Send + Sync {
    fn send(&self, config: &ResolvedConfig, flushed: &Flushed);
}

pub struct Scheduler {
    registry: Arc<CheckRegistry>,
    default_interval: Duration,
    workers: Arc<Semaphore>,
    instances: Mutex<HashMap<String, Scheduled>>,
    /// Due times, earliest first. Lock after `instances`. An entry whose instance is gone, paused,
    /// running or due at another time is stale and skipped, so nothing needs removing.
    queue: Mutex<BinaryHeap<Reverse<(Instant, String)>>>,
    aggregator: Mutex<Aggregator>,
    sink: Arc<dyn Sink>,
    wake: Notify,
    heartbeat: Arc<Heartbeat>,
}

/// Shared pieces are `Arc`s: every run takes them out of the lock without copying.
struct Scheduled {
    config: Arc<ResolvedConfig>,
    init_config: Arc<str>,
    instance: Arc<str>,
    tags: Arc<[String]>,
    interval: Duration,
    paused: bool,
    running: bool,
    first_run: Option<Instant>,
    next_run: Instant,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    version: Option<String>,
    runs: u64,
    total_time: Duration,
    last_run: Option<SystemTime>,
    last: Option<LastRun>,
}

struct LastRun {
    error: Option<String>,
    warnings: Vec<String>,
    metrics: usize,
    events: usize,
    service_checks: usize,
}

impl Scheduler {
    pub fn new(registry: Arc<CheckRegistry>, default_interval: Duration, workers: usize, sink: Arc<dyn Sink>) -> Arc<Self> {
        Arc::new(Scheduler {
            registry,
            default_interval,
            workers: Arc::new(Semaphore::new(workers.max(1))),
            instances: Mutex::default(),
            queue: Mutex::default(),
            aggregator: Mutex::default(),
            sink,
            wake: Notify::new(),
            heartbeat: Heartbeat::new("scheduler"),
        })
    }

    /// Beats while the timer loop turns (see [`crate::watchdog`]).
    pub fn heartbeat(&self) -> Arc<Heartbeat> {
        self.heartbeat.clone()
    }

    /// Brings the scheduled set to `desired`.
    pub fn reconcile(&self, desired: Vec<Desired>) {
        let now = Instant::now();
        let mut instances = self.instances.lock();
        let mut wanted: HashMap<String, Desired> = desired.into_iter().map(|d| (d.config.id.clone(), d)).collect();
        let gone: Vec<String> = instances.keys().filter(|id| !wanted.contains_key(*id)).cloned().collect();
        for id in gone {
            instances.remove(&id);
            self.forget(&id);
            tracing::info!(instance = %id, "unscheduled");
        }
        let mut queue = self.queue.lock();
        for (id, scheduled) in instances.iter_mut() {
            let desired = wanted.remove(id).expect("kept only wanted ids");
            if scheduled.paused && !desired.paused {
                scheduled.next_run = now; // resumes at once
                queue.push(Reverse((now, id.clone())));
            }
            scheduled.paused = desired.paused;
            scheduled.config = Arc::new(desired.config); // same ID: only tags or provider text can differ
        }
        for (id, desired) in wanted {
            let config = desired.config;
            // `resolve` bounds the interval; this only keeps a bad value from reaching time arithmetic.
            let interval = config
                .min_collection_interval
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                .map_or(self.default_interval, |interval| interval.clamp(Duration::from_millis(1), MAX_INTERVAL));
            tracing::info!(instance = %id, check = %config.check, pod = %printable(&config.source.pod), paused = desired.paused, "scheduled");
            let tags = instance_tags(&config);
            queue.push(Reverse((now, id.clone())));
            instances.insert(
                id,
                Scheduled {
                    init_config: config.init_config.to_string().into(),
                    instance: config.instance.to_string().into(),
                    tags: tags.into(),
                    config: Arc::new(config),
                    interval,
                    paused: desired.paused,
                    running: false,
                    first_run: None,
                    next_run: now,
                    stats: Stats::default(),
                },
            );
        }
        drop(queue);
        let registry_keys: std::collections::HashSet<(String, String, String)> = instances
            .values()
            .map(|s| (s.config.source.namespace.clone(), s.config.check.clone(), s.init_config.to_string()))
            .collect();
        drop(instances);
        self.registry.retain_pools(|tenant, check, init| {
            registry_keys.contains(&(tenant.to_string(), check.to_string(), init.to_string()))
        });
        self.wake.notify_one();
    }

    fn forget(&self, id: &str) {
        self.aggregator.lock().forget(id);
        self.registry.engine().services().forget_instance(id);
    }

    /// The timer loop; returns when `shutdown` completes. It wakes at least every
    /// [`BEAT_EVERY`] to beat its heartbeat.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.heartbeat.beat();
            let now = Instant::now();
            let mut due = Vec::new();
            let next_wake;
            {
                let mut instances = self.instances.lock();
                let mut queue = self.queue.lock();
                loop {
                    match queue.peek() {
                        Some(Reverse((at, _))) if *at <= now => {
                            let Reverse((at, id)) = queue.pop().expect("peeked");
                            if let Some(s) = instances.get_mut(&id)
                                && !s.paused
                                && !s.running
                                && s.next_run == at
                            {
                                s.running = true;
                                due.push(id);
                            }
                        }
                        Some(Reverse((at, _))) => {
                            next_wake = *at;
                            break;
                        }
                        None => {
                            next_wake = later(now, BEAT_EVERY);
                            break;
                        }
                    }
                }
            }
            for id in due {
                let this = Arc::clone(&self);
                tokio::spawn(async move { this.run_one(id).await });
            }
            let next_wake = next_wake.min(later(now, BEAT_EVERY));
            tokio::select! {
                _ = tokio::time::sleep_until(next_wake.into()) => {}
                _ = self.wake.notified() => {}
                _ = &mut shutdown => return,
            }
        }
    }

    /// Runs one instance on a worker, then records the outcome and schedules the next run. A
    /// panic in the agent's own code while running it fails that run, nothing else.
    async fn run_one(&self, id: String) {
        let _permit = self.workers.acquire().await.expect("the semaphore is never closed");
        let Some((config, init_config, instance, tags)) = self.instances.lock().get(&id).map(|s| {
            (s.config.clone(), s.init_config.clone(), s.instance.clone(), s.tags.clone())
        }) else {
            return; // unscheduled while waiting for a worker
        };
        let started = Instant::now();
        let attempt = AssertUnwindSafe(async {
            let mut execution = self.execute(&config, &init_config, &id, &instance).await;
            let submissions = std::mem::take(&mut execution.submissions);
            let flushed = self.aggregator.lock().flush(&id, &tags, Instant::now(), submissions);
            // Not under the instances lock: a slow sink must not hold up the other instances.
            self.sink.send(&config, &flushed);
            (execution, flushed)
        })
        .catch_unwind()
        .await;
        let (outcome, flushed) = attempt.unwrap_or_else(|panic| {
            let message = panic_message(&*panic);
            tracing::error!(instance = %id, check = %config.check, "internal error running the instance: {message}");
            (Execution::failed(format!("internal error in the agent (reported in its log): {message}")), Flushed::default())
        });
        let mut instances = self.instances.lock();
        let Some(s) = instances.get_mut(&id) else {
            drop(instances);
            self.forget(&id); // unscheduled during the run: its counters must not linger
            return;
        };
        if let Some(error) = &outcome.error {
            tracing::warn!(instance = %id, check = %config.check, pod = %printable(&config.source.pod), "run failed: {}", printable(error));
        }
        s.stats.runs += 1;
        s.stats.total_time = s.stats.total_time.saturating_add(outcome.duration);
        s.stats.last_run = Some(SystemTime::now());
        if outcome.version.is_some() {
            s.stats.version = outcome.version;
        }
        s.stats.last = Some(LastRun {
            error: outcome.error,
            warnings: outcome.warnings,
            metrics: flushed.series.len(),
            events: flushed.events.len(),
            service_checks: flushed.service_checks.len(),
        });
        let first = *s.first_run.get_or_insert(started);
        s.next_run = next_run(&id, first, s.interval, Instant::now());
        s.running = false;
        self.queue.lock().push(Reverse((s.next_run, id)));
        drop(instances);
        self.wake.notify_one();
    }

    /// One run on a pooled live instance of the config's tenant (its namespace); loading, init
    /// and slot failures are that run's error.
    async fn execute(&self, config: &ResolvedConfig, init_config: &str, id: &str, instance: &str) -> Execution {
        let (tenant, check) = (config.source.namespace.as_str(), config.check.as_str());
        let pool = match self.registry.loaded_pool(tenant, check, init_config) {
            Some(pool) => pool,
            // First use: compiling (or reading the cache) blocks, so not on the runtime thread.
            None => {
                let registry = self.registry.clone();
                let (tenant, check, init_config) = (tenant.to_string(), check.to_string(), init_config.to_string());
                match tokio::task::spawn_blocking(move || registry.pool(&tenant, &check, &init_config)).await {
                    Ok(Ok(pool)) => pool,
                    Ok(Err(error)) => return Execution::failed(error.to_string()),
                    Err(join) => return Execution::failed(format!("loading the check: {join}")),
                }
            }
        };
        let mut live = match self.registry.take(&pool).await {
            Ok(live) => live,
            Err(error) => return Execution::failed(error.to_string()),
        };
        let version = Some(live.info().version.clone());
        let RunOutcome { submissions, error, warnings, duration } = live.run(id, instance).await;
        self.registry.give_back(&pool, live);
        // A check's messages may quote what a pod wrote (a URL, a page): kept bounded.
        let error = error.map(|e| bounded(e.to_string()));
        let warnings = warnings.into_iter().take(MAX_WARNINGS).map(bounded).collect();
        Execution { submissions, error, warnings, duration, version }
    }

    /// The checks and their instances, sorted, for `adrt info`.
    pub fn status(&self) -> Vec<CheckStatus> {
        let instances = self.instances.lock();
        let mut by_check: std::collections::BTreeMap<&str, CheckStatus> = Default::default();
        let mut sorted: Vec<&Scheduled> = instances.values().collect();
        sorted.sort_by(|a, b| {
            let key = |s: &Scheduled| (s.config.source.namespace.clone(), s.config.source.pod.clone(), s.config.source.container.clone(), s.config.id.clone());
            key(a).cmp(&key(b))
        });
        for s in sorted {
            let check = by_check.entry(&s.config.check).or_insert_with(|| CheckStatus { name: s.config.check.clone(), ..Default::default() });
            if check.version.is_none() {
                check.version = s.stats.version.clone();
            }
            let (status, message) = match &s.stats.last {
                None => ("PENDING", None),
                Some(LastRun { error: Some(error), .. }) => ("ERROR", Some(error.clone())),
                Some(LastRun { warnings, .. }) if !warnings.is_empty() => ("WARNING", Some(warnings.join("; "))),
                Some(_) => ("OK", None),
            };
            let last = s.stats.last.as_ref();
            check.instances.push(InstanceStatus {
                id: s.config.id.clone(),
                status: status.to_string(),
                paused: s.paused,
                message,
                metrics: last.map_or(0, |l| l.metrics),
                events: last.map_or(0, |l| l.events),
                service_checks: last.map_or(0, |l| l.service_checks),
                source: status::Source {
                    namespace: s.config.source.namespace.clone(),
                    pod: s.config.source.pod.clone(),
                    container: s.config.source.container.clone(),
                },
                provider: s.config.provider.clone(),
                last_run: s.stats.last_run.map(status::rfc3339),
                total_runs: s.stats.runs,
                avg_run_us: (s.stats.total_time.as_micros() as u64).checked_div(s.stats.runs).unwrap_or(0),
            });
        }
        by_check.into_values().collect()
    }
}

struct Execution {
    submissions: crate::aggregate::Submissions,
    error: Option<String>,
    warnings: Vec<String>,
    duration: Duration,
    version: Option<String>,
}

impl Execution {
    fn failed(error: String) -> Self {
        Execution { submissions: Default::default(), error: Some(bounded(error)), warnings: Vec::new(), duration: Duration::ZERO, version: None }
    }
}

/// The instance's own `tags` plus the pod's tags, which the host adds to everything.
fn instance_tags(config: &ResolvedConfig) -> Vec<String> {
    let own = config.instance.get("tags").and_then(|t| t.as_array()).into_iter().flatten().filter_map(|t| t.as_str());
    let mut tags: Vec<String> = own.map(str::to_string).collect();
    for tag in &config.tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}
