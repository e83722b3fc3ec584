//! Where results go after aggregation. Forwarding to the Datadog intake or serving Prometheus
//! exposition plugs in here as another [`Sink`]; for now the agent logs what it would send
//! (`ADRT_LOG=adrt::send=debug` shows every series).

use crate::aggregate::Flushed;
use crate::resolve::ResolvedConfig;
use crate::schedule::Sink;

/// Logs each run's series, service checks and events at debug level.
pub struct LogSink;

impl Sink for LogSink {
    fn send(&self, config: &ResolvedConfig, flushed: &Flushed) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        for s in &flushed.series {
            tracing::debug!(instance = %config.id, metric = %s.name, value = s.value, tags = ?s.tags, "series");
        }
        for c in &flushed.service_checks {
            tracing::debug!(instance = %config.id, service_check = %c.name, status = ?c.status, tags = ?c.tags, "service check");
        }
        for e in &flushed.events {
            tracing::debug!(instance = %config.id, event = ?e, "event");
        }
    }
}
