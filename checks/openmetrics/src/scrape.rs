//! A page turned into Datadog's series, as Datadog's OpenMetrics v2 scraper and its native
//! transformers do (`datadog_checks_base/.../openmetrics/v2/scraper.py`, `transformers/*.py`),
//! one sample at a time as the parser reads them: nothing of the page is collected first.

use std::borrow::Cow;
use std::collections::HashMap;

use adrt_check_sdk::MetricKind;
use adrt_check_sdk::host::Metric;

use crate::config::{Settings, ShareRule, TypeOverride};
use crate::parse::{Format, MetricType, ParseError, Parser, Sample, canonical_number};

/// Where series go: the check's context, or a native aggregator (the benchmark's baseline).
pub trait Sink {
    fn metric(&mut self, metric: Metric);
    fn warn(&mut self, message: &str);
}

impl Sink for adrt_check_sdk::Context<'_> {
    fn metric(&mut self, metric: Metric) {
        adrt_check_sdk::Context::metric(self, metric)
    }
    fn warn(&mut self, message: &str) {
        adrt_check_sdk::Context::warn(self, message)
    }
}

/// What a page gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub submitted: usize,
    /// `max_returned_metrics` was reached: the rest of the page was not submitted.
    pub limit_reached: bool,
    pub malformed_lines: usize,
    pub first_error: Option<ParseError>,
}

/// How the samples of one family are submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Counter,
    Gauge,
    Histogram,
    Summary,
    /// Info, stateset, gauge histogram, untyped: each sample a gauge under its own name.
    Gauges,
}

/// The plan for the family being read: its name under the namespace, or `None` when skipped.
struct FamilyPlan<'a> {
    declared: &'a str,
    kind: MetricType,
    target: Option<(String, Transform)>,
}

/// Submits the series of `page` to `sink` (see the module's documentation); warns of the metric
/// limit and of malformed lines.
pub fn submit_page(sink: &mut impl Sink, settings: &Settings, page: &str, format: Format) -> Outcome {
    let shared = SharedLabels::collect(settings, page, format);
    let mut outcome = Outcome::default();
    let mut parser = Parser::new(page, format);
    let mut plan: Option<FamilyPlan<'_>> = None;
    while let Some(next) = parser.next() {
        let sample = match next {
            Ok(sample) => sample,
            Err(error) => {
                outcome.malformed_lines += 1;
                outcome.first_error.get_or_insert(error);
                continue;
            }
        };
        if !sample.value.is_finite() {
            continue;
        }
        if !plan.as_ref().is_some_and(|p| p.declared == sample.declared && p.kind == sample.kind) {
            plan = Some(FamilyPlan { declared: sample.declared, kind: sample.kind, target: target_of(settings, &sample) });
        }
        let Some((base, transform)) = plan.as_ref().and_then(|p| p.target.as_ref()) else { continue };
        let Some((name, kind)) = series_of(settings, &sample, base, *transform) else { continue };
        let Some((tags, upper_bound)) = tags_of(settings, &sample, &shared) else { continue };
        // Histogram buckets: `+Inf` is the same count as `_count`, so Datadog skips it (and
        // `-Inf`); a bucket without `le` has no bound to tag it with.
        let is_bucket = *transform == Transform::Histogram && kind == MetricKind::MonotonicCount && sample.name.ends_with("_bucket");
        if is_bucket && upper_bound.as_deref().is_none_or(|bound| bound.ends_with("inf")) {
            continue;
        }
        if outcome.submitted == settings.max_returned_metrics {
            outcome.limit_reached = true;
            sink.warn(&format!(
                "Check openmetrics exceeded limit of {} metrics, ignoring next ones (raise max_returned_metrics, or select \
                 fewer with metrics / exclude_metrics)",
                settings.max_returned_metrics
            ));
            break;
        }
        outcome.submitted += 1;
        sink.metric(Metric { name, kind, value: sample.value, tags, hostname: None, device: None });
    }
    if let Some(error) = &outcome.first_error {
        sink.warn(&format!(
            "{}: {} malformed line(s) skipped, the first at {error}",
            settings.endpoint, outcome.malformed_lines
        ));
    }
    outcome
}

