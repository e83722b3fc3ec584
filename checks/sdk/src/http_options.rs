//! The HTTP options Datadog's HTTP-based checks share (the instance keys of its
//! `RequestsWrapper`), parsed once here for every check that makes requests.
//!
//! - [`HttpOptions`]: the keys as written (every one defaulted), [`KEYS`] every key it accepts or
//!   refuses, [`HttpInstance`] an instance split into these options and the check's own keys.
//! - [`HttpOptions::client`] checks them against what adrt can do and gives an [`HttpClient`]:
//!   what is not supported is a config error ``option `NAME` is not supported by adrt: ...``
//!   (its default value and `false` are accepted), what is accepted but changes nothing a
//!   warning.
//! - [`HttpClient::send`] makes a request with them through the [`Context`]: headers, basic and
//!   digest authentication (digest is answered here, on the server's 401 challenge, with MD5 as
//!   RFC 7616 says; the `md5` crate), `auth_token`, timeouts, TLS, client certificates, the
//!   proxy and redirects (the last three through the host's `http-client` import).
//!
//! Differences from Datadog: `timeout` bounds the whole request (Datadog's bounds connecting and
//! each read: `connect_timeout` and `read_timeout` do that here); there are no default headers
//! for `headers` to replace (Datadog's `User-Agent`, `Accept`, `Accept-Encoding`); the agent's
//! own proxy settings are not used by checks (`use_agent_proxy`), only `proxy`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::check::CheckError;
use crate::context::{Context, RequestOptions};
use crate::host::{Auth, ClientOptions, Describe, HttpError, TlsResponse};

/// Every instance key of Datadog's shared HTTP options, with the legacy spellings it remaps
/// (`user`, `ssl_verify`, `kerberos`, `no_proxy`): the keys [`HttpOptions`] takes out of an
/// instance, whether adrt honours them or refuses them.
pub const KEYS: &[&str] = &[
    "allow_redirects",
    "auth_token",
    "auth_type",
    "aws_host",
    "aws_region",
    "aws_service",
    "connect_timeout",
    "extra_headers",
    "headers",
    "kerberos",
    "kerberos_auth",
    "kerberos_cache",
    "kerberos_delegate",
    "kerberos_force_initiate",
    "kerberos_hostname",
    "kerberos_keytab",
    "kerberos_principal",
    "log_requests",
    "no_proxy",
    "ntlm_domain",
    "password",
    "persist_connections",
    "proxy",
    "read_timeout",
    "request_size",
    "skip_proxy",
    "ssl_verify",
    "timeout",
    "tls_ca_cert",
    "tls_cert",
    "tls_ciphers",
    "tls_ignore_warning",
    "tls_private_key",
    "tls_protocols_allowed",
    "tls_use_host_header",
    "tls_verify",
    "use_legacy_auth_encoding",
    "user",
    "username",
];

/// Datadog's `DEFAULT_TIMEOUT`, seconds.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 10.0;

/// The shared HTTP options of one instance, as written. Every field is optional; what a
/// missing one means is Datadog's default, applied by [`HttpOptions::client`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    pub auth_type: Option<String>,
    #[serde(alias = "user")]
    pub username: Option<String>,
    pub password: Option<String>,
    pub use_legacy_auth_encoding: Option<bool>,
    pub auth_token: Option<Value>,
    pub headers: Option<BTreeMap<String, Value>>,
    pub extra_headers: Option<BTreeMap<String, Value>>,
    pub timeout: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub read_timeout: Option<f64>,
    #[serde(alias = "ssl_verify")]
    pub tls_verify: Option<bool>,
    pub tls_ca_cert: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_private_key: Option<String>,
    pub tls_ignore_warning: Option<bool>,
    pub tls_use_host_header: Option<bool>,
    pub tls_protocols_allowed: Option<Vec<String>>,
    pub tls_ciphers: Option<Value>,
    pub proxy: Option<Value>,
    #[serde(alias = "no_proxy")]
    pub skip_proxy: Option<bool>,
    pub allow_redirects: Option<bool>,
    pub persist_connections: Option<bool>,
    pub log_requests: Option<bool>,
    pub request_size: Option<f64>,
    #[serde(alias = "kerberos")]
    pub kerberos_auth: Option<Value>,
    pub kerberos_cache: Option<String>,
    pub kerberos_delegate: Option<bool>,
    pub kerberos_force_initiate: Option<bool>,
    pub kerberos_hostname: Option<String>,
    pub kerberos_keytab: Option<String>,
    pub kerberos_principal: Option<String>,
    pub ntlm_domain: Option<String>,
    pub aws_host: Option<String>,
    pub aws_region: Option<String>,
    pub aws_service: Option<String>,
}

