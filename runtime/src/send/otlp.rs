//! The OTLP sink (`--otlp-endpoint`): every run's series and service checks gathered between
//! flushes, then at each flush encoded as OTLP/HTTP protobuf (`ExportMetricsServiceRequest`),
//! gzipped, and handed to a [`Forwarder`] of its own, which posts them to the collector's
//! `/v1/metrics` and retries and spools them as it does the Datadog intake's payloads.
//!
//! How Datadog's vocabulary maps:
//! - **Gauges**: `gauge`, and `rate` too: the agent has already turned the raw counter into a
//!   per-second value, which is a measurement, not an amount to add up — a delta sum of it
//!   would be wrong by the interval's length (Datadog and the Prometheus sink also keep it a
//!   gauge).
//! - **Delta sums**: `count` (the sum of what the run submitted) and `monotonic_count` (the
//!   counter's increase since the previous run), temporality DELTA. Only `monotonic_count` is
//!   monotonic: the agent drops a counter's resets, so its deltas are never negative, where a
//!   check may count down with `count`.
//! - **Histograms**: the aggregator has already reduced a histogram's samples to Datadog's
//!   aggregates, so there are no buckets to send an OTLP histogram with: `.max`, `.median`,
//!   `.avg` and `.95percentile` are gauges, `.count` (samples in the run) a monotonic delta sum.
//! - **Service checks**: a gauge `<name>.status`: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (as
//!   the Prometheus sink's `<name>_status`); the message is not sent. Events are not metrics:
//!   they are not sent.
//! - **Time**: a point is stamped with the end of its run (`time_unix_nano`). A delta sum
//!   covers the time since the previous run of its instance (`start_time_unix_nano`), which is
//!   what its count or increase counts, so that the points of a series follow each other without
//!   overlapping; an instance's first run covers the time since the sink started. Gauges have no
//!   start time.
//! - **Resources**: one per host: `host.name` (the agent's `hostname`, or the host a check
//!   named for a submission) and, on the agent's own host, `k8s.node.name` (when known). One
//!   scope, `adrt` with the agent's version.
//! - **Attributes** of each point: `k8s.namespace.name`, `k8s.pod.name` and
//!   `k8s.container.name` of the container the instance checks (none for a static conf.d
//!   config), then the tags — the series' and the host tags (`--tags`, `--env`,
//!   `--cluster-name`) — sorted by key: `key:value` is the attribute `key` with the string
//!   `value` (split at the first `:`), a tag without `:` (or with nothing before it) the
//!   attribute named by the whole tag with an empty value, and several values of one key are
//!   joined by `,`, sorted (as the Prometheus sink's labels: attribute keys must be unique). A
//!   tag named like a `k8s.*` attribute the agent set is dropped: a pod's annotations cannot
//!   pass its metrics off as another pod's.
//! - **Requests**: a flush is split into requests whose bodies stay under
//!   [`Endpoint::OtlpMetrics`]' limits, gzipped and not, sent in the order of their points.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use parking_lot::Mutex;
use prost::Message as _;

use super::datadog::Forwarder;
use super::datadog::payload::{Endpoint, Payload};
use super::{Batch, Sink};
use crate::exec::MetricKind;
use crate::resolve::Source;

/// Bytes of fields and length prefixes around a point alone in its request — request, resource
/// with its two attributes, scope, metric — besides the names they hold: about 140, rounded up.
const WRAPPING: usize = 256;

pub struct OtlpSink {
    host: String,
    node_name: String,
    gatherer: Mutex<Gatherer>,
    forwarder: Arc<Forwarder>,
}

impl OtlpSink {
    /// `host` names the agent's host (`host.name`), `node_name` its Kubernetes node (empty when
    /// unknown); `host_tags` go on every point.
    pub fn new(host: String, node_name: String, host_tags: Vec<String>, forwarder: Arc<Forwarder>) -> OtlpSink {
        OtlpSink { host, node_name, gatherer: Mutex::new(Gatherer::new(host_tags, SystemTime::now())), forwarder }
    }
}

