//! The bodies the Datadog intake takes, as the Datadog agent writes them for check results, and
//! their split under the intake's size limits. What was matched (Datadog agent `pkg/metrics`,
//! `pkg/aggregator/check_sampler.go`, `pkg/serializer`):
//!
//! - Series go to `POST /api/v2/series` in the public API's JSON (the agent itself sends the
//!   same fields as protobuf): `type` 3 (gauge) for gauges, rates (the per-second value) and
//!   histogram aggregates, 1 (count) for counts and monotonic counts (the delta), 2 (rate) for a
//!   histogram's `.count`; `interval` 0, as the check sampler leaves it; the host as a `host`
//!   resource; `source_type_name` "System"; one point stamped with the run's time.
//! - Service checks go to `POST /api/v1/check_run` (a JSON array), events to the agent's
//!   `POST /intake/` (events grouped by source type, as the agent sends them).
//! - Bodies are zstd-compressed (`Content-Encoding: zstd`, as the agent does by default) and
//!   split so that every series payload stays under 512,000 bytes compressed and 5,242,880
//!   uncompressed, every other under 2,621,440 and 4,194,304.

use serde::Serialize;
use serde_json::{Value, json};

use crate::exec::{Event, MetricKind, ServiceCheck};

/// Where a payload goes: a Datadog intake endpoint, or an OpenTelemetry collector's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Series,
    CheckRun,
    Intake,
    /// OTLP/HTTP: a protobuf `ExportMetricsServiceRequest` to `/v1/metrics`.
    OtlpMetrics,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Series => "/api/v2/series",
            Endpoint::CheckRun => "/api/v1/check_run",
            Endpoint::Intake => "/intake/",
            Endpoint::OtlpMetrics => "/v1/metrics",
        }
    }

    /// (compressed, uncompressed) bytes one payload may have.
    pub fn limits(self) -> (usize, usize) {
        match self {
            Endpoint::Series => (512_000, 5_242_880),
            Endpoint::CheckRun | Endpoint::Intake => (2_621_440, 4_194_304),
            // A collector's default receive limit (otlphttp `max_request_body_size`) is 20 MiB.
            Endpoint::OtlpMetrics => (4 << 20, 20 << 20),
        }
    }

    /// `Content-Type` and `Content-Encoding` of its bodies.
    pub fn content(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::Series | Endpoint::CheckRun | Endpoint::Intake => ("application/json", "zstd"),
            Endpoint::OtlpMetrics => ("application/x-protobuf", "gzip"),
        }
    }
}

/// One compressed body, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub endpoint: Endpoint,
    pub body: Vec<u8>,
    /// Points (series), service checks or events in it.
    pub items: usize,
}

/// One value of one series, as it goes out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    pub metric: &'a str,
    pub kind: MetricKind,
    pub value: f64,
    /// Seconds since the epoch: when the run ended.
    pub timestamp: i64,
    pub tags: &'a [&'a str],
    pub host: &'a str,
}

/// The v2 `type`: 1 count, 2 rate, 3 gauge (Datadog's `APICountType`/`APIRateType`/`APIGaugeType`).
fn api_type(kind: MetricKind, metric: &str) -> u8 {
    match kind {
        MetricKind::Count | MetricKind::MonotonicCount => 1,
        MetricKind::Histogram if metric.ends_with(".count") => 2,
        MetricKind::Gauge | MetricKind::Rate | MetricKind::Histogram => 3,
    }
}

/// A series entry of the v2 body, serialized straight from borrowed fields: no `Value` tree.
#[derive(Serialize)]
struct SeriesEntry<'a> {
    metric: &'a str,
    #[serde(rename = "type")]
    kind: u8,
    points: [TimedValue; 1],
    tags: &'a [&'a str],
    /// The host, or none for a series sent without one (`empty_default_hostname`).
    resources: &'a [HostResource<'a>],
    interval: u8,
    source_type_name: &'static str,
}

#[derive(Serialize)]
struct TimedValue {
    timestamp: i64,
    value: f64,
}

#[derive(Serialize)]
struct HostResource<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The JSON of one point's series entry. Made when the run's results arrive, so that what waits
/// for a flush is compact and a flush only packs and compresses.
pub fn series_entry(point: Point<'_>) -> Vec<u8> {
    let entry = SeriesEntry {
        metric: point.metric,
        kind: api_type(point.kind, point.metric),
        points: [TimedValue { timestamp: point.timestamp, value: point.value }],
        tags: point.tags,
        resources: if point.host.is_empty() { &[] } else { &[HostResource { name: point.host, kind: "host" }] },
        interval: 0,
        source_type_name: "System",
    };
    let mut json = serde_json::to_vec(&entry).expect("plain data serializes");
    json.shrink_to_fit();
    json
}

