//! http_check: Datadog's HTTP check. One request to the instance's `url` says whether the
//! service is up (`http.can_connect`: the connection, the status code, the content), how long it
//! took (`network.http.response_time`) and, over HTTPS, how long the server's certificate has
//! left (`http.ssl_cert`, `http.ssl.days_left`, `http.ssl.seconds_left`).
//!
//! - [`config`]: the keys, and the settings a run derives from them (what `validate` checks).
//! - [`verdict`]: the service checks' statuses and messages, from the request's outcome.
//!
//! A down service is what this check reports, not a failure of its run: the run fails only when
//! the agent refused the request (policy) or could not make it (an invalid request).
//! See README.md for the options and how this differs from Datadog's check.

pub mod config;
pub mod verdict;

use std::time::Duration;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe, HttpError, HttpInstance, Status};

use config::{InitConfig, Instance, Settings};
use verdict::{Availability, CertificateReport};

pub struct HttpCheck {
    init: InitConfig,
}

impl Check for HttpCheck {
    const NAME: &'static str = "http_check";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = InitConfig;
    type Instance = HttpInstance<Instance>;

    fn init(init: InitConfig) -> Result<Self, CheckError> {
        if let Some(timeout) = init.timeout.filter(|t| !(*t > 0.0 && t.is_finite())) {
            return Err(CheckError::Config(format!("init_config timeout must be a positive number of seconds, got {timeout}")));
        }
        Ok(HttpCheck { init })
    }

    fn run(&self, ctx: &mut Context<'_>, instance: HttpInstance<Instance>) -> Result<(), CheckError> {
        let settings = Settings::new(instance, &self.init)?;
        for warning in settings.warnings() {
            ctx.warn(&warning);
        }
        let started = ctx.monotonic_nanos();
        let outcome = settings.client.send(ctx, &settings.method, &settings.url, settings.body.clone(), &settings.headers);
        let elapsed = Duration::from_nanos(ctx.monotonic_nanos().saturating_sub(started));

        // Metrics carry `url:` and `instance:` always; service checks carry `instance:`, and
        // `url:` unless the instance's tags have one (the host adds those tags), as in Datadog.
        let metric_tags = vec![format!("url:{}", settings.url), settings.instance_tag.clone()];
        let mut service_check_tags = vec![settings.instance_tag.clone()];
        if !settings.has_url_tag {
            service_check_tags.push(format!("url:{}", settings.url));
        }

        let availability = match &outcome {
            Ok(tls) => {
                if settings.collect_response_time {
                    ctx.gauge("network.http.response_time", elapsed.as_secs_f64(), &metric_tags);
                }
                verdict::judge(&settings, &tls.response)
            }
            Err(error) => {
                ctx.info(&format!("{} is DOWN: {}", settings.url, error.describe()));
                verdict::unreachable(error, elapsed)
            }
        };
        let up = availability.status == Status::Ok;
        ctx.gauge("network.http.can_connect", if up { 1.0 } else { 0.0 }, &metric_tags);
        ctx.gauge("network.http.cant_connect", if up { 0.0 } else { 1.0 }, &metric_tags);

        let certificate = match settings.expiry {
            Some(thresholds) if settings.is_https() => {
                let report = verdict::certificate(thresholds, &outcome, ctx.now_unix_nanos());
                submit_certificate_gauges(ctx, &report, &metric_tags);
                Some(report)
            }
            _ => None,
        };

        let Availability { status, message } = availability;
        ctx.service_check("http.can_connect", status, &service_check_tags, message.as_deref());
        if let Some(CertificateReport { status, message, .. }) = certificate {
            ctx.service_check("http.ssl_cert", status, &service_check_tags, message.as_deref());
        }
        match outcome {
            // Not the service's health but the agent's refusal, or a request it cannot make:
            // the run fails so that `adrt info` shows why.
            Err(error @ (HttpError::Denied(_) | HttpError::InvalidRequest(_))) => Err(CheckError::Run(error.describe())),
            _ => Ok(()),
        }
    }

    fn validate(&self, instance: HttpInstance<Instance>, _: &AgentContext) -> Result<Vec<String>, CheckError> {
        Settings::new(instance, &self.init).map(|settings| settings.warnings())
    }
}

fn submit_certificate_gauges(ctx: &mut Context<'_>, report: &CertificateReport, tags: &[String]) {
    if let Some(days) = report.days_left {
        ctx.gauge("http.ssl.days_left", days as f64, tags);
    }
    if let Some(seconds) = report.seconds_left {
        ctx.gauge("http.ssl.seconds_left", seconds, tags);
    }
}

adrt_check_sdk::export_check!(HttpCheck);

#[cfg(test)]
mod tests;
