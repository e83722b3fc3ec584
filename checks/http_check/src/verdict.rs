//! What a request's outcome says, as Datadog's http_check says it: the `http.can_connect`
//! status and message, and the `http.ssl_cert` status, message and remaining validity. Pure
//! functions of the outcome, the settings and the clock, so that they are tested without a host.

use std::time::Duration;

use adrt_check_sdk::{Describe, HttpError, Response, Status, TlsResponse};

use crate::config::{ExpiryThresholds, Settings};

/// Datadog's cap on a service check's message (the API's limit), also what `include_content` adds at most.
const MESSAGE_LENGTH: usize = 2500;
const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SECOND;

/// The `http.can_connect` service check.
#[derive(Debug, Clone, PartialEq)]
pub struct Availability {
    pub status: Status,
    /// `None` when OK.
    pub message: Option<String>,
}

impl Availability {
    fn up() -> Self {
        Availability { status: Status::Ok, message: None }
    }

    fn down(message: String) -> Self {
        Availability { status: Status::Critical, message: Some(message) }
    }
}

/// Judges a request that could not be made: CRITICAL, with the cause and how long it took.
pub fn unreachable(error: &HttpError, elapsed: Duration) -> Availability {
    Availability::down(format!("{}. Connection failed after {} ms", error.describe(), elapsed.as_millis()))
}

/// Judges a response: its status code against `http_response_status_code`, then its body
/// against `content_match` (found, or with `reverse_content_match` not found).
pub fn judge(settings: &Settings, response: &Response) -> Availability {
    if !settings.status.accepts(response.status) {
        let message = format!(
            "Incorrect HTTP return code for url {}. Expected {}, got {}.",
            settings.url,
            settings.status.expected(),
            response.status
        );
        return Availability::down(with_content(settings, message, response));
    }
    let Some(content) = &settings.content else { return Availability::up() };
    let text = response.text();
    // Python's `$` also matches before a final newline, as pages end: try without it too.
    let found = content.regex.is_match(&text) || text.strip_suffix('\n').is_some_and(|t| content.regex.is_match(t));
    match (found, content.reverse) {
        (true, false) | (false, true) => Availability::up(),
        (false, false) => {
            let message = format!("Content \"{}\" not found in response.", content.pattern);
            Availability::down(with_content(settings, message, response))
        }
        (true, true) => {
            let message = format!("Content \"{}\" found in response with the reverse_content_match", content.pattern);
            Availability::down(with_content(settings, message, response))
        }
    }
}

/// With `include_content`, the message and the start of the body, within Datadog's length.
fn with_content(settings: &Settings, message: String, response: &Response) -> String {
    if !settings.include_content {
        return message;
    }
    let body: String = response.text().chars().take(MESSAGE_LENGTH).collect();
    format!("{message}\nContent: {body}").chars().take(MESSAGE_LENGTH).collect()
}

/// The `http.ssl_cert` service check and the `http.ssl.*_left` gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateReport {
    pub status: Status,
    /// Whole days left, rounded down (negative once expired), as Python's `timedelta.days`.
    pub days_left: Option<i64>,
    pub seconds_left: Option<f64>,
    /// `None` when OK.
    pub message: Option<String>,
}

/// The certificate of an `https` request's outcome, judged against the thresholds at `now`.
///
/// Without a certificate the status is UNKNOWN with the request's error, except that a TLS
/// failure that says the certificate expired is CRITICAL with 0 left, as in Datadog.
pub fn certificate(thresholds: ExpiryThresholds, outcome: &Result<TlsResponse, HttpError>, now_unix_nanos: u64) -> CertificateReport {
    let unknown = |message: String| CertificateReport { status: Status::Unknown, days_left: None, seconds_left: None, message: Some(message) };
    match outcome {
        Ok(TlsResponse { peer_certificate: Some(certificate), .. }) => expiry(thresholds, certificate.not_after, now_unix_nanos),
        Ok(TlsResponse { peer_certificate: None, .. }) => unknown("Empty or no certificate found.".to_string()),
        Err(error @ HttpError::Tls(cause)) if mentions_expiry(cause) => CertificateReport {
            status: Status::Critical,
            days_left: Some(0),
            seconds_left: Some(0.0),
            message: Some(error.describe()),
        },
        Err(error) => unknown(error.describe()),
    }
}

fn mentions_expiry(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("expired") || lower.contains("expiration")
}

/// How long a certificate valid until `not_after` (Unix seconds) has left at `now`, and what
/// that makes `http.ssl_cert`.
pub fn expiry(thresholds: ExpiryThresholds, not_after: i64, now_unix_nanos: u64) -> CertificateReport {
    // In integer nanoseconds: an f64 of nanoseconds since 1970 has lost its sub-microsecond digits.
    let nanos_left = i128::from(not_after) * NANOS_PER_SECOND - i128::from(now_unix_nanos);
    let seconds_left = nanos_left as f64 / NANOS_PER_SECOND as f64;
    let days_left = nanos_left.div_euclid(NANOS_PER_DAY) as i64;
    let (status, message) = if seconds_left < thresholds.critical_seconds as f64 {
        (Status::Critical, Some(format!("This cert TTL is critical: only {days_left} days before it expires")))
    } else if seconds_left < thresholds.warning_seconds as f64 {
        (Status::Warning, Some(format!("This cert is almost expired, only {days_left} days left")))
    } else {
        (Status::Ok, None)
    };
    CertificateReport { status, days_left: Some(days_left), seconds_left: Some(seconds_left), message }
}
