//! The Datadog sink: every run's series, service checks and events gathered between flushes,
//! stamped with the run's time, then at each flush turned into intake payloads ([`payload`])
//! and handed to the [`Forwarder`], which retries and spools them.
//!
//! Host-level tags (`tags`, `env`, `cluster_name`) go on everything; the host is the agent's
//! (`hostname`) unless a check named another for its submission.

pub mod forwarder;
pub mod payload;
pub mod spool;

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::{Batch, Sink};
use crate::exec::{Event, ServiceCheck};
pub use forwarder::{Forwarder, ForwarderSettings};
use payload::Point;

pub struct DatadogSink {
    host: String,
    host_tags: Vec<String>,
    gathered: Mutex<Gathered>,
    forwarder: Arc<Forwarder>,
}

/// What the runs since the last flush produced.
#[derive(Default)]
struct Gathered {
    /// Series entries, already JSON (see [`payload::series_entry`]).
    series: Vec<Vec<u8>>,
    service_checks: Vec<(ServiceCheck, i64, String)>,
    events: Vec<(Event, i64, String)>,
}

impl DatadogSink {
    pub fn new(host: String, host_tags: Vec<String>, forwarder: Arc<Forwarder>) -> DatadogSink {
        DatadogSink { host, host_tags, gathered: Mutex::default(), forwarder }
    }

    fn with_host_tags(&self, mut tags: Vec<String>) -> Vec<String> {
        for tag in &self.host_tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags
    }
}

impl Sink for DatadogSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
        let timestamp = batch.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut entries = Vec::with_capacity(batch.flushed.series.len());
        for series in &batch.flushed.series {
            let mut tags: Vec<&str> = series.tags.iter().map(String::as_str).collect();
            tags.extend(self.host_tags.iter().map(String::as_str).filter(|tag| !series.tags.iter().any(|t| t == tag)));
            entries.push(payload::series_entry(Point {
                metric: &series.name,
                kind: series.kind,
                value: series.value,
                timestamp,
                tags: &tags,
                host: series.hostname.as_deref().unwrap_or(&self.host),
            }));
        }
        let mut gathered = self.gathered.lock();
        gathered.series.extend(entries);
        for check in &batch.flushed.service_checks {
            let check = ServiceCheck { tags: self.with_host_tags(check.tags.clone()), ..check.clone() };
            gathered.service_checks.push((check, timestamp, self.host.clone()));
        }
        for event in &batch.flushed.events {
            let event = Event { tags: self.with_host_tags(event.tags.clone()), ..event.clone() };
            gathered.events.push((event, timestamp, self.host.clone()));
        }
        Box::pin(std::future::ready(()))
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        let gathered = std::mem::take(&mut *self.gathered.lock());
        let host = self.host.clone();
        Box::pin(async move {
            if gathered.series.is_empty() && gathered.service_checks.is_empty() && gathered.events.is_empty() {
                return;
            }
            // Serializing and compressing thousands of series is CPU work: not on the runtime's thread.
            let built = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let mut payloads = payload::series(&gathered.series);
                payloads.extend(payload::check_run_payloads(&gathered.service_checks));
                payloads.extend(payload::intake_payloads(&gathered.events, &host));
                (payloads, started.elapsed())
            })
            .await;
            match built {
                Ok((payloads, took)) => {
                    self.forwarder.record_flush(took);
                    self.forwarder.submit(payloads).await;
                }
                Err(e) => tracing::error!("building the intake payloads: {e}"),
            }
        })
    }
}