/// The init_config keys Datadog's `RequestsWrapper` reads: defaults for every instance.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpInitConfig {
    pub timeout: Option<f64>,
    pub proxy: Option<Value>,
    pub skip_proxy: Option<bool>,
    pub log_requests: Option<bool>,
}

/// An instance of an HTTP-based check: the shared [`HttpOptions`] (the keys of [`KEYS`]) and
/// the check's own keys `T` (which never see the shared ones; [`crate::instance::parse`] names
/// the keys `T` does not know).
#[derive(Debug)]
pub struct HttpInstance<T> {
    pub http: HttpOptions,
    pub instance: T,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for HttpInstance<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut own = Map::<String, Value>::deserialize(deserializer)?;
        let mut shared = Map::new();
        for key in KEYS {
            if let Some(value) = own.remove(*key) {
                shared.insert((*key).to_string(), value);
            }
        }
        let http = crate::instance::deserialize_part::<HttpOptions>(Value::Object(shared)).map_err(D::Error::custom)?;
        // Through the instance parser, so the keys the check's struct ignores are still named.
        let instance = crate::instance::deserialize_part::<T>(Value::Object(own)).map_err(D::Error::custom)?;
        Ok(HttpInstance { http, instance })
    }
}

/// How a request authenticates with `username` and `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    None,
    /// `Authorization: Basic ...`, sent with every request.
    Basic(String),
    /// Answered on the server's `401` with a `Digest` challenge.
    Digest { username: String, password: String },
}

/// `auth_token`'s reader and writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAuth {
    /// `Authorization: Bearer <token of the file>`: the host reads the file at each request,
    /// under its credential-file rule.
    BearerFile(String),
    /// Another header: the check reads the file (files import, under its file roots) and puts
    /// the token in the header's value in place of `placeholder`.
    Header { path: String, name: String, value: String, placeholder: String },
}

/// Where requests go: directly, or through a proxy for `http://` and one for `https://` URLs,
/// except to the hosts of `no_proxy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyRule {
    pub http: Option<String>,
    pub https: Option<String>,
    /// Host names (a name also matches its subdomains), IP addresses and CIDR ranges.
    pub no_proxy: Vec<String>,
}

/// The options checked, ready to send requests with.
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// Headers: `headers`, then `extra_headers` over them (a name in any case replaces it).
    pub headers: Vec<(String, String)>,
    pub authentication: Authentication,
    /// `auth_token`: a token read from a file, written into a header (after the basic
    /// credentials, so a token writing `Authorization` wins, as in Datadog).
    pub token: Option<TokenAuth>,
    pub timeout: Duration,
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
    pub tls_verify: bool,
    pub tls_ca_cert: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_private_key: Option<String>,
    pub proxy: ProxyRule,
    pub allow_redirects: bool,
    pub log_requests: bool,
    /// Options accepted that change nothing here, to warn about.
    pub warnings: Vec<String>,
}

/// ``option `NAME` is not supported by adrt: WHY``.
fn unsupported(name: &str, why: &str) -> CheckError {
    CheckError::Config(format!("option `{name}` is not supported by adrt: {why}"))
}

