//! `http`: outbound HTTP(S) for checks, bounded by the request's timeout and the call's deadline,
//! under the egress rules of [`crate::policy::egress`].
//!
//! A URL's host name is resolved here, once; each address is checked and only the allowed ones
//! are connected to (the client is pinned to them), so a name cannot resolve to one address for
//! the check and another for the connection. Redirects are followed here, not by the client: each
//! hop is checked again, and credentials are not carried to another origin. No proxy is used
//! unless a request of `http-client` names one: then the rules judge the proxy's addresses (the
//! client is pinned to them) and the target's, which the proxy resolves on its own.
//!
//! `http-tls` (see `http_tls.rs`) and `http-client` (`http_client.rs`) send through the same
//! [`StoreState::exchange`]; the first gets the server's certificate besides, the second also
//! sets a client certificate, a proxy, redirects and connect/read timeouts ([`ClientOptions`]).
//! There is one path to the network, under one policy.
//!
//! Credentials are the host's to guard: a `bearer-file`, `ca-file` or client certificate a check
//! names is used only when [`Credentials`](crate::exec::services::Credentials) allows it (the
//! agent's own kubelet token goes to the agent's kubelet only) or it lies under the check's file
//! roots, and is read off the async runtime's thread, as a regular file of bounded size; its
//! content never goes back to the check. Response bodies are capped before they are buffered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Url;
use sha2::{Digest, Sha256};
use url::Host;

use crate::exec::bindings::adrt::check::files::Error as FilesError;
use crate::exec::bindings::adrt::check::http::{Auth, Error, Host as HttpHost, Request, Response};
pub(crate) use crate::exec::bindings::adrt::check::http_client::ClientOptions;
use crate::exec::policy::Import;
use crate::exec::services::HostServices;
use crate::exec::store::StoreState;
use crate::policy::{CheckPolicy, Reach};

/// A token file larger than this is not a token.
const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// A CA bundle larger than this is not one a check needs.
const MAX_CA_BYTES: u64 = 1 << 20;
/// Clients kept at most; each distinct CA bundle and pinned host name makes one.
const MAX_CLIENTS: usize = 64;
/// Redirects followed at most, as reqwest's default policy.
const MAX_REDIRECTS: usize = 5;
/// A client certificate or its key larger than this is not one.
const MAX_IDENTITY_BYTES: u64 = 1 << 20;

impl Default for ClientOptions {
    /// What `http.send` and `http-tls.send` do: no client certificate, no proxy, redirects
    /// followed, only the request's timeout.
    fn default() -> Self {
        ClientOptions {
            tls_cert: None,
            tls_private_key: None,
            proxy: None,
            allow_redirects: true,
            connect_timeout_ms: None,
            read_timeout_ms: None,
        }
    }
}

/// Clients by TLS settings, built once and shared.
#[derive(Default)]
pub(crate) struct HttpClients {
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

/// What distinguishes two clients. Plain-HTTP requests get a client without the system's root
/// certificates, whose loading costs milliseconds that a one-off `adrt check` would notice. A CA
/// bundle and a client identity count by their content, so that spellings of one path share a
/// client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    https: bool,
    tls_verify: bool,
    ca: Option<[u8; 32]>,
    /// A host name (the target's, or the proxy's with a proxy) and the checked addresses it
    /// connects to.
    pinned: Option<(String, Vec<SocketAddr>)>,
    identity: Option<[u8; 32]>,
    proxy: Option<String>,
    connect_timeout_ms: Option<u32>,
    read_timeout_ms: Option<u32>,
}

/// The contents a client is built with, besides its key.
#[derive(Default, Clone, Copy)]
struct ClientMaterial<'a> {
    ca_pem: Option<&'a [u8]>,
    /// The client certificate and its key, PEM, one after the other.
    identity_pem: Option<&'a [u8]>,
}

