//! Delivery to an OpenTelemetry collector (`--otlp-endpoint`), against a local OTLP/HTTP receiver
//! that checks the request as a collector would (`POST /v1/metrics`, protobuf, gzip) and decodes
//! it with the same generated messages: the seed's nginx metrics arrive typed and attributed, and
//! an outage of the collector loses nothing and sends nothing twice.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, NumberDataPoint, metric, number_data_point};
use prost::Message as _;
use serde_json::{Value, json};

use crate::agent::{RunningAgent, nginx_on, seed_pod};
use crate::util::{scratch_dir, test_checks_dir};

/// One data point the collector took, with its metric's kind and its resource.
#[derive(Debug, Clone)]
struct Point {
    metric: String,
    /// `gauge`, `delta sum` or `monotonic delta sum`.
    kind: String,
    value: f64,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    attributes: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    /// Every body taken, compressed as sent.
    bodies: Vec<Vec<u8>>,
    points: Vec<Point>,
    /// Requests answered with an error, by the test's choice.
    refused: usize,
    /// What a collector would have refused (wrong path or header, not gzip, not protobuf).
    violations: Vec<String>,
    /// The status every request gets; 200 when unset.
    answer: Option<u16>,
}

/// An OTLP/HTTP metrics receiver on a loopback port.
struct FakeCollector {
    url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeCollector {
    async fn start() -> FakeCollector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the collector");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(receive(request, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        FakeCollector { url, state, task }
    }

    /// Every request from now on gets `status` (503 for an outage); `None` takes them again.
    fn answer(&self, status: Option<u16>) {
        self.state.lock().unwrap().answer = status;
    }

    fn points(&self) -> Vec<Point> {
        self.state.lock().unwrap().points.clone()
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().bodies.clone()
    }

    fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(request: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let reply = |status: u16, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("Content-Type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .expect("valid response")
    };
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (method, path) = (request.method().to_string(), request.uri().path().to_string());
    let (content_type, encoding) = (header("content-type"), header("content-encoding"));
    let raw = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => return reply(400, Vec::new()),
    };
    let mut state = state.lock().unwrap();
    if let Some(status) = state.answer {
        state.refused += 1;
        return reply(status, Vec::new());
    }
    let mut problems = Vec::new();
    if (method.as_str(), path.as_str()) != ("POST", "/v1/metrics") {
        problems.push(format!("{method} {path}"));
    }
    if content_type != "application/x-protobuf" || encoding != "gzip" {
        problems.push(format!("Content-Type {content_type:?}, Content-Encoding {encoding:?}"));
    }
    let mut decompressed = Vec::new();
    if let Err(e) = flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut decompressed) {
        problems.push(format!("not gzip: {e}"));
    }
    let decoded = ExportMetricsServiceRequest::decode(&decompressed[..]);
    match decoded {
        Ok(request) if problems.is_empty() => {
            state.points.extend(flatten(&request));
            state.bodies.push(raw);
            reply(200, ExportMetricsServiceResponse::default().encode_to_vec())
        }
        decoded => {
            if let Err(e) = decoded {
                problems.push(format!("not an ExportMetricsServiceRequest: {e}"));
            }
            state.violations.extend(problems);
            reply(400, Vec::new())
        }
    }
}

fn strings(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    let string = |kv: &KeyValue| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => format!("not a string: {other:?}"),
    };
    attributes.iter().map(|kv| (kv.key.clone(), string(kv))).collect()
}

fn flatten(request: &ExportMetricsServiceRequest) -> Vec<Point> {
    let mut points = Vec::new();
    for resource_metrics in &request.resource_metrics {
        let resource = strings(&resource_metrics.resource.as_ref().map(|r| r.attributes.clone()).unwrap_or_default());
        for metric in resource_metrics.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let (kind, data_points): (String, &[NumberDataPoint]) = match &metric.data {
                Some(metric::Data::Gauge(gauge)) => ("gauge".to_string(), &gauge.data_points[..]),
                Some(metric::Data::Sum(sum)) => {
                    let delta = sum.aggregation_temporality == AggregationTemporality::Delta as i32;
                    let kind = match (delta, sum.is_monotonic) {
                        (true, true) => "monotonic delta sum",
                        (true, false) => "delta sum",
                        (false, _) => "cumulative sum",
                    };
                    (kind.to_string(), &sum.data_points[..])
                }
                other => (format!("unexpected {other:?}"), &[]),
            };
            for point in data_points {
                points.push(Point {
                    metric: metric.name.clone(),
                    kind: kind.clone(),
                    value: match point.value {
                        Some(number_data_point::Value::AsDouble(value)) => value,
                        Some(number_data_point::Value::AsInt(value)) => value as f64,
                        None => f64::NAN,
                    },
                    start_time_unix_nano: point.start_time_unix_nano,
                    time_unix_nano: point.time_unix_nano,
                    attributes: strings(&point.attributes),
                    resource: resource.clone(),
                });
            }
        }
    }
    points
}