fn config(message: impl Into<String>) -> CheckError {
    CheckError::Config(message.into())
}

/// Seconds as a duration: positive and under a day.
fn seconds(key: &str, value: f64) -> Result<Duration, CheckError> {
    if !(value > 0.0 && value.is_finite() && value < 86_400.0) {
        return Err(config(format!("{key} must be a positive number of seconds under a day, got {value}")));
    }
    Ok(Duration::from_secs_f64(value))
}

impl HttpOptions {
    /// Checks the options and gives the client that sends with them; `init` gives the defaults
    /// of `timeout`, `proxy`, `skip_proxy` and `log_requests`, `default_tls_verify` the check's
    /// own default (true but for http_check).
    pub fn client(&self, init: &HttpInitConfig, default_tls_verify: bool) -> Result<HttpClient, CheckError> {
        self.refuse_unsupported()?;
        let mut warnings = Vec::new();
        let timeout = seconds("timeout", self.timeout.or(init.timeout).unwrap_or(DEFAULT_TIMEOUT_SECONDS))?;
        let connect_timeout = self.connect_timeout.map(|s| seconds("connect_timeout", s)).transpose()?;
        let read_timeout = self.read_timeout.map(|s| seconds("read_timeout", s)).transpose()?;

        let mut headers = Vec::new();
        for (key, map) in [("headers", &self.headers), ("extra_headers", &self.extra_headers)] {
            for (name, value) in map.iter().flat_map(|m| m.iter()) {
                let value = header_value(key, name, value)?;
                headers.retain(|(existing, _): &(String, String)| !existing.eq_ignore_ascii_case(name));
                headers.push((name.clone(), value));
            }
        }

        let authentication = self.authentication()?;
        let token = self.auth_token.as_ref().filter(|token| !token.is_null()).map(token_auth).transpose()?;
        let proxy = if self.skip_proxy.or(init.skip_proxy).unwrap_or(false) {
            ProxyRule::default()
        } else {
            match self.proxy.as_ref().or(init.proxy.as_ref()) {
                Some(value) => proxy_rule(value)?,
                None => ProxyRule::default(),
            }
        };
        if self.persist_connections == Some(false) {
            warnings.push(
                "option `persist_connections: false` changes nothing in adrt: the agent keeps connections open between runs"
                    .to_string(),
            );
        }
        if self.tls_private_key.is_some() && self.tls_cert.is_none() {
            return Err(config("tls_private_key is set without tls_cert (the client certificate it goes with)"));
        }
        Ok(HttpClient {
            headers,
            authentication,
            token,
            timeout,
            connect_timeout,
            read_timeout,
            tls_verify: self.tls_verify.unwrap_or(default_tls_verify),
            tls_ca_cert: self.tls_ca_cert.clone().filter(|path| !path.is_empty()),
            tls_cert: self.tls_cert.clone().filter(|path| !path.is_empty()),
            tls_private_key: self.tls_private_key.clone().filter(|path| !path.is_empty()),
            proxy,
            allow_redirects: self.allow_redirects.unwrap_or(true),
            log_requests: self.log_requests.or(init.log_requests).unwrap_or(false),
            warnings,
        })
    }

