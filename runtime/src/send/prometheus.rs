//! The Prometheus sink: keeps the latest value of every series and renders them, on a scrape
//! of `GET /metrics` (`--metrics-addr`), in the Prometheus text format (0.0.4), or in
//! OpenMetrics text (1.0.0) when the scraper's `Accept` asks for `application/openmetrics-text`.
//! No timestamps: a sample is the value at the scrape, and Prometheus marks a series stale
//! when it leaves the page.
//!
//! How Datadog's vocabulary maps:
//! - **Names**: every character outside `[A-Za-z0-9_]` becomes `_` (`nginx.net.connections` →
//!   `nginx_net_connections`), and `_` is put before a leading digit. Datadog's per-second
//!   suffix is spelled out, as Prometheus' naming rules ask: `nginx.net.request_per_s` →
//!   `nginx_net_request_per_second`. Other names stay as Datadog spells them, so that they can be
//!   looked up, even where `promtool check metrics` would advise otherwise (a gauge ending in
//!   `_count`, as `system.net.packets_in.count`). `# HELP` names the Datadog metric and type.
//! - **Counters**: a `count` or `monotonic_count` series carries a delta per run; here each
//!   delta is added to a counter that starts when the series first appears (the first delta is
//!   its first value), named `<name>_total` (a name already ending in `_total` keeps one).
//!   A delta that is negative or not finite cannot go into a counter: it is refused.
//! - **Gauges**: `gauge`, `rate` (per second) and the `histogram` aggregates (`.max`, `.avg`,
//!   ...) are gauges holding the latest value.
//! - **Service checks**: a gauge `<name>_status` (`nginx.can_connect` →
//!   `nginx_can_connect_status`): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The message is not
//!   exposed.
//! - **Labels**: a `key:value` tag is the label `key="value"`, its name sanitized as a metric
//!   name's, with `tag_` before a leading digit or `__` (reserved by Prometheus); several values
//!   of one key (or keys that sanitize alike) are joined by `,`, sorted. A tag without `:` (or
//!   with nothing before it) is the label `tag_<tag>="true"`. The agent's host tags
//!   (`--tags`, `--env`, `--cluster-name`) are added to every series. Every series also has
//!   `adrt_instance_id` (the check instance, as `adrt info` shows its ID), so that two
//!   instances of one check never share a series, and `host` when the check named a host. A tag
//!   named like one of these two becomes `exported_<name>`, as Prometheus renames clashing
//!   labels. A tag with an empty value is left out (Prometheus reads an empty label as none).
//!   In label values, `\` is written `\\`, `"` is `\"` and a newline `\n`.
//! - **Conflicts**: a mapping that folds two Datadog series into one name and label set (two
//!   names that sanitize alike, one name sent with two Datadog types, tags that differ only in
//!   what sanitizing, joining or leaving out empty values erased) would have one overwrite the
//!   other. The series that comes second is refused instead.
//! - **Lifetime**: a series keeps its latest value until its check instance is no longer
//!   scheduled ([`Sink::forget`]); then all of the instance's series go.
//! - **Bounds**: at most [`MAX_SERIES`] series; past it, new series are refused while those
//!   kept go on updating.
//!
//! Every refusal is counted in `adrt_prometheus_refused_total{reason="conflict|invalid|limit"}`
//! and logged once per reason; `adrt_prometheus_series` is the number of series kept.
//!
//! The text is written here, not with the `prometheus-client` crate: its registry wants metric
//! names known when a metric is registered and cannot drop one, where these names and label
//! sets come from checks at run time and go when an instance goes; it writes OpenMetrics only;
//! and it writes label values as given, where tags must be escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::aggregate::Series;
use crate::exec::submission::{MetricKind, ServiceCheck, Status};
use crate::send::{Batch, Sink};
use crate::text::printable;

/// Series kept at most.
pub const MAX_SERIES: usize = 100_000;

/// Labels the agent sets itself; a tag of the same name is renamed `exported_<name>`.
const INSTANCE_LABEL: &str = "adrt_instance_id";
const HOST_LABEL: &str = "host";