/// What `metrics` / `exclude_metrics` make of a sample's family: its name under the namespace
/// and how it is submitted, or `None` to skip it.
fn target_of(settings: &Settings, sample: &Sample<'_, '_>) -> Option<(String, Transform)> {
    let family = settings.unprefixed(sample.family);
    if settings.is_excluded(family) {
        return None;
    }
    let selected = settings.metrics.select(family)?;
    let transform = match selected.kind {
        TypeOverride::Counter => Transform::Counter,
        TypeOverride::Gauge => Transform::Gauge,
        TypeOverride::Histogram => Transform::Histogram,
        TypeOverride::Summary => Transform::Summary,
        TypeOverride::Native => match sample.kind {
            MetricType::Counter => Transform::Counter,
            MetricType::Gauge => Transform::Gauge,
            MetricType::Histogram => Transform::Histogram,
            MetricType::Summary => Transform::Summary,
            MetricType::Info | MetricType::Stateset | MetricType::GaugeHistogram | MetricType::Unknown => Transform::Gauges,
        },
    };
    Some((settings.qualified(&selected.name), transform))
}

/// The series a sample becomes under its family's transform, or `None` for a sample that
/// transform does not submit (a counter's `_created`, a histogram's buckets when not collected).
fn series_of(settings: &Settings, sample: &Sample<'_, '_>, base: &str, transform: Transform) -> Option<(String, MetricKind)> {
    let name = sample.name;
    let monotonic = |suffix: &str| Some((concat(base, "", suffix), MetricKind::MonotonicCount));
    match transform {
        Transform::Counter if sample.total => monotonic(".count"),
        Transform::Counter => None,
        Transform::Gauge => Some((base.to_string(), MetricKind::Gauge)),
        Transform::Histogram if name.ends_with("_sum") => monotonic(".sum"),
        Transform::Histogram if name.ends_with("_count") => monotonic(".count"),
        Transform::Histogram if name.ends_with("_bucket") && settings.collect_buckets => monotonic(".bucket"),
        Transform::Histogram => None,
        Transform::Summary if name.ends_with("_sum") => monotonic(".sum"),
        Transform::Summary if name.ends_with("_count") => monotonic(".count"),
        // Datadog compares with the family's name after `raw_metric_prefix` went, which never
        // matches when a prefix was cut; the name as declared is what was meant.
        Transform::Summary if name == sample.declared => Some((concat(base, "", ".quantile"), MetricKind::Gauge)),
        Transform::Summary => None,
        Transform::Gauges => {
            let suffix = name.strip_prefix(sample.declared).unwrap_or_default();
            Some((concat(base, "", suffix), MetricKind::Gauge))
        }
    }
}

/// `a` `b` `c` in one allocation: per series, where `format!`'s machinery shows in the guest's
/// time.
fn concat(a: &str, b: &str, c: &str) -> String {
    let mut text = String::with_capacity(a.len() + b.len() + c.len());
    text.push_str(a);
    text.push_str(b);
    text.push_str(c);
    text
}

