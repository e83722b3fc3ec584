//! The agent's instance slots and the scheduler's containment, with the real engine and the
//! hostile test component: tenants never share a live instance, a grown instance is not kept,
//! the slots are bounded and shared fairly, and a panic in the agent's own code (here: a sink)
//! fails that run only while the scheduler's heartbeat goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adrt::aggregate::Flushed;
use adrt::exec::{CheckEngine, CheckRegistry, EngineSettings, HostServices};
use adrt::resolve::{ResolvedConfig, Source};
use adrt::schedule::{Desired, Scheduler, Sink};
use serde_json::json;

use crate::util::test_checks_dir;

fn registry(slots: u32) -> Arc<CheckRegistry> {
    let settings = EngineSettings { max_instances: slots, call_timeout: Duration::from_secs(5), ..EngineSettings::default() };
    let engine = CheckEngine::new(settings, Arc::new(HostServices::from_env().expect("agent settings"))).expect("engine");
    Arc::new(CheckRegistry::new(engine, test_checks_dir()))
}

/// One run of the hostile check in `mode` for `tenant` on a pooled instance; the run's error.
async fn run(registry: &CheckRegistry, tenant: &str, init: &str, instance: serde_json::Value) -> Result<(), String> {
    let pool = registry.pool(tenant, "hostile", init).map_err(|e| e.to_string())?;
    let mut live = registry.take(&pool).await.map_err(|e| e.to_string())?;
    let outcome = live.run("hostile:1", &instance.to_string()).await;
    registry.give_back(&pool, live);
    outcome.error.map_or(Ok(()), |e| Err(e.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_share_instances_and_grown_ones_are_not_kept() {
    let registry = registry(8);
    run(&registry, "team-a", "{}", json!({"mode": "counter"})).await.unwrap();
    assert_eq!(registry.live_instances(), 1);
    run(&registry, "team-a", "{}", json!({"mode": "ok"})).await.unwrap();
    assert_eq!(registry.live_instances(), 1, "the same tenant reuses its idle instance");
    run(&registry, "team-b", "{}", json!({"mode": "ok"})).await.unwrap();
    assert_eq!(registry.live_instances(), 2, "another tenant gets an instance of its own");
    run(&registry, "team-b", "{}", json!({"mode": "grow", "mib": 32})).await.unwrap();
    assert_eq!(registry.live_instances(), 1, "an instance that grew past 16 MiB is dropped after its run");
    run(&registry, "team-b", "{}", json!({"mode": "grow", "mib": 1})).await.unwrap();
    assert_eq!(registry.live_instances(), 2, "a small one is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seventy_init_configs_of_one_tenant_leave_room_for_another() {
    let registry = registry(8);
    for i in 0..70 {
        run(&registry, "greedy", &json!({"n": i}).to_string(), json!({"mode": "ok"})).await.unwrap();
        assert!(registry.live_instances() <= 8);
    }
    // The greedy tenant holds every slot, all idle: another tenant's run evicts one.
    assert_eq!(registry.live_instances(), 8);
    for _ in 0..3 {
        run(&registry, "team-b", "{}", json!({"mode": "ok"})).await.unwrap();
    }
    // Its instance stays while greedy churns within its fair share (4 of 8).
    for i in 70..140 {
        run(&registry, "greedy", &json!({"n": i}).to_string(), json!({"mode": "ok"})).await.unwrap();
        run(&registry, "team-b", "{}", json!({"mode": "ok"})).await.unwrap();
    }
    assert!(registry.live_instances() <= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_slot_is_running_a_new_instance_gets_a_clear_error() {
    let registry = registry(2);
    let pool = registry.pool("a", "hostile", "{}").unwrap();
    let first = registry.take(&pool).await.unwrap();
    let second = registry.take(&pool).await.unwrap();
    let error = registry.take(&pool).await.map(|_| ()).unwrap_err().to_string();
    assert!(error.starts_with("no instance slot:"), "{error}");
    drop(first);
    let third = registry.take(&pool).await.expect("a slot freed by a dropped instance is free again");
    drop((second, third));
    assert_eq!(registry.live_instances(), 0);
}

/// A sink that panics on its first call.
#[derive(Default)]
struct PanickingSink {
    calls: AtomicUsize,
}

impl Sink for PanickingSink {
    fn send(&self, _config: &ResolvedConfig, _flushed: &Flushed) {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("the sink broke");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_agents_code_fails_that_run_only() {
    let sink = Arc::new(PanickingSink::default());
    let scheduler = Scheduler::new(registry(4), Duration::from_millis(200), 2, sink.clone());
    let config = ResolvedConfig {
        id: "hostile:panicky-sink".into(),
        check: "hostile".into(),
        provider: "test".into(),
        source: Source { namespace: "ns".into(), pod: "p".into(), pod_uid: "u".into(), container: "c".into() },
        init_config: json!({}),
        instance: json!({"mode": "ok"}),
        tags: Vec::new(),
        tolerate_unready: false,
        min_collection_interval: Some(0.2),
    };
    scheduler.reconcile(vec![Desired { config, paused: false }]);
    let heartbeat = scheduler.heartbeat();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let looping = tokio::spawn(scheduler.clone().run(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen_error = false;
    loop {
        let status = scheduler.status();
        let instance = &status[0].instances[0];
        if instance.total_runs == 1 {
            let message = instance.message.clone().unwrap_or_default();
            assert!(message.contains("internal error in the agent") && message.contains("the sink broke"), "{message}");
            seen_error = true;
        }
        if instance.total_runs >= 3 {
            assert_eq!(instance.status, "OK", "later runs are not affected");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "runs stopped after the panic: {instance:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen_error, "the failed run was reported");
    assert!(heartbeat.silent_for() < Duration::from_secs(2));
    let _ = stop.send(());
    looping.await.unwrap();
}
