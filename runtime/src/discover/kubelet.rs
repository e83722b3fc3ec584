//! The kubelet listener: polls the node's kubelet `/pods` and sends a snapshot when a pod
//! appeared, went away or changed in a way discovery cares about.
//!
//! Without an explicit URL it tries the authenticated port (`https://<host>:10250`, bearer token
//! of the service account, often a self-signed serving certificate), then the read-only port
//! (`http://<host>:10255`, disabled on most modern clusters), and sticks to whichever answered.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::change::ChangeFilter;
use super::{DiscoverError, PodEvent, backoff, sleep_unless_closed, sorted};
use crate::pod::{Pod, PodList};

const SECURE_PORT: u16 = 10250;
const READ_ONLY_PORT: u16 = 10255;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A token file larger than this is not a token.
const MAX_TOKEN_BYTES: u64 = 64 << 10;

#[derive(Debug, Clone)]
pub struct KubeletListener {
    /// Base URL (`https://10.0.0.1:10250`); None: try the secure port, then the read-only one.
    pub url: Option<String>,
    /// The node's address (usually the host IP from the downward API).
    pub host: String,
    pub tls_verify: bool,
    /// PEM bundle that signed the kubelet's serving certificate.
    pub ca_file: Option<PathBuf>,
    /// Bearer token file, re-read before each request because it rotates.
    pub token_file: Option<PathBuf>,
    pub poll: Duration,
}

impl KubeletListener {
    /// In-cluster defaults: discovered URL, certificate verified, service-account token, 2 s poll.
    pub fn new(host: impl Into<String>) -> Self {
        KubeletListener {
            url: None,
            host: host.into(),
            tls_verify: true,
            ca_file: None,
            token_file: Some(PathBuf::from(crate::config::SERVICE_ACCOUNT_TOKEN)),
            poll: Duration::from_secs(2),
        }
    }

    /// A client for these settings (reads the CA file).
    pub fn client(&self) -> Result<KubeletClient, DiscoverError> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .danger_accept_invalid_certs(!self.tls_verify);
        if let Some(ca) = &self.ca_file {
            // Regular and bounded: read on the runtime's thread, it cannot block or run long.
            let pem = crate::regular_file::read(ca, 1 << 20)
                .map_err(|e| DiscoverError::TlsConfig { what: format!("reading {}", ca.display()), source: e.into() })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| DiscoverError::TlsConfig { what: ca.display().to_string(), source: e.into() })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| DiscoverError::TlsConfig { what: "building the client".into(), source: e.into() })?;
        Ok(KubeletClient::new(http, endpoints(self.url.as_deref(), &self.host), self.token_file.clone()))
    }

    /// One `/pods` request, for introspection (`adrt` commands that show what the kubelet sees).
    pub async fn fetch_once(&self) -> Result<Vec<Pod>, DiscoverError> {
        self.client()?.fetch().await
    }

    /// Polls every `poll` until `tx` closes; after failures the delay doubles up to 30 s.
    pub async fn run(self, tx: mpsc::Sender<PodEvent>) {
        let mut client: Option<KubeletClient> = None;
        let mut filter = ChangeFilter::default();
        let mut failures = 0u32;
        loop {
            let attempt = async {
                match &mut client {
                    Some(c) => c.fetch().await,
                    None => {
                        let c = self.client()?;
                        client.insert(c).fetch().await
                    }
                }
            };
            let result = tokio::select! {
                r = attempt => r,
                _ = tx.closed() => return,
            };
            let event = match result {
                Ok(pods) => {
                    failures = 0;
                    filter.changed(&pods).then(|| PodEvent::Snapshot(sorted(pods)))
                }
                Err(err) => {
                    failures += 1;
                    filter.reset();
                    tracing::warn!(error = %err, failures, "kubelet pod list failed");
                    Some(PodEvent::Error(err.to_string()))
                }
            };
            if let Some(event) = event
                && tx.send(event).await.is_err()
            {
                return;
            }
            let delay = if failures == 0 { self.poll } else { backoff(self.poll, failures - 1) };
            if !sleep_unless_closed(&tx, delay).await {
                return;
            }
        }
    }
}

/// A kubelet base URL to try.
#[derive(Debug, Clone, PartialEq)]
struct Endpoint {
    base: String,
    /// The read-only port takes no credentials; never hand the token to a plain-HTTP guess.
    send_token: bool,
}

fn endpoints(url: Option<&str>, host: &str) -> Vec<Endpoint> {
    if let Some(url) = url {
        return vec![Endpoint { base: url.trim_end_matches('/').to_string(), send_token: true }];
    }
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    vec![
        Endpoint { base: format!("https://{host}:{SECURE_PORT}"), send_token: true },
        Endpoint { base: format!("http://{host}:{READ_ONLY_PORT}"), send_token: false },
    ]
}

/// Fetches `/pods`, remembering which endpoint answered last.
pub struct KubeletClient {
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    /// Index of the endpoint that worked last; tried first.
    preferred: usize,
    token_file: Option<PathBuf>,
}

impl KubeletClient {
    fn new(http: reqwest::Client, endpoints: Vec<Endpoint>, token_file: Option<PathBuf>) -> Self {
        KubeletClient { http, endpoints, preferred: 0, token_file }
    }

