//! Turns what a check run submitted into series, with the Datadog agent's semantics.
//!
//! - `gauge`: the last value of the run per context (name + tags + hostname).
//! - `count`: the sum of the run's values.
//! - `monotonic_count`: the delta of a raw counter since the previous run of the same instance.
//! - `rate`: the per-second change of a raw counter since the previous run.
//! - `histogram`: `.max`, `.median`, `.avg`, `.count` and `.95percentile` of the run's samples.
//!
//! The first run of a counter emits nothing, and neither does a counter reset (a smaller raw
//! value): a negative rate is never reported. The instance's options are applied to everything
//! (see [`InstanceOptions`]): its tags added, `metric_patterns` filtering metrics by the name the
//! check submitted, `disable_generic_tags` and `empty_default_hostname`.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::exec::submission::{Event, MetricKind, ServiceCheck, Submissions};
use crate::instance_options::InstanceOptions;

/// One aggregated value, ready to print or send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    /// What the check submitted, not what the value became (a rate is per second).
    #[serde(rename = "type")]
    pub kind: MetricKind,
    pub value: f64,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The output of one run.
#[derive(Debug, Clone, Default)]
pub struct Flushed {
    pub series: Vec<Series>,
    pub service_checks: Vec<ServiceCheck>,
    pub events: Vec<Event>,
}

/// A metric context: what makes two submissions the same series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Context {
    instance: String,
    name: String,
    tags: Vec<String>,
    hostname: Option<String>,
}

/// The previous raw value of a counter.
#[derive(Debug, Clone, Copy)]
struct Previous {
    value: f64,
    at: Instant,
}

/// Remembers raw counters across runs, per check instance.
#[derive(Debug, Default)]
pub struct Aggregator {
    counters: HashMap<Context, Previous>,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Aggregates one run of `instance_id`, taken at `at`, applying the instance's `options`.
    pub fn flush(&mut self, instance_id: &str, options: &InstanceOptions, at: Instant, run: Submissions) -> Flushed {
        // Gauges keep the last value, counts sum, histograms collect: group by context first,
        // preserving the order in which contexts first appeared.
        let mut order: Vec<(Context, MetricKind)> = Vec::new();
        let mut values: HashMap<(Context, MetricKind), Vec<f64>> = HashMap::new();
        for sample in run.samples.into_iter().filter(|sample| options.keeps(&sample.name)) {
            let context = Context {
                instance: instance_id.to_string(),
                tags: with_tags(options.submitted_tags(sample.tags), sample.device.as_deref(), options.tags()),
                name: sample.name,
                hostname: options.hostname(sample.hostname),
            };
            let key = (context, sample.kind);
            match values.get_mut(&key) {
                Some(v) => v.push(sample.value),
                None => {
                    order.push(key.clone());
                    values.insert(key, vec![sample.value]);
                }
            }
        }

        let mut series = Vec::new();
        for key in order {
            let samples = &values[&key];
            let (context, kind) = key;
            let mut emit = |name: String, value: f64| {
                series.push(Series { name, kind, value, tags: context.tags.clone(), hostname: context.hostname.clone() })
            };
            let last = *samples.last().expect("a context has at least one sample");
            match kind {
                MetricKind::Gauge => emit(context.name.clone(), last),
                MetricKind::Count => emit(context.name.clone(), samples.iter().sum()),
                MetricKind::MonotonicCount | MetricKind::Rate => {
                    let now = Previous { value: last, at };
                    if let Some(previous) = self.counters.insert(context.clone(), now) {
                        if let Some(value) = counter_value(kind, previous, now) {
                            emit(context.name.clone(), value);
                        }
                    }
                }
                MetricKind::Histogram => {
                    for (suffix, value) in histogram(samples) {
                        emit(format!("{}.{suffix}", context.name), value);
                    }
                }
            }
        }

        let service_checks = run
            .service_checks
            .into_iter()
            .map(|mut check| {
                check.tags = with_tags(options.submitted_tags(check.tags), None, options.tags());
                check.hostname = options.hostname(check.hostname);
                check
            })
            .collect();
        let events = run
            .events
            .into_iter()
            .map(|mut event| {
                event.tags = with_tags(options.submitted_tags(event.tags), None, options.tags());
                event.hostname = options.hostname(event.hostname);
                event
            })
            .collect();
        Flushed { series, service_checks, events }
    }