impl Sink for OtlpSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
        self.gatherer.lock().gather(batch);
        Box::pin(std::future::ready(()))
    }

    fn forget(&self, instance_id: &str) {
        self.gatherer.lock().forget(instance_id);
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        let points = std::mem::take(&mut self.gatherer.lock().points);
        let (host, node_name) = (self.host.clone(), self.node_name.clone());
        Box::pin(async move {
            if points.is_empty() {
                return;
            }
            // Encoding and compressing thousands of points is CPU work: not on the runtime's thread.
            let encoded = tokio::task::spawn_blocking(move || {
                payloads(&points, &AgentHost { name: &host, node_name: &node_name }, Endpoint::OtlpMetrics.limits())
            })
            .await;
            match encoded {
                Ok(payloads) => self.forwarder.submit(payloads).await,
                Err(e) => tracing::error!("encoding the OTLP payloads: {e}"),
            }
        })
    }
}

/// One data point as it goes out, with what places it in a request.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    /// The host a check named for the submission; `None`: the agent's.
    host: Option<String>,
    metric: String,
    shape: Shape,
    data_point: NumberDataPoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Shape {
    Gauge,
    DeltaSum { monotonic: bool },
}

impl Shape {
    fn of(kind: MetricKind, metric: &str) -> Shape {
        match kind {
            MetricKind::Gauge | MetricKind::Rate => Shape::Gauge,
            MetricKind::Count => Shape::DeltaSum { monotonic: false },
            MetricKind::MonotonicCount => Shape::DeltaSum { monotonic: true },
            MetricKind::Histogram if metric.ends_with(".count") => Shape::DeltaSum { monotonic: true },
            MetricKind::Histogram => Shape::Gauge,
        }
    }
}

/// Turns batches into points, remembering when each instance last ran.
struct Gatherer {
    host_tags: Vec<String>,
    /// Where the window of an instance's first delta points starts.
    started: SystemTime,
    /// Each instance's latest run: where the window of its next delta points starts.
    last_runs: HashMap<String, SystemTime>,
    points: Vec<Point>,
}

impl Gatherer {
    fn new(host_tags: Vec<String>, started: SystemTime) -> Gatherer {
        Gatherer { host_tags, started, last_runs: HashMap::new(), points: Vec::new() }
    }

    fn gather(&mut self, batch: &Batch) {
        let previous_run = self.last_runs.insert(batch.config.id.clone(), batch.at).unwrap_or(self.started);
        // A clock stepped back must not give a window that ends before it starts.
        let (start, time) = (unix_nanos(previous_run.min(batch.at)), unix_nanos(batch.at));
        let own = own_attributes(&batch.config.source);
        for series in &batch.flushed.series {
            let shape = Shape::of(series.kind, &series.name);
            let attributes = self.attributes(&own, &series.tags);
            let point = point(series.hostname.as_deref(), &series.name, shape, series.value, attributes, (start, time));
            self.points.push(point);
        }
        for check in &batch.flushed.service_checks {
            let (name, status) = (format!("{}.status", check.name), f64::from(check.status as u8));
            let attributes = self.attributes(&own, &check.tags);
            let point = point(check.hostname.as_deref(), &name, Shape::Gauge, status, attributes, (start, time));
            self.points.push(point);
        }
    }

    fn forget(&mut self, instance_id: &str) {
        self.last_runs.remove(instance_id);
    }

    /// The agent's own attributes, then the tags' and the host tags' by key.
    fn attributes(&self, own: &[(&str, &str)], tags: &[String]) -> Vec<KeyValue> {
        let mut by_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for tag in tags.iter().chain(&self.host_tags) {
            let (key, value) = match tag.split_once(':') {
                Some((key, value)) if !key.is_empty() => (key, value),
                _ => (tag.as_str(), ""),
            };
            if key.is_empty() || own.iter().any(|(own_key, _)| *own_key == key) {
                continue;
            }
            by_key.entry(key).or_default().insert(value);
        }
        let tags = by_key.into_iter().map(|(key, values)| string_attribute(key, &values.into_iter().collect::<Vec<_>>().join(",")));
        own.iter().map(|(key, value)| string_attribute(key, value)).chain(tags).collect()
    }
}

