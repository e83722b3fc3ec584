//! Each hostile run ends as an error of that run only; a well-behaved check in the same
//! process (the nginx check against a real nginx) keeps working in the runs after each.

use std::time::{Duration, Instant};

use adrt::exec::{CheckEngine, LiveInstance, RunError};

use crate::util::{LocalNginx, SilentPeer, checks_dir, engine, test_checks_dir};

const DEADLINE: Duration = Duration::from_millis(1500);

struct Neighbour {
    _nginx: LocalNginx,
    live: LiveInstance,
    instance: String,
}

impl Neighbour {
    async fn start(engine: &CheckEngine) -> Self {
        let nginx = LocalNginx::start().expect("nginx");
        let loaded = engine.load(&checks_dir(), "nginx").unwrap();
        let live = LiveInstance::start(engine, &loaded, "{}").await.unwrap();
        let instance = serde_json::json!({"nginx_status_url": nginx.status_url()}).to_string();
        Neighbour { _nginx: nginx, live, instance }
    }

    async fn still_works(&mut self) {
        let outcome = self.live.run("nginx:neighbour", &self.instance, &adrt::policy::Reach::Operator).await;
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.submissions.samples.len(), 7);
    }
}

/// Runs the hostile check once in `mode` on a fresh instance, then checks the neighbour.
/// Returns the run's error, its duration, and whether the instance is still usable — checked
/// against what it does: a usable instance runs again, a trapped one refuses (`Poisoned`).
async fn hostile_run(engine: &CheckEngine, neighbour: &mut Neighbour, instance: serde_json::Value) -> (Option<RunError>, Duration, bool) {
    let loaded = engine.load(&test_checks_dir(), "hostile").unwrap();
    let mut live = LiveInstance::start(engine, &loaded, "{}").await.unwrap();
    let started = Instant::now();
    let outcome = live.run("hostile:1", &instance.to_string(), &adrt::policy::Reach::Operator).await;
    let elapsed = started.elapsed();
    let usable = live.is_usable();
    let again = live.run("hostile:1", r#"{"mode":"ok"}"#, &adrt::policy::Reach::Operator).await.error;
    if usable {
        assert_eq!(again, None, "a usable instance runs again");
    } else {
        assert_eq!(again, Some(RunError::Poisoned), "a trapped instance is not run again");
    }
    neighbour.still_works().await;
    // A fresh instance of the same check works again.
    let mut fresh = LiveInstance::start(engine, &loaded, "{}").await.unwrap();
    assert_eq!(fresh.run("hostile:2", r#"{"mode":"ok"}"#, &adrt::policy::Reach::Operator).await.error, None);
    (outcome.error, elapsed, usable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_by_the_deadline() {
    let engine = engine(DEADLINE);
    let mut neighbour = Neighbour::start(&engine).await;
    let (error, elapsed, usable) = hostile_run(&engine, &mut neighbour, serde_json::json!({"mode": "loop"})).await;
    assert_eq!(error, Some(RunError::Deadline(DEADLINE)));
    assert!(elapsed >= DEADLINE && elapsed < DEADLINE + Duration::from_secs(2), "{elapsed:?}");
    assert!(!usable, "a trapped instance is not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_is_cut_at_the_deadline() {
    let engine = engine(DEADLINE);
    let mut neighbour = Neighbour::start(&engine).await;
    let peer = SilentPeer::start();
    let url = format!("http://{}/", peer.addr);
    let (error, elapsed, usable) = hostile_run(&engine, &mut neighbour, serde_json::json!({"mode": "http", "url": url})).await;
    // The host call returns a timeout to the check, which fails its run with it.
    match error {
        Some(RunError::Failed(message)) => assert!(message.contains("timed out") && message.contains(&url), "{message}"),
        other => panic!("expected a timed-out run, got {other:?}"),
    }
    assert!(elapsed >= DEADLINE - Duration::from_millis(50) && elapsed < DEADLINE + Duration::from_secs(2), "{elapsed:?}");
    assert!(usable, "a host-call timeout is an ordinary error, not a trap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_hits_the_memory_limit() {
    let engine = engine(DEADLINE);
    let mut neighbour = Neighbour::start(&engine).await;
    let (error, _, usable) = hostile_run(&engine, &mut neighbour, serde_json::json!({"mode": "alloc"})).await;
    match error {
        Some(RunError::Memory(message)) => assert!(message.contains("memory limit of 64 MiB exceeded"), "{message}"),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(!usable, "an instance stopped at its memory limit is not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_with_its_message() {
    let engine = engine(DEADLINE);
    let mut neighbour = Neighbour::start(&engine).await;
    let (error, _, usable) =
        hostile_run(&engine, &mut neighbour, serde_json::json!({"mode": "panic", "message": "boom: the sky fell"})).await;
    match error {
        Some(RunError::Panic(message)) => assert!(message.contains("boom: the sky fell"), "{message}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(!usable, "a panic traps: the instance is not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_submissions_is_stopped() {
    let engine = engine(Duration::from_secs(10));
    let mut neighbour = Neighbour::start(&engine).await;
    let (error, _, usable) = hostile_run(&engine, &mut neighbour, serde_json::json!({"mode": "flood"})).await;
    match error {
        Some(RunError::Limit(exceeded)) => assert_eq!(exceeded.to_string(), "limits.metrics_per_run of 200000 exceeded; the run was stopped"),
        other => panic!("expected the submission limit, got {other:?}"),
    }
    assert!(!usable, "a trapped instance is not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_kept_per_instance_across_live_instances() {
    let engine = engine(DEADLINE);
    let loaded = engine.load(&test_checks_dir(), "hostile").unwrap();
    let mut a = LiveInstance::start(&engine, &loaded, "{}").await.unwrap();
    let mut b = LiveInstance::start(&engine, &loaded, "{}").await.unwrap();
    let runs = |outcome: adrt::exec::RunOutcome| outcome.submissions.samples[0].value;
    let counter = r#"{"mode":"counter"}"#;
    // One check instance served by two pooled live instances: the count continues.
    assert_eq!(runs(a.run("hostile:x", counter, &adrt::policy::Reach::Operator).await), 1.0);
    assert_eq!(runs(b.run("hostile:x", counter, &adrt::policy::Reach::Operator).await), 2.0);
    assert_eq!(runs(a.run("hostile:x", counter, &adrt::policy::Reach::Operator).await), 3.0);
    // Another check instance has its own state.
    assert_eq!(runs(a.run("hostile:y", counter, &adrt::policy::Reach::Operator).await), 1.0);
}
