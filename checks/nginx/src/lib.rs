//! The nginx check: nginx's status page, with the metrics of Datadog's nginx check — the
//! `stub_status` text, or a JSON status (the vhost traffic status module with `use_vts`, or any
//! JSON status module) flattened as Datadog's check flattens it when the page's content type is
//! JSON.
//!
//! Instance keys: `nginx_status_url` (required), Datadog's shared HTTP options
//! ([`adrt_check_sdk::http_options`]: auth, headers, timeouts, TLS, client certificates, proxy,
//! redirects) with nginx's legacy `ssl_validation` for `tls_verify`, `use_vts`, and the NGINX
//! Plus keys: `use_plus_api: true` is refused (the Plus API is not implemented),
//! `plus_api_version`, `use_plus_api_stream` and `only_query_enabled_endpoints` only matter with
//! it and are accepted.

mod json;

use adrt_check_sdk::http_options::HttpInitConfig;
use adrt_check_sdk::serde_json::Value;
use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe, HttpClient, HttpInstance, Status};
use serde::Deserialize;

pub struct Nginx {
    init: HttpInitConfig,
}

/// `init_config`: the defaults of every instance's HTTP options, and `service` (applied by
/// the agent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub proxy: Option<Value>,
    #[serde(default)]
    pub skip_proxy: Option<bool>,
    #[serde(default)]
    pub log_requests: Option<bool>,
    #[serde(default)]
    pub service: Option<String>,
}

/// The nginx check's own keys (the shared HTTP options are [`HttpInstance::http`]; the options
/// every check shares are the agent's and the SDK's).
#[derive(Debug, Deserialize)]
pub struct Instance {
    pub nginx_status_url: String,
    /// Datadog's nginx spelling of `tls_verify` (its remapper); `tls_verify` wins.
    #[serde(default)]
    pub ssl_validation: Option<bool>,
    #[serde(default)]
    pub use_vts: bool,
    #[serde(default)]
    pub use_plus_api: bool,
    #[serde(default)]
    pub use_plus_api_stream: Option<bool>,
    #[serde(default)]
    pub plus_api_version: Option<Value>,
    #[serde(default)]
    pub only_query_enabled_endpoints: Option<bool>,
}

/// The numbers on a stub_status page.
#[derive(Debug, PartialEq, Eq)]
pub struct StubStatus {
    pub active: u64,
    pub accepts: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

/// Parses the text that `stub_status on;` serves:
///
/// ```text
/// Active connections: 291
/// server accepts handled requests
///  16630948 16630948 31070465
/// Reading: 6 Writing: 179 Waiting: 106
/// ```
pub fn parse_stub_status(body: &str) -> Result<StubStatus, String> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        return Err("the page is JSON but its content type is not application/json, not a stub_status page".into());
    }
    let mut lines = trimmed.lines().map(str::trim);
    let not_stub = || {
        let first: String = trimmed.chars().take(60).collect();
        format!("not a stub_status page (it starts with {first:?})")
    };
    let active = lines
        .next()
        .and_then(|l| l.strip_prefix("Active connections:"))
        .ok_or_else(not_stub)
        .and_then(|v| number(v.trim(), "Active connections"))?;
    if lines.next() != Some("server accepts handled requests") {
        return Err(not_stub());
    }
    let counters: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let [accepts, handled, requests] = counters[..] else {
        return Err(format!("expected 3 numbers after 'server accepts handled requests', got {counters:?}"));
    };
    let gauges: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let ["Reading:", reading, "Writing:", writing, "Waiting:", waiting] = gauges[..] else {
        return Err(format!("expected 'Reading: N Writing: N Waiting: N', got {:?}", gauges.join(" ")));
    };
    Ok(StubStatus {
        active,
        accepts: number(accepts, "accepts")?,
        handled: number(handled, "handled")?,
        requests: number(requests, "requests")?,
        reading: number(reading, "Reading")?,
        writing: number(writing, "Writing")?,
        waiting: number(waiting, "Waiting")?,
    })
}

fn number(text: &str, what: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{what} is not a number: {text:?}"))
}

