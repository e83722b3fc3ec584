//! The scheduler: which check instances should run, and when. It decides *when* only, as
//! kube-runtime's scheduler does; what a run is belongs to the [`Runner`] it is given (the agent
//! gives it `exec` → `aggregate` → `send`).
//!
//! [`Scheduler::reconcile`] takes the desired set (every resolved config, paused or not) and
//! brings the scheduled set to it: new instances run at once, gone ones stop, a changed config is
//! a new ID and so replaces the old one, and an unchanged one keeps its cadence (and, in the
//! runner, its rate state). [`Scheduler::run`] is the timer loop: it hands due instances to the
//! runner on a bounded number of workers, never runs an instance twice at once, and spreads
//! later runs over the interval so that many instances do not fire together. Time is tokio's,
//! so tests run it on a paused clock.

mod timing;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::instance_options::InstanceOptions;
use crate::model::MAX_INTERVAL;
use crate::resolve::ResolvedConfig;
use crate::status::{self, CheckStatus, InstanceStatus};
use crate::text::printable;
use crate::watchdog::{BEAT_EVERY, Heartbeat, panic_message};

pub use timing::{FAR_FUTURE, later, next_run};

/// One wanted check instance.
#[derive(Debug, Clone)]
pub struct Desired {
    pub config: ResolvedConfig,
    /// The pod is not ready and the config does not tolerate that.
    pub paused: bool,
}

/// One due run, as the runner gets it. Cheap to clone: the scheduler keeps the same pieces.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: Arc<ResolvedConfig>,
    /// `config.init_config` and `config.instance` as JSON text, made once per instance.
    pub init_config: Arc<str>,
    pub instance: Arc<str>,
    /// What the host applies to everything the instance submits (its tags, the pod's, its
    /// `metric_patterns`, ...), or why the instance's options are invalid (its runs then fail).
    pub options: Result<Arc<InstanceOptions>, String>,
}

/// How a run went, for the status of its instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub duration: Duration,
    /// The check's version, when it got as far as loading.
    pub version: Option<String>,
    pub metrics: usize,
    pub events: usize,
    pub service_checks: usize,
}

/// What a run is. The scheduler calls `run` for a due instance (never twice at once for one
/// instance, at most `workers` at a time) and tells the runner what it no longer schedules.
pub trait Runner: Send + Sync + 'static {
    fn run(&self, job: Job) -> BoxFuture<'_, RunSummary>;
    /// `id` is no longer scheduled: whatever the runner keeps for it can go.
    fn forget(&self, id: &str);
    /// These are every scheduled instance now: what only others used can go.
    fn retain(&self, scheduled: &[Job]);
}

pub struct Scheduler {
    runner: Arc<dyn Runner>,
    default_interval: Duration,
    workers: Arc<Semaphore>,
    instances: Mutex<HashMap<String, Scheduled>>,
    /// Due times, earliest first. Lock after `instances`. An entry whose instance is gone, paused,
    /// running or due at another time is stale and skipped, so nothing needs removing.
    queue: Mutex<BinaryHeap<Reverse<(Instant, String)>>>,
    wake: Notify,
    heartbeat: Arc<Heartbeat>,
}

struct Scheduled {
    job: Job,
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
    last: Option<RunSummary>,
}

impl Scheduler {
    pub fn new(runner: Arc<dyn Runner>, default_interval: Duration, workers: usize) -> Arc<Self> {
        Arc::new(Scheduler {
            runner,
            default_interval,
            workers: Arc::new(Semaphore::new(workers.max(1))),
            instances: Mutex::default(),
            queue: Mutex::default(),
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
        for id in &gone {
            instances.remove(id);
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
            // Same ID: only the pod's tags or the provider text can differ.
            scheduled.job.options = desired.config.options().map(Arc::new);
            scheduled.job.config = Arc::new(desired.config);
        }
        for (id, desired) in wanted {
            let config = desired.config;
            // `resolve` bounds the interval; this only keeps a bad value from reaching time arithmetic.
            let interval = config
                .min_collection_interval
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                .map_or(self.default_interval, |interval| interval.clamp(Duration::from_millis(1), MAX_INTERVAL));
            tracing::info!(instance = %id, check = %config.check, pod = %printable(&config.source.pod), paused = desired.paused, "scheduled");
            queue.push(Reverse((now, id.clone())));
            let job = Job {
                init_config: config.init_config.to_string().into(),
                instance: config.instance.to_string().into(),
                options: config.options().map(Arc::new),
                config: Arc::new(config),
            };
            let scheduled =
                Scheduled { job, interval, paused: desired.paused, running: false, first_run: None, next_run: now, stats: Stats::default() };
            instances.insert(id, scheduled);
        }
        drop(queue);
        let jobs: Vec<Job> = instances.values().map(|s| s.job.clone()).collect();
        drop(instances);
        for id in &gone {
            self.runner.forget(id);
        }
        self.runner.retain(&jobs);
        self.wake.notify_one();
    }

    /// The timer loop; returns when `shutdown` completes. It wakes at least every
    /// [`BEAT_EVERY`] to beat its heartbeat. It never waits on a run: due runs are spawned and
    /// wait for a worker on their own.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.heartbeat.beat();
            let now = Instant::now();
            let (due, next_wake) = self.take_due(now);
            for id in due {
                let this = Arc::clone(&self);
                tokio::spawn(async move { this.run_one(id).await });
            }
            let next_wake = next_wake.min(later(now, BEAT_EVERY));
            tokio::select! {
                _ = tokio::time::sleep_until(next_wake) => {}
                _ = self.wake.notified() => {}
                _ = &mut shutdown => return,
            }
        }
    }