impl HttpClients {
    /// The client for these settings; errors name `url`, the request that needed it.
    fn get(&self, key: ClientKey, material: ClientMaterial<'_>, url: &str) -> Result<reqwest::Client, Error> {
        if let Some(client) = self.clients.lock().get(&key) {
            return Ok(client.clone());
        }
        // Every https response keeps the server's certificate (a copy of about 1 KiB), so that
        // `http-tls` shares the clients and their connections with `http`.
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(key.https)
            .tls_info(key.https)
            .danger_accept_invalid_certs(!key.tls_verify)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some((host, addresses)) = &key.pinned {
            builder = builder.resolve_to_addrs(host, addresses);
        }
        if let Some(proxy) = &key.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| Error::InvalidRequest(format!("{url}: proxy: {}", chain(&e))))?;
            builder = builder.proxy(proxy);
        }
        if let Some(ms) = key.connect_timeout_ms {
            builder = builder.connect_timeout(Duration::from_millis(ms.into()));
        }
        if let Some(ms) = key.read_timeout_ms {
            builder = builder.read_timeout(Duration::from_millis(ms.into()));
        }
        if let Some(pem) = material.identity_pem {
            let identity =
                reqwest::Identity::from_pem(pem).map_err(|e| Error::Tls(format!("{url}: client certificate: {}", chain(&e))))?;
            builder = builder.identity(identity);
        }
        if let Some(pem) = material.ca_pem {
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

/// Where a credential file a request names is read from.
enum CredentialFile {
    /// Allowed by the credential rules (the agent's kubelet files, `credential_files`): read by path.
    Listed(String),
    /// Under the check's file roots: already opened beneath its root.
    Granted(std::fs::File),
}

impl CredentialFile {
    /// Reads the file off the runtime thread; errors name the URL and the file, never its content.
    async fn read(self, url: &str, what: &str, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
        // The leaf reader, not the checks' `files.read`: that one keeps a per-thread scratch
        // buffer for procfs, which blocking-pool threads have no use for.
        let read = match self {
            CredentialFile::Listed(path) => {
                tokio::task::spawn_blocking(move || crate::regular_file::read(std::path::Path::new(&path), max_bytes)).await
            }
            CredentialFile::Granted(file) => tokio::task::spawn_blocking(move || crate::regular_file::read_opened(file, max_bytes)).await,
        };
        match read {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(Error::InvalidRequest(format!("{url}: {what} {path}: {e}"))),
            Err(e) => Err(Error::Other(format!("{url}: reading {what} {path}: {e}"))),
        }
    }
}

impl StoreState {
    /// The credential file `path` for a request to `url`, if the credential rules (`listed`) or
    /// the check's file roots allow it; else refused by the rule `credential-file`.
    fn credential_file(&self, url: &str, what: &str, path: &str, listed: Result<(), String>) -> Result<CredentialFile, Error> {
        let why = match listed {
            Ok(()) => return Ok(CredentialFile::Listed(path.to_string())),
            Err(why) => why,
        };
        if self.policy.file_root(path).is_err() {
            let message = format!("{url}: refused by the credential rule `credential-file`: {why}, nor under the check's file roots");
            self.denied("credential-file", &message);
            return Err(Error::Denied(message));
        }
        match self.open_granted(path, super::files::FILE_FLAGS) {
            Ok(fd) => Ok(CredentialFile::Granted(fd.into())),
            Err(FilesError::Denied(message)) => Err(Error::Denied(format!("{url}: {what} {message}"))),
            Err(FilesError::NotFound(path)) => Err(Error::InvalidRequest(format!("{url}: {what} {path}: not found"))),
            Err(FilesError::Io(message)) => Err(Error::InvalidRequest(format!("{url}: {what} {message}"))),
        }
    }

    /// What the egress rules need to judge this call's requests, detached from the store.
    fn gate(&self) -> Gate {
        Gate {
            services: self.services.clone(),
            policy: self.policy.clone(),
            reach: self.call.reach.clone(),
            check: self.check.clone(),
            instance: self.call.instance_id.clone(),
        }
    }
}

impl HttpHost for StoreState {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        self.exchange(request, PeerCertificate::Drop, ClientOptions::default()).await.map(|(response, _)| response)
    }
}

/// Whether an exchange keeps the server's certificate (`http-tls`) or not (`http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerCertificate {
    Keep,
    Drop,
}

