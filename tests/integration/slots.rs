//! The agent's instance slots and its delivery queue, with the real engine and the hostile test
//! component: tenants never share a live instance, a grown instance is not kept, the slots are
//! bounded and shared fairly, and a slow or broken sink delays deliveries, never runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adrt::agent::pipeline::Pipeline;
use adrt::exec::{CheckEngine, CheckRegistry, EngineSettings};
use adrt::resolve::{ResolvedConfig, Source};
use adrt::schedule::{Desired, Scheduler};
use adrt::secrets::SecretResolver;
use adrt::send::{self, Batch, Sink};
use futures::future::BoxFuture;
use serde_json::json;

use crate::util::{default_services, test_checks_dir};

fn registry(slots: u32) -> Arc<CheckRegistry> {
    let limits = adrt::policy::Limits { time_seconds: 5.0, ..Default::default() };
    let settings = EngineSettings { max_instances: slots, limits, ..EngineSettings::default() };
    let engine = CheckEngine::new(settings, default_services()).expect("engine");
    Arc::new(CheckRegistry::new(engine, test_checks_dir()))
}

/// One run of the hostile check in `mode` for `tenant` on a pooled instance; the run's error.
async fn run(registry: &CheckRegistry, tenant: &str, init: &str, instance: serde_json::Value) -> Result<(), String> {
    let pool = registry.pool(tenant, "hostile", init).map_err(|e| e.to_string())?;
    let mut live = registry.take(&pool).await.map_err(|e| e.to_string())?;
    let outcome = live.run("hostile:1", &instance.to_string(), &adrt::policy::Reach::Operator).await;
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
    assert_eq!(registry.live_instances(), 1, "an instance that grew by more than 16 MiB is dropped after its run");
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

/// A sink that takes a second per batch, and panics on its second.
#[derive(Default)]
struct SlowSink {
    calls: AtomicUsize,
}

impl Sink for SlowSink {
    fn send<'a>(&'a self, _batch: &'a Batch) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_ne!(call, 1, "the sink broke");
        })
    }
}

fn hostile_ok(id: &str, namespace: &str) -> Desired {
    let config = ResolvedConfig {
        id: id.into(),
        check: "hostile".into(),
        provider: "test".into(),
        source: Source { namespace: namespace.into(), pod: "p".into(), pod_uid: "u".into(), container: "c".into() },
        init_config: json!({}),
        instance: json!({"mode": "ok"}),
        tags: Vec::new(),
        tolerate_unready: false,
        min_collection_interval: Some(0.1),
        reach: Default::default(),
        provenance: Default::default(),
    };
    Desired { config, paused: false }
}

/// Two instances every 100 ms for 3 s, their results going to a sink that needs a second per
/// batch through a queue of 4: the runs keep their pace (the sink would allow 3 runs), what
/// does not fit is counted as dropped, and a panicking sink loses one batch, not the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_delays_deliveries_not_runs() {
    let sink = Arc::new(SlowSink::default());
    let outbox = send::start(sink.clone(), 4, Duration::from_secs(15));
    let secrets = Arc::new(SecretResolver::new(&[], None, Arc::default()));
    let scheduler = Scheduler::new(Arc::new(Pipeline::new(registry(4), secrets, outbox.clone())), Duration::from_secs(15), 2);
    scheduler.reconcile(vec![hostile_ok("hostile:a", "team-a"), hostile_ok("hostile:b", "team-b")]);
    let heartbeat = scheduler.heartbeat();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let looping = tokio::spawn(scheduler.clone().run(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = scheduler.status();
    let runs: Vec<u64> = status[0].instances.iter().map(|i| i.total_runs).collect();
    assert!(runs.iter().all(|r| *r >= 10), "runs waited for the sink: {runs:?}");
    assert!(status[0].instances.iter().all(|i| i.status == "OK"), "{status:?}");
    let delivery = outbox.status();
    assert!(delivery.sent + delivery.failed <= 4, "the sink takes a second per batch: {delivery:?}");
    assert!(delivery.dropped > 0 && delivery.queued <= 4, "a full queue refuses and counts: {delivery:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivery = outbox.status();
    assert_eq!(delivery.failed, 1, "the panicking call lost its batch: {delivery:?}");
    assert!(delivery.sent >= 2, "and delivery went on: {delivery:?}");
    assert!(heartbeat.silent_for() < Duration::from_secs(2));
    let _ = stop.send(());
    looping.await.unwrap();
}
