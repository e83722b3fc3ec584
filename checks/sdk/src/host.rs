//! The imports a check can call, as one trait.
//!
//! [`WasmHost`] forwards to the agent through the component's imports; [`crate::testing::MockHost`]
//! stands in for the agent in native unit tests. Check code only sees [`crate::Context`].

use crate::bindings::adrt::check as wit;

pub use wit::agent::{AgentContext, Kubelet};
pub use wit::files::{DirEntry, EntryKind, Error as FileError};
pub use wit::filesystems::FilesystemUsage;
pub use wit::http::{Auth, Error as HttpError, Request, Response};
pub use wit::http_client::ClientOptions;
pub use wit::http_tls::{Certificate, TlsResponse};
pub use wit::log::Level;
pub use wit::types::{AlertType, Event, Metric, MetricKind, ServiceCheck, Status};

/// Everything the agent offers a check.
pub trait Host {
    fn metric(&mut self, metric: Metric);
    fn service_check(&mut self, check: ServiceCheck);
    fn event(&mut self, event: Event);
    fn log(&mut self, level: Level, message: &str);
    fn http(&mut self, request: &Request) -> Result<Response, HttpError>;
    /// An HTTP request that also gives the server's certificate (needs an adrt:check 0.1.1 host).
    fn http_tls(&mut self, request: &Request) -> Result<TlsResponse, HttpError>;
    /// An HTTP request with client options (needs an adrt:check 0.1.1 host).
    fn http_client(&mut self, request: &Request, options: &ClientOptions) -> Result<TlsResponse, HttpError>;
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FileError>;
    fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FileError>;
    /// The usage of the filesystem holding `path` (needs an adrt:check 0.1.1 host).
    fn filesystem_usage(&mut self, path: &str) -> Result<FilesystemUsage, FileError>;
    fn now_unix_nanos(&mut self) -> u64;
    fn monotonic_nanos(&mut self) -> u64;
    fn agent(&mut self) -> AgentContext;
    fn state_get(&mut self, key: &str) -> Option<String>;
    fn state_set(&mut self, key: &str, value: Option<&str>);
}

/// The real host: the component's imports.
pub struct WasmHost;

impl Host for WasmHost {
    fn metric(&mut self, metric: Metric) {
        wit::submit::emit_metric(&metric)
    }
    fn service_check(&mut self, check: ServiceCheck) {
        wit::submit::emit_service_check(&check)
    }
    fn event(&mut self, event: Event) {
        wit::submit::emit_event(&event)
    }
    fn log(&mut self, level: Level, message: &str) {
        wit::log::write(level, message)
    }
    fn http(&mut self, request: &Request) -> Result<Response, HttpError> {
        wit::http::send(request)
    }
    fn http_tls(&mut self, request: &Request) -> Result<TlsResponse, HttpError> {
        wit::http_tls::send(request)
    }
    fn http_client(&mut self, request: &Request, options: &ClientOptions) -> Result<TlsResponse, HttpError> {
        wit::http_client::send(request, options)
    }
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FileError> {
        wit::files::read(path)
    }
    fn list_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FileError> {
        wit::files::list_dir(path)
    }
    fn filesystem_usage(&mut self, path: &str) -> Result<FilesystemUsage, FileError> {
        wit::filesystems::usage(path)
    }
    fn now_unix_nanos(&mut self) -> u64 {
        wit::clocks::now_unix_nanos()
    }
    fn monotonic_nanos(&mut self) -> u64 {
        wit::clocks::monotonic_nanos()
    }
    fn agent(&mut self) -> AgentContext {
        wit::agent::context()
    }
    fn state_get(&mut self, key: &str) -> Option<String> {
        wit::state::get(key)
    }
    fn state_set(&mut self, key: &str, value: Option<&str>) {
        wit::state::set(key, value)
    }
}

impl Default for ClientOptions {
    /// What `http.send` does: no client certificate, no proxy, redirects followed, only the
    /// request's timeout.
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

/// Sends a panic's message to the agent before `panic=abort` turns it into a bare trap.
pub(crate) fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            std::panic::set_hook(Box::new(|info| wit::log::panicked(&info.to_string())));
        });
    }
}

/// A readable message for an import's error (the generated `Display` prints the variant's
/// debug form).
pub trait Describe {
    fn describe(&self) -> String;
}

impl Describe for HttpError {
    fn describe(&self) -> String {
        match self {
            HttpError::InvalidRequest(m) => format!("invalid request: {m}"),
            HttpError::Denied(m) => format!("denied by policy: {m}"),
            HttpError::Timeout(m) => format!("timed out: {m}"),
            HttpError::Connect(m) => format!("connection failed: {m}"),
            HttpError::Tls(m) => format!("TLS error: {m}"),
            HttpError::Other(m) => m.clone(),
        }
    }
}

impl Describe for FileError {
    fn describe(&self) -> String {
        match self {
            FileError::NotFound(m) => format!("not found: {m}"),
            FileError::Denied(m) => format!("denied by policy: {m}"),
            FileError::Io(m) => m.clone(),
        }
    }
}

impl Status {
    /// The name Datadog uses: `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl Response {
    /// The body as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
