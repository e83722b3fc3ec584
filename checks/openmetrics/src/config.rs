//! The instance keys (Datadog's OpenMetrics v2 check's), and the settings a run derives from them.

use std::collections::{BTreeMap, HashMap, HashSet};

use adrt_check_sdk::http_options::HttpInitConfig;
use adrt_check_sdk::serde_json::Value;
use adrt_check_sdk::{CheckError, HttpClient, HttpInstance};
use regex_lite::Regex;
use serde::Deserialize;

/// Datadog's `DEFAULT_METRIC_LIMIT` of OpenMetrics checks.
pub const DEFAULT_MAX_RETURNED_METRICS: usize = 2000;

/// `Accept` as Datadog's scraper sends it: the text format, or OpenMetrics with `use_latest_spec`.
pub const ACCEPT_TEXT: &str = "text/plain";
pub const ACCEPT_OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1";

/// One `instances` entry: the check's own keys (the shared HTTP options — `headers`,
/// `extra_headers`, `auth_token`, `tls_*`, `timeout`, ... — are [`HttpInstance::http`]).
#[derive(Debug, Deserialize)]
pub struct Instance {
    pub openmetrics_endpoint: String,
    #[serde(default)]
    pub namespace: String,
    /// Names, `{name: rename}` and `{name: {name: rename, type: ...}}` maps, regexes (checked in
    /// [`Settings::new`], with messages naming the entry).
    pub metrics: Value,
    #[serde(default)]
    pub extra_metrics: Option<Value>,
    #[serde(default)]
    pub exclude_metrics: Vec<String>,
    #[serde(default)]
    pub rename_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub exclude_labels: Vec<String>,
    #[serde(default)]
    pub share_labels: Option<Value>,
    /// Accepted: shared labels are read from each page anyway (see README).
    #[serde(default)]
    pub cache_shared_labels: Option<bool>,
    #[serde(default)]
    pub raw_metric_prefix: String,
    #[serde(default = "default_true", alias = "collect_histogram_buckets")]
    pub send_histograms_buckets: bool,
    #[serde(default)]
    pub histogram_buckets_as_distributions: bool,
    #[serde(default)]
    pub collect_counters_with_distributions: bool,
    #[serde(default)]
    pub max_returned_metrics: Option<i64>,
    #[serde(default = "default_true", alias = "enable_health_service_check")]
    pub health_service_check: bool,
    #[serde(default = "default_true")]
    pub tag_by_endpoint: bool,
    #[serde(default)]
    pub use_latest_spec: bool,
}

fn default_true() -> bool {
    true
}

/// How a selected family is submitted: the type its page gives (`native`) or one the config
/// forces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeOverride {
    Native,
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// What `metrics` says of one family: its Datadog name (without the namespace) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub kind: TypeOverride,
}

/// `metrics` (and `extra_metrics`) compiled: exact names first, then the patterns in order.
#[derive(Debug, Default)]
pub struct MetricSelection {
    exact: HashMap<String, Selected>,
    patterns: Vec<(Regex, TypeOverride)>,
}

impl MetricSelection {
    /// What to submit a family (its name after `raw_metric_prefix`) as, or `None` to skip it.
    pub fn select(&self, family: &str) -> Option<Selected> {
        if let Some(selected) = self.exact.get(family) {
            return Some(selected.clone());
        }
        // Patterns are searched anywhere in the name (Python's `re.search`), and keep the name.
        let (_, kind) = self.patterns.iter().find(|(pattern, _)| pattern.is_match(family))?;
        Some(Selected { name: family.to_string(), kind: *kind })
    }
}

/// One `share_labels` entry: labels of the samples of `family` given to the samples of every
/// family.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShareRule {
    pub family: String,
    /// Which labels to share (`None`: all of them).
    pub labels: Option<HashSet<String>>,
    /// The labels a sample must have with the source sample's values to get them (`None`: every
    /// sample gets them).
    pub matching: Option<HashSet<String>>,
    /// Only source samples with one of these values count (`None`: all).
    pub values: Option<Vec<i64>>,
}