/// The container the instance checks, as OpenTelemetry's Kubernetes attributes.
fn own_attributes(source: &Source) -> Vec<(&'static str, &str)> {
    [("k8s.namespace.name", &source.namespace), ("k8s.pod.name", &source.pod), ("k8s.container.name", &source.container)]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key, value.as_str()))
        .collect()
}

/// `(start, time)`: the window of a delta sum; a gauge takes its time only.
fn point(host: Option<&str>, metric: &str, shape: Shape, value: f64, attributes: Vec<KeyValue>, (start, time): (u64, u64)) -> Point {
    let start_time_unix_nano = match shape {
        Shape::Gauge => 0,
        Shape::DeltaSum { .. } => start,
    };
    let data_point = NumberDataPoint {
        attributes,
        start_time_unix_nano,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    };
    Point { host: host.map(str::to_string), metric: metric.to_string(), shape, data_point }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    let value = AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) };
    KeyValue { key: key.to_string(), value: Some(value), ..KeyValue::default() }
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The agent's host, as its resource names it.
struct AgentHost<'a> {
    name: &'a str,
    /// Empty when unknown.
    node_name: &'a str,
}

impl AgentHost<'_> {
    /// The `host.name` of `point`'s resource.
    fn host<'p>(&'p self, point: &'p Point) -> &'p str {
        point.host.as_deref().unwrap_or(self.name)
    }
}

/// Packs `points` in order into requests whose encoding stays under `max_raw` (each point
/// counted with everything around it, an upper bound), gzips each, and halves any request
/// whose body is still over `max_compressed`. A point too large for any request is dropped
/// with an error: no collector would take it.
fn payloads(points: &[Point], agent: &AgentHost, (max_compressed, max_raw): (usize, usize)) -> Vec<Payload> {
    let mut ranges = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, point) in points.iter().enumerate() {
        let bound = size_bound(point, agent);
        if bound > max_raw {
            tracing::error!(metric = %point.metric, bytes = bound, "an OTLP data point is larger than a collector takes: dropped");
            if start < i {
                ranges.push(start..i);
            }
            (start, size) = (i + 1, 0);
            continue;
        }
        if size + bound > max_raw && start < i {
            ranges.push(start..i);
            (start, size) = (i, 0);
        }
        size += bound;
    }
    if start < points.len() {
        ranges.push(start..points.len());
    }
    // Taken from the end, halves included, so that requests go out in the order of their
    // points: a later point of a series never reaches the collector before an earlier one.
    ranges.reverse();
    let mut payloads = Vec::new();
    while let Some(range) = ranges.pop() {
        let body = gzip(&request(&points[range.clone()], agent).encode_to_vec());
        if body.len() > max_compressed && range.len() > 1 {
            let middle = range.start + range.len() / 2;
            ranges.push(middle..range.end);
            ranges.push(range.start..middle);
            continue;
        }
        if body.len() > max_compressed {
            let metric = &points[range.start].metric;
            tracing::error!(%metric, bytes = body.len(), "an OTLP data point compresses to more than a collector takes: dropped");
            continue;
        }
        payloads.push(Payload { endpoint: Endpoint::OtlpMetrics, body, items: range.len() });
    }
    payloads
}

/// What `point` adds at most to an encoded request: itself with a resource, scope and metric of
/// its own (points that share them take less).
fn size_bound(point: &Point, agent: &AgentHost) -> usize {
    let names = agent.host(point).len() + agent.node_name.len() + env!("CARGO_PKG_VERSION").len() + point.metric.len();
    point.data_point.encoded_len() + names + WRAPPING
}

