//! Example check: the numbers of an nginx `stub_status` page, written the way a newcomer would
//! write their first check. `checks/examples/python/stub_status` and
//! `checks/examples/js/stub_status` are the same check in Python and JavaScript, with the same
//! output.
//!
//! Instance keys: `url` (required), the page's URL.

use adrt_check_sdk::{Check, CheckError, Context, Describe, RequestOptions, Status};
use serde::Deserialize;

pub struct StubStatus;

#[derive(Debug, Deserialize)]
pub struct Instance {
    pub url: Option<String>,
}

/// What the page says.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub active: u64,
    pub accepted: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

/// Parses `Active connections: N`, `server accepts handled requests`, the three counters and
/// `Reading: r Writing: w Waiting: x`; `None` when the page is anything else.
pub fn parse(page: &str) -> Option<Page> {
    let words: Vec<&str> = page.split_whitespace().collect();
    let ["Active", "connections:", active, "server", "accepts", "handled", "requests", accepted, handled, requests, "Reading:", reading, "Writing:", writing, "Waiting:", waiting] =
        words[..]
    else {
        return None;
    };
    let n = |text: &str| text.parse::<u64>().ok();
    Some(Page {
        active: n(active)?,
        accepted: n(accepted)?,
        handled: n(handled)?,
        requests: n(requests)?,
        reading: n(reading)?,
        writing: n(writing)?,
        waiting: n(waiting)?,
    })
}

impl Check for StubStatus {
    const NAME: &'static str = "stub_status";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(StubStatus)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let url = instance.url.ok_or_else(|| CheckError::Config("missing required key `url`".into()))?;
        let tags = [format!("url:{url}")];
        let response = match ctx.http_get(&url, &RequestOptions::default()) {
            Ok(response) if (200..300).contains(&response.status) => response,
            Ok(response) => {
                let message = format!("{url}: HTTP {}", response.status);
                ctx.service_check("stub_status.can_connect", Status::Critical, &tags, Some(&message));
                return Err(CheckError::Run(message));
            }
            Err(error) => {
                let message = error.describe();
                ctx.service_check("stub_status.can_connect", Status::Critical, &tags, Some(&message));
                return Err(CheckError::Run(message));
            }
        };
        ctx.service_check("stub_status.can_connect", Status::Ok, &tags, None);
        let page = parse(&response.text()).ok_or_else(|| CheckError::Run(format!("{url}: not a stub_status page")))?;
        ctx.gauge("stub_status.connections.active", page.active as f64, &tags);
        ctx.gauge("stub_status.connections.reading", page.reading as f64, &tags);
        ctx.gauge("stub_status.connections.writing", page.writing as f64, &tags);
        ctx.gauge("stub_status.connections.waiting", page.waiting as f64, &tags);
        ctx.monotonic_count("stub_status.connections.accepted", page.accepted as f64, &tags);
        ctx.monotonic_count("stub_status.connections.handled", page.handled as f64, &tags);
        ctx.monotonic_count("stub_status.requests", page.requests as f64, &tags);
        Ok(())
    }
}

adrt_check_sdk::export_check!(StubStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use adrt_check_sdk::testing::MockHost;

    const PAGE: &str = "Active connections: 3 \nserver accepts handled requests\n 10 9 42 \nReading: 0 Writing: 1 Waiting: 2 \n";

    fn run(host: &mut MockHost, instance: serde_json::Value) -> Result<(), CheckError> {
        StubStatus.run(&mut Context::new(host, "stub_status:1"), serde_json::from_value(instance).unwrap())
    }

    #[test]
    fn submits_the_page_numbers_tagged_with_the_url() {
        let mut host = MockHost::default();
        host.http.insert("http://web/status".into(), MockHost::ok(PAGE));
        run(&mut host, serde_json::json!({"url": "http://web/status"})).unwrap();
        let tags = ["url:http://web/status"];
        assert_eq!(host.metric_value("stub_status.connections.active", &tags), Some(3.0));
        assert_eq!(host.metric_value("stub_status.connections.waiting", &tags), Some(2.0));
        assert_eq!(host.metric_value("stub_status.requests", &tags), Some(42.0));
        assert_eq!(host.metrics.len(), 7);
        assert_eq!(host.service_checks[0].status, Status::Ok);
    }

    #[test]
    fn a_missing_url_is_a_config_error() {
        let error = run(&mut MockHost::default(), serde_json::json!({})).unwrap_err();
        assert!(matches!(&error, CheckError::Config(m) if m.contains("`url`")), "{error}");
    }

    #[test]
    fn an_unreachable_page_is_critical_and_fails_the_run() {
        let mut host = MockHost::default();
        let error = run(&mut host, serde_json::json!({"url": "http://nowhere/"})).unwrap_err();
        assert_eq!(host.service_checks[0].status, Status::Critical);
        assert!(host.metrics.is_empty());
        assert!(error.to_string().contains("http://nowhere/"), "{error}");
    }

    #[test]
    fn another_page_is_not_parsed() {
        assert_eq!(parse("<html>hi</html>"), None);
        assert_eq!(parse(&PAGE.replace("42", "x")), None);
    }
}