/// Families of the sink's own; checks' metrics with this prefix are refused.
const OWN_PREFIX: &str = "adrt_prometheus_";

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub struct PrometheusSink {
    host_tags: Vec<String>,
    max_series: usize,
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// By family name: for a counter, the name without `_total` (as OpenMetrics names it).
    families: BTreeMap<String, Family>,
    series: usize,
    refused: Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricType {
    Counter,
    Gauge,
}

struct Family {
    metric_type: MetricType,
    /// Unescaped. It names the Datadog source, so two sources folded into one name differ here.
    help: String,
    /// By the rendered label set, `{a="x",b="y"}`.
    samples: BTreeMap<String, Sample>,
}

struct Sample {
    value: f64,
    instance: Arc<str>,
    /// A hash of the Datadog series (instance, name, type, tag set, host): another series
    /// that maps to the same labels has another origin (two would have to agree on all 64
    /// bits, besides their labels, to be mixed).
    origin: u64,
}

/// One value of a batch, mapped.
struct Point {
    family: String,
    metric_type: MetricType,
    help: String,
    labels: String,
    origin: u64,
    value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// It would overwrite or be mixed with another series.
    Conflict,
    /// A counter delta that is negative or not finite.
    Invalid,
    /// A new series past [`MAX_SERIES`].
    Limit,
}

impl Refusal {
    const ALL: [Refusal; 3] = [Refusal::Conflict, Refusal::Invalid, Refusal::Limit];

    fn reason(self) -> &'static str {
        match self {
            Refusal::Conflict => "conflict",
            Refusal::Invalid => "invalid",
            Refusal::Limit => "limit",
        }
    }
}

#[derive(Default)]
struct Refused([u64; 3]);

impl Refused {
    /// Counts a refusal; true for the first of its reason.
    fn count(&mut self, refusal: Refusal) -> bool {
        let count = &mut self.0[refusal as usize];
        *count += 1;
        *count == 1
    }