/// One request for `points`: a resource per host, a metric per name and shape, each in the
/// order it first appears.
fn request(points: &[Point], agent: &AgentHost) -> ExportMetricsServiceRequest {
    type Group<'p> = (&'p str, Shape, Vec<NumberDataPoint>);
    let mut hosts: Vec<(&str, Vec<Group>)> = Vec::new();
    let mut host_index: HashMap<&str, usize> = HashMap::new();
    let mut group_index: HashMap<(&str, &str, Shape), usize> = HashMap::new();
    for point in points {
        let host = agent.host(point);
        let h = *host_index.entry(host).or_insert_with(|| {
            hosts.push((host, Vec::new()));
            hosts.len() - 1
        });
        let groups = &mut hosts[h].1;
        let g = *group_index.entry((host, &point.metric, point.shape)).or_insert_with(|| {
            groups.push((&point.metric, point.shape, Vec::new()));
            groups.len() - 1
        });
        groups[g].2.push(point.data_point.clone());
    }
    let resource_metrics = hosts
        .into_iter()
        .map(|(host, groups)| {
            let metrics = groups.into_iter().map(|(name, shape, data_points)| metric(name, shape, data_points)).collect();
            let mut attributes = vec![string_attribute("host.name", host)];
            if host == agent.name && !agent.node_name.is_empty() {
                attributes.push(string_attribute("k8s.node.name", agent.node_name));
            }
            let version = env!("CARGO_PKG_VERSION").into();
            let scope = InstrumentationScope { name: "adrt".into(), version, ..InstrumentationScope::default() };
            ResourceMetrics {
                resource: Some(Resource { attributes, ..Resource::default() }),
                scope_metrics: vec![ScopeMetrics { scope: Some(scope), metrics, ..ScopeMetrics::default() }],
                ..ResourceMetrics::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}

fn metric(name: &str, shape: Shape, data_points: Vec<NumberDataPoint>) -> Metric {
    let data = match shape {
        Shape::Gauge => metric::Data::Gauge(Gauge { data_points }),
        Shape::DeltaSum { monotonic } => metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: monotonic,
        }),
    };
    Metric { name: name.to_string(), data: Some(data), ..Metric::default() }
}