/// Series payloads for entries made by [`series_entry`].
pub fn series(entries: &[Vec<u8>]) -> Vec<Payload> {
    split(Endpoint::Series, entries, |items| wrap(br#"{"series":["#, items, b"]}"))
}

/// A service check as the agent's `/api/v1/check_run` takes it.
pub fn check_run_payloads(checks: &[(ServiceCheck, i64, String)]) -> Vec<Payload> {
    let entries: Vec<Vec<u8>> = checks
        .iter()
        .map(|(check, timestamp, host)| {
            json!({
                "check": check.name,
                "host_name": check.hostname.as_deref().unwrap_or(host),
                "timestamp": check.timestamp.map_or(*timestamp, |t| t as i64),
                "status": check.status as u8,
                "message": check.message.as_deref().unwrap_or(""),
                "tags": check.tags,
            })
            .to_string()
            .into_bytes()
        })
        .collect();
    split(Endpoint::CheckRun, &entries, |items| wrap(b"[", items, b"]"))
}

/// Events as the agent's `/intake/` takes them: grouped by source type name.
pub fn intake_payloads(events: &[(Event, i64, String)], host: &str) -> Vec<Payload> {
    // Each entry carries its group so that a split keeps every event under its source type.
    let entries: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|(event, timestamp, event_host)| {
            let mut item = json!({
                "msg_title": event.title,
                "msg_text": event.text,
                "timestamp": event.timestamp.map_or(*timestamp, |t| t as i64),
                "host": event.hostname.as_deref().unwrap_or(event_host),
                "tags": event.tags,
                "alert_type": event.alert_type,
            });
            if let Some(priority) = event.priority {
                item["priority"] = json!(priority);
            }
            if let Some(key) = &event.aggregation_key {
                item["aggregation_key"] = json!(key);
            }
            if let Some(source) = &event.source_type_name {
                item["source_type_name"] = json!(source);
            }
            (event.source_type_name.clone().unwrap_or_else(|| "api".into()), item.to_string().into_bytes())
        })
        .collect();
    let bodies: Vec<Vec<u8>> = entries.iter().map(|(_, body)| body.clone()).collect();
    let groups: Vec<&str> = entries.iter().map(|(group, _)| group.as_str()).collect();
    let host = host.to_string();
    split_indexed(Endpoint::Intake, &bodies, |range| {
        let mut by_source: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
        for i in range {
            let item: Value = serde_json::from_slice(&bodies[i]).expect("made above");
            by_source.entry(groups[i]).or_default().push(item);
        }
        json!({"apiKey": "", "events": by_source, "internalHostname": host}).to_string().into_bytes()
    })
}

/// `prefix item,item,... suffix`.
fn wrap(prefix: &[u8], items: &[&[u8]], suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + suffix.len() + items.iter().map(|i| i.len() + 1).sum::<usize>());
    out.extend_from_slice(prefix);
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(suffix);
    out
}

fn split(endpoint: Endpoint, entries: &[Vec<u8>], body: impl Fn(&[&[u8]]) -> Vec<u8>) -> Vec<Payload> {
    split_indexed(endpoint, entries, |range| {
        let items: Vec<&[u8]> = entries[range].iter().map(Vec::as_slice).collect();
        body(&items)
    })
}

/// Packs `entries` in order into bodies under the endpoint's uncompressed limit, compresses
/// each, and halves any whose compressed size is still over the compressed limit. An entry too
/// large for any payload on its own is dropped with an error (no intake would take it).
fn split_indexed(endpoint: Endpoint, entries: &[Vec<u8>], body: impl Fn(std::ops::Range<usize>) -> Vec<u8>) -> Vec<Payload> {
    let (max_compressed, max_raw) = endpoint.limits();
    // The envelope (`{"series":[`, the intake's wrapper) is small; this leaves room for it.
    let budget = max_raw - 1024;
    let mut ranges = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, entry) in entries.iter().enumerate() {
        if entry.len() + 1 > budget {
            tracing::error!(bytes = entry.len(), "a {endpoint:?} item is larger than any payload the intake takes: dropped");
            if start < i {
                ranges.push(start..i);
            }
            (start, size) = (i + 1, 0);
            continue;
        }
        if size + entry.len() + 1 > budget && start < i {
            ranges.push(start..i);
            (start, size) = (i, 0);
        }
        size += entry.len() + 1;
    }
    if start < entries.len() {
        ranges.push(start..entries.len());
    }
    let mut payloads = Vec::new();
    while let Some(range) = ranges.pop() {
        let raw = body(range.clone());
        let compressed = compress(&raw);
        if compressed.len() > max_compressed && range.len() > 1 {
            let middle = range.start + range.len() / 2;
            ranges.push(middle..range.end);
            ranges.push(range.start..middle);
            continue;
        }
        if compressed.len() > max_compressed {
            tracing::error!(bytes = compressed.len(), "a {endpoint:?} item compresses to more than the intake takes: dropped");
            continue;
        }
        payloads.push(Payload { endpoint, body: compressed, items: range.len() });
    }
    payloads
}