/// Polls `done` every 100 ms up to `limit`; `what` and `context()` name the failure.
async fn eventually(what: &str, limit: Duration, done: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", context());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_metrics_reach_the_collector_typed_and_attributed() {
    let collector = FakeCollector::start().await;
    let nginx = nginx_on("127.0.0.1");
    let dir = scratch_dir("otlp-nginx");
    let pods = dir.join("pods.json");
    let pod = seed_pod("sada4j-nginx-5d9c7b8f6d-4xk2p", &nginx, true);
    std::fs::write(&pods, json!({"kind": "PodList", "items": [pod]}).to_string()).unwrap();
    let spool = dir.join("spool");
    let args = [
        "--pods-file", pods.to_str().unwrap(), "--otlp-endpoint", &collector.url, "--flush-interval", "1",
        "--spool-dir", spool.to_str().unwrap(), "--hostname", "node-7", "--node-name", "node-1", "--tags", "team:web",
    ];
    let agent = RunningAgent::start(&args);
    let expected: BTreeSet<&str> = [
        "nginx.net.connections", "nginx.net.reading", "nginx.net.writing", "nginx.net.waiting",
        "nginx.net.conn_opened_per_s", "nginx.net.conn_dropped_per_s", "nginx.net.request_per_s",
    ]
    .into();
    let names = || collector.points().into_iter().map(|p| p.metric).collect::<BTreeSet<String>>();
    eventually("the 7 nginx metrics", Duration::from_secs(40), || expected.iter().all(|m| names().contains(*m)), || {
        format!("got {:?}\nviolations {:?}\n{}", names(), collector.violations(), agent.log())
    })
    .await;

    assert!(collector.violations().is_empty(), "{:?}", collector.violations());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let nginx_points: Vec<Point> = collector.points().into_iter().filter(|p| p.metric.starts_with("nginx.")).collect();
    for point in &nginx_points {
        let is_metric = expected.contains(point.metric.as_str());
        assert!(is_metric || point.metric == "nginx.can_connect.status", "only the nginx metrics and service check: {point:?}");
        // Gauges, and rates as the per-second value the agent computed: gauges, without a start.
        assert_eq!((point.kind.as_str(), point.start_time_unix_nano), ("gauge", 0), "{point:?}");
        assert_eq!(point.resource.get("host.name").map(String::as_str), Some("node-7"), "{point:?}");
        assert_eq!(point.resource.get("k8s.node.name").map(String::as_str), Some("node-1"), "{point:?}");
        for (key, value) in [
            ("k8s.pod.name", "sada4j-nginx-5d9c7b8f6d-4xk2p"),
            ("k8s.namespace.name", "sada4j"),
            ("k8s.container.name", "frontend"),
            // The container's Datadog tags, and the host tags, as attributes.
            ("kube_container_name", "frontend"),
            ("team", "web"),
        ] {
            assert_eq!(point.attributes.get(key).map(String::as_str), Some(value), "{key} of {point:?}");
        }
        let age = Duration::from_nanos(now.saturating_sub(point.time_unix_nano));
        assert!(point.time_unix_nano <= now && age < Duration::from_secs(60), "stamped with the run's time: {point:?}");
    }
    let connections = nginx_points.iter().find(|p| p.metric == "nginx.net.connections").unwrap();
    assert!(connections.value >= 1.0, "the check's own connection is active: {connections:?}");
    let can_connect = nginx_points.iter().find(|p| p.metric == "nginx.can_connect.status").expect("the service check, as a gauge");
    assert_eq!(can_connect.value, 0.0, "OK: {can_connect:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn total_runs(info: &Value) -> u64 {
    info["checks"][0]["instances"][0]["total_runs"].as_u64().unwrap_or(0)
}

/// `adrt run` with the hostile test check in its `ok` mode (one gauge, `hostile.ok`, a second)
/// from the conf.d in `dir`, sending to `collector`.
fn one_point_per_second_to(collector: &FakeCollector, dir: &Path) -> RunningAgent {
    let conf = dir.join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("hostile.yaml"), "instances:\n  - mode: ok\n    min_collection_interval: 1\n").unwrap();
    let (checks, spool) = (test_checks_dir(), dir.join("spool"));
    RunningAgent::start(&[
        "--listener", "none", "--conf-dir", conf.to_str().unwrap(), "--checks-dir", checks.to_str().unwrap(),
        "--otlp-endpoint", &collector.url, "--flush-interval", "1", "--spool-dir", spool.to_str().unwrap(),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_loses_nothing_and_sends_nothing_twice() {
    let collector = FakeCollector::start().await;
    collector.answer(Some(503));
    let dir = scratch_dir("otlp-outage");
    let agent = one_point_per_second_to(&collector, &dir);
    let before = agent.wait_for("runs during the outage", |i| total_runs(i) >= 6).await;
    assert!(collector.points().is_empty() && collector.refused() > 0, "the collector was down");
    collector.answer(None);

    let produced = total_runs(&before);
    let hostile = || collector.points().into_iter().filter(|p| p.metric == "hostile.ok").collect::<Vec<Point>>();
    eventually("every point of the outage", Duration::from_secs(60), || hostile().len() as u64 >= produced, || {
        format!("{} of {produced} points\nviolations {:?}\n{}", hostile().len(), collector.violations(), agent.log())
    })
    .await;
    let bodies = collector.bodies();
    assert_eq!(bodies.iter().collect::<BTreeSet<_>>().len(), bodies.len(), "a request was sent twice");
    let points = hostile();
    let runs: BTreeSet<u64> = points.iter().map(|p| p.time_unix_nano).collect();
    assert_eq!(runs.len(), points.len(), "a run's point arrived twice");
    let info = agent.info().await.unwrap();
    assert!(points.len() as u64 <= total_runs(&info), "no point more than the runs made");
    assert!(collector.violations().is_empty(), "{:?}", collector.violations());
    std::fs::remove_dir_all(dir).unwrap();
}
