//! The openmetrics check's page parser (`adrt_check_openmetrics::parse`, hand-written: no crate
//! streams) and the mapping to Datadog's series behind it, on any page, in both formats.
//!
//! Input: byte 0 picks the format (bit 0: OpenMetrics) and the options (bit 1: `share_labels` on
//! the first family, which reads the page twice; bit 2: a `raw_metric_prefix`); the rest, as
//! lossy UTF-8, is the page. The parser must give every line back as a sample or an error with
//! its number, never panic; every series must carry a name and the endpoint tag, and no more
//! series than samples; numbers in tags must read back as the numbers they came from.
//!
//! Seeds in `fuzz/corpus/openmetrics`, tokens (comments, types, suffixes) in
//! `fuzz/dicts/openmetrics.dict`.

#![no_main]

use adrt_check_openmetrics::config::{Instance, Settings};
use adrt_check_sdk::{HttpInitConfig, HttpInstance};
use adrt_check_openmetrics::parse::{Format, Parser, canonical_number};
use adrt_check_openmetrics::scrape::{Sink, submit_page};
use adrt_check_sdk::host::Metric;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const ENDPOINT: &str = "http://10.0.0.7:9100/metrics";

struct Collect {
    series: usize,
}

impl Sink for Collect {
    fn metric(&mut self, metric: Metric) {
        assert!(!metric.name.is_empty(), "{metric:?}");
        assert!(metric.value.is_finite(), "{metric:?}");
        assert!(metric.tags.iter().any(|t| t == &format!("endpoint:{ENDPOINT}")), "{metric:?}");
        self.series += 1;
    }
    fn warn(&mut self, _: &str) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let page = String::from_utf8_lossy(rest);
    let format = if flags & 1 != 0 { Format::OpenMetrics } else { Format::Prometheus };

    let mut parser = Parser::new(&page, format);
    let (mut samples, mut last_line) = (0usize, 0usize);
    while let Some(next) = parser.next() {
        match next {
            Ok(sample) => {
                samples += 1;
                assert!(!sample.name.is_empty() && !sample.family.is_empty(), "{sample:?}");
                for label in sample.labels {
                    if let Some(canonical) = canonical_number(&label.value) {
                        let (read, back): (f64, f64) = (label.value.trim().parse().unwrap(), canonical.parse().unwrap());
                        assert!(read == back || (read.is_nan() && back.is_nan()) || read == 0.0, "{:?} -> {canonical}", label.value);
                    }
                }
            }
            Err(error) => {
                assert!(error.line > last_line && error.line <= page.lines().count().max(1), "{error:?}");
                last_line = error.line;
            }
        }
    }

    let mut instance = json!({"openmetrics_endpoint": ENDPOINT, "namespace": "fuzz", "metrics": [".*"], "max_returned_metrics": 100000});
    if flags & 2 != 0 {
        let first = page.lines().find_map(|l| l.split(['{', ' ']).next().filter(|n| !n.is_empty() && !n.starts_with('#')));
        instance["share_labels"] = json!({ first.unwrap_or("x"): true });
    }
    if flags & 4 != 0 {
        instance["raw_metric_prefix"] = json!("node_");
    }
    let instance: HttpInstance<Instance> = serde_json::from_value(instance).expect("a valid instance");
    let settings = Settings::new(instance, &HttpInitConfig::default()).expect("valid settings");
    let mut sink = Collect { series: 0 };
    let outcome = submit_page(&mut sink, &settings, &page, format);
    assert_eq!(outcome.submitted, sink.series);
    assert!(sink.series <= samples, "{} series from {samples} samples", sink.series);
});