    /// The base URL tried first (the one that answered last).
    pub fn url(&self) -> &str {
        &self.endpoints[self.preferred].base
    }

    /// The kubelet's pods; on failure the error names every URL tried.
    pub async fn fetch(&mut self) -> Result<Vec<Pod>, DiscoverError> {
        let mut errors = Vec::new();
        for i in self.order() {
            match self.get(&self.endpoints[i]).await {
                Ok(pods) => {
                    if i != self.preferred {
                        tracing::info!(url = %self.endpoints[i].base, "using kubelet endpoint");
                        self.preferred = i;
                    }
                    return Ok(pods);
                }
                Err(err) => errors.push(err),
            }
        }
        if errors.len() == 1 {
            Err(errors.remove(0))
        } else {
            Err(DiscoverError::Unreachable(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))
        }
    }

    /// Endpoint indexes: the preferred one first, then the others in their original order.
    fn order(&self) -> Vec<usize> {
        std::iter::once(self.preferred).chain((0..self.endpoints.len()).filter(|&i| i != self.preferred)).collect()
    }

    async fn get(&self, endpoint: &Endpoint) -> Result<Vec<Pod>, DiscoverError> {
        let url = format!("{}/pods", endpoint.base);
        let mut request = self.http.get(&url);
        if endpoint.send_token
            && let Some(token) = self.token().await
        {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|source| DiscoverError::Request { url: url.clone(), source })?;
        let status = response.status();
        if !status.is_success() {
            return Err(DiscoverError::Status { url, status: status.as_u16() });
        }
        let body = response.bytes().await.map_err(|source| DiscoverError::Request { url: url.clone(), source })?;
        // A node's pod list runs to megabytes: decoded on the blocking pool, not the runtime's thread.
        let decoded = tokio::task::spawn_blocking(move || serde_json::from_slice::<PodList>(&body)).await;
        match decoded {
            Ok(list) => Ok(list.map_err(|source| DiscoverError::Decode { url, source })?.items),
            Err(source) => Err(DiscoverError::DecodeTask { url, source }),
        }
    }

    /// The current token; a missing file means no token (out of cluster), which the kubelet
    /// answers with 401, an error that names the URL.
    async fn token(&self) -> Option<String> {
        let path = self.token_file.as_ref()?;
        let read = tokio::task::spawn_blocking({
            let path = path.clone();
            move || crate::regular_file::read(&path, MAX_TOKEN_BYTES)
        });
        match read.await.map_err(|join| join.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
            Ok(token) => Some(String::from_utf8_lossy(&token).trim().to_string()).filter(|t| !t.is_empty()),
            Err(err) => {
                tracing::debug!(path = %path.display(), error = %err, "no kubelet token");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn explicit_url_is_the_only_candidate() {
        assert_eq!(
            endpoints(Some("http://127.0.0.1:8080/"), "ignored"),
            vec![Endpoint { base: "http://127.0.0.1:8080".into(), send_token: true }]
        );
    }

    #[test]
    fn discovered_urls_try_the_secure_port_first_and_keep_the_token_off_plain_http() {
        let eps = endpoints(None, "10.0.0.7");
        assert_eq!(
            eps,
            vec![
                Endpoint { base: "https://10.0.0.7:10250".into(), send_token: true },
                Endpoint { base: "http://10.0.0.7:10255".into(), send_token: false },
            ]
        );
        assert_eq!(endpoints(None, "fd00::7")[0].base, "https://[fd00::7]:10250");
    }

    #[test]
    fn the_endpoint_that_worked_is_tried_first() {
        let mut client = KubeletClient::new(reqwest::Client::new(), endpoints(None, "h"), None);
        assert_eq!(client.order(), vec![0, 1]);
        client.preferred = 1;
        assert_eq!(client.order(), vec![1, 0]);
        assert_eq!(client.url(), "http://h:10255");
    }

    /// Answers every connection with `body` as a 200 JSON response.
    async fn one_shot_kubelet(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn falls_back_to_the_next_endpoint_and_remembers_it() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let good =
            one_shot_kubelet(r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"uid":"u1"}}]}"#).await;
        let eps = vec![
            Endpoint { base: format!("https://{closed}"), send_token: true },
            Endpoint { base: good.clone(), send_token: false },
        ];
        let mut client = KubeletClient::new(reqwest::Client::new(), eps, None);
        let pods = client.fetch().await.unwrap();
        assert_eq!(pods[0].metadata.uid, "u1");
        assert_eq!(client.url(), good);
        assert_eq!(client.order(), vec![1, 0]);
    }

    #[tokio::test]
    async fn when_every_endpoint_fails_the_error_names_each_url() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let eps = vec![
            Endpoint { base: format!("https://{a}"), send_token: true },
            Endpoint { base: format!("http://{b}"), send_token: false },
        ];
        let err = KubeletClient::new(reqwest::Client::new(), eps, None).fetch().await.unwrap_err().to_string();
        assert!(err.contains(&format!("https://{a}/pods")) && err.contains(&format!("http://{b}/pods")), "{err}");
    }
}
