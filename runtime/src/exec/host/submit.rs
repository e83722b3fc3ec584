//! `submit`: metrics, service checks and events, collected for the current call.

use crate::exec::submission::{Event, MetricKind, Sample, ServiceCheck, Status};
use crate::exec::bindings::adrt::check::submit::Host;
use crate::exec::bindings::adrt::check::types as wit;
use crate::exec::policy::Import;
use crate::exec::store::StoreState;

impl StoreState {
    /// More submissions than `metrics_per_run` is a runaway check: it is stopped, not truncated.
    fn admit_submission(&mut self) -> wasmtime::Result<()> {
        self.allow(Import::Submit).map_err(|why| wasmtime::format_err!("{why}"))?;
        let s = &self.call.submissions;
        let limit = self.policy.limits.metrics_per_run;
        if s.samples.len() + s.service_checks.len() + s.events.len() >= limit as usize {
            wasmtime::bail!("{}", self.call.exceed("metrics_per_run", limit));
        }
        Ok(())
    }
}

impl Host for StoreState {
    fn emit_metric(&mut self, metric: wit::Metric) -> wasmtime::Result<()> {
        self.admit_submission()?;
        let kind = match metric.kind {
            wit::MetricKind::Gauge => MetricKind::Gauge,
            wit::MetricKind::Count => MetricKind::Count,
            wit::MetricKind::MonotonicCount => MetricKind::MonotonicCount,
            wit::MetricKind::Rate => MetricKind::Rate,
            wit::MetricKind::Histogram => MetricKind::Histogram,
        };
        self.call.submissions.samples.push(Sample {
            name: metric.name,
            kind,
            value: metric.value,
            tags: metric.tags,
            hostname: metric.hostname,
            device: metric.device,
        });
        Ok(())
    }

    fn emit_service_check(&mut self, check: wit::ServiceCheck) -> wasmtime::Result<()> {
        self.admit_submission()?;
        self.call.submissions.service_checks.push(ServiceCheck {
            name: check.name,
            status: match check.status {
                wit::Status::Ok => Status::Ok,
                wit::Status::Warning => Status::Warning,
                wit::Status::Critical => Status::Critical,
                wit::Status::Unknown => Status::Unknown,
            },
            tags: check.tags,
            hostname: check.hostname,
            message: check.message,
            timestamp: None,
        });
        Ok(())
    }

    fn emit_event(&mut self, event: wit::Event) -> wasmtime::Result<()> {
        self.admit_submission()?;
        self.call.submissions.events.push(Event {
            title: event.title,
            text: event.text,
            alert_type: match event.alert_type {
                wit::AlertType::Info => "info",
                wit::AlertType::Success => "success",
                wit::AlertType::Warning => "warning",
                wit::AlertType::Error => "error",
            },
            priority: None,
            hostname: None,
            tags: event.tags,
            aggregation_key: event.aggregation_key,
            source_type_name: event.source_type_name,
            timestamp: event.timestamp,
        });
        Ok(())
    }
}