    /// The instances due at `now`, marked running, and when the next one is due.
    fn take_due(&self, now: Instant) -> (Vec<String>, Instant) {
        let mut due = Vec::new();
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
                Some(Reverse((at, _))) => return (due, *at),
                None => return (due, later(now, BEAT_EVERY)),
            }
        }
    }

    /// Runs one instance on a worker, then records the outcome and schedules the next run. A
    /// panic in the runner fails that run, nothing else.
    async fn run_one(&self, id: String) {
        let _permit = self.workers.acquire().await.expect("the semaphore is never closed");
        let Some(job) = self.instances.lock().get(&id).map(|s| s.job.clone()) else {
            return; // unscheduled while waiting for a worker
        };
        let started = Instant::now();
        let check = job.config.check.clone();
        let summary = AssertUnwindSafe(self.runner.run(job)).catch_unwind().await.unwrap_or_else(|panic| {
            let message = panic_message(&*panic);
            tracing::error!(instance = %id, %check, "internal error running the instance: {message}");
            RunSummary { error: Some(format!("internal error in the agent (reported in its log): {message}")), ..RunSummary::default() }
        });
        let mut instances = self.instances.lock();
        let Some(s) = instances.get_mut(&id) else {
            drop(instances);
            self.runner.forget(&id); // unscheduled during the run: what it left must not linger
            return;
        };
        if let Some(error) = &summary.error {
            let pod = printable(&s.job.config.source.pod).into_owned();
            // The same error as the last run's (a config error, a peer still down) is said once.
            if s.stats.last.as_ref().and_then(|last| last.error.as_ref()) == Some(error) {
                tracing::debug!(instance = %id, %check, %pod, "run failed again: {}", printable(error));
            } else {
                tracing::warn!(instance = %id, %check, %pod, "run failed: {}", printable(error));
            }
        }
        s.stats.runs += 1;
        s.stats.total_time = s.stats.total_time.saturating_add(summary.duration);
        s.stats.last_run = Some(SystemTime::now());
        if summary.version.is_some() {
            s.stats.version = summary.version.clone();
        }
        s.stats.last = Some(summary);
        let first = *s.first_run.get_or_insert(started);
        s.next_run = next_run(&id, first, s.interval, Instant::now());
        s.running = false;
        self.queue.lock().push(Reverse((s.next_run, id)));
        drop(instances);
        self.wake.notify_one();
    }

    /// The checks and their instances, sorted, for `adrt info`.
    pub fn status(&self) -> Vec<CheckStatus> {
        let instances = self.instances.lock();
        let mut by_check: std::collections::BTreeMap<&str, CheckStatus> = Default::default();
        let mut sorted: Vec<&Scheduled> = instances.values().collect();
        sorted.sort_by(|a, b| {
            let key = |s: &Scheduled| {
                let c = &s.job.config;
                (c.source.namespace.clone(), c.source.pod.clone(), c.source.container.clone(), c.id.clone())
            };
            key(a).cmp(&key(b))
        });
        for s in sorted {
            let config = &s.job.config;
            let check = by_check.entry(&config.check).or_insert_with(|| CheckStatus { name: config.check.clone(), ..Default::default() });
            if check.version.is_none() {
                check.version = s.stats.version.clone();
            }
            let (status, message) = match &s.stats.last {
                None => ("PENDING", None),
                Some(RunSummary { error: Some(error), .. }) => ("ERROR", Some(error.clone())),
                Some(RunSummary { warnings, .. }) if !warnings.is_empty() => ("WARNING", Some(warnings.join("; "))),
                Some(_) => ("OK", None),
            };
            let last = s.stats.last.as_ref();
            check.instances.push(InstanceStatus {
                id: config.id.clone(),
                status: status.to_string(),
                paused: s.paused,
                message,
                metrics: last.map_or(0, |l| l.metrics),
                events: last.map_or(0, |l| l.events),
                service_checks: last.map_or(0, |l| l.service_checks),
                source: status::Source {
                    namespace: config.source.namespace.clone(),
                    pod: config.source.pod.clone(),
                    container: config.source.container.clone(),
                },
                provider: config.provider.clone(),
                last_run: s.stats.last_run.map(status::rfc3339),
                total_runs: s.stats.runs,
                avg_run_us: (s.stats.total_time.as_micros() as u64).checked_div(s.stats.runs).unwrap_or(0),
            });
        }
        by_check.into_values().collect()
    }
}