    fn get(&self, refusal: Refusal) -> u64 {
        self.0[refusal as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Prometheus,
    OpenMetrics,
}

impl PrometheusSink {
    /// `host_tags` are added to every series.
    pub fn new(host_tags: Vec<String>) -> PrometheusSink {
        PrometheusSink::with_max_series(host_tags, MAX_SERIES)
    }

    fn with_max_series(host_tags: Vec<String>, max_series: usize) -> PrometheusSink {
        PrometheusSink { host_tags, max_series, store: Mutex::default() }
    }

    /// The page for a scraper whose `Accept` header is `accept`: its content type and body.
    pub fn render(&self, accept: &str) -> (&'static str, String) {
        let format = if wants_openmetrics(accept) { Format::OpenMetrics } else { Format::Prometheus };
        let store = self.store.lock();
        let mut out = String::with_capacity(store.series * 128 + 1024);
        for (name, family) in &store.families {
            let samples = family.samples.iter().map(|(labels, sample)| (labels.as_str(), sample.value));
            write_family(&mut out, format, name, family.metric_type, &family.help, samples);
        }
        let help = format!("Series exposed here, at most {}.", self.max_series);
        write_family(&mut out, format, &format!("{OWN_PREFIX}series"), MetricType::Gauge, &help, [("", store.series as f64)]);
        let refused: Vec<(String, f64)> =
            Refusal::ALL.iter().map(|&r| (format!("{{reason=\"{}\"}}", r.reason()), store.refused.get(r) as f64)).collect();
        let help = "Values not exposed: clashing with another series (conflict), a counter delta that is negative or not \
                    finite (invalid), a new series past the limit (limit).";
        let samples = refused.iter().map(|(labels, value)| (labels.as_str(), *value));
        write_family(&mut out, format, &format!("{OWN_PREFIX}refused"), MetricType::Counter, help, samples);
        drop(store);
        match format {
            Format::Prometheus => (PROMETHEUS_TEXT, out),
            Format::OpenMetrics => {
                out.push_str("# EOF\n");
                (OPENMETRICS_TEXT, out)
            }
        }
    }

    fn series_point(&self, instance: &str, series: &Series) -> Point {
        let name = metric_name(&series.name);
        let (family, metric_type, what) = match series.kind {
            MetricKind::Count | MetricKind::MonotonicCount => {
                let base = name.strip_suffix("_total").filter(|base| !base.is_empty()).map(str::to_string);
                (base.unwrap_or(name), MetricType::Counter, "its deltas summed")
            }
            MetricKind::Rate => (name, MetricType::Gauge, "the latest rate, per second"),
            MetricKind::Gauge | MetricKind::Histogram => (name, MetricType::Gauge, "the latest value"),
        };
        let help = format!("{} (Datadog {}: {what})", series.name, series.kind.as_str());
        let (labels, origin) = self.labels_and_origin(instance, &help, &series.tags, series.hostname.as_deref());
        Point { family, metric_type, help, labels, origin, value: series.value }
    }

    fn service_check_point(&self, instance: &str, check: &ServiceCheck) -> Point {
        let help = format!("{} (Datadog service check): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", check.name);
        let (labels, origin) = self.labels_and_origin(instance, &help, &check.tags, check.hostname.as_deref());
        let value = match check.status {
            Status::Ok => 0.0,
            Status::Warning => 1.0,
            Status::Critical => 2.0,
            Status::Unknown => 3.0,
        };
        Point { family: format!("{}_status", metric_name(&check.name)), metric_type: MetricType::Gauge, help, labels, origin, value }
    }

    /// The rendered labels of a value and the hash of its Datadog identity (`help` names the
    /// metric and its type).
    fn labels_and_origin(&self, instance: &str, help: &str, tags: &[String], hostname: Option<&str>) -> (String, u64) {
        let tags: BTreeSet<&str> = tags.iter().chain(&self.host_tags).map(String::as_str).filter(|t| !t.is_empty()).collect();
        let mut hasher = DefaultHasher::new();
        (instance, help, &tags, hostname).hash(&mut hasher);
        (labels(instance, hostname, &tags), hasher.finish())
    }
}

impl Store {
    fn record(&mut self, point: &Point, instance: &Arc<str>, max_series: usize) -> Result<(), Refusal> {
        if point.metric_type == MetricType::Counter && !(point.value >= 0.0 && point.value.is_finite()) {
            return Err(Refusal::Invalid);
        }
        let full = self.series >= max_series;
        if !self.families.contains_key(&point.family) {
            if self.clashes(&point.family, point.metric_type) {
                return Err(Refusal::Conflict);
            }
            if full {
                return Err(Refusal::Limit);
            }
            let family = Family { metric_type: point.metric_type, help: point.help.clone(), samples: BTreeMap::new() };
            self.families.insert(point.family.clone(), family);
        }
        let family = self.families.get_mut(&point.family).expect("present or just added");
        if family.metric_type != point.metric_type || family.help != point.help {
            return Err(Refusal::Conflict);
        }
        match family.samples.get_mut(&point.labels) {
            Some(sample) if sample.origin != point.origin => return Err(Refusal::Conflict),
            Some(sample) => match point.metric_type {
                MetricType::Counter => sample.value += point.value,
                MetricType::Gauge => sample.value = point.value,
            },
            None if full => return Err(Refusal::Limit),
            None => {
                let sample = Sample { value: point.value, instance: instance.clone(), origin: point.origin };
                family.samples.insert(point.labels.clone(), sample);
                self.series += 1;
            }
        }
        Ok(())
    }

    /// Whether a new family would expose a sample name that another family exposes: a gauge
    /// `x_total` and a counter `x` both write `x_total`. The sink's own names are taken too.
    fn clashes(&self, family: &str, metric_type: MetricType) -> bool {
        let other = match metric_type {
            MetricType::Gauge => family.strip_suffix("_total").and_then(|base| self.families.get(base)),
            MetricType::Counter => self.families.get(&format!("{family}_total")),
        };
        family.starts_with(OWN_PREFIX) || other.is_some_and(|other| other.metric_type != metric_type)
    }
}

impl Sink for PrometheusSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
        let id = batch.config.id.as_str();
        let flushed = &batch.flushed;
        // Mapped before the lock is taken, so that a scrape waits for the store only.
        let points: Vec<Point> = flushed
            .series
            .iter()
            .map(|series| self.series_point(id, series))
            .chain(flushed.service_checks.iter().map(|check| self.service_check_point(id, check)))
            .collect();
        let instance: Arc<str> = Arc::from(id);
        let mut store = self.store.lock();
        for point in &points {
            if let Err(refusal) = store.record(point, &instance, self.max_series)
                && store.refused.count(refusal)
            {
                tracing::warn!(
                    instance = %id,
                    metric = %printable(&point.family),
                    "Prometheus exposition: a value was refused ({}); from now on such refusals are counted in \
                     {OWN_PREFIX}refused_total, not logged",
                    refusal.reason()
                );
            }
        }
        Box::pin(std::future::ready(()))
    }

