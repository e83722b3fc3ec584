//! The init_config and instance keys (Datadog's http_check), and the [`Settings`] a run derives
//! from them: every check of a config that needs no I/O is made here, so that `run` and
//! `validate` refuse the same configs with the same messages.


use adrt_check_sdk::http_options::HttpInitConfig;
use adrt_check_sdk::serde_json::Value;
use adrt_check_sdk::{CheckError, HttpClient, HttpInstance};
use regex_lite::Regex;
use serde::Deserialize;

/// Datadog's default for `http_response_status_code`: any 1xx, 2xx or 3xx.
pub const DEFAULT_STATUS_CODE: &str = r"(1|2|3)\d\d";
const DEFAULT_DAYS_WARNING: i64 = 14;
const DEFAULT_DAYS_CRITICAL: i64 = 7;
const SECONDS_PER_DAY: i64 = 24 * 3600;
/// The methods that carry `data` as their body (Datadog's `DATA_METHODS`).
const DATA_METHODS: [&str; 5] = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The `init_config` section: what all instances share.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// Seconds; an instance's own `timeout` wins.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// A CA bundle trusted besides the system roots; an instance's `tls_ca_cert` wins.
    #[serde(default)]
    pub ca_certs: Option<String>,
    /// Applied by the agent, accepted here so that a Datadog config parses.
    #[serde(default)]
    pub service: Option<String>,
    /// Defaults of every instance's `skip_proxy` and `proxy`, as in Datadog.
    #[serde(default)]
    pub skip_proxy: Option<bool>,
    #[serde(default)]
    pub proxy: Option<Value>,
}

impl InitConfig {
    /// What the shared HTTP options take from init_config.
    fn http(&self) -> HttpInitConfig {
        HttpInitConfig { timeout: self.timeout, proxy: self.proxy.clone(), skip_proxy: self.skip_proxy, log_requests: None }
    }
}

/// One `instances` entry: the check's own keys (the shared HTTP options — `headers`, `timeout`,
/// `tls_verify`, `tls_ca_cert`, `proxy`, `allow_redirects`, ... — are [`HttpInstance::http`]).
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// The `instance:` tag, normalized as Datadog normalizes it.
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    /// The body of a POST, PUT, DELETE, PATCH or OPTIONS: a string as it is, a mapping as JSON.
    #[serde(default)]
    pub data: Option<Data>,
    /// A regex matched at the start of the status code (Python's `re.match`); an integer too.
    #[serde(default)]
    pub http_response_status_code: Option<StatusCode>,
    /// A regex searched in the body (Python's `re.search`).
    #[serde(default)]
    pub content_match: Option<String>,
    #[serde(default)]
    pub reverse_content_match: bool,
    /// Append the start of the body to the `http.can_connect` message when it is CRITICAL.
    #[serde(default)]
    pub include_content: bool,
    #[serde(default = "default_true")]
    pub collect_response_time: bool,
    /// The legacy inverse of `tls_verify` (which wins when both are set); `tls_verify` is off
    /// by default, as in Datadog's http_check (see README.md).
    #[serde(default)]
    pub disable_ssl_validation: Option<bool>,
    /// The legacy spelling of `tls_ca_cert`.
    #[serde(default)]
    pub ca_certs: Option<String>,
    #[serde(default = "default_true")]
    pub check_certificate_expiration: bool,
    #[serde(default)]
    pub days_warning: Option<i64>,
    #[serde(default)]
    pub days_critical: Option<i64>,
    /// Take precedence over the `days_` thresholds, as in Datadog.
    #[serde(default)]
    pub seconds_warning: Option<i64>,
    #[serde(default)]
    pub seconds_critical: Option<i64>,

    /// Accepted so that a Datadog config parses: the certificate reported is always the
    /// response's; a warning when it asks for something else.
    #[serde(default)]
    pub use_cert_from_response: Option<bool>,

    /// Shared with the agent, which adds them; read here only to leave out the `url:` tag when
    /// one of them is a `url:` tag.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Data {
    Text(String),
    Fields(adrt_check_sdk::serde_json::Map<String, Value>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusCode {
    Pattern(String),
    Code(u64),
}

/// What a run needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub url: String,
    /// Upper case, as sent.
    pub method: String,
    pub body: Option<Vec<u8>>,
    /// The request's headers: the configured ones with the body's default `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// The shared HTTP options, checked.
    pub client: HttpClient,
    pub status: StatusExpectation,
    pub content: Option<ContentMatch>,
    pub include_content: bool,
    pub collect_response_time: bool,
    /// `None` when `check_certificate_expiration` is off.
    pub expiry: Option<ExpiryThresholds>,
    /// `instance:<name>`, normalized.
    pub instance_tag: String,
    /// Whether the instance's own tags hold a `url:` tag (then service checks get no other).
    pub has_url_tag: bool,
    /// Options that ask for what this check does not do, to warn about.
    pub unsupported: Vec<&'static str>,
}