    /// Options Datadog documents that adrt does not implement: an error when set to anything
    /// but their default.
    fn refuse_unsupported(&self) -> Result<(), CheckError> {
        let kerberos_on = match &self.kerberos_auth {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) => !s.eq_ignore_ascii_case("disabled") && !s.is_empty(),
            Some(_) => true,
        };
        if kerberos_on {
            return Err(unsupported("kerberos_auth", "Kerberos authentication needs a Kerberos library and ticket cache the sandbox has no access to"));
        }
        for (name, set) in [
            ("kerberos_cache", self.kerberos_cache.is_some()),
            ("kerberos_delegate", self.kerberos_delegate == Some(true)),
            ("kerberos_force_initiate", self.kerberos_force_initiate == Some(true)),
            ("kerberos_hostname", self.kerberos_hostname.is_some()),
            ("kerberos_keytab", self.kerberos_keytab.is_some()),
            ("kerberos_principal", self.kerberos_principal.is_some()),
        ] {
            if set {
                return Err(unsupported(name, "Kerberos authentication is not implemented"));
            }
        }
        if self.ntlm_domain.is_some() {
            return Err(unsupported("ntlm_domain", "NTLM authentication is not implemented"));
        }
        for (name, set) in [("aws_host", &self.aws_host), ("aws_region", &self.aws_region), ("aws_service", &self.aws_service)] {
            if set.is_some() {
                return Err(unsupported(name, "AWS Signature Version 4 authentication is not implemented"));
            }
        }
        if self.tls_use_host_header == Some(true) {
            return Err(unsupported(
                "tls_use_host_header",
                "the TLS server name is always the URL's host (a `Host` header does not change it)",
            ));
        }
        if let Some(protocols) = &self.tls_protocols_allowed {
            // The host speaks TLS 1.2 and 1.3 (rustls), which Datadog's default list allows.
            let allows = |p: &str| protocols.iter().any(|q| q.eq_ignore_ascii_case(p));
            if !(allows("TLSv1.2") && allows("TLSv1.3")) {
                return Err(unsupported(
                    "tls_protocols_allowed",
                    "the agent always offers TLS 1.2 and 1.3 and nothing older; list both (or leave the option out)",
                ));
            }
        }
        match &self.tls_ciphers {
            None | Some(Value::Null) => {}
            Some(Value::String(all)) if all.eq_ignore_ascii_case("ALL") => {}
            Some(Value::Array(list)) if list.len() == 1 && list[0].as_str().is_some_and(|s| s.eq_ignore_ascii_case("ALL")) => {}
            Some(_) => return Err(unsupported("tls_ciphers", "the agent's TLS library chooses the cipher suites (`ALL` is accepted)")),
        }
        if self.request_size.is_some_and(|size| !(size > 0.0 && size.is_finite())) {
            return Err(config("request_size must be a positive number of kilobytes"));
        }
        Ok(())
    }

    fn authentication(&self) -> Result<Authentication, CheckError> {
        let auth_type = self.auth_type.as_deref().unwrap_or("basic").to_ascii_lowercase();
        let credentials = match (&self.username, &self.password) {
            (Some(username), Some(password)) => Some((username.clone(), password.clone())),
            _ => None,
        };
        let authentication = match auth_type.as_str() {
            "basic" => match credentials {
                Some((username, password)) => Authentication::Basic(basic_credentials(
                    &username,
                    &password,
                    self.use_legacy_auth_encoding.unwrap_or(true),
                )?),
                None => Authentication::None,
            },
            "digest" => match credentials {
                Some((username, password)) => Authentication::Digest { username, password },
                None => return Err(config("auth_type `digest` needs both username and password")),
            },
            "ntlm" => return Err(unsupported("auth_type", "`ntlm`: NTLM authentication is not implemented")),
            "kerberos" => {
                return Err(unsupported("auth_type", "`kerberos`: Kerberos authentication needs a ticket cache the sandbox has no access to"));
            }
            "aws" => return Err(unsupported("auth_type", "`aws`: AWS Signature Version 4 authentication is not implemented")),
            other => {
                return Err(config(format!("auth_type `{other}` is not one Datadog knows (basic, digest, ntlm, kerberos, aws)")));
            }
        };
        Ok(authentication)
    }
}

/// A header's value: text, or a number or boolean as its text.
fn header_value(key: &str, name: &str, value: &Value) -> Result<String, CheckError> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(config(format!("{key}: {name:?} is not a header name")));
    }
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(config(format!("{key}.{name} must be a string, got {other}"))),
    };
    if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(config(format!("{key}.{name} holds a line break or NUL")));
    }
    Ok(text)
}