impl StoreState {
    /// One request of `http.send` or `http-tls.send`, the same way for both: counted as a host
    /// call, judged by the egress rules hop by hop, bounded by the request's timeout and the
    /// call's deadline. With [`PeerCertificate::Keep`], also the DER of the leaf certificate of
    /// the server that sent the response (`None` over plain HTTP). `options` are `http-client`'s
    /// (the default for the others).
    pub(crate) async fn exchange(
        &mut self,
        request: Request,
        certificate: PeerCertificate,
        options: ClientOptions,
    ) -> Result<(Response, Option<Vec<u8>>), Error> {
        self.allow(Import::Http { method: &request.method, url: &request.url })
            .map_err(|why| Error::Denied(format!("{}: {why}", request.url)))?;
        let url = request.url.clone();
        let token_file = match &request.auth {
            Some(Auth::BearerFile(path)) => {
                let listed = self.services.credentials.allow_token(path, &url);
                Some((path.clone(), self.credential_file(&url, "bearer token file", path, listed)?))
            }
            _ => None,
        };
        let ca_file = match &request.ca_file {
            Some(path) => {
                let listed = self.services.credentials.allow_ca(path);
                Some((path.clone(), self.credential_file(&url, "CA file", path, listed)?))
            }
            None => None,
        };
        let mut identity_files = Vec::new();
        for path in [&options.tls_cert, &options.tls_private_key].into_iter().flatten() {
            let listed = self.services.credentials.allow_client_identity(path);
            identity_files.push((path.clone(), self.credential_file(&url, "client certificate file", path, listed)?));
        }
        if options.tls_cert.is_none() && options.tls_private_key.is_some() {
            return Err(Error::InvalidRequest(format!("{url}: a client private key without its certificate (tls-cert)")));
        }
        let proxy = options.proxy.as_deref().map(|proxy| proxy_url(&url, proxy)).transpose()?;
        let remaining = self.call.remaining();
        let timeout = request.timeout_ms.map_or(remaining, |ms| remaining.min(Duration::from_millis(ms.into())));
        if timeout.is_zero() {
            return Err(Error::Timeout(format!("{url}: no time left before the check's deadline")));
        }
        let limit = self.policy.limits.response_bytes();
        let gate = self.gate();
        let exchange = async move {
            let ca_pem = match ca_file {
                Some((path, file)) => Some(file.read(&request.url, "CA file", &path, MAX_CA_BYTES).await?),
                None => None,
            };
            let mut identity_pem: Option<Vec<u8>> = None;
            for (path, file) in identity_files {
                let mut pem = file.read(&request.url, "client certificate file", &path, MAX_IDENTITY_BYTES).await?;
                let all = identity_pem.get_or_insert_with(Vec::new);
                all.append(&mut pem);
                all.push(b'\n');
            }
            let token = match (&request.auth, token_file) {
                (Some(Auth::Bearer(token)), _) => Some(token.clone()),
                (_, Some((path, file))) => {
                    let token = file.read(&request.url, "bearer token file", &path, MAX_TOKEN_BYTES).await?;
                    let token = String::from_utf8(token)
                        .map_err(|_| Error::InvalidRequest(format!("{}: bearer token file {path} is not text", request.url)))?;
                    // Learnt, so that no check can show it.
                    gate.services.scrubber.add(&token);
                    Some(token.trim().to_string())
                }
                _ => None,
            };
            let material = ClientMaterial { ca_pem: ca_pem.as_deref(), identity_pem: identity_pem.as_deref() };
            let route = Route { proxy, options: &options };
            perform(&gate, request, material, route, token, limit, certificate).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(format!("{url}: no response within {} ms", timeout.as_millis()))),
        }
    }
}

/// Judges each hop of a request by the egress rules of the call's check and instance.
struct Gate {
    services: Arc<HostServices>,
    policy: Arc<CheckPolicy>,
    reach: Reach,
    check: Arc<str>,
    instance: String,
}