    fn forget(&self, instance_id: &str) {
        let mut store = self.store.lock();
        let mut kept = 0;
        store.families.retain(|_, family| {
            family.samples.retain(|_, sample| &*sample.instance != instance_id);
            kept += family.samples.len();
            !family.samples.is_empty()
        });
        store.series = kept;
    }
}

/// One family: `name` is the OpenMetrics family name (a counter's without `_total`), `samples`
/// are rendered label sets with their values.
fn write_family<'a>(
    out: &mut String,
    format: Format,
    name: &str,
    metric_type: MetricType,
    help: &str,
    samples: impl IntoIterator<Item = (&'a str, f64)>,
) {
    let sample_name = match metric_type {
        MetricType::Counter => format!("{name}_total"),
        MetricType::Gauge => name.to_string(),
    };
    // The text format names a counter's family by its sample name; OpenMetrics without `_total`.
    let family_name = match format {
        Format::Prometheus => &sample_name,
        Format::OpenMetrics => name,
    };
    let type_name = match metric_type {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {family_name} {}", escape_help(help, format));
    let _ = writeln!(out, "# TYPE {family_name} {type_name}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{sample_name}{labels} {}", number(value));
    }
}

/// A float as both formats spell it: `NaN`, `+Inf`, `-Inf`, else the shortest digits that read
/// back the same, in exponent form when very large or small (`1e300`, not 301 digits).
fn number(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        v if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) => format!("{v:e}"),
        v => format!("{v}"),
    }
}

/// `Accept` names OpenMetrics text (with a non-zero `q`).
fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let openmetrics = parts.next().is_some_and(|media| media.eq_ignore_ascii_case("application/openmetrics-text"));
        let refused = parts.any(|param| {
            param.split_once('=').is_some_and(|(key, value)| key.trim() == "q" && value.trim().parse::<f64>().is_ok_and(|q| q <= 0.0))
        });
        openmetrics && !refused
    })
}

/// `[A-Za-z0-9_]` kept, anything else `_`.
fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// A Datadog metric or service check name as a Prometheus metric name.
fn metric_name(name: &str) -> String {
    let sanitized = sanitize(name);
    let mut out = String::with_capacity(sanitized.len() + 8);
    if sanitized.is_empty() || sanitized.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    // Prometheus names units in full (`promtool check metrics` flags `_s`): Datadog's
    // `..._per_s` rates become `..._per_second`.
    let mut previous = "";
    for (i, segment) in sanitized.split('_').enumerate() {
        if i > 0 {
            out.push('_');
        }
        out.push_str(if segment == "s" && previous == "per" { "second" } else { segment });
        previous = segment;
    }
    out
}

/// A tag key as a label name.
fn label_name(key: &str) -> String {
    let name = sanitize(key);
    let name = if name.starts_with(|c: char| c.is_ascii_digit()) || name.starts_with("__") { format!("tag_{name}") } else { name };
    if name == INSTANCE_LABEL || name == HOST_LABEL { format!("exported_{name}") } else { name }
}