/// RFC 9110's `tchar`: what a header name may be made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `base64(username:password)` for `Authorization: Basic`: Latin-1 with
/// `use_legacy_auth_encoding` (Datadog's default, as `requests` encodes text), else UTF-8.
fn basic_credentials(username: &str, password: &str, legacy: bool) -> Result<String, CheckError> {
    use base64::Engine as _;
    let pair = format!("{username}:{password}");
    let bytes: Vec<u8> = if legacy {
        pair.chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| config("username/password hold characters outside Latin-1: set use_legacy_auth_encoding: false to send them as UTF-8"))?
    } else {
        pair.into_bytes()
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `proxy: {http: URL, https: URL, no_proxy: [hosts] | "a,b"}`.
fn proxy_rule(value: &Value) -> Result<ProxyRule, CheckError> {
    let map = match value {
        Value::Null => return Ok(ProxyRule::default()),
        Value::Object(map) => map,
        _ => return Err(config("proxy must be a mapping of `http`, `https` and `no_proxy`")),
    };
    let mut rule = ProxyRule::default();
    for (key, value) in map {
        match key.as_str() {
            "http" | "https" => {
                let url = match value {
                    Value::Null => continue,
                    Value::String(url) if url.is_empty() => continue,
                    Value::String(url) => url.clone(),
                    _ => return Err(config(format!("proxy.{key} must be a URL"))),
                };
                let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                if scheme.as_deref() != Some("http") {
                    return Err(unsupported("proxy", &format!("proxy.{key} {url:?}: only an http:// proxy is supported (https:// targets go through it with CONNECT)")));
                }
                if key == "http" { rule.http = Some(url) } else { rule.https = Some(url) }
            }
            "no_proxy" => {
                rule.no_proxy = match value {
                    Value::Null => Vec::new(),
                    Value::String(list) => list.replace(';', ",").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
                    Value::Array(list) => list
                        .iter()
                        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| config("proxy.no_proxy entries must be strings")))
                        .collect::<Result<_, _>>()?,
                    _ => return Err(config("proxy.no_proxy must be a list of hosts")),
                }
            }
            other => return Err(config(format!("unknown key `{other}` in proxy (http, https and no_proxy are known)"))),
        }
    }
    Ok(rule)
}