/// Which status codes count as up.
#[derive(Debug)]
pub struct StatusExpectation {
    /// As configured, for the message.
    pub pattern: String,
    /// Anchored at the start, as `re.match` is.
    pub regex: Regex,
}

impl StatusExpectation {
    pub fn accepts(&self, code: u16) -> bool {
        self.regex.is_match(&code.to_string())
    }

    /// How the message names what was expected: Datadog spells out its default.
    pub fn expected(&self) -> &str {
        if self.pattern == DEFAULT_STATUS_CODE { "1xx or 2xx or 3xx" } else { &self.pattern }
    }
}

#[derive(Debug)]
pub struct ContentMatch {
    pub pattern: String,
    pub regex: Regex,
    /// Down when the content is found, rather than when it is missing.
    pub reverse: bool,
}

/// When a certificate's remaining validity turns `http.ssl_cert` WARNING, then CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryThresholds {
    pub warning_seconds: i64,
    pub critical_seconds: i64,
}

impl Settings {
    pub fn new(instance: HttpInstance<Instance>, init: &InitConfig) -> Result<Settings, CheckError> {
        let HttpInstance { http: mut options, instance } = instance;
        if options.tls_ca_cert.is_none() {
            options.tls_ca_cert = instance.ca_certs.clone().or_else(|| init.ca_certs.clone());
        }
        let default_tls_verify = instance.disable_ssl_validation.map_or(false, |disable| !disable);
        let client = options.client(&init.http(), default_tls_verify)?;
        let expiry = instance.check_certificate_expiration.then(|| thresholds(&instance)).transpose()?;
        let url = instance.url;
        // Datadog refuses a URL that does not start with "http"; the host wants an absolute URL.
        let scheme_ok = ["http://", "https://"].iter().any(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
        if !scheme_ok {
            return Err(config(format!("url: {url:?} must start with the scheme http:// or https://")));
        }
        let method = instance.method.as_deref().unwrap_or("get").to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(config(format!("method: {method:?} is not an HTTP method")));
        }
        let mut headers = client.headers.clone();
        let body = match instance.data.filter(|_| DATA_METHODS.contains(&method.as_str())) {
            None => None,
            Some(Data::Text(text)) => {
                default_header(&mut headers, "Content-Type", "application/x-www-form-urlencoded");
                Some(text.into_bytes())
            }
            Some(Data::Fields(fields)) => {
                default_header(&mut headers, "Content-Type", "application/json");
                Some(Value::Object(fields).to_string().into_bytes())
            }
        };
        let pattern = match instance.http_response_status_code {
            None => DEFAULT_STATUS_CODE.to_string(),
            Some(StatusCode::Pattern(pattern)) => pattern,
            Some(StatusCode::Code(code)) => code.to_string(),
        };
        let status = StatusExpectation { regex: compile(&format!("^(?:{pattern})"), &pattern, "http_response_status_code")?, pattern };
        let content = match instance.content_match {
            Some(pattern) if !pattern.is_empty() => Some(ContentMatch {
                regex: compile(&pattern, &pattern, "content_match")?,
                pattern,
                reverse: instance.reverse_content_match,
            }),
            _ => None,
        };
        let mut unsupported = Vec::new();
        if instance.use_cert_from_response == Some(false) {
            unsupported.push("use_cert_from_response: false (the certificate is the response's)");
        }
        let has_url_tag = instance.tags.iter().flatten().any(|tag| tag.starts_with("url:"));
        Ok(Settings {
            url,
            method,
            body,
            headers,
            client,
            status,
            content,
            include_content: instance.include_content,
            collect_response_time: instance.collect_response_time,
            expiry,
            instance_tag: format!("instance:{}", normalize_tag(&instance.name)),
            has_url_tag,
            unsupported,
        })
    }

