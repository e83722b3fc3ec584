//! The instance keys, and the settings a run derives from them and the agent's context.

use adrt_check_sdk::instance::unsupported;
use adrt_check_sdk::{AgentContext, CheckError};
use regex_lite::Regex;
use serde::Deserialize;

use crate::conntrack::ConntrackFilter;

/// One `instances` entry: the keys of Datadog's network check (Linux), plus `procfs_path` and
/// `sysfs_path`.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
    /// Overrides the agent's sysfs root (`/sys`, or `/host/sys` in the DaemonSet).
    #[serde(default)]
    pub sysfs_path: Option<String>,
    #[serde(default)]
    pub excluded_interfaces: Option<Vec<String>>,
    /// Matched at the start of the name, like Python's `re.match`.
    #[serde(default)]
    pub excluded_interface_re: Option<String>,
    #[serde(default)]
    pub collect_connection_state: bool,
    #[serde(default)]
    pub collect_connection_queues: bool,
    #[serde(default = "default_true")]
    pub combine_connection_states: bool,
    #[serde(default = "default_true")]
    pub collect_rate_metrics: bool,
    #[serde(default)]
    pub collect_count_metrics: bool,
    #[serde(default)]
    pub whitelist_conntrack_metrics: Option<Vec<String>>,
    #[serde(default)]
    pub blacklist_conntrack_metrics: Option<Vec<String>>,

    // Datadog keys whose data needs a subprocess (`conntrack -S`) or an ioctl (ethtool): refused
    // when they ask for something, accepted at their defaults.
    #[serde(default)]
    pub conntrack_path: Option<String>,
    /// Only changes how `conntrack_path` is run; accepted either way.
    #[serde(default)]
    pub use_sudo_conntrack: Option<bool>,
    #[serde(default)]
    pub collect_aws_ena_metrics: bool,
    #[serde(default)]
    pub collect_ethtool_metrics: bool,
}

fn default_true() -> bool {
    true
}

/// What a run needs, validated.
#[derive(Debug)]
pub struct Settings {
    /// The procfs root without a trailing `/`; conntrack's sysctls are under it.
    pub procfs_root: String,
    /// Where `net/*` is read: the procfs root, or `<root>/1` when the root is not the agent's own
    /// `/proc`, so that the numbers are those of the host's network namespace (PID 1's), not the
    /// agent pod's.
    pub net_root: String,
    pub sysfs_root: String,
    pub excluded_interfaces: Vec<String>,
    pub excluded_interface_re: Option<Regex>,
    pub conntrack: ConntrackFilter,
    pub collect_connection_state: bool,
    pub collect_connection_queues: bool,
    pub combine_connection_states: bool,
    pub collect_rate_metrics: bool,
    pub collect_count_metrics: bool,
}

impl Settings {
    pub fn new(instance: Instance, agent: &AgentContext) -> Result<Settings, CheckError> {
        let procfs_root = adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path")?;
        let sysfs_root = adrt_check_sdk::root_dir(instance.sysfs_path.as_deref(), &agent.sysfs_root, "sysfs_path")?;
        let net_root = if procfs_root == "/proc" { procfs_root.clone() } else { format!("{procfs_root}/1") };
        let excluded_interface_re = match instance.excluded_interface_re.as_deref() {
            // Anchored at the start only, as `re.match` is.
            Some(re) if !re.is_empty() => {
                Some(Regex::new(&format!("^(?:{re})")).map_err(|e| invalid_regex("excluded_interface_re", re, e))?)
            }
            _ => None,
        };
        let conntrack = ConntrackFilter::new(
            instance.whitelist_conntrack_metrics.as_deref(),
            instance.blacklist_conntrack_metrics.as_deref(),
        )?;
        if instance.conntrack_path.as_deref().is_some_and(|path| !path.is_empty()) {
            return Err(unsupported(
                "conntrack_path",
                "the statistics of `conntrack -S` need a subprocess; the conntrack sysctls are collected \
                 (whitelist_conntrack_metrics)",
            ));
        }
        for (option, set) in [("collect_aws_ena_metrics", instance.collect_aws_ena_metrics), ("collect_ethtool_metrics", instance.collect_ethtool_metrics)] {
            if set {
                return Err(unsupported(option, "the ethtool statistics need an ioctl on a socket, which checks cannot make; set it to false"));
            }
        }
        Ok(Settings {
            procfs_root,
            net_root,
            sysfs_root,
            excluded_interfaces: instance.excluded_interfaces.unwrap_or_default(),
            excluded_interface_re,
            conntrack,
            collect_connection_state: instance.collect_connection_state,
            collect_connection_queues: instance.collect_connection_queues,
            combine_connection_states: instance.combine_connection_states,
            collect_rate_metrics: instance.collect_rate_metrics,
            collect_count_metrics: instance.collect_count_metrics,
        })
    }

    /// Whether `excluded_interfaces` or `excluded_interface_re` drops this interface.
    pub fn is_excluded(&self, iface: &str) -> bool {
        self.excluded_interfaces.iter().any(|e| e == iface)
            || self.excluded_interface_re.as_ref().is_some_and(|re| re.is_match(iface))
    }
}

/// Compiles a regex option, naming the option when it is invalid.
pub fn compile(pattern: &str, key: &str) -> Result<Regex, CheckError> {
    Regex::new(pattern).map_err(|e| invalid_regex(key, pattern, e))
}

fn invalid_regex(key: &str, pattern: &str, error: regex_lite::Error) -> CheckError {
    CheckError::Config(format!("{key}: invalid regular expression {pattern:?}: {error}"))
}