/// `host` and `port` of the status URL, for the `nginx_host` and `port` tags.
pub fn host_and_port(url: &str) -> Result<(String, u16), String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        other => return Err(format!("unsupported scheme {other:?} in {url:?}")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| format!("bad IPv6 host in {url:?}"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?} in {url:?}"))?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

/// What a run reaches and how, from its instance: what `run` and `validate` both check.
struct Target {
    host: String,
    port: u16,
    client: HttpClient,
}

impl Target {
    fn of(instance: &HttpInstance<Instance>, init: &HttpInitConfig) -> Result<Target, CheckError> {
        let own = &instance.instance;
        let (host, port) = host_and_port(&own.nginx_status_url).map_err(CheckError::Config)?;
        if own.use_plus_api {
            return Err(CheckError::Config(
                "option `use_plus_api` is not supported by adrt: the NGINX Plus API is not implemented; leave it false to \
                 read the stub_status or JSON status page at nginx_status_url"
                    .to_string(),
            ));
        }
        if let Some(version) = &own.plus_api_version {
            if !(version.is_u64() || version.is_string()) {
                return Err(CheckError::Config(format!("plus_api_version must be a version number, got {version}")));
            }
        }
        let mut http = instance.http.clone();
        if http.tls_verify.is_none() {
            http.tls_verify = own.ssl_validation;
        }
        let client = http.client(init, true)?;
        Ok(Target { host, port, client })
    }
}

impl Check for Nginx {
    const NAME: &'static str = "nginx";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = InitConfig;
    type Instance = HttpInstance<Instance>;

    fn init(init: InitConfig) -> Result<Self, CheckError> {
        let InitConfig { timeout, proxy, skip_proxy, log_requests, service: _ } = init;
        Ok(Nginx { init: HttpInitConfig { timeout, proxy, skip_proxy, log_requests } })
    }

    fn run(&self, ctx: &mut Context<'_>, instance: HttpInstance<Instance>) -> Result<(), CheckError> {
        let Target { host, port, client } = Target::of(&instance, &self.init)?;
        for warning in &client.warnings {
            ctx.warn(warning);
        }
        let own = instance.instance;
        // The agent adds the instance's `tags`.
        let tags = vec![format!("nginx_host:{host}"), format!("port:{port}")];

        let url = &own.nginx_status_url;
        let response = client.get(ctx, url).and_then(|r| {
            if r.response.status == 200 {
                Ok(r.response)
            } else {
                Err(adrt_check_sdk::HttpError::Other(format!("{url}: HTTP {}", r.response.status)))
            }
        });
        let page = match response {
            Ok(page) => {
                ctx.service_check("nginx.can_connect", Status::Ok, &tags, None);
                page
            }
            Err(error) => {
                // The host's HTTP errors start with the URL.
                let message = error.describe();
                ctx.service_check("nginx.can_connect", Status::Critical, &tags, Some(&message));
                return Err(CheckError::Run(message));
            }
        };
        // As Datadog's check: the content type says which format the page is in.
        let is_json = page.header("content-type").is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if is_json {
            let document: Value = adrt_check_sdk::serde_json::from_slice(&page.body)
                .map_err(|e| CheckError::Run(format!("{url}: the JSON status does not parse: {e}")))?;
            json::submit(ctx, &document, &tags, own.use_vts);
            return Ok(());
        }
        let status = parse_stub_status(&page.text()).map_err(|e| CheckError::Run(format!("{url}: {e}")))?;

        ctx.gauge("nginx.net.connections", status.active as f64, &tags);
        ctx.gauge("nginx.net.reading", status.reading as f64, &tags);
        ctx.gauge("nginx.net.writing", status.writing as f64, &tags);
        ctx.gauge("nginx.net.waiting", status.waiting as f64, &tags);
        ctx.rate("nginx.net.conn_opened_per_s", status.accepts as f64, &tags);
        ctx.rate("nginx.net.conn_dropped_per_s", status.accepts.saturating_sub(status.handled) as f64, &tags);
        ctx.rate("nginx.net.request_per_s", status.requests as f64, &tags);
        Ok(())
    }

    fn validate(&self, instance: HttpInstance<Instance>, _: &AgentContext) -> Result<Vec<String>, CheckError> {
        Target::of(&instance, &self.init).map(|target| target.client.warnings)
    }
}

adrt_check_sdk::export_check!(Nginx);

#[cfg(test)]
mod tests {
    use super::*;
    use adrt_check_sdk::testing::MockHost;

    fn nginx() -> Nginx {
        Nginx::init(InitConfig::default()).unwrap()
    }

    const PAGE: &str = "Active connections: 291 \nserver accepts handled requests\n 16630948 16630940 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";

    #[test]
    fn parses_a_stub_status_page() {
        assert_eq!(
            parse_stub_status(PAGE).unwrap(),
            StubStatus {
                active: 291,
                accepts: 16630948,
                handled: 16630940,
                requests: 31070465,
                reading: 6,
                writing: 179,
                waiting: 106
            }
        );
    }

    #[test]
    fn rejects_json_and_html_with_a_reason() {
        assert!(parse_stub_status(r#"{"version": 8}"#).unwrap_err().contains("JSON"));
        assert!(parse_stub_status("<html>hello</html>").unwrap_err().contains("not a stub_status page"));
        let truncated = "Active connections: 1\nserver accepts handled requests\n 1 2\n";
        assert!(parse_stub_status(truncated).unwrap_err().contains("expected 3 numbers"));
        let bad = "Active connections: x\n";
        assert!(parse_stub_status(bad).unwrap_err().contains("Active connections is not a number"));
    }

    #[test]
    fn host_and_port_from_urls() {
        assert_eq!(host_and_port("http://10.0.0.1:8080/nginx_status").unwrap(), ("10.0.0.1".into(), 8080));
        assert_eq!(host_and_port("https://example.com/s").unwrap(), ("example.com".into(), 443));
        assert_eq!(host_and_port("http://[::1]:81/").unwrap(), ("::1".into(), 81));
        assert_eq!(host_and_port("http://u:p@h/").unwrap(), ("h".into(), 80));
        assert!(host_and_port("10.0.0.1/nginx_status").is_err());
        assert!(host_and_port("ftp://h/").is_err());
        assert!(host_and_port("http://h:99999/").is_err());
    }

    fn instance(url: &str) -> HttpInstance<Instance> {
        with(url, serde_json::json!({}))
    }

    /// An instance of `url` with more keys.
    fn with(url: &str, more: serde_json::Value) -> HttpInstance<Instance> {
        let mut json = serde_json::json!({"nginx_status_url": url});
        json.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn submits_the_seven_metrics_and_can_connect() {
        let mut host = MockHost::default();
        host.http.insert("http://h:8080/s".into(), MockHost::ok(PAGE));
        nginx().run(&mut Context::new(&mut host, "nginx:1"), instance("http://h:8080/s")).unwrap();
        let tags = ["nginx_host:h", "port:8080"];
        assert_eq!(host.metric_value("nginx.net.connections", &tags), Some(291.0));
        assert_eq!(host.metric_value("nginx.net.conn_dropped_per_s", &tags), Some(8.0));
        assert_eq!(host.metric_value("nginx.net.request_per_s", &tags), Some(31070465.0));
        assert_eq!(host.metrics.len(), 7);
        assert_eq!(host.service_checks.len(), 1);
        assert_eq!(host.service_checks[0].status, Status::Ok);
        assert_eq!(host.requests[0].timeout_ms, Some(10_000));
    }

    #[test]
    fn a_json_status_is_flattened_when_its_content_type_says_json() {
        let mut host = MockHost::default();
        let body = r#"{"connections": {"active": 4, "accepted": 9}, "server_zones": {"www": {"requests": 3}}}"#;
        host.http.insert(
            "http://h/status".into(),
            Ok(adrt_check_sdk::Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
                body: body.into(),
            }),
        );
        nginx().run(&mut Context::new(&mut host, "nginx:1"), instance("http://h/status")).unwrap();
        let tags = ["nginx_host:h", "port:80"];
        assert_eq!(host.metric_value("nginx.connections.active", &tags), Some(4.0));
        assert_eq!(host.metric_value("nginx.connections.active_count", &tags), Some(4.0));
        assert_eq!(host.metric_value("nginx.server_zone.requests", &[&tags[..], &["server_zone:www"]].concat()), Some(3.0));
        // The same text without the content type is not a stub_status page.
        host.http.insert("http://h/plain".into(), MockHost::ok(body));
        let error = nginx().run(&mut Context::new(&mut host, "nginx:1"), instance("http://h/plain")).unwrap_err();
        assert!(error.to_string().contains("content type is not application/json"), "{error}");
    }

    #[test]
    fn http_options_reach_the_request() {
        let mut host = MockHost::default();
        host.http.insert("http://h/s".into(), MockHost::ok(PAGE));
        let options = serde_json::json!({
            "user": "Aladdin", "password": "open sesame", "headers": {"X-Trace": "abc"}, "extra_headers": {"X-More": 1},
            "timeout": 2.5, "ssl_validation": false, "allow_redirects": false,
        });
        nginx().run(&mut Context::new(&mut host, "nginx:1"), with("http://h/s", options)).unwrap();
        let request = &host.requests[0];
        let header = |name: &str| request.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        // RFC 7617's example credentials.
        assert_eq!(header("Authorization"), Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert_eq!((header("X-Trace"), header("X-More")), (Some("abc"), Some("1")));
        assert_eq!((request.timeout_ms, request.tls_verify), (Some(2500), false));
        assert!(!host.client_options[0].1.allow_redirects);
    }

    #[test]
    fn unreachable_is_critical_and_fails_the_run() {
        let mut host = MockHost::default();
        let error = nginx().run(&mut Context::new(&mut host, "nginx:1"), instance("http://h:1/s")).unwrap_err();
        assert!(matches!(&error, CheckError::Run(m) if m.contains("connection refused")), "{error:?}");
        assert_eq!(host.service_checks[0].status, Status::Critical);
        assert!(host.service_checks[0].message.as_deref().unwrap().contains("connection refused"));
        assert!(host.metrics.is_empty());
    }

    #[test]
    fn http_error_status_is_critical() {
        let mut host = MockHost::default();
        host.http.insert(
            "http://h/s".into(),
            Ok(adrt_check_sdk::Response { status: 404, headers: vec![], body: b"nope".to_vec() }),
        );
        let error = nginx().run(&mut Context::new(&mut host, "nginx:1"), instance("http://h/s")).unwrap_err();
        assert!(error.to_string().contains("HTTP 404"), "{error}");
        assert_eq!(host.service_checks[0].status, Status::Critical);
    }

    #[test]
    fn validate_refuses_what_a_run_refuses() {
        let agent = MockHost::default().agent;
        assert_eq!(nginx().validate(instance("http://h:8080/s"), &agent), Ok(Vec::new()));
        let refused = [
            ("ftp://h/s", serde_json::json!({})),
            ("http://h:8080/s", serde_json::json!({"timeout": 0})),
            ("http://h:8080/s", serde_json::json!({"use_plus_api": true})),
            ("http://h:8080/s", serde_json::json!({"auth_type": "ntlm"})),
        ];
        for (url, more) in refused {
            let error = nginx().run(&mut Context::new(&mut MockHost::default(), "nginx:1"), with(url, more.clone())).unwrap_err();
            assert!(matches!(&error, CheckError::Config(_)), "{error:?}");
            assert_eq!(nginx().validate(with(url, more), &agent), Err(error));
        }
        let plus = nginx().validate(with("http://h/s", serde_json::json!({"use_plus_api": true})), &agent).unwrap_err();
        assert!(plus.to_string().contains("option `use_plus_api` is not supported by adrt: "), "{plus}");
        // Its default, and the keys that only matter with it, are accepted.
        let quiet = serde_json::json!({"use_plus_api": false, "plus_api_version": 2, "use_plus_api_stream": true});
        assert_eq!(nginx().validate(with("http://h/s", quiet), &agent), Ok(Vec::new()));
    }

    #[test]
    fn instance_keys_are_checked() {
        let parse = |json: &str| adrt_check_sdk::instance::parse::<HttpInstance<Instance>>(json);
        assert!(parse("{}").unwrap_err().to_string().contains("missing field `nginx_status_url`"));
        let typo = parse(r#"{"nginx_status_url": "http://h/", "tls_verfy": false, "tags": ["a:b"], "username": "u"}"#).unwrap();
        assert_eq!(typo.warnings, ["unknown key `tls_verfy`"]);
        let legacy = parse(r#"{"nginx_status_url": "http://h/", "ssl_validation": false}"#).unwrap().own;
        assert!(!Target::of(&legacy, &HttpInitConfig::default()).unwrap().client.tls_verify);
        // init_config's proxy is every instance's default.
        let init = adrt_check_sdk::check::parse_config::<InitConfig>("init_config", r#"{"proxy": {"http": "http://p:3128"}, "service": "s"}"#);
        let mut host = MockHost::default();
        host.http.insert("http://h/s".into(), MockHost::ok(PAGE));
        Nginx::init(init.unwrap()).unwrap().run(&mut Context::new(&mut host, "nginx:1"), instance("http://h/s")).unwrap();
        assert_eq!(host.client_options[0].1.proxy.as_deref(), Some("http://p:3128"));
    }
}
