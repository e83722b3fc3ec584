//! [`Context`]: what a check's `run` submits to and does I/O through.

use std::time::Duration;

use crate::check::CheckError;
use crate::host::{
    AgentContext, Auth, ClientOptions, Describe, DirEntry, Event, FileError, FilesystemUsage, Host, HttpError, Level, Metric,
    MetricKind, Request, ServiceCheck, Status, TlsResponse,
};

pub use crate::host::Response;

/// Options of one HTTP request as the `http` import takes them; the default verifies TLS and
/// waits at most the run's deadline. A check configured with Datadog's HTTP options uses
/// [`crate::http_options::HttpClient`] instead, which builds these.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    pub timeout: Option<Duration>,
    pub tls_verify: bool,
    pub ca_file: Option<String>,
    pub auth: Option<Auth>,
    pub headers: Vec<(String, String)>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions { timeout: None, tls_verify: true, ca_file: None, auth: None, headers: Vec::new() }
    }
}

/// One run of one check instance.
pub struct Context<'a> {
    host: &'a mut dyn Host,
    instance_id: &'a str,
}

impl<'a> Context<'a> {
    pub fn new(host: &'a mut dyn Host, instance_id: &'a str) -> Self {
        Context { host, instance_id }
    }

    /// The ID of the check instance being run.
    pub fn instance_id(&self) -> &str {
        self.instance_id
    }

    pub fn gauge(&mut self, name: &str, value: f64, tags: &[String]) {
        self.submit(name, MetricKind::Gauge, value, tags)
    }

    /// Submit a raw counter; the agent emits its per-second rate.
    pub fn rate(&mut self, name: &str, value: f64, tags: &[String]) {
        self.submit(name, MetricKind::Rate, value, tags)
    }

    /// Submit a number of events that happened during this run.
    pub fn count(&mut self, name: &str, value: f64, tags: &[String]) {
        self.submit(name, MetricKind::Count, value, tags)
    }

    /// Submit a raw counter; the agent emits the delta since the previous run.
    pub fn monotonic_count(&mut self, name: &str, value: f64, tags: &[String]) {
        self.submit(name, MetricKind::MonotonicCount, value, tags)
    }

    pub fn histogram(&mut self, name: &str, value: f64, tags: &[String]) {
        self.submit(name, MetricKind::Histogram, value, tags)
    }

    fn submit(&mut self, name: &str, kind: MetricKind, value: f64, tags: &[String]) {
        self.metric(Metric { name: name.to_string(), kind, value, tags: tags.to_vec(), hostname: None, device: None })
    }

    /// Submit a fully specified metric (hostname or device override).
    pub fn metric(&mut self, metric: Metric) {
        self.host.metric(metric)
    }

    pub fn service_check(&mut self, name: &str, status: Status, tags: &[String], message: Option<&str>) {
        self.host.service_check(ServiceCheck {
            name: name.to_string(),
            status,
            tags: tags.to_vec(),
            hostname: None,
            message: message.map(str::to_string),
        })
    }

    pub fn event(&mut self, event: Event) {
        self.host.event(event)
    }

    pub fn http_get(&mut self, url: &str, options: &RequestOptions) -> Result<Response, HttpError> {
        self.http("GET", url, None, options)
    }

    pub fn http(
        &mut self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        options: &RequestOptions,
    ) -> Result<Response, HttpError> {
        self.host.http(&request(method, url, body, options))
    }

    /// Like [`http`](Self::http), and gives the server's leaf certificate too (`None` for an
    /// `http://` URL), e.g. to report how long until it expires. The request is judged and sent
    /// exactly as by `http`. Needs an agent of adrt:check 0.1.1 or later.
    pub fn http_with_certificate(
        &mut self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        options: &RequestOptions,
    ) -> Result<TlsResponse, HttpError> {
        self.host.http_tls(&request(method, url, body, options))
    }

    /// Like [`http_with_certificate`](Self::http_with_certificate), with the client options of
    /// the `http-client` import (client certificate, proxy, redirects, connect and read
    /// timeouts); with none of them set, the request goes through `http-tls` as it is.
    pub fn http_with_options(
        &mut self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        options: &RequestOptions,
        client: &ClientOptions,
    ) -> Result<TlsResponse, HttpError> {
        let request = request(method, url, body, options);
        let plain = client.tls_cert.is_none()
            && client.tls_private_key.is_none()
            && client.proxy.is_none()
            && client.allow_redirects
            && client.connect_timeout_ms.is_none()
            && client.read_timeout_ms.is_none();
        if plain {
            self.host.http_tls(&request)
        } else {
            self.host.http_client(&request, client)
        }
    }

    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FileError> {
        self.host.read_file(path)
    }

    /// A host file as text (invalid UTF-8 replaced; procfs and sysfs are ASCII).
    pub fn read_to_string(&mut self, path: &str) -> Result<String, FileError> {
        self.host.read_file(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FileError> {
        self.host.list_dir(path)
    }

    /// Size, free space and inodes of the filesystem holding `path` (statvfs), which must lie
    /// under the check's file roots as for [`read_file`](Self::read_file). Needs an agent of
    /// adrt:check 0.1.1 or later.
    pub fn filesystem_usage(&mut self, path: &str) -> Result<FilesystemUsage, FileError> {
        self.host.filesystem_usage(path)
    }

    pub fn now_unix_nanos(&mut self) -> u64 {
        self.host.now_unix_nanos()
    }

    pub fn monotonic_nanos(&mut self) -> u64 {
        self.host.monotonic_nanos()
    }

    /// The agent's settings: hostname, node, kubelet, procfs/sysfs roots.
    pub fn agent(&mut self) -> AgentContext {
        self.host.agent()
    }

    /// A value kept for this instance by an earlier run.
    pub fn state_get(&mut self, key: &str) -> Option<String> {
        self.host.state_get(key)
    }

    pub fn state_set(&mut self, key: &str, value: Option<&str>) {
        self.host.state_set(key, value)
    }

    pub fn debug(&mut self, message: &str) {
        self.host.log(Level::Debug, message)
    }
    pub fn info(&mut self, message: &str) {
        self.host.log(Level::Info, message)
    }
    pub fn warn(&mut self, message: &str) {
        self.host.log(Level::Warn, message)
    }
    pub fn error(&mut self, message: &str) {
        self.host.log(Level::Error, message)
    }
}

fn request(method: &str, url: &str, body: Option<Vec<u8>>, options: &RequestOptions) -> Request {
    Request {
        method: method.to_string(),
        url: url.to_string(),
        headers: options.headers.clone(),
        body,
        timeout_ms: options.timeout.map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
        tls_verify: options.tls_verify,
        ca_file: options.ca_file.clone(),
        auth: options.auth.clone(),
    }
}

impl From<HttpError> for CheckError {
    fn from(error: HttpError) -> Self {
        CheckError::Run(error.describe())
    }
}

impl From<FileError> for CheckError {
    fn from(error: FileError) -> Self {
        CheckError::Run(error.describe())
    }
}