/// gzip at its fastest level: a collector takes any, and the node's CPU is the checks'.
fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::fast());
    encoder.write_all(raw).expect("compressing into memory cannot fail");
    encoder.finish().expect("compressing into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::aggregate::{Flushed, Series};
    use crate::exec::{ServiceCheck, Status};
    use crate::resolve::ResolvedConfig;

    const AGENT: AgentHost<'static> = AgentHost { name: "node-7", node_name: "node-1" };

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn series(name: &str, kind: MetricKind, value: f64, tags: &[&str]) -> Series {
        Series { name: name.into(), kind, value, tags: tags.iter().map(|t| t.to_string()).collect(), hostname: None }
    }

    fn batch(id: &str, source: Source, flushed: Flushed, when: SystemTime) -> Batch {
        let config = ResolvedConfig {
            id: id.into(),
            check: "nginx".into(),
            provider: "test".into(),
            source,
            init_config: Value::Null,
            instance: Value::Null,
            tags: Vec::new(),
            tolerate_unready: false,
            min_collection_interval: None,
            reach: Default::default(),
            provenance: Default::default(),
        };
        Batch { config: Arc::new(config), flushed, at: when }
    }

    fn pod_source() -> Source {
        Source { namespace: "sada4j".into(), pod: "web-1".into(), pod_uid: "u1".into(), container: "frontend".into() }
    }

    fn gunzip(payload: &Payload) -> Vec<u8> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&payload.body[..]).read_to_end(&mut raw).unwrap();
        raw
    }

    fn decode(payload: &Payload) -> ExportMetricsServiceRequest {
        assert_eq!(payload.endpoint, Endpoint::OtlpMetrics);
        ExportMetricsServiceRequest::decode(&gunzip(payload)[..]).unwrap()
    }

    /// `key=value` of string attributes.
    fn strings(attributes: &[KeyValue]) -> Vec<String> {
        attributes
            .iter()
            .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => format!("{}={s}", kv.key),
                other => panic!("{} is not a string: {other:?}", kv.key),
            })
            .collect()
    }

    /// Every metric in `request`, with its resource's attributes.
    fn metrics(request: &ExportMetricsServiceRequest) -> Vec<(Vec<String>, &Metric)> {
        let resources = request.resource_metrics.iter().map(|r| (strings(&r.resource.as_ref().unwrap().attributes), r));
        resources.flat_map(|(resource, r)| r.scope_metrics.iter().flat_map(|s| &s.metrics).map(move |m| (resource.clone(), m))).collect()
    }

    fn data_points(metric: &Metric) -> &[NumberDataPoint] {
        match &metric.data {
            Some(metric::Data::Gauge(gauge)) => &gauge.data_points,
            Some(metric::Data::Sum(sum)) => &sum.data_points,
            other => panic!("{}: {other:?}", metric.name),
        }
    }

    fn value(point: &NumberDataPoint) -> f64 {
        match point.value {
            Some(number_data_point::Value::AsDouble(value)) => value,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kinds_map_to_gauges_and_delta_sums_with_their_windows() {
        let mut gatherer = Gatherer::new(Vec::new(), at(1_000));
        let first = Flushed { series: vec![series("c", MetricKind::Count, 2.0, &[])], ..Flushed::default() };
        gatherer.gather(&batch("nginx:1", pod_source(), first, at(1_010)));
        let refused =
            ServiceCheck { name: "nginx.can_connect".into(), status: Status::Critical, tags: Vec::new(), hostname: None, message: None, timestamp: None };
        let second = Flushed {
            series: vec![
                series("nginx.net.connections", MetricKind::Gauge, 3.0, &[]),
                series("nginx.net.request_per_s", MetricKind::Rate, 0.5, &[]),
                series("c", MetricKind::Count, -1.0, &[]),
                series("m", MetricKind::MonotonicCount, 7.0, &[]),
                series("h.max", MetricKind::Histogram, 9.0, &[]),
                series("h.count", MetricKind::Histogram, 4.0, &[]),
            ],
            service_checks: vec![refused],
            ..Flushed::default()
        };
        gatherer.gather(&batch("nginx:1", pod_source(), second, at(1_025)));
        let payloads = payloads(&gatherer.points, &AGENT, Endpoint::OtlpMetrics.limits());
        assert_eq!((payloads.len(), payloads[0].items), (1, 8));
        let request = decode(&payloads[0]);
        assert_eq!(request.resource_metrics.len(), 1);
        assert_eq!(request.resource_metrics[0].scope_metrics[0].scope.as_ref().unwrap().name, "adrt");

        let seconds = |s: u64| s * 1_000_000_000;
        let mut seen = Vec::new();
        for (resource, metric) in metrics(&request) {
            assert_eq!(resource, ["host.name=node-7", "k8s.node.name=node-1"]);
            let shape = match &metric.data {
                Some(metric::Data::Sum(sum)) => {
                    assert_eq!(sum.aggregation_temporality, AggregationTemporality::Delta as i32);
                    if sum.is_monotonic { "monotonic delta sum" } else { "delta sum" }
                }
                _ => "gauge",
            };
            for point in data_points(metric) {
                seen.push((metric.name.as_str(), shape, value(point), point.start_time_unix_nano, point.time_unix_nano));
            }
        }
        let end = seconds(1_025);
        assert_eq!(
            seen,
            [
                // The instance's first run covers the time since the sink started; the next one
                // the time since that run.
                ("c", "delta sum", 2.0, seconds(1_000), seconds(1_010)),
                ("c", "delta sum", -1.0, seconds(1_010), end),
                ("nginx.net.connections", "gauge", 3.0, 0, end),
                ("nginx.net.request_per_s", "gauge", 0.5, 0, end),
                ("m", "monotonic delta sum", 7.0, seconds(1_010), end),
                ("h.max", "gauge", 9.0, 0, end),
                ("h.count", "monotonic delta sum", 4.0, seconds(1_010), end),
                ("nginx.can_connect.status", "gauge", 2.0, 0, end),
            ]
        );
    }

    #[test]
    fn points_carry_the_containers_attributes_and_the_tags_by_key() {
        let mut gatherer = Gatherer::new(vec!["team:web".into(), "env:test".into()], at(1_000));
        let mut remote = series("remote.up", MetricKind::Gauge, 1.0, &[]);
        remote.hostname = Some("db-3".into());
        let tags = ["role:b", "canary", "role:a", ":odd", "url:http://x:80", "k8s.pod.name:someone-else", "team:web"];
        let flushed = Flushed { series: vec![series("g", MetricKind::Gauge, 1.0, &tags), remote], ..Flushed::default() };
        gatherer.gather(&batch("nginx:1", pod_source(), flushed, at(1_010)));
        let named_by_the_check = series("s", MetricKind::Gauge, 1.0, &["k8s.pod.name:named-by-the-check"]);
        let from_conf_d = Flushed { series: vec![named_by_the_check], ..Flushed::default() };
        gatherer.gather(&batch("network:1", Source::default(), from_conf_d, at(1_010)));

        let request = decode(&payloads(&gatherer.points, &AGENT, Endpoint::OtlpMetrics.limits())[0]);
        let metrics = metrics(&request);
        let find = |name: &str| {
            let (resource, metric) = metrics.iter().find(|(_, m)| m.name == name).unwrap();
            (resource.clone(), strings(&data_points(metric)[0].attributes))
        };
        let (resource, attributes) = find("g");
        assert_eq!(resource, ["host.name=node-7", "k8s.node.name=node-1"]);
        assert_eq!(
            attributes,
            [
                "k8s.namespace.name=sada4j",
                "k8s.pod.name=web-1",
                "k8s.container.name=frontend",
                ":odd=",
                "canary=",
                "env=test",
                "role=a,b",
                "team=web",
                "url=http://x:80",
            ]
        );
        // The host a check named is a resource of its own, without this node's name.
        assert_eq!(find("remote.up").0, ["host.name=db-3"]);
        // Without a pod, there is no pod's identity to protect.
        assert_eq!(find("s").1, ["env=test", "k8s.pod.name=named-by-the-check", "team=web"]);
    }

    #[test]
    fn forget_drops_the_instances_last_run() {
        let mut gatherer = Gatherer::new(Vec::new(), at(1_000));
        gatherer.gather(&batch("i", pod_source(), Flushed::default(), at(1_010)));
        assert_eq!(gatherer.last_runs.get("i"), Some(&at(1_010)));
        gatherer.forget("i");
        assert!(gatherer.last_runs.is_empty());
    }

    #[test]
    fn a_large_flush_is_split_under_both_limits_in_order() {
        let mut gatherer = Gatherer::new(Vec::new(), at(1_000));
        // Tags that do not compress away, so that the compressed limit is tested too.
        let noise = |i: u64| format!("id:{:016x}", (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut load: Vec<Series> =
            (0..3_000).map(|i| series(&format!("load.m{}", i % 7), MetricKind::Gauge, i as f64, &[&noise(i)])).collect();
        let too_large = format!("big:{}", "x".repeat(40_000));
        load.insert(1_500, series("too.large", MetricKind::Gauge, -1.0, &[&too_large]));
        gatherer.gather(&batch("load:1", Source::default(), Flushed { series: load, ..Flushed::default() }, at(1_010)));

        let (max_compressed, max_raw) = (1_500, 30_000);
        let payloads = payloads(&gatherer.points, &AGENT, (max_compressed, max_raw));
        assert!(payloads.len() >= 8, "{} payloads", payloads.len());
        let mut previous_max = -1.0;
        let mut values = Vec::new();
        for payload in &payloads {
            assert!(payload.body.len() <= max_compressed && gunzip(payload).len() <= max_raw, "{} bytes", payload.body.len());
            let request = decode(payload);
            let mut in_request: Vec<f64> = metrics(&request).iter().flat_map(|(_, m)| data_points(m).iter().map(value)).collect();
            assert_eq!(in_request.len(), payload.items);
            in_request.sort_by(f64::total_cmp);
            assert!(in_request[0] > previous_max, "requests in the order of their points");
            previous_max = in_request[in_request.len() - 1];
            values.extend(in_request);
        }
        let expected: Vec<f64> = (0..3_000).map(f64::from).collect();
        assert_eq!(values, expected, "every point once; the one too large for any request dropped");
    }
}
