//! Pod discovery: the three listeners (kubelet `/pods` polling, API server watch, a pods file)
//! and the one event type they all produce, so nothing downstream cares which one runs.
//!
//! Every listener sends the FULL current set of this node's pods (`PodEvent::Snapshot`), and only
//! when something discovery reads changed (see `change`); its first snapshot is always sent, even
//! when empty. An `Error` never invalidates the last snapshot. The polling listeners (kubelet,
//! file) also resend the snapshot on their first success after an error, so a consumer showing
//! the error can clear it; the API watch recovers silently (kube-runtime resumes or relists).

mod change;
mod file;
mod kube;
mod kubelet;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::pod::Pod;
use crate::text::with_causes;

pub use file::{FileListener, parse_pods};
pub use kube::{ApiListener, api_client};
pub use kubelet::{KubeletClient, KubeletListener};

/// What every listener sends.
#[derive(Debug, Clone, PartialEq)]
pub enum PodEvent {
    /// The full current set of this node's pods, sorted by namespace then name.
    Snapshot(Vec<Pod>),
    /// The source failed (the message names the URL or file); the last snapshot stays in force
    /// and the listener keeps retrying.
    Error(String),
}

/// One of the three pod sources.
pub enum Listener {
    Kubelet(KubeletListener),
    Api(ApiListener),
    File(FileListener),
}

impl Listener {
    /// Runs until `tx` is closed. Never returns early on errors: they become `PodEvent::Error`
    /// and the listener retries.
    pub async fn run(self, tx: mpsc::Sender<PodEvent>) {
        match self {
            Listener::Kubelet(l) => l.run(tx).await,
            Listener::Api(l) => l.run(tx).await,
            Listener::File(l) => l.run(tx).await,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Listener::Kubelet(_) => "kubelet",
            Listener::Api(_) => "api",
            Listener::File(_) => "file",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("kubelet TLS settings: {what}: {}", with_causes(&**source))]
    TlsConfig { what: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("GET {url}: {}", with_causes(source))]
    Request { url: String, source: reqwest::Error },
    #[error("GET {url}: decoding the pod list: {source}")]
    DecodeTask { url: String, source: tokio::task::JoinError },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: not a PodList: {source}")]
    Decode { url: String, source: serde_json::Error },
    #[error("kubelet unreachable: {0}")]
    Unreachable(String),
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", located(path, *at))]
    Parse { path: PathBuf, at: Option<(usize, usize)>, message: String },
    #[error("API server {server}: {reason}")]
    Api { server: String, reason: String },
    /// `url` is the one given, if any.
    #[error("API server client: {}{}", url.as_ref().map_or(String::new(), |u| format!("{u}: ")), with_causes(&**source))]
    ApiConfig { url: Option<String>, source: Box<dyn std::error::Error + Send + Sync> },
}

/// `file:line:column` (1-based) when serde knows where, else just the file.
fn located(path: &Path, at: Option<(usize, usize)>) -> String {
    match at {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

/// Pods in a stable order, so equal sets compare equal and logs are readable.
fn sorted(mut pods: Vec<Pod>) -> Vec<Pod> {
    pods.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name, &a.metadata.uid).cmp(&(
            &b.metadata.namespace,
            &b.metadata.name,
            &b.metadata.uid,
        ))
    });
    pods
}

/// Waits `delay`, or returns false at once if the receiver went away (time to stop).
async fn sleep_unless_closed(tx: &mpsc::Sender<PodEvent>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = tx.closed() => false,
    }
}

/// The next delay after `failures` consecutive failures: doubling from `base`, capped at 30 s.
fn backoff(base: Duration, failures: u32) -> Duration {
    const MAX: Duration = Duration::from_secs(30);
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 0), base);
        assert_eq!(backoff(base, 1), Duration::from_secs(4));
        assert_eq!(backoff(base, 3), Duration::from_secs(16));
        assert_eq!(backoff(base, 4), Duration::from_secs(30));
        assert_eq!(backoff(base, 1000), Duration::from_secs(30));
        assert_eq!(backoff(Duration::from_secs(60), 2), Duration::from_secs(30));
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let err = DiscoverError::Parse { path: "/etc/pods.yaml".into(), at: Some((3, 7)), message: "bad".into() };
        assert_eq!(err.to_string(), "/etc/pods.yaml:3:7: bad");
    }
}