/// A sample's tags: its labels (shared ones added, histograms' `le` as `upper_bound` and
/// summaries' `quantile` in Datadog's number form, `exclude_labels` dropped, `rename_labels`
/// applied) and `endpoint:`; and a histogram sample's `upper_bound`. `None` for a sample whose
/// `le` is no number (Datadog's scrape fails there).
fn tags_of(settings: &Settings, sample: &Sample<'_, '_>, shared: &SharedLabels) -> Option<(Vec<String>, Option<String>)> {
    let mut labels: Vec<(&str, Cow<'_, str>)> = sample.labels.iter().map(|l| (l.name, Cow::Borrowed(&*l.value))).collect();
    shared.populate(&mut labels);
    let mut bound = None;
    match sample.kind {
        MetricType::Histogram => {
            if let Some(at) = labels.iter().position(|(name, _)| *name == "le") {
                let (_, le) = labels.remove(at);
                let canonical = canonical_number(&le)?;
                labels.retain(|(name, _)| *name != "upper_bound");
                bound = Some(canonical.clone());
                labels.push(("upper_bound", Cow::Owned(canonical)));
            }
        }
        MetricType::Summary => {
            let quantile = labels.iter_mut().find(|(name, _)| *name == "quantile");
            if let Some((_, value)) = quantile {
                *value = canonical_number(value).map_or_else(|| value.clone(), Cow::Owned);
            }
        }
        _ => {}
    }
    let mut tags = Vec::with_capacity(labels.len() + 2);
    for (name, value) in &labels {
        if settings.exclude_labels.contains(*name) {
            continue;
        }
        let name = settings.rename_labels.get(*name).map_or(*name, String::as_str);
        tags.push(concat(name, ":", value));
    }
    tags.extend(settings.endpoint_tag.iter().cloned());
    Some((tags, bound))
}

/// Labels that `share_labels` gives: read from the page before its samples are submitted, so that
/// a family before its source gets them too (Datadog's `cache_shared_labels: false`).
#[derive(Debug, Default)]
struct SharedLabels {
    /// Given to every sample.
    unconditional: Vec<(String, String)>,
    /// Given to the samples that have all of `matching`'s labels with their values.
    conditional: Vec<Conditional>,
}

#[derive(Debug)]
struct Conditional {
    matching: Vec<(String, String)>,
    shared: Vec<(String, String)>,
}

impl SharedLabels {
    fn collect(settings: &Settings, page: &str, format: Format) -> SharedLabels {
        let mut shared = SharedLabels::default();
        if settings.share_labels.is_empty() {
            return shared;
        }
        let rules: HashMap<&str, &ShareRule> = settings.share_labels.iter().map(|r| (r.family.as_str(), r)).collect();
        let mut parser = Parser::new(page, format);
        while let Some(next) = parser.next() {
            let Ok(sample) = next else { continue };
            let Some(rule) = rules.get(settings.unprefixed(sample.family)) else { continue };
            let allowed = rule.values.as_ref().is_none_or(|values| values.iter().any(|v| *v as f64 == sample.value));
            if !allowed {
                continue;
            }
            let pick = |wanted: &Option<std::collections::HashSet<String>>| -> Vec<(String, String)> {
                sample
                    .labels
                    .iter()
                    .filter(|l| wanted.as_ref().is_none_or(|w| w.contains(l.name)))
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect()
            };
            match &rule.matching {
                Some(_) => shared.conditional.push(Conditional { matching: pick(&rule.matching), shared: pick(&rule.labels) }),
                None => {
                    for (name, value) in pick(&rule.labels) {
                        shared.unconditional.retain(|(n, _)| *n != name);
                        shared.unconditional.push((name, value));
                    }
                }
            }
        }
        shared
    }

    /// Adds the shared labels to a sample's, over labels of the same name (Python's `update`).
    fn populate<'s>(&'s self, labels: &mut Vec<(&'s str, Cow<'s, str>)>) {
        if self.unconditional.is_empty() && self.conditional.is_empty() {
            return;
        }
        let own: Vec<(&str, String)> = labels.iter().map(|(n, v)| (*n, v.to_string())).collect();
        let has = |name: &str, value: &str| own.iter().any(|(n, v)| *n == name && v == value);
        let matching = self.conditional.iter().filter(|c| c.matching.iter().all(|(n, v)| has(n, v))).flat_map(|c| &c.shared);
        for (name, value) in self.unconditional.iter().chain(matching) {
            match labels.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => *existing = Cow::Borrowed(value),
                None => labels.push((name, Cow::Borrowed(value))),
            }
        }
    }
}
