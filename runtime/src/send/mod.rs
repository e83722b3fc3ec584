//! Where results go after aggregation: the last stage. Runs hand their [`Batch`] to an
//! [`Outbox`], which never waits: a bounded channel feeds one delivery task that owns the
//! [`Sink`]. A slow or stuck sink therefore delays deliveries, never runs; what does not fit in
//! the queue is dropped and counted (`adrt info`). Every flush interval the task asks the sink
//! to flush what it gathered; a sink with a backend of its own (the Datadog forwarder) queues,
//! retries and spools there, never here.
//!
//! - [`LogSink`]: every series at debug level (`ADRT_LOG=adrt::send=debug`).
//! - [`Fanout`]: several sinks, each batch to all of them.
//! - [`datadog`]: the Datadog intake, through a forwarder that retries and spools.
//! - [`prometheus`]: the latest value of every series, for Prometheus to scrape (`--metrics-addr`).
//! - [`otlp`]: an OpenTelemetry collector's `/v1/metrics` (`--otlp-endpoint`), through a forwarder too.

pub mod datadog;
pub mod otlp;
pub mod prometheus;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::aggregate::Flushed;
use crate::resolve::ResolvedConfig;
use crate::status::DeliveryStatus;
use crate::watchdog::panic_message;

/// What one run of one instance produced, after aggregation.
#[derive(Debug, Clone)]
pub struct Batch {
    pub config: Arc<ResolvedConfig>,
    pub flushed: Flushed,
    /// When the run ended: the timestamp of its points.
    pub at: SystemTime,
}

/// A backend. Called by the delivery task only, one call at a time.
pub trait Sink: Send + Sync + 'static {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()>;

    /// The instance is no longer scheduled: what the sink keeps of it goes.
    fn forget(&self, _instance_id: &str) {}

    /// Every flush interval: hand on what was gathered since the last flush.
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// What travels to the delivery task, in order.
enum Delivery {
    Batch(Batch),
    Forget(String),
    /// Flush the sink now and say when done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The runs' end of the delivery queue. Cloned freely; the delivery task stops when the last
/// clone is dropped, after delivering what is queued.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Delivery>,
    capacity: usize,
    counters: Arc<Counters>,
    /// `forget`s that found the queue full: the task applies them after what is queued, which
    /// is older than them.
    late_forgets: Arc<parking_lot::Mutex<Vec<String>>>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// Starts the delivery task of `sink` (on the current tokio runtime) behind a queue of
/// `capacity` batches, flushing the sink every `flush_interval`.
pub fn start(sink: Arc<dyn Sink>, capacity: usize, flush_interval: Duration) -> Outbox {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let counters = Arc::new(Counters::default());
    let late_forgets = Arc::new(parking_lot::Mutex::new(Vec::new()));
    tokio::spawn(deliver(sink, rx, counters.clone(), late_forgets.clone(), flush_interval));
    Outbox { tx, capacity, counters, late_forgets }
}

impl Outbox {
    /// Queues `batch` for the sink without waiting; `false` when the queue is full (the batch is
    /// dropped and counted).
    pub fn offer(&self, batch: Batch) -> bool {
        match self.tx.try_send(Delivery::Batch(batch)) {
            Ok(()) => true,
            Err(refused) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Once, then every 1000th: a stuck sink must not also flood the log.
                if (dropped == 1 || dropped % 1000 == 0)
                    && let Delivery::Batch(batch) = refused.into_inner()
                {
                    tracing::warn!(
                        instance = %batch.config.id,
                        dropped,
                        "the delivery queue ({} batches) is full: results dropped",
                        self.capacity
                    );
                }
                false
            }
        }
    }

    /// The instance is no longer scheduled; the sink hears it after the batches already queued.
    /// Never waits and is never dropped.
    pub fn forget(&self, instance_id: &str) {
        if self.tx.try_send(Delivery::Forget(instance_id.to_string())).is_err() {
            self.late_forgets.lock().push(instance_id.to_string());
        }
    }

    /// Queues `batch`, waiting for room: for a source that can wait (DogStatsD's flush, whose
    /// seconds of timestamped samples may each be a batch), not for check runs.
    pub async fn send(&self, batch: Batch) {
        // Fails only once the delivery task is gone, at the very end: nothing is left to take it.
        let _ = self.tx.send(Delivery::Batch(batch)).await;
    }

