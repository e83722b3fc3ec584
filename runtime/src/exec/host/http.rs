//! `http`: outbound HTTP(S) for checks, bounded by the request's timeout and the call's deadline.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::exec::bindings::adrt::check::http::{Auth, Error, Host, Request, Response};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;

/// A larger body is refused rather than buffered: the host's memory is not the check's.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Clients by TLS settings, built once and shared.
#[derive(Default)]
pub(crate) struct HttpClients {
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

/// What distinguishes two clients. Plain-HTTP requests get a client without the system's root
/// certificates, whose loading costs milliseconds that a one-off `adrt check` would notice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    https: bool,
    tls_verify: bool,
    ca_file: Option<String>,
}

impl HttpClients {
    /// The client for `key`; errors name `url`, the request that needed it.
    fn get(&self, key: ClientKey, url: &str) -> Result<reqwest::Client, Error> {
        if let Some(client) = self.clients.lock().unwrap().get(&key) {
            return Ok(client.clone());
        }
        let ClientKey { https, tls_verify, ca_file } = &key;
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(*https)
            .danger_accept_invalid_certs(!tls_verify)
            .redirect(reqwest::redirect::Policy::limited(5))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(path) = ca_file {
            let ca_error = |e: &dyn std::fmt::Display| Error::Tls(format!("{url}: CA file {path}: {e}"));
            let pem = std::fs::read(path).map_err(|e| ca_error(&e))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(&e))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| Error::Other(format!("{url}: {}", chain(&e))))?;
        self.clients.lock().unwrap().insert(key, client.clone());
        Ok(client)
    }
}

impl Host for StoreState {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        self.allow(Import::Http { method: &request.method, url: &request.url })
            .map_err(|why| Error::Denied(format!("{}: {why}", request.url)))?;
        let remaining = self.call.remaining();
        let timeout = request.timeout_ms.map_or(remaining, |ms| remaining.min(Duration::from_millis(ms.into())));
        if timeout.is_zero() {
            return Err(Error::Timeout(format!("{}: no time left before the check's deadline", request.url)));
        }
        let https = request.url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let key = ClientKey { https, tls_verify: request.tls_verify, ca_file: request.ca_file.clone() };
        let client = self.services.http.get(key, &request.url)?;
        let url = request.url.clone();
        match tokio::time::timeout(timeout, perform(client, request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(format!("{url}: no response within {} ms", timeout.as_millis()))),
        }
    }
}

async fn perform(client: reqwest::Client, request: Request) -> Result<Response, Error> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| Error::InvalidRequest(format!("{}: bad method {:?}", request.url, request.method)))?;
    let url = reqwest::Url::parse(&request.url).map_err(|e| Error::InvalidRequest(format!("{:?}: {e}", request.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidRequest(format!("{}: only http and https URLs", request.url)));
    }
    let mut builder = client.request(method, url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    match &request.auth {
        Some(Auth::Bearer(token)) => builder = builder.bearer_auth(token),
        Some(Auth::BearerFile(path)) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| Error::InvalidRequest(format!("{}: bearer token file {path}: {e}", request.url)))?;
            builder = builder.bearer_auth(token.trim());
        }
        None => {}
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(|e| classify(&request.url, &e))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&request.url, &e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::Other(format!("{}: response body over {} MiB", request.url, MAX_BODY_BYTES >> 20)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, headers, body })
}

/// Maps a reqwest error to the WIT error, keeping the cause (e.g. "Connection refused").
fn classify(url: &str, error: &reqwest::Error) -> Error {
    let message = format!("{url}: {}", chain(error));
    let lower = message.to_ascii_lowercase();
    if error.is_timeout() {
        Error::Timeout(message)
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        Error::Tls(message)
    } else if error.is_connect() {
        Error::Connect(message)
    } else if error.is_builder() {
        Error::InvalidRequest(message)
    } else {
        Error::Other(message)
    }
}

/// The error's causes, most specific last, without repeats or reqwest's restatement of the URL.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.starts_with("error sending request") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() { error.to_string() } else { parts.join(": ") }
}