impl Gate {
    /// Resolves `url`'s host (once) and keeps the addresses the rules allow: `None` for an IP
    /// literal (nothing to pin), else the name and its allowed addresses. `original` (the
    /// request's URL) starts every message.
    async fn admit(&self, original: &str, url: &Url) -> Result<Option<(String, Vec<SocketAddr>)>, Error> {
        let hop = if url.as_str() == original { String::new() } else { format!("redirected to {url}: ") };
        let port = url.port_or_known_default().ok_or_else(|| Error::InvalidRequest(format!("{original}: {hop}no port")))?;
        let (host, addresses, name) = match url.host() {
            Some(Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)], None),
            Some(Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)], None),
            Some(Host::Domain(name)) => {
                let name = name.to_ascii_lowercase();
                let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|e| Error::Connect(format!("{original}: {hop}resolving {name}: {e}")))?
                    .collect();
                (name.clone(), addresses, Some(name))
            }
            None => return Err(Error::InvalidRequest(format!("{original}: {hop}no host"))),
        };
        let network = &self.services.network;
        let mut allowed = Vec::new();
        let mut denial = None;
        for address in addresses {
            match network.decide(&self.policy.egress, &self.reach, &host, address) {
                Ok(()) => allowed.push(address),
                Err(refused) => {
                    denial.get_or_insert(refused);
                }
            }
        }
        if allowed.is_empty() {
            let Some(denial) = denial else {
                return Err(Error::Connect(format!("{original}: {hop}{host} resolves to no address")));
            };
            let message = format!("{original}: {hop}{denial}");
            self.services.record_denial(denial.rule, &self.check, &self.instance, &message);
            return Err(Error::Denied(message));
        }
        Ok(name.map(|name| (name, allowed)))
    }
}

/// The proxy of an `http-client` request, checked: an `http://` URL with a host.
fn proxy_url(url: &str, proxy: &str) -> Result<Url, Error> {
    let parsed = Url::parse(proxy).map_err(|e| Error::InvalidRequest(format!("{url}: proxy: {e}")))?;
    if parsed.scheme() != "http" || parsed.host().is_none() {
        return Err(Error::InvalidRequest(format!("{url}: proxy: only an http://host[:port] proxy is supported")));
    }
    Ok(parsed)
}

/// How a request reaches its target: directly or through a proxy, with `http-client`'s options.
struct Route<'a> {
    proxy: Option<Url>,
    options: &'a ClientOptions,
}

/// Headers not carried to another origin on a redirect (as reqwest and browsers do).
fn sensitive(name: &str) -> bool {
    ["authorization", "cookie", "proxy-authorization", "www-authenticate"].iter().any(|s| name.eq_ignore_ascii_case(s))
}

