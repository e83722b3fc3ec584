//! A stand-in agent for unit-testing a check's logic on the native target.
//!
//! ```
//! use adrt_check_sdk::testing::MockHost;
//! use adrt_check_sdk::Context;
//!
//! let mut host = MockHost::default();
//! host.files.insert("/proc/net/dev".into(), b"...".to_vec());
//! let mut ctx = Context::new(&mut host, "test:1");
//! ctx.gauge("x", 1.0, &[]);
//! assert_eq!(host.metric_value("x", &[]), Some(1.0));
//! ```

use std::collections::{BTreeMap, VecDeque};

use crate::host::{
    AgentContext, Certificate, ClientOptions, DirEntry, EntryKind, Event, FileError, FilesystemUsage, Host, HttpError, Kubelet, Level,
    Metric, Request, Response, ServiceCheck, TlsResponse,
};

/// Records what a check submits and answers its I/O from maps.
#[derive(Debug)]
pub struct MockHost {
    pub metrics: Vec<Metric>,
    pub service_checks: Vec<ServiceCheck>,
    pub events: Vec<Event>,
    pub logs: Vec<(Level, String)>,
    /// Files by absolute path; a directory is listed from the paths below it.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Responses by URL; an unknown URL fails to connect.
    pub http: BTreeMap<String, Result<Response, HttpError>>,
    /// Responses by URL given once each, in order, before those of `http` (a 401 challenge
    /// and then a page, say).
    pub http_sequence: BTreeMap<String, VecDeque<Result<Response, HttpError>>>,
    /// The client options of each request made through `http-client` (with its URL), in order.
    pub client_options: Vec<(String, ClientOptions)>,
    /// The certificate the server of a URL presents (`http_tls`); none for a URL not listed.
    pub certificates: BTreeMap<String, Certificate>,
    /// Every request made, in order.
    pub requests: Vec<Request>,
    /// Filesystem usage by path; an unknown path is not found.
    pub filesystems: BTreeMap<String, FilesystemUsage>,
    pub state: BTreeMap<String, String>,
    pub agent: AgentContext,
    pub now_unix_nanos: u64,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost {
            metrics: Vec::new(),
            service_checks: Vec::new(),
            events: Vec::new(),
            logs: Vec::new(),
            files: BTreeMap::new(),
            http: BTreeMap::new(),
            http_sequence: BTreeMap::new(),
            client_options: Vec::new(),
            certificates: BTreeMap::new(),
            requests: Vec::new(),
            filesystems: BTreeMap::new(),
            state: BTreeMap::new(),
            agent: AgentContext {
                hostname: "test-host".into(),
                node_name: "test-node".into(),
                kubelet: Kubelet {
                    host: "127.0.0.1".into(),
                    url: "http://127.0.0.1:10255".into(),
                    tls_verify: true,
                    ca_file: None,
                    token_file: None,
                },
                procfs_root: "/proc".into(),
                sysfs_root: "/sys".into(),
            },
            now_unix_nanos: 1_700_000_000_000_000_000,
        }
    }
}

impl MockHost {
    /// A `200 OK` response with this body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Result<Response, HttpError> {
        Ok(Response { status: 200, headers: Vec::new(), body: body.into() })
    }

    /// The value of the metric with this name and exactly these tags (in any order).
    pub fn metric_value(&self, name: &str, tags: &[&str]) -> Option<f64> {
        let mut want: Vec<&str> = tags.to_vec();
        want.sort_unstable();
        self.metrics
            .iter()
            .rev()
            .find(|m| {
                let mut have: Vec<&str> = m.tags.iter().map(String::as_str).collect();
                have.sort_unstable();
                m.name == name && have == want
            })
            .map(|m| m.value)
    }

    /// Every metric with this name.
    pub fn metrics_named(&self, name: &str) -> Vec<&Metric> {
        self.metrics.iter().filter(|m| m.name == name).collect()
    }
}

impl Host for MockHost {
    fn metric(&mut self, metric: Metric) {
        self.metrics.push(metric)
    }
    fn service_check(&mut self, check: ServiceCheck) {
        self.service_checks.push(check)
    }
    fn event(&mut self, event: Event) {
        self.events.push(event)
    }
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_string()))
    }
    fn http(&mut self, request: &Request) -> Result<Response, HttpError> {
        self.requests.push(request.clone());
        if let Some(next) = self.http_sequence.get_mut(&request.url).and_then(VecDeque::pop_front) {
            return next;
        }
        self.http
            .get(&request.url)
            .cloned()
            .unwrap_or_else(|| Err(HttpError::Connect(format!("{}: connection refused", request.url))))
    }
    fn http_tls(&mut self, request: &Request) -> Result<TlsResponse, HttpError> {
        let response = self.http(request)?;
        Ok(TlsResponse { response, peer_certificate: self.certificates.get(&request.url).cloned() })
    }
    fn http_client(&mut self, request: &Request, options: &ClientOptions) -> Result<TlsResponse, HttpError> {
        self.client_options.push((request.url.clone(), options.clone()));
        self.http_tls(request)
    }
    fn filesystem_usage(&mut self, path: &str) -> Result<FilesystemUsage, FileError> {
        self.filesystems.get(path).cloned().ok_or_else(|| FileError::NotFound(path.to_string()))
    }
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FileError> {
        self.files.get(path).cloned().ok_or_else(|| FileError::NotFound(path.to_string()))
    }
    fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FileError> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut entries: BTreeMap<String, EntryKind> = BTreeMap::new();
        for file in self.files.keys().filter_map(|p| p.strip_prefix(&prefix)) {
            match file.split_once('/') {
                Some((dir, _)) => entries.insert(dir.to_string(), EntryKind::Directory),
                None => entries.insert(file.to_string(), EntryKind::File),
            };
        }
        if entries.is_empty() {
            return Err(FileError::NotFound(path.to_string()));
        }
        Ok(entries.into_iter().map(|(name, kind)| DirEntry { name, kind }).collect())
    }
    fn now_unix_nanos(&mut self) -> u64 {
        self.now_unix_nanos
    }
    fn monotonic_nanos(&mut self) -> u64 {
        self.now_unix_nanos
    }
    fn agent(&mut self) -> AgentContext {
        self.agent.clone()
    }
    fn state_get(&mut self, key: &str) -> Option<String> {
        self.state.get(key).cloned()
    }
    fn state_set(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.state.insert(key.to_string(), v.to_string()),
            None => self.state.remove(key),
        };
    }
}
