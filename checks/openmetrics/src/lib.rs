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

use adrt_check_sdk::host::Auth;
use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe, HttpOptions, Status};

use crate::config::{Instance, Settings, TokenAuth};
use crate::parse::Format;

pub struct OpenMetrics;

impl Check for OpenMetrics {
    const NAME: &'static str = "openmetrics";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(OpenMetrics)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let settings = Settings::new(instance)?;
        for warning in &settings.warnings {
            ctx.warn(warning);
        }
        let health = settings.qualified("openmetrics.health");
        let health_tags: Vec<String> = settings.endpoint_tag.iter().cloned().collect();
        let response = request_options(ctx, &settings).and_then(|options| {
            let response = ctx.http_get(&settings.endpoint, &options).map_err(|e| e.describe())?;
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

    fn validate(&self, instance: Instance, _: &AgentContext) -> Result<Vec<String>, CheckError> {
        Settings::new(instance).map(|settings| settings.warnings)
    }
}

/// The request's options; reads the token file of an `auth_token` header that is not a bearer
/// token (a bearer token file is read by the host).
fn request_options(ctx: &mut Context<'_>, settings: &Settings) -> Result<HttpOptions, String> {
    let mut headers = settings.headers.clone();
    let auth = match &settings.auth {
        None => None,
        Some(TokenAuth::BearerFile(path)) => Some(Auth::BearerFile(path.clone())),
        Some(TokenAuth::Header { path, name, value, placeholder }) => {
            let token = ctx.read_to_string(path).map_err(|e| format!("auth_token: {}", e.describe()))?;
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.replacen(placeholder.as_str(), token.trim(), 1)));
            None
        }
    };
    Ok(HttpOptions { timeout: Some(settings.timeout), tls_verify: settings.tls_verify, ca_file: settings.ca_file.clone(), auth, headers })
}

adrt_check_sdk::export_check!(OpenMetrics);

#[cfg(test)]
mod tests;