/// zstd at level 1, as the Datadog agent compresses.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, 1).expect("compressing into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(metric: &str, kind: MetricKind, tags: Vec<String>) -> Vec<u8> {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        series_entry(Point { metric, kind, value: 1.5, timestamp: 1_700_000_000, tags: &tags, host: "node-1" })
    }

    fn decode(payload: &Payload) -> Value {
        serde_json::from_slice(&zstd::decode_all(&payload.body[..]).unwrap()).unwrap()
    }

    #[test]
    fn series_carry_datadogs_types_interval_and_host() {
        let points = [
            point("nginx.net.connections", MetricKind::Gauge, vec!["pod_name:web-1".into()]),
            point("nginx.net.request_per_s", MetricKind::Rate, vec![]),
            point("nginx.requests", MetricKind::MonotonicCount, vec![]),
            point("h.count", MetricKind::Histogram, vec![]),
            point("h.max", MetricKind::Histogram, vec![]),
        ];
        let payloads = series(&points);
        assert_eq!(payloads.len(), 1);
        let body = decode(&payloads[0]);
        let types: Vec<u64> = body["series"].as_array().unwrap().iter().map(|s| s["type"].as_u64().unwrap()).collect();
        assert_eq!(types, [3, 3, 1, 2, 3]);
        let first = &body["series"][0];
        assert_eq!(first["points"], json!([{"timestamp": 1_700_000_000, "value": 1.5}]));
        assert_eq!(first["resources"], json!([{"name": "node-1", "type": "host"}]));
        assert_eq!((first["interval"].as_u64(), first["tags"][0].as_str()), (Some(0), Some("pod_name:web-1")));
    }

    #[test]
    fn a_large_flush_is_split_under_both_limits() {
        // ~12 MB of JSON that compresses well, and tags that do not (random-ish) to test both limits.
        let points: Vec<Vec<u8>> = (0..40_000)
            .map(|i| {
                let noise: Vec<String> = (0..4).map(|j| format!("t{j}:{:x}", (i as u64 * 2_654_435_761 + j) % 1_000_003)).collect();
                point(&format!("metric.number_{}", i % 300), MetricKind::Gauge, noise.into_iter().chain(["a".repeat(200)]).collect())
            })
            .collect();
        let payloads = series(&points);
        assert!(payloads.len() >= 3, "{} payloads", payloads.len());
        let mut seen = 0;
        for payload in &payloads {
            let raw = zstd::decode_all(&payload.body[..]).unwrap();
            assert!(payload.body.len() <= 512_000 && raw.len() <= 5_242_880, "{} / {}", payload.body.len(), raw.len());
            seen += decode(payload)["series"].as_array().unwrap().len();
        }
        assert_eq!(seen, points.len(), "every point in exactly one payload");
    }

    #[test]
    fn service_checks_and_events_have_the_agents_shape() {
        let check = ServiceCheck {
            name: "nginx.can_connect".into(),
            status: crate::exec::Status::Critical,
            tags: vec!["a:b".into()],
            hostname: None,
            message: Some("refused".into()),
            timestamp: None,
        };
        let body = decode(&check_run_payloads(&[(check, 42, "node-1".into())])[0]);
        assert_eq!(body, json!([{"check": "nginx.can_connect", "host_name": "node-1", "timestamp": 42, "status": 2, "message": "refused", "tags": ["a:b"]}]));
        let event = Event {
            title: "t".into(),
            text: "x".into(),
            alert_type: "info",
            priority: None,
            hostname: None,
            tags: Vec::new(),
            aggregation_key: None,
            source_type_name: Some("nginx".into()),
            timestamp: None,
        };
        let body = decode(&intake_payloads(&[(event, 42, "node-1".into())], "node-1")[0]);
        assert_eq!(body["events"]["nginx"][0]["msg_title"], "t");
        assert_eq!(body["internalHostname"], "node-1");
    }
}