    /// Waits until what was queued before this call is delivered and the sink flushed it: at
    /// shutdown, before the sinks' forwarders persist what they still hold.
    pub async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.tx.send(Delivery::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    pub fn status(&self) -> DeliveryStatus {
        DeliveryStatus {
            queued: self.capacity - self.tx.capacity(),
            capacity: self.capacity,
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }
}

/// Hands each batch to the sink in order and flushes it every `flush_interval`; when the last
/// outbox is gone, flushes once more and ends. A sink that panics loses that batch (counted as
/// failed) or that flush, not the task.
async fn deliver(
    sink: Arc<dyn Sink>,
    mut rx: mpsc::Receiver<Delivery>,
    counters: Arc<Counters>,
    late_forgets: Arc<parking_lot::Mutex<Vec<String>>>,
    flush_interval: Duration,
) {
    let mut flush = tokio::time::interval_at(tokio::time::Instant::now() + flush_interval, flush_interval);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let delivery = tokio::select! {
            delivery = rx.recv() => delivery,
            _ = flush.tick() => {
                flush_guarded(&*sink).await;
                continue;
            }
        };
        match delivery {
            Some(Delivery::Batch(batch)) => {
                match AssertUnwindSafe(sink.send(&batch)).catch_unwind().await {
                    Ok(()) => counters.sent.fetch_add(1, Ordering::Relaxed),
                    Err(panic) => {
                        tracing::error!(instance = %batch.config.id, "internal error delivering results: {}", panic_message(&*panic));
                        counters.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            Some(Delivery::Forget(id)) => sink.forget(&id),
            Some(Delivery::Flush(done)) => {
                flush_guarded(&*sink).await;
                let _ = done.send(());
            }
            None => {
                flush_guarded(&*sink).await;
                return;
            }
        }
        let late: Vec<String> = std::mem::take(&mut *late_forgets.lock());
        for id in late {
            sink.forget(&id);
        }
    }
}

async fn flush_guarded(sink: &dyn Sink) {
    if let Err(panic) = AssertUnwindSafe(sink.flush()).catch_unwind().await {
        tracing::error!("internal error flushing results: {}", panic_message(&*panic));
    }
}

/// Every batch to each sink in turn; a flush or forget to all.
pub struct Fanout(pub Vec<Arc<dyn Sink>>);

impl Sink for Fanout {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for sink in &self.0 {
                sink.send(batch).await;
            }
        })
    }

    fn forget(&self, instance_id: &str) {
        for sink in &self.0 {
            sink.forget(instance_id);
        }
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for sink in &self.0 {
                sink.flush().await;
            }
        })
    }
}

/// Logs each run's series, service checks and events at debug level.
pub struct LogSink;

impl Sink for LogSink {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let id = &batch.config.id;
            for s in &batch.flushed.series {
                tracing::debug!(instance = %id, metric = %s.name, value = s.value, tags = ?s.tags, "series");
            }
            for c in &batch.flushed.service_checks {
                tracing::debug!(instance = %id, service_check = %c.name, status = ?c.status, tags = ?c.tags, "service check");
            }
            for e in &batch.flushed.events {
                tracing::debug!(instance = %id, event = ?e, "event");
            }
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;
    use serde_json::Value;

    use super::*;
    use crate::resolve::Source;

    fn batch(id: &str) -> Batch {
        let config = ResolvedConfig {
            id: id.into(),
            check: "c".into(),
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
        Batch { config: Arc::new(config), flushed: Flushed::default(), at: SystemTime::now() }
    }

    /// Records what it got; panics on `panic:` IDs; waits for `gate` before each delivery.
    struct Recorder {
        got: Mutex<Vec<String>>,
        gate: tokio::sync::Semaphore,
    }

    fn recorder() -> Arc<Recorder> {
        Arc::new(Recorder { got: Mutex::default(), gate: tokio::sync::Semaphore::new(0) })
    }

    impl Sink for Recorder {
        fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                self.gate.acquire().await.unwrap().forget();
                assert!(!batch.config.id.starts_with("panic:"), "the sink broke");
                self.got.lock().push(batch.config.id.clone());
            })
        }
    }

    async fn settle(outbox: &Outbox, delivered: u64) {
        for _ in 0..1000 {
            let status = outbox.status();
            if status.sent + status.failed >= delivered {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("not delivered: {:?}", outbox.status());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_without_waiting_and_counts() {
        let sink = recorder();
        let outbox = start(sink.clone(), 2, Duration::from_secs(3600));
        // The sink is stuck (no permits): one batch is in its hands, two wait, the rest cannot.
        assert!(outbox.offer(batch("a")));
        for _ in 0..100 {
            if outbox.status().queued == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(outbox.offer(batch("b")) && outbox.offer(batch("c")));
        assert!(!outbox.offer(batch("d")), "the queue is full");
        assert!(!outbox.offer(batch("e")));
        let status = outbox.status();
        assert_eq!((status.queued, status.dropped, status.sent), (2, 2, 0), "{status:?}");
        sink.gate.add_permits(10);
        settle(&outbox, 3).await;
        assert_eq!(*sink.got.lock(), ["a", "b", "c"], "delivered in order, nothing dropped twice");
        assert!(outbox.offer(batch("f")), "room again once the sink caught up");
    }

    #[tokio::test]
    async fn a_panicking_sink_loses_that_batch_only() {
        let sink = recorder();
        sink.gate.add_permits(10);
        let outbox = start(sink.clone(), 8, Duration::from_secs(3600));
        for id in ["a", "panic:b", "c"] {
            assert!(outbox.offer(batch(id)));
        }
        settle(&outbox, 3).await;
        assert_eq!(*sink.got.lock(), ["a", "c"]);
        let status = outbox.status();
        assert_eq!((status.sent, status.failed, status.dropped), (2, 1, 0), "{status:?}");
    }
}
