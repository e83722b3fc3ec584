//! `http`: outbound HTTP(S) for checks, bounded by the request's timeout and the call's deadline.
//!
//! Credentials are the host's to guard: a `bearer-file` or `ca-file` a check names is used only
//! when [`Credentials`](crate::exec::services::Credentials) allows it (the agent's own kubelet
//! token goes to the agent's kubelet only), and is read off the async runtime's thread, as a
//! regular file of bounded size. Response bodies are capped before they are buffered.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::exec::bindings::adrt::check::http::{Auth, Error, Host, Request, Response};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;
use crate::secrets::Scrubber;

/// A token file larger than this is not a token.
const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// A CA bundle larger than this is not one a check needs.
const MAX_CA_BYTES: u64 = 1 << 20;
/// Clients kept at most; each distinct CA bundle makes one.
const MAX_CLIENTS: usize = 16;

/// Clients by TLS settings, built once and shared.
#[derive(Default)]
pub(crate) struct HttpClients {
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

/// What distinguishes two clients. Plain-HTTP requests get a client without the system's root
/// certificates, whose loading costs milliseconds that a one-off `adrt check` would notice. A CA
/// bundle counts by its content, so that spellings of one path share a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    https: bool,
    tls_verify: bool,
    ca: Option<[u8; 32]>,
}

impl HttpClients {
    /// The client for these settings; errors name `url`, the request that needed it.
    fn get(&self, https: bool, tls_verify: bool, ca_pem: Option<&[u8]>, url: &str) -> Result<reqwest::Client, Error> {
        let key = ClientKey { https, tls_verify, ca: ca_pem.map(|pem| Sha256::digest(pem).into()) };
        if let Some(client) = self.clients.lock().get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(https)
            .danger_accept_invalid_certs(!tls_verify)
            .redirect(reqwest::redirect::Policy::limited(5))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Tls(format!("{url}: CA bundle: {}", chain(&e))))?;
            if certs.is_empty() {
                return Err(Error::Tls(format!("{url}: the CA bundle holds no PEM certificate")));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| Error::Other(format!("{url}: {}", chain(&e))))?;
        let mut clients = self.clients.lock();
        if clients.len() >= MAX_CLIENTS {
            // Rare (one client per distinct CA bundle): starting over costs a handshake each.
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().len()
    }
}

/// Reads a credential file off the runtime thread; errors name the URL and the file, never
/// its content.
async fn read_credential(url: &str, what: &str, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
    let owned = std::path::PathBuf::from(path);
    // The leaf reader, not the checks' `files.read`: that one keeps a per-thread scratch buffer
    // for procfs, which blocking-pool threads have no use for.
    let read = tokio::task::spawn_blocking(move || crate::regular_file::read(&owned, max_bytes)).await;
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Error::InvalidRequest(format!("{url}: {what} {path}: {e}"))),
        Err(e) => Err(Error::Other(format!("{url}: reading {what} {path}: {e}"))),
    }
}

impl Host for StoreState {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        self.allow(Import::Http { method: &request.method, url: &request.url })
            .map_err(|why| Error::Denied(format!("{}: {why}", request.url)))?;
        let credentials = &self.services.credentials;
        if let Some(Auth::BearerFile(path)) = &request.auth {
            credentials.allow_token(path, &request.url).map_err(|why| Error::Denied(format!("{}: {why}", request.url)))?;
        }
        if let Some(path) = &request.ca_file {
            credentials.allow_ca(path).map_err(|why| Error::Denied(format!("{}: {why}", request.url)))?;
        }
        let remaining = self.call.remaining();
        let timeout = request.timeout_ms.map_or(remaining, |ms| remaining.min(Duration::from_millis(ms.into())));
        if timeout.is_zero() {
            return Err(Error::Timeout(format!("{}: no time left before the check's deadline", request.url)));
        }
        let url = request.url.clone();
        let limit = self.response_limit;
        let services = self.services.clone();
        let exchange = async move {
            let ca_pem = match &request.ca_file {
                Some(path) => Some(read_credential(&request.url, "CA file", path, MAX_CA_BYTES).await?),
                None => None,
            };
            let https = request.url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
            let client = services.http.get(https, request.tls_verify, ca_pem.as_deref(), &request.url)?;
            perform(client, request, limit, &services.scrubber).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(format!("{url}: no response within {} ms", timeout.as_millis()))),
        }
    }
}

/// `scrubber` learns every bearer token read from a file, so that no check can show one.
async fn perform(client: reqwest::Client, request: Request, limit: usize, scrubber: &Scrubber) -> Result<Response, Error> {
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
            let token = read_credential(&request.url, "bearer token file", path, MAX_TOKEN_BYTES).await?;
            let token = String::from_utf8(token)
                .map_err(|_| Error::InvalidRequest(format!("{}: bearer token file {path} is not text", request.url)))?;
            scrubber.add(&token);
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
    let over_limit = || Error::Other(format!("{}: response body over the check's limit of {} bytes", request.url, limit));
    // Refused before reading when the peer says how much it sends; counted as it comes otherwise.
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(over_limit());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&request.url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(over_limit());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(dir: &std::path::Path, name: &str) -> Vec<u8> {
        std::fs::read(adrt_testkit::self_signed_certificate(dir, name).0).unwrap()
    }

    #[test]
    fn clients_are_shared_per_ca_content_and_bounded() {
        let clients = HttpClients::default();
        let url = "https://kubelet:10250/pods";
        clients.get(true, true, None, url).unwrap();
        clients.get(true, true, None, url).unwrap();
        assert_eq!(clients.len(), 1);
        // Garbage is no CA bundle: an error naming the URL, and no client kept for it.
        let error = clients.get(true, true, Some(b"not a certificate"), url).map(|_| ()).unwrap_err();
        assert!(matches!(&error, Error::Tls(m) if m.starts_with(url)), "{error:?}");
        assert_eq!(clients.len(), 1);
        // The same bundle (whatever path it was read from) shares one client.
        let dir = adrt_testkit::scratch_dir("ca-bundles");
        let first = certificate(&dir, "ca-0");
        clients.get(true, true, Some(&first), url).unwrap();
        clients.get(true, true, Some(&first.clone()), url).unwrap();
        assert_eq!(clients.len(), 2);
        // Many distinct bundles never hold more than the bound.
        for i in 1..=MAX_CLIENTS + 4 {
            clients.get(true, true, Some(&certificate(&dir, &format!("ca-{i}"))), url).unwrap();
            assert!(clients.len() <= MAX_CLIENTS, "{} clients", clients.len());
        }
    }
}