    /// What a run warns about before its request (and `validate` gives as warnings).
    pub fn warnings(&self) -> Vec<String> {
        let ignored = self.unsupported.iter().map(|option| format!("{option} is not supported by this check, ignoring it"));
        self.client.warnings.iter().cloned().chain(ignored).collect()
    }

    pub fn is_https(&self) -> bool {
        self.url.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    }
}

/// The thresholds in seconds: `seconds_*` over `days_*` over Datadog's 14 and 7 days; 0 counts
/// as unset, as in Datadog.
fn thresholds(instance: &Instance) -> Result<ExpiryThresholds, CheckError> {
    for (key, value) in [
        ("days_warning", instance.days_warning),
        ("days_critical", instance.days_critical),
        ("seconds_warning", instance.seconds_warning),
        ("seconds_critical", instance.seconds_critical),
    ] {
        if let Some(negative) = value.filter(|v| *v < 0) {
            return Err(config(format!("{key} must not be negative, got {negative}")));
        }
    }
    let pick = |seconds: Option<i64>, days: Option<i64>, default_days: i64| -> (i64, &'static str) {
        match (seconds.filter(|s| *s > 0), days.filter(|d| *d > 0)) {
            (Some(seconds), _) => (seconds, "seconds"),
            (None, Some(days)) => (days.saturating_mul(SECONDS_PER_DAY), "days"),
            (None, None) => (default_days * SECONDS_PER_DAY, "default"),
        }
    };
    let (warning_seconds, warning_from) = pick(instance.seconds_warning, instance.days_warning, DEFAULT_DAYS_WARNING);
    let (critical_seconds, critical_from) = pick(instance.seconds_critical, instance.days_critical, DEFAULT_DAYS_CRITICAL);
    if critical_seconds > warning_seconds {
        let name = |from: &str, level: &str| match from {
            "seconds" => format!("seconds_{level}"),
            "days" => format!("days_{level}"),
            _ => format!("the default days_{level}"),
        };
        return Err(config(format!(
            "{} ({critical_seconds} s) is longer than {} ({warning_seconds} s): the certificate would turn CRITICAL before WARNING",
            name(critical_from, "critical"),
            name(warning_from, "warning"),
        )));
    }
    Ok(ExpiryThresholds { warning_seconds, critical_seconds })
}

fn default_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
        headers.push((name.to_string(), value.to_string()));
    }
}

/// RFC 9110's `tchar`: what a method or a header name may be made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn compile(regex: &str, pattern: &str, key: &str) -> Result<Regex, CheckError> {
    Regex::new(regex).map_err(|e| config(format!("{key}: invalid regular expression {pattern:?}: {e}")))
}

fn config(message: String) -> CheckError {
    CheckError::Config(message)
}

/// A tag value as Datadog's `AgentCheck.normalize_tag` makes it: each of `,+*-/()[]{}` and
/// whitespace becomes `_`, runs of `_` become one, `_` next to a `.` go, and `_` at either end go.
pub fn normalize_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_underscore = false;
    for c in value.chars() {
        let c = if ",+*-/()[]{}".contains(c) || matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') { '_' } else { c };
        match c {
            '_' => pending_underscore = !out.ends_with('.'),
            '.' => {
                pending_underscore = false;
                out.push('.');
            }
            c => {
                if pending_underscore && !out.is_empty() {
                    out.push('_');
                }
                pending_underscore = false;
                out.push(c);
            }
        }
    }
    out
}