/// What a run needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub endpoint: String,
    pub namespace: String,
    pub metrics: MetricSelection,
    pub exclude_exact: HashSet<String>,
    pub exclude_pattern: Option<Regex>,
    pub rename_labels: HashMap<String, String>,
    pub exclude_labels: HashSet<String>,
    pub share_labels: Vec<ShareRule>,
    pub raw_metric_prefix: String,
    /// `endpoint:<url>`, on every metric and the service check (Datadog's `tag_by_endpoint`).
    pub endpoint_tag: Option<String>,
    /// The shared HTTP options, checked.
    pub client: HttpClient,
    /// The `Accept` header of Datadog's scraper, over any configured one.
    pub accept: &'static str,
    pub collect_buckets: bool,
    pub max_returned_metrics: usize,
    pub health_service_check: bool,
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn new(instance: HttpInstance<Instance>, init: &HttpInitConfig) -> Result<Settings, CheckError> {
        let client = instance.http.client(init, true)?;
        let instance = instance.instance;
        let endpoint = instance.openmetrics_endpoint.trim().to_string();
        if endpoint.is_empty() {
            return Err(config("openmetrics_endpoint is required"));
        }
        let scheme = endpoint.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return Err(config(format!("openmetrics_endpoint must be an http:// or https:// URL, got {endpoint:?}")));
        }
        // Datadog: `collect_counters_with_distributions` implies `histogram_buckets_as_distributions`.
        if instance.histogram_buckets_as_distributions || instance.collect_counters_with_distributions {
            let key = if instance.histogram_buckets_as_distributions {
                "histogram_buckets_as_distributions"
            } else {
                "collect_counters_with_distributions (which implies histogram_buckets_as_distributions)"
            };
            return Err(config(format!(
                "{key} is not supported: the agent has no distribution buckets to submit them to; leave it false to get \
                 the buckets as `.bucket` monotonic counts tagged `upper_bound`"
            )));
        }
        let mut warnings = client.warnings.clone();
        let max_returned_metrics = match instance.max_returned_metrics {
            None => DEFAULT_MAX_RETURNED_METRICS,
            Some(0) => {
                warnings.push(format!(
                    "Setting max_returned_metrics to zero is not allowed, reverting to the default of {DEFAULT_MAX_RETURNED_METRICS} metrics"
                ));
                DEFAULT_MAX_RETURNED_METRICS
            }
            Some(n) if n < 0 => return Err(config(format!("max_returned_metrics must be a positive number, got {n}"))),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };

        let mut entries = metric_entries("metrics", &instance.metrics)?;
        if let Some(extra) = &instance.extra_metrics {
            entries.extend(metric_entries("extra_metrics", extra)?);
        }
        let mut metrics = MetricSelection::default();
        for (key, selected) in entries {
            if is_literal(&key) {
                metrics.exact.insert(key, selected);
            } else {
                let pattern = Regex::new(&key).map_err(|e| config(format!("metrics: invalid regular expression {key:?}: {e}")))?;
                metrics.patterns.push((pattern, selected.kind));
            }
        }

        let (mut exclude_exact, mut exclude_patterns) = (HashSet::new(), Vec::new());
        for entry in instance.exclude_metrics {
            if is_literal(&entry) {
                exclude_exact.insert(entry);
            } else {
                exclude_patterns.push(entry);
            }
        }
        // One alternation, as Datadog joins them.
        let exclude_pattern = match exclude_patterns.is_empty() {
            true => None,
            false => {
                let joined = exclude_patterns.join("|");
                Some(Regex::new(&joined).map_err(|e| config(format!("exclude_metrics: invalid regular expression {joined:?}: {e}")))?)
            }
        };

        let share_labels = match &instance.share_labels {
            Some(value) => share_rules(value)?,
            None => Vec::new(),
        };
        // `Accept` is always the scraper's own, as Datadog's.
        let accept = if instance.use_latest_spec { ACCEPT_OPENMETRICS } else { ACCEPT_TEXT };

        Ok(Settings {
            endpoint_tag: instance.tag_by_endpoint.then(|| format!("endpoint:{endpoint}")),
            endpoint,
            namespace: instance.namespace,
            metrics,
            exclude_exact,
            exclude_pattern,
            rename_labels: instance.rename_labels.into_iter().collect(),
            exclude_labels: instance.exclude_labels.into_iter().collect(),
            share_labels,
            raw_metric_prefix: instance.raw_metric_prefix,
            client,
            accept,
            collect_buckets: instance.send_histograms_buckets,
            max_returned_metrics,
            health_service_check: instance.health_service_check,
            warnings,
        })
    }

    /// `<namespace>.<name>`, or the name alone without a namespace.
    pub fn qualified(&self, name: &str) -> String {
        if self.namespace.is_empty() { name.to_string() } else { format!("{}.{name}", self.namespace) }
    }

    /// Whether `exclude_metrics` drops a family (its name after `raw_metric_prefix`).
    pub fn is_excluded(&self, family: &str) -> bool {
        self.exclude_exact.contains(family) || self.exclude_pattern.as_ref().is_some_and(|p| p.is_match(family))
    }

    /// A family's name as the options see it: without `raw_metric_prefix`.
    pub fn unprefixed<'n>(&self, family: &'n str) -> &'n str {
        match self.raw_metric_prefix.is_empty() {
            true => family,
            false => family.strip_prefix(self.raw_metric_prefix.as_str()).unwrap_or(family),
        }
    }
}

