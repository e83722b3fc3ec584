//! The nginx check: nginx's `stub_status` page, with the metrics of Datadog's nginx check.
//!
//! Instance keys: `nginx_status_url` (required), `tags`, `timeout` (seconds, default 10),
//! `tls_verify` (alias `ssl_validation`, default true).

use std::time::Duration;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe, HttpOptions, Status};
use serde::Deserialize;

pub struct Nginx;

#[derive(Debug, Deserialize)]
pub struct Instance {
    pub nginx_status_url: String,
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    #[serde(default = "default_true", alias = "ssl_validation")]
    pub tls_verify: bool,
}

fn default_timeout() -> f64 {
    10.0
}
fn default_true() -> bool {
    true
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
        return Err("the page is JSON (the NGINX Plus API?), not a stub_status page".into());
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

/// What a run reaches, from its instance: what `run` and `validate` both check.
struct Target {
    host: String,
    port: u16,
    timeout: Duration,
}

impl Target {
    fn of(instance: &Instance) -> Result<Target, CheckError> {
        let (host, port) = host_and_port(&instance.nginx_status_url).map_err(CheckError::Config)?;
        if !(instance.timeout > 0.0 && instance.timeout.is_finite()) {
            return Err(CheckError::Config(format!("timeout must be a positive number of seconds, got {}", instance.timeout)));
        }
        Ok(Target { host, port, timeout: Duration::from_secs_f64(instance.timeout) })
    }
}

impl Check for Nginx {
    const NAME: &'static str = "nginx";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Nginx)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let Target { host, port, timeout } = Target::of(&instance)?;
        // The agent adds the instance's `tags`.
        let tags = vec![format!("nginx_host:{host}"), format!("port:{port}")];

        let options = HttpOptions { timeout: Some(timeout), tls_verify: instance.tls_verify, ..HttpOptions::default() };
        let url = &instance.nginx_status_url;
        let response = ctx.http_get(url, &options).and_then(|r| {
            if r.status == 200 {
                Ok(r)
            } else {
                Err(adrt_check_sdk::HttpError::Other(format!("{url}: HTTP {}", r.status)))
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

    fn validate(&self, instance: Instance, _: &AgentContext) -> Result<Vec<String>, CheckError> {
        Target::of(&instance).map(|_| Vec::new())
    }
}

adrt_check_sdk::export_check!(Nginx);

#[cfg(test)]
mod tests {
    use super::*;
    use adrt_check_sdk::testing::MockHost;

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

    fn instance(url: &str) -> Instance {
        serde_json::from_value(serde_json::json!({"nginx_status_url": url})).unwrap()
    }

    #[test]
    fn submits_the_seven_metrics_and_can_connect() {
        let mut host = MockHost::default();
        host.http.insert("http://h:8080/s".into(), MockHost::ok(PAGE));
        Nginx.run(&mut Context::new(&mut host, "nginx:1"), instance("http://h:8080/s")).unwrap();
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
    fn unreachable_is_critical_and_fails_the_run() {
        let mut host = MockHost::default();
        let error = Nginx.run(&mut Context::new(&mut host, "nginx:1"), instance("http://h:1/s")).unwrap_err();
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
        let error = Nginx.run(&mut Context::new(&mut host, "nginx:1"), instance("http://h/s")).unwrap_err();
        assert!(error.to_string().contains("HTTP 404"), "{error}");
        assert_eq!(host.service_checks[0].status, Status::Critical);
    }

    #[test]
    fn validate_refuses_what_a_run_refuses() {
        let agent = MockHost::default().agent;
        assert_eq!(Nginx.validate(instance("http://h:8080/s"), &agent), Ok(Vec::new()));
        for (url, timeout) in [("ftp://h/s", 10.0), ("http://h:8080/s", 0.0)] {
            let bad = || Instance { timeout, ..instance(url) };
            let error = Nginx.run(&mut Context::new(&mut MockHost::default(), "nginx:1"), bad()).unwrap_err();
            assert!(matches!(&error, CheckError::Config(_)), "{error:?}");
            assert_eq!(Nginx.validate(bad(), &agent), Err(error));
        }
    }

    #[test]
    fn instance_keys_are_checked() {
        let parse = |json: &str| adrt_check_sdk::instance::parse::<Instance>(json);
        assert!(parse("{}").unwrap_err().to_string().contains("missing field `nginx_status_url`"));
        let typo = parse(r#"{"nginx_status_url": "http://h/", "tls_verfy": false, "tags": ["a:b"]}"#).unwrap();
        assert_eq!(typo.warnings, ["unknown key `tls_verfy`"]);
        assert!(!parse(r#"{"nginx_status_url": "http://h/", "ssl_validation": false}"#).unwrap().own.tls_verify);
    }
}