    /// Drops what was remembered for an instance that is no longer scheduled.
    pub fn forget(&mut self, instance_id: &str) {
        self.counters.retain(|context, _| context.instance != instance_id);
    }
}

/// The value a counter emits, or `None` when it cannot yet (or should not) emit one.
fn counter_value(kind: MetricKind, previous: Previous, now: Previous) -> Option<f64> {
    let delta = now.value - previous.value;
    if delta < 0.0 || !delta.is_finite() {
        return None; // a reset: the counter restarted, so there is no meaningful change
    }
    match kind {
        MetricKind::MonotonicCount => Some(delta),
        _ => {
            let seconds = now.at.checked_duration_since(previous.at)?.as_secs_f64();
            (seconds > 0.0).then(|| delta / seconds)
        }
    }
}

/// Datadog's default histogram aggregates (`histogram_aggregates: max median avg count`,
/// `histogram_percentiles: 0.95`) of `sorted` samples whose weights add up to `count` and whose
/// weighted values add up to `sum` (a sampled DogStatsD value weighs 1 / its rate; a check's
/// weighs 1). `max` is passed for callers that keep only some of the samples; at least one
/// sample is needed.
pub fn histogram_aggregates(sorted: &[f64], count: f64, sum: f64, max: f64) -> [(&'static str, f64); 5] {
    let rank = |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    [("max", max), ("median", rank(0.5)), ("avg", sum / count), ("count", count), ("95percentile", rank(0.95))]
}

fn histogram(samples: &[f64]) -> [(&'static str, f64); 5] {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let sum = sorted.iter().sum();
    histogram_aggregates(&sorted, sorted.len() as f64, sum, sorted[sorted.len() - 1])
}

/// The submitted tags, then `device:`, then the instance's tags, without duplicates.
fn with_tags(mut tags: Vec<String>, device: Option<&str>, instance_tags: &[String]) -> Vec<String> {
    if let Some(device) = device {
        tags.push(format!("device:{device}"));
    }
    for tag in instance_tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::submission::{Sample, Status};
    use std::time::Duration;

    fn sample(name: &str, kind: MetricKind, value: f64) -> Sample {
        Sample { name: name.into(), kind, value, tags: vec!["a:1".into()], hostname: None, device: None }
    }

    fn run(samples: Vec<Sample>) -> Submissions {
        Submissions { samples, ..Default::default() }
    }

    fn none() -> InstanceOptions {
        InstanceOptions::default()
    }

    #[test]
    fn rates_need_two_runs_and_never_go_negative() {
        let mut agg = Aggregator::new();
        let t0 = Instant::now();
        let first = agg.flush("i", &none(), t0, run(vec![sample("r", MetricKind::Rate, 100.0)]));
        assert!(first.series.is_empty(), "the first run of a rate emits nothing");
        let second = agg.flush("i", &none(), t0 + Duration::from_secs(2), run(vec![sample("r", MetricKind::Rate, 110.0)]));
        assert_eq!(second.series[0].value, 5.0);
        assert_eq!(second.series[0].kind, MetricKind::Rate);
        let reset = agg.flush("i", &none(), t0 + Duration::from_secs(3), run(vec![sample("r", MetricKind::Rate, 3.0)]));
        assert!(reset.series.is_empty(), "a counter reset emits nothing");
        let after = agg.flush("i", &none(), t0 + Duration::from_secs(4), run(vec![sample("r", MetricKind::Rate, 7.0)]));
        assert_eq!(after.series[0].value, 4.0);
    }

    #[test]
    fn monotonic_counts_emit_deltas() {
        let mut agg = Aggregator::new();
        let t0 = Instant::now();
        agg.flush("i", &none(), t0, run(vec![sample("c", MetricKind::MonotonicCount, 10.0)]));
        let out = agg.flush("i", &none(), t0 + Duration::from_secs(10), run(vec![sample("c", MetricKind::MonotonicCount, 25.0)]));
        assert_eq!(out.series[0].value, 15.0);
    }

    #[test]
    fn counters_are_kept_per_instance_and_forgotten() {
        let mut agg = Aggregator::new();
        let t0 = Instant::now();
        agg.flush("a", &none(), t0, run(vec![sample("r", MetricKind::Rate, 1.0)]));
        let other = agg.flush("b", &none(), t0 + Duration::from_secs(1), run(vec![sample("r", MetricKind::Rate, 5.0)]));
        assert!(other.series.is_empty(), "instance b has no previous value of its own");
        agg.forget("a");
        let again = agg.flush("a", &none(), t0 + Duration::from_secs(2), run(vec![sample("r", MetricKind::Rate, 2.0)]));
        assert!(again.series.is_empty());
    }

    #[test]
    fn gauges_keep_the_last_value_counts_sum() {
        let mut agg = Aggregator::new();
        let out = agg.flush(
            "i",
            &none(),
            Instant::now(),
            run(vec![
                sample("g", MetricKind::Gauge, 1.0),
                sample("n", MetricKind::Count, 2.0),
                sample("g", MetricKind::Gauge, 3.0),
                sample("n", MetricKind::Count, 4.0),
            ]),
        );
        let values: Vec<(&str, f64)> = out.series.iter().map(|s| (s.name.as_str(), s.value)).collect();
        assert_eq!(values, [("g", 3.0), ("n", 6.0)]);
    }

    #[test]
    fn histograms_report_datadog_aggregates() {
        let mut agg = Aggregator::new();
        let samples = (1..=10).map(|v| sample("h", MetricKind::Histogram, f64::from(v))).collect();
        let out = agg.flush("i", &none(), Instant::now(), run(samples));
        let values: Vec<(&str, f64)> = out.series.iter().map(|s| (s.name.as_str(), s.value)).collect();
        assert_eq!(values, [("h.max", 10.0), ("h.median", 5.0), ("h.avg", 5.5), ("h.count", 10.0), ("h.95percentile", 10.0)]);
    }

    #[test]
    fn instance_tags_and_device_are_added_once() {
        let mut agg = Aggregator::new();
        let mut s = sample("g", MetricKind::Gauge, 1.0);
        s.device = Some("eth0".into());
        let options = InstanceOptions::parse("x", &serde_json::json!({"tags": ["env:prod", "a:1"]}), &[]).unwrap();
        let out = agg.flush(
            "i",
            &options,
            Instant::now(),
            Submissions {
                samples: vec![s],
                service_checks: vec![ServiceCheck {
                    name: "x.up".into(),
                    status: Status::Ok,
                    tags: vec![],
                    hostname: None,
                    message: None,
                    timestamp: None,
                }],
                events: vec![],
            },
        );
        assert_eq!(out.series[0].tags, ["a:1", "device:eth0", "env:prod"]);
        assert_eq!(out.service_checks[0].tags, ["env:prod", "a:1"]);
    }

    #[test]
    fn instance_options_filter_rename_and_drop_the_host() {
        let instance = serde_json::json!({"metric_patterns": {"include": ["^h$", "^g"], "exclude": ["skipped"]},
            "disable_generic_tags": true, "empty_default_hostname": true, "service": "web"});
        let options = InstanceOptions::parse("x", &instance, &[]).unwrap();
        let mut named = sample("g.named", MetricKind::Gauge, 1.0);
        named.hostname = Some("db-1".into());
        let mut generic = sample("g", MetricKind::Gauge, 2.0);
        generic.tags = vec!["host:h1".into()];
        let mut samples = vec![named, generic, sample("g.skipped", MetricKind::Gauge, 3.0), sample("other", MetricKind::Gauge, 4.0)];
        samples.extend((1..=3).map(|v| sample("h", MetricKind::Histogram, f64::from(v))));
        let out = Aggregator::new().flush("i", &options, Instant::now(), run(samples));
        let names: Vec<&str> = out.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["g.named", "g", "h.max", "h.median", "h.avg", "h.count", "h.95percentile"], "histograms are matched by the submitted name");
        assert_eq!((out.series[0].hostname.as_deref(), out.series[1].hostname.as_deref()), (Some("db-1"), Some("")));
        assert_eq!(out.series[1].tags, ["x_host:h1", "service:web"]);
    }
}
