//! Delivery to the Datadog intake, against a local intake that checks every payload as the real
//! one would (`adrt_testkit::fake_intake`): the seed's nginx metrics arrive typed and tagged, a
//! large flush arrives split, and outages — a long one, a SIGKILL during one, a full spool —
//! lose nothing but what the spool's bound says, and send nothing twice.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use adrt::aggregate::{Flushed, Series};
use adrt::exec::MetricKind;
use adrt::resolve::{ResolvedConfig, Source};
use adrt::send::datadog::{DatadogSink, Forwarder, ForwarderSettings};
use adrt::send::{Batch, Sink};
use adrt_testkit::fake_intake::FakeIntake;
use serde_json::{Value, json};

use crate::agent::{RunningAgent, nginx_on, seed_pod};
use crate::util::{scratch_dir, test_checks_dir};

const API_KEY: &str = "0123456789abcdef0123456789abcdef";

/// Polls `done` every 100 ms up to `limit`; `what` and `context()` name the failure.
async fn eventually(what: &str, limit: Duration, done: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", context());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Series values the agent's log sink logged (`ADRT_LOG=adrt::send=debug`): metric -> values.
fn logged_values(log: &str) -> HashMap<String, Vec<f64>> {
    let mut values: HashMap<String, Vec<f64>> = HashMap::new();
    for line in log.lines().filter(|l| l.contains("adrt::send: series")) {
        let field = |name: &str| line.split(&format!(" {name}=")).nth(1).and_then(|rest| rest.split(' ').next());
        if let (Some(metric), Some(value)) = (field("metric"), field("value").and_then(|v| v.parse().ok())) {
            values.entry(metric.to_string()).or_default().push(value);
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_metrics_reach_the_intake_typed_and_tagged() {
    let intake = FakeIntake::start(API_KEY).await;
    let nginx = nginx_on("127.0.0.1");
    let dir = scratch_dir("delivery-nginx");
    let pods = dir.join("pods.json");
    let pod = seed_pod("sada4j-nginx-5d9c7b8f6d-4xk2p", &nginx, true);
    std::fs::write(&pods, json!({"kind": "PodList", "items": [pod]}).to_string()).unwrap();
    let spool = dir.join("spool");
    let args = [
        "--pods-file", pods.to_str().unwrap(), "--api-key", API_KEY, "--dd-url", &intake.url, "--flush-interval", "1",
        "--spool-dir", spool.to_str().unwrap(), "--hostname", "node-7", "--tags", "team:web", "--env", "test",
    ];
    let agent = RunningAgent::start_with_env(&args, &[("ADRT_LOG", "info,adrt::send=debug")]);
    let expected: BTreeSet<&str> = [
        "nginx.net.connections", "nginx.net.reading", "nginx.net.writing", "nginx.net.waiting",
        "nginx.net.conn_opened_per_s", "nginx.net.conn_dropped_per_s", "nginx.net.request_per_s",
    ]
    .into();
    let names = || intake.points().iter().filter_map(|p| p["metric"].as_str().map(str::to_string)).collect::<BTreeSet<String>>();
    let wanted = || expected.iter().all(|m| names().contains(*m)) && names().contains("adrt.checks.runs");
    eventually("the 7 nginx metrics and the agent's own", Duration::from_secs(40), wanted, || {
        format!("got {:?}\nviolations {:?}\n{}", names(), intake.violations(), agent.log())
    })
    .await;

    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    let logged = logged_values(&agent.log());
    let (nginx, agent_own): (Vec<Value>, Vec<Value>) =
        intake.points().into_iter().partition(|p| p["metric"].as_str().is_some_and(|m| m.starts_with("nginx.")));
    assert!(agent_own.iter().all(|p| p["metric"].as_str().unwrap().starts_with("adrt.")), "{agent_own:?}");
    for point in nginx {
        let metric = point["metric"].as_str().unwrap();
        assert!(expected.contains(metric), "only the nginx metrics: {point}");
        // Gauges, and rates as the per-second value, are Datadog gauges (type 3), interval 0.
        assert_eq!((point["type"].as_u64(), point["interval"].as_u64()), (Some(3), Some(0)), "{point}");
        assert_eq!(point["resources"], json!([{"name": "node-7", "type": "host"}]));
        let tags: Vec<&str> = point["tags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for tag in ["pod_name:sada4j-nginx-5d9c7b8f6d-4xk2p", "kube_namespace:sada4j", "kube_container_name:frontend", "team:web", "env:test"] {
            assert!(tags.contains(&tag), "{tag} missing from {point}");
        }
        let value = point["points"][0]["value"].as_f64().unwrap();
        // serde_json reads floats to within an ulp (no `float_roundtrip`): equal up to that.
        let same = |logged: &f64| (logged - value).abs() <= value.abs() * 1e-15;
        assert!(logged.get(metric).is_some_and(|v| v.iter().any(same)), "{metric}={value} was not what the run produced: {logged:?}");
        let age = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64 - point["points"][0]["timestamp"].as_i64().unwrap();
        assert!((0..60).contains(&age), "stamped with the run's time: {point}");
    }
    let checks: Vec<Value> = intake.received().iter().filter(|r| r.path == "/api/v1/check_run").flat_map(|r| r.body.as_array().cloned().unwrap()).collect();
    assert!(checks.iter().any(|c| c["check"] == "nginx.can_connect" && c["status"] == 0 && c["host_name"] == "node-7"), "{checks:?}");
    let info = agent.wait_for("the forwarder's status", |i| i["forwarder"]["success"].as_u64() > Some(0)).await;
    assert_eq!(info["forwarder"]["api_key_valid"], true, "{info}");
    assert!(agent.info_text().await.contains("API key: valid"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn big_batch(points: usize) -> Batch {
    let series = (0..points)
        .map(|i| Series {
            name: format!("load.metric_{}", i % 500),
            kind: MetricKind::Gauge,
            value: i as f64,
            // Tags that do not compress away: the compressed limit is tested too.
            tags: (0..6).map(|j| format!("t{j}:{:016x}", (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ j))).collect(),
            hostname: None,
        })
        .collect();
    let config = ResolvedConfig {
        id: "load:1".into(),
        check: "load".into(),
        provider: "test".into(),
        source: Source::default(),
        init_config: json!({}),
        instance: json!({}),
        tags: Vec::new(),
        tolerate_unready: false,
        min_collection_interval: None,
        reach: Default::default(),
        provenance: Default::default(),
    };
    Batch { config: Arc::new(config), flushed: Flushed { series, ..Flushed::default() }, at: SystemTime::now() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_over_the_intakes_limits_arrives_split() {
    let intake = FakeIntake::start(API_KEY).await;
    let dir = scratch_dir("delivery-split");
    let settings = ForwarderSettings {
        intake_url: intake.url.clone(),
        api_key: Some(API_KEY.into()),
        memory_bytes: 64 << 20,
        spool_dir: Some(dir.join("spool")),
        spool_max_bytes: 64 << 20,
        outbound: Default::default(),
    };
    let forwarder = Forwarder::start(settings).unwrap();
    let sink = DatadogSink::new("node-1".into(), vec!["team:load".into()], forwarder);
    let batch = big_batch(60_000);
    sink.send(&batch).await;
    sink.flush().await;
    eventually("60,000 points", Duration::from_secs(60), || intake.points().len() >= 60_000, || format!("{} so far", intake.points().len())).await;
    let payloads: Vec<_> = intake.received().into_iter().filter(|r| r.path == "/api/v2/series").collect();
    let raw_json: usize = payloads.iter().map(|p| p.body.to_string().len()).sum();
    assert!(raw_json > 5_242_880, "the flush is over the uncompressed limit ({raw_json} bytes of JSON)");
    assert!(payloads.len() >= 2, "split into {} payloads", payloads.len());
    assert!(intake.violations().is_empty(), "every payload under both limits: {:?}", intake.violations());
    let values: BTreeSet<u64> = intake.points().iter().map(|p| p["points"][0]["value"].as_f64().unwrap() as u64).collect();
    assert_eq!((values.len(), intake.points().len()), (60_000, 60_000), "every point once");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A conf.d with the hostile test check in its `ok` mode: one gauge per run, every second.
fn one_point_per_second(dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("hostile.yaml"), "instances:\n  - mode: ok\n    min_collection_interval: 1\n").unwrap();
    conf
}

/// `adrt run` with the hostile check of `conf`, sending to `intake`, spooling in `spool`.
fn start_agent(intake: &FakeIntake, conf: &Path, spool: &Path, extra: &[&str]) -> RunningAgent {
    let checks = test_checks_dir();
    let mut args = vec![
        "--listener", "none", "--conf-dir", conf.to_str().unwrap(), "--checks-dir", checks.to_str().unwrap(),
        "--api-key", API_KEY, "--dd-url", &intake.url, "--flush-interval", "1", "--spool-dir", spool.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    RunningAgent::start(&args)
}

fn total_runs(info: &Value) -> u64 {
    info["checks"][0]["instances"][0]["total_runs"].as_u64().unwrap_or(0)
}

/// The hostile check's points the intake took.
fn check_points(intake: &FakeIntake) -> usize {
    intake.points().iter().filter(|p| p["metric"] == "hostile.ok").count()
}

/// No payload body came twice.
fn assert_sent_once(intake: &FakeIntake) {
    let bodies: Vec<Vec<u8>> = intake.received().into_iter().map(|r| r.raw).collect();
    let distinct: BTreeSet<&Vec<u8>> = bodies.iter().collect();
    assert_eq!(distinct.len(), bodies.len(), "a payload was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intake_is_reached_through_the_configured_proxy() {
    // The local intake stands in for the proxy: a proxy gets the absolute URL of an intake that
    // does not resolve, and only a client that uses the proxy reaches it.
    let proxy = FakeIntake::start(API_KEY).await;
    let dir = scratch_dir("delivery-proxy");
    let settings = ForwarderSettings {
        intake_url: "http://intake.invalid".into(),
        api_key: Some(API_KEY.into()),
        memory_bytes: 1 << 20,
        spool_dir: Some(dir.join("spool")),
        spool_max_bytes: 1 << 20,
        outbound: adrt::config::Outbound { proxy_http: Some(proxy.url.clone()), ..Default::default() },
    };
    let forwarder = Forwarder::start(settings).unwrap();
    let sink = DatadogSink::new("node-1".into(), Vec::new(), forwarder.clone());
    sink.send(&big_batch(10)).await;
    sink.flush().await;
    eventually("the points, through the proxy", Duration::from_secs(20), || proxy.points().len() == 10, || format!("{:?}", forwarder.status())).await;
    eventually("the key's validation, through the proxy", Duration::from_secs(20), || forwarder.status().api_key_valid == Some(true), || format!("{:?}", forwarder.status())).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_long_outage_loses_nothing() {
    let intake = FakeIntake::start(API_KEY).await;
    intake.answer(Some(503));
    let dir = scratch_dir("delivery-outage");
    let (conf, spool) = (one_point_per_second(&dir), dir.join("spool"));
    let agent = start_agent(&intake, &conf, &spool, &[]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let before = agent.wait_for("runs during the outage", |i| total_runs(i) >= 30).await;
    assert!(intake.received().is_empty() && intake.refused() > 0, "the intake was down");
    intake.answer(None);
    let produced = total_runs(&before);
    eventually("every point of the outage", Duration::from_secs(120), || check_points(&intake) as u64 >= produced, || {
        format!("{} of {produced} points\n{}", check_points(&intake), agent.log())
    })
    .await;
    assert_sent_once(&intake);
    let info = agent.info().await.unwrap();
    assert!(check_points(&intake) as u64 <= total_runs(&info), "no point more than the runs made");
    assert!(info["forwarder"]["retried"].as_u64() > Some(0), "{info}");
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The spooled payloads' bodies, as written (after the two header lines).
fn spooled_bodies(spool: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(spool).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "payload")).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap().splitn(3, |b| *b == b'\n').nth(2).unwrap().to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_sends_its_spool_when_it_comes_back() {
    let intake = FakeIntake::start(API_KEY).await;
    intake.answer(Some(503));
    let dir = scratch_dir("delivery-kill");
    let (conf, spool) = (one_point_per_second(&dir), dir.join("spool"));
    let memory_zero = ["--forwarder-memory-mib", "0"];
    let mut agent = start_agent(&intake, &conf, &spool, &memory_zero);
    let datadog_spool = spool.join("datadog");
    eventually("three flushes spooled", Duration::from_secs(30), || datadog_spool.is_dir() && spooled_bodies(&datadog_spool).len() >= 3, || agent.log()).await;
    agent.kill();
    let spooled = spooled_bodies(&datadog_spool);
    assert!(spooled.len() >= 3 && intake.received().is_empty());

    intake.answer(None);
    let _agent = start_agent(&intake, &conf, &spool, &memory_zero);
    let arrived = || {
        let received: Vec<Vec<u8>> = intake.received().into_iter().map(|r| r.raw).collect();
        spooled.iter().all(|body| received.contains(body))
    };
    eventually("every spooled payload", Duration::from_secs(60), arrived, || format!("{} received", intake.received().len())).await;
    assert_sent_once(&intake);
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_its_oldest_and_says_how_many() {
    let intake = FakeIntake::start(API_KEY).await;
    intake.answer(Some(503));
    let dir = scratch_dir("delivery-full");
    let (conf, spool) = (one_point_per_second(&dir), dir.join("spool"));
    let agent = start_agent(&intake, &conf, &spool, &["--forwarder-memory-mib", "0", "--spool-max-mib", "0"]);
    let info = agent.wait_for("payloads dropped from the spool", |i| i["forwarder"]["spool_dropped"].as_u64() >= Some(2)).await;
    assert_eq!(info["forwarder"]["spool_payloads"], 1, "a spool of 0 MiB keeps the newest payload only: {info}");
    let text = agent.info_text().await;
    assert!(text.contains("oldest payloads dropped to stay under its bound"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}
