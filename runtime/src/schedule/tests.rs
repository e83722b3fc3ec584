//! The scheduler alone, with a fake runner on tokio's paused clock: time only moves when every
//! task waits, so these figures are exact, not timing-dependent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;
use crate::resolve::Source;

const INTERVAL: Duration = Duration::from_secs(10);

/// Timers fire on whole milliseconds.
fn about(measured: Duration, expected: Duration) -> bool {
    measured.abs_diff(expected) <= Duration::from_millis(1)
}

/// Records when each instance started and ended its runs; a run takes `run_time`, and an
/// instance whose ID starts with `panic` panics on its first run.
#[derive(Default)]
struct FakeRunner {
    run_time: Duration,
    runs: Mutex<HashMap<String, Vec<(Instant, Instant)>>>,
    running: Mutex<HashMap<String, usize>>,
    overlaps: Mutex<Vec<String>>,
    tags: Mutex<HashMap<String, Vec<String>>>,
    forgotten: Mutex<Vec<String>>,
    retained: Mutex<Vec<usize>>,
}

impl Runner for FakeRunner {
    fn run(&self, job: Job) -> BoxFuture<'_, RunSummary> {
        Box::pin(async move {
            let id = job.config.id.clone();
            let started = Instant::now();
            let first = !self.runs.lock().contains_key(&id);
            self.tags.lock().insert(id.clone(), job.options.as_ref().map(|o| o.tags().to_vec()).unwrap_or_default());
            {
                let mut running = self.running.lock();
                let count = running.entry(id.clone()).or_default();
                *count += 1;
                if *count > 1 {
                    self.overlaps.lock().push(id.clone());
                }
            }
            tokio::time::sleep(self.run_time).await;
            *self.running.lock().get_mut(&id).unwrap() -= 1;
            self.runs.lock().entry(id.clone()).or_default().push((started, Instant::now()));
            assert!(!(first && id.starts_with("panic")), "the runner broke");
            RunSummary { metrics: 1, duration: self.run_time, ..RunSummary::default() }
        })
    }

    fn forget(&self, id: &str) {
        self.forgotten.lock().push(id.to_string());
    }

    fn retain(&self, scheduled: &[Job]) {
        self.retained.lock().push(scheduled.len());
    }
}

impl FakeRunner {
    fn starts(&self, id: &str) -> Vec<Duration> {
        let origin = self.origin();
        self.runs.lock().get(id).map(|runs| runs.iter().map(|(start, _)| *start - origin).collect()).unwrap_or_default()
    }

    fn count(&self, id: &str) -> usize {
        self.runs.lock().get(id).map_or(0, Vec::len)
    }

    /// The earliest start of any run.
    fn origin(&self) -> Instant {
        self.runs.lock().values().flatten().map(|(start, _)| *start).min().expect("something ran")
    }
}

fn desired(id: &str, tags: &[&str], paused: bool) -> Desired {
    let config = ResolvedConfig {
        id: id.into(),
        check: "fake".into(),
        provider: "test".into(),
        source: Source { namespace: "ns".into(), pod: "p".into(), pod_uid: "u".into(), container: "c".into() },
        init_config: json!({}),
        instance: json!({"tags": ["own:1"]}),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        tolerate_unready: false,
        min_collection_interval: None,
        reach: Default::default(),
        provenance: Default::default(),
    };
    Desired { config, paused }
}

/// A scheduler of `runner` with its timer loop running (stopped when the test's runtime ends).
fn start(runner: Arc<FakeRunner>, workers: usize) -> Arc<Scheduler> {
    let scheduler = Scheduler::new(runner, INTERVAL, workers);
    tokio::spawn(scheduler.clone().run(std::future::pending()));
    scheduler
}

