//! Getting payloads to the intake, whatever the intake does: one worker sends them one at a time,
//! oldest waiting first, and retries what failed for a reason that may pass — a connection error
//! or timeout, 5xx, 408, 429 — with exponential backoff and jitter (as the Datadog agent: 2 s
//! doubling to 64 s, a random point in the upper half), or after `Retry-After` when the intake
//! says. Any other 4xx is final: the payload is dropped, counted, and logged (the first time per
//! status, then every 100th) with the intake's message.
//!
//! Payloads wait in memory up to the memory bound, then in the [`Spool`] on disk; the spool is
//! replayed after a restart, and [`Forwarder::persist`] (on SIGTERM) moves what is in memory
//! there. A payload leaves memory or the spool only once the intake took it with a 2xx, so none
//! is lost to an outage and none is sent again after a 2xx (a crash between the 2xx and the
//! spool file's removal is the one window where one would be).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::payload::Payload;
use super::spool::Spool;
use crate::config::Outbound;
use crate::status::ForwarderStatus;
use crate::text::with_causes;

const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(64);
/// A `Retry-After` longer than this is taken as this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct ForwarderSettings {
    /// `https://api.datadoghq.com`, or `dd_url`; a collector's base URL for OTLP.
    pub intake_url: String,
    /// Datadog's API key (`DD-API-KEY`, validated at start); `None` for an OTLP collector.
    pub api_key: Option<String>,
    pub memory_bytes: usize,
    /// `None`: no spool (it could not be opened); what does not fit in memory is dropped.
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    pub outbound: Outbound,
}

/// Where a payload waits, and which one it is there.
enum Waiting {
    Memory(u64),
    Spool(u64),
}

pub struct Forwarder {
    settings: ForwarderSettings,
    http: reqwest::Client,
    /// Oldest first, each with a number of its own: the worker removes the one it sent, even if
    /// `persist` moved the queue meanwhile.
    memory: Mutex<VecDeque<(u64, Payload)>>,
    next_id: std::sync::atomic::AtomicU64,
    spool: Option<Arc<Mutex<Spool>>>,
    wake: Notify,
    stats: Mutex<ForwarderStatus>,
}

/// How one attempt ended.
enum Outcome {
    Sent,
    /// Final: the payload goes.
    Refused { status: u16, message: String },
    Retry { error: String, after: Option<Duration> },
}

