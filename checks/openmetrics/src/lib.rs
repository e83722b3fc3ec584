//! The openmetrics check: any Prometheus or OpenMetrics endpoint, with the config keys, names and
//! types of Datadog's OpenMetrics v2 check (`OpenMetricsBaseCheckV2`). See README.md.
//!
//! # Layout
//! - [`config`]: the instance keys and the settings a run derives from them.
//! - [`parse`]: a streaming parser of both text formats (one sample at a time, borrowing the page).
//! - [`scrape`]: samples to Datadog's series, submitted as they are read.

pub mod config;
pub mod parse;
pub mod scrape;

use std::borrow::Cow;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe, HttpInitConfig, HttpInstance, Status};

use crate::config::{Instance, Settings};
use crate::parse::Format;

pub struct OpenMetrics {
    /// What the shared HTTP options take from init_config (`timeout`, `proxy`, `skip_proxy`,
    /// `log_requests`); its other keys are not this check's.
    init: HttpInitConfig,
}

impl Check for OpenMetrics {
    const NAME: &'static str = "openmetrics";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = HttpInstance<Instance>;

    fn init(init: Self::InitConfig) -> Result<Self, CheckError> {
        let init = adrt_check_sdk::serde_json::from_value(init).map_err(|e| CheckError::Config(format!("init_config: {e}")))?;
        Ok(OpenMetrics { init })
    }

    fn run(&self, ctx: &mut Context<'_>, instance: HttpInstance<Instance>) -> Result<(), CheckError> {
        let settings = Settings::new(instance, &self.init)?;
        for warning in &settings.warnings {
            ctx.warn(warning);
        }
        let health = settings.qualified("openmetrics.health");
        let health_tags: Vec<String> = settings.endpoint_tag.iter().cloned().collect();
        let accept = [("Accept".to_string(), settings.accept.to_string())];
        let response = settings.client.send(ctx, "GET", &settings.endpoint, None, &accept).map_err(|e| e.describe()).and_then(|response| {
            let response = response.response;
            // `raise_for_status`: 4xx and 5xx are failures; redirects were followed.
            match response.status {
                ..400 => Ok(response),
                status => Err(format!("{}: HTTP {status}", settings.endpoint)),
            }
        });
        let response = match response {
            Ok(response) => {
                if settings.health_service_check {
                    ctx.service_check(&health, Status::Ok, &health_tags, None);
                }
                response
            }
            Err(message) => {
                if settings.health_service_check {
                    ctx.service_check(&health, Status::Critical, &health_tags, Some(&message));
                }
                return Err(CheckError::Run(format!("There was an error scraping endpoint {}: {message}", settings.endpoint)));
            }
        };
        let content_type = response.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.as_str());
        let format = Format::of_content_type(content_type.unwrap_or_default());
        // In place when the page is UTF-8 (it must be); a copy with replacement characters only
        // when it is not.
        let page = match std::str::from_utf8(&response.body) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&response.body),
        };
        scrape::submit_page(ctx, &settings, &page, format);
        Ok(())
    }

    fn validate(&self, instance: HttpInstance<Instance>, _: &AgentContext) -> Result<Vec<String>, CheckError> {
        Settings::new(instance, &self.init).map(|settings| settings.warnings)
    }
}

adrt_check_sdk::export_check!(OpenMetrics);

#[cfg(test)]
mod tests;