#[tokio::test(start_paused = true)]
async fn first_runs_are_at_once_and_later_ones_spread_over_the_interval() {
    let runner = Arc::new(FakeRunner::default());
    let scheduler = start(runner.clone(), 64);
    let ids: Vec<String> = (0..40).map(|i| format!("fake:{i}")).collect();
    scheduler.reconcile(ids.iter().map(|id| desired(id, &[], false)).collect());
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(ids.iter().all(|id| runner.count(id) == 1), "every new instance ran at once");
    assert!(ids.iter().all(|id| runner.starts(id)[0] == Duration::ZERO));

    tokio::time::sleep(INTERVAL * 3).await;
    let seconds: Vec<Duration> = ids.iter().map(|id| runner.starts(id)[1]).collect();
    assert!(seconds.iter().all(|s| *s >= INTERVAL / 2 && *s < INTERVAL), "{seconds:?}");
    let distinct: std::collections::BTreeSet<u128> = seconds.iter().map(Duration::as_millis).collect();
    assert!(distinct.len() > 30, "second runs do not fire together: {seconds:?}");
    for id in &ids {
        let starts = runner.starts(id);
        assert!(about(starts[2] - starts[1], INTERVAL), "{id}: a fixed cadence after the phase: {starts:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_instance_never_overlaps_itself_and_skips_missed_slots() {
    // Each run takes two and a half intervals.
    let runner = Arc::new(FakeRunner { run_time: INTERVAL * 5 / 2, ..FakeRunner::default() });
    let scheduler = start(runner.clone(), 4);
    scheduler.reconcile(vec![desired("fake:slow", &[], false)]);
    tokio::time::sleep(INTERVAL * 20).await;
    assert!(runner.overlaps.lock().is_empty(), "ran twice at once: {:?}", runner.overlaps.lock());
    let runs = runner.runs.lock()["fake:slow"].clone();
    assert!(runs.len() >= 5, "{runs:?}");
    for pair in runs.windows(2) {
        let (_, ended) = pair[0];
        let (next, _) = pair[1];
        assert!(next >= ended, "the next run started before the last ended: {runs:?}");
        assert!(next - ended <= INTERVAL, "a missed slot was not skipped but waited for: {runs:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn workers_bound_the_runs_at_once() {
    let runner = Arc::new(FakeRunner { run_time: Duration::from_secs(1), ..FakeRunner::default() });
    let scheduler = start(runner.clone(), 2);
    scheduler.reconcile((0..6).map(|i| desired(&format!("fake:{i}"), &[], false)).collect());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // Two at a time: three rounds of one second for six first runs.
    let mut first_ends: Vec<Duration> = Vec::new();
    let origin = runner.origin();
    for runs in runner.runs.lock().values() {
        first_ends.push(runs[0].1 - origin);
    }
    first_ends.sort();
    let secs: Vec<u64> = first_ends.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, [1, 1, 2, 2, 3, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_paused_instance_waits_and_resumes_at_once() {
    let runner = Arc::new(FakeRunner::default());
    let scheduler = start(runner.clone(), 4);
    scheduler.reconcile(vec![desired("fake:a", &[], false), desired("fake:b", &[], true)]);
    tokio::time::sleep(INTERVAL * 3).await;
    assert!(runner.count("fake:a") >= 3);
    assert_eq!(runner.count("fake:b"), 0, "paused: not run");
    let status = scheduler.status();
    let b = status[0].instances.iter().find(|i| i.id == "fake:b").unwrap();
    assert!(b.paused && b.status == "PENDING", "{b:?}");

    let resumed_at = Instant::now();
    scheduler.reconcile(vec![desired("fake:a", &[], false), desired("fake:b", &[], false)]);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let runs = runner.runs.lock()["fake:b"].clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].0, resumed_at, "resumed at once, not at its next slot");
}

#[tokio::test(start_paused = true)]
async fn reconcile_keeps_what_is_unchanged_and_forgets_what_is_gone() {
    let runner = Arc::new(FakeRunner::default());
    let scheduler = start(runner.clone(), 4);
    scheduler.reconcile(vec![desired("fake:kept", &["pod:1"], false), desired("fake:gone", &[], false)]);
    tokio::time::sleep(INTERVAL * 2).await;
    let before = runner.starts("fake:kept");
    // The same instance again (new pod tags), the other one gone.
    scheduler.reconcile(vec![desired("fake:kept", &["pod:2"], false)]);
    assert_eq!(*runner.forgotten.lock(), ["fake:gone"], "the runner drops the state of the gone one only");
    assert_eq!(*runner.retained.lock(), [2, 1]);
    tokio::time::sleep(INTERVAL * 2).await;
    let after = runner.starts("fake:kept");
    assert_eq!(after[..before.len()], before[..]);
    let cadence: Vec<Duration> = after.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert!(cadence.iter().all(|d| about(*d, INTERVAL)), "the unchanged instance kept its cadence: {after:?}");
    assert_eq!(runner.tags.lock()["fake:kept"], ["own:1", "pod:2"], "its job has the new tags");
    let gone_runs = runner.count("fake:gone");
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(runner.count("fake:gone"), gone_runs, "a gone instance does not run again");
    let status = scheduler.status();
    assert_eq!(status[0].instances.len(), 1);
    assert!(status[0].instances[0].total_runs >= 4, "its status kept counting: {:?}", status[0].instances[0]);
}

#[tokio::test(start_paused = true)]
async fn a_runner_that_panics_fails_that_run_only() {
    let runner = Arc::new(FakeRunner::default());
    let scheduler = start(runner.clone(), 4);
    scheduler.reconcile(vec![desired("panic:x", &[], false), desired("fake:neighbour", &[], false)]);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let status = scheduler.status();
    let x = status[0].instances.iter().find(|i| i.id == "panic:x").unwrap();
    let message = x.message.clone().unwrap_or_default();
    assert!(x.status == "ERROR" && message.contains("internal error in the agent") && message.contains("the runner broke"), "{x:?}");
    tokio::time::sleep(INTERVAL * 3).await;
    let status = scheduler.status();
    let x = status[0].instances.iter().find(|i| i.id == "panic:x").unwrap();
    assert!(x.status == "OK" && x.total_runs >= 3, "later runs go on: {x:?}");
    assert!(runner.count("fake:neighbour") >= 3);
}

#[test]
fn instance_tags_are_the_instances_then_the_containers() {
    let mut config = desired("fake:t", &["pod:1", "own:1"], false).config;
    assert_eq!(config.options().unwrap().tags(), ["own:1", "pod:1"]);
    config.instance = Value::Null;
    assert_eq!(config.options().unwrap().tags(), ["pod:1", "own:1"]);
}