impl Forwarder {
    /// Opens the spool (a failure is logged: the forwarder then keeps payloads in memory only),
    /// validates the API key and starts the worker.
    pub fn start(settings: ForwarderSettings) -> anyhow::Result<Arc<Forwarder>> {
        let http = client(&settings.outbound)?;
        let spool = settings.spool_dir.as_ref().and_then(|dir| match Spool::open(dir, settings.spool_max_bytes) {
            Ok(spool) => {
                if spool.files() > 0 {
                    tracing::info!(dir = %dir.display(), payloads = spool.files(), "replaying the payloads spooled by an earlier run");
                }
                Some(Arc::new(Mutex::new(spool)))
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "no spool ({e}): payloads the intake cannot take wait in memory only");
                None
            }
        });
        let forwarder = Arc::new(Forwarder {
            settings,
            http,
            memory: Mutex::default(),
            next_id: Default::default(),
            spool,
            wake: Notify::new(),
            stats: Mutex::new(ForwarderStatus::default()),
        });
        if forwarder.settings.api_key.is_some() {
            tokio::spawn(forwarder.clone().validate_api_key());
        }
        tokio::spawn(forwarder.clone().work());
        Ok(forwarder)
    }

    /// Queues payloads: in memory while under its bound, else in the spool.
    pub async fn submit(&self, payloads: Vec<Payload>) {
        let mut overflow = Vec::new();
        {
            let mut memory = self.memory.lock();
            let mut used: usize = memory.iter().map(|(_, p)| p.body.len()).sum();
            for payload in payloads {
                if used + payload.body.len() <= self.settings.memory_bytes {
                    used += payload.body.len();
                    memory.push_back((self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed), payload));
                } else {
                    overflow.push(payload);
                }
            }
        }
        self.spill(overflow).await;
        self.wake.notify_one();
    }

    /// Moves what waits in memory to the spool (before the agent exits).
    pub async fn persist(&self) {
        let waiting: Vec<Payload> = self.memory.lock().drain(..).map(|(_, payload)| payload).collect();
        if !waiting.is_empty() {
            tracing::info!(payloads = waiting.len(), "writing the payloads still in memory to the spool");
        }
        self.spill(waiting).await;
    }

    async fn spill(&self, payloads: Vec<Payload>) {
        if payloads.is_empty() {
            return;
        }
        let Some(spool) = self.spool.clone() else {
            let mut stats = self.stats.lock();
            stats.dropped += payloads.len() as u64;
            tracing::warn!(payloads = payloads.len(), "the forwarder's memory is full and there is no spool: payloads dropped");
            return;
        };
        let written = tokio::task::spawn_blocking(move || {
            let mut spool = spool.lock();
            let mut failed = 0;
            for payload in &payloads {
                if let Err(e) = spool.push(payload) {
                    tracing::error!("spooling a payload: {e}");
                    failed += 1;
                }
            }
            failed
        })
        .await;
        if let Ok(failed) = written {
            self.stats.lock().dropped += failed;
        }
    }

    /// How long the last flush took to build its payloads.
    pub fn record_flush(&self, took: Duration) {
        self.stats.lock().last_flush_ms = took.as_secs_f64() * 1000.0;
    }

    pub fn status(&self) -> ForwarderStatus {
        let mut status = self.stats.lock().clone();
        let memory = self.memory.lock();
        status.memory_payloads = memory.len();
        status.memory_bytes = memory.iter().map(|(_, p)| p.body.len()).sum();
        if let Some(spool) = &self.spool {
            let spool = spool.lock();
            (status.spool_payloads, status.spool_bytes) = (spool.files(), spool.bytes());
            (status.spool_dropped, status.spool_unreadable) = (spool.dropped, spool.unreadable);
        }
        status
    }

    /// The next payload to send: memory first (it is what a restart would lose), then the spool.
    async fn next(&self) -> Option<(Waiting, Payload)> {
        if let Some((id, payload)) = self.memory.lock().front().cloned() {
            return Some((Waiting::Memory(id), payload));
        }
        let spool = self.spool.clone()?;
        let oldest = tokio::task::spawn_blocking(move || spool.lock().oldest()).await.ok()??;
        Some((Waiting::Spool(oldest.0), oldest.1))
    }

    async fn done(&self, waiting: Waiting) {
        match waiting {
            Waiting::Memory(id) => self.memory.lock().retain(|(waiting, _)| *waiting != id),
            Waiting::Spool(sequence) => {
                if let Some(spool) = self.spool.clone() {
                    let _ = tokio::task::spawn_blocking(move || spool.lock().remove(sequence)).await;
                }
            }
        }
    }

    async fn work(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            let Some((waiting, payload)) = self.next().await else {
                self.wake.notified().await;
                continue;
            };
            match self.attempt(&payload).await {
                Outcome::Sent => {
                    failures = 0;
                    {
                        let mut stats = self.stats.lock();
                        stats.success += 1;
                        stats.items_sent += payload.items as u64;
                        stats.bytes_sent += payload.body.len() as u64;
                    }
                    self.done(waiting).await;
                }
                Outcome::Refused { status, message } => {
                    let refused = {
                        let mut stats = self.stats.lock();
                        stats.dropped += 1;
                        let count = stats.errors.entry(format!("HTTP {status} (dropped)")).or_default();
                        *count += 1;
                        *count
                    };
                    if refused == 1 || refused % 100 == 0 {
                        let message = crate::text::excerpt(&message, 300);
                        tracing::error!(endpoint = payload.endpoint.path(), status, refused, "the intake refused a payload: {message}");
                    }
                    self.done(waiting).await;
                }
                Outcome::Retry { error, after } => {
                    failures = failures.saturating_add(1);
                    let wait = after.unwrap_or_else(|| backoff(failures));
                    {
                        let mut stats = self.stats.lock();
                        stats.retried += 1;
                        *stats.errors.entry(error.clone()).or_default() += 1;
                    }
                    if failures == 1 || failures % 10 == 0 {
                        tracing::warn!(endpoint = payload.endpoint.path(), failures, "sending to the intake failed ({error}); retrying in {wait:?}");
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, payload: &Payload) -> Outcome {
        let url = format!("{}{}", self.settings.intake_url, payload.endpoint.path());
        let (content_type, encoding) = payload.endpoint.content();
        let mut request = self.http.post(&url).header("Content-Type", content_type).header("Content-Encoding", encoding);
        if let Some(key) = &self.settings.api_key {
            request = request.header("DD-API-KEY", key).header("DD-Agent-Version", env!("CARGO_PKG_VERSION"));
        }
        let response = request.body(payload.body.clone()).send().await;
        let response = match response {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return Outcome::Retry { error: "timeout".into(), after: None },
            Err(e) => {
                tracing::debug!("intake request: {}", with_causes(&e));
                return Outcome::Retry { error: "connection".into(), after: None };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Sent;
        }
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|seconds| Duration::from_secs(seconds).min(RETRY_AFTER_MAX));
        let code = status.as_u16();
        if status.is_server_error() || code == 408 || code == 429 {
            return Outcome::Retry { error: format!("HTTP {code}"), after };
        }
        let message = response.text().await.unwrap_or_default();
        Outcome::Refused { status: code, message }
    }

    /// `GET /api/v1/validate`: 200 valid, 403 invalid, anything else unknown (as the Datadog
    /// agent, which takes an outage for a valid key).
    async fn validate_api_key(self: Arc<Self>) {
        let url = format!("{}/api/v1/validate", self.settings.intake_url);
        let key = self.settings.api_key.as_deref().unwrap_or_default();
        let valid = match self.http.get(&url).header("DD-API-KEY", key).send().await {
            Ok(response) if response.status().is_success() => Some(true),
            Ok(response) if response.status().as_u16() == 403 => Some(false),
            Ok(response) => {
                tracing::warn!("validating the API key: HTTP {}", response.status().as_u16());
                None
            }
            Err(e) => {
                tracing::warn!("validating the API key: {}", with_causes(&e));
                None
            }
        };
        if valid == Some(false) {
            tracing::error!(intake = %self.settings.intake_url, "the intake says the API key is invalid: nothing will be accepted");
        }
        self.stats.lock().api_key_valid = valid;
    }
}

/// The HTTP client to the intake: proxies, an extra CA, or no verification, as configured.
fn client(outbound: &Outbound) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("adrt/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(outbound.skip_tls_verify);
    let no_proxy = reqwest::NoProxy::from_string(&outbound.no_proxy.join(","));
    if let Some(url) = &outbound.proxy_http {
        builder = builder.proxy(reqwest::Proxy::http(url)?.no_proxy(no_proxy.clone()));
    }
    if let Some(url) = &outbound.proxy_https {
        builder = builder.proxy(reqwest::Proxy::https(url)?.no_proxy(no_proxy));
    }
    if let Some(path) = &outbound.ca_file {
        let pem = crate::regular_file::read(path, 1 << 20).map_err(|e| anyhow::anyhow!("intake CA file {}: {e}", path.display()))?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder.build()?)
}

/// Base doubling per failure up to the max, then a random point in its upper half.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX);
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_max_with_jitter_in_the_upper_half() {
        for (failures, ceiling) in [(1, 2), (2, 4), (3, 8), (6, 64), (7, 64), (1000, 64)] {
            for _ in 0..50 {
                let wait = backoff(failures);
                let ceiling = Duration::from_secs(ceiling);
                assert!(wait >= ceiling / 2 && wait <= ceiling, "{failures}: {wait:?}");
            }
        }
    }
}
