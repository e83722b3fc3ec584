//! Where results go after aggregation: the last stage. Runs hand their [`Batch`] to an
//! [`Outbox`], which never waits: a bounded channel feeds one delivery task that owns the
//! [`Sink`]. A slow or stuck sink therefore delays deliveries, never runs; what does not fit in
//! the queue is dropped and counted (`adrt info` shows it; spooling it is the delivery work's).
//! Forwarding to the Datadog intake or serving Prometheus exposition plugs in as another
//! [`Sink`]; for now the agent logs what it would send (`ADRT_LOG=adrt::send=debug`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// A backend. Called by the delivery task only, one batch at a time.
pub trait Sink: Send + Sync + 'static {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()>;
}

/// The runs' end of the delivery queue. Cloned freely; the delivery task stops when the last
/// clone is dropped, after delivering what is queued.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Batch>,
    capacity: usize,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// Starts the delivery task of `sink` (on the current tokio runtime) behind a queue of
/// `capacity` batches.
pub fn start(sink: Arc<dyn Sink>, capacity: usize) -> Outbox {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let counters = Arc::new(Counters::default());
    tokio::spawn(deliver(sink, rx, counters.clone()));
    Outbox { tx, capacity, counters }
}

impl Outbox {
    /// Queues `batch` for the sink without waiting; `false` when the queue is full (the batch is
    /// dropped and counted).
    pub fn offer(&self, batch: Batch) -> bool {
        match self.tx.try_send(batch) {
            Ok(()) => true,
            Err(refused) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let batch = match &refused {
                    mpsc::error::TrySendError::Full(batch) | mpsc::error::TrySendError::Closed(batch) => batch,
                };
                // Once, then every 1000th: a stuck sink must not also flood the log.
                if dropped == 1 || dropped % 1000 == 0 {
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

/// Hands each batch to the sink in order. A sink that panics loses that batch (counted as
/// failed), not the task.
async fn deliver(sink: Arc<dyn Sink>, mut rx: mpsc::Receiver<Batch>, counters: Arc<Counters>) {
    while let Some(batch) = rx.recv().await {
        match AssertUnwindSafe(sink.send(&batch)).catch_unwind().await {
            Ok(()) => counters.sent.fetch_add(1, Ordering::Relaxed),
            Err(panic) => {
                tracing::error!(instance = %batch.config.id, "internal error delivering results: {}", panic_message(&*panic));
                counters.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
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
    use std::time::Duration;

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
        };
        Batch { config: Arc::new(config), flushed: Flushed::default() }
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
        let outbox = start(sink.clone(), 2);
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
        let outbox = start(sink.clone(), 8);
        for id in ["a", "panic:b", "c"] {
            assert!(outbox.offer(batch(id)));
        }
        settle(&outbox, 3).await;
        assert_eq!(*sink.got.lock(), ["a", "c"]);
        let status = outbox.status();
        assert_eq!((status.sent, status.failed, status.dropped), (2, 1, 0), "{status:?}");
    }
}