/// The rendered label set of a series: its tags, then the agent's labels, sorted by name.
fn labels(instance: &str, hostname: Option<&str>, tags: &BTreeSet<&str>) -> String {
    let mut values: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for tag in tags {
        let (name, value) = match tag.split_once(':') {
            Some((key, value)) if !key.is_empty() => (label_name(key), value),
            _ => (format!("tag_{}", sanitize(tag)), "true"),
        };
        // Prometheus reads an empty label as no label: written, it would only look distinct.
        if !value.is_empty() {
            values.entry(name).or_default().insert(value);
        }
    }
    let mut labels: BTreeMap<String, String> =
        values.into_iter().map(|(name, values)| (name, values.into_iter().collect::<Vec<_>>().join(","))).collect();
    labels.insert(INSTANCE_LABEL.into(), instance.into());
    if let Some(host) = hostname.filter(|host| !host.is_empty()) {
        labels.insert(HOST_LABEL.into(), host.into());
    }
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
    }
    out.push('}');
    out
}

fn escape_label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `\` and newlines; OpenMetrics escapes `"` too.
fn escape_help(help: &str, format: Format) -> String {
    let escaped = help.replace('\\', "\\\\").replace('\n', "\\n");
    match format {
        Format::Prometheus => escaped,
        Format::OpenMetrics => escaped.replace('"', "\\\""),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use serde_json::Value;

    use super::*;
    use crate::aggregate::Flushed;
    use crate::resolve::{ResolvedConfig, Source};

    fn series(name: &str, kind: MetricKind, value: f64, tags: &[&str]) -> Series {
        Series { name: name.into(), kind, value, tags: tags.iter().map(|t| t.to_string()).collect(), hostname: None }
    }

    fn service_check(name: &str, status: Status, tags: &[&str]) -> ServiceCheck {
        ServiceCheck { name: name.into(), status, tags: tags.iter().map(|t| t.to_string()).collect(), hostname: None, message: None, timestamp: None }
    }

    fn batch(instance: &str, series: Vec<Series>, service_checks: Vec<ServiceCheck>) -> Batch {
        let config = ResolvedConfig {
            id: instance.into(),
            check: "nginx".into(),
            provider: "test".into(),
            source: Source::default(),
            init_config: Value::Null,
            instance: Value::Null,
            tags: Vec::new(),
            tolerate_unready: false,
            min_collection_interval: None,
            reach: Default::default(),
            provenance: Default::default(),
        };
        Batch { config: Arc::new(config), flushed: Flushed { series, service_checks, events: Vec::new() }, at: SystemTime::now() }
    }

    fn send(sink: &PrometheusSink, batch: Batch) {
        futures::executor::block_on(sink.send(&batch));
    }

    fn text(sink: &PrometheusSink) -> String {
        let (content_type, body) = sink.render("");
        assert_eq!(content_type, PROMETHEUS_TEXT);
        body
    }

    /// The sample lines of the checks' series (not the sink's own), in order.
    fn samples(sink: &PrometheusSink) -> Vec<String> {
        text(sink).lines().filter(|l| !l.starts_with('#') && !l.starts_with(OWN_PREFIX)).map(str::to_string).collect()
    }

    fn refused(sink: &PrometheusSink, refusal: Refusal) -> u64 {
        sink.store.lock().refused.get(refusal)
    }

    #[test]
    fn gauges_rates_counters_and_service_checks_in_the_text_format() {
        let sink = PrometheusSink::new(vec!["env:prod".into()]);
        let tags = ["kube_namespace:sada4j", "port:80"];
        send(
            &sink,
            batch(
                "nginx:1",
                vec![
                    series("nginx.net.connections", MetricKind::Gauge, 3.0, &tags),
                    series("nginx.net.request_per_s", MetricKind::Rate, 2.5, &tags),
                    series("system.net.tcp.in_segs.count", MetricKind::MonotonicCount, 10.0, &[]),
                ],
                vec![service_check("nginx.can_connect", Status::Critical, &["port:80"])],
            ),
        );
        let expected = r#"# HELP nginx_can_connect_status nginx.can_connect (Datadog service check): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
# TYPE nginx_can_connect_status gauge
nginx_can_connect_status{adrt_instance_id="nginx:1",env="prod",port="80"} 2
# HELP nginx_net_connections nginx.net.connections (Datadog gauge: the latest value)
# TYPE nginx_net_connections gauge
nginx_net_connections{adrt_instance_id="nginx:1",env="prod",kube_namespace="sada4j",port="80"} 3
# HELP nginx_net_request_per_second nginx.net.request_per_s (Datadog rate: the latest rate, per second)
# TYPE nginx_net_request_per_second gauge
nginx_net_request_per_second{adrt_instance_id="nginx:1",env="prod",kube_namespace="sada4j",port="80"} 2.5
# HELP system_net_tcp_in_segs_count_total system.net.tcp.in_segs.count (Datadog monotonic_count: its deltas summed)
# TYPE system_net_tcp_in_segs_count_total counter
system_net_tcp_in_segs_count_total{adrt_instance_id="nginx:1",env="prod"} 10
# HELP adrt_prometheus_series Series exposed here, at most 100000.
# TYPE adrt_prometheus_series gauge
adrt_prometheus_series 4
# HELP adrt_prometheus_refused_total Values not exposed: clashing with another series (conflict), a counter delta that is negative or not finite (invalid), a new series past the limit (limit).
# TYPE adrt_prometheus_refused_total counter
adrt_prometheus_refused_total{reason="conflict"} 0
adrt_prometheus_refused_total{reason="invalid"} 0
adrt_prometheus_refused_total{reason="limit"} 0
"#;
        assert_eq!(text(&sink), expected);
    }

    #[test]
    fn openmetrics_when_the_scraper_asks_for_it() {
        let sink = PrometheusSink::new(Vec::new());
        send(&sink, batch("i", vec![series("requests", MetricKind::Count, 4.0, &[]), series("up", MetricKind::Gauge, 1.0, &[])], vec![]));
        // Prometheus' own Accept header.
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let (content_type, body) = sink.render(accept);
        assert_eq!(content_type, OPENMETRICS_TEXT);
        assert!(body.ends_with("adrt_prometheus_refused_total{reason=\"limit\"} 0\n# EOF\n"), "{body}");
        // A counter's family is named without `_total`, its sample with.
        assert!(body.contains("# TYPE requests counter\nrequests_total{adrt_instance_id=\"i\"} 4\n"), "{body}");
        assert!(body.contains("# TYPE up gauge\nup{adrt_instance_id=\"i\"} 1\n"), "{body}");
        assert_eq!(body.matches("# EOF").count(), 1);

        let (content_type, body) = sink.render("text/plain;version=0.0.4");
        assert_eq!(content_type, PROMETHEUS_TEXT);
        assert!(body.contains("# TYPE requests_total counter\nrequests_total{adrt_instance_id=\"i\"} 4\n"), "{body}");
        assert!(!body.contains("# EOF"), "{body}");
        assert_eq!(sink.render("application/openmetrics-text; q=0, text/plain").0, PROMETHEUS_TEXT);
        assert_eq!(sink.render("*/*").0, PROMETHEUS_TEXT);
    }

    #[test]
    fn counters_add_up_the_deltas_and_refuse_what_would_lower_them() {
        let sink = PrometheusSink::new(Vec::new());
        for delta in [5.0, 0.0, 7.5, -3.0, f64::NAN, f64::INFINITY] {
            send(&sink, batch("i", vec![series("errors.total", MetricKind::Count, delta, &[])], vec![]));
        }
        assert_eq!(samples(&sink), ["errors_total{adrt_instance_id=\"i\"} 12.5"], "one `_total`, never lowered");
        assert_eq!(refused(&sink, Refusal::Invalid), 3);
        // Gauges hold the latest value, whatever it is.
        for value in [2.0, -1.0, f64::NAN] {
            send(&sink, batch("i", vec![series("temperature", MetricKind::Gauge, value, &[])], vec![]));
        }
        assert!(samples(&sink).contains(&"temperature{adrt_instance_id=\"i\"} NaN".to_string()));
    }

    #[test]
    fn names_and_label_names_are_sanitized_and_label_values_escaped() {
        let sink = PrometheusSink::new(Vec::new());
        let tags = [
            "app.kubernetes.io/name:web",
            "9lives:x",
            "__name__:forged",
            "canary",
            ":odd",
            "host:from-a-tag",
            "role:b",
            "role:a",
            r#"quote:say "hi" \o/
twice"#,
            "url:http://x:80/a",
        ];
        let mut gauge = series("my-check.Latency 2€", MetricKind::Gauge, 1.0, &tags);
        gauge.hostname = Some("node-7".into());
        send(&sink, batch("c:1", vec![gauge, series("2xx.rate", MetricKind::Gauge, 1.0, &[])], vec![]));
        let expected_labels = [
            r#"adrt_instance_id="c:1""#,
            r#"app_kubernetes_io_name="web""#,
            r#"exported_host="from-a-tag""#,
            r#"host="node-7""#,
            r#"quote="say \"hi\" \\o/\ntwice""#,
            r#"role="a,b""#,
            r#"tag_9lives="x""#,
            r#"tag___name__="forged""#,
            r#"tag__odd="true""#,
            r#"tag_canary="true""#,
            r#"url="http://x:80/a""#,
        ];
        assert_eq!(
            samples(&sink),
            ["_2xx_rate{adrt_instance_id=\"c:1\"} 1".to_string(), format!("my_check_Latency_2_{{{}}} 1", expected_labels.join(","))]
        );
        assert!(text(&sink).contains("# HELP my_check_Latency_2_ my-check.Latency 2€ (Datadog gauge: the latest value)\n"));
    }

    #[test]
    fn help_is_escaped_as_each_format_asks() {
        let sink = PrometheusSink::new(Vec::new());
        send(&sink, batch("i", vec![series("a\\b\n\"c\"", MetricKind::Gauge, 1.0, &[])], vec![]));
        assert!(text(&sink).contains("# HELP a_b__c_ a\\\\b\\n\"c\" (Datadog"), "{}", text(&sink));
        let (_, openmetrics) = sink.render("application/openmetrics-text");
        assert!(openmetrics.contains("# HELP a_b__c_ a\\\\b\\n\\\"c\\\" (Datadog"), "{openmetrics}");
    }

    #[test]
    fn forget_drops_the_instances_series_only() {
        let sink = PrometheusSink::new(Vec::new());
        let tags = ["pod_name:web-1"];
        let a = vec![series("up", MetricKind::Gauge, 1.0, &tags), series("only.a", MetricKind::Gauge, 1.0, &[])];
        send(&sink, batch("nginx:a", a, vec![]));
        send(&sink, batch("nginx:b", vec![series("up", MetricKind::Gauge, 0.0, &tags)], vec![]));
        assert_eq!(
            samples(&sink),
            [
                "only_a{adrt_instance_id=\"nginx:a\"} 1",
                "up{adrt_instance_id=\"nginx:a\",pod_name=\"web-1\"} 1",
                "up{adrt_instance_id=\"nginx:b\",pod_name=\"web-1\"} 0",
            ],
            "two instances with the same tags are two series"
        );
        sink.forget("nginx:a");
        assert_eq!(samples(&sink), ["up{adrt_instance_id=\"nginx:b\",pod_name=\"web-1\"} 0"]);
        assert!(!text(&sink).contains("only_a"), "an emptied family goes, HELP and TYPE too");
        assert!(text(&sink).contains("adrt_prometheus_series 1\n"));
        // A counter that comes back starts again from its first delta.
        send(&sink, batch("nginx:b", vec![series("hits", MetricKind::Count, 3.0, &[])], vec![]));
        sink.forget("nginx:b");
        send(&sink, batch("nginx:b", vec![series("hits", MetricKind::Count, 2.0, &[])], vec![]));
        assert_eq!(samples(&sink), ["hits_total{adrt_instance_id=\"nginx:b\"} 2"]);
    }

    #[test]
    fn a_series_that_would_overwrite_another_is_refused() {
        let sink = PrometheusSink::new(Vec::new());
        send(
            &sink,
            batch(
                "i",
                vec![
                    series("disk.used", MetricKind::Gauge, 1.0, &["device:sda"]),
                    // Sanitizes to the same name: another source.
                    series("disk_used", MetricKind::Gauge, 2.0, &["device:sdb"]),
                    // The same name as a counter.
                    series("disk.used", MetricKind::Count, 3.0, &[]),
                    // Tags that differ only in what the mapping erased: same labels.
                    series("disk.used", MetricKind::Gauge, 4.0, &["device:sda", "device:sda"]),
                    series("tags", MetricKind::Gauge, 5.0, &["a:1", "a:2"]),
                    series("tags", MetricKind::Gauge, 6.0, &["a:1,2"]),
                    series("empty", MetricKind::Gauge, 10.0, &["env:"]),
                    series("empty", MetricKind::Gauge, 11.0, &[]),
                    // A counter `x` and a gauge `x_total` would both write `x_total`.
                    series("x", MetricKind::Count, 7.0, &[]),
                    series("x.total", MetricKind::Gauge, 8.0, &[]),
                    // The sink's own names.
                    series("adrt.prometheus.series", MetricKind::Gauge, 9.0, &[]),
                ],
                vec![],
            ),
        );
        assert_eq!(
            samples(&sink),
            [
                "disk_used{adrt_instance_id=\"i\",device=\"sda\"} 4",
                "empty{adrt_instance_id=\"i\"} 10",
                "tags{a=\"1,2\",adrt_instance_id=\"i\"} 5",
                "x_total{adrt_instance_id=\"i\"} 7",
            ],
            "the same tag twice is the same series; everything else that collides is refused"
        );
        assert_eq!(refused(&sink, Refusal::Conflict), 6);
        assert!(text(&sink).contains("adrt_prometheus_refused_total{reason=\"conflict\"} 6\n"));
    }

    #[test]
    fn past_the_limit_new_series_are_refused_and_known_ones_still_update() {
        let sink = PrometheusSink::with_max_series(Vec::new(), 2);
        let run = |value: f64| {
            let all = ["a", "b", "c"].map(|name| series(name, MetricKind::Gauge, value, &[])).to_vec();
            batch("i", all, vec![])
        };
        send(&sink, run(1.0));
        send(&sink, run(2.0));
        assert_eq!(samples(&sink), ["a{adrt_instance_id=\"i\"} 2", "b{adrt_instance_id=\"i\"} 2"]);
        assert_eq!(refused(&sink, Refusal::Limit), 2);
        let own = "# HELP adrt_prometheus_series Series exposed here, at most 2.\n\
                   # TYPE adrt_prometheus_series gauge\nadrt_prometheus_series 2\n";
        assert!(text(&sink).contains(own), "{}", text(&sink));
        sink.forget("i");
        send(&sink, batch("j", vec![series("c", MetricKind::Gauge, 3.0, &[])], vec![]));
        assert_eq!(samples(&sink), ["c{adrt_instance_id=\"j\"} 3"], "room again once series went");
    }

    #[test]
    fn numbers_are_spelled_as_prometheus_reads_them() {
        let values = [0.0, -2.0, 0.25, 1e300, -1e-9, 123456789012.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        let spelled: Vec<String> = values.map(number).to_vec();
        assert_eq!(spelled, ["0", "-2", "0.25", "1e300", "-1e-9", "123456789012", "NaN", "+Inf", "-Inf"]);
    }
}
