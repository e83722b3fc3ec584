//! The agent's status documents: served by the status API, read by `adrt info` and
//! `adrt configcheck`. One definition for both ends, so they cannot drift apart.

pub mod server;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /status`: what runs and how it went (`adrt info --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub hostname: String,
    pub listener: ListenerStatus,
    /// Sorted by name.
    pub checks: Vec<CheckStatus>,
    pub autodiscovery_errors: Vec<EntityErrors>,
    #[serde(default)]
    pub delivery: DeliveryStatus,
    /// The Datadog forwarder, when an API key is set.
    #[serde(default)]
    pub forwarder: Option<ForwarderStatus>,
    /// The DogStatsD server, when it listens.
    #[serde(default)]
    pub dogstatsd: Option<DogstatsdStatus>,
    /// Refusals of the checks' policies so far, by rule (`adrt.policy.denied`).
    #[serde(default)]
    pub policy_denied: BTreeMap<String, u64>,
}

/// What DogStatsD received (see `dogstatsd`), in the words of the Datadog agent's `DogStatsD`
/// section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DogstatsdStatus {
    /// Where it listens (`udp://127.0.0.1:8125`, `unix:///var/run/datadog/dsd.socket`), and the
    /// error of each that could not listen.
    pub listeners: Vec<String>,
    pub errors: Vec<String>,
    pub udp_packets: u64,
    pub udp_bytes: u64,
    pub uds_packets: u64,
    pub uds_bytes: u64,
    /// Packets larger than the receive buffer: their last message was cut and dropped.
    pub truncated_packets: u64,
    pub metric_samples: u64,
    pub events: u64,
    pub service_checks: u64,
    /// Malformed messages by reason (`bad_value`, `unknown_type`, ...).
    pub parse_errors: std::collections::BTreeMap<String, u64>,
    /// Samples, events and service checks not taken, by reason (`context_limit`, ...).
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Messages tagged with their sender's pod: from the socket's credentials, from the `c:`
    /// field or the `dd.internal.entity_id` tag.
    pub origin_from_credentials: u64,
    pub origin_from_fields: u64,
    /// Containers and pods of the node whose tags origin detection can give.
    pub known_origins: usize,
    /// Contexts waiting for the next flush.
    pub contexts: usize,
}

/// Payloads to the Datadog intake (see `send::datadog`), in the shape of the Datadog agent's
/// forwarder status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForwarderStatus {
    /// `None` until the intake answered, or when it could not say.
    pub api_key_valid: Option<bool>,
    /// Payloads the intake took.
    pub success: u64,
    /// Points, service checks and events in them.
    pub items_sent: u64,
    pub bytes_sent: u64,
    /// Attempts that failed for a reason that may pass, and were retried.
    pub retried: u64,
    /// Payloads refused for good or that found no room.
    pub dropped: u64,
    /// Failed attempts by kind (`HTTP 503`, `connection`, `timeout`, `HTTP 400 (dropped)`).
    pub errors: std::collections::BTreeMap<String, u64>,
    pub memory_payloads: usize,
    pub memory_bytes: usize,
    pub spool_payloads: usize,
    pub spool_bytes: u64,
    /// The oldest spooled payloads dropped to keep the spool under its bound.
    pub spool_dropped: u64,
    /// Spool files that could not be read back (reported in the log).
    pub spool_unreadable: u64,
    /// How long the last flush took to serialize and compress, in milliseconds.
    pub last_flush_ms: f64,
}

/// The queue between the runs and the sink (see `send`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// Batches (one run's results each) waiting for the sink.
    pub queued: usize,
    pub capacity: usize,
    pub sent: u64,
    /// Refused because the queue was full.
    pub dropped: u64,
    /// The sink failed on them.
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub name: String,
    /// Pods in the last snapshot.
    pub pods: usize,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    /// What the running version's `info` export returns, once an instance of it started.
    pub version: Option<String>,
    pub instances: Vec<InstanceStatus>,
    /// The component the running version was loaded from; `None` before it first loads.
    #[serde(default)]
    pub path: Option<String>,
    /// The running version's manifest; `None` when it has none (or has not loaded).
    #[serde(default)]
    pub manifest: Option<String>,
    /// Why the check's files, changed since, did not load: the version loaded before keeps
    /// running.
    #[serde(default)]
    pub load_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    /// `OK`, `WARNING`, `ERROR`, or `PENDING` before the first run.
    pub status: String,
    /// The pod is not ready: the instance waits (resumes by itself when ready).
    pub paused: bool,
    pub message: Option<String>,
    pub metrics: usize,
    pub events: usize,
    pub service_checks: usize,
    pub source: Source,
    pub provider: String,
    /// RFC 3339, UTC.
    pub last_run: Option<String>,
    pub total_runs: u64,
    pub avg_run_us: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Problems found in one pod, container or file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityErrors {
    pub entity: String,
    pub errors: Vec<String>,
}

/// `GET /configcheck`: every config, resolved or not (`adrt configcheck --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigCheck {
    pub resolved: Vec<ResolvedEntry>,
    pub unresolved: Vec<UnresolvedEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolvedEntry {
    pub check: String,
    pub provider: String,
    pub source: Source,
    pub id: String,
    pub init_config: serde_json::Value,
    pub instance: serde_json::Value,
    pub tags: Vec<String>,
    pub paused: bool,
    /// What the instance's requests may reach (`adrt check` runs it under the same bound).
    pub reach: Reach,
}

/// `policy::Reach` as the status API carries it: the operator's own config, or a pod's
/// annotations bound to that pod's IPs and its container's declared ports (any when none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Reach {
    #[default]
    Operator,
    Pod { ips: Vec<std::net::IpAddr>, ports: Vec<u16> },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnresolvedEntry {
    pub check: String,
    pub provider: String,
    pub source: Source,
    pub instance: serde_json::Value,
    pub reason: String,
}

/// A UTC timestamp in RFC 3339 (`2026-11-28T21:52:08Z`), without a date-time dependency.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_902_728)), "2026-11-28T21:52:08Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }
}
