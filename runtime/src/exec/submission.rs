//! What a check run submits, before aggregation: `exec` produces these, `aggregate` reads them.

use serde::Serialize;

/// How a submitted value is aggregated (Datadog agent semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Gauge,
    Count,
    MonotonicCount,
    Rate,
    Histogram,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Count => "count",
            MetricKind::MonotonicCount => "monotonic_count",
            MetricKind::Rate => "rate",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One submitted metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub kind: MetricKind,
    pub value: f64,
    pub tags: Vec<String>,
    pub hostname: Option<String>,
    pub device: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceCheck {
    pub name: String,
    pub status: Status,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub message: Option<String>,
    /// Seconds since the epoch, when the sender said (DogStatsD's `d:`); else the run's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub title: String,
    pub text: String,
    pub alert_type: &'static str,
    /// `normal` or `low` (DogStatsD's `p:`); the intake's default is normal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<&'static str>,
    /// The host the event is about, when not the agent's (DogStatsD's `h:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub tags: Vec<String>,
    pub aggregation_key: Option<String>,
    pub source_type_name: Option<String>,
    pub timestamp: Option<u64>,
}

/// Everything one run submitted.
#[derive(Debug, Clone, Default)]
pub struct Submissions {
    pub samples: Vec<Sample>,
    pub service_checks: Vec<ServiceCheck>,
    pub events: Vec<Event>,
}
