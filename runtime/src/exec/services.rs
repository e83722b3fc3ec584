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

    /// Allow-and-count policy; the agent settings from the environment and the config file,
    /// as `adrt run` would give them.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = crate::config::Config::load(crate::config::Layer::default(), None)?;
        Ok(Self::new(Arc::new(AllowAndCount::default()), config.agent_settings()))
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