/// `auth_token: {reader: {type: file, path: ...}, writer: {type: header, name: ..., value: ...}}`.
fn token_auth(value: &Value) -> Result<TokenAuth, CheckError> {
    let section = |name: &str| -> Result<&Map<String, Value>, CheckError> {
        match value.get(name) {
            Some(Value::Object(map)) => Ok(map),
            Some(_) => Err(config(format!("The `{name}` settings of `auth_token` must be a mapping"))),
            None => Err(config(format!("The `{name}` settings of `auth_token` are required"))),
        }
    };
    let text = |map: &Map<String, Value>, section: &str, key: &str| -> Result<Option<String>, CheckError> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(config(format!("The `{key}` setting of `auth_token` {section} must be a string"))),
        }
    };
    if let Some(extra) = value.as_object().and_then(|m| m.keys().find(|k| *k != "reader" && *k != "writer")) {
        return Err(config(format!("unknown auth_token setting `{extra}` (reader and writer are known)")));
    }
    let reader = section("reader")?;
    let writer = section("writer")?;
    match text(reader, "reader", "type")?.as_deref() {
        Some("file") => {}
        Some(other) => return Err(unsupported("auth_token", &format!("reader type `{other}` is not implemented (file is)"))),
        None => return Err(config("The `type` setting of `auth_token` reader is required")),
    }
    if let Some(extra) = reader.keys().find(|k| *k != "type" && *k != "path") {
        return Err(unsupported("auth_token", &format!("reader setting `{extra}` is not implemented (type and path are)")));
    }
    let path = text(reader, "reader", "path")?.ok_or_else(|| config("The `path` setting of `auth_token` reader is required"))?;
    match text(writer, "writer", "type")?.as_deref() {
        Some("header") => {}
        Some(other) => return Err(unsupported("auth_token", &format!("writer type `{other}` is not implemented (header is)"))),
        None => return Err(config("The `type` setting of `auth_token` writer is required")),
    }
    if let Some(extra) = writer.keys().find(|k| !["type", "name", "value", "placeholder"].contains(&k.as_str())) {
        return Err(unsupported("auth_token", &format!("writer setting `{extra}` is not implemented (type, name, value and placeholder are)")));
    }
    let name = text(writer, "writer", "name")?.ok_or_else(|| config("The `name` setting of `auth_token` writer is required"))?;
    let placeholder = text(writer, "writer", "placeholder")?.unwrap_or_else(|| "<TOKEN>".to_string());
    let header_value = text(writer, "writer", "value")?.unwrap_or_else(|| placeholder.clone());
    if !header_value.contains(&placeholder) {
        return Err(config(format!("The `value` setting of `auth_token` writer does not contain the placeholder `{placeholder}`")));
    }
    if name.eq_ignore_ascii_case("authorization") && header_value == format!("Bearer {placeholder}") {
        return Ok(TokenAuth::BearerFile(path));
    }
    Ok(TokenAuth::Header { path, name, value: header_value, placeholder })
}

impl ProxyRule {
    /// The proxy for `url`, if any: by scheme, unless its host is in `no_proxy`.
    pub fn for_url(&self, url: &str) -> Option<&str> {
        let (scheme, rest) = url.split_once("://")?;
        let proxy = match scheme.to_ascii_lowercase().as_str() {
            "http" => self.http.as_deref(),
            "https" => self.https.as_deref(),
            _ => None,
        }?;
        let host = url_host(rest);
        let skipped = self.no_proxy.iter().any(|entry| no_proxy_matches(entry, &host));
        (!skipped).then_some(proxy)
    }
}

/// The host of a URL's remainder after `scheme://`, lowercase, without brackets or port.
fn url_host(rest: &str) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host.to_ascii_lowercase()
}

/// Datadog's `no_proxy` matching: an IP in a CIDR range or equal to an address, else the host
/// name itself or a subdomain of the entry.
fn no_proxy_matches(entry: &str, host: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    if let Ok(address) = host.parse::<std::net::IpAddr>() {
        if let Some((network, bits)) = entry.split_once('/') {
            let (Ok(network), Ok(bits)) = (network.parse::<std::net::IpAddr>(), bits.parse::<u32>()) else { return false };
            return in_network(address, network, bits);
        }
        return entry.parse::<std::net::IpAddr>().is_ok_and(|e| e == address);
    }
    let dotted = if entry.starts_with('.') { entry.clone() } else { format!(".{entry}") };
    host == entry || host.ends_with(&dotted)
}