async fn perform(
    gate: &Gate,
    request: Request,
    material: ClientMaterial<'_>,
    route: Route<'_>,
    token: Option<String>,
    limit: usize,
    certificate: PeerCertificate,
) -> Result<(Response, Option<Vec<u8>>), Error> {
    let original = request.url.as_str();
    let mut method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| Error::InvalidRequest(format!("{original}: bad method {:?}", request.method)))?;
    let mut url = Url::parse(original).map_err(|e| Error::InvalidRequest(format!("{original:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidRequest(format!("{original}: only http and https URLs")));
    }
    let first_origin = url.origin();
    let ca = material.ca_pem.map(|pem| Sha256::digest(pem).into());
    let identity = material.identity_pem.map(|pem| Sha256::digest(pem).into());
    let mut body = request.body;
    let mut redirects = 0;
    loop {
        let target = gate.admit(original, &url).await?;
        // Through a proxy, the client connects to the proxy only: its addresses are the ones
        // pinned; the target was judged above.
        let pinned = match &route.proxy {
            Some(proxy) => gate.admit(original, proxy).await.map_err(|e| in_proxy(e))?,
            None => target,
        };
        let key = ClientKey {
            https: url.scheme() == "https",
            tls_verify: request.tls_verify,
            ca,
            pinned,
            identity,
            proxy: route.proxy.as_ref().map(|p| p.to_string()),
            connect_timeout_ms: route.options.connect_timeout_ms,
            read_timeout_ms: route.options.read_timeout_ms,
        };
        let client = gate.services.http.get(key, material, original)?;
        let same_origin = url.origin() == first_origin;
        let mut builder = client.request(method.clone(), url.clone());
        for (name, value) in &request.headers {
            if same_origin || !sensitive(name) {
                builder = builder.header(name, value);
            }
        }
        if let Some(token) = token.as_deref().filter(|_| same_origin) {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(|e| classify(original, &e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .filter(|_| status.is_redirection() && route.options.allow_redirects);
        let Some(location) = location else {
            let peer = match certificate {
                PeerCertificate::Keep => peer_certificate(&response),
                PeerCertificate::Drop => None,
            };
            return Ok((read_response(original, response, limit).await?, peer));
        };
        if redirects == MAX_REDIRECTS {
            return Err(Error::Other(format!("{original}: more than {MAX_REDIRECTS} redirects")));
        }
        redirects += 1;
        let next = location
            .to_str()
            .ok()
            .and_then(|location| url.join(location).ok())
            .filter(|next| matches!(next.scheme(), "http" | "https"))
            .ok_or_else(|| Error::Other(format!("{original}: a redirect to an invalid or non-HTTP location")))?;
        // 301, 302 and 303 turn a request other than HEAD into a GET without body, as clients do.
        if matches!(status.as_u16(), 301..=303) && method != reqwest::Method::HEAD {
            method = reqwest::Method::GET;
            body = None;
        }
        url = next;
    }
}

/// An error about the proxy says so (the message would otherwise name its host alone).
fn in_proxy(error: Error) -> Error {
    let say = |m: String| match m.split_once(": ") {
        Some((url, rest)) => format!("{url}: proxy: {rest}"),
        None => m,
    };
    match error {
        Error::Denied(m) => Error::Denied(say(m)),
        Error::Connect(m) => Error::Connect(say(m)),
        Error::InvalidRequest(m) => Error::InvalidRequest(say(m)),
        other => other,
    }
}

/// The DER of the server's leaf certificate, kept by the client of every `https` request.
fn peer_certificate(response: &reqwest::Response) -> Option<Vec<u8>> {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
    info.peer_certificate().map(<[u8]>::to_vec)
}

/// The status, headers and body of a response, the body bounded by `limit`.
async fn read_response(url: &str, mut response: reqwest::Response, limit: usize) -> Result<Response, Error> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let over_limit = || Error::Other(format!("{url}: response body over the check's limit of {limit} bytes (limits.response_mib)"));
    // Refused before reading when the peer says how much it sends; counted as it comes otherwise.
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(over_limit());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(url, &e))? {
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

    fn key(ca_pem: Option<&[u8]>) -> ClientKey {
        ClientKey {
            https: true,
            tls_verify: true,
            ca: ca_pem.map(|pem| Sha256::digest(pem).into()),
            pinned: None,
            identity: None,
            proxy: None,
            connect_timeout_ms: None,
            read_timeout_ms: None,
        }
    }

    fn certificate(dir: &std::path::Path, name: &str) -> Vec<u8> {
        std::fs::read(adrt_testkit::self_signed_certificate(dir, name).0).unwrap()
    }

    #[test]
    fn clients_are_shared_per_ca_content_and_bounded() {
        let clients = HttpClients::default();
        let url = "https://kubelet:10250/pods";
        clients.get(key(None), ClientMaterial::default(), url).unwrap();
        clients.get(key(None), ClientMaterial::default(), url).unwrap();
        assert_eq!(clients.len(), 1);
        // Garbage is no CA bundle: an error naming the URL, and no client kept for it.
        let error = clients.get(key(Some(b"not a certificate")), ClientMaterial { ca_pem: Some(b"not a certificate"), identity_pem: None }, url).map(|_| ()).unwrap_err();
        assert!(matches!(&error, Error::Tls(m) if m.starts_with(url)), "{error:?}");
        assert_eq!(clients.len(), 1);
        // The same bundle (whatever path it was read from) shares one client.
        let dir = adrt_testkit::scratch_dir("ca-bundles");
        let first = certificate(&dir, "ca-0");
        clients.get(key(Some(&first)), ClientMaterial { ca_pem: Some(&first), identity_pem: None }, url).unwrap();
        clients.get(key(Some(&first)), ClientMaterial { ca_pem: Some(&first.clone()), identity_pem: None }, url).unwrap();
        assert_eq!(clients.len(), 2);
        // Many distinct bundles never hold more than the bound.
        for i in 1..=MAX_CLIENTS + 4 {
            let pem = certificate(&dir, &format!("ca-{i}"));
            clients.get(key(Some(&pem)), ClientMaterial { ca_pem: Some(&pem), identity_pem: None }, url).unwrap();
            assert!(clients.len() <= MAX_CLIENTS, "{} clients", clients.len());
        }
    }
}
