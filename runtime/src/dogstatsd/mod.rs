//! DogStatsD: applications on the node send their own metrics, events and service checks
//! (Datadog's DogStatsD protocol, v1.0–v1.3) over UDP and over a Unix datagram socket; they are
//! tagged with the sender's pod, aggregated ([`aggregate`]) and handed to `send` like a check's
//! results, every flush interval.
//!
//! Origin detection: a datagram on the Unix socket carries its sender's pid (`SO_PASSCRED`),
//! which names a cgroup, which names a container ([`origin`]); the agent's discovery knows that
//! container's pod and hands its tags over as an [`OriginIndex`]. On UDP a client names its own
//! container (`|c:<id>`) or pod (`dd.internal.entity_id:<pod uid>`); those can be forged, so on
//! the socket the credentials win when both are there.
//!
//! Each listener has a thread of its own that receives, parses and aggregates, so the async
//! runtime's timers never wait for a flood of packets; they meet the flush only at the
//! aggregator's lock, once per packet.

pub mod aggregate;
pub mod origin;
pub mod parse;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};

use crate::config::DogstatsdConfig;
use crate::resolve::ResolvedConfig;
use crate::send::{Batch, Outbox};
use crate::status::DogstatsdStatus;
use crate::tagger::OriginIndex;
use aggregate::{Aggregator, Refused};

/// The instance DogStatsD's results are sent as (`adrt_instance_id` in `/metrics`).
pub const INSTANCE_ID: &str = "adrt:dogstatsd";

/// The running server. Dropping it does not stop its threads: they end with the process.
pub struct DogStatsd {
    shared: Arc<Shared>,
    listeners: Vec<String>,
    errors: Vec<String>,
    config: Arc<ResolvedConfig>,
}

/// What the receiving threads and the flush share.
struct Shared {
    aggregator: Mutex<Aggregator>,
    origins: RwLock<Arc<OriginIndex>>,
    procfs: PathBuf,
    stats: Stats,
    /// When a malformed message was last logged (ms since `started`), and how many were not.
    last_complaint: AtomicU64,
    unlogged: AtomicU64,
    started: Instant,
}

#[derive(Default)]
struct Stats {
    udp_packets: AtomicU64,
    udp_bytes: AtomicU64,
    uds_packets: AtomicU64,
    uds_bytes: AtomicU64,
    truncated: AtomicU64,
    samples: AtomicU64,
    events: AtomicU64,
    service_checks: AtomicU64,
    /// Indexed like [`parse::REASONS`].
    parse_errors: Vec<AtomicU64>,
    context_limit: AtomicU64,
    set_limit: AtomicU64,
    event_limit: AtomicU64,
    origin_from_credentials: AtomicU64,
    origin_from_fields: AtomicU64,
}

impl DogStatsd {
    /// Binds the listeners `config` asks for and starts their threads. A listener that cannot
    /// bind is logged and shown in the status, as the Datadog agent does: the checks run on.
    pub fn start(config: &DogstatsdConfig, procfs: impl Into<PathBuf>) -> DogStatsd {
        let stats = Stats { parse_errors: parse::REASONS.iter().map(|_| AtomicU64::new(0)).collect(), ..Stats::default() };
        let shared = Arc::new(Shared {
            aggregator: Mutex::new(Aggregator::new(config.max_contexts)),
            origins: RwLock::new(Arc::new(OriginIndex::default())),
            procfs: procfs.into(),
            stats,
            last_complaint: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            started: Instant::now(),
        });
        let (mut listeners, mut errors) = (Vec::new(), Vec::new());
        if let Some(addr) = config.udp_addr {
            match server::start_udp(shared.clone(), addr, config.buffer_size) {
                Ok(bound) => listeners.push(format!("udp://{bound}")),
                Err(e) => errors.push(format!("UDP {addr}: {e}")),
            }
        }
        if let Some(path) = &config.socket {
            match server::start_unix(shared.clone(), path, config.buffer_size.max(8192)) {
                Ok(()) => listeners.push(format!("unix://{}", path.display())),
                Err(e) => errors.push(format!("Unix socket {}: {e}", path.display())),
            }
        }
        for listener in &listeners {
            tracing::info!("DogStatsD listening on {listener}");
        }
        for error in &errors {
            tracing::error!("DogStatsD cannot listen: {error}");
        }
        let config = Arc::new(ResolvedConfig::agent_source(INSTANCE_ID, "dogstatsd", "DogStatsD"));
        DogStatsd { shared, listeners, errors, config }
    }

    /// The pods' tags by container ID and pod UID, after each discovery snapshot.
    pub fn set_origins(&self, index: Arc<OriginIndex>) {
        *self.shared.origins.write() = index;
    }

    /// Every flush interval: the closed buckets (all of them when `everything`, at shutdown)
    /// and what else waits, to the outbox.
    pub async fn flush(&self, outbox: &Outbox, everything: bool) {
        let now = unix_seconds(SystemTime::now());
        let due = self.shared.aggregator.lock().take_due(now, everything);
        for (at, flushed) in due.into_batches() {
            outbox.send(Batch { config: self.config.clone(), flushed, at }).await;
        }
    }

    /// Flushes every `interval` until the process ends.
    pub async fn flush_every(self: Arc<Self>, outbox: Outbox, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush(&outbox, false).await;
        }
    }

    pub fn status(&self) -> DogstatsdStatus {
        let stats = &self.shared.stats;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let parse_errors = parse::REASONS
            .iter()
            .zip(&stats.parse_errors)
            .map(|(reason, count)| (reason.to_string(), load(count)))
            .filter(|(_, count)| *count > 0)
            .collect();
        let dropped = [
            ("context_limit", &stats.context_limit),
            ("set_limit", &stats.set_limit),
            ("event_limit", &stats.event_limit),
        ]
        .into_iter()
        .map(|(reason, count)| (reason.to_string(), load(count)))
        .filter(|(_, count)| *count > 0)
        .collect();
        DogstatsdStatus {
            listeners: self.listeners.clone(),
            errors: self.errors.clone(),
            udp_packets: load(&stats.udp_packets),
            udp_bytes: load(&stats.udp_bytes),
            uds_packets: load(&stats.uds_packets),
            uds_bytes: load(&stats.uds_bytes),
            truncated_packets: load(&stats.truncated),
            metric_samples: load(&stats.samples),
            events: load(&stats.events),
            service_checks: load(&stats.service_checks),
            parse_errors,
            dropped,
            origin_from_credentials: load(&stats.origin_from_credentials),
            origin_from_fields: load(&stats.origin_from_fields),
            known_origins: self.shared.origins.read().len(),
            contexts: self.shared.aggregator.lock().contexts(),
        }
    }
}

impl Stats {
    /// Counts an event or service check in `taken`, or why it was refused.
    fn counted(&self, added: Result<(), Refused>, taken: &AtomicU64) {
        match added {
            Ok(()) => {
                taken.fetch_add(1, Ordering::Relaxed);
            }
            Err(refused) => self.refused(refused),
        }
    }

    fn refused(&self, refused: Refused) {
        let counter = match refused {
            Refused::ContextLimit => &self.context_limit,
            Refused::SetLimit => &self.set_limit,
            Refused::EventLimit => &self.event_limit,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
