//! What every live check instance shares: the policy, the HTTP clients, the agent's settings
//! and the per-instance state store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bindings::adrt::check::agent::{AgentContext, Kubelet};
use super::host::http::HttpClients;
use super::policy::{AllowAndCount, Policy};

/// The agent's settings a check may read (the WIT `agent` interface).
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub hostname: String,
    pub node_name: String,
    pub kubelet_host: String,
    pub kubelet_url: String,
    pub kubelet_tls_verify: bool,
    pub kubelet_ca_file: Option<String>,
    pub kubelet_token_file: Option<String>,
    pub procfs_root: String,
    pub sysfs_root: String,
}

impl AgentSettings {
    /// Settings from the environment, with Datadog's names where they exist.
    pub fn from_env() -> Self {
        let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
        let hostname = var(&["DD_HOSTNAME", "ADRT_HOSTNAME"])
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
            .unwrap_or_else(|| "localhost".into());
        let kubelet_host = var(&["DD_KUBERNETES_KUBELET_HOST", "KUBERNETES_KUBELET_HOST"]).unwrap_or_else(|| "127.0.0.1".into());
        let in_cluster = std::path::Path::new(SERVICE_ACCOUNT_TOKEN).exists();
        let kubelet_url = var(&["DD_KUBELET_URL", "ADRT_KUBELET_URL"]).unwrap_or_else(|| {
            if in_cluster { format!("https://{kubelet_host}:10250") } else { format!("http://{kubelet_host}:10255") }
        });
        AgentSettings {
            hostname,
            node_name: var(&["DD_KUBERNETES_NODE_NAME", "NODE_NAME", "KUBERNETES_NODE_NAME"]).unwrap_or_default(),
            kubelet_tls_verify: var(&["DD_KUBELET_TLS_VERIFY"]).is_none_or(|v| v != "false" && v != "0"),
            kubelet_ca_file: var(&["DD_KUBELET_CLIENT_CA"]),
            kubelet_token_file: var(&["DD_KUBELET_AUTH_TOKEN_PATH"]).or(in_cluster.then(|| SERVICE_ACCOUNT_TOKEN.to_string())),
            kubelet_host,
            kubelet_url,
            procfs_root: var(&["DD_PROCFS_PATH", "ADRT_PROCFS_PATH"]).unwrap_or_else(|| "/proc".into()),
            sysfs_root: var(&["DD_SYSFS_PATH", "ADRT_SYSFS_PATH"]).unwrap_or_else(|| "/sys".into()),
        }
    }

    pub(crate) fn to_wit(&self) -> AgentContext {
        AgentContext {
            hostname: self.hostname.clone(),
            node_name: self.node_name.clone(),
            kubelet: Kubelet {
                host: self.kubelet_host.clone(),
                url: self.kubelet_url.clone(),
                tls_verify: self.kubelet_tls_verify,
                ca_file: self.kubelet_ca_file.clone(),
                token_file: self.kubelet_token_file.clone(),
            },
            procfs_root: self.procfs_root.clone(),
            sysfs_root: self.sysfs_root.clone(),
        }
    }
}

const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Shared by all stores of an engine.
pub struct HostServices {
    pub policy: Arc<dyn Policy>,
    pub agent: AgentSettings,
    pub(crate) http: HttpClients,
    /// Per check instance ID: the keys its runs keep (the WIT `state` interface).
    state: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl HostServices {
    pub fn new(policy: Arc<dyn Policy>, agent: AgentSettings) -> Self {
        HostServices { policy, agent, http: HttpClients::default(), state: Mutex::new(HashMap::new()) }
    }

    /// Allow-and-count policy, settings from the environment.
    pub fn from_env() -> Self {
        Self::new(Arc::new(AllowAndCount::default()), AgentSettings::from_env())
    }

    pub(crate) fn state_get(&self, instance_id: &str, key: &str) -> Option<String> {
        self.state.lock().unwrap().get(instance_id)?.get(key).cloned()
    }

    /// Sets or deletes a key; returns how many bytes the instance's state now holds.
    pub(crate) fn state_set(&self, instance_id: &str, key: &str, value: Option<String>) -> usize {
        let mut state = self.state.lock().unwrap();
        let entries = state.entry(instance_id.to_string()).or_default();
        match value {
            Some(value) => entries.insert(key.to_string(), value),
            None => entries.remove(key),
        };
        entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Drops the state of an instance that is no longer scheduled.
    pub fn forget_instance(&self, instance_id: &str) {
        self.state.lock().unwrap().remove(instance_id);
    }
}
