//! The agent's own metrics (`adrt.*`), sent every flush interval the same ways as the checks'
//! (Datadog, Prometheus, OTLP): runs and failing instances, what the delivery queue and the
//! Datadog forwarder did, and how much waits in memory and in the spool. Totals are submitted as
//! monotonic counts, so every backend gets the change since the last flush.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::aggregate::Aggregator;
use crate::exec::{MetricKind, Sample, Submissions};
use crate::resolve::ResolvedConfig;
use crate::send::Batch;
use crate::status::Status;

/// The instance the agent's metrics are aggregated and sent as.
pub const INSTANCE_ID: &str = "adrt:telemetry";

pub struct Telemetry {
    aggregator: Aggregator,
    config: Arc<ResolvedConfig>,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let config = Arc::new(ResolvedConfig::agent_source(INSTANCE_ID, "adrt", "the agent"));
        Telemetry { aggregator: Aggregator::new(), config }
    }

    /// The batch of `status` now.
    pub fn batch(&mut self, status: &Status) -> Batch {
        let mut samples = Vec::new();
        let mut add_tagged = |name: &str, kind: MetricKind, value: f64, tags: Vec<String>| {
            samples.push(Sample { name: name.into(), kind, value, tags, hostname: None, device: None });
        };
        let mut add = |name: &str, kind: MetricKind, value: f64| add_tagged(name, kind, value, Vec::new());
        let instances = status.checks.iter().flat_map(|c| &c.instances);
        let (mut runs, mut scheduled, mut failing) = (0, 0, 0);
        for instance in instances {
            runs += instance.total_runs;
            scheduled += 1;
            failing += usize::from(instance.status == "ERROR");
        }
        add("adrt.checks.runs", MetricKind::MonotonicCount, runs as f64);
        add("adrt.checks.instances", MetricKind::Gauge, scheduled as f64);
        add("adrt.checks.failing", MetricKind::Gauge, failing as f64);
        let delivery = &status.delivery;
        add("adrt.delivery.batches_sent", MetricKind::MonotonicCount, delivery.sent as f64);
        add("adrt.delivery.batches_dropped", MetricKind::MonotonicCount, delivery.dropped as f64);
        add("adrt.delivery.queued", MetricKind::Gauge, delivery.queued as f64);
        if let Some(f) = &status.forwarder {
            add("adrt.forwarder.payloads_sent", MetricKind::MonotonicCount, f.success as f64);
            add("adrt.forwarder.points_sent", MetricKind::MonotonicCount, f.items_sent as f64);
            add("adrt.forwarder.bytes_sent", MetricKind::MonotonicCount, f.bytes_sent as f64);
            add("adrt.forwarder.retried", MetricKind::MonotonicCount, f.retried as f64);
            add("adrt.forwarder.dropped", MetricKind::MonotonicCount, (f.dropped + f.spool_dropped) as f64);
            add("adrt.forwarder.memory_bytes", MetricKind::Gauge, f.memory_bytes as f64);
            add("adrt.forwarder.spool_bytes", MetricKind::Gauge, f.spool_bytes as f64);
            add("adrt.forwarder.flush_ms", MetricKind::Gauge, f.last_flush_ms);
        }
        if let Some(d) = &status.dogstatsd {
            add("adrt.dogstatsd.udp_packets", MetricKind::MonotonicCount, d.udp_packets as f64);
            add("adrt.dogstatsd.uds_packets", MetricKind::MonotonicCount, d.uds_packets as f64);
            add("adrt.dogstatsd.truncated_packets", MetricKind::MonotonicCount, d.truncated_packets as f64);
            add("adrt.dogstatsd.metric_samples", MetricKind::MonotonicCount, d.metric_samples as f64);
            add("adrt.dogstatsd.events", MetricKind::MonotonicCount, d.events as f64);
            add("adrt.dogstatsd.service_checks", MetricKind::MonotonicCount, d.service_checks as f64);
            add("adrt.dogstatsd.contexts", MetricKind::Gauge, d.contexts as f64);
            for (name, by_reason) in [("adrt.dogstatsd.parse_errors", &d.parse_errors), ("adrt.dogstatsd.dropped", &d.dropped)] {
                for (reason, count) in by_reason {
                    add_tagged(name, MetricKind::MonotonicCount, *count as f64, vec![format!("reason:{reason}")]);
                }
            }
        }
        for (rule, count) in &status.policy_denied {
            add_tagged("adrt.policy.denied", MetricKind::MonotonicCount, *count as f64, vec![format!("rule:{rule}")]);
        }
        let submissions = Submissions { samples, ..Submissions::default() };
        let flushed = self.aggregator.flush(INSTANCE_ID, &Default::default(), Instant::now(), submissions);
        Batch { config: self.config.clone(), flushed, at: SystemTime::now() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{CheckStatus, ForwarderStatus, InstanceStatus};

    #[test]
    fn totals_become_changes_and_levels_stay_levels() {
        let mut telemetry = Telemetry::new();
        let status = |runs: u64, sent: u64| Status {
            checks: vec![CheckStatus {
                name: "nginx".into(),
                instances: vec![InstanceStatus { total_runs: runs, status: "ERROR".into(), ..Default::default() }],
                ..Default::default()
            }],
            forwarder: Some(ForwarderStatus { success: sent, spool_bytes: 4096, ..Default::default() }),
            ..Default::default()
        };
        let first = telemetry.batch(&status(10, 3));
        let value = |batch: &Batch, name: &str| batch.flushed.series.iter().find(|s| s.name == name).map(|s| s.value);
        assert_eq!(value(&first, "adrt.checks.runs"), None, "a count needs two flushes");
        assert_eq!(value(&first, "adrt.checks.failing"), Some(1.0));
        let second = telemetry.batch(&status(25, 5));
        assert_eq!(value(&second, "adrt.checks.runs"), Some(15.0));
        assert_eq!(value(&second, "adrt.forwarder.payloads_sent"), Some(2.0));
        assert_eq!(value(&second, "adrt.forwarder.spool_bytes"), Some(4096.0));
        assert_eq!(second.config.id, INSTANCE_ID);
    }
}