fn config(message: impl Into<String>) -> CheckError {
    CheckError::Config(message.into())
}

/// Datadog tells names from patterns by `re.escape(entry) == entry`.
fn is_literal(entry: &str) -> bool {
    regex_lite::escape(entry) == entry
}

/// The entries of `metrics` / `extra_metrics`, in order, each (key, what it selects).
fn metric_entries(option: &str, value: &Value) -> Result<Vec<(String, Selected)>, CheckError> {
    let list = value.as_array().ok_or_else(|| config(format!("Setting `{option}` must be an array")))?;
    let mut entries = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        match entry {
            Value::String(name) => entries.push((name.clone(), Selected { name: name.clone(), kind: TypeOverride::Native })),
            Value::Object(map) => {
                for (key, target) in map {
                    let selected = match target {
                        Value::String(rename) => Selected { name: rename.clone(), kind: TypeOverride::Native },
                        Value::Object(options) => metric_options(option, key, options)?,
                        _ => {
                            return Err(config(format!("Value of entry `{key}` of setting `{option}` must be a string or a mapping")));
                        }
                    };
                    entries.push((key.clone(), selected));
                }
            }
            _ => return Err(config(format!("Entry #{} of setting `{option}` must be a string or a mapping", i + 1))),
        }
    }
    Ok(entries)
}

fn metric_options(option: &str, key: &str, options: &adrt_check_sdk::serde_json::Map<String, Value>) -> Result<Selected, CheckError> {
    let mut selected = Selected { name: key.to_string(), kind: TypeOverride::Native };
    for (name, value) in options {
        let text = || value.as_str().ok_or_else(|| config(format!("field `{name}` of entry `{key}` of setting `{option}` must be a string")));
        match name.as_str() {
            "name" => selected.name = text()?.to_string(),
            "type" => {
                selected.kind = match text()? {
                    "native" => TypeOverride::Native,
                    "counter" => TypeOverride::Counter,
                    "gauge" => TypeOverride::Gauge,
                    "histogram" => TypeOverride::Histogram,
                    "summary" => TypeOverride::Summary,
                    other => {
                        return Err(config(format!(
                            "type `{other}` of entry `{key}` of setting `{option}` is not supported by this check (native, \
                             counter, gauge, histogram and summary are)"
                        )));
                    }
                }
            }
            other => return Err(config(format!("unknown field `{other}` in entry `{key}` of setting `{option}` (name and type are known)"))),
        }
    }
    Ok(selected)
}

/// `share_labels: {family: true | {labels: [...], match: [...], values: [...]}}`.
fn share_rules(value: &Value) -> Result<Vec<ShareRule>, CheckError> {
    let map = value.as_object().ok_or_else(|| config("Setting `share_labels` must be a mapping"))?;
    let mut rules = Vec::new();
    for (family, rule) in map {
        let mut share = ShareRule { family: family.clone(), ..ShareRule::default() };
        match rule {
            Value::Bool(true) => {}
            Value::Object(options) => {
                for (name, option) in options {
                    let list = option.as_array().ok_or_else(|| {
                        config(format!("Option `{name}` for metric `{family}` of setting `share_labels` must be an array"))
                    })?;
                    match name.as_str() {
                        "labels" | "match" => {
                            let mut set = HashSet::new();
                            for (i, entry) in list.iter().enumerate() {
                                let label = entry.as_str().ok_or_else(|| {
                                    config(format!(
                                        "Entry #{} of option `{name}` for metric `{family}` of setting `share_labels` must be a string",
                                        i + 1
                                    ))
                                })?;
                                set.insert(label.to_string());
                            }
                            // An empty list is no restriction, as in Datadog.
                            let set = (!set.is_empty()).then_some(set);
                            if name == "labels" { share.labels = set } else { share.matching = set }
                        }
                        "values" => {
                            let mut values = Vec::new();
                            for (i, entry) in list.iter().enumerate() {
                                let number = match entry {
                                    Value::Number(n) => n.as_i64(),
                                    Value::String(s) => s.trim().parse().ok(),
                                    _ => None,
                                };
                                values.push(number.ok_or_else(|| {
                                    config(format!(
                                        "Entry #{} of option `values` for metric `{family}` of setting `share_labels` must represent an integer",
                                        i + 1
                                    ))
                                })?);
                            }
                            share.values = Some(values);
                        }
                        other => {
                            return Err(config(format!(
                                "unknown option `{other}` for metric `{family}` of setting `share_labels` (labels, match and values are known)"
                            )));
                        }
                    }
                }
            }
            _ => return Err(config(format!("Metric `{family}` of setting `share_labels` must be a mapping or set to `true`"))),
        }
        rules.push(share);
    }
    Ok(rules)
}