fn in_network(address: std::net::IpAddr, network: std::net::IpAddr, bits: u32) -> bool {
    use std::net::IpAddr::{V4, V6};
    match (address, network) {
        (V4(a), V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (V6(a), V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl HttpClient {
    /// `GET url` with the options.
    pub fn get(&self, ctx: &mut Context<'_>, url: &str) -> Result<TlsResponse, HttpError> {
        self.send(ctx, "GET", url, None, &[])
    }

    /// A request with the options; `headers` go over the configured ones (a check's own, such
    /// as `Accept` or `Content-Type`). Gives the server's certificate too (none over HTTP).
    pub fn send(
        &self,
        ctx: &mut Context<'_>,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        headers: &[(String, String)],
    ) -> Result<TlsResponse, HttpError> {
        if self.log_requests {
            ctx.debug(&format!("Sending {method} request to {url}"));
        }
        let mut options = self.request_options(ctx, headers)?;
        let client = self.client_options(url);
        let response = ctx.http_with_options(method, url, body.clone(), &options, &client)?;
        let Authentication::Digest { username, password } = &self.authentication else {
            return Ok(response);
        };
        if response.response.status != 401 {
            return Ok(response);
        }
        let Some(challenge) = response
            .response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
            .find_map(|(_, value)| digest::Challenge::parse(value))
        else {
            return Ok(response);
        };
        let cnonce = format!("{:016x}", ctx.now_unix_nanos() ^ ctx.monotonic_nanos().rotate_left(17));
        let authorization = challenge
            .authorization(username, password, method, url, &cnonce)
            .map_err(|why| HttpError::InvalidRequest(format!("{url}: digest authentication: {why}")))?;
        options.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        options.headers.push(("Authorization".to_string(), authorization));
        ctx.http_with_options(method, url, body, &options, &client)
    }

    /// The request options of `http.request`: headers, authentication, timeout, TLS.
    fn request_options(&self, ctx: &mut Context<'_>, extra: &[(String, String)]) -> Result<RequestOptions, HttpError> {
        let mut headers = self.headers.clone();
        let mut auth = None;
        if let Authentication::Basic(credentials) = &self.authentication {
            set_header(&mut headers, "Authorization", format!("Basic {credentials}"));
        }
        match &self.token {
            None => {}
            Some(TokenAuth::BearerFile(path)) => auth = Some(Auth::BearerFile(path.clone())),
            Some(TokenAuth::Header { path, name, value, placeholder }) => {
                let token = ctx
                    .read_to_string(path)
                    .map_err(|e| HttpError::InvalidRequest(format!("auth_token: {}", e.describe())))?;
                set_header(&mut headers, name, value.replacen(placeholder.as_str(), token.trim(), 1));
            }
        }
        for (name, value) in extra {
            set_header(&mut headers, name, value.clone());
        }
        Ok(RequestOptions {
            timeout: Some(self.timeout),
            tls_verify: self.tls_verify,
            ca_file: self.tls_ca_cert.clone(),
            auth,
            headers,
        })
    }

    /// The options of `http-client.send` for `url`.
    fn client_options(&self, url: &str) -> ClientOptions {
        let millis = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        ClientOptions {
            tls_cert: self.tls_cert.clone(),
            tls_private_key: self.tls_private_key.clone(),
            proxy: self.proxy.for_url(url).map(str::to_string),
            allow_redirects: self.allow_redirects,
            connect_timeout_ms: self.connect_timeout.map(millis),
            read_timeout_ms: self.read_timeout.map(millis),
        }
    }
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value));
}

/// HTTP Digest authentication (RFC 7616) with MD5 and MD5-sess, `qop=auth` or none, as
/// `requests.auth.HTTPDigestAuth` answers a challenge.
mod digest {
    /// A `WWW-Authenticate: Digest ...` challenge.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct Challenge {
        pub realm: String,
        pub nonce: String,
        pub opaque: Option<String>,
        pub algorithm: Option<String>,
        pub qop: Option<String>,
    }

    impl Challenge {
        /// The challenge of a `WWW-Authenticate` value, if it is a Digest one.
        pub fn parse(header: &str) -> Option<Challenge> {
            let rest = header.trim_start();
            let (scheme, params) = rest.split_once(char::is_whitespace)?;
            if !scheme.eq_ignore_ascii_case("digest") {
                return None;
            }
            let mut challenge = Challenge::default();
            for (key, value) in parameters(params) {
                match key.to_ascii_lowercase().as_str() {
                    "realm" => challenge.realm = value,
                    "nonce" => challenge.nonce = value,
                    "opaque" => challenge.opaque = Some(value),
                    "algorithm" => challenge.algorithm = Some(value),
                    "qop" => challenge.qop = Some(value),
                    _ => {}
                }
            }
            (!challenge.nonce.is_empty()).then_some(challenge)
        }

        /// The `Authorization` value answering this challenge for `method url`.
        pub fn authorization(&self, username: &str, password: &str, method: &str, url: &str, cnonce: &str) -> Result<String, String> {
            let algorithm = self.algorithm.as_deref().unwrap_or("MD5");
            let session = match algorithm.to_ascii_uppercase().as_str() {
                "MD5" => false,
                "MD5-SESS" => true,
                other => return Err(format!("algorithm {other} is not supported (MD5 and MD5-sess are)")),
            };
            let uri = request_uri(url);
            let nc = "00000001";
            let mut ha1 = md5_hex(&format!("{username}:{}:{password}", self.realm));
            if session {
                ha1 = md5_hex(&format!("{ha1}:{}:{cnonce}", self.nonce));
            }
            let ha2 = md5_hex(&format!("{method}:{uri}"));
            let qop = match &self.qop {
                None => None,
                Some(offered) if offered.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) => Some("auth"),
                Some(offered) => return Err(format!("qop {offered:?} is not supported (auth is)")),
            };
            let response = match qop {
                Some(qop) => md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce)),
                None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
            };
            let mut header = format!(
                "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\"",
                self.realm, self.nonce
            );
            if let Some(opaque) = &self.opaque {
                header.push_str(&format!(", opaque=\"{opaque}\""));
            }
            if self.algorithm.is_some() {
                header.push_str(&format!(", algorithm=\"{algorithm}\""));
            }
            if let Some(qop) = qop {
                header.push_str(&format!(", qop=\"{qop}\", nc={nc}, cnonce=\"{cnonce}\""));
            }
            Ok(header)
        }
    }

    /// `key=value` and `key="quoted, value"` pairs, separated by commas.
    fn parameters(text: &str) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let Some((key, after)) = rest.split_once('=') else { break };
            let key = key.trim().trim_start_matches(',').trim().to_string();
            let after = after.trim_start();
            let (value, remainder) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let mut value = String::new();
                    let mut chars = quoted.char_indices();
                    let mut end = quoted.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(escaped);
                                }
                            }
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    (value, &quoted[end..])
                }
                None => {
                    let end = after.find(',').unwrap_or(after.len());
                    (after[..end].trim().to_string(), &after[end..])
                }
            };
            pairs.push((key, value));
            rest = remainder.trim_start().trim_start_matches(',').trim_start();
        }
        pairs
    }

    /// The path and query of an absolute URL (`/` when it has none).
    fn request_uri(url: &str) -> &str {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let start = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let path = after_scheme[start..].split('#').next().unwrap_or_default();
        if path.is_empty() { "/" } else { path }
    }

    fn md5_hex(text: &str) -> String {
        format!("{:x}", md5::compute(text.as_bytes()))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn answers_rfc_2617s_example_challenge() {
            // RFC 2617 section 3.5: the response digest the RFC prints for this exchange.
            let challenge = Challenge::parse(
                r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
            )
            .unwrap();
            assert_eq!(challenge.realm, "testrealm@host.com");
            let header = challenge
                .authorization("Mufasa", "Circle Of Life", "GET", "http://www.nowhere.org/dir/index.html", "0a4f113b")
                .unwrap();
            assert!(header.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{header}");
            assert!(header.contains(r#"uri="/dir/index.html""#) && header.contains("nc=00000001"), "{header}");
            assert!(header.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#), "{header}");
        }

        #[test]
        fn other_schemes_and_algorithms_are_not_answered() {
            assert_eq!(Challenge::parse(r#"Basic realm="x""#), None);
            let sha = Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-256"#).unwrap();
            assert!(sha.authorization("u", "p", "GET", "http://h/", "c").unwrap_err().contains("SHA-256"));
        }
    }
}

#[cfg(test)]
mod tests;
